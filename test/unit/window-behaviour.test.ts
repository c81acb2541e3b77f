/**
 * nodes/window/engine.ts, case by case: window edges and the watermark rule, the late-data
 * policies (drop, late output, reopen with corrections that cascade), per-key versus global
 * watermarks, fan-out, non-numeric values, groupBy, the latest-value view, counters, rejects and
 * option checks. The brute-force comparisons are in window-engine.test.ts.
 */
import type { Reading } from '../../nodes/lib/contract';
import { WindowEngine, type WindowEngineOptions, type WindowRollup } from '../../nodes/window/engine';

const T0 = Date.UTC(2026, 5, 1, 12); // a minute and hour boundary
const S = 1000;
const MIN = 60_000;
const HOUR = 3_600_000;

const rd = (ts: number, metrics: Reading['metrics'], device = 'dev1'): Reading => ({ device, ts, metrics });

/** Ingests each reading on its own; returns every rollup in order. */
function feed(e: WindowEngine, readings: Reading[]): WindowRollup[] {
  const out: WindowRollup[] = [];
  for (const r of readings) out.push(...e.ingest(r).rollups);
  return out;
}

const brief = (r: WindowRollup): string => `${r.device}/${r.metric} ${r.level} +${(r.window.start - T0) / S}s n=${r.count}${r.correction ? ' correction' : ''}`;

describe('window edges and the watermark', () => {
  test('start is inclusive, end exclusive', () => {
    const e = new WindowEngine({ levels: ['1m'] });
    const out = feed(e, [rd(T0, { v: 1 }), rd(T0 + MIN - 1, { v: 2 }), rd(T0 + MIN, { v: 4 })]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ window: { start: T0, end: T0 + MIN, size: MIN }, level: '1m', count: 2, sum: 3, first: 1, last: 2, firstTs: T0, lastTs: T0 + MIN - 1 });
    const rest = e.flush().rollups;
    expect(rest.map(brief)).toEqual(['dev1/v 1m +60s n=1']);
  });

  test('a window is emitted exactly when the watermark (max ts - lateness) reaches its end', () => {
    const e = new WindowEngine({ levels: ['1m'], lateness: 5 * S });
    expect(feed(e, [rd(T0 + 10 * S, { v: 1 }), rd(T0 + MIN + 4999, { v: 2 })])).toHaveLength(0);
    expect(e.watermark('dev1', 'v')).toBe(T0 + MIN - 1);
    expect(feed(e, [rd(T0 + MIN + 5000, { v: 3 })]).map(brief)).toEqual(['dev1/v 1m +0s n=1']);
  });

  test('out-of-order readings within the lateness are counted; first/last follow event time, not arrival', () => {
    const e = new WindowEngine({ levels: ['1m'], lateness: 30 * S });
    feed(e, [rd(T0 + 30 * S, { v: 3 }), rd(T0 + 50 * S, { v: 5 }), rd(T0 + 70 * S, { v: 7 }), rd(T0 + 10 * S, { v: 1 }), rd(T0 + 40 * S, { v: 4 })]);
    const out = feed(e, [rd(T0 + 90 * S, { v: 9 })]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ count: 4, sum: 13, min: 1, max: 5, first: 1, last: 5, firstTs: T0 + 10 * S, lastTs: T0 + 50 * S });
    expect(e.stats().late.dropped).toBe(0);
  });

  test('equal timestamps: first is the earlier arrival, last the later one', () => {
    const e = new WindowEngine({ levels: ['1m'] });
    feed(e, [rd(T0 + S, { v: 1 }), rd(T0 + S, { v: 2 }), rd(T0 + 2 * S, { v: 3 }), rd(T0 + 2 * S, { v: 4 })]);
    expect(e.flush().rollups[0]).toMatchObject({ first: 1, last: 4 });
  });

  test('per-key watermark: one device running ahead does not make another late; a global watermark does', () => {
    const run = (options: WindowEngineOptions): WindowEngine => {
      const e = new WindowEngine({ levels: ['1m'], ...options });
      feed(e, [rd(T0, { v: 1 }, 'slow'), rd(T0 + HOUR, { v: 1 }, 'fast'), rd(T0 + 10 * S, { v: 2 }, 'slow')]);
      return e;
    };
    expect(run({}).stats().late.dropped).toBe(0);
    const g = run({ watermark: 'global' });
    expect(g.stats().late.dropped).toBe(1);
    expect(g.watermark()).toBe(T0 + HOUR);
  });

  test('the global watermark closes a quiet device\'s window as others advance; the per-key one waits', () => {
    const readings = [rd(T0, { v: 1 }, 'quiet'), rd(T0 + 2 * MIN, { v: 1 }, 'busy')];
    expect(feed(new WindowEngine({ watermark: 'global' }), readings).map(brief)).toEqual(['quiet/v 1m +0s n=1']);
    expect(feed(new WindowEngine(), readings)).toHaveLength(0);
  });
});

