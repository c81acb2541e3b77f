/**
 * The multi-series anomaly scorer (nodes/anomaly/scorer.ts) and the node's config parsing
 * (nodes/anomaly/config.ts): scores equal to one detector per series, skips and rejects, time
 * order, the LRU bound, the alert-event state machine (anomaly and maintenance), reset, stats,
 * and snapshot/restore equal to an uninterrupted run.
 */
import type { AlertEvent, AnomalyScore, Reading } from '../../nodes/lib/contract';
import { AnomalyConfigError, parseConfig, parseDuration, parseMaintenanceRules, type MaintenanceRule } from '../../nodes/anomaly/config';
import { AnomalyDetector } from '../../nodes/anomaly/engine';
import { MaintenanceEstimator } from '../../nodes/anomaly/maintenance';
import { AnomalyScorer, DEFAULT_TEXT, formatDuration, MAX_BATCH, type ScoreOutput, type ScorerOptions, type ScorerSnapshot } from '../../nodes/anomaly/scorer';
import { mulberry32 } from '../../runtime/sim-model';

const T0 = Date.UTC(2026, 0, 5); // a Monday
const MIN = 60_000;
const FIVE_MIN = 5 * MIN;

function reading(device: string, i: number, metrics: Record<string, unknown>, step = FIVE_MIN, extra: Record<string, unknown> = {}): Reading {
  return { device, ts: T0 + i * step, metrics, ...extra } as Reading;
}

/** A temperature-like value of series `k` at step `i`: daily cycle, noise, now and then a spike. */
function value(r: () => number, k: number, i: number): number {
  let v = 20 + k + 5 * Math.sin((2 * Math.PI * i) / 288) + (r() + r() + r() + r() - 2) * 0.8;
  if (i > 300 && r() < 0.004) v += (r() < 0.5 ? -1 : 1) * (8 + r() * 10);
  return v;
}

/** `steps` batches; batch i holds one reading per device with temperature and humidity. */
function batches(devices: number, steps: number, seed = 1): Reading[][] {
  const r = mulberry32(seed);
  const out: Reading[][] = [];
  for (let i = 0; i < steps; i++) {
    const b: Reading[] = [];
    for (let d = 0; d < devices; d++) b.push(reading(`dev-${d}`, i, { temperature: value(r, d, i), humidity: 50 + 10 * value(r, d, i) / 20, ok: true, fw: 'v1' }));
    out.push(b);
  }
  return out;
}

/** A JSON round trip, as the state file does. */
function viaJson<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** The parts of a score a detector decides (JSON turns NaN into null: compare as JSON). */
function plain(o: unknown): unknown {
  return viaJson(o);
}

describe('scoring', () => {
  test('each series scores exactly as its own AnomalyDetector, fed the same values', () => {
    const sc = new AnomalyScorer();
    const dets = new Map<string, AnomalyDetector>();
    for (const b of batches(3, 400)) {
      const out = sc.score(b);
      expect(out.rejects).toEqual([]);
      expect(out.scores).toHaveLength(6);
      let k = 0;
      for (const rd of b) {
        for (const metric of ['temperature', 'humidity']) {
          const key = `${rd.device}/${metric}`;
          if (!dets.has(key)) dets.set(key, new AnomalyDetector());
          const v = rd.metrics[metric] as number;
          const want = dets.get(key)!.update(rd.ts, v);
          expect(plain(out.scores[k++])).toEqual(plain({ device: rd.device, metric, ts: rd.ts, value: v, ...want }));
        }
      }
    }
    const st = sc.stats();
    expect(st.series).toBe(6);
    expect(st.scored).toBe(2400);
    expect(st.learning).toBe(0);
  });

  test('booleans and strings are skipped, not rejected; metrics limits what is scored', () => {
    const sc = new AnomalyScorer({ metrics: ['temperature'] });
    const out = sc.score(reading('d1', 0, { temperature: 21, humidity: 40, door: true, state: 'on' }));
    expect(out.rejects).toEqual([]);
    expect(out.scores.map((s) => s.metric)).toEqual(['temperature']);
    const all = new AnomalyScorer();
    const o2 = all.score(reading('d1', 0, { temperature: 21, humidity: 40, door: true, state: 'on' }));
    expect(o2.scores.map((s) => s.metric)).toEqual(['temperature', 'humidity']);
    expect(o2.rejects).toEqual([]);
  });

  test('a reading with only strings and booleans scores nothing and is not rejected', () => {
    const sc = new AnomalyScorer();
    const out = sc.score(reading('d1', 0, { door: true, state: 'on' }));
    expect(out).toEqual({ scores: [], events: [], rejects: [], skipped: 0, thinned: 0, batch: false });
    expect(sc.size).toBe(0);
  });

  test('the reading tags ride along on each score', () => {
    const sc = new AnomalyScorer();
    const out = sc.score(reading('d1', 0, { temperature: 21, humidity: 40 }, FIVE_MIN, { tags: { site: 'north' } }));
    expect(out.scores.map((s) => s.tags)).toEqual([{ site: 'north' }, { site: 'north' }]);
  });

  test('first scores are learning, with the value as expected', () => {
    const sc = new AnomalyScorer({ warmup: 2 });
    const [a] = sc.score(reading('d1', 0, { t: 5 })).scores;
    expect(a).toEqual({
      device: 'd1',
      metric: 't',
      ts: T0,
      value: 5,
      score: 0,
      anomalous: false,
      expected: 5,
      lower: expect.closeTo(5, 6),
      upper: expect.closeTo(5, 6),
      signal: 'learning',
      learning: true,
    });
    expect(sc.stats().learning).toBe(1);
    sc.score(reading('d1', 1, { t: 6 }));
    expect(sc.stats().learning).toBe(1);
    const [c] = sc.score(reading('d1', 2, { t: 5 })).scores;
    expect(c.learning).toBe(false);
    expect(sc.stats().learning).toBe(0);
  });
});

