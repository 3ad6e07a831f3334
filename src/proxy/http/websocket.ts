import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

/**
 * WebSocket relaying (RFC 6455). The gateway terminates the client's WebSocket and opens its
 * own to the upstream, then relays messages both ways; relaying whole messages (not raw bytes)
 * lets it count what went through, bound message sizes, and close each side with a proper close
 * frame. The upstream handshake completes first, so the client is only switched to WebSocket
 * once the upstream has accepted, with the subprotocol the upstream chose.
 */

/** RFC 6455 §4.1: a `Sec-WebSocket-Key` is 16 random bytes in base64. */
const KEY = /^[+/0-9A-Za-z]{21}[AQgw]==$/;

/** Why a WebSocket handshake request was refused before anything else happened. */
export type HandshakeProblem = 'not-get' | 'not-websocket' | 'bad-key' | 'bad-version' | 'bad-protocol';

/** RFC 6455 §4.2.1 checks, done before the upstream is contacted. */
export function handshakeProblem(req: IncomingMessage): HandshakeProblem | null {
  if (req.method !== 'GET') return 'not-get';
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return 'not-websocket';
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) return 'bad-key';
  if (req.headers['sec-websocket-version'] !== '13') return 'bad-version';
  if (requestedProtocols(req) === null) return 'bad-protocol';
  return null;
}

/** RFC 6455 §4.1: subprotocols are tokens; `null` when the header is malformed. */
export function requestedProtocols(req: IncomingMessage): string[] | null {
  const header = req.headers['sec-websocket-protocol'];
  if (header === undefined) return [];
  const protocols = header.split(',').map((protocol) => protocol.trim());
  const unique = new Set(protocols);
  if (unique.size !== protocols.length || protocols.some((protocol) => !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(protocol))) return null;
  return protocols;
}

/** How a relayed session ended. */
export interface RelayOutcome {
  /** Whether the client was switched to WebSocket (false: the upstream refused or failed). */
  readonly opened: boolean;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  /** Close code from the side that closed first (1005: none given, 1006: no close frame). */
  readonly code: number;
  readonly closedBy: 'client' | 'upstream' | 'gateway';
  readonly error: string | undefined;
}

export interface RelayRequest {
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  /** `ws://` or `wss://` URL of the upstream endpoint, query included. */
  readonly url: string;
  readonly protocols: readonly string[];
  /** Headers for the upstream handshake (identity, forwarding, cookies, origin). */
  readonly headers: Record<string, string | string[]>;
  readonly connectTimeoutMs: number;
  readonly maxPayload: number;
  /** `Set-Cookie` values for the client's 101 response (a session this request refreshed). */
  readonly setCookies: readonly string[];
  /** The upstream refused or failed the handshake: answer the client's upgrade request. */
  readonly onUpstreamFailure: (status: 502 | 504, error: string) => void;
  /** Called once when the client has been switched to WebSocket. */
  readonly onOpen: () => void;
  /** Called exactly once at the end, opened or not. */
  readonly onDone: (outcome: RelayOutcome) => void;
}

/** Bytes buffered towards one side above which the other side is paused. */
const HIGH_WATER = 1024 * 1024;

/** RFC 6455 §7.4: codes an endpoint may send in a close frame. */
function sendableCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** Owns the WebSocket server side and every relayed session, so that `closeAll` can end them. */
export class WebSocketRelay {
  readonly #server: WebSocketServer;
  readonly #chosenProtocol = new WeakMap<IncomingMessage, string>();
  readonly #setCookies = new WeakMap<IncomingMessage, readonly string[]>();
  readonly #sessions = new Set<{ close(code: number, reason: string): void; terminate(): void }>();

