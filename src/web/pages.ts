import { EXPORT_FORMATS, openAuditIndex, parseVerifierKey, type AuditIndex, type AuditStoreState, type ExportFormat, type NoteVerifier } from '../audit/index.js';
import { isTollgateError, silentLogger, systemClock, TollgateError, type Clock, type Logger } from '../core/index.js';
import { decide, policySource, type CompiledPolicy, type Decision, type PolicySource } from '../policy/index.js';
import { ASSETS_PATH, loadAuditAssets, type AuditAssets } from './assets.js';
import { renderChainBanner, type PublishedKey } from './chain-banner.js';
import { ChainMonitor, type ChainStatus } from './chain-monitor.js';
import { EXPORT_PATH, exportRequestEvent, streamExport } from './export.js';
import { parsePageQuery } from './filter.js';
import { html, type SafeHtml } from './html.js';
import { renderPage, type NavItem } from './layout.js';
import { ProofService } from './proofs.js';
import { send, sendHtml, sendJson, sendText } from './respond.js';
import type { AuditCaller, AuditRoute, AuditRouteRequest } from './route.js';
import { TailHub, type TailAccess, type TailReconnect, type TailRevocation } from './tail.js';
import { recordView, recordsView, sessionView, sessionsView, type ViewContext } from './views.js';

/**
 * The audit review pages at `/audit` (DESIGN.md §1 `web`), mounted by the HTTP gateway on its
 * public host:
 *
 * | path | permission | what |
 * |---|---|---|
 * | `/audit` | view | sessions, filtered and paginated |
 * | `/audit/sessions/<id>` | view | one session's records in order |
 * | `/audit/records`, `/audit/records/<seq>` | view | records, filtered; one record |
 * | `/audit/proof/<seq>` | view | the record's C2SP tlog-proof (text) |
 * | `/audit/tail` | view | new records as server-sent events |
 * | `/audit/status` | view | the chain status (JSON) |
 * | `/audit/verifier-key` | view | the log's verifier key (text) |
 * | `/audit/export?format=jsonl\|ocsf` | export | the filtered records as a download, audited; from another site, a page to confirm it first |
 * | `/audit/assets/…` | none | the stylesheet and script |
 *
 * Every page shows the chain status, which a background monitor keeps (see `chain-monitor`).
 * Pages are server-rendered; a small script adds in-browser proof checks and the live tail.
 */

export interface AuditPagesOptions {
  /** The audit directory (`audit.dir`). */
  readonly dir: string;
  /** The log id (`audit.log_id`), the origin of its checkpoints. */
  readonly logId: string;
  /**
   * Authenticates the query index files under `index/` of the audit directory: the gateway's
   * `indexSecretFromSignerKey(audit.signing_key)`. Without it the pages trust no index file and
   * index the log in memory when they start.
   */
  readonly indexSecret?: Uint8Array;
  /** Keys that sign the log's checkpoints, as verifier key text; the first is published on the pages. */
  readonly verifierKeys: readonly string[];
  /** Decides the `view` and `export` permissions; a {@link PolicySource} follows config reloads. */
  readonly policy: CompiledPolicy | PolicySource;
  /** The running store: the live tail asks it whether the log grew before looking. */
  readonly store?: { state(): Pick<AuditStoreState, 'size'> };
  /** Put in OCSF exports as `metadata.product.version`. */
  readonly productVersion?: string;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Chain monitor timings (see `ChainMonitor`); defaults suit production. */
  readonly chain?: { readonly pollMs?: number; readonly fullMinIntervalMs?: number; readonly fullDutyCycle?: number };
  /** How often the live tail looks for new records; default 500 ms. */
  readonly tailPollMs?: number;
  /** How often an idle live tail checks that its caller may still read the log; default 2 s. */
  readonly tailAccessCheckMs?: number;
}

export interface AuditPages {
  /** Mount it on the gateway (`startHttpGateway({ routes: [pages.route] })`). */
  readonly route: AuditRoute;
  /** The latest chain status, as the banner shows it. */
  chainStatus(): ChainStatus;
  /** Ends live tails, stops the chain monitor, closes the index. Call it before closing the gateway. */
  close(): Promise<void>;
}

export const AUDIT_PATH = '/audit';

/**
 * Loads the pages' assets (bundling the browser script when running from source), opens the
 * query index and starts the chain monitor. Throws `TG_ERR_AUDIT_KEY_INVALID` for a malformed
 * verifier key.
 */
