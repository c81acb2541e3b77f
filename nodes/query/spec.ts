/**
 * Turns a query as a flow or an HTTP client writes it into a RangeQuery:
 * times as ms, ISO 8601 or relative to now ("-1h", "now"), durations as "5m",
 * lists as arrays or comma-separated text. Every value is checked; a bad one is
 * an invalid_query reject naming it. No Node-RED here.
 */
import { ThingwireError } from '../lib/errors';
import { isValidDeviceId, isValidName, preview } from '../lib/names';
import { AGGREGATES, type Aggregate, type RangeQuery } from '../lib/store/types';

export interface QueryDefaults {
  measurement: string;
  fields: string[];
  /** Default range start, e.g. "-1h". */
  start: string;
  bucket: string;
  agg: Aggregate;
  maxPoints: number;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
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

/** A time: ms since epoch, an ISO 8601 string, "now", or "-<duration>" relative to now. */
export function parseTime(v: unknown, now: number, what: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const s = v.trim();
    if (s === 'now') return now;
    if (s.startsWith('-')) return now - parseDuration(s.slice(1), what);
    if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
      const t = Date.parse(s);
      if (!Number.isNaN(t)) return t;
    }
  }
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
