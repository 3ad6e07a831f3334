import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8Encode } from './bytes.js';

/**
 * The domain-separation prefix of the genesis value. The text is part of the log format: changing
 * it breaks every existing log.
 */
export const GENESIS_PREFIX = 'tollgate/audit/genesis\n';

/**
 * The `prev` of record 0 of the log `logId`: lowercase hex of
 * SHA-256(UTF-8("tollgate/audit/genesis\n" ‖ logId)).
 *
 * It cannot collide with a real leaf hash (those hash a 0x00-prefixed record, this hashes text
 * starting with "t"), and it binds the first record to its log, so the records of one log cannot
 * be replayed as the start of another.
 */
export function genesisPrev(logId: string): string {
  return bytesToHex(sha256(utf8Encode(GENESIS_PREFIX + logId)));
}
