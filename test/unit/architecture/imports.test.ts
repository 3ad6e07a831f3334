import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// DESIGN.md §1: which room may import which. `cli` may import everything.
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  policy: ['core'],
  sql: ['core'],
  audit: ['core'],
  config: ['core', 'policy'],
  identity: ['core', 'config'],
  'proxy/http': ['core', 'config', 'identity', 'policy', 'audit'],
  'proxy/postgres': ['core', 'config', 'identity', 'policy', 'sql', 'audit'],
  web: ['core', 'config', 'identity', 'policy', 'audit'],
  demo: ['core', 'policy', 'sql', 'audit', 'config', 'identity', 'proxy/http', 'proxy/postgres', 'web'],
  cli: ['core', 'policy', 'sql', 'audit', 'config', 'identity', 'proxy/http', 'proxy/postgres', 'web', 'demo'],
};

const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../src');

function roomOf(file: string): string | null {
  const parts = relative(srcDir, file).split(sep);
  if (parts[0] === 'proxy') return parts[1] === undefined ? null : `proxy/${parts[1]}`;
  return parts.length > 1 ? (parts[0] ?? null) : null;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(entry.name) ? [path] : [];
  });
}

const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm;

/** Every relative import in a file, resolved to an absolute path. */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(SPECIFIER)) {
    const spec = match[1] ?? match[2] ?? match[3];
    if (spec?.startsWith('.')) found.push(resolve(dirname(file), spec));
  }
  return found;
}

/** The rule violations of one import, as readable strings. */
function violations(file: string, target: string): string[] {
  const from = roomOf(file);
  const to = roomOf(target);
  const where = `${relative(srcDir, file)} imports ${relative(srcDir, target)}`;
  if (from === null || to === null) return [`${where}: files belong in a room folder`];
  if (from === to) return [];
  const problems: string[] = [];
  if (!(ALLOWED[from] ?? []).includes(to)) problems.push(`${where}: room ${from} may not import room ${to}`);
  const roomDir = join(srcDir, ...to.split('/'));
  if (target !== join(roomDir, 'index.js')) problems.push(`${where}: import room ${to} through its index.js only`);
  return problems;
}

describe('architecture', () => {
  it('every room of DESIGN.md has an index.ts and no other top-level folder exists', () => {
    const rooms = sourceFiles(srcDir)
      .map(roomOf)
      .filter((room): room is string => room !== null);
    expect(new Set(rooms)).toEqual(new Set(Object.keys(ALLOWED)));
    for (const room of Object.keys(ALLOWED)) {
      expect(() => readFileSync(join(srcDir, ...room.split('/'), 'index.ts'))).not.toThrow();
    }
  });

  it('imports follow the arrows of DESIGN.md §1 and enter other rooms through index.js', () => {
    const problems = sourceFiles(srcDir).flatMap((file) =>
      relativeImports(file).flatMap((target) => violations(file, target)),
    );
    expect(problems).toEqual([]);
  });

  it('the checker itself flags a wrong arrow and a reach past index.js', () => {
    const policyFile = join(srcDir, 'policy', 'decide.ts');
    expect(violations(policyFile, join(srcDir, 'audit', 'index.js'))).toEqual([
      'policy/decide.ts imports audit/index.js: room policy may not import room audit',
    ]);
    const httpFile = join(srcDir, 'proxy', 'http', 'server.ts');
    expect(violations(httpFile, join(srcDir, 'audit', 'merkle.js'))).toEqual([
      'proxy/http/server.ts imports audit/merkle.js: import room audit through its index.js only',
    ]);
    expect(violations(httpFile, join(srcDir, 'proxy', 'postgres', 'index.js'))).toEqual([
      'proxy/http/server.ts imports proxy/postgres/index.js: room proxy/http may not import room proxy/postgres',
    ]);
    expect(violations(httpFile, join(srcDir, 'policy', 'index.js'))).toEqual([]);
  });
});
