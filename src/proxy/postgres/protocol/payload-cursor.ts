import { isUtf8 } from 'node:buffer';

/** Strings up to this many bytes are checked for ASCII byte by byte before `isUtf8`. */
const SHORT_STRING = 256;

/**
 * Thrown by {@link PayloadCursor} when a body does not match its format. It never leaves this
 * folder: every decoder catches it at its boundary and returns a `ProtocolError` value instead.
 */
export class PayloadError extends Error {
  readonly code: 'malformed-message' | 'invalid-encoding';

  constructor(code: 'malformed-message' | 'invalid-encoding', message: string) {
    super(message);
    this.name = 'PayloadError';
    this.code = code;
  }
}

/**
 * A bounds-checked read cursor over one message body. Every read checks the bytes it needs
 * against the end of the body, so a count or length taken from the wire can never send the
 * decoder past it. Byte slices are views into the message, never copies.
 */
export class PayloadCursor {
  readonly #buf: Buffer;
  readonly #end: number;
  #pos: number;

  constructor(buf: Buffer, start = 0) {
    this.#buf = buf;
    this.#pos = start;
    this.#end = buf.length;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  #need(n: number, what: string): void {
    if (n > this.#end - this.#pos) {
      throw new PayloadError('malformed-message', `${what} runs past the end of the message`);
    }
  }

  uint8(what: string): number {
    this.#need(1, what);
    const value = this.#buf.readUInt8(this.#pos);
    this.#pos += 1;
    return value;
  }

  int16(what: string): number {
    this.#need(2, what);
    const value = this.#buf.readInt16BE(this.#pos);
    this.#pos += 2;
    return value;
  }

  uint16(what: string): number {
    this.#need(2, what);
    const value = this.#buf.readUInt16BE(this.#pos);
    this.#pos += 2;
    return value;
  }

  int32(what: string): number {
    this.#need(4, what);
    const value = this.#buf.readInt32BE(this.#pos);
    this.#pos += 4;
    return value;
  }

  uint32(what: string): number {
    this.#need(4, what);
    const value = this.#buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return value;
  }

  /** `n` bytes as a view into the message. */
  bytes(n: number, what: string): Buffer {
    if (n < 0) throw new PayloadError('malformed-message', `${what} has a negative length`);
    this.#need(n, what);
    const view = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return view;
  }

  /** Moves past `n` bytes without looking at them (validating structure costs no allocation). */
  skip(n: number, what: string): void {
    if (n < 0) throw new PayloadError('malformed-message', `${what} has a negative length`);
    this.#need(n, what);
    this.#pos += n;
  }

  /** Everything left, as a view. */
  rest(): Buffer {
    const view = this.#buf.subarray(this.#pos, this.#end);
    this.#pos = this.#end;
    return view;
  }

  /** Moves past a NUL-terminated string without decoding it. */
  skipCstring(what: string): void {
    this.#nul(what);
  }

  /**
   * A NUL-terminated string that must be valid UTF-8. Frontend text is checked strictly because
   * the gateway classifies it: a lossy decode could show the classifier other text than the
   * server runs.
   */
  cstring(what: string): string {
    const start = this.#pos;
    const nul = this.#nul(what);
    const buf = this.#buf;
    // Short strings (names, most SQL) are checked here: a byte loop beats building a view for
    // `isUtf8`, and pure ASCII needs no further check.
    let ascii = nul - start <= SHORT_STRING;
    for (let i = start; ascii && i < nul; i++) ascii = (buf[i] as number) < 0x80;
    if (!ascii && !isUtf8(buf.subarray(start, nul))) {
      throw new PayloadError('invalid-encoding', `${what} is not valid UTF-8`);
    }
    return buf.toString(ascii ? 'latin1' : 'utf8', start, nul);
  }

  /** A NUL-terminated string decoded leniently (invalid sequences become U+FFFD). */
  cstringLenient(what: string): string {
    const start = this.#pos;
    const nul = this.#nul(what);
    return this.#buf.toString('utf8', start, nul);
  }

  /** Finds the NUL that ends the string at the cursor and moves past it; returns its index. */
  #nul(what: string): number {
    const nul = this.#buf.indexOf(0, this.#pos);
    if (nul === -1 || nul >= this.#end) {
      throw new PayloadError('malformed-message', `${what} is not NUL-terminated`);
    }
    this.#pos = nul + 1;
    return nul;
  }

  /** Fails when bytes are left over: a body must hold exactly what its format says. */
  end(what: string): void {
    if (this.#pos !== this.#end) {
      throw new PayloadError('malformed-message', `${what} has ${this.#end - this.#pos} unexpected trailing bytes`);
    }
  }
}
