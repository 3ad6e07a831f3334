import type { Command } from 'commander';
import { TollgateError, isTollgateError, requireDuration } from '../../core/index.js';
import { credentialsDir, credentialsFile, normalizeGatewayUrl, storeLogin } from '../credentials.js';
import type { CliIo } from '../io.js';
import { deviceLogin, loopbackLogin, openBrowser, type CliTokenResponse } from '../login-flows.js';

interface LoginOptions {
  gateway: string;
  browser: boolean;
  print?: boolean;
  timeout: string;
}

/**
 * `tollgate login --gateway URL` (DESIGN.md §3): the engineer's sign-in from a terminal. Opens
 * the browser on the gateway's consent page with a loopback redirect (RFC 8252), or, with
 * `--no-browser` or when no browser opens, shows a code to approve on any device (RFC 8628).
 * The database token is stored for `tollgate psql` (mode 0600); `--print` also prints it alone
 * on stdout, as `tollgate token mint` does. Everything else goes to stderr.
 */
export function registerLoginCommand(program: Command, io: CliIo): void {
  program
    .command('login')
    .description('Sign in through the gateway in your browser and store a database token for tollgate psql')
    .requiredOption('--gateway <url>', "the gateway's address, e.g. https://gateway.example.com")
    .option('--no-browser', 'do not open a browser here: show a code to approve on any device instead')
    .option('--print', 'also print the token alone on stdout, e.g. PGPASSWORD=$(tollgate login --gateway URL --print)')
    .option('--timeout <duration>', 'how long to wait for the sign-in', '5m')
    .action(async (options: LoginOptions) => {
      const gateway = normalizeGatewayUrl(options.gateway);
      const timeoutMs = requireDuration(options.timeout, '--timeout');
      if (timeoutMs < 1000) throw new TollgateError('TG_ERR_USAGE', '--timeout must be at least 1s');
      const signal = AbortSignal.timeout(timeoutMs);
      const notify = (text: string): void => io.stderr(text);
      let token: CliTokenResponse | null = null;
      if (options.browser) {
        token = await loopbackLogin({ gateway, open: (url) => openBrowser(url, io.env), notify, signal });
        if (token === null) notify('No browser could be opened here; sign in on another device instead.\n\n');
      }
      token ??= await deviceLogin({ gateway, notify, signal });

      const file = credentialsFile(io.env);
      try {
        await storeLogin(file, credentialsDir(io.env), { gateway, user: token.user, token: token.token, expires_at: token.expires_at, postgres: token.postgres, databases: token.databases });
      } catch (error) {
        // The gateway has issued and recorded this token: with --print it is still of use.
        if (options.print !== true || !isTollgateError(error)) throw error;
        io.stdout(`${token.token}\n`);
        throw new TollgateError(error.code, `${error.message} (the token was printed on stdout all the same)`, { cause: error, details: error.details });
      }
      const databases = token.databases.map((db) => `${db.name} (${db.logins.join(', ')})`).join(', ');
      io.stderr(
        `Signed in to ${gateway} as ${token.user}. The database token expires at ${token.expires_at}; it is stored in ${file}.\n` +
          (databases === '' ? '' : `Databases: ${databases}.\nConnect with: tollgate psql ${token.databases[0]?.name ?? 'RESOURCE'}\n`),
      );
      if (options.print === true) io.stdout(`${token.token}\n`);
    });
}
