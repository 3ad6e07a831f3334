import { sha256 } from '@noble/hashes/sha2.js';
import { TollgateError } from '../core/index.js';
import { bytesToHex, equalBytes, hexToBytesStrict } from './bytes.js';

/**
 * The Merkle tree of the audit log, exactly as RFC 9162 §2.1 defines it for Certificate
 * Transparency 2.0 (SHA-256, `0x00` leaf and `0x01` node prefixes), so that any CT or
 * C2SP tlog tooling computes the same roots and proofs.
 *
 * Tree sizes and indexes are plain numbers: every size below 2^53 is exact, and no bitwise
 * operator (which would truncate to 32 bits) touches them.
 *
 * https://www.rfc-editor.org/rfc/rfc9162#section-2.1
 */

export const HASH_SIZE = 32;

const LEAF_PREFIX = Uint8Array.of(0x00);

/** RFC 9162 §2.1.1: MTH({d(0)}) = HASH(0x00 || d(0)). */
export function leafHash(entry: Uint8Array): Uint8Array {
  return sha256.create().update(LEAF_PREFIX).update(entry).digest();
}

/** RFC 9162 §2.1.1: HASH(0x01 || MTH(left) || MTH(right)). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const input = new Uint8Array(1 + left.length + right.length);
  input[0] = 0x01;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return sha256(input);
}

/** RFC 9162 §2.1.1: the hash of an empty tree is the hash of the empty string. */
export function emptyRoot(): Uint8Array {
  return sha256(new Uint8Array(0));
}

/** A half-open range `[start, end)` of leaf indexes whose subtree hash is one proof element. */
export interface LeafRange {
  readonly start: number;
  readonly end: number;
}

/** SHA-256(0x01 ‖ left ‖ right), as {@link nodeHash} computes it. */
export type NodeHasher = (left: Uint8Array, right: Uint8Array) => Uint8Array;

/** Leaf hashes by index: an array, or an accessor (for instance over hashes read from disk). */
export type LeafSource = readonly Uint8Array[] | ((index: number) => Uint8Array);

export interface CompactRangeJSON {
  readonly size: number;
  /** Lowercase hex roots of the perfect subtrees covering `[0, size)`, largest (leftmost) first. */
  readonly hashes: readonly string[];
}

/**
 * The right edge of the tree: the roots of the perfect subtrees that cover leaves `[0, size)`,
 * one per set bit of `size`, largest first. Appending costs one leaf plus amortised one node
 * hash; the root of the whole tree costs at most log2(size) node hashes. This is all the state a
 * writer or a streaming verifier needs, whatever the size of the log.
 */
export class CompactRange {
  readonly #hashNode: NodeHasher;
  #size = 0;
  #hashes: Uint8Array[] = [];

  /**
   * `hashNode` defaults to the portable {@link nodeHash}; a Node caller may pass one built on the
   * native SHA-256, which must give identical results.
   */
  constructor(hashNode: NodeHasher = nodeHash) {
    this.#hashNode = hashNode;
  }

  get size(): number {
    return this.#size;
  }

  /** Appends the leaf hash of the next entry. */
  append(leaf: Uint8Array): void {
    if (leaf.length !== HASH_SIZE) throw new TollgateError('TG_ERR_INTERNAL', `a leaf hash has ${HASH_SIZE} bytes, not ${leaf.length}`);
    let hash = leaf;
    // Each trailing 1 bit of the old size is a perfect subtree of the same height as the one
    // being carried up: merge them, as a binary counter carries.
    let carry = this.#size;
    while (carry % 2 === 1) {
      hash = this.#hashNode(this.#hashes.pop()!, hash);
      carry = (carry - 1) / 2;
    }
    this.#hashes.push(hash);
    this.#size++;
  }

  /** MTH(D[0:size]) (RFC 9162 §2.1.1): the subtree roots folded from the right. */
  root(): Uint8Array {
    const n = this.#hashes.length;
    if (n === 0) return emptyRoot();
    let root = this.#hashes[n - 1]!;
    for (let i = n - 2; i >= 0; i--) root = this.#hashNode(this.#hashes[i]!, root);
    return root;
  }

  /** The perfect subtree roots, largest first (copies). */
  hashes(): Uint8Array[] {
    return this.#hashes.map((h) => h.slice());
  }

