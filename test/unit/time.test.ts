/**
 * nodes/lib/time.ts: numeric timestamps in an explicit unit, ISO 8601 strings with a zone,
 * and the 2000..2100 plausibility range that catches unit mix-ups.
 */
import { ThingwireError } from '../../nodes/lib/errors';
import { MAX_TS, MIN_TS, TIME_UNITS, isTimeUnit, timeMs, toEpochMs, typeName, type TimeUnit, durationMs } from '../../nodes/lib/time';

/** 2026-11-24T10:00:00.000Z */
const T = Date.UTC(2026, 10, 24, 10, 0, 0);

/** The ThingwireError `fn` throws (fails the test when it throws anything else, or nothing). */
function thrown(fn: () => unknown): ThingwireError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ThingwireError);
    return e as ThingwireError;
  }
  throw new Error('expected a ThingwireError, nothing was thrown');
}

describe('units', () => {
  test('TIME_UNITS lists s, ms, us, ns and isTimeUnit accepts exactly those', () => {
    expect([...TIME_UNITS]).toEqual(['s', 'ms', 'us', 'ns']);
    for (const u of TIME_UNITS) expect(isTimeUnit(u)).toBe(true);
    for (const u of ['S', 'sec', 'MS', 'µs', '', undefined, null, 1, {}]) expect(isTimeUnit(u)).toBe(false);
  });

  test.each<[TimeUnit, number]>([
    ['s', T / 1000],
    ['ms', T],
    ['us', T * 1000],
    ['ns', T * 1e6],
  ])('%s: the same instant converts to the same ms', (unit, value) => {
    expect(toEpochMs(value, unit)).toBe(T);
  });

  test('fractions are floored to the millisecond in every unit', () => {
    expect(toEpochMs(T / 1000 + 0.0019, 's')).toBe(T + 1);
    expect(toEpochMs(T + 0.999, 'ms')).toBe(T);
    expect(toEpochMs(T * 1000 + 999, 'us')).toBe(T);
    expect(toEpochMs(T * 1000 + 1000, 'us')).toBe(T + 1);
    // ns values of today are beyond 2^53 (as a device's JSON gives them): still the right millisecond.
    expect(toEpochMs(JSON.parse('1795514400123456789'), 'ns')).toBe(1795514400123);
  });

  // ns values are beyond 2^53, so JSON.parse rounds them to a multiple of 256 ns, sometimes just
  // below the whole millisecond: flooring that directly would give the millisecond before.
  test.each(['1795514423757000000', '1795514447514000000', '1795514510866000000'])('a whole-ms ns value %s keeps its millisecond', (text) => {
    const ns = JSON.parse(text) as number;
    expect(toEpochMs(ns, 'ns')).toBe(Number(text.slice(0, -6)));
  });

  test('the same instant in us and ns gives the same ms', () => {
    const ms = 1795514423757;
    expect(toEpochMs(ms * 1000, 'us')).toBe(ms);
    expect(toEpochMs(JSON.parse(`${ms}000000`) as number, 'ns')).toBe(toEpochMs(ms * 1000, 'us'));
  });

  test('the range bounds: MIN_TS inclusive, MAX_TS exclusive', () => {
    expect(MIN_TS).toBe(Date.parse('2000-01-01T00:00:00Z'));
    expect(MAX_TS).toBe(Date.parse('2100-01-01T00:00:00Z'));
    expect(toEpochMs(MIN_TS, 'ms')).toBe(MIN_TS);
    expect(toEpochMs(MAX_TS - 1, 'ms')).toBe(MAX_TS - 1);
    expect(thrown(() => toEpochMs(MIN_TS - 1, 'ms')).code).toBe('ts_out_of_range');
    expect(thrown(() => toEpochMs(MAX_TS, 'ms')).code).toBe('ts_out_of_range');
  });
});

