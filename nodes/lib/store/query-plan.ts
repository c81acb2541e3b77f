/**
 * A RangeQuery checked and normalised into the plan the embedded store and the warm-tier reader
 * (retention/warm-query.ts) both answer, and the downsampling both apply, so the two read a day the same
 * whichever tier holds it. No I/O here.
 */
import { lttb } from './lttb';
import { AGGREGATES, StoreError, type Aggregate, type RangeQuery } from './types';

export const DEFAULT_MEASUREMENT = 'telemetry';
/** Default cap on rows per series (RangeQuery.limit). */
export const DEFAULT_LIMIT = 100_000;

/**
 * The most points one answer holds over all its series (every backend: the embedded store, the warm-tier reader,
 * InfluxDB's answers in parseQueryResponse, whose bodies are also read no further than answerBytes): ~350 MB of
 * the runtime's heap as [ts, value] pairs, and a JSON body of ~125 MB. `limit` caps a series, not the answer: an
 * hour of raw readings of 1,000 devices with maxPoints 0 was up to 100 million points, and the runtime ran out of
 * memory building them. Past it the query fails with answerTooLarge() instead, before the points are all read.
 * THINGWIRE_QUERY_MAX_POINTS sets another (maxAnswerPoints).
 */
export const MAX_ANSWER_POINTS = 5_000_000;

/** The answer budget: THINGWIRE_QUERY_MAX_POINTS when set (a whole number from 1,000), else MAX_ANSWER_POINTS. */
export function maxAnswerPoints(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.THINGWIRE_QUERY_MAX_POINTS;
  if (raw === undefined || raw.trim() === '') return MAX_ANSWER_POINTS;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1000) throw new StoreError(`THINGWIRE_QUERY_MAX_POINTS must be a whole number of points, at least 1000, got ${JSON.stringify(raw)}`, { retryable: false });
  return n;
}

/** The error of an answer past MAX_ANSWER_POINTS (retryable false, status 413), naming what would make it smaller. */
export function answerTooLarge(who: string, max = MAX_ANSWER_POINTS): StoreError {
  return new StoreError(
    `${who}: the answer has more than ${max.toLocaleString('en-US')} points; narrow the range, the devices or the fields, or ask for maxPoints or buckets`,
    { retryable: false, status: 413 },
  );
}

export interface QueryPlan {
  measurement: string;
  fields: string[];
  devices: string[];
  where: Array<[string, string]>;
  start: number;
  end: number;
  agg?: Aggregate;
  bucketMs?: number;
  limit: number;
  maxPoints?: number;
}

export type PlanValue = number | boolean | string | null;

