import type { StatementClass } from './types.js';
import { flag, isNode, list, strongerClass, text, unwrap } from './tree.js';
import type { PgNode } from './tree.js';

/**
 * The class and command tag of each kind of statement, by parse-node type.
 *
 * A rule looks only at its own node; what the statement contains (writes in CTEs, locking
 * clauses in subqueries, functions with side effects, EXECUTE of a prepared statement) is found
 * by the tree walk and can only raise the class. A node type missing from the table is `admin`:
 * a statement we do not recognise gets the most powerful class, never a guess.
 */
interface StatementRule {
  readonly command: string | ((node: PgNode) => string);
  readonly class: StatementClass | ((node: PgNode) => StatementClass);
}

/**
 * Session parameters that ordinary clients and drivers set, and that change only how results are
 * formatted, how long the session waits, or the isolation and read-only mode of its transactions
 * (read-only enforcement belongs to the login's own privileges). Anything else (`search_path`, `role`,
 * `session_authorization`, custom `app.*` settings that row-level security may read, planner and
 * resource settings) is `admin`, and so are the two settings that change how the server reads
 * the text the gateway classified: `standard_conforming_strings` (off, backslashes in string
 * constants are escapes) and `client_encoding` (in SJIS, BIG5 or GBK a backslash or quote can be
 * the second byte of a character). The gateway reads SQL as UTF-8 with standard strings, the
 * login's own settings. Names compare lower-cased, as PostgreSQL looks them up.
 */
const HARMLESS_SETTINGS: ReadonlySet<string> = new Set([
  'application_name',
  'bytea_output',
  'client_min_messages',
  'datestyle',
  'default_transaction_deferrable',
  'default_transaction_isolation',
  'default_transaction_read_only',
  'extra_float_digits',
  'idle_in_transaction_session_timeout',
  'idle_session_timeout',
  'intervalstyle',
  'lc_monetary',
  'lc_numeric',
  'lc_time',
  'lock_timeout',
  'statement_timeout',
  'timezone',
  'transaction_deferrable',
  'transaction_isolation',
  'transaction_read_only',
  'transaction_timeout',
  'xmlbinary',
  'xmloption',
]);

/** Whether setting `name` (any case) is one of the harmless session settings above. */
export function isHarmlessSetting(name: string): boolean {
  return HARMLESS_SETTINGS.has(name.toLowerCase());
}

/**
 * Objects that belong to the cluster or extend the server rather than a schema: statements on
 * them (`DROP EXTENSION`, `ALTER DATABASE ... OWNER`, `GRANT ... ON DATABASE`, `COMMENT ON ROLE`)
 * are `admin` where the same statement on a table is `ddl`.
 */
const ADMIN_OBJECT_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_ACCESS_METHOD',
  'OBJECT_DATABASE',
  'OBJECT_EVENT_TRIGGER',
  'OBJECT_EXTENSION',
  'OBJECT_FDW',
  'OBJECT_FOREIGN_SERVER',
  'OBJECT_LANGUAGE',
  'OBJECT_PARAMETER_ACL',
  'OBJECT_PUBLICATION',
  'OBJECT_PUBLICATION_NAMESPACE',
  'OBJECT_PUBLICATION_REL',
  'OBJECT_ROLE',
  'OBJECT_SUBSCRIPTION',
  'OBJECT_TABLESPACE',
  'OBJECT_USER_MAPPING',
]);

/** Object types whose names in `DROP` and `COMMENT ON` are relations, reported as tables. */
export const RELATION_OBJECT_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_MATVIEW',
  'OBJECT_SEQUENCE',
  'OBJECT_TABLE',
  'OBJECT_VIEW',
]);

const OBJECT_WORDS: Readonly<Record<string, string>> = {
  OBJECT_FDW: 'FOREIGN DATA WRAPPER',
  OBJECT_FOREIGN_SERVER: 'SERVER',
  OBJECT_MATVIEW: 'MATERIALIZED VIEW',
  OBJECT_LARGEOBJECT: 'LARGE OBJECT',
  OBJECT_OPCLASS: 'OPERATOR CLASS',
  OBJECT_OPFAMILY: 'OPERATOR FAMILY',
  OBJECT_STATISTIC_EXT: 'STATISTICS',
  OBJECT_TABCONSTRAINT: 'TABLE',
  OBJECT_DOMCONSTRAINT: 'DOMAIN',
  OBJECT_PARAMETER_ACL: 'PARAMETER',
  OBJECT_DEFACL: 'DEFAULT PRIVILEGES',
  OBJECT_TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
  OBJECT_TSDICTIONARY: 'TEXT SEARCH DICTIONARY',
  OBJECT_TSPARSER: 'TEXT SEARCH PARSER',
  OBJECT_TSTEMPLATE: 'TEXT SEARCH TEMPLATE',
};

