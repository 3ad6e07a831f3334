import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';

// node-forge is CommonJS whose exports Node cannot list for ESM (only `default` exists at run
// time), while its type declarations describe named exports: `require` satisfies both.
const forge = createRequire(import.meta.url)('node-forge') as typeof import('node-forge');

/** A PEM certificate and its PEM (PKCS#8) private key. */
export interface CertificatePair {
  readonly cert: string;
  readonly key: string;
}

export interface SelfSignedOptions {
  /** Host names and IP addresses the certificate is for; the first is also the subject CN. */
  readonly hosts: readonly string[];
  /** Validity in days from `now`. */
  readonly days: number;
  readonly now?: Date;
}

const DAY_MS = 86_400_000;

/**
 * A self-signed server certificate for `hosts`. The key is an RSA 2048 key made by
 * `node:crypto`; node-forge builds and signs the X.509 certificate (SHA-256), which Node
 * itself cannot. RSA rather than ECDSA because node-forge signs with RSA keys only; SHA-256
 * keeps SCRAM channel binding (`tls-server-end-point`, RFC 5929 §4.1) usable against it.
 */
export function createSelfSignedCertificate(options: SelfSignedOptions): CertificatePair {
  const first = options.hosts[0];
  if (first === undefined) throw new RangeError('a certificate needs at least one host');
  const now = options.now ?? new Date();
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });

  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = positiveSerial();
  // A minute of slack for clocks that run a little behind ours.
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + options.days * DAY_MS);
  const name = [
    { name: 'commonName', value: first },
    { name: 'organizationName', value: 'Tollgate demo' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  // RFC 5280 §4.2.1: a leaf (not a CA) for TLS servers, named by its subjectAltName entries,
  // which is where clients look for host names and addresses (RFC 6125 §6.4.4).
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: options.hosts.map((host) => (isIP(host) === 0 ? { type: 2, value: host } : { type: 7, ip: host })) },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}

/**
 * Whether `pair` must be replaced: unreadable, not matching its key, or expiring within
 * `minDaysLeft` days of `now`.
 */
export function certificateNeedsRenewal(pair: CertificatePair, minDaysLeft: number, now: Date = new Date()): boolean {
  try {
    const cert = new X509Certificate(pair.cert);
    if (!cert.checkPrivateKey(createPrivateKey(pair.key))) return true;
    return Date.parse(cert.validTo) - now.getTime() < minDaysLeft * DAY_MS;
  } catch {
    return true;
  }
}

/** RFC 5280 §4.1.2.2: a positive serial of at most 20 octets, unpredictable. */
function positiveSerial(): string {
  const bytes = randomBytes(16);
  // High bit clear (positive in DER), first octet non-zero (no leading zero to strip).
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) || 0x01;
  return bytes.toString('hex');
}
