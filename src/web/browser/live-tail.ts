import { browser, type BrowserEventSource, type DomElement } from './dom.js';

/**
 * "Live" on a records table: new records matching the page's filter arrive as server-sent
 * events from `/audit/tail` and are inserted as rows the server rendered (and escaped); outcome
 * records fill in the result and duration of the row they complete. The browser's EventSource
 * reconnects by itself and resumes after the last event id it saw.
 *
 * When the reviewer loses access while watching (a config reload took the permission away, the
 * session expired), the gateway sends one `revoked` event and ends the stream. The view is then
 * closed here, since an EventSource would otherwise reconnect, and shows the gateway's message.
 */

const { document } = browser;

interface RecordEvent {
  readonly seq: number;
  readonly html: string;
}

interface ResultEvent {
  readonly ref: number;
  readonly result: string;
  readonly duration: string;
}

interface RevokedEvent {
  readonly reason: string;
  readonly message: string;
}

/** `EventSource.CLOSED` (HTML Living Standard §9.2.2): the browser will not reconnect. */
const CLOSED = 2;

function parse<T>(data: string): T | null {
  try {
    return JSON.parse(data) as T;
  } catch {
    return null;
  }
}

function tailUrl(base: string, after: string): string {
  return `${base}${base.includes('?') ? '&' : '?'}after=${encodeURIComponent(after)}`;
}

/** Brings the "Live" switch of a table section that carries `data-tail` to life (it is hidden without scripts). */
function enhance(section: DomElement): void {
  const base = section.dataset['tail'];
  const body = section.querySelector('tbody');
  if (base === undefined || body === null) return;
  const newestFirst = section.dataset['tailOrder'] !== 'asc';
  let after = section.dataset['after'] ?? '-1';
  let source: BrowserEventSource | null = null;

  const controls = section.querySelector('.tail-controls');
  const toggle = section.querySelector('button[data-tail-toggle]');
  const state = section.querySelector('.tail-state');
  if (controls === null || toggle === null || state === null) return;
  controls.hidden = false;

  const stop = (message = ''): void => {
    source?.close();
    source = null;
    toggle.setAttribute('aria-pressed', 'false');
    toggle.textContent = 'Live: off';
    state.textContent = message;
    if (message === '') state.classList.remove('tail-ended');
    else state.classList.add('tail-ended');
  };
  const start = (): void => {
    const events = new browser.EventSource(tailUrl(base, after));
    source = events;
    toggle.setAttribute('aria-pressed', 'true');
    toggle.textContent = 'Live: on';
    state.textContent = 'connecting…';
    state.classList.remove('tail-ended');
    events.onopen = () => {
      state.textContent = 'waiting for new records';
    };
    events.onerror = () => {
      // A refused reconnect (the gateway answered 401 or 403) closes the EventSource for good.
      if (events.readyState === CLOSED) stop('The live view was refused by the gateway. Reload the page.');
      else state.textContent = 'reconnecting…';
    };
    events.addEventListener('revoked', (event) => {
      stop(parse<RevokedEvent>(event.data)?.message ?? 'The gateway ended the live view. Reload the page.');
    });
    events.addEventListener('record', (event) => {
      const record = parse<RecordEvent>(event.data);
      if (record === null) return;
      body.querySelector('tr.empty')?.remove();
      body.insertAdjacentHTML(newestFirst ? 'afterbegin' : 'beforeend', record.html);
      after = String(record.seq);
      state.textContent = `record ${record.seq} arrived`;
    });
    events.addEventListener('result', (event) => {
      const result = parse<ResultEvent>(event.data);
      if (result === null) return;
      const row = body.querySelector(`tr[data-seq="${result.ref}"]`);
      if (row === null) return;
      const resultCell = row.querySelector('td[data-col="result"]');
      const durationCell = row.querySelector('td[data-col="duration"]');
      if (resultCell !== null) resultCell.innerHTML = result.result;
      if (durationCell !== null) durationCell.innerHTML = result.duration;
    });
  };
  toggle.addEventListener('click', () => (source === null ? start() : stop()));
}

export function enhanceLiveTail(): void {
  for (const section of Array.from(document.querySelectorAll('[data-tail]'))) enhance(section);
}
