import { randomBytes, timingSafeEqual } from 'node:crypto';
import { link, lstat, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { TollgateError } from '../core/index.js';
import { EFFECT_ALLOW, EFFECT_DENY, indexKeyOf, MIN_INDEX_SECRET_BYTES, SegmentIndex, UNKNOWN_KIND } from './index-file.js';
import type { IndexKey } from './index-file.js';
import { decodeBase64 } from './bytes.js';
import { leafHash } from './merkle.js';
import { parseSignerKey } from './native-signing.js';
import { compileFilter, matchesRecord } from './query-filter.js';
import type { CompiledFilter, RecordFilter } from './query-filter.js';
import { parseRecord, RECORD_KINDS } from './record.js';
import type { AuditPrincipal, AuditRecord } from './record.js';
import { listSegments, readFrames } from './segment-reader.js';
import type { LogSegment } from './segment-reader.js';
import { nodeStoreFs } from './store/file-io.js';
import type { StoreFs } from './store/file-io.js';
import { frameAt, FRAME_OVERHEAD_BYTES } from './store/frame.js';
import { segmentName } from './store/layout.js';

/**
 * Queries over an audit directory through its side index (see `index-file`): `audit query`, and
 * the review pages, which keep one {@link AuditIndex} open and page through it.
 *
 * Before each query the index is brought up to date, segment by segment: a segment whose index
 * file is missing, damaged, unauthenticated or stale (replaced, shrunk, its last indexed record
 * changed) is indexed again from its bytes; a segment that grew (the live one) has only its new
 * tail indexed. Each record a query returns is then read from the segment, decoded and checked
 * against the query and its seq.
 *
 * The rows a query skips are never read, so the index decides what a reviewer does not see. An
 * index file is therefore trusted only when its MAC proves a holder of the index secret built it
 * (see `index-file`): the gateway derives that secret from its signing key
 * ({@link indexSecretFromSignerKey}) and keeps the index in `index/` of the audit directory; a
 * reader without it keeps its own index in a private directory outside the audit directory, under
 * a random secret of its own, or in memory. Files written by earlier versions fail the check and
 * are rebuilt. `audit verify` never reads the index.
 */

export interface AuditIndexOptions {
  readonly dir: string;
  /**
   * The secret that authenticates index files (at least 32 bytes; the gateway's is
   * {@link indexSecretFromSignerKey} of `audit.signing_key`). With it the index files live in
   * `indexDir`, by default `index/` inside the audit directory, and are shared with every process
   * that holds the same secret.
   */
  readonly indexSecret?: Uint8Array;
  /**
   * Where the index files live. Without `indexSecret` this must be a private directory outside
   * the audit directory: it is created with mode 0700, must belong to this process's user and be
   * closed to everyone else, and holds a random secret of its own. Without either option, or
   * with `null`, the index is kept in memory only. When the directory cannot be created (read
   * only), the index is kept in memory, and {@link AuditIndex.persistent} says so.
   */
  readonly indexDir?: string | null;
  /** In-memory budget for segment indexes, in bytes. Default 256 MiB. */
  readonly cacheBytes?: number;
  readonly fs?: StoreFs;
}

export interface QueryOptions extends RecordFilter {
  /** At most this many records; default 100. */
  readonly limit?: number;
  /** From a previous page's {@link QueryPage.nextCursor}. */
  readonly cursor?: string;
}

export interface QueryHit {
  readonly seq: number;
  readonly record: AuditRecord;
}

export interface QueryPage {
  /** Newest first. */
  readonly records: readonly QueryHit[];
  /** Pass as `cursor` for the next (older) page; null when there is none. */
  readonly nextCursor: string | null;
}

export interface SessionQueryOptions {
  readonly user?: string;
  readonly resource?: string;
  readonly since?: number;
  readonly until?: number;
  /** At most this many sessions; default 50. */
  readonly limit?: number;
  readonly cursor?: string;
}

/** The records that share one `session_id`, summed up. */
export interface SessionSummary {
  readonly sessionId: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** RFC 3339 times of the first and last record. */
  readonly firstTime: string;
  readonly lastTime: string;
  /** The principal of the session's first record that has one. */
  readonly principal: Pick<AuditPrincipal, 'subject' | 'email'> | null;
  readonly resources: readonly string[];
  readonly records: number;
  /** `http.request` and `ws.open` records. */
  readonly requests: number;
  /** `pg.query` records. */
  readonly statements: number;
  /** Records whose decision is deny. */
  readonly denials: number;
}

export interface SessionPage {
  /** Most recently active first. */
  readonly sessions: readonly SessionSummary[];
  readonly nextCursor: string | null;
}

export interface AuditIndex {
  /** Whether the index is saved on disk (false: rebuilt in memory by every process). */
  readonly persistent: boolean;
  /** Records matching the filter, newest first, a page at a time. */
  query(options: QueryOptions): Promise<QueryPage>;
  /** Sessions with a record matching the filter, most recently active first. */
  sessions(options: SessionQueryOptions): Promise<SessionPage>;
  /** Brings the index up to date with the log now; returns the number of records indexed. */
  refresh(): Promise<number>;
  close(): Promise<void>;
}

const DEFAULT_LIMIT = 100;
const DEFAULT_SESSION_LIMIT = 50;
const MAX_LIMIT = 100_000;
/** Candidate records are read from a segment in windows of at most this size... */
const READ_WINDOW_BYTES = 1024 * 1024;
/** ...holding candidates at most this far apart. */
const READ_GAP_BYTES = 16 * 1024;
const KIND_CODES = new Map(RECORD_KINDS.map((kind, i) => [kind, i]));
const REQUEST_KINDS = new Set([KIND_CODES.get('http.request'), KIND_CODES.get('ws.open')]);
const STATEMENT_KIND = KIND_CODES.get('pg.query');

/**
 * Opens the index of the audit directory `options.dir` (building nothing until first used).
 * Throws `TG_ERR_USAGE` when there is no audit directory, the secret is too short, or a private
 * index directory is open to other users.
 */
export async function openAuditIndex(options: AuditIndexOptions): Promise<AuditIndex> {
  const fs = options.fs ?? nodeStoreFs;
  if ((await fs.statPath(options.dir)) === null) {
    throw new TollgateError('TG_ERR_USAGE', `there is no audit directory at ${options.dir}; pass the audit.dir of the gateway`);
  }
  const cacheBytes = options.cacheBytes ?? 256 * 1024 * 1024;
  const memory = () => new FileAuditIndex(fs, options.dir, null, null, cacheBytes);
  if (options.indexDir === null) return memory();
  if (options.indexSecret !== undefined) {
    if (options.indexSecret.length < MIN_INDEX_SECRET_BYTES) throw new TollgateError('TG_ERR_USAGE', `the index secret must be at least ${MIN_INDEX_SECRET_BYTES} bytes`);
    const indexDir = options.indexDir ?? join(options.dir, 'index');
    try {
      await fs.mkdir(indexDir);
    } catch (error) {
      if (options.indexDir !== undefined || !isReadOnly(error)) throw error;
      return memory();
    }
    return new FileAuditIndex(fs, options.dir, indexDir, indexKeyOf(options.indexSecret), cacheBytes);
  }
  if (options.indexDir === undefined) return memory();
  let secret: Uint8Array;
  try {
    secret = await privateSecret(options.indexDir);
  } catch (error) {
    if (!isReadOnly(error)) throw error;
    return memory();
  }
  return new FileAuditIndex(fs, options.dir, options.indexDir, indexKeyOf(secret), cacheBytes);
}

function isReadOnly(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EROFS' || code === 'EPERM';
}

const SIGNER_PREFIX = 'PRIVATE+KEY+';
const PRIVATE_SECRET_FILE = 'index.secret';

/**
 * The index secret of a gateway: the 32-byte Ed25519 seed of its checkpoint signing key
 * (`audit.signing_key`, C2SP signed-note signer key text), which the index key is derived from
 * with its own HKDF salt and info, so the two keys are independent. Throws
 * `TG_ERR_AUDIT_KEY_INVALID` for a malformed key.
 */
export function indexSecretFromSignerKey(text: string): Uint8Array {
  // Validates the whole key (name, key ID, algorithm) before its seed is used.
  parseSignerKey(text);
  const body = text.slice(SIGNER_PREFIX.length);
  const encoded = body.slice(body.indexOf('+', body.indexOf('+') + 1) + 1);
  return decodeBase64(encoded)!.slice(1);
}

/**
 * The random secret of a private index directory, created on first use. The directory must be
 * this user's and closed to others: anyone who could write there could hide records.
 */
async function privateSecret(indexDir: string): Promise<Uint8Array> {
  await mkdir(indexDir, { recursive: true, mode: 0o700 });
  const uid = process.getuid?.();
  const info = await lstat(indexDir);
  if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o077) !== 0) {
    throw new TollgateError(
      'TG_ERR_USAGE',
      `the index directory ${indexDir} is not a directory of this user closed to everyone else (mode 0700); an index there could hide records: run "chmod 700 ${indexDir}" or pass another --index-dir`,
    );
  }
  const path = join(indexDir, PRIVATE_SECRET_FILE);
  const fresh = randomBytes(32);
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, fresh, { mode: 0o600, flag: 'wx' });
  try {
    // link() publishes the whole file or fails: a second process reads the first one's secret.
    await link(temp, path);
    return fresh;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await unlink(temp);
  }
  const held = await lstat(path);
  const secret = await readFile(path);
  if (!held.isFile() || (uid !== undefined && held.uid !== uid) || (held.mode & 0o077) !== 0 || secret.length !== 32) {
    throw new TollgateError('TG_ERR_USAGE', `${path} is not this user's private index secret (32 bytes, mode 0600); delete it so that a new one is made`);
  }
  return new Uint8Array(secret);
}