export async function createAuditPages(options: AuditPagesOptions): Promise<AuditPages> {
  const verifiers = options.verifierKeys.map((text) => parseVerifierKey(text));
  const published = verifiers[0];
  if (published === undefined) throw new TollgateError('TG_ERR_USAGE', 'the audit pages need the verifier key of the audit log');
  const key: PublishedKey = { text: options.verifierKeys[0]!, label: `${published.name}+${published.keyId.toString(16).padStart(8, '0')}`, logId: options.logId };
  const assets = await loadAuditAssets();
  const index = await openAuditIndex({ dir: options.dir, ...(options.indexSecret === undefined ? {} : { indexSecret: options.indexSecret }) });
  const logger = (options.logger ?? silentLogger).child({ component: 'audit-pages' });
  const monitor = new ChainMonitor({ dir: options.dir, logId: options.logId, verifiers, index, logger, ...options.chain, ...(options.clock === undefined ? {} : { clock: options.clock }) });
  const tail = new TailHub({
    index,
    logger,
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(options.tailPollMs === undefined ? {} : { pollMs: options.tailPollMs }),
    ...(options.tailAccessCheckMs === undefined ? {} : { accessCheckMs: options.tailAccessCheckMs }),
  });
  const proofs = new ProofService({ dir: options.dir, verifiers });
  const pages = new Pages({ options, policy: policySource(options.policy), verifiers, key, assets, index, monitor, tail, proofs, logger, clock: options.clock ?? systemClock });
  monitor.start();
  return pages;
}

interface PagesSetup {
  readonly options: AuditPagesOptions;
  readonly policy: PolicySource;
  readonly verifiers: readonly NoteVerifier[];
  readonly key: PublishedKey;
  readonly assets: AuditAssets;
  readonly index: AuditIndex;
  readonly monitor: ChainMonitor;
  readonly tail: TailHub;
  readonly proofs: ProofService;
  readonly logger: Logger;
  readonly clock: Clock;
}

const SEQ = /^(0|[1-9][0-9]{0,15})$/;

/** When the caller's login ends, in ms since the epoch: the session's absolute expiry or the bearer token's `exp`. */
function loginExpiry(caller: AuditCaller): number | null {
  return (caller.auth === 'session' ? caller.session?.expiresAt : caller.bearer?.expiresAt) ?? null;
}

class Pages implements AuditPages {
  readonly #s: PagesSetup;
  readonly route: AuditRoute;

