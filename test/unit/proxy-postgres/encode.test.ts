import { describe, expect, it } from 'vitest';
import {
  BackendReader,
  FrontendReader,
  PROTOCOL_3_2,
  SQLSTATE,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeCancelRequest,
  encodeCommandComplete,
  encodeEmptyQueryResponse,
  encodeErrorResponse,
  encodeGSSENCResponse,
  encodeNegotiateProtocolVersion,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodePasswordMessage,
  encodeQuery,
  encodeReadyForQuery,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeSSLRequest,
  encodeSSLResponse,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
} from '../../../src/proxy/postgres/protocol/index.js';
import { ascii, cstr, frame, int32, packet, uint32, version } from '../../helpers/pg-bytes.js';

function hex(bytes: Buffer): string {
  return bytes.toString('hex');
}

describe('backend builders', () => {
  it('builds AuthenticationOk and AuthenticationCleartextPassword', () => {
    expect(hex(encodeAuthenticationOk())).toBe('520000000800000000');
    expect(hex(encodeAuthenticationCleartextPassword())).toBe('520000000800000003');
  });

  it('builds ParameterStatus', () => {
    expect(encodeParameterStatus('server_version', '18.0 (Tollgate)')).toEqual(frame('S', cstr('server_version'), cstr('18.0 (Tollgate)')));
  });

  it('builds BackendKeyData with 4-byte and long keys, and refuses bad key lengths', () => {
    expect(hex(encodeBackendKeyData(1234, Buffer.from([0xde, 0xad, 0xbe, 0xef])))).toBe('4b0000000c000004d2deadbeef');
    expect(encodeBackendKeyData(7, Buffer.alloc(32, 1))).toEqual(frame('K', int32(7), Buffer.alloc(32, 1)));
    expect(() => encodeBackendKeyData(1, Buffer.alloc(3))).toThrow(/cancel key/);
    expect(() => encodeBackendKeyData(1, Buffer.alloc(257))).toThrow(/cancel key/);
  });

  it('builds ReadyForQuery for each status', () => {
    expect(hex(encodeReadyForQuery('I'))).toBe('5a0000000549');
    expect(hex(encodeReadyForQuery('T'))).toBe('5a0000000554');
    expect(hex(encodeReadyForQuery('E'))).toBe('5a0000000545');
  });

  it('builds ErrorResponse with S, V, C, M, D, H in PostgreSQL order', () => {
    const bytes = encodeErrorResponse({
      severity: 'ERROR',
      code: SQLSTATE.insufficient_privilege,
      message: 'permission denied: role reader may not write to shop',
      detail: 'rule grants.reader',
      hint: 'ask for the writer role',
    });
    expect(bytes).toEqual(
      frame(
        'E',
        ascii('S'), cstr('ERROR'),
        ascii('V'), cstr('ERROR'),
        ascii('C'), cstr('42501'),
        ascii('M'), cstr('permission denied: role reader may not write to shop'),
        ascii('D'), cstr('rule grants.reader'),
        ascii('H'), cstr('ask for the writer role'),
        Buffer.from([0]),
      ),
    );
  });

  it('builds a minimal FATAL ErrorResponse byte for byte', () => {
    expect(hex(encodeErrorResponse({ severity: 'FATAL', code: '28P01', message: 'bad token' }))).toBe(
      '45000000' + '25' + '53' + hex(cstr('FATAL')) + '56' + hex(cstr('FATAL')) + '43' + hex(cstr('28P01')) + '4d' + hex(cstr('bad token')) + '00',
    );
  });

  it('replaces NUL in error text instead of failing, and refuses a malformed SQLSTATE', () => {
    const bytes = encodeErrorResponse({ severity: 'ERROR', code: '08P01', message: 'a\0b' });
    expect(bytes.includes(cstr('a\uFFFDb'))).toBe(true);
    expect(() => encodeErrorResponse({ severity: 'ERROR', code: '4250', message: 'x' })).toThrow(/SQLSTATE/);
    expect(() => encodeErrorResponse({ severity: 'ERROR', code: '42a01', message: 'x' })).toThrow(/SQLSTATE/);
  });

  it('builds NoticeResponse', () => {
    expect(encodeNoticeResponse({ severity: 'WARNING', code: '01000', message: 'token expires in 1 minute' })).toEqual(
      frame('N', ascii('S'), cstr('WARNING'), ascii('V'), cstr('WARNING'), ascii('C'), cstr('01000'), ascii('M'), cstr('token expires in 1 minute'), Buffer.from([0])),
    );
  });

  it('builds CommandComplete and EmptyQueryResponse', () => {
    expect(encodeCommandComplete('SELECT 1')).toEqual(frame('C', cstr('SELECT 1')));
    expect(hex(encodeEmptyQueryResponse())).toBe('4900000004');
  });

  it('builds the single-byte answers to SSLRequest and GSSENCRequest', () => {
    expect(hex(encodeSSLResponse(true))).toBe('53');
    expect(hex(encodeSSLResponse(false))).toBe('4e');
    expect(hex(encodeGSSENCResponse(true))).toBe('47');
    expect(hex(encodeGSSENCResponse(false))).toBe('4e');
  });

  it('builds NegotiateProtocolVersion with the whole version number', () => {
    expect(encodeNegotiateProtocolVersion(PROTOCOL_3_2, ['_pq_.x'])).toEqual(frame('v', uint32(0x00030002), int32(1), cstr('_pq_.x')));
    expect(hex(encodeNegotiateProtocolVersion({ major: 3, minor: 0 }, []))).toBe('760000000c0003000000000000');
  });
});

