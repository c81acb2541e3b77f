/**
 * Predictive maintenance for one degrading series (pure engine, no Node-RED).
 *
 * Given a failure threshold and the side it is crossed from, the estimator
 * fits the trend of the last `window` ms of readings with ml-regression and
 * reports, for each reading, when the fitted trend reaches the threshold
 * (ttf), an interval for that time, and the probability that the trend is
 * past the threshold within `horizon` ms; `alert` is raised when the
 * probability reaches `level` and cleared only when it falls below
 * `clearLevel` (default level / 2) after at least `minDwell` ms (default 0).
 *
 * Method (each choice measured by test/nab/maintenance-eval.ts, `npm run pdm`,
 * on seeded synthetic degradations with known failure times):
 * - Window: 12 h by default (issue 6). On the synthetic suite with nuisances
 *   (ramps to a new level, excursions, AR(1) wander, noise bursts, dropouts)
 *   6 h -> 12 h cut warnings on healthy series ~3x and the median TTT error
 *   (0.25 -> 0.17) at the cost of interval coverage on accelerating wear
 *   (a longer window lags a bending trend); 24 h cut them further but the
 *   p90 error doubled and coverage fell to ~67 %. Shorter windows react
 *   faster but take every excursion for a trend.
 * - History: a ring of at most MAX_POINTS (256) buckets of width window / 256
 *   (169 s for 12 h); readings in one bucket are averaged (mean time, mean
 *   value), so memory is bounded (<= 6.2 kB per series) whatever the cadence.
 *   Buckets older than `window` are dropped. (512 buckets: no better TTT error
 *   at a 30 s cadence, 4x the fitting cost.)
 * - Fit: time in hours, centred on the buckets' mean time. Models: 'theil-sen'
 *   (default: median of pairwise slopes, the lowest TTT error and no false
 *   alerts on healthy series), 'linear' (least squares), 'quadratic'
 *   (least-squares parabola: far too jumpy when extrapolated a day ahead).
 *   Before fitting, a level step is removed when one explains the window far
 *   better than a line alone (removeStep, t > 6): the points before it are
 *   shifted to the latest level, so a step is not mistaken for a trend.
 * - Refit schedule: the fit is refreshed once window * REFIT_FRACTION (5.6 min
 *   for 12 h) of event time has passed since the last one; in between, each
 *   reading re-evaluates the cached fit at its own time (O(1) in the history).
 *   Theil-Sen over 256 buckets costs ~1.2 ms, so at one reading per 5 s
 *   refitting every reading would run ~800 readings/s, the schedule ~25,000/s
 *   (bench), with the same TTT error at a 30 s cadence.
 * - Uncertainty: the least-squares covariance sigma^2 (X'X)^-1 with sigma
 *   from the residuals (1.4826 x median |residual| for Theil-Sen, the RMS for
 *   the least-squares models), inflated by (1 + rho) / (1 - rho) for the lag-1
 *   autocorrelation rho of the residuals (0 <= rho <= 0.9: an effective sample
 *   size), plus, for the slope, the squared difference between the slope of
 *   the window's recent half and the whole window's (model error: a bending
 *   trend; this lifts the interval's coverage from ~67 % to ~86 %), weighted
 *   SPLIT_WEIGHT = 4 (with the 12 h window: coverage 72 % -> 81 %, same
 *   false warnings and lead).
 *   The trend at time t is then N(f(t), s(t)^2). probability = max over
 *   [now, now + horizon] of P(trend >= threshold) (so with level 0.5, alert
 *   means the fitted trend gets there within the horizon); ttfLow / ttfHigh =
 *   first times the upper / lower edge of the 90 % band f(t) +- 1.645 s(t)
 *   reaches the threshold; null (unbounded) when it does not within
 *   LOOKAHEAD x max(window, horizon), which also bounds ttf (null beyond).
 * - Alert hysteresis (issue 6): the bare rule probability >= level flickered
 *   (4.4 warnings per degrading series, 0.34 per healthy series-day on the
 *   suite); clearing below level / 2 gives ~1 warning per degradation and a
 *   longer lead. Measured and not kept: a slope t-statistic gate (the trend
 *   held flat unless t >= 2..4) made degradations flicker and cut the lead
 *   to 1-4 h; widening the band (SD_SCALE 1.5, a stand-in for t quantiles)
 *   or a higher RHO_MAX did not reduce false warnings (the probability is
 *   dominated by the trend crossing well inside the horizon); a delay before
 *   raising (1-2 h) cut healthy warnings ~15 % but cost 2-4 h of lead;
 *   minDwell 1 h changed nothing with the 12 h window (kept as an option).
 * - Readiness: null until the history holds minPoints buckets spanning 90 % of
 *   the window (shorter spans gave false alerts on healthy noise).
 * - Input: a non-finite ts or value (or |value| > 1e100), and a reading older than the newest one
 *   accepted (out of order), are ignored: state untouched, update() returns null
 *   (counted in `ignored`). Readings with equal timestamps are both used.
 *
 * 'below' is handled by negating values and threshold internally; `slope` is
 * reported in the series' own units per hour.
 */
