import { describe, expect, it } from 'vitest';
import { parseCookieHeader } from '../../../src/identity/index.js';

describe('parseCookieHeader', () => {
  it('reads name=value pairs in order, keeping repeated names', () => {
    const cookies = parseCookieHeader('a=1; b=two;a=3');
    expect([...cookies]).toEqual([
      ['a', ['1', '3']],
      ['b', ['two']],
    ]);
  });

  it('unwraps a quoted value and accepts an empty one', () => {
    expect(parseCookieHeader('a="x.y"; b=').get('a')).toEqual(['x.y']);
    expect(parseCookieHeader('b=').get('b')).toEqual(['']);
  });

  it('joins several Cookie header lines', () => {
    expect(parseCookieHeader(['a=1', 'b=2']).get('b')).toEqual(['2']);
  });

  it.each([
    ['no equals sign', 'flag'],
    ['empty name', '=value'],
    ['space in the name', 'my name=1'],
    ['separator in the name', 'a(b)=1'],
    ['comma in the value', 'a=1,2'],
    ['backslash in the value', 'a=1\\2'],
    ['space inside the value', 'a=1 2'],
    ['control character in the value', 'a=1\u00012'],
    ['non-ASCII value', 'a=é'],
  ])('skips a pair with %s', (_what, header) => {
    expect(parseCookieHeader(`${header}; ok=yes`)).toEqual(new Map([['ok', ['yes']]]));
  });

  it('returns nothing for a missing header', () => {
    expect(parseCookieHeader(undefined).size).toBe(0);
  });

  it('does not let a cookie named __proto__ reach any prototype', () => {
    const cookies = parseCookieHeader('__proto__=x; constructor=y');
    expect(cookies.get('__proto__')).toEqual(['x']);
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });
});
