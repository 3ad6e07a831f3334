import { openFileStore, parseSignerKey, type AuditStore, type AuditStoreObserver } from '../audit/index.js';
import type { TollgateConfig } from '../config/index.js';
import type { Logger } from '../core/index.js';

/** Opens the audit store the config describes (DESIGN.md §2 "Audit log"). */
export function openConfiguredAuditStore(
  config: TollgateConfig,
  logger: Logger,
  observer?: AuditStoreObserver,
): Promise<AuditStore> {
  const audit = config.audit;
  return openFileStore({
    dir: audit.dir,
    logId: audit.log_id,
    signer: parseSignerKey(audit.signing_key),
    checkpointIntervalMs: audit.checkpoint_interval,
    durability: audit.durability,
    syncIntervalMs: audit.sync_interval,
    segmentSize: audit.segment_size,
    groupCommit: { maxRecords: audit.group_commit.max_records, maxDelayMs: audit.group_commit.max_delay },
    appendTimeoutMs: audit.append_timeout,
    logger: logger.child({ component: 'audit' }),
    ...(observer === undefined ? {} : { observer }),
  });
}
