import { describe, expect, it } from 'vitest';
import {
  bytesToHex,
  CompactRange,
  decodeBase64,
  encodeBase64,
  formatProof,
  generateSignerKey,
  inclusionProof,
  parseProof,
  parseSignerKey,
  parseVerifierKey,
  sealRecord,
  signCheckpoint,
  TLOG_PROOF_HEADER,
  verifyProofBundle,
} from '../../../src/audit/index.js';
import { sampleEvent, sealChain } from '../../helpers/audit-records.js';

const LOG = 'tollgate.example.com/audit';
const keys = generateSignerKey(LOG);
const signer = parseSignerKey(keys.signerKey);
const verifier = parseVerifierKey(keys.verifierKey);
const otherKeys = generateSignerKey(LOG);

const log = sealChain(LOG, 13);
const leaves = log.map((r) => r.leafHash);
const range = new CompactRange();
leaves.forEach((l) => range.append(l));
const checkpoint = signCheckpoint({ origin: LOG, size: 13, rootHash: range.root() }, signer);

function proofFor(seq: number, options: { extra?: boolean } = {}): string {
  return formatProof({
    index: seq,
    proof: inclusionProof(seq, 13, leaves),
    checkpoint,
    leafHash: leaves[seq]!,
    ...(options.extra === false ? {} : { extra: log[seq]!.bytes }),
  });
}

describe('formatProof / parseProof (C2SP tlog-proof)', () => {
  it('writes the header, extra, index, one hash per line, a blank line and the checkpoint', () => {
    const text = proofFor(6);
    const hashes = inclusionProof(6, 13, leaves).map(encodeBase64);
    expect(text).toBe([TLOG_PROOF_HEADER, `extra ${encodeBase64(log[6]!.bytes)}`, 'index 6', ...hashes, '', checkpoint].join('\n'));
    expect(TLOG_PROOF_HEADER).toBe('c2sp.org/tlog-proof@v1');
  });

  it('round-trips, with and without extra data', () => {
    for (const extra of [true, false]) {
      const parsed = parseProof(proofFor(12, { extra }));
      expect(parsed).toEqual({
        ok: true,
        bundle: { index: 12, proof: inclusionProof(12, 13, leaves), checkpoint, ...(extra ? { extra: log[12]!.bytes } : {}) },
      });
    }
  });

  it('parses the layout of the published example proof', () => {
    const example = [
      'c2sp.org/tlog-proof@v1',
      'extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ',
      'index 73894',
      'gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=',
      'B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=',
      'EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=',
      'RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=',
      'AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=',
      '',
      'example.com/fancylog',
      '109482',
      'sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=',
      '',
      '\u2014 example.com/fancylog hI2DJw[...]1roloI=',
      '\u2014 witness1.example mJirIklj[...]qY9v2B/5bg==',
      '\u2014 witness2.example TnKKVHLX[...]xwYwrSjgow==',
      '\u2014 witness3.example S4X82uH5[...]3oEcROGLFQ==',
      '',
    ].join('\n');
    const parsed = parseProof(example);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.bundle.index).toBe(73894);
    expect(new TextDecoder().decode(parsed.bundle.extra?.subarray(0, 30))).toBe('age-v1.2.1-darwin-arm64.tar.gz');
    expect(parsed.bundle.proof.map(bytesToHex)[0]).toBe(bytesToHex(decodeBase64('gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=')!));
    expect(parsed.bundle.proof).toHaveLength(5);
    expect(parsed.bundle.checkpoint.startsWith('example.com/fancylog\n109482\n')).toBe(true);
  });

  it('refuses to format a proof that does not lead to the checkpoint root', () => {
    expect(() => formatProof({ index: 6, proof: inclusionProof(5, 13, leaves), checkpoint, leafHash: leaves[6]! })).toThrow(
      expect.objectContaining({ code: 'TG_ERR_INTERNAL' }),
    );
  });

  it.each<[string, (text: string) => string]>([
    ['a wrong header', (t) => t.replace('tlog-proof@v1', 'tlog-proof@v2')],
    ['a missing index line', (t) => t.replace(/index \d+\n/, '')],
    ['an index with a leading zero', (t) => t.replace('index 6', 'index 06')],
    ['a negative index', (t) => t.replace('index 6', 'index -6')],
    ['extra that is not base64', (t) => t.replace('extra ', 'extra !')],
    ['a short hash line', (t) => t.replace(/\nindex 6\n[^\n]+\n/, '\nindex 6\nAAAA\n')],
    ['no blank line before the checkpoint', (t) => t.replace(/\n\n/, '\n')],
    ['no checkpoint', (t) => t.slice(0, t.indexOf('\n\n') + 2)],
  ])('rejects %s', (_what, change) => {
    expect(parseProof(change(proofFor(6))).ok).toBe(false);
  });
});

