import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../../src/config/index.js';
import { edit, load } from './fixtures.js';

/** Line 9 of the base is `    keys: [...]` under `session:`; these add `cookie_domain` after it. */
function withSession(keysAndDomain: string, changes: Readonly<Record<number, string>> = {}): string {
  return edit({ 9: `    keys: ["\${env:SESSION_KEY}"]\n${keysAndDomain}`, ...changes });
}

function issuesOf(text: string): string[] {
  const result = load(text);
  if (result.ok) throw new Error('expected the config to be invalid, but it loaded');
  return result.errors.map(formatIssue);
}

describe('identity.session.cookie_domain', () => {
  it('is absent by default', () => {
    const result = load(edit({}));
    if (!result.ok) throw new Error(result.errors.map(formatIssue).join('\n'));
    expect(result.config.identity.session.cookie_domain).toBeUndefined();
  });

  it.each([
    ['example.com', 'example.com'],
    ['.example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['gw.example.com', 'gw.example.com'],
  ])('accepts %j as %j', (written, stored) => {
    const result = load(withSession(`    cookie_domain: "${written}"`));
    if (!result.ok) throw new Error(result.errors.map(formatIssue).join('\n'));
    expect(result.config.identity.session.cookie_domain).toBe(stored);
  });

  it.each([
    ['com', '"com" is not a DNS name with at least one dot; write it like example.com'],
    ['10.0.0.1', '"10.0.0.1" is an IP address; a cookie domain must be a DNS name; write it like example.com'],
    ['..example.com', '"..example.com" is not a DNS name with at least one dot; write it like example.com'],
    ['example.com:443', '"example.com:443" is not a DNS name with at least one dot; write it like example.com'],
    ['1.2.3', '"1.2.3" is not a DNS name with at least one dot; write it like example.com'],
  ])('refuses %j with file, line and key', (written, message) => {
    expect(issuesOf(withSession(`    cookie_domain: "${written}"`))).toEqual([`tollgate.yaml:10 identity.session.cookie_domain: ${message}`]);
  });

  it('refuses a domain the public URL host is not within', () => {
    expect(issuesOf(withSession('    cookie_domain: example.org'))).toEqual([
      'tollgate.yaml:10 identity.session.cookie_domain: "example.org" does not cover the public URL\'s host "gw.example.com": login runs there, so it must be "example.org" or a subdomain of it',
    ]);
  });

  it('refuses a domain that only ends like the public host without being its parent', () => {
    expect(issuesOf(withSession('    cookie_domain: ample.com'))).toHaveLength(1);
  });

  it('refuses a host-matched resource outside the domain, naming its match.host line', () => {
    expect(issuesOf(withSession('    cookie_domain: example.com', { 17: '      host: app.other.net' }))).toEqual([
      'tollgate.yaml:18 resources[0].match.host: "app.other.net" is outside identity.session.cookie_domain "example.com", so browsers could not log in there; put the resource under "example.com" or route it by path_prefix',
    ]);
  });

  it('accepts host-matched resources under the domain and path-matched ones anywhere', () => {
    expect(load(withSession('    cookie_domain: example.com', { 17: '      host: app.example.com' })).ok).toBe(true);
    expect(load(withSession('    cookie_domain: .example.com')).ok).toBe(true);
  });

  it('changes nothing when absent: a host-matched resource anywhere is still valid', () => {
    expect(load(edit({ 17: '      host: app.other.net' })).ok).toBe(true);
  });
});
