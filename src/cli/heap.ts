import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 may let the old generation grow past what survived the last full collection, in
 * percent. Left to itself V8 keeps that margin small for a process whose old generation fills
 * slowly, as a gateway's does (about 25 MB live, a little of every request promoted): measured at
 * half the HTTP gateway's saturating load, a mark-compact came about every second, each 15–20 ms
 * of marking steps and pauses on the one thread that serves every request, and each left a queue
 * of a few hundred requests behind it (p99 15–20 ms against 3–5 ms between them). With 300 the
 * same load sees one every 25–30 s, for an old generation of about 45 MB at most.
 */
export const HEAP_GROWING_PERCENT = 300;

/**
 * The V8 flag {@link tuneHeapForGateway} sets, or null when the process's own command line
 * (`node --heap-growing-percent=N ...`) chose a value already: the operator's choice wins.
 */
export function heapGrowingFlag(execArgv: readonly string[]): string | null {
  const chosen = execArgv.some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg));
  return chosen ? null : `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}

/**
 * Applies {@link heapGrowingFlag} to this process. V8 reads the value each time it sizes the heap
 * after a collection, so setting it after start-up takes effect (measured; the heap size flags
 * read at start-up, such as `--initial-old-space-size`, do not).
 */
export function tuneHeapForGateway(execArgv: readonly string[] = process.execArgv): void {
  const flag = heapGrowingFlag(execArgv);
  if (flag !== null) setFlagsFromString(flag);
}
