import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The gateway's Prometheus metrics, registered on the injected registry. Names are part of the
 * operator's contract (dashboards, alerts): the README lists them.
 */
export const METRIC_NAMES = {
  requests: 'tollgate_http_requests_total',
  auditAppend: 'tollgate_audit_append_duration_seconds',
  auditAppendFailures: 'tollgate_audit_append_failures_total',
  openConnections: 'tollgate_http_open_connections',
  inFlight: 'tollgate_http_in_flight_requests',
  webSocketSessions: 'tollgate_websocket_sessions',
  authFailures: 'tollgate_auth_failures_total',
  cliLoginRefusals: 'tollgate_cli_login_refusals_total',
} as const;

/** Handles on the gateway's metrics. */
export class GatewayMetrics {
  /** Requests answered, by resource (`-` for the gateway's own routes), decision and status. */
  readonly requests: Counter<'resource' | 'decision' | 'status'>;
  /** Time from `append()` to durable, by record kind. */
  readonly auditAppend: Histogram<'kind'>;
  readonly auditAppendFailures: Counter<'kind'>;
  readonly openConnections: Gauge;
  readonly inFlight: Gauge;
  readonly webSocketSessions: Gauge<'resource'>;
  readonly authFailures: Counter<'method' | 'reason'>;
  /** `tollgate login` requests refused for want of room: too many grants pending from one network, or in all. */
  readonly cliLoginRefusals: Counter<'reason'>;
  /** Label children by joined label values: prom-client hashes the labels on every call otherwise. */
  readonly #requestChildren = new Map<string, { inc(): void }>();
  readonly #appendChildren = new Map<string, { observe(value: number): void }>();

  constructor(registry: Registry) {
    this.requests = existing(registry, METRIC_NAMES.requests) ??
      new Counter({
        name: METRIC_NAMES.requests,
        help: 'HTTP requests and WebSocket handshakes answered by the gateway, by resource, policy decision and status code.',
        labelNames: ['resource', 'decision', 'status'] as const,
        registers: [registry],
      });
    this.auditAppend = existing(registry, METRIC_NAMES.auditAppend) ??
      new Histogram({
        name: METRIC_NAMES.auditAppend,
        help: 'Time from handing an audit record to the store until it is durable, by record kind.',
        labelNames: ['kind'] as const,
        buckets: [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1, 2],
        registers: [registry],
      });
    this.auditAppendFailures = existing(registry, METRIC_NAMES.auditAppendFailures) ??
      new Counter({
        name: METRIC_NAMES.auditAppendFailures,
        help: 'Audit appends that failed (the request was refused with 503 when it had not been forwarded).',
        labelNames: ['kind'] as const,
        registers: [registry],
      });
    this.openConnections = existing(registry, METRIC_NAMES.openConnections) ??
      new Gauge({ name: METRIC_NAMES.openConnections, help: 'Client connections open on the HTTP listener.', registers: [registry] });
    this.inFlight = existing(registry, METRIC_NAMES.inFlight) ??
      new Gauge({ name: METRIC_NAMES.inFlight, help: 'HTTP requests being handled (with the WebSocket sessions, bounded by max_concurrent_requests).', registers: [registry] });
    this.webSocketSessions = existing(registry, METRIC_NAMES.webSocketSessions) ??
      new Gauge({ name: METRIC_NAMES.webSocketSessions, help: 'WebSocket sessions being relayed, by resource.', labelNames: ['resource'] as const, registers: [registry] });
    this.authFailures = existing(registry, METRIC_NAMES.authFailures) ??
      new Counter({
        name: METRIC_NAMES.authFailures,
        help: 'Refused logins, bearer tokens, session cookies and refreshes, by method and reason.',
        labelNames: ['method', 'reason'] as const,
        registers: [registry],
      });
    this.cliLoginRefusals = existing(registry, METRIC_NAMES.cliLoginRefusals) ??
      new Counter({
        name: METRIC_NAMES.cliLoginRefusals,
        help: 'CLI sign-ins refused because too many were pending: device-client-limit (one client network), device-pending-limit or code-pending-limit (the whole gateway).',
        labelNames: ['reason'] as const,
        registers: [registry],
      });
  }

  countRequest(resource: string, decision: string, status: number): void {
    const key = `${resource}\n${decision}\n${status}`;
    let child = this.#requestChildren.get(key);
    if (child === undefined) {
      child = this.requests.labels(resource, decision, String(status));
      this.#requestChildren.set(key, child);
    }
    child.inc();
  }

  observeAppend(kind: string, seconds: number): void {
    let child = this.#appendChildren.get(kind);
    if (child === undefined) {
      child = this.auditAppend.labels(kind);
      this.#appendChildren.set(kind, child);
    }
    child.observe(seconds);
  }
}

/** A metric already registered under `name` (a second gateway on the same registry shares it). */
function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}
