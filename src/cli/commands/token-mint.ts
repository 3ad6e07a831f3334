import { hostname, userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { TollgateError, deepFreeze, isTollgateError, requireDuration, type Principal } from '../../core/index.js';
import { openConfiguredAuditStore } from '../audit-store.js';
import { loadValidConfig } from '../config-file.js';
import type { CliIo } from '../io.js';
import { createLogger } from '../logger.js';

/** How long mint keeps trying when the audit log is held and no gateway answers for it. */
const LOCK_WAIT_MS = 5_000;
const LOCK_RETRY_MS = 200;

interface MintOptions {
  config: string;
  user: string;
  group: string[];
  ttl?: string;
  reason?: string;
}

/**
 * `tollgate token mint`: the admin's break-glass and automation path to a database token
 * (DESIGN.md §3). The token alone goes to stdout, so `PGPASSWORD=$(tollgate token mint ...)`
 * works; the minting is audited as `token.issued` before the token is printed, and nothing is
 * printed when the record cannot be made durable. With the gateway stopped the CLI appends the
 * record itself; while a gateway holds the audit log, that gateway records it through its admin
 * listener.
 */
export function registerTokenCommand(program: Command, io: CliIo): void {
  const token = program.command('token').description('Database tokens for the Postgres gateway');
  token
    .command('mint')
    .description('Print a database token for a user (audited as token.issued); the token alone goes to stdout')
    .requiredOption('--config <file>', 'the config file')
    .requiredOption('--user <email>', 'the email (or subject) the token is for')
    .option('--group <name>', 'a group the token carries (repeatable)', (value: string, previous: string[]) => [...previous, value], [])
    .option('--ttl <duration>', 'lifetime, e.g. 15m or 1h (default: identity.db_tokens.ttl)')
    .option('--reason <text>', 'why the token is minted; written to the audit record')
    .action(async (options: MintOptions) => {
      const ttlMs = options.ttl === undefined ? undefined : requireDuration(options.ttl, '--ttl');
      const config = loadValidConfig(options.config, io);
      const user = options.user.trim();
      const principal: Principal = deepFreeze({
        subject: user,
        ...(user.includes('@') ? { email: user.toLowerCase() } : {}),
        groups: [...options.group],
      });
      // Loaded here: the other commands have no use for the identity room and its OIDC client.
      const { createDbTokens } = await import('../../identity/index.js');
      const tokens = createDbTokens({ publicUrl: config.server.public_url, identity: config.identity });
      const issued = tokens.issueDbToken(principal, ttlMs);
      if (!issued.ok) {
        const why = issued.reason === 'ttl-exceeds-max' ? `--ttl is longer than identity.db_tokens.max_ttl` : `--ttl must be at least 1s`;
        throw new TollgateError('TG_ERR_USAGE', why);
      }
      const mintedBy = { os_user: safeOsUser(), host: hostname(), pid: process.pid };
      const facts = {
        token_id: issued.tokenId,
        issued_at: new Date(issued.issuedAt).toISOString(),
        expires_at: new Date(issued.expiresAt).toISOString(),
        minted_by: mintedBy,
        ...(options.reason === undefined ? {} : { reason: options.reason }),
      };
      const recordedPrincipal = { subject: principal.subject, ...(principal.email ? { email: principal.email } : {}), groups: [...principal.groups] };
      let recorded: string | null = null;
      const deadline = Date.now() + LOCK_WAIT_MS;
      while (recorded === null) {
        const store = await openStoreUnlessLocked(config);
        if (!(store instanceof TollgateError)) {
          try {
            const { seq } = await store.append({ kind: 'token.issued', principal: recordedPrincipal, data: { method: 'cli', ...facts } });
            recorded = `recorded as audit seq ${seq}`;
          } finally {
            await store.close();
          }
          continue;
        }
        // The running gateway holds the audit log: it records the token (DESIGN.md §3), or nothing is printed.
        const { recordMintThroughGateway } = await import('../mint-through-gateway.js');
        try {
          const seq = await recordMintThroughGateway(config, { ...facts, principal: recordedPrincipal }, store, (body) => tokens.proveKeyHolder(body));
          recorded = `recorded by the running gateway as audit seq ${seq}`;
        } catch (error) {
          // No gateway answered: the holder may be another short command (an offline mint) that
          // lets go in a moment, so try the store again for a while.
          if (!isTollgateError(error, 'TG_ERR_AUDIT_LOCKED') || Date.now() >= deadline) throw error;
          await sleep(LOCK_RETRY_MS);
        }
      }
      io.stdout(`${issued.token}\n`);
      io.stderr(`token for ${principal.subject} expires ${new Date(issued.expiresAt).toISOString()} (id ${issued.tokenId}; ${recorded})\n`);
    });
}

/** The audit store, or the `TG_ERR_AUDIT_LOCKED` error when a running gateway holds it. */
async function openStoreUnlessLocked(config: Parameters<typeof openConfiguredAuditStore>[0]) {
  try {
    return await openConfiguredAuditStore(config, createLogger(config.logging.level));
  } catch (error) {
    if (isTollgateError(error, 'TG_ERR_AUDIT_LOCKED')) return error;
    throw error;
  }
}

function safeOsUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}
