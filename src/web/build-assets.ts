import { writeBrowserAssets } from './assets.js';

/**
 * Run by `npm run build` after the TypeScript compiler: bundles the review pages' browser script
 * into `dist/web/assets/`, where the gateway serves it from, so that a production install (which
 * has no bundler) needs nothing at run time.
 */
const written = await writeBrowserAssets();
process.stdout.write(`wrote ${written}\n`);