  clone(): CompactRange {
    return CompactRange.#make(this.#size, this.hashes(), this.#hashNode);
  }

  toJSON(): CompactRangeJSON {
    return { size: this.#size, hashes: this.#hashes.map(bytesToHex) };
  }

  /**
   * Restores a range saved with {@link toJSON}. Throws `TG_ERR_AUDIT_TAMPERED` when the value is
   * not a well-formed range (wrong hash count for the size, bad hex), since a saved state that
   * does not parse means the audit directory was damaged.
   */
  static fromJSON(json: unknown, hashNode: NodeHasher = nodeHash): CompactRange {
    const bad = (why: string) =>
      new TollgateError('TG_ERR_AUDIT_TAMPERED', `the saved Merkle tree state is malformed (${why}); run "tollgate audit verify" on the audit directory`);
    if (typeof json !== 'object' || json === null) throw bad('not an object');
    const { size, hashes } = json as { size?: unknown; hashes?: unknown };
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad('size');
    if (!Array.isArray(hashes) || hashes.length !== popCount(size)) throw bad('hash count does not match the size');
    const parsed = hashes.map((h: unknown) => (typeof h === 'string' ? hexToBytesStrict(h, HASH_SIZE) : null));
    if (parsed.some((h) => h === null)) throw bad('hash is not 64 lowercase hex digits');
    return CompactRange.#make(size, parsed as Uint8Array[], hashNode);
  }

  static #make(size: number, hashes: Uint8Array[], hashNode: NodeHasher): CompactRange {
    const range = new CompactRange(hashNode);
    range.#size = size;
    range.#hashes = hashes;
    return range;
  }
}

/** Number of set bits of a non-negative safe integer. */
function popCount(n: number): number {
  let count = 0;
  for (let x = n; x > 0; x = Math.floor(x / 2)) count += x % 2;
  return count;
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  let x = n;
  while (x % 2 === 0) x /= 2;
  return x === 1;
}

/** The largest power of two strictly smaller than `n` (n > 1), the split point `k` of RFC 9162 §2.1.1. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function leafAt(source: LeafSource, index: number): Uint8Array {
  const leaf = typeof source === 'function' ? source(index) : source[index];
  if (leaf === undefined) throw new TollgateError('TG_ERR_INTERNAL', `leaf ${index} is missing from the leaf source`);
  return leaf;
}

/** MTH straight from the definition in RFC 9162 §2.1.1, recursively. For tests and small trees. */
export function rootFromLeaves(leaves: readonly Uint8Array[]): Uint8Array {
  const mth = (start: number, end: number): Uint8Array => {
    const n = end - start;
    if (n === 0) return emptyRoot();
    if (n === 1) return leaves[start]!;
    const k = splitPoint(n);
    return nodeHash(mth(start, start + k), mth(start + k, end));
  };
  return mth(0, leaves.length);
}

/**
 * MTH(D[start:end]) over leaf hashes from `source`, in O(end − start) hashes and O(log) memory:
 * the leaves of a range form a tree of their own, so a fresh compact range over them yields its
 * root without recursion or memo tables.
 */
export function subtreeHash(source: LeafSource, start: number, end: number): Uint8Array {
  const range = new CompactRange();
  for (let i = start; i < end; i++) range.append(leafAt(source, i));
  return range.root();
}

function checkSize(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new TollgateError('TG_ERR_USAGE', `${what} must be a whole number, not ${n}`);
}

/**
 * The leaf ranges whose subtree hashes make up PATH(index, D[0:size]), in proof order (the leaf's
 * sibling first, the root's child last), per RFC 9162 §2.1.3.1. The ranges are disjoint and,
 * with the leaf itself, cover `[0, size)`.
 */
export function inclusionProofRanges(index: number, size: number): LeafRange[] {
  checkSize('tree size', size);
  checkSize('leaf index', index);
  if (index >= size) throw new TollgateError('TG_ERR_USAGE', `leaf ${index} is not in a tree of size ${size}`);
  const topDown: LeafRange[] = [];
  let lo = 0;
  let hi = size;
  let m = index;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) if m < k, else PATH(m − k, D[k:n]) : MTH(D[0:k]).
    if (m < k) {
      topDown.push({ start: lo + k, end: hi });
      hi = lo + k;
    } else {
      topDown.push({ start: lo, end: lo + k });
      lo += k;
      m -= k;
    }
  }
  return topDown.reverse();
}

