import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sealer, deriveKey, keyIdOf } from '../../../src/identity/seal.js';

const KEY_A = 'a'.repeat(32);
const KEY_B = 'b'.repeat(40);
const KEY_C = 'c'.repeat(32);

/** Replaces the character at `index` of part `part` with another base64url character. */
function flip(sealed: string, part: number, index = 0): string {
  const parts = sealed.split('.');
  const text = parts[part] ?? '';
  const replaced = text[index] === 'A' ? 'B' : 'A';
  parts[part] = text.slice(0, index) + replaced + text.slice(index + 1);
  return parts.join('.');
}

describe('Sealer', () => {
  it('round-trips data and hides it', () => {
    const sealer = new Sealer([KEY_A], 'session');
    const sealed = sealer.seal({ sub: 'alice', groups: ['engineering'] });
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('alice');
    expect(sealer.open(sealed)).toEqual({ ok: true, data: { sub: 'alice', groups: ['engineering'] }, sealedWithCurrentKey: true });
  });

  it('uses a fresh IV for every seal', () => {
    const sealer = new Sealer([KEY_A], 'session');
    expect(sealer.seal({ x: 1 })).not.toBe(sealer.seal({ x: 1 }));
  });

  it('names the sealing key by a key id derived from the secret', () => {
    const sealed = new Sealer([KEY_A, KEY_B], 'session').seal(1);
    expect(sealed.split('.')[1]).toBe(keyIdOf(KEY_A));
    expect(keyIdOf(KEY_A)).not.toBe(keyIdOf(KEY_B));
  });

  it('opens values sealed by an older key and reports that it was not the current one', () => {
    const old = new Sealer([KEY_A], 'session').seal({ n: 1 });
    const rotated = new Sealer([KEY_B, KEY_A], 'session');
    expect(rotated.open(old)).toEqual({ ok: true, data: { n: 1 }, sealedWithCurrentKey: false });
    expect(rotated.seal(2).split('.')[1]).toBe(keyIdOf(KEY_B));
  });

  it('reports an unknown key once the sealing key is retired', () => {
    const old = new Sealer([KEY_A], 'session').seal({ n: 1 });
    expect(new Sealer([KEY_B, KEY_C], 'session').open(old)).toEqual({ ok: false, reason: 'unknown-key' });
  });

  it('separates purposes: a session value does not open as a pending login', () => {
    const sealed = new Sealer([KEY_A], 'session').seal({ n: 1 });
    expect(new Sealer([KEY_A], 'pending-login').open(sealed)).toEqual({ ok: false, reason: 'tampered' });
  });

  it.each([
    ['the IV', 2],
    ['the ciphertext', 3],
  ])('detects tampering with %s', (_name, part) => {
    const sealer = new Sealer([KEY_A], 'session');
    expect(sealer.open(flip(sealer.seal({ admin: false }), part, 2))).toEqual({ ok: false, reason: 'tampered' });
  });

  it('detects a truncated tag', () => {
    const sealer = new Sealer([KEY_A], 'session');
    const sealed = sealer.seal({ admin: false });
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3] ?? '', 'base64url');
    parts[3] = body.subarray(0, body.length - 1).toString('base64url');
    expect(sealer.open(parts.join('.'))).toEqual({ ok: false, reason: 'tampered' });
  });

  it('binds the key id: moving a value under another configured key id fails', () => {
    const sealer = new Sealer([KEY_A, KEY_B], 'session');
    const parts = sealer.seal({ n: 1 }).split('.');
    parts[1] = keyIdOf(KEY_B);
    expect(sealer.open(parts.join('.'))).toEqual({ ok: false, reason: 'tampered' });
  });

  it('rejects a value encrypted under the right key but without the expected associated data', () => {
    // A byte fixture built by hand: AES-256-GCM with the session key of KEY_A but no AAD.
    const key = deriveKey(KEY_A, 'tollgate.session.v1');
    const iv = Buffer.alloc(12, 7);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const body = Buffer.concat([cipher.update('{"n":1}', 'utf8'), cipher.final(), cipher.getAuthTag()]);
    const forged = `v1.${keyIdOf(KEY_A)}.${iv.toString('base64url')}.${body.toString('base64url')}`;
    expect(new Sealer([KEY_A], 'session').open(forged)).toEqual({ ok: false, reason: 'tampered' });
  });

  it.each([
    '',
    'v1',
    'v1.a.b',
    'v2.AAAAAAAA.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA',
    'v1.short.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA',
    'v1.AAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA',
    'v1.AAAAAAAA.AAAAAAAAAAAAAAAA.AAAA',
    'v1.AAAAAAAA.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA=',
    'v1.AAAAAAAA.AAAAAAAAAAAAAAA+.AAAAAAAAAAAAAAAAAAAAAA',
    'v1.AAAAAAAA.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.extra',
    `v1.AAAAAAAA.AAAAAAAAAAAAAAAA.${'A'.repeat(9000)}`,
  ])('reports %j as malformed', (value) => {
    expect(new Sealer([KEY_A], 'session').open(value)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('derives independent keys per purpose and per secret', () => {
    const keys = [deriveKey(KEY_A, 'tollgate.session.v1'), deriveKey(KEY_A, 'tollgate.pending-login.v1'), deriveKey(KEY_B, 'tollgate.session.v1')];
    expect(new Set(keys.map((key) => key.toString('hex'))).size).toBe(3);
    expect(keys.every((key) => key.length === 32)).toBe(true);
  });
});
