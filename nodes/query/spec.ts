/**
 * Turns a query as a flow or an HTTP client writes it into a RangeQuery:
 * times as ms, ISO 8601 or relative to now ("-1h", "now"), durations as "5m",
 * lists as arrays or comma-separated text. Every value is checked; a bad one is
 * an invalid_query reject naming it. No Node-RED here.
 */
import { ThingwireError } from '../lib/errors';
import { timeMs } from '../lib/time';
import { isValidDeviceId, isValidName, preview } from '../lib/names';
import { AGGREGATES, type Aggregate, type RangeQuery } from '../lib/store/types';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export interface QueryDefaults {
  measurement: string;
  fields: string[];
  /** Default range start, e.g. "-1h". */
  start: string;
  bucket: string;
  agg: Aggregate;
  maxPoints: number;
  /** Default level: 'raw' (readings), a rollup level such as '1h', or 'auto'. Default 'raw'. */
  level?: string;
  /** The rollup levels the store holds (as the window node writes them), finest first. Default 1m, 1h, 1d. */
  levels?: string[];
  /** Measurement of rollups. Default 'rollup'. */
  rollupMeasurement?: string;
  /** The rollup field read for each metric. Default 'mean'. */
  stat?: string;
}

/** Rollup fields a query can read (see the point schema in ../lib/store/points). */
export const ROLLUP_STATS = ['mean', 'min', 'max', 'sum', 'count', 'stddev', 'first', 'last', 'p50', 'p90', 'p95', 'p99', 'delta', 'rate'] as const;
export const DEFAULT_LEVELS = ['1m', '1h', '1d'];
/** 'auto' reads raw readings for ranges up to this long... */
export const AUTO_RAW_MS = 6 * 3_600_000;
/** ...and otherwise the finest level that gives at most this many windows per series. */
export const AUTO_MAX_WINDOWS = 1500;

const LEVEL_RE = /^(\d+)(ms|s|m|h|d|w|mo|y)$/;
const LEVEL_UNIT_MS: Record<string, number> = { ...UNIT_MS, mo: 30 * 86_400_000, y: 365 * 86_400_000 };

/** Nominal length of a level label ("1m" -> 60000, "1mo" -> 30 days), or undefined when it is not one. */
export function levelMs(level: string): number | undefined {
  const m = LEVEL_RE.exec(level);
  if (!m) return undefined;
  const ms = Number(m[1]) * LEVEL_UNIT_MS[m[2]];
  return ms > 0 ? ms : undefined;
}

/** One backend query of a plan; `metric` is set for rollup queries (the series' field becomes it). */
export interface PlannedQuery {
  query: RangeQuery;
  metric?: string;
}

