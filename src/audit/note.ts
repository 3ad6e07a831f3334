import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { TollgateError } from '../core/index.js';
import { concatBytes, decodeBase64, encodeBase64, hasLoneSurrogate, utf8DecodeStrict, utf8Encode } from './bytes.js';
import { HASH_SIZE } from './merkle.js';

/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, and the checkpoints of
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) carried in them. Keys use the text
 * forms of the Go reference implementation (golang.org/x/mod/sumdb/note), which the C2SP
 * ecosystem shares:
 *
 *   signer key    PRIVATE+KEY+<name>+<key ID, 8 hex>+<base64(0x01 ‖ 32-byte seed)>
 *   verifier key  <name>+<key ID, 8 hex>+<base64(0x01 ‖ 32-byte public key)>
 */

/** signed-note "Signature types": 0x01 is Ed25519. */
const ALG_ED25519 = 0x01;
const SIGNER_PREFIX = 'PRIVATE+KEY+';
/** The spec asks verifiers to accept at least 16; the Go implementation stops at 100. */
export const MAX_NOTE_SIGNATURES = 100;
const SIGNATURE_LINE_PREFIX = '\u2014 ';

export interface NoteSigner {
  readonly name: string;
  /** The uint32 key ID. */
  readonly keyId: number;
  /** The verifier key text that checks this signer's signatures. */
  readonly verifierKey: string;
  /** Ed25519 signature (RFC 8032) of `message`. */
  sign(message: Uint8Array): Uint8Array;
}

export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  /** Strict RFC 8032 verification (not ZIP-215) of a 64-byte Ed25519 signature. */
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

/** One signature line of a note. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The base64 text after the name: key ID ‖ signature. */
  readonly base64: string;
}

export type OpenNoteResult =
  | {
      readonly ok: true;
      /** The signed text, including its final newline. */
      readonly text: string;
      /** Signatures by known keys, all verified. */
      readonly verified: readonly NoteSignature[];
      /** Signatures by keys not among the verifiers, ignored as the spec requires. */
      readonly unverified: readonly NoteSignature[];
    }
  | { readonly ok: false; readonly reason: NoteProblem; readonly detail: string };

/**
 * `malformed`: not a signed note. `invalid-signature`: a known key's signature does not verify.
 * `ambiguous-key`: two verifiers share the name and key ID of a signature. `unverified`: no
 * signature by a known key.
 */
export type NoteProblem = 'malformed' | 'invalid-signature' | 'ambiguous-key' | 'unverified';

/**
 * signed-note "Format": key names are non-empty and contain neither Unicode spaces nor `+`.
 * Control characters are refused too, since a note may not contain them.
 */
export function isValidKeyName(name: string): boolean {
  return name !== '' && !/[\p{White_Space}+\p{Cc}]/u.test(name) && !hasLoneSurrogate(name);
}

/** signed-note "Signatures": key ID = SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)[:4], big-endian. */
export function noteKeyId(name: string, publicKey: Uint8Array): number {
  const digest = sha256(concatBytes(utf8Encode(name), Uint8Array.of(0x0a, ALG_ED25519), publicKey));
  return ((digest[0]! << 24) | (digest[1]! << 16) | (digest[2]! << 8) | digest[3]!) >>> 0;
}

function keyIdHex(id: number): string {
  return id.toString(16).padStart(8, '0');
}

function keyError(what: string, why: string): TollgateError {
  return new TollgateError('TG_ERR_AUDIT_KEY_INVALID', `${what} is malformed: ${why}; check that the key was copied whole, or generate a new key pair`);
}

/** Generates an Ed25519 key pair for signing notes as `name`, in the text forms above. */
export function generateSignerKey(name: string, seed?: Uint8Array): { readonly signerKey: string; readonly verifierKey: string } {
  if (!isValidKeyName(name)) throw keyError('the key name', 'it must be non-empty, without spaces, "+" or control characters');
  const secret = seed ?? ed25519.utils.randomSecretKey();
  if (secret.length !== 32) throw keyError('the seed', 'an Ed25519 seed has 32 bytes');
  const publicKey = ed25519.getPublicKey(secret);
  const id = keyIdHex(noteKeyId(name, publicKey));
  return {
    signerKey: `${SIGNER_PREFIX}${name}+${id}+${encodeBase64(concatBytes(Uint8Array.of(ALG_ED25519), secret))}`,
    verifierKey: `${name}+${id}+${encodeBase64(concatBytes(Uint8Array.of(ALG_ED25519), publicKey))}`,
  };
}