/** `OBJECT_MATVIEW` → `MATERIALIZED VIEW`, `OBJECT_TABLE` → `TABLE`, as in command tags. */
function objectWords(objectType: string | undefined): string {
  if (objectType === undefined) return 'OBJECT';
  return OBJECT_WORDS[objectType] ?? objectType.replace(/^OBJECT_/, '').replaceAll('_', ' ');
}

/** `ddl`, or `admin` when the statement's object type (in `key`) is a cluster-level one. */
function byObjectType(key: string): (node: PgNode) => StatementClass {
  return (node) => {
    const objectType = text(node, key);
    return objectType === undefined || ADMIN_OBJECT_TYPES.has(objectType) ? 'admin' : 'ddl';
  };
}

/** The class the rule of a wrapped inner statement gives (the query of EXPLAIN, COPY, PREPARE). */
function innerClass(value: unknown): StatementClass {
  const inner = unwrap(value);
  return inner === null ? 'admin' : classOfNode(inner[0], inner[1]);
}

/**
 * Whether EXPLAIN runs its statement: an `analyze` option that is not clearly false, read the way
 * PostgreSQL's defGetBoolean reads it (no value, `true`/`on`/`1`; `false`/`off`/`0`). Any other
 * value makes PostgreSQL reject the statement, so counting it as ANALYZE only errs on the safe side.
 */
export function explainRuns(node: PgNode): boolean {
  return list(node, 'options').some((option) => {
    const element = unwrap(option);
    if (element === null || element[0] !== 'DefElem' || text(element[1], 'defname') !== 'analyze') return false;
    const arg = unwrap(element[1]['arg']);
    if (arg === null) return true;
    if (arg[0] === 'Integer') return arg[1]['ival'] !== undefined;
    const word = text(arg[1], 'sval')?.toLowerCase();
    return word !== 'false' && word !== 'off';
  });
}

function variableSetClass(node: PgNode): StatementClass {
  const kind = text(node, 'kind');
  const name = (text(node, 'name') ?? '').toLowerCase();
  switch (kind) {
    // RESET ALL restores the login's own defaults and never touches role or
    // session_authorization (both are GUC_NO_RESET_ALL).
    case 'VAR_RESET_ALL':
      return 'read';
    // SET TRANSACTION ..., SET SESSION CHARACTERISTICS AS TRANSACTION ..., SET TRANSACTION SNAPSHOT
    case 'VAR_SET_MULTI':
      return name === 'transaction' || name === 'session characteristics' || name === 'transaction snapshot'
        ? 'read'
        : 'admin';
    case 'VAR_SET_VALUE':
    case 'VAR_SET_DEFAULT':
    case 'VAR_SET_CURRENT':
    case 'VAR_RESET':
      return HARMLESS_SETTINGS.has(name) ? 'read' : 'admin';
    default:
      return 'admin';
  }
}

const TRANSACTION_COMMANDS: Readonly<Record<string, string>> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE',
  TRANS_STMT_ROLLBACK_TO: 'ROLLBACK',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

function transactionClass(node: PgNode): StatementClass {
  const kind = text(node, 'kind');
  if (kind === undefined || !(kind in TRANSACTION_COMMANDS)) return 'admin';
  // Two-phase commit hands a transaction to the server beyond this session.
  return kind === 'TRANS_STMT_PREPARE' || kind.endsWith('_PREPARED') ? 'admin' : 'read';
}

function copyClass(node: PgNode): StatementClass {
  // A file name (or PROGRAM) means the server's own filesystem or a shell on the server. The
  // parse tree leaves out empty strings, so `COPY t FROM ''` looks like FROM STDIN here; the
  // server cannot open an empty path, so nothing is read or written that way.
  if (text(node, 'filename') !== undefined || flag(node, 'is_program')) return 'admin';
  if (flag(node, 'is_from')) return 'write';
  return node['query'] === undefined ? 'read' : strongerClass('read', innerClass(node['query']));
}