describe('frontend builders', () => {
  it('builds StartupMessage with parameters in order and nothing added', () => {
    const bytes = encodeStartupMessage(new Map([['user', 'reader'], ['database', 'shop']]));
    expect(bytes).toEqual(packet(version(3, 0), cstr('user'), cstr('reader'), cstr('database'), cstr('shop'), Buffer.from([0])));
    expect(encodeStartupMessage({ user: 'u' }, PROTOCOL_3_2)).toEqual(packet(version(3, 2), cstr('user'), cstr('u'), Buffer.from([0])));
  });

  it('refuses NUL in protocol strings and empty startup parameter names', () => {
    expect(() => encodeStartupMessage({ user: 'a\0b' })).toThrow(/NUL/);
    expect(() => encodeStartupMessage({ '': 'x' })).toThrow(/empty/);
    expect(() => encodeQuery('SELECT 1\0; DROP TABLE t')).toThrow(/NUL/);
    expect(() => encodePasswordMessage('pw\0')).toThrow(/NUL/);
    expect(() => encodeParameterStatus('a', 'b\0')).toThrow(/NUL/);
  });

  it('builds SSLRequest and CancelRequest', () => {
    expect(hex(encodeSSLRequest())).toBe('0000000804d2162f');
    expect(hex(encodeCancelRequest(1234, Buffer.from([1, 2, 3, 4])))).toBe('0000001004d2162e000004d201020304');
    expect(encodeCancelRequest(9, Buffer.alloc(32, 7))).toEqual(packet(int32(80877102), int32(9), Buffer.alloc(32, 7)));
    expect(() => encodeCancelRequest(9, Buffer.alloc(2))).toThrow(/cancel key/);
  });

  it('builds PasswordMessage, SASLInitialResponse and SASLResponse', () => {
    expect(encodePasswordMessage('md5abc')).toEqual(frame('p', cstr('md5abc')));
    const first = ascii('n,,n=,r=nonce');
    expect(encodeSASLInitialResponse('SCRAM-SHA-256', first)).toEqual(frame('p', cstr('SCRAM-SHA-256'), int32(first.length), first));
    expect(encodeSASLInitialResponse('SCRAM-SHA-256', null)).toEqual(frame('p', cstr('SCRAM-SHA-256'), int32(-1)));
    expect(encodeSASLResponse(ascii('c=biws'))).toEqual(frame('p', ascii('c=biws')));
  });

  it('builds Query, Sync and Terminate', () => {
    expect(hex(encodeQuery('SELECT 1'))).toBe('510000000d53454c454354203100');
    expect(hex(encodeSync())).toBe('5300000004');
    expect(hex(encodeTerminate())).toBe('5800000004');
  });
});

