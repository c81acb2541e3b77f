/**
 * The thingwire-anomaly scorer: many series at once, over the single-series engine (engine.ts)
 * and the maintenance estimator (maintenance.ts). Pure: no Node-RED, no timers, no clock.
 *
 * Keys. One series per device and metric: an AnomalyDetector, plus a MaintenanceEstimator when a
 * maintenance rule names the metric. A reading fans out to its numeric metrics (all of them, or
 * those in `metrics`); booleans and strings are skipped, not rejected.
 *
 * Order. Each series remembers the time of its last value: a value at exactly that time is a
 * redelivery (at-least-once transports) and is skipped and counted; an older one is rejected
 * with `out_of_order` (the detectors learn in time order and cannot take it back). Bad input is
 * rejected per reading (`not_a_reading`, `invalid_device`, `invalid_ts`, `no_metrics`) or per
 * value (`invalid_metric`, `invalid_value`), with its index in a batch; the rest goes on.
 *
 * Events. A series' anomaly alert fires when a score is anomalous and resolves after
 * `clearAfter` consecutive normal scores; its maintenance alert follows the estimate's `alert`
 * flag. Only changes are returned, as contract AlertEvents keyed `${device}/${metric}/${rule}`.
 * A firing alert whose series is forgotten (reset, eviction, a rule removed across a restart) is
 * resolved, so that nothing downstream keeps an alert no one will ever clear.
 *
 * Memory. At most `maxSeries` series; at the bound the least recently used ~1/64 are dropped.
 * Each series holds AnomalyDetector.maxStateBytes() (17.7 kB) at most, plus its estimator.
 *
 * State. snapshot() is a JSON-safe object of everything that decides future output (detectors,
 * estimators, last times, alert states, LRU order, counters); restore() on a scorer with the same
 * detector settings continues exactly as if it had never stopped. Other settings may change
 * across a restart: a maintenance estimator whose rule changed starts afresh.
 */
import type { AlertEvent, AnomalyScore, MaintenanceEstimate, Reading, Reject, RejectCode } from '../lib/contract';
import { MAX_BATCH } from '../lib/contract';
import { isValidDeviceId, isValidName, preview } from '../lib/names';
import type { MaintenanceRule } from './config';
import { AnomalyDetector, type AnomalyResult, type AnomalySnapshot } from './engine';
import { MaintenanceEstimator, type MaintenanceOptions, type MaintenanceSnapshot } from './maintenance';

export interface ScorerOptions {
  threshold?: number;
  warmup?: number;
  daily?: boolean;
  weekly?: boolean;
  /** Metrics to score; empty or absent = every numeric metric. */
  metrics?: readonly string[];
  /** Default 10000. */
  maxSeries?: number;
  maintenance?: readonly MaintenanceRule[];
  /** Consecutive normal scores before an anomaly alert resolves. Default 5. */
  clearAfter?: number;
  /**
   * Thinning of the scores handed out (ms of event time; 0 or absent = every score): a series' score is returned at
   * most once every `scoreEvery` ms of its readings' time, except that an anomalous score, one carrying a maintenance
   * alert, and the first score after either are always returned. Every value is still scored and every alert event
   * still returned; only the score objects of the readings in between are left out (counted as `thinned`).
   */
  scoreEvery?: number;
  /** The events' message texts (the node passes its message catalogue). */
  text?: Partial<EventText>;
}

/** What the event messages say; each function gets the facts and returns one line. */
export interface EventText {
  anomalyFiring(p: { device: string; metric: string; value: number; score: number; signal: string }): string;
  anomalyResolved(p: { device: string; metric: string; value: number; normal: number }): string;
  maintenanceFiring(p: { device: string; metric: string; value: number; estimate: MaintenanceEstimate }): string;
  maintenanceResolved(p: { device: string; metric: string; value: number; estimate: MaintenanceEstimate }): string;
  /** A firing alert resolved because its series is no longer tracked. */
  forgotten(p: { device: string; metric: string; rule: string; why: 'reset' | 'evicted' | 'rule-removed' }): string;
}