/** Splits `<name>+<hex key ID>+<base64(0x01 ‖ 32 bytes)>` and checks each part. */
function splitKey(text: string, what: string): { name: string; keyId: number; key: Uint8Array } {
  // Names hold no '+', base64 may: the key is everything after the second '+'.
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (second < 0) throw keyError(what, 'expected <name>+<key id>+<key>');
  const name = text.slice(0, first);
  const id = text.slice(first + 1, second);
  const encoded = text.slice(second + 1);
  if (!isValidKeyName(name)) throw keyError(what, 'the name is empty or holds spaces or control characters');
  if (!/^[0-9a-f]{8}$/.test(id)) throw keyError(what, 'the key ID is not 8 lowercase hex digits');
  const raw = decodeBase64(encoded);
  if (raw === null) throw keyError(what, 'the key is not base64');
  if (raw.length !== 33 || raw[0] !== ALG_ED25519) throw keyError(what, 'the key is not an Ed25519 key (0x01 followed by 32 bytes)');
  return { name, keyId: Number.parseInt(id, 16), key: raw.subarray(1) };
}

/**
 * Makes the signing function of an Ed25519 seed. Ed25519 signatures are deterministic (RFC 8032
 * §5.1.6), so every implementation gives the same bytes; the default is @noble/curves, which runs
 * wherever this module does.
 */
export type Ed25519Signing = (seed: Uint8Array) => (message: Uint8Array) => Uint8Array;

const nobleSigning: Ed25519Signing = (seed) => (message) => ed25519.sign(message, seed);

/**
 * Parses a signer key whose signatures `signing` makes; throws `TG_ERR_AUDIT_KEY_INVALID` when it
 * is malformed or its key ID is wrong. The room's `parseSignerKey` (native-signing.ts) is this with
 * Node's Ed25519.
 */
export function parseSignerKeyWith(text: string, signing: Ed25519Signing = nobleSigning): NoteSigner {
  if (!text.startsWith(SIGNER_PREFIX)) throw keyError('the signing key', `it must start with ${SIGNER_PREFIX}`);
  const { name, keyId, key } = splitKey(text.slice(SIGNER_PREFIX.length), 'the signing key');
  const seed = key.slice();
  const publicKey = ed25519.getPublicKey(seed);
  if (noteKeyId(name, publicKey) !== keyId) throw keyError('the signing key', 'its key ID does not match its name and key');
  return {
    name,
    keyId,
    verifierKey: `${name}+${keyIdHex(keyId)}+${encodeBase64(concatBytes(Uint8Array.of(ALG_ED25519), publicKey))}`,
    sign: signing(seed),
  };
}

/** Parses a verifier key; throws `TG_ERR_AUDIT_KEY_INVALID` when it is malformed or its key ID is wrong. */
export function parseVerifierKey(text: string): NoteVerifier {
  const { name, keyId, key } = splitKey(text, 'the verifier key');
  if (noteKeyId(name, key) !== keyId) throw keyError('the verifier key', 'its key ID does not match its name and key');
  const publicKey = key.slice();
  if (!ed25519.utils.isValidPublicKey(publicKey, false)) throw keyError('the verifier key', 'it is not a valid Ed25519 public key');
  return {
    name,
    keyId,
    publicKey,
    verify(message, signature) {
      if (signature.length !== 64) return false;
      try {
        // RFC 8032 §5.1.7 strictly: canonical encodings only, as DESIGN.md §5 requires.
        return ed25519.verify(signature, message, publicKey, { zip215: false });
      } catch {
        return false;
      }
    },
  };
}

/** signed-note "Format": valid UTF-8 and no control character other than newline. */
function hasForbiddenCharacters(text: string): boolean {
  return /[\u0000-\u0009\u000b-\u001f]/.test(text) || hasLoneSurrogate(text);
}

/**
 * Signs `text` (which must end in a newline) with each signer and returns the note: the text, a
 * blank line, and one signature line per signer (signed-note "Format").
 */