describe('round trips through the readers', () => {
  it('reads back what the backend builders write', () => {
    const reader = new BackendReader();
    reader.push(
      Buffer.concat([
        encodeAuthenticationCleartextPassword(),
        encodeAuthenticationOk(),
        encodeParameterStatus('integer_datetimes', 'on'),
        encodeBackendKeyData(77, Buffer.alloc(32, 9)),
        encodeNegotiateProtocolVersion({ major: 3, minor: 0 }, ['_pq_.y']),
        encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: 'hi', hint: 'h' }),
        encodeErrorResponse({ severity: 'ERROR', code: '42501', message: 'denied', position: '8' }),
        encodeEmptyQueryResponse(),
        encodeCommandComplete('UPDATE 3'),
        encodeReadyForQuery('E'),
      ]),
    );
    const items = [...reader.drain()];
    expect(items).toMatchObject([
      { type: 'AuthenticationCleartextPassword' },
      { type: 'AuthenticationOk' },
      { type: 'ParameterStatus', name: 'integer_datetimes', value: 'on' },
      { type: 'BackendKeyData', pid: 77, secretKey: Buffer.alloc(32, 9) },
      { type: 'NegotiateProtocolVersion', version: { major: 3, minor: 0 }, unsupportedOptions: ['_pq_.y'] },
      { type: 'NoticeResponse', fields: { severity: 'NOTICE', severityNonLocalized: 'NOTICE', code: '00000', message: 'hi', hint: 'h' } },
      { type: 'ErrorResponse', fields: { severity: 'ERROR', code: '42501', message: 'denied', position: '8' } },
      { type: 'EmptyQueryResponse' },
      { type: 'CommandComplete', command: 'UPDATE', rows: 3 },
      { type: 'ReadyForQuery', status: 'E' },
    ]);
  });

  it('reads back what the frontend builders write', () => {
    const reader = new FrontendReader();
    reader.push(
      Buffer.concat([
        encodeSSLRequest(),
        encodeStartupMessage({ user: 'reader', database: 'shop', client_encoding: 'UTF8' }, PROTOCOL_3_2),
        encodeSASLInitialResponse('SCRAM-SHA-256', ascii('n,,n=,r=x')),
        encodeSASLResponse(ascii('c=biws,r=xy,p=AAAA')),
        encodeQuery('SELECT ’1’'),
        encodeSync(),
        encodeTerminate(),
      ]),
    );
    expect([...reader.drain()]).toMatchObject([
      { type: 'SSLRequest' },
      { type: 'StartupMessage', protocolVersion: { major: 3, minor: 2 }, params: new Map([['user', 'reader'], ['database', 'shop'], ['client_encoding', 'UTF8']]) },
      { type: 'AuthenticationResponse' },
      { type: 'AuthenticationResponse', payload: ascii('c=biws,r=xy,p=AAAA') },
      { type: 'Query', sql: 'SELECT ’1’' },
      { type: 'Sync' },
      { type: 'Terminate' },
    ]);
    const cancel = new FrontendReader();
    cancel.push(encodeCancelRequest(5, Buffer.alloc(256, 1)));
    expect(cancel.next()).toMatchObject({ type: 'CancelRequest', pid: 5, secretKey: Buffer.alloc(256, 1) });
  });
});

describe('SQLSTATE', () => {
  it('holds well-formed, distinct codes, including the ones the gateway relies on', () => {
    const codes = Object.values(SQLSTATE);
    for (const code of codes) expect(code).toMatch(/^[0-9A-Z]{5}$/);
    expect(new Set(codes).size).toBe(codes.length);
    expect(SQLSTATE).toMatchObject({
      invalid_password: '28P01',
      invalid_authorization_specification: '28000',
      insufficient_privilege: '42501',
      cannot_connect_now: '57P03',
      protocol_violation: '08P01',
      too_many_connections: '53300',
      invalid_catalog_name: '3D000',
      connection_failure: '08006',
      query_canceled: '57014',
      in_failed_sql_transaction: '25P02',
      feature_not_supported: '0A000',
      sqlclient_unable_to_establish_sqlconnection: '08001',
    });
  });
});
