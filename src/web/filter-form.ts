import { RECORD_KINDS } from '../audit/index.js';
import { queryString, type FilterFields } from './filter.js';
import { html, type SafeHtml } from './html.js';

/** The GET form of a page's filter: every view it produces is a URL to share. */
export interface FilterFormOptions {
  readonly action: string;
  readonly fields: FilterFields;
  /** The records page also filters by kind and session. */
  readonly recordFields: boolean;
  readonly problems: readonly string[];
}

const KIND_CHOICES = ['http', 'ws', 'pg', 'auth', 'token', ...RECORD_KINDS];

function input(name: keyof FilterFields, label: string, value: string, extra: { readonly type?: string; readonly placeholder?: string; readonly list?: string } = {}): SafeHtml {
  return html`<label>${label}<input name="${name}" type="${extra.type ?? 'text'}" value="${value}" autocomplete="off"${
    extra.placeholder === undefined ? '' : html` placeholder="${extra.placeholder}"`
  }${extra.list === undefined ? '' : html` list="${extra.list}"`}></label>`;
}

export function renderFilterForm(options: FilterFormOptions): SafeHtml {
  const { fields } = options;
  const effect = (value: string, label: string) => html`<option value="${value}"${fields.effect === value ? html` selected` : ''}>${label}</option>`;
  const problems =
    options.problems.length === 0
      ? ''
      : html`<div class="problems" role="alert"><p>The filter cannot be used:</p><ul>${options.problems.map((problem) => html`<li>${problem}</li>`)}</ul></div>`;
  return html`${problems}<form class="filters" method="get" action="${options.action}" role="search" aria-label="Filter">
${input('user', 'User', fields.user, { type: 'search', placeholder: 'email or subject' })}
${input('resource', 'Resource', fields.resource, { placeholder: 'app, shop, …' })}
<label>Decision<select name="effect">${effect('', 'any')}${effect('allow', 'allow')}${effect('deny', 'deny')}</select></label>
${options.recordFields ? input('kind', 'Kind', fields.kind, { placeholder: 'pg.query, http, …', list: 'record-kinds' }) : ''}
${options.recordFields ? input('session', 'Session', fields.session) : ''}
${input('since', 'From (UTC)', fields.since, { placeholder: '2025-01-31T09:00 or 2h' })}
${input('until', 'To (UTC)', fields.until, { placeholder: '2025-01-31T18:00' })}
${input('text', 'Text', fields.text, { type: 'search', placeholder: 'anywhere in the record' })}
<div class="actions"><button type="submit">Filter</button><a href="${options.action}">Clear</a></div>
${options.recordFields ? html`<datalist id="record-kinds">${KIND_CHOICES.map((kind) => html`<option value="${kind}"></option>`)}</datalist>` : ''}
</form>
<p class="hint">Times are UTC; a duration (15m, 2h, 7d) means that long ago. Text is searched in every record's JSON, without regard to case.</p>`;
}

/** Download links of the current filter, or why there are none. */
export function renderExportLinks(fields: Partial<FilterFields>, canExport: boolean): SafeHtml {
  if (!canExport) return html`<span class="muted">Exporting needs the audit <code>export</code> permission.</span>`;
  return html`<a class="button secondary" href="/audit/export${queryString(fields, { format: 'jsonl' })}">Export JSONL</a>
<a class="button secondary" href="/audit/export${queryString(fields, { format: 'ocsf' })}">Export OCSF</a>`;
}

/** Newest / older page links. */
export function renderPager(action: string, fields: Partial<FilterFields>, cursor: string | undefined, nextCursor: string | null, labels: { readonly first: string; readonly next: string }): SafeHtml {
  if (cursor === undefined && nextCursor === null) return html``;
  return html`<nav class="pages" aria-label="Pages">${cursor === undefined ? '' : html`<a href="${action}${queryString(fields)}">${labels.first}</a>`}${
    nextCursor === null ? '' : html`<a rel="next" href="${action}${queryString(fields, { cursor: nextCursor })}">${labels.next}</a>`
  }</nav>`;
}
