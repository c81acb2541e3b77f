/**
 * Acc: the partial aggregate of one metric of one key over one window. Every level of a cascade
 * is built by merging these (never by re-reading readings), so everything here merges exactly or
 * with a stated bound:
 *
 * - count, nonNumeric, min, max, first/last (value at the smallest/largest event time; ties go to
 *   the earlier arrival for first and the later arrival for last): exact.
 * - sum: Neumaier-compensated (a running sum plus a correction term; merging adds both), so the
 *   reported sum is within a couple of ulps of the exact sum whatever the merge order, and exact
 *   when the values and partial sums are exactly representable (integers, multiples of 1/64...).
 * - mean and variance: Welford's update per value and Chan et al.'s parallel formula per merge
 *   (mean_ab = mean_a + d n_b / n, M2_ab = M2_a + M2_b + d^2 n_a n_b / n with d = mean_b - mean_a),
 *   numerically stable for large offsets (no sum of squares). stddev is the sample standard
 *   deviation sqrt(M2 / (n - 1)), 0 for one value.
 * - percentiles: a LogSketch (see sketch.ts), relative error <= its accuracy.
 * - counters (opt-in per metric): delta = the sum over consecutive samples (in event-time order)
 *   of v[i+1] - v[i], or v[i+1] when the counter went down (a reset: it restarted from 0), and the
 *   number of resets. See Counter below for what is exact when.
 */
import { LogSketch, type SketchMapping, type SketchState } from './sketch';

/**
 * Counter state of one window. On the base level it keeps the window's samples sorted by event
 * time (ties in arrival order) while the window is open (or kept for corrections), so samples may
 * arrive in any order and delta stays exact; past `maxPoints` samples it keeps only the summary.
 * Upper levels keep only the summary (delta, resets; first/last come from the Acc): merging
 * children that follow each other in time is exact (delta_a + delta_b + increase(last_a, first_b)).
 * A late correction that lands inside the span already merged cannot see the samples around it: it
 * extends delta only at the ends, which is exact for a counter that did not reset around the late
 * samples.
 */
export class Counter {
  delta = 0;
  resets = 0;
  /** Sorted sample times and values (base level), or null. */
  ts: number[] | null;
  vs: number[] | null;

  constructor(points: boolean) {
    this.ts = points ? [] : null;
    this.vs = points ? [] : null;
  }

  /** Adds a sample; `acc` is the window before this value was counted in it. */
  add(ts: number, v: number, acc: Acc, maxPoints: number): void {
    const T = this.ts;
    if (T !== null) {
      const V = this.vs!;
      const n = T.length;
      if (n === 0 || ts >= T[n - 1]) {
        if (n > 0) this.step(V[n - 1], v, 1);
        T.push(ts);
        V.push(v);
      } else {
        // Insert after every sample with the same time (arrival order among equal times).
        let lo = 0;
        let hi = n;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (T[mid] <= ts) lo = mid + 1;
          else hi = mid;
        }
        const next = V[lo];
        if (lo > 0) {
          const prev = V[lo - 1];
          this.step(prev, next, -1);
          this.step(prev, v, 1);
        }
        this.step(v, next, 1);
        T.splice(lo, 0, ts);
        V.splice(lo, 0, v);
      }
      if (T.length > maxPoints) {
        this.ts = null;
        this.vs = null;
      }
      return;
    }
    if (acc.n === 0) return;
    if (ts >= acc.lastTs) this.step(acc.last, v, 1);
    else if (ts < acc.firstTs) this.step(v, acc.first, 1);
    // else: inside the span without the neighbours: unchanged (exact when no reset around it).
  }

  /** Adds (sign 1) or takes back (sign -1) the step from sample a to sample b: b - a, or b after a reset. */
  private step(a: number, b: number, sign: 1 | -1): void {
    if (b >= a) this.delta += sign * (b - a);
    else {
      this.delta += sign * b;
      this.resets += sign;
    }
  }

  /** Merges `o` (the later arrival) into this; `a` and `b` are the two windows before the merge. */
  merge(o: Counter, a: Acc, b: Acc, maxPoints: number): void {
    if (b.n === 0) return;
    if (a.n === 0) {
      this.delta = o.delta;
      this.resets = o.resets;
      if (this.ts !== null) {
        if (o.ts !== null) {
          this.ts = o.ts.slice();
          this.vs = o.vs!.slice();
        } else {
          this.ts = null;
          this.vs = null;
        }
      }
      return;
    }
    if (this.ts !== null && o.ts !== null) {
      // Both sides have their samples: merge them (o's after ours on equal times) and recount.
      const T = this.ts;
      const V = this.vs!;
      const oT = o.ts;
      const oV = o.vs!;
      const nt: number[] = [];
      const nv: number[] = [];
      let i = 0;
      let j = 0;
      while (i < T.length || j < oT.length) {
        if (j >= oT.length || (i < T.length && T[i] <= oT[j])) {
          nt.push(T[i]);
          nv.push(V[i++]);
        } else {
          nt.push(oT[j]);
          nv.push(oV[j++]);
        }
      }
      this.delta = 0;
      this.resets = 0;
      for (let k = 1; k < nv.length; k++) this.step(nv[k - 1], nv[k], 1);
      if (nt.length > maxPoints) {
        this.ts = null;
        this.vs = null;
      } else {
        this.ts = nt;
        this.vs = nv;
      }
      return;
    }
    this.ts = null;
    this.vs = null;
    if (b.firstTs >= a.lastTs) {
      this.delta += o.delta;
      this.resets += o.resets;
      this.step(a.last, b.first, 1);
    } else if (b.lastTs < a.firstTs) {
      this.delta += o.delta;
      this.resets += o.resets;
      this.step(b.last, a.first, 1);
    } else {
      if (b.firstTs < a.firstTs) this.step(b.first, a.first, 1);
      if (b.lastTs > a.lastTs) this.step(a.last, b.last, 1);
    }
  }

  get points(): number {
    return this.ts === null ? 0 : this.ts.length;
  }
}

