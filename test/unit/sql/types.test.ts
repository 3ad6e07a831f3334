import { describe, expect, expectTypeOf, it } from 'vitest';
import { STATEMENT_CLASSES as POLICY_CLASSES } from '../../../src/policy/types.js';
import type { StatementClass as PolicyStatementClass, StatementFacts } from '../../../src/policy/types.js';
import { STATEMENT_CLASSES } from '../../../src/sql/index.js';
import type { ClassifiedStatement, PreparedStatementFacts, StatementClass } from '../../../src/sql/index.js';

// Checked by the type checker (`npm run typecheck`): the sql room may not import policy, so it
// declares the same literals; these fail to compile the moment the two drift apart.
const toPolicy = (statementClass: StatementClass): PolicyStatementClass => statementClass;
const toSql = (statementClass: PolicyStatementClass): StatementClass => statementClass;
const asFacts = (statement: ClassifiedStatement): StatementFacts => statement;
const asPrepared = (facts: StatementFacts): PreparedStatementFacts => facts;

describe('the statement classes of sql and policy', () => {
  it('are the same type, assignable both ways', () => {
    expectTypeOf<StatementClass>().toEqualTypeOf<PolicyStatementClass>();
    expectTypeOf(toPolicy).returns.toEqualTypeOf<PolicyStatementClass>();
    expectTypeOf(toSql).returns.toEqualTypeOf<StatementClass>();
  });

  it('are the same values in the same order of power', () => {
    expect(STATEMENT_CLASSES).toEqual(POLICY_CLASSES);
    expect(STATEMENT_CLASSES.map(toPolicy).map(toSql)).toEqual(['read', 'write', 'ddl', 'admin']);
  });

  it('let a classified statement feed policy as StatementFacts, and policy facts feed EXECUTE', () => {
    const statement: ClassifiedStatement = {
      text: 'SELECT 1',
      command: 'SELECT',
      class: 'read',
      tables: [],
      functions: [],
      fingerprint: '0000000000000000',
      prepared: null,
    };
    expect(asPrepared(asFacts(statement))).toBe(statement);
  });
});
