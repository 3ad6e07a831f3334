import { describe, expect, it } from 'vitest';
import { manualClock } from '../../../src/core/index.js';
import { DISCOVERY_BACKOFF, RetryLoop, backoffDelay, type Timers } from '../../../src/identity/index.js';

/** Timers driven by a manual clock: `advance` moves the clock and fires what has come due, in order. */
function manualTimers(clock: ReturnType<typeof manualClock>) {
  const pending: { at: number; callback: () => void; cancelled: boolean }[] = [];
  const timers: Timers = {
    after(ms, callback) {
      const timer = { at: clock.now() + ms, callback, cancelled: false };
      pending.push(timer);
      return () => {
        timer.cancelled = true;
      };
    },
  };
  return {
    timers,
    /** Timers neither fired nor cancelled. */
    get armed(): number {
      return pending.filter((timer) => !timer.cancelled).length;
    },
    advance(ms: number): void {
      const until = clock.now() + ms;
      for (;;) {
        const due = pending.filter((timer) => !timer.cancelled && timer.at <= until).sort((a, b) => a.at - b.at)[0];
        if (due === undefined) break;
        pending.splice(pending.indexOf(due), 1);
        clock.set(due.at);
        due.callback();
      }
      clock.set(until);
    },
  };
}

/** Lets the promise callbacks of a settled attempt run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe('backoffDelay', () => {
  it('doubles from 1 s to the 60 s cap, jittered within the upper half of each step', () => {
    const lowest = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((failures) => backoffDelay(failures, DISCOVERY_BACKOFF, () => 0));
    const highest = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((failures) => backoffDelay(failures, DISCOVERY_BACKOFF, () => 0.999_999));
    expect(lowest).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(highest).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('never waits zero or beyond the cap, also for huge failure counts', () => {
    for (const failures of [0, 1, 31, 1_000, Number.MAX_SAFE_INTEGER]) {
      for (const random of [0, 0.5, 0.999]) {
        const delay = backoffDelay(failures, { initialMs: 1_000, maxMs: 60_000 }, () => random);
        expect(delay).toBeGreaterThanOrEqual(500);
        expect(delay).toBeLessThanOrEqual(60_000);
      }
    }
  });
});

describe('RetryLoop', () => {
  it('retries after each failure with the growing backoff and stops at the first success', async () => {
    const clock = manualClock(1_000_000);
    const manual = manualTimers(clock);
    const results: (() => Promise<string>)[] = [
      () => Promise.reject(new Error('refused 2')),
      () => Promise.reject(new Error('refused 3')),
      () => Promise.resolve('discovered'),
    ];
    const calls: number[] = [];
    const failures: { message: string; failures: number; retryInMs: number }[] = [];
    const successes: { value: string; attempts: number }[] = [];
    const loop = new RetryLoop(
      () => {
        calls.push(clock.now());
        const next = results.shift();
        if (next === undefined) throw new Error('attempted after success');
        return next();
      },
      {
        backoff: DISCOVERY_BACKOFF,
        clock,
        timers: manual.timers,
        random: () => 1,
        onFailure: (error, count, retryInMs) => failures.push({ message: (error as Error).message, failures: count, retryInMs }),
        onSuccess: (value, attempts) => successes.push({ value, attempts }),
      },
    );

    // The caller made attempt 1 itself; the loop's first attempt waits the first backoff.
    expect(loop.start(1)).toBe(1_000);
    expect(loop.nextAttemptAt).toBe(1_001_000);
    manual.advance(999);
    expect(calls).toEqual([]);
    manual.advance(1);
    expect(calls).toEqual([1_001_000]);
    expect(loop.nextAttemptAt).toBeNull();
    await settle();
    expect(failures).toEqual([{ message: 'refused 2', failures: 2, retryInMs: 2_000 }]);
    expect(loop.nextAttemptAt).toBe(1_003_000);

    manual.advance(2_000);
    await settle();
    expect(failures.at(-1)).toEqual({ message: 'refused 3', failures: 3, retryInMs: 4_000 });
    manual.advance(4_000);
    await settle();
    expect(calls).toEqual([1_001_000, 1_003_000, 1_007_000]);
    expect(successes).toEqual([{ value: 'discovered', attempts: 4 }]);
    expect(loop.finished).toBe(true);
    expect(loop.nextAttemptAt).toBeNull();
    expect(manual.armed).toBe(0);
  });

  it('starts at once without earlier failures, and counts an attempt that throws synchronously as a failure', async () => {
    const clock = manualClock(0);
    const manual = manualTimers(clock);
    let attempts = 0;
    const failures: number[] = [];
    const loop = new RetryLoop<string>(
      () => {
        attempts += 1;
        throw new Error('bug in the attempt');
      },
      { backoff: { initialMs: 100, maxMs: 400 }, clock, timers: manual.timers, random: () => 0, onFailure: (_error, count) => failures.push(count) },
    );
    expect(loop.start()).toBe(0);
    expect(attempts).toBe(1);
    await settle();
    expect(failures).toEqual([1]);
    expect(loop.nextAttemptAt).toBe(50);
    manual.advance(50);
    await settle();
    expect(attempts).toBe(2);
    expect(loop.failures).toBe(2);
    loop.close();
  });

  it('close() clears the pending timer: no attempt starts afterwards', async () => {
    const clock = manualClock(0);
    const manual = manualTimers(clock);
    let attempts = 0;
    const loop = new RetryLoop(
      () => {
        attempts += 1;
        return Promise.reject(new Error('down'));
      },
      { backoff: DISCOVERY_BACKOFF, clock, timers: manual.timers },
    );
    loop.start(1);
    expect(manual.armed).toBe(1);
    loop.close();
    expect(manual.armed).toBe(0);
    expect(loop.finished).toBe(true);
    expect(loop.nextAttemptAt).toBeNull();
    manual.advance(120_000);
    await settle();
    expect(attempts).toBe(0);
  });

  it('ignores the outcome of an attempt that was running at close(), and arms no new timer', async () => {
    const clock = manualClock(0);
    const manual = manualTimers(clock);
    let fail: (error: Error) => void = () => undefined;
    const onFailure: unknown[] = [];
    const onSuccess: unknown[] = [];
    const loop = new RetryLoop(() => new Promise<string>((_resolve, reject) => (fail = reject)), {
      backoff: DISCOVERY_BACKOFF,
      clock,
      timers: manual.timers,
      onFailure: (error) => onFailure.push(error),
      onSuccess: (value) => onSuccess.push(value),
    });
    loop.start();
    loop.close();
    fail(new Error('timed out'));
    await settle();
    expect(onFailure).toEqual([]);
    expect(onSuccess).toEqual([]);
    expect(manual.armed).toBe(0);
  });
});
