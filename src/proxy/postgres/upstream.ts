import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { UpstreamTlsMode } from '../../config/index.js';
import type { ClientError } from './errors.js';
import { CLOSED, SocketInbox } from './inbox.js';
import {
  BackendReader,
  chooseScramChannelBinding,
  encodeCancelRequest,
  encodePasswordMessage,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeSSLRequest,
  encodeStartupMessage,
  md5Password,
  ScramClient,
  SQLSTATE,
  tlsServerEndPointHash,
  type BackendMessage,
  type ScramKeyCache,
  type SqlState,
  type SSLResponse,
  type TransactionStatus,
} from './protocol/index.js';

/** Where a Postgres resource lives (the config's `resources[].upstream`). */
export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly tls: UpstreamTlsMode;
  /** PEM text of the CA for `verify-full`; the system's CAs when absent. */
  readonly ca?: string;
}

export interface UpstreamLoginOptions {
  /** The resource's name, for messages. */
  readonly resource: string;
  readonly target: UpstreamTarget;
  readonly user: string;
  readonly password: string;
  /** More startup parameters (application_name, client_encoding, options, ...). */
  readonly params: ReadonlyMap<string, string>;
  /** The whole connect-and-login budget. */
  readonly timeoutMs: number;
  readonly keyCache: ScramKeyCache;
}

/** A logged-in upstream connection, paused, ready for the session relay. */
export interface UpstreamConnection {
  readonly socket: Duplex;
  /** The reader that framed the login; it may hold bytes already (none in practice). */
  readonly reader: BackendReader;
  /** ParameterStatus frames as received, to relay to the client unchanged. */
  readonly parameterStatus: readonly Buffer[];
  /** NoticeResponse frames received during login, to relay too. */
  readonly notices: readonly Buffer[];
  readonly backendKey: { readonly pid: number; readonly secretKey: Buffer };
  readonly status: TransactionStatus;
  readonly tls: boolean;
}

export type UpstreamResult =
  | { readonly ok: true; readonly connection: UpstreamConnection }
  | { readonly ok: false; readonly reason: string; readonly error: ClientError };

/**
 * The name of a reported server setting whose value would make the server read statement text
 * differently from the gateway's parser (UTF-8, standard strings), or `null`: with
 * `standard_conforming_strings` off backslashes in '...' are escapes, and in a client encoding such
 * as SJIS a backslash or quote can be the second byte of a character (PostgreSQL docs §4.1.2.1,
 * §24.3.1).
 */
export function unsafeReadingSetting(name: string, value: string): string | null {
  if (name === 'standard_conforming_strings') return value === 'on' ? null : name;
  if (name === 'client_encoding') return value === 'UTF8' ? null : name;
  return null;
}

/**
 * Connects to a resource's PostgreSQL and logs in with the chosen login's credentials, which
 * never reach the client (PostgreSQL docs §55.2.1 "Start-up", §55.3 "SASL Authentication"):
 * TCP; then, per the resource's `tls` mode, SSLRequest and a TLS handshake (§55.2.10); then the
 * StartupMessage and whichever password exchange the server asks for — SCRAM-SHA-256 (with
 * channel binding when the server offers SCRAM-SHA-256-PLUS over TLS), md5, or cleartext — and
 * the ParameterStatus/BackendKeyData messages up to the first ReadyForQuery.
 */
