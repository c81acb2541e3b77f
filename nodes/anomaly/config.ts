/**
 * The saved configuration of a thingwire-anomaly node (what the editor dialog writes) and the
 * pure helpers that parse and check it: durations, the maintenance rules (a JSON array in the
 * dialog) and the settings as a whole. Every problem is reported with the field it is in; the
 * node shows them on deploy and refuses input until they are fixed. No Node-RED here.
 */
import { isValidName, preview } from '../lib/names';
import { configBool, configList } from '../lib/red';
import { durationMs } from '../lib/time';

export interface AnomalyConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  /** Score at or above which a value is anomalous, in [0, 1]. Default 0.57. */
  threshold?: number | string;
  /** Readings per series before it scores (it learns first). Default 150. */
  warmup?: number | string;
  daily?: boolean | string;
  weekly?: boolean | string;
  /** Comma-separated metrics to score; empty = every numeric metric. */
  metrics?: string;
  /** Most series kept; the least recently used go first. Default 10000. */
  maxSeries?: number | string;
  /** JSON array of maintenance rules (see MaintenanceRule). Default "[]". */
  maintenance?: string;
  /** Consecutive normal scores before an anomaly event resolves. Default 5. */
  clearAfter?: number | string;
  /** Scores out at most once a series every this much event time ("500ms", "1s"; empty or "0" = every score). */
  scoreEvery?: string | number;
  persist?: boolean | string;
  /** Duration between background saves of the state ("60s"; "0" = only on close). */
  snapshotInterval?: string | number;
  catchRejects?: boolean | string;
  /** Score in a worker thread (the models and their state file live there; see remote.ts). Default false. */
  worker?: boolean | string;
}

/** One predictive-maintenance rule: fit the trend of `metric` and estimate when it crosses `threshold`. */
export interface MaintenanceRule {
  metric: string;
  threshold: number;
  direction: 'above' | 'below';
  /** Time fitted, ms. */
  window: number;
  /** Horizon of the failure probability, ms. */
  horizon: number;
  /** Probability at which the maintenance alert fires, in (0, 1]. */
  level: number;
  /** Probability below which a raised maintenance alert clears (default level / 2: hysteresis). */
  clearLevel?: number;
  /** ms a raised alert stays raised at least (default 0). */
  minDwell?: number;
  /** Optional, passed on to the estimator. */
  minPoints?: number;
  model?: string;
}

/** The checked settings. */
export interface AnomalySettings {
  threshold: number;
  warmup: number;
  daily: boolean;
  weekly: boolean;
  /** Metrics to score; empty = all. */
  metrics: string[];
  maxSeries: number;
  maintenance: MaintenanceRule[];
  clearAfter: number;
  /** ms of event time between the scores of a series sent (anomalous ones and the first after always); 0 = every score. */
  scoreEvery: number;
  persist: boolean;
  /** ms; 0 = saved on close only. */
  snapshotInterval: number;
  catchRejects: boolean;
  /** The models in a worker thread. */
  worker: boolean;
}

export const DEFAULTS = {
  threshold: 0.57,
  warmup: 150,
  maxSeries: 10_000,
  clearAfter: 5,
  snapshotInterval: 300_000,
  window: 12 * 3_600_000,
  horizon: 24 * 3_600_000,
  level: 0.5,
} as const;

/** Bounds that keep a typo from asking for absurd memory or timers. */
export const LIMITS = {
  maxSeries: 1_000_000,
  warmup: 1_000_000,
  clearAfter: 1_000_000,
  rules: 100,
  minSnapshotInterval: 100,
  /** A score at least once an hour a series: thinner than that hides a series' scores from every chart. */
  maxScoreEvery: 3_600_000,
  maxDuration: 365 * 86_400_000,
} as const;

/** Every problem found in a config, one sentence each. */
export class AnomalyConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.name = 'AnomalyConfigError';
    this.problems = problems;
  }
}

/**
 * "30s", "5m", "6h", "1d", "100ms" or a number of ms (as a number or digits) -> ms.
 * Returns undefined when `v` is not such a duration (negative, not finite, over a year, junk).
 */
export function parseDuration(v: unknown): number | undefined {
  const ms = durationMs(v);
  return ms === undefined || ms > LIMITS.maxDuration ? undefined : ms;
}

