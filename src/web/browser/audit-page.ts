import { enhanceLiveTail } from './live-tail.js';
import { enhanceProofs } from './prove.js';

/**
 * The one script of the review pages (bundled by `bundle.ts`, served from `/audit/assets/`). The
 * pages work without it; it adds in-browser proof verification and the live tail. Loaded as a
 * module script, it runs once the document is parsed.
 */
enhanceProofs();
enhanceLiveTail();
