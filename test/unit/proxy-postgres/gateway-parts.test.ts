/**
 * The pure parts of the Postgres gateway: startup option parsing, the auth-failure limiter,
 * loopback detection, the Parse builder used for refused messages, and the audit record builders.
 */
import { describe, expect, it } from 'vitest';
import { validateEvent } from '../../../src/audit/index.js';
import { manualClock } from '../../../src/core/index.js';
import { authFailureEvent, queryEvent, recordedParams, resultEvent } from '../../../src/proxy/postgres/audit-events.js';
import { AuthFailureLimiter, isLoopbackAddress, parseStartupOptions } from '../../../src/proxy/postgres/index.js';
import { refusedStartupSetting } from '../../../src/proxy/postgres/client-auth.js';
import { unsafeReadingSetting } from '../../../src/proxy/postgres/upstream.js';
import { refusedParse, REFUSED_SQL } from '../../../src/proxy/postgres/intercept.js';
import { decodeFrontendMessage, encodeParse } from '../../../src/proxy/postgres/protocol/index.js';
import { cstr, frame, int16, uint32 } from '../../helpers/pg-bytes.js';

describe('refusedStartupSetting', () => {
  const params = (entries: Record<string, string>) => new Map(Object.entries(entries));

  it('lets through what drivers send at login: formatting, timeouts, transaction modes', () => {
    const jdbc = params({ user: 'a', database: 'shop', client_encoding: 'UTF8', DateStyle: 'ISO', TimeZone: 'UTC', extra_float_digits: '2', application_name: 'x' });
    expect(refusedStartupSetting(jdbc, [])).toBeNull();
    expect(refusedStartupSetting(params({}), ['-c', 'statement_timeout=5s', '-cDateStyle=ISO', '--lock-timeout=1s'])).toBeNull();
  });

  it('names the first setting that would bypass statement policy, as a parameter or in options', () => {
    expect(refusedStartupSetting(params({ search_path: 'secret' }), [])).toBe('search_path');
    expect(refusedStartupSetting(params({ standard_conforming_strings: 'off' }), [])).toBe('standard_conforming_strings');
    expect(refusedStartupSetting(params({}), ['-c', 'statement_timeout=5s', '-c', 'standard_conforming_strings=off'])).toBe('standard_conforming_strings');
    expect(refusedStartupSetting(params({}), ['--session-authorization=postgres'])).toBe('session_authorization');
    expect(refusedStartupSetting(params({}), ['-crole=postgres'])).toBe('role');
  });

  it('refuses server switches that are not settings, and settings without a value', () => {
    expect(refusedStartupSetting(params({}), ['-d', '5'])).toBe('-d');
    expect(refusedStartupSetting(params({}), ['-c', 'statement_timeout'])).toBe('statement_timeout');
  });
});

describe('unsafeReadingSetting', () => {
  it('names the reported settings under which the server would read SQL unlike the gateway', () => {
    expect(unsafeReadingSetting('standard_conforming_strings', 'on')).toBeNull();
    expect(unsafeReadingSetting('standard_conforming_strings', 'off')).toBe('standard_conforming_strings');
    expect(unsafeReadingSetting('client_encoding', 'UTF8')).toBeNull();
    expect(unsafeReadingSetting('client_encoding', 'SJIS')).toBe('client_encoding');
    expect(unsafeReadingSetting('TimeZone', 'UTC')).toBeNull();
  });
});

describe('parseStartupOptions', () => {
  it('takes tollgate.login out of the options in every spelling the server accepts', () => {
    expect(parseStartupOptions('-c tollgate.login=writer')).toEqual({ login: 'writer', rest: [] });
    expect(parseStartupOptions('-ctollgate.login=writer')).toEqual({ login: 'writer', rest: [] });
    expect(parseStartupOptions('--tollgate.login=writer')).toEqual({ login: 'writer', rest: [] });
    expect(parseStartupOptions('-c TOLLGATE.LOGIN=writer')).toEqual({ login: 'writer', rest: [] });
    // The server folds dashes in a name to underscores, so this is another setting.
    expect(parseStartupOptions('--tollgate-login=writer')).toEqual({ rest: ['--tollgate-login=writer'] });
  });

  it('keeps the other arguments, with backslash escapes resolved', () => {
    expect(parseStartupOptions('-c search_path=a\\ b  -c tollgate.login=reader -c geqo=off')).toEqual({
      login: 'reader',
      rest: ['-c', 'search_path=a b', '-c', 'geqo=off'],
    });
    expect(parseStartupOptions('')).toEqual({ rest: [] });
  });

  it('refuses a dangling -c', () => {
    expect(parseStartupOptions('-c')).toBeNull();
  });
});

