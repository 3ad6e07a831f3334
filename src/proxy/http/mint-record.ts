import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import * as z from 'zod';
import { auditPrincipal, type AuditEvent, type AuditStore } from '../../audit/index.js';
import { silentLogger, systemClock, type Clock, type Logger } from '../../core/index.js';

/**
 * The admin listener's endpoint that records a token minted by `tollgate token mint` while the
 * gateway holds the audit log (DESIGN.md §3): `POST` {@link MINT_RECORD_PATH} with
 * `Content-Type: application/json` and a {@link MintRecordRequest} of at most
 * {@link MINT_RECORD_MAX_BODY_BYTES}, and {@link MINT_RECORD_PROOF_HEADER}: a MAC of the body
 * under a key derived from the gateway's database-token key (`DbTokens.proveKeyHolder`), so only
 * holders of that key, who could mint offline anyway, can record a mint. The body carries the
 * token's facts (id, principal, times), never the token: the proof already says who sends it, so
 * the credential has no reason to cross a socket, even one that is not loopback. The gateway
 * appends `token.issued`, waits until it is durable and answers `201` with
 * {@link MintRecordResponse}, which names its audit log so that the CLI can tell it reached the
 * gateway that holds the log its config names; a refusal is a JSON {@link MintRecordError} and
 * records nothing.
 */
export const MINT_RECORD_PATH = '/tokens/issued';

/** The header that carries the body's key-holder proof (base64url HMAC-SHA256). */
export const MINT_RECORD_PROOF_HEADER = 'x-tollgate-key-proof';

/** A principal with a few hundred groups and the other fields fit with room to spare. */
export const MINT_RECORD_MAX_BODY_BYTES = 16_384;

/**
 * How far a token's issue time may be from the gateway's clock when it arrives. The CLI posts
 * right after minting; the window bounds how long a captured request could be replayed to a
 * gateway that restarted and so forgot the ids it recorded.
 */
export const MINT_RECORD_MAX_AGE_MS = 60_000;

/** Unexpired recorded token ids kept against replay; beyond that the endpoint answers `503`. */
const MAX_RECORDED_IDS = 10_000;

export const MINT_RECORD_METRIC = 'tollgate_admin_token_records_total';

/** The body the CLI sends: the minted token's facts, as `token.issued` records them. */
export interface MintRecordRequest {
  readonly token_id: string;
  readonly principal: { readonly subject: string; readonly email?: string; readonly groups: readonly string[] };
  /** ISO 8601 with milliseconds, UTC. */
  readonly issued_at: string;
  readonly expires_at: string;
  readonly reason?: string;
  readonly minted_by: { readonly os_user: string; readonly host: string; readonly pid: number };
}

/** The `201` answer: the `token.issued` record is durable at `seq` of the audit log `log_id`, which process `pid` holds. */
export interface MintRecordResponse {
  readonly seq: number;
  readonly token_id: string;
  readonly log_id: string;
  readonly pid: number;
}

/** Every way a request ends, as the metric counts it and refusals name it in `error`. */
export type MintRecordOutcome =
  | 'recorded'
  | 'unsupported-media-type'
  | 'too-large'
  | 'bad-request'
  | 'bad-proof'
  | 'expired'
  | 'stale'
  | 'replayed'
  | 'busy'
  | 'audit-unavailable'
  | 'closed';

/** The JSON body of every refusal. */
export interface MintRecordError {
  readonly error: Exclude<MintRecordOutcome, 'recorded'>;
  readonly message: string;
}

const requestSchema = z.strictObject({
  token_id: z.string().min(1).max(128),
  principal: z.strictObject({
    subject: z.string().min(1).max(1024),
    email: z.string().min(1).max(1024).optional(),
    groups: z.array(z.string().max(1024)).max(256),
  }),
  issued_at: z.iso.datetime(),
  expires_at: z.iso.datetime(),
  reason: z.string().max(1024).optional(),
  minted_by: z.strictObject({
    os_user: z.string().max(256),
    host: z.string().max(256),
    pid: z.int().positive(),
  }),
});

