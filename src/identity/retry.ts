import type { Clock } from '../core/index.js';

/** Capped exponential backoff: the base delay doubles from `initialMs` after each failure, up to `maxMs`. */
export interface BackoffSettings {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * Discovery retries: 1 s doubling to 60 s. Soon enough that a gateway restarted during a short
 * IdP blip is ready seconds after the IdP is back; rare enough that a long outage costs the IdP
 * one request a minute per gateway.
 */
export const DISCOVERY_BACKOFF: BackoffSettings = Object.freeze({ initialMs: 1_000, maxMs: 60_000 });

/**
 * The wait before the attempt that follows the `failures`-th failure (1 for the first): the
 * base doubles from `initialMs` up to `maxMs`, and a random point in its upper half is taken
 * ("equal jitter"), so that gateways restarted together do not reach a recovering IdP in step,
 * yet none retries at once.
 */
export function backoffDelay(failures: number, settings: BackoffSettings, random: () => number = Math.random): number {
  const doublings = Math.min(Math.max(failures, 1) - 1, 30);
  const base = Math.min(settings.maxMs, settings.initialMs * 2 ** doublings);
  return Math.round(base / 2 + (base / 2) * random());
}

/** Timers as a dependency, so that a retry schedule can be tested without waiting. */
export interface Timers {
  /** Calls `callback` once after `ms`; the returned function cancels it. */
  after(ms: number, callback: () => void): () => void;
}

/** Node's timers, unreferenced: a pending retry never keeps the process alive by itself. */
export const systemTimers: Timers = {
  after(ms, callback) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** Options of a {@link RetryLoop}. */
export interface RetryLoopOptions<T> {
  readonly backoff: BackoffSettings;
  readonly clock: Clock;
  readonly timers?: Timers;
  /** In [0, 1); default `Math.random`. */
  readonly random?: () => number;
  /** After each failed attempt: the error, the failures so far, and the wait before the next attempt. */
  readonly onFailure?: (error: unknown, failures: number, retryInMs: number) => void;
  /** Once, when an attempt succeeds: its value and how many attempts it took in all. */
  readonly onSuccess?: (value: T, attempts: number) => void;
}

/**
 * Runs `attempt` until it succeeds or the loop is closed, one attempt at a time, waiting
 * {@link backoffDelay} after each failure. Each attempt bounds its own duration (the loop never
 * abandons one); an attempt still running at `close()` is left to finish and its outcome is
 * ignored.
 */
export class RetryLoop<T> {
  readonly #attempt: () => Promise<T>;
  readonly #backoff: BackoffSettings;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #random: () => number;
  readonly #onFailure: RetryLoopOptions<T>['onFailure'];
  readonly #onSuccess: RetryLoopOptions<T>['onSuccess'];
  #failures = 0;
  #cancelTimer: (() => void) | null = null;
  #nextAttemptAt: number | null = null;
  #running = false;
  #finished = false;

  constructor(attempt: () => Promise<T>, options: RetryLoopOptions<T>) {
    this.#attempt = attempt;
    this.#backoff = options.backoff;
    this.#clock = options.clock;
    this.#timers = options.timers ?? systemTimers;
    this.#random = options.random ?? Math.random;
    this.#onFailure = options.onFailure;
    this.#onSuccess = options.onSuccess;
  }

  /** Failed attempts so far, counting those the caller made before {@link start}. */
  get failures(): number {
    return this.#failures;
  }

  /** When the next attempt starts (ms since the epoch); `null` while one runs, and once finished or closed. */
  get nextAttemptAt(): number | null {
    return this.#nextAttemptAt;
  }

  /** True once an attempt succeeded or the loop was closed: no attempt will start any more. */
  get finished(): boolean {
    return this.#finished;
  }

  /**
   * Starts the loop. `failedAlready` counts attempts the caller made itself: with one, the first
   * attempt here waits the backoff that follows a first failure; with none it starts now.
   * Returns the wait before the first attempt, in ms.
   */
  start(failedAlready = 0): number {
    if (this.#finished || this.#running || this.#cancelTimer !== null) throw new Error('RetryLoop.start called twice');
    this.#failures = failedAlready;
    if (failedAlready === 0) {
      this.#run();
      return 0;
    }
    return this.#schedule();
  }

  /** Stops retrying: the pending timer is cleared; an attempt in progress is ignored when it ends. */
  close(): void {
    this.#finished = true;
    this.#cancelTimer?.();
    this.#cancelTimer = null;
    this.#nextAttemptAt = null;
  }

  #schedule(): number {
    const delay = backoffDelay(this.#failures, this.#backoff, this.#random);
    this.#nextAttemptAt = this.#clock.now() + delay;
    this.#cancelTimer = this.#timers.after(delay, () => {
      this.#cancelTimer = null;
      this.#nextAttemptAt = null;
      this.#run();
    });
    return delay;
  }

  #run(): void {
    if (this.#finished) return;
    this.#running = true;
    let attempt: Promise<T>;
    try {
      attempt = this.#attempt();
    } catch (error) {
      attempt = Promise.reject(error);
    }
    attempt.then(
      (value) => {
        this.#running = false;
        if (this.#finished) return;
        this.#finished = true;
        this.#onSuccess?.(value, this.#failures + 1);
      },
      (error: unknown) => {
        this.#running = false;
        if (this.#finished) return;
        this.#failures += 1;
        const delay = this.#schedule();
        this.#onFailure?.(error, this.#failures, delay);
      },
    );
  }
}