describe('late data beyond the lateness', () => {
  const base: WindowEngineOptions = { levels: ['1m'], lateness: 10 * S };
  const closedThenLate = [rd(T0 + 5 * S, { v: 1 }), rd(T0 + MIN + 15 * S, { v: 2 }), rd(T0 + 20 * S, { v: 10 })];

  test('drop: counted, not aggregated', () => {
    const e = new WindowEngine(base);
    const out = feed(e, closedThenLate);
    expect(out.map(brief)).toEqual(['dev1/v 1m +0s n=1']);
    expect(e.stats().late).toEqual({ dropped: 1, output: 0, reopened: 0, tooLate: 0 });
  });

  test('output: the late value comes back as a one-metric Reading with the tags', () => {
    const e = new WindowEngine({ ...base, latePolicy: 'output' });
    feed(e, closedThenLate.slice(0, 2));
    const out = e.ingest({ device: 'dev1', ts: T0 + 20 * S, metrics: { v: 10, ok: 1 }, tags: { fw: '1.2' } });
    // ok has its own series (nothing closed there), so only v is late.
    expect(out.late).toEqual([{ device: 'dev1', ts: T0 + 20 * S, metrics: { v: 10 }, tags: { fw: '1.2' } }]);
    expect(out.rollups).toHaveLength(0);
    expect(e.stats().late.output).toBe(1);
  });

  test('reopen: a corrected rollup with the same window key and correction: true', () => {
    const e = new WindowEngine({ ...base, latePolicy: 'reopen' });
    const out = feed(e, closedThenLate);
    expect(out.map(brief)).toEqual(['dev1/v 1m +0s n=1', 'dev1/v 1m +0s n=2 correction']);
    expect(out[1]).toMatchObject({ window: out[0].window, level: '1m', sum: 11, max: 10, first: 1, firstTs: T0 + 5 * S, last: 10, lastTs: T0 + 20 * S });
    expect(out[1].window.start).toBe(out[0].window.start);
    expect(e.stats()).toMatchObject({ corrections: 1, late: { reopened: 1, dropped: 0 } });
  });

  test('reopen: a late reading for a window that never had data is a plain rollup, emitted at once', () => {
    const e = new WindowEngine({ ...base, latePolicy: 'reopen' });
    const out = feed(e, [rd(T0 + 3 * MIN, { v: 1 }), rd(T0 + 30 * S, { v: 5 })]);
    expect(out.map(brief)).toEqual(['dev1/v 1m +0s n=1']);
  });

  test('reopen: beyond the correction horizon the reading is dropped as tooLate', () => {
    const e = new WindowEngine({ ...base, latePolicy: 'reopen', correctionHorizon: 5 * MIN });
    const out = feed(e, [rd(T0, { v: 1 }), rd(T0 + 10 * MIN, { v: 2 }), rd(T0 + 4 * MIN, { v: 3 }), rd(T0 + 30 * S, { v: 4 })]);
    // The 0..1m window ended 9m50s before the watermark: too late; the 4m one is still correctable.
    expect(out.map(brief)).toEqual(['dev1/v 1m +0s n=1', 'dev1/v 1m +240s n=1']);
    expect(e.stats().late).toMatchObject({ reopened: 1, tooLate: 1 });
  });

  test('reopen: corrections cascade to closed upper levels; an open upper level just includes the late data', () => {
    const e = new WindowEngine({ levels: ['1m', '1h'], lateness: 10 * S, latePolicy: 'reopen', correctionHorizon: 2 * HOUR });
    // The 12:00 minute closes; the 12:00 hour is still open, then a late reading for 12:00.
    let out = feed(e, [rd(T0 + S, { v: 1 }), rd(T0 + 2 * MIN, { v: 2 }), rd(T0 + 2 * S, { v: 3 })]);
    expect(out.map(brief)).toEqual(['dev1/v 1m +0s n=1', 'dev1/v 1m +0s n=2 correction']);
    // The hour closes with all three readings; then another late one corrects both levels.
    out = feed(e, [rd(T0 + HOUR + 20 * S, { v: 4 }), rd(T0 + 3 * S, { v: 5 })]);
    expect(out.map(brief)).toEqual(['dev1/v 1m +120s n=1', 'dev1/v 1h +0s n=3', 'dev1/v 1m +0s n=3 correction', 'dev1/v 1h +0s n=4 correction']);
    expect(out[3]).toMatchObject({ sum: 11, first: 1, last: 2, window: { start: T0, end: T0 + HOUR, size: HOUR } });
  });

  test('reopen: corrections are coalesced per ingest() call', () => {
    const e = new WindowEngine({ ...base, latePolicy: 'reopen' });
    feed(e, closedThenLate.slice(0, 2));
    const out = e.ingest([rd(T0 + 21 * S, { v: 1 }), rd(T0 + 22 * S, { v: 1 }), rd(T0 + 23 * S, { v: 1 })]);
    expect(out.rollups.map(brief)).toEqual(['dev1/v 1m +0s n=4 correction']);
    expect(e.stats().late.reopened).toBe(3);
  });

  test('flush: closes everything; later readings for flushed windows are late', () => {
    const e = new WindowEngine({ levels: ['1m', '1h'] });
    feed(e, [rd(T0 + S, { v: 1 })]);
    expect(e.flush().rollups.map(brief)).toEqual(['dev1/v 1m +0s n=1', 'dev1/v 1h +0s n=1']);
    feed(e, [rd(T0 + 2 * S, { v: 1 })]);
    expect(e.stats().late.dropped).toBe(1);
    expect(e.flush().rollups).toHaveLength(0);
  });
});

