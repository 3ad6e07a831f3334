import { TollgateError } from '../core/index.js';
import { toOcsf } from './ocsf.js';
import type { OcsfOptions } from './ocsf.js';
import { compileFilter, matchesRecord } from './query-filter.js';
import type { RecordFilter } from './query-filter.js';
import { parseRecord } from './record.js';
import { listSegments, readFrames } from './segment-reader.js';
import { nodeStoreFs } from './store/file-io.js';
import type { StoreFs } from './store/file-io.js';

export const EXPORT_FORMATS = ['jsonl', 'ocsf'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions extends RecordFilter, OcsfOptions {
  readonly dir: string;
  /** `jsonl`: each record's canonical JSON, one per line. `ocsf`: one OCSF 1.8.0 event per line (see `ocsf`). */
  readonly format: ExportFormat;
  readonly fs?: StoreFs;
}

/**
 * `tollgate audit export`: every record (or those the filter selects), oldest first, as lines of
 * JSON. Streams the segments chunk by chunk and yields the text a chunk at a time, so memory
 * does not grow with the log. A record that is not well-formed, or out of its place, stops the
 * export with `TG_ERR_AUDIT_TAMPERED` (an export is evidence; it never skips silently); an
 * unfinished write at the very end of the log is left out, as the store would cut it.
 */
export async function* exportLog(options: ExportOptions): AsyncGenerator<string> {
  const fs = options.fs ?? nodeStoreFs;
  if (!(EXPORT_FORMATS as readonly string[]).includes(options.format)) {
    throw new TollgateError('TG_ERR_USAGE', `--format must be ${EXPORT_FORMATS.join(' or ')}, not "${String(options.format)}"`);
  }
  if ((await fs.statPath(options.dir)) === null) throw new TollgateError('TG_ERR_USAGE', `there is no audit directory at ${options.dir}; pass the audit.dir of the gateway`);
  const filter = compileFilter(options);
  const filtering = hasCriteria(options);
  const ocsfOptions: OcsfOptions = options.productVersion === undefined ? {} : { productVersion: options.productVersion };
  const decoder = new TextDecoder();
  const segments = await listSegments(fs, options.dir);
  let seq = 0;
  for (let s = 0; s < segments.length; s++) {
    const segment = segments[s]!;
    if (segment.firstSeq !== seq) throw tampered(seq, `segment ${segment.name} does not start at seq ${seq}`);
    for await (const item of readFrames(fs, segment, { last: s === segments.length - 1 })) {
      if (item.type === 'end') {
        if (item.damage !== null && item.damage.torn === null) throw tampered(seq, `the frame at ${segment.name} byte ${item.damage.offset} is damaged (${item.damage.problem})`);
        break;
      }
      let out = '';
      for (const bytes of item.records) {
        const parsed = parseRecord(bytes);
        const problem = !parsed.ok ? `the record is not well-formed (${parsed.reason}: ${parsed.detail})` : parsed.record.seq !== seq ? `the record in this place says seq ${parsed.record.seq}` : null;
        if (problem !== null || !parsed.ok) {
          // What came before the bad record is good evidence: hand it out first.
          if (out !== '') yield out;
          throw tampered(seq, problem ?? '');
        }
        seq += 1;
        const json = decoder.decode(bytes);
        if (filtering && !matchesRecord(filter, parsed.record, json)) continue;
        out += options.format === 'jsonl' ? `${json}\n` : `${JSON.stringify(toOcsf(parsed.record, ocsfOptions))}\n`;
      }
      if (out !== '') yield out;
    }
  }
}

function hasCriteria(filter: RecordFilter): boolean {
  const { user, resource, effect, kind, sessionId, since, until, text } = filter;
  return [user, resource, effect, kind, sessionId, since, until, text].some((v) => v !== undefined);
}

function tampered(seq: number, detail: string): TollgateError {
  return new TollgateError('TG_ERR_AUDIT_TAMPERED', `the export stopped at seq ${seq}: ${detail}; run "tollgate audit verify" for the full report`, { details: { seq } });
}