describe('verifyProofBundle', () => {
  it('verifies the record in the proof’s extra line against the signed checkpoint', () => {
    for (let seq = 0; seq < 13; seq++) {
      const result = verifyProofBundle(proofFor(seq), [verifier], undefined, { origin: LOG });
      expect(result).toMatchObject({ ok: true, index: seq, record: log[seq]!.record, checkpoint: { origin: LOG, size: 13 } });
    }
  });

  it('verifies record bytes given separately', () => {
    expect(verifyProofBundle(proofFor(3, { extra: false }), [verifier], log[3]!.bytes).ok).toBe(true);
    expect(verifyProofBundle(proofFor(3, { extra: false }), [verifier])).toMatchObject({ ok: false, reason: 'no-record' });
  });

  it('rejects another record than the one proven', () => {
    expect(verifyProofBundle(proofFor(3), [verifier], log[4]!.bytes)).toMatchObject({ ok: false, reason: 'not-included' });
    const altered = sealRecord({ ...sampleEvent(3), resource: 'elsewhere' }, { logId: LOG, seq: 3, prev: log[3]!.record.prev, timeMs: 0 });
    expect(verifyProofBundle(proofFor(3), [verifier], altered.bytes)).toMatchObject({ ok: false, reason: 'not-included' });
  });

  it('rejects a changed index or proof hash', () => {
    expect(verifyProofBundle(proofFor(3).replace('index 3', 'index 2'), [verifier])).toMatchObject({ ok: false, reason: 'not-included' });
    const lines = proofFor(3).split('\n');
    const hashLine = lines.findIndex((l) => l.startsWith('index ')) + 1;
    const hash = decodeBase64(lines[hashLine]!)!;
    hash[0]! ^= 1;
    lines[hashLine] = encodeBase64(hash);
    expect(verifyProofBundle(lines.join('\n'), [verifier])).toMatchObject({ ok: false, reason: 'not-included' });
    const dropped = proofFor(3).split('\n');
    dropped.splice(hashLine, 1);
    expect(verifyProofBundle(dropped.join('\n'), [verifier])).toMatchObject({ ok: false, reason: 'not-included' });
  });

  it('rejects a checkpoint that is not signed by a trusted key, altered, or of another log', () => {
    expect(verifyProofBundle(proofFor(3), [parseVerifierKey(otherKeys.verifierKey)])).toMatchObject({ ok: false, reason: 'unverified' });
    expect(verifyProofBundle(proofFor(3).replace(`${LOG}\n13\n`, `${LOG}\n14\n`), [verifier])).toMatchObject({ ok: false, reason: 'invalid-signature' });
    expect(verifyProofBundle(proofFor(3), [verifier], undefined, { origin: 'other.example.com/audit' })).toMatchObject({ ok: false, reason: 'wrong-origin' });
  });

  it('rejects an included entry that is not a record with that seq', () => {
    // A tree whose entry 1 is a record claiming seq 5: inclusion holds, the record does not fit.
    const entries = [log[0]!, log[5]!];
    const tree = new CompactRange();
    entries.forEach((e) => tree.append(e.leafHash));
    const cp = signCheckpoint({ origin: LOG, size: 2, rootHash: tree.root() }, signer);
    const text = formatProof({ index: 1, proof: inclusionProof(1, 2, entries.map((e) => e.leafHash)), checkpoint: cp, extra: log[5]!.bytes });
    expect(verifyProofBundle(text, [verifier])).toMatchObject({ ok: false, reason: 'invalid-record' });
  });

  it('rejects malformed proofs as such', () => {
    expect(verifyProofBundle('hello\n', [verifier])).toMatchObject({ ok: false, reason: 'malformed-proof' });
  });
});
