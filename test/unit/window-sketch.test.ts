/**
 * nodes/window/sketch.ts: the LogSketch's relative-error bound against exact order statistics
 * over many seeded distributions, merge = insert-all, zeros and negatives, collapsing, JSON.
 */
import { mulberry32 } from '../../runtime/sim-model';
import { LogSketch, SketchMapping } from '../../nodes/window/sketch';

const QS = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1];

/** The value of rank floor(q (n - 1)) of the sorted values: what the bound is stated against. */
function exact(sorted: readonly number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))];
}

function expectWithin(est: number, x: number, alpha: number): void {
  const bound = alpha * Math.abs(x) * (1 + 1e-12) + 1e-300;
  if (!(Math.abs(est - x) <= bound)) throw new Error(`estimate ${est} is not within ${alpha} of ${x}`);
}

type Dist = (r: () => number) => number;
const DISTS: Record<string, Dist> = {
  uniform: (r) => r() * 1000,
  narrow: (r) => 20 + r(),
  lognormal: (r) => Math.exp(4 * (r() + r() + r() - 1.5)),
  signed: (r) => (r() - 0.5) * 200,
  withZeros: (r) => (r() < 0.2 ? 0 : (r() - 0.3) * 50),
  pareto: (r) => 1 / Math.pow(1 - r(), 1.5),
  integers: (r) => Math.floor(r() * 10),
};

describe('relative error bound', () => {
  for (const alpha of [0.01, 0.02, 0.05]) {
    for (const [name, dist] of Object.entries(DISTS)) {
      test(`alpha ${alpha}, ${name}: every quantile within alpha |x| over 40 seeds`, () => {
        const map = new SketchMapping(alpha);
        for (let seed = 1; seed <= 40; seed++) {
          const r = mulberry32(seed * 7919 + Math.round(alpha * 1000));
          const n = 1 + Math.floor(r() * 2000);
          const sk = new LogSketch(map);
          const values: number[] = [];
          for (let i = 0; i < n; i++) {
            const v = dist(r);
            values.push(v);
            sk.add(v);
          }
          values.sort((a, b) => a - b);
          expect(sk.count).toBe(n);
          for (const q of QS) expectWithin(sk.quantile(q), exact(values, q), alpha);
          // Clamped to the true min/max, estimates stay inside them and keep the bound.
          for (const q of QS) {
            const c = sk.quantile(q, values[0], values[n - 1]);
            expect(c).toBeGreaterThanOrEqual(values[0]);
            expect(c).toBeLessThanOrEqual(values[n - 1]);
            expectWithin(c, exact(values, q), alpha);
          }
          expect(sk.collapsed).toBe(false);
        }
      });
    }
  }

  test('a single value, an empty sketch', () => {
    const sk = new LogSketch(new SketchMapping());
    expect(sk.quantile(0.5)).toBeNaN();
    sk.add(42);
    for (const q of QS) expectWithin(sk.quantile(q), 42, 0.01);
    expect(sk.quantile(0.5, 42, 42)).toBe(42);
  });

  test('the lower-rank definition: the p50 of [1, 2] is (about) 1', () => {
    const sk = new LogSketch(new SketchMapping());
    sk.add(2);
    sk.add(1);
    expectWithin(sk.quantile(0.5), 1, 0.01);
  });

  test('zeros, negatives and subnormals', () => {
    const sk = new LogSketch(new SketchMapping());
    for (const v of [0, -0, 5e-324, -5e-324, -3, 3]) sk.add(v);
    expect(sk.zero).toBe(4);
    expectWithin(sk.quantile(0), -3, 0.01);
    expect(sk.quantile(0.4)).toBe(0);
    expectWithin(sk.quantile(1), 3, 0.01);
  });
});

describe('merging', () => {
  test('merge of parts gives the very same quantiles as one sketch of everything (60 seeds)', () => {
    const map = new SketchMapping(0.01);
    for (let seed = 1; seed <= 60; seed++) {
      const r = mulberry32(seed);
      const whole = new LogSketch(map);
      const parts = Array.from({ length: 1 + Math.floor(r() * 8) }, () => new LogSketch(map));
      const dist = Object.values(DISTS)[seed % Object.keys(DISTS).length];
      const n = Math.floor(r() * 3000);
      for (let i = 0; i < n; i++) {
        const v = dist(r);
        whole.add(v);
        parts[Math.floor(r() * parts.length)].add(v);
      }
      // Merge in a random tree shape.
      while (parts.length > 1) {
        const i = Math.floor(r() * (parts.length - 1));
        parts[i].merge(parts[i + 1]);
        parts.splice(i + 1, 1);
      }
      const m = parts[0];
      expect(m.count).toBe(whole.count);
      for (const q of QS) expect(m.quantile(q)).toBe(whole.quantile(q));
    }
  });

  test('merging an empty sketch changes nothing; merging into an empty one copies', () => {
    const map = new SketchMapping();
    const a = new LogSketch(map);
    const b = new LogSketch(map);
    for (const v of [1, 10, 100, -5]) a.add(v);
    const before = a.toJSON();
    a.merge(b);
    expect(a.toJSON()).toEqual(before);
    b.merge(a);
    for (const q of QS) expect(b.quantile(q)).toBe(a.quantile(q));
    b.add(1000);
    expect(a.count).toBe(4); // no shared arrays
  });
});

