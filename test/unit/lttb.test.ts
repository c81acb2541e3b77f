import { lttb } from '../../nodes/lib/store/lttb';

type P = [number, number];

/** Steinarsson's reference implementation (github.com/sveinn-steinarsson/flot-downsample), kept as written. */
function reference(data: P[], threshold: number): P[] {
  const dataLength = data.length;
  if (threshold >= dataLength || threshold === 0) return data;
  const sampled: P[] = [];
  let sampledIndex = 0;
  const every = (dataLength - 2) / (threshold - 2);
  let a = 0;
  let maxAreaPoint: P = data[0];
  let nextA = 0;
  sampled[sampledIndex++] = data[a];
  for (let i = 0; i < threshold - 2; i++) {
    let avgX = 0;
    let avgY = 0;
    let avgRangeStart = Math.floor((i + 1) * every) + 1;
    let avgRangeEnd = Math.floor((i + 2) * every) + 1;
    avgRangeEnd = avgRangeEnd < dataLength ? avgRangeEnd : dataLength;
    const avgRangeLength = avgRangeEnd - avgRangeStart;
    for (; avgRangeStart < avgRangeEnd; avgRangeStart++) {
      avgX += data[avgRangeStart][0] * 1;
      avgY += data[avgRangeStart][1] * 1;
    }
    avgX /= avgRangeLength;
    avgY /= avgRangeLength;
    let rangeOffs = Math.floor((i + 0) * every) + 1;
    const rangeTo = Math.floor((i + 1) * every) + 1;
    const pointAX = data[a][0] * 1;
    const pointAY = data[a][1] * 1;
    let maxArea = -1;
    for (; rangeOffs < rangeTo; rangeOffs++) {
      const area = Math.abs((pointAX - avgX) * (data[rangeOffs][1] - pointAY) - (pointAX - data[rangeOffs][0]) * (avgY - pointAY)) * 0.5;
      if (area > maxArea) {
        maxArea = area;
        maxAreaPoint = data[rangeOffs];
        nextA = rangeOffs;
      }
    }
    sampled[sampledIndex++] = maxAreaPoint;
    a = nextA;
  }
  sampled[sampledIndex] = data[dataLength - 1];
  return sampled;
}

/** mulberry32 */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomWalk(n: number, seed: number, t0 = 1_767_225_600_000, step = 1000): P[] {
  const r = rng(seed);
  const out: P[] = [];
  let y = 0;
  for (let i = 0; i < n; i++) {
    y += r() - 0.5;
    out.push([t0 + i * step, y]);
  }
  return out;
}