  constructor(setup: PagesSetup) {
    this.#s = setup;
    this.route = { path: AUDIT_PATH, handle: (request) => this.#handle(request) };
  }

  chainStatus(): ChainStatus {
    return this.#s.monitor.status();
  }

  async close(): Promise<void> {
    await Promise.all([this.#s.tail.close(), this.#s.monitor.close()]);
    await this.#s.index.close();
  }

  async #handle(request: AuditRouteRequest): Promise<void> {
    const { path, req } = request;
    const method = req.method ?? 'GET';
    if (path.startsWith(ASSETS_PATH)) return this.#asset(request);
    const streaming = path === '/audit/tail' || path === EXPORT_PATH;
    if (method !== 'GET' && !(method === 'HEAD' && !streaming)) {
      return this.#error(request, null, 405, 'method_not_allowed', 'Method not allowed', `${path} answers ${streaming ? 'GET' : 'GET and HEAD'} only.`, { allow: streaming ? 'GET' : 'GET, HEAD' });
    }
    const caller = await request.requireCaller();
    if (caller === null) return;
    if (path === EXPORT_PATH) return this.#export(request, caller);
    const view = decide(this.#s.policy.current(), caller.principal, { kind: 'audit', permission: 'view' });
    if (view.effect !== 'allow') return this.#forbidden(request, caller, view, 'view');
    try {
      await this.#route(request, caller);
    } catch (error) {
      if (isTollgateError(error, 'TG_ERR_USAGE')) return this.#error(request, caller, 400, 'bad_request', 'Bad request', error.message);
      throw error;
    }
  }

  async #route(request: AuditRouteRequest, caller: AuditCaller): Promise<void> {
    const { path } = request;
    const ctx = this.#viewContext(request, caller);
    if (path === AUDIT_PATH || path === `${AUDIT_PATH}/`) return sessionsView(ctx);
    if (path === '/audit/records') return recordsView(ctx);
    if (path === '/audit/status') return sendJson(request.res, 200, this.#s.monitor.status());
    if (path === '/audit/verifier-key') return this.#verifierKey(request, caller);
    if (path === '/audit/tail') return this.#tail(request, caller);
    const [, , section, tail, ...rest] = path.split('/');
    if (tail !== undefined && tail !== '' && rest.length === 0) {
      if (section === 'sessions') {
        let id: string;
        try {
          id = decodeURIComponent(tail);
        } catch {
          return ctx.problem(400, 'bad_request', 'Bad request', 'The session id in the path is not valid percent-encoding.');
        }
        return sessionView(ctx, id);
      }
      if (section === 'records' && SEQ.test(tail)) return recordView(ctx, Number(tail));
      if (section === 'proof' && SEQ.test(tail)) return this.#proof(request, caller, Number(tail));
    }
    return ctx.problem(404, 'not_found', 'Not found', `There is no audit page at ${path}.`);
  }

  #viewContext(request: AuditRouteRequest, caller: AuditCaller): ViewContext {
    const canExport = decide(this.#s.policy.current(), caller.principal, { kind: 'audit', permission: 'export' }).effect === 'allow';
    return {
      request,
      caller,
      index: this.#s.index,
      canExport,
      now: this.#s.clock.now(),
      page: (status, title, current, body) => this.#page(request, caller, status, title, current, body),
      json: (status, value) => sendJson(request.res, status, { ...value, chain: this.#s.monitor.status() }),
      problem: (status, error, title, message) => this.#error(request, caller, status, error, title, message),
    };
  }

  #page(request: AuditRouteRequest, caller: AuditCaller | null, status: number, title: string, current: NavItem | null, body: SafeHtml, banner = true): void {
    const frame = {
      title,
      assets: this.#s.assets,
      caller,
      current,
      banner: banner ? renderChainBanner(this.#s.monitor.status(), this.#s.key) : null,
      body,
    };
    sendHtml(request.res, status, renderPage(frame));
  }

  #error(request: AuditRouteRequest, caller: AuditCaller | null, status: number, error: string, title: string, message: string, headers: Record<string, string> = {}): void {
    if (!request.html) return sendJson(request.res, status, { error, message, request_id: request.requestId }, headers);
    const body = html`<h1>${title}</h1><p>${message}</p><p class="muted">Request id: <code>${request.requestId}</code></p>`;
    const frame = { title, assets: this.#s.assets, caller, current: null, banner: null, body };
    sendHtml(request.res, status, renderPage(frame), headers);
  }

  /** 403 with the decision's reason; the chain banner and navigation are withheld. */
  #forbidden(request: AuditRouteRequest, caller: AuditCaller, decision: Decision, permission: 'view' | 'export'): void {
    const message =
      permission === 'view'
        ? 'Reviewing the audit log needs the audit "view" permission, which none of your roles grants.'
        : 'Exporting audit records needs the audit "export" permission, which none of your roles grants.';
    if (!request.html) {
      return sendJson(request.res, 403, { error: 'forbidden', message, reason: decision.reason, request_id: request.requestId });
    }
    const body = html`<h1>Access denied</h1><p>${message}</p>
<p>If you review audit logs, ask for a role with <code>audit: [${permission}]</code> and quote the request id.</p>
<p class="muted">Reason: <code>${decision.reason}</code>${decision.rule === null ? '' : html` · rule <code>${decision.rule}</code>`} · Request id: <code>${request.requestId}</code></p>`;
    sendHtml(request.res, 403, renderPage({ title: 'Access denied', assets: this.#s.assets, caller, current: null, banner: null, body }));
  }

  #asset(request: AuditRouteRequest): void {
    const asset = this.#s.assets.find(request.path);
    const method = request.req.method ?? 'GET';
    if (asset === undefined) return sendText(request.res, 404, 'not found\n');
    if (method !== 'GET' && method !== 'HEAD') return sendText(request.res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
    // The name carries the content's hash, so the file never changes under its name.
    send(request.res, 200, asset.contentType, asset.body, { 'cache-control': 'public, max-age=31536000, immutable' });
  }

  #verifierKey(request: AuditRouteRequest, caller: AuditCaller): void {
    const { key } = this.#s;
    if (!request.html) return sendText(request.res, 200, `${key.text}\n`);
    this.#page(
      request,
      caller,
      200,
      'Verifier key',
      'key',
      html`<h1>Verifier key</h1>
<p>The checkpoints of the audit log <code>${key.logId}</code> are signed (C2SP signed-note, Ed25519) by the key <code>${key.label}</code>. Its verifier key:</p>
<pre class="key">${key.text}</pre>
<p>Check the whole log with it: <code>tollgate audit verify --dir &lt;audit dir&gt; --key ${key.label}.pub</code> (the file holding the line above). A proof file downloaded from a record checks with the same key. Compare it with the key you were given through another channel: a key taken from this page only proves what this gateway says.</p>`,
    );
  }

  async #proof(request: AuditRouteRequest, caller: AuditCaller, seq: number): Promise<void> {
    let text: string;
    try {
      text = await this.#s.proofs.prove(seq);
    } catch (error) {
      if (isTollgateError(error, 'TG_ERR_AUDIT_NOT_SIGNED')) return this.#error(request, caller, 409, 'not_signed', 'Not signed yet', error.message, { 'retry-after': '1' });
      if (isTollgateError(error, 'TG_ERR_AUDIT_TAMPERED')) return this.#error(request, caller, 409, 'tampered', 'No proof', error.message);
      if (isTollgateError(error, 'TG_ERR_AUDIT_UNAVAILABLE')) return this.#error(request, caller, 503, 'busy', 'Busy', error.message, { 'retry-after': '2' });
      throw error;
    }
    sendText(request.res, 200, text, { 'content-disposition': `inline; filename="record-${seq}.tlog-proof"` });
  }

  async #tail(request: AuditRouteRequest, caller: AuditCaller): Promise<void> {
    const parsed = parsePageQuery(request.query, this.#s.clock.now(), { fallback: 1, max: 1 });
    if (!parsed.ok) return this.#error(request, caller, 400, 'bad_filter', 'Bad filter', parsed.problems.join('; '));
    const params = new URLSearchParams(request.query.slice(1));
    // A reconnecting EventSource says where it got to (HTML Living Standard §9.2.4).
    const resume = request.req.headers['last-event-id'] ?? params.get('after') ?? '';
    const after = typeof resume === 'string' && /^(-1|0|[1-9][0-9]{0,15})$/.test(resume) ? Number(resume) : null;
    if (after === null) return this.#error(request, caller, 400, 'bad_request', 'Bad request', 'after must be the seq of the newest record the page shows (or -1).');
    const refusal = this.#s.tail.refusal(caller.principal.subject);
    if (refusal === 'full') return this.#error(request, caller, 503, 'busy', 'Busy', 'Too many live views are open; try again later.', { 'retry-after': '10' });
    if (refusal === 'viewer-limit') {
      return this.#error(request, caller, 429, 'too_many_live_views', 'Too many live views', 'You have as many live views open as one reviewer may; close one and try again.', { 'retry-after': '10' });
    }
    await this.#s.tail.subscribe(request.res, parsed.query.filter, after, this.#tailAccess(request, caller), caller.principal.subject);
  }

  /**
   * What an open live tail checks before each flush of records: the login has not ended (expiry,
   * logout), and the policy in force now (a reload may have replaced it) still grants `view`, by
   * the same `decide()` call that let the stream open. The groups the stream opened with hold
   * until the gateway would refresh the session; from then the stream ends for the EventSource
   * to reconnect, and the gateway's refresh decides with the groups the IdP says now.
   */
  #tailAccess(request: AuditRouteRequest, caller: AuditCaller): TailAccess {
    const { policy, clock } = this.#s;
    const expiresAt = loginExpiry(caller);
    const expired: TailRevocation =
      caller.auth === 'session'
        ? { reason: 'session-expired', message: 'Your session has expired, so the live view has stopped. Reload the page to sign in again.', detail: { expires_at: expiresAt } }
        : { reason: 'token-expired', message: 'Your bearer token has expired, so the live view has stopped. Open it again with a fresh token.', detail: { expires_at: expiresAt } };
    const loggedOut: TailRevocation = { reason: 'logged-out', message: 'You signed out, so the live view has stopped. Sign in again to resume it.', detail: {} };
    // A refresh moment already past means the gateway could not move it (an access token that
    // lives shorter than the refresh margin): reconnecting would not help, so it is not used.
    const refreshAt = caller.auth === 'session' && caller.refreshAt !== undefined && caller.refreshAt > clock.now() ? caller.refreshAt : null;
    const refresh: TailReconnect = { reconnect: true, reason: 'session-refresh', detail: { refresh_at: refreshAt } };
    return {
      context: { req: request.requestId, user: caller.user },
      check: () => {
        const now = clock.now();
        if (expiresAt !== null && now >= expiresAt) return expired;
        if (caller.revoked()) return loggedOut;
        if (refreshAt !== null && now >= refreshAt) return refresh;
        const view = decide(policy.current(), caller.principal, { kind: 'audit', permission: 'view' });
        if (view.effect === 'allow') return null;
        return {
          reason: 'access-revoked',
          message: 'Your access to the audit log was revoked: the policy now in force no longer grants you the audit "view" permission. The live view has stopped.',
          detail: { decision: view.reason, rule: view.rule },
        };
      },
    };
  }

  async #export(request: AuditRouteRequest, caller: AuditCaller): Promise<void> {
    const { options, clock } = this.#s;
    const params = new URLSearchParams(request.query.slice(1));
    const format = params.get('format') ?? '';
    if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
      return this.#error(request, caller, 400, 'bad_request', 'Bad request', `format must be ${EXPORT_FORMATS.join(' or ')}.`);
    }
    const parsed = parsePageQuery(request.query, clock.now(), { fallback: 1, max: 1 });
    if (!parsed.ok) return this.#error(request, caller, 400, 'bad_filter', 'Bad filter', parsed.problems.join('; '));
    const { filter } = parsed.query;
    // Another site could otherwise link here: the browser sends the reviewer's cookie with a
    // top-level navigation (SameSite=Lax), and the export would run and be recorded in the
    // reviewer's name. Browsers say where a request comes from in Sec-Fetch-Site
    // (https://www.w3.org/TR/fetch-metadata/#sec-fetch-site-header); one from another site runs
    // nothing and records nothing.
    if (request.req.headers['sec-fetch-site'] === 'cross-site') return this.#confirmExport(request, caller, params, format);
    const decision = decide(this.#s.policy.current(), caller.principal, { kind: 'audit', permission: 'export' });
    let seq: number;
    try {
      seq = await request.record(exportRequestEvent(request, caller, decision, format as ExportFormat, filter));
    } catch {
      return this.#error(request, caller, 503, 'audit_unavailable', 'Audit log unavailable', 'The export cannot be recorded in the audit log right now, so it is refused. Try again shortly.', {
        'retry-after': '1',
      });
    }
    if (decision.effect !== 'allow') return this.#forbidden(request, caller, decision, 'export');
    await streamExport(request, caller, seq, {
      dir: options.dir,
      logId: options.logId,
      format: format as ExportFormat,
      filter,
      now: clock.now(),
      logger: this.#s.logger,
      ...(options.productVersion === undefined ? {} : { productVersion: options.productVersion }),
    });
  }