describe('bounded size', () => {
  test('past maxBuckets the lowest buckets collapse; high quantiles keep the bound', () => {
    const map = new SketchMapping(0.01, 64);
    const sk = new LogSketch(map);
    const values: number[] = [];
    for (let e = -30; e <= 30; e += 0.01) {
      const v = Math.pow(10, e / 10);
      values.push(v);
      sk.add(v);
    }
    expect(sk.collapsed).toBe(true);
    expect(sk.buckets).toBeLessThanOrEqual(64);
    values.sort((a, b) => a - b);
    for (const q of [0.95, 0.99, 1]) expectWithin(sk.quantile(q), exact(values, q), 0.01);
  });

  test('wide stores use 2-byte counts and widen when a count outgrows them (insert and merge)', () => {
    const map = new SketchMapping();
    const a = new LogSketch(map);
    for (let v = 1; v <= 1000; v *= 1.1) a.add(v);
    expect(a.pos).toBeInstanceOf(Uint16Array);
    for (let i = 0; i < 70_000; i++) a.add(500);
    expect(a.pos).toBeInstanceOf(Uint32Array);
    expectWithin(a.quantile(0.5), 500, 0.01);
    const b = new LogSketch(map);
    for (let v = 1; v <= 1000; v *= 1.1) b.add(-v);
    for (let i = 0; i < 40_000; i++) b.add(-7);
    const c = LogSketch.fromJSON(map, b.toJSON());
    expect(c.neg).toBeInstanceOf(Uint16Array);
    c.merge(b);
    expect(c.neg).toBeInstanceOf(Uint32Array);
    expect(c.count).toBe(2 * b.count);
    expectWithin(c.quantile(0.5), -7, 0.01);
    // A Uint32 count at its limit widens to Float64 on the next increment.
    const st = a.toJSON();
    const j = st[3].indexOf(Math.max(...st[3]));
    st[3][j] = 0xffffffff;
    const d = LogSketch.fromJSON(map, st);
    expect(d.pos).toBeInstanceOf(Uint32Array);
    d.add(map.value(st[2] + j));
    expect(d.pos).toBeInstanceOf(Float64Array);
    expect(d.toJSON()[3][j]).toBe(0x100000000);
  });

  test('every bucket holds exactly the values of its index while stores grow up and down, interleaved across sketches', () => {
    // grow() adds the counts up in scratch space shared by all sketches: interleaved growth of several
    // sketches (drifting counters up, values drifting down, both signs, small and typed stores) must not mix them.
    const map = new SketchMapping();
    const r = mulberry32(11);
    const feeds: Array<(i: number) => number> = [(i) => i + 1, (i) => 5000 / (i + 1), (i) => -(1 + (i % 300)) * 1.7, () => (r() - 0.5) * 10 ** (1 + 3 * r())];
    const sketches = feeds.map(() => new LogSketch(map));
    const want = feeds.map(() => ({ pos: new Map<number, number>(), neg: new Map<number, number>(), zero: 0 }));
    for (let i = 0; i < 3000; i++) {
      for (let s = 0; s < feeds.length; s++) {
        const v = feeds[s](i);
        sketches[s].add(v);
        const w = want[s];
        if (v === 0) w.zero++;
        else {
          const m = v > 0 ? w.pos : w.neg;
          const idx = map.index(Math.abs(v));
          m.set(idx, (m.get(idx) ?? 0) + 1);
        }
      }
      if (i === 40) for (const sk of sketches) expect(sk.buckets).toBeGreaterThan(0);
    }
    for (let s = 0; s < feeds.length; s++) {
      const [count, zero, pOff, pos, nOff, neg, collapsed] = sketches[s].toJSON();
      expect(count).toBe(3000);
      expect(zero).toBe(want[s].zero);
      expect(collapsed).toBe(0);
      const got = (off: number, counts: number[]): Map<number, number> => new Map(counts.map((c, j) => [off + j, c] as [number, number]).filter(([, c]) => c > 0));
      expect(got(pOff, pos)).toEqual(want[s].pos);
      expect(got(nOff, neg)).toEqual(want[s].neg);
    }
    expect(sketches[0].pos).toBeInstanceOf(Uint16Array);
  });

  test('clear() keeps small arrays zeroed and forgets everything else', () => {
    const sk = new LogSketch(new SketchMapping());
    for (const v of [1, 2, 3, -1]) sk.add(v);
    sk.clear();
    expect(sk.count).toBe(0);
    expect(sk.quantile(0.5)).toBeNaN();
    sk.add(7);
    expectWithin(sk.quantile(0.5), 7, 0.01);
  });

  test('rejects a bad accuracy or bucket limit', () => {
    expect(() => new SketchMapping(0)).toThrow(RangeError);
    expect(() => new SketchMapping(1)).toThrow(RangeError);
    expect(() => new SketchMapping(0.01, 4)).toThrow(RangeError);
  });
});

test('toJSON / fromJSON round trip through JSON text gives the same sketch', () => {
  const map = new SketchMapping();
  const r = mulberry32(5);
  const sk = new LogSketch(map);
  for (let i = 0; i < 500; i++) sk.add((r() - 0.4) * 1000);
  const back = LogSketch.fromJSON(map, JSON.parse(JSON.stringify(sk.toJSON())));
  for (const q of QS) expect(back.quantile(q)).toBe(sk.quantile(q));
  back.add(1);
  sk.add(1);
  expect(back.toJSON()).toEqual(sk.toJSON());
  expect(() => LogSketch.fromJSON(map, [1, 2] as never)).toThrow(TypeError);
});
