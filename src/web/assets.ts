import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { bundleBrowserScript } from './bundle.js';
import { AUDIT_CSS } from './styles.js';

/**
 * The review pages' static files: the stylesheet and the bundled script. Each is served from
 * `/audit/assets/<name>.<hash>.<ext>` with a long cache lifetime (the name changes with the
 * content) and referenced with Subresource Integrity, so the pages need no inline script or
 * style and a strict Content Security Policy holds.
 */

export const ASSETS_PATH = '/audit/assets/';

export interface Asset {
  /** The URL path it is served at. */
  readonly path: string;
  readonly contentType: string;
  readonly body: Buffer;
  /** Subresource Integrity value (`sha384-…`). */
  readonly integrity: string;
}

export interface AuditAssets {
  readonly stylesheet: Asset;
  readonly script: Asset;
  /** The asset served at `path`, if any. */
  find(path: string): Asset | undefined;
}

/** Where `npm run build` leaves the bundled script, beside the compiled web room. */
const PREBUILT_SCRIPT = new URL('./assets/audit-page.js', import.meta.url);

function asset(stem: string, extension: string, contentType: string, text: string): Asset {
  const body = Buffer.from(text, 'utf8');
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  return {
    path: `${ASSETS_PATH}${stem}.${hash}.${extension}`,
    contentType,
    body,
    integrity: `sha384-${createHash('sha384').update(body).digest('base64')}`,
  };
}

/** The prebuilt script when there is one (a build), else a fresh bundle (running from source). */
async function scriptText(): Promise<string> {
  try {
    return await readFile(PREBUILT_SCRIPT, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return bundleBrowserScript();
}

/** Loads (or bundles) the assets once; the gateway keeps them in memory. */
export async function loadAuditAssets(): Promise<AuditAssets> {
  const stylesheet = asset('audit', 'css', 'text/css; charset=utf-8', AUDIT_CSS);
  const script = asset('audit-page', 'js', 'text/javascript; charset=utf-8', await scriptText());
  const byPath = new Map([stylesheet, script].map((a) => [a.path, a]));
  return { stylesheet, script, find: (path) => byPath.get(path) };
}

/** `npm run build`: bundles the script and writes it where {@link loadAuditAssets} looks first. */
export async function writeBrowserAssets(): Promise<string> {
  const target = PREBUILT_SCRIPT;
  await mkdir(new URL('./', target), { recursive: true });
  await writeFile(target, await bundleBrowserScript(), 'utf8');
  return target.pathname;
}
