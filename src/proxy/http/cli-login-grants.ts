import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Clock, Principal } from '../../core/index.js';

/**
 * The protocol core of the CLI login (`tollgate login`): loopback redirect URIs (RFC 8252),
 * PKCE (RFC 7636), device user codes (RFC 8628), and the in-memory table of pending
 * authorization codes and device grants. Pure functions and one clock-driven class; the HTTP
 * routes in `cli-login.ts` move browsers and write the audit records.
 */

/** RFC 8628 §6.1: consonants only (no words can form), none that read alike (no vowels, no 0/O, 1/I). */
export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
export const USER_CODE_LENGTH = 8;

/** An authorization code is good for this long after the user approves (RFC 6749 §4.1.2: short). */
export const CODE_TTL_MS = 60_000;
/** A device grant waits this long for the user (RFC 8628 §3.2 `expires_in`). */
export const DEVICE_TTL_MS = 10 * 60_000;
/** RFC 8628 §3.2 `interval`: the least time between two polls. */
export const DEVICE_INTERVAL_MS = 5_000;
/** RFC 8628 §3.5 `slow_down`: every early poll adds this to the client's interval. */
export const SLOW_DOWN_STEP_MS = 5_000;
/** Pending codes and device grants each; beyond it new ones are refused until old ones expire. */
export const MAX_PENDING = 10_000;
/**
 * Pending device grants one client network may hold. Starting a grant needs no login, so without
 * this one client could fill {@link MAX_PENDING} and lock everyone out; a person runs one
 * `tollgate login` at a time, and a team behind one NAT rarely runs ten at once.
 */
export const MAX_PENDING_DEVICES_PER_CLIENT = 10;
/** RFC 8628 §5.1: wrong user codes one session may enter before it is refused. */
export const MAX_USER_CODE_FAILURES = 20;

const MAX_REDIRECT_URI_CHARS = 2048;
/**
 * RFC 8252 §7.3 and §8.3: an `http` URI on an IP literal loopback host, any port. `localhost`
 * is refused (a name can be resolved elsewhere), so is any other host. The authority is matched
 * on the text as sent, because the WHATWG URL parser would turn `127.1` or `0x7f.1` into
 * `127.0.0.1` and the binding must be to the exact string.
 */