export async function connectUpstream(options: UpstreamLoginOptions): Promise<UpstreamResult> {
  const { target, resource } = options;
  const where = `upstream "${resource}" (${target.host}:${target.port})`;
  const fail = (reason: string, message: string, code: SqlState = SQLSTATE.sqlclient_unable_to_establish_sqlconnection): UpstreamResult => ({
    ok: false,
    reason,
    error: { code, message },
  });

  let socket: Socket;
  try {
    socket = netConnect({ host: target.host, port: target.port });
  } catch (error) {
    return fail('connect-failed', `could not connect to ${where}: ${(error as Error).message}`);
  }
  socket.setNoDelay(true);
  let stream: Duplex = socket;
  let lastError: Error | null = null;
  socket.on('error', (error) => {
    lastError = error;
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stream.destroy();
    socket.destroy();
  }, options.timeoutMs);
  const closedReason = (): UpstreamResult =>
    timedOut
      ? fail('timeout', `${where} did not complete the login within ${options.timeoutMs} ms`)
      : fail('connect-failed', `could not connect to ${where}: ${lastError?.message ?? 'the connection closed'}`);

  const attempt = async (): Promise<UpstreamResult> => {
    const connected = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('close', () => resolve(false));
    });
    if (!connected) return closedReason();

    let reader = new BackendReader({ bulk: 'skip' });
    let inbox = new SocketInbox<BackendMessage | SSLResponse>(socket, reader);
    let tls: TLSSocket | null = null;
    if (target.tls !== 'disable') {
      reader.expectSslResponse();
      socket.write(encodeSSLRequest());
      const answer = await inbox.next();
      if (answer.type === CLOSED.type) return closedReason();
      if (answer.type === 'ErrorResponse') return fail('tls-refused', `${where} refused SSLRequest: ${answer.fields.message}`);
      if (answer.type !== 'SSLResponse') return fail('protocol', `${where} answered SSLRequest with ${answer.type}`);
      if (answer.accepted) {
        // Bytes that came with the `S` were not protected by TLS (CVE-2021-23222).
        if (reader.bufferedBytes > 0) return fail('protocol', `${where} sent unexpected data after accepting SSLRequest`);
        inbox.detach();
        const secured = await startTls(socket, target);
        if (!secured.ok) return fail('tls-failed', `TLS with ${where} failed: ${secured.message}`);
        tls = secured.socket;
        stream = tls;
        tls.on('error', (error) => {
          lastError = error;
        });
        reader = new BackendReader({ bulk: 'skip' });
        inbox = new SocketInbox<BackendMessage | SSLResponse>(tls, reader);
      } else if (target.tls !== 'prefer') {
        return fail('tls-refused', `${where} does not support TLS, but the resource requires it (tls: ${target.tls})`);
      }
    }

    const params = new Map<string, string>([
      ['user', options.user],
      ['database', target.database],
    ]);
    for (const [name, value] of options.params) if (!params.has(name)) params.set(name, value);
    stream.write(encodeStartupMessage(params));

    const parameterStatus: Buffer[] = [];
    const notices: Buffer[] = [];
    let backendKey: { pid: number; secretKey: Buffer } | null = null;
    let scram: ScramClient | null = null;
    let authenticated = false;
    for (;;) {
      const message = await inbox.next();
      if (message.type === CLOSED.type) return closedReason();
      switch (message.type) {
        case 'ProtocolError':
          return fail('protocol', `${where} sent a malformed message: ${message.message}`);
        case 'ErrorResponse': {
          const { code, message: text } = message.fields;
          // A refused upstream password is the gateway's configuration, not the client's doing.
          const clientCode = code === SQLSTATE.invalid_password || code === SQLSTATE.invalid_authorization_specification
            ? SQLSTATE.sqlserver_rejected_establishment_of_sqlconnection
            : /^[0-9A-Z]{5}$/.test(code) ? (code as SqlState) : SQLSTATE.sqlclient_unable_to_establish_sqlconnection;
          return fail('upstream-error', `${where} refused the login of "${options.user}": ${text}`, clientCode);
        }
        case 'AuthenticationOk':
          if (scram !== null && !authenticated) return fail('scram', `${where} ended SCRAM without proving it knows the password`);
          authenticated = true;
          break;
        case 'AuthenticationCleartextPassword':
          stream.write(encodePasswordMessage(options.password));
          break;
        case 'AuthenticationMD5Password':
          stream.write(encodePasswordMessage(md5Password(options.user, options.password, message.salt)));
          break;
        case 'AuthenticationSASL': {
          const certificateHash = tls === null ? null : peerCertificateHash(tls);
          const binding = chooseScramChannelBinding(message.mechanisms, certificateHash, tls !== null);
          if (!binding.ok) return fail('scram', `${where}: ${binding.reason}`);
          scram = new ScramClient({ password: options.password, channelBinding: binding.value, keyCache: options.keyCache });
          stream.write(encodeSASLInitialResponse(scram.mechanism, scram.clientFirstMessage));
          break;
        }
        case 'AuthenticationSASLContinue': {
          if (scram === null) return fail('scram', `${where} sent SASLContinue outside SCRAM`);
          const final = await scram.handleServerFirst(message.data);
          if (!final.ok) return fail('scram', `${where}: ${final.reason}`);
          stream.write(encodeSASLResponse(final.value));
          break;
        }
        case 'AuthenticationSASLFinal': {
          if (scram === null) return fail('scram', `${where} sent SASLFinal outside SCRAM`);
          const outcome = scram.handleServerFinal(message.data);
          if (!outcome.ok) return fail('scram', `${where}: ${outcome.reason}`);
          authenticated = true;
          break;
        }
        case 'ParameterStatus':
          if (unsafeReadingSetting(message.name, message.value) !== null) {
            return fail('unsafe-setting', `${where} runs with ${message.name}=${message.value}; Tollgate needs standard_conforming_strings on (the default) and client_encoding UTF8 to read SQL as the server does`);
          }
          parameterStatus.push(message.raw);
          break;
        case 'NoticeResponse':
          notices.push(message.raw);
          break;
        case 'BackendKeyData':
          if (message.secretKey.length !== 4) return fail('protocol', `${where} sent a ${message.secretKey.length}-byte cancel key to a protocol 3.0 client`);
          backendKey = { pid: message.pid, secretKey: Buffer.from(message.secretKey) };
          break;
        case 'ReadyForQuery': {
          if (!authenticated) return fail('protocol', `${where} was ready before authenticating`);
          if (backendKey === null) return fail('protocol', `${where} sent no BackendKeyData, so queries could not be cancelled`);
          inbox.detach();
          return {
            ok: true,
            connection: { socket: stream, reader, parameterStatus, notices, backendKey, status: message.status, tls: tls !== null },
          };
        }
        default:
          return fail('protocol', `${where} sent ${message.type} during login`);
      }
    }
  };
  const result = await attempt();
  clearTimeout(timer);
  if (!result.ok) {
    stream.destroy();
    socket.destroy();
  }
  return result;
}

