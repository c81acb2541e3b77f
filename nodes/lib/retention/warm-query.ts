/**
 * Range queries over warm-tier Parquet partition files (parquet.ts), answered exactly as the embedded
 * store answers them (embedded.ts: its header and runQuery), so a query that spans hot and warm days reads
 * the same whichever tier holds a day:
 * - one Series per device and field, series ordered by device then field (DuckDB's byte order); series
 *   that differ only in other tags are merged (narrow them with `where`); no `tags` in the answer;
 * - `where` tag equality filters (a `device` key filters the device tag), `devices`, `fields`, [start, end);
 * - `bucketMs` buckets aligned to the epoch (floored for negative times too), with `agg` (default mean):
 *   mean/min/max/sum over floats and integers, count over values of every type, last = the value with the
 *   largest ts (at equal ts: float, then integer, then boolean, then string, as the embedded store merges
 *   its per-type tables); `agg` without `bucketMs` = one point at `start`; empty buckets are left out;
 * - `limit` rows (or buckets) per answer series, earliest first (default 100,000); `maxPoints` downsamples
 *   numeric series with LTTB (after the M4 reduction of large ones, see M4_PER_BUCKET) and keeps the newest
 *   points of others; integers come back as numbers;
 * - at most maxAnswerPoints() points read over all series (or the given budget): past it, a StoreError (413).
 * Every value from the query, and the file list, is a bound parameter (read_parquet($1) takes a list).
 *
 * mergeResults joins the answers of one query over disjoint time ranges (warm days, then hot): points
 * concatenated in time order; a bucket that straddles a boundary (equal ts in two parts) is combined by the
 * aggregate: min, max, sum and count exactly, last = the later part's, mean = the mean of the parts' means
 * (an approximation: the parts' counts are not in their answers). limit and maxPoints are applied again,
 * so query the parts without maxPoints.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { BIGINT, DuckDBStructValue, LIST, VARCHAR, listValue, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import { answerTooLarge, downsample, m4, m4Buckets, maxAnswerPoints, planQuery, M4_PER_BUCKET, type QueryPlan } from '../store/query-plan';
import { StoreError, type Aggregate, type QueryResult, type RangeQuery, type Series } from '../store/types';
import { withDb } from './parquet';

export { DEFAULT_LIMIT } from '../store/query-plan';

type Value = number | boolean | string | null;
type Point2 = [number, Value];

function badQuery(why: string): StoreError {
  return new StoreError(`warm query: ${why}`, { retryable: false, status: 400 });
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}



/*
 * SQL. $1 the files, $2 measurement, $3 fields, $4/$5 start/end, then the bucket size (when bucketed) and
 * the filters. `kind` orders equal times as the embedded store's per-type tables do (float, int, bool, str).
 */
const KIND = 'CASE WHEN v_float IS NOT NULL THEN 0 WHEN v_int IS NOT NULL THEN 1 WHEN v_bool IS NOT NULL THEN 2 ELSE 3 END';
const NUM = 'coalesce(v_float, v_int::DOUBLE)';

interface Sql {
  sql: string;
  params: DuckDBValue[];
  types: DuckDBType[];
}

