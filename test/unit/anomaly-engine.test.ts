import { AnomalyDetector, type AnomalyResult, type AnomalySnapshot } from '../../nodes/anomaly/engine';
import { erfc, normalTail } from '../../nodes/anomaly/stats';
import { mulberry32 } from '../../runtime/sim-model';

const T0 = Date.UTC(2026, 0, 5); // a Monday
const FIVE_MIN = 300_000;

/** A 5-minute temperature-like series: daily cycle plus Gaussian-ish noise. */
function seasonal(count: number, seed = 1, noise = 0.5): number[] {
  const r = mulberry32(seed);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(20 + 5 * Math.sin((2 * Math.PI * i) / 288) + (r() + r() + r() + r() - 2) * noise * 1.7);
  return out;
}

function feed(d: AnomalyDetector, values: readonly number[], from = 0, step = FIVE_MIN): AnomalyResult[] {
  return values.map((v, i) => d.update(T0 + (from + i) * step, v));
}

describe('AnomalyDetector', () => {
  it('fills a given result object with what a new one would hold (invalid readings too)', () => {
    const a = new AnomalyDetector();
    const b = new AnomalyDetector();
    const values = seasonal(1200, 4);
    values[700] = 90; // an anomaly
    values[300] = NaN; // an invalid reading
    const into: AnomalyResult = { score: -1, anomalous: true, expected: 0, lower: 0, upper: 0, signal: 'none', learning: false };
    let anomalous = 0;
    values.forEach((v, i) => {
      const want = a.update(T0 + i * FIVE_MIN, v);
      const got = b.update(T0 + i * FIVE_MIN, v, into);
      expect(got).toBe(into);
      expect({ ...got }).toEqual(want);
      if (want.anomalous) anomalous++;
    });
    expect(anomalous).toBeGreaterThan(0);
    expect(b.update(T0, NaN, into).signal).toBe('invalid');
  });

  it('scores in [0, 1] and reports a band around the expected value', () => {
    const d = new AnomalyDetector();
    const r = mulberry32(3);
    const values = seasonal(6000, 2).map((v, i) => (i % 997 === 0 ? v + (r() - 0.5) * 200 : v));
    for (const res of feed(d, values)) {
      expect(res.score).toBeGreaterThanOrEqual(0);
      expect(res.score).toBeLessThanOrEqual(1);
      expect(res.anomalous).toBe(!res.learning && res.score >= d.threshold);
      expect(res.lower).toBeLessThanOrEqual(res.expected);
      expect(res.upper).toBeGreaterThanOrEqual(res.expected);
    }
  });

  it('is learning during warm-up: score 0, never anomalous', () => {
    const d = new AnomalyDetector({ warmup: 200 });
    const values = seasonal(400);
    values[100] = 1000; // a huge spike inside warm-up
    const res = feed(d, values);
    for (let i = 0; i < 200; i++) {
      expect(res[i].learning).toBe(true);
      expect(res[i].score).toBe(0);
      expect(res[i].anomalous).toBe(false);
      expect(res[i].signal).toBe('learning');
    }
    for (let i = 200; i < 400; i++) expect(res[i].learning).toBe(false);
  });

  it('detects a spike', () => {
    const d = new AnomalyDetector();
    const values = seasonal(3000);
    feed(d, values);
    const res = d.update(T0 + 3000 * FIVE_MIN, values[3000 - 288] + 15);
    expect(res.anomalous).toBe(true);
    expect(res.score).toBeGreaterThanOrEqual(d.threshold);
  });

  it('detects a spike inside the usual range by its prediction error', () => {
    const d = new AnomalyDetector();
    const values = seasonal(5000, 4, 0.2);
    feed(d, values.slice(0, 4000));
    // At the trough of the daily cycle, a value typical of the peak: inside the all-time range, far from the expected value.
    const i = 4000 + ((288 * 3) / 4 - (4000 % 288) + 288) % 288;
    feed(d, values.slice(4000, i), 4000);
    const hits = feed(d, [25, 25, 25], i).filter((x) => x.anomalous);
    expect(hits.length).toBeGreaterThan(0);
    expect(hits[0].signal).not.toBe('range');
  });

  it('detects a level shift', () => {
    const d = new AnomalyDetector();
    const values = seasonal(4000);
    feed(d, values.slice(0, 3000));
    const shifted = values.slice(3000, 3050).map((v) => v + 8);
    const res = feed(d, shifted, 3000);
    const first = res.findIndex((x) => x.anomalous);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThan(10);
  });

  it('stays quiet on clean flat, periodic and noisy-periodic signals', () => {
    const flat = new AnomalyDetector();
    expect(feed(flat, new Array<number>(5000).fill(42)).some((x) => x.anomalous)).toBe(false);

    const square = new AnomalyDetector();
    const sq = Array.from({ length: 4032 }, (_, i) => (i % 288 < 144 ? 80 : 20));
    expect(square.update(T0, 20).anomalous).toBe(false);
    expect(feed(square, sq, 1).some((x) => x.anomalous)).toBe(false);

    const sine = new AnomalyDetector();
    const res = feed(sine, seasonal(4032, 9, 0));
    expect(res.some((x) => x.anomalous)).toBe(false);
    expect(Math.max(...res.map((x) => x.score))).toBeLessThan(sine.threshold);
  });

  it('snapshot/restore gives identical subsequent scores, through JSON', () => {
    const values = seasonal(9000, 5);
    for (let i = 0; i < 9000; i += 1500) values[i] += 12;
    const a = new AnomalyDetector({ threshold: 0.55 });
    feed(a, values.slice(0, 4321));
    const snap = JSON.parse(JSON.stringify(a.snapshot())) as AnomalySnapshot;
    const b = AnomalyDetector.restore(snap);
    expect(b.threshold).toBe(0.55);
    expect(b.count).toBe(a.count);
    const ra = feed(a, values.slice(4321), 4321);
    const rb = feed(b, values.slice(4321), 4321);
    expect(rb).toEqual(ra);
    expect(ra.some((x) => x.anomalous)).toBe(true);
    // Before the cadence is known (no seasonal profiles yet) too.
    const c = new AnomalyDetector();
    feed(c, values.slice(0, 5));
    const c2 = AnomalyDetector.restore(JSON.parse(JSON.stringify(c.snapshot())) as AnomalySnapshot);
    expect(feed(c2, values.slice(5, 600), 5)).toEqual(feed(c, values.slice(5, 600), 5));
  });

  it('restores a version 1 snapshot (no hold-off state) and continues as a detector with no hold-off running', () => {
    const values = seasonal(3000, 7);
    const a = new AnomalyDetector();
    feed(a, values.slice(0, 1000));
    const snap = JSON.parse(JSON.stringify(a.snapshot())) as AnomalySnapshot;
    expect(snap.v).toBe(2);
    // No hold-off running at this point, so the version 1 form of this state is exact.
    const s = Buffer.from(snap.s, 'base64');
    expect([s.readDoubleLE(25 * 8), s.readDoubleLE(26 * 8)]).toEqual([0, 0]);
    const v1 = { ...snap, v: 1 as const, s: s.subarray(0, 25 * 8).toString('base64') };
    const b = AnomalyDetector.restore(v1);
    expect(b.snapshot()).toEqual(snap);
    expect(feed(b, values.slice(1000), 1000)).toEqual(feed(a, values.slice(1000), 1000));
    // A version 1 scalar block in a version 2 snapshot is refused.
    expect(() => AnomalyDetector.restore({ ...snap, s: v1.s })).toThrow(/scalars has 200 bytes, expected 216/);
  });

  it('reports an episode once: lower scores within the hold-off are held, new extremes and later episodes are not', () => {
    const base = seasonal(5000, 4, 0.2);
    // Three readings typical of the other end of the daily cycle: inside the all-time range, far from the expected value.
    const burst = (mods: Map<number, number>, k: number): void => {
      for (let j = k; j < k + 3; j++) mods.set(j, base[k] > 20 ? 15 : 25);
    };
    const run = (mods: Map<number, number>): AnomalyResult[] => {
      const d = new AnomalyDetector();
      return base.map((v, k) => d.update(T0 + k * FIVE_MIN, mods.get(k) ?? v));
    };
    const i = 4000 + (((288 * 3) / 4 - (4000 % 288) + 288) % 288); // a trough of the cycle
    const withFirst = new Map<number, number>();
    burst(withFirst, i);
    burst(withFirst, i + 80);
    withFirst.set(i + 100, 100);
    burst(withFirst, i + 576);
    const alone = new Map<number, number>();
    burst(alone, i + 80);
    const a = run(withFirst);
    const b = run(alone);
    expect(a.slice(1000, i).some((x) => x.anomalous)).toBe(false);
    // The first episode is reported.
    expect(a.slice(i, i + 3).some((x) => x.anomalous)).toBe(true);
    // The second one, reported when alone, is held 80 readings after the first (score 0, signal 'none').
    expect(b.slice(i + 80, i + 83).some((x) => x.anomalous)).toBe(true);
    expect(a.slice(i + 80, i + 83).map((x) => [x.score, x.signal])).toEqual([
      [0, 'none'],
      [0, 'none'],
      [0, 'none'],
    ]);
    // A new extreme is always reported...
    expect(a[i + 100]).toMatchObject({ score: 1, anomalous: true, signal: 'range' });
    // ... and, holds over, a new episode two cycles later is reported again.
    expect(a.slice(i + 576, i + 579).some((x) => x.anomalous)).toBe(true);
  });

  it('restore rejects a malformed snapshot', () => {
    expect(() => AnomalyDetector.restore({ v: 3 } as unknown as AnomalySnapshot)).toThrow(/unknown format \(version 3; this engine reads 1 and 2\)/);
    expect(() => AnomalyDetector.restore(null as unknown as AnomalySnapshot)).toThrow(/unknown format/);
    const snap = new AnomalyDetector().snapshot();
    expect(() => AnomalyDetector.restore({ ...snap, s: 'AAAA' })).toThrow(/scalars/);
  });

  it('keeps its memory bounded over 1,000,000 points', () => {
    const d = new AnomalyDetector();
    const r = mulberry32(11);
    let bytes = 0;
    for (let i = 0; i < 1_000_000; i++) {
      // 1-minute cadence: the largest seasonal profiles (1440 + 2016 slots).
      d.update(T0 + i * 60_000, 10 + Math.sin(i / 229) + r());
      if (i === 100_000) bytes = d.stateBytes;
    }
    expect(d.stateBytes).toBe(bytes);
    expect(d.stateBytes).toBeLessThanOrEqual(AnomalyDetector.maxStateBytes());
    expect(AnomalyDetector.maxStateBytes()).toBeLessThan(20_000);
    expect(JSON.stringify(d.snapshot()).length).toBeLessThan(30_000);
  });

  it('ignores and flags NaN / Infinity inputs without corrupting state', () => {
    const values = seasonal(3000, 6);
    const clean = new AnomalyDetector();
    const dirty = new AnomalyDetector();
    const rc: AnomalyResult[] = [];
    const rd: AnomalyResult[] = [];
    const bad = [NaN, Infinity, -Infinity];
    for (let i = 0; i < values.length; i++) {
      const ts = T0 + i * FIVE_MIN;
      if (i % 97 === 0) {
        for (const v of bad) {
          const res = dirty.update(ts, v);
          expect(res.signal).toBe('invalid');
          expect(res.score).toBe(0);
          expect(res.anomalous).toBe(false);
        }
        expect(dirty.update(NaN, values[i]).signal).toBe('invalid');
      }
      rc.push(clean.update(ts, values[i]));
      rd.push(dirty.update(ts, values[i]));
    }
    expect(rd).toEqual(rc);
    expect(dirty.invalidCount).toBe(4 * Math.ceil(3000 / 97));
    expect(dirty.count).toBe(clean.count);
  });

  it('validates its options', () => {
    expect(() => new AnomalyDetector({ threshold: 1.5 })).toThrow(RangeError);
    expect(() => new AnomalyDetector({ threshold: NaN })).toThrow(RangeError);
    expect(() => new AnomalyDetector({ warmup: -1 })).toThrow(RangeError);
    expect(new AnomalyDetector().threshold).toBe(0.57);
  });
});

describe('anomaly stats helpers', () => {
  it('erfc matches reference values', () => {
    expect(erfc(0)).toBe(1);
    expect(erfc(0.5)).toBeCloseTo(0.4795001221869535, 15);
    expect(erfc(1)).toBeCloseTo(0.15729920705028513, 15);
    expect(erfc(2)).toBeCloseTo(0.004677734981047266, 16);
    expect(erfc(3) / 2.209049699858544e-5).toBeCloseTo(1, 12);
    expect(erfc(5) / 1.5374597944280349e-12).toBeCloseTo(1, 12);
    expect(erfc(-1)).toBeCloseTo(2 - 0.15729920705028513, 15);
    expect(erfc(30)).toBe(0);
  });

  it('normal tail (two-sided by distance from the mean)', () => {
    expect(normalTail(12, 10, 2)).toBeCloseTo(0.15865525393145707, 12);
    expect(normalTail(8, 10, 2)).toBeCloseTo(0.15865525393145707, 12);
    expect(normalTail(10, 10, 2)).toBe(0.5);
  });
});