describe('rejects', () => {
  const cases: Array<[string, unknown, string]> = [
    ['null', null, 'not_a_reading'],
    ['a number', 42, 'not_a_reading'],
    ['a string', 'temperature=21', 'not_a_reading'],
    ['metrics missing', { device: 'd1', ts: T0 }, 'not_a_reading'],
    ['metrics an array', { device: 'd1', ts: T0, metrics: [1, 2] }, 'not_a_reading'],
    ['a device id with a slash', { device: 'a/b', ts: T0, metrics: { t: 1 } }, 'invalid_device'],
    ['a device that is a number', { device: 7, ts: T0, metrics: { t: 1 } }, 'invalid_device'],
    ['a device __proto__', { device: '__proto__', ts: T0, metrics: { t: 1 } }, 'invalid_device'],
    ['ts a string', { device: 'd1', ts: '2026-01-01', metrics: { t: 1 } }, 'invalid_ts'],
    ['ts NaN', { device: 'd1', ts: NaN, metrics: { t: 1 } }, 'invalid_ts'],
    ['no metrics', { device: 'd1', ts: T0, metrics: {} }, 'no_metrics'],
    ['a NaN value', { device: 'd1', ts: T0, metrics: { t: NaN } }, 'invalid_value'],
    ['an infinite value', { device: 'd1', ts: T0, metrics: { t: -Infinity } }, 'invalid_value'],
    ['a metric __proto__ (JSON)', JSON.parse('{"device":"d1","ts":1767571200000,"metrics":{"__proto__":5}}'), 'invalid_metric'],
    ['a metric with a control character', { device: 'd1', ts: T0, metrics: { 'a\nb': 1 } }, 'invalid_metric'],
  ];
  test.each(cases)('%s is rejected', (_what, input, code) => {
    const sc = new AnomalyScorer();
    const out = sc.score(input);
    expect(out.rejects).toHaveLength(1);
    expect(out.rejects[0].code).toBe(code);
    expect(out.rejects[0].message).toEqual(expect.any(String));
    expect(out.rejects[0]).not.toHaveProperty('index');
    expect(out.scores).toEqual([]);
    expect(sc.size).toBe(0);
    expect(sc.stats().rejected).toBe(1);
  });

  test('in a batch, rejects carry their index and the rest is scored', () => {
    const sc = new AnomalyScorer();
    const out = sc.score([reading('d1', 0, { t: 1 }), null, reading('d2', 0, { t: NaN, h: 3 }), { device: 'x y', ts: T0, metrics: { t: 1 } }]);
    expect(out.batch).toBe(true);
    expect(out.scores.map((s) => `${s.device}/${s.metric}`)).toEqual(['d1/t', 'd2/h']);
    expect(out.rejects.map((r) => [r.code, r.index])).toEqual([
      ['not_a_reading', 1],
      ['invalid_value', 2],
      ['invalid_device', 3],
    ]);
    expect(out.rejects[1].details).toEqual({ metric: 't' });
  });

  test('a batch over the limit is refused whole', () => {
    const sc = new AnomalyScorer();
    const big = new Array<Reading>(MAX_BATCH + 1).fill(reading('d1', 0, { t: 1 }));
    const out = sc.score(big);
    expect(out.rejects).toEqual([{ code: 'payload_too_large', message: `a batch holds at most ${MAX_BATCH} readings, got ${MAX_BATCH + 1}` }]);
    expect(out.scores).toEqual([]);
  });

  test('hostile values never throw', () => {
    const sc = new AnomalyScorer();
    const weird: unknown[] = [undefined, [], [[]], { metrics: null }, { device: 'd1', ts: T0, metrics: { t: { v: 1 } } }, { device: 'd1', ts: T0, metrics: { t: 1 }, tags: 'x' }];
    for (const w of weird) expect(() => sc.score(w)).not.toThrow();
  });
});

describe('time order', () => {
  test('a value at the last ts is a redelivery: skipped, counted, state untouched', () => {
    const sc = new AnomalyScorer({ warmup: 3 });
    const ref = new AnomalyDetector({ warmup: 3 });
    for (let i = 0; i < 10; i++) {
      sc.score(reading('d1', i, { t: 20 + (i % 3) }));
      ref.update(T0 + i * FIVE_MIN, 20 + (i % 3));
    }
    const dup = sc.score(reading('d1', 9, { t: 500 }));
    expect(dup.scores).toEqual([]);
    expect(dup.rejects).toEqual([]);
    expect(dup.skipped).toBe(1);
    expect(sc.stats().skipped).toBe(1);
    const next = sc.score(reading('d1', 10, { t: 21 })).scores[0];
    expect(plain(next)).toEqual(plain({ device: 'd1', metric: 't', ts: T0 + 10 * FIVE_MIN, value: 21, ...ref.update(T0 + 10 * FIVE_MIN, 21) }));
  });

  test('an older value is rejected out_of_order; other series of the reading go on', () => {
    const sc = new AnomalyScorer();
    sc.score(reading('d1', 5, { t: 1 }));
    const out = sc.score(reading('d1', 4, { t: 2, h: 3 }));
    expect(out.scores.map((s) => s.metric)).toEqual(['h']);
    expect(out.rejects).toEqual([
      { code: 'out_of_order', message: `d1/t: ts ${T0 + 4 * FIVE_MIN} is older than the series' last value at ${T0 + 5 * FIVE_MIN}`, details: { metric: 't', lastTs: T0 + 5 * FIVE_MIN } },
    ]);
  });

  test('series are ordered independently', () => {
    const sc = new AnomalyScorer();
    sc.score(reading('d1', 5, { t: 1 }));
    expect(sc.score(reading('d2', 1, { t: 1 })).rejects).toEqual([]);
  });
});

