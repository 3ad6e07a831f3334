import { TollgateError } from './errors.js';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const SIZE_BYTES = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as const;

/**
 * Parses a duration such as `250ms`, `15m`, `1h30m` or `2d` into milliseconds; `null` when the
 * text is not one. Config files and CLI flags share this one grammar.
 */
export function parseDuration(text: string): number | null {
  const parts = /^(?:\d+(?:ms|s|m|h|d))+$/.test(text) ? text.match(/\d+(?:ms|s|m|h|d)/g) : null;
  if (!parts) return null;
  let total = 0;
  for (const part of parts) {
    const unit = part.endsWith('ms') ? 'ms' : (part.at(-1) as 's' | 'm' | 'h' | 'd');
    total += Number.parseInt(part, 10) * UNIT_MS[unit];
  }
  return total;
}

/** Parses a size such as `64MiB`, `512KiB` or `1048576` (bytes) into bytes; `null` when invalid. */
export function parseSize(text: string): number | null {
  const match = /^(\d+)(B|KiB|MiB|GiB)?$/.exec(text);
  if (!match) return null;
  return Number.parseInt(match[1] ?? '', 10) * SIZE_BYTES[(match[2] ?? 'B') as keyof typeof SIZE_BYTES];
}

/** Like {@link parseDuration} but throws a usage error naming the flag. */
export function requireDuration(text: string, what: string): number {
  const ms = parseDuration(text);
  if (ms === null) {
    throw new TollgateError('TG_ERR_USAGE', `${what}: "${text}" is not a duration; use forms like 500ms, 30s, 15m, 1h`);
  }
  return ms;
}
