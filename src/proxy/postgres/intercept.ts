import type { Principal } from '../../core/index.js';
import { decide, type CompiledPolicy, type Decision, type PolicySource } from '../../policy/index.js';
import type { ClassifiedStatement, ClassifyError, ClassifyResult, PreparedStatementFacts, SqlClassifier } from '../../sql/index.js';
import type { AuditDecisionLike } from './audit-events.js';
import { errorResponse } from './errors.js';
import { encodeParse, encodeQuery, SQLSTATE } from './protocol/index.js';

/**
 * What the upstream receives in place of a refused message: text its parser rejects, so it runs
 * nothing, answers with an ErrorResponse (which the gateway replaces with its own) and moves to
 * exactly the state PostgreSQL would be in had the refused statement failed: a failed
 * transaction block inside BEGIN, an aborted implicit transaction and skip-until-Sync in the
 * extended protocol (PostgreSQL docs §55.2.3 "Extended Query"). Keeping the server's own state
 * machine in charge is what keeps ReadyForQuery's status byte true.
 */
export const REFUSED_SQL = '-- tollgate: this statement was refused by the gateway and is never run\nTOLLGATE_REFUSED';

/** A simple-protocol stand-in for a refused Query or FunctionCall. */
export const REFUSED_QUERY = encodeQuery(REFUSED_SQL);

/** The statement name of an extended-protocol stand-in when no client name is at stake. */
const REFUSED_STATEMENT_NAME = 'tollgate.refused';

/**
 * An extended-protocol stand-in. A refused Parse keeps the client's statement name, so the
 * server drops (for the unnamed statement) or keeps (for a named one) exactly what a failed
 * Parse would; other refusals use a name no client statement can be affected by.
 */
export function refusedParse(name: string = REFUSED_STATEMENT_NAME): Buffer {
  return encodeParse(name, REFUSED_SQL);
}

/** A prepared statement (protocol `Parse` or SQL `PREPARE`) as the session tracks it. */
export interface PreparedEntry extends PreparedStatementFacts {
  /** `null` for an empty query string, which runs nothing. */
  readonly statement: ClassifiedStatement | null;
  /** The decision made at Parse; `null` when it is made at each execution (SQL `PREPARE`). */
  readonly decision: Decision | null;
}

/** Decisions for gateway refusals that no policy rule made; the reasons are stable record values. */
export const GATEWAY_DECISIONS = {
  unparsable: { effect: 'deny', rule: null, reason: 'unparsable-sql' },
  tooComplex: { effect: 'deny', rule: null, reason: 'sql-too-complex' },
  invalidText: { effect: 'deny', rule: null, reason: 'invalid-sql-text' },
  parserUnavailable: { effect: 'deny', rule: null, reason: 'parser-unavailable' },
  unknownPortal: { effect: 'deny', rule: null, reason: 'unknown-portal' },
  fastpath: { effect: 'deny', rule: null, reason: 'fastpath-call' },
  settingsMayHaveChanged: { effect: 'deny', rule: null, reason: 'settings-may-have-changed' },
} as const satisfies Record<string, AuditDecisionLike>;

/**
 * Classifies and decides statements for one session: the principal, resource and upstream login
 * are fixed when the session starts; the policy is the one in force at each statement, so a
 * config reload applies to the next statement of an open session.
 */
export class StatementGate {
  readonly #policy: PolicySource;
  /** The policy in force when the session started; decisions made at Parse hold only under it. */
  readonly #startPolicy: CompiledPolicy;
  readonly #classifier: SqlClassifier;
  readonly #principal: Principal;
  readonly #resource: string;
  readonly #login: string;

  constructor(policy: PolicySource, classifier: SqlClassifier, principal: Principal, resource: string, login: string) {
    this.#policy = policy;
    this.#startPolicy = policy.current();
    this.#classifier = classifier;
    this.#principal = principal;
    this.#resource = resource;
    this.#login = login;
  }

