import { CompiledPolicy } from './compile.js';

/**
 * Where a long-lived consumer (a proxy connection, an open Postgres session, the audit pages)
 * reads the policy in force. Read it at each decision and never keep the result: a config
 * reload replaces the policy while connections stay open, and their next request or statement
 * must be decided by the new one.
 */
export interface PolicySource {
  /** The policy in force now. */
  current(): CompiledPolicy;
}

/**
 * The one holder of the policy in force. `replace` is synchronous, so every decision is made by
 * exactly one whole policy, the old or the new, never by a mix.
 */
export class LivePolicy implements PolicySource {
  #current: CompiledPolicy;

  constructor(initial: CompiledPolicy) {
    this.#current = initial;
  }

  current(): CompiledPolicy {
    return this.#current;
  }

  /** Puts `next` in force for every decision made from now on. */
  replace(next: CompiledPolicy): void {
    this.#current = next;
  }
}

/**
 * A consumer's policy input as a source: a {@link PolicySource} as it is, a compiled policy as a
 * source that never changes (one-shot commands, tests, benchmarks).
 */
export function policySource(policy: CompiledPolicy | PolicySource): PolicySource {
  if (!(policy instanceof CompiledPolicy)) return policy;
  return { current: () => policy };
}
