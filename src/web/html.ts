/**
 * HTML built by one tagged template that escapes every interpolated value unless it is already
 * {@link SafeHtml} made by the same template. Pages never concatenate raw strings into markup,
 * so a user name, a SQL statement or a record field can never become markup or script.
 */

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for element content and for quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] as string);
}

/** Markup that is safe to send: only {@link html} makes it. */
export class SafeHtml {
  readonly #text: string;

  private constructor(text: string) {
    this.#text = text;
  }

  /** Used by {@link html} only: the text must already be escaped markup. */
  static fromEscaped(text: string): SafeHtml {
    return new SafeHtml(text);
  }

  toString(): string {
    return this.#text;
  }
}

/** What may be interpolated: text (escaped), markup, numbers, nothing, or lists of these. */
export type HtmlValue = SafeHtml | string | number | null | undefined | false | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.toString();
  if (Array.isArray(value)) {
    let out = '';
    for (const item of value as readonly HtmlValue[]) out += render(item);
    return out;
  }
  // Strings, numbers, and anything else that slipped past the types: text, escaped.
  return escapeHtml(String(value));
}

/** `html\`<td>${name}</td>\``: the literal parts are trusted markup, every value is escaped. */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + (strings[i + 1] ?? '');
  return SafeHtml.fromEscaped(out);
}

/** Joins markup pieces with a separator (itself markup). */
export function joinHtml(items: readonly SafeHtml[], separator: SafeHtml = html``): SafeHtml {
  return SafeHtml.fromEscaped(items.map(String).join(String(separator)));
}
