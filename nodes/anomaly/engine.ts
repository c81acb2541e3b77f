/**
 * Online anomaly scoring of one series (pure engine, no Node-RED).
 *
 * For each reading, before the next one is seen, the detector returns a score
 * in [0, 1], whether it crosses the threshold, the expected value and a band,
 * and which signal drove the score. Method:
 *
 * 1. Prediction. Three predictors of the next value: a robust level (an EWMA
 *    whose updates are clipped at CLIP mean absolute errors), a time-of-day
 *    profile and a time-of-week profile (per-slot EWMAs; slots follow the
 *    series' own cadence, estimated from its first timestamps). Each keeps a
 *    clipped EWMA of its absolute error; the one with the smallest error is
 *    used (a seasonal profile must beat the current choice by 10%).
 * 2. Raw anomaly: z = |error| / (1.25 * mean abs error) of the chosen
 *    predictor, mapped to r = 1 - exp(-z^2 / (2 * RAW_K^2)) in [0, 1].
 * 3. Anomaly likelihood, in the style of Numenta's: the average of the last
 *    LIK_WINDOW raw anomalies is compared with the distribution of that
 *    average over the history (EWMA mean and variance, floors as Numenta's);
 *    the two-sided Gaussian tail probability p gives the log-likelihood score
 *    log(1.0000000001 - (1 - p)) / log(1e-10), so 0.5 is p = 1e-5. As in
 *    Numenta's filter, only the first of consecutive "red" (p <= 1e-5) points
 *    keeps its score; the next ones count as p = 1e-3.
 * 4. Range: a value beyond the range seen so far by more than RANGE_TOL of
 *    that range, or beyond a slowly decaying recent range by more than
 *    RECENT_TOL of it, scores 1 (labelled anomalies are biased to new extremes).
 * 5. Hold-off (report each episode once, like Numenta's red filter but
 *    longer): a score >= HOLD_MIN starts a hold; within HOLD_N readings of
 *    the highest score of the hold, a score that does not exceed it is
 *    multiplied by HOLD_FACTOR (0: reported as 0, signal 'none'); a range
 *    breach (score 1, a new extreme) is always reported. NAB counts only the
 *    first detection in a window and every later one outside it as a false
 *    positive; on the 34 development files this adds +0.6 (standard).
 *
 * Memory per series is bounded: a fixed set of scalars plus the seasonal
 * profiles (at most DAY_SLOTS_MAX + WEEK_SLOTS_MAX slots, 5 bytes each);
 * maxStateBytes() is the bound (17,696 bytes with the defaults).
 */
import { erfc } from './stats';

export interface AnomalyOptions {
  /** Score at or above which `anomalous` is true. Default 0.57 (about this engine's NAB-optimal threshold, standard profile). */
  threshold?: number;
  /** Readings during which the detector is learning and scores 0. Default 150. */
  warmup?: number;
  /** Use a time-of-day profile. Default true. */
  daily?: boolean;
  /** Use a time-of-week profile. Default true. */
  weekly?: boolean;
}

export type AnomalySignal = 'learning' | 'invalid' | 'none' | 'level' | 'daily' | 'weekly' | 'range' | 'recent-range';

export interface AnomalyResult {
  /** Anomaly score in [0, 1]. */
  score: number;
  /** score >= threshold (never while learning). */
  anomalous: boolean;
  /** Expected value (the chosen predictor's prediction); NaN before the first valid reading. */
  expected: number;
  /** Lower edge of the normal band. */
  lower: number;
  /** Upper edge of the normal band. */
  upper: number;
  /** What drove the score: the predictor behind the likelihood, or a range breach. */
  signal: AnomalySignal;
  /** True during warm-up. */
  learning: boolean;
}

/**
 * Tuning constants: one configuration for every series. Not an
 * API: the NAB development loop (test/nab/tune.ts) overrides them to try
 * variants; nothing else should change them.
 */