describe('LRU bound', () => {
  test('never more than maxSeries; the least recently used go first', () => {
    const sc = new AnomalyScorer({ maxSeries: 3 });
    sc.score(reading('a', 0, { t: 1 }));
    sc.score(reading('b', 0, { t: 1 }));
    sc.score(reading('c', 0, { t: 1 }));
    sc.score(reading('a', 1, { t: 1 })); // a is now the most recent
    sc.score(reading('d', 0, { t: 1 })); // b goes
    expect(sc.size).toBe(3);
    const devices = sc.snapshot().groups.map(([d]) => d).sort();
    expect(devices).toEqual(['a', 'c', 'd']);
    expect(sc.stats().evicted).toBe(1);
    // b comes back as a new series (learning again) and its old ts is no longer known.
    const back = sc.score(reading('b', 0, { t: 1 }));
    expect(back.rejects).toEqual([]);
    expect(back.scores[0].learning).toBe(true);
  });

  test('many series through a small bound: the bound holds at every step', () => {
    const sc = new AnomalyScorer({ maxSeries: 100 });
    for (let i = 0; i < 1000; i++) {
      sc.score(reading(`d${i % 257}`, Math.floor(i / 257), { t: i, u: i }));
      expect(sc.size).toBeLessThanOrEqual(100);
    }
    expect(sc.stats().evicted).toBeGreaterThan(0);
    expect(sc.stats().series).toBe(sc.size);
  });

  test('an evicted series with a firing alert is resolved', () => {
    const sc = new AnomalyScorer({ maxSeries: 1, warmup: 3 });
    for (let i = 0; i < 6; i++) sc.score(reading('a', i, { t: 10 + (i % 2) }));
    expect(sc.score(reading('a', 6, { t: 100 })).events.map((e) => e.state)).toEqual(['firing']);
    const out = sc.score(reading('b', 0, { t: 1 }));
    expect(out.events).toEqual([
      { key: 'a/t/anomaly', device: 'a', rule: 'anomaly', state: 'resolved', severity: 'warning', since: T0 + 6 * FIVE_MIN, metric: 't', message: DEFAULT_TEXT.forgotten({ device: 'a', metric: 't', rule: 'anomaly', why: 'evicted' }) },
    ]);
    expect(sc.stats().anomalous).toBe(0);
  });
});

/** Feeds `values` to series d1/t from step `from`; returns every event. */
function run(sc: AnomalyScorer, values: number[], from: number, step = FIVE_MIN): { events: AlertEvent[]; scores: AnomalyScore[] } {
  const events: AlertEvent[] = [];
  const scores: AnomalyScore[] = [];
  values.forEach((v, k) => {
    const out = sc.score(reading('d1', from + k, { t: v }, step));
    events.push(...out.events);
    scores.push(...out.scores);
  });
  return { events, scores };
}

describe('anomaly events', () => {
  // After warm-up, a value beyond the range seen so far scores 1 ('range'); values inside it score 0
  // until the likelihood starts (200 readings), so the sequence below is deterministic.
  const calm = (n: number): number[] => Array.from({ length: n }, (_, i) => 10 + (i % 2));

  test('firing once when a series turns anomalous, resolved after clearAfter normal scores', () => {
    const sc = new AnomalyScorer({ warmup: 5, clearAfter: 3 });
    expect(run(sc, calm(10), 0).events).toEqual([]);
    const spike = run(sc, [100, 150], 10); // two anomalous in a row: one event
    expect(spike.scores.map((s) => s.anomalous)).toEqual([true, true]);
    expect(spike.events).toEqual([
      {
        key: 'd1/t/anomaly',
        device: 'd1',
        rule: 'anomaly',
        state: 'firing',
        severity: 'warning',
        value: 100,
        since: T0 + 10 * FIVE_MIN,
        metric: 't',
        message: 't 100 is anomalous (score 1.00, range)',
      },
    ]);
    expect(sc.stats().anomalous).toBe(1);
    expect(run(sc, [10, 11], 12).events).toEqual([]);
    // Another anomaly before the third normal score starts the count again.
    expect(run(sc, [200], 14).events).toEqual([]);
    expect(run(sc, [10, 11], 15).events).toEqual([]);
    const back = run(sc, [10], 17);
    expect(back.events).toEqual([
      {
        key: 'd1/t/anomaly',
        device: 'd1',
        rule: 'anomaly',
        state: 'resolved',
        severity: 'warning',
        value: 10,
        since: T0 + 17 * FIVE_MIN,
        metric: 't',
        message: 't 10 is back to normal (3 normal scores in a row)',
      },
    ]);
    expect(sc.stats().anomalous).toBe(0);
    expect(run(sc, calm(5), 18).events).toEqual([]);
    // And it can fire again.
    expect(run(sc, [500], 23).events.map((e) => e.state)).toEqual(['firing']);
  });

  test('clearAfter 1 resolves on the first normal score; series keep separate states', () => {
    const sc = new AnomalyScorer({ warmup: 5, clearAfter: 1 });
    for (let i = 0; i < 10; i++) sc.score([reading('a', i, { t: 10 + (i % 2) }), reading('b', i, { t: 10 + (i % 2) })]);
    const o1 = sc.score([reading('a', 10, { t: 100 }), reading('b', 10, { t: 10 })]);
    expect(o1.events.map((e) => `${e.key} ${e.state}`)).toEqual(['a/t/anomaly firing']);
    const o2 = sc.score([reading('a', 11, { t: 10 }), reading('b', 11, { t: 100 })]);
    expect(o2.events.map((e) => `${e.key} ${e.state}`)).toEqual(['a/t/anomaly resolved', 'b/t/anomaly firing']);
  });

  test('custom event texts are used', () => {
    const sc = new AnomalyScorer({ warmup: 5, text: { anomalyFiring: (p) => `ALARM ${p.device} ${p.metric}` } });
    run(sc, calm(10), 0);
    expect(run(sc, [100], 10).events[0].message).toBe('ALARM d1 t');
  });
});