/** A value for a problem message: numbers as they are, text quoted and bounded. */
function show(v: unknown): string {
  return typeof v === 'number' || typeof v === 'boolean' || v === undefined || v === null ? String(v) : preview(v);
}

/** A number from the dialog (a number, or text holding one); undefined when empty. NaN when junk. */
function num(v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v.trim());
  return NaN;
}

function intIn(v: unknown, dflt: number, min: number, max: number, what: string, problems: string[]): number {
  const n = num(v);
  if (n === undefined) return dflt;
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${what} must be a whole number from ${min} to ${max}, got ${show(v)}`);
    return dflt;
  }
  return n;
}

const RULE_KEYS = new Set(['metric', 'threshold', 'direction', 'window', 'horizon', 'level', 'clearLevel', 'minDwell', 'minPoints', 'model']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Parses the maintenance rules: a JSON array (text) of
 * `{ metric, threshold, direction?, window?, horizon?, level?, clearLevel?, minDwell?, minPoints?, model? }`.
 * Empty text means no rules. Problems are appended to `problems` (and the bad rules left out).
 */
export function parseMaintenanceRules(text: unknown, problems: string[]): MaintenanceRule[] {
  if (text === undefined || text === null || (typeof text === 'string' && text.trim() === '')) return [];
  let list: unknown = text;
  if (typeof text === 'string') {
    try {
      list = JSON.parse(text);
    } catch (e) {
      problems.push(`maintenance rules are not valid JSON: ${(e as Error).message}`);
      return [];
    }
  }
  if (!Array.isArray(list)) {
    problems.push('maintenance rules must be a JSON array of { "metric", "threshold", ... } objects');
    return [];
  }
  if (list.length > LIMITS.rules) {
    problems.push(`at most ${LIMITS.rules} maintenance rules, got ${list.length}`);
    return [];
  }
  const out: MaintenanceRule[] = [];
  const seen = new Set<string>();
  list.forEach((item: unknown, i) => {
    const at = `maintenance rule ${i + 1}`;
    if (!isPlainObject(item)) {
      problems.push(`${at} must be an object, got ${show(item)}`);
      return;
    }
    const before = problems.length;
    for (const k of Object.keys(item)) {
      if (!RULE_KEYS.has(k)) problems.push(`${at} has an unknown key ${preview(k)} (known: ${[...RULE_KEYS].join(', ')})`);
    }
    const metric = item.metric;
    if (!isValidName(metric)) problems.push(`${at}: "metric" must be a metric name, got ${show(metric)}`);
    else if (seen.has(metric)) problems.push(`${at}: metric ${preview(metric)} already has a rule (one rule per metric)`);
    else seen.add(metric);
    const threshold = item.threshold;
    if (typeof threshold !== 'number' || !Number.isFinite(threshold)) problems.push(`${at}: "threshold" must be a finite number, got ${show(threshold)}`);
    const direction = item.direction ?? 'above';
    if (direction !== 'above' && direction !== 'below') problems.push(`${at}: "direction" must be "above" or "below", got ${show(direction)}`);
    const window = item.window === undefined ? DEFAULTS.window : parseDuration(item.window);
    if (window === undefined || window < 60_000) problems.push(`${at}: "window" must be a duration of at least 1m such as "30m", "6h", "1d" (or ms), got ${show(item.window)}`);
    const horizon = item.horizon === undefined ? DEFAULTS.horizon : parseDuration(item.horizon);
    if (horizon === undefined || horizon < 1000) problems.push(`${at}: "horizon" must be a duration of at least 1s such as "6h", "24h", "7d" (or ms), got ${show(item.horizon)}`);
    const level = item.level ?? DEFAULTS.level;
    if (typeof level !== 'number' || !(level > 0 && level <= 1)) problems.push(`${at}: "level" must be a probability in (0, 1], got ${show(item.level)}`);
    const clearLevel = item.clearLevel;
    if (clearLevel !== undefined && !(typeof clearLevel === 'number' && typeof level === 'number' && clearLevel > 0 && clearLevel <= level)) {
      problems.push(`${at}: "clearLevel" must be a probability in (0, level], got ${show(clearLevel)}`);
    }
    const minDwell = item.minDwell === undefined ? undefined : parseDuration(item.minDwell);
    if (item.minDwell !== undefined && (minDwell === undefined || minDwell > 366 * 86_400_000)) {
      problems.push(`${at}: "minDwell" must be a duration such as "30m", "1h" (or ms), at most 366 days, got ${show(item.minDwell)}`);
    }
    const minPoints = item.minPoints;
    if (minPoints !== undefined && !(typeof minPoints === 'number' && Number.isInteger(minPoints) && minPoints >= 3 && minPoints <= 512)) {
      problems.push(`${at}: "minPoints" must be a whole number from 3 to 512, got ${show(minPoints)}`);
    }
    const model = item.model;
    if (model !== undefined && (typeof model !== 'string' || model === '')) problems.push(`${at}: "model" must be a model name, got ${show(model)}`);
    if (problems.length > before) return;
    const rule: MaintenanceRule = {
      metric: metric as string,
      threshold: threshold as number,
      direction: direction as 'above' | 'below',
      window: window!,
      horizon: horizon!,
      level: level as number,
    };
    if (clearLevel !== undefined) rule.clearLevel = clearLevel as number;
    if (minDwell !== undefined) rule.minDwell = minDwell;
    if (minPoints !== undefined) rule.minPoints = minPoints as number;
    if (model !== undefined) rule.model = model as string;
    out.push(rule);
  });
  return out;
}

/** Checks a whole config; throws an AnomalyConfigError listing every problem. */
export function parseConfig(c: AnomalyConfig): AnomalySettings {
  const problems: string[] = [];
  if (c.v !== undefined && c.v !== null && Number(c.v) !== 1) problems.push(`config version ${show(c.v)} is not supported (this node reads version 1)`);
  let threshold: number = DEFAULTS.threshold;
  const t = num(c.threshold);
  if (t !== undefined) {
    if (t >= 0 && t <= 1) threshold = t;
    else problems.push(`threshold must be a number from 0 to 1, got ${show(c.threshold)}`);
  }
  const warmup = intIn(c.warmup, DEFAULTS.warmup, 0, LIMITS.warmup, 'warmup', problems);
  const maxSeries = intIn(c.maxSeries, DEFAULTS.maxSeries, 1, LIMITS.maxSeries, 'maxSeries', problems);
  const clearAfter = intIn(c.clearAfter, DEFAULTS.clearAfter, 1, LIMITS.clearAfter, 'clearAfter', problems);
  const metrics = configList(typeof c.metrics === 'string' ? c.metrics : undefined);
  for (const m of metrics) if (!isValidName(m)) problems.push(`metrics: ${preview(m)} is not a metric name`);
  if (c.metrics !== undefined && c.metrics !== null && typeof c.metrics !== 'string') problems.push(`metrics must be a comma-separated list, got ${show(c.metrics)}`);
  const maintenance = parseMaintenanceRules(c.maintenance, problems);
  if (metrics.length > 0) {
    for (const r of maintenance) {
      if (!metrics.includes(r.metric)) problems.push(`maintenance rule for ${preview(r.metric)}: that metric is not in the metrics to score`);
    }
  }
  let scoreEvery = 0;
  if (c.scoreEvery !== undefined && c.scoreEvery !== null && c.scoreEvery !== '') {
    const d = parseDuration(c.scoreEvery);
    if (d === undefined || d > LIMITS.maxScoreEvery) {
      problems.push(`scoreEvery must be a duration such as "500ms", "1s", "1m" (at most 1h; empty or "0" = every score), got ${show(c.scoreEvery)}`);
    } else scoreEvery = d;
  }
  let snapshotInterval: number = DEFAULTS.snapshotInterval;
  if (c.snapshotInterval !== undefined && c.snapshotInterval !== null && c.snapshotInterval !== '') {
    const d = parseDuration(c.snapshotInterval);
    if (d === undefined || (d > 0 && d < LIMITS.minSnapshotInterval)) {
      problems.push(`snapshotInterval must be a duration such as "30s", "60s", "5m" (at least 100ms; "0" = only on close), got ${show(c.snapshotInterval)}`);
    } else snapshotInterval = d;
  }
  if (problems.length > 0) throw new AnomalyConfigError(problems);
  return {
    threshold,
    warmup,
    daily: configBool(c.daily, true),
    weekly: configBool(c.weekly, true),
    metrics,
    maxSeries,
    maintenance,
    clearAfter,
    scoreEvery,
    persist: configBool(c.persist, true),
    snapshotInterval,
    catchRejects: configBool(c.catchRejects, false),
    worker: configBool(c.worker, false),
  };
}
