import { describe, expect, it } from 'vitest';
import { safeReturnTo, type AbsoluteReturnRules } from '../../../src/identity/index.js';

/** The public URL is https://gw.example.com:8443, cookie domain example.com, one resource on app.example.com. */
const RULES: AbsoluteReturnRules = { protocol: 'https:', port: '8443', hosts: new Set(['gw.example.com', 'app.example.com']) };

describe('safeReturnTo with absolute return rules', () => {
  it.each([
    'https://app.example.com:8443/x?y=1#z',
    'https://app.example.com/x',
    'https://gw.example.com:8443/',
    'https://app.example.com:8443',
    'https://APP.example.com:8443/x',
    '/still/a/path',
  ])('accepts %j unchanged', (target) => {
    expect(safeReturnTo(target, RULES)).toBe(target);
  });

  it.each([
    ['scheme-relative', '//evil.example'],
    ['another host', 'https://evil.example/'],
    ['backslash path', '/\\evil.example'],
    ['encoded slashes', '/%2F%2Fevil.example'],
    ['userinfo naming an allowed host', 'https://app.example.com@evil.example/'],
    ['userinfo with a password', 'https://app.example.com:8443:x@evil.example/'],
    ['userinfo before an allowed host', 'https://evil.example@app.example.com:8443/'],
    ['another scheme', 'http://app.example.com:8443/x'],
    ['upper-case scheme', 'HTTPS://app.example.com:8443/x'],
    ['javascript', 'javascript:alert(1)'],
    ['another port', 'https://app.example.com:9443/x'],
    ['an explicit default port', 'https://app.example.com:443/x'],
    ['a host under the domain that no resource uses', 'https://other.example.com:8443/x'],
    ['the bare domain', 'https://example.com:8443/x'],
    ['a host that only ends like an allowed one', 'https://evilapp.example.com:8443/x'],
    ['an allowed host as a subdomain of another', 'https://app.example.com.evil.example/x'],
    ['a trailing dot', 'https://app.example.com.:8443/x'],
    ['a percent-encoded host', 'https://app%2Eexample.com:8443/x'],
    ['a backslash after the host', 'https://app.example.com:8443\\@evil.example/'],
    ['a backslash as the first path character', 'https://app.example.com:8443/\\evil.example'],
    ['encoded slashes in the path', 'https://app.example.com:8443/%2F%2Fevil.example'],
    ['double-encoded slashes in the path', 'https://app.example.com:8443/%252F%252Fevil.example'],
    ['an encoded backslash in the path', 'https://app.example.com:8443/%5Cevil.example'],
    ['a query right after the host', 'https://app.example.com:8443?x'],
    ['an empty host', 'https:///evil.example'],
    ['a tab', 'https://app.example.com:8443/\t/evil'],
  ])('refuses %s', (_, target) => {
    expect(safeReturnTo(target, RULES)).toBe('/');
  });

  it('refuses every absolute URL without rules, as before', () => {
    expect(safeReturnTo('https://app.example.com:8443/x')).toBe('/');
  });

  it('compares the port with the public URL default port', () => {
    const rules: AbsoluteReturnRules = { protocol: 'https:', port: '', hosts: new Set(['app.example.com']) };
    expect(safeReturnTo('https://app.example.com/x', rules)).toBe('https://app.example.com/x');
    expect(safeReturnTo('https://app.example.com:8443/x', rules)).toBe('/');
  });
});