/**
 * The leaf ranges whose subtree hashes make up PROOF(size1, D[0:size2]), in proof order, per
 * RFC 9162 §2.1.4.1. Empty when size1 is 0 or equals size2. The ranges are disjoint.
 */
export function consistencyProofRanges(size1: number, size2: number): LeafRange[] {
  checkSize('first tree size', size1);
  checkSize('second tree size', size2);
  if (size1 > size2) throw new TollgateError('TG_ERR_USAGE', `a tree of size ${size1} cannot be a prefix of one of size ${size2}`);
  if (size1 === 0 || size1 === size2) return [];
  const topDown: LeafRange[] = [];
  let lo = 0;
  let hi = size2;
  let m = size1;
  let complete = true;
  // SUBPROOF(m, D[n], b): when m = n, {} if b (the old root is known) else {MTH(D[m])};
  // otherwise with k the split point: m ≤ k → SUBPROOF(m, D[0:k], b) : MTH(D[k:n]),
  // m > k → SUBPROOF(m − k, D[k:n], false) : MTH(D[0:k]).
  while (m !== hi - lo) {
    const k = splitPoint(hi - lo);
    if (m <= k) {
      topDown.push({ start: lo + k, end: hi });
      hi = lo + k;
    } else {
      topDown.push({ start: lo, end: lo + k });
      lo += k;
      m -= k;
      complete = false;
    }
  }
  if (!complete) topDown.push({ start: lo, end: hi });
  return topDown.reverse();
}

/** The inclusion proof of leaf `index` in the tree of the first `size` leaves of `source`. */
export function inclusionProof(index: number, size: number, source: LeafSource): Uint8Array[] {
  return inclusionProofRanges(index, size).map((r) => subtreeHash(source, r.start, r.end));
}

/** The consistency proof from the tree of size `size1` to the tree of size `size2` of `source`. */
export function consistencyProof(size1: number, size2: number, source: LeafSource): Uint8Array[] {
  return consistencyProofRanges(size1, size2).map((r) => subtreeHash(source, r.start, r.end));
}

/**
 * Builds a proof from leaf hashes streamed in order from leaf 0, for a store that reads its log
 * sequentially (from disk, asynchronously) rather than by index. Memory is O(log size).
 *
 * ```ts
 * const builder = new ProofBuilder(inclusionProofRanges(seq, size));
 * for await (const hash of leafHashes()) { if (builder.complete) break; builder.push(hash); }
 * const proof = builder.proof();
 * ```
 */
export class ProofBuilder {
  readonly #ranges: readonly LeafRange[];
  /** Indexes into #ranges, by ascending start. */
  readonly #order: number[];
  readonly #results: (Uint8Array | undefined)[];
  #next = 0;
  #cursor = 0;
  #current = new CompactRange();

  constructor(ranges: readonly LeafRange[]) {
    this.#ranges = ranges;
    this.#order = ranges.map((_, i) => i).sort((a, b) => ranges[a]!.start - ranges[b]!.start);
    this.#results = ranges.map(() => undefined);
    this.#skipDone();
  }

  /** How many leaves (from leaf 0) the proof needs in total. */
  get needed(): number {
    return this.#ranges.reduce((max, r) => Math.max(max, r.end), 0);
  }

  /** True once every proof element is computed; further leaves are not needed. */
  get complete(): boolean {
    return this.#cursor === this.#order.length;
  }

  /** Feeds the hash of the next leaf: leaf 0 first, then 1, and so on. */
  push(leaf: Uint8Array): void {
    const index = this.#next++;
    if (this.complete) return;
    const range = this.#ranges[this.#order[this.#cursor]!]!;
    if (index < range.start) return;
    this.#current.append(leaf);
    if (index + 1 === range.end) {
      this.#results[this.#order[this.#cursor]!] = this.#current.root();
      this.#current = new CompactRange();
      this.#cursor++;
      this.#skipDone();
    }
  }

  /** The proof hashes in proof order. Throws when fewer than {@link needed} leaves were pushed. */
  proof(): Uint8Array[] {
    if (!this.complete) throw new TollgateError('TG_ERR_INTERNAL', `the proof needs ${this.needed} leaves, ${this.#next} were given`);
    return this.#results as Uint8Array[];
  }

