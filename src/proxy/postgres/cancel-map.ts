import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { CancelRequest } from './protocol/index.js';
import { sendUpstreamCancel, type UpstreamTarget } from './upstream.js';

/** The upstream backend a gateway session is attached to, as a cancel must name it. */
export interface CancelTarget {
  readonly target: UpstreamTarget;
  readonly pid: number;
  readonly secretKey: Buffer;
}

export interface CancelKey {
  readonly pid: number;
  /** 4 bytes: the gateway speaks protocol 3.0 to clients. */
  readonly secretKey: Buffer;
}

export type CancelOutcome = 'sent' | 'unknown-key' | 'upstream-unreachable';

/**
 * The gateway's own BackendKeyData per session and the upstream backend each stands for
 * (PostgreSQL docs §55.2.8 "Canceling Requests in Progress"). A client never learns the
 * upstream's pid or key: it cancels with the gateway's, on a new connection, and the gateway
 * forwards a CancelRequest with the upstream's. Keys are random and compared in constant time,
 * so a guessed pid alone cancels nothing.
 */
export class CancelMap {
  readonly #sessions = new Map<number, { readonly secretKey: Buffer; readonly upstream: CancelTarget }>();
  readonly #timeoutMs: number;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** A fresh key for a session; the caller unregisters it when the session ends. */
  register(upstream: CancelTarget): CancelKey {
    let pid: number;
    do pid = randomInt(1, 0x7fffffff);
    while (this.#sessions.has(pid));
    const secretKey = randomBytes(4);
    this.#sessions.set(pid, { secretKey, upstream });
    return { pid, secretKey };
  }

  unregister(pid: number): void {
    this.#sessions.delete(pid);
  }

  /** Forwards a client's CancelRequest to the upstream backend its key stands for. */
  async cancel(request: CancelRequest): Promise<CancelOutcome> {
    const entry = this.#sessions.get(request.pid);
    if (entry === undefined || entry.secretKey.length !== request.secretKey.length || !timingSafeEqual(entry.secretKey, request.secretKey)) {
      return 'unknown-key';
    }
    const { target, pid, secretKey } = entry.upstream;
    return (await sendUpstreamCancel(target, pid, secretKey, this.#timeoutMs)) ? 'sent' : 'upstream-unreachable';
  }
}
