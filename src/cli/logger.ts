import { pino } from 'pino';
import type { Logger } from '../core/index.js';

/**
 * The process's one operational logger: JSON lines on stderr (stdout stays clean for command
 * output such as a minted token). Anything that could carry a credential is redacted as a second
 * guard; rooms already never log tokens, cookies, passwords or query strings.
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { service: 'tollgate' },
      redact: {
        paths: ['password', 'token', 'cookie', 'authorization', '*.password', '*.token', '*.cookie', '*.authorization', 'headers.cookie', 'headers.authorization'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
