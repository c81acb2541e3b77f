/**
 * InfluxQL for range queries, and the /query JSON answer turned back into series. Pure: no I/O.
 * Used by the InfluxDB 1.x backend (/query) and by the 2.x/3.x backend (the v1-compatible /query,
 * through a DBRP mapping on 2.x, natively on 3.x).
 *
 * Every string in a RangeQuery may come from a user or a device, so none is ever pasted into the
 * query as it is:
 * - identifiers (measurement, retention policy, field and tag names) are double-quoted;
 * - values (device ids, tag values) are single-quoted string literals;
 * - inside both, `\` becomes `\\`, the quote becomes `\"` or `\'`, and a newline becomes `\n`:
 *   InfluxQL's scanner (influxql.ScanString) knows exactly these four escapes and ends a quoted
 *   token with an error at a raw newline. Every other character (spaces, `;`, `--`, unicode,
 *   tabs) is inert inside quotes.
 * - NUL cannot be written at all (the scanner reads it as end of input) and lone UTF-16 surrogates
 *   cannot be sent as UTF-8: such a string is refused with invalid_value. Line protocol cannot
 *   carry them into a tag or name either, so nothing stored can match it.
 * - times, bucket size and limit are numbers we format ourselves (integers, `ms` unit).
 */
import { ThingwireError } from '../errors';
import { lttb } from './lttb';
import { answerTooLarge, MAX_ANSWER_POINTS } from './query-plan';
import { AGGREGATES, StoreError, type Aggregate, type QueryResult, type RangeQuery, type Series } from './types';

export const DEFAULT_MEASUREMENT = 'telemetry';
/** Default cap on raw rows per series (RangeQuery.limit). */
export const DEFAULT_LIMIT = 100_000;

/** Our aggregates as InfluxQL functions. */
export const INFLUXQL_FUNCTIONS: Readonly<Record<Aggregate, string>> = {
  mean: 'MEAN',
  min: 'MIN',
  max: 'MAX',
  sum: 'SUM',
  count: 'COUNT',
  last: 'LAST',
};

// A lone high surrogate (not followed by a low one) or a lone low surrogate (not after a high one).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const IDENT_SPECIAL = /[\\"\n]/g;
const STRING_SPECIAL = /[\\'\n]/g;

function escapeChar(c: string): string {
  return c === '\n' ? '\\n' : `\\${c}`;
}

function checkText(s: unknown, what: string): string {
  if (typeof s !== 'string') throw new ThingwireError('invalid_value', `${what} must be a string, not ${s === null ? 'null' : typeof s}`);
  if (s.includes('\u0000')) throw new ThingwireError('invalid_value', `${what} ${JSON.stringify(s.slice(0, 40))} contains a NUL character, which InfluxQL cannot carry`);
  if (LONE_SURROGATE.test(s)) throw new ThingwireError('invalid_value', `${what} ${JSON.stringify(s.slice(0, 40))} is not valid unicode (lone surrogate)`);
  return s;
}

/** A double-quoted InfluxQL identifier (measurement, retention policy, field or tag key). */
export function quoteIdent(name: string, what = 'identifier'): string {
  checkText(name, what);
  if (name.length === 0) throw new ThingwireError('invalid_value', `${what} is empty`);
  return `"${name.replace(IDENT_SPECIAL, escapeChar)}"`;
}

/** A single-quoted InfluxQL string literal (tag values, device ids). */
export function quoteString(value: string, what = 'value'): string {
  checkText(value, what);
  return `'${value.replace(STRING_SPECIAL, escapeChar)}'`;
}

/** A time in ms since the epoch as an InfluxQL time literal. */
function timeLiteral(ms: unknown, what: string): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new ThingwireError('invalid_ts', `${what} must be a finite number of ms since the epoch, not ${String(ms)}`);
  return `${Math.trunc(ms)}ms`;
}

function positiveInt(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 1) throw new ThingwireError('invalid_value', `${what} must be a positive number, not ${String(n)}`);
  return Math.trunc(n);
}

export interface InfluxQLOptions {
  /** Retention policy to read from (`FROM "rp"."measurement"`); default: the database's default. */
  rp?: string;
}

