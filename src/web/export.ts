import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { exportLog, type AuditEvent, type AuditValue, type ExportFormat, type RecordFilter } from '../audit/index.js';
import type { Logger } from '../core/index.js';
import type { Decision } from '../policy/index.js';
import type { AuditCaller, AuditRouteRequest } from './route.js';
import { PAGE_HEADERS } from './respond.js';

/**
 * `/audit/export?format=jsonl|ocsf&<filter>`: the records the filter selects, oldest first, as a
 * download (`exportLog`, what `tollgate audit export` prints). Exporting is itself audited: an
 * `http.request` record with the decision and the export's format and filter is made durable
 * before a byte is sent (the decision before audit before answer of DESIGN.md §2), and an
 * `http.response` record with the bytes sent and the duration follows it.
 */

export const EXPORT_PATH = '/audit/export';

function principalOf(caller: AuditCaller): AuditEvent['principal'] {
  const { principal } = caller;
  return principal.email === undefined ? { subject: principal.subject, groups: principal.groups } : { subject: principal.subject, email: principal.email, groups: principal.groups };
}

/** The filter as recorded: the selection itself, with times in RFC 3339. */
function recordedFilter(filter: RecordFilter): { readonly [key: string]: AuditValue | undefined } {
  const time = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    user: filter.user,
    resource: filter.resource,
    effect: filter.effect,
    kind: filter.kind === undefined ? undefined : typeof filter.kind === 'string' ? [filter.kind] : [...filter.kind],
    session_id: filter.sessionId,
    since: time(filter.since),
    until: time(filter.until),
    text: filter.text,
  };
}

/** `http.request` for an export: who asked for what, and the decision. */
export function exportRequestEvent(request: AuditRouteRequest, caller: AuditCaller, decision: Decision, format: ExportFormat, filter: RecordFilter): AuditEvent {
  return {
    kind: 'http.request',
    principal: principalOf(caller),
    decision: { effect: decision.effect, rule: decision.rule, reason: decision.reason },
    request_id: request.requestId,
    ...(caller.sessionRef === undefined ? {} : { session_id: caller.sessionRef }),
    data: {
      method: request.req.method ?? 'GET',
      path: request.path,
      host: request.req.headers.host,
      remote: request.client.remote,
      user_agent: request.client.userAgent,
      auth: caller.auth,
      token_id: caller.tokenId,
      export: { format, filter: recordedFilter(filter) },
    },
  };
}

function responseEvent(request: AuditRouteRequest, caller: AuditCaller, ref: number, outcome: { status: number; bytes: number; durationMs: number; error: string | undefined }): AuditEvent {
  return {
    kind: 'http.response',
    principal: principalOf(caller),
    request_id: request.requestId,
    ...(caller.sessionRef === undefined ? {} : { session_id: caller.sessionRef }),
    ref,
    data: { status: outcome.status, bytes_in: 0, bytes_out: outcome.bytes, duration_ms: Math.round(outcome.durationMs), error: outcome.error },
  };
}

function fileName(logId: string, format: ExportFormat, now: number): string {
  const stem = logId.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'audit';
  const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  return `${stem}-${stamp}.${format === 'ocsf' ? 'ocsf.jsonl' : 'jsonl'}`;
}

export interface StreamExportOptions {
  readonly dir: string;
  readonly logId: string;
  readonly format: ExportFormat;
  readonly filter: RecordFilter;
  readonly productVersion?: string;
  readonly now: number;
  readonly logger?: Logger;
}

/**
 * Streams the export of an allowed request whose `http.request` record is `seq`, honouring
 * backpressure and stopping when the client goes away; then records the outcome. A failure in
 * the middle (a damaged record) ends the response without its final chunk, so the download is
 * visibly incomplete rather than silently short.
 */
export async function streamExport(request: AuditRouteRequest, caller: AuditCaller, seq: number, options: StreamExportOptions): Promise<void> {
  const { res } = request;
  const started = performance.now();
  res.writeHead(200, {
    ...PAGE_HEADERS,
    'content-type': 'application/x-ndjson; charset=utf-8',
    'content-disposition': `attachment; filename="${fileName(options.logId, options.format, options.now)}"`,
  });
  let bytes = 0;
  let error: string | undefined;
  let gone = false;
  res.once('close', () => {
    gone = !res.writableFinished;
  });
  const lines = exportLog({
    dir: options.dir,
    format: options.format,
    ...options.filter,
    ...(options.productVersion === undefined ? {} : { productVersion: options.productVersion }),
  });
  try {
    for await (const chunk of lines) {
      if (gone || res.destroyed) break;
      bytes += Buffer.byteLength(chunk);
      if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
    if (gone || res.destroyed) error = 'client-closed';
    else res.end();
  } catch (failure) {
    error = failure instanceof Error ? failure.message : String(failure);
    options.logger?.error({ err: failure, req: request.requestId }, 'audit export failed');
    res.destroy();
  }
  await request.record(responseEvent(request, caller, seq, { status: 200, bytes, durationMs: performance.now() - started, error })).catch((failure: unknown) => {
    options.logger?.error({ err: failure, req: request.requestId }, 'could not record the end of an audit export');
  });
}
