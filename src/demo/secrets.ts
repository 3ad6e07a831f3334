import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { generateSignerKey, parseSignerKey } from '../audit/index.js';
import { TollgateError } from '../core/index.js';
import { certificateNeedsRenewal, createSelfSignedCertificate, type CertificatePair } from './tls-certificate.js';

/** The files under `<dataDir>/secrets/`, by what they hold. `config/demo.yaml` names the same files. */
export const DEMO_SECRET_FILES = Object.freeze({
  sessionKey: 'session.key',
  dbTokenKey: 'db-token.key',
  oidcClientSecret: 'oidc-client.secret',
  auditSigningKey: 'audit.key',
  auditVerifierKey: 'audit.pub',
  postgresTlsCert: 'postgres-tls.crt',
  postgresTlsKey: 'postgres-tls.key',
  databaseSuperuserPassword: 'postgres-superuser.password',
  shopReaderPassword: 'shop_reader.password',
  shopWriterPassword: 'shop_writer.password',
  idpJwks: 'idp-jwks.json',
  idpCookieKey: 'idp-cookie.key',
});

export type DemoSecretName = keyof typeof DEMO_SECRET_FILES;

/** The audit log's name: the origin line of its checkpoints and the signing key's name. */
export const DEMO_AUDIT_LOG_ID = 'demo.tollgate.local/audit';

/** Host names and addresses the gateway's PostgreSQL certificate is for. */
export const DEMO_TLS_HOSTS: readonly string[] = Object.freeze(['localhost', '127.0.0.1', '::1']);

const TLS_VALID_DAYS = 365;
/** Renewed on start when it has less left than this, so a long-lived data dir never serves an expired one. */
const TLS_RENEW_DAYS = 30;

/** Every secret of one demo data dir, and where each lives. */
export interface DemoSecrets {
  /** `<dataDir>/secrets`, mode 0700. */
  readonly dir: string;
  /** Absolute path of each secret file (mode 0600). */
  readonly files: Readonly<Record<DemoSecretName, string>>;
  /** Seals session cookies (`identity.session.keys`). */
  readonly sessionKey: string;
  /** Signs database tokens (`identity.db_tokens.signing_key`). */
  readonly dbTokenKey: string;
  /** The gateway's OIDC client secret at the demo IdP. */
  readonly oidcClientSecret: string;
  /** C2SP signed-note keys of the audit log (`audit.signing_key`; the verifier for `audit verify --key`). */
  readonly audit: { readonly signingKey: string; readonly verifierKey: string };
  /** The gateway's PostgreSQL listener certificate, self-signed for {@link DEMO_TLS_HOSTS}. */
  readonly postgresTls: CertificatePair;
  /** Passwords of the embedded PostgreSQL's superuser and of the gateway's upstream logins. */
  readonly database: { readonly superuser: string; readonly shop_reader: string; readonly shop_writer: string };
  /** The demo IdP's signing keys (private JWK Set) and cookie signing key. */
  readonly idp: { readonly jwks: { readonly keys: readonly JWK[] }; readonly cookieKeys: readonly string[] };
}

/**
 * Creates the demo's secrets on first use and reuses them on every later start, so that a
 * restarted demo keeps its sessions, its database logins and, above all, its audit log's
 * signing key (a new key would make the existing checkpoints unverifiable with `audit.pub`).
 * Files are written whole (temporary file, then rename) with mode 0600, in a 0700 folder.
 * The TLS certificate is the one secret replaced on its own: when it is unreadable, does not
 * match its key, or nears expiry.
 *
 * @throws TollgateError `TG_ERR_DEMO_START` when an existing secret file is unusable.
 */