/** "45s", "12m", "5h 20m", "3d 4h". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? `${h}h` : `${h}h ${m % 60}m`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d}d` : `${d}d ${h % 24}h`;
}

/** 0.834 -> "83%". */
function pct(p: number): string {
  return `${Math.round(p * 100)}%`;
}

export const DEFAULT_TEXT: EventText = {
  anomalyFiring: (p) => `${p.metric} ${p.value} is anomalous (score ${p.score.toFixed(2)}, ${p.signal})`,
  anomalyResolved: (p) => `${p.metric} ${p.value} is back to normal (${p.normal} normal scores in a row)`,
  maintenanceFiring: (p) =>
    `${p.metric} may cross ${p.estimate.threshold} (${p.estimate.direction}) in ${p.estimate.ttf === null ? 'an unknown time' : formatDuration(p.estimate.ttf)}, ` +
    `probability ${pct(p.estimate.probability)} within ${formatDuration(p.estimate.horizon)}`,
  maintenanceResolved: (p) => `${p.metric}: probability of crossing ${p.estimate.threshold} within ${formatDuration(p.estimate.horizon)} is down to ${pct(p.estimate.probability)}`,
  forgotten: (p) => `${p.metric}: ${p.rule} alert cleared, the series is no longer tracked (${p.why})`,
};

/** What one score() call produced. */
export interface ScoreOutput {
  /** One per value scored, in input order. */
  scores: AnomalyScore[];
  /** Alert state changes, in the order they happened. */
  events: AlertEvent[];
  rejects: Reject[];
  /** Values skipped as redeliveries (same ts as the series' last). */
  skipped: number;
  /** Values scored whose score was left out by scoreEvery. */
  thinned: number;
  /** True when the input was an array. */
  batch: boolean;
  /** With score(input, true): the index in the batch of each score's reading (0 for a single reading). */
  at?: number[];
}

export interface ScorerStats {
  series: number;
  maxSeries: number;
  /** Series still in warm-up. */
  learning: number;
  /** Series whose anomaly alert is firing. */
  anomalous: number;
  /** Series whose maintenance alert is firing. */
  maintenance: number;
  /** Bytes of model state (typed arrays; object overhead not counted). */
  stateBytes: number;
  scored: number;
  skipped: number;
  rejected: number;
  evicted: number;
  /** Values scored whose score was not handed out (scoreEvery). */
  thinned: number;
}

/** The anomaly alert of one series, the maintenance alert, in snapshot order. */
type EventState = [aFiring: number, aSince: number, normalRun: number, mFiring: number, mSince: number];

interface SeriesState {
  m: string;
  /** Last ts. */
  t: number;
  /** LRU clock of the last use. */
  u: number;
  a: AnomalySnapshot;
  /** Maintenance estimator, and the rule it was built for (ruleKey). */
  p?: MaintenanceSnapshot;
  r?: string;
  e: EventState;
  /** Thinning (scoreEvery): the ts of the last score handed out, and 1 when that one was notable. */
  o?: [ts: number, notable: number];
}

export interface ScorerSnapshot {
  v: 1;
  /** The detector settings the detectors were built with (restore refuses others). */
  config: string;
  clock: number;
  /** scored, skipped, rejected, evicted, thinned (the last absent in a snapshot from before scoreEvery). */
  counts: number[];
  groups: Array<[string, SeriesState[]]>;
}

/** Largest batch taken in one message: the contract's. */
export { MAX_BATCH };

const C_SCORED = 0;
const C_SKIPPED = 1;
const C_REJECTED = 2;
const C_EVICTED = 3;
const C_THINNED = 4;
const N_COUNTS = 5;

class Series {
  lastTs: number;
  touch: number;
  learning: boolean;
  aFiring = false;
  aSince = 0;
  normalRun = 0;
  mFiring = false;
  mSince = 0;
  /** The ts of the last score handed out (-Infinity before the first), and whether it was notable (scoreEvery). */
  outTs = -Infinity;
  outNotable = false;

  constructor(
    readonly device: string,
    readonly metric: string,
    readonly det: AnomalyDetector,
    public est: MaintenanceEstimator | null,
    ts: number,
    touch: number,
  ) {
    this.lastTs = ts;
    this.touch = touch;
    this.learning = det.count <= det.warmup;
  }
}