describe('maintenance', () => {
  const RULE: MaintenanceRule = { metric: 't', threshold: 90, direction: 'above', window: 3_600_000, horizon: 86_400_000, level: 0.5 };

  test('estimates ride on the scores; the alert fires and resolves once each', () => {
    const sc = new AnomalyScorer({ maintenance: [RULE], warmup: 5 });
    const ref = new MaintenanceEstimator({ threshold: 90, direction: 'above', window: 3_600_000, horizon: 86_400_000, level: 0.5 });
    // One value a minute: flat at 20 for an hour, rising 0.5/min for an hour, then flat again for two.
    const values: number[] = [];
    for (let i = 0; i < 60; i++) values.push(20 + (i % 2) * 0.2);
    for (let i = 0; i < 60; i++) values.push(20 + i * 0.5 + (i % 2) * 0.2);
    for (let i = 0; i < 120; i++) values.push(50 + (i % 2) * 0.2);
    const { events, scores } = run(sc, values, 0, MIN);
    scores.forEach((s, i) => {
      const want = ref.update(T0 + i * MIN, values[i]);
      if (want === null) expect(s).not.toHaveProperty('maintenance');
      else expect(s.maintenance).toEqual(want);
    });
    const m = events.filter((e) => e.rule === 'maintenance');
    expect(m.map((e) => e.state)).toEqual(['firing', 'resolved']);
    const firing = m[0];
    expect(firing).toMatchObject({ key: 'd1/t/maintenance', device: 'd1', metric: 't', rule: 'maintenance', severity: 'major' });
    const at = scores.findIndex((s) => s.ts === firing.since);
    const est = scores[at].maintenance!;
    expect(est.alert).toBe(true);
    expect(scores[at - 1].maintenance?.alert ?? false).toBe(false);
    expect(firing.value).toBe(values[at]);
    expect(firing.message).toBe(DEFAULT_TEXT.maintenanceFiring({ device: 'd1', metric: 't', value: values[at], estimate: est }));
    expect(firing.message).toMatch(/may cross 90 \(above\) in .+, probability \d+% within 1d/);
    expect(sc.stats().maintenance).toBe(0);
  });

  test('a metric without a rule gets no estimate', () => {
    const sc = new AnomalyScorer({ maintenance: [RULE] });
    const out = sc.score(reading('d1', 0, { u: 1 }, MIN));
    expect(out.scores[0]).not.toHaveProperty('maintenance');
  });

  test('a rule the estimator refuses is a RangeError at construction', () => {
    expect(() => new AnomalyScorer({ maintenance: [{ ...RULE, model: 'magic' }] })).toThrow(/maintenance rule for "t": model must be one of/);
    expect(() => new AnomalyScorer({ maintenance: [RULE, RULE] })).toThrow(/two maintenance rules/);
  });
});

describe('reset and stats', () => {
  test('reset of one device, then of everything', () => {
    const sc = new AnomalyScorer({ warmup: 3 });
    for (let i = 0; i < 6; i++) sc.score([reading('a', i, { t: 10 + (i % 2), u: 1 }), reading('b', i, { t: 10 + (i % 2) })]);
    sc.score(reading('a', 6, { t: 100 }));
    expect(sc.stats()).toMatchObject({ series: 3, anomalous: 1 });
    const r = sc.reset('a');
    expect(r.series).toBe(2);
    expect(r.events.map((e) => `${e.key} ${e.state}`)).toEqual(['a/t/anomaly resolved']);
    expect(sc.stats()).toMatchObject({ series: 1, anomalous: 0, learning: 0 });
    expect(sc.reset('nobody')).toEqual({ series: 0, events: [] });
    // a starts again: its old ts is forgotten.
    expect(sc.score(reading('a', 0, { t: 1 })).scores[0].learning).toBe(true);
    const all = sc.reset();
    expect(all.series).toBe(2);
    expect(sc.stats()).toEqual({ series: 0, maxSeries: 10_000, learning: 0, anomalous: 0, maintenance: 0, stateBytes: 0, scored: 0, skipped: 0, rejected: 0, evicted: 0, thinned: 0 });
  });

  test('stats count state bytes within the engine bound', () => {
    const sc = new AnomalyScorer();
    for (const b of batches(2, 50)) sc.score(b);
    const st = sc.stats();
    expect(st.series).toBe(4);
    expect(st.stateBytes).toBeGreaterThan(0);
    expect(st.stateBytes).toBeLessThanOrEqual(4 * AnomalyDetector.maxStateBytes());
    expect(st.learning).toBe(4);
  });
});