/** One query through a freshly opened index: `audit query`. */
export async function queryLog(options: QueryOptions & AuditIndexOptions): Promise<QueryPage> {
  const index = await openAuditIndex(options);
  try {
    return await index.query(options);
  } finally {
    await index.close();
  }
}

/** One session listing through a freshly opened index. */
export async function listSessions(options: SessionQueryOptions & AuditIndexOptions): Promise<SessionPage> {
  const index = await openAuditIndex(options);
  try {
    return await index.sessions(options);
  } finally {
    await index.close();
  }
}

function limitOf(value: number | undefined, fallback: number): number {
  const limit = value ?? fallback;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new TollgateError('TG_ERR_USAGE', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  return limit;
}

/** A cursor is the seq below which the next page starts. */
function cursorOf(cursor: string | undefined): number {
  if (cursor === undefined) return Number.POSITIVE_INFINITY;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(cursor)) throw new TollgateError('TG_ERR_USAGE', `the cursor "${cursor}" is not one a previous page returned`);
  return Number(cursor);
}

interface Loaded {
  readonly segment: LogSegment;
  readonly index: SegmentIndex;
}

class FileAuditIndex implements AuditIndex {
  readonly #fs: StoreFs;
  readonly #dir: string;
  readonly #indexDir: string | null;
  /** Authenticates the index files; null when the index lives in memory only. */
  readonly #key: IndexKey | null;
  /** Segment indexes by segment path; evicted ones are reloaded from their files. */
  readonly #cache: LRUCache<string, SegmentIndex>;
  #segments: LogSegment[] = [];
  /** Serialises refreshes: two queries at once share one. */
  #refreshing: Promise<number> | null = null;