describe('keys and values', () => {
  test('a reading with several metrics fans out to one series per metric', () => {
    const e = new WindowEngine();
    e.ingest([rd(T0, { t: 20, h: 50 }), rd(T0 + S, { t: 22 }), rd(T0 + 2 * S, { h: 52, p: 1013 })]);
    const out = e.flush().rollups;
    expect(out.map((r) => [r.metric, r.count, r.mean])).toEqual([
      ['t', 2, 21],
      ['h', 2, 51],
      ['p', 1, 1013],
    ]);
    expect(e.stats().keys).toBe(3);
  });

  test('non-numeric values are counted, not averaged', () => {
    const e = new WindowEngine();
    e.ingest([rd(T0, { v: 1, s: 'open' }), rd(T0 + S, { v: 'n/a', s: true }), rd(T0 + 2 * S, { v: 3 })]);
    const [v, s] = e.flush().rollups;
    expect(v).toMatchObject({ metric: 'v', count: 2, nonNumeric: 1, sum: 4, mean: 2 });
    expect(s).toMatchObject({ metric: 's', count: 0, nonNumeric: 2, sum: 0 });
    for (const k of ['mean', 'min', 'max', 'stddev', 'first', 'last', 'p50', 'p99'] as const) expect(s[k]).toBeNaN();
    // NaN reads as null in JSON, which the store skips.
    expect(JSON.parse(JSON.stringify(s)).mean).toBeNull();
    expect(e.stats().nonNumeric).toBe(3);
  });

  test("booleans: 'number' aggregates them as 1/0 (a duty cycle)", () => {
    const e = new WindowEngine({ booleans: 'number' });
    e.ingest([rd(T0, { on: true }), rd(T0 + S, { on: false }), rd(T0 + 2 * S, { on: true }), rd(T0 + 3 * S, { on: true })]);
    expect(e.flush().rollups[0]).toMatchObject({ count: 4, sum: 3, mean: 0.75, nonNumeric: 0 });
  });

  test('non-finite numbers are counted as non-numeric', () => {
    const e = new WindowEngine();
    e.ingest([rd(T0, { v: NaN }), rd(T0 + S, { v: Infinity }), rd(T0 + 2 * S, { v: 2 })]);
    expect(e.flush().rollups[0]).toMatchObject({ count: 1, nonNumeric: 2, sum: 2 });
  });

  test('groupBy: any key; its value is the rollups\' device', () => {
    const e = new WindowEngine({ groupBy: (r) => `site:${r.tags?.site ?? 'none'}` });
    e.ingest([
      { device: 'a', ts: T0, metrics: { t: 10 }, tags: { site: 'north' } },
      { device: 'b', ts: T0 + S, metrics: { t: 20 }, tags: { site: 'north' } },
      { device: 'c', ts: T0 + 2 * S, metrics: { t: 30 } },
    ]);
    expect(e.flush().rollups.map((r) => [r.device, r.count, r.mean])).toEqual([
      ['site:north', 2, 15],
      ['site:none', 1, 30],
    ]);
    // The latest-value view stays per real device.
    expect(e.latest().map((l) => l.device)).toEqual(['a', 'b', 'c']);
  });

  test('groupBy: the per-device latest values are bounded by maxKeys too', () => {
    const e = new WindowEngine({ groupBy: () => 'all', maxKeys: 10 });
    for (let d = 0; d < 50; d++) e.ingest(rd(T0 + d, { v: d }, `d${d}`));
    const l = e.latest();
    expect(l.length).toBeLessThanOrEqual(10);
    expect(l[l.length - 1]).toMatchObject({ device: 'd49', value: 49 });
    expect(e.stats().keys).toBe(1);
  });

  test('stddev is the sample standard deviation, stable far from zero', () => {
    const e = new WindowEngine();
    e.ingest([1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16].map((v, i) => rd(T0 + i * S, { v })));
    const r = e.flush().rollups[0];
    expect(r.mean).toBe(1e9 + 10);
    expect(r.stddev).toBeCloseTo(Math.sqrt(30), 9);
  });

  test('percentiles come from the sketch, within 1 %', () => {
    const e = new WindowEngine();
    for (let i = 1; i <= 1000; i++) e.ingest(rd(T0 + i * 50, { v: i }));
    const r = e.flush().rollups[0];
    for (const [k, want] of [
      ['p50', 500],
      ['p90', 900],
      ['p95', 950],
      ['p99', 990],
    ] as const) {
      expect(Math.abs(r[k]! - want)).toBeLessThanOrEqual(0.01 * want);
    }
    const off = new WindowEngine({ percentiles: false });
    off.ingest(rd(T0, { v: 1 }));
    expect(off.flush().rollups[0].p50).toBeUndefined();
  });
});