export const TUNING = {
  /** Level EWMA weight. */
  LEVEL_ALPHA: 0.1,
  /** Floor of the weight of error-scale EWMAs (1/n before). */
  SCALE_ALPHA: 0.01,
  /** Floor of the weight of a seasonal slot's EWMA (1/visits before). */
  SEASON_ALPHA: 0.2,
  /** Updates of level and error scales are clipped at CLIP mean absolute errors. */
  CLIP: 6,
  /** Error scale floor, as a fraction of the series' mean absolute deviation. */
  REL_FLOOR: 0.02,
  /** Errors a predictor must have seen before it can be chosen. */
  MODEL_MIN: 50,
  /** A later predictor replaces the current choice when its error scale is below this fraction of it. */
  MODEL_MARGIN: 0.9,
  /** z at which r = 1 - e^-0.5. */
  RAW_K: 3,
  /** Raw anomalies averaged by the likelihood. */
  LIK_WINDOW: 10,
  /** Readings before the likelihood history starts. */
  LIK_LEARN: 100,
  /** Readings of history before the likelihood is used. */
  LIK_ESTIMATE: 100,
  /** Floor of the weight of the likelihood history's EWMA mean and variance. */
  LIK_ALPHA: 0.0001,
  LIK_MEAN_FLOOR: 0.03,
  LIK_VAR_FLOOR: 0.0003,
  RED: 1e-5,
  YELLOW: 1e-3,
  /** Tolerance of the all-time range, as a fraction of it. */
  RANGE_TOL: 0.02,
  /** Decay of the recent range towards the mean, per reading. */
  RECENT_DECAY: 0.0001,
  /** Tolerance of the recent range, as a fraction of it. */
  RECENT_TOL: 0.2,
  /** Readings before the recent range is used. */
  RECENT_MIN: 300,
  /** Timestamp differences used to estimate the cadence. */
  CADENCE_SAMPLES: 15,
  DAY_SLOTS_MAX: 1440,
  WEEK_SLOTS_MAX: 2016,
  /** z of the band edges. */
  BAND_Z: 3,
  /** Readings a high score holds off lower ones (0 = no hold-off). */
  HOLD_N: 200,
  /** Score that starts a hold-off (0.5: the likelihood's red level, p = 1e-5). */
  HOLD_MIN: 0.5,
  /** Factor applied to a held-off score. */
  HOLD_FACTOR: 0,
};

const T = TUNING;
const DAY = 86_400_000;
const WEEK = 7 * DAY;
/** Unix epoch was a Thursday: shift so that week slots start on Monday 00:00 UTC. */
const WEEK_SHIFT = 3 * DAY;

// Scalar state, one Float64Array; indices:
const N = 0; // valid readings seen
const LAST_TS = 1;
const DT = 2; // estimated cadence (ms), 0 until known
const NDIFF = 3;
const LEVEL = 4;
const LEVEL_DEV = 5;
const G_MEAN = 6;
const G_DEV = 7;
const SCALE = 8; // 8, 9, 10: error scale of level, daily, weekly
const COUNT = 11; // 11, 12, 13: errors seen by each predictor
const MA_POS = 14;
const MA_SUM = 15;
const H_N = 16;
const H_MEAN = 17;
const H_VAR = 18;
const PREV_RED = 19;
const MIN = 20;
const MAX = 21;
const R_LO = 22;
const R_HI = 23;
const INVALID = 24; // invalid readings ignored
const HOLD_MAX = 25; // highest score of the current hold-off, 0 when none
const HOLD_AGE = 26; // readings since HOLD_MAX was set
const NSCALARS = 27;
/** Scalars of a version 1 snapshot (before the hold-off). */
const NSCALARS_V1 = 25;

const SIGNALS: readonly AnomalySignal[] = ['level', 'daily', 'weekly'];
const LN_LOG = -23.02585084720009; // log(1e-10)

/** Serialisable detector state (see snapshot()). */
export interface AnomalySnapshot {
  /** 2; a version 1 snapshot (no hold-off state) is restored with no hold-off running. */
  v: 2;
  opts: Required<AnomalyOptions>;
  /** Base64 of the scalar Float64Array. */
  s: string;
  diffs: string;
  ma: string;
  day?: string;
  dayN?: string;
  week?: string;
  weekN?: string;
}