/** Checks a RangeQuery and turns it into bound values; errors are StoreErrors (400) starting with `who`, e.g. "embedded store query". */
export function planQuery(q: RangeQuery, who: string): QueryPlan {
  const bad = (why: string): StoreError => new StoreError(`${who}: ${why}`, { retryable: false, status: 400 });
  const text = (v: unknown, what: string): string => {
    if (typeof v !== 'string') throw bad(`${what} must be a string, not ${v === null ? 'null' : typeof v}`);
    return v;
  };
  const positiveInt = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 1) throw bad(`${what} must be a positive number, not ${String(v)}`);
    return Math.trunc(v);
  };
  const timeArg = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${what} must be a finite number of ms since the epoch, not ${String(v)}`);
    const t = Math.trunc(v);
    if (!Number.isSafeInteger(t)) throw bad(`${what} ${t} is out of range`);
    return t;
  };
  if (q === null || typeof q !== 'object') throw bad('no query');
  const measurement = q.measurement === undefined || q.measurement === '' ? DEFAULT_MEASUREMENT : text(q.measurement, 'measurement');
  if (!Array.isArray(q.fields) || q.fields.length === 0) throw bad('a query needs at least one field');
  const fields = [...new Set(q.fields.map((f) => text(f, 'field name')))];
  let devices: string[] = [];
  if (q.devices !== undefined && q.devices !== null) {
    if (!Array.isArray(q.devices)) throw bad('devices must be an array of device ids');
    devices = [...new Set(q.devices.map((d) => text(d, 'device id')))];
  }
  const where: Array<[string, string]> = [];
  if (q.where !== undefined && q.where !== null) {
    if (typeof q.where !== 'object' || Array.isArray(q.where)) throw bad('where must be an object of tag: value');
    for (const k of Object.keys(q.where).sort()) where.push([k, text(q.where[k], `tag ${JSON.stringify(k)} value`)]);
  }
  const start = timeArg(q.start, 'start');
  const end = timeArg(q.end, 'end');
  if (!(end > start)) throw bad(`empty time range: end (${q.end}) must be after start (${q.start})`);
  let agg: Aggregate | undefined;
  if (q.agg !== undefined && q.agg !== null) {
    if (!AGGREGATES.includes(q.agg)) throw bad(`unknown aggregate ${JSON.stringify(q.agg)}; one of ${AGGREGATES.join(', ')}`);
    agg = q.agg;
  }
  let bucketMs: number | undefined;
  if (q.bucketMs !== undefined && q.bucketMs !== null) {
    bucketMs = positiveInt(q.bucketMs, 'bucketMs');
    agg ??= 'mean';
  }
  const limit = q.limit !== undefined && q.limit !== null ? positiveInt(q.limit, 'limit') : DEFAULT_LIMIT;
  const maxPoints = q.maxPoints !== undefined && q.maxPoints !== null && q.maxPoints !== 0 ? positiveInt(q.maxPoints, 'maxPoints') : undefined;
  return { measurement, fields, devices, where, start, end, agg, bucketMs, limit, maxPoints };
}

/** At most maxPoints points, as the InfluxDB backends do it: numbers through LTTB; other series keep their newest points. */
export function downsample(points: Array<[number, PlanValue]>, maxPoints: number): Array<[number, PlanValue]> {
  if (points.length <= maxPoints) return points;
  if (maxPoints === 1) return [points[points.length - 1]];
  const numeric = points.every((p) => typeof p[1] === 'number');
  if (!numeric) return points.slice(points.length - maxPoints);
  if (maxPoints === 2) return [points[0], points[points.length - 1]];
  return lttb(points as Array<[number, number]>, maxPoints);
}

/**
 * The reduction a raw query with maxPoints gets in the database before LTTB: M4 (Jugel et al., "M4: A
 * Visualization-Oriented Time Series Data Aggregation", VLDB 2014). A numeric series of more than
 * M4_PER_BUCKET x maxPoints values in the range is cut into maxPoints slices of equal time over its own
 * extent [first ts, last ts], and of each slice only the first, the last, the smallest and the largest value
 * are read; LTTB then picks maxPoints of those. A line chart drawn from them shows every slice's extremes and
 * ends, so spikes survive, and the rows read are at most M4_PER_BUCKET x maxPoints a series however many the
 * range holds (a minute-refreshed one-hour chart of 1,000 devices at 300 readings/s each read 18 million rows
 * into the event loop without it). Smaller series, and series with non-numeric values in the range, are read
 * raw as before, so their answers do not change.
 *
 * Every tier applies it the same way (embedded store, warm-tier reader, the merge of both: see m4), with these
 * tie-breaks: first = smallest (ts, value), last = largest (ts, value), smallest = smallest (value, ts),
 * largest = largest value at the earliest ts; the distinct points ordered by (ts, value).
 */
export const M4_PER_BUCKET = 4;

/**
 * The number of M4 slices for a plan (its maxPoints), or undefined when the plan reads raw rows: aggregates
 * and buckets are already bounded, and a `limit` under M4_PER_BUCKET x maxPoints keeps its meaning (the
 * earliest `limit` rows, then downsampled).
 */
export function m4Buckets(plan: QueryPlan): number | undefined {
  if (plan.agg !== undefined || plan.maxPoints === undefined) return undefined;
  return M4_PER_BUCKET * plan.maxPoints <= plan.limit ? plan.maxPoints : undefined;
}

/** floor((ts - lo) * buckets / (hi - lo + 1)) exactly, for whole ms lo <= ts <= hi (the databases compute it in BIGINT). */
export function m4Slice(ts: number, lo: number, hi: number, buckets: number): number {
  const p = (ts - lo) * buckets;
  const d = hi - lo + 1;
  if (p > Number.MAX_SAFE_INTEGER) return Number((BigInt(ts - lo) * BigInt(buckets)) / BigInt(d));
  // Exact: p and d are whole numbers under 2^53, and p / d = k - r / d (r >= 1) could only round up to k if
  // 1 / d were under half a unit in the last place of k, that is if k * d (> p) were over 2^53.
  return Math.floor(p / d);
}

/**
 * The M4 reduction of one series (points in ts order, values numbers) into `buckets` slices, as the databases
 * answer it (see M4_PER_BUCKET); the points themselves when there are no more than M4_PER_BUCKET x buckets.
 */
export function m4(points: ReadonlyArray<[number, number]>, buckets: number): Array<[number, number]> {
  const n = points.length;
  if (n <= M4_PER_BUCKET * buckets) return points as Array<[number, number]>;
  const lo = points[0][0];
  const hi = points[n - 1][0];
  const out: Array<[number, number]> = [];
  let i = 0;
  while (i < n) {
    const k = m4Slice(points[i][0], lo, hi, buckets);
    let first = points[i];
    let last = first;
    let min = first;
    let max = first;
    for (i++; i < n && m4Slice(points[i][0], lo, hi, buckets) === k; i++) {
      const p = points[i];
      if (p[0] < first[0] || (p[0] === first[0] && p[1] < first[1])) first = p;
      if (p[0] > last[0] || (p[0] === last[0] && p[1] > last[1])) last = p;
      if (p[1] < min[1] || (p[1] === min[1] && p[0] < min[0])) min = p;
      if (p[1] > max[1] || (p[1] === max[1] && p[0] < max[0])) max = p;
    }
    const picked = [first, last, min, max].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (let j = 0; j < picked.length; j++) {
      const p = picked[j];
      const prev = out[out.length - 1];
      if (prev === undefined || prev[0] !== p[0] || prev[1] !== p[1]) out.push(p);
    }
  }
  return out;
}