/** JSON-safe encoding of a number that may be NaN, +-Infinity or -0. */
export type Num = number | string;

export function enc(x: number): Num {
  if (Number.isFinite(x)) return Object.is(x, -0) ? '-0' : x;
  return String(x);
}

export function dec(x: Num): number {
  if (typeof x === 'number') return x;
  if (x === '-0') return -0;
  if (x === 'NaN' || x === 'Infinity' || x === '-Infinity') return Number(x);
  throw new TypeError(`not an encoded number: ${JSON.stringify(x)}`);
}

/** [start, end, emitted, n, nonNumeric, sum, comp, mean, m2, min, max, first, firstTs, last, lastTs, sketch, counter]. */
export type AccState = [
  number,
  number,
  number,
  number,
  number,
  Num,
  Num,
  Num,
  Num,
  Num,
  Num,
  Num,
  Num,
  Num,
  Num,
  SketchState | null,
  [Num, number, number[] | null, Num[] | null] | null,
];

export class Acc {
  start: number;
  end: number;
  /** A rollup of this window went out (so a re-emission is a correction). */
  emitted = false;
  /** Queued for a correction in the current call. */
  dirty = false;
  n = 0;
  nn = 0;
  sum = 0;
  comp = 0;
  mean = 0;
  m2 = 0;
  min = Infinity;
  max = -Infinity;
  first = NaN;
  firstTs = Infinity;
  last = NaN;
  lastTs = -Infinity;
  sk: LogSketch | null;
  ctr: Counter | null;

  constructor(start: number, end: number, sketch: SketchMapping | null, counter: boolean, points: boolean) {
    this.start = start;
    this.end = end;
    this.sk = sketch === null ? null : new LogSketch(sketch);
    this.ctr = counter ? new Counter(points) : null;
  }

  /** Empties this window for reuse as [start, end) (its sketch keeps its arrays, see LogSketch.clear). */
  reset(start: number, end: number): void {
    this.start = start;
    this.end = end;
    this.emitted = false;
    this.dirty = false;
    this.n = 0;
    this.nn = 0;
    this.sum = 0;
    this.comp = 0;
    this.mean = 0;
    this.m2 = 0;
    this.min = Infinity;
    this.max = -Infinity;
    this.first = NaN;
    this.firstTs = Infinity;
    this.last = NaN;
    this.lastTs = -Infinity;
    if (this.sk !== null) this.sk.clear();
    const c = this.ctr;
    if (c !== null) {
      c.delta = 0;
      c.resets = 0;
      if (c.ts !== null) {
        c.ts.length = 0;
        c.vs!.length = 0;
      }
    }
  }

