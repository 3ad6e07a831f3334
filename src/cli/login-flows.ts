import { spawn } from 'node:child_process';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod';
import { TollgateError } from '../core/index.js';
import { CLI_AUTHORIZE_PATH, CLI_DEVICE_PATH, CLI_TOKEN_PATH, DEVICE_CODE_GRANT_TYPE } from '../proxy/http/index.js';

/**
 * The client side of `tollgate login`: the loopback flow (RFC 8252 §7.3 with PKCE, RFC 7636)
 * and the device flow (RFC 8628) against the gateway's `/_tollgate/cli/` routes, and the
 * browser opener.
 */

/** The gateway's token response (README "Logging in from a terminal"). */
const tokenResponse = z.object({
  token: z.string().min(1),
  expires_at: z.iso.datetime({ offset: true }),
  user: z.string().min(1),
  postgres: z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65_535), sslmode: z.string().min(1) }),
  databases: z.array(z.object({ name: z.string(), logins: z.array(z.string()) })),
});
export type CliTokenResponse = z.infer<typeof tokenResponse>;

const deviceResponse = z.object({
  device_code: z.string().min(1),
  user_code: z.string().min(1),
  verification_uri: z.string().min(1),
  verification_uri_complete: z.string().optional(),
  expires_in: z.number().positive(),
  interval: z.number().nonnegative().optional(),
});

const oauthErrorBody = z.object({ error: z.string(), error_description: z.string().optional() });

/** The path of the CLI's loopback listener that receives the answer. */
export const CALLBACK_PATH = '/callback';

/** How long an opener may run before it counts as having opened the browser (some block until it closes). */
const OPENER_GRACE_MS = 1_500;

export interface LoopbackLoginOptions {
  /** The gateway's origin. */
  readonly gateway: string;
  /** Opens `url` in the user's browser; resolves `false` when no opener worked. */
  readonly open: (url: string) => Promise<boolean>;
  /** Text for the user (stderr). */
  readonly notify: (text: string) => void;
  /** Ends the wait (timeout or interrupt). */
  readonly signal: AbortSignal;
}

/**
 * RFC 8252 §7.3: listens on `127.0.0.1:0`, sends the browser to the gateway's authorize page
 * with `state` and an S256 `code_challenge`, and redeems the code that comes back to the
 * listener with its `code_verifier`. Resolves `null` when no browser could be opened (the
 * caller falls back to the device flow).
 */
