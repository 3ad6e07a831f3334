import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { RECORD_KINDS } from './record.js';

/**
 * The query index of one segment: a few columns per record, so that selective queries (one user,
 * one resource, a time range, denials, one session) scan small typed arrays instead of the log,
 * and read only the records they return. Row `i` is the record at seq `firstSeq + i`, at byte
 * `offsets[i]` of the segment. Strings (subjects, emails, resources, session ids) are stored once
 * per segment and referred to by number (0: absent, n: `strings[n − 1]`).
 *
 * A query skips every row the index says does not match without reading its record, so an index
 * file is trusted only when it proves it was built by a holder of the index key: the file ends
 * with an HMAC-SHA256 (RFC 2104) of everything before it, under a key HKDF (RFC 5869) derives from
 * a secret that whoever can write the audit directory does not hold. The header also holds the
 * leaf hash (RFC 9162 §2.1.1) of the last indexed record; a reader re-reads that record and
 * compares, and since each record's `prev` is the leaf hash of the one before, a log that verifies
 * and ends in that record holds exactly the records the columns were built from. A file that is
 * of another version, byte order or key, or fails either check, is rebuilt from the segment.
 *
 * File layout (host byte order, which the header records; a mismatch means "rebuild"):
 *
 *   header (96 bytes): magic "TGAIDX02", u32 version, u32 count, f64 firstSeq, f64 coveredBytes,
 *     f64 segment inode, f64 segment device, u32 string count, u32 string bytes,
 *     u32 byte-order mark, u32 zero, 32-byte leaf hash of the last indexed record (zeros when none)
 *   f64 times[count] (ms since the epoch; NaN when unreadable)
 *   u32 offsets[count], subjects[count], emails[count], resources[count], sessions[count]
 *   u8 kinds[count] (index in RECORD_KINDS; 255 unknown), u8 effects[count] (0 none, 1 allow, 2 deny)
 *   strings: u32 length ‖ UTF-8, each
 *   32-byte HMAC-SHA256 of everything before
 */

const MAGIC = 'TGAIDX02';
const VERSION = 2;
const HEADER_BYTES = 96;
const LEAF_AT = 64;
const HASH_BYTES = 32;
const MAC_BYTES = 32;
const BYTE_ORDER_MARK = 0x01020304;
export const UNKNOWN_KIND = 255;
export const EFFECT_NONE = 0;
export const EFFECT_ALLOW = 1;
export const EFFECT_DENY = 2;

/** RFC 5869 salt and info of the index MAC key: used for nothing else. */
const KEY_SALT = new TextEncoder().encode('tollgate audit index file key salt v2');
const KEY_INFO = new TextEncoder().encode('tollgate/audit/index-file/hmac-sha256');
/** Shorter secrets are refused: the MAC is only as strong as what it is derived from. */
export const MIN_INDEX_SECRET_BYTES = 32;

/** The key that authenticates index files, derived from a secret (see {@link indexKeyOf}). */
export interface IndexKey {
  readonly mac: Uint8Array;
}

/** Derives the index MAC key from a secret of at least 32 bytes (HKDF-SHA256, RFC 5869). */
export function indexKeyOf(secret: Uint8Array): IndexKey {
  if (secret.length < MIN_INDEX_SECRET_BYTES) throw new RangeError(`an index secret needs at least ${MIN_INDEX_SECRET_BYTES} bytes`);
  return { mac: new Uint8Array(hkdfSync('sha256', secret, KEY_SALT, KEY_INFO, 32)) };
}

function macOf(key: IndexKey, bytes: Uint8Array): Uint8Array {
  return createHmac('sha256', key.mac).update(bytes).digest();
}

const KIND_INDEX: ReadonlyMap<string, number> = new Map(RECORD_KINDS.map((kind, i) => [kind, i]));

export class SegmentIndex {
  readonly firstSeq: number;
  count = 0;
  coveredBytes = 0;
  ino = 0;
  dev = 0;
  /** Leaf hash of the last indexed record (zeros when none): what a reader re-reads and compares. */
  lastLeaf: Uint8Array = new Uint8Array(HASH_BYTES);
  times: Float64Array;
  offsets: Uint32Array;
  subjects: Uint32Array;
  emails: Uint32Array;
  resources: Uint32Array;
  sessions: Uint32Array;
  kinds: Uint8Array;
  effects: Uint8Array;
  readonly strings: string[] = [];
  readonly #ids = new Map<string, number>();

