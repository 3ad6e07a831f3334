import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The Postgres gateway's Prometheus metrics, registered on the injected registry. Names are part
 * of the operator's contract (dashboards, alerts): the README lists them. They carry their own
 * `tollgate_pg_` prefix, so the HTTP gateway's metrics on the same registry never collide.
 */
export const PG_METRIC_NAMES = {
  connections: 'tollgate_pg_open_connections',
  sessions: 'tollgate_pg_sessions_total',
  statements: 'tollgate_pg_statements_total',
  authFailures: 'tollgate_pg_auth_failures_total',
  auditAppend: 'tollgate_pg_audit_append_duration_seconds',
  auditFailures: 'tollgate_pg_audit_append_failures_total',
  protocolErrors: 'tollgate_pg_protocol_errors_total',
} as const;

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

/** Handles on the metrics; label children are cached, since prom-client hashes labels per call. */
export class PgMetrics {
  /** Client connections open on the Postgres listener, in startup or in session. */
  readonly connections: Gauge;
  readonly sessions: Counter<'resource' | 'login'>;
  readonly statements: Counter<'resource' | 'decision'>;
  readonly authFailures: Counter<'reason'>;
  readonly auditAppend: Histogram;
  readonly auditFailures: Counter<'kind'>;
  readonly protocolErrors: Counter<'side'>;
  readonly #statementChildren = new Map<string, { inc(): void }>();

  constructor(registry: Registry) {
    this.connections =
      existing(registry, PG_METRIC_NAMES.connections) ??
      new Gauge({ name: PG_METRIC_NAMES.connections, help: 'Client connections open on the Postgres listener.', registers: [registry] });
    this.sessions =
      existing(registry, PG_METRIC_NAMES.sessions) ??
      new Counter({
        name: PG_METRIC_NAMES.sessions,
        help: 'Postgres sessions established through the gateway, by resource and upstream login.',
        labelNames: ['resource', 'login'] as const,
        registers: [registry],
      });
    this.statements =
      existing(registry, PG_METRIC_NAMES.statements) ??
      new Counter({
        name: PG_METRIC_NAMES.statements,
        help: 'SQL statements decided by the Postgres gateway, by resource and decision.',
        labelNames: ['resource', 'decision'] as const,
        registers: [registry],
      });
    this.authFailures =
      existing(registry, PG_METRIC_NAMES.authFailures) ??
      new Counter({
        name: PG_METRIC_NAMES.authFailures,
        help: 'Refused Postgres logins, by reason.',
        labelNames: ['reason'] as const,
        registers: [registry],
      });
    this.auditAppend =
      existing(registry, PG_METRIC_NAMES.auditAppend) ??
      new Histogram({
        name: PG_METRIC_NAMES.auditAppend,
        help: 'Time a statement waited for its pg.query audit record to become durable.',
        buckets: [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1, 2],
        registers: [registry],
      });
    this.auditFailures =
      existing(registry, PG_METRIC_NAMES.auditFailures) ??
      new Counter({
        name: PG_METRIC_NAMES.auditFailures,
        help: 'Audit appends of the Postgres gateway that failed, by record kind (statements were refused).',
        labelNames: ['kind'] as const,
        registers: [registry],
      });
    this.protocolErrors =
      existing(registry, PG_METRIC_NAMES.protocolErrors) ??
      new Counter({
        name: PG_METRIC_NAMES.protocolErrors,
        help: 'Connections closed for a protocol violation, by the side that committed it.',
        labelNames: ['side'] as const,
        registers: [registry],
      });
  }

  countStatement(resource: string, decision: 'allow' | 'deny'): void {
    const key = `${resource}\n${decision}`;
    let child = this.#statementChildren.get(key);
    if (child === undefined) {
      child = this.statements.labels(resource, decision);
      this.#statementChildren.set(key, child);
    }
    child.inc();
  }
}
