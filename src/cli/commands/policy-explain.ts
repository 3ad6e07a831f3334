import type { Command } from 'commander';
import type { TollgateConfig } from '../../config/index.js';
import { TollgateError, deepFreeze, type Principal } from '../../core/index.js';
import {
  compilePolicy,
  explain,
  grantedLogins,
  type Action,
  type CompiledPolicy,
  type Explanation,
} from '../../policy/index.js';
import { loadValidConfig } from '../config-file.js';
import { CommandExit, EXIT, type CliIo } from '../io.js';

interface ExplainOptions {
  config: string;
  user: string;
  group: string[];
  http?: string;
  sql?: string;
  resource?: string;
  login?: string;
}

/**
 * `tollgate policy explain`: prints the decision for one HTTP request or one SQL text, the rule
 * that made it, and why every rule of the roles held did or did not match (DESIGN.md §3).
 * Exit 0 when everything is allowed, 1 when anything is denied.
 */
export function registerPolicyCommand(program: Command, io: CliIo): void {
  const policy = program.command('policy').description('Inspect RBAC policy');
  policy
    .command('explain')
    .description('Show the decision, the rule that made it and why, for one HTTP request or SQL text')
    .requiredOption('--config <file>', 'the config file')
    .requiredOption('--user <email>', "the person's email or subject")
    .option('--group <name>', 'an IdP group the person is in (repeatable)', collect, [])
    .option('--http <request>', 'an HTTP request as "METHOD URL"; the URL may be a path (/app/x) or absolute')
    .option('--sql <text>', 'SQL text (one or more statements)')
    .option('--resource <name>', 'the resource (required with --sql; with --http it overrides matching)')
    .option('--login <name>', 'with --sql: the upstream login (default: the least privileged one granted)')
    .action(async (options: ExplainOptions) => {
      if ((options.http === undefined) === (options.sql === undefined)) {
        throw new TollgateError('TG_ERR_USAGE', 'give exactly one of --http "METHOD URL" or --sql "SQL"');
      }
      const config = loadValidConfig(options.config, io);
      const compiled = compilePolicy(config.policy);
      const principal = principalFrom(options);
      io.stdout(`principal: ${principal.subject}${principal.groups.length ? ` (groups: ${principal.groups.join(', ')})` : ''}\n`);
      const denied = options.http !== undefined
        ? await explainHttp(compiled, config, principal, options.http, options.resource, io)
        : await explainSql(compiled, principal, options.sql ?? '', options, io);
      if (denied) throw new CommandExit(EXIT.failed);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function principalFrom(options: ExplainOptions): Principal {
  const user = options.user.trim();
  return deepFreeze({ subject: user, ...(user.includes('@') ? { email: user.toLowerCase() } : {}), groups: options.group });
}

/** Returns true when the request is denied. */
async function explainHttp(
  policy: CompiledPolicy,
  config: TollgateConfig,
  principal: Principal,
  request: string,
  resourceName: string | undefined,
  io: CliIo,
): Promise<boolean> {
  const match = /^([A-Za-z]+)\s+(\S+)$/.exec(request.trim());
  if (!match) throw new TollgateError('TG_ERR_USAGE', `--http "${request}": expected "METHOD URL", e.g. "GET /app/orders"`);
  const method = (match[1] ?? '').toUpperCase();
  const { hostname, target } = splitRequestUrl(match[2] ?? '/', config.server.public_url);
  // The same normalisation and routing as the HTTP gateway, so the path explained is the path
  // the gateway would decide on and the upstream would receive. Loaded here, as the other commands
  // have no use for the HTTP gateway and should not pay for loading it.
  const { normalizeRequestTarget, ResourceRouter } = await import('../../proxy/http/index.js');
  const normalized = normalizeRequestTarget(target);
  if (!normalized.ok) {
    io.stdout(`action: http ${method} ${target}\ndecision: the gateway refuses this request target with 400 (${normalized.problem})\n`);
    return true;
  }
  const router = new ResourceRouter(
    resourceName === undefined ? config.resources : config.resources.filter((r) => r.name === resourceName),
  );
  const routed = router.match(hostname, normalized.path);
  if (routed.kind !== 'resource') {
    const outcome = routed.kind === 'add-slash' ? `the gateway redirects to ${routed.location}` : 'no resource matches; the gateway answers 404';
    io.stdout(`action: http ${method} ${hostname}${normalized.path}\ndecision: ${outcome}\n`);
    return true;
  }
  const action: Action = { kind: 'http', resource: routed.route.resource.name, method, path: routed.upstreamPath };
  io.stdout(`action: http ${method} ${routed.upstreamPath} on resource ${routed.route.resource.name}\n`);
  return printExplanation(explain(policy, principal, action), io);
}

/** Host and raw request target (path and query, not normalised) of a path or absolute URL. */
function splitRequestUrl(text: string, publicUrl: string): { hostname: string; target: string } {
  const absolute = /^https?:\/\/([^/?#]+)(.*)$/i.exec(text);
  if (absolute === null) return { hostname: new URL(publicUrl).hostname, target: text };
  return { hostname: new URL(`http://${absolute[1] ?? ''}`).hostname, target: absolute[2] || '/' };
}

/** Returns true when any statement is denied. */
async function explainSql(
  policy: CompiledPolicy,
  principal: Principal,
  text: string,
  options: ExplainOptions,
  io: CliIo,
): Promise<boolean> {
  if (options.resource === undefined) throw new TollgateError('TG_ERR_USAGE', '--sql needs --resource NAME (a postgres resource)');
  const resource = policy.resources.find((r) => r.name === options.resource);
  if (resource === undefined || resource.kind !== 'postgres') {
    throw new TollgateError('TG_ERR_USAGE', `--resource ${options.resource}: no postgres resource of that name in the config`);
  }
  const login = options.login ?? grantedLogins(policy, principal, resource.name)[0] ?? resource.logins[0] ?? '';
  const { loadSqlClassifier } = await import('../../sql/index.js');
  const classifier = await loadSqlClassifier();
  const result = classifier.classify(text);
  if (!result.ok) {
    io.stdout(`decision: deny (the PostgreSQL parser rejects the text: ${result.error.message}); Tollgate never forwards SQL it cannot parse\n`);
    return true;
  }
  let denied = false;
  for (const [index, statement] of result.statements.entries()) {
    const action: Action = {
      kind: 'sql',
      resource: resource.name,
      login,
      statement: { class: statement.class, tables: statement.tables, functions: statement.functions, possibleFunctions: statement.possibleFunctions ?? [] },
    };
    io.stdout(
      `\nstatement ${index + 1}: ${statement.text}\n` +
        `  class: ${statement.class}; tables: ${statement.tables.join(', ') || '(none)'}; functions: ${statement.functions.join(', ') || '(none)'}\n` +
        `action: sql on resource ${resource.name} as login ${login}\n`,
    );
    denied = printExplanation(explain(policy, principal, action), io) || denied;
  }
  if (result.statements.length > 1 && denied) io.stdout('\nthe whole text is denied: one of its statements is\n');
  return denied;
}

/** Prints an explanation; returns true when it denies. */
function printExplanation(explanation: Explanation, io: CliIo): boolean {
  const { decision, roles, rules } = explanation;
  const held = roles.map((r) => `${r.role} (via ${r.via.map((v) => `${v.kind} ${v.name}`).join(', ')})`);
  io.stdout(`roles: ${held.join('; ') || '(none)'}\n`);
  io.stdout(`decision: ${decision.effect} by ${decision.rule ?? 'no rule (default deny)'} (${decision.reason})\n`);
  if (rules.length > 0) io.stdout('rules considered:\n');
  for (const rule of rules) {
    io.stdout(`  ${rule.matched ? 'matched    ' : 'not matched'} ${rule.rule}: ${rule.why.join('; ')}\n`);
  }
  return decision.effect === 'deny';
}
