/**
 * nodes/window/calendar.ts: window sizes, epoch alignment and exact edges, calendar windows in a
 * time zone (Europe/Madrid DST days of 23 h and 25 h, a skipped midnight in America/Santiago, a
 * repeated one in America/Sao_Paulo), month lengths, leap years, weeks, and cascade nesting rules.
 * Expected instants are written out by hand (UTC), not computed with the code under test.
 */
import { buildLevel, checkNesting, parseSize, zoneClock, DAY, HOUR, MINUTE, type CalendarLevel, type WindowLevel } from '../../nodes/window/calendar';

const U = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number => Date.UTC(y, mo - 1, d, h, mi, s, ms);

function level(size: string | number, timeZone = 'UTC', extra: { step?: string | number; alignOffset?: number; weekStart?: number } = {}): WindowLevel {
  return buildLevel({ size, step: extra.step }, { timeZone, weekStart: extra.weekStart ?? 1, alignOffset: extra.alignOffset ?? 0 });
}

function windowOf(l: WindowLevel, ts: number): [number, number] {
  const s = l.startOf(ts);
  return [s, l.endOf(s)];
}

describe('sizes', () => {
  test.each<[string | number, number, string]>([
    ['1m', MINUTE, '1m'],
    ['15s', 15_000, '15s'],
    ['250ms', 250, '250ms'],
    ['1h', HOUR, '1h'],
    [' 2 h ', 2 * HOUR, '2h'],
    [60_000, MINUTE, '1m'],
    [1500, 1500, '1500ms'],
    ['1d', DAY, '1d'],
    ['7d', 7 * DAY, '7d'],
  ])('%p is %d ms, label %s (UTC)', (spec, ms, label) => {
    const p = parseSize(spec, 'UTC');
    expect(p.ms).toBe(ms);
    expect(p.label).toBe(label);
    expect(p.calendar).toBeUndefined();
  });

  test('calendar sizes and their nominal durations', () => {
    expect(parseSize('1d', 'Europe/Madrid')).toEqual({ ms: DAY, calendar: { unit: 'd', n: 1 }, label: '1d' });
    expect(parseSize('1w', 'UTC')).toEqual({ ms: 7 * DAY, calendar: { unit: 'w', n: 1 }, label: '1w' });
    expect(parseSize('1mo', 'UTC')).toEqual({ ms: 30 * DAY, calendar: { unit: 'mo', n: 1 }, label: '1mo' });
    expect(parseSize('3mo', 'UTC').calendar).toEqual({ unit: 'mo', n: 3 });
    expect(parseSize('1y', 'UTC')).toEqual({ ms: 365 * DAY, calendar: { unit: 'y', n: 1 }, label: '1y' });
  });

  test.each(['', '1', 'm', '0m', '-1m', '1.5h', '5mo', '2y', '2w', '1x', 0, -5, 1.5, NaN])('%p is refused', (spec) => {
    expect(() => parseSize(spec as string, 'UTC')).toThrow(RangeError);
  });

  test('2d is refused in a zone (calendar days only come one at a time)', () => {
    expect(() => parseSize('2d', 'Europe/Madrid')).toThrow(RangeError);
  });

  test('an unknown zone is refused', () => {
    expect(() => level('1d', 'Mars/Olympus_Mons')).toThrow(RangeError);
  });
});