/** The aggregate a query asks for: `agg`, or mean when only `bucketMs` is set; undefined for raw points. */
export function aggregateOf(q: RangeQuery): Aggregate | undefined {
  if (q.agg !== undefined) {
    if (!AGGREGATES.includes(q.agg)) throw new ThingwireError('invalid_value', `unknown aggregate ${JSON.stringify(q.agg)}; one of ${AGGREGATES.join(', ')}`);
    return q.agg;
  }
  return q.bucketMs !== undefined ? 'mean' : undefined;
}

/** The requested fields, checked and without duplicates, in the order asked. */
export function fieldsOf(q: RangeQuery): string[] {
  if (!Array.isArray(q.fields) || q.fields.length === 0) throw new ThingwireError('invalid_value', 'a query needs at least one field');
  const out: string[] = [];
  for (const f of q.fields) {
    checkText(f, 'field name');
    if (f === 'time') throw new ThingwireError('invalid_value', 'field name "time" is reserved by InfluxDB');
    if (!out.includes(f)) out.push(f);
  }
  return out;
}

/**
 * The InfluxQL SELECT for a range query: one series per device (GROUP BY "device"), time ascending,
 * at most `limit` rows per series; with `bucketMs`/`agg`, one row per epoch-aligned bucket
 * (`GROUP BY time(<bucketMs>ms)`, `fill(none)`), each field aggregated under its own name.
 */
export function buildRangeQuery(q: RangeQuery, opts: InfluxQLOptions = {}): string {
  const fields = fieldsOf(q);
  const agg = aggregateOf(q);
  const bucketMs = q.bucketMs !== undefined ? positiveInt(q.bucketMs, 'bucketMs') : undefined;
  const limit = q.limit !== undefined ? positiveInt(q.limit, 'limit') : DEFAULT_LIMIT;
  const start = timeLiteral(q.start, 'start');
  const end = timeLiteral(q.end, 'end');
  if (!(Math.trunc(q.end) > Math.trunc(q.start))) throw new ThingwireError('invalid_value', `empty time range: end (${q.end}) must be after start (${q.start})`);

  const select = fields
    .map((f) => {
      const id = quoteIdent(f, 'field name');
      return agg ? `${INFLUXQL_FUNCTIONS[agg]}(${id}) AS ${id}` : id;
    })
    .join(', ');
  const measurement = quoteIdent(q.measurement ?? DEFAULT_MEASUREMENT, 'measurement');
  const from = opts.rp ? `${quoteIdent(opts.rp, 'retention policy')}.${measurement}` : measurement;

  const where = [`time >= ${start}`, `time < ${end}`];
  if (q.devices !== undefined && q.devices !== null) {
    if (!Array.isArray(q.devices)) throw new ThingwireError('invalid_value', 'devices must be an array of device ids');
    const devices = [...new Set(q.devices.map((d) => checkText(d, 'device id')))];
    if (devices.length > 0) where.push(`(${devices.map((d) => `"device" = ${quoteString(d, 'device id')}`).join(' OR ')})`);
  }
  if (q.where) {
    for (const k of Object.keys(q.where).sort()) {
      where.push(`${quoteIdent(k, 'tag name')} = ${quoteString(q.where[k], `tag ${JSON.stringify(k)} value`)}`);
    }
  }

  const groupBy = bucketMs !== undefined ? `GROUP BY time(${bucketMs}ms), "device" fill(none)` : 'GROUP BY "device"';
  return `SELECT ${select} FROM ${from} WHERE ${where.join(' AND ')} ${groupBy} ORDER BY time ASC LIMIT ${limit}`;
}

// ---------------------------------------------------------------------------------------------
// The answer

type Value = number | boolean | string | null;

interface InfluxQLSeries {
  name?: string;
  tags?: Record<string, string>;
  columns?: string[];
  values?: unknown[][];
}

interface InfluxQLStatementResult {
  statement_id?: number;
  error?: string;
  series?: InfluxQLSeries[];
}

