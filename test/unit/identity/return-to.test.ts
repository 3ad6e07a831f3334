import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { safeReturnTo } from '../../../src/identity/index.js';

describe('safeReturnTo', () => {
  it.each(['/', '/app/', '/x/y?z', '/x/y?z=1&w=2#frag', '/caf%C3%A9', '/a%20b', '/search?q=%2F', '/..//still-a-path', '/progress/100%25'])(
    'accepts the gateway path %j unchanged',
    (path) => {
      expect(safeReturnTo(path)).toBe(path);
    },
  );

  it.each([
    ['scheme-relative', '//evil.example'],
    ['backslash', '/\\evil.example'],
    ['backslash first', '\\\\evil.example'],
    ['absolute URL', 'https://evil.example/'],
    ['javascript URL', 'javascript:alert(1)'],
    ['data URL', 'data:text/html,<script>'],
    ['relative path', 'app/x'],
    ['empty', ''],
    ['encoded slashes', '/%2F%2Fevil.example'],
    ['encoded slash after the first', '/%2Fevil.example'],
    ['lower-case encoded slashes', '/%2f%2fevil.example'],
    ['encoded backslash', '/%5Cevil.example'],
    ['encoded backslash later', '/ok/%5C'],
    ['double-encoded slashes', '/%252F%252Fevil.example'],
    ['triple-encoded slashes', '/%25252F%25252Fevil.example'],
    ['encoded slashes with a stray percent', '/%2F%2Fevil.example%zz'],
    ['tab', '/\t/evil.example'],
    ['encoded tab', '/%09/evil.example'],
    ['newline', '/\nx'],
    ['encoded newline', '/x%0d%0aSet-Cookie:a=b'],
    ['NUL', '/x\u0000'],
    ['space', '/a b'],
    ['non-ASCII', '/café'],
    ['too long', `/${'a'.repeat(2048)}`],
  ])('refuses %s', (_what, input) => {
    expect(safeReturnTo(input)).toBe('/');
  });

  it('refuses anything that is not a string', () => {
    expect(safeReturnTo(undefined)).toBe('/');
    expect(safeReturnTo(['/app'])).toBe('/');
  });

  it('never returns something a browser would resolve off the gateway', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('/', '\\', '%', '2', 'F', '5', 'C', 'a', ':', '.', '\t', '@', '?', '#') }), (input) => {
        const output = safeReturnTo(input);
        const resolved = new URL(output, 'https://gateway.example');
        expect(resolved.origin).toBe('https://gateway.example');
        expect(output === input || output === '/').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
