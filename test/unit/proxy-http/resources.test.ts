import { describe, expect, it } from 'vitest';
import type { HttpResourceConfig } from '../../../src/config/index.js';
import { ResourceRouter } from '../../../src/proxy/http/index.js';

function resource(name: string, match: HttpResourceConfig['match'], upstream = 'http://127.0.0.1:3000', strip = false): HttpResourceConfig {
  return { name, kind: 'http', upstream, match, strip_prefix: strip };
}

const router = new ResourceRouter([
  resource('app', { path_prefix: '/app/' }),
  resource('app-v2', { path_prefix: '/app/v2/' }, 'http://127.0.0.1:3002/base/', true),
  resource('grafana', { host: 'grafana.example.com' }),
  resource('grafana-api', { host: 'grafana.example.com', path_prefix: '/api/' }, 'http://127.0.0.1:3003', true),
  {
    name: 'shop',
    kind: 'postgres',
    upstream: { host: 'db', port: 5432, database: 'shop', tls: 'disable' },
    logins: [{ name: 'reader', user: 'r', password: 'p' }],
    redact_parameters: false,
  },
]);

function matched(host: string, path: string): [string, string] | string {
  const match = router.match(host, path);
  if (match.kind === 'resource') return [match.route.resource.name, match.upstreamPath];
  return match.kind === 'add-slash' ? `redirect ${match.location}` : 'none';
}

describe('ResourceRouter', () => {
  it('matches path prefixes, longest first, and strips and rebases when configured', () => {
    expect(matched('gw.example.com', '/app/x')).toEqual(['app', '/app/x']);
    expect(matched('gw.example.com', '/app/')).toEqual(['app', '/app/']);
    expect(matched('gw.example.com', '/app/v2/orders')).toEqual(['app-v2', '/base/orders']);
    expect(matched('gw.example.com', '/app/v2/')).toEqual(['app-v2', '/base/']);
  });

  it('prefers host and prefix over host alone over prefix alone', () => {
    expect(matched('grafana.example.com', '/api/dashboards')).toEqual(['grafana-api', '/dashboards']);
    expect(matched('grafana.example.com', '/d/abc')).toEqual(['grafana', '/d/abc']);
    expect(matched('grafana.example.com', '/app/x')).toEqual(['grafana', '/app/x']);
  });

  it('sends the bare prefix to its slash form and matches nothing else', () => {
    expect(matched('gw.example.com', '/app')).toBe('redirect /app/');
    expect(matched('gw.example.com', '/application')).toBe('none');
    expect(matched('gw.example.com', '/APP/x')).toBe('none');
    expect(matched('other.example.com', '/')).toBe('none');
  });

  it('ignores postgres resources', () => {
    expect(router.routes.map((route) => route.resource.name)).not.toContain('shop');
  });
});
