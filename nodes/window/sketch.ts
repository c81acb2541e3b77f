/**
 * LogSketch: a mergeable quantile sketch with a relative-error guarantee, after DDSketch
 * (Masson, Rim, Lee: "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with Relative-Error
 * Guarantees", VLDB 2019), written here rather than taken as a dependency.
 *
 * How it works. With a relative accuracy a (default 0.01) and gamma = (1 + a) / (1 - a), a value
 * v > 0 goes to bucket i = ceil(log_gamma(v)), which holds the values in (gamma^(i-1), gamma^i];
 * negative values go to a second store by |v|; exact zeros (and subnormals) to a zero count. A
 * bucket is reported as 2 gamma^i / (gamma + 1), which is within a relative distance a of every
 * value in the bucket. Buckets are kept dense (a counts array and the index of its first slot),
 * so an insert is one Math.log and one array increment. Counts live in a plain array while a
 * store has at most 16 buckets and in a Uint16Array (widened on overflow) past that. Size: one
 * bucket per factor gamma of value range, e.g. 5 buckets for 20.0..21.0 and 345 for 1..1000 at
 * a = 0.01 (690 bytes as Uint16).
 *
 * Error bound. For 0 <= q <= 1 and n values, quantile(q) returns x' with |x' - x| <= a |x|, where
 * x is the value of rank floor(q (n - 1)) (0-based) in the sorted values: the lower-rank
 * definition DDSketch uses (the "p50" of [1, 2] is 1). The result is clamped into the exact
 * [min, max] the caller tracks, which keeps the bound. The bound holds as long as no store was
 * collapsed: a store keeps at most `maxBuckets` buckets (default 2048, a value range of
 * gamma^2048 = about 6e17 at a = 0.01); beyond that the lowest-magnitude buckets are folded into
 * the lowest kept one (DDSketch's collapsing-lowest store), which only affects the smallest
 * magnitudes, and `collapsed` becomes true.
 *
 * Merging. Two sketches with the same accuracy merge by adding bucket counts, and the result has
 * the same counts as the sketch of all the values inserted one by one (insertion order never
 * matters; only collapsing, when it happens, depends on how the stores grew).
 * This is what makes cascaded rollups (1m > 1h > 1d) give the same percentiles as a sketch over the
 * raw data.
 */

/** The value-to-bucket mapping shared by every sketch of one accuracy. */
export class SketchMapping {
  readonly relativeAccuracy: number;
  readonly gamma: number;
  /** 1 / ln(gamma). */
  readonly multiplier: number;
  readonly lnGamma: number;
  /** 2 / (gamma + 1): a bucket's reported value is gamma^i times this. */
  readonly repFactor: number;
  readonly maxBuckets: number;

  constructor(relativeAccuracy = 0.01, maxBuckets = 2048) {
    if (!(relativeAccuracy > 0 && relativeAccuracy < 1)) throw new RangeError(`sketch relative accuracy must be in (0, 1), got ${relativeAccuracy}`);
    if (!Number.isInteger(maxBuckets) || maxBuckets < 16) throw new RangeError(`sketch maxBuckets must be an integer >= 16, got ${maxBuckets}`);
    this.relativeAccuracy = relativeAccuracy;
    this.gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy);
    this.lnGamma = Math.log(this.gamma);
    this.multiplier = 1 / this.lnGamma;
    this.repFactor = 2 / (this.gamma + 1);
    this.maxBuckets = maxBuckets;
  }

  index(absValue: number): number {
    return Math.ceil(Math.log(absValue) * this.multiplier);
  }

  value(index: number): number {
    return Math.exp(index * this.lnGamma) * this.repFactor;
  }
}

/** Below this magnitude a value counts as zero (subnormal doubles; their log is not usable). */
export const SKETCH_MIN_MAGNITUDE = 2.2250738585072014e-308;

/**
 * Bucket counts. Up to SMALL_STORE buckets a plain array (cheapest when small); past that a
 * Uint16Array, widened to a Uint32Array and then a Float64Array when a count outgrows it: 2 bytes
 * a bucket instead of 8 for the wide ranges that cost memory. A count that wraps a typed array to 0
 * on ++ is caught at once (a count can never be 0 right after an increment) and widened.
 */
export type Counts = number[] | Uint16Array | Uint32Array | Float64Array;

const EMPTY: number[] = [];
const SMALL_STORE = 16;

/** The largest count `c` can hold. */
function capOf(c: Counts): number {
  return c instanceof Uint16Array ? 0xffff : c instanceof Uint32Array ? 0xffffffff : Infinity;
}

function storeBytes(c: Counts): number {
  if (c.length === 0) return 0;
  return Array.isArray(c) ? 48 + 8 * c.length : 150 + c.byteLength;
}