  constructor(firstSeq: number, capacity = 1024) {
    this.firstSeq = firstSeq;
    this.times = new Float64Array(capacity);
    this.offsets = new Uint32Array(capacity);
    this.subjects = new Uint32Array(capacity);
    this.emails = new Uint32Array(capacity);
    this.resources = new Uint32Array(capacity);
    this.sessions = new Uint32Array(capacity);
    this.kinds = new Uint8Array(capacity);
    this.effects = new Uint8Array(capacity);
  }

  /** Bytes this index holds in memory (for cache budgets). */
  get memoryBytes(): number {
    return this.times.length * 30 + this.strings.reduce((n, s) => n + 2 * s.length + 16, 0);
  }

  /** The number standing for `text` in the string columns, or 0 when this segment never saw it. */
  idOf(text: string): number {
    return this.#ids.get(text) ?? 0;
  }

  /** The string behind a column value, or undefined for 0. */
  stringAt(id: number): string | undefined {
    return id === 0 ? undefined : this.strings[id - 1];
  }

  #intern(text: unknown): number {
    if (typeof text !== 'string') return 0;
    let id = this.#ids.get(text);
    if (id === undefined) {
      this.strings.push(text);
      id = this.strings.length;
      this.#ids.set(text, id);
    }
    return id;
  }

  /**
   * Adds the next record: its frame offset and its decoded JSON (anything; fields of the wrong
   * type are indexed as absent, so that a damaged record keeps its row and the rows their seqs).
   */
  append(offset: number, decoded: unknown): void {
    const i = this.count;
    if (i === this.times.length) this.#grow();
    const r = (typeof decoded === 'object' && decoded !== null ? decoded : {}) as Record<string, unknown>;
    const principal = (typeof r.principal === 'object' && r.principal !== null ? r.principal : {}) as Record<string, unknown>;
    const decision = (typeof r.decision === 'object' && r.decision !== null ? r.decision : {}) as Record<string, unknown>;
    this.offsets[i] = offset;
    this.times[i] = typeof r.time === 'string' ? Date.parse(r.time) : Number.NaN;
    this.kinds[i] = (typeof r.kind === 'string' ? KIND_INDEX.get(r.kind) : undefined) ?? UNKNOWN_KIND;
    this.effects[i] = decision.effect === 'allow' ? EFFECT_ALLOW : decision.effect === 'deny' ? EFFECT_DENY : EFFECT_NONE;
    this.subjects[i] = this.#intern(principal.subject);
    this.emails[i] = this.#intern(principal.email);
    this.resources[i] = this.#intern(r.resource);
    this.sessions[i] = this.#intern(r.session_id);
    this.count = i + 1;
  }

  #grow(): void {
    const capacity = Math.max(1024, this.times.length * 2);
    const grow = <T extends Float64Array | Uint32Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old.subarray(0, this.count));
      return next;
    };
    this.times = grow(this.times, (n) => new Float64Array(n));
    this.offsets = grow(this.offsets, (n) => new Uint32Array(n));
    this.subjects = grow(this.subjects, (n) => new Uint32Array(n));
    this.emails = grow(this.emails, (n) => new Uint32Array(n));
    this.resources = grow(this.resources, (n) => new Uint32Array(n));
    this.sessions = grow(this.sessions, (n) => new Uint32Array(n));
    this.kinds = grow(this.kinds, (n) => new Uint8Array(n));
    this.effects = grow(this.effects, (n) => new Uint8Array(n));
  }

  /** The index as a file (see the layout above), authenticated under `key`. */
  encode(key: IndexKey): Uint8Array {
    const n = this.count;
    const encoder = new TextEncoder();
    const strings = this.strings.map((s) => encoder.encode(s));
    const stringBytes = strings.reduce((total, s) => total + 4 + s.length, 0);
    const size = HEADER_BYTES + 8 * n + 4 * 5 * n + 2 * n + stringBytes + MAC_BYTES;
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    out.set(new TextEncoder().encode(MAGIC), 0);
    view.setUint32(8, VERSION, true);
    view.setUint32(12, n, true);
    view.setFloat64(16, this.firstSeq, true);
    view.setFloat64(24, this.coveredBytes, true);
    view.setFloat64(32, this.ino, true);
    view.setFloat64(40, this.dev, true);
    view.setUint32(48, strings.length, true);
    view.setUint32(52, stringBytes, true);
    new Uint32Array(out.buffer, 56, 1)[0] = BYTE_ORDER_MARK;
    out.set(this.lastLeaf, LEAF_AT);
    let at = HEADER_BYTES;
    const put = (column: Float64Array | Uint32Array | Uint8Array) => {
      const bytes = new Uint8Array(column.buffer, column.byteOffset, n * column.BYTES_PER_ELEMENT);
      out.set(bytes, at);
      at += bytes.length;
    };
    put(this.times);
    put(this.offsets);
    put(this.subjects);
    put(this.emails);
    put(this.resources);
    put(this.sessions);
    put(this.kinds);
    put(this.effects);
    for (const s of strings) {
      view.setUint32(at, s.length, true);
      out.set(s, at + 4);
      at += 4 + s.length;
    }
    out.set(macOf(key, out.subarray(0, at)), at);
    return out;
  }

  /**
   * Reads an index file; null when it is not one, of another version or byte order, or its MAC
   * under `key` does not match (damaged, edited, or written without the key).
   */
  static decode(file: Uint8Array, key: IndexKey): SegmentIndex | null {
    if (file.length < HEADER_BYTES + MAC_BYTES) return null;
    // A private, aligned copy: the typed-array columns below are views into it.
    const bytes = new Uint8Array(file);
    const view = new DataView(bytes.buffer);
    if (new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC || view.getUint32(8, true) !== VERSION) return null;
    if (new Uint32Array(bytes.buffer, 56, 1)[0] !== BYTE_ORDER_MARK) return null;
    const end = bytes.length - MAC_BYTES;
    if (!timingSafeEqual(macOf(key, bytes.subarray(0, end)), bytes.subarray(end))) return null;
    const n = view.getUint32(12, true);
    const stringCount = view.getUint32(48, true);
    const stringBytes = view.getUint32(52, true);
    if (HEADER_BYTES + 30 * n + stringBytes !== end) return null;
    const index = new SegmentIndex(view.getFloat64(16, true), 0);
    index.count = n;
    index.coveredBytes = view.getFloat64(24, true);
    index.ino = view.getFloat64(32, true);
    index.dev = view.getFloat64(40, true);
    index.lastLeaf = bytes.slice(LEAF_AT, LEAF_AT + HASH_BYTES);
    let at = HEADER_BYTES;
    const take = <T>(make: (buffer: ArrayBuffer, offset: number, length: number) => T, width: number): T => {
      const column = make(bytes.buffer, at, n);
      at += width * n;
      return column;
    };
    index.times = take((b, o, l) => new Float64Array(b, o, l), 8);
    index.offsets = take((b, o, l) => new Uint32Array(b, o, l), 4);
    index.subjects = take((b, o, l) => new Uint32Array(b, o, l), 4);
    index.emails = take((b, o, l) => new Uint32Array(b, o, l), 4);
    index.resources = take((b, o, l) => new Uint32Array(b, o, l), 4);
    index.sessions = take((b, o, l) => new Uint32Array(b, o, l), 4);
    index.kinds = take((b, o, l) => new Uint8Array(b, o, l), 1);
    index.effects = take((b, o, l) => new Uint8Array(b, o, l), 1);
    const decoder = new TextDecoder();
    for (let i = 0; i < stringCount; i++) {
      if (at + 4 > end) return null;
      const length = view.getUint32(at, true);
      if (at + 4 + length > end) return null;
      index.#intern(decoder.decode(bytes.subarray(at + 4, at + 4 + length)));
      at += 4 + length;
    }
    if (at !== end || index.strings.length !== stringCount) return null;
    const maxId = stringCount;
    for (const column of [index.subjects, index.emails, index.resources, index.sessions]) {
      for (let i = 0; i < n; i++) if (column[i]! > maxId) return null;
    }
    return index;
  }
}
