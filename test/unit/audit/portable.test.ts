import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The review page verifies proofs in the browser with these same modules: they may use only
// Uint8Array, TextEncoder/TextDecoder and @noble/*, never Node built-ins or Buffer.
const auditDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../src/audit');
const PURE_MODULES = ['bytes.ts', 'canonical.ts', 'record.ts', 'merkle.ts', 'genesis.ts', 'note.ts', 'proof.ts', 'verify-chain.ts'];

describe('pure audit modules', () => {
  it.each(PURE_MODULES)('%s imports only core, its siblings and @noble, and never uses Buffer', (file) => {
    const text = readFileSync(join(auditDir, file), 'utf8');
    const specifiers = [...text.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]!);
    expect(specifiers.length).toBeGreaterThan(0);
    for (const specifier of specifiers) {
      expect(specifier).toMatch(/^(\.\/[a-z-]+\.js|\.\.\/core\/index\.js|@noble\/(hashes|curves)\/[a-z0-9-]+\.js)$/);
    }
    const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    expect(code).not.toMatch(/\bBuffer\b|\bprocess\.|require\(/);
  });
});