import { PolynomialRegression, SimpleLinearRegression, TheilSenRegression } from 'ml-regression';
import type { MaintenanceEstimate } from '../lib/contract';
import { erfc } from './stats';

export interface MaintenanceOptions {
  /** Failure threshold, in the series' units. */
  threshold: number;
  /** The side the threshold is crossed from: 'above' (default) fails when value >= threshold, 'below' when value <= threshold. */
  direction?: 'above' | 'below';
  /** Ms of history fitted. Default 12 h (see the header for the trade-off). */
  window?: number;
  /** Ms ahead the failure probability looks. Default 24 h. */
  horizon?: number;
  /** Probability at or above which estimate.alert is true, in (0, 1]. Default 0.5. */
  level?: number;
  /** Buckets (readings after downsampling) needed before estimating, 3..512. Default 12. */
  minPoints?: number;
  /** Regression model, one of MAINTENANCE_MODELS. Default DEFAULT_MAINTENANCE_MODEL. */
  model?: string;
  /** Hysteresis: a raised alert clears only when the probability falls below this, in (0, level]. Default level / 2. */
  clearLevel?: number;
  /** Ms of event time a raised alert stays raised at least, 0..366 days. Default 0. */
  minDwell?: number;
}

export const MAINTENANCE_MODELS = ['theil-sen', 'linear', 'quadratic'] as const;
export type MaintenanceModel = (typeof MAINTENANCE_MODELS)[number];
/** Chosen by measurement (npm run pdm): lowest TTT error and fewest false alerts of the three. */
export const DEFAULT_MAINTENANCE_MODEL: MaintenanceModel = 'theil-sen';

/**
 * Constants of the method. Not an API: the evaluation (test/nab/maintenance-eval.ts)
 * overrides some to measure variants; nothing else should change them.
 */
export const MAINTENANCE_TUNING = {
  /** Buckets kept (the history's bound). Snapshots hold at most this many. */
  MAX_POINTS: 256,
  /** Refit when this fraction of the window has passed since the last fit. */
  REFIT_FRACTION: 1 / 128,
  /** z of the ttf interval (90 %, two-sided). */
  INTERVAL_Z: 1.6448536269514722,
  /** Inflate the covariance for the residuals' lag-1 autocorrelation. */
  AUTOCORR: true,
  RHO_MAX: 0.9,
  /** Add the squared difference of the recent half's slope to the slope variance. */
  SPLIT: true,
  SPLIT_WEIGHT: 4,
  /** Remove a level step before fitting (see removeStep): t threshold, and the least fraction of points on each side. */
  STEPS: true,
  STEP_Z: 6,
  STEP_MIN: 0.125,
  /** Estimates need buckets spanning at least this fraction of the window. */
  MIN_SPAN: 0.9,
  /** Crossings further than LOOKAHEAD x max(window, horizon) count as never (null). */
  LOOKAHEAD: 50,
  /** Points of [now, now + horizon] at which the probability is evaluated (plus the crossing). */
  PROB_STEPS: 16,
  /** Multiplier of the trend's standard deviation in the probability and the interval. */
  SD_SCALE: 1,
};
const T = MAINTENANCE_TUNING;

const HOUR = 3_600_000;
const DEFAULTS = { direction: 'above' as const, window: 12 * HOUR, horizon: 24 * HOUR, level: 0.5, minPoints: 12, minDwell: 0 };
/** clearLevel defaults to level x this. */
const CLEAR_FRACTION = 0.5;
const MAX_MS = 366 * 24 * HOUR;
/** Larger values are ignored like non-finite ones (their squares and differences would overflow). */
const MAX_ABS = 1e100;

