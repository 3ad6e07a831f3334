import { describe, expect, it } from 'vitest';
import { parsePageQuery, parseTime, queryString } from '../../../src/web/filter.js';

const NOW = Date.UTC(2025, 0, 31, 12, 0, 0);
const LIMITS = { fallback: 50, max: 500 };

describe('page filters', () => {
  it('reads times as RFC 3339, UTC when no zone is given, dates from UTC midnight, and durations ago', () => {
    expect(parseTime('2025-01-30T08:15:00Z', NOW)).toBe(Date.UTC(2025, 0, 30, 8, 15));
    expect(parseTime('2025-01-30T08:15', NOW)).toBe(Date.UTC(2025, 0, 30, 8, 15));
    expect(parseTime('2025-01-30 08:15:30.250+02:00', NOW)).toBe(Date.UTC(2025, 0, 30, 6, 15, 30, 250));
    expect(parseTime('2025-01-30', NOW)).toBe(Date.UTC(2025, 0, 30));
    expect(parseTime('90m', NOW)).toBe(NOW - 90 * 60_000);
    expect(parseTime('yesterday', NOW)).toBeNull();
    expect(parseTime('2025-02-30', NOW)).toBeNull();
  });

  it('turns the query into a record filter, cursor and limit', () => {
    const parsed = parsePageQuery('?user=Alice%40example.com&resource=shop&effect=deny&kind=pg&kind=http.request&session=s1&since=2h&until=2025-02-01&text=orders&cursor=120&limit=20', NOW, LIMITS);
    expect(parsed).toEqual({
      ok: true,
      query: {
        fields: { user: 'Alice@example.com', resource: 'shop', effect: 'deny', kind: 'pg,http.request', session: 's1', since: '2h', until: '2025-02-01', text: 'orders' },
        filter: { user: 'Alice@example.com', resource: 'shop', effect: 'deny', kind: ['pg', 'http.request'], sessionId: 's1', since: NOW - 7_200_000, until: Date.UTC(2025, 1, 1), text: 'orders' },
        cursor: '120',
        limit: 20,
      },
    });
    expect(parsePageQuery('', NOW, LIMITS)).toMatchObject({ ok: true, query: { filter: {}, cursor: undefined, limit: 50 } });
    expect(parsePageQuery('?limit=100000', NOW, LIMITS)).toMatchObject({ ok: true, query: { limit: 500 } });
  });

  it('reports every problem of a filter at once, as values', () => {
    const parsed = parsePageQuery('?effect=maybe&since=soon&limit=0', NOW, LIMITS);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.problems).toEqual([
      'effect is allow or deny, not "maybe"',
      'From "soon" is neither a time (2025-01-31T12:00:00Z, UTC when no zone is given) nor a duration ago (15m, 2h, 7d)',
      'limit is a whole number from 1 to 500',
    ]);
    expect(parsePageQuery('?kind=pg.nothing', NOW, LIMITS)).toMatchObject({ ok: false, problems: [expect.stringContaining('unknown record kind "pg.nothing"')] });
    expect(parsePageQuery('?since=2025-02-01&until=2025-01-01', NOW, LIMITS)).toMatchObject({ ok: false, problems: [expect.stringContaining('must be before its end')] });
    expect(parsePageQuery(`?text=${'x'.repeat(600)}`, NOW, LIMITS)).toMatchObject({ ok: false });
  });

  it('writes the fields back into a shareable query string', () => {
    expect(queryString({ user: 'a b@example.com', effect: '', text: 'x&y' }, { cursor: 5, format: undefined })).toBe('?user=a+b%40example.com&text=x%26y&cursor=5');
    expect(queryString({})).toBe('');
    const parsed = parsePageQuery(queryString({ user: 'a b@example.com', text: 'x&y' }), NOW, LIMITS);
    expect(parsed).toMatchObject({ ok: true, query: { filter: { user: 'a b@example.com', text: 'x&y' } } });
  });
});