describe('out of range: unit mix-ups are rejected, never stored in the wrong year', () => {
  test('seconds read as ms land in 1970 and the message names the unit', () => {
    const e = thrown(() => toEpochMs(1795514400, 'ms'));
    expect(e.code).toBe('ts_out_of_range');
    expect(e.message).toContain('1970-01-21T');
    expect(e.message).toContain('(ms)');
  });

  test('ms read as seconds land far in the future', () => {
    const e = thrown(() => toEpochMs(T, 's'));
    expect(e.code).toBe('ts_out_of_range');
    expect(e.message).toContain('read as s');
  });

  test('ms read as ns land in 1970', () => {
    expect(thrown(() => toEpochMs(T, 'ns')).code).toBe('ts_out_of_range');
  });

  test('zero and negative numbers are out of range', () => {
    expect(thrown(() => toEpochMs(0, 'ms')).code).toBe('ts_out_of_range');
    expect(thrown(() => toEpochMs(-T, 'ms')).code).toBe('ts_out_of_range');
  });

  test.each<[number, TimeUnit]>([
    [1e300, 's'],
    [1e300, 'ms'],
    [1e300, 'ns'],
    [-1e300, 'ms'],
    [1e306, 's'], // overflows to Infinity once multiplied
    [Number.MAX_VALUE, 's'],
    [-Number.MAX_VALUE, 'us'],
    [Number.MIN_VALUE, 'ms'],
    [9e15, 'ms'], // just past what Date can represent
  ])('huge or tiny %s (%s) gives ts_out_of_range, never a RangeError', (v, unit) => {
    const e = thrown(() => toEpochMs(v, unit));
    expect(e.code).toBe('ts_out_of_range');
    expect(e.message).toContain('outside 2000..2100');
  });

  test('ISO strings outside the range are out of range too', () => {
    expect(thrown(() => toEpochMs('1999-12-31T23:59:59Z', 'ms')).code).toBe('ts_out_of_range');
    expect(thrown(() => toEpochMs('2100-01-01T00:00:00Z', 'ms')).code).toBe('ts_out_of_range');
    expect(toEpochMs('2099-12-31T23:59:59.999Z', 's')).toBe(MAX_TS - 1);
  });
});

describe('non-finite and non-numeric values', () => {
  test.each([NaN, Infinity, -Infinity])('%s is invalid_ts', (v) => {
    const e = thrown(() => toEpochMs(v, 'ms'));
    expect(e.code).toBe('invalid_ts');
    expect(e.message).toContain(String(v));
  });

  test.each<[unknown, string]>([
    [true, 'boolean'],
    [null, 'null'],
    [undefined, 'undefined'],
    [{ s: 1 }, 'object'],
    [[T], 'array'],
    [BigInt(T), 'bigint'],
  ])('%p is invalid_ts naming its type', (v, type) => {
    const e = thrown(() => toEpochMs(v, 'ms'));
    expect(e.code).toBe('invalid_ts');
    expect(e.message).toContain(`got ${type}`);
  });

  test('typeName tells null and arrays apart from objects', () => {
    expect(typeName(null)).toBe('null');
    expect(typeName([])).toBe('array');
    expect(typeName({})).toBe('object');
    expect(typeName('x')).toBe('string');
    expect(typeName(1)).toBe('number');
  });
});