  #skipDone(): void {
    // Empty ranges never occur in RFC 9162 proofs; tolerate them rather than wait forever.
    while (!this.complete) {
      const range = this.#ranges[this.#order[this.#cursor]!]!;
      if (range.end > range.start) return;
      this.#results[this.#order[this.#cursor]!] = emptyRoot();
      this.#cursor++;
    }
  }
}

function validHashes(...hashes: readonly Uint8Array[]): boolean {
  return hashes.every((h) => h.length === HASH_SIZE);
}

/**
 * The root an inclusion proof leads to, following RFC 9162 §2.1.3.2 step by step, or `null` when
 * the proof cannot be valid for this index and size (too long, too short, wrong hash sizes).
 */
export function rootFromInclusionProof(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[]): Uint8Array | null {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0) return null;
  if (!validHashes(leaf, ...proof)) return null;
  // 1. leaf_index must be smaller than tree_size.
  if (index >= size) return null;
  // 2. fn = leaf_index, sn = tree_size − 1.
  let fn = index;
  let sn = size - 1;
  // 3. r = hash.
  let r = leaf;
  // 4. For each p in inclusion_path:
  for (const p of proof) {
    // a. If sn is 0, stop and fail.
    if (sn === 0) return null;
    // b. If LSB(fn) is set, or fn equals sn:
    if (fn % 2 === 1 || fn === sn) {
      // i. r = HASH(0x01 || p || r).
      r = nodeHash(p, r);
      // ii. If LSB(fn) is not set, right-shift fn and sn equally until LSB(fn) is set or fn is 0.
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn /= 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      // Otherwise r = HASH(0x01 || r || p).
      r = nodeHash(r, p);
    }
    // c. Right-shift fn and sn once.
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 5. sn must be 0 (the path was long enough to reach the root).
  return sn === 0 ? r : null;
}

/** RFC 9162 §2.1.3.2: does `proof` show leaf `index` with hash `leaf` in the tree of `size` with `root`? */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  const computed = rootFromInclusionProof(leaf, index, size, proof);
  return computed !== null && root.length === HASH_SIZE && equalBytes(computed, root);
}

/**
 * RFC 9162 §2.1.4.2: is the tree of `size1` with `root1` a prefix of the tree of `size2` with
 * `root2`? The RFC's algorithm covers 0 < size1 < size2; around it, equal sizes need an empty
 * proof and equal roots, and size 0 needs an empty proof and the empty-tree root.
 */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size1 > size2) return false;
  if (!validHashes(root1, root2, ...proof)) return false;
  if (size1 === 0) return proof.length === 0 && equalBytes(root1, emptyRoot()) && (size2 > 0 || equalBytes(root2, root1));
  if (size1 === size2) return proof.length === 0 && equalBytes(root1, root2);
  // 1. An empty consistency_path fails.
  if (proof.length === 0) return false;
  // 2. If first is an exact power of 2, prepend first_hash to the path.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  // 3. fn = first − 1, sn = second − 1.
  let fn = size1 - 1;
  let sn = size2 - 1;
  // 4. If LSB(fn) is set, right-shift fn and sn equally until LSB(fn) is not set.
  while (fn % 2 === 1) {
    fn = (fn - 1) / 2;
    sn = Math.floor(sn / 2);
  }
  // 5. fr = sr = the first value of the path.
  let fr = path[0]!;
  let sr = path[0]!;
  // 6. For each subsequent value c:
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    // a. If sn is 0, stop and fail.
    if (sn === 0) return false;
    // b. If LSB(fn) is set, or fn equals sn:
    if (fn % 2 === 1 || fn === sn) {
      // i. fr = HASH(0x01 || c || fr), sr = HASH(0x01 || c || sr).
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      // ii. If LSB(fn) is not set, right-shift fn and sn equally until LSB(fn) is set or fn is 0.
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn /= 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      // Otherwise sr = HASH(0x01 || sr || c).
      sr = nodeHash(sr, c);
    }
    // c. Right-shift fn and sn once.
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 7. fr must equal first_hash, sr must equal second_hash, and sn must be 0.
  return equalBytes(fr, root1) && equalBytes(sr, root2) && sn === 0;
}
