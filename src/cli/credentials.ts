import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import * as z from 'zod';
import { TollgateError, isTollgateError } from '../core/index.js';
import { withFileLock, type FileLockOptions } from './file-lock.js';

/**
 * The database tokens `tollgate login` stores for `tollgate psql`: one JSON file,
 * `$XDG_CONFIG_HOME/tollgate/credentials.json` (default `~/.config/tollgate/`), in a folder of
 * mode 0700, itself of mode 0600, replaced atomically (temporary file, then rename) so a reader
 * never sees half a file and needs no lock; writers take `credentials.json.lock`. One entry per
 * gateway origin, so several gateways coexist.
 */

export const CREDENTIALS_FILE_NAME = 'credentials.json';

/** What a login leaves for `tollgate psql`. */
export interface StoredLogin {
  /** The gateway's origin (`https://gw.example.com`), the entry's key. */
  readonly gateway: string;
  /** The Postgres user name: the email the token was issued to. */
  readonly user: string;
  readonly token: string;
  /** RFC 3339. */
  readonly expires_at: string;
  readonly postgres: { readonly host: string; readonly port: number; readonly sslmode: string };
  readonly databases: ReadonlyArray<{ readonly name: string; readonly logins: readonly string[] }>;
}

const storedLogin = z.object({
  gateway: z.string().min(1),
  user: z.string().min(1),
  token: z.string().min(1),
  expires_at: z.iso.datetime({ offset: true }),
  postgres: z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65_535), sslmode: z.string().min(1) }),
  databases: z.array(z.object({ name: z.string(), logins: z.array(z.string()) })),
});

const credentialsSchema = z.object({
  version: z.literal(1),
  gateways: z.record(z.string(), storedLogin),
});

type Credentials = z.infer<typeof credentialsSchema>;

/**
 * `$XDG_CONFIG_HOME/tollgate`, or `$HOME/.config/tollgate`. The XDG Base Directory
 * specification says a relative `XDG_CONFIG_HOME` is invalid and is ignored.
 */
export function credentialsDir(env: Readonly<Record<string, string | undefined>>): string {
  const xdg = env['XDG_CONFIG_HOME'];
  const base = xdg !== undefined && xdg !== '' && isAbsolute(xdg) ? xdg : join(env['HOME'] || homedir(), '.config');
  return join(base, 'tollgate');
}

export function credentialsFile(env: Readonly<Record<string, string | undefined>>): string {
  return join(credentialsDir(env), CREDENTIALS_FILE_NAME);
}

/** A gateway URL as given on the command line, reduced to its origin; a usage error otherwise. */
export function normalizeGatewayUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TollgateError('TG_ERR_USAGE', `--gateway ${text}: give the gateway's address, e.g. https://gateway.example.com`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TollgateError('TG_ERR_USAGE', `--gateway ${text}: the address must start with https:// (or http:// for a local gateway)`);
  }
  return url.origin;
}

/** Every stored login, by gateway origin; none when the file does not exist. */
export async function readStoredLogins(file: string): Promise<Readonly<Record<string, StoredLogin>>> {
  return (await readCredentials(file)).gateways;
}

async function readCredentials(file: string): Promise<Credentials> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, gateways: {} };
    throw new TollgateError('TG_ERR_LOGIN_REQUIRED', `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}); check its owner and mode`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TollgateError('TG_ERR_LOGIN_REQUIRED', `${file} is not valid JSON; delete it and run tollgate login again`, { cause: error });
  }
  const checked = credentialsSchema.safeParse(parsed);
  if (!checked.success) throw new TollgateError('TG_ERR_LOGIN_REQUIRED', `${file} is not a Tollgate credentials file; delete it and run tollgate login again`);
  return checked.data;
}

/**
 * Adds or replaces the login of `login.gateway`, keeping the others. The read-modify-write runs
 * under `credentials.json.lock` (see `withFileLock`), so concurrent logins, from other terminals
 * or a script logging in to several gateways, never drop each other's entries. The folder is
 * created (or narrowed) to 0700; the new file is written with mode 0600 under a temporary name,
 * synced to disk, and renamed over the old one, and the folder is synced so the rename survives a
 * crash: the file is always whole and never readable by others.
 *
 * A credentials file that exists but cannot be read or parsed is left as it is and the login is
 * refused (`TG_ERR_LOGIN_REQUIRED`): it may hold other gateways' tokens, or come from a newer
 * Tollgate, and only its owner can tell whether to fix it or delete it.
 */
export async function storeLogin(file: string, dir: string, login: StoredLogin, lock: FileLockOptions = {}): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await withFileLock(
    `${file}.lock`,
    async () => {
      let current: Credentials;
      try {
        current = await readCredentials(file);
      } catch (error) {
        if (!isTollgateError(error)) throw error;
        throw new TollgateError(error.code, `the token for ${login.gateway} was not stored: ${error.message}`, { cause: error });
      }
      const next: Credentials = { version: 1, gateways: { ...current.gateways, [login.gateway]: { ...login, databases: login.databases.map((db) => ({ name: db.name, logins: [...db.logins] })) } } };
      await replaceFile(file, dir, `${JSON.stringify(next, null, 2)}\n`);
    },
    lock,
  );
}

/** Writes `text` to a 0600 temporary file in `dir`, syncs it, renames it over `file`, and syncs `dir`. */
async function replaceFile(file: string, dir: string, text: string): Promise<void> {
  const temporary = join(dir, `.${CREDENTIALS_FILE_NAME}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, 'wx', 0o600);
  try {
    // The creation mode is narrowed by the umask, never widened; set it exactly all the same.
    await handle.chmod(0o600);
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  // fsync(2): syncing a file does not make its directory entry durable; the rename is a change to
  // the folder, and until the folder is synced a crash can bring back the old file.
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/**
 * The stored login to use: the one of `gateway` when given, else the only one stored. Throws
 * `TG_ERR_LOGIN_REQUIRED` when there is none or it has expired (`now` in ms), and
 * `TG_ERR_USAGE` when several are stored and none is named.
 */
export function pickLogin(logins: Readonly<Record<string, StoredLogin>>, gateway: string | undefined, now: number): StoredLogin {
  let login: StoredLogin | undefined;
  if (gateway !== undefined) {
    login = logins[gateway];
    if (login === undefined) throw new TollgateError('TG_ERR_LOGIN_REQUIRED', `not logged in to ${gateway}; run tollgate login --gateway ${gateway}`);
  } else {
    const all = Object.values(logins);
    if (all.length === 0) throw new TollgateError('TG_ERR_LOGIN_REQUIRED', 'not logged in to any gateway; run tollgate login --gateway URL');
    if (all.length > 1) {
      throw new TollgateError('TG_ERR_USAGE', `logged in to several gateways (${Object.keys(logins).join(', ')}); choose one with --gateway URL`);
    }
    login = all[0] as StoredLogin;
  }
  if (Date.parse(login.expires_at) <= now) {
    throw new TollgateError('TG_ERR_LOGIN_REQUIRED', `the database token for ${login.gateway} expired at ${login.expires_at}; run tollgate login --gateway ${login.gateway}`);
  }
  return login;
}
