/**
 * The audit review pages on a real gateway, for the web integration and browser tests: the
 * gateway harness (real IdP, upstream, audit file store) with the pages mounted at `/audit`,
 * and Postgres sessions recorded as the Postgres gateway records them (its own event builders,
 * statements classified by the real SQL parser, decided by the real policy).
 */
import { randomBytes } from 'node:crypto';
import { indexSecretFromSignerKey, type AuditStore } from '../../src/audit/index.js';
import type { Clock, Principal } from '../../src/core/index.js';
import { LivePolicy, compilePolicy, decide, type CompiledPolicy } from '../../src/policy/index.js';
import { connectEvent, disconnectEvent, queryEvent, resultEvent, type SessionFacts } from '../../src/proxy/postgres/audit-events.js';
import type { GatewayRoute } from '../../src/proxy/http/index.js';
import { loadSqlClassifier, type SqlClassifier } from '../../src/sql/index.js';
import { createAuditPages, type AuditPages, type AuditPagesOptions } from '../../src/web/index.js';
import { ALICE, BOB, startGatewayHarness, type GatewayHarness } from './http-gateway.js';
import type { IdpUser } from './oidc-idp.js';

/** Reviews and exports the audit log. */
export const CAROL: IdpUser = { email: 'carol@example.com', password: 'carol', groups: ['security'] };
/** Reviews the audit log but may not export it. */
export const VICTOR: IdpUser = { email: 'victor@example.com', password: 'victor', groups: ['auditors'] };

/** Roles of CAROL's group (view and export) and VICTOR's (view only), as `roles:` entries. */
export const REVIEWER_ROLES_YAML = `  security:
    allow:
      - audit: [view, export]
  auditor:
    allow:
      - audit: [view]
`;

export const AUDIT_POLICY_YAML = `
roles:
  engineer:
    allow:
      - resource: app
        methods: [GET, HEAD, POST]
        paths: ["/app/**"]
      - resource: shop
        logins: [reader]
        statements: [read]
    deny:
      - resource: app
        paths: ["/app/admin/**"]
${REVIEWER_ROLES_YAML}grants:
  - role: engineer
    groups: [engineering]
  - role: security
    groups: [security]
  - role: auditor
    groups: [auditors]
`;

export interface WebAuditHarness {
  readonly h: GatewayHarness;
  readonly pages: AuditPages;
  /** The policy the pages started with. */
  readonly policy: CompiledPolicy;
  /** The policy the pages decide by, as a config reload replaces it. */
  readonly livePolicy: LivePolicy;
  close(): Promise<void>;
}

export interface WebAuditOptions {
  /** Chain monitor timings (tests use short intervals). */
  readonly chain?: AuditPagesOptions['chain'];
  /** The gateway's and the pages' clock (sessions, bearer expiry). */
  readonly clock?: Clock;
  readonly tailAccessCheckMs?: number;
  /** IdP users besides alice, bob, carol and victor. */
  readonly users?: readonly IdpUser[];
}

/** The gateway with the pages mounted. */
export async function startWebAudit(options: WebAuditOptions = {}): Promise<WebAuditHarness> {
  // The gateway takes its routes when it starts; the pages need the store and config it builds.
  let pages: AuditPages | null = null;
  const route: GatewayRoute = {
    path: '/audit',
    handle: (request) => {
      if (pages === null) throw new Error('the audit pages are not mounted yet');
      return pages.route.handle(request);
    },
  };
  const h = await startGatewayHarness({ users: [ALICE, BOB, CAROL, VICTOR, ...(options.users ?? [])], policyYaml: AUDIT_POLICY_YAML, routes: [route], ...(options.clock === undefined ? {} : { clock: options.clock }) });
  try {
    const policy = compilePolicy(h.config.policy);
    const livePolicy = new LivePolicy(policy);
    const created = await createAuditPages({
      dir: h.config.audit.dir,
      logId: h.config.audit.log_id,
      verifierKeys: [h.auditVerifierKey],
      // As the gateway wires it (src/cli/gateway.ts): index files authenticated by the signing key.
      indexSecret: indexSecretFromSignerKey(h.config.audit.signing_key),
      policy: livePolicy,
      store: h.store,
      tailPollMs: 50,
      ...(options.chain === undefined ? {} : { chain: options.chain }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.tailAccessCheckMs === undefined ? {} : { tailAccessCheckMs: options.tailAccessCheckMs }),
    });
    pages = created;
    return {
      h,
      pages: created,
      policy,
      livePolicy,
      async close() {
        await created.close();
        await h.close();
      },
    };
  } catch (error) {
    await h.close();
    throw error;
  }
}

let classifier: Promise<SqlClassifier> | null = null;

export interface RecordedPgSession {
  readonly sessionId: string;
  /** Seq of each statement's `pg.query` record, in order. */
  readonly querySeqs: readonly number[];
  readonly connectSeq: number;
}

/**
 * Records one Postgres session of `principal` on resource `shop` (login `reader`) as the
 * Postgres gateway does: `pg.connect`, each statement's `pg.query` with the policy's decision and
 * (when allowed) its `pg.result`, then `pg.disconnect`.
 */
export async function recordPgSession(store: AuditStore, policy: CompiledPolicy, principal: Principal, statements: readonly string[]): Promise<RecordedPgSession> {
  classifier ??= loadSqlClassifier();
  const sql = await classifier;
  const session: SessionFacts = { sessionId: randomBytes(8).toString('hex'), principal, resource: 'shop', login: 'reader', remote: '127.0.0.1' };
  const { seq: connectSeq } = await store.append(
    connectEvent({ session, auth: 'db-token', tokenId: 'test-token', upstreamUser: 'shop_reader', database: 'shop', tls: null, upstreamTls: false, upstreamPid: 4242, applicationName: 'psql' }),
  );
  const querySeqs: number[] = [];
  let denied = 0;
  for (const text of statements) {
    const classified = sql.classify(text);
    if (!classified.ok) throw new Error(`the test statement does not parse: ${text}`);
    const statement = classified.statements[0]!;
    const decision = decide(policy, principal, { kind: 'sql', resource: 'shop', login: 'reader', statement });
    const { seq } = await store.append(queryEvent({ session, decision, protocol: 'simple', statement }));
    querySeqs.push(seq);
    if (decision.effect === 'deny') {
      denied += 1;
      continue;
    }
    await store.append(resultEvent({ session, ref: seq, status: 'ok', commandTag: `${statement.command} 1`, rows: 1, sqlstate: undefined, durationMs: 3, copyBytes: undefined }));
  }
  await store.append(
    disconnectEvent({ session, ref: connectSeq, durationMs: 40, statements: statements.length, denied, bytesIn: 100, bytesOut: 200, closedBy: 'client', reason: undefined }),
  );
  return { sessionId: session.sessionId, querySeqs, connectSeq };
}

/** The principal the gateway establishes for a test IdP user. */
export function principalOf(user: IdpUser): Principal {
  return { subject: user.sub ?? `sub-${user.email.split('@')[0] ?? ''}`, email: user.email, groups: [...(user.groups ?? [])] };
}

/** Waits until the pages' chain monitor has verified a checkpoint of more than `records` records. */
export async function waitForVerified(pages: AuditPages, records: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((pages.chainStatus().verified?.size ?? 0) <= records) {
    if (Date.now() > deadline) throw new Error(`the chain monitor did not verify ${records + 1} records in ${timeoutMs} ms: ${JSON.stringify(pages.chainStatus())}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