describe('snapshot and restore', () => {
  const RULE: MaintenanceRule = { metric: 'temperature', threshold: 35, direction: 'above', window: 3_600_000, horizon: 43_200_000, level: 0.5 };
  const OPTS: ScorerOptions = { maintenance: [RULE], warmup: 100, clearAfter: 2 };

  function outputs(sc: AnomalyScorer, bs: Reading[][]): ScoreOutput[] {
    return bs.map((b) => sc.score(b));
  }

  test('a restored scorer continues exactly as an uninterrupted one (scores, estimates, events, stats)', () => {
    const bs = batches(4, 700, 9);
    const a = new AnomalyScorer(OPTS);
    const first = outputs(a, bs.slice(0, 400));
    const snap = viaJson(a.snapshot());
    const b = new AnomalyScorer(OPTS);
    b.restore(snap);
    expect(b.stats()).toEqual(a.stats());
    const restA = outputs(a, bs.slice(400));
    const restB = outputs(b, bs.slice(400));
    expect(plain(restB)).toEqual(plain(restA));
    expect(b.stats()).toEqual(a.stats());
    // The run had events of both kinds and maintenance estimates, so all of it was compared.
    const events = [...first, ...restA].flatMap((o) => o.events);
    expect(events.some((e) => e.rule === 'anomaly')).toBe(true);
    expect(restA.some((o) => o.scores.some((s) => s.maintenance !== undefined))).toBe(true);
    // A snapshot of the restored scorer is the same as the original's.
    expect(viaJson(b.snapshot())).toEqual(viaJson(a.snapshot()));
  });

  test('snapshotText() pieces parse to snapshot(), and restore as it does', () => {
    const bs = batches(5, 300, 4);
    const a = new AnomalyScorer(OPTS);
    outputs(a, bs.slice(0, 200));
    const pieces = [...a.snapshotText()];
    // One piece a device, plus the head and the tail.
    expect(pieces).toHaveLength(5 + 2);
    const parsed = JSON.parse(pieces.join('')) as ScorerSnapshot;
    expect(parsed).toEqual(viaJson(a.snapshot()));
    const b = new AnomalyScorer(OPTS);
    b.restore(parsed);
    expect(plain(outputs(b, bs.slice(200)))).toEqual(plain(outputs(a, bs.slice(200))));
  });

  test('snapshotText() while scoring goes on between pieces: each device once, in its state when its piece was made', () => {
    const a = new AnomalyScorer({ warmup: 5, maxSeries: 4 });
    for (let i = 0; i < 10; i++) a.score([reading('d1', i, { t: 10 + (i % 3) }), reading('d2', i, { t: 20 }), reading('d3', i, { t: 30 })]);
    const it = a.snapshotText();
    const pieces: string[] = [it.next().value as string, it.next().value as string]; // head, d1
    // Between pieces (maxSeries 4, one series a device): d1 (written) and d2 (not yet) score again; d4 and d5
    // come and d3, the least recently used, is evicted; d6 comes and evicts d1, which comes back at once (and
    // evicts d2): a new series, at the end of the scorer's map, after the pieces still to come.
    a.score([reading('d1', 10, { t: 11 }), reading('d2', 10, { t: 21 })]);
    a.score([reading('d4', 10, { t: 40 }), reading('d5', 10, { t: 50 })]);
    a.score([reading('d6', 11, { t: 60 })]);
    a.score([reading('d1', 12, { t: 12 })]);
    for (let r = it.next(); !r.done; r = it.next()) pieces.push(r.value);
    const snap = JSON.parse(pieces.join('')) as ScorerSnapshot;
    const devices = snap.groups.map(([d]) => d);
    expect(devices).toEqual(['d1', 'd4', 'd5', 'd6']);
    const now = viaJson(a.snapshot());
    expect(now.groups.map(([d]) => d)).toEqual(['d4', 'd5', 'd6', 'd1']);
    expect((now.groups[3][1] as Array<{ t: number }>)[0].t).toBe(T0 + 12 * FIVE_MIN);
    const byDevice = (x: ScorerSnapshot, d: string): unknown => x.groups.find(([g]) => g === d)?.[1];
    // Written after the changes: as now. Written before: as then (d1 at its 10th reading).
    for (const d of devices.filter((x) => x !== 'd1')) expect(byDevice(snap, d)).toEqual(byDevice(now, d));
    expect((byDevice(snap, 'd1') as Array<{ t: number }>)[0].t).toBe(T0 + 9 * FIVE_MIN);
    // Restorable.
    const b = new AnomalyScorer({ warmup: 5, maxSeries: 4 });
    expect(() => b.restore(snap)).not.toThrow();
  });

  test('the learning count is the same after a restore at the end of warm-up', () => {
    for (const k of [4, 5, 6]) {
      const a = new AnomalyScorer({ warmup: 5 });
      run(a, Array.from({ length: k }, (_, i) => 10 + (i % 2)), 0);
      const b = new AnomalyScorer({ warmup: 5 });
      b.restore(viaJson(a.snapshot()));
      expect(b.stats()).toEqual(a.stats());
      expect(a.stats().learning).toBe(k <= 5 ? 1 : 0);
      expect(run(b, [10], k).scores[0].learning).toBe(k + 1 <= 5);
      expect(run(a, [10], k).scores[0].learning).toBe(k + 1 <= 5);
      expect(b.stats()).toEqual(a.stats());
    }
  });

  test('an alert firing at the snapshot resolves after the restore, not before', () => {
    const sc = new AnomalyScorer({ warmup: 5, clearAfter: 2 });
    run(sc, [10, 11, 10, 11, 10, 11, 10, 11], 0);
    expect(run(sc, [100], 8).events.map((e) => e.state)).toEqual(['firing']);
    run(sc, [10], 9);
    const b = new AnomalyScorer({ warmup: 5, clearAfter: 2 });
    b.restore(viaJson(sc.snapshot()));
    expect(b.stats().anomalous).toBe(1);
    expect(run(b, [11], 10).events.map((e) => e.state)).toEqual(['resolved']);
  });

  test('restore refuses a snapshot taken with other detector settings, and keeps its own state', () => {
    const a = new AnomalyScorer({ threshold: 0.6 });
    a.score(reading('d1', 0, { t: 1 }));
    const b = new AnomalyScorer();
    b.score(reading('d2', 0, { t: 1 }));
    expect(() => b.restore(a.snapshot())).toThrow(/other detector settings/);
    expect(b.snapshot().groups.map(([d]) => d)).toEqual(['d2']);
  });

  const good = (): ScorerSnapshot => {
    const a = new AnomalyScorer();
    a.score(reading('d1', 0, { t: 1 }));
    return viaJson(a.snapshot());
  };
  const broken: Array<[string, (s: ScorerSnapshot) => unknown]> = [
    ['not an object', () => 'hello'],
    ['another version', (s) => ({ ...s, v: 2 })],
    ['groups missing', (s) => ({ ...s, groups: undefined })],
    ['a bad device id', (s) => ({ ...s, groups: [['a b', s.groups[0][1]]] })],
    ['a bad metric name', (s) => ({ ...s, groups: [['d1', [{ ...s.groups[0][1][0], m: '' }]]] })],
    ['a detector with bad base64', (s) => ({ ...s, groups: [['d1', [{ ...s.groups[0][1][0], a: { ...s.groups[0][1][0].a, s: 'AAAA' } }]]] })],
    ['an alert state of the wrong length', (s) => ({ ...s, groups: [['d1', [{ ...s.groups[0][1][0], e: [0, 0] }]]] })],
    ['a series twice', (s) => ({ ...s, groups: [['d1', [s.groups[0][1][0], s.groups[0][1][0]]]] })],
  ];
  test.each(broken)('restore refuses %s', (_what, mutate) => {
    const b = new AnomalyScorer();
    expect(() => b.restore(mutate(good()))).toThrow(RangeError);
    expect(b.size).toBe(0);
  });

  test('a changed maintenance rule restarts its estimators; the detectors carry on', () => {
    const bs = batches(1, 300, 3);
    const a = new AnomalyScorer(OPTS);
    outputs(a, bs.slice(0, 200));
    const changed = new AnomalyScorer({ ...OPTS, maintenance: [{ ...RULE, threshold: 40 }] });
    changed.restore(viaJson(a.snapshot()));
    const fresh = new MaintenanceEstimator({ threshold: 40, direction: 'above', window: 3_600_000, horizon: 43_200_000, level: 0.5 });
    const rest = outputs(changed, bs.slice(200));
    const ref = outputs(a, bs.slice(200));
    rest.forEach((o, i) => {
      const rd = bs[200 + i][0];
      const t = o.scores.find((s) => s.metric === 'temperature')!;
      const r = ref[i].scores.find((s) => s.metric === 'temperature')!;
      expect(t.score).toBe(r.score);
      const want = fresh.update(rd.ts, rd.metrics.temperature as number);
      if (want === null) expect(t).not.toHaveProperty('maintenance');
      else expect(t.maintenance).toEqual(want);
    });
  });

  test('a firing maintenance alert whose rule is gone is resolved with the next score', () => {
    // A 1 h window needs most of an hour of data before it estimates: 70 minutes heading for 60.
    const sc = new AnomalyScorer({ maintenance: [{ ...RULE, metric: 't', threshold: 60 }], warmup: 5 });
    const values = Array.from({ length: 70 }, (_, i) => 10 + i * 0.5);
    const fired = run(sc, values, 0, MIN).events.filter((e) => e.rule === 'maintenance');
    expect(fired.map((e) => e.state)).toEqual(['firing']);
    const b = new AnomalyScorer({ warmup: 5 });
    b.restore(viaJson(sc.snapshot()));
    expect(b.stats().maintenance).toBe(0);
    const out = b.score(reading('other', 0, { x: 1 }));
    expect(out.events).toEqual([
      {
        key: 'd1/t/maintenance',
        device: 'd1',
        rule: 'maintenance',
        state: 'resolved',
        severity: 'major',
        since: T0 + 69 * MIN,
        metric: 't',
        message: DEFAULT_TEXT.forgotten({ device: 'd1', metric: 't', rule: 'maintenance', why: 'rule-removed' }),
      },
    ]);
    expect(b.score(reading('other', 1, { x: 1 })).events).toEqual([]);
  });

  test('restoring more series than maxSeries keeps the most recently used', () => {
    const a = new AnomalyScorer();
    for (let d = 0; d < 10; d++) a.score(reading(`d${d}`, 0, { t: 1 }));
    const b = new AnomalyScorer({ maxSeries: 4 });
    b.restore(viaJson(a.snapshot()));
    expect(b.size).toBe(4);
    expect(b.snapshot().groups.map(([d]) => d).sort()).toEqual(['d6', 'd7', 'd8', 'd9']);
  });

  test('version changes with every change of state', () => {
    const sc = new AnomalyScorer();
    const v0 = sc.version;
    sc.score(reading('d1', 0, { door: true }));
    expect(sc.version).toBe(v0);
    sc.score(reading('d1', 0, { t: 1 }));
    const v1 = sc.version;
    expect(v1).toBeGreaterThan(v0);
    sc.score(reading('d1', 0, { t: 1 })); // a redelivery
    expect(sc.version).toBe(v1);
    sc.reset('d1');
    expect(sc.version).toBeGreaterThan(v1);
  });
});

