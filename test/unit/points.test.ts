/**
 * The point schema (nodes/lib/store/points.ts): which contract type a payload is, and how Readings,
 * Rollups and Alert events become points (measurement, tags, typed fields, time), including the
 * refusals and the reject indexes of a mixed batch.
 */
import type { AlertEvent, AnomalyScore, Reading, Rollup } from '../../nodes/lib/contract';
import { ThingwireError } from '../../nodes/lib/errors';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { alertToPoint, anomalyToPoint, BandGate, DEFAULT_POINT_SCHEMA, kindOf, parseScoreFields, readingToPoint, rollupToPoint, SCORE_FIELDS, ScoreGate, toPoints, type PointSchema } from '../../nodes/lib/store/points';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

function schema(over: Partial<PointSchema> = {}): PointSchema {
  return { ...DEFAULT_POINT_SCHEMA, ...over };
}

function reading(over: Partial<Reading> & Record<string, unknown> = {}): Reading {
  return { device: 'd1', ts: T0, metrics: { temperature: 21.5 }, ...over } as Reading;
}

function rollup(over: Partial<Rollup> & Record<string, unknown> = {}): Rollup {
  return {
    device: 'd1',
    metric: 'temperature',
    window: { start: T0, end: T0 + 60_000, size: 60_000 },
    level: '1m',
    count: 3,
    sum: 63,
    mean: 21,
    min: 20,
    max: 22,
    stddev: 0.8165,
    first: 20,
    last: 22,
    firstTs: T0 + 1000,
    lastTs: T0 + 59_000,
    ...over,
  } as Rollup;
}

function alert(over: Partial<AlertEvent> & Record<string, unknown> = {}): AlertEvent {
  return {
    key: 'too-hot/d1/temperature',
    device: 'd1',
    rule: 'too-hot',
    state: 'firing',
    severity: 'major',
    value: 31.5,
    since: T0 + 5000,
    metric: 'temperature',
    acknowledged: false,
    message: 'temperature 31.5 > 30',
    ...over,
  } as AlertEvent;
}

function score(over: Partial<AnomalyScore> & Record<string, unknown> = {}): AnomalyScore {
  return {
    device: 'd1',
    metric: 'temperature',
    ts: T0 + 7000,
    value: 31.5,
    score: 0.83,
    anomalous: true,
    expected: 21.2,
    lower: 18.7,
    upper: 23.7,
    signal: 'daily',
    learning: false,
    ...over,
  } as AnomalyScore;
}

const ESTIMATE = { threshold: 90, direction: 'above', ttf: 7_200_000, ttfLow: 3_600_000, ttfHigh: null, probability: 0.72, horizon: 86_400_000, slope: 1.5, model: 'theil-sen', alert: true } as const;