export async function loopbackLogin(options: LoopbackLoginOptions): Promise<CliTokenResponse | null> {
  // RFC 7636 §4.1: 32 random octets, base64url, 43 characters.
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier, 'ascii').digest('base64url');
  const state = randomBytes(16).toString('base64url');
  let settle!: (outcome: { token: CliTokenResponse } | { error: TollgateError }) => void;
  const answered = new Promise<{ token: CliTokenResponse } | { error: TollgateError }>((resolve) => (settle = resolve));
  let redirectUri = '';
  let handled = false;

  const server = createServer((req, res) => {
    void onCallback(req, res).catch((error: unknown) => {
      if (!res.headersSent) callbackPage(res, 500, 'Sign-in failed', 'The command could not finish the sign-in; see your terminal.');
      settle({ error: error instanceof TollgateError ? error : new TollgateError('TG_ERR_LOGIN_FAILED', `the sign-in failed: ${String(error)}`, { cause: error }) });
    });
  });
  const onCallback = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== CALLBACK_PATH) return callbackPage(res, 404, 'Not found', 'This is the tollgate login listener; nothing else is served here.');
    // RFC 6749 §10.12: an answer without this run's state is someone else's, and is ignored.
    if (!sameText(url.searchParams.get('state') ?? '', state)) {
      return callbackPage(res, 400, 'Not this sign-in', 'This answer does not belong to the running tollgate login; it was ignored.');
    }
    if (handled) return callbackPage(res, 409, 'Already answered', 'This sign-in was already answered; see your terminal.');
    handled = true;
    const error = url.searchParams.get('error');
    if (error !== null) {
      const description = url.searchParams.get('error_description') ?? error;
      callbackPage(res, 200, error === 'access_denied' ? 'Sign-in cancelled' : 'Sign-in failed', `${description}. You can close this tab.`);
      return settle({ error: new TollgateError('TG_ERR_LOGIN_FAILED', `the gateway answered ${error}: ${description}`) });
    }
    const code = url.searchParams.get('code');
    if (code === null) {
      callbackPage(res, 400, 'Sign-in failed', 'The answer carries no code.');
      return settle({ error: new TollgateError('TG_ERR_LOGIN_FAILED', 'the gateway answered without a code') });
    }
    try {
      const token = await redeem(options.gateway, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri }, options.signal);
      callbackPage(res, 200, 'Signed in', `The Tollgate CLI is signed in as ${token.user}. You can close this tab and return to your terminal.`);
      settle({ token });
    } catch (caught) {
      callbackPage(res, 200, 'Sign-in failed', 'The gateway refused the sign-in; see your terminal.');
      throw caught;
    }
  };

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}${CALLBACK_PATH}`;
    const authorize = new URL(CLI_AUTHORIZE_PATH, options.gateway);
    authorize.search = new URLSearchParams({ redirect_uri: redirectUri, state, code_challenge: challenge, code_challenge_method: 'S256' }).toString();
    if (!(await options.open(authorize.href))) return null;
    options.notify(`Opening your browser to sign in at ${options.gateway}.\nIf the browser did not open, visit:\n\n  ${authorize.href}\n\n`);
    const outcome = await untilAborted(answered, options.signal);
    if ('error' in outcome) throw outcome.error;
    return outcome.token;
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

export interface DeviceLoginOptions {
  readonly gateway: string;
  readonly notify: (text: string) => void;
  readonly signal: AbortSignal;
}

/** RFC 8628: asks for a user code, shows it, and polls the token endpoint until the user decides. */
export async function deviceLogin(options: DeviceLoginOptions): Promise<CliTokenResponse> {
  const response = await post(new URL(CLI_DEVICE_PATH, options.gateway), new URLSearchParams({ client_id: 'tollgate-cli' }), options.signal);
  const body = await jsonOf(response);
  if (!response.ok) throw refusal(options.gateway, response.status, body);
  const parsed = deviceResponse.safeParse(body);
  if (!parsed.success) throw new TollgateError('TG_ERR_LOGIN_FAILED', `${options.gateway} did not answer the device request as a Tollgate gateway does; check --gateway`);
  const device = parsed.data;
  const complete = device.verification_uri_complete === undefined ? '' : `\nor open this address, which carries the code:\n\n  ${device.verification_uri_complete}\n`;
  options.notify(`To sign in, open this address in a browser on any device:\n\n  ${device.verification_uri}\n\nand enter the code\n\n  ${device.user_code}\n${complete}\nWaiting for you to approve...\n`);
  // RFC 8628 §3.5: poll no faster than `interval` (default 5 s); `slow_down` adds 5 s for good.
  let intervalMs = (device.interval ?? 5) * 1000;
  const deadline = Date.now() + device.expires_in * 1000;
  for (;;) {
    await sleep(intervalMs, undefined, { signal: options.signal }).catch(() => undefined);
    if (options.signal.aborted) throw aborted(options.signal);
    if (Date.now() > deadline) throw new TollgateError('TG_ERR_LOGIN_FAILED', `the code ${device.user_code} expired before it was approved; run tollgate login again`);
    const polled = await post(new URL(CLI_TOKEN_PATH, options.gateway), new URLSearchParams({ grant_type: DEVICE_CODE_GRANT_TYPE, device_code: device.device_code }), options.signal);
    const answer = await jsonOf(polled);
    if (polled.ok) return checkedToken(options.gateway, answer);
    const error = oauthErrorBody.safeParse(answer);
    if (error.success && error.data.error === 'authorization_pending') continue;
    if (error.success && error.data.error === 'slow_down') {
      intervalMs += 5_000;
      continue;
    }
    if (error.success && error.data.error === 'access_denied') throw new TollgateError('TG_ERR_LOGIN_FAILED', 'the sign-in was cancelled in the browser');
    if (error.success && error.data.error === 'expired_token') throw new TollgateError('TG_ERR_LOGIN_FAILED', `the code ${device.user_code} expired before it was approved; run tollgate login again`);
    throw refusal(options.gateway, polled.status, answer);
  }
}

/** RFC 6749 §4.1.3 token request. */
async function redeem(gateway: string, params: Readonly<Record<string, string>>, signal: AbortSignal): Promise<CliTokenResponse> {
  const response = await post(new URL(CLI_TOKEN_PATH, gateway), new URLSearchParams(params), signal);
  const body = await jsonOf(response);
  if (!response.ok) throw refusal(gateway, response.status, body);
  return checkedToken(gateway, body);
}

function checkedToken(gateway: string, body: unknown): CliTokenResponse {
  const parsed = tokenResponse.safeParse(body);
  if (!parsed.success) throw new TollgateError('TG_ERR_LOGIN_FAILED', `${gateway} answered the token request in an unexpected form; is it a Tollgate gateway of this version?`);
  return parsed.data;
}

async function post(url: URL, body: URLSearchParams, signal: AbortSignal): Promise<Response> {
  try {
    return await fetch(url, { method: 'POST', body, headers: { accept: 'application/json' }, signal, redirect: 'error' });
  } catch (error) {
    if (signal.aborted) throw aborted(signal);
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new TollgateError('TG_ERR_LOGIN_FAILED', `cannot reach ${url.origin} (${cause?.code ?? cause?.message ?? String(error)}); check --gateway and your network`, { cause: error });
  }
}

async function jsonOf(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function refusal(gateway: string, status: number, body: unknown): TollgateError {
  const error = oauthErrorBody.safeParse(body);
  if (error.success) {
    return new TollgateError('TG_ERR_LOGIN_FAILED', `${gateway} refused the sign-in: ${error.data.error}${error.data.error_description === undefined ? '' : ` (${error.data.error_description})`}`);
  }
  return new TollgateError('TG_ERR_LOGIN_FAILED', `${gateway} answered HTTP ${status}; is --gateway the address of a Tollgate gateway?`);
}

function aborted(signal: AbortSignal): TollgateError {
  const reason: unknown = signal.reason;
  const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
  return new TollgateError('TG_ERR_LOGIN_FAILED', timedOut ? 'the sign-in was not completed in time; run tollgate login again (or raise --timeout)' : 'the sign-in was interrupted', { cause: reason });
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(aborted(signal));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(aborted(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function callbackPage(res: ServerResponse, status: number, title: string, text: string): void {
  const escape = (value: string): string => value.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] as string);
  const body =
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)} · Tollgate</title>` +
    '<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}</style></head>' +
    `<body><h1>${escape(title)}</h1><p>${escape(text)}</p></body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    connection: 'close',
  });
  res.end(body);
}

/**
 * Opens `url` in the user's browser: each command of `$BROWSER` (a `:`-separated list; `%s`
 * stands for the URL, else it is appended), or the platform's opener (`xdg-open`, `open`,
 * `cmd /c start`). An opener counts as working when it exits 0, or is still running after a
 * moment (a browser started directly runs until it is closed). No shell is involved, so the URL
 * is never interpreted.
 */
export async function openBrowser(url: string, env: Readonly<Record<string, string | undefined>>, platform: NodeJS.Platform = process.platform): Promise<boolean> {
  const browser = env['BROWSER'];
  const commands: Array<{ file: string; args: string[]; verbatim?: boolean }> = [];
  if (browser !== undefined && browser.trim() !== '') {
    for (const entry of browser.split(':')) {
      const words = entry.trim().split(/\s+/).filter((word) => word !== '');
      const [file, ...rest] = words;
      if (file === undefined) continue;
      commands.push({ file, args: rest.some((word) => word.includes('%s')) ? rest.map((word) => word.replaceAll('%s', url)) : [...rest, url] });
    }
  } else if (platform === 'darwin') {
    commands.push({ file: 'open', args: [url] });
  } else if (platform === 'win32') {
    // `start` is a cmd builtin; the empty title and the quotes keep `&` in the URL literal.
    commands.push({ file: 'cmd', args: ['/c', 'start', '""', `"${url}"`], verbatim: true });
  } else {
    commands.push({ file: 'xdg-open', args: [url] });
  }
  for (const command of commands) {
    if (await runOpener(command.file, command.args, command.verbatim === true, env)) return true;
  }
  return false;
}

function runOpener(file: string, args: readonly string[], verbatim: boolean, env: Readonly<Record<string, string | undefined>>): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: 'ignore', detached: true, windowsVerbatimArguments: verbatim, env: { ...env } });
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.unref();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(true), OPENER_GRACE_MS);
    child.once('error', () => finish(false));
    child.once('exit', (code) => finish(code === 0));
  });
}
