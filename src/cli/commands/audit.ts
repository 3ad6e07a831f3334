import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, realpath, stat } from 'node:fs/promises';
import { availableParallelism, homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { Option } from 'commander';
import type { Command } from 'commander';
import {
  EXPORT_FORMATS,
  encodeBase64,
  exportLog,
  generateSignerKey,
  openAuditIndex,
  parseVerifierKey,
  proveInclusion,
  verifyLog,
  type AuditRecord,
  type ExportFormat,
  type LogVerified,
  type NoteVerifier,
  type QueryHit,
  type RecordFilter,
  type SessionSummary,
} from '../../audit/index.js';
import { isTollgateError, parseDuration, TollgateError } from '../../core/index.js';
import { CommandExit, EXIT, type CliIo } from '../io.js';

/**
 * `tollgate audit`: verify, prove, query, export, keygen (DESIGN.md §3). Exit codes: 0 success,
 * 1 the check failed (a tampered log, a record not yet provable), 2 usage error.
 */
export function registerAuditCommand(program: Command, io: CliIo): void {
  const audit = program.command('audit').description('Verify, prove, search and export the tamper-evident audit log');

  audit
    .command('verify')
    .description('Check a whole audit directory: framing, CRC, canonical records, seq, prev links, Merkle roots and checkpoint signatures')
    .requiredOption('--dir <dir>', 'the audit directory (audit.dir)')
    .option('--key <key>', "the log's verifier key (name+id+base64, or a file holding it, such as NAME.pub); repeatable", collect, [])
    .option('--checkpoint <file>', 'a signed checkpoint saved elsewhere: the log must still contain its tree (catches a cut-off tail)')
    .option('--log-id <id>', "the log's id (audit.log_id): every record and checkpoint must carry it (tells this log from another one signed with the same key)")
    .option('--workers <n>', 'threads for the record checks (default: one per CPU core; 0 checks in one thread)')
    .option('--json', 'print the result as one JSON object')
    .action(async (options: VerifyFlags) => {
      const verifiers = await readKeys(options.key, io);
      const external = options.checkpoint === undefined ? undefined : await readText(options.checkpoint, '--checkpoint', io);
      const result = await verifyLog({
        dir: pathOf(options.dir, io),
        verifiers,
        ...(external === undefined ? {} : { externalCheckpoint: external }),
        ...(options.logId === undefined ? {} : { logId: logIdOf(options.logId) }),
        workers: workersOf(options.workers),
      });
      if (options.json === true) {
        io.stdout(`${JSON.stringify(verifyJson(result))}\n`);
      } else if (result.ok) {
        printVerified(result, io);
      } else {
        io.stdout(`fail: seq ${result.seq}: ${result.reason}: ${result.message}\n`);
      }
      if (!result.ok) throw new CommandExit(EXIT.failed);
    });

  audit
    .command('prove')
    .description("Print an inclusion proof of one record against the latest signed checkpoint (C2SP tlog-proof, with the record's bytes)")
    .requiredOption('--dir <dir>', 'the audit directory (audit.dir)')
    .requiredOption('--seq <n>', 'the seq of the record to prove')
    .option('--key <key>', "check the checkpoint's signature with this verifier key (or a file holding it); repeatable", collect, [])
    .option('--checkpoint <file>', 'prove against this signed checkpoint instead of the latest one')
    .option('--log-id <id>', "the log's id (audit.log_id): the checkpoint and the record must be this log's")
    .action(async (options: ProveFlags) => {
      const verifiers = await readKeys(options.key, io);
      const checkpoint = options.checkpoint === undefined ? undefined : await readText(options.checkpoint, '--checkpoint', io);
      const proof = await proveInclusion({
        dir: pathOf(options.dir, io),
        seq: wholeNumber(options.seq, '--seq'),
        ...(verifiers.length === 0 ? {} : { verifiers }),
        ...(checkpoint === undefined ? {} : { checkpoint }),
        ...(options.logId === undefined ? {} : { logId: logIdOf(options.logId) }),
      });
      io.stdout(proof.text);
      io.stderr(`record ${proof.seq} (${proof.record.kind}) is in the tree of ${proof.checkpoint.size} records that ${proof.checkpoint.origin} signed\n`);
    });

  addFilterOptions(
    audit
      .command('query')
      .description('Search records (newest first) through the side index; prints a table, or JSON lines with --json')
      .requiredOption('--dir <dir>', 'the audit directory (audit.dir)'),
  )
    .option('--limit <n>', 'at most this many records (or sessions)', '50')
    .option('--cursor <cursor>', 'continue after the page that printed this cursor')
    .option('--sessions', 'list sessions (records grouped by session_id) instead of records')
    .option('--json', 'one JSON object per line instead of a table')
    .option('--index-dir <dir>', "a private directory (mode 0700) for this user's copy of the index (default: under $XDG_CACHE_HOME or ~/.cache/tollgate)")
    .action(async (options: QueryFlags) => {
      const filter = filterOf(options);
      const dir = pathOf(options.dir, io);
      // Index files in the audit directory are trusted only by holders of the signing key; this
      // command keeps its own, private to the user who runs it.
      const index = await openAuditIndex({ dir, indexDir: options.indexDir === undefined ? await privateIndexDir(dir, io) : pathOf(options.indexDir, io) });
      try {
        if (!index.persistent) io.stderr('note: the index directory cannot be written, so the index was built in memory; pass --index-dir to keep one\n');
        const limit = wholeNumber(options.limit, '--limit');
        const cursor = options.cursor === undefined ? {} : { cursor: options.cursor };
        let next: string | null;
        if (options.sessions === true) {
          if (filter.effect !== undefined || filter.kind !== undefined || filter.text !== undefined || filter.sessionId !== undefined) {
            throw new TollgateError('TG_ERR_USAGE', '--sessions combines with --user, --resource, --since and --until only');
          }
          const page = await index.sessions({ ...filter, limit, ...cursor });
          if (options.json === true) for (const session of page.sessions) io.stdout(`${JSON.stringify(session)}\n`);
          else printTable(sessionRows(page.sessions), io);
          if (page.sessions.length === 0) io.stderr('no sessions match\n');
          next = page.nextCursor;
        } else {
          const page = await index.query({ ...filter, limit, ...cursor });
          if (options.json === true) for (const hit of page.records) io.stdout(`${JSON.stringify(hit.record)}\n`);
          else printTable(recordRows(page.records), io);
          if (page.records.length === 0) io.stderr('no records match\n');
          next = page.nextCursor;
        }
        if (next !== null) io.stderr(`more: run again with --cursor ${next}\n`);
      } finally {
        await index.close();
      }
    });

  addFilterOptions(
    audit
      .command('export')
      .description('Stream records, oldest first, as JSON lines: the records themselves (jsonl) or OCSF 1.8.0 events (ocsf)')
      .requiredOption('--dir <dir>', 'the audit directory (audit.dir)'),
  )
    .addOption(new Option('--format <format>', 'jsonl: canonical records; ocsf: OCSF 1.8.0 events (API Activity 6003, Datastore Activity 6005, Authentication 3002)').choices(EXPORT_FORMATS).makeOptionMandatory())
    .action(async (options: ExportFlags) => {
      const filter = filterOf(options);
      const version = program.version();
      const lines = exportLog({ dir: pathOf(options.dir, io), format: options.format, ...(version === undefined ? {} : { productVersion: version }), ...filter });
      for await (const text of lines) {
        io.stdout(text);
        await io.drain?.();
      }
    });

  audit
    .command('keygen')
    .description('Write a new Ed25519 signing key pair for the audit log and print the verifier key (C2SP signed-note format)')
    .requiredOption('--name <name>', 'the key name, shown in every signature (for example the log id, gw.example.com/audit)')
    .requiredOption('--out <dir>', 'where to write NAME.key (the private key, mode 0600) and NAME.pub')
    .option('--force', 'replace existing key files')
    .action(async (options: KeygenFlags) => {
      let keys: { signerKey: string; verifierKey: string };
      try {
        keys = generateSignerKey(options.name);
      } catch (error) {
        if (isTollgateError(error, 'TG_ERR_AUDIT_KEY_INVALID')) throw new TollgateError('TG_ERR_USAGE', `--name "${options.name}": a key name is non-empty, without spaces, "+" or control characters`);
        throw error;
      }
      const dir = pathOf(options.out, io);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const stem = options.name.replace(/[^A-Za-z0-9._-]/g, '_');
      const privatePath = join(dir, `${stem}.key`);
      const publicPath = join(dir, `${stem}.pub`);
      await writeNew(privatePath, `${keys.signerKey}\n`, 0o600, options.force === true);
      await writeNew(publicPath, `${keys.verifierKey}\n`, 0o644, options.force === true);
      io.stdout(`${keys.verifierKey}\n`);
      io.stderr(
        `wrote ${privatePath} (the signing key, mode 0600: set audit.signing_key to \${file:${privatePath}}) and ${publicPath} ` +
          '(the verifier key: give it to reviewers for "tollgate audit verify --key")\n',
      );
    });
}

interface VerifyFlags {
  dir: string;
  key: string[];
  checkpoint?: string;
  logId?: string;
  workers?: string;
  json?: boolean;
}

interface ProveFlags {
  dir: string;
  seq: string;
  key: string[];
  checkpoint?: string;
  logId?: string;
}

interface FilterFlags {
  user?: string;
  resource?: string;
  effect?: 'allow' | 'deny';
  kind: string[];
  session?: string;
  since?: string;
  until?: string;
  text?: string;
}

interface QueryFlags extends FilterFlags {
  dir: string;
  limit: string;
  cursor?: string;
  sessions?: boolean;
  json?: boolean;
  indexDir?: string;
}

interface ExportFlags extends FilterFlags {
  dir: string;
  format: ExportFormat;
}

interface KeygenFlags {
  name: string;
  out: string;
  force?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function addFilterOptions(command: Command): Command {
  return command
    .option('--user <user>', "the principal's email (any case) or subject")
    .option('--resource <name>', 'a configured resource')
    .addOption(new Option('--effect <effect>', 'the decision').choices(['allow', 'deny']))
    .option('--kind <kind>', 'a record kind (http.request) or family (http, pg, auth); repeatable', collect, [])
    .option('--session <id>', "one session's records (the record's session_id)")
    .option('--since <time>', 'records at or after this time: RFC 3339 (2025-01-31T12:00:00Z) or a duration ago (15m, 2h, 7d)')
    .option('--until <time>', 'records before this time: RFC 3339 or a duration ago')
    .option('--text <text>', "text anywhere in the record's JSON, any case");
}

/** This user's index cache for one audit directory, named by a hash of its real path. */
async function privateIndexDir(dir: string, io: CliIo): Promise<string> {
  const cache = io.env['XDG_CACHE_HOME'] || join(io.env['HOME'] || homedir(), '.cache');
  const real = await realpath(dir).catch(() => dir);
  return join(cache, 'tollgate', 'audit-index', createHash('sha256').update(real).digest('hex').slice(0, 32));
}

function pathOf(path: string, io: CliIo): string {
  return isAbsolute(path) ? path : resolve(io.cwd, path);
}

function wholeNumber(text: string, flag: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) throw new TollgateError('TG_ERR_USAGE', `${flag} must be a whole number, not "${text}"`);
  return Number(text);
}

function logIdOf(text: string): string {
  if (text === '') throw new TollgateError('TG_ERR_USAGE', '--log-id must not be empty: pass the audit.log_id of the gateway');
  return text;
}

function workersOf(text: string | undefined): number {
  if (text !== undefined) return wholeNumber(text, '--workers');
  const cores = availableParallelism();
  return cores > 1 ? Math.min(cores, 4) : 0;
}

/** RFC 3339 date-times (with a zone) and dates; or a duration, meaning that long before now. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2}))?$/;

function timeOf(text: string, flag: string): number {
  const ago = parseDuration(text);
  if (ago !== null) return Date.now() - ago;
  const ms = RFC3339.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw new TollgateError('TG_ERR_USAGE', `${flag} "${text}" is neither an RFC 3339 time (2025-01-31T12:00:00Z) nor a duration ago (15m, 2h, 7d)`);
  return ms;
}

function filterOf(flags: FilterFlags): RecordFilter {
  return {
    ...(flags.user === undefined ? {} : { user: flags.user }),
    ...(flags.resource === undefined ? {} : { resource: flags.resource }),
    ...(flags.effect === undefined ? {} : { effect: flags.effect }),
    ...(flags.kind.length === 0 ? {} : { kind: flags.kind }),
    ...(flags.session === undefined ? {} : { sessionId: flags.session }),
    ...(flags.since === undefined ? {} : { since: timeOf(flags.since, '--since') }),
    ...(flags.until === undefined ? {} : { until: timeOf(flags.until, '--until') }),
    ...(flags.text === undefined ? {} : { text: flags.text }),
  };
}

async function readText(path: string, flag: string, io: CliIo): Promise<string> {
  try {
    return await readFile(pathOf(path, io), 'utf8');
  } catch (error) {
    throw new TollgateError('TG_ERR_USAGE', `${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

/** Each --key: a file that holds a verifier key (NAME.pub), or the key itself. */
async function readKeys(values: readonly string[], io: CliIo): Promise<NoteVerifier[]> {
  const keys = new Map<string, NoteVerifier>();
  for (const value of values) {
    const isFile = await stat(pathOf(value, io)).then((s) => s.isFile(), () => false);
    const text = isFile ? (await readText(value, '--key', io)).trim() : value;
    try {
      keys.set(text, parseVerifierKey(text));
    } catch (error) {
      if (isTollgateError(error, 'TG_ERR_AUDIT_KEY_INVALID')) throw new TollgateError('TG_ERR_USAGE', `--key ${value}: ${error.message}`);
      throw error;
    }
  }
  return [...keys.values()];
}

async function writeNew(path: string, text: string, mode: number, force: boolean): Promise<void> {
  const flags = constants.O_WRONLY | constants.O_CREAT | (force ? constants.O_TRUNC : constants.O_EXCL);
  let handle;
  try {
    handle = await open(path, flags, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new TollgateError('TG_ERR_USAGE', `${path} exists; keep it, or pass --force to replace it (a replaced key cannot verify older checkpoints)`);
    throw error;
  }
  try {
    await handle.chmod(mode);
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function printVerified(result: LogVerified, io: CliIo): void {
  const root = encodeBase64(result.root);
  let signed: string;
  if (result.checkpoint === null) signed = 'no signed checkpoint yet';
  else if (!result.signaturesChecked) signed = `checkpoint of ${result.checkpoint.size} records not authenticated (no --key)`;
  else signed = `checkpoint signed by ${result.signer ?? 'nobody'}`;
  const log = result.logId === null ? '' : ` of log ${result.logId}`;
  io.stdout(`ok: ${result.size} records${log}, root ${root}, ${signed}\n`);
  if (result.external !== null) io.stdout(`ok: the log contains the tree of the external checkpoint (${result.external.size} records)\n`);
  if (result.checkpoint !== null && result.size > result.checkpoint.size) {
    io.stderr(`note: the last ${result.size - result.checkpoint.size} records are after the latest checkpoint (size ${result.checkpoint.size}): no signature covers them yet\n`);
  }
  if (!result.signaturesChecked && result.checkpoint !== null) io.stderr("note: pass --key with the log's verifier key to check who signed the checkpoints\n");
  if (result.tornTail !== null) {
    const t = result.tornTail;
    io.stderr(`note: ${t.segment} ends with ${t.bytes} bytes of an unfinished write (${t.reason}) at byte ${t.offset}, after every checkpoint; the store cuts them when it next opens\n`);
  }
  if (result.historyTornAt !== null) io.stderr(`note: the checkpoint history ends with an incomplete entry (byte ${result.historyTornAt}); the store cuts it when it next opens\n`);
}

function verifyJson(result: Awaited<ReturnType<typeof verifyLog>>): Record<string, unknown> {
  if (!result.ok) return { ...result };
  return {
    ok: true,
    size: result.size,
    root: encodeBase64(result.root),
    log_id: result.logId,
    signer: result.signer,
    checkpoint: result.checkpoint === null ? null : { size: result.checkpoint.size, root: encodeBase64(result.checkpoint.rootHash), signers: result.checkpoint.signers },
    checkpoints_checked: result.checkpointsChecked,
    signatures_checked: result.signaturesChecked,
    external: result.external === null ? null : { size: result.external.size, root: encodeBase64(result.external.rootHash) },
    torn_tail: result.tornTail,
  };
}

// ---- tables ------------------------------------------------------------------------------

const MAX_CELL = 48;
const MAX_DETAIL = 100;

function clean(text: string, max: number): string {
  const flat = text.replace(/[\s\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function printTable(rows: readonly (readonly string[])[], io: CliIo): void {
  if (rows.length <= 1) return;
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  for (const row of rows) io.stdout(`${row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')}\n`);
}

function recordRows(hits: readonly QueryHit[]): string[][] {
  const rows = [['SEQ', 'TIME', 'KIND', 'USER', 'RESOURCE', 'DECISION', 'DETAIL']];
  for (const { seq, record } of hits) {
    const user = record.principal?.email ?? record.principal?.subject ?? '-';
    const decision = record.decision === undefined ? '-' : `${record.decision.effect} ${record.decision.rule ?? record.decision.reason}`;
    rows.push([String(seq), record.time, record.kind, clean(user, MAX_CELL), clean(record.resource ?? '-', MAX_CELL), clean(decision, MAX_CELL), clean(detailOf(record), MAX_DETAIL)]);
  }
  return rows;
}

function field(record: AuditRecord, name: string): string | undefined {
  const value = record.data[name];
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The few data fields that say what a record is about, by kind. */
function detailOf(record: AuditRecord): string {
  const parts = (...names: string[]) => names.map((name) => field(record, name)).filter((v): v is string => v !== undefined);
  const ref = record.ref === undefined ? [] : [`(ref ${record.ref})`];
  switch (record.kind) {
    case 'http.request':
    case 'ws.open':
      return parts('method', 'path').join(' ');
    case 'http.response':
      return [...parts('status').map((s) => `status ${s}`), ...parts('duration_ms').map((d) => `${d} ms`), ...parts('upstream_error'), ...ref].join(' ');
    case 'ws.close':
      return [...parts('code').map((c) => `code ${c}`), ...parts('closed_by').map((b) => `closed by ${b}`), ...ref].join(' ');
    case 'pg.query':
      return parts('sql', 'text', 'statement')[0] ?? parts('class').join(' ');
    case 'pg.result':
      return [...parts('command_tag', 'tag', 'sqlstate', 'rows'), ...ref].join(' ');
    case 'auth.failure':
    case 'auth.logout':
      return parts('method', 'reason').join(' ');
    default: {
      const text = JSON.stringify(record.data);
      return text === '{}' ? '' : text;
    }
  }
}

function sessionRows(sessions: readonly SessionSummary[]): string[][] {
  const rows = [['SESSION', 'USER', 'RESOURCES', 'FIRST', 'LAST', 'RECORDS', 'REQUESTS', 'STATEMENTS', 'DENIALS']];
  for (const s of sessions) {
    rows.push([
      clean(s.sessionId, MAX_CELL),
      clean(s.principal?.email ?? s.principal?.subject ?? '-', MAX_CELL),
      clean(s.resources.join(',') || '-', MAX_CELL),
      s.firstTime,
      s.lastTime,
      String(s.records),
      String(s.requests),
      String(s.statements),
      String(s.denials),
    ]);
  }
  return rows;
}