/** Runs fn and returns the ThingwireError it throws (fails when it throws nothing or something else). */
function thrown(fn: () => unknown): ThingwireError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ThingwireError) return e;
    throw new Error(`expected a ThingwireError, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected a ThingwireError, but nothing was thrown');
}

describe('kindOf', () => {
  test.each([
    ['a reading', { device: 'd1', ts: 1, metrics: { t: 1 } }, 'reading'],
    ['a reading with empty metrics (shape only)', { metrics: {} }, 'reading'],
    ['a rollup', { metric: 'temperature', window: { start: 0, end: 1, size: 1 } }, 'rollup'],
    ['an alert', { rule: 'r', state: 'firing', key: 'k' }, 'alert'],
    ['metrics that are an array', { metrics: [1, 2] }, undefined],
    ['metrics that are null', { metrics: null }, undefined],
    ['a rollup without a window', { metric: 'temperature' }, undefined],
    ['a rollup whose window is an array', { metric: 'temperature', window: [0, 1] }, undefined],
    ['a rollup whose metric is not a string', { metric: 5, window: {} }, undefined],
    ['an alert without a key', { rule: 'r', state: 'firing' }, undefined],
    ['an alert whose state is a number', { rule: 'r', state: 1, key: 'k' }, undefined],
    ['an anomaly score', { metric: 'temperature', score: 0.2, anomalous: false }, 'anomaly'],
    ['an anomaly score without anomalous', { metric: 'temperature', score: 0.2 }, undefined],
    ['an anomaly score whose score is a string', { metric: 'temperature', score: '0.2', anomalous: false }, undefined],
    ['an empty object', {}, undefined],
    ['an array', [{ metrics: {} }], undefined],
    ['null', null, undefined],
    ['a string', 'temperature=21', undefined],
    ['a number', 42, undefined],
  ])('%s', (_what, value, kind) => {
    expect(kindOf(value)).toBe(kind);
  });

  test('a value with metrics wins over rollup and alert shapes', () => {
    expect(kindOf({ metrics: { t: 1 }, metric: 't', window: {}, rule: 'r', state: 's', key: 'k' })).toBe('reading');
    expect(kindOf({ metric: 't', window: {}, rule: 'r', state: 's', key: 'k' })).toBe('rollup');
    expect(kindOf({ metric: 't', window: {}, score: 1, anomalous: true })).toBe('rollup');
    expect(kindOf({ metric: 't', rule: 'r', state: 's', key: 'k', score: 1, anomalous: true })).toBe('alert');
  });
});

describe('readingToPoint', () => {
  test('measurement, device tag, one float field per numeric metric, time = reading.ts', () => {
    const p = readingToPoint(reading({ metrics: { temperature: 21.5, humidity: 40 } }), undefined, schema());
    expect(p).toEqual({ measurement: 'telemetry', tags: { device: 'd1' }, fields: { temperature: 21.5, humidity: 40 }, ts: T0 });
    expect(typeof p.fields.humidity).toBe('number');
  });

  test('booleans and strings are kept as they are; null, objects and arrays are left out', () => {
    const r = reading({ metrics: { on: true, off: false, mode: 'eco', empty: '', nothing: null, obj: { a: 1 }, arr: [1] } as never });
    const p = readingToPoint(r, undefined, schema());
    expect(p.fields).toEqual({ on: true, off: false, mode: 'eco', empty: '' });
  });

  test('reading.tags become tags (string values only); the device tag cannot be overridden', () => {
    const r = reading({ tags: { site: 'lab', fw: '1.2.0', device: 'spoofed', num: 5, nul: null } as never });
    const p = readingToPoint(r, undefined, schema());
    expect(p.tags).toEqual({ site: 'lab', fw: '1.2.0', device: 'd1' });
  });

  test('reading.tags that are not an object are ignored', () => {
    expect(readingToPoint(reading({ tags: 'site=lab' as never }), undefined, schema()).tags).toEqual({ device: 'd1' });
    expect(readingToPoint(reading({ tags: ['a'] as never }), undefined, schema()).tags).toEqual({ device: 'd1' });
  });

  test('device metadata tags come from msg.device: strings and finite numbers, only the configured keys', () => {
    const device = { id: 'd1', type: 'pico-w', floor: 3, room: '', rssi: Number.NaN, owner: { name: 'x' }, active: true, secret: 'no' };
    const p = readingToPoint(reading(), device, schema({ deviceTags: ['type', 'floor', 'room', 'rssi', 'owner', 'active', 'missing'] }));
    expect(p.tags).toEqual({ type: 'pico-w', floor: '3', device: 'd1' });
  });

  test('reading tags win over device metadata of the same name; the reading device wins over both', () => {
    const p = readingToPoint(reading({ tags: { site: 'from-reading' } }), { site: 'from-device', device: 'meta-device' }, schema({ deviceTags: ['site', 'device'] }));
    expect(p.tags).toEqual({ site: 'from-reading', device: 'd1' });
  });

  test('msg.device that is not an object, or no deviceTags configured: no metadata tags', () => {
    expect(readingToPoint(reading(), 'pico-w', schema({ deviceTags: ['type'] })).tags).toEqual({ device: 'd1' });
    expect(readingToPoint(reading(), null, schema({ deviceTags: ['type'] })).tags).toEqual({ device: 'd1' });
    expect(readingToPoint(reading(), { type: 'pico-w' }, schema()).tags).toEqual({ device: 'd1' });
  });

  test('intFields: whole numbers of the configured metrics become bigint; fractions and other metrics stay floats', () => {
    const r = reading({ metrics: { count: 42, negative: -7, zero: 0, fraction: 2.5, other: 42 } });
    const p = readingToPoint(r, undefined, schema({ intFields: ['count', 'negative', 'zero', 'fraction'] }));
    expect(p.fields).toEqual({ count: 42n, negative: -7n, zero: 0n, fraction: 2.5, other: 42 });
    expect(encodePoint(p)).toBe(`telemetry,device=d1 count=42i,negative=-7i,zero=0i,fraction=2.5,other=42 ${T0}`);
  });

  test('intFields does not turn booleans or strings into integers', () => {
    const p = readingToPoint(reading({ metrics: { flag: true, label: '42' } }), undefined, schema({ intFields: ['flag', 'label'] }));
    expect(p.fields).toEqual({ flag: true, label: '42' });
  });

  // Regression, fixed (was: points.ts readingToPoint): Number.isInteger(1e19) is true, so an intFields metric past the
  // 64-bit range becomes 10000000000000000000n and is encoded `10000000000000000000i`, which every
  // backend refuses with 400 (the embedded store for the whole batch it sits in, so other messages'
  // good points are rejected with it). Fix: Number.isSafeInteger(v) instead of Number.isInteger(v).
  test('intFields: a whole number outside the 64-bit integer range stays a float', () => {
    const p = readingToPoint(reading({ metrics: { big: 1e19, small: -1e19, safe: 2 ** 53 - 1 } }), undefined, schema({ intFields: ['big', 'small', 'safe'] }));
    expect(p.fields).toEqual({ big: 1e19, small: -1e19, safe: 9_007_199_254_740_991n });
    expect(encodePoint(p)).not.toContain('10000000000000000000i');
  });

  test.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('a %s metric is refused with invalid_value', (_what, v) => {
    const e = thrown(() => readingToPoint(reading({ metrics: { temperature: 21, bad: v } }), undefined, schema()));
    expect(e.code).toBe('invalid_value');
    expect(e.message).toBe(`metric "bad" is ${v}`);
  });

  test('no metric that can be written is refused with no_metrics', () => {
    const e = thrown(() => readingToPoint(reading({ metrics: {} }), undefined, schema()));
    expect(e.code).toBe('no_metrics');
    expect(e.message).toBe('reading from "d1" has no metrics');
    expect(thrown(() => readingToPoint(reading({ metrics: { a: null, b: { x: 1 } } as never }), undefined, schema())).code).toBe('no_metrics');
  });

  test('a missing or empty device is refused with not_a_reading', () => {
    expect(thrown(() => readingToPoint(reading({ device: '' }), undefined, schema())).code).toBe('not_a_reading');
    const e = thrown(() => readingToPoint(reading({ device: 7 as never }), undefined, schema()));
    expect(e.code).toBe('not_a_reading');
    expect(e.message).toBe('reading.device must be a non-empty string, got number');
  });

  test('a time that is not a finite number is refused with invalid_ts', () => {
    for (const ts of [Number.NaN, '2026-01-01', undefined, Number.POSITIVE_INFINITY]) {
      const e = thrown(() => readingToPoint(reading({ ts: ts as never }), undefined, schema()));
      expect(e.code).toBe('invalid_ts');
    }
  });

  test('the configured measurement is used', () => {
    expect(readingToPoint(reading(), undefined, schema({ readingMeasurement: 'sensors' })).measurement).toBe('sensors');
  });
});

describe('rollupToPoint', () => {
  test('tags device, metric, level and rollup.tags; count, first_ts, last_ts and window_ms as integers; time = window.start', () => {
    const p = rollupToPoint(rollup({ tags: { site: 'lab', n: 1 } as never }), undefined, schema());
    expect(p).toEqual({
      measurement: 'rollup',
      tags: { site: 'lab', device: 'd1', metric: 'temperature', level: '1m' },
      fields: {
        count: 3n,
        sum: 63,
        mean: 21,
        min: 20,
        max: 22,
        stddev: 0.8165,
        first: 20,
        last: 22,
        first_ts: BigInt(T0 + 1000),
        last_ts: BigInt(T0 + 59_000),
        window_ms: 60_000n,
      },
      ts: T0,
    });
    expect(typeof p.fields.mean).toBe('number');
    expect(typeof p.fields.sum).toBe('number');
  });

  test('the float fields are written as floats even when whole', () => {
    const line = encodePoint(rollupToPoint(rollup({ count: 1, sum: 20, mean: 20, min: 20, max: 20, stddev: 0, first: 20, last: 20 }), undefined, schema()));
    expect(line).toContain(' count=1i,sum=20,mean=20,min=20,max=20,stddev=0,first=20,last=20,');
  });

  test('missing or non-finite float fields, first/last times and level are left out', () => {
    const r = rollup({ level: undefined, stddev: Number.NaN, first: undefined as never, last: Number.POSITIVE_INFINITY, firstTs: undefined, lastTs: Number.NaN });
    const p = rollupToPoint(r, undefined, schema());
    expect(p.tags).toEqual({ device: 'd1', metric: 'temperature' });
    expect(Object.keys(p.fields).sort()).toEqual(['count', 'max', 'mean', 'min', 'sum', 'window_ms']);
  });

  test('fractional times and window sizes are truncated to whole ms', () => {
    const p = rollupToPoint(rollup({ firstTs: T0 + 0.9, lastTs: T0 + 1.5, window: { start: T0, end: T0 + 1, size: 1000.7 } }), undefined, schema());
    expect(p.fields.first_ts).toBe(BigInt(T0));
    expect(p.fields.last_ts).toBe(BigInt(T0 + 1));
    expect(p.fields.window_ms).toBe(1000n);
  });

  test('device metadata tags apply to rollups too; level and metric cannot be overridden by rollup.tags', () => {
    const p = rollupToPoint(rollup({ tags: { metric: 'x', level: 'y', device: 'z' } }), { type: 'pico-w' }, schema({ deviceTags: ['type'] }));
    expect(p.tags).toEqual({ type: 'pico-w', device: 'd1', metric: 'temperature', level: '1m' });
  });

  test.each([
    ['a fractional count', { count: 2.5 }, 'invalid_value'],
    ['a negative count', { count: -1 }, 'invalid_value'],
    ['a missing count', { count: undefined }, 'invalid_value'],
    ['an empty metric', { metric: '' }, 'not_a_reading'],
    ['a missing device', { device: undefined }, 'not_a_reading'],
    ['a window that is not an object', { window: 5 }, 'not_a_reading'],
    ['a window without a start', { window: { end: 1, size: 1 } }, 'invalid_ts'],
  ])('%s is refused (%s)', (_what, over, code) => {
    expect(thrown(() => rollupToPoint(rollup(over as never), undefined, schema())).code).toBe(code);
  });

  test('the configured measurement is used', () => {
    expect(rollupToPoint(rollup(), undefined, schema({ rollupMeasurement: 'agg' })).measurement).toBe('agg');
  });
});

describe('alertToPoint', () => {
  test('tags device, rule, severity, key, metric; fields state, value, since, acknowledged, message; time = since', () => {
    const p = alertToPoint(alert(), undefined, schema());
    expect(p).toEqual({
      measurement: 'alerts',
      tags: { device: 'd1', rule: 'too-hot', severity: 'major', key: 'too-hot/d1/temperature', metric: 'temperature' },
      fields: { state: 'firing', since: BigInt(T0 + 5000), value: 31.5, acknowledged: false, message: 'temperature 31.5 > 30' },
      ts: T0 + 5000,
    });
  });

  test('a string or boolean value goes to value_text; a missing one and the optional fields are left out', () => {
    expect(alertToPoint(alert({ value: 'open' }), undefined, schema()).fields.value_text).toBe('open');
    expect(alertToPoint(alert({ value: true }), undefined, schema()).fields).toMatchObject({ value_text: 'true' });
    const p = alertToPoint(alert({ value: undefined, metric: undefined, acknowledged: undefined, message: undefined }), undefined, schema());
    expect(p.fields).toEqual({ state: 'firing', since: BigInt(T0 + 5000) });
    expect(p.tags).toEqual({ device: 'd1', rule: 'too-hot', severity: 'major', key: 'too-hot/d1/temperature' });
  });

  test('a non-finite numeric value is left out', () => {
    expect(alertToPoint(alert({ value: Number.NaN }), undefined, schema()).fields).not.toHaveProperty('value');
  });

  test('device metadata tags are added, and cannot replace the alert tags', () => {
    const p = alertToPoint(alert(), { site: 'lab', rule: 'fake' }, schema({ deviceTags: ['site', 'rule'] }));
    expect(p.tags).toMatchObject({ site: 'lab', rule: 'too-hot' });
  });

  test.each([
    ['no severity', { severity: undefined }, 'not_a_reading'],
    ['an empty rule', { rule: '' }, 'not_a_reading'],
    ['an empty state', { state: '' }, 'not_a_reading'],
    ['no since', { since: undefined }, 'invalid_ts'],
    ['a since that is a string', { since: '2026-01-01' }, 'invalid_ts'],
  ])('%s is refused (%s)', (_what, over, code) => {
    expect(thrown(() => alertToPoint(alert(over as never), undefined, schema())).code).toBe(code);
  });

  test('the configured measurement is used', () => {
    expect(alertToPoint(alert(), undefined, schema({ alertMeasurement: 'events' })).measurement).toBe('events');
  });
});

describe('anomalyToPoint', () => {
  test('tags device, metric and the score tags; fields value, score, band, anomalous, signal, learning; time = ts', () => {
    const p = anomalyToPoint(score({ tags: { site: 'north', device: 'fake', n: 5 as never } }), undefined, schema());
    expect(p).toEqual({
      measurement: 'anomaly',
      tags: { site: 'north', device: 'd1', metric: 'temperature' },
      fields: { value: 31.5, score: 0.83, expected: 21.2, lower: 18.7, upper: 23.7, anomalous: true, signal: 'daily', learning: false },
      ts: T0 + 7000,
    });
    expect(encodePoint(p)).toBe(
      `anomaly,device=d1,metric=temperature,site=north value=31.5,score=0.83,expected=21.2,lower=18.7,upper=23.7,anomalous=true,signal="daily",learning=false ${T0 + 7000}`,
    );
  });

  test('with a maintenance estimate: ttf (integer ms) and probability', () => {
    const p = anomalyToPoint(score({ maintenance: { ...ESTIMATE } }), undefined, schema());
    expect(p.fields).toMatchObject({ ttf: 7_200_000n, probability: 0.72 });
    const none = anomalyToPoint(score({ maintenance: { ...ESTIMATE, ttf: null } }), undefined, schema());
    expect(none.fields).not.toHaveProperty('ttf');
    expect(none.fields.probability).toBe(0.72);
    expect(anomalyToPoint(score(), undefined, schema()).fields).not.toHaveProperty('probability');
  });

  test('a band that does not exist yet (NaN, or null after JSON) is left out', () => {
    const p = anomalyToPoint(score({ expected: Number.NaN, lower: null as never, upper: undefined as never, learning: true, signal: 'learning' }), undefined, schema());
    expect(p.fields).toEqual({ value: 31.5, score: 0.83, anomalous: true, signal: 'learning', learning: true });
  });

  test('device metadata tags are added, and cannot replace device or metric', () => {
    const p = anomalyToPoint(score(), { site: 'lab', metric: 'fake' }, schema({ deviceTags: ['site', 'metric'] }));
    expect(p.tags).toEqual({ site: 'lab', device: 'd1', metric: 'temperature' });
  });

  test.each([
    ['no device', { device: undefined }, 'not_a_reading'],
    ['an empty metric', { metric: '' }, 'not_a_reading'],
    ['a NaN value', { value: Number.NaN }, 'invalid_value'],
    ['a value that is a string', { value: '31.5' }, 'invalid_value'],
    ['an infinite score', { score: Infinity }, 'invalid_value'],
    ['no ts', { ts: undefined }, 'invalid_ts'],
    ['a ts past what stores hold', { ts: 1e16 }, 'ts_out_of_range'],
  ])('%s is refused (%s)', (_what, over, code) => {
    expect(thrown(() => anomalyToPoint(score(over as never), undefined, schema())).code).toBe(code);
  });

  test('the configured measurement is used; a schema without one uses anomaly', () => {
    expect(anomalyToPoint(score(), undefined, schema({ anomalyMeasurement: 'scores' })).measurement).toBe('scores');
    const { anomalyMeasurement: _unused, ...older } = DEFAULT_POINT_SCHEMA;
    expect(anomalyToPoint(score(), undefined, older).measurement).toBe('anomaly');
  });

  test('scoreFields: only the fields listed are stored, in the usual order; a band or estimate that is absent stays absent', () => {
    const keep = parseScoreFields(['upper', 'score', 'lower', 'expected', 'anomalous', 'ttf', 'probability']);
    expect(keep.unknown).toEqual([]);
    const s = schema({ scoreFields: keep.fields });
    const p = anomalyToPoint(score({ maintenance: { ...ESTIMATE } }), undefined, s);
    expect(p.fields).toEqual({ score: 0.83, expected: 21.2, lower: 18.7, upper: 23.7, anomalous: true, ttf: 7_200_000n, probability: 0.72 });
    expect(Object.keys(p.fields)).toEqual(['score', 'expected', 'lower', 'upper', 'anomalous', 'ttf', 'probability']);
    expect(anomalyToPoint(score({ expected: Number.NaN, lower: Number.NaN, upper: Number.NaN }), undefined, s).fields).toEqual({ score: 0.83, anomalous: true });
    // The value is still checked when it is not stored: a score with a NaN value is malformed.
    expect(thrown(() => anomalyToPoint(score({ value: Number.NaN }), undefined, s)).code).toBe('invalid_value');
  });

  test('bandGate: a series keeps its band at most once every bandEvery ms of event time; other fields every time; series apart; older scores keep theirs', () => {
    const s = schema({ bandGate: new BandGate(500) });
    const at = (metric: string, ts: number, device = 'd1'): Record<string, unknown> => anomalyToPoint(score({ device, metric, ts }), undefined, s).fields;
    const band = { expected: 21.2, lower: 18.7, upper: 23.7 };
    expect(at('temperature', T0)).toMatchObject({ score: 0.83, ...band });
    const thinned = at('temperature', T0 + 40);
    expect(thinned).toEqual({ value: 31.5, score: 0.83, anomalous: true, signal: 'daily', learning: false });
    expect(at('temperature', T0 + 499)).not.toHaveProperty('expected');
    expect(at('humidity', T0 + 40)).toMatchObject(band); // another metric: its own series
    expect(at('temperature', T0 + 40, 'd2')).toMatchObject(band); // another device
    expect(at('temperature', T0 + 500)).toMatchObject(band); // 500 ms after the last band kept
    expect(at('temperature', T0 + 900)).not.toHaveProperty('lower');
    expect(at('temperature', T0 + 100)).toMatchObject(band); // older than the last kept (a redelivery): kept, and...
    expect(at('temperature', T0 + 950)).not.toHaveProperty('upper'); // ...the gate still counts from T0 + 500
    expect(at('temperature', T0 + 1000)).toMatchObject(band);
    expect(at('temperature', T0 + 1000)).toMatchObject(band); // the same score again (a redelivery): keeps its band
    expect(at('temperature', T0 + 1100)).not.toHaveProperty('expected'); // ...and the gate still counts from T0 + 1000
    expect(s.bandGate!.series).toBe(3);
  });

  test('BandGate: past maxSeries it starts over; everyMs must be positive', () => {
    const g = new BandGate(1000, 2);
    expect([g.admit('a', 'm', 0), g.admit('b', 'm', 0), g.admit('a', 'm', 10)]).toEqual([true, true, false]);
    expect(g.admit('c', 'm', 0)).toBe(true); // a third series: forgets the two
    expect(g.series).toBe(1);
    expect(g.admit('a', 'm', 20)).toBe(true);
    expect(() => new BandGate(0)).toThrow(RangeError);
    expect(() => new BandGate(Number.NaN)).toThrow(RangeError);
  });

  test('scoreGate: a series stores a score at most once every scoreEvery ms; anomalous ones, maintenance alerts and the return to normal always; series apart; older scores stored', () => {
    const s = schema({ scoreGate: new ScoreGate(500) });
    const calm = { anomalous: false, maintenance: undefined };
    /** The times of the scores toPoints stores, of one message holding them all in order. */
    const stored = (list: Array<Partial<AnomalyScore>>): number[] => {
      const r = toPoints(list.map((o) => score({ ...calm, ...o })), undefined, s);
      expect(r.rejects).toEqual([]);
      expect(r.indexes).toHaveLength(r.points.length);
      return r.points.map((p) => p.ts);
    };
    // A calm series, 25 scores a second: one every 500 ms from the first.
    expect(stored(Array.from({ length: 30 }, (_, i) => ({ ts: T0 + i * 40 })))).toEqual([T0, T0 + 520, T0 + 1040]);
    // An anomalous score is stored whenever it comes, and so is the first calm one after it; then the interval again.
    expect(stored([{ ts: T0 + 1080 }, { ts: T0 + 1120, anomalous: true }, { ts: T0 + 1160, anomalous: true }, { ts: T0 + 1200 }, { ts: T0 + 1240 }, { ts: T0 + 1700 }])).toEqual([
      T0 + 1120,
      T0 + 1160,
      T0 + 1200,
      T0 + 1700,
    ]);
    // A maintenance alert counts as anomalous; an estimate without one does not.
    expect(stored([{ ts: T0 + 1740, maintenance: { ...ESTIMATE } }, { ts: T0 + 1780, maintenance: { ...ESTIMATE, alert: false } }, { ts: T0 + 1820, maintenance: { ...ESTIMATE, alert: false } }])).toEqual([T0 + 1740, T0 + 1780]);
    // Another metric and another device are their own series.
    expect(stored([{ ts: T0 + 1830, metric: 'humidity' }, { ts: T0 + 1830, device: 'd2' }, { ts: T0 + 1840, metric: 'humidity' }])).toEqual([T0 + 1830, T0 + 1830]);
    // Older than the last stored (a redelivery): stored, and the interval still counts from the last stored.
    expect(stored([{ ts: T0 + 40 }, { ts: T0 + 2000 }, { ts: T0 + 2280 }, { ts: T0 + 2300 }])).toEqual([T0 + 40, T0 + 2280]);
    // The same score again (a redelivered reading, its first write perhaps lost): stored again, the interval unmoved.
    expect(stored([{ ts: T0 + 2280 }, { ts: T0 + 2280 }, { ts: T0 + 2500 }, { ts: T0 + 2780 }])).toEqual([T0 + 2280, T0 + 2280, T0 + 2780]);
    expect(s.scoreGate!.series).toBe(3);
  });

  test('scoreGate: a malformed score is rejected as without the gate, and does not move it', () => {
    const s = schema({ scoreGate: new ScoreGate(500) });
    const r = toPoints([score({ anomalous: false, value: Number.NaN }), score({ anomalous: false, ts: Number.NaN }), score({ anomalous: false, device: '' }), score({ anomalous: false })], undefined, s);
    expect(r.rejects.map((x) => [x.index, x.code])).toEqual([
      [0, 'invalid_value'],
      [1, 'invalid_ts'],
      [2, 'not_a_reading'],
    ]);
    expect(r.indexes).toEqual([3]);
    expect(s.scoreGate!.series).toBe(1);
  });

  test('scoreGate with bandGate: the band gate only sees the scores stored', () => {
    const s = schema({ scoreGate: new ScoreGate(500), bandGate: new BandGate(500) });
    const r = toPoints(
      Array.from({ length: 30 }, (_, i) => score({ anomalous: i === 5, ts: T0 + i * 40 })),
      undefined,
      s,
    );
    // Stored: T0, the anomalous T0 + 200, the calm T0 + 240 after it, then T0 + 760 (the first 500 ms or more after T0 + 240).
    expect(r.points.map((p) => [p.ts - T0, 'expected' in p.fields])).toEqual([
      [0, true],
      [200, false],
      [240, false],
      [760, true],
    ]);
  });

  test('ScoreGate: past maxSeries it starts over; everyMs must be positive', () => {
    const g = new ScoreGate(1000, 2);
    expect([g.admit('a', 'm', 0, false), g.admit('b', 'm', 0, false), g.admit('a', 'm', 10, false)]).toEqual([true, true, false]);
    expect(g.admit('c', 'm', 0, false)).toBe(true); // a third series: forgets the two
    expect(g.series).toBe(1);
    expect(g.admit('a', 'm', 20, false)).toBe(true);
    expect(() => new ScoreGate(0)).toThrow(RangeError);
    expect(() => new ScoreGate(Number.NaN)).toThrow(RangeError);
  });

  test('scoreFields: a score with none of the listed fields (an estimate without maintenance) makes no point and no reject', () => {
    const s = schema({ scoreFields: parseScoreFields(['ttf', 'probability']).fields });
    const r = toPoints([score(), score({ metric: 'vibration', maintenance: { ...ESTIMATE } })], undefined, s);
    expect(r.points.map((p) => [p.tags.metric, p.fields])).toEqual([['vibration', { ttf: 7_200_000n, probability: 0.72 }]]);
    expect(r.indexes).toEqual([1]);
    expect(r.rejects).toEqual([]);
  });

  test('parseScoreFields: empty is every field; names that are not score fields are reported', () => {
    expect(parseScoreFields([])).toEqual({ unknown: [] });
    expect(parseScoreFields(['score', 'vaule', 'Score'])).toEqual({ unknown: ['vaule', 'Score'] });
    expect([...parseScoreFields([...SCORE_FIELDS]).fields!]).toEqual([...SCORE_FIELDS]);
    // Every field anomalyToPoint can write is a score field.
    const all = anomalyToPoint(score({ maintenance: { ...ESTIMATE } }), undefined, schema());
    expect(Object.keys(all.fields).sort()).toEqual([...SCORE_FIELDS].sort());
  });

  test('toPoints maps a list of scores, as the anomaly node sends them', () => {
    const r = toPoints([score(), score({ metric: 'humidity', value: 40 }), score({ value: Number.NaN })], undefined, schema());
    expect(r.points.map((p) => [p.measurement, p.tags.metric, p.fields.value])).toEqual([
      ['anomaly', 'temperature', 31.5],
      ['anomaly', 'humidity', 40],
    ]);
    expect(r.rejects.map((x) => [x.index, x.code])).toEqual([[2, 'invalid_value']]);
  });
});

// Regression, fixed (was: points.ts requireTs and rollupToPoint): any finite time is accepted. A time past what the
// stores hold (InfluxDB: int64 ns, 1677-09-21..2262-04-11; the embedded store: safe integers) is
// refused by the store with a 400, and the writer rejects the whole batch the line sits in, other
// messages' good points included (see test/nodes/write.test.ts). first_ts/last_ts/window_ms of
// 1e300 become integers far past 64 bits, with the same effect.
describe('times the stores cannot hold', () => {
  const LIMIT = 9_223_372_036_854; // ms: int64 nanoseconds, 2262-04-11T23:47:16.854Z

  test.each([[1e16], [-1e16], [LIMIT + 1], [-(LIMIT + 1)], [Number.MAX_VALUE]])('ts %p is refused with ts_out_of_range', (ts) => {
    expect(thrown(() => readingToPoint(reading({ ts }), undefined, schema())).code).toBe('ts_out_of_range');
    expect(thrown(() => rollupToPoint(rollup({ window: { start: ts, end: ts, size: 60_000 } }), undefined, schema())).code).toBe('ts_out_of_range');
    expect(thrown(() => alertToPoint(alert({ since: ts }), undefined, schema())).code).toBe('ts_out_of_range');
  });

  test.each([[0], [LIMIT], [-LIMIT], [Date.UTC(2262, 3, 11)]])('ts %p is accepted', (ts) => {
    expect(readingToPoint(reading({ ts }), undefined, schema()).ts).toBe(ts);
    expect(alertToPoint(alert({ since: ts }), undefined, schema()).fields.since).toBe(BigInt(ts));
  });

  test('rollup first_ts, last_ts and window_ms past 64-bit integers are left out', () => {
    const p = rollupToPoint(rollup({ firstTs: 1e300, lastTs: -1e300, window: { start: T0, end: T0 + 1, size: 1e300 } }), undefined, schema());
    for (const v of Object.values(p.fields)) {
      if (typeof v === 'bigint') expect(v >= -(2n ** 63n) && v < 2n ** 63n).toBe(true);
    }
  });
});

describe('toPoints', () => {
  test('one Reading: one point, no rejects, not a batch', () => {
    const r = toPoints(reading(), undefined, schema());
    expect(r.points).toEqual([readingToPoint(reading(), undefined, schema())]);
    expect(r.rejects).toEqual([]);
    expect(r.batch).toBe(false);
  });

  test('one value that is none of the types: a reject without an index', () => {
    const r = toPoints({ hello: 'world' }, undefined, schema());
    expect(r.points).toEqual([]);
    expect(r.batch).toBe(false);
    expect(r.rejects).toEqual([{ code: 'not_a_reading', message: 'payload is not a Reading, Rollup, Alert event or anomaly score: "{\\"hello\\":\\"world\\"}"' }]);
  });

  test('a mixed array: readings, rollups and alerts mapped in order; rejects carry their indexes', () => {
    const payload = [reading(), 'junk', rollup(), reading({ metrics: { t: Number.NaN } }), alert(), reading({ metrics: {} }), null, rollup({ count: -3 }), reading({ device: 'd2' })];
    const r = toPoints(payload, { type: 'pico-w' }, schema({ deviceTags: ['type'] }));
    expect(r.batch).toBe(true);
    expect(r.points.map((p) => [p.measurement, p.tags.device])).toEqual([
      ['telemetry', 'd1'],
      ['rollup', 'd1'],
      ['alerts', 'd1'],
      ['telemetry', 'd2'],
    ]);
    expect(r.points.every((p) => p.tags.type === 'pico-w')).toBe(true);
    expect(r.rejects.map((x) => [x.index, x.code])).toEqual([
      [1, 'not_a_reading'],
      [3, 'invalid_value'],
      [5, 'no_metrics'],
      [6, 'not_a_reading'],
      [7, 'invalid_value'],
    ]);
  });

  test('an empty array: nothing, and a batch', () => {
    const r = toPoints([], undefined, schema());
    expect(r.points).toEqual([]);
    expect(r.rejects).toEqual([]);
    expect(r.batch).toBe(true);
  });

  test('an array of one bad element: a reject with index 0', () => {
    expect(toPoints([42], undefined, schema()).rejects).toEqual([{ code: 'not_a_reading', message: 'payload is not a Reading, Rollup, Alert event or anomaly score: "42"', index: 0 }]);
  });

  test('errors that are not ThingwireErrors are not swallowed', () => {
    const evil = Object.defineProperty({}, 'metrics', {
      enumerable: true,
      get(): never {
        throw new TypeError('boom');
      },
    });
    expect(() => toPoints(evil, undefined, schema())).toThrow(TypeError);
  });
});

describe('a batch of readings: what its points share', () => {
  test('with keepMetrics, fields are the reading\'s metrics object when every metric is stored as it is; a copy otherwise', () => {
    const r = reading({ metrics: { temperature: 21.5, on: true, mode: 'eco' } });
    expect(readingToPoint(r, undefined, schema({ keepMetrics: true })).fields).toBe(r.metrics);
    const copied = readingToPoint(r, undefined, schema());
    expect(copied.fields).not.toBe(r.metrics);
    expect(copied.fields).toEqual(r.metrics);
    // A value left out, or an integer field turned into a BigInt: a copy, and the reading is not changed.
    const withNull = reading({ metrics: { temperature: 21.5, nothing: null } as never });
    const p1 = readingToPoint(withNull, undefined, schema({ keepMetrics: true }));
    expect(p1.fields).not.toBe(withNull.metrics);
    expect(p1.fields).toEqual({ temperature: 21.5 });
    expect(withNull.metrics).toEqual({ temperature: 21.5, nothing: null });
    const counted = reading({ metrics: { temperature: 21.5, count: 7 } });
    const p2 = readingToPoint(counted, undefined, schema({ intFields: ['count'], keepMetrics: true }));
    expect(p2.fields).toEqual({ temperature: 21.5, count: 7n });
    expect(counted.metrics).toEqual({ temperature: 21.5, count: 7 });
    // An integer field that is not a whole number this time is a float, as it is: shared.
    const frac = reading({ metrics: { count: 7.5 } });
    expect(readingToPoint(frac, undefined, schema({ intFields: ['count'], keepMetrics: true })).fields).toBe(frac.metrics);
  });

  test('readings of one device without tags of their own share one tags object; any other reading gets its own', () => {
    const s = schema({ deviceTags: ['type'] });
    const meta = { id: 'd1', type: 'pico-w' };
    const items = [
      reading({ ts: T0 }),
      reading({ ts: T0 + 1 }),
      reading({ ts: T0 + 2, tags: { site: 'lab' } }),
      reading({ ts: T0 + 3 }),
      reading({ ts: T0 + 4, tags: { n: 5 } as never }),
      reading({ ts: T0 + 5, device: 'd2' }),
      reading({ ts: T0 + 6, device: 'd2' }),
    ];
    const r = toPoints(items, meta, s);
    const t = r.points.map((p) => p.tags);
    expect(t).toEqual([
      { type: 'pico-w', device: 'd1' },
      { type: 'pico-w', device: 'd1' },
      { type: 'pico-w', site: 'lab', device: 'd1' },
      { type: 'pico-w', device: 'd1' },
      { type: 'pico-w', device: 'd1' },
      { type: 'pico-w', device: 'd2' },
      { type: 'pico-w', device: 'd2' },
    ]);
    // tags without a text value are no tags: that reading shares too.
    expect([t[1], t[3], t[4]].every((x) => x === t[0])).toBe(true);
    expect(t[2]).not.toBe(t[0]);
    expect(t[5]).not.toBe(t[0]);
    expect(t[6]).toBe(t[5]);
    // The lines are those of points made one by one.
    expect(r.points.map(encodePoint)).toEqual(items.map((x) => encodePoint(readingToPoint(x, meta, s))));
  });

  test('readings of the same device with other metadata (a map of devices) do not share tags', () => {
    const s = schema({ deviceTags: ['type'] });
    const items = [reading({ device: 'a' }), reading({ device: 'a' })];
    const r = toPoints(items, undefined, s, { a: { type: 'pico-w' } });
    expect(r.points[1].tags).toBe(r.points[0].tags);
    const mixed = toPoints([reading({ device: 'a' }), reading({ device: 'b' }), reading({ device: 'a' })], { type: 'fallback' }, s, { a: { type: 'pico-w' } });
    expect(mixed.points.map((p) => p.tags.type)).toEqual(['pico-w', 'fallback', 'pico-w']);
    expect(mixed.points[2].tags).not.toBe(mixed.points[1].tags);
  });
});

describe('toPoints with a map of several devices (a batch)', () => {
  test('each reading takes its own device\'s metadata; a device not in the map falls back to msg.device', () => {
    const s = schema({ deviceTags: ['type'] });
    const items = [reading({ device: 'a' }), reading({ device: 'b' }), reading({ device: 'c' })];
    const r = toPoints(items, { type: 'fallback' }, s, { a: { id: 'a', type: 'pico-w' }, b: { id: 'b', type: 'esp32' } });
    expect(r.points.map((p) => [p.tags.device, p.tags.type])).toEqual([
      ['a', 'pico-w'],
      ['b', 'esp32'],
      ['c', 'fallback'],
    ]);
  });

  test('an inherited key (__proto__, toString) is never taken for a device', () => {
    const s = schema({ deviceTags: ['type'] });
    const r = toPoints([reading({ device: 'toString' })], undefined, s, { a: { type: 'x' } });
    expect(r.points[0].tags).toEqual({ device: 'toString' });
  });
});
