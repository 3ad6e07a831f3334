export { ERROR_CODES, TollgateError, isTollgateError } from './errors.js';
export type { ErrorCode, TollgateErrorOptions } from './errors.js';
export { silentLogger } from './logger.js';
export type { Logger, LogFn } from './logger.js';
export { systemClock, manualClock } from './clock.js';
export type { Clock } from './clock.js';
export { deepFreeze } from './types.js';
export type { Principal } from './types.js';
export { parseDuration, parseSize, requireDuration } from './durations.js';