  constructor(fs: StoreFs, dir: string, indexDir: string | null, key: IndexKey | null, cacheBytes: number) {
    this.#fs = fs;
    this.#dir = dir;
    this.#indexDir = indexDir;
    this.#key = key;
    this.#cache = new LRUCache<string, SegmentIndex>({
      // In memory only, an evicted index would have to be rebuilt from the log: keep them all.
      maxSize: indexDir === null ? Number.MAX_SAFE_INTEGER : cacheBytes,
      sizeCalculation: (index) => Math.max(1, index.memoryBytes),
    });
  }

  get persistent(): boolean {
    return this.#indexDir !== null;
  }

  refresh(): Promise<number> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  async close(): Promise<void> {
    if (this.#refreshing !== null) await this.#refreshing.catch(() => undefined);
    this.#cache.clear();
  }

  async #refresh(): Promise<number> {
    const segments = await listSegments(this.#fs, this.#dir);
    let total = 0;
    for (let i = 0; i < segments.length; i++) {
      const index = await this.#current(segments[i]!, i === segments.length - 1);
      total += index.count;
    }
    const live = new Set(segments.map((s) => s.path));
    for (const path of this.#cache.keys()) if (!live.has(path)) this.#cache.delete(path);
    this.#segments = segments;
    return total;
  }

  /** The segment's index, brought up to date with the segment's bytes. */
  async #current(segment: LogSegment, last: boolean, rebuild = false): Promise<SegmentIndex> {
    const identity = await this.#fs.statPath(segment.path);
    if (identity === null) throw new TollgateError('TG_ERR_AUDIT_TAMPERED', `segment ${segment.name} disappeared from ${this.#dir} while it was read`);
    let index = rebuild ? undefined : (this.#cache.get(segment.path) ?? (await this.#loadFile(segment)));
    if (index !== undefined) {
      const replaced = index.ino !== identity.ino || index.dev !== identity.dev || index.firstSeq !== segment.firstSeq;
      if (replaced || index.coveredBytes > identity.size || !(await this.#tailUnchanged(segment, index))) index = undefined;
    }
    let changed = false;
    if (index === undefined) {
      index = new SegmentIndex(segment.firstSeq);
      index.ino = identity.ino;
      index.dev = identity.dev;
      changed = true;
    }
    if (index.coveredBytes < identity.size) changed = (await this.#extend(segment, index, last)) || changed;
    this.#cache.set(segment.path, index);
    if (changed) await this.#save(segment, index);
    return index;
  }

  /** Indexes the frames after `coveredBytes`; returns whether any were added. */
  async #extend(segment: LogSegment, index: SegmentIndex, last: boolean): Promise<boolean> {
    const before = index.count;
    const decoder = new TextDecoder();
    for await (const item of readFrames(this.#fs, segment, { from: index.coveredBytes, last })) {
      if (item.type === 'end') break;
      for (let i = 0; i < item.records.length; i++) {
        const record = item.records[i]!;
        let decoded: unknown = null;
        try {
          decoded = JSON.parse(decoder.decode(record));
        } catch {
          // Indexed with every field absent; verify reports the record.
        }
        index.append(item.offsets[i]!, decoded);
        index.coveredBytes = item.offsets[i]! + record.length + FRAME_OVERHEAD_BYTES;
      }
      const lastRecord = item.records.at(-1);
      if (lastRecord !== undefined) index.lastLeaf = leafHash(lastRecord);
    }
    return index.count > before;
  }

  /** Whether the last indexed record is still the one the index was built from (by leaf hash). */
  async #tailUnchanged(segment: LogSegment, index: SegmentIndex): Promise<boolean> {
    if (index.count === 0) return index.coveredBytes === 0;
    const start = index.offsets[index.count - 1]!;
    if (!(start < index.coveredBytes)) return false;
    const file = await this.#fs.openReadOnly(segment.path);
    try {
      const frame = new Uint8Array(index.coveredBytes - start);
      for (let filled = 0; filled < frame.length; ) {
        const n = await file.read(frame, filled, frame.length - filled, start + filled);
        if (n === 0) return false;
        filled += n;
      }
      const found = frameAt(frame, 0, frame.length);
      return found.status === 'ok' && timingSafeEqual(leafHash(found.record), index.lastLeaf);
    } finally {
      await file.close();
    }
  }

  #fileOf(segment: LogSegment): string | null {
    return this.#indexDir === null ? null : join(this.#indexDir, `${segmentName(segment.firstSeq).slice(0, -'.seg'.length)}.idx`);
  }

  async #loadFile(segment: LogSegment): Promise<SegmentIndex | undefined> {
    const path = this.#fileOf(segment);
    if (path === null) return undefined;
    let bytes: Uint8Array;
    try {
      bytes = await this.#fs.readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    // Any file that fails its MAC (edited, from an earlier version, written without the key) is rebuilt.
    return this.#key === null ? undefined : (SegmentIndex.decode(bytes, this.#key) ?? undefined);
  }

  /** Writes the index file atomically; another process may be writing the same one. */
  async #save(segment: LogSegment, index: SegmentIndex): Promise<void> {
    const path = this.#fileOf(segment);
    if (path === null || this.#key === null) return;
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const file = await this.#fs.replaceFile(temp);
    try {
      await file.writev([index.encode(this.#key)], 0);
    } finally {
      await file.close();
    }
    await this.#fs.rename(temp, path);
  }

  async #loaded(): Promise<Loaded[]> {
    await this.refresh();
    const loaded: Loaded[] = [];
    for (let i = 0; i < this.#segments.length; i++) {
      const segment = this.#segments[i]!;
      loaded.push({ segment, index: this.#cache.get(segment.path) ?? (await this.#current(segment, i === this.#segments.length - 1)) });
    }
    return loaded;
  }

  async query(options: QueryOptions): Promise<QueryPage> {
    const filter = compileFilter(options);
    const limit = limitOf(options.limit, DEFAULT_LIMIT);
    const below = cursorOf(options.cursor);
    const loaded = await this.#loaded();
    // One record more than the page, to know whether an older page exists.
    const want = limit + 1;
    const hits: QueryHit[] = [];
    for (let s = loaded.length - 1; s >= 0 && hits.length < want; s--) {
      const { segment, index } = loaded[s]!;
      if (index.firstSeq >= below) continue;
      let found = await this.#collect(segment, index, filter, below, want - hits.length);
      if (found === null) {
        // The index disagreed with the segment's records: index the segment again, once. If it
        // still disagrees the segment is damaged; its records are left out (verify names them).
        const rebuilt = await this.#current(segment, s === loaded.length - 1, true);
        found = (await this.#collect(segment, rebuilt, filter, below, want - hits.length)) ?? [];
      }
      hits.push(...found);
    }
    const page = hits.slice(0, limit);
    return { records: page, nextCursor: hits.length > limit ? String(page.at(-1)!.seq) : null };
  }

  /**
   * Up to `want` records of one segment that match, newest first, below seq `below`. Null when a
   * record read does not agree with the index (another seq, or fields the index got wrong).
   */
  async #collect(segment: LogSegment, index: SegmentIndex, filter: CompiledFilter, below: number, want: number): Promise<QueryHit[] | null> {
    const rows = rowMatcher(index, filter);
    if (rows === null) return [];
    const { offsets } = index;
    const frameEnd = (row: number) => (row + 1 < index.count ? offsets[row + 1]! : index.coveredBytes);
    const hits: QueryHit[] = [];
    const decoder = new TextDecoder();
    const file = await this.#fs.openReadOnly(segment.path);
    try {
      let row = Math.min(index.count, below - index.firstSeq) - 1;
      while (row >= 0 && hits.length < want) {
        // The next candidates, newest first, whose frames fit in one read window. Without a text
        // filter every candidate is a hit, so no more are read than the page needs.
        const batch: number[] = [];
        let windowEnd = -1;
        for (; row >= 0; row--) {
          if (!rows(row)) continue;
          // A window holds a run of candidates close together: bytes between them are read for
          // nothing, so a wide gap starts a new read.
          const gap = batch.length === 0 ? 0 : offsets[batch.at(-1)!]! - frameEnd(row);
          if (batch.length > 0 && (gap > READ_GAP_BYTES || windowEnd - offsets[row]! > READ_WINDOW_BYTES)) break;
          if (windowEnd < 0) windowEnd = frameEnd(row);
          batch.push(row);
          if (filter.textLower === null && batch.length >= want - hits.length) {
            row--;
            break;
          }
        }
        if (batch.length === 0) break;
        const start = offsets[batch.at(-1)!]!;
        const window = new Uint8Array(windowEnd - start);
        for (let filled = 0; filled < window.length; ) {
          const n = await file.read(window, filled, window.length - filled, start + filled);
          if (n === 0) return null;
          filled += n;
        }
        for (const candidate of batch) {
          const at = offsets[candidate]! - start;
          const found = frameAt(window, at, frameEnd(candidate) - start);
          if (found.status !== 'ok') return null;
          const parsed = parseRecord(found.record);
          const seq = index.firstSeq + candidate;
          // A record that is not well-formed is left out; `audit verify` reports it.
          if (!parsed.ok) continue;
          if (parsed.record.seq !== seq) return null;
          const json = filter.textLower === null ? undefined : decoder.decode(found.record);
          if (!matchesRecord(filter, parsed.record, json)) {
            if (filter.textLower === null) return null;
            continue;
          }
          hits.push({ seq, record: parsed.record });
          if (hits.length >= want) break;
        }
      }
    } finally {
      await file.close();
    }
    return hits;
  }

  async sessions(options: SessionQueryOptions): Promise<SessionPage> {
    const filter = compileFilter({
      ...(options.user === undefined ? {} : { user: options.user }),
      ...(options.resource === undefined ? {} : { resource: options.resource }),
      ...(options.since === undefined ? {} : { since: options.since }),
      ...(options.until === undefined ? {} : { until: options.until }),
    });
    const limit = limitOf(options.limit, DEFAULT_SESSION_LIMIT);
    const below = cursorOf(options.cursor);
    const groups = new Map<string, SessionGroup>();
    for (const { index } of await this.#loaded()) {
      const rows = rowMatcher(index, filter);
      if (rows === null) continue;
      for (let row = 0; row < index.count; row++) {
        const sessionId = index.sessions[row]!;
        if (sessionId === 0 || !rows(row)) continue;
        const key = index.strings[sessionId - 1]!;
        let group = groups.get(key);
        if (group === undefined) {
          group = new SessionGroup(key, index.firstSeq + row, index.times[row]!);
          groups.set(key, group);
        }
        group.add(index, row);
      }
    }
    const ordered = [...groups.values()].filter((g) => g.lastSeq < below).sort((a, b) => b.lastSeq - a.lastSeq);
    const page = ordered.slice(0, limit);
    return { sessions: page.map((g) => g.summary()), nextCursor: ordered.length > limit ? String(page.at(-1)!.lastSeq) : null };
  }
}

class SessionGroup {
  lastSeq: number;
  lastTime: number;
  records = 0;
  requests = 0;
  statements = 0;
  denials = 0;
  principal: { subject: string; email?: string } | null = null;
  readonly resources = new Set<string>();

  constructor(
    readonly sessionId: string,
    readonly firstSeq: number,
    readonly firstTime: number,
  ) {
    this.lastSeq = firstSeq;
    this.lastTime = firstTime;
  }

  add(index: SegmentIndex, row: number): void {
    this.lastSeq = index.firstSeq + row;
    this.lastTime = index.times[row]!;
    this.records += 1;
    const kind = index.kinds[row]!;
    if (REQUEST_KINDS.has(kind)) this.requests += 1;
    if (kind === STATEMENT_KIND) this.statements += 1;
    if (index.effects[row] === EFFECT_DENY) this.denials += 1;
    const resource = index.stringAt(index.resources[row]!);
    if (resource !== undefined) this.resources.add(resource);
    if (this.principal === null) {
      const subject = index.stringAt(index.subjects[row]!);
      const email = index.stringAt(index.emails[row]!);
      if (subject !== undefined) this.principal = email === undefined ? { subject } : { subject, email };
    }
  }

  summary(): SessionSummary {
    return {
      sessionId: this.sessionId,
      firstSeq: this.firstSeq,
      lastSeq: this.lastSeq,
      firstTime: isoOf(this.firstTime),
      lastTime: isoOf(this.lastTime),
      principal: this.principal,
      resources: [...this.resources].sort(),
      records: this.records,
      requests: this.requests,
      statements: this.statements,
      denials: this.denials,
    };
  }
}

function isoOf(time: number): string {
  return Number.isFinite(time) ? new Date(time).toISOString() : '';
}

/**
 * A test of one row against the filter's indexed fields (everything but `text`), or null when no
 * row of this segment can match (a user or resource the segment never mentions).
 */
function rowMatcher(index: SegmentIndex, compiled: CompiledFilter): ((row: number) => boolean) | null {
  const { filter, userLower } = compiled;
  // A user is a subject, exactly, or an email, in any case: the ids of every string this
  // segment holds that can stand for the user in each column.
  let subjectId = -1;
  let emailIds: Set<number> | null = null;
  if (filter.user !== undefined) {
    subjectId = index.idOf(filter.user);
    emailIds = new Set();
    index.strings.forEach((text, i) => {
      if (text.toLowerCase() === userLower) emailIds!.add(i + 1);
    });
    if (subjectId === 0 && emailIds.size === 0) return null;
  }
  const resourceId = filter.resource === undefined ? -1 : index.idOf(filter.resource);
  if (resourceId === 0) return null;
  const sessionId = filter.sessionId === undefined ? -1 : index.idOf(filter.sessionId);
  if (sessionId === 0) return null;
  const effect = filter.effect === undefined ? -1 : filter.effect === 'allow' ? EFFECT_ALLOW : EFFECT_DENY;
  const kinds = compiled.kinds === null ? null : new Set([...compiled.kinds].map((k) => KIND_CODES.get(k)!));
  const { since, until } = filter;
  const { subjects, emails, resources, sessions, effects, times } = index;
  const kindColumn = index.kinds;
  return (row) => {
    if (emailIds !== null && !((subjectId > 0 && subjects[row] === subjectId) || emailIds.has(emails[row]!))) return false;
    if (resourceId > 0 && resources[row] !== resourceId) return false;
    if (sessionId > 0 && sessions[row] !== sessionId) return false;
    if (effect >= 0 && effects[row] !== effect) return false;
    if (kinds !== null && (kindColumn[row] === UNKNOWN_KIND || !kinds.has(kindColumn[row]!))) return false;
    if (since !== undefined && !(times[row]! >= since)) return false;
    if (until !== undefined && !(times[row]! < until)) return false;
    return true;
  };
}
