/**
 * A gateway alone in a child process, so that its memory can be measured without the test's
 * clients, upstream and IdP in the same heap. Started with `fork()` (IPC channel, `--import tsx`,
 * `--expose-gc`). Messages in: `{ type: 'start', options }`, `{ type: 'memory' }` (collects
 * garbage, then reports RSS and resets the peak), `{ type: 'peak' }`, `{ type: 'close' }`.
 * Messages out: `{ type: 'ready', url }`, `{ type: 'memory', rss }`, `{ type: 'peak', rss }`,
 * `{ type: 'closed' }`, `{ type: 'error', message }`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { generateSignerKey, openFileStore, parseSignerKey, type AuditStore } from '../../src/audit/index.js';
import { loadConfigOrThrow } from '../../src/config/index.js';
import { createIdentity } from '../../src/identity/index.js';
import { compilePolicy } from '../../src/policy/index.js';
import { startHttpGateway, type HttpGateway } from '../../src/proxy/http/index.js';
import { CLIENT_SECRET, DB_TOKEN_KEY, DEFAULT_POLICY_YAML, SESSION_KEY, gatewayYaml } from './http-gateway.js';

export interface ChildGatewayOptions {
  readonly port: number;
  readonly issuer: string;
  readonly upstream: string;
}

type Message = { type: 'start'; options: ChildGatewayOptions } | { type: 'memory' } | { type: 'peak' } | { type: 'close' };

let gateway: HttpGateway | null = null;
let store: AuditStore | null = null;
let auditDir = '';
let peak = 0;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss());
}, 20);

function send(message: Record<string, unknown>): void {
  process.send?.(message);
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}

async function start(options: ChildGatewayOptions): Promise<void> {
  auditDir = mkdtempSync(join(tmpdir(), 'tollgate-child-audit-'));
  const keys = generateSignerKey('child.tollgate');
  const config = loadConfigOrThrow({
    file: join(auditDir, '..', 'child.yaml'),
    text: gatewayYaml({
      port: options.port,
      issuer: options.issuer,
      upstream: options.upstream,
      auditDir,
      signingKey: keys.signerKey,
      sessionKeys: [SESSION_KEY],
      trustedProxies: [],
      policyYaml: DEFAULT_POLICY_YAML,
      appendTimeout: '2s',
    }),
    env: { CLIENT_SECRET, DB_TOKEN_KEY, AUDIT_KEY: keys.signerKey },
    readFile: (path) => readFileSync(path, 'utf8'),
  });
  const identity = await createIdentity({ publicUrl: config.server.public_url, identity: config.identity });
  store = await openFileStore({ dir: config.audit.dir, logId: config.audit.log_id, signer: parseSignerKey(config.audit.signing_key) });
  gateway = await startHttpGateway({ config, policy: compilePolicy(config.policy), identity, audit: store, registry: new Registry() });
  send({ type: 'ready', url: gateway.url });
}

async function close(): Promise<void> {
  clearInterval(sampler);
  await gateway?.close();
  await store?.close();
  if (auditDir !== '') rmSync(auditDir, { recursive: true, force: true });
  send({ type: 'closed' });
  process.disconnect?.();
}

process.on('message', (message: Message) => {
  const run = async (): Promise<void> => {
    switch (message.type) {
      case 'start':
        return start(message.options);
      case 'memory':
        collect();
        peak = process.memoryUsage.rss();
        return send({ type: 'memory', rss: peak });
      case 'peak':
        return send({ type: 'peak', rss: Math.max(peak, process.memoryUsage.rss()) });
      case 'close':
        return close();
    }
  };
  run().catch((error: unknown) => send({ type: 'error', message: error instanceof Error ? error.stack ?? error.message : String(error) }));
});