function b64(a: ArrayBufferView): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

function fromB64<A extends Float64Array | Float32Array | Uint8Array>(s: string, make: (buf: ArrayBuffer) => A, bytes: number, what: string): A {
  const buf = Buffer.from(s, 'base64');
  if (buf.length !== bytes) throw new Error(`anomaly snapshot: ${what} has ${buf.length} bytes, expected ${bytes}`);
  const ab = new ArrayBuffer(buf.length);
  new Uint8Array(ab).set(buf);
  return make(ab);
}

/** An AnomalyResult: `into` filled in, or a new one. */
function fill(
  into: AnomalyResult | undefined,
  score: number,
  anomalous: boolean,
  expected: number,
  lower: number,
  upper: number,
  signal: AnomalySignal,
  learning: boolean,
): AnomalyResult {
  if (into === undefined) return { score, anomalous, expected, lower, upper, signal, learning };
  into.score = score;
  into.anomalous = anomalous;
  into.expected = expected;
  into.lower = lower;
  into.upper = upper;
  into.signal = signal;
  into.learning = learning;
  return into;
}

export class AnomalyDetector {
  readonly threshold: number;
  readonly warmup: number;
  private readonly opts: Required<AnomalyOptions>;
  private readonly s = new Float64Array(NSCALARS);
  private readonly diffs = new Float64Array(T.CADENCE_SAMPLES);
  private readonly ma = new Float64Array(T.LIK_WINDOW);
  private day: Float32Array | null = null;
  private dayN: Uint8Array | null = null;
  private week: Float32Array | null = null;
  private weekN: Uint8Array | null = null;

  constructor(opts: AnomalyOptions = {}) {
    const threshold = opts.threshold ?? 0.57;
    const warmup = opts.warmup ?? 150;
    if (!(threshold >= 0 && threshold <= 1)) throw new RangeError(`threshold must be in [0, 1], got ${threshold}`);
    if (!(Number.isInteger(warmup) && warmup >= 0)) throw new RangeError(`warmup must be a non-negative integer, got ${warmup}`);
    this.opts = { threshold, warmup, daily: opts.daily ?? true, weekly: opts.weekly ?? true };
    this.threshold = threshold;
    this.warmup = warmup;
    this.s[LAST_TS] = NaN;
    this.s[MIN] = NaN;
    this.s[MAX] = NaN;
  }

  /** Readings seen (valid ones). */
  get count(): number {
    return this.s[N];
  }

  /** Invalid readings ignored so far. */
  get invalidCount(): number {
    return this.s[INVALID];
  }

  /** Bytes of state this detector holds (typed arrays; object overhead not counted). */
  get stateBytes(): number {
    return (
      this.s.byteLength +
      this.diffs.byteLength +
      this.ma.byteLength +
      (this.day?.byteLength ?? 0) +
      (this.dayN?.byteLength ?? 0) +
      (this.week?.byteLength ?? 0) +
      (this.weekN?.byteLength ?? 0)
    );
  }

  /** Upper bound of stateBytes for any series. */
  static maxStateBytes(): number {
    return 8 * (NSCALARS + T.CADENCE_SAMPLES + T.LIK_WINDOW) + 5 * (T.DAY_SLOTS_MAX + T.WEEK_SLOTS_MAX);
  }