describe('fixed windows: epoch alignment and exact edges', () => {
  const m = level('1m');
  const T = U(2026, 3, 1, 12, 34, 0);

  test('start inclusive, end exclusive', () => {
    expect(windowOf(m, T)).toEqual([T, T + MINUTE]);
    expect(windowOf(m, T + MINUTE - 1)).toEqual([T, T + MINUTE]);
    expect(windowOf(m, T + MINUTE)).toEqual([T + MINUTE, T + 2 * MINUTE]);
    expect(windowOf(m, T - 1)).toEqual([T - MINUTE, T]);
  });

  test('hours and days are UTC hours and days', () => {
    expect(windowOf(level('1h'), U(2026, 3, 1, 12, 59, 59, 999))).toEqual([U(2026, 3, 1, 12), U(2026, 3, 1, 13)]);
    expect(windowOf(level('1d'), U(2026, 3, 1, 23, 59))).toEqual([U(2026, 3, 1), U(2026, 3, 2)]);
  });

  test('alignOffset shifts the grid (hours on :30)', () => {
    const h = level('1h', 'UTC', { alignOffset: 30 * MINUTE });
    expect(windowOf(h, U(2026, 3, 1, 12, 29))).toEqual([U(2026, 3, 1, 11, 30), U(2026, 3, 1, 12, 30)]);
    expect(windowOf(h, U(2026, 3, 1, 12, 30))).toEqual([U(2026, 3, 1, 12, 30), U(2026, 3, 1, 13, 30)]);
  });

  test('times before the epoch floor correctly', () => {
    expect(windowOf(m, -1)).toEqual([-MINUTE, 0]);
    expect(windowOf(m, -MINUTE)).toEqual([-MINUTE, 0]);
  });

  test('hopping: startOf gives the latest start on the step grid; labels', () => {
    const hop = level('5m', 'UTC', { step: '1m' });
    expect(hop.hopping).toBe(true);
    expect(hop.label).toBe('5m/1m');
    expect(hop.startOf(T + 90_000)).toBe(T + MINUTE);
    expect(() => level('1m', 'UTC', { step: '5m' })).toThrow(RangeError);
  });
});

describe('calendar days in Europe/Madrid', () => {
  const d = level('1d', 'Europe/Madrid');

  test('a winter day starts at 23:00 UTC the day before, a summer day at 22:00', () => {
    expect(windowOf(d, U(2026, 1, 15, 12))).toEqual([U(2026, 1, 14, 23), U(2026, 1, 15, 23)]);
    expect(windowOf(d, U(2026, 7, 15, 12))).toEqual([U(2026, 7, 14, 22), U(2026, 7, 15, 22)]);
  });

  test('local midnight is the edge: 22:59:59.999 UTC is still 14 July, 23:00 is... 15 July in winter only', () => {
    // Summer (UTC+2): 21:59:59.999 UTC is 23:59:59.999 local, 22:00 UTC is midnight.
    expect(d.startOf(U(2026, 7, 15, 21, 59, 59, 999))).toBe(U(2026, 7, 14, 22));
    expect(d.startOf(U(2026, 7, 15, 22))).toBe(U(2026, 7, 15, 22));
  });

  test('spring forward (29 March 2026): the day lasts 23 h', () => {
    const [s, e] = windowOf(d, U(2026, 3, 29, 12));
    expect(s).toBe(U(2026, 3, 28, 23));
    expect(e).toBe(U(2026, 3, 29, 22));
    expect(e - s).toBe(23 * HOUR);
    // Around the jump (01:00 UTC = 02:00 CET -> 03:00 CEST) nothing changes day.
    expect(d.startOf(U(2026, 3, 29, 0, 59))).toBe(s);
    expect(d.startOf(U(2026, 3, 29, 1, 0))).toBe(s);
  });

  test('fall back (25 October 2026): the day lasts 25 h', () => {
    const [s, e] = windowOf(d, U(2026, 10, 25, 12));
    expect(s).toBe(U(2026, 10, 24, 22));
    expect(e).toBe(U(2026, 10, 25, 23));
    expect(e - s).toBe(25 * HOUR);
    // Both passes through 02:xx local (00:30 and 01:30 UTC) are 25 October.
    expect(d.startOf(U(2026, 10, 25, 0, 30))).toBe(s);
    expect(d.startOf(U(2026, 10, 25, 1, 30))).toBe(s);
  });

  test('the other years too: DST days of 2024 and 2025', () => {
    expect(windowOf(d, U(2024, 3, 31, 12))).toEqual([U(2024, 3, 30, 23), U(2024, 3, 31, 22)]);
    expect(windowOf(d, U(2024, 10, 27, 12))).toEqual([U(2024, 10, 26, 22), U(2024, 10, 27, 23)]);
    expect(windowOf(d, U(2025, 3, 30, 12))).toEqual([U(2025, 3, 29, 23), U(2025, 3, 30, 22)]);
    expect(windowOf(d, U(2025, 10, 26, 12))).toEqual([U(2025, 10, 25, 22), U(2025, 10, 26, 23)]);
  });

  test('consecutive days tile a whole year without gap or overlap: 365 days, two of them not 24 h', () => {
    let s = d.startOf(U(2026, 1, 1, 12));
    const lengths = new Map<number, number>();
    for (let i = 0; i < 365; i++) {
      const e = d.endOf(s);
      lengths.set(e - s, (lengths.get(e - s) ?? 0) + 1);
      expect(d.startOf(e - 1)).toBe(s);
      expect(d.startOf(e)).toBe(e);
      s = e;
    }
    expect(lengths.get(24 * HOUR)).toBe(363);
    expect(lengths.get(23 * HOUR)).toBe(1);
    expect(lengths.get(25 * HOUR)).toBe(1);
    expect(s).toBe(U(2026, 12, 31, 23));
  });
});