/**
 * A store of `len` zeroed buckets able to hold counts up to `max`. The small plain array is built
 * packed (push), not as `new Array(len).fill(0)`: a holey array filled was 4x slower inside the
 * runtime than in a bare process (measured 385 vs 100 ns for 40 slots), and it sat on the
 * per-reading path (a series whose values drift opens new buckets every few readings).
 */
function alloc(len: number, max: number): Counts {
  if (len <= SMALL_STORE) {
    const a: number[] = [];
    for (let i = 0; i < len; i++) a.push(0);
    return a;
  }
  if (max <= 0xffff) return new Uint16Array(len);
  if (max <= 0xffffffff) return new Uint32Array(len);
  return new Float64Array(len);
}

/** The first `len` numbers of `v` in the most compact store that holds them (`len` defaults to all of `v`). */
function pack(v: ArrayLike<number>, len = v.length): Counts {
  let max = 0;
  for (let i = 0; i < len; i++) if (v[i] > max) max = v[i];
  const c = alloc(len, max);
  for (let i = 0; i < len; i++) c[i] = v[i];
  return c;
}

/**
 * Scratch space grow() adds the counts up in before packing them (a store never has more than
 * maxBuckets slots): reused, so a grow allocates only the store it returns.
 */
let scratch = new Float64Array(64);

/** JSON-safe state: [count, zeroCount, posOffset, posCounts, negOffset, negCounts, collapsed(0|1)]. */
export type SketchState = [number, number, number, number[], number, number[], number];

export class LogSketch {
  readonly map: SketchMapping;
  count = 0;
  zero = 0;
  /** Index of pos[0]. */
  pOff = 0;
  pos: Counts = EMPTY;
  nOff = 0;
  neg: Counts = EMPTY;
  collapsed = false;

  constructor(map: SketchMapping) {
    this.map = map;
  }

  add(v: number): void {
    this.count++;
    if (v > 0) {
      if (v < SKETCH_MIN_MAGNITUDE) {
        this.zero++;
        return;
      }
      const i = Math.ceil(Math.log(v) * this.map.multiplier);
      const j = i - this.pOff;
      const c = this.pos;
      if (j >= 0 && j < c.length) {
        c[j]++;
        if (c[j] === 0) this.overflow(true, j);
      } else this.pos = this.grow(c, this.pOff, i, 1, true);
    } else if (v < 0) {
      if (v > -SKETCH_MIN_MAGNITUDE) {
        this.zero++;
        return;
      }
      const i = Math.ceil(Math.log(-v) * this.map.multiplier);
      const j = i - this.nOff;
      const c = this.neg;
      if (j >= 0 && j < c.length) {
        c[j]++;
        if (c[j] === 0) this.overflow(false, j);
      } else this.neg = this.grow(c, this.nOff, i, 1, false);
    } else {
      this.zero++;
    }
  }

  /**
   * Returns a counts array covering `c` (whose first slot is index `off`) and index `i`, with
   * `k` added at `i`, and sets the store's offset. Keeps a couple of spare slots on the side it
   * grew, so a slowly drifting value does not reallocate on every new bucket; collapses the lowest
   * buckets beyond maxBuckets.
   */
  private grow(c: Counts, off: number, i: number, k: number, positive: boolean): Counts {
    let lo: number;
    let hi: number;
    if (c.length === 0) {
      lo = i;
      hi = i;
    } else {
      lo = off;
      hi = off + c.length - 1;
      if (i < lo) lo = i - 2;
      if (i > hi) hi = i + 2;
    }
    const max = this.map.maxBuckets;
    let fold = 0;
    if (hi - lo + 1 > max) {
      // Keep the highest `max` indices; fold the counts below into the lowest kept bucket.
      lo = hi - max + 1;
      this.collapsed = true;
    }
    const len = hi - lo + 1;
    if (scratch.length < len) scratch = new Float64Array(Math.max(len, 2 * scratch.length));
    const out = scratch;
    out.fill(0, 0, len);
    for (let j = 0; j < c.length; j++) {
      const idx = off + j;
      if (idx < lo) fold += c[j];
      else out[idx - lo] += c[j];
    }
    if (i < lo) fold += k;
    else out[i - lo] += k;
    out[0] += fold;
    if (positive) this.pOff = lo;
    else this.nOff = lo;
    return pack(out, len);
  }

  /**
   * Bucket j of a store wrapped to 0 on an increment: widen the store and put the true count,
   * the old type's largest value plus one.
   */
  overflow(positive: boolean, j: number): void {
    const c = positive ? this.pos : this.neg;
    const v = Array.from(c);
    v[j] = capOf(c) + 1;
    if (positive) this.pos = pack(v);
    else this.neg = pack(v);
  }

