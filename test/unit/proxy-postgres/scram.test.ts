import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ScramClient,
  chooseScramChannelBinding,
  md5Password,
  preparePassword,
  tlsServerEndPointHash,
  type ScramKeys,
} from '../../../src/proxy/postgres/protocol/index.js';

const ascii = (text: string) => Buffer.from(text, 'utf8');

// RFC 7677 §3: the SCRAM-SHA-256 example exchange.
const RFC7677 = {
  username: 'user',
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

function rfcClient(extra: Partial<ConstructorParameters<typeof ScramClient>[0]> = {}): ScramClient {
  return new ScramClient({ username: RFC7677.username, password: RFC7677.password, clientNonce: RFC7677.clientNonce, ...extra });
}

describe('SCRAM-SHA-256 client', () => {
  it('reproduces the RFC 7677 test vector and verifies the server signature', async () => {
    const client = rfcClient();
    expect(client.mechanism).toBe('SCRAM-SHA-256');
    expect(client.clientFirstMessage.toString()).toBe(RFC7677.clientFirst);
    const final = await client.handleServerFirst(ascii(RFC7677.serverFirst));
    expect(final).toEqual({ ok: true, value: ascii(RFC7677.clientFinal) });
    expect(client.handleServerFinal(ascii(RFC7677.serverFinal))).toEqual({ ok: true, value: undefined });
  });

  it('speaks the PostgreSQL flavour by default: empty user name, n,, header, 18-byte random nonce', () => {
    const first = new ScramClient({ password: 'pw' }).clientFirstMessage.toString();
    expect(first).toMatch(/^n,,n=,r=[A-Za-z0-9+/]{24}$/);
    const other = new ScramClient({ password: 'pw' }).clientFirstMessage.toString();
    expect(other).not.toBe(first);
  });

  it('escapes , and = in a user name (RFC 5802 §5.1)', () => {
    const client = new ScramClient({ username: 'a,b=c', password: 'pw', clientNonce: 'abc' });
    expect(client.clientFirstMessage.toString()).toBe('n,,n=a=2Cb=3Dc,r=abc');
  });

  it('rejects a wrong server signature', async () => {
    const client = rfcClient();
    await client.handleServerFirst(ascii(RFC7677.serverFirst));
    const outcome = client.handleServerFinal(ascii('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G8='));
    expect(outcome).toEqual({ ok: false, reason: 'the server signature does not match: the server does not know the password' });
  });

  it('rejects a non-canonical base64 signature, even one that decodes to the right bytes', async () => {
    const client = rfcClient();
    await client.handleServerFirst(ascii(RFC7677.serverFirst));
    expect(client.handleServerFinal(ascii('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=')).ok).toBe(false);
  });

  it('reports a server error and a malformed server-final', async () => {
    const failing = rfcClient();
    await failing.handleServerFirst(ascii(RFC7677.serverFirst));
    expect(failing.handleServerFinal(ascii('e=invalid-proof'))).toEqual({ ok: false, reason: 'the server reported SCRAM error "invalid-proof"' });
    const malformed = rfcClient();
    await malformed.handleServerFirst(ascii(RFC7677.serverFirst));
    expect(malformed.handleServerFinal(ascii('x=1')).ok).toBe(false);
    const truncated = rfcClient();
    await truncated.handleServerFirst(ascii(RFC7677.serverFirst));
    expect(truncated.handleServerFinal(ascii('v=6rri')).ok).toBe(false);
  });

  const badServerFirst: Record<string, string> = {
    'a nonce that does not extend the client nonce': 'r=someoneElse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    'a nonce equal to the client nonce': 'r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    'a mandatory extension': 'm=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    'attributes out of order': 's=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOxyz,i=4096',
    'a salt that is not base64': 'r=rOprNGfwEbeRWgbNEkqOxyz,s=***,i=4096',
    'an empty salt': 'r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096',
    'zero iterations': 'r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0',
    'too many iterations': 'r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000001',
    'a non-numeric iteration count': 'r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x',
    'an empty message': '',
  };
  for (const [name, serverFirst] of Object.entries(badServerFirst)) {
    it(`rejects a server-first with ${name}`, async () => {
      const outcome = await rfcClient().handleServerFirst(ascii(serverFirst));
      expect(outcome.ok).toBe(false);
    });
  }

  it('refuses to run the steps out of order', async () => {
    const client = rfcClient();
    expect(() => client.handleServerFinal(ascii(RFC7677.serverFinal))).toThrow(/before server-first/);
    await client.handleServerFirst(ascii(RFC7677.serverFirst));
    await expect(client.handleServerFirst(ascii(RFC7677.serverFirst))).rejects.toThrow(/twice/);
  });

  it('binds to the server certificate hash with SCRAM-SHA-256-PLUS', async () => {
    const certificateHash = createHash('sha256').update('certificate').digest();
    const client = rfcClient({ channelBinding: { kind: 'tls-server-end-point', certificateHash } });
    expect(client.mechanism).toBe('SCRAM-SHA-256-PLUS');
    expect(client.clientFirstMessage.toString()).toBe('p=tls-server-end-point,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const final = await client.handleServerFirst(ascii(RFC7677.serverFirst));
    const expectedBinding = Buffer.concat([ascii('p=tls-server-end-point,,'), certificateHash]).toString('base64');
    expect(final.ok && final.value.toString().startsWith(`c=${expectedBinding},r=`)).toBe(true);
    // The proof covers the binding, so it differs from the unbound exchange.
    expect(final.ok && final.value.toString()).not.toContain('p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
  });

  it("sends 'y' when TLS is up but the server offered no -PLUS mechanism", async () => {
    const client = rfcClient({ channelBinding: { kind: 'not-offered' } });
    expect(client.mechanism).toBe('SCRAM-SHA-256');
    expect(client.clientFirstMessage.toString()).toBe('y,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const final = await client.handleServerFirst(ascii(RFC7677.serverFirst));
    expect(final.ok && final.value.toString().startsWith('c=eSws,r=')).toBe(true);
  });

  it('uses the key cache: the second exchange takes its keys from it', async () => {
    const cache = new Map<string, ScramKeys>();
    const first = rfcClient({ keyCache: cache });
    await first.handleServerFirst(ascii(RFC7677.serverFirst));
    expect(first.handleServerFinal(ascii(RFC7677.serverFinal)).ok).toBe(true);
    expect(cache.size).toBe(1);
    const [key] = [...cache.keys()];
    cache.set(key as string, { clientKey: Buffer.alloc(32), serverKey: Buffer.alloc(32) });
    const second = rfcClient({ keyCache: cache });
    await second.handleServerFirst(ascii(RFC7677.serverFirst));
    expect(second.handleServerFinal(ascii(RFC7677.serverFinal)).ok).toBe(false);
    const otherPassword = rfcClient({ keyCache: cache, password: 'other' });
    await otherPassword.handleServerFirst(ascii(RFC7677.serverFirst));
    expect(cache.size).toBe(2);
  });
});

describe('choosing the channel binding', () => {
  const hash = Buffer.alloc(32, 1);
  it('binds when the server offers -PLUS and the certificate hash is known', () => {
    expect(chooseScramChannelBinding(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'], hash, true)).toEqual({
      ok: true,
      value: { kind: 'tls-server-end-point', certificateHash: hash },
    });
  });
  it("says 'y' over TLS without a -PLUS offer, 'n' without TLS or when binding is impossible or disabled", () => {
    expect(chooseScramChannelBinding(['SCRAM-SHA-256'], hash, true)).toEqual({ ok: true, value: { kind: 'not-offered' } });
    expect(chooseScramChannelBinding(['SCRAM-SHA-256'], null, false)).toEqual({ ok: true, value: { kind: 'none' } });
    expect(chooseScramChannelBinding(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'], null, true)).toEqual({ ok: true, value: { kind: 'none' } });
    expect(chooseScramChannelBinding(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'], hash, true, 'disable')).toEqual({ ok: true, value: { kind: 'none' } });
  });
  it('fails when binding is required but unavailable, or no mechanism fits', () => {
    expect(chooseScramChannelBinding(['SCRAM-SHA-256'], hash, true, 'require').ok).toBe(false);
    expect(chooseScramChannelBinding(['SCRAM-SHA-256-PLUS'], null, true).ok).toBe(false);
    expect(chooseScramChannelBinding(['OAUTHBEARER'], null, false).ok).toBe(false);
  });
});

/** A DER TLV, long-form length when needed. */
function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  const length =
    body.length < 0x80 ? Buffer.from([body.length]) : body.length < 0x100 ? Buffer.from([0x81, body.length]) : Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
}

function certificate(oidHex: string, tbsSize = 3): Buffer {
  const tbs = tlv(0x30, tlv(0x04, Buffer.alloc(tbsSize, 0x11)));
  const algorithm = tlv(0x30, tlv(0x06, Buffer.from(oidHex, 'hex')), Buffer.from([0x05, 0x00]));
  return tlv(0x30, tbs, algorithm, tlv(0x03, Buffer.from([0, 1, 2, 3])));
}

describe('tls-server-end-point hash (RFC 5929 §4.1)', () => {
  it('uses the signature hash, and SHA-256 in place of MD5 and SHA-1', () => {
    const cases: [string, string][] = [
      ['2a864886f70d01010b', 'sha256'],
      ['2a864886f70d01010c', 'sha384'],
      ['2a864886f70d01010d', 'sha512'],
      ['2a864886f70d010105', 'sha256'],
      ['2a864886f70d010104', 'sha256'],
      ['2a8648ce3d040303', 'sha384'],
      ['2a8648ce3d0401', 'sha256'],
    ];
    for (const [oid, hash] of cases) {
      const der = certificate(oid, 300);
      expect(tlsServerEndPointHash(der), oid).toEqual({ ok: true, value: createHash(hash).update(der).digest() });
    }
  });

  it('refuses EdDSA and RSASSA-PSS certificates and anything that is not a certificate', () => {
    expect(tlsServerEndPointHash(certificate('2b6570')).ok).toBe(false);
    expect(tlsServerEndPointHash(certificate('2a864886f70d01010a')).ok).toBe(false);
    expect(tlsServerEndPointHash(Buffer.from('not a certificate')).ok).toBe(false);
    expect(tlsServerEndPointHash(certificate('2a864886f70d01010b').subarray(0, 12)).ok).toBe(false);
    expect(tlsServerEndPointHash(Buffer.alloc(0)).ok).toBe(false);
  });
});

describe('password preparation (SASLprep as PostgreSQL applies it)', () => {
  it('uses ASCII passwords as they are, control characters included', () => {
    expect(preparePassword('pencil').toString()).toBe('pencil');
    expect(preparePassword('a\x07b')).toEqual(Buffer.from('a\x07b'));
  });

  it('maps and normalizes as RFC 4013 §3 shows', () => {
    expect(preparePassword('I\u00adX').toString()).toBe('IX');
    expect(preparePassword('\u00aa').toString()).toBe('a');
    expect(preparePassword('\u2168').toString()).toBe('IX');
    expect(preparePassword('p\u00a0w\u00e9').toString()).toBe('p w\u00e9');
    expect(preparePassword('e\u0301').toString()).toBe('\u00e9');
  });

  it('falls back to the raw password when preparation would prohibit it', () => {
    expect(preparePassword('\u00e9\x07')).toEqual(Buffer.from('\u00e9\x07'));
    expect(preparePassword('\u00ad')).toEqual(Buffer.from('\u00ad'));
    expect(preparePassword('\u00e9\ue000')).toEqual(Buffer.from('\u00e9\ue000'));
  });
});

describe('md5Password', () => {
  it('computes "md5" + md5(md5(password + user) + salt)', () => {
    expect(md5Password('postgres', 'secret', Buffer.from([1, 2, 3, 4]))).toBe('md5bb41a296aab6baccb36ff243a562abff');
    expect(md5Password('alice', 'pässwörd', Buffer.from([0xff, 0, 0x80, 0x7f]))).toBe('md54e683bd1725667625ce7393b2b60d5c6');
  });
});
