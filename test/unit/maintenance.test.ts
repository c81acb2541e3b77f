import {
  MAINTENANCE_MODELS,
  MAINTENANCE_TUNING,
  MaintenanceEstimator,
  removeStep,
  type MaintenanceOptions,
  type MaintenanceSnapshot,
} from '../../nodes/anomaly/maintenance';
import type { MaintenanceEstimate } from '../../nodes/lib/contract';
import { mulberry32 } from '../../runtime/sim-model';
import { evaluateSuite, PREVIOUS, syntheticSuite, withTuning } from '../nab/maintenance-eval';

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Date.UTC(2026, 2, 2);

/** Seeded N(0, 1). */
function gauss(seed: number): () => number {
  const r = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Feeds value(t) every `step` ms for `count` readings from `from`; returns the estimates. */
function feed(e: MaintenanceEstimator, value: (t: number, i: number) => number, count: number, step = 5 * MIN, from = T0): Array<MaintenanceEstimate | null> {
  const out: Array<MaintenanceEstimate | null> = [];
  for (let i = 0; i < count; i++) {
    const t = from + i * step;
    out.push(e.update(t, value(t, i)));
  }
  return out;
}

function wellDefined(e: MaintenanceEstimate): void {
  expect(Number.isFinite(e.probability)).toBe(true);
  expect(e.probability).toBeGreaterThanOrEqual(0);
  expect(e.probability).toBeLessThanOrEqual(1);
  expect(Number.isFinite(e.slope)).toBe(true);
  for (const v of [e.ttf, e.ttfLow, e.ttfHigh]) if (v !== null) expect(v >= 0 && Number.isFinite(v)).toBe(true);
  if (e.ttf !== null) {
    expect(e.ttfLow).not.toBeNull();
    expect(e.ttfLow as number).toBeLessThanOrEqual(e.ttf);
    if (e.ttfHigh !== null) expect(e.ttfHigh).toBeGreaterThanOrEqual(e.ttf);
  }
  // Hysteresis (default clearLevel 0.25): at or above the level always alerting, below clearLevel never (minDwell 0).
  if (e.probability >= 0.5) expect(e.alert).toBe(true);
  if (e.probability < 0.25) expect(e.alert).toBe(false);
}

describe('MaintenanceEstimator options', () => {
  const ok: MaintenanceOptions = { threshold: 100 };
  it.each<[string, Partial<MaintenanceOptions> | Record<string, unknown>, RegExp]>([
    ['threshold NaN', { threshold: NaN }, /threshold must be a finite number/],
    ['threshold string', { threshold: '100' }, /threshold must be a finite number/],
    ['threshold infinite', { threshold: Infinity }, /threshold must be a finite number/],
    ['direction', { direction: 'up' }, /direction must be 'above' or 'below'/],
    ['window too short', { window: 1000 }, /window must be between 60000 ms/],
    ['window NaN', { window: NaN }, /window must be between/],
    ['horizon negative', { horizon: -1 }, /horizon must be between 1000 ms/],
    ['horizon huge', { horizon: 1e15 }, /horizon must be between/],
    ['level 0', { level: 0 }, /level must be a probability in \(0, 1\]/],
    ['level 1.5', { level: 1.5 }, /level must be a probability/],
    ['minPoints fraction', { minPoints: 4.5 }, /minPoints must be an integer from 3 to 256/],
    ['minPoints 2', { minPoints: 2 }, /minPoints must be an integer/],
    ['model', { model: 'neural' }, /model must be one of theil-sen, linear, quadratic/],
    ['clearLevel 0', { clearLevel: 0 }, /clearLevel must be a probability in \(0, level\]/],
    ['clearLevel above level', { level: 0.5, clearLevel: 0.6 }, /clearLevel must be a probability in \(0, level\]/],
    ['clearLevel string', { clearLevel: '0.2' }, /clearLevel must be/],
    ['minDwell negative', { minDwell: -1 }, /minDwell must be between 0 and/],
    ['minDwell NaN', { minDwell: NaN }, /minDwell must be between/],
  ])('rejects %s with a RangeError', (_name, bad, msg) => {
    expect(() => new MaintenanceEstimator({ ...ok, ...bad } as MaintenanceOptions)).toThrow(RangeError);
    expect(() => new MaintenanceEstimator({ ...ok, ...bad } as MaintenanceOptions)).toThrow(msg);
  });

  it('rejects a non-object', () => {
    expect(() => new MaintenanceEstimator(null as unknown as MaintenanceOptions)).toThrow(RangeError);
  });

  it('applies the documented defaults', () => {
    const e = new MaintenanceEstimator(ok);
    expect([e.direction, e.window, e.horizon, e.level, e.minPoints, e.model, e.clearLevel, e.minDwell]).toEqual(['above', 12 * HOUR, 24 * HOUR, 0.5, 12, 'theil-sen', 0.25, 0]);
    // clearLevel follows the level unless given.
    expect(new MaintenanceEstimator({ ...ok, level: 0.8 }).clearLevel).toBe(0.4);
    expect(new MaintenanceEstimator({ ...ok, level: 0.8, clearLevel: 0.8 }).clearLevel).toBe(0.8);
    expect(MAINTENANCE_MODELS).toContain(e.model);
  });
});

describe('MaintenanceEstimator estimates', () => {
  it('gives the exact time to threshold of a clean linear degradation, with every model', () => {
    for (const model of MAINTENANCE_MODELS) {
      const e = new MaintenanceEstimator({ threshold: 100, model });
      // 50 + 2 per hour: reaches 100 at T0 + 25 h.
      const res = feed(e, (t) => 50 + (2 * (t - T0)) / HOUR, 12 * 12, 5 * MIN);
      const i = res.length - 1;
      const est = res[i] as MaintenanceEstimate;
      const truth = T0 + 25 * HOUR - (T0 + i * 5 * MIN);
      expect(est).not.toBeNull();
      expect(Math.abs((est.ttf as number) - truth)).toBeLessThanOrEqual(1000 + truth * 1e-6);
      expect(est.slope).toBeCloseTo(2, 6);
      expect(est.model).toBe(model);
      wellDefined(est);
      // 14 h left of a 24 h horizon: certain.
      expect(est.probability).toBeGreaterThan(0.99);
      expect(est.alert).toBe(true);
    }
  });

  it('estimates a noisy linear degradation within a few percent, interval around the truth', () => {
    const g = gauss(4);
    const e = new MaintenanceEstimator({ threshold: 100 });
    // 60 + 1 per hour + N(0, 1): reaches 100 at T0 + 40 h. 30 h of data, 2-min cadence.
    const res = feed(e, (t) => 60 + (t - T0) / HOUR + g(), 15 * 60, 2 * MIN);
    const est = res[res.length - 1] as MaintenanceEstimate;
    const truth = 40 * HOUR - (res.length - 1) * 2 * MIN;
    expect(Math.abs((est.ttf as number) - truth) / truth).toBeLessThan(0.1);
    expect(est.ttfLow as number).toBeLessThanOrEqual(truth);
    expect(est.ttfHigh as number).toBeGreaterThanOrEqual(truth);
    expect(est.alert).toBe(true);
    wellDefined(est);
  });

  it('reports ttf 0 and alerts once the trend is past the threshold', () => {
    const e = new MaintenanceEstimator({ threshold: 70 });
    const res = feed(e, (t) => 60 + (2 * (t - T0)) / HOUR, 12 * 12);
    const est = res[res.length - 1] as MaintenanceEstimate;
    expect(est.ttf).toBe(0);
    expect(est.ttfLow).toBe(0);
    expect(est.alert).toBe(true);
  });

  it('never alerts on a healthy flat series and says the trend does not head to the threshold', () => {
    const g = gauss(9);
    const e = new MaintenanceEstimator({ threshold: 100 });
    const res = feed(e, () => 60 + 2 * g(), 5 * 288);
    const est = res.filter((r): r is MaintenanceEstimate => r !== null);
    expect(est.length).toBeGreaterThan(4 * 288);
    for (const r of est) {
      wellDefined(r);
      expect(r.alert).toBe(false);
      expect(r.probability).toBeLessThan(0.25);
    }
    expect(est.reduce((s, r) => s + r.probability, 0) / est.length).toBeLessThan(0.02);
    expect(est.filter((r) => r.ttf === null).length).toBeGreaterThan(est.length / 3);
  });

  it('is null until it has minPoints buckets over 90 % of the window', () => {
    const e = new MaintenanceEstimator({ threshold: 100, window: HOUR, minPoints: 20 });
    // 1 reading per 5 min: 12 per hour, never 20 in a 1 h window.
    expect(feed(e, (t) => 50 + (t - T0) / HOUR, 100).every((r) => r === null)).toBe(true);
    const f = new MaintenanceEstimator({ threshold: 100 });
    const res = feed(f, (t) => 50 + (t - T0) / HOUR, 200);
    const first = res.findIndex((r) => r !== null);
    expect(first * 5 * MIN).toBeGreaterThanOrEqual(0.9 * 12 * HOUR);
    expect(first * 5 * MIN).toBeLessThanOrEqual(0.9 * 12 * HOUR + 5 * MIN);
  });

  it("handles direction 'below' as the mirror of 'above'", () => {
    const g = gauss(2);
    const noise = Array.from({ length: 200 }, g);
    const up = feed(new MaintenanceEstimator({ threshold: 100 }), (t, i) => 60 + (t - T0) / HOUR + noise[i], 200);
    const down = feed(new MaintenanceEstimator({ threshold: 20, direction: 'below' }), (t, i) => 60 - (t - T0) / HOUR - noise[i], 200);
    const u = up[199] as MaintenanceEstimate;
    const d = down[199] as MaintenanceEstimate;
    expect(d.direction).toBe('below');
    expect(d.threshold).toBe(20);
    expect(d.slope).toBeCloseTo(-u.slope, 9);
    expect(d.ttf).toBe(u.ttf);
    expect(d.ttfLow).toBe(u.ttfLow);
    expect(d.ttfHigh).toBe(u.ttfHigh);
    expect(d.probability).toBeCloseTo(u.probability, 12);
    // A rising series never alerts 'below'.
    const rising = feed(new MaintenanceEstimator({ threshold: 20, direction: 'below' }), (t) => 60 + (t - T0) / HOUR, 200);
    expect(rising.some((r) => r?.alert)).toBe(false);
  });

  it('does not take a level step for a trend', () => {
    const g = gauss(6);
    const e = new MaintenanceEstimator({ threshold: 100 });
    const res = feed(e, (t) => 60 + (t >= T0 + 24 * HOUR ? 15 : 0) + g(), 3 * 288);
    expect(res.some((r) => r?.alert)).toBe(false);
    // Without step removal the same series alerts.
    const saved = MAINTENANCE_TUNING.STEPS;
    MAINTENANCE_TUNING.STEPS = false;
    try {
      const g2 = gauss(6);
      const f = new MaintenanceEstimator({ threshold: 100 });
      expect(feed(f, (t) => 60 + (t >= T0 + 24 * HOUR ? 15 : 0) + g2(), 3 * 288).some((r) => r?.alert)).toBe(true);
    } finally {
      MAINTENANCE_TUNING.STEPS = saved;
    }
  });

  it('removeStep finds a clear step and leaves a line alone', () => {
    const xs = Array.from({ length: 40 }, (_, i) => i / 10);
    const line = xs.map((x) => 3 + 2 * x + (x * 7919) % 0.01);
    expect(removeStep(xs, [...line])).toBe(0);
    const ys = xs.map((x, i) => 3 + 0.5 * x + (i >= 25 ? 10 : 0) + ((i * 37) % 5) * 0.01);
    const d = removeStep(xs, ys);
    expect(d).toBeCloseTo(10, 1);
    expect(ys[0]).toBeCloseTo(13, 1);
  });

  it('ignores NaN and infinite readings without touching its state', () => {
    const clean = new MaintenanceEstimator({ threshold: 100 });
    const dirty = new MaintenanceEstimator({ threshold: 100 });
    const value = (t: number): number => 60 + (t - T0) / HOUR;
    let ignored = 0;
    for (let i = 0; i < 150; i++) {
      const t = T0 + i * 5 * MIN;
      if (i % 7 === 3) {
        for (const [bt, bv] of [
          [t, NaN],
          [t, Infinity],
          [t, -Infinity],
          [t, -1e300],
          [NaN, 1],
          [Infinity, 1],
        ]) {
          expect(dirty.update(bt, bv)).toBeNull();
          ignored++;
        }
      }
      expect(dirty.update(t, value(t))).toEqual(clean.update(t, value(t)));
    }
    expect(dirty.ignored).toBe(ignored);
    expect(dirty.count).toBe(clean.count);
    expect(dirty.snapshot()).toEqual({ ...clean.snapshot(), ignored });
  });

  it('ignores readings older than the newest (out of order) and keeps equal timestamps', () => {
    const a = new MaintenanceEstimator({ threshold: 100 });
    const b = new MaintenanceEstimator({ threshold: 100 });
    for (let i = 0; i < 150; i++) {
      const t = T0 + i * 5 * MIN;
      const v = 60 + (t - T0) / HOUR;
      if (i > 0 && i % 10 === 0) expect(b.update(t - 7 * MIN, 1000)).toBeNull();
      expect(b.update(t, v)).toEqual(a.update(t, v));
    }
    expect(b.ignored).toBe(14);
    // Same timestamp twice: both readings land in the same bucket.
    const c = new MaintenanceEstimator({ threshold: 100 });
    c.update(T0, 1);
    c.update(T0, 3);
    expect(c.points).toBe(1);
    expect(c.count).toBe(2);
    expect(c.ignored).toBe(0);
  });

  it('forgets history older than the window: after a long gap it re-learns', () => {
    const e = new MaintenanceEstimator({ threshold: 100 });
    const res = feed(e, (t) => 60 + (t - T0) / HOUR, 150);
    expect(res[149]).not.toBeNull();
    const later = T0 + 3 * 24 * HOUR;
    expect(e.update(later, 70)).toBeNull();
    expect(e.points).toBe(1);
  });
});

describe('MaintenanceEstimator alert hysteresis', () => {
  /** Ramps towards the threshold and back, twice, with noise: the probability rises and falls through the levels. */
  function wave(seed: number): (t: number) => number {
    const g = gauss(seed);
    return (t) => 60 + 25 * Math.max(0, Math.sin((2 * Math.PI * (t - T0)) / (40 * HOUR))) + 2 * g();
  }

  it('raises at the level and clears only below clearLevel', () => {
    for (const clearLevel of [0.25, 0.1, 0.5]) {
      const e = new MaintenanceEstimator({ threshold: 100, window: 6 * HOUR, clearLevel });
      const res = feed(e, wave(7), 4 * 288);
      let prev = false;
      let held = 0;
      let raised = 0;
      for (const r of res) {
        if (r === null) continue;
        if (!prev) expect(r.alert).toBe(r.probability >= 0.5);
        else expect(r.alert).toBe(r.probability >= clearLevel);
        if (r.alert && r.probability < 0.5) held++;
        if (r.alert && !prev) raised++;
        prev = r.alert;
      }
      expect(raised).toBeGreaterThan(0);
      // With clearLevel = level there is no band to be held in.
      if (clearLevel === 0.5) expect(held).toBe(0);
      else expect(held).toBeGreaterThan(0);
    }
  });

  it('flickers less than the bare rule on the same series', () => {
    // A slow noisy drift whose crossing comes into the 24 h horizon around hour 26: the probability hovers about 0.5 for a while.
    const count = (clearLevel: number): number => {
      const g = gauss(21);
      const e = new MaintenanceEstimator({ threshold: 100, window: 6 * HOUR, clearLevel });
      let prev = false;
      let n = 0;
      for (const r of feed(e, (t) => 60 + (0.8 * (t - T0)) / HOUR + 3 * g(), 2 * 288)) {
        const a: boolean = r === null ? prev : r.alert;
        if (a && !prev) n++;
        prev = a;
      }
      return n;
    };
    expect(count(0.25)).toBeLessThan(count(0.5));
  });

  it('keeps a raised alert for minDwell of event time', () => {
    const dwell = 3 * HOUR;
    const e = new MaintenanceEstimator({ threshold: 100, window: 6 * HOUR, minDwell: dwell, clearLevel: 0.5 });
    const res = feed(e, wave(8), 4 * 288);
    let since = NaN;
    let prev = false;
    let cleared = 0;
    res.forEach((r, i) => {
      if (r === null) return;
      const t = T0 + i * 5 * MIN;
      if (r.alert && !prev) since = t;
      if (!r.alert && prev) {
        expect(t - since).toBeGreaterThanOrEqual(dwell);
        cleared++;
      }
      if (r.alert && t - since < dwell) expect(r.alert).toBe(true);
      if (!prev) expect(r.alert).toBe(r.probability >= 0.5);
      prev = r.alert;
    });
    expect(cleared).toBeGreaterThan(0);
  });
});

describe('MaintenanceEstimator memory and state', () => {
  it('keeps bounded memory on a long, fast series', () => {
    const e = new MaintenanceEstimator({ threshold: 100 });
    const g = gauss(1);
    let last: MaintenanceEstimate | null = null;
    let maxPoints = 0;
    // 1 day at one reading per 10 s: 8,640 readings, ~8 per bucket, 4 windows.
    for (let i = 0; i < 8640; i++) {
      last = e.update(T0 + i * 10_000, 60 + (i * 10_000) / (4 * HOUR) + 0.5 * g());
      if (e.points > maxPoints) maxPoints = e.points;
    }
    expect(maxPoints).toBeLessThanOrEqual(MAINTENANCE_TUNING.MAX_POINTS);
    expect(e.stateBytes).toBeLessThanOrEqual(MaintenanceEstimator.maxStateBytes());
    expect(MaintenanceEstimator.maxStateBytes()).toBeLessThan(6500);
    expect(JSON.stringify(e.snapshot()).length).toBeLessThan(10_000);
    expect(e.count).toBe(8640);
    // 60 + t / 4 h: 66 at 24 h, 100 at 160 h.
    expect(last).not.toBeNull();
    expect(Math.abs((last?.ttf as number) - 136 * HOUR) / (136 * HOUR)).toBeLessThan(0.15);
  });

  it('snapshot / restore through JSON continues identically', () => {
    for (const [step, model] of [
      [5 * MIN, 'theil-sen'],
      [7000, 'theil-sen'],
      [30_000, 'quadratic'],
      [5 * MIN, 'linear'],
    ] as const) {
      const g = gauss(3);
      const value = (i: number): number => 60 + (i * step) / (2 * HOUR) + g();
      const a = new MaintenanceEstimator({ threshold: 100, model, direction: 'above', level: 0.7 });
      const n = Math.ceil((10 * HOUR) / step);
      for (let i = 0; i < n; i++) a.update(T0 + i * step, value(i));
      const snap = JSON.parse(JSON.stringify(a.snapshot())) as MaintenanceSnapshot;
      const b = MaintenanceEstimator.restore(snap);
      expect(b.snapshot()).toEqual(a.snapshot());
      expect(b.level).toBe(0.7);
      for (let i = n; i < n + Math.ceil((3 * HOUR) / step); i++) {
        const v = value(i);
        expect(b.update(T0 + i * step, v)).toEqual(a.update(T0 + i * step, v));
      }
      expect(b.snapshot()).toEqual(a.snapshot());
    }
  });

  it('restores a raised alert exactly (hysteresis and dwell continue)', () => {
    const g = gauss(12);
    const value = (i: number): number => 60 + 25 * Math.max(0, Math.sin((2 * Math.PI * i) / 480)) + 2 * g();
    const a = new MaintenanceEstimator({ threshold: 100, window: 6 * HOUR, minDwell: HOUR });
    let i = 0;
    // Run until alerting, then snapshot.
    for (; i < 2000; i++) if (a.update(T0 + i * 5 * MIN, value(i))?.alert) break;
    expect(i).toBeLessThan(2000);
    const snap = JSON.parse(JSON.stringify(a.snapshot())) as MaintenanceSnapshot;
    expect(snap.alert).toBe(true);
    expect(snap.alertAt).toBe(T0 + i * 5 * MIN);
    const b = MaintenanceEstimator.restore(snap);
    for (let k = i + 1; k < i + 300; k++) {
      const v = value(k);
      expect(b.update(T0 + k * 5 * MIN, v)).toEqual(a.update(T0 + k * 5 * MIN, v));
    }
    expect(b.snapshot()).toEqual(a.snapshot());
  });

  it('restores a snapshot from before hysteresis (no alert fields) as not alerting', () => {
    const a = new MaintenanceEstimator({ threshold: 100 });
    feed(a, (t) => 60 + (t - T0) / HOUR, 150);
    const { alert: _a, alertAt: _b, ...old } = a.snapshot();
    const b = MaintenanceEstimator.restore(old as MaintenanceSnapshot);
    expect(b.snapshot()).toEqual({ ...a.snapshot(), alert: false, alertAt: null });
  });

  it('restores an empty estimator', () => {
    const a = new MaintenanceEstimator({ threshold: 5, direction: 'below' });
    const b = MaintenanceEstimator.restore(JSON.parse(JSON.stringify(a.snapshot())) as MaintenanceSnapshot);
    expect(b.snapshot()).toEqual(a.snapshot());
    expect(b.direction).toBe('below');
  });

  it('rejects bad snapshots with clear errors', () => {
    const a = new MaintenanceEstimator({ threshold: 100 });
    feed(a, (t) => 60 + (t - T0) / HOUR, 100);
    const good = a.snapshot();
    const bad = (patch: Record<string, unknown>): MaintenanceSnapshot => ({ ...good, ...patch }) as MaintenanceSnapshot;
    const buckets = Buffer.from(good.buckets, 'base64');
    const swapped = Buffer.from(buckets);
    swapped.writeDoubleLE(buckets.readDoubleLE(24) + 1000, 0); // bucket 0 after bucket 1
    const nan = Buffer.from(buckets);
    nan.writeDoubleLE(NaN, 8);
    const cases: Array<[unknown, RegExp]> = [
      [null, /unknown format/],
      [{ v: 2 }, /unknown format/],
      [bad({ opts: undefined }), /opts missing/],
      [bad({ opts: { ...good.opts, window: 5 } }), /bad opts: window must be/],
      [bad({ buckets: 42 }), /buckets must be a base64 string/],
      [bad({ buckets: buckets.subarray(0, 20).toString('base64') }), /not a multiple of 8/],
      [bad({ buckets: buckets.subarray(0, 16).toString('base64') }), /triples/],
      [bad({ buckets: Buffer.alloc(24 * 300).toString('base64') }), /at most 256/],
      [bad({ buckets: nan.toString('base64') }), /bucket 0 is not a finite/],
      [bad({ buckets: swapped.toString('base64') }), /bucket 1 is older/],
      [bad({ lastTs: null }), /lastTs is null/],
      [bad({ lastTs: 'x' }), /lastTs must be a finite number/],
      [bad({ lastTs: T0 }), /not older than the newest bucket/],
      [bad({ count: -1 }), /count must be a non-negative integer/],
      [bad({ ignored: 1.5 }), /ignored must be a non-negative integer/],
      [bad({ fit: Buffer.alloc(16).toString('base64') }), /fit must hold 13 finite numbers/],
      [bad({ alert: 'yes' }), /alert must be a boolean/],
      [bad({ alertAt: 'x' }), /alertAt must be a finite number or null/],
      [bad({ alert: true, alertAt: null }), /alert is raised but alertAt is null/],
      [bad({ opts: { ...good.opts, clearLevel: 0.9 } }), /bad opts: clearLevel must be/],
    ];
    for (const [s, msg] of cases) expect(() => MaintenanceEstimator.restore(s as MaintenanceSnapshot)).toThrow(msg);
  });
});

describe('predictive-maintenance evaluation (synthetic, seeded)', () => {
  it('pins the key figures: TTT error, coverage, no false alerts, Theil-Sen ahead of the parabola', () => {
    const suite = syntheticSuite({ seed: 5, count: 2, families: ['flat', 'step-flat', 'linear', 'outliers'] });
    expect(suite).toHaveLength(8);
    const ts = evaluateSuite('theil-sen', suite);
    const quad = evaluateSuite('quadratic', suite);
    // Linear degradations (with or without outliers): the median error well under 25 %.
    expect(ts.overall.n).toBe(16);
    expect(ts.overall.median).toBeLessThan(0.25);
    expect(ts.byOffset['12h'].median).toBeLessThan(0.2);
    expect(ts.overall.coverage).toBeGreaterThan(0.7);
    expect(ts.healthyFalseAlertRate).toBe(0);
    expect(ts.missedRate).toBe(0);
    expect(ts.medianLeadH).toBeGreaterThan(6);
    expect(ts.brier).toBeLessThan(0.05);
    expect(quad.overall.median).toBeGreaterThan(ts.overall.median);
    expect(quad.healthyFalseAlertRate).toBeGreaterThan(ts.healthyFalseAlertRate);
  });

  it('the defaults warn less than the previous settings on nuisances, without losing degradations', () => {
    const suite = syntheticSuite({ seed: 3, count: 3, families: ['regime', 'wander', 'linear', 'noisy-drift'] });
    expect(suite).toHaveLength(12);
    // Dropouts: the noisy families have gaps in their timestamps.
    const nd = suite.filter((s) => s.family === 'noisy-drift');
    expect(nd.some((s) => s.timestamps.some((t, i) => i > 0 && t - s.timestamps[i - 1] > 30 * MIN))).toBe(true);
    const now = evaluateSuite('theil-sen', suite);
    const before = withTuning(PREVIOUS.tune, () => evaluateSuite('theil-sen', suite, PREVIOUS.opts));
    expect(now.healthyAlertsPerDay).toBeLessThan(before.healthyAlertsPerDay);
    expect(now.alertsPerDegrading).toBeLessThan(before.alertsPerDegrading);
    expect(now.missedRate).toBe(0);
    expect(now.medianLeadH).toBeGreaterThanOrEqual(before.medianLeadH);
  });
});