function reindexClass(node: PgNode): StatementClass {
  const kind = text(node, 'kind');
  return kind === 'REINDEX_OBJECT_INDEX' || kind === 'REINDEX_OBJECT_TABLE' || kind === 'REINDEX_OBJECT_SCHEMA'
    ? 'ddl'
    : 'admin';
}

function renameCommand(node: PgNode): string {
  const renameType = text(node, 'renameType');
  switch (renameType) {
    case 'OBJECT_COLUMN':
    case 'OBJECT_TABCONSTRAINT':
      return `ALTER ${objectWords(text(node, 'relationType'))}`;
    case 'OBJECT_ATTRIBUTE':
      return 'ALTER TYPE';
    default:
      return `ALTER ${objectWords(renameType)}`;
  }
}

const same = (command: string, statementClass: StatementClass): StatementRule => ({ command, class: statementClass });
const ddl = (command: string): StatementRule => same(command, 'ddl');
const admin = (command: string): StatementRule => same(command, 'admin');
const read = (command: string): StatementRule => same(command, 'read');

const RULES: Readonly<Record<string, StatementRule>> = {
  // Queries and data changes. SELECT INTO is a write, as the statement classes are specified,
  // although it creates its table just as CREATE TABLE AS (ddl) does.
  SelectStmt: {
    command: (node) => (node['intoClause'] === undefined ? 'SELECT' : 'SELECT INTO'),
    class: (node) => (node['intoClause'] !== undefined || list(node, 'lockingClause').length > 0 ? 'write' : 'read'),
  },
  InsertStmt: same('INSERT', 'write'),
  UpdateStmt: same('UPDATE', 'write'),
  DeleteStmt: same('DELETE', 'write'),
  MergeStmt: same('MERGE', 'write'),
  CopyStmt: { command: 'COPY', class: copyClass },
  ExplainStmt: { command: 'EXPLAIN', class: (node) => (explainRuns(node) ? innerClass(node['query']) : 'read') },
  DeclareCursorStmt: { command: 'DECLARE CURSOR', class: (node) => innerClass(node['query']) },
  FetchStmt: { command: (node) => (flag(node, 'ismove') ? 'MOVE' : 'FETCH'), class: 'read' },
  ClosePortalStmt: { command: (node) => (node['portalname'] === undefined ? 'CLOSE CURSOR ALL' : 'CLOSE CURSOR'), class: 'read' },
  PrepareStmt: { command: 'PREPARE', class: (node) => innerClass(node['query']) },
  // The prepared statement's own facts are added once known; see the classifier.
  ExecuteStmt: read('EXECUTE'),
  DeallocateStmt: { command: (node) => (flag(node, 'isall') ? 'DEALLOCATE ALL' : 'DEALLOCATE'), class: 'read' },
  LockStmt: same('LOCK TABLE', 'write'),
  NotifyStmt: same('NOTIFY', 'write'),
  ListenStmt: read('LISTEN'),
  UnlistenStmt: read('UNLISTEN'),

  // Session and transaction.
  VariableShowStmt: read('SHOW'),
  VariableSetStmt: {
    command: (node) => ((text(node, 'kind') ?? '').startsWith('VAR_RESET') ? 'RESET' : 'SET'),
    class: variableSetClass,
  },
  TransactionStmt: { command: (node) => TRANSACTION_COMMANDS[text(node, 'kind') ?? ''] ?? 'TRANSACTION', class: transactionClass },
  ConstraintsSetStmt: read('SET CONSTRAINTS'),
  DiscardStmt: {
    command: (node) => `DISCARD ${(text(node, 'target') ?? 'DISCARD_ALL').replace(/^DISCARD_/, '')}`,
    class: 'read',
  },

  // Definitions in a schema.
  CreateStmt: ddl('CREATE TABLE'),
  CreateTableAsStmt: {
    command: (node) => (text(node, 'objtype') === 'OBJECT_MATVIEW' ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS'),
    class: 'ddl',
  },
  CreateForeignTableStmt: ddl('CREATE FOREIGN TABLE'),
  ViewStmt: ddl('CREATE VIEW'),
  IndexStmt: ddl('CREATE INDEX'),
  CreateSchemaStmt: ddl('CREATE SCHEMA'),
  CreateSeqStmt: ddl('CREATE SEQUENCE'),
  AlterSeqStmt: ddl('ALTER SEQUENCE'),
  CreateFunctionStmt: { command: (node) => (flag(node, 'is_procedure') ? 'CREATE PROCEDURE' : 'CREATE FUNCTION'), class: 'ddl' },
  AlterFunctionStmt: { command: (node) => `ALTER ${objectWords(text(node, 'objtype'))}`, class: 'ddl' },
  CreateTrigStmt: ddl('CREATE TRIGGER'),
  RuleStmt: ddl('CREATE RULE'),
  CreatePolicyStmt: ddl('CREATE POLICY'),
  AlterPolicyStmt: ddl('ALTER POLICY'),
  CreateDomainStmt: ddl('CREATE DOMAIN'),
  AlterDomainStmt: ddl('ALTER DOMAIN'),
  CompositeTypeStmt: ddl('CREATE TYPE'),
  CreateEnumStmt: ddl('CREATE TYPE'),
  CreateRangeStmt: ddl('CREATE TYPE'),
  AlterEnumStmt: ddl('ALTER TYPE'),
  AlterTypeStmt: ddl('ALTER TYPE'),
  DefineStmt: { command: (node) => `CREATE ${objectWords(text(node, 'kind'))}`, class: 'ddl' },
  CreateConversionStmt: ddl('CREATE CONVERSION'),
  CreateCastStmt: ddl('CREATE CAST'),
  CreateTransformStmt: ddl('CREATE TRANSFORM'),
  CreateOpClassStmt: ddl('CREATE OPERATOR CLASS'),
  CreateOpFamilyStmt: ddl('CREATE OPERATOR FAMILY'),
  AlterOpFamilyStmt: ddl('ALTER OPERATOR FAMILY'),
  AlterOperatorStmt: ddl('ALTER OPERATOR'),
  AlterCollationStmt: ddl('ALTER COLLATION'),
  CreateStatsStmt: ddl('CREATE STATISTICS'),
  AlterStatsStmt: ddl('ALTER STATISTICS'),
  AlterTSDictionaryStmt: ddl('ALTER TEXT SEARCH DICTIONARY'),
  AlterTSConfigurationStmt: ddl('ALTER TEXT SEARCH CONFIGURATION'),
  AlterTableStmt: { command: (node) => `ALTER ${objectWords(text(node, 'objtype'))}`, class: 'ddl' },
  AlterDefaultPrivilegesStmt: ddl('ALTER DEFAULT PRIVILEGES'),
  TruncateStmt: ddl('TRUNCATE TABLE'),
  CommentStmt: { command: 'COMMENT', class: byObjectType('objtype') },
  GrantStmt: { command: (node) => (flag(node, 'is_grant') ? 'GRANT' : 'REVOKE'), class: byObjectType('objtype') },
  DropStmt: { command: (node) => `DROP ${objectWords(text(node, 'removeType'))}`, class: byObjectType('removeType') },
  RenameStmt: { command: renameCommand, class: byObjectType('renameType') },
  AlterOwnerStmt: { command: (node) => `ALTER ${objectWords(text(node, 'objectType'))}`, class: byObjectType('objectType') },
  AlterObjectSchemaStmt: {
    command: (node) => `ALTER ${objectWords(text(node, 'objectType'))}`,
    class: byObjectType('objectType'),
  },
  AlterObjectDependsStmt: {
    command: (node) => `ALTER ${objectWords(text(node, 'objectType'))}`,
    class: byObjectType('objectType'),
  },

  // Maintenance: ddl when it names its tables (it needs the owner's or MAINTAIN rights on them,
  // and the tables are reported, so table rules apply); admin when it covers the whole database.
  VacuumStmt: {
    command: (node) => (flag(node, 'is_vacuumcmd') ? 'VACUUM' : 'ANALYZE'),
    class: (node) => (list(node, 'rels').length > 0 ? 'ddl' : 'admin'),
  },
  ClusterStmt: { command: 'CLUSTER', class: (node) => (node['relation'] === undefined ? 'admin' : 'ddl') },
  ReindexStmt: { command: 'REINDEX', class: reindexClass },
  RefreshMatViewStmt: ddl('REFRESH MATERIALIZED VIEW'),

  // The session's identity, the server, the cluster, and code run on the server.
  GrantRoleStmt: { command: (node) => (flag(node, 'is_grant') ? 'GRANT' : 'REVOKE'), class: 'admin' },
  CreateRoleStmt: admin('CREATE ROLE'),
  AlterRoleStmt: admin('ALTER ROLE'),
  AlterRoleSetStmt: admin('ALTER ROLE'),
  DropRoleStmt: admin('DROP ROLE'),
  ReassignOwnedStmt: admin('REASSIGN OWNED'),
  DropOwnedStmt: admin('DROP OWNED'),
  CreatedbStmt: admin('CREATE DATABASE'),
  AlterDatabaseStmt: admin('ALTER DATABASE'),
  AlterDatabaseSetStmt: admin('ALTER DATABASE'),
  AlterDatabaseRefreshCollStmt: admin('ALTER DATABASE'),
  DropdbStmt: admin('DROP DATABASE'),
  CreateTableSpaceStmt: admin('CREATE TABLESPACE'),
  AlterTableSpaceOptionsStmt: admin('ALTER TABLESPACE'),
  DropTableSpaceStmt: admin('DROP TABLESPACE'),
  AlterTableMoveAllStmt: { command: (node) => `ALTER ${objectWords(text(node, 'objtype'))}`, class: 'admin' },
  CreateExtensionStmt: admin('CREATE EXTENSION'),
  AlterExtensionStmt: admin('ALTER EXTENSION'),
  AlterExtensionContentsStmt: admin('ALTER EXTENSION'),
  CreatePublicationStmt: admin('CREATE PUBLICATION'),
  AlterPublicationStmt: admin('ALTER PUBLICATION'),
  CreateSubscriptionStmt: admin('CREATE SUBSCRIPTION'),
  AlterSubscriptionStmt: admin('ALTER SUBSCRIPTION'),
  DropSubscriptionStmt: admin('DROP SUBSCRIPTION'),
  CreateFdwStmt: admin('CREATE FOREIGN DATA WRAPPER'),
  AlterFdwStmt: admin('ALTER FOREIGN DATA WRAPPER'),
  CreateForeignServerStmt: admin('CREATE SERVER'),
  AlterForeignServerStmt: admin('ALTER SERVER'),
  CreateUserMappingStmt: admin('CREATE USER MAPPING'),
  AlterUserMappingStmt: admin('ALTER USER MAPPING'),
  DropUserMappingStmt: admin('DROP USER MAPPING'),
  ImportForeignSchemaStmt: admin('IMPORT FOREIGN SCHEMA'),
  CreateEventTrigStmt: admin('CREATE EVENT TRIGGER'),
  AlterEventTrigStmt: admin('ALTER EVENT TRIGGER'),
  CreatePLangStmt: admin('CREATE LANGUAGE'),
  CreateAmStmt: admin('CREATE ACCESS METHOD'),
  SecLabelStmt: admin('SECURITY LABEL'),
  AlterSystemStmt: admin('ALTER SYSTEM'),
  CheckPointStmt: admin('CHECKPOINT'),
  LoadStmt: admin('LOAD'),
  DoStmt: admin('DO'),
  CallStmt: admin('CALL'),
};

/** The rule for a node type; an unknown type is `admin` and its command tag is the type name. */
function ruleFor(type: string): StatementRule {
  return Object.hasOwn(RULES, type) ? (RULES[type] as StatementRule) : admin(type);
}

/** The class a statement node's own rule gives. */
export function classOfNode(type: string, node: PgNode): StatementClass {
  const rule = ruleFor(type);
  return typeof rule.class === 'string' ? rule.class : rule.class(node);
}

/** PostgreSQL's command tag for a statement node. */
export function commandOfNode(type: string, node: PgNode): string {
  const rule = ruleFor(type);
  return typeof rule.command === 'string' ? rule.command : rule.command(node);
}

/**
 * Functions whose side effects syntax can name. A call raises the statement's class to at least
 * this, wherever the call appears (schema-qualified or not: a look-alike in another schema is
 * over-classified, never under-). Families that share a prefix are in {@link FUNCTION_PREFIXES}.
 */
const FUNCTION_CLASSES: ReadonlyMap<string, StatementClass> = new Map<string, StatementClass>([
  // Sequence and large-object mutation, and NOTIFY by another name.
  ['nextval', 'write'],
  ['setval', 'write'],
  ['pg_notify', 'write'],
  ['lo_creat', 'write'],
  ['lo_create', 'write'],
  ['lo_from_bytea', 'write'],
  ['lo_put', 'write'],
  ['lo_truncate', 'write'],
  ['lo_truncate64', 'write'],
  ['lo_unlink', 'write'],
  ['lowrite', 'write'],
  // The server's filesystem.
  ['lo_export', 'admin'],
  ['lo_import', 'admin'],
  ['pg_file_write', 'admin'],
  ['pg_read_binary_file', 'admin'],
  ['pg_read_file', 'admin'],
  ['pg_stat_file', 'admin'],
  // Functions that run a SQL text, or read a table, schema or database named by a string: what
  // they read is invisible to table rules. https://www.postgresql.org/docs/current/functions-xml.html
  // (query_to_xml and relatives), https://www.postgresql.org/docs/current/textsearch-features.html
  // (ts_stat, and ts_rewrite's form that takes a query text).
  ['ts_rewrite', 'admin'],
  ['ts_stat', 'admin'],
  // Other sessions, the server process, and cluster-wide statistics.
  ['pg_cancel_backend', 'admin'],
  ['pg_terminate_backend', 'admin'],
  ['pg_log_backend_memory_contexts', 'admin'],
  ['pg_reload_conf', 'admin'],
  ['pg_rotate_logfile', 'admin'],
  ['pg_backup_start', 'admin'],
  ['pg_backup_stop', 'admin'],
  ['pg_create_restore_point', 'admin'],
  ['pg_promote', 'admin'],
  ['pg_switch_wal', 'admin'],
  ['pg_log_standby_snapshot', 'admin'],
  ['pg_import_system_collations', 'admin'],
  ['pg_stat_statements_reset', 'admin'],
  // Planner statistics of a table named by a string (PostgreSQL 18), invisible to table rules.
  ['pg_clear_attribute_stats', 'admin'],
  ['pg_clear_relation_stats', 'admin'],
  ['pg_restore_attribute_stats', 'admin'],
  ['pg_restore_relation_stats', 'admin'],
  // Replication: slots hold back WAL for the whole cluster, decoding a slot reads every change
  // to every table, and an emitted message goes to every logical replica.
  ['pg_create_logical_replication_slot', 'admin'],
  ['pg_create_physical_replication_slot', 'admin'],
  ['pg_drop_replication_slot', 'admin'],
  ['pg_replication_slot_advance', 'admin'],
  ['pg_sync_replication_slots', 'admin'],
  ['pg_logical_emit_message', 'admin'],
]);

/**
 * Function families by name prefix, checked when the name is not in {@link FUNCTION_CLASSES}.
 * Advisory locks are `write`, like `LOCK` and `SELECT ... FOR UPDATE`: they coordinate
 * application sessions and can make others wait, but reach no data and no privilege.
 */
const FUNCTION_PREFIXES: readonly (readonly [string, StatementClass])[] = [
  ['dblink', 'admin'],
  ['query_to_xml', 'admin'],
  ['cursor_to_xml', 'admin'],
  ['table_to_xml', 'admin'],
  ['schema_to_xml', 'admin'],
  ['database_to_xml', 'admin'],
  ['pg_ls_', 'admin'],
  ['pg_stat_reset', 'admin'],
  ['pg_logical_slot_', 'admin'],
  ['pg_copy_', 'admin'],
  ['pg_replication_origin_', 'admin'],
  ['pg_wal_replay_', 'admin'],
  ['binary_upgrade_', 'admin'],
  ['pg_advisory_', 'write'],
  ['pg_try_advisory_', 'write'],
];

/**
 * Functions whose class depends on the value of a constant argument (see {@link classOfCall}): a
 * statement that calls one is never classified from another text with other constants.
 */
export const LITERAL_READING_FUNCTIONS: ReadonlySet<string> = new Set(['set_config']);

/**
 * The least class a call of function `name` (unqualified part) with arguments `args` implies.
 * `set_config` is SET by another name: harmless for a literal harmless setting, else `admin`.
 */
export function classOfCall(name: string, args: readonly unknown[]): StatementClass {
  if (name === 'set_config') {
    const setting = constantString(args[0]);
    return setting !== undefined && HARMLESS_SETTINGS.has(setting.toLowerCase()) ? 'read' : 'admin';
  }
  const known = FUNCTION_CLASSES.get(name);
  if (known !== undefined) return known;
  for (const [prefix, statementClass] of FUNCTION_PREFIXES) {
    if (name.startsWith(prefix)) return statementClass;
  }
  return 'read';
}

/**
 * The `pg_catalog` relations that take INSERT/UPDATE/DELETE, so a bare name among them is the
 * catalog relation (the schema comes first in every search path) and a write to it changes the
 * server. Established by querying `pg_class` of PostgreSQL 15 and 18 (the same names in both) for
 * the `pg_catalog` views that are automatically updatable (`pg_relation_is_updatable`) or carry
 * a non-SELECT rule or a trigger, and for its tables, which a superuser may write directly; 13
 * and 14 have a subset of these tables, and 16 and 17 add none. The views: an `UPDATE` of
 * `pg_settings` is `set_config` by another name (its rule calls it), so it could turn off
 * `standard_conforming_strings`, change `client_encoding` or move `search_path` under the
 * gateway; `pg_group` and `pg_stat_database_conflicts` write through to `pg_authid` and
 * `pg_database`. https://www.postgresql.org/docs/current/view-pg-settings.html
 */
const WRITABLE_CATALOG_RELATIONS: ReadonlySet<string> = new Set([
  'pg_settings',
  'pg_group',
  'pg_stat_database_conflicts',
  'pg_aggregate',
  'pg_am',
  'pg_amop',
  'pg_amproc',
  'pg_attrdef',
  'pg_attribute',
  'pg_auth_members',
  'pg_authid',
  'pg_cast',
  'pg_class',
  'pg_collation',
  'pg_constraint',
  'pg_conversion',
  'pg_database',
  'pg_db_role_setting',
  'pg_default_acl',
  'pg_depend',
  'pg_description',
  'pg_enum',
  'pg_event_trigger',
  'pg_extension',
  'pg_foreign_data_wrapper',
  'pg_foreign_server',
  'pg_foreign_table',
  'pg_index',
  'pg_inherits',
  'pg_init_privs',
  'pg_language',
  'pg_largeobject',
  'pg_largeobject_metadata',
  'pg_namespace',
  'pg_opclass',
  'pg_operator',
  'pg_opfamily',
  'pg_parameter_acl',
  'pg_partitioned_table',
  'pg_policy',
  'pg_proc',
  'pg_publication',
  'pg_publication_namespace',
  'pg_publication_rel',
  'pg_range',
  'pg_replication_origin',
  'pg_rewrite',
  'pg_seclabel',
  'pg_sequence',
  'pg_shdepend',
  'pg_shdescription',
  'pg_shseclabel',
  'pg_statistic',
  'pg_statistic_ext',
  'pg_statistic_ext_data',
  'pg_subscription',
  'pg_subscription_rel',
  'pg_tablespace',
  'pg_transform',
  'pg_trigger',
  'pg_ts_config',
  'pg_ts_config_map',
  'pg_ts_dict',
  'pg_ts_parser',
  'pg_ts_template',
  'pg_type',
  'pg_user_mapping',
]);

/**
 * Whether a data change into the relation named `parts` changes the server rather than data:
 * any relation written as `pg_catalog.` something, and a bare name in
 * {@link WRITABLE_CATALOG_RELATIONS}. Other bare `pg_` names (a user's `pg_jobs`) are found in
 * `public`, since `pg_catalog` has no writable relation of that name.
 */
export function isCatalogRelation(parts: readonly string[]): boolean {
  if (parts.length === 1) return WRITABLE_CATALOG_RELATIONS.has(parts[0] as string);
  return parts[parts.length - 2] === 'pg_catalog';
}

/** The value of a string literal node (`{ "A_Const": { "sval": { "sval": "x" } } }`). */
function constantString(value: unknown): string | undefined {
  const constant = unwrap(value);
  if (constant === null || constant[0] !== 'A_Const') return undefined;
  const sval = constant[1]['sval'];
  return isNode(sval) ? text(sval, 'sval') : undefined;
}
