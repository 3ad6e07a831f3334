/**
 * The few browser APIs the review pages' scripts use, typed here because the project compiles
 * against Node's types only (adding the DOM library would change the globals every room sees).
 * The scripts reach them through {@link browser}, a typed view of the page's `globalThis`.
 */

export interface DomEvent {
  readonly target: unknown;
}

export interface DomElement {
  readonly dataset: Readonly<Record<string, string | undefined>>;
  textContent: string | null;
  innerHTML: string;
  hidden: boolean;
  readonly classList: { add(...names: string[]): void; remove(...names: string[]): void };
  setAttribute(name: string, value: string): void;
  closest(selector: string): DomElement | null;
  querySelector(selector: string): DomElement | null;
  insertAdjacentHTML(position: 'afterbegin' | 'beforeend', html: string): void;
  addEventListener(type: string, listener: (event: DomEvent) => void): void;
  remove(): void;
}

/** `<button>`. */
export interface DomButton extends DomElement {
  disabled: boolean;
}

export interface DomDocument {
  getElementById(id: string): DomElement | null;
  querySelectorAll(selector: string): ArrayLike<DomElement>;
  addEventListener(type: string, listener: (event: DomEvent) => void): void;
}

/** One server-sent event (HTML Living Standard §9.2 "Server-sent events"). */
export interface ServerSentEvent {
  readonly data: string;
}

export interface BrowserEventSource {
  /** `2` (CLOSED) once the browser has given up: it will not reconnect. */
  readonly readyState: number;
  addEventListener(type: string, listener: (event: ServerSentEvent) => void): void;
  onerror: (() => void) | null;
  onopen: (() => void) | null;
  close(): void;
}

export interface BrowserGlobals {
  readonly document: DomDocument;
  readonly EventSource: new (url: string) => BrowserEventSource;
  fetch(url: string, init: { readonly headers: Record<string, string>; readonly credentials: 'same-origin' }): Promise<{ readonly ok: boolean; readonly status: number; text(): Promise<string> }>;
}

/** The page's globals, as the scripts use them. */
export const browser = globalThis as unknown as BrowserGlobals;