function buildSql(files: string[], plan: QueryPlan): Sql {
  const params: DuckDBValue[] = [listValue(files), plan.measurement, listValue(plan.fields), BigInt(plan.start), BigInt(plan.end)];
  const types: DuckDBType[] = [LIST(VARCHAR), VARCHAR, LIST(VARCHAR), BIGINT, BIGINT];
  const bind = (v: DuckDBValue, t: DuckDBType): string => {
    params.push(v);
    types.push(t);
    return `$${params.length}`;
  };
  const bucketed = plan.bucketMs !== undefined;
  const b = bucketed ? bind(BigInt(plan.bucketMs!), BIGINT) : '';
  let filter = 'measurement = $2 AND list_contains($3, field) AND ts >= $4 AND ts < $5';
  if (plan.devices.length > 0) filter += ` AND list_contains(${bind(listValue(plan.devices), LIST(VARCHAR))}, device)`;
  for (const [k, v] of plan.where) {
    if (k === 'device') filter += ` AND device = ${bind(v, VARCHAR)}`;
    else filter += ` AND tags[${bind(k, VARCHAR)}] = ${bind(v, VARCHAR)}`;
  }
  const src = `SELECT device, field, ts, ${KIND} AS kind, ${NUM} AS num, v_bool AS b, v_str AS s FROM read_parquet($1) WHERE ${filter}`;
  const t = bucketed ? `(ts - ((ts % ${b}) + ${b}) % ${b})` : '$4';
  let sql: string;
  const slices = m4Buckets(plan);
  if (slices !== undefined) {
    // Raw, with the M4 reduction of large numeric series, as the embedded store's M4_SQL: a series with a
    // non-numeric value in the range is read raw.
    const over = bind(BigInt(M4_PER_BUCKET * slices), BIGINT);
    const n = bind(BigInt(slices), BIGINT);
    sql = `WITH r AS NOT MATERIALIZED (${src}),
      big AS (SELECT device, field, min(ts) AS lo, max(ts) AS hi FROM r GROUP BY device, field
        HAVING count(*) FILTER (WHERE kind > 1) = 0 AND count(*) > ${over}),
      a AS (SELECT r.device, r.field, min({'t': r.ts, 'v': r.num}) AS f, max({'t': r.ts, 'v': r.num}) AS l,
          min({'v': r.num, 't': r.ts}) AS lo, max({'v': r.num, 'n': -r.ts}) AS hi
        FROM r JOIN big USING (device, field) GROUP BY r.device, r.field, (r.ts - big.lo) * ${n} // (big.hi - big.lo + 1))
      SELECT device, field, ts::DOUBLE AS t, kind, num, b, s FROM r ANTI JOIN big USING (device, field)
      UNION ALL SELECT DISTINCT device, field, t::DOUBLE AS t, 0 AS kind, v AS num, NULL::BOOLEAN AS b, NULL::VARCHAR AS s FROM (
        SELECT device, field, f.t AS t, f.v AS v FROM a UNION ALL SELECT device, field, l.t, l.v FROM a
        UNION ALL SELECT device, field, lo.t, lo.v FROM a UNION ALL SELECT device, field, -hi.n, hi.v FROM a)
      ORDER BY device, field, t, kind, num`;
  } else if (plan.agg === undefined) {
    sql = `SELECT device, field, ts::DOUBLE AS t, kind, num, b, s FROM (${src}) ORDER BY device, field, ts, kind`;
  } else if (plan.agg === 'last') {
    // The row with the largest ts; at equal ts the lowest kind (ts < 2^53, so ts * 4 cannot overflow).
    sql = `SELECT device, field, ${t}::DOUBLE AS t, arg_max({'kind': kind, 'num': num, 'b': b, 's': s}, ts * 4 + (3 - kind)) AS v
      FROM (${src}) GROUP BY ALL ORDER BY 1, 2, 3`;
  } else {
    const fn = { mean: 'avg(num)', min: 'min(num)', max: 'max(num)', sum: 'sum(num)', count: 'count(*)::DOUBLE' }[plan.agg];
    const numeric = plan.agg === 'count' ? '' : ' WHERE num IS NOT NULL';
    sql = `SELECT device, field, ${t}::DOUBLE AS t, ${fn} AS v FROM (${src})${numeric} GROUP BY ALL ORDER BY 1, 2, 3`;
  }
  return { sql, params, types };
}

function valueOf(kind: number, num: Value, b: Value, s: Value): Value {
  return kind <= 1 ? num : kind === 2 ? b : s;
}

/**
 * Answers a range query from partition files (see the header). Files that do not exist or are not
 * partition files fail the query (StoreError, retryable: the tier may be moving them); an empty list
 * answers no series.
 */
export async function queryParquet(files: string[], q: RangeQuery, budget = maxAnswerPoints()): Promise<QueryResult> {
  const plan = planQuery(q, 'warm query');
  if (!Array.isArray(files) || files.some((f) => typeof f !== 'string' || f === '')) throw badQuery('files must be an array of file paths');
  if (files.length === 0) return { series: [] };
  const { sql, params, types } = buildSql(files, plan);
  const spill = path.join(os.tmpdir(), `thingwire-warm-query-${randomBytes(6).toString('hex')}`);
  const series: Series[] = [];
  try {
    await withDb(spill, async (conn) => {
      const result = await conn.stream(sql, params, types);
      let cur: Series | undefined;
      let total = 0;
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        const cols: DuckDBValue[][] = [];
        for (let c = 0; c < chunk.columnCount; c++) cols.push(chunk.getColumnValues(c));
        const [dev, fld, t] = cols as [string[], string[], number[]];
        total += dev.length;
        if (total > budget) throw answerTooLarge('warm query', budget);
        for (let i = 0; i < dev.length; i++) {
          if (cur === undefined || cur.device !== dev[i] || cur.field !== fld[i]) {
            cur = { device: dev[i], field: fld[i], points: [] };
            series.push(cur);
          }
          if (cur.points.length >= plan.limit) continue;
          let v: Value;
          if (plan.agg === undefined) v = valueOf(cols[3][i] as number, cols[4][i] as Value, cols[5][i] as Value, cols[6][i] as Value);
          else if (plan.agg === 'last') {
            const e = (cols[3][i] as DuckDBStructValue).entries;
            v = valueOf(e.kind as number, e.num as Value, e.b as Value, e.s as Value);
          } else v = cols[3][i] as Value;
          if (v !== null) cur.points.push([t[i], v]);
        }
      }
    });
  } catch (e) {
    if (e instanceof StoreError && !e.retryable) throw e;
    throw new StoreError(`warm query over ${files.length} partition file(s) failed: ${errorMessage(e)}`, { retryable: true, cause: e });
  } finally {
    fs.rmSync(spill, { recursive: true, force: true });
  }
  const out = series.filter((x) => x.points.length > 0);
  if (plan.maxPoints !== undefined) for (const x of out) x.points = downsample(x.points, plan.maxPoints);
  return { series: out };
}

