/** Where a login or logout lands when the requested place is not acceptable. */
export const DEFAULT_RETURN_TO = '/';

const MAX_RETURN_TO_CHARS = 2048;
/** Printable ASCII without space; a browser sends everything else percent-encoded anyway. */
const PRINTABLE = /^[\x21-\x7E]+$/;
const ORIGIN_PROBE = 'http://return-to.invalid';
const CONTROL = /[\x00-\x1F\x7F]/;
const MAX_DECODE_ROUNDS = 3;

/**
 * The post-login redirect target, if it is a path on the gateway itself; `/` otherwise
 * (DESIGN.md §2, the open-redirect rule; RFC 9700 §4.11).
 *
 * Accepted: `/x/y?z#f`. Refused: scheme-relative `//evil`, backslashes that browsers read as
 * slashes (`/\evil`), absolute URLs and `javascript:` (they do not start with `/`), controls,
 * spaces and tabs (browsers strip tabs and newlines, so `/\t/evil` would become `//evil`), and
 * percent-encoded forms of any of these (`/%2F%2Fevil`, `%5C`, `%09`), decoded up to three times
 * since an upstream may decode again. The value is returned unchanged, never re-normalised,
 * because normalising `/..//evil` would produce `//evil`.
 */
export function safeReturnTo(input: unknown): string {
  if (typeof input !== 'string' || input.length > MAX_RETURN_TO_CHARS || !PRINTABLE.test(input)) return DEFAULT_RETURN_TO;
  let layer = input;
  for (let round = 0; ; round += 1) {
    if (!layer.startsWith('/') || layer.startsWith('//') || layer.includes('\\') || CONTROL.test(layer)) return DEFAULT_RETURN_TO;
    const next = percentDecode(layer);
    if (next === layer) break;
    if (round === MAX_DECODE_ROUNDS) return DEFAULT_RETURN_TO;
    layer = next;
  }
  return new URL(input, ORIGIN_PROBE).origin === ORIGIN_PROBE ? input : DEFAULT_RETURN_TO;
}

/**
 * Decodes every valid `%XX` to the byte's Latin-1 character and leaves anything else alone, so a
 * stray `%` cannot stop the inspection of the sequences around it (`/%2F%2Fevil%zz`).
 */
function percentDecode(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
