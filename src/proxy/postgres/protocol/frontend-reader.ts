import { FrameQueue, checkDeclaredLength, checkLimit } from './frame-queue.js';
import {
  decodeFrontendMessage,
  decodeStartupPacket,
  fixedFrontendLength,
  isFrontendTypeByte,
  type FrontendMessage,
} from './frontend-messages.js';
import { describeTypeByte, protocolError, type ProtocolError } from './protocol-error.js';

/** PostgreSQL's own bound on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const DEFAULT_MAX_STARTUP_BYTES = 10_000;
export const DEFAULT_MAX_FRONTEND_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface FrontendReaderOptions {
  /** Largest untagged startup packet accepted, length word included. Default 10,000. */
  readonly maxStartupBytes?: number;
  /** Largest tagged message accepted, type byte and length word included. Default 64 MiB. */
  readonly maxMessageBytes?: number;
  /** Where to begin; `tagged` skips the startup phase. Default `startup`. */
  readonly mode?: FrontendReaderMode;
}

/**
 * `startup`: untagged packets (`Int32 length`, `Int32 code`, body) as a connection opens.
 * `tagged`: `Byte1 type`, `Int32 length`, body — everything after the StartupMessage.
 */
export type FrontendReaderMode = 'startup' | 'tagged';

/**
 * An incremental reader of what a client sends, with no I/O of its own: push the bytes as they
 * arrive, then pull messages until `next()` returns `undefined` (more bytes needed).
 *
 * Framing follows PostgreSQL docs §55.7 "Message Formats". Every declared length is checked
 * against its bound as soon as the length word arrives, before any body byte is buffered. The
 * first violation is returned once as a {@link ProtocolError} value; from then on the reader
 * drops what it holds, ignores pushed bytes and `next()` returns `undefined`, so a drain loop
 * always ends. `failure` keeps the error.
 *
 * After a StartupMessage the reader switches itself to `tagged` mode (§55.2.1 "Start-up": everything that
 * follows the StartupMessage is tagged); SSLRequest and GSSENCRequest leave it in `startup`
 * mode, since a StartupMessage or CancelRequest follows them.
 */
export class FrontendReader {
  readonly #queue = new FrameQueue();
  readonly #maxStartupBytes: number;
  readonly #maxMessageBytes: number;
  #mode: FrontendReaderMode;
  #failure: ProtocolError | null = null;
  #failureReported = false;

  constructor(options: FrontendReaderOptions = {}) {
    this.#maxStartupBytes = checkLimit(options.maxStartupBytes ?? DEFAULT_MAX_STARTUP_BYTES, 'maxStartupBytes', 8);
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_FRONTEND_MESSAGE_BYTES;
    this.#maxMessageBytes = checkLimit(maxMessageBytes, 'maxMessageBytes', 5);
    this.#mode = options.mode ?? 'startup';
  }

  get mode(): FrontendReaderMode {
    return this.#mode;
  }

  /** Switches framing; the session calls this only to start in or return to a known phase. */
  setMode(mode: FrontendReaderMode): void {
    this.#mode = mode;
  }

  /** Bytes received and not yet returned as messages. */
  get bufferedBytes(): number {
    return this.#queue.length;
  }

  /** The protocol error that stopped this reader, if any. */
  get failure(): ProtocolError | null {
    return this.#failure;
  }

  /** Adds received bytes; copies nothing. Ignored once the reader has failed. */
  push(chunk: Buffer): void {
    if (this.#failure === null) this.#queue.push(chunk);
  }

  /** The next complete message, a protocol error (once), or `undefined` when more bytes are needed. */
  next(): FrontendMessage | ProtocolError | undefined {
    if (this.#failure !== null) {
      if (this.#failureReported) return undefined;
      this.#failureReported = true;
      return this.#failure;
    }
    const result = this.#mode === 'startup' ? this.#nextStartup() : this.#nextTagged();
    if (result === undefined || result.type !== 'ProtocolError') return result;
    return this.#fail(result);
  }

  /** Pulls every complete message; stops after more bytes are needed or after an error. */
  *drain(): Generator<FrontendMessage | ProtocolError, void, undefined> {
    for (;;) {
      const item = this.next();
      if (item === undefined) return;
      yield item;
      if (item.type === 'ProtocolError') return;
    }
  }

  #nextStartup(): FrontendMessage | ProtocolError | undefined {
    const queue = this.#queue;
    if (queue.length < 4) return undefined;
    const length = queue.int32At(0);
    // §55.7: the length word counts itself; a startup packet also holds a 4-byte code.
    if (length < 8) {
      return protocolError('invalid-length', `startup packet declares length ${length}; the minimum is 8`);
    }
    if (length > this.#maxStartupBytes) {
      const limit = this.#maxStartupBytes;
      return protocolError('message-too-large', `startup packet declares ${length} bytes; the limit is ${limit}`);
    }
    if (queue.length < length) return undefined;
    const packet = decodeStartupPacket(queue.take(length));
    if (packet.type === 'StartupMessage') this.#mode = 'tagged';
    return packet;
  }

  #nextTagged(): FrontendMessage | ProtocolError | undefined {
    const queue = this.#queue;
    if (queue.length < 1) return undefined;
    const typeByte = queue.byteAt(0);
    if (!isFrontendTypeByte(typeByte)) {
      const message = `unknown frontend message type ${describeTypeByte(typeByte)}`;
      return protocolError('unknown-message-type', message, String.fromCharCode(typeByte));
    }
    if (queue.length < 5) return undefined;
    const length = queue.int32At(1);
    const problem = checkDeclaredLength(typeByte, length, fixedFrontendLength(typeByte), this.#maxMessageBytes);
    if (problem !== null) return problem;
    if (queue.length < length + 1) return undefined;
    return decodeFrontendMessage(queue.take(length + 1));
  }

  #fail(error: ProtocolError): ProtocolError {
    this.#failure = error;
    this.#failureReported = true;
    this.#queue.clear();
    return error;
  }
}