describe('counters', () => {
  test('delta, rate per second and resets; a reset counts the new value as the increase', () => {
    const e = new WindowEngine({ counters: ['energy'] });
    e.ingest([100, 110, 125, 5, 20].map((v, i) => rd(T0 + i * 10 * S, { energy: v, temp: v })));
    const [energy, temp] = e.flush().rollups;
    expect(energy).toMatchObject({ delta: 10 + 15 + 5 + 15, resets: 1, rate: 45 / 60, first: 100, last: 20 });
    expect(temp.delta).toBeUndefined();
  });

  test('out-of-order samples inside the window still give the exact delta', () => {
    const e = new WindowEngine({ counters: (m) => m.endsWith('_total'), lateness: MIN });
    // In time order: 100, 110, 3 (reset), 8: delta 10 + 3 + 5 = 18, one reset.
    e.ingest([rd(T0 + 30 * S, { n_total: 3 }), rd(T0, { n_total: 100 }), rd(T0 + 40 * S, { n_total: 8 }), rd(T0 + 20 * S, { n_total: 110 })]);
    expect(e.flush().rollups[0]).toMatchObject({ delta: 18, resets: 1 });
  });

  test('the hour sums its minutes plus the increases across minute boundaries', () => {
    const e = new WindowEngine({ levels: ['1m', '1h'], counters: ['c'] });
    const values = [0, 5, 9, 2, 4, 30, 31];
    const out = [...e.ingest(values.map((v, i) => rd(T0 + i * 25 * S, { c: v }))).rollups, ...e.flush().rollups];
    const minutes = out.filter((r) => r.level === '1m');
    const hour = out.find((r) => r.level === '1h')!;
    // Minutes: 0 5 9 | 2 4 | 30 31. The hour adds 9 -> 2 (a reset: +2) and 4 -> 30 (+26).
    expect(minutes.map((r) => r.delta)).toEqual([9, 2, 1]);
    expect(hour).toMatchObject({ delta: 9 + 2 + 2 + 26 + 1, resets: 1 });
  });

  test('a correction inside an upper window keeps the delta of a counter that did not reset (monotonic)', () => {
    const e = new WindowEngine({ levels: ['1m', '1h'], counters: ['c'], latePolicy: 'reopen', correctionHorizon: 2 * HOUR });
    const out = feed(e, [rd(T0, { c: 10 }), rd(T0 + 50 * S, { c: 20 }), rd(T0 + 2 * MIN, { c: 30 }), rd(T0 + HOUR + MIN, { c: 100 }), rd(T0 + 30 * S, { c: 15 })]);
    const corrected = out.filter((r) => r.correction);
    expect(corrected.map((r) => [r.level, r.count, r.delta])).toEqual([
      ['1m', 3, 10],
      ['1h', 4, 20],
    ]);
  });
});