  /** Counts one numeric (finite) value at event time ts. */
  add(ts: number, v: number, maxCounterPoints: number): void {
    if (this.ctr !== null) this.ctr.add(ts, v, this, maxCounterPoints);
    const n = ++this.n;
    // Neumaier compensated sum.
    const s = this.sum;
    const t = s + v;
    if ((s >= 0 ? s : -s) >= (v >= 0 ? v : -v)) this.comp += s - t + v;
    else this.comp += v - t + s;
    this.sum = t;
    // Welford.
    const d = v - this.mean;
    this.mean += d / n;
    this.m2 += d * (v - this.mean);
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (ts < this.firstTs) {
      this.firstTs = ts;
      this.first = v;
    }
    if (ts >= this.lastTs) {
      this.lastTs = ts;
      this.last = v;
    }
    if (this.sk !== null) this.sk.add(v);
  }

  /** Merges `o` (same sketch mapping; its values arrived after ours) into this window. */
  merge(o: Acc, maxCounterPoints: number): void {
    this.nn += o.nn;
    const nb = o.n;
    if (nb === 0) return;
    if (this.ctr !== null && o.ctr !== null) this.ctr.merge(o.ctr, this, o, maxCounterPoints);
    const na = this.n;
    const n = na + nb;
    // Neumaier: add o's sum to ours (two-sum), carry both corrections.
    const s = this.sum;
    const v = o.sum;
    const t = s + v;
    if ((s >= 0 ? s : -s) >= (v >= 0 ? v : -v)) this.comp += s - t + v;
    else this.comp += v - t + s;
    this.comp += o.comp;
    this.sum = t;
    // Chan et al.
    if (na === 0) {
      this.mean = o.mean;
      this.m2 = o.m2;
    } else {
      const d = o.mean - this.mean;
      this.mean += (d * nb) / n;
      this.m2 += o.m2 + (d * d * na * nb) / n;
    }
    this.n = n;
    if (o.min < this.min) this.min = o.min;
    if (o.max > this.max) this.max = o.max;
    if (o.firstTs < this.firstTs) {
      this.firstTs = o.firstTs;
      this.first = o.first;
    }
    if (o.lastTs >= this.lastTs) {
      this.lastTs = o.lastTs;
      this.last = o.last;
    }
    if (this.sk !== null && o.sk !== null) this.sk.merge(o.sk);
  }

  /** The reported sum (running sum plus its correction). */
  get total(): number {
    return this.sum + this.comp;
  }

  get stddev(): number {
    const n = this.n;
    if (n === 0) return NaN;
    if (n === 1) return 0;
    const v = this.m2 / (n - 1);
    return v > 0 ? Math.sqrt(v) : 0;
  }

  toJSON(): AccState {
    const c = this.ctr;
    return [
      this.start,
      this.end,
      this.emitted ? 1 : 0,
      this.n,
      this.nn,
      enc(this.sum),
      enc(this.comp),
      enc(this.mean),
      enc(this.m2),
      enc(this.min),
      enc(this.max),
      enc(this.first),
      enc(this.firstTs),
      enc(this.last),
      enc(this.lastTs),
      this.sk === null ? null : this.sk.toJSON(),
      c === null ? null : [enc(c.delta), c.resets, c.ts === null ? null : c.ts.slice(), c.vs === null ? null : c.vs.map(enc)],
    ];
  }

  static fromJSON(s: AccState, sketch: SketchMapping | null, counter: boolean): Acc {
    if (!Array.isArray(s) || s.length !== 17) throw new TypeError('window state must be a 17-element array');
    const a = new Acc(s[0], s[1], null, false, false);
    a.emitted = s[2] === 1;
    a.n = s[3];
    a.nn = s[4];
    a.sum = dec(s[5]);
    a.comp = dec(s[6]);
    a.mean = dec(s[7]);
    a.m2 = dec(s[8]);
    a.min = dec(s[9]);
    a.max = dec(s[10]);
    a.first = dec(s[11]);
    a.firstTs = dec(s[12]);
    a.last = dec(s[13]);
    a.lastTs = dec(s[14]);
    if (sketch !== null) a.sk = s[15] === null ? new LogSketch(sketch) : LogSketch.fromJSON(sketch, s[15]);
    if (counter) {
      const c = new Counter(false);
      const cs = s[16];
      if (cs !== null) {
        c.delta = dec(cs[0]);
        c.resets = cs[1];
        c.ts = cs[2] === null ? null : cs[2].slice();
        c.vs = cs[3] === null ? null : cs[3].map(dec);
      }
      a.ctr = c;
    }
    return a;
  }
}
