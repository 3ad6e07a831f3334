import type { Principal } from '../core/index.js';

/** Where the user name, email and groups are found in the IdP's claims (`identity.claims`). */
export interface ClaimPaths {
  readonly user: string;
  readonly email: string;
  readonly groups: string;
}

/** The person a set of claims names: the core `Principal` plus the display user name. */
export interface MappedClaims {
  readonly principal: Principal;
  /** Value of the `claims.user` path; falls back to the email, then the subject. */
  readonly user: string;
}

export type MapClaimsResult = ({ readonly ok: true } & MappedClaims) | { readonly ok: false; readonly reason: 'missing-subject' };

/**
 * The value at a claim path. A path names a top-level claim when one has exactly that name
 * (namespaced claims such as `https://example.com/groups` contain dots); otherwise each dot
 * steps into a nested object (`realm_access.roles`, `resource_access.tollgate.roles`). Only own
 * properties are followed, so `__proto__` or `constructor` never resolve to anything.
 */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let node: unknown = claims;
  for (const step of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, step)) return undefined;
    node = (node as Record<string, unknown>)[step];
  }
  return node;
}

/** Groups may be an array of strings or one string; anything else counts as no groups. */
export function groupsFrom(value: unknown): string[] {
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  const groups = list.filter((group): group is string => typeof group === 'string' && group !== '');
  return [...new Set(groups)];
}

/**
 * Maps IdP claims to a principal: subject from `sub`, email lower-cased, groups as strings.
 * An email the IdP itself marks unverified (`email_verified: false`, OIDC Core §5.1) is ignored,
 * because grants may name people by email and an unverified address is just a claim by the user.
 */
export function principalFromClaims(claims: Readonly<Record<string, unknown>>, paths: ClaimPaths): MapClaimsResult {
  const sub = claims['sub'];
  if (typeof sub !== 'string' || sub === '') return { ok: false, reason: 'missing-subject' };
  const email = emailFrom(claims, paths.email);
  const groups = groupsFrom(claimAt(claims, paths.groups));
  const principal: Principal = email === undefined ? { subject: sub, groups } : { subject: sub, email, groups };
  let user: string | undefined;
  if (paths.user === paths.email) {
    user = email;
  } else {
    const value = claimAt(claims, paths.user);
    if (typeof value === 'string' && value.trim() !== '') user = value.trim();
  }
  return { ok: true, principal, user: user ?? email ?? sub };
}

function emailFrom(claims: Readonly<Record<string, unknown>>, path: string): string | undefined {
  const value = claimAt(claims, path);
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  if (path === 'email' && claims['email_verified'] === false) return undefined;
  return value.trim().toLowerCase();
}
