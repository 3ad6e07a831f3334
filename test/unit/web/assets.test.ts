import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TLOG_PROOF_HEADER } from '../../../src/audit/index.js';
import { loadAuditAssets } from '../../../src/web/assets.js';
import { bundleBrowserScript } from '../../../src/web/bundle.js';

describe('browser assets', () => {
  it("bundles the page script from the audit room's own proof code, with nothing Node-only in it", async () => {
    const script = await bundleBrowserScript();
    // The tlog-proof parser and the Ed25519 verifier are inside; no module is fetched at run time.
    expect(script).toContain(TLOG_PROOF_HEADER);
    expect(script).not.toMatch(/\bnode:|\brequire\(|from\s*["']/);
    expect(script.length).toBeLessThan(200_000);
  });

  it('serves the stylesheet and script under names that change with their content, with integrity values', async () => {
    const assets = await loadAuditAssets();
    for (const asset of [assets.stylesheet, assets.script]) {
      expect(asset.path).toMatch(/^\/audit\/assets\/[a-z-]+\.[0-9a-f]{12}\.(css|js)$/);
      expect(asset.integrity).toBe(`sha384-${createHash('sha384').update(asset.body).digest('base64')}`);
      expect(assets.find(asset.path)).toBe(asset);
    }
    expect(assets.script.contentType).toBe('text/javascript; charset=utf-8');
    expect(assets.find('/audit/assets/other.js')).toBeUndefined();
  });
});
