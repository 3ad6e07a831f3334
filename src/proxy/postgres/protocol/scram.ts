import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { TollgateError } from '../../../core/index.js';

/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it (PostgreSQL
 * docs §55.3.1 "SCRAM-SHA-256 Authentication"): the user name in client-first is empty (the
 * server takes it from the StartupMessage), and channel binding is `tls-server-end-point`
 * (RFC 5929 §4) under the mechanism name `SCRAM-SHA-256-PLUS`. Outcomes are values; calling
 * the steps out of order is a bug and throws.
 */

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';

/**
 * The GS2 channel-binding flag (RFC 5802 §7): `n` no TLS; `y` TLS in use but the server offered
 * no `-PLUS` mechanism (so a server that does support it can detect a downgrade); `p` bind to
 * the server certificate's hash.
 */
export type ScramChannelBinding =
  | { readonly kind: 'none' }
  | { readonly kind: 'not-offered' }
  | { readonly kind: 'tls-server-end-point'; readonly certificateHash: Buffer };

export interface ScramKeys {
  readonly clientKey: Buffer;
  readonly serverKey: Buffer;
}

/**
 * Derived keys by password, salt and iteration count. PBKDF2 runs 4096 HMACs by default: with
 * a cache (an `LRUCache` fits) each upstream login pays that once per salt, not per connection.
 */
export interface ScramKeyCache {
  get(key: string): ScramKeys | undefined;
  set(key: string, value: ScramKeys): unknown;
}

export interface ScramClientOptions {
  readonly password: string;
  /** Empty for PostgreSQL, which ignores it; RFC test vectors set one. */
  readonly username?: string;
  readonly channelBinding?: ScramChannelBinding;
  /** Fixed nonce for tests; by default 18 random bytes, base64 (as libpq does). */
  readonly clientNonce?: string;
  /** Refuse servers that ask for more PBKDF2 iterations than this (default 1,000,000). */
  readonly maxIterations?: number;
  readonly keyCache?: ScramKeyCache;
}

export type ScramOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string };

const DEFAULT_MAX_ITERATIONS = 1_000_000;
const GS2_HEADERS = { none: 'n,,', 'not-offered': 'y,,', 'tls-server-end-point': 'p=tls-server-end-point,,' } as const;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** RFC 5802 §7 `printable`: %x21-2B / %x2D-7E, every visible ASCII character but `,`. */
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;

/**
 * One SCRAM exchange. Send `clientFirstMessage` in a SASLInitialResponse with `mechanism`,
 * pass AuthenticationSASLContinue's data to {@link ScramClient.handleServerFirst} and send the
 * result in a SASLResponse, then pass AuthenticationSASLFinal's data to
 * {@link ScramClient.handleServerFinal}; only when that is `ok` is the server authenticated.
 */
export class ScramClient {
  readonly mechanism: typeof SCRAM_SHA_256 | typeof SCRAM_SHA_256_PLUS;
  readonly clientFirstMessage: Buffer;
  readonly #password: Buffer;
  readonly #gs2Header: string;
  readonly #channelBindingData: Buffer;
  readonly #clientNonce: string;
  readonly #clientFirstBare: string;
  readonly #maxIterations: number;
  readonly #keyCache: ScramKeyCache | undefined;
  #state: 'initial' | 'waiting-final' | 'done' = 'initial';
  #expectedServerSignature: Buffer | null = null;

