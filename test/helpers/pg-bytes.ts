/**
 * Byte builders for PostgreSQL wire-protocol fixtures. Written apart from the gateway's own
 * encoders so that tests compare the gateway's bytes against an independent construction
 * (PostgreSQL docs §55.7 "Message Formats").
 */

export function int16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeInt16BE(value);
  return bytes;
}

export function int32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32BE(value);
  return bytes;
}

export function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

/** A NUL-terminated UTF-8 string. */
export function cstr(text: string): Buffer {
  return Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from([0])]);
}

export function ascii(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** A tagged message: type byte, Int32 length counting itself and the body, body. */
export function frame(type: string, ...body: Buffer[]): Buffer {
  const content = Buffer.concat(body);
  return Buffer.concat([ascii(type), int32(content.length + 4), content]);
}

/** An untagged startup-phase packet: Int32 length counting itself, body. */
export function packet(...body: Buffer[]): Buffer {
  const content = Buffer.concat(body);
  return Buffer.concat([int32(content.length + 4), content]);
}

/** A StartupMessage body's version word. */
export function version(major: number, minor: number): Buffer {
  return uint32(major * 65536 + minor);
}

/** Splits `bytes` at the given offsets (sorted, deduplicated, within range). */
export function splitAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const cuts = [...new Set(offsets.filter((offset) => offset > 0 && offset < bytes.length))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of cuts) {
    chunks.push(bytes.subarray(start, cut));
    start = cut;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}