describe('ISO 8601 strings', () => {
  test.each<[string, number]>([
    ['2026-11-24T10:00:00Z', T],
    ['2026-11-24T10:00:00.000Z', T],
    ['2026-11-24T10:00:00.5Z', T + 500],
    ['2026-11-24T10:00:00.123456789Z', T + 123],
    ['2026-11-24T10:00Z', T],
    ['2026-11-24T11:00:00+01:00', T],
    ['2026-11-24T11:00:00+0100', T],
    ['2026-11-24T05:30:00-04:30', T],
    ['2026-11-24T10:00:00+00:00', T],
    ['2026-11-24 10:00:00Z', T],
    ['2026-11-24t10:00:00z', T],
  ])('%s is read with its zone', (s, expected) => {
    expect(toEpochMs(s, 'ms')).toBe(expected);
  });

  test('the unit setting does not apply to strings', () => {
    for (const u of TIME_UNITS) expect(toEpochMs('2026-11-24T10:00:00Z', u)).toBe(T);
  });

  test('a bare date is midnight UTC', () => {
    expect(toEpochMs('2026-11-24', 'ms')).toBe(Date.UTC(2026, 10, 24));
  });

  test.each([
    '2026-11-24T10:00:00', // no zone: local time would be a guess
    '2026-11-24T10:00:00.000',
    '2026-11-24 10:00',
    '2026-11-24T10:00:00 Z',
    '2026-11-24T10:00:00+1',
    '2026-11-24T10:00:00 GMT',
    'Tue, 24 Nov 2026 10:00:00 GMT', // RFC 2822 is not ISO 8601
    '11/24/2026',
    '2026-11-24T10Z',
    ' 2026-11-24T10:00:00Z',
    '2026-11-24T10:00:00Z\n',
    '',
  ])('%p (no zone or not ISO) is invalid_ts', (s) => {
    const e = thrown(() => toEpochMs(s, 'ms'));
    expect(e.code).toBe('invalid_ts');
    expect(e.message).toContain('ISO 8601 with a time zone');
  });

  test.each(['1795514400000', '1795514400', '1.7955144e12', '-1', '0x1A'])('numeric string %p is rejected, not guessed', (s) => {
    const e = thrown(() => toEpochMs(s, 'ms'));
    expect(e.code).toBe('invalid_ts');
  });

  test.each(['2026-13-01T00:00:00Z', '2026-11-32T00:00:00Z', '2026-11-24T25:00:00Z', '2026-11-24T10:61:00Z', '2026-00-10T00:00:00Z', '2026-11-24T24:00:00Z', '2026-11-24T10:00:60Z', '2026-11-24T10:00:00+25:00', '2026-11-00'])(
    'impossible date %s is invalid_ts',
    (s) => {
      const e = thrown(() => toEpochMs(s, 'ms'));
      expect(e.code).toBe('invalid_ts');
      expect(e.message).toContain(JSON.stringify(s));
    },
  );

  // Date.parse rolls 30 February over into 2 March (and 31 April into 1 May); the regex only checks
  // the shape, so these must be caught separately rather than stored as another day.
  test.each(['2026-02-30T00:00:00Z', '2026-04-31T12:00:00Z', '2025-02-29T00:00:00Z'])('day past the end of its month %s is invalid_ts', (s) => {
    const e = thrown(() => toEpochMs(s, 'ms'));
    expect(e.code).toBe('invalid_ts');
  });

  test('29 February of a leap year is fine', () => {
    expect(toEpochMs('2028-02-29T00:00:00Z', 'ms')).toBe(Date.UTC(2028, 1, 29));
  });

  test('the message quotes at most 40 characters of a long string', () => {
    const long = `x${'9'.repeat(500)}`;
    const e = thrown(() => toEpochMs(long, 'ms'));
    expect(e.code).toBe('invalid_ts');
    expect(e.message).toContain(JSON.stringify(long.slice(0, 40)));
    expect(e.message).not.toContain(long.slice(0, 41));
  });
});

describe('durationMs (the durations of node dialogs and control messages)', () => {
  test.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['5min', 300_000],
    [' 1.5h ', 5_400_000],
    ['1d', 86_400_000],
    ['1w', 604_800_000],
    ['250', 250],
    [250, 250],
    [0, 0],
  ])('%j -> %d ms', (v, ms) => {
    expect(durationMs(v)).toBe(ms);
  });

  test.each([['-5s'], ['5 minutes'], ['1mo'], [''], ['s'], [-1], [NaN], [Infinity], [null], [undefined], [{}], ['1'.repeat(40)]])('%j is not a duration', (v) => {
    expect(durationMs(v)).toBeUndefined();
  });
});

describe('timeMs: a point in time from a query or a control message', () => {
  const NOW = Date.UTC(2026, 11, 1, 12);
  test.each([
    [NOW - 5, NOW - 5],
    ['now', NOW],
    [' now ', NOW],
    ['-1h', NOW - 3_600_000],
    ['-30d', NOW - 30 * 86_400_000],
    ['-5min', NOW - 300_000],
    ['2026-11-30', Date.UTC(2026, 10, 30)],
    ['2026-11-30T06:00:00Z', Date.UTC(2026, 10, 30, 6)],
  ])('%j is %d', (v, want) => {
    expect(timeMs(v, NOW)).toBe(want);
  });
  test.each([['-0s'], ['-'], ['yesterday'], ['30d'], ['2026-13-45'], [NaN], [Infinity], [null], [undefined], [{}], [true]])('%j is not a time', (v) => {
    expect(timeMs(v, NOW)).toBeUndefined();
  });
});