  /**
   * Asks a browser that another site sent to an export whether to run it. The form repeats the
   * same request from this page, so it arrives same-origin and runs as usual; API clients, which
   * cannot press a button, are refused.
   */
  #confirmExport(request: AuditRouteRequest, caller: AuditCaller, params: URLSearchParams, format: string): void {
    const message = 'Another site asked for this export. It runs, and is recorded in the audit log in your name, only when you confirm it on the review pages.';
    if (!request.html) return sendJson(request.res, 403, { error: 'cross_site', message, request_id: request.requestId });
    const fields = [...params].map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`);
    const filter = [...params].filter(([name]) => name !== 'format').map(([name, value]) => html`<li><code>${name}</code> = <code>${value}</code></li>`);
    const body = html`<h1>Export audit records?</h1>
<p>Another site sent you here to export audit records as <strong>${format.toUpperCase()}</strong>. The export is recorded in the audit log in your name.</p>
${filter.length === 0 ? html`<p>Filter: none, every record.</p>` : html`<p>Filter:</p><ul>${filter}</ul>`}
<form method="get" action="${EXPORT_PATH}">${fields}<button type="submit">Export</button></form>
<p><a href="${AUDIT_PATH}">Cancel</a></p>`;
    this.#page(request, caller, 200, 'Export audit records?', null, body, false);
  }
}