describe('latest-value view', () => {
  test('the highest event time wins (ties: the later arrival), any value type', () => {
    const e = new WindowEngine({ lateness: HOUR });
    e.ingest([rd(T0 + 10 * S, { t: 21.5, state: 'open' }), rd(T0, { t: 20 }), rd(T0 + 10 * S, { state: 'closed' }), rd(T0 + 5 * S, { t: 0 }, 'dev2')]);
    expect(e.latest()).toEqual([
      { device: 'dev1', metric: 't', ts: T0 + 10 * S, value: 21.5 },
      { device: 'dev1', metric: 'state', ts: T0 + 10 * S, value: 'closed' },
      { device: 'dev2', metric: 't', ts: T0 + 5 * S, value: 0 },
    ]);
    expect(e.latest('dev2')).toHaveLength(1);
    expect(e.latest('nobody')).toEqual([]);
    expect(e.latestOf('dev1', 'state')).toEqual({ device: 'dev1', metric: 'state', ts: T0 + 10 * S, value: 'closed' });
    expect(e.latestOf('dev1', 'nothing')).toBeUndefined();
  });

  test('late readings (even dropped ones) do not replace a newer latest value; latest: false turns it off', () => {
    const e = new WindowEngine();
    e.ingest([rd(T0 + 2 * MIN, { t: 2 }), rd(T0, { t: 1 })]);
    expect(e.latestOf('dev1', 't')!.value).toBe(2);
    const off = new WindowEngine({ latest: false });
    off.ingest(rd(T0, { t: 1 }));
    expect(off.latest()).toEqual([]);
    expect(off.latestOf('dev1', 't')).toBeUndefined();
  });
});

