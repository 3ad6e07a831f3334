import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { downstreamResponseHeaders } from './headers.js';

/**
 * The forwarding engine: one undici `Pool` per upstream and the low-level `dispatch` API, so a
 * request costs one handler object and no intermediate streams. Measured against `http-proxy`
 * in `bench/http` (README, "HTTP gateway"). Bodies stream both ways with backpressure: the
 * request body is read only as fast as the upstream socket takes it, and the upstream's
 * response is paused whenever the client's socket buffer is full.
 */

export interface UpstreamPoolOptions {
  readonly origin: string;
  readonly connectTimeoutMs: number;
  /** Time allowed between bytes from the upstream (headers and body), the idle timeout. */
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
}

export function createUpstreamPool(options: UpstreamPoolOptions): Pool {
  return new Pool(options.origin, {
    connections: options.maxConnections,
    pipelining: 1,
    connectTimeout: options.connectTimeoutMs,
    headersTimeout: options.idleTimeoutMs,
    bodyTimeout: options.idleTimeoutMs,
    keepAliveTimeout: 4_000,
  });
}

/**
 * Told how a forwarded exchange goes: one object per request rather than a closure per callback
 * (the hot path allocates as little as it can).
 */
export interface ForwardListener {
  /** Sends the gateway's error response when the upstream fails before answering. */
  upstreamFailed(status: 502 | 504, error: string): void;
  /**
   * How the exchange ended, once: the status sent to the client (0 when it went away before any),
   * request body bytes read from the client, response body bytes sent to it, and the stable code
   * of the upstream or transport failure (`ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`).
   */
  done(status: number, bytesIn: number, bytesOut: number, error: string | undefined): void;
}

export interface ForwardRequest {
  readonly pool: Dispatcher;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  /** Path and query for the upstream. */
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  /** Whether the request has a body to stream (RFC 9112 §6.3). */
  readonly hasBody: boolean;
  /** Flat `[name, value, ...]` headers added to the response (request id, refreshed cookies). */
  readonly responseHeaders: readonly string[];
  /** Cookie names an upstream's `Set-Cookie` may not touch. */
  readonly reservedCookies: readonly string[];
  readonly listener: ForwardListener;
}

/** Upstream failures that mean "too slow" rather than "broken". */
const TIMEOUTS: ReadonlySet<string> = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT']);

/** A forwarded exchange in progress. */
export interface Forwarding {
  /** The client went away before its response finished: stop, and abort the upstream request. */
  clientClosed(): void;
  /**
   * Whether the exchange is waiting for the upstream (its response headers or its next body
   * bytes) rather than for the client (request body bytes, or room in the client's socket).
   * While it is, a quiet client connection is not idle: the upstream's idle timeout decides.
   */
  waitsOnUpstream(): boolean;
}

/**
 * Starts forwarding; the listener's `done` is called exactly once, after the client's response
 * ended or broke. The caller already watches the response's `close` and calls `clientClosed`,
 * so the handler adds no listener of its own.
 */
export function forward(request: ForwardRequest): Forwarding {
  const handler = new ForwardHandler(request);
  const body = request.hasBody ? handler.requestBody() : null;
  request.pool.dispatch({ method: request.method, path: request.path, headers: request.headers, body, idempotent: false, upgrade: null }, handler);
  return handler;
}

class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

class ForwardHandler implements Dispatcher.DispatchHandler, Forwarding {
  readonly #request: ForwardRequest;
  #controller: Dispatcher.DispatchController | null = null;
  #counter: ByteCounter | null = null;
  #status = 0;
  #bytesOut = 0;
  #error: string | undefined;
  /** Nothing more goes to the client: it left, or the gateway has answered it itself. */
  #stopped = false;
  #waitingForDrain = false;
  #finished = false;

  constructor(request: ForwardRequest) {
    this.#request = request;
  }

  /** The request body, counted on its way through; a client that breaks off aborts it. */
  requestBody(): ByteCounter {
    const counter = new ByteCounter();
    const { req } = this.#request;
    req.once('error', (error) => counter.destroy(error));
    req.once('aborted', () => counter.destroy(Object.assign(new Error('the client aborted the request body'), { code: 'ECONNRESET' })));
    req.pipe(counter);
    this.#counter = counter;
    return counter;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#stopped) controller.abort(clientGoneError());
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number): void {
    // RFC 9110 §15.2: interim responses are not relayed; the client gets the final one.
    if (statusCode < 200 || this.#stopped) return;
    const { res, responseHeaders, reservedCookies } = this.#request;
    const raw = (controller.rawHeaders ?? []) as (Buffer | string)[];
    const headers = downstreamResponseHeaders(raw, reservedCookies);
    for (const item of responseHeaders) headers.push(item);
    // The reason phrase is not passed on (RFC 9112 §4: it carries no meaning); Node writes its own.
    try {
      res.writeHead(statusCode, headers);
    } catch {
      // A header value Node refuses to write (a control character the parser let through).
      this.#error = 'upstream-invalid-header';
      this.#status = 502;
      this.#request.listener.upstreamFailed(502, this.#error);
      this.#stopped = true;
      controller.abort(Object.assign(new Error('the upstream sent a header that cannot be forwarded'), { code: this.#error }));
      return;
    }
    this.#status = statusCode;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#stopped) return;
    this.#bytesOut += chunk.length;
    if (!this.#request.res.write(chunk) && !this.#waitingForDrain) {
      this.#waitingForDrain = true;
      controller.pause();
      this.#request.res.once('drain', () => {
        this.#waitingForDrain = false;
        controller.resume();
      });
    }
  }

  onResponseEnd(): void {
    if (!this.#stopped) this.#request.res.end();
    this.#finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const code = errorCode(error);
    const { res } = this.#request;
    if (this.#error === 'upstream-invalid-header') {
      this.#finish();
      return;
    }
    if (!this.#stopped) {
      this.#error = code;
      if (!res.headersSent) {
        const status = TIMEOUTS.has(code) ? 504 : 502;
        this.#status = status;
        this.#request.listener.upstreamFailed(status, code);
      } else {
        // The status line is gone; breaking the connection is the only way to tell the client
        // that the body is incomplete (RFC 9112 §8).
        res.destroy();
      }
    } else {
      this.#error ??= 'client-closed';
    }
    this.#finish();
  }

  waitsOnUpstream(): boolean {
    // `complete`: the client has sent its whole request; an upstream still reading it is the slow one.
    return !this.#finished && !this.#stopped && !this.#waitingForDrain && this.#request.req.complete;
  }

  clientClosed(): void {
    if (this.#finished) return;
    this.#stopped = true;
    this.#error ??= 'client-closed';
    this.#controller?.abort(clientGoneError());
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#request.listener.done(this.#status, this.#counter?.bytes ?? 0, this.#bytesOut, this.#error);
  }
}

function clientGoneError(): Error {
  return Object.assign(new Error('the client closed the connection'), { code: 'client-closed' });
}

function errorCode(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : 'upstream-error';
}
