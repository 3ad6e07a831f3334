import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatCheckpointBody,
  generateSignerKey,
  noteKeyId,
  openCheckpoint,
  openNote,
  parseCheckpointBody,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signNote,
} from '../../../src/audit/index.js';
import { nativeEd25519Signing } from '../../../src/audit/native-signing.js';
import { parseSignerKeyWith } from '../../../src/audit/note.js';

// The published example key pair and note of the signed-note format (C2SP signed-note, as
// first published with the Go reference implementation golang.org/x/mod/sumdb/note).
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG = '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG = '\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';
const peter = parseVerifierKey(PETER_VKEY);
const enoch = parseVerifierKey(ENOCH_VKEY);

describe('keys', () => {
  it('parses the example keys and derives the verifier key from the signer key', () => {
    const signer = parseSignerKey(PETER_SKEY);
    expect(signer.name).toBe('PeterNeumann');
    expect(signer.keyId).toBe(0xc74f20a3);
    expect(signer.verifierKey).toBe(PETER_VKEY);
    expect(peter).toMatchObject({ name: 'PeterNeumann', keyId: 0xc74f20a3 });
    expect(noteKeyId('PeterNeumann', peter.publicKey)).toBe(0xc74f20a3);
  });

  it('refuses every truncation and every single-byte change of the example keys', () => {
    for (const [key, parse] of [
      [PETER_VKEY, parseVerifierKey],
      [PETER_SKEY, parseSignerKey],
    ] as const) {
      const accepted: string[] = [];
      for (let i = 0; i <= key.length; i++) {
        for (let j = i + 1; j <= key.length; j++) {
          if (i === 0 && j === key.length) continue;
          const part = key.slice(i, j);
          try {
            parse(part);
            accepted.push(part);
          } catch (error) {
            expect(error).toMatchObject({ code: 'TG_ERR_AUDIT_KEY_INVALID' });
          }
        }
      }
      for (let i = 0; i < key.length; i++) {
        const changed = key.slice(0, i) + String.fromCharCode(key.charCodeAt(i) + 1) + key.slice(i + 1);
        try {
          parse(changed);
          accepted.push(changed);
        } catch (error) {
          expect(error).toMatchObject({ code: 'TG_ERR_AUDIT_KEY_INVALID' });
        }
      }
      expect(accepted).toEqual([]);
    }
  });

  it('refuses a key of the wrong length or algorithm even with a matching key ID', () => {
    expect(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==')).toThrow(/malformed/);
    expect(() => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')).toThrow(/malformed/);
  });

  it('generates key pairs that sign and verify each other, in the documented text forms', () => {
    const { signerKey, verifierKey } = generateSignerKey('audit.example.com/log');
    expect(signerKey).toMatch(/^PRIVATE\+KEY\+audit\.example\.com\/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{43}[A-Za-z0-9+/=]$/);
    expect(verifierKey).toMatch(/^audit\.example\.com\/log\+[0-9a-f]{8}\+/);
    const signer = parseSignerKey(signerKey);
    const verifier = parseVerifierKey(verifierKey);
    expect(signer.verifierKey).toBe(verifierKey);
    const message = new TextEncoder().encode('hi');
    const signature = signer.sign(message);
    expect(verifier.verify(message, signature)).toBe(true);
    signature[0]! ^= 1;
    expect(verifier.verify(message, signature)).toBe(false);
    expect(generateSignerKey('x').signerKey).not.toBe(generateSignerKey('x').signerKey);
  });

  it('derives the same keys from the same seed', () => {
    const seed = new Uint8Array(32).fill(7);
    expect(generateSignerKey('n', seed)).toEqual(generateSignerKey('n', seed));
  });

  it.each(['', 'has space', 'a+b', 'tab\there', 'nbsp\u00a0x', 'line\u2028sep'])('refuses the key name %j', (name) => {
    expect(() => generateSignerKey(name)).toThrow(expect.objectContaining({ code: 'TG_ERR_AUDIT_KEY_INVALID' }));
  });
});

describe('signNote', () => {
  it('reproduces the published example note byte for byte', () => {
    expect(signNote(TEXT, parseSignerKey(PETER_SKEY))).toBe(`${TEXT}\n${PETER_SIG}`);
  });

  it.each(['abc', '', 'a\u0001b\n'])('refuses the text %j', (text) => {
    expect(() => signNote(text, parseSignerKey(PETER_SKEY))).toThrow();
  });

  it('signs with several keys, one line each', () => {
    const a = parseSignerKey(generateSignerKey('a').signerKey);
    const b = parseSignerKey(generateSignerKey('b').signerKey);
    const note = signNote('hello\n', [a, b]);
    const opened = openNote(note, [parseVerifierKey(a.verifierKey), parseVerifierKey(b.verifierKey)]);
    expect(opened.ok && opened.verified.map((s) => s.name)).toEqual(['a', 'b']);
  });
});

describe('openNote', () => {
  it('opens the published example with the published verifier key', () => {
    const result = openNote(`${TEXT}\n${PETER_SIG}`, [peter]);
    expect(result).toEqual({
      ok: true,
      text: TEXT,
      verified: [{ name: 'PeterNeumann', keyId: 0xc74f20a3, base64: PETER_SIG.slice(15, -1) }],
      unverified: [],
    });
    expect(openNote(new TextEncoder().encode(`${TEXT}\n${PETER_SIG}`), [peter]).ok).toBe(true);
  });

  it('ignores signatures of unknown keys but needs one known, valid signature', () => {
    const both = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
    const one = openNote(both, [peter]);
    expect(one.ok && one.verified.map((s) => s.name)).toEqual(['PeterNeumann']);
    expect(one.ok && one.unverified.map((s) => s.name)).toEqual(['EnochRoot']);
    const two = openNote(both, [peter, enoch]);
    expect(two.ok && two.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    expect(openNote(both, [])).toMatchObject({ ok: false, reason: 'unverified' });
  });

  it('ignores a signature that shares only the name or only the key ID of a known key', () => {
    const otherId = PETER_SIG.replace('x08go', 'x08gp');
    expect(openNote(`${TEXT}\n${otherId}`, [peter])).toMatchObject({ ok: false, reason: 'unverified' });
    const otherName = PETER_SIG.replace('PeterNeumann', 'PeterNeuman');
    expect(openNote(`${TEXT}\n${otherName}`, [peter])).toMatchObject({ ok: false, reason: 'unverified' });
  });

  it('rejects the whole note when a known key signature does not verify', () => {
    const corrupted = `${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`;
    expect(openNote(`${TEXT}\n${corrupted}`, [peter])).toMatchObject({ ok: false, reason: 'invalid-signature' });
    expect(openNote(`${TEXT.replace('answer', 'answers')}\n${PETER_SIG}`, [peter])).toMatchObject({ ok: false, reason: 'invalid-signature' });
  });

  it('counts a repeated signature once', () => {
    const result = openNote(`${TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}`, [peter]);
    expect(result.ok && result.verified).toHaveLength(1);
    expect(result.ok && result.unverified).toHaveLength(1);
  });

  it('refuses to pick between two verifiers with the same name and key ID', () => {
    expect(openNote(`${TEXT}\n${ENOCH_SIG}`, [enoch, peter, enoch])).toMatchObject({ ok: false, reason: 'ambiguous-key' });
    expect(openNote(`${TEXT}\n${PETER_SIG}`, [enoch, peter, enoch]).ok).toBe(true);
  });

  it('rejects more than 100 signatures', () => {
    expect(openNote(`${TEXT}\n${PETER_SIG.repeat(101)}`, [peter])).toMatchObject({ ok: false, reason: 'malformed' });
    expect(openNote(`${TEXT}\n${PETER_SIG.repeat(100)}`, [peter]).ok).toBe(true);
  });

  it.each([
    ['text alone', TEXT],
    ['text and a blank line', `${TEXT}\n`],
    ['a signature line without newline', `${TEXT}\n${PETER_SIG.slice(0, -1)}`],
    ['a control character', `\u0001${TEXT}\n${PETER_SIG}`],
    ['a name with a space', `${TEXT}\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`],
    ['a line after the signatures', `${TEXT}\n${PETER_SIG}Unexpected line.\n`],
    ['a hyphen instead of the em dash', `${TEXT}\n${PETER_SIG.replace('\u2014', '-')}`],
    ['a signature too short for a key ID', `${TEXT}\n\u2014 PeterNeumann AAAA\n`],
    ['a signature that is not base64', `${TEXT}\n\u2014 PeterNeumann x08go!\n`],
    ['a carriage return', `${TEXT.replace('\n', '\r\n')}\n${PETER_SIG}`],
  ])('rejects a malformed note: %s', (_what, note) => {
    expect(openNote(note, [peter])).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('rejects invalid UTF-8', () => {
    const bytes = new TextEncoder().encode(`${TEXT}\n${PETER_SIG}`);
    const bad = new Uint8Array([0xff, ...bytes]);
    expect(openNote(bad, [peter])).toMatchObject({ ok: false, reason: 'malformed' });
  });
});

describe('checkpoints (C2SP tlog-checkpoint)', () => {
  const rootHash = Uint8Array.from({ length: 32 }, (_, i) => i);

  it('formats the body as origin, size and base64 root, each ending in a newline', () => {
    expect(formatCheckpointBody({ origin: 'example.com/log', size: 20852163, rootHash })).toBe(
      'example.com/log\n20852163\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n',
    );
  });

  it('round-trips through parseCheckpointBody, extension lines included', () => {
    for (const checkpoint of [
      { origin: 'o', size: 0, rootHash },
      { origin: 'tollgate.example.com/audit', size: Number.MAX_SAFE_INTEGER, rootHash },
      { origin: 'o', size: 7, rootHash, extensions: ['ext one', 'ext two'] },
    ]) {
      expect(parseCheckpointBody(formatCheckpointBody(checkpoint))).toEqual({ ok: true, checkpoint });
    }
  });

  it.each([
    ['two lines', 'o\n1\n'],
    ['no final newline', 'o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='],
    ['an empty origin', '\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n'],
    ['a leading zero', 'o\n01\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n'],
    ['a signed size', 'o\n+1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n'],
    ['a size beyond 2^53', 'o\n9007199254740993\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n'],
    ['a short root', 'o\n1\nAAEC\n'],
    ['an empty extension line', 'o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n'],
  ])('rejects a body with %s', (_what, text) => {
    expect(parseCheckpointBody(text).ok).toBe(false);
  });

  it('signs and opens a checkpoint, checking the origin', () => {
    const { signerKey, verifierKey } = generateSignerKey('tollgate.example.com/audit');
    const signer = parseSignerKey(signerKey);
    const verifier = parseVerifierKey(verifierKey);
    const checkpoint = { origin: 'tollgate.example.com/audit', size: 42, rootHash };
    const note = signCheckpoint(checkpoint, signer);
    expect(note.startsWith('tollgate.example.com/audit\n42\n')).toBe(true);
    expect(openCheckpoint(note, [verifier], { origin: 'tollgate.example.com/audit' })).toMatchObject({ ok: true, checkpoint });
    expect(openCheckpoint(note, [verifier], { origin: 'other.example.com/audit' })).toMatchObject({ ok: false, reason: 'wrong-origin' });
    expect(openCheckpoint(note, [peter])).toMatchObject({ ok: false, reason: 'unverified' });
    expect(openCheckpoint(signNote('not\na checkpoint\n', signer), [verifier])).toMatchObject({ ok: false, reason: 'bad-checkpoint' });
  });
});

describe('signing with Node\'s crypto', () => {
  it('gives the same bytes as @noble/curves for any seed and message, and the published signature', () => {
    expect(signNote(TEXT, parseSignerKeyWith(PETER_SKEY))).toBe(`${TEXT}\n${PETER_SIG}`);
    expect(signNote(TEXT, parseSignerKey(PETER_SKEY))).toBe(`${TEXT}\n${PETER_SIG}`);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), (seed, message) => {
        const { signerKey } = generateSignerKey('prop.tollgate', seed);
        const native = parseSignerKey(signerKey).sign(message);
        expect(Buffer.from(native).toString('hex')).toBe(Buffer.from(parseSignerKeyWith(signerKey).sign(message)).toString('hex'));
        expect(nativeEd25519Signing(seed)(message)).toEqual(native);
      }),
      { numRuns: 200 },
    );
  });
});
