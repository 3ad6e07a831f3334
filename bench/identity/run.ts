/**
 * Per-request identity costs on one core: opening the session cookie (every browser request),
 * verifying a bearer JWT against a cached JWKS (every API request), verifying a database token
 * (every Postgres connection), issuing one, and checking a return path. Prints a markdown table
 * with operations per second and microseconds per operation; each row runs about one second.
 *
 *   node --import tsx bench/identity/run.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { systemClock } from '../../src/core/index.js';
import { BearerVerifier, DbTokens, SessionCookies, safeReturnTo, type Session } from '../../src/identity/index.js';

const ROW_MS = 1_000;
const WARMUP = 2_000;
const HOUR = 3_600_000;

interface Row {
  readonly what: string;
  readonly opsPerSecond: number;
  readonly microsPerOp: number;
}

async function measure(what: string, op: () => unknown): Promise<Row> {
  for (let i = 0; i < WARMUP; i += 1) await op();
  let count = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ROW_MS) {
    for (let i = 0; i < 200; i += 1) await op();
    count += 200;
    elapsed = performance.now() - start;
  }
  return { what, opsPerSecond: (count / elapsed) * 1000, microsPerOp: (elapsed * 1000) / count };
}

function expectOk(result: { ok: boolean }, what: string): void {
  if (!result.ok) throw new Error(`${what} failed during the benchmark`);
}

const cookies = new SessionCookies({ keys: ['bench-session-key-0123456789abcdef', 'old-bench-key-0123456789abcdefgh'], cookieName: 'tollgate_session', secure: true }, systemClock);
const now = Date.now();
const session: Session = {
  sessionId: 'bench-session-id',
  subject: '5f2b6c1e-8d0a-4c1b-9f3e-2a7d9c4b1e60',
  email: 'alice@example.com',
  groups: ['engineering', 'oncall', 'payments-readers'],
  user: 'alice@example.com',
  issuedAt: now,
  expiresAt: now + 8 * HOUR,
  accessExpiresAt: now + HOUR,
  refreshToken: 'r'.repeat(43),
  idToken: `${'h'.repeat(60)}.${'p'.repeat(560)}.${'s'.repeat(342)}`,
};
const setCookie = cookies.serializeSessionCookie(session);
const cookieHeader = `_ga=GA1.1.123; theme=dark; ${setCookie.split(';')[0] ?? ''}`;

const dbTokens = new DbTokens({ signingKey: 'bench-db-token-key-0123456789abcdef', ttlMs: HOUR, maxTtlMs: 12 * HOUR }, systemClock);
const issued = dbTokens.issueDbToken({ subject: session.subject, email: 'alice@example.com', groups: ['engineering', 'oncall'] });
if (!issued.ok) throw new Error('could not issue a database token');

const { privateKey, publicKey } = await generateKeyPair('RS256');
const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'RS256', use: 'sig' }] });
const jwksServer = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
});
await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', () => resolve()));
const { port } = jwksServer.address() as AddressInfo;
const issuer = `http://127.0.0.1:${port}`;
const bearer = new BearerVerifier(
  {
    enabled: true,
    issuer,
    jwksUri: `${issuer}/jwks`,
    audiences: ['tollgate'],
    algorithms: ['RS256', 'ES256'],
    clockSkewMs: 60_000,
    claims: { user: 'email', email: 'email', groups: 'groups' },
  },
  { clock: systemClock },
);
const jwt = await new SignJWT({ email: 'robot@example.com', groups: ['automation'] })
  .setProtectedHeader({ alg: 'RS256', kid: 'bench' })
  .setIssuer(issuer)
  .setAudience('tollgate')
  .setSubject('robot')
  .setIssuedAt()
  .setExpirationTime('1h')
  .sign(privateKey);

try {
  expectOk(cookies.readSessionCookie(cookieHeader), 'readSessionCookie');
  expectOk(dbTokens.verifyDbToken(issued.token), 'verifyDbToken');
  expectOk(await bearer.verifyBearer(jwt), 'verifyBearer');
  const rows = [
    await measure(`readSessionCookie (${Buffer.byteLength(setCookie)} B cookie)`, () => cookies.readSessionCookie(cookieHeader)),
    await measure('serializeSessionCookie', () => cookies.serializeSessionCookie(session)),
    await measure('verifyBearer (RS256, cached JWKS)', () => bearer.verifyBearer(jwt)),
    await measure(`verifyDbToken (${issued.token.length} chars)`, () => dbTokens.verifyDbToken(issued.token)),
    await measure('issueDbToken', () => dbTokens.issueDbToken({ subject: 'robot', groups: ['automation'] })),
    await measure('safeReturnTo', () => safeReturnTo('/app/orders/42?tab=items&sort=desc')),
  ];
  console.log(`Identity costs, Node ${process.version}, one core\n`);
  console.log('| operation | ops/s | µs/op |');
  console.log('|---|---:|---:|');
  for (const row of rows) console.log(`| ${row.what} | ${Math.round(row.opsPerSecond).toLocaleString('en-US')} | ${row.microsPerOp.toFixed(1)} |`);
} finally {
  await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
}