describe('scoreEvery (thinning)', () => {
  /**
   * The rule written out plainly, applied to an unthinned scorer's scores: a series' score goes out when it is its
   * first, when it or the last one out is notable (anomalous, or a maintenance alert), or when at least `every` ms of
   * event time passed since the last one out.
   */
  function thinned(scores: AnomalyScore[], every: number): AnomalyScore[] {
    const last = new Map<string, { ts: number; notable: boolean }>();
    return scores.filter((s) => {
      const key = `${s.device}/${s.metric}`;
      const notable = s.anomalous || s.maintenance?.alert === true;
      const prev = last.get(key);
      if (prev !== undefined && !notable && !prev.notable && s.ts - prev.ts < every) return false;
      last.set(key, { ts: s.ts, notable });
      return true;
    });
  }

  test('scores out are the unthinned ones the rule lets through; events, stats and every score decided are the same', () => {
    const every = 4 * FIVE_MIN;
    const plainScorer = new AnomalyScorer({ warmup: 50 });
    const thin = new AnomalyScorer({ warmup: 50, scoreEvery: every });
    let all: AnomalyScore[] = [];
    let kept: AnomalyScore[] = [];
    let thinnedCount = 0;
    for (const b of batches(3, 900, 21)) {
      const a = plainScorer.score(b);
      const t = thin.score(b);
      expect(plain(t.events)).toEqual(plain(a.events));
      expect(t.rejects).toEqual(a.rejects);
      expect(t.thinned + t.scores.length).toBe(a.scores.length);
      all = all.concat(a.scores);
      kept = kept.concat(t.scores);
      thinnedCount += t.thinned;
    }
    expect(plain(kept)).toEqual(plain(thinned(all, every)));
    // The run had anomalous scores, every one of them went out, and most of the others did not.
    const anomalous = all.filter((s) => s.anomalous);
    expect(anomalous.length).toBeGreaterThan(0);
    expect(kept.filter((s) => s.anomalous)).toHaveLength(anomalous.length);
    expect(kept.length).toBeLessThan(all.length / 3);
    const st = thin.stats();
    expect(st.thinned).toBe(thinnedCount);
    expect(st.thinned).toBe(all.length - kept.length);
    expect({ ...st, thinned: 0 }).toEqual({ ...plainScorer.stats(), thinned: 0 });
    expect(plainScorer.stats().thinned).toBe(0);
  });

  test('the first normal score after an anomalous one goes out (the return to normal), the next ones wait', () => {
    const sc = new AnomalyScorer({ warmup: 5, scoreEvery: 10 * FIVE_MIN });
    const calm = Array.from({ length: 10 }, (_, i) => 10 + (i % 2));
    const first = run(sc, calm, 0).scores.map((s) => s.ts);
    expect(first).toEqual([T0]);
    const spike = run(sc, [100, 10, 11, 10], 10).scores;
    expect(spike.map((s) => [s.ts, s.anomalous])).toEqual([
      [T0 + 10 * FIVE_MIN, true],
      [T0 + 11 * FIVE_MIN, false],
    ]);
    // Ten steps after the last one out, the next goes out.
    expect(run(sc, calm, 14).scores.map((s) => s.ts)).toEqual([T0 + 21 * FIVE_MIN]);
  });

  test('a score carrying a maintenance alert always goes out, and so does the first after it clears', () => {
    const RULE: MaintenanceRule = { metric: 't', threshold: 90, direction: 'above', window: 3_600_000, horizon: 86_400_000, level: 0.5 };
    const values: number[] = [];
    for (let i = 0; i < 60; i++) values.push(20 + (i % 2) * 0.2);
    for (let i = 0; i < 60; i++) values.push(20 + i * 0.5 + (i % 2) * 0.2);
    for (let i = 0; i < 120; i++) values.push(50 + (i % 2) * 0.2);
    const all = run(new AnomalyScorer({ maintenance: [RULE], warmup: 5 }), values, 0, MIN);
    const thin = run(new AnomalyScorer({ maintenance: [RULE], warmup: 5, scoreEvery: 3_600_000 }), values, 0, MIN);
    const alerting = all.scores.filter((s) => s.maintenance?.alert === true);
    expect(alerting.length).toBeGreaterThan(0);
    expect(thin.scores.filter((s) => s.maintenance?.alert === true).map((s) => s.ts)).toEqual(alerting.map((s) => s.ts));
    const lastAlert = all.scores.map((s) => s.maintenance?.alert === true).lastIndexOf(true);
    expect(thin.scores.map((s) => s.ts)).toContain(all.scores[lastAlert + 1].ts);
    expect(plain(thin.scores)).toEqual(plain(thinned(all.scores, 3_600_000)));
    expect(plain(thin.events)).toEqual(plain(all.events));
  });

  test('a restored scorer thins exactly as an uninterrupted one; a snapshot from before scoreEvery restores', () => {
    const opts: ScorerOptions = { warmup: 100, clearAfter: 2, scoreEvery: 3 * FIVE_MIN };
    const bs = batches(4, 600, 13);
    const a = new AnomalyScorer(opts);
    bs.slice(0, 301).forEach((b) => a.score(b));
    const snap = viaJson(a.snapshot());
    expect(snap.groups[0][1][0].o).toEqual([expect.any(Number), expect.any(Number)]);
    const b = new AnomalyScorer(opts);
    b.restore(snap);
    expect(plain(bs.slice(301).map((x) => b.score(x)))).toEqual(plain(bs.slice(301).map((x) => a.score(x))));
    expect(b.stats()).toEqual(a.stats());
    // Without the thinning state (and the fifth count), the first score of each series goes out.
    const old = viaJson(snap);
    old.counts = old.counts.slice(0, 4);
    for (const [, list] of old.groups) for (const st of list) delete st.o;
    const c = new AnomalyScorer(opts);
    c.restore(old);
    expect(c.stats().thinned).toBe(0);
    expect(c.score(bs[0].map((r) => ({ ...r, ts: r.ts + 10_000 * FIVE_MIN }))).scores).toHaveLength(8);
    const bad = viaJson(snap);
    bad.groups[0][1][0].o = [1, 'x'] as unknown as [number, number];
    expect(() => new AnomalyScorer(opts).restore(bad)).toThrow(/malformed thinning state/);
  });

  test.each([-1, NaN, Infinity])('scoreEvery %p is a RangeError', (v) => {
    expect(() => new AnomalyScorer({ scoreEvery: v })).toThrow(RangeError);
  });
});