  classify(text: string, prepared: ReadonlyMap<string, PreparedStatementFacts>): ClassifyResult {
    return this.#classifier.classify(text, prepared.size === 0 ? undefined : { prepared });
  }

  decide(statement: PreparedStatementFacts): Decision {
    return decide(this.#policy.current(), this.#principal, { kind: 'sql', resource: this.#resource, login: this.#login, statement });
  }

  /**
   * The decision for executing a prepared entry: the one made at Parse while the session's
   * starting policy is still in force, else a fresh one, so that a reload that revokes a grant
   * also stops statements prepared before it.
   */
  decideExecute(entry: PreparedEntry): Decision {
    const policy = this.#policy.current();
    if (entry.decision !== null && policy === this.#startPolicy) return entry.decision;
    return decide(policy, this.#principal, { kind: 'sql', resource: this.#resource, login: this.#login, statement: entry });
  }

  /** ErrorResponse for a statement policy denied: SQLSTATE 42501, the reason and the rule. */
  denial(decision: Decision, statement: ClassifiedStatement): Buffer {
    const rule = decision.rule === null ? '' : `, rule ${decision.rule}`;
    const list = (names: readonly string[]): string => (names.length === 0 ? 'none' : names.join(', '));
    return errorResponse({
      code: SQLSTATE.insufficient_privilege,
      message: `permission denied for ${statement.command}: ${decision.reason}${rule}`,
      detail: `Statement class ${statement.class}; tables: ${list(statement.tables)}; functions: ${list(statement.functions)}; login ${this.#login} on ${this.#resource}.`,
      hint:
        decision.reason === 'denied-by-rule'
          ? `Rule ${decision.rule} of your roles denies it.`
          : 'No rule of your roles allows it; ask for a role that does.',
    });
  }

  /** ErrorResponse and record decision for SQL the classifier could not classify (fail closed). */
  unclassified(error: ClassifyError): { readonly reply: Buffer; readonly decision: AuditDecisionLike } {
    switch (error.kind) {
      case 'syntax':
        return {
          decision: GATEWAY_DECISIONS.unparsable,
          reply: errorResponse({
            code: SQLSTATE.syntax_error,
            message: `statement refused: PostgreSQL's parser rejects it (${error.message}), so it cannot be checked`,
            ...(error.position === undefined ? {} : { position: String(error.position + 1) }),
          }),
        };
      case 'parser-unavailable':
        return {
          decision: GATEWAY_DECISIONS.parserUnavailable,
          reply: errorResponse({ code: SQLSTATE.cannot_connect_now, message: 'statement refused: the SQL parser is restarting; retry in a moment' }),
        };
      case 'too-complex':
        return {
          decision: GATEWAY_DECISIONS.tooComplex,
          reply: errorResponse({ code: SQLSTATE.program_limit_exceeded, message: `statement refused: it is too complex to check (${error.message})` }),
        };
      case 'invalid-text':
        return {
          decision: GATEWAY_DECISIONS.invalidText,
          reply: errorResponse({ code: SQLSTATE.invalid_parameter_value, message: `statement refused: ${error.message}` }),
        };
    }
  }

  unknownPortal(portal: string): Buffer {
    return errorResponse({
      code: SQLSTATE.insufficient_privilege,
      message: `permission denied: portal "${portal}" was not bound to a statement the gateway checked`,
    });
  }

  /** A Parse or Query whose text the server may read differently from the gateway (unsynced settings change). */
  settingsMayHaveChanged(): Buffer {
    return errorResponse({
      code: SQLSTATE.feature_not_supported,
      message: 'statement refused: an earlier statement of this batch may have changed how the server reads SQL text, and this text has a backslash or non-ASCII characters',
      hint: 'Send Sync after a statement that may change settings, before text with backslashes or non-ASCII characters.',
    });
  }

  fastpath(): Buffer {
    return errorResponse({
      code: SQLSTATE.insufficient_privilege,
      message: 'permission denied: the fastpath function call interface is not allowed through the gateway',
      hint: 'Call the function in a SELECT statement instead.',
    });
  }
}