describe('input and options', () => {
  test('rejects bad readings with machine-readable codes (and the index in a batch); the rest go on', () => {
    const e = new WindowEngine();
    const out = e.ingest([
      rd(T0, { v: 1 }),
      null,
      'text',
      { device: '', ts: T0, metrics: { v: 1 } },
      { device: 'a', ts: 'yesterday', metrics: { v: 1 } },
      { device: 'a', ts: NaN, metrics: { v: 1 } },
      { device: 'a', ts: T0 },
      { device: 'a', ts: T0, metrics: {} },
    ] as unknown as Reading[]);
    expect(out.rejects.map((r) => [r.index, r.code])).toEqual([
      [1, 'not_a_reading'],
      [2, 'not_a_reading'],
      [3, 'invalid_device'],
      [4, 'invalid_ts'],
      [5, 'invalid_ts'],
      [6, 'no_metrics'],
      [7, 'no_metrics'],
    ]);
    expect(e.stats()).toMatchObject({ rejected: 7, readings: 1, keys: 1 });
    expect(e.ingest(42).rejects[0]).toMatchObject({ code: 'not_a_reading' });
    expect(e.ingest(42).rejects[0].index).toBeUndefined();
  });

  test('a throwing or empty groupBy is a reject', () => {
    const e = new WindowEngine({
      groupBy: (r) => {
        if (r.device === 'boom') throw new Error('no site');
        return r.device === 'empty' ? '' : r.device;
      },
    });
    const out = e.ingest([rd(T0, { v: 1 }, 'boom'), rd(T0, { v: 1 }, 'empty')]);
    expect(out.rejects.map((r) => r.code)).toEqual(['invalid_value', 'invalid_value']);
    expect(out.rejects[0].message).toContain('no site');
  });

  test('an empty output is shared and frozen', () => {
    const e = new WindowEngine();
    const a = e.ingest(rd(T0, { v: 1 }));
    expect(a).toBe(e.ingest(rd(T0 + 1, { v: 1 })));
    expect(Object.isFrozen(a.rollups)).toBe(true);
  });

  test.each<[string, WindowEngineOptions]>([
    ['no levels', { levels: [] }],
    ['a bad size', { levels: ['1x'] }],
    ['levels that do not nest', { levels: ['1w', '1mo'] }],
    ['a hopping level in a cascade', { levels: [{ size: '5m', step: '1m' }, '1h'] }],
    ['duplicate labels', { levels: ['1m', { size: '1h', label: '1m' }] }],
    ['negative lateness', { lateness: -1 }],
    ['an unknown policy', { latePolicy: 'ignore' as never }],
    ['an unknown watermark scope', { watermark: 'device' as never }],
    ['maxKeys 0', { maxKeys: 0 }],
    ['a bad sketch accuracy', { relativeAccuracy: 2 }],
    ['an unknown time zone', { levels: ['1d'], timeZone: 'Nowhere/Land' }],
  ])('refuses %s', (_what, options) => {
    expect(() => new WindowEngine(options)).toThrow(RangeError);
  });

  test('defaults: one 1m level, labels as given', () => {
    const e = new WindowEngine();
    expect(e.levels.map((l) => l.label)).toEqual(['1m']);
    const h = new WindowEngine({ levels: [{ size: '5m', step: '1m' }] });
    expect(h.levels[0].label).toBe('5m/1m');
    const c = new WindowEngine({ levels: ['1m', { size: '1h', label: 'hourly' }] });
    c.ingest(rd(T0, { v: 1 }));
    expect(c.flush().rollups.map((r) => r.level)).toEqual(['1m', 'hourly']);
  });
});