describe('config', () => {
  test('defaults', () => {
    expect(parseConfig({ id: 'n1' })).toEqual({
      threshold: 0.57,
      warmup: 150,
      daily: true,
      weekly: true,
      metrics: [],
      maxSeries: 10_000,
      maintenance: [],
      clearAfter: 5,
      scoreEvery: 0,
      persist: true,
      snapshotInterval: 300_000,
      catchRejects: false,
      worker: false,
    });
    expect(parseConfig({ id: 'n1', scoreEvery: '' }).scoreEvery).toBe(0);
    expect(parseConfig({ id: 'n1', scoreEvery: '0' }).scoreEvery).toBe(0);
    expect(parseConfig({ id: 'n1', scoreEvery: 250 }).scoreEvery).toBe(250);
  });

  test('values as the editor saves them (strings and booleans)', () => {
    const s = parseConfig({
      id: 'n1',
      v: 1,
      threshold: '0.7',
      warmup: '20',
      daily: 'false',
      weekly: false,
      metrics: ' temperature , vibration,',
      maxSeries: '500',
      maintenance: '[{ "metric": "temperature", "threshold": 90, "direction": "below", "window": "30m", "horizon": 3600000, "level": 0.8, "minPoints": 5, "model": "linear" }]',
      clearAfter: '2',
      scoreEvery: '500ms',
      persist: 'false',
      snapshotInterval: '5m',
      catchRejects: 'true',
      worker: 'true',
    });
    expect(s).toEqual({
      threshold: 0.7,
      warmup: 20,
      daily: false,
      weekly: false,
      metrics: ['temperature', 'vibration'],
      maxSeries: 500,
      maintenance: [{ metric: 'temperature', threshold: 90, direction: 'below', window: 1_800_000, horizon: 3_600_000, level: 0.8, minPoints: 5, model: 'linear' }],
      clearAfter: 2,
      scoreEvery: 500,
      persist: false,
      snapshotInterval: 300_000,
      catchRejects: true,
      worker: true,
    });
  });

  test('rule defaults', () => {
    expect(parseMaintenanceRules('[{"metric":"t","threshold":1}]', [])).toEqual([{ metric: 't', threshold: 1, direction: 'above', window: 43_200_000, horizon: 86_400_000, level: 0.5 }]);
    expect(parseMaintenanceRules('[{"metric":"t","threshold":1,"level":0.8,"clearLevel":0.3,"minDwell":"1h"}]', [])).toEqual([
      { metric: 't', threshold: 1, direction: 'above', window: 43_200_000, horizon: 86_400_000, level: 0.8, clearLevel: 0.3, minDwell: 3_600_000 },
    ]);
    expect(parseMaintenanceRules('', [])).toEqual([]);
    expect(parseMaintenanceRules('  ', [])).toEqual([]);
  });

  function problems(c: Record<string, unknown>): string[] {
    try {
      parseConfig({ id: 'n1', ...c });
    } catch (e) {
      expect(e).toBeInstanceOf(AnomalyConfigError);
      return (e as AnomalyConfigError).problems;
    }
    throw new Error(`expected problems with ${JSON.stringify(c)}`);
  }

  test.each([
    [{ threshold: 1.5 }, 'threshold must be a number from 0 to 1, got 1.5'],
    [{ threshold: 'high' }, 'threshold must be a number from 0 to 1, got "high"'],
    [{ warmup: -1 }, 'warmup must be a whole number from 0 to 1000000, got -1'],
    [{ warmup: 2.5 }, 'warmup must be a whole number from 0 to 1000000, got 2.5'],
    [{ maxSeries: 0 }, 'maxSeries must be a whole number from 1 to 1000000, got 0'],
    [{ clearAfter: 'x' }, 'clearAfter must be a whole number from 1 to 1000000, got "x"'],
    [{ metrics: 'a,_b' }, 'metrics: "_b" is not a metric name'],
    [{ snapshotInterval: '5 minutes' }, 'snapshotInterval must be a duration such as "30s", "60s", "5m" (at least 100ms; "0" = only on close), got "5 minutes"'],
    [{ snapshotInterval: '10ms' }, 'snapshotInterval must be a duration such as "30s", "60s", "5m" (at least 100ms; "0" = only on close), got "10ms"'],
    [{ scoreEvery: 'often' }, 'scoreEvery must be a duration such as "500ms", "1s", "1m" (at most 1h; empty or "0" = every score), got "often"'],
    [{ scoreEvery: '2h' }, 'scoreEvery must be a duration such as "500ms", "1s", "1m" (at most 1h; empty or "0" = every score), got "2h"'],
    [{ v: 2 }, 'config version 2 is not supported (this node reads version 1)'],
    [{ maintenance: '[{' }, expect.stringMatching(/^maintenance rules are not valid JSON: /)],
    [{ maintenance: '{"metric":"t"}' }, 'maintenance rules must be a JSON array of { "metric", "threshold", ... } objects'],
    [{ maintenance: '[5]' }, 'maintenance rule 1 must be an object, got 5'],
    [{ maintenance: '[{"metric":"t","threshold":1,"treshold":2}]' }, 'maintenance rule 1 has an unknown key "treshold" (known: metric, threshold, direction, window, horizon, level, clearLevel, minDwell, minPoints, model)'],
    [{ maintenance: '[{"threshold":1}]' }, 'maintenance rule 1: "metric" must be a metric name, got undefined'],
    [{ maintenance: '[{"metric":"t","threshold":"90"}]' }, 'maintenance rule 1: "threshold" must be a finite number, got "90"'],
    [{ maintenance: '[{"metric":"t","threshold":1,"direction":"up"}]' }, 'maintenance rule 1: "direction" must be "above" or "below", got "up"'],
    [{ maintenance: '[{"metric":"t","threshold":1,"window":"6 hours"}]' }, 'maintenance rule 1: "window" must be a duration of at least 1m such as "30m", "6h", "1d" (or ms), got "6 hours"'],
    [{ maintenance: '[{"metric":"t","threshold":1,"horizon":"0s"}]' }, 'maintenance rule 1: "horizon" must be a duration of at least 1s such as "6h", "24h", "7d" (or ms), got "0s"'],
    [{ maintenance: '[{"metric":"t","threshold":1,"level":0}]' }, 'maintenance rule 1: "level" must be a probability in (0, 1], got 0'],
    [{ maintenance: '[{"metric":"t","threshold":1,"level":0.5,"clearLevel":0.6}]' }, 'maintenance rule 1: "clearLevel" must be a probability in (0, level], got 0.6'],
    [{ maintenance: '[{"metric":"t","threshold":1,"clearLevel":0}]' }, 'maintenance rule 1: "clearLevel" must be a probability in (0, level], got 0'],
    [{ maintenance: '[{"metric":"t","threshold":1,"minDwell":"soon"}]' }, 'maintenance rule 1: "minDwell" must be a duration such as "30m", "1h" (or ms), at most 366 days, got "soon"'],
    [{ maintenance: '[{"metric":"t","threshold":1,"minPoints":2}]' }, 'maintenance rule 1: "minPoints" must be a whole number from 3 to 512, got 2'],
    [{ maintenance: '[{"metric":"t","threshold":1},{"metric":"t","threshold":2}]' }, 'maintenance rule 2: metric "t" already has a rule (one rule per metric)'],
    [{ metrics: 'a', maintenance: '[{"metric":"t","threshold":1}]' }, 'maintenance rule for "t": that metric is not in the metrics to score'],
  ])('%j -> a clear problem', (c, want) => {
    expect(problems(c)).toEqual([want]);
  });

  test('every problem is reported at once', () => {
    expect(problems({ threshold: 2, warmup: 'x', maintenance: '[{"metric":"t"}]' })).toHaveLength(3);
  });

  test('durations', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('6h')).toBe(21_600_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1000')).toBe(1000);
    expect(parseDuration(60_000)).toBe(60_000);
    expect(parseDuration('0')).toBe(0);
    for (const bad of ['', '-5m', '5x', 'm', NaN, Infinity, -1, '400d', null, {}]) expect(parseDuration(bad)).toBeUndefined();
  });

  test('formatDuration', () => {
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(12 * MIN)).toBe('12m');
    expect(formatDuration(320 * MIN)).toBe('5h 20m');
    expect(formatDuration(3 * 3_600_000)).toBe('3h');
    expect(formatDuration(76 * 3_600_000)).toBe('3d 4h');
    expect(formatDuration(48 * 3_600_000)).toBe('2d');
  });
});
