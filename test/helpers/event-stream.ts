/**
 * A server-sent events client for tests (HTML Living Standard §9.2): opens a stream with
 * `fetch`, keeps everything received, parses it into events, and waits for what a test expects.
 * Unlike a browser's EventSource it never reconnects, so a test sees exactly one response end.
 */

/** One dispatched event: its `event` type (`message` when absent), `id` and `data` fields. */
export interface StreamEvent {
  readonly event: string;
  readonly id: string | undefined;
  readonly data: string;
}

export class EventStreamClient {
  readonly status: number;
  readonly contentType: string | null;
  /** The response's `Set-Cookie` lines (a refreshed session cookie). */
  readonly setCookies: readonly string[];
  #text = '';
  #ended = false;
  #failure: unknown = null;
  readonly #waiters = new Set<() => void>();
  readonly #controller: AbortController;

  private constructor(response: Response, controller: AbortController) {
    this.status = response.status;
    this.contentType = response.headers.get('content-type');
    this.setCookies = response.headers.getSetCookie();
    this.#controller = controller;
    void this.#pump(response);
  }

  /** Opens `url`; the response body, whatever its status, is read as it arrives. */
  static async open(url: string, headers: Record<string, string>): Promise<EventStreamClient> {
    const controller = new AbortController();
    const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
    return new EventStreamClient(response, controller);
  }

  /** Everything received so far. */
  get text(): string {
    return this.#text;
  }

  /** The server ended the response. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The complete events received so far, in order; comments and `retry` lines are not events. */
  events(): StreamEvent[] {
    const blocks = this.#text.split('\n\n');
    blocks.pop();
    const events: StreamEvent[] = [];
    for (const block of blocks) {
      let event = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon === 0) continue;
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'id') id = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) events.push({ event, id, data: data.join('\n') });
    }
    return events;
  }

  /** The events of type `type`, their data parsed as JSON. */
  json<T>(type: string): T[] {
    return this.events()
      .filter((event) => event.event === type)
      .map((event) => JSON.parse(event.data) as T);
  }

  /** Resolves once `done()` holds; fails when the stream ends (or `timeoutMs` passes) first. */
  async until(done: (client: EventStreamClient) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this)) {
      if (this.#ended) throw new Error(`the stream ended before ${what}; it received:\n${this.#text}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; the stream received:\n${this.#text}`);
      await this.#change(left);
    }
  }

  /** Resolves once the server has ended the response. */
  async untilEnded(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the stream did not end within ${timeoutMs} ms; it received:\n${this.#text}`);
      await this.#change(left);
    }
    if (this.#failure !== null) throw new Error(`the stream failed instead of ending: ${String(this.#failure)}`);
  }

  /** Closes the connection (a reader leaving). */
  close(): void {
    this.#controller.abort();
  }

  async #pump(response: Response): Promise<void> {
    const decoder = new TextDecoder();
    try {
      if (response.body === null) return;
      for await (const chunk of response.body) {
        this.#text += decoder.decode(chunk as Uint8Array, { stream: true });
        this.#notify();
      }
    } catch (error) {
      if (!this.#controller.signal.aborted) this.#failure = error;
    } finally {
      this.#ended = true;
      this.#notify();
    }
  }

  /** Resolves at the next chunk or end, or after `ms`. */
  #change(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#waiters.add(wake);
    });
  }

  #notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}