export async function ensureDemoSecrets(dataDir: string): Promise<DemoSecrets> {
  const dir = join(resolve(dataDir), 'secrets');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const files = Object.fromEntries(
    Object.entries(DEMO_SECRET_FILES).map(([name, file]) => [name, join(dir, file)]),
  ) as Record<DemoSecretName, string>;

  const token = (name: DemoSecretName, bytes = 32) => readOrCreate(files[name], () => randomBytes(bytes).toString('base64url')).then((text) => text.trim());

  const sessionKey = await token('sessionKey');
  const dbTokenKey = await token('dbTokenKey');
  const oidcClientSecret = await token('oidcClientSecret');
  const audit = await auditKeys(files);
  const postgresTls = await tlsPair(files);
  const database = {
    superuser: await token('databaseSuperuserPassword', 24),
    shop_reader: await token('shopReaderPassword', 24),
    shop_writer: await token('shopWriterPassword', 24),
  };
  const jwks = parseJwks(await readOrCreate(files.idpJwks, newIdpJwks), files.idpJwks);
  const cookieKeys = [await token('idpCookieKey')];
  return { dir, files, sessionKey, dbTokenKey, oidcClientSecret, audit, postgresTls, database, idp: { jwks, cookieKeys } };
}

async function auditKeys(files: Readonly<Record<DemoSecretName, string>>): Promise<DemoSecrets['audit']> {
  const signingKey = (await readOrCreate(files.auditSigningKey, () => generateSignerKey(DEMO_AUDIT_LOG_ID).signerKey)).trim();
  let verifierKey: string;
  try {
    verifierKey = parseSignerKey(signingKey).verifierKey;
  } catch (cause) {
    throw new TollgateError(
      'TG_ERR_DEMO_START',
      `${files.auditSigningKey} is not a valid audit signing key; restore it, or start over with an empty data dir (a new key cannot verify the existing audit log)`,
      { cause },
    );
  }
  // The verifier is derived from the signing key, so it is rewritten whenever it is missing or stale.
  if ((await readIfExists(files.auditVerifierKey))?.trim() !== verifierKey) await writeSecret(files.auditVerifierKey, verifierKey);
  return { signingKey, verifierKey };
}

async function tlsPair(files: Readonly<Record<DemoSecretName, string>>): Promise<CertificatePair> {
  const cert = await readIfExists(files.postgresTlsCert);
  const key = await readIfExists(files.postgresTlsKey);
  if (cert !== null && key !== null && !certificateNeedsRenewal({ cert, key }, TLS_RENEW_DAYS)) return { cert, key };
  const pair = createSelfSignedCertificate({ hosts: DEMO_TLS_HOSTS, days: TLS_VALID_DAYS });
  await writeSecret(files.postgresTlsKey, pair.key);
  await writeSecret(files.postgresTlsCert, pair.cert);
  return pair;
}

/** A private JWK Set with one RS256 key: the algorithm every relying party supports. */
async function newIdpJwks(): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  return `${JSON.stringify({ keys: [jwk] }, null, 2)}\n`;
}

function parseJwks(text: string, file: string): { readonly keys: readonly JWK[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  const keys = parsed !== null && typeof parsed === 'object' && 'keys' in parsed ? parsed.keys : null;
  const usable = Array.isArray(keys) && keys.length > 0 && keys.every((key: unknown) => key !== null && typeof key === 'object' && 'kty' in key && 'd' in key);
  if (!usable) {
    throw new TollgateError('TG_ERR_DEMO_START', `${file} is not a private JWK Set; delete it and start again (a new key is generated, and demo users sign in again)`);
  }
  return { keys: keys as JWK[] };
}

/** The file's text, or what `create` makes, written first. */
async function readOrCreate(file: string, create: () => string | Promise<string>): Promise<string> {
  const existing = await readIfExists(file);
  if (existing !== null) {
    // Tighten files that were loosened, copied or restored with a laxer mode.
    await chmod(file, 0o600);
    return existing;
  }
  const text = await create();
  await writeSecret(file, text);
  return text;
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TollgateError('TG_ERR_DEMO_START', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** Writes whole or not at all: a crash mid-write leaves the old file (or none), never half a key. */
async function writeSecret(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, text.endsWith('\n') ? text : `${text}\n`, { mode: 0o600, flush: true });
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new TollgateError('TG_ERR_DEMO_START', `cannot write ${file}: ${(error as Error).message}`, { cause: error });
  }
}
