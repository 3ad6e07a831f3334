/**
 * TLS material generated at test time with the `openssl` CLI (Debian ships it; Node 20 has no
 * X.509 builder): a throwaway CA and server certificates it signs. Nothing is ever committed.
 * Keys are ECDSA P-256 with SHA-256 signatures, so SCRAM channel binding
 * (`tls-server-end-point`) works against them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  /** PEM text. */
  readonly cert: string;
  /** PEM text (PKCS#8, unencrypted). */
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestCa {
  /** PEM text of the CA certificate. */
  readonly cert: string;
  /** Path of the CA certificate (for `sslrootcert=`, `NODE_EXTRA_CA_CERTS`, ...). */
  readonly certFile: string;
  /** The folder holding every file of this CA; {@link TestCa.remove} deletes it. */
  readonly dir: string;
  /**
   * A server certificate for `hosts` (DNS names and IP addresses; default `localhost` and
   * `127.0.0.1`), signed by this CA. `name` names its files.
   */
  issue(name: string, hosts?: readonly string[]): TestCertificate;
  remove(): void;
}

const DAY_COUNT = '2';

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Creates a CA in a fresh temporary folder. Synchronous: a few tens of milliseconds. */
export function createTestCa(commonName = 'Tollgate Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-tls-'));
  openssl(
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha256', '-nodes',
      '-keyout', 'ca.key', '-out', 'ca.crt', '-days', DAY_COUNT, '-subj', `/CN=${commonName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const certFile = join(dir, 'ca.crt');
  let serial = 1;
  return {
    cert: readFileSync(certFile, 'utf8'),
    certFile,
    dir,
    issue(name, hosts = ['localhost', '127.0.0.1']) {
      if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`certificate name ${JSON.stringify(name)} must be [a-z0-9-]+`);
      const sans = hosts.map((host) => (/^[\d.]+$|:/.test(host) ? `IP:${host}` : `DNS:${host}`)).join(',');
      writeFileSync(
        join(dir, `${name}.ext`),
        `subjectAltName=${sans}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
      );
      openssl(
        ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${hosts[0] ?? name}`],
        dir,
      );
      openssl(
        [
          'x509', '-req', '-sha256', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key',
          '-set_serial', String(serial++), '-out', `${name}.crt`, '-days', DAY_COUNT, '-extfile', `${name}.ext`,
        ],
        dir,
      );
      const certPath = join(dir, `${name}.crt`);
      const keyPath = join(dir, `${name}.key`);
      return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certFile: certPath, keyFile: keyPath };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