/** The /query JSON body, as InfluxDB 1.x and the v1-compatible endpoints of 2.x/3.x answer it. */
export interface InfluxQLResponse {
  results?: InfluxQLStatementResult[];
  error?: string;
}

function toMs(t: unknown): number {
  if (typeof t === 'number') return t;
  // Without epoch=ms the server answers RFC3339 strings: accept them rather than lose the point.
  if (typeof t === 'string') {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
  }
  throw new StoreError(`query answer has a row without a usable time (${JSON.stringify(t)})`, { retryable: false });
}

/**
 * Turns the /query answer (requested with `epoch=ms`) into one Series per device and field, points in
 * time order, rows where the field is null left out. With `q.maxPoints`, each series is downsampled.
 * Throws StoreError on an error inside the answer ("database not found" is retryable: a config problem
 * the operator can fix) and on series that are not the measurement asked for (a server that does not
 * run InfluxQL, such as VictoriaMetrics, answers every /query with its database list).
 */
export function parseQueryResponse(body: unknown, q: RangeQuery, budget = MAX_ANSWER_POINTS): QueryResult {
  if (body === null || typeof body !== 'object') throw new StoreError('query answer is not a JSON object', { retryable: false });
  const res = body as InfluxQLResponse;
  if (typeof res.error === 'string') throw queryError(res.error);
  const measurement = q.measurement ?? DEFAULT_MEASUREMENT;
  const byKey = new Map<string, Series>();
  const order: Series[] = [];
  let total = 0;
  for (const r of res.results ?? []) {
    if (typeof r.error === 'string') throw queryError(r.error);
    for (const s of r.series ?? []) {
      if (s.name !== measurement) {
        throw new StoreError(`query answer holds series ${JSON.stringify(s.name)} instead of measurement ${JSON.stringify(measurement)}: the server does not seem to run InfluxQL`, {
          retryable: false,
          serverMessage: JSON.stringify(s).slice(0, 500),
        });
      }
      const columns = s.columns ?? [];
      const timeAt = columns.indexOf('time');
      if (timeAt < 0) throw new StoreError('query answer has no time column', { retryable: false });
      const { device = '', ...rest } = s.tags ?? {};
      const otherTags = Object.keys(rest).length > 0 ? rest : undefined;
      const tagKey = otherTags ? JSON.stringify(Object.entries(otherTags).sort()) : '';
      for (let c = 0; c < columns.length; c++) {
        if (c === timeAt) continue;
        const field = columns[c];
        const key = `${device}\u0000${field}\u0000${tagKey}`;
        let series = byKey.get(key);
        if (!series) {
          series = { device, field, points: [] };
          if (otherTags) series.tags = otherTags;
          byKey.set(key, series);
          order.push(series);
        }
        for (const row of s.values ?? []) {
          const v = row[c];
          if (v === null || v === undefined) continue;
          series.points.push([toMs(row[timeAt]), v as Value]);
          if (++total > budget) throw answerTooLarge('influxdb query', budget);
        }
      }
    }
  }
  const series = order.filter((s) => s.points.length > 0);
  if (q.maxPoints !== undefined) {
    const max = positiveInt(q.maxPoints, 'maxPoints');
    for (const s of series) s.points = downsample(s.points, max);
  }
  return { series };
}

function queryError(message: string): StoreError {
  const missing = /not found/i.test(message);
  return new StoreError(`query failed: ${message.slice(0, 500)}`, { retryable: missing, status: missing ? 404 : 400, serverMessage: message.slice(0, 500) });
}

/**
 * At most `maxPoints` points: numeric series through largest-triangle-three-buckets (./lttb: keeps the
 * first and last point and the visual shape, spikes included); series holding booleans or strings keep
 * their last `maxPoints` points.
 */
export function downsample(points: Array<[number, Value]>, maxPoints: number): Array<[number, Value]> {
  if (points.length <= maxPoints) return points;
  const numeric = points.every((p) => typeof p[1] === 'number');
  if (!numeric) return points.slice(points.length - maxPoints);
  // lttb keeps exactly maxPoints (1: the first point, 2: first and last).
  return lttb(points as Array<[number, number]>, maxPoints);
}
