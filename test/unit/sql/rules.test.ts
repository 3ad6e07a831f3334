import { describe, expect, it } from 'vitest';
import { classOfCall, classOfNode, commandOfNode } from '../../../src/sql/rules.js';

describe('the per-node-type rules', () => {
  it('fail closed: a statement node type they do not know is admin, tagged with its type', () => {
    expect(classOfNode('WaitForLsnStmt', {})).toBe('admin');
    expect(commandOfNode('WaitForLsnStmt', {})).toBe('WaitForLsnStmt');
    // Not fooled by names inherited from Object.prototype.
    expect(classOfNode('toString', {})).toBe('admin');
  });

  it('treat an unknown SET kind or transaction kind as admin', () => {
    expect(classOfNode('VariableSetStmt', { kind: 'VAR_SET_SOMETHING_NEW', name: 'application_name' })).toBe('admin');
    expect(classOfNode('TransactionStmt', { kind: 'TRANS_STMT_NEW' })).toBe('admin');
    expect(classOfNode('DropStmt', {})).toBe('admin');
  });

  it('rank calls by the side effects their names promise', () => {
    expect(classOfCall('lower', [])).toBe('read');
    expect(classOfCall('nextval', [])).toBe('write');
    expect(classOfCall('pg_terminate_backend', [])).toBe('admin');
    expect(classOfCall('dblink_connect_u', [])).toBe('admin');
    const literal = (sval: string) => ({ A_Const: { sval: { sval } } });
    expect(classOfCall('set_config', [literal('TimeZone'), literal('UTC')])).toBe('read');
    expect(classOfCall('set_config', [literal('session_authorization'), literal('postgres')])).toBe('admin');
    expect(classOfCall('set_config', [])).toBe('admin');
  });
});