  /**
   * Scores one reading (ts in ms since the epoch). A non-finite ts or value is
   * ignored (state untouched) and reported with signal 'invalid' and score 0.
   *
   * `into`: filled and returned instead of a new object (the scorer passes one it reuses for every reading:
   * a new result each time was 12 % of everything the runtime allocated at 140,000 readings/s, batched).
   */
  update(ts: number, value: number, into?: AnomalyResult): AnomalyResult {
    const s = this.s;
    if (!Number.isFinite(value) || !Number.isFinite(ts)) {
      s[INVALID]++;
      const e = s[N] === 0 ? NaN : s[LEVEL];
      return fill(into, 0, false, e, e, e, 'invalid', s[N] < this.warmup);
    }
    const x = value;
    const n = ++s[N];
    this.cadence(ts);
    if (n === 1) {
      s[LEVEL] = x;
      s[G_MEAN] = x;
    }

    // 1. Predictions and the chosen predictor.
    const pLevel = s[LEVEL];
    let pDay = NaN;
    let pWeek = NaN;
    let dSlot = -1;
    let wSlot = -1;
    if (this.day !== null && this.dayN !== null) {
      dSlot = Math.floor((mod(ts, DAY) / DAY) * this.day.length);
      if (this.opts.daily && this.dayN[dSlot] >= 2) pDay = this.day[dSlot];
    }
    if (this.week !== null && this.weekN !== null) {
      wSlot = Math.floor((mod(ts - WEEK_SHIFT, WEEK) / WEEK) * this.week.length);
      if (this.opts.weekly && this.weekN[wSlot] >= 2) pWeek = this.week[wSlot];
    }
    let best = 0;
    let bestScale = s[SCALE] > 0 && s[COUNT] >= T.MODEL_MIN ? s[SCALE] : Infinity;
    if (!Number.isNaN(pDay) && s[COUNT + 1] >= T.MODEL_MIN && s[SCALE + 1] > 0 && s[SCALE + 1] < bestScale * T.MODEL_MARGIN) {
      best = 1;
      bestScale = s[SCALE + 1];
    }
    if (!Number.isNaN(pWeek) && s[COUNT + 2] >= T.MODEL_MIN && s[SCALE + 2] > 0 && s[SCALE + 2] < bestScale * T.MODEL_MARGIN) {
      best = 2;
      bestScale = s[SCALE + 2];
    }
    const expected = best === 0 ? pLevel : best === 1 ? pDay : pWeek;
    const floor = T.REL_FLOOR * s[G_DEV] + 1e-12;
    const scale = Math.max(bestScale === Infinity ? s[LEVEL_DEV] : bestScale, floor);

    // 2. Raw anomaly and its moving average.
    const z = n < 30 ? 0 : Math.min(1e4, Math.abs(x - expected) / (1.25 * scale));
    const r = 1 - Math.exp(-(z * z) / (2 * T.RAW_K * T.RAW_K));
    const pos = s[MA_POS];
    s[MA_SUM] += r - this.ma[pos];
    this.ma[pos] = r;
    s[MA_POS] = (pos + 1) % T.LIK_WINDOW;
    const avg = s[MA_SUM] / T.LIK_WINDOW;

    // 3. Likelihood of that average against its history.
    let score = 0;
    if (n - 1 >= T.LIK_LEARN + T.LIK_ESTIMATE) {
      const mean = Math.max(s[H_MEAN], T.LIK_MEAN_FLOOR);
      const sd = Math.sqrt(Math.max(s[H_VAR], T.LIK_VAR_FLOOR));
      let tail = 0.5 * erfc(Math.abs(avg - mean) / sd / 1.4142);
      const red = tail <= T.RED;
      if (red && s[PREV_RED] === 1) tail = T.YELLOW;
      s[PREV_RED] = red ? 1 : 0;
      score = Math.log(1.0000000001 - (1 - tail)) / LN_LOG;
    }
    if (n - 1 >= T.LIK_LEARN) {
      const hn = ++s[H_N];
      const a = Math.max(1 / hn, T.LIK_ALPHA);
      const d = avg - s[H_MEAN];
      s[H_MEAN] += a * d;
      s[H_VAR] = (1 - a) * (s[H_VAR] + a * d * d);
    }
    let signal: AnomalySignal = score > 0 ? SIGNALS[best] : 'none';

    // 4. Range breaches.
    const lo = s[MIN];
    const hi = s[MAX];
    if (hi > lo) {
      const tol = (hi - lo) * T.RANGE_TOL;
      if (x > hi + tol || x < lo - tol) {
        score = 1;
        signal = 'range';
      }
    }
    if (!(x >= lo)) s[MIN] = x;
    if (!(x <= hi)) s[MAX] = x;
    if (n === 1) {
      s[R_LO] = x;
      s[R_HI] = x;
    }
    if (signal !== 'range' && n > T.RECENT_MIN && s[R_HI] > s[R_LO]) {
      const tol = (s[R_HI] - s[R_LO]) * T.RECENT_TOL;
      if (x > s[R_HI] + tol || x < s[R_LO] - tol) {
        score = 1;
        signal = 'recent-range';
      }
    }
    s[R_HI] = Math.max(x, s[R_HI] - T.RECENT_DECAY * (s[R_HI] - s[G_MEAN]));
    s[R_LO] = Math.min(x, s[R_LO] + T.RECENT_DECAY * (s[G_MEAN] - s[R_LO]));

    // 5. Learn from x. The three predictions go through PREDICTIONS, not as arguments: learn() is not inlined here,
    // and a double passed to a call that is not inlined is boxed (three numbers allocated an update, ~48 bytes).
    PREDICTIONS[0] = pLevel;
    PREDICTIONS[1] = pDay;
    PREDICTIONS[2] = pWeek;
    this.learn(x, dSlot, wSlot);

    const learning = n <= this.warmup;
    if (!learning && T.HOLD_N > 0) {
      if (score >= T.HOLD_MIN && (score > s[HOLD_MAX] || score === 1)) {
        s[HOLD_MAX] = score;
        s[HOLD_AGE] = 0;
      } else if (s[HOLD_MAX] > 0) {
        score *= T.HOLD_FACTOR;
        if (score === 0) signal = 'none';
        if (++s[HOLD_AGE] >= T.HOLD_N) {
          s[HOLD_MAX] = 0;
          s[HOLD_AGE] = 0;
        }
      }
    }
    if (learning) {
      score = 0;
      signal = 'learning';
    }
    const half = T.BAND_Z * 1.25 * scale;
    return fill(into, score, !learning && score >= this.threshold, expected, expected - half, expected + half, signal, learning);
  }