describe('AuthFailureLimiter', () => {
  it('blocks an address after max failures inside the window, until the oldest leaves it', () => {
    const clock = manualClock(1_000_000);
    const limiter = new AuthFailureLimiter(3, 60_000, clock);
    for (let i = 0; i < 3; i++) {
      expect(limiter.blockedFor('10.0.0.1')).toBe(0);
      limiter.recordFailure('10.0.0.1');
      clock.advance(1000);
    }
    expect(limiter.blockedFor('10.0.0.1')).toBe(57_000);
    expect(limiter.blockedFor('10.0.0.2')).toBe(0);
    clock.advance(57_000);
    expect(limiter.blockedFor('10.0.0.1')).toBe(0);
  });

  it('forgets the least recently seen addresses beyond its capacity', () => {
    const limiter = new AuthFailureLimiter(1, 60_000, manualClock(0), 2);
    limiter.recordFailure('a');
    limiter.recordFailure('b');
    limiter.recordFailure('c');
    expect(limiter.blockedFor('a')).toBe(0);
    expect(limiter.blockedFor('c')).toBeGreaterThan(0);
  });
});

describe('isLoopbackAddress', () => {
  it('knows 127.0.0.0/8, ::1 and their mapped forms, and nothing else', () => {
    for (const address of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(address)).toBe(true);
    for (const address of ['10.0.0.1', '::ffff:10.0.0.1', '1270.0.0.1', 'localhost', '::2']) expect(isLoopbackAddress(address)).toBe(false);
  });
});

describe('encodeParse', () => {
  it('builds a Parse frame byte for byte (§55.7)', () => {
    expect(encodeParse('s1', 'select $1', [23])).toEqual(frame('P', cstr('s1'), cstr('select $1'), int16(1), uint32(23)));
    expect(encodeParse('', 'select 1')).toEqual(frame('P', cstr(''), cstr('select 1'), int16(0)));
  });

  it('stands in for a refused message with text the server cannot parse', () => {
    const decoded = decodeFrontendMessage(refusedParse('mine'));
    expect(decoded).toMatchObject({ type: 'Parse', name: 'mine', sql: REFUSED_SQL, paramTypes: [] });
    expect(REFUSED_SQL).toMatch(/\nTOLLGATE_REFUSED$/);
  });
});

describe('audit events', () => {
  const session = { sessionId: 'sess-1', principal: { subject: 's', email: 'a@example.com', groups: ['g'] }, resource: 'shop', login: 'reader', remote: '127.0.0.1' };

  it('records text parameters as text and binary ones as bytes', () => {
    const params = recordedParams([Buffer.from('42'), null, Buffer.from([0xff, 0x00])], [0, 0, 1]);
    expect(params).toEqual(['42', null, Uint8Array.from([0xff, 0x00])]);
    expect(recordedParams([Buffer.from([0xc3, 0x28])], [])).toEqual([Uint8Array.from([0xc3, 0x28])]);
  });

  it('builds events the record model accepts', () => {
    const statement = { text: 'select 1', command: 'SELECT', class: 'read' as const, tables: [], functions: [], fingerprint: '0123456789abcdef', prepared: null };
    const events = [
      queryEvent({ session, decision: { effect: 'allow', rule: 'engineer.allow[0]', reason: 'allowed-by-rule' }, protocol: 'extended', statement, statementName: 's', portal: '', params: ['1', null] }),
      queryEvent({ session, decision: { effect: 'deny', rule: null, reason: 'unparsable-sql' }, protocol: 'simple', statement: null, text: 'selec', unclassified: 'syntax' }),
      resultEvent({ session, ref: 7, status: 'ok', commandTag: 'SELECT 1', rows: 1, sqlstate: undefined, durationMs: 1.6, copyBytes: undefined }),
      authFailureEvent({ reason: 'token-expired', user: 'a@example.com', database: 'shop', remote: '127.0.0.1', tls: true }),
    ];
    for (const event of events) expect(validateEvent(event)).toEqual({ ok: true });
    expect(events[2]?.data['duration_ms']).toBe(2);
    expect(events[0]?.data).toMatchObject({ protocol: 'extended', statement_name: 's', params: ['1', null], class: 'read' });
  });
});
