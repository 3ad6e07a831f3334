import type { Principal } from '../core/index.js';
import type { AuditPrincipal } from './record.js';

/**
 * Recorded form of each principal, built once: a session's or token's principal is one object for
 * as long as its login is cached, so all its records share the recorded form (the store encodes
 * records and never changes them).
 */
const recordedPrincipals = new WeakMap<Principal, AuditPrincipal>();

export function auditPrincipal(principal: Principal): AuditPrincipal {
  let recorded = recordedPrincipals.get(principal);
  if (recorded === undefined) {
    recorded =
      principal.email === undefined
        ? { subject: principal.subject, groups: principal.groups }
        : { subject: principal.subject, email: principal.email, groups: principal.groups };
    recordedPrincipals.set(principal, recorded);
  }
  return recorded;
}