  private cadence(ts: number): void {
    const s = this.s;
    const last = s[LAST_TS];
    s[LAST_TS] = ts;
    if (s[DT] !== 0 || Number.isNaN(last)) return;
    const d = ts - last;
    if (d <= 0) return;
    this.diffs[s[NDIFF]++] = d;
    if (s[NDIFF] < T.CADENCE_SAMPLES) return;
    const sorted = Float64Array.from(this.diffs).sort();
    const dt = sorted[sorted.length >> 1];
    s[DT] = dt;
    if (dt <= DAY / 8) this.allocSeasons(dt);
  }

  private allocSeasons(dt: number): void {
    const d = Math.max(1, Math.min(T.DAY_SLOTS_MAX, Math.round(DAY / dt)));
    const w = Math.max(1, Math.min(T.WEEK_SLOTS_MAX, Math.round(WEEK / dt)));
    this.day = new Float32Array(d);
    this.dayN = new Uint8Array(d);
    this.week = new Float32Array(w);
    this.weekN = new Uint8Array(w);
  }

  /** Learns x; the predictions it was scored against are in PREDICTIONS (level, day, week; NaN when none). */
  private learn(x: number, dSlot: number, wSlot: number): void {
    const s = this.s;
    const pLevel = PREDICTIONS[0];
    const pDay = PREDICTIONS[1];
    const pWeek = PREDICTIONS[2];
    this.learnScale(0, Math.abs(x - pLevel));
    if (!Number.isNaN(pDay)) this.learnScale(1, Math.abs(x - pDay));
    if (!Number.isNaN(pWeek)) this.learnScale(2, Math.abs(x - pWeek));
    const n = s[N];
    const dev = x - s[LEVEL];
    const cap = s[LEVEL_DEV] > 0 ? T.CLIP * s[LEVEL_DEV] : Math.abs(dev);
    s[LEVEL] += T.LEVEL_ALPHA * Math.max(-cap, Math.min(cap, dev));
    s[LEVEL_DEV] += Math.max(T.SCALE_ALPHA, 1 / (n + 1)) * (Math.min(Math.abs(dev), cap) - s[LEVEL_DEV]);
    const ga = Math.max(0.001, 1 / (n + 1));
    const gd = x - s[G_MEAN];
    s[G_MEAN] += ga * gd;
    s[G_DEV] += ga * (Math.abs(gd) - s[G_DEV]);
    if (dSlot >= 0 && this.day !== null && this.dayN !== null) learnSlot(this.day, this.dayN, dSlot, x);
    if (wSlot >= 0 && this.week !== null && this.weekN !== null) learnSlot(this.week, this.weekN, wSlot, x);
  }