describe('months, leap years, weeks and years', () => {
  test('month lengths in UTC, February in leap and common years', () => {
    const mo = level('1mo');
    const len = (y: number, m: number): number => {
      const [s, e] = windowOf(mo, U(y, m, 10));
      expect(s).toBe(U(y, m, 1));
      return (e - s) / DAY;
    };
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((m) => len(2026, m))).toEqual([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]);
    expect(len(2024, 2)).toBe(29);
    expect(len(2000, 2)).toBe(29); // divisible by 400
    expect(len(2100, 2)).toBe(28); // divisible by 100, not 400
    expect(windowOf(mo, U(2024, 2, 29, 23, 59, 59, 999))).toEqual([U(2024, 2, 1), U(2024, 3, 1)]);
    expect(mo.startOf(U(2024, 3, 1))).toBe(U(2024, 3, 1));
  });

  test('months in Madrid start at local midnight; March 2026 has 31 days minus the lost hour', () => {
    const mo = level('1mo', 'Europe/Madrid');
    const [s, e] = windowOf(mo, U(2026, 3, 15));
    expect(s).toBe(U(2026, 2, 28, 23));
    expect(e).toBe(U(2026, 3, 31, 22));
    expect(e - s).toBe(31 * DAY - HOUR);
    expect(windowOf(mo, U(2026, 10, 15))).toEqual([U(2026, 9, 30, 22), U(2026, 10, 31, 23)]);
    // A leap February in Madrid (no DST change): 29 days exactly.
    const [fs, fe] = windowOf(mo, U(2024, 2, 29, 12));
    expect([fs, fe]).toEqual([U(2024, 1, 31, 23), U(2024, 2, 29, 23)]);
  });

  test('quarters and years', () => {
    expect(windowOf(level('3mo'), U(2026, 5, 20))).toEqual([U(2026, 4, 1), U(2026, 7, 1)]);
    expect(windowOf(level('1y'), U(2024, 6, 1))).toEqual([U(2024, 1, 1), U(2025, 1, 1)]);
    expect(windowOf(level('1y', 'Europe/Madrid'), U(2026, 6, 1))).toEqual([U(2025, 12, 31, 23), U(2026, 12, 31, 23)]);
  });

  test('weeks start on Monday by default, or on the configured day', () => {
    // Thursday 1 January 2026.
    expect(windowOf(level('1w'), U(2026, 1, 1, 10))).toEqual([U(2025, 12, 29), U(2026, 1, 5)]);
    expect(windowOf(level('1w', 'UTC', { weekStart: 7 }), U(2026, 1, 1, 10))).toEqual([U(2025, 12, 28), U(2026, 1, 4)]);
    expect(windowOf(level('1w', 'UTC', { weekStart: 4 }), U(2026, 1, 1, 10))).toEqual([U(2026, 1, 1), U(2026, 1, 8)]);
    // The Madrid week holding the spring change: 7 days minus an hour.
    const [s, e] = windowOf(level('1w', 'Europe/Madrid'), U(2026, 3, 27));
    expect([s, e]).toEqual([U(2026, 3, 22, 23), U(2026, 3, 29, 22)]);
    expect(() => level('1w', 'UTC', { weekStart: 0 })).toThrow(RangeError);
  });
});