const LOOPBACK_REDIRECT = /^http:\/\/(127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?(\/[\x21-\x7E]*)?$/;
/** RFC 7636 §4.1: `code_verifier` (and an S256 `code_challenge`) use unreserved characters. */
const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/;

export type RedirectUriProblem = 'missing' | 'too-long' | 'not-http' | 'localhost' | 'not-loopback-ip' | 'fragment' | 'malformed';

export type RedirectUriCheck =
  | { readonly ok: true; readonly uri: string; readonly origin: string }
  | { readonly ok: false; readonly reason: RedirectUriProblem };

/**
 * Checks a CLI's `redirect_uri` (RFC 8252 §7.3, §8.3): `http://127.0.0.1[:port]/path` or
 * `http://[::1][:port]/path`, printable ASCII, no fragment (RFC 6749 §3.1.2), no user info.
 */
export function checkLoopbackRedirectUri(input: unknown): RedirectUriCheck {
  if (typeof input !== 'string' || input === '') return { ok: false, reason: 'missing' };
  if (input.length > MAX_REDIRECT_URI_CHARS) return { ok: false, reason: 'too-long' };
  if (input.includes('#')) return { ok: false, reason: 'fragment' };
  const match = LOOPBACK_REDIRECT.exec(input);
  if (match === null) {
    if (!/^http:\/\//i.test(input)) return { ok: false, reason: 'not-http' };
    const authority = input.slice('http://'.length).split(/[/?]/, 1)[0] ?? '';
    const host = authority.slice(authority.lastIndexOf('@') + 1).replace(/:\d*$/, '').toLowerCase();
    if (host === 'localhost' || host.endsWith('.localhost')) return { ok: false, reason: 'localhost' };
    return { ok: false, reason: /^[\x21-\x7E]+$/.test(input) ? 'not-loopback-ip' : 'malformed' };
  }
  const port = match[2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65_535)) return { ok: false, reason: 'malformed' };
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  return { ok: true, uri: input, origin: url.origin };
}

/** Whether `value` has the form of a PKCE `code_verifier` or S256 `code_challenge` (RFC 7636 §4.1, §4.2). */
export function isPkceValue(value: unknown): value is string {
  return typeof value === 'string' && PKCE_VALUE.test(value);
}

/** RFC 7636 §4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`. */
export function s256Challenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** RFC 7636 §4.6: the verifier hashes to the challenge the code was bound to; constant time. */
export function pkceMatches(verifier: string, challenge: string): boolean {
  const computed = Buffer.from(s256Challenge(verifier), 'ascii');
  const expected = Buffer.from(challenge, 'ascii');
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}

/** A fresh user code: {@link USER_CODE_LENGTH} characters of {@link USER_CODE_ALPHABET}, uniform. */
export function generateUserCode(): string {
  let code = '';
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

/** `BCDFGHJK` → `BCDF-GHJK`, as shown to people (RFC 8628 §6.1). */
export function formatUserCode(code: string): string {
  return `${code.slice(0, USER_CODE_LENGTH / 2)}-${code.slice(USER_CODE_LENGTH / 2)}`;
}

/**
 * What a person typed, as a canonical user code, or `null`. RFC 8628 §6.1: case, dashes and
 * spaces do not matter.
 */
export function normalizeUserCode(input: unknown): string | null {
  if (typeof input !== 'string' || input.length > 32) return null;
  const code = input.toUpperCase().replace(/[\s-]/g, '');
  if (code.length !== USER_CODE_LENGTH) return null;
  for (const ch of code) if (!USER_CODE_ALPHABET.includes(ch)) return null;
  return code;
}

/** Who approved a CLI login, in the browser session that approved it. */
export interface CliApproval {
  readonly principal: Principal;
  /** Display name (`claims.user`). */
  readonly user: string;
  /** The approving browser session's reference, for the `token.issued` record. */
  readonly sessionRef: string | undefined;
}

export interface CodeBinding extends CliApproval {
  /** The exact `redirect_uri` of the authorization request. */
  readonly redirectUri: string;
  /** The S256 `code_challenge` of the authorization request. */
  readonly codeChallenge: string;
}

export type CodeFailureReason = 'code-unknown' | 'code-expired' | 'redirect-uri-mismatch' | 'verifier-malformed' | 'pkce-mismatch';

export type RedeemCodeResult =
  | { readonly ok: true; readonly approval: CliApproval }
  /** `approval` is known once the code was found: a wrong verifier is recorded against its owner. */
  | { readonly ok: false; readonly reason: CodeFailureReason; readonly approval?: CliApproval };

export interface DeviceStart {
  readonly ok: true;
  readonly deviceCode: string;
  /** Canonical, unformatted. */
  readonly userCode: string;
  readonly expiresInMs: number;
  readonly intervalMs: number;
}

export type DeviceStartRefusal = {
  readonly ok: false;
  /** `client-limit`: the client's network holds its share of grants; `full`: the whole table is. */
  readonly reason: 'client-limit' | 'full';
  /** The limit that was reached. */
  readonly limit: number;
  /** Until the oldest grant in the way expires (sooner if it is redeemed). */
  readonly retryAfterMs: number;
};

/** RFC 8628 §3.5 error codes, and `invalid_grant` for a device code that is not (or no longer) known. */
export type DevicePollError = 'authorization_pending' | 'slow_down' | 'access_denied' | 'expired_token' | 'invalid_grant';

export type DevicePollResult =
  | {
      readonly ok: true;
      readonly approval: CliApproval;
      /** Call once the token was issued (`true`: the grant is used up) or could not be (`false`: it may be polled again). */
      readonly settle: (issued: boolean) => void;
    }
  | { readonly ok: false; readonly error: DevicePollError; readonly intervalMs?: number };

export type DeviceDecision = 'decided' | 'unknown' | 'expired' | 'already-decided';

interface PendingCode extends CodeBinding {
  readonly expiresAt: number;
}

/** A device sign-in waiting for its user, as the approval page describes it. */
export interface PendingDevice {
  /** {@link clientNetwork} of the address that started it. */
  readonly client: string;
  /** When it was started, in ms since the epoch. */
  readonly startedAt: number;
}

interface DeviceGrant {
  readonly key: string;
  /** {@link clientNetwork} of the address that started it. */
  readonly client: string;
  readonly userCode: string;
  readonly expiresAt: number;
  intervalMs: number;
  lastPollAt: number;
  state: 'pending' | 'approved' | 'denied' | 'issuing';
  approval: CliApproval | null;
}

export interface CliLoginGrantsOptions {
  readonly clock: Clock;
  readonly codeTtlMs?: number;
  readonly deviceTtlMs?: number;
  readonly intervalMs?: number;
  readonly maxPending?: number;
  readonly maxPendingDevicesPerClient?: number;
}

/**
 * The pending authorization codes and device grants of one gateway process, in memory, bounded
 * and expiring. Codes are looked up by their SHA-256, so a lookup's timing says nothing about a
 * stored code. Every code and grant has the same lifetime as the others of its kind, so the
 * insertion order of each Map is its expiry order and the expired ones are swept from the front.
 */
export class CliLoginGrants {
  readonly #clock: Clock;
  readonly #codeTtlMs: number;
  readonly #deviceTtlMs: number;
  readonly #intervalMs: number;
  readonly #max: number;
  readonly #maxPerClient: number;
  readonly #codes = new Map<string, PendingCode>();
  readonly #devices = new Map<string, DeviceGrant>();
  readonly #byUserCode = new Map<string, DeviceGrant>();
  /** The pending grants of each client network, oldest first (every grant lives equally long). */
  readonly #byClient = new Map<string, Set<DeviceGrant>>();
  readonly #userCodeFailures = new Map<string, { count: number; resetAt: number }>();

  constructor(options: CliLoginGrantsOptions) {
    this.#clock = options.clock;
    this.#codeTtlMs = options.codeTtlMs ?? CODE_TTL_MS;
    this.#deviceTtlMs = options.deviceTtlMs ?? DEVICE_TTL_MS;
    this.#intervalMs = options.intervalMs ?? DEVICE_INTERVAL_MS;
    this.#max = options.maxPending ?? MAX_PENDING;
    this.#maxPerClient = options.maxPendingDevicesPerClient ?? MAX_PENDING_DEVICES_PER_CLIENT;
  }

  get pendingCodes(): number {
    return this.#codes.size;
  }

  get pendingDevices(): number {
    return this.#devices.size;
  }

  /** A fresh authorization code bound to `binding`, or `null` when the table is full. */
  issueCode(binding: CodeBinding): string | null {
    const now = this.#clock.now();
    sweep(this.#codes, now);
    if (this.#codes.size >= this.#max) return null;
    const code = randomBytes(32).toString('base64url');
    this.#codes.set(keyOf(code), { ...binding, expiresAt: now + this.#codeTtlMs });
    return code;
  }

  /**
   * RFC 6749 §4.1.3 and RFC 7636 §4.6: a code is used up by the first attempt to redeem it,
   * whatever the outcome, so a stolen code cannot be tried against many verifiers.
   */
  redeemCode(input: { readonly code: string; readonly codeVerifier: string; readonly redirectUri: string }): RedeemCodeResult {
    const key = keyOf(input.code);
    const pending = this.#codes.get(key);
    if (pending === undefined) return { ok: false, reason: 'code-unknown' };
    this.#codes.delete(key);
    const approval: CliApproval = { principal: pending.principal, user: pending.user, sessionRef: pending.sessionRef };
    if (pending.expiresAt <= this.#clock.now()) return { ok: false, reason: 'code-expired', approval };
    if (input.redirectUri !== pending.redirectUri) return { ok: false, reason: 'redirect-uri-mismatch', approval };
    if (!isPkceValue(input.codeVerifier)) return { ok: false, reason: 'verifier-malformed', approval };
    if (!pkceMatches(input.codeVerifier, pending.codeChallenge)) return { ok: false, reason: 'pkce-mismatch', approval };
    return { ok: true, approval };
  }

  /**
   * RFC 8628 §3.1–3.2: a new device grant for a request from `client` (a {@link clientNetwork}),
   * or why not: the client's network already holds its share, or the table is full.
   */
  startDevice(client: string): DeviceStart | DeviceStartRefusal {
    const now = this.#clock.now();
    this.#sweepDevices(now);
    const own = this.#byClient.get(client);
    if (own !== undefined && own.size >= this.#maxPerClient) return refusal('client-limit', this.#maxPerClient, own.values().next().value, now);
    if (this.#devices.size >= this.#max) return refusal('full', this.#max, this.#devices.values().next().value, now);
    const deviceCode = randomBytes(32).toString('base64url');
    let userCode = generateUserCode();
    while (this.#byUserCode.has(userCode)) userCode = generateUserCode();
    const grant: DeviceGrant = {
      key: keyOf(deviceCode),
      client,
      userCode,
      expiresAt: now + this.#deviceTtlMs,
      intervalMs: this.#intervalMs,
      lastPollAt: Number.NEGATIVE_INFINITY,
      state: 'pending',
      approval: null,
    };
    this.#devices.set(grant.key, grant);
    this.#byUserCode.set(userCode, grant);
    if (own === undefined) this.#byClient.set(client, new Set([grant]));
    else own.add(grant);
    return { ok: true, deviceCode, userCode, expiresInMs: this.#deviceTtlMs, intervalMs: this.#intervalMs };
  }

  /**
   * The grant a canonical user code names while it waits for its user, with where and when it
   * was started (RFC 8628 §5.4: the approving user is told, so that a code phished from someone
   * else's terminal stands out); `null` for any other code.
   */
  pendingDevice(userCode: string): PendingDevice | null {
    const grant = this.#byUserCode.get(userCode);
    if (grant === undefined || grant.state !== 'pending' || grant.expiresAt <= this.#clock.now()) return null;
    return { client: grant.client, startedAt: grant.expiresAt - this.#deviceTtlMs };
  }

  /**
   * RFC 8628 §5.1: a session may get a user code wrong only so often. Counts a failure for
   * `sessionKey` when `failed`, and tells whether it may still try.
   */
  userCodeAttempt(sessionKey: string, failed: boolean): boolean {
    const now = this.#clock.now();
    let entry = this.#userCodeFailures.get(sessionKey);
    if (entry !== undefined && entry.resetAt <= now) {
      this.#userCodeFailures.delete(sessionKey);
      entry = undefined;
    }
    if (!failed) return (entry?.count ?? 0) < MAX_USER_CODE_FAILURES;
    if (entry === undefined) {
      if (this.#userCodeFailures.size >= this.#max) {
        const oldest = this.#userCodeFailures.keys().next();
        if (oldest.done !== true) this.#userCodeFailures.delete(oldest.value);
      }
      entry = { count: 0, resetAt: now + this.#deviceTtlMs };
      this.#userCodeFailures.set(sessionKey, entry);
    }
    entry.count += 1;
    return entry.count < MAX_USER_CODE_FAILURES;
  }

  /** RFC 8628 §3.3: the user approves (`approval`) or denies (`null`) the grant showing `userCode`. */
  decideDevice(userCode: string, approval: CliApproval | null): DeviceDecision {
    const grant = this.#byUserCode.get(userCode);
    if (grant === undefined) return 'unknown';
    if (grant.expiresAt <= this.#clock.now()) return 'expired';
    if (grant.state !== 'pending') return 'already-decided';
    grant.state = approval === null ? 'denied' : 'approved';
    grant.approval = approval;
    // The user code has done its job; it must not be confirmed a second time.
    this.#byUserCode.delete(userCode);
    return 'decided';
  }

  /** RFC 8628 §3.4–3.5: one poll of the token endpoint with `device_code`. */
  pollDevice(deviceCode: string): DevicePollResult {
    const now = this.#clock.now();
    const grant = this.#devices.get(keyOf(deviceCode));
    if (grant === undefined) return { ok: false, error: 'invalid_grant' };
    if (grant.expiresAt <= now) {
      this.#forget(grant);
      return { ok: false, error: 'expired_token' };
    }
    const early = now < grant.lastPollAt + grant.intervalMs;
    grant.lastPollAt = now;
    switch (grant.state) {
      case 'denied':
        this.#forget(grant);
        return { ok: false, error: 'access_denied' };
      case 'approved': {
        const approval = grant.approval as CliApproval;
        grant.state = 'issuing';
        return {
          ok: true,
          approval,
          settle: (issued) => {
            if (issued) this.#forget(grant);
            else grant.state = 'approved';
          },
        };
      }
      case 'issuing':
        return { ok: false, error: 'authorization_pending', intervalMs: grant.intervalMs };
      case 'pending':
        if (early) {
          grant.intervalMs += SLOW_DOWN_STEP_MS;
          return { ok: false, error: 'slow_down', intervalMs: grant.intervalMs };
        }
        return { ok: false, error: 'authorization_pending', intervalMs: grant.intervalMs };
    }
  }

  #forget(grant: DeviceGrant): void {
    this.#devices.delete(grant.key);
    if (this.#byUserCode.get(grant.userCode) === grant) this.#byUserCode.delete(grant.userCode);
    const own = this.#byClient.get(grant.client);
    own?.delete(grant);
    if (own?.size === 0) this.#byClient.delete(grant.client);
  }

  #sweepDevices(now: number): void {
    for (const grant of this.#devices.values()) {
      if (grant.expiresAt > now) break;
      this.#forget(grant);
    }
  }
}

function refusal(reason: DeviceStartRefusal['reason'], limit: number, oldest: DeviceGrant | undefined, now: number): DeviceStartRefusal {
  return { ok: false, reason, limit, retryAfterMs: Math.max(0, (oldest?.expiresAt ?? now) - now) };
}

/**
 * The network a client address stands for when device grants are counted: an IPv4 address
 * itself (IPv4-mapped IPv6 included), the /64 of an IPv6 address, since one host commonly holds
 * a whole /64 (RFC 7421 §1) and could otherwise change address for every request. Anything
 * else (no address known) counts as itself.
 */
export function clientNetwork(address: string): string {
  const bare = address.split('%', 1)[0] ?? '';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped !== null && isIP(mapped[1] ?? '') === 4) return mapped[1] ?? '';
  if (isIP(bare) !== 6) return address;
  return `${ipv6Groups(bare).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address, in lower-case hex without leading zeros. */
function ipv6Groups(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const parts = (text: string): string[] => {
    if (text === '') return [];
    const groups = text.split(':');
    const last = groups.at(-1) ?? '';
    // RFC 4291 §2.2 form 3: the low 32 bits written as dotted IPv4.
    if (last.includes('.')) {
      const [a = 0, b = 0, c = 0, d = 0] = last.split('.').map(Number);
      groups.splice(-1, 1, ((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
    }
    return groups;
  };
  const front = parts(head);
  const back = tail === undefined ? [] : parts(tail);
  const zeros: string[] = new Array<string>(8 - front.length - back.length).fill('0');
  return [...front, ...zeros, ...back].map((group) => parseInt(group, 16).toString(16));
}

function keyOf(code: string): string {
  return createHash('sha256').update(code, 'utf8').digest('base64url');
}

function sweep(map: Map<string, { readonly expiresAt: number }>, now: number): void {
  for (const [key, entry] of map) {
    if (entry.expiresAt > now) break;
    map.delete(key);
  }
}
