import { M4_PER_BUCKET, m4, m4Buckets, m4Slice, planQuery } from '../../nodes/lib/store/query-plan';

/** The reference: the bucket formula in BigInt, and each slice's picks by sorting, as the header defines them. */
function reference(points: Array<[number, number]>, buckets: number): Array<[number, number]> {
  if (points.length <= M4_PER_BUCKET * buckets) return points;
  const lo = BigInt(points[0][0]);
  const hi = BigInt(points[points.length - 1][0]);
  const slices = new Map<bigint, Array<[number, number]>>();
  for (const p of points) {
    const k = ((BigInt(p[0]) - lo) * BigInt(buckets)) / (hi - lo + 1n);
    const list = slices.get(k) ?? [];
    list.push(p);
    slices.set(k, list);
  }
  const out: Array<[number, number]> = [];
  for (const k of [...slices.keys()].sort((a, b) => (a < b ? -1 : 1))) {
    const s = slices.get(k)!;
    const byTime = [...s].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const byValue = [...s].sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    const largest = [...s].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
    const picked = [byTime[0], byTime[byTime.length - 1], byValue[0], largest].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const p of picked) {
      const prev = out[out.length - 1];
      if (!prev || prev[0] !== p[0] || prev[1] !== p[1]) out.push(p);
    }
  }
  return out;
}

/** A deterministic pseudo-random series: increasing times with repeats, values from a small set (ties). */
function series(n: number, seed: number, step = 1000): Array<[number, number]> {
  let x = seed;
  const rnd = (): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  const out: Array<[number, number]> = [];
  let t = 1_767_225_600_000;
  for (let i = 0; i < n; i++) {
    if (rnd() > 0.2) t += 1 + Math.floor(rnd() * step);
    out.push([t, Math.floor(rnd() * 7) - 3]);
  }
  return out;
}

describe('m4Slice', () => {
  it('is floor((ts - lo) * buckets / (hi - lo + 1)) exactly, under and past 2^53', () => {
    const cases: Array<[number, number, number, number]> = [
      [0, 0, 0, 1],
      [5, 0, 9, 10],
      [9, 0, 9, 10],
      [-3_600_000, -7_200_000, 7_199_999, 500],
      // Products near and past 2^53 (the BigInt path).
      [9_007_199_254, 0, 9_007_199_254, 1_000_000],
      [18_000_000_000_000 - 1, 0, 18_000_000_000_000 - 1, 100_000],
      [12_345_678_901_234, -9_000_000_000_000, 9_000_000_000_000, 99_999],
    ];
    for (const [ts, lo, hi, b] of cases) {
      const want = Number(((BigInt(ts) - BigInt(lo)) * BigInt(b)) / (BigInt(hi) - BigInt(lo) + 1n));
      expect([ts, m4Slice(ts, lo, hi, b)]).toEqual([ts, want]);
    }
    // Random ranges up to the store's whole span and slice counts up to the query node's largest maxPoints.
    let x = 7;
    const rnd = (): number => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x / 2147483648;
    };
    for (let i = 0; i < 20_000; i++) {
      const lo = Math.floor((rnd() - 0.5) * 1.8e13);
      const hi = lo + Math.floor(rnd() ** 4 * 1.8e13);
      const ts = lo + Math.floor(rnd() * (hi - lo + 1));
      const b = 1 + Math.floor(rnd() * 100_000);
      const want = Number(((BigInt(ts) - BigInt(lo)) * BigInt(b)) / (BigInt(hi) - BigInt(lo) + 1n));
      if (m4Slice(ts, lo, hi, b) !== want) expect([ts, lo, hi, b, m4Slice(ts, lo, hi, b)]).toEqual([ts, lo, hi, b, want]);
    }
    // Every ts of a range lands in [0, buckets).
    for (let ts = 100; ts <= 1100; ts++) {
      const k = m4Slice(ts, 100, 1100, 7);
      expect(k).toBeGreaterThanOrEqual(0);
      expect(k).toBeLessThan(7);
    }
  });
});

describe('m4', () => {
  it('leaves a series of at most 4 x buckets points as it is', () => {
    const s = series(40, 1);
    expect(m4(s, 10)).toBe(s);
  });

  it('keeps the first, last, smallest and largest point of every slice, with the header tie-breaks', () => {
    for (const [n, buckets, seed] of [
      [41, 10, 2],
      [1000, 3, 3],
      [5000, 100, 4],
      [20_000, 500, 5],
    ]) {
      const s = series(n, seed);
      const r = m4(s, buckets);
      expect(r).toEqual(reference(s, buckets));
      expect(r.length).toBeLessThanOrEqual(M4_PER_BUCKET * buckets);
      expect(r[0]).toEqual([s[0][0], Math.min(...s.filter((p) => p[0] === s[0][0]).map((p) => p[1]))]);
      for (let i = 1; i < r.length; i++) expect(r[i][0] > r[i - 1][0] || (r[i][0] === r[i - 1][0] && r[i][1] > r[i - 1][1])).toBe(true);
    }
  });

  it('keeps a lone spike and the series ends', () => {
    const s: Array<[number, number]> = [];
    for (let i = 0; i < 10_000; i++) s.push([i * 1000, i === 7777 ? 1e6 : Math.sin(i / 50)]);
    const r = m4(s, 50);
    expect(r).toContainEqual([7777 * 1000, 1e6]);
    expect(r[0]).toEqual(s[0]);
    expect(r[r.length - 1]).toEqual(s[s.length - 1]);
    expect(r.length).toBeLessThanOrEqual(200);
  });
});

describe('m4Buckets', () => {
  const base = { measurement: 'telemetry', fields: ['t'], start: 0, end: 1000 };
  it('applies to raw queries with maxPoints whose limit holds 4 x maxPoints', () => {
    expect(m4Buckets(planQuery({ ...base, maxPoints: 500 }, 'q'))).toBe(500);
    expect(m4Buckets(planQuery({ ...base, maxPoints: 500, limit: 2000 }, 'q'))).toBe(500);
    expect(m4Buckets(planQuery({ ...base, maxPoints: 500, limit: 1999 }, 'q'))).toBeUndefined();
    expect(m4Buckets(planQuery({ ...base }, 'q'))).toBeUndefined();
    expect(m4Buckets(planQuery({ ...base, maxPoints: 500, agg: 'max' }, 'q'))).toBeUndefined();
    expect(m4Buckets(planQuery({ ...base, maxPoints: 500, bucketMs: 10 }, 'q'))).toBeUndefined();
  });
});