  constructor(maxPayload: number) {
    this.#server = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload,
      clientTracking: false,
      handleProtocols: (_offered, req) => this.#chosenProtocol.get(req) ?? false,
    });
    // RFC 6455 §4.2.2: the handshake response may set cookies, and browsers store them.
    this.#server.on('headers', (headers: string[], req: IncomingMessage) => {
      const cookies = this.#setCookies.get(req);
      if (cookies !== undefined) for (const cookie of cookies) headers.push(`Set-Cookie: ${cookie}`);
    });
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  relay(request: RelayRequest): void {
    const { req, socket } = request;
    if (socket.destroyed) {
      // The client left while its upgrade was being decided: its 'close' has been emitted already.
      request.onDone({ opened: false, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, code: 1006, closedBy: 'client', error: 'client-closed' });
      return;
    }
    let settled = false;
    let opened = false;
    let failure: string | undefined;
    const upstream = new WebSocket(request.url, [...request.protocols], {
      headers: request.headers,
      perMessageDeflate: false,
      handshakeTimeout: request.connectTimeoutMs,
      maxPayload: request.maxPayload,
      followRedirects: false,
    });
    const fail = (status: 502 | 504, error: string): void => {
      if (settled) return;
      settled = true;
      socket.off('close', onClientGone);
      request.onUpstreamFailure(status, error);
      request.onDone({ opened: false, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, code: 1006, closedBy: 'upstream', error });
    };
    const onClientGone = (): void => {
      if (settled) return;
      settled = true;
      upstream.terminate();
      request.onDone({ opened: false, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, code: 1006, closedBy: 'client', error: 'client-closed' });
    };
    socket.once('close', onClientGone);
    upstream.once('unexpected-response', (_request, response) => {
      failure = `upstream-status-${response.statusCode ?? 0}`;
      response.resume();
      upstream.terminate();
    });
    upstream.on('error', (error: Error & { code?: string }) => {
      failure ??= /timeout/i.test(error.message) ? 'handshake-timeout' : (error.code ?? 'upstream-error');
      if (!opened) fail(failure === 'handshake-timeout' ? 504 : 502, failure);
    });
    upstream.once('close', () => {
      if (!opened) fail(502, failure ?? 'upstream-closed');
    });
    upstream.once('open', () => {
      if (settled) {
        upstream.terminate();
        return;
      }
      if (!socket.readable || !socket.writable) {
        // ws switches only a client socket open both ways; it destroys any other without calling
        // back, which would leave this upstream session open and the outcome never reported.
        socket.destroy();
        onClientGone();
        return;
      }
      opened = true;
      settled = true;
      socket.off('close', onClientGone);
      if (upstream.protocol !== '') this.#chosenProtocol.set(req, upstream.protocol);
      if (request.setCookies.length > 0) this.#setCookies.set(req, request.setCookies);
      this.#server.handleUpgrade(req, socket, request.head, (client) => {
        request.onOpen();
        this.#pair(client, upstream, request.onDone);
      });
    });
  }

  /** Closes every relayed session with 1001 (going away), as at shutdown. */
  closeAll(): void {
    for (const session of this.#sessions) session.close(1001, 'gateway shutting down');
  }

  /** Drops every relayed session without a closing handshake (peers that did not answer 1001). */
  terminateAll(): void {
    for (const session of this.#sessions) session.terminate();
  }

  #pair(client: WebSocket, upstream: WebSocket, onDone: (outcome: RelayOutcome) => void): void {
    const counts = { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 };
    let first: { code: number; by: 'client' | 'upstream' | 'gateway' } | null = null;
    let error: string | undefined;
    let closed = 0;
    const session = {
      close: (code: number, reason: string): void => {
        first ??= { code, by: 'gateway' };
        client.close(code, reason);
        upstream.close(code, reason);
      },
      terminate: (): void => {
        first ??= { code: 1006, by: 'gateway' };
        client.terminate();
        upstream.terminate();
      },
    };
    this.#sessions.add(session);

    pipe(client, upstream, (bytes) => {
      counts.bytesIn += bytes;
      counts.messagesIn += 1;
    });
    pipe(upstream, client, (bytes) => {
      counts.bytesOut += bytes;
      counts.messagesOut += 1;
    });

    const onClose = (side: 'client' | 'upstream', other: WebSocket) => (code: number, reason: Buffer) => {
      first ??= { code, by: side };
      if (other.readyState === WebSocket.OPEN) {
        if (code === 1005) other.close();
        else other.close(sendableCode(code) ? code : 1011, reason.length <= 123 ? reason : undefined);
      } else if (other.readyState === WebSocket.CONNECTING) {
        other.terminate();
      }
      closed += 1;
      if (closed === 2) {
        this.#sessions.delete(session);
        onDone({ opened: true, ...counts, code: first.code, closedBy: first.by, error });
      }
    };
    client.once('close', onClose('client', upstream));
    upstream.once('close', onClose('upstream', client));
    client.on('error', (cause: Error & { code?: string }) => {
      error ??= `client-${cause.code ?? 'error'}`;
      client.terminate();
    });
    upstream.on('error', (cause: Error & { code?: string }) => {
      error ??= cause.code ?? 'upstream-error';
      upstream.terminate();
    });
  }
}

/** Relays messages from `from` to `to`, pausing `from` while `to` has too much buffered. */
function pipe(from: WebSocket, to: WebSocket, count: (bytes: number) => void): void {
  let paused = false;
  const resumeWhenDrained = (): void => {
    if (paused && to.bufferedAmount < HIGH_WATER / 2) {
      paused = false;
      from.resume();
    }
  };
  from.on('message', (data: RawData, isBinary: boolean) => {
    count(messageBytes(data));
    if (to.readyState !== WebSocket.OPEN) return;
    to.send(data, { binary: isBinary }, resumeWhenDrained);
    if (!paused && to.bufferedAmount > HIGH_WATER) {
      paused = true;
      from.pause();
    }
  });
}

function messageBytes(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, part) => sum + part.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}
