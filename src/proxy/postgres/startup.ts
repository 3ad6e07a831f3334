import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { TlsFacts } from './audit-events.js';
import { protocolViolation } from './errors.js';
import { CLOSED, SocketInbox } from './inbox.js';
import {
  encodeGSSENCResponse,
  encodeSSLResponse,
  FrontendReader,
  type CancelRequest,
  type FrontendMessage,
  type StartupMessage,
} from './protocol/index.js';

/** ALPN protocol name of PostgreSQL (PostgreSQL docs §55.2.10 "SSL Session Encryption"). */
export const PG_ALPN = 'postgresql';
/** First byte of a TLS record carrying a handshake (RFC 8446 §5.1, ContentType handshake = 22). */
const TLS_HANDSHAKE = 0x16;

export interface StartupSettings {
  /** The listener's TLS context, or `null` when it has none (cleartext on loopback only). */
  readonly tls: SecureContext | null;
  readonly maxStartupBytes: number;
  readonly maxMessageBytes: number;
}

export type StartupOutcome =
  | {
      readonly kind: 'startup';
      /** The socket to talk on from now: the TLS socket after an upgrade. */
      readonly socket: Duplex;
      /** Reading the socket, in tagged mode, holding whatever followed the StartupMessage. */
      readonly inbox: SocketInbox<FrontendMessage>;
      /** The inbox's reader, handed to the session relay once the inbox is detached. */
      readonly reader: FrontendReader;
      readonly startup: StartupMessage;
      readonly tls: TlsFacts | null;
    }
  | { readonly kind: 'cancel'; readonly request: CancelRequest }
  /** The peer went away, or the outcome was sent (`reply`) and the connection is to be closed. */
  | { readonly kind: 'closed'; readonly reply: Buffer | null; readonly reason: string };

/**
 * The connection-opening conversation (PostgreSQL docs §55.2.1 "Start-up", §55.2.10 "SSL Session
 * Encryption", §55.2.11 "GSSAPI Session Encryption"), up to a StartupMessage or CancelRequest:
 *
 * - a TLS ClientHello as the very first bytes is PostgreSQL 17's direct TLS
 *   (`sslnegotiation=direct`), which must carry the ALPN protocol `postgresql`;
 * - `SSLRequest` is answered `S` and the connection upgraded when the listener has TLS, `N`
 *   otherwise; bytes that arrived behind the SSLRequest were not protected by TLS and are a
 *   protocol violation (CVE-2021-23222);
 * - `GSSENCRequest` is answered `N` (no GSSAPI encryption), after which the client may go on.
 *
 * Time limits are the caller's: it destroys the socket when the startup timeout passes, which
 * ends this conversation as `closed`.
 */
export async function negotiateStartup(socket: Socket, settings: StartupSettings): Promise<StartupOutcome> {
  const first = await firstChunk(socket);
  if (first === null) return { kind: 'closed', reply: null, reason: 'closed-before-startup' };
  socket.unshift(first);

  let stream: Duplex = socket;
  let tls: TlsFacts | null = null;
  if (first[0] === TLS_HANDSHAKE) {
    if (settings.tls === null) return { kind: 'closed', reply: null, reason: 'direct-tls-without-certificate' };
    const upgraded = await upgrade(socket, settings.tls, 'direct');
    if (upgraded === null) return { kind: 'closed', reply: null, reason: 'tls-handshake-failed' };
    if (upgraded.facts.alpn !== PG_ALPN) {
      upgraded.socket.destroy();
      return { kind: 'closed', reply: null, reason: 'direct-tls-without-alpn' };
    }
    stream = upgraded.socket;
    tls = upgraded.facts;
  }

  let reader = newReader(settings);
  let inbox = new SocketInbox<FrontendMessage>(stream, reader);
  for (;;) {
    const message = await inbox.next();
    switch (message.type) {
      case CLOSED.type:
        return { kind: 'closed', reply: null, reason: 'closed-before-startup' };
      case 'ProtocolError':
        return { kind: 'closed', reply: protocolViolation(message.message), reason: message.code };
      case 'SSLRequest': {
        if (tls !== null) return { kind: 'closed', reply: protocolViolation('SSLRequest on a connection that already uses TLS'), reason: 'repeated-ssl-request' };
        if (settings.tls === null) {
          stream.write(encodeSSLResponse(false));
          break;
        }
        if (reader.bufferedBytes > 0) {
          return { kind: 'closed', reply: protocolViolation('data arrived after SSLRequest, before the TLS handshake'), reason: 'data-after-ssl-request' };
        }
        inbox.detach();
        stream.write(encodeSSLResponse(true));
        const upgraded = await upgrade(socket, settings.tls, 'request');
        if (upgraded === null) return { kind: 'closed', reply: null, reason: 'tls-handshake-failed' };
        // libpq 17 and later send ALPN after an SSLRequest too; when one is sent, it must be ours.
        if (upgraded.facts.alpn !== null && upgraded.facts.alpn !== PG_ALPN) {
          upgraded.socket.destroy();
          return { kind: 'closed', reply: null, reason: 'wrong-alpn' };
        }
        stream = upgraded.socket;
        tls = upgraded.facts;
        reader = newReader(settings);
        inbox = new SocketInbox<FrontendMessage>(stream, reader);
        break;
      }
      case 'GSSENCRequest':
        if (tls !== null) return { kind: 'closed', reply: protocolViolation('GSSENCRequest on a TLS connection'), reason: 'gssenc-after-tls' };
        stream.write(encodeGSSENCResponse(false));
        break;
      case 'CancelRequest':
        inbox.detach();
        return { kind: 'cancel', request: message };
      case 'StartupMessage':
        return { kind: 'startup', socket: stream, inbox, reader, startup: message, tls };
      default:
        return { kind: 'closed', reply: protocolViolation(`unexpected ${message.type} before StartupMessage`), reason: 'unexpected-message' };
    }
  }
}

function newReader(settings: StartupSettings): FrontendReader {
  return new FrontendReader({ maxStartupBytes: settings.maxStartupBytes, maxMessageBytes: settings.maxMessageBytes });
}

/** The first bytes the client sends, left unread in the socket's buffer by the caller's `unshift`. */
function firstChunk(socket: Socket): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const onData = (chunk: Buffer): void => {
      done();
      socket.pause();
      resolve(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(null);
    };
    const done = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
  });
}

/** Runs the server side of a TLS handshake over `socket`; `null` when it fails or the peer leaves. */
function upgrade(socket: Socket, context: SecureContext, negotiation: TlsFacts['negotiation']): Promise<{ socket: TLSSocket; facts: TlsFacts } | null> {
  return new Promise((resolve) => {
    const secure = new TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: [PG_ALPN] });
    const onFail = (): void => {
      secure.off('secure', onSecure);
      secure.destroy();
      resolve(null);
    };
    const onSecure = (): void => {
      secure.off('error', onFail);
      secure.off('close', onFail);
      // The owner's error listener stays on the raw socket; the TLS socket needs its own.
      secure.on('error', () => undefined);
      const cipher = secure.getCipher();
      const alpn = secure.alpnProtocol;
      resolve({
        socket: secure,
        facts: { protocol: secure.getProtocol() ?? 'unknown', cipher: cipher.name, negotiation, alpn: typeof alpn === 'string' ? alpn : null },
      });
    };
    secure.once('secure', onSecure);
    secure.once('error', onFail);
    secure.once('close', onFail);
  });
}