export interface MintRecorderDeps {
  /** The gateway's database tokens (`Identity.dbTokens`), for the key-holder proof. */
  readonly tokens: { verifyKeyHolder(message: string, proof: string): boolean };
  readonly audit: Pick<AuditStore, 'append'>;
  /** `audit.log_id`, given back in every `201`. */
  readonly logId: string;
  readonly registry: Registry;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** The endpoint as the admin listener mounts it. */
export interface MintRecorder {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** From now on every request is refused with `503` (`closed`): the gateway is stopping. */
  close(): void;
}

/** Builds the endpoint; its metric is registered on `deps.registry` (shared when already there). */
export function createMintRecorder(deps: MintRecorderDeps): MintRecorder {
  const clock = deps.clock ?? systemClock;
  const logger = (deps.logger ?? silentLogger).child({ component: 'mint-record' });
  const outcomes =
    (deps.registry.getSingleMetric(MINT_RECORD_METRIC) as Counter<'outcome'> | undefined) ??
    new Counter({
      name: MINT_RECORD_METRIC,
      help: 'Requests to record a token minted by `tollgate token mint` on the admin listener, by outcome.',
      labelNames: ['outcome'] as const,
      registers: [deps.registry],
    });
  const recorded = new RecordedIds(MAX_RECORDED_IDS);
  let closed = false;

  const refuse = (res: ServerResponse, status: number, error: MintRecordError['error'], message: string, remote: string): void => {
    outcomes.labels(error).inc();
    logger.warn({ outcome: error, remote }, 'minted token not recorded');
    sendJson(res, status, { error, message } satisfies MintRecordError);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const remote = req.socket.remoteAddress ?? 'unknown';
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (closed) return refuse(res, 503, 'closed', 'the gateway is stopping; mint again once it runs, or offline once it has stopped', remote);
    const type = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      return refuse(res, 415, 'unsupported-media-type', 'send the body as application/json', remote);
    }
    const body = await readBoundedBody(req, MINT_RECORD_MAX_BODY_BYTES);
    if (body === 'aborted') return;
    if (body === 'too-large') {
      res.shouldKeepAlive = false;
      return refuse(res, 413, 'too-large', `the body may be at most ${MINT_RECORD_MAX_BODY_BYTES} bytes`, remote);
    }
    const proof = req.headers[MINT_RECORD_PROOF_HEADER];
    if (typeof proof !== 'string' || !deps.tokens.verifyKeyHolder(body.toString('utf8'), proof)) {
      return refuse(res, 403, 'bad-proof', "the request carries no valid proof that its sender holds this gateway's database-token key; mint with the gateway's own config", remote);
    }
    const parsed = parseRequest(body);
    if (parsed === null) {
      return refuse(res, 400, 'bad-request', 'the body must be a JSON object {token_id, principal: {subject, email?, groups}, issued_at, expires_at, minted_by: {os_user, host, pid}, reason?}', remote);
    }
    const claims = { tokenId: parsed.token_id, principal: parsed.principal, issuedAt: Date.parse(parsed.issued_at), expiresAt: Date.parse(parsed.expires_at) };
    if (claims.expiresAt <= claims.issuedAt) return refuse(res, 400, 'bad-request', 'expires_at must be later than issued_at', remote);
    const now = clock.now();
    if (claims.expiresAt <= now) return refuse(res, 403, 'expired', 'the token has expired', remote);
    if (Math.abs(now - claims.issuedAt) > MINT_RECORD_MAX_AGE_MS) {
      return refuse(res, 403, 'stale', `the token was issued more than ${MINT_RECORD_MAX_AGE_MS / 1000}s from this gateway's clock; mint a fresh one (and check both clocks)`, remote);
    }
    const claim = recorded.claim(claims.tokenId, claims.expiresAt, now);
    if (claim === 'replayed') return refuse(res, 403, 'replayed', 'a token with this id was already recorded', remote);
    if (claim === 'full') return refuse(res, 503, 'busy', 'too many unexpired minted tokens were recorded; retry later', remote);

    let seq: number;
    try {
      ({ seq } = await deps.audit.append(tokenIssuedEvent(parsed, claims, remote)));
    } catch (error) {
      // Nothing was recorded, so the id may be presented again once the store recovers.
      recorded.release(claims.tokenId);
      logger.error({ err: error, token_id: claims.tokenId }, 'could not record a minted token');
      return refuse(res, 503, 'audit-unavailable', 'the audit log could not make the token.issued record durable; the token must not be used', remote);
    }
    outcomes.labels('recorded').inc();
    logger.info({ token_id: claims.tokenId, subject: claims.principal.subject, seq, remote }, 'minted token recorded');
    sendJson(res, 201, { seq, token_id: claims.tokenId, log_id: deps.logId, pid: process.pid } satisfies MintRecordResponse);
  };