function ruleKey(r: MaintenanceRule): string {
  return JSON.stringify([r.threshold, r.direction, r.window, r.horizon, r.level, r.minPoints ?? null, r.model ?? null, r.clearLevel ?? null, r.minDwell ?? null]);
}

function estimatorOptions(r: MaintenanceRule): MaintenanceOptions {
  const o: MaintenanceOptions = { threshold: r.threshold, direction: r.direction, window: r.window, horizon: r.horizon, level: r.level };
  if (r.clearLevel !== undefined) o.clearLevel = r.clearLevel;
  if (r.minDwell !== undefined) o.minDwell = r.minDwell;
  if (r.minPoints !== undefined) o.minPoints = r.minPoints;
  if (r.model !== undefined) o.model = r.model;
  return o;
}

/** The texts of the rejects a reading's shape alone decides (score() and shapeReject()). */
const SHAPE_TEXT = {
  tooLarge: (n: number): string => `a batch holds at most ${MAX_BATCH} readings, got ${n}`,
  notObject: (r: unknown): string => `a reading must be an object { device, ts, metrics }, got ${preview(r)}`,
  metrics: 'a reading must be an object { device, ts, metrics } with metrics an object',
  device: (d: unknown): string => `reading device must be 1..128 letters, digits and ._:- starting with a letter or digit, got ${preview(d)}`,
  ts: (ts: unknown): string => `reading ts must be a finite number of ms since the epoch, got ${preview(ts)}`,
};

/**
 * The reject score() gives a reading for its shape alone (not an object, `metrics` not an object, a device id that
 * is not one, a `ts` that is not a finite number), or undefined when its shape is a reading's. Such a reading changes
 * nothing but the rejected count; the scoring worker's sender (remote-wire.ts) judges these itself.
 */
export function shapeReject(r: unknown, index: number | undefined): Reject | undefined {
  let code: RejectCode;
  let message: string;
  if (r === null || typeof r !== 'object' || Array.isArray(r)) {
    code = 'not_a_reading';
    message = SHAPE_TEXT.notObject(r);
  } else {
    const rd = r as Record<string, unknown>;
    const metrics = rd.metrics;
    if (metrics === null || typeof metrics !== 'object' || Array.isArray(metrics)) {
      code = 'not_a_reading';
      message = SHAPE_TEXT.metrics;
    } else if (!isValidDeviceId(rd.device)) {
      code = 'invalid_device';
      message = SHAPE_TEXT.device(rd.device);
    } else if (typeof rd.ts !== 'number' || !(rd.ts - rd.ts === 0)) {
      code = 'invalid_ts';
      message = SHAPE_TEXT.ts(rd.ts);
    } else {
      return undefined;
    }
  }
  const out: Reject = { code, message };
  if (index !== undefined) out.index = index;
  return out;
}

