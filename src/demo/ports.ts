import { createServer } from 'node:net';
import { TollgateError } from '../core/index.js';

/** Every port the demo listens on, all on 127.0.0.1. */
export interface DemoPorts {
  /** The gateway's HTTP listener: login, the app under `/app/`, `/db`, `/audit`. */
  readonly web: number;
  /** The gateway's PostgreSQL listener. */
  readonly postgres: number;
  /** The gateway's admin listener: `/metrics`, `/healthz`, `/readyz`. */
  readonly admin: number;
  /** The demo OpenID Provider. */
  readonly idp: number;
  /** The demo web app (the upstream of the `app` resource). */
  readonly app: number;
  /** The embedded PostgreSQL server (the upstream of the `shop` resource). */
  readonly database: number;
}

/** The layout without `--port-base` (DESIGN.md §3 "The demo"). */
export const DEFAULT_DEMO_PORTS: DemoPorts = Object.freeze({ web: 8080, postgres: 6432, admin: 9090, idp: 9091, app: 9092, database: 9093 });

/** What each port is for, in the words of the banner and of error messages. */
export const DEMO_PORT_ROLES: Readonly<Record<keyof DemoPorts, string>> = Object.freeze({
  web: 'gateway web',
  postgres: 'gateway Postgres',
  admin: 'gateway admin',
  idp: 'demo IdP',
  app: 'demo app',
  database: 'embedded PostgreSQL',
});

/** The number of consecutive ports `--port-base N` takes: N to N+5. */
export const DEMO_PORT_COUNT = 6;

/**
 * The port layout: the defaults, or with a base N the six consecutive ports web = N,
 * postgres = N+1, admin = N+2, IdP = N+3, app = N+4, embedded PostgreSQL = N+5.
 *
 * @throws TollgateError `TG_ERR_USAGE` when the base leaves no room for six ports.
 */
export function demoPorts(portBase?: number): DemoPorts {
  if (portBase === undefined) return DEFAULT_DEMO_PORTS;
  const last = 65_535 - (DEMO_PORT_COUNT - 1);
  if (!Number.isSafeInteger(portBase) || portBase < 1 || portBase > last) {
    throw new TollgateError('TG_ERR_USAGE', `--port-base must be a whole number from 1 to ${last} (the demo uses it and the next ${DEMO_PORT_COUNT - 1} ports); got ${String(portBase)}`);
  }
  return Object.freeze({
    web: portBase,
    postgres: portBase + 1,
    admin: portBase + 2,
    idp: portBase + 3,
    app: portBase + 4,
    database: portBase + 5,
  });
}

/** One port that cannot be listened on, and why (`EADDRINUSE`, `EACCES`, ...). */
export interface BusyPort {
  readonly role: keyof DemoPorts;
  readonly port: number;
  readonly code: string;
}

/**
 * The ports of `ports` that cannot be listened on at 127.0.0.1 right now. Checked before anything
 * starts, so that a taken port is reported at once rather than after the database has started;
 * a port taken between this check and the real listen is still reported by that listen.
 */
export async function findBusyPorts(ports: DemoPorts): Promise<BusyPort[]> {
  const roles = Object.keys(ports) as (keyof DemoPorts)[];
  const outcomes = await Promise.all(roles.map(async (role) => ({ role, port: ports[role], code: await tryListen(ports[role]) })));
  return outcomes.filter((outcome): outcome is BusyPort => outcome.code !== null);
}

/** `null` when 127.0.0.1:`port` could be bound (and was released again), else the error code. */
function tryListen(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'EUNKNOWN'));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(null)));
  });
}
