import { describe, expect, it } from 'vitest';
import { LivePolicy, compilePolicy, decide, policySource, type PolicySpec } from '../../../src/policy/index.js';

const ALICE = { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] };
const READ = { kind: 'sql', resource: 'shop', login: 'reader', statement: { class: 'read', tables: ['public.orders'], functions: [] } } as const;

function spec(granted: boolean): PolicySpec {
  return {
    resources: [{ name: 'shop', kind: 'postgres', logins: ['reader'] }],
    roles: { engineer: { allow: [{ resource: 'shop', statements: ['read'] }], deny: [] } },
    grants: granted ? [{ role: 'engineer', users: [], groups: ['engineering'] }] : [],
  };
}

describe('LivePolicy', () => {
  it('answers every read after replace() with the new policy', () => {
    const live = new LivePolicy(compilePolicy(spec(true)));
    const reader = policySource(live);
    expect(decide(reader.current(), ALICE, READ).effect).toBe('allow');
    live.replace(compilePolicy(spec(false)));
    expect(decide(reader.current(), ALICE, READ)).toEqual({ effect: 'deny', rule: null, reason: 'no-matching-allow' });
  });

  it('policySource() turns a compiled policy into a source that never changes', () => {
    const compiled = compilePolicy(spec(true));
    const fixed = policySource(compiled);
    expect(fixed.current()).toBe(compiled);
    expect(policySource(fixed)).toBe(fixed);
  });
});