export function signNote(text: string, signers: NoteSigner | readonly NoteSigner[]): string {
  const list = Array.isArray(signers) ? signers : [signers as NoteSigner];
  if (text === '' || !text.endsWith('\n') || hasForbiddenCharacters(text)) {
    throw new TollgateError('TG_ERR_INTERNAL', 'a note text must be non-empty, end with a newline and hold no control characters other than newlines');
  }
  if (list.length === 0) throw new TollgateError('TG_ERR_INTERNAL', 'a note needs at least one signer');
  const message = utf8Encode(text);
  let note = `${text}\n`;
  for (const signer of list) {
    const signature = signer.sign(message);
    const id = Uint8Array.of(signer.keyId >>> 24, (signer.keyId >>> 16) & 0xff, (signer.keyId >>> 8) & 0xff, signer.keyId & 0xff);
    note += `${SIGNATURE_LINE_PREFIX}${signer.name} ${encodeBase64(concatBytes(id, signature))}\n`;
  }
  return note;
}

/**
 * Opens a signed note (signed-note "Format" and "Signatures"): the note must be valid UTF-8
 * without control characters other than newline, its text must end in a newline and be
 * separated from one or more signature lines `— <name> <base64(key ID ‖ signature)>` by the last
 * blank line. Signatures of unknown keys are ignored (an identical one counted once); every
 * signature of a known key must verify; at least one must.
 */
export function openNote(note: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenNoteResult {
  const malformed = (detail: string) => ({ ok: false as const, reason: 'malformed' as const, detail });
  const text = typeof note === 'string' ? note : utf8DecodeStrict(note);
  if (text === null) return malformed('the note is not valid UTF-8');
  if (hasForbiddenCharacters(text)) return malformed('the note holds control characters or invalid Unicode');
  const split = text.lastIndexOf('\n\n');
  if (split < 0) return malformed('no blank line separates the text from the signatures');
  const body = text.slice(0, split + 1);
  const block = text.slice(split + 2);
  if (block === '' || !block.endsWith('\n')) return malformed('the signature block must be non-empty and end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) return malformed(`more than ${MAX_NOTE_SIGNATURES} signatures`);

  const signatures: { sig: NoteSignature; raw: Uint8Array }[] = [];
  for (const line of lines) {
    if (!line.startsWith(SIGNATURE_LINE_PREFIX)) return malformed('a signature line must start with an em dash and a space');
    const rest = line.slice(SIGNATURE_LINE_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space < 0) return malformed('a signature line is "— <name> <signature>"');
    const name = rest.slice(0, space);
    const base64 = rest.slice(space + 1);
    if (!isValidKeyName(name)) return malformed(`invalid key name ${JSON.stringify(name)}`);
    const raw = decodeBase64(base64);
    if (raw === null || raw.length < 5) return malformed(`the signature of ${name} is not base64 of a key ID and a signature`);
    const keyId = ((raw[0]! << 24) | (raw[1]! << 16) | (raw[2]! << 8) | raw[3]!) >>> 0;
    signatures.push({ sig: { name, keyId, base64 }, raw });
  }

  const message = utf8Encode(body);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seenKeys = new Set<string>();
  const seenUnknown = new Set<string>();
  for (const { sig, raw } of signatures) {
    const matching = verifiers.filter((v) => v.name === sig.name && v.keyId === sig.keyId);
    const label = `${sig.name}+${keyIdHex(sig.keyId)}`;
    if (matching.length === 0) {
      const whole = `${sig.name} ${sig.base64}`;
      if (!seenUnknown.has(whole)) unverified.push(sig);
      seenUnknown.add(whole);
      continue;
    }
    if (matching.length > 1) return { ok: false, reason: 'ambiguous-key', detail: `more than one verifier key is ${label}` };
    if (seenKeys.has(label)) continue;
    if (!matching[0]!.verify(message, raw.subarray(4))) return { ok: false, reason: 'invalid-signature', detail: `the signature of key ${label} does not verify` };
    seenKeys.add(label);
    verified.push(sig);
  }
  if (verified.length === 0) return { ok: false, reason: 'unverified', detail: 'the note has no signature by a known key' };
  return { ok: true, text: body, verified, unverified };
}

/** The three mandatory lines of a tlog-checkpoint note text, plus optional extension lines. */
export interface Checkpoint {
  /** The log identity; Tollgate writes the audit log id here. */
  readonly origin: string;
  /** The number of leaves. */
  readonly size: number;
  /** The RFC 9162 root hash of the first `size` leaves (32 bytes). */
  readonly rootHash: Uint8Array;
  readonly extensions?: readonly string[];
}

export type ParseCheckpointResult = { readonly ok: true; readonly checkpoint: Checkpoint } | { readonly ok: false; readonly reason: string };

/** tlog-checkpoint "Note text": `<origin>\n<size>\n<base64 root hash>\n[extension lines\n]`. */
export function formatCheckpointBody(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions = [] } = checkpoint;
  if (origin === '' || origin.includes('\n') || hasForbiddenCharacters(origin)) {
    throw new TollgateError('TG_ERR_INTERNAL', 'a checkpoint origin is one non-empty line without control characters');
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new TollgateError('TG_ERR_INTERNAL', `a checkpoint size is a whole number, not ${size}`);
  if (rootHash.length !== HASH_SIZE) throw new TollgateError('TG_ERR_INTERNAL', `a checkpoint root hash has ${HASH_SIZE} bytes`);
  if (extensions.some((line) => line === '' || line.includes('\n') || hasForbiddenCharacters(line))) {
    throw new TollgateError('TG_ERR_INTERNAL', 'checkpoint extension lines are non-empty single lines');
  }
  return [origin, String(size), encodeBase64(rootHash), ...extensions].map((line) => `${line}\n`).join('');
}

/** Parses a checkpoint note text (the text of an opened note, not the signed note itself). */
export function parseCheckpointBody(text: string): ParseCheckpointResult {
  if (!text.endsWith('\n')) return { ok: false, reason: 'a checkpoint ends with a newline' };
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) return { ok: false, reason: 'a checkpoint has at least three lines: origin, size, root hash' };
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin === '') return { ok: false, reason: 'the origin line is empty' };
  // Decimal without leading zeros, and within the range numbers hold exactly.
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    return { ok: false, reason: `the size ${JSON.stringify(sizeText)} is not a decimal tree size` };
  }
  const rootHash = decodeBase64(rootText);
  if (rootHash === null || rootHash.length !== HASH_SIZE) return { ok: false, reason: 'the root hash is not base64 of 32 bytes' };
  if (extensions.some((line) => line === '')) return { ok: false, reason: 'extension lines must be non-empty' };
  return { ok: true, checkpoint: extensions.length === 0 ? { origin, size: Number(sizeText), rootHash } : { origin, size: Number(sizeText), rootHash, extensions } };
}

