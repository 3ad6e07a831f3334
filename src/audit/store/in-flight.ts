import { FRAME_OVERHEAD_BYTES, MAX_FRAME_RECORD_BYTES } from './frame.js';

/**
 * How much the writer has on its way to disk at once, which bounds what a crash can leave
 * unfinished at the end of the log: the writer and recovery both rely on these numbers.
 */

/**
 * Batch writes on their way to disk at once. A second write starts while the first syncs, since
 * the device serves two synchronous writes in little more than the time of one (measured here:
 * 7,000 18 KiB O_DSYNC writes/s two at a time against 4,400 one at a time).
 */
export const WRITES_IN_FLIGHT = 2;

/** A batch takes no more records once its frames reach this size (it always takes one). */
export const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * The most bytes a crash can leave unfinished at the end of the last segment: every batch in
 * flight, each at most {@link MAX_BATCH_BYTES} plus the one frame that crossed that size.
 */
export const UNFINISHED_TAIL_MAX_BYTES = WRITES_IN_FLIGHT * (MAX_BATCH_BYTES + MAX_FRAME_RECORD_BYTES + FRAME_OVERHEAD_BYTES);
