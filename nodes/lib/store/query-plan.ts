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
