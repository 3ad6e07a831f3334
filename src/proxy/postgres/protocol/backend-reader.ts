import {
  decodeBackendMessage,
  fixedBackendLength,
  isBackendTypeByte,
  type BackendMessage,
  type SSLResponse,
} from './backend-messages.js';
import { FrameQueue, checkDeclaredLength, checkLimit } from './frame-queue.js';
import { describeTypeByte, protocolError, type ProtocolError } from './protocol-error.js';

/**
 * 1 GiB: PostgreSQL's own largest allocation (MaxAllocSize), so a legitimate row is never
 * refused; the upstream is trusted further than a client, but never without a bound.
 */
export const DEFAULT_MAX_BACKEND_MESSAGE_BYTES = 1024 * 1024 * 1024;

export interface BackendReaderOptions {
  /** Largest message accepted, type byte and length word included. Default 1 GiB. */
  readonly maxMessageBytes?: number;
  /**
   * `retain` (default): DataRow and CopyData come whole, with `raw`, like every other message.
   * `skip`: they are returned as soon as their header (and a DataRow's column count) arrives,
   * and their bodies are dropped as they stream in, never buffered; `raw` is `null`. For a
   * proxy that forwards the upstream's bytes itself and reads them only to track state, this
   * keeps memory flat however large a row or COPY chunk is.
   */
  readonly bulk?: 'retain' | 'skip';
}

/**
 * An incremental reader of what a PostgreSQL server sends, with the framing discipline of
 * {@link FrontendReader}: no I/O, lengths checked against the bound before buffering, the first
 * protocol error returned once as a value, after which the reader stops.
 *
 * Why not `pg-protocol`'s `Parser`: it takes no bound on declared lengths, decodes every DataRow
 * field into strings (work a proxy does not need), keeps no raw bytes to forward, knows only
 * 4-byte cancel keys, and hands messages to a callback, so a caller cannot stop between two
 * messages (to wait for an audit append, say) without buffering them itself. A pull reader over
 * a chunk list does all of that and shares its framing code with the frontend reader.
 */
export class BackendReader {
  readonly #queue = new FrameQueue();
  readonly #maxMessageBytes: number;
  readonly #skipBulk: boolean;
  #expectSsl = false;
  /** Body bytes of a skipped DataRow or CopyData still to drop. */
  #skipRemaining = 0;
  #failure: ProtocolError | null = null;
  #failureReported = false;

  constructor(options: BackendReaderOptions = {}) {
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_BACKEND_MESSAGE_BYTES;
    this.#maxMessageBytes = checkLimit(maxMessageBytes, 'maxMessageBytes', 5);
    this.#skipBulk = options.bulk === 'skip';
  }

  /** Bytes received and not yet returned as messages (skipped bodies are never counted). */
  get bufferedBytes(): number {
    return this.#queue.length;
  }

  /** The protocol error that stopped this reader, if any. */
  get failure(): ProtocolError | null {
    return this.#failure;
  }

  /**
   * The next read is the single byte that answers an SSLRequest (§55.2.10 "SSL Session Encryption"). After an accepted
   * answer the caller must check that `bufferedBytes` is 0 before starting TLS: bytes that came
   * with the `S` were not protected by TLS and must not be trusted (CVE-2021-23222).
   */
  expectSslResponse(): void {
    this.#expectSsl = true;
  }

  /** Adds received bytes; copies nothing. Ignored once the reader has failed. */
  push(chunk: Buffer): void {
    if (this.#failure !== null) return;
    if (this.#skipRemaining > 0 && this.#queue.length === 0) {
      const dropped = Math.min(this.#skipRemaining, chunk.length);
      this.#skipRemaining -= dropped;
      if (dropped === chunk.length) return;
      this.#queue.push(chunk.subarray(dropped));
      return;
    }
    this.#queue.push(chunk);
  }

  /** The next complete message, a protocol error (once), or `undefined` when more bytes are needed. */
  next(): BackendMessage | SSLResponse | ProtocolError | undefined {
    if (this.#failure !== null) {
      if (this.#failureReported) return undefined;
      this.#failureReported = true;
      return this.#failure;
    }
    const result = this.#next();
    if (result === undefined || result.type !== 'ProtocolError') return result;
    this.#failure = result;
    this.#failureReported = true;
    this.#queue.clear();
    this.#skipRemaining = 0;
    return result;
  }

  /** Pulls every complete message; stops after more bytes are needed or after an error. */
  *drain(): Generator<BackendMessage | SSLResponse | ProtocolError, void, undefined> {
    for (;;) {
      const item = this.next();
      if (item === undefined) return;
      yield item;
      if (item.type === 'ProtocolError') return;
    }
  }

  #next(): BackendMessage | SSLResponse | ProtocolError | undefined {
    const queue = this.#queue;
    if (this.#skipRemaining > 0) {
      this.#skipRemaining -= queue.skip(this.#skipRemaining);
      if (this.#skipRemaining > 0) return undefined;
    }
    if (queue.length < 1) return undefined;
    const typeByte = queue.byteAt(0);
    if (this.#expectSsl) {
      // §55.2.10: `S` or `N`; a server too old for SSLRequest answers with an ErrorResponse,
      // which is read as the tagged message it is.
      if (typeByte === 0x53 || typeByte === 0x4e) {
        this.#expectSsl = false;
        queue.skip(1);
        return { type: 'SSLResponse', accepted: typeByte === 0x53 };
      }
      if (typeByte !== 0x45) {
        return protocolError('unknown-message-type', `SSLRequest answered with ${describeTypeByte(typeByte)}`);
      }
    }
    if (!isBackendTypeByte(typeByte)) {
      const message = `unknown backend message type ${describeTypeByte(typeByte)}`;
      return protocolError('unknown-message-type', message, String.fromCharCode(typeByte));
    }
    if (queue.length < 5) return undefined;
    const length = queue.int32At(1);
    const problem = checkDeclaredLength(typeByte, length, fixedBackendLength(typeByte), this.#maxMessageBytes);
    if (problem !== null) return problem;
    const frameLength = length + 1;
    if (this.#skipBulk && (typeByte === 0x44 || typeByte === 0x64)) return this.#skip(typeByte, frameLength);
    if (queue.length < frameLength) return undefined;
    this.#expectSsl = false;
    return decodeBackendMessage(queue.take(frameLength));
  }

  /** Returns a DataRow or CopyData from its header alone and starts dropping its body. */
  #skip(typeByte: number, frameLength: number): BackendMessage | ProtocolError | undefined {
    const queue = this.#queue;
    if (typeByte === 0x64) {
      queue.skip(5);
      this.#skipRemaining = frameLength - 5;
      this.#skipRemaining -= queue.skip(this.#skipRemaining);
      return { type: 'CopyData', byteLength: frameLength, data: null, raw: null };
    }
    if (frameLength < 7) {
      return protocolError('malformed-message', 'DataRow column count runs past the end of the message', 'D');
    }
    if (queue.length < 7) return undefined;
    const columnCount = queue.uint16At(5);
    // Each column needs at least its 4-byte length word.
    if (columnCount * 4 > frameLength - 7) {
      return protocolError('malformed-message', `DataRow column count ${columnCount} exceeds the message`, 'D');
    }
    queue.skip(7);
    this.#skipRemaining = frameLength - 7;
    this.#skipRemaining -= queue.skip(this.#skipRemaining);
    return { type: 'DataRow', columnCount, byteLength: frameLength, raw: null };
  }
}
