import type { Duplex } from 'node:stream';
import type { ProtocolError } from './protocol/index.js';

/** The bytes → messages half of a protocol reader (both `FrontendReader` and `BackendReader`). */
export interface PullReader<T> {
  push(chunk: Buffer): void;
  next(): T | ProtocolError | undefined;
}

/** Returned by {@link SocketInbox.next} once the peer closed and nothing complete is left. */
export const CLOSED = Object.freeze({ type: 'Closed' as const });
export type Closed = typeof CLOSED;

/**
 * Awaitable message-at-a-time reading for the short conversations of connection setup (startup,
 * authentication, upstream login), where each step waits for one answer. The session relay does
 * not use it: it drains readers synchronously per chunk.
 *
 * The inbox owns the socket's `data`, `end` and `close` listeners until {@link detach}; the
 * caller keeps an `error` listener on the socket for its whole life.
 */
export class SocketInbox<T> {
  readonly #socket: Duplex;
  readonly reader: PullReader<T>;
  #waiter: ((item: T | ProtocolError | Closed) => void) | null = null;
  #closed = false;

  constructor(socket: Duplex, reader: PullReader<T>) {
    this.#socket = socket;
    this.reader = reader;
    socket.on('data', this.#onData);
    socket.on('end', this.#onClose);
    socket.on('close', this.#onClose);
    socket.resume();
  }

  /** The next message, a protocol error, or {@link CLOSED}. */
  next(): Promise<T | ProtocolError | Closed> {
    const item = this.reader.next();
    if (item !== undefined) return Promise.resolve(item);
    if (this.#closed) return Promise.resolve(CLOSED);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** Stops reading: pauses the socket and hands it back; the reader keeps what it buffered. */
  detach(): void {
    this.#socket.pause();
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onClose);
    this.#socket.off('close', this.#onClose);
    this.#settle(CLOSED);
  }

  readonly #onData = (chunk: Buffer): void => {
    this.reader.push(chunk);
    if (this.#waiter === null) return;
    const item = this.reader.next();
    if (item !== undefined) this.#settle(item);
  };

  readonly #onClose = (): void => {
    this.#closed = true;
    this.#settle(CLOSED);
  };

  #settle(item: T | ProtocolError | Closed): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.(item);
  }
}