// Fit record (Float64Array), in the internal "above" orientation, x in hours from TREF:
const AT = 0; // ts of the fit
const TREF = 1;
const C0 = 2; // trend = C0 + C1 x + C2 x^2
const C1 = 3;
const C2 = 4;
const V00 = 5; // covariance of (C0, C1, C2)
const V01 = 6;
const V02 = 7;
const V11 = 8;
const V12 = 9;
const V22 = 10;
const SIGMA = 11;
const RHO = 12;
const FIT_LEN = 13;

/** Serialisable estimator state (JSON-safe; see snapshot()). */
export interface MaintenanceSnapshot {
  v: 1;
  opts: Required<MaintenanceOptions>;
  /** Base64 of a Float64Array [t, value, count, ...], one triple per bucket, oldest first. */
  buckets: string;
  /** Newest accepted timestamp, null before the first reading. */
  lastTs: number | null;
  /** Readings accepted and ignored so far. */
  count: number;
  ignored: number;
  /** Base64 of the cached fit (Float64Array), null when none. */
  fit: string | null;
  /** The alert state and when it was raised (absent in snapshots from before hysteresis: not alerting). */
  alert?: boolean;
  alertAt?: number | null;
}

function b64(a: Float64Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

function f64(s: unknown, what: string): Float64Array {
  if (typeof s !== 'string') throw new Error(`maintenance snapshot: ${what} must be a base64 string`);
  const buf = Buffer.from(s, 'base64');
  if (buf.length % 8 !== 0) throw new Error(`maintenance snapshot: ${what} has ${buf.length} bytes, not a multiple of 8`);
  const out = new Float64Array(buf.length / 8);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

/** P(N(0, 1) <= z). */
function phi(z: number): number {
  if (z === Infinity) return 1;
  if (z === -Infinity) return 0;
  return 0.5 * erfc(-z / Math.SQRT2);
}

function isModel(m: string): m is MaintenanceModel {
  return (MAINTENANCE_MODELS as readonly string[]).includes(m);
}

function checkOptions(opts: MaintenanceOptions): Required<MaintenanceOptions> {
  if (opts === null || typeof opts !== 'object') throw new RangeError('maintenance options must be an object');
  const { threshold } = opts;
  if (typeof threshold !== 'number' || !Number.isFinite(threshold)) throw new RangeError(`threshold must be a finite number, got ${String(threshold)}`);
  const direction = opts.direction ?? DEFAULTS.direction;
  if (direction !== 'above' && direction !== 'below') throw new RangeError(`direction must be 'above' or 'below', got ${JSON.stringify(direction)}`);
  const window = opts.window ?? DEFAULTS.window;
  if (typeof window !== 'number' || !(window >= 60_000 && window <= MAX_MS)) throw new RangeError(`window must be between 60000 ms (1 min) and ${MAX_MS} ms (366 days), got ${String(window)}`);
  const horizon = opts.horizon ?? DEFAULTS.horizon;
  if (typeof horizon !== 'number' || !(horizon >= 1000 && horizon <= MAX_MS)) throw new RangeError(`horizon must be between 1000 ms and ${MAX_MS} ms (366 days), got ${String(horizon)}`);
  const level = opts.level ?? DEFAULTS.level;
  if (typeof level !== 'number' || !(level > 0 && level <= 1)) throw new RangeError(`level must be a probability in (0, 1], got ${String(level)}`);
  const minPoints = opts.minPoints ?? DEFAULTS.minPoints;
  if (typeof minPoints !== 'number' || !Number.isInteger(minPoints) || minPoints < 3 || minPoints > T.MAX_POINTS) {
    throw new RangeError(`minPoints must be an integer from 3 to ${T.MAX_POINTS}, got ${String(minPoints)}`);
  }
  const model = opts.model ?? DEFAULT_MAINTENANCE_MODEL;
  if (typeof model !== 'string' || !isModel(model)) throw new RangeError(`model must be one of ${MAINTENANCE_MODELS.join(', ')}, got ${JSON.stringify(model)}`);
  const clearLevel = opts.clearLevel ?? level * CLEAR_FRACTION;
  if (typeof clearLevel !== 'number' || !(clearLevel > 0 && clearLevel <= level)) throw new RangeError(`clearLevel must be a probability in (0, level], got ${String(clearLevel)}`);
  const minDwell = opts.minDwell ?? DEFAULTS.minDwell;
  if (typeof minDwell !== 'number' || !(minDwell >= 0 && minDwell <= MAX_MS)) throw new RangeError(`minDwell must be between 0 and ${MAX_MS} ms (366 days), got ${String(minDwell)}`);
  return { threshold, direction, window, horizon, level, minPoints, model, clearLevel, minDwell };
}

export class MaintenanceEstimator {
  readonly threshold: number;
  readonly direction: 'above' | 'below';
  readonly window: number;
  readonly horizon: number;
  readonly level: number;
  readonly minPoints: number;
  readonly model: MaintenanceModel;
  readonly clearLevel: number;
  readonly minDwell: number;
  private readonly opts: Required<MaintenanceOptions>;
  /** +1 for 'above', -1 for 'below': the fit works on sign * value. */
  private readonly sign: number;
  private readonly width: number;
  // Ring of buckets: mean time, mean value (as given, not sign-flipped), count.
  private bt = new Float64Array(32);
  private bv = new Float64Array(32);
  private bn = new Float64Array(32);
  private head = 0;
  private size = 0;
  private lastTs = NaN;
  private accepted = 0;
  private rejected = 0;
  private fit: Float64Array | null = null;
  /** The alert state (with hysteresis) and when it was last raised (NaN when never). */
  private alerting = false;
  private alertAt = NaN;

  constructor(opts: MaintenanceOptions) {
    const o = checkOptions(opts);
    this.opts = o;
    this.threshold = o.threshold;
    this.direction = o.direction;
    this.window = o.window;
    this.horizon = o.horizon;
    this.level = o.level;
    this.minPoints = o.minPoints;
    this.model = o.model as MaintenanceModel;
    this.clearLevel = o.clearLevel;
    this.minDwell = o.minDwell;
    this.sign = o.direction === 'above' ? 1 : -1;
    this.width = o.window / T.MAX_POINTS;
  }

  /** Readings accepted so far. */
  get count(): number {
    return this.accepted;
  }

  /** Readings ignored so far (non-finite, or older than the newest accepted). */
  get ignored(): number {
    return this.rejected;
  }

  /** Buckets held (at most MAINTENANCE_TUNING.MAX_POINTS). */
  get points(): number {
    return this.size;
  }

  /** Bytes of state held (typed arrays; object overhead not counted). */
  get stateBytes(): number {
    return this.bt.byteLength + this.bv.byteLength + this.bn.byteLength + (this.fit?.byteLength ?? 0);
  }

  /** Upper bound of stateBytes for any series. */
  static maxStateBytes(): number {
    return 3 * 8 * T.MAX_POINTS + 8 * FIT_LEN;
  }

  /**
   * Adds one reading (ts in ms since the epoch) and returns the estimate at ts,
   * or null while the history is too short, or when the reading is ignored
   * (ts or value not finite, |value| > 1e100, or ts older than the newest accepted reading).
   */
  update(ts: number, value: number): MaintenanceEstimate | null {
    if (!Number.isFinite(ts) || !(Math.abs(value) <= MAX_ABS) || ts < this.lastTs) {
      this.rejected++;
      return null;
    }
    this.accepted++;
    this.add(ts, value);
    this.lastTs = ts;
    // Drop buckets that left the window.
    const cap = this.bt.length;
    while (this.size > 0 && this.bt[this.head] < ts - this.window) {
      this.head = (this.head + 1) % cap;
      this.size--;
    }
    const oldest = this.bt[this.head];
    const newest = this.bt[(this.head + this.size - 1) % cap];
    if (this.size < this.minPoints || newest - oldest < T.MIN_SPAN * this.window) {
      this.fit = null;
      return null;
    }
    if (this.fit === null || ts - this.fit[AT] >= this.window * T.REFIT_FRACTION) this.fit = this.refit(ts);
    return this.fit === null ? null : this.estimate(ts, this.fit);
  }

  private add(ts: number, value: number): void {
    const cap = this.bt.length;
    if (this.size > 0) {
      const last = (this.head + this.size - 1) % cap;
      if (Math.floor(ts / this.width) === Math.floor(this.lastTs / this.width)) {
        const n = ++this.bn[last];
        this.bt[last] += (ts - this.bt[last]) / n;
        this.bv[last] += (value - this.bv[last]) / n;
        return;
      }
    }
    if (this.size === cap) {
      if (cap < T.MAX_POINTS) this.grow(Math.min(T.MAX_POINTS, cap * 2));
      else {
        // Full (only when buckets are not evicted by time fast enough): drop the oldest.
        this.head = (this.head + 1) % cap;
        this.size--;
      }
    }
    const c = this.bt.length;
    const i = (this.head + this.size) % c;
    this.bt[i] = ts;
    this.bv[i] = value;
    this.bn[i] = 1;
    this.size++;
  }

  private grow(cap: number): void {
    const t = new Float64Array(cap);
    const v = new Float64Array(cap);
    const n = new Float64Array(cap);
    const old = this.bt.length;
    for (let k = 0; k < this.size; k++) {
      const j = (this.head + k) % old;
      t[k] = this.bt[j];
      v[k] = this.bv[j];
      n[k] = this.bn[j];
    }
    this.bt = t;
    this.bv = v;
    this.bn = n;
    this.head = 0;
  }

  /** Fits the model to the buckets (oldest first); null when degenerate. */
  private refit(ts: number): Float64Array | null {
    const n = this.size;
    const cap = this.bt.length;
    const t = new Float64Array(n);
    const y = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const j = (this.head + k) % cap;
      t[k] = this.bt[j];
      y[k] = this.sign * this.bv[j];
    }
    return fitTrend(this.model, t, y, ts);
  }

  private estimate(ts: number, f: Float64Array): MaintenanceEstimate {
    const thr = this.sign * this.threshold;
    const x0 = (ts - f[TREF]) / HOUR;
    const c0 = f[C0];
    const c1 = f[C1];
    const c2 = f[C2];
    const mean = (x: number): number => c0 + x * (c1 + x * c2);
    const sd = (x: number): number => {
      const x2 = x * x;
      const v = f[V00] + 2 * x * f[V01] + x2 * (2 * f[V02] + f[V11]) + 2 * x2 * x * f[V12] + x2 * x2 * f[V22];
      return v > 0 ? T.SD_SCALE * Math.sqrt(v) : 0;
    };
    const slopeIn = c1 + 2 * c2 * x0;
    const prob = (x: number): number => {
      const s = sd(x);
      const d = mean(x) - thr;
      return phi(s > 0 ? d / s : d >= 0 ? Infinity : -Infinity);
    };
    const look = (T.LOOKAHEAD * Math.max(this.window, this.horizon)) / HOUR;
    const h = this.horizon / HOUR;

    // Point estimate: first x >= x0 where the trend reaches thr.
    let xc: number | null = null;
    const d0 = mean(x0) - thr;
    if (d0 >= 0) xc = x0;
    else if (c2 === 0) {
      if (c1 > 0) xc = x0 + -d0 / c1;
    } else {
      // c2 x^2 + c1 x + (c0 - thr) = 0; the first root after x0 (the trend is below thr at x0).
      const cc = c0 - thr;
      const disc = c1 * c1 - 4 * c2 * cc;
      if (disc >= 0) {
        const q = -0.5 * (c1 + (c1 >= 0 ? 1 : -1) * Math.sqrt(disc));
        const roots = [q / c2, q !== 0 ? cc / q : NaN].filter((r) => Number.isFinite(r) && r > x0).sort((a, b) => a - b);
        if (roots.length > 0) xc = roots[0];
      }
    }
    if (xc !== null && xc - x0 > look) xc = null;

    // Interval: first crossings of the band's edges.
    const z = T.INTERVAL_Z;
    let lo = firstCross((x) => mean(x) + z * sd(x) - thr, x0, look);
    let hi = firstCross((x) => mean(x) - z * sd(x) - thr, x0, look);
    if (xc !== null) {
      if (lo === null || lo > xc) lo = xc;
      if (hi !== null && hi < xc) hi = xc;
    } else if (hi !== null) hi = null; // the trend itself never gets there: unbounded above
    if (lo !== null && hi !== null && hi < lo) hi = lo;

    // Probability that the trend is past thr somewhere in [x0, x0 + h].
    let p = 0;
    for (let k = 0; k <= T.PROB_STEPS; k++) p = Math.max(p, prob(x0 + (h * k) / T.PROB_STEPS));
    if (xc !== null && xc <= x0 + h) p = Math.max(p, prob(xc));
    if (!(p >= 0)) p = 0;
    if (p > 1) p = 1;

    // Alert with hysteresis: raised at level, cleared below clearLevel once raised for minDwell.
    if (this.alerting) {
      if (p < this.clearLevel && ts - this.alertAt >= this.minDwell) this.alerting = false;
    } else if (p >= this.level) {
      this.alerting = true;
      this.alertAt = ts;
    }

    const ms = (x: number | null): number | null => (x === null ? null : Math.round((x - x0) * HOUR));
    const slope = this.sign * slopeIn;
    return {
      threshold: this.threshold,
      direction: this.direction,
      ttf: ms(xc),
      ttfLow: ms(lo),
      ttfHigh: ms(hi),
      probability: p,
      horizon: this.horizon,
      slope: slope === 0 ? 0 : slope,
      model: this.model,
      alert: this.alerting,
    };
  }

  /** The complete state, JSON-serialisable; restore() gives an estimator that continues identically. */
  snapshot(): MaintenanceSnapshot {
    const cap = this.bt.length;
    const b = new Float64Array(3 * this.size);
    for (let k = 0; k < this.size; k++) {
      const j = (this.head + k) % cap;
      b[3 * k] = this.bt[j];
      b[3 * k + 1] = this.bv[j];
      b[3 * k + 2] = this.bn[j];
    }
    return {
      v: 1,
      opts: { ...this.opts },
      buckets: b64(b),
      lastTs: Number.isNaN(this.lastTs) ? null : this.lastTs,
      count: this.accepted,
      ignored: this.rejected,
      fit: this.fit === null ? null : b64(this.fit),
      alert: this.alerting,
      alertAt: Number.isNaN(this.alertAt) ? null : this.alertAt,
    };
  }

  /** Rebuilds an estimator from snapshot(); throws an Error naming the bad field. */
  static restore(s: MaintenanceSnapshot): MaintenanceEstimator {
    if (s === null || typeof s !== 'object' || s.v !== 1) throw new Error('maintenance snapshot: unknown format (expected an object with v: 1)');
    if (s.opts === null || typeof s.opts !== 'object') throw new Error('maintenance snapshot: opts missing');
    let e: MaintenanceEstimator;
    try {
      e = new MaintenanceEstimator(s.opts);
    } catch (err) {
      throw new Error(`maintenance snapshot: bad opts: ${(err as Error).message}`, { cause: err });
    }
    const b = f64(s.buckets, 'buckets');
    if (b.length % 3 !== 0 || b.length / 3 > T.MAX_POINTS) throw new Error(`maintenance snapshot: buckets must hold at most ${T.MAX_POINTS} (t, value, count) triples`);
    const n = b.length / 3;
    for (let k = 0; k < n; k++) {
      const t = b[3 * k];
      const v = b[3 * k + 1];
      const c = b[3 * k + 2];
      if (!Number.isFinite(t) || !Number.isFinite(v) || !(Number.isInteger(c) && c >= 1)) throw new Error(`maintenance snapshot: bucket ${k} is not a finite (t, value, count)`);
      if (k > 0 && !(t >= b[3 * (k - 1)])) throw new Error(`maintenance snapshot: bucket ${k} is older than the one before`);
    }
    const lastTs = s.lastTs;
    if (lastTs === null) {
      if (n > 0) throw new Error('maintenance snapshot: lastTs is null but buckets are not empty');
    } else if (typeof lastTs !== 'number' || !Number.isFinite(lastTs) || (n > 0 && lastTs < b[3 * (n - 1)])) {
      throw new Error('maintenance snapshot: lastTs must be a finite number, not older than the newest bucket');
    }
    for (const k of ['count', 'ignored'] as const) {
      if (!Number.isInteger(s[k]) || s[k] < 0) throw new Error(`maintenance snapshot: ${k} must be a non-negative integer`);
    }
    let fit: Float64Array | null = null;
    if (s.fit !== null) {
      fit = f64(s.fit, 'fit');
      if (fit.length !== FIT_LEN || !fit.every(Number.isFinite)) throw new Error(`maintenance snapshot: fit must hold ${FIT_LEN} finite numbers`);
    }
    const alert = s.alert ?? false;
    const alertAt = s.alertAt ?? null;
    if (typeof alert !== 'boolean') throw new Error('maintenance snapshot: alert must be a boolean');
    if (alertAt !== null && !(typeof alertAt === 'number' && Number.isFinite(alertAt))) throw new Error('maintenance snapshot: alertAt must be a finite number or null');
    if (alert && alertAt === null) throw new Error('maintenance snapshot: alert is raised but alertAt is null');
    if (n > 0) e.grow(Math.max(32, Math.min(T.MAX_POINTS, 2 ** Math.ceil(Math.log2(n)))));
    for (let k = 0; k < n; k++) {
      e.bt[k] = b[3 * k];
      e.bv[k] = b[3 * k + 1];
      e.bn[k] = b[3 * k + 2];
    }
    e.size = n;
    e.head = 0;
    e.lastTs = lastTs === null ? NaN : lastTs;
    e.accepted = s.count;
    e.rejected = s.ignored;
    e.fit = fit;
    e.alerting = alert;
    e.alertAt = alertAt === null ? NaN : alertAt;
    return e;
  }
}

/**
 * Fits `model` to the points (t, y), y already in the 'above' orientation;
 * null when degenerate.
 */
function fitTrend(model: MaintenanceModel, t: Float64Array, y: Float64Array, ts: number): Float64Array | null {
  const n = t.length;
  let tRef = 0;
  for (let k = 0; k < n; k++) tRef += t[k];
  tRef /= n;
  const xs: number[] = new Array(n);
  const ys: number[] = new Array(n);
  for (let k = 0; k < n; k++) {
    xs[k] = (t[k] - tRef) / HOUR;
    ys[k] = y[k];
  }
  if (T.STEPS) removeStep(xs, ys);
  let c0: number;
  let c1: number;
  let c2 = 0;
  let p = 2;
  if (model === 'theil-sen') {
    const r = new TheilSenRegression(xs, ys);
    c0 = r.intercept;
    c1 = r.slope;
  } else if (model === 'linear') {
    const r = new SimpleLinearRegression(xs, ys);
    c0 = r.intercept;
    c1 = r.slope;
  } else {
    const r = new PolynomialRegression(xs, ys, 2);
    [c0, c1, c2] = r.coefficients;
    p = 3;
  }
  if (!Number.isFinite(c0) || !Number.isFinite(c1) || !Number.isFinite(c2)) return null;

  // Residual scale and lag-1 autocorrelation.
  const res = new Float64Array(n);
  let ss = 0;
  for (let k = 0; k < n; k++) {
    const x = xs[k];
    res[k] = ys[k] - (c0 + x * (c1 + x * c2));
    ss += res[k] * res[k];
  }
  const sigma = model === 'theil-sen' ? robustScale(res) : Math.sqrt(ss / Math.max(1, n - p));
  let rho = 0;
  if (T.AUTOCORR && sigma > 0) {
    const clip = 3 * sigma;
    let num = 0;
    let prev = Math.max(-clip, Math.min(clip, res[0]));
    let den = prev * prev;
    for (let k = 1; k < n; k++) {
      const r = Math.max(-clip, Math.min(clip, res[k]));
      num += prev * r;
      den += r * r;
      prev = r;
    }
    rho = den > 0 ? Math.max(0, Math.min(T.RHO_MAX, num / den)) : 0;
  }
  const scale = sigma * sigma * ((1 + rho) / (1 - rho));

  // (X'X)^-1 for the design (1, x[, x^2]).
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let s4 = 0;
  for (let k = 0; k < n; k++) {
    const x = xs[k];
    const x2 = x * x;
    s1 += x;
    s2 += x2;
    s3 += x2 * x;
    s4 += x2 * x2;
  }
  const s0 = n;
  const fit = new Float64Array(FIT_LEN);
  if (p === 2) {
    const det = s0 * s2 - s1 * s1;
    if (!(det > 0)) return null;
    fit[V00] = (scale * s2) / det;
    fit[V01] = (-scale * s1) / det;
    fit[V11] = (scale * s0) / det;
  } else {
    const a00 = s2 * s4 - s3 * s3;
    const a01 = -(s1 * s4 - s3 * s2);
    const a02 = s1 * s3 - s2 * s2;
    const a11 = s0 * s4 - s2 * s2;
    const a12 = -(s0 * s3 - s1 * s2);
    const a22 = s0 * s2 - s1 * s1;
    const det = s0 * a00 + s1 * a01 + s2 * a02;
    if (!(det > 0)) return null;
    fit[V00] = (scale * a00) / det;
    fit[V01] = (scale * a01) / det;
    fit[V02] = (scale * a02) / det;
    fit[V11] = (scale * a11) / det;
    fit[V12] = (scale * a12) / det;
    fit[V22] = (scale * a22) / det;
  }
  if (T.SPLIT && p === 2 && n >= 8) {
    // Model uncertainty: how far the slope of the recent half departs from the whole window's.
    const h = n >> 1;
    const xr = xs.slice(n - h);
    const yr = ys.slice(n - h);
    const br = model === 'theil-sen' ? new TheilSenRegression(xr, yr).slope : new SimpleLinearRegression(xr, yr).slope;
    if (Number.isFinite(br)) fit[V11] += T.SPLIT_WEIGHT * (br - c1) ** 2;
  }
  fit[AT] = ts;
  fit[TREF] = tRef;
  fit[C0] = c0;
  fit[C1] = c1;
  fit[C2] = c2;
  fit[SIGMA] = model === 'theil-sen' ? sigma : robustScale(res);
  fit[RHO] = rho;
  for (let k = 0; k < FIT_LEN; k++) if (!Number.isFinite(fit[k])) return null;
  return fit;
}

/**
 * Finds the level step (common slope, intercepts differing from point `cut`
 * on) that best explains ys, by least squares over every cut leaving
 * STEP_MIN of the points on each side; when its t statistic exceeds STEP_Z,
 * removes it by shifting the points before the cut by the step (so the series
 * continues at its latest level). Returns the step removed (0 for none).
 */
export function removeStep(xs: number[], ys: number[]): number {
  const n = xs.length;
  const minSide = Math.max(3, Math.ceil(n * T.STEP_MIN));
  if (n < 2 * minSide || n < 8) return 0;
  let my = 0;
  for (let k = 0; k < n; k++) my += ys[k];
  my /= n;
  let sx = 0;
  let sxx = 0;
  let sy = 0;
  let sxy = 0;
  let syy = 0;
  for (let k = 0; k < n; k++) {
    const x = xs[k];
    const yc = ys[k] - my;
    sx += x;
    sxx += x * x;
    sy += yc;
    sxy += x * yc;
    syy += yc * yc;
  }
  // Suffix sums over the points after the cut: count, x, y.
  let m = 0;
  let px = 0;
  let py = 0;
  let bestT = 0;
  let bestD = 0;
  let bestCut = -1;
  for (let cut = n - 1; cut >= minSide; cut--) {
    m++;
    px += xs[cut];
    py += ys[cut] - my;
    if (m < minSide) continue;
    // Normal equations for (a, b, d) with design (1, x, s), s = 1 after the cut.
    const a00 = n;
    const a01 = sx;
    const a02 = m;
    const a11 = sxx;
    const a12 = px;
    const a22 = m;
    const c00 = a11 * a22 - a12 * a12;
    const c01 = -(a01 * a22 - a12 * a02);
    const c02 = a01 * a12 - a11 * a02;
    const c11 = a00 * a22 - a02 * a02;
    const c12 = -(a00 * a12 - a01 * a02);
    const c22 = a00 * a11 - a01 * a01;
    const det = a00 * c00 + a01 * c01 + a02 * c02;
    if (!(det > 0)) continue;
    const a = (c00 * sy + c01 * sxy + c02 * py) / det;
    const b = (c01 * sy + c11 * sxy + c12 * py) / det;
    const d = (c02 * sy + c12 * sxy + c22 * py) / det;
    const sse = syy - (a * sy + b * sxy + d * py);
    const varD = (Math.max(sse, 0) / (n - 3)) * (c22 / det);
    const tStat = varD > 0 ? Math.abs(d) / Math.sqrt(varD) : 0;
    if (tStat > bestT) {
      bestT = tStat;
      bestD = d;
      bestCut = cut;
    }
  }
  if (bestCut < 0 || bestT < T.STEP_Z) return 0;
  for (let k = 0; k < bestCut; k++) ys[k] += bestD;
  return bestD;
}

/** 1.4826 x the median absolute value: sigma of Gaussian residuals, robust to outliers. */
function robustScale(res: Float64Array): number {
  const abs = Float64Array.from(res, Math.abs).sort();
  const n = abs.length;
  const mid = n >> 1;
  return 1.482602218505602 * (n % 2 === 1 ? abs[mid] : 0.5 * (abs[mid - 1] + abs[mid]));
}

/**
 * First x in [x0, x0 + look] where g(x) >= 0 (g continuous), or null: a
 * geometric grid of offsets from look / 1e5 to look, then bisection.
 */
function firstCross(g: (x: number) => number, x0: number, look: number): number | null {
  if (g(x0) >= 0) return x0;
  let prev = x0;
  let d = look / 1e5;
  for (;;) {
    const x = x0 + Math.min(d, look);
    if (g(x) >= 0) {
      let a = prev;
      let b = x;
      for (let i = 0; i < 50 && b - a > 1e-7; i++) {
        const m = 0.5 * (a + b);
        if (g(m) >= 0) b = m;
        else a = m;
      }
      return b;
    }
    if (d >= look) return null;
    prev = x;
    d *= 1.2;
  }
}