/** What a query from a flow resolves to: the level read and the backend queries (one per metric for rollups). */
export interface QueryPlan {
  level: string;
  stat?: string;
  queries: PlannedQuery[];
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
export const MAX_POINTS_LIMIT = 100_000;

function bad(message: string): ThingwireError {
  return new ThingwireError('invalid_query', message);
}

/** "5m" -> 300000; a positive number of ms is taken as it is. */
export function parseDuration(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
  if (typeof v === 'string') {
    const m = DURATION_RE.exec(v.trim());
    if (m) {
      const ms = Number(m[1]) * UNIT_MS[m[2]];
      if (ms > 0) return ms;
    }
  }
  throw bad(`${what} must be a duration such as "30s", "5m", "1h", "7d" (or ms), got ${preview(v)}`);
}

/** A time: ms since epoch, an ISO 8601 string, "now", or "-<duration>" relative to now (nodes/lib/time.ts timeMs). */
export function parseTime(v: unknown, now: number, what: string): number {
  const t = timeMs(v, now);
  if (t !== undefined) return t;
  throw bad(`${what} must be ms since epoch, an ISO 8601 time, "now" or "-1h"-style, got ${preview(v)}`);
}

function list(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const items = typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter((x) => x !== '') : v;
  if (!Array.isArray(items) || items.some((x) => typeof x !== 'string')) throw bad(`${what} must be a list of names, got ${preview(v)}`);
  if (items.length > 1000) throw bad(`${what} has ${items.length} entries; at most 1000`);
  return items as string[];
}

export function resolveQuery(input: unknown, d: QueryDefaults, now: number): RangeQuery {
  const q = (input !== null && typeof input === 'object' && !Array.isArray(input) ? input : {}) as Record<string, unknown>;
  const measurement = q.measurement === undefined ? d.measurement : q.measurement;
  if (!isValidName(measurement)) throw bad(`measurement ${preview(measurement)} is not a valid name`);
  const fields = list(q.fields ?? q.metrics, 'fields') ?? d.fields;
  if (fields.length === 0) throw bad('no fields to read: give msg.payload.fields (or metrics), or set them in the node');
  for (const f of fields) if (!isValidName(f)) throw bad(`field ${preview(f)} is not a valid name`);
  const devices = list(q.devices ?? q.device, 'devices');
  if (devices) for (const dv of devices) if (!isValidDeviceId(dv)) throw bad(`device ${preview(dv)} is not a valid device id`);
  const start = parseTime(q.start ?? d.start, now, 'start');
  const end = q.end === undefined ? now : parseTime(q.end, now, 'end');
  if (!(end > start)) throw bad(`end (${new Date(end).toISOString()}) must be after start (${new Date(start).toISOString()})`);

  let where: Record<string, string> | undefined;
  if (q.where !== undefined) {
    if (q.where === null || typeof q.where !== 'object' || Array.isArray(q.where)) throw bad('where must be an object of tag: value');
    where = {};
    for (const [k, v] of Object.entries(q.where)) {
      if (!isValidName(k) || typeof v !== 'string') throw bad(`where ${preview(k)} must name a tag and give a string value`);
      where[k] = v;
    }
  }

  const out: RangeQuery = { measurement, fields, start, end };
  if (devices && devices.length > 0) out.devices = devices;
  if (where) out.where = where;
  const bucketIn = q.bucket === undefined ? d.bucket : q.bucket;
  if (bucketIn !== '' && bucketIn !== undefined && bucketIn !== null && bucketIn !== 'none') {
    out.bucketMs = parseDuration(bucketIn, 'bucket');
    if (out.bucketMs < 1) throw bad(`bucket ${preview(bucketIn)} must be at least 1ms`);
    const agg = q.agg === undefined ? d.agg : q.agg;
    if (!(AGGREGATES as readonly unknown[]).includes(agg)) throw bad(`agg must be one of ${AGGREGATES.join(', ')}, got ${preview(agg)}`);
    out.agg = agg as Aggregate;
    if ((end - start) / out.bucketMs > 1_000_000) throw bad(`bucket ${preview(bucketIn)} over this range gives more than 1,000,000 buckets`);
  }
  const mp = q.maxPoints === undefined ? d.maxPoints : q.maxPoints;
  if (mp !== 0 && mp !== undefined && mp !== null) {
    if (typeof mp !== 'number' || !Number.isInteger(mp) || mp < 3 || mp > MAX_POINTS_LIMIT) throw bad(`maxPoints must be a whole number from 3 to ${MAX_POINTS_LIMIT} (0: no limit), got ${preview(mp)}`);
    out.maxPoints = mp;
  }
  return out;
}

/**
 * Resolves a query that may ask for rollups: `level` 'raw' reads readings (resolveQuery); a level
 * label reads that level's rollups (measurement `rollup`, tags level and metric, field `stat`),
 * one backend query per metric; 'auto' reads raw for ranges up to AUTO_RAW_MS and otherwise the
 * finest level with at most AUTO_MAX_WINDOWS windows over the range (the coarsest if none).
 */
export function planQuery(input: unknown, d: QueryDefaults, now: number): QueryPlan {
  const q = (input !== null && typeof input === 'object' && !Array.isArray(input) ? input : {}) as Record<string, unknown>;
  const base = resolveQuery(input, d, now);
  const levelIn = q.level ?? d.level ?? 'raw';
  if (typeof levelIn !== 'string' || levelIn === '') throw bad(`level must be "raw", "auto" or a rollup level, got ${preview(levelIn)}`);
  const levels = d.levels && d.levels.length > 0 ? d.levels : DEFAULT_LEVELS;
  let level = levelIn;
  if (level === 'auto') {
    const range = base.end - base.start;
    level = 'raw';
    if (range > AUTO_RAW_MS) {
      level = levels[levels.length - 1];
      for (const l of levels) {
        const ms = levelMs(l);
        if (ms !== undefined && range / ms <= AUTO_MAX_WINDOWS) {
          level = l;
          break;
        }
      }
    }
  } else if (level !== 'raw' && !levels.includes(level)) {
    throw bad(`level ${preview(level)} is not "raw", "auto" or one of the rollup levels (${levels.join(', ')})`);
  }
  if (level === 'raw') return { level, queries: [{ query: base }] };

  const stat = q.stat ?? d.stat ?? 'mean';
  if (!(ROLLUP_STATS as readonly unknown[]).includes(stat)) throw bad(`stat must be one of ${ROLLUP_STATS.join(', ')}, got ${preview(stat)}`);
  const measurement = q.rollupMeasurement ?? d.rollupMeasurement ?? 'rollup';
  if (!isValidName(measurement)) throw bad(`rollupMeasurement ${preview(measurement)} is not a valid name`);
  const queries = base.fields.map((metric) => ({
    metric,
    query: { ...base, measurement, fields: [stat as string], where: { ...base.where, level, metric } },
  }));
  return { level, stat: stat as string, queries };
}