function startTls(socket: Socket, target: UpstreamTarget): Promise<{ ok: true; socket: TLSSocket } | { ok: false; message: string }> {
  const verify = target.tls === 'verify-full';
  return new Promise((resolve) => {
    const secure = tlsConnect({
      socket,
      host: target.host,
      ...(isIP(target.host) === 0 ? { servername: target.host } : {}),
      rejectUnauthorized: verify,
      ...(verify && target.ca !== undefined ? { ca: target.ca } : {}),
      ...(verify ? {} : { checkServerIdentity: () => undefined }),
    });
    const onError = (error: Error): void => {
      secure.destroy();
      resolve({ ok: false, message: error.message });
    };
    secure.once('error', onError);
    secure.once('secureConnect', () => {
      secure.off('error', onError);
      resolve({ ok: true, socket: secure });
    });
  });
}

/** RFC 5929 `tls-server-end-point` data of the server certificate, or `null` when unavailable. */
function peerCertificateHash(socket: TLSSocket): Buffer | null {
  const certificate = socket.getPeerCertificate();
  if (certificate === null || certificate.raw === undefined) return null;
  const hash = tlsServerEndPointHash(certificate.raw);
  return hash.ok ? hash.value : null;
}

/**
 * Sends a CancelRequest for an upstream backend (PostgreSQL docs §55.2.8 "Canceling Requests in
 * Progress") on a new connection, over TLS when the resource requires it. The server answers
 * nothing; resolves once the request is written and the connection closed, or at the timeout.
 */
export function sendUpstreamCancel(target: UpstreamTarget, pid: number, secretKey: Buffer, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: target.host, port: target.port });
    let stream: Duplex = socket;
    let settled = false;
    let written = false;
    const finish = (sent: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.destroy();
      socket.destroy();
      resolve(sent);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('error', () => finish(false));
    // The server closes the connection once it has read the request.
    socket.once('close', () => finish(written));
    const request = encodeCancelRequest(pid, secretKey);
    socket.once('connect', () => {
      if (target.tls !== 'require' && target.tls !== 'verify-full') {
        socket.end(request, () => {
          written = true;
        });
        return;
      }
      socket.write(encodeSSLRequest());
      socket.once('data', (answer: Buffer) => {
        if (answer[0] !== 0x53 || answer.length !== 1) {
          finish(false);
          return;
        }
        void startTls(socket, target).then((secured) => {
          if (!secured.ok) {
            finish(false);
            return;
          }
          stream = secured.socket;
          secured.socket.on('error', () => finish(false));
          secured.socket.end(request, () => {
            written = true;
          });
        });
      });
    });
  });
}