describe('midnight skipped or repeated by a DST change', () => {
  test('America/Santiago, 7 Sep 2025: the clock jumps from 24:00 to 01:00, the day starts at 01:00 local (04:00 UTC)', () => {
    const d = level('1d', 'America/Santiago');
    const [s, e] = windowOf(d, U(2025, 9, 7, 12));
    expect(s).toBe(U(2025, 9, 7, 4));
    expect(e).toBe(U(2025, 9, 8, 3));
    expect(e - s).toBe(23 * HOUR);
    // The day before ends where this one starts.
    expect(d.endOf(d.startOf(U(2025, 9, 6, 12)))).toBe(s);
  });

  test('America/Sao_Paulo, 18 Feb 2018: 24:00 goes back to 23:00, so Saturday has 25 h and Sunday starts an hour later in UTC', () => {
    const d = level('1d', 'America/Sao_Paulo');
    const sat = windowOf(d, U(2018, 2, 17, 12));
    const sun = windowOf(d, U(2018, 2, 18, 12));
    expect(sat).toEqual([U(2018, 2, 17, 2), U(2018, 2, 18, 3)]);
    expect(sun).toEqual([U(2018, 2, 18, 3), U(2018, 2, 19, 3)]);
    // 02:30 UTC reads 23:30 on Saturday for the second time.
    expect(d.startOf(U(2018, 2, 18, 2, 30))).toBe(sat[0]);
  });

  test('America/Havana, 2 Nov 2025: 01:00 goes back to 00:00, midnight happens twice; the day starts at the first', () => {
    const d = level('1d', 'America/Havana');
    const [s, e] = windowOf(d, U(2025, 11, 2, 12));
    expect(s).toBe(U(2025, 11, 2, 4));
    expect(e).toBe(U(2025, 11, 3, 5));
    expect(d.startOf(U(2025, 11, 2, 5, 30))).toBe(s);
    expect(d.endOf(d.startOf(U(2025, 11, 1, 12)))).toBe(s);
  });

  test('zone offsets: Madrid +1 h in winter, +2 h in summer; Kathmandu +5:45', () => {
    expect(zoneClock('Europe/Madrid').offset(U(2026, 1, 1))).toBe(HOUR);
    expect(zoneClock('Europe/Madrid').offset(U(2026, 7, 1))).toBe(2 * HOUR);
    expect(zoneClock('Asia/Kathmandu').offset(U(2026, 7, 1))).toBe(5 * HOUR + 45 * MINUTE);
    expect(zoneClock('UTC').offset(U(2026, 7, 1))).toBe(0);
  });

  test('a Kathmandu day starts at 18:15 UTC', () => {
    expect(windowOf(level('1d', 'Asia/Kathmandu'), U(2026, 5, 5, 12))).toEqual([U(2026, 5, 4, 18, 15), U(2026, 5, 5, 18, 15)]);
  });
});

describe('cascade nesting', () => {
  const ok = (lo: WindowLevel, hi: WindowLevel): void => expect(() => checkNesting(lo, hi)).not.toThrow();
  const bad = (lo: WindowLevel, hi: WindowLevel): void => expect(() => checkNesting(lo, hi)).toThrow(RangeError);

  test('fixed over fixed: multiples with the same alignment', () => {
    ok(level('1m'), level('1h'));
    ok(level('15s'), level('1m'));
    bad(level('7m'), level('1h'));
    bad(level('1h'), level('1m'));
    bad(level('1m'), level('1h', 'UTC', { alignOffset: 30_000 }));
    bad(level('5m', 'UTC', { step: '1m' }), level('1h'));
  });

  test('calendar over fixed: the zone offsets must fall on the lower grid', () => {
    ok(level('1h'), level('1d', 'Europe/Madrid'));
    ok(level('1m'), level('1mo', 'Europe/Madrid'));
    ok(level('15m'), level('1d', 'Asia/Kathmandu'));
    bad(level('1h'), level('1d', 'Asia/Kathmandu'));
    bad(level('1h'), level('1d', 'Asia/Kolkata'));
    ok(level('1h', 'UTC', { alignOffset: 30 * MINUTE }), level('1d', 'Asia/Kolkata'));
    bad(level('7m'), level('1d', 'UTC'));
  });

  test('calendar over calendar', () => {
    const z = 'Europe/Madrid';
    ok(level('1d', z), level('1w', z));
    ok(level('1d', z), level('1mo', z));
    ok(level('1mo', z), level('3mo', z));
    ok(level('3mo', z), level('1y', z));
    ok(level('1mo', z), level('1y', z));
    bad(level('1w', z), level('1mo', z));
    bad(level('1d', z), level('1d', 'America/New_York'));
    bad(level('1d', z), level('1h'));
  });

  test('calendar levels report their zone and unit', () => {
    const l = level('1mo', 'Europe/Madrid') as CalendarLevel;
    expect(l.calendar).toBe(true);
    expect(l.unit).toBe('mo');
    expect(l.size).toBe(30 * DAY);
    expect(l.describe()).toContain('Europe/Madrid');
  });
});
