import { TollgateError } from '../../../core/index.js';
import { describeTypeByte, protocolError, type ProtocolError } from './protocol-error.js';

const EMPTY = Buffer.alloc(0);

/** Validates a reader's size bound; a bad one is a wiring bug, since config validates sizes first. */
export function checkLimit(value: number, name: string, minimum: number): number {
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw new TollgateError('TG_ERR_INTERNAL', `${name} must be an integer of at least ${minimum}, not ${value}`);
  }
  return value;
}

/**
 * Checks a tagged message's declared length (§55.7: it counts itself and the body, not the type
 * byte) as soon as the header arrives, before any body byte is buffered: at least 4, exactly
 * `fixed` for bodyless types, and a whole frame of at most `maxFrameBytes`.
 */
export function checkDeclaredLength(
  typeByte: number,
  length: number,
  fixed: number | null,
  maxFrameBytes: number,
): ProtocolError | null {
  const typeChar = String.fromCharCode(typeByte);
  const name = describeTypeByte(typeByte);
  if (length < 4) {
    return protocolError('invalid-length', `message ${name} declares length ${length}; the minimum is 4`, typeChar);
  }
  if (fixed !== null && length !== fixed) {
    return protocolError('invalid-length', `message ${name} declares length ${length}; it must be ${fixed}`, typeChar);
  }
  if (length > maxFrameBytes - 1) {
    const message = `message ${name} declares ${length + 1} bytes; the limit is ${maxFrameBytes}`;
    return protocolError('message-too-large', message, typeChar);
  }
  return null;
}

/**
 * The bytes received but not yet framed, kept as the list of chunks they arrived in.
 *
 * Pushing a chunk is O(1) and copies nothing. Taking a frame that lies inside one chunk returns
 * a view of that chunk; only a frame that straddles chunks is copied, once, into a buffer of
 * exactly its size, when its last byte has arrived. So a 64 MiB message arriving in 16 KiB
 * chunks costs one 64 MiB copy, not a concatenation per chunk, and a peer that declares a large
 * length and then stalls makes the reader allocate nothing beyond the chunks it really sent.
 */
export class FrameQueue {
  #chunks: Buffer[] = [];
  /** Index in `#chunks` of the first chunk with unread bytes. */
  #head = 0;
  /** Read offset inside `#chunks[#head]`. */
  #offset = 0;
  #length = 0;

  /** Bytes buffered and not yet taken. */
  get length(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** The byte at `index` bytes past the read position; the caller ensures `index < length`. */
  byteAt(index: number): number {
    let i = this.#head;
    let pos = this.#offset + index;
    for (;;) {
      const chunk = this.#chunks[i];
      if (chunk === undefined) throw new RangeError(`byteAt(${index}) past the buffered ${this.#length} bytes`);
      if (pos < chunk.length) return chunk[pos] as number;
      pos -= chunk.length;
      i += 1;
    }
  }

  /** The big-endian signed 32-bit integer at `index`; the caller ensures `index + 4 <= length`. */
  int32At(index: number): number {
    const first = this.#chunks[this.#head];
    const start = this.#offset + index;
    if (first !== undefined && start + 4 <= first.length) return first.readInt32BE(start);
    return (
      (this.byteAt(index) << 24) |
      (this.byteAt(index + 1) << 16) |
      (this.byteAt(index + 2) << 8) |
      this.byteAt(index + 3)
    );
  }

  /** The big-endian unsigned 16-bit integer at `index`; the caller ensures `index + 2 <= length`. */
  uint16At(index: number): number {
    return (this.byteAt(index) << 8) | this.byteAt(index + 1);
  }

  /** Removes and returns the next `n` bytes; a view when they lie in one chunk, else one copy. */
  take(n: number): Buffer {
    if (n > this.#length) throw new RangeError(`take(${n}) past the buffered ${this.#length} bytes`);
    const first = this.#chunks[this.#head];
    if (first !== undefined && this.#offset + n <= first.length) {
      const view = first.subarray(this.#offset, this.#offset + n);
      this.#advance(n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const chunk = this.#chunks[this.#head] as Buffer;
      const count = Math.min(chunk.length - this.#offset, n - written);
      chunk.copy(out, written, this.#offset, this.#offset + count);
      written += count;
      this.#advance(count);
    }
    return out;
  }

  /** Drops up to `n` bytes without copying them; returns how many were dropped. */
  skip(n: number): number {
    const count = Math.min(n, this.#length);
    let left = count;
    while (left > 0) {
      const chunk = this.#chunks[this.#head] as Buffer;
      const step = Math.min(chunk.length - this.#offset, left);
      this.#advance(step);
      left -= step;
    }
    return count;
  }

  /** Drops everything, releasing the chunks. */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#offset = 0;
    this.#length = 0;
  }

  /** Moves the read position forward by `n` bytes, all within the head chunk. */
  #advance(n: number): void {
    this.#offset += n;
    this.#length -= n;
    const chunk = this.#chunks[this.#head] as Buffer;
    if (this.#offset < chunk.length) return;
    // The consumed chunk is released at once; only its slot stays until the batch trim below.
    this.#chunks[this.#head] = EMPTY;
    this.#head += 1;
    this.#offset = 0;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head >= 1024) {
      // Released slots are trimmed in batches, so a long run of tiny chunks never pays an O(n)
      // array shift per chunk.
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}
