import { splitHostPort, type TollgateConfig } from '../config/index.js';
import { TollgateError } from '../core/index.js';
import { MINT_RECORD_PATH, MINT_RECORD_PROOF_HEADER, type MintRecordError, type MintRecordRequest, type MintRecordResponse } from '../proxy/http/index.js';

/** Extra time over `audit.append_timeout` for the round trip and the gateway's own checks. */
const ROUND_TRIP_ALLOWANCE_MS = 10_000;

/**
 * Asks the gateway that holds the audit log (`locked` says so) to record a freshly minted token
 * as `token.issued`, through `POST /tokens/issued` on its admin listener; `prove` signs the body
 * with the database-token key (`DbTokens.proveKeyHolder`), which is what lets the gateway accept
 * it. Resolves with the durable record's seq once the answer shows it comes from the process
 * that holds this config's audit log. Throws when the record was not made, so that the token is
 * never printed: `TG_ERR_AUDIT_UNAVAILABLE` (the gateway's audit log failed),
 * `TG_ERR_MINT_REFUSED` (the gateway refused, or another gateway answered),
 * `TG_ERR_AUDIT_LOCKED` (no gateway answered on `server.admin.listen`).
 */
export async function recordMintThroughGateway(config: TollgateConfig, request: MintRecordRequest, locked: TollgateError, prove: (body: string) => string): Promise<number> {
  const { host, port } = splitHostPort(config.server.admin.listen);
  const holderPid = typeof locked.details['pid'] === 'number' ? locked.details['pid'] : null;
  const holder = holderPid === null ? 'another process' : `process ${holderPid}`;
  // Never "remove the lock": the store takes over a lock whose process is gone by itself, so a
  // lock that stands is held by a live writer, and a second writer would fork the hash chain.
  const unreachable = (why: string, cause?: unknown): TollgateError =>
    new TollgateError(
      'TG_ERR_AUDIT_LOCKED',
      `the audit log ${config.audit.dir} is held by ${holder}, and ${why}, so the token could not be recorded and was not printed. ` +
        'If that process is a gateway, make server.admin.listen in this config its admin address and mint again; ' +
        'if it is another tollgate command (an offline mint, audit verify), wait for it to finish and mint again',
      { cause, details: { ...locked.details, admin: config.server.admin.listen } },
    );
  if (port === 0) throw unreachable(`server.admin.listen (${config.server.admin.listen}) names no fixed port to reach its admin listener on`);
  const url = `http://${formatHost(host)}:${port}${MINT_RECORD_PATH}`;
  const body = JSON.stringify(request);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [MINT_RECORD_PROOF_HEADER]: prove(body) },
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(config.audit.append_timeout + ROUND_TRIP_ALLOWANCE_MS),
    });
  } catch (error) {
    throw unreachable(`its admin listener at ${url} did not answer (${describeFetchError(error)})`, error);
  }
  const text = await response.text().catch(() => '');
  if (response.status === 201) {
    const body = parseJson(text) as Partial<MintRecordResponse> | null;
    if (typeof body?.seq !== 'number') throw unreachable(`${url} answered 201 without a record seq (is it a Tollgate admin listener?)`);
    if (body.log_id !== config.audit.log_id || (holderPid !== null && body.pid !== holderPid)) {
      // Another gateway with the same database-token key (a second instance, or a port that
      // moved): the record is in its log, not in the one this config names.
      throw new TollgateError(
        'TG_ERR_MINT_REFUSED',
        `the gateway that answered at ${url} (audit log ${String(body.log_id)}, process ${String(body.pid)}) is not the one holding ${config.audit.dir} ` +
          `(audit log ${config.audit.log_id}, ${holder}); it recorded the token as its seq ${body.seq}, but the token was not printed. ` +
          'Make server.admin.listen in this config the admin address of the gateway that uses this audit.dir, and mint again',
        { details: { url, log_id: body.log_id ?? null, pid: body.pid ?? null } },
      );
    }
    return body.seq;
  }
  const refusal = parseJson(text) as Partial<MintRecordError> | null;
  const said = typeof refusal?.message === 'string' ? `: ${refusal.message}` : '';
  if (response.status === 503) {
    throw new TollgateError(
      'TG_ERR_AUDIT_UNAVAILABLE',
      `the running gateway could not record token.issued (${refusal?.error ?? 'status 503'}${said}); no token was printed. ` +
        "Check the gateway's /readyz and its audit volume, then mint again",
      { details: { url, status: response.status } },
    );
  }
  if (response.status === 404) {
    throw unreachable(`${url} does not record minted tokens (a gateway without identity.db_tokens.signing_key, or not a Tollgate gateway)`);
  }
  throw new TollgateError('TG_ERR_MINT_REFUSED', `the running gateway refused to record the token (${response.status} ${refusal?.error ?? ''}${said}); no token was printed. ${refusalHint(refusal?.error)}`, {
    details: { url, status: response.status, error: refusal?.error },
  });
}

function refusalHint(error: MintRecordError['error'] | undefined): string {
  switch (error) {
    case 'bad-proof':
      return "This config's identity.db_tokens.signing_key differs from the running gateway's: mint with the gateway's own config";
    case 'stale':
    case 'expired':
      return "This machine's clock and the gateway's disagree: fix the clock, then mint again";
    default:
      return 'Mint again; if it keeps failing, report it with the gateway log line';
  }
}

/** The address to connect to for a listen host: a wildcard listener is reached on loopback. */
function formatHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (error instanceof Error && error.name === 'TimeoutError') return 'timed out';
  return error instanceof Error ? error.message : String(error);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