  private learnScale(k: number, err: number): void {
    const s = this.s;
    const c = ++s[COUNT + k];
    const cur = s[SCALE + k];
    const cap = cur > 0 ? T.CLIP * cur : err;
    s[SCALE + k] = cur + Math.max(T.SCALE_ALPHA, 1 / c) * (Math.min(err, cap) - cur);
  }

  /** The complete state, JSON-serialisable; restore() gives a detector that scores identically. */
  snapshot(): AnomalySnapshot {
    const out: AnomalySnapshot = { v: 2, opts: { ...this.opts }, s: b64(this.s), diffs: b64(this.diffs), ma: b64(this.ma) };
    if (this.day && this.dayN && this.week && this.weekN) {
      out.day = b64(this.day);
      out.dayN = b64(this.dayN);
      out.week = b64(this.week);
      out.weekN = b64(this.weekN);
    }
    return out;
  }

  static restore(state: AnomalySnapshot | (Omit<AnomalySnapshot, 'v'> & { v: 1 })): AnomalyDetector {
    const v = state !== null && typeof state === 'object' ? (state as { v?: unknown }).v : undefined;
    if (v !== 1 && v !== 2) throw new Error(`anomaly snapshot: unknown format (version ${JSON.stringify(v)}; this engine reads 1 and 2)`);
    const d = new AnomalyDetector(state.opts);
    // Version 1 lacks the hold-off scalars: they stay 0 (no hold-off running).
    const ns = v === 1 ? NSCALARS_V1 : NSCALARS;
    d.s.set(fromB64(state.s, (b) => new Float64Array(b), 8 * ns, 'scalars'));
    d.diffs.set(fromB64(state.diffs, (b) => new Float64Array(b), 8 * T.CADENCE_SAMPLES, 'diffs'));
    d.ma.set(fromB64(state.ma, (b) => new Float64Array(b), 8 * T.LIK_WINDOW, 'ma'));
    if (state.day !== undefined && state.dayN !== undefined && state.week !== undefined && state.weekN !== undefined) {
      const dn = Buffer.from(state.dayN, 'base64').length;
      const wn = Buffer.from(state.weekN, 'base64').length;
      if (dn < 1 || dn > T.DAY_SLOTS_MAX || wn < 1 || wn > T.WEEK_SLOTS_MAX) throw new Error('anomaly snapshot: bad profile size');
      d.day = fromB64(state.day, (b) => new Float32Array(b), 4 * dn, 'day');
      d.dayN = fromB64(state.dayN, (b) => new Uint8Array(b), dn, 'dayN');
      d.week = fromB64(state.week, (b) => new Float32Array(b), 4 * wn, 'week');
      d.weekN = fromB64(state.weekN, (b) => new Uint8Array(b), wn, 'weekN');
    }
    return d;
  }
}

/** update() hands learn() its three predictions here (one array for every detector: learn runs to the end before
 * any other update starts). */
const PREDICTIONS = new Float64Array(3);

function mod(a: number, m: number): number {
  const r = a % m;
  return r < 0 ? r + m : r;
}

function learnSlot(prof: Float32Array, cnt: Uint8Array, i: number, x: number): void {
  const c = cnt[i];
  prof[i] = c === 0 ? x : prof[i] + Math.max(T.SEASON_ALPHA, 1 / (c + 1)) * (x - prof[i]);
  if (c < 255) cnt[i] = c + 1;
}