describe('lttb', () => {
  const seven: P[] = [
    [0, 0],
    [1, 1],
    [2, 0],
    [3, 5],
    [4, 0],
    [5, 1],
    [6, 0],
  ];

  it('picks the largest triangles: hand-checked 7 points to 4', () => {
    // Buckets {1,2} and {3,4,5}. Bucket 1 against a=(0,0) and the next bucket's mean (4,2): areas x2 are
    // |(0-4)(1-0) - (0-1)(2-0)| = 2 for (1,1) and |(0-4)(0-0) - (0-2)(2-0)| = 4 for (2,0): (2,0).
    // Bucket 2 against a=(2,0) and the last point (6,0): 4|y|, so (3,5) with 20.
    expect(lttb(seven, 4)).toEqual([
      [0, 0],
      [2, 0],
      [3, 5],
      [6, 0],
    ]);
  });

  it('hand-checked 7 points to 3: one bucket of five, the spike wins', () => {
    // a=(0,0), next = last point (6,0): area x2 = 6|y|, largest at (3,5).
    expect(lttb(seven, 3)).toEqual([
      [0, 0],
      [3, 5],
      [6, 0],
    ]);
  });

  it('hand-checked 5 points to 4: single-point buckets keep them all but one', () => {
    const pts: P[] = [
      [0, 1],
      [10, 3],
      [20, 2],
      [30, 8],
      [40, 4],
    ];
    // span 3, 2 buckets: {1} and {2,3}. Bucket 2: a=(10,3), next=(40,4): areas x2 |(10-40)(y-3) - (10-x)(4-3)|:
    // (20,2): |30 + 10| = 40; (30,8): |-150 + 20| = 130 -> (30,8).
    expect(lttb(pts, 4)).toEqual([
      [0, 1],
      [10, 3],
      [30, 8],
      [40, 4],
    ]);
  });

  it('returns the input itself when there is nothing to do', () => {
    const pts = randomWalk(10, 1);
    expect(lttb(pts, 10)).toBe(pts);
    expect(lttb(pts, 11)).toBe(pts);
    expect(lttb(pts, 1e9)).toBe(pts);
    expect(lttb(pts, 0)).toBe(pts);
    expect(lttb(pts, -5)).toBe(pts);
    expect(lttb(pts, Number.NaN)).toBe(pts);
    expect(lttb([], 5)).toEqual([]);
  });

  it('thresholds 1 and 2 clamp to the first / the first and last point', () => {
    const pts = randomWalk(10, 2);
    expect(lttb(pts, 1)).toEqual([pts[0]]);
    expect(lttb(pts, 2)).toEqual([pts[0], pts[9]]);
    expect(lttb(pts, 2.9)).toEqual([pts[0], pts[9]]);
  });

  it('floors fractional thresholds', () => {
    const pts = randomWalk(100, 3);
    expect(lttb(pts, 10.7)).toHaveLength(10);
  });

  it('agrees with the reference implementation', () => {
    // The reference computes bucket edges in floating point; ours in integers. They agree wherever
    // the float edges are exact, which these sizes are chosen for (span divisible by the buckets).
    for (const [n, t] of [
      [102, 12],
      [1002, 102],
      [5002, 52],
      [10, 6],
      [402, 4],
    ]) {
      const pts = randomWalk(n, n + t);
      expect(lttb(pts, t)).toEqual(reference(pts, t));
    }
  });

  it('has exactly threshold points, ascending in time, all taken from the input, first and last kept', () => {
    const r = rng(7);
    const problems: string[] = [];
    for (let k = 0; k < 200; k++) {
      const n = 3 + Math.floor(r() * 3000);
      const t = 3 + Math.floor(r() * (n - 3));
      const pts = randomWalk(n, k, 1_000_000 + k, 1 + Math.floor(r() * 10));
      const out = lttb(pts, t);
      const what = `n=${n} threshold=${t}`;
      if (out.length !== t) problems.push(`${what}: length ${out.length}`);
      if (out[0] !== pts[0] || out[out.length - 1] !== pts[n - 1]) problems.push(`${what}: first or last point lost`);
      const inInput = new Set(pts);
      for (let i = 0; i < out.length; i++) {
        if (!inInput.has(out[i])) problems.push(`${what}: point ${i} is not from the input`);
        if (i > 0 && !(out[i][0] > out[i - 1][0])) problems.push(`${what}: time goes back at ${i}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('keeps a single spike (up or down) in flat data', () => {
    for (const spikeAt of [1, 137, 500, 998]) {
      for (const height of [100, -100]) {
        const pts: P[] = [];
        for (let i = 0; i < 1000; i++) pts.push([i * 1000, i === spikeAt ? height : 5]);
        const out = lttb(pts, 20);
        expect(out).toHaveLength(20);
        expect(out).toContainEqual([spikeAt * 1000, height]);
      }
    }
  });

  it('keeps several spikes that fall in different buckets', () => {
    const pts: P[] = [];
    const spikes = [150, 420, 777];
    for (let i = 0; i < 1000; i++) pts.push([i, spikes.includes(i) ? 50 + i : Math.sin(i / 50)]);
    const out = lttb(pts, 30);
    for (const s of spikes) expect(out).toContainEqual([s, 50 + s]);
  });

  it('does not modify its input', () => {
    const pts = randomWalk(500, 9);
    const copy = pts.map((p) => [p[0], p[1]]);
    lttb(pts, 50);
    expect(pts).toEqual(copy);
  });

  it('downsamples 1,000,000 points to 1,000 well under 100 ms', () => {
    const pts = randomWalk(1_000_000, 11);
    let best = Infinity;
    let out: P[] = [];
    for (let round = 0; round < 5; round++) {
      const t0 = process.hrtime.bigint();
      out = lttb(pts, 1000);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
    }
    expect(out).toHaveLength(1000);
    expect(best).toBeLessThan(100);
  });
});
