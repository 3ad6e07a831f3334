/**
 * The person (or automation) behind a request, as established by the identity room. Policy
 * decides on it and the audit log records it.
 */
export interface Principal {
  /** Stable subject identifier from the IdP (`sub`), or the email for admin-minted tokens. */
  readonly subject: string;
  /** Lower-cased email when the IdP gives one. */
  readonly email?: string;
  /** Group names from the IdP's groups claim. */
  readonly groups: readonly string[];
}

/** Deep-freezes a plain data structure (objects and arrays) in place and returns it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) {
      deepFreeze((value as Record<string, unknown>)[key]);
    }
  }
  return value;
}
