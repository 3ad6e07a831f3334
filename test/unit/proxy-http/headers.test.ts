import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  TrustedProxies,
  cookieHeaderWithout,
  downstreamResponseHeaders,
  headerText,
  parseHostHeader,
  peerAddress,
  upstreamRequestHeaders,
  type UpstreamHeaderOptions,
} from '../../../src/proxy/http/headers.js';

const BASE: UpstreamHeaderOptions = {
  peer: '203.0.113.9',
  peerTrusted: false,
  scheme: 'https',
  cookie: null,
  dropAuthorization: false,
  identity: { 'x-tollgate-user': 'alice@example.com' },
};

describe('upstreamRequestHeaders', () => {
  it('strips hop-by-hop headers, the headers Connection names, Proxy-*, Expect and the Host', () => {
    const out = upstreamRequestHeaders(
      {
        host: 'gw.example',
        connection: 'keep-alive, X-Secret-Hop',
        'keep-alive': 'timeout=5',
        'x-secret-hop': 'a',
        te: 'trailers',
        trailer: 'x',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic eA==',
        proxy: 'http://evil:8080',
        expect: '100-continue',
        accept: 'text/html',
        'content-type': 'text/plain',
      },
      BASE,
    );
    expect(Object.keys(out).sort()).toEqual(['accept', 'content-type', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-tollgate-user']);
  });

  it('replaces every inbound X-Tollgate-* and forwarding header from an untrusted peer', () => {
    const out = upstreamRequestHeaders(
      {
        host: 'gw.example',
        'x-tollgate-user': 'admin@example.com',
        'x-tollgate-groups': 'admins',
        'x-tollgate-assertion': 'forged',
        'x-forwarded-for': '10.0.0.1',
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'internal',
        'x-forwarded-prefix': '/x',
        forwarded: 'for=10.0.0.1',
        'x-real-ip': '10.0.0.1',
        'x-client-ip': '10.0.0.1',
        'client-ip': '10.0.0.1',
        'true-client-ip': '10.0.0.1',
        'x-cluster-client-ip': '10.0.0.1',
        'x-originating-ip': '10.0.0.1',
        'cf-connecting-ip': '10.0.0.1',
        'fastly-client-ip': '10.0.0.1',
      },
      BASE,
    );
    expect(out).toEqual({
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'gw.example',
      'x-tollgate-user': 'alice@example.com',
    });
  });

  it('extends X-Forwarded-For and keeps Proto/Host from a trusted proxy', () => {
    const out = upstreamRequestHeaders(
      { host: 'gw.internal', 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com', forwarded: 'for=198.51.100.7', 'true-client-ip': '198.51.100.7' },
      { ...BASE, peer: '10.0.0.2', peerTrusted: true, scheme: 'http' },
    );
    expect(out).toMatchObject({
      'x-forwarded-for': '198.51.100.7, 10.0.0.2',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'app.example.com',
      forwarded: 'for=198.51.100.7',
      'true-client-ip': '198.51.100.7',
    });
  });

  it('drops Authorization only when it carried the bearer token the gateway consumed; sets the filtered cookie', () => {
    expect(upstreamRequestHeaders({ authorization: 'Bearer x', cookie: 'a=1' }, { ...BASE, dropAuthorization: true, cookie: 'a=1' })).toMatchObject({ cookie: 'a=1' });
    expect(upstreamRequestHeaders({ authorization: 'Bearer x' }, { ...BASE, dropAuthorization: true })).not.toHaveProperty('authorization');
    expect(upstreamRequestHeaders({ authorization: 'Basic eA==' }, BASE)).toHaveProperty('authorization', 'Basic eA==');
    expect(upstreamRequestHeaders({ cookie: 'tollgate_session=x' }, BASE)).not.toHaveProperty('cookie');
  });
});

/**
 * The variable name a CGI-style server (RFC 3875 §4.1.18, WSGI, Rack, PHP-FPM behind a lenient
 * front end) gives a request header: upper-case, every character that is not a letter or digit
 * written as `_`.
 */
function cgiName(name: string): string {
  return `HTTP_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

describe('upstreamRequestHeaders: identity and forwarding headers under other spellings', () => {
  it('drops underscore spellings of the identity and forwarding headers (they reach an app as HTTP_X_TOLLGATE_USER)', () => {
    const out = upstreamRequestHeaders(
      {
        host: 'gw.example',
        x_tollgate_user: 'ceo@example.com',
        x_tollgate_groups: 'admins',
        'x-tollgate_assertion': 'forged',
        x_forwarded_for: '10.1.1.1',
        'x_forwarded-host': 'admin.internal',
        x_real_ip: '10.1.1.1',
        proxy_: 'http://evil:8080',
        accept: 'text/html',
      },
      BASE,
    );
    expect(out).toEqual({
      accept: 'text/html',
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'gw.example',
      'x-tollgate-user': 'alice@example.com',
    });
  });

  it('drops every header name with an underscore or other punctuation, even from a trusted proxy', () => {
    const out = upstreamRequestHeaders(
      { host: 'gw.example', api_key: 'k', 'x.tollgate.user': 'ceo@example.com', 'x~forwarded~for': '10.1.1.1', 'x-request-id': 'r1', 'x-api-key2': 'k2' },
      { ...BASE, peerTrusted: true },
    );
    expect(Object.keys(out).sort()).toEqual(['x-api-key2', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id', 'x-tollgate-user']);
  });

  it('forwards no client header that a CGI-style server would read as a reserved variable', () => {
    // Forwarding headers from a trusted proxy are honoured by design; the others never are.
    const always = ['x-tollgate-user', 'x-tollgate-groups', 'x-tollgate-assertion', 'proxy', 'x-original-url', 'x-http-method-override'];
    const untrusted = [...always, 'x-forwarded-for', 'x-forwarded-host', 'forwarded', 'x-real-ip'];
    const tokenPunctuation = fc.constantFrom('-', '_', '.', '~', '!', '#', '$', '&', "'", '*', '+', '^', '`', '|');
    const spellingOf = (reserved: readonly string[]) =>
      fc.tuple(fc.constantFrom(...reserved), fc.array(tokenPunctuation, { minLength: 4, maxLength: 4 })).map(([name, marks]) => {
        let i = 0;
        return name.replace(/-/g, () => marks[i++ % marks.length] as string);
      });
    const header = fc.oneof(
      spellingOf(untrusted).map((name) => ({ name, trusted: false })),
      spellingOf(always).map((name) => ({ name, trusted: true })),
    );
    fc.assert(
      fc.property(header, ({ name, trusted }) => {
        const out = upstreamRequestHeaders({ host: 'gw.example', [name]: 'forged' }, { ...BASE, peerTrusted: trusted, identity: {} });
        for (const [sent, value] of Object.entries(out)) {
          if (value === 'forged') expect.fail(`${name} reached the upstream as ${sent} (${cgiName(sent)})`);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('upstreamRequestHeaders: method and URL overrides', () => {
  it('drops the headers through which frameworks re-route or re-method a request after the decision', () => {
    const overrides = {
      'x-original-url': '/app/admin/x',
      'x-rewrite-url': '/app/secret',
      'x-original-uri': '/app/secret',
      'x-http-method-override': 'DELETE',
      'x-http-method': 'DELETE',
      'x-method-override': 'DELETE',
      'x-original-method': 'DELETE',
    };
    for (const peerTrusted of [false, true]) {
      const out = upstreamRequestHeaders({ host: 'gw.example', accept: '*/*', ...overrides }, { ...BASE, peerTrusted });
      expect(Object.keys(out).sort()).toEqual(['accept', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-tollgate-user']);
    }
  });
});

describe('cookieHeaderWithout', () => {
  const ours = ['tollgate_session', 'tollgate_session_login'];
  it('removes the gateway cookies and keeps the others in order', () => {
    expect(cookieHeaderWithout('a=1; tollgate_session=v1.x; b=2; tollgate_session_login=y', ours)).toBe('a=1; b=2');
    expect(cookieHeaderWithout('tollgate_session=v1.x', ours)).toBeNull();
    expect(cookieHeaderWithout('a=1;b=2', ours)).toBe('a=1;b=2');
    expect(cookieHeaderWithout('my_tollgate_session=1; tollgate_session=2', ours)).toBe('my_tollgate_session=1');
    expect(cookieHeaderWithout(undefined, ours)).toBeNull();
  });
});

describe('downstreamResponseHeaders', () => {
  it('removes hop-by-hop headers, named ones, the upstream request id and attempts to set gateway cookies', () => {
    const raw = [
      'Content-Type', 'text/html',
      'Connection', 'keep-alive, X-Internal',
      'X-Internal', 'secret',
      'Keep-Alive', 'timeout=5',
      'Transfer-Encoding', 'chunked',
      'Proxy-Authenticate', 'Basic',
      'X-Request-Id', 'upstream',
      'Set-Cookie', 'app=1; Path=/',
      'Set-Cookie', 'tollgate_session=planted; Path=/',
      'Set-Cookie', ' tollgate_session_login=planted',
    ].map((text) => Buffer.from(text));
    expect(downstreamResponseHeaders(raw, ['tollgate_session', 'tollgate_session_login'])).toEqual(['Content-Type', 'text/html', 'Set-Cookie', 'app=1; Path=/']);
  });

  it('drops a nameless cookie that a browser would send back as one of the gateway cookies', () => {
    // A nameless cookie goes back as its bare value: `=tollgate_session=x` arrives as `tollgate_session=x`.
    const raw = [
      'Set-Cookie', '=tollgate_session=planted; Path=/app/',
      'Set-Cookie', ' = tollgate_session_login=planted',
      'Set-Cookie', '=app=1',
      'Set-Cookie', '=tollgate_session_other=1',
    ].map((text) => Buffer.from(text));
    expect(downstreamResponseHeaders(raw, ['tollgate_session', 'tollgate_session_login'])).toEqual(['Set-Cookie', '=app=1', 'Set-Cookie', '=tollgate_session_other=1']);
  });
});

describe('parseHostHeader', () => {
  it.each([
    ['App.Example.COM', 'app.example.com'],
    ['app.example.com:8443', 'app.example.com'],
    ['app.example.com.', 'app.example.com'],
    ['127.0.0.1:8080', '127.0.0.1'],
    ['[::1]:8080', '::1'],
  ])('reads %s as %s', (header, hostname) => {
    expect(parseHostHeader(header)?.hostname).toBe(hostname);
  });

  it.each([undefined, '', 'a b', 'evil.com/path', 'user@host', '[zz]', ':80', 'host:port'])('refuses %s', (header) => {
    expect(parseHostHeader(header)).toBeNull();
  });
});

describe('TrustedProxies', () => {
  const trusted = new TrustedProxies(['10.0.0.0/8', '192.0.2.1', 'fd00::/8']);

  it('matches CIDRs and single addresses of both families', () => {
    expect(trusted.trusts('10.1.2.3')).toBe(true);
    expect(trusted.trusts('192.0.2.1')).toBe(true);
    expect(trusted.trusts('192.0.2.2')).toBe(false);
    expect(trusted.trusts('fd00::1')).toBe(true);
    expect(trusted.trusts('not-an-ip')).toBe(false);
    expect(new TrustedProxies([]).trusts('10.0.0.1')).toBe(false);
  });

  it('finds the client: the right-most X-Forwarded-For entry that is not a trusted proxy', () => {
    expect(trusted.clientAddress('10.0.0.2', '198.51.100.7, 10.9.9.9')).toBe('198.51.100.7');
    expect(trusted.clientAddress('10.0.0.2', 'spoofed, 198.51.100.7')).toBe('198.51.100.7');
    expect(trusted.clientAddress('203.0.113.9', '198.51.100.7')).toBe('203.0.113.9');
    expect(trusted.clientAddress('10.0.0.2', 'garbage')).toBe('10.0.0.2');
    expect(trusted.clientAddress('10.0.0.2', undefined)).toBe('10.0.0.2');
  });

  it('writes IPv4-mapped peers as IPv4', () => {
    expect(peerAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(peerAddress('::1')).toBe('::1');
  });
});

describe('headerText', () => {
  it('keeps plain names and percent-encodes separators, spaces and non-ASCII', () => {
    expect(headerText('alice@example.com')).toBe('alice@example.com');
    expect(headerText('R&D, Berlin')).toBe('R&D%2C%20Berlin');
    expect(headerText('100%')).toBe('100%25');
    expect(headerText('Zoë\r\nX: y')).toBe('Zo%C3%AB%0D%0AX:%20y');
    expect(decodeURIComponent(headerText('Zoë, 李'))).toBe('Zoë, 李');
  });
});