/** The reject of a batch over MAX_BATCH, as score() gives it. */
export function tooLargeReject(n: number): Reject {
  return { code: 'payload_too_large', message: SHAPE_TEXT.tooLarge(n) };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

export class AnomalyScorer {
  readonly maxSeries: number;
  readonly clearAfter: number;
  /** ms of event time between the scores of a series handed out; 0 = every score. */
  readonly scoreEvery: number;
  private readonly detectorOpts: { threshold: number; warmup: number; daily: boolean; weekly: boolean };
  private readonly fingerprint: string;
  private readonly only: Set<string> | null;
  private readonly rules = new Map<string, { rule: MaintenanceRule; key: string }>();
  private readonly text: EventText;
  private groups = new Map<string, Map<string, Series>>();
  private nSeries = 0;
  private nLearning = 0;
  private nAnomalous = 0;
  private nMaintenance = 0;
  private clock = 0;
  private counts = new Array<number>(N_COUNTS).fill(0);
  /** Filled by each series' detector in turn (AnomalyDetector.update's `into`). */
  private readonly result: AnomalyResult = { score: 0, anomalous: false, expected: NaN, lower: NaN, upper: NaN, signal: 'none', learning: true };
  /** Events produced outside score() (restore), handed out with the next score() output. */
  private pending: AlertEvent[] = [];
  /** Bumped on every change of state: a saver compares it with the version it last saved. */
  version = 0;

  /** Throws a RangeError for bad settings (including a maintenance rule the estimator refuses). */
  constructor(opts: ScorerOptions = {}) {
    const threshold = opts.threshold ?? 0.57;
    const warmup = opts.warmup ?? 150;
    // The engine checks its options; build one detector now so that bad ones fail here.
    new AnomalyDetector({ threshold, warmup });
    this.detectorOpts = { threshold, warmup, daily: opts.daily ?? true, weekly: opts.weekly ?? true };
    this.fingerprint = JSON.stringify(this.detectorOpts);
    this.maxSeries = opts.maxSeries ?? 10_000;
    if (!(Number.isInteger(this.maxSeries) && this.maxSeries >= 1)) throw new RangeError(`maxSeries must be a positive whole number, got ${this.maxSeries}`);
    this.clearAfter = opts.clearAfter ?? 5;
    if (!(Number.isInteger(this.clearAfter) && this.clearAfter >= 1)) throw new RangeError(`clearAfter must be a positive whole number, got ${this.clearAfter}`);
    this.scoreEvery = opts.scoreEvery ?? 0;
    if (!(Number.isFinite(this.scoreEvery) && this.scoreEvery >= 0)) throw new RangeError(`scoreEvery must be a number of ms >= 0, got ${this.scoreEvery}`);
    this.only = opts.metrics && opts.metrics.length > 0 ? new Set(opts.metrics) : null;
    for (const rule of opts.maintenance ?? []) {
      if (this.rules.has(rule.metric)) throw new RangeError(`two maintenance rules for metric ${preview(rule.metric)}`);
      try {
        new MaintenanceEstimator(estimatorOptions(rule));
      } catch (e) {
        throw new RangeError(`maintenance rule for ${preview(rule.metric)}: ${(e as Error).message}`, { cause: e });
      }
      this.rules.set(rule.metric, { rule, key: ruleKey(rule) });
    }
    this.text = { ...DEFAULT_TEXT, ...opts.text };
  }

  /** Counts `n` rejects judged outside score() (shapeReject, tooLargeReject: the scoring worker's sender). */
  countRejected(n: number): void {
    if (n > 0) this.counts[C_REJECTED] += n;
  }

  /** Series held now. */
  get size(): number {
    return this.nSeries;
  }

  /**
   * Scores one Reading or an array of them (anything else is rejected, never thrown).
   * Returns the scores, the alert events and the rejects; `withIndex` adds each score's reading index (`at`).
   */
  score(input: Reading | readonly Reading[] | unknown, withIndex = false): ScoreOutput {
    let events: AlertEvent[] = [];
    if (this.pending.length > 0) {
      events = this.pending;
      this.pending = [];
      this.version++;
    }
    const out: ScoreOutput = { scores: [], events, rejects: [], skipped: 0, thinned: 0, batch: Array.isArray(input) };
    if (withIndex) out.at = [];
    if (out.batch) {
      const list = input as readonly unknown[];
      if (list.length > MAX_BATCH) {
        this.reject(out, 'payload_too_large', SHAPE_TEXT.tooLarge(list.length), undefined);
      } else {
        for (let i = 0; i < list.length; i++) this.one(list[i], i, out);
      }
    } else {
      this.one(input, undefined, out);
    }
    return out;
  }

  private reject(out: ScoreOutput, code: RejectCode, message: string, index: number | undefined, details?: unknown): void {
    this.counts[C_REJECTED]++;
    const r: Reject = { code, message };
    if (index !== undefined) r.index = index;
    if (details !== undefined) r.details = details;
    out.rejects.push(r);
  }

  private one(r: unknown, index: number | undefined, out: ScoreOutput): void {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) {
      return this.reject(out, 'not_a_reading', SHAPE_TEXT.notObject(r), index);
    }
    const rd = r as Reading;
    const metrics = rd.metrics as unknown;
    if (metrics === null || typeof metrics !== 'object' || Array.isArray(metrics)) {
      return this.reject(out, 'not_a_reading', SHAPE_TEXT.metrics, index);
    }
    const device = rd.device;
    let g = this.groups.get(device);
    // A device already held was valid when first seen: only new ones are checked.
    if (g === undefined && !isValidDeviceId(device)) {
      return this.reject(out, 'invalid_device', SHAPE_TEXT.device(device), index);
    }
    const ts = rd.ts;
    if (typeof ts !== 'number' || !(ts - ts === 0)) {
      return this.reject(out, 'invalid_ts', SHAPE_TEXT.ts(ts), index);
    }
    const tags = isPlainObject(rd.tags) ? (rd.tags as Record<string, string>) : undefined;
    const values = metrics as Record<string, unknown>;
    const only = this.only;
    let any = false;
    for (const m in values) {
      any = true;
      const v = values[m];
      if (typeof v !== 'number') continue;
      if (only !== null && !only.has(m)) continue;
      if (!(v - v === 0)) {
        this.reject(out, 'invalid_value', `${device}/${preview(m, 60)}: value ${v} is not a finite number`, index, { metric: m });
        continue;
      }
      let s = g === undefined ? undefined : g.get(m);
      if (s === undefined) {
        if (!isValidName(m)) {
          this.reject(out, 'invalid_metric', `metric name ${preview(m)} is not allowed (1..128 characters, no control characters, not starting with _)`, index, { metric: m });
          continue;
        }
        s = this.newSeries(device, m, ts, out);
        g = this.groups.get(device);
      } else if (ts <= s.lastTs) {
        if (ts === s.lastTs) {
          this.counts[C_SKIPPED]++;
          out.skipped++;
          continue;
        }
        this.reject(out, 'out_of_order', `${device}/${m}: ts ${ts} is older than the series' last value at ${s.lastTs}`, index, { metric: m, lastTs: s.lastTs });
        continue;
      }
      this.update(s, ts, v, tags, out, index);
    }
    if (!any) this.reject(out, 'no_metrics', `reading from ${preview(device)} has no metrics`, index);
  }

  private newSeries(device: string, metric: string, ts: number, out: ScoreOutput): Series {
    if (this.nSeries >= this.maxSeries) this.evictLru(out.events);
    let g = this.groups.get(device);
    if (g === undefined) {
      g = new Map();
      this.groups.set(device, g);
    }
    const r = this.rules.get(metric);
    const s = new Series(device, metric, new AnomalyDetector(this.detectorOpts), r === undefined ? null : new MaintenanceEstimator(estimatorOptions(r.rule)), ts, this.clock);
    g.set(metric, s);
    this.nSeries++;
    if (s.learning) this.nLearning++;
    return s;
  }

  private update(s: Series, ts: number, v: number, tags: Record<string, string> | undefined, out: ScoreOutput, index: number | undefined): void {
    s.lastTs = ts;
    s.touch = ++this.clock;
    this.version++;
    this.counts[C_SCORED]++;
    // The scratch result: everything needed from it is copied below, before the next reading's update.
    const r = s.det.update(ts, v, this.result);
    if (s.learning && !r.learning) {
      s.learning = false;
      this.nLearning--;
    }
    this.anomalyEvent(s, r, ts, v, out.events);
    let e: MaintenanceEstimate | null = null;
    if (s.est !== null) {
      e = s.est.update(ts, v);
      if (e !== null) this.maintenanceEvent(s, e, ts, v, out.events);
    }
    if (this.scoreEvery > 0) {
      // Thinning: the decision is made before the score object exists, so a score left out costs no allocation.
      const notable = r.anomalous || (e !== null && e.alert);
      if (!notable && !s.outNotable && ts - s.outTs < this.scoreEvery) {
        this.counts[C_THINNED]++;
        out.thinned++;
        return;
      }
      s.outTs = ts;
      s.outNotable = notable;
    }
    const sc: AnomalyScore = {
      device: s.device,
      metric: s.metric,
      ts,
      value: v,
      score: r.score,
      anomalous: r.anomalous,
      expected: r.expected,
      lower: r.lower,
      upper: r.upper,
      signal: r.signal,
      learning: r.learning,
    };
    if (e !== null) sc.maintenance = e;
    if (tags !== undefined) sc.tags = tags;
    out.scores.push(sc);
    if (out.at !== undefined) out.at.push(index ?? 0);
  }

  /** An alert event of the series; `value` undefined when there is no value behind it (forgotten series). */
  private event(s: Series, rule: 'anomaly' | 'maintenance', state: 'firing' | 'resolved', value: number | undefined, since: number, message: string): AlertEvent {
    const e: AlertEvent = { key: `${s.device}/${s.metric}/${rule}`, device: s.device, rule, state, severity: rule === 'anomaly' ? 'warning' : 'major', since, metric: s.metric, message };
    if (value !== undefined) e.value = value;
    return e;
  }

  private anomalyEvent(s: Series, r: AnomalyResult, ts: number, v: number, events: AlertEvent[]): void {
    if (r.anomalous) {
      s.normalRun = 0;
      if (!s.aFiring) {
        s.aFiring = true;
        s.aSince = ts;
        this.nAnomalous++;
        events.push(this.event(s, 'anomaly', 'firing', v, ts, this.text.anomalyFiring({ device: s.device, metric: s.metric, value: v, score: r.score, signal: r.signal })));
      }
    } else if (s.aFiring && ++s.normalRun >= this.clearAfter) {
      s.aFiring = false;
      s.aSince = ts;
      this.nAnomalous--;
      events.push(this.event(s, 'anomaly', 'resolved', v, ts, this.text.anomalyResolved({ device: s.device, metric: s.metric, value: v, normal: s.normalRun })));
      s.normalRun = 0;
    }
  }

  private maintenanceEvent(s: Series, e: MaintenanceEstimate, ts: number, v: number, events: AlertEvent[]): void {
    if (e.alert === s.mFiring) return;
    s.mFiring = e.alert;
    s.mSince = ts;
    if (e.alert) {
      this.nMaintenance++;
      events.push(this.event(s, 'maintenance', 'firing', v, ts, this.text.maintenanceFiring({ device: s.device, metric: s.metric, value: v, estimate: e })));
    } else {
      this.nMaintenance--;
      events.push(this.event(s, 'maintenance', 'resolved', v, ts, this.text.maintenanceResolved({ device: s.device, metric: s.metric, value: v, estimate: e })));
    }
  }

  /** Resolves the series' firing alerts (it is going away) and updates the counts. */
  private forget(s: Series, why: 'reset' | 'evicted', events: AlertEvent[]): void {
    if (s.learning) this.nLearning--;
    if (s.aFiring) {
      this.nAnomalous--;
      events.push(this.event(s, 'anomaly', 'resolved', undefined, s.lastTs, this.text.forgotten({ device: s.device, metric: s.metric, rule: 'anomaly', why })));
    }
    if (s.mFiring) {
      this.nMaintenance--;
      events.push(this.event(s, 'maintenance', 'resolved', undefined, s.lastTs, this.text.forgotten({ device: s.device, metric: s.metric, rule: 'maintenance', why })));
    }
    this.nSeries--;
    this.version++;
  }

  private evictLru(events: AlertEvent[]): void {
    const all: Series[] = [];
    for (const g of this.groups.values()) for (const s of g.values()) all.push(s);
    all.sort((a, b) => a.touch - b.touch);
    const k = Math.max(1, Math.ceil(this.maxSeries / 64));
    for (let i = 0; i < k && i < all.length; i++) this.drop(all[i], 'evicted', events);
  }

  private drop(s: Series, why: 'reset' | 'evicted', events: AlertEvent[]): void {
    const g = this.groups.get(s.device);
    if (g === undefined || g.get(s.metric) !== s) return;
    g.delete(s.metric);
    if (g.size === 0) this.groups.delete(s.device);
    if (why === 'evicted') this.counts[C_EVICTED]++;
    this.forget(s, why, events);
  }

  /**
   * Forgets every series, or those of one device. Returns how many were dropped and the
   * 'resolved' events of their firing alerts.
   */
  reset(device?: string): { series: number; events: AlertEvent[] } {
    const events: AlertEvent[] = [];
    const before = this.nSeries;
    const victims: Series[] = [];
    if (device === undefined) {
      for (const g of this.groups.values()) for (const s of g.values()) victims.push(s);
    } else {
      const g = this.groups.get(device);
      if (g !== undefined) for (const s of g.values()) victims.push(s);
    }
    for (const s of victims) this.drop(s, 'reset', events);
    if (device === undefined) {
      // Everything forgotten: the counters start again too.
      this.counts.fill(0);
      this.clock = 0;
      this.version++;
    }
    return { series: before - this.nSeries, events };
  }

  stats(): ScorerStats {
    let bytes = 0;
    for (const g of this.groups.values()) for (const s of g.values()) bytes += s.det.stateBytes + (s.est?.stateBytes ?? 0);
    return {
      series: this.nSeries,
      maxSeries: this.maxSeries,
      learning: this.nLearning,
      anomalous: this.nAnomalous,
      maintenance: this.nMaintenance,
      stateBytes: bytes,
      scored: this.counts[C_SCORED],
      skipped: this.counts[C_SKIPPED],
      rejected: this.counts[C_REJECTED],
      evicted: this.counts[C_EVICTED],
      thinned: this.counts[C_THINNED],
    };
  }

  /** All state as a JSON-safe object; restore() takes it back. */
  snapshot(): ScorerSnapshot {
    const groups: Array<[string, SeriesState[]]> = [];
    for (const [device, g] of this.groups) groups.push([device, this.seriesStates(g)]);
    return { v: 1, config: this.fingerprint, clock: this.clock, counts: this.counts.slice(), groups };
  }

  /**
   * The snapshot as JSON text in pieces, one device's series a piece (about 24 KB a series with the default
   * profiles), for StateFile.saveStream: with thousands of series, snapshot() and one JSON.stringify held the
   * event loop for about a second. Scoring may go on between pieces (the caller pauses): each device's
   * piece is that device's state when the piece is made, and a device evicted and seen again meanwhile
   * (it moves to the end of the map) is written once. clock and counts are taken after the last device,
   * so the clock is not behind any series. restore() takes the text's JSON.parse as it takes a snapshot().
   */
  *snapshotText(): Generator<string> {
    yield `{"v":1,"config":${JSON.stringify(this.fingerprint)},"groups":[`;
    const written = new Set<string>();
    for (const [device, g] of this.groups) {
      if (written.has(device)) continue;
      yield `${written.size > 0 ? ',' : ''}${JSON.stringify([device, this.seriesStates(g)])}`;
      written.add(device);
    }
    yield `],"clock":${JSON.stringify(this.clock)},"counts":${JSON.stringify(this.counts)}}`;
  }

  private seriesStates(g: Map<string, Series>): SeriesState[] {
    const list: SeriesState[] = [];
    for (const s of g.values()) {
      const st: SeriesState = { m: s.metric, t: s.lastTs, u: s.touch, a: s.det.snapshot(), e: [s.aFiring ? 1 : 0, s.aSince, s.normalRun, s.mFiring ? 1 : 0, s.mSince] };
      if (s.est !== null) {
        st.p = s.est.snapshot();
        st.r = this.rules.get(s.metric)?.key;
      }
      if (s.outTs !== -Infinity) st.o = [s.outTs, s.outNotable ? 1 : 0];
      list.push(st);
    }
    return list;
  }

  /**
   * Replaces the state with a snapshot() of a scorer with the same detector settings (threshold,
   * warmup, daily, weekly). Throws (and keeps the current state) when the snapshot is malformed
   * or was taken with other detector settings. Series over maxSeries are dropped, least recently
   * used first. Firing maintenance alerts whose rule is gone are resolved with the next score().
   */
  restore(snap: unknown): void {
    if (!isPlainObject(snap) || snap.v !== 1) throw new RangeError('not a thingwire-anomaly snapshot (v1)');
    if (snap.config !== this.fingerprint) {
      throw new RangeError(`the state was saved with other detector settings (${String(snap.config)}; now ${this.fingerprint})`);
    }
    if (!isFiniteNumber(snap.clock) || !Array.isArray(snap.counts) || !Array.isArray(snap.groups)) throw new RangeError('snapshot: clock, counts or groups missing');
    const groups = new Map<string, Map<string, Series>>();
    const pending: AlertEvent[] = [];
    let n = 0;
    let learning = 0;
    let anomalous = 0;
    let maintenance = 0;
    for (const entry of snap.groups as unknown[]) {
      if (!Array.isArray(entry) || entry.length !== 2 || !isValidDeviceId(entry[0]) || !Array.isArray(entry[1])) throw new RangeError('snapshot: malformed device entry');
      const device = entry[0];
      if (groups.has(device)) throw new RangeError(`snapshot: device ${preview(device)} twice`);
      const g = new Map<string, Series>();
      for (const st of entry[1] as unknown[]) {
        if (!isPlainObject(st) || !isValidName(st.m) || !isFiniteNumber(st.t) || !isFiniteNumber(st.u)) throw new RangeError(`snapshot: malformed series of ${preview(device)}`);
        const e = st.e;
        if (!Array.isArray(e) || e.length !== 5 || !e.every(isFiniteNumber)) throw new RangeError(`snapshot: malformed alert state of ${device}/${st.m}`);
        if (g.has(st.m)) throw new RangeError(`snapshot: series ${device}/${st.m} twice`);
        let det: AnomalyDetector;
        try {
          det = AnomalyDetector.restore(st.a as AnomalySnapshot);
        } catch (err) {
          throw new RangeError(`snapshot: detector of ${device}/${st.m}: ${(err as Error).message}`, { cause: err });
        }
        if (det.threshold !== this.detectorOpts.threshold || det.warmup !== this.detectorOpts.warmup) throw new RangeError(`snapshot: detector of ${device}/${st.m} has other settings`);
        const rule = this.rules.get(st.m);
        let est: MaintenanceEstimator | null = null;
        if (rule !== undefined) {
          if (st.p !== undefined && st.r === rule.key) {
            try {
              est = MaintenanceEstimator.restore(st.p as MaintenanceSnapshot);
            } catch (err) {
              throw new RangeError(`snapshot: maintenance estimator of ${device}/${st.m}: ${(err as Error).message}`, { cause: err });
            }
          } else {
            // The rule is new or changed since the save: the estimator starts afresh.
            est = new MaintenanceEstimator(estimatorOptions(rule.rule));
          }
        }
        const s = new Series(device, st.m, det, est, st.t, st.u);
        s.aFiring = e[0] === 1;
        s.aSince = e[1];
        s.normalRun = e[2];
        s.mFiring = e[3] === 1;
        s.mSince = e[4];
        const o = st.o;
        if (o !== undefined) {
          if (!Array.isArray(o) || o.length !== 2 || !o.every(isFiniteNumber)) throw new RangeError(`snapshot: malformed thinning state of ${device}/${st.m}`);
          s.outTs = o[0];
          s.outNotable = o[1] === 1;
        }
        if (s.mFiring && est === null) {
          s.mFiring = false;
          pending.push(this.event(s, 'maintenance', 'resolved', undefined, s.lastTs, this.text.forgotten({ device, metric: s.metric, rule: 'maintenance', why: 'rule-removed' })));
        }
        if (s.learning) learning++;
        if (s.aFiring) anomalous++;
        if (s.mFiring) maintenance++;
        g.set(st.m, s);
        n++;
      }
      if (g.size > 0) groups.set(device, g);
    }
    this.groups = groups;
    this.nSeries = n;
    this.nLearning = learning;
    this.nAnomalous = anomalous;
    this.nMaintenance = maintenance;
    this.clock = snap.clock;
    this.counts = new Array<number>(N_COUNTS).fill(0);
    const counts = snap.counts as unknown[];
    for (let i = 0; i < N_COUNTS && i < counts.length; i++) if (isFiniteNumber(counts[i])) this.counts[i] = counts[i] as number;
    this.pending = pending;
    // Over the bound (maxSeries lowered since the save): drop the least recently used.
    while (this.nSeries > this.maxSeries) {
      const all: Series[] = [];
      for (const g of this.groups.values()) for (const s of g.values()) all.push(s);
      all.sort((a, b) => a.touch - b.touch);
      const excess = this.nSeries - this.maxSeries;
      for (let i = 0; i < excess; i++) this.drop(all[i], 'evicted', this.pending);
    }
    this.version++;
  }
}
