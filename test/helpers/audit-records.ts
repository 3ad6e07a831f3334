import { bytesToHex, genesisPrev, sealRecord } from '../../src/audit/index.js';
import type { AuditEvent, SealedRecord } from '../../src/audit/index.js';

/** A varied event for position `i` of a test log. */
export function sampleEvent(i: number): AuditEvent {
  const kinds = [
    { kind: 'http.request', resource: 'app', decision: { effect: 'allow', rule: 'engineer.allow[0]', reason: 'allowed-by-rule' }, data: { method: 'GET', path: `/app/${i}` } },
    { kind: 'pg.query', resource: 'shop', decision: { effect: 'deny', rule: null, reason: 'no-matching-allow' }, data: { sql: `select ${i}`, params: [BigInt(i) * 10n ** 18n] } },
    { kind: 'auth.login', data: { method: 'oidc' } },
  ] as const satisfies readonly AuditEvent[];
  const base = kinds[i % kinds.length]!;
  return { ...base, principal: { subject: `user-${i % 5}`, email: `user${i % 5}@example.com`, groups: ['engineering'] }, request_id: `r-${i}` };
}

/** Seals `count` records of log `logId` as the writer would: seq 0.., each `prev` the last leaf hash. */
export function sealChain(logId: string, count: number, event: (i: number) => AuditEvent = sampleEvent, startMs = Date.UTC(2025, 0, 1)): SealedRecord[] {
  const out: SealedRecord[] = [];
  let prev = genesisPrev(logId);
  for (let seq = 0; seq < count; seq++) {
    const sealed = sealRecord(event(seq), { logId, seq, prev, timeMs: startMs + seq });
    out.push(sealed);
    prev = bytesToHex(sealed.leafHash);
  }
  return out;
}