/** Compares strings by code point: the order of their UTF-8 bytes, DuckDB's ORDER BY for VARCHAR. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (a code point past U+FFFF) sorts after every other UTF-16 unit.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

function tagsKey(tags: Record<string, string> | undefined): string {
  if (tags === undefined) return '';
  const keys = Object.keys(tags).sort();
  return JSON.stringify(keys.map((k) => [k, tags[k]]));
}

/** Combines the values of one bucket from several parts (in part order) by the aggregate. */
function combine(agg: Aggregate, values: Value[]): Value {
  const vs = values.filter((v) => v !== null);
  if (vs.length === 0) return null;
  if (vs.length === 1 || agg === 'last') return vs[vs.length - 1];
  const nums = vs as number[];
  switch (agg) {
    case 'min':
      return nums.reduce((a, b) => (b < a ? b : a));
    case 'max':
      return nums.reduce((a, b) => (b > a ? b : a));
    case 'sum':
    case 'count':
      return nums.reduce((a, b) => a + b, 0);
    default:
      // mean: the mean of the parts' means (their counts are not known here).
      return nums.reduce((a, b) => a + b, 0) / nums.length;
  }
}

/**
 * Merges the answers of one query over disjoint time ranges, given oldest part first (see the header).
 * Series are matched by device, field and tags (when present), and ordered as queryParquet orders them.
 */
export function mergeResults(parts: QueryResult[], q: RangeQuery): QueryResult {
  const plan = planQuery(q, 'warm query');
  const bySeries = new Map<string, { series: Series; perPart: Point2[][] }>();
  parts.forEach((part, pi) => {
    for (const s of part.series) {
      const key = JSON.stringify([s.device, s.field, tagsKey(s.tags)]);
      let entry = bySeries.get(key);
      if (entry === undefined) {
        const series: Series = { device: s.device, field: s.field, points: [] };
        if (s.tags !== undefined) series.tags = { ...s.tags };
        entry = { series, perPart: parts.map(() => []) };
        bySeries.set(key, entry);
      }
      entry.perPart[pi].push(...s.points);
    }
  });
  const out: Series[] = [];
  for (const { series, perPart } of bySeries.values()) {
    let points: Point2[];
    if (plan.agg === undefined) {
      points = perPart.flat();
      points.sort((a, b) => a[0] - b[0]);
    } else {
      // One point per bucket start; without bucketMs every part's single point belongs at `start`.
      const buckets = new Map<number, Value[]>();
      for (const list of perPart) {
        for (const [t, v] of list) {
          const ts = plan.bucketMs === undefined ? plan.start : t;
          const vs = buckets.get(ts);
          if (vs === undefined) buckets.set(ts, [v]);
          else vs.push(v);
        }
      }
      points = [...buckets.entries()].map(([t, vs]): Point2 => [t, combine(plan.agg!, vs)]);
      points.sort((a, b) => a[0] - b[0]);
    }
    // The M4 reduction before the limit, as the stores apply it (on every row of the range; see m4Buckets).
    const slices = m4Buckets(plan);
    if (slices !== undefined && points.length > M4_PER_BUCKET * slices && points.every((p) => typeof p[1] === 'number')) {
      points = m4(points as Array<[number, number]>, slices);
    }
    if (points.length > plan.limit) points = points.slice(0, plan.limit);
    if (points.length === 0) continue;
    if (plan.maxPoints !== undefined) points = downsample(points, plan.maxPoints);
    series.points = points;
    out.push(series);
  }
  out.sort((a, b) => compareCodePoints(a.device, b.device) || compareCodePoints(a.field, b.field) || compareCodePoints(tagsKey(a.tags), tagsKey(b.tags)));
  return { series: out };
}