  constructor(options: ScramClientOptions) {
    const binding = options.channelBinding ?? { kind: 'none' };
    this.mechanism = binding.kind === 'tls-server-end-point' ? SCRAM_SHA_256_PLUS : SCRAM_SHA_256;
    // RFC 5802 §7: gs2-header = gs2-cbind-flag "," [authzid] ","
    this.#gs2Header = GS2_HEADERS[binding.kind];
    this.#channelBindingData = binding.kind === 'tls-server-end-point' ? binding.certificateHash : Buffer.alloc(0);
    this.#clientNonce = options.clientNonce ?? randomBytes(18).toString('base64');
    if (!PRINTABLE.test(this.#clientNonce)) {
      throw new TollgateError('TG_ERR_INTERNAL', 'a SCRAM nonce must be printable ASCII without commas');
    }
    this.#password = preparePassword(options.password);
    this.#maxIterations = options.maxIterations ?? DEFAULT_MAX_ITERATIONS;
    this.#keyCache = options.keyCache;
    this.#clientFirstBare = `n=${escapeUsername(options.username ?? '')},r=${this.#clientNonce}`;
    this.clientFirstMessage = Buffer.from(this.#gs2Header + this.#clientFirstBare, 'utf8');
  }

  /**
   * RFC 5802 §5.1 / §3: checks server-first (`r=`, `s=`, `i=`), derives the keys (PBKDF2 on
   * the thread pool, so the event loop stays free) and returns client-final with the proof.
   */
  async handleServerFirst(data: Buffer): Promise<ScramOutcome<Buffer>> {
    if (this.#state !== 'initial') throw new TollgateError('TG_ERR_INTERNAL', 'SCRAM server-first handled twice');
    this.#state = 'waiting-final';
    const serverFirst = data.toString('utf8');
    const parsed = parseServerFirst(serverFirst, this.#clientNonce, this.#maxIterations);
    if (!parsed.ok) return { ok: false, reason: parsed.reason };
    const { nonce, salt, iterations } = parsed.value;

    const keys = await this.#deriveKeys(salt, iterations);
    const gs2Header = Buffer.from(this.#gs2Header, 'utf8');
    const channelBinding = Buffer.concat([gs2Header, this.#channelBindingData]).toString('base64');
    const clientFinalWithoutProof = `c=${channelBinding},r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
    const storedKey = createHash('sha256').update(keys.clientKey).digest();
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientSignature.length);
    for (let i = 0; i < proof.length; i++) proof[i] = (keys.clientKey[i] as number) ^ (clientSignature[i] as number);
    this.#expectedServerSignature = hmac(keys.serverKey, authMessage);
    return { ok: true, value: Buffer.from(`${clientFinalWithoutProof},p=${proof.toString('base64')}`, 'utf8') };
  }

  /** RFC 5802 §3: the server proves it knows the password by `v=ServerSignature`. */
  handleServerFinal(data: Buffer): ScramOutcome<void> {
    if (this.#state !== 'waiting-final' || this.#expectedServerSignature === null) {
      throw new TollgateError('TG_ERR_INTERNAL', 'SCRAM server-final handled before server-first');
    }
    this.#state = 'done';
    const serverFinal = data.toString('utf8');
    const first = serverFinal.split(',')[0] ?? '';
    if (first.startsWith('e=')) return { ok: false, reason: `the server reported SCRAM error "${first.slice(2)}"` };
    const signature = first.startsWith('v=') ? decodeBase64(first.slice(2)) : null;
    if (signature === null) return { ok: false, reason: 'malformed SCRAM server-final message' };
    const expected = this.#expectedServerSignature;
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      return { ok: false, reason: 'the server signature does not match: the server does not know the password' };
    }
    return { ok: true, value: undefined };
  }

  async #deriveKeys(salt: Buffer, iterations: number): Promise<ScramKeys> {
    const cacheKey =
      this.#keyCache === undefined
        ? ''
        : createHash('sha256')
            .update(this.#password)
            .update('\0')
            .update(salt)
            .update(`\0${iterations}`)
            .digest('base64');
    const cached = this.#keyCache?.get(cacheKey);
    if (cached !== undefined) return cached;
    const saltedPassword = await new Promise<Buffer>((resolve, reject) => {
      pbkdf2(this.#password, salt, iterations, 32, 'sha256', (error, key) => (error ? reject(error) : resolve(key)));
    });
    const keys = { clientKey: hmac(saltedPassword, 'Client Key'), serverKey: hmac(saltedPassword, 'Server Key') };
    this.#keyCache?.set(cacheKey, keys);
    return keys;
  }
}

/**
 * Strict base64: Node's decoder ignores stray characters and non-zero padding bits, so the text
 * must also be the canonical encoding of what it decodes to.
 */
function decodeBase64(text: string): Buffer | null {
  if (!BASE64.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : null;
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

/** RFC 5802 §5.1: `,` and `=` in a user name are written `=2C` and `=3D`. */
function escapeUsername(username: string): string {
  return username.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

function parseServerFirst(
  message: string,
  clientNonce: string,
  maxIterations: number,
): ScramOutcome<{ nonce: string; salt: Buffer; iterations: number }> {
  // RFC 5802 §7: server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
  const [nonceAttr = '', saltAttr = '', iterationAttr = ''] = message.split(',');
  if (nonceAttr.startsWith('m=')) return { ok: false, reason: 'the server requires an unsupported SCRAM extension' };
  if (!nonceAttr.startsWith('r=') || !saltAttr.startsWith('s=') || !iterationAttr.startsWith('i=')) {
    return { ok: false, reason: 'malformed SCRAM server-first message' };
  }
  const nonce = nonceAttr.slice(2);
  // The server extends the client's nonce; anything else could be a replayed exchange.
  if (!nonce.startsWith(clientNonce) || nonce.length <= clientNonce.length || !PRINTABLE.test(nonce)) {
    return { ok: false, reason: 'the SCRAM server nonce does not extend the client nonce' };
  }
  const salt = decodeBase64(saltAttr.slice(2));
  if (salt === null || salt.length === 0) return { ok: false, reason: 'the SCRAM salt is not base64' };
  const iterationText = iterationAttr.slice(2);
  const iterations = /^[1-9]\d{0,9}$/.test(iterationText) ? Number(iterationText) : 0;
  if (iterations < 1 || iterations > maxIterations) {
    return { ok: false, reason: `the SCRAM iteration count "${iterationText}" is not between 1 and ${maxIterations}` };
  }
  return { ok: true, value: { nonce, salt, iterations } };
}

/**
 * The channel binding to use for an AuthenticationSASL mechanism list, as libpq chooses it for
 * `channel_binding=prefer|require|disable`. `certificateHash` is {@link tlsServerEndPointHash}
 * of the upstream's certificate, or `null` when the connection has no TLS or the certificate's
 * hash cannot be determined.
 */
export function chooseScramChannelBinding(
  offered: readonly string[],
  certificateHash: Buffer | null,
  tls: boolean,
  mode: 'prefer' | 'require' | 'disable' = 'prefer',
): ScramOutcome<ScramChannelBinding> {
  const plusOffered = offered.includes(SCRAM_SHA_256_PLUS);
  if (mode !== 'disable' && plusOffered && certificateHash !== null) {
    return { ok: true, value: { kind: 'tls-server-end-point', certificateHash } };
  }
  if (mode === 'require') {
    return { ok: false, reason: 'channel binding is required but not available on this connection' };
  }
  if (!offered.includes(SCRAM_SHA_256)) {
    return { ok: false, reason: `the server offers no usable SASL mechanism (${offered.join(', ')})` };
  }
  // `y` tells a server that supports channel binding that a downgrade happened; it is only
  // honest when the server really offered no -PLUS mechanism.
  return { ok: true, value: { kind: tls && !plusOffered && mode !== 'disable' ? 'not-offered' : 'none' } };
}

/** DER-encoded signature algorithm OIDs and the hash RFC 5929 §4.1 uses for each. */
const SIGNATURE_HASHES: Readonly<Record<string, string>> = {
  '2a864886f70d010104': 'sha256', // md5WithRSAEncryption: MD5 is replaced by SHA-256
  '2a864886f70d010105': 'sha256', // sha1WithRSAEncryption: SHA-1 is replaced by SHA-256
  '2a864886f70d01010b': 'sha256', // sha256WithRSAEncryption
  '2a864886f70d01010c': 'sha384', // sha384WithRSAEncryption
  '2a864886f70d01010d': 'sha512', // sha512WithRSAEncryption
  '2a864886f70d01010e': 'sha224', // sha224WithRSAEncryption
  '2a8648ce3d0401': 'sha256', // ecdsa-with-SHA1
  '2a8648ce3d040301': 'sha224', // ecdsa-with-SHA224
  '2a8648ce3d040302': 'sha256', // ecdsa-with-SHA256
  '2a8648ce3d040303': 'sha384', // ecdsa-with-SHA384
  '2a8648ce3d040304': 'sha512', // ecdsa-with-SHA512
  '2a8648ce380403': 'sha256', // dsa-with-sha1
  '608648016503040302': 'sha256', // dsa-with-sha256
};

/**
 * RFC 5929 §4.1 `tls-server-end-point`: the hash of the server's DER certificate, with the hash
 * function of the certificate's signature algorithm (SHA-256 in place of MD5 and SHA-1). As in
 * libpq, certificates signed with RSASSA-PSS or EdDSA (no single hash function) are refused.
 */
export function tlsServerEndPointHash(certificateDer: Buffer): ScramOutcome<Buffer> {
  const oid = signatureAlgorithmOid(certificateDer);
  if (oid === null) return { ok: false, reason: 'the server certificate is not a DER X.509 certificate' };
  const hash = SIGNATURE_HASHES[oid.toString('hex')];
  if (hash === undefined) {
    return { ok: false, reason: 'the server certificate signature algorithm has no channel-binding hash' };
  }
  return { ok: true, value: createHash(hash).update(certificateDer).digest() };
}

/** Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { OID, ... }, ... } */
function signatureAlgorithmOid(der: Buffer): Buffer | null {
  const certificate = readDer(der, 0, 0x30);
  if (certificate === null) return null;
  const tbs = readDer(der, certificate.start, 0x30);
  if (tbs === null) return null;
  const algorithm = readDer(der, tbs.end, 0x30);
  if (algorithm === null || algorithm.end > certificate.end) return null;
  const oid = readDer(der, algorithm.start, 0x06);
  if (oid === null || oid.end > algorithm.end) return null;
  return der.subarray(oid.start, oid.end);
}

/** One DER TLV with the expected tag at `offset`: where its contents start and end. */
function readDer(der: Buffer, offset: number, tag: number): { start: number; end: number } | null {
  if (offset + 2 > der.length || der[offset] !== tag) return null;
  const first = der[offset + 1] as number;
  let start = offset + 2;
  let length = first;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4 || start + count > der.length) return null;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (der[start + i] as number);
    start += count;
  }
  const end = start + length;
  return end > der.length ? null : { start, end };
}

/**
 * The password as PostgreSQL prepares it (pg_saslprep, RFC 4013 SASLprep): ASCII is used as is;
 * otherwise non-ASCII spaces become U+0020, characters "commonly mapped to nothing" are dropped,
 * and the result is NFKC-normalized, unless it is empty or holds a prohibited character, in
 * which case the raw password is used, as libpq does. Not replicated: the Unicode 3.2
 * unassigned-code-point and bidirectional checks (RFC 3454 A.1, §6), so a non-ASCII password
 * with right-to-left text or characters newer than Unicode 3.2 may be prepared differently
 * than PostgreSQL does, and its logins fail visibly.
 */
export function preparePassword(password: string): Buffer {
  if (!/[^\x00-\x7f]/.test(password)) return Buffer.from(password, 'utf8');
  const mapped: string[] = [];
  for (const char of password) {
    const code = char.codePointAt(0) as number;
    if (inRanges(code, NON_ASCII_SPACE)) mapped.push(' ');
    else if (!inRanges(code, MAPPED_TO_NOTHING)) mapped.push(char);
  }
  // PostgreSQL checks the mapped characters before normalization.
  if (mapped.length === 0 || mapped.some((char) => inRanges(char.codePointAt(0) as number, PROHIBITED))) {
    return Buffer.from(password, 'utf8');
  }
  return Buffer.from(mapped.join('').normalize('NFKC'), 'utf8');
}

function inRanges(code: number, ranges: readonly (readonly [number, number])[]): boolean {
  for (const [low, high] of ranges) {
    if (code < low) return false;
    if (code <= high) return true;
  }
  return false;
}

/** RFC 3454 C.1.2, non-ASCII space characters. */
const NON_ASCII_SPACE: readonly (readonly [number, number])[] = [
  [0x00a0, 0x00a0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];

/** RFC 3454 B.1, commonly mapped to nothing. */
const MAPPED_TO_NOTHING: readonly (readonly [number, number])[] = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];

/**
 * RFC 4013 §2.3 prohibited output: RFC 3454 C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8
 * and C.9, merged into sorted ranges.
 */
const PROHIBITED: readonly (readonly [number, number])[] = [
  [0x0000, 0x001f],
  [0x007f, 0x00a0],
  [0x0340, 0x0341],
  [0x06dd, 0x06dd],
  [0x070f, 0x070f],
  [0x1680, 0x1680],
  [0x180e, 0x180e],
  [0x2000, 0x200f],
  [0x2028, 0x202f],
  [0x205f, 0x2063],
  [0x206a, 0x206f],
  [0x2ff0, 0x2ffb],
  [0x3000, 0x3000],
  [0xd800, 0xf8ff],
  [0xfdd0, 0xfdef],
  [0xfeff, 0xfeff],
  [0xfff9, 0xffff],
  [0x1d173, 0x1d17a],
  // The last two code points of planes 1 to 13 (C.4 non-characters).
  ...Array.from({ length: 13 }, (_, i) => [(i + 1) * 0x10000 + 0xfffe, (i + 1) * 0x10000 + 0xffff] as const),
  [0xe0001, 0xe0001],
  [0xe0020, 0xe007f],
  [0xefffe, 0x10ffff],
];

/**
 * PasswordMessage contents for AuthenticationMD5Password (§55.2.1 "Start-up"):
 * `"md5" + md5hex(md5hex(password + user) + salt)`.
 */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password, 'utf8').update(user, 'utf8').digest('hex');
  return `md5${createHash('md5').update(inner, 'latin1').update(salt).digest('hex')}`;
}