/** A checkpoint as a signed note, ready to store or publish. */
export function signCheckpoint(checkpoint: Checkpoint, signers: NoteSigner | readonly NoteSigner[]): string {
  return signNote(formatCheckpointBody(checkpoint), signers);
}

export type OpenCheckpointResult =
  | { readonly ok: true; readonly checkpoint: Checkpoint; readonly text: string; readonly verified: readonly NoteSignature[] }
  | { readonly ok: false; readonly reason: NoteProblem | 'bad-checkpoint' | 'wrong-origin'; readonly detail: string };

/**
 * Opens a signed checkpoint: the note's signatures (see {@link openNote}), then its text as a
 * checkpoint, then, when `origin` is given, that it is this log's.
 */
export function openCheckpoint(note: string | Uint8Array, verifiers: readonly NoteVerifier[], options: { readonly origin?: string } = {}): OpenCheckpointResult {
  const opened = openNote(note, verifiers);
  if (!opened.ok) return opened;
  const parsed = parseCheckpointBody(opened.text);
  if (!parsed.ok) return { ok: false, reason: 'bad-checkpoint', detail: parsed.reason };
  if (options.origin !== undefined && parsed.checkpoint.origin !== options.origin) {
    return { ok: false, reason: 'wrong-origin', detail: `the checkpoint is for ${JSON.stringify(parsed.checkpoint.origin)}, not ${JSON.stringify(options.origin)}` };
  }
  return { ok: true, checkpoint: parsed.checkpoint, text: opened.text, verified: opened.verified };
}
