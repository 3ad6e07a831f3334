/**
 * Clients that send exactly what a test says: `sendRequest` passes the request target through
 * untouched (fetch would normalise `..` and `%2e` away before the gateway ever saw them), and
 * `sendRaw` writes bytes on a fresh socket and collects everything until the server closes it.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface SendOptions {
  readonly method?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string | Buffer;
  /** For https: the CA (PEM) that signed the server's certificate. */
  readonly ca?: string;
  /** Send `Expect: 100-continue` and the body only once the server says 100; records whether it did. */
  readonly expectContinue?: boolean;
}

export interface SentResponse extends RawResponse {
  /** Whether a `100 Continue` arrived before the final response. */
  readonly continued: boolean;
}

/** Sends one request with `target` as the literal request target, on its own connection. */
export function sendRequest(base: string, target: string, options: SendOptions = {}): Promise<SentResponse> {
  const url = new URL(base);
  const send = url.protocol === 'https:' ? httpsRequest : request;
  const headers = { ...options.headers, ...(options.expectContinue === true ? { expect: '100-continue' } : {}) };
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = send(
      { host: url.hostname, port: url.port, method: options.method ?? 'GET', path: target, headers, agent: false, ...(options.ca === undefined ? {} : { ca: options.ca }) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), continued }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.expectContinue === true) {
      req.on('continue', () => {
        continued = true;
        req.end(options.body);
      });
      req.flushHeaders();
    } else {
      req.end(options.body);
    }
  });
}

/** Writes `bytes` on a new connection and resolves with all that came back once the server closed it. */
export function sendRaw(base: string, bytes: string, timeoutMs = 5_000): Promise<{ readonly text: string; readonly closedByServer: boolean }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let text = '';
    let closedByServer = false;
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('end', () => {
      closedByServer = true;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedByServer });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET') closedByServer = true;
      else reject(error);
    });
    socket.write(bytes, 'latin1');
  });
}

/** The status codes of every response in a raw byte stream, in order. */
export function statusLines(text: string): number[] {
  return [...text.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((match) => Number(match[1]));
}
