/**
 * A raw PostgreSQL wire-protocol client for tests that need exact control of the bytes: it sends
 * frames built with `pg-bytes.ts` and reads backend messages one by one. It answers nothing on
 * its own except the password request of {@link WireClient.login}.
 */
import { connect, type Socket } from 'node:net';
import { BackendReader, type BackendMessage, type ProtocolError } from '../../src/proxy/postgres/protocol/index.js';
import { cstr, frame, int16, int32, packet, version } from './pg-bytes.js';

export type Received = BackendMessage | ProtocolError | { readonly type: 'Closed' };

export class WireClient {
  readonly socket: Socket;
  readonly #reader = new BackendReader();
  readonly #items: Received[] = [];
  #waiter: (() => void) | null = null;
  #closed = false;
  /** Every byte received, for tests that look at the raw stream. */
  received = Buffer.alloc(0);

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.#reader.push(chunk);
      for (const item of this.#reader.drain()) if (item.type !== 'SSLResponse') this.#items.push(item);
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(host: string, port: number): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('connect', () => resolve(new WireClient(socket)));
      socket.once('error', reject);
    });
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** The next message (or `Closed`); fails after `timeoutMs`. */
  async next(timeoutMs = 10_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) return item;
      if (this.#closed) return { type: 'Closed' };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a backend message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Messages up to and including the first that `until` accepts (or `Closed`). */
  async readUntil(until: (message: Received) => boolean, timeoutMs = 10_000): Promise<Received[]> {
    const out: Received[] = [];
    for (;;) {
      const message = await this.next(timeoutMs);
      out.push(message);
      if (until(message) || message.type === 'Closed') return out;
    }
  }

  /** Messages up to and including ReadyForQuery. */
  untilReady(timeoutMs?: number): Promise<Received[]> {
    return this.readUntil((message) => message.type === 'ReadyForQuery', timeoutMs);
  }

  /** StartupMessage, cleartext password, up to the first ReadyForQuery. */
  async login(user: string, database: string, password: string, params: Readonly<Record<string, string>> = {}): Promise<Received[]> {
    const body = [version(3, 0), cstr('user'), cstr(user), cstr('database'), cstr(database)];
    for (const [name, value] of Object.entries(params)) body.push(cstr(name), cstr(value));
    this.send(packet(...body, Buffer.from([0])));
    const first = await this.next();
    if (first.type !== 'AuthenticationCleartextPassword') return [first];
    this.send(frame('p', cstr(password)));
    return [first, ...(await this.untilReady())];
  }

  close(): void {
    this.socket.destroy();
  }

  /** Resolves when the server closed the connection. */
  async closedByServer(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      if (Date.now() > deadline) throw new Error('the server did not close the connection');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }
}

/** Query: `Q`, the SQL. */
export const query = (sql: string): Buffer => frame('Q', cstr(sql));
/** Parse: `P`, name, SQL, no parameter types. */
export const parse = (name: string, sql: string): Buffer => frame('P', cstr(name), cstr(sql), int16(0));
/** Bind: `B`, portal, statement, text parameters, text results. */
export function bind(portal: string, statement: string, params: readonly (string | null)[] = []): Buffer {
  const values = params.map((value) => (value === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(value)), Buffer.from(value)])));
  return frame('B', cstr(portal), cstr(statement), int16(0), int16(params.length), ...values, int16(0));
}
/** Execute: `E`, portal, no row limit. */
export const execute = (portal = '', maxRows = 0): Buffer => frame('E', cstr(portal), int32(maxRows));
export const describePortal = (portal = ''): Buffer => frame('D', Buffer.from('P'), cstr(portal));
export const sync = (): Buffer => frame('S');
export const flush = (): Buffer => frame('H');
export const terminate = (): Buffer => frame('X');

/** The types of received messages, for compact assertions. */
export function types(messages: readonly Received[]): string[] {
  return messages.map((message) => (message.type === 'ReadyForQuery' ? `ReadyForQuery(${message.status})` : message.type === 'ErrorResponse' ? `ErrorResponse(${message.fields.code})` : message.type));
}