  /**
   * Empties the sketch for reuse, keeping its bucket arrays (zeroed) when they are small, so a
   * series whose values stay in the same range does not reallocate them window after window.
   */
  clear(): void {
    this.count = 0;
    this.zero = 0;
    this.collapsed = false;
    if (this.pos.length > 64) this.pos = EMPTY;
    else this.pos.fill(0);
    if (this.neg.length > 64) this.neg = EMPTY;
    else this.neg.fill(0);
  }

  /** Adds every bucket of `o` (same mapping) into this sketch. */
  merge(o: LogSketch): void {
    if (o.count === 0) return;
    this.count += o.count;
    this.zero += o.zero;
    if (o.collapsed) this.collapsed = true;
    this.pos = this.mergeStore(this.pos, this.pOff, o.pos, o.pOff, true);
    this.neg = this.mergeStore(this.neg, this.nOff, o.neg, o.nOff, false);
  }

  private mergeStore(c: Counts, off: number, oc: Counts, ooff: number, positive: boolean): Counts {
    if (oc.length === 0) return c;
    if (c.length === 0) {
      if (positive) this.pOff = ooff;
      else this.nOff = ooff;
      return oc.slice();
    }
    // Grow to cover both ranges (through grow(), which handles collapsing), then add.
    let cur = c;
    let curOff = off;
    const oLo = ooff;
    const oHi = ooff + oc.length - 1;
    if (oLo < curOff || oHi > curOff + cur.length - 1) {
      cur = this.grow(cur, curOff, Math.min(oLo, curOff), 0, positive);
      curOff = positive ? this.pOff : this.nOff;
      if (oHi > curOff + cur.length - 1) {
        cur = this.grow(cur, curOff, oHi, 0, positive);
        curOff = positive ? this.pOff : this.nOff;
      }
    }
    let cap = capOf(cur);
    for (let j = 0; j < oc.length; j++) {
      const k = oc[j];
      if (k === 0) continue;
      let t = ooff + j - curOff;
      if (t < 0) t = 0;
      const v = cur[t] + k;
      if (v > cap) {
        const wide = Array.from(cur);
        wide[t] = v;
        cur = pack(wide);
        cap = capOf(cur);
      } else cur[t] = v;
    }
    return cur;
  }

  /**
   * The value of rank floor(q (count - 1)), within the relative accuracy, clamped to [min, max]
   * when given. NaN for an empty sketch.
   */
  quantile(q: number, min = -Infinity, max = Infinity): number {
    if (this.count === 0) return NaN;
    const rank = Math.floor(q * (this.count - 1));
    const v = this.rankValue(rank);
    return v < min ? min : v > max ? max : v;
  }

  /** The reported value of the bucket holding the value of 0-based rank `rank`. */
  private rankValue(rank: number): number {
    let seen = 0;
    const neg = this.neg;
    for (let j = neg.length - 1; j >= 0; j--) {
      seen += neg[j];
      if (seen > rank) return -this.map.value(this.nOff + j);
    }
    seen += this.zero;
    if (seen > rank) return 0;
    const pos = this.pos;
    for (let j = 0; j < pos.length; j++) {
      seen += pos[j];
      if (seen > rank) return this.map.value(this.pOff + j);
    }
    // Only reachable through rounding of q: the largest bucket.
    return pos.length > 0 ? this.map.value(this.pOff + pos.length - 1) : 0;
  }

  /** Buckets allocated (both stores). */
  get buckets(): number {
    return this.pos.length + this.neg.length;
  }

  /** Estimated bytes of the bucket stores (V8, 64-bit): 8 a bucket in a plain array, 1-8 plus ~150 of typed-array overhead. */
  get storeBytes(): number {
    return storeBytes(this.pos) + storeBytes(this.neg);
  }


  toJSON(): SketchState {
    return [this.count, this.zero, this.pOff, Array.from(this.pos), this.nOff, Array.from(this.neg), this.collapsed ? 1 : 0];
  }

  static fromJSON(map: SketchMapping, s: SketchState): LogSketch {
    if (!Array.isArray(s) || s.length !== 7) throw new TypeError('sketch state must be a 7-element array');
    const k = new LogSketch(map);
    k.count = s[0];
    k.zero = s[1];
    k.pOff = s[2];
    k.pos = s[3].length === 0 ? EMPTY : pack(s[3]);
    k.nOff = s[4];
    k.neg = s[5].length === 0 ? EMPTY : pack(s[5]);
    k.collapsed = s[6] === 1;
    return k;
  }
}