  return {
    handle,
    close: () => {
      closed = true;
    },
  };
}

interface MintedClaims {
  readonly tokenId: string;
  readonly principal: MintRecordRequest['principal'];
  readonly issuedAt: number;
  readonly expiresAt: number;
}

/** `token.issued` as the offline `tollgate token mint` writes it, plus where it came through. */
function tokenIssuedEvent(request: MintRecordRequest, claims: MintedClaims, remote: string): AuditEvent {
  return {
    kind: 'token.issued',
    principal: auditPrincipal(claims.principal),
    data: {
      method: 'cli',
      token_id: claims.tokenId,
      issued_at: new Date(claims.issuedAt).toISOString(),
      expires_at: new Date(claims.expiresAt).toISOString(),
      minted_by: { os_user: request.minted_by.os_user, host: request.minted_by.host, pid: request.minted_by.pid },
      ...(request.reason === undefined ? {} : { reason: request.reason }),
      via: 'admin-listener',
      remote,
    },
  };
}

function parseRequest(body: Buffer): MintRecordRequest | null {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  const result = requestSchema.safeParse(value);
  return result.success ? result.data : null;
}

/**
 * Token ids recorded through this endpoint, each kept until its token expires: after that the
 * token is worthless and a replay would be refused as expired anyway.
 */
class RecordedIds {
  readonly #expiries = new Map<string, number>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Takes `id` before its record is appended, so that a concurrent replay is refused too. */
  claim(id: string, expiresAt: number, now: number): 'claimed' | 'replayed' | 'full' {
    if (this.#expiries.has(id)) return 'replayed';
    if (this.#expiries.size >= this.#max) {
      for (const [known, expiry] of this.#expiries) if (expiry <= now) this.#expiries.delete(known);
      // Evicting a live id would let its token be recorded twice: refuse instead.
      if (this.#expiries.size >= this.#max) return 'full';
    }
    this.#expiries.set(id, expiresAt);
    return 'claimed';
  }

  release(id: string): void {
    this.#expiries.delete(id);
  }
}

/** The whole body, unless it grows past `max` (declared or sent) or the client goes away first. */
function readBoundedBody(req: IncomingMessage, max: number): Promise<Buffer | 'too-large' | 'aborted'> {
  if (Number(req.headers['content-length'] ?? 0) > max) return Promise.resolve('too-large');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (value: Buffer | 'too-large' | 'aborted'): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onAbort);
      if (!Buffer.isBuffer(value)) req.pause();
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) finish('too-large');
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(Buffer.concat(chunks));
    const onAbort = (): void => finish('aborted');
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onAbort);
  });
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  if (res.destroyed) return;
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...(res.shouldKeepAlive ? {} : { connection: 'close' }),
  });
  res.end(body);
}
