/** In a `u` regular expression a surrogate class matches only a surrogate without its pair. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Why a JavaScript string cannot be handed to the parser as it is, or `null` when it can. */
export function textProblem(text: string): string | null {
  // The parser reads a C string: everything after a NUL would go unseen.
  if (text.includes('\0')) return 'The SQL text contains a NUL character, which PostgreSQL does not accept in a query.';
  if (LONE_SURROGATE.test(text)) {
    return 'The SQL text contains an unpaired UTF-16 surrogate, which has no UTF-8 encoding; send valid Unicode.';
  }
  return null;
}

/**
 * A SQL text and the two ways of counting positions in it: the parser's statement locations are
 * UTF-8 byte offsets, its error cursor counts characters (code points), and JavaScript strings
 * count UTF-16 code units.
 */
export class SourceText {
  readonly #text: string;
  /** `null` when the text is ASCII, where all three ways of counting agree. */
  readonly #utf8: Buffer | null;

  constructor(text: string) {
    this.#text = text;
    this.#utf8 = Buffer.byteLength(text, 'utf8') === text.length ? null : Buffer.from(text, 'utf8');
  }

  /**
   * The statement that starts at UTF-8 byte `location` and is `length` bytes long, or runs to the
   * end of the text when `length` is absent; without trailing whitespace.
   */
  statement(location: number, length: number | undefined): string {
    const end = length === undefined ? undefined : location + length;
    const slice =
      this.#utf8 === null ? this.#text.slice(location, end) : this.#utf8.subarray(location, end).toString('utf8');
    return trimTrailingSpace(slice);
  }

  /** The UTF-16 index of the character (code point) at 0-based index `character`. */
  indexOfCharacter(character: number): number {
    if (this.#utf8 === null) return Math.min(character, this.#text.length);
    let index = 0;
    for (let seen = 0; seen < character && index < this.#text.length; seen++) {
      const unit = this.#text.charCodeAt(index);
      index += unit >= 0xd800 && unit <= 0xdbff ? 2 : 1;
    }
    return index;
  }
}

/**
 * Cuts PostgreSQL's lexer whitespace (`space` in scan.l: space, \t, \n, \r, \f, \v) off the end.
 * JavaScript's `trimEnd` would also cut NBSP and other characters that PostgreSQL reads as part
 * of an identifier; a loop, unlike a `\s+$` pattern, stays linear on long inner runs of spaces.
 */
export function trimTrailingSpace(text: string): string {
  let end = text.length;
  while (end > 0) {
    const unit = text.charCodeAt(end - 1);
    if (unit !== 0x20 && (unit < 0x09 || unit > 0x0d)) break;
    end--;
  }
  return end === text.length ? text : text.slice(0, end);
}
