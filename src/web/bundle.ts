import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';
import { TollgateError } from '../core/index.js';

/**
 * Bundles the review pages' browser script (`browser/audit-page`) with esbuild: our own modules
 * and `@noble/hashes`/`@noble/curves`, nothing fetched from elsewhere. The proof check in the
 * browser is the audit room's `verifyProofBundle` itself, compiled from the same source the
 * CLI runs.
 *
 * esbuild is a build tool (a devDependency): `npm run build` runs this once and writes the result
 * next to the compiled web room (`dist/web/assets/`, see `build-assets`), which is what a
 * production install serves. Running from source (tests, `tsx`), the gateway bundles at start.
 */

/**
 * The audit room's exports the browser script uses, by the module that defines them. The room's
 * `index.ts` also exports the file store and the verifier of whole directories, which need Node's
 * file system and crypto; the bundle sees an index narrowed to these pure modules (bytes,
 * canonical JSON, Merkle tree, signed notes, records, proofs), so nothing Node-only can slip in.
 * A name missing here fails the bundle, not the page.
 */
const BROWSER_AUDIT_EXPORTS: Readonly<Record<string, readonly string[]>> = {
  './proof.js': ['verifyProofBundle'],
  './note.js': ['parseVerifierKey'],
};

const here = dirname(fileURLToPath(import.meta.url));
/** `.ts` when running from source, `.js` from the build: the entry sits beside this module. */
const sourceExtension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const ENTRY = resolve(here, 'browser', `audit-page${sourceExtension}`);
const AUDIT_INDEX = resolve(here, '..', 'audit', 'index.js');

function narrowedAuditIndex(): Plugin {
  return {
    name: 'tollgate-audit-browser',
    setup(build) {
      build.onResolve({ filter: /(^|\/)audit\/index\.js$/ }, (args) => {
        const path = resolve(args.resolveDir, args.path);
        return path === AUDIT_INDEX ? { path, namespace: 'tollgate-audit-browser' } : undefined;
      });
      build.onLoad({ filter: /.*/, namespace: 'tollgate-audit-browser' }, (args) => ({
        contents: Object.entries(BROWSER_AUDIT_EXPORTS)
          .map(([module, names]) => `export { ${names.join(', ')} } from '${module}';`)
          .join('\n'),
        resolveDir: dirname(args.path),
        loader: 'js',
      }));
    },
  };
}

/** The bundled script: an ES module for current browsers, minified, without source maps. */
export async function bundleBrowserScript(): Promise<string> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (cause) {
    throw new TollgateError(
      'TG_ERR_INTERNAL',
      'the review pages\' script was not built and esbuild is not installed to build it; run "npm run build" (which writes dist/web/assets/) with the dev dependencies installed',
      { cause },
    );
  }
  const result = await esbuild.build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    plugins: [narrowedAuditIndex()],
  });
  const output = result.outputFiles[0];
  if (output === undefined) throw new TollgateError('TG_ERR_INTERNAL', 'esbuild produced no output for the review pages\' script');
  return output.text;
}
