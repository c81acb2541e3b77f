/**
 * Warm-tier queries (nodes/lib/retention/warm-query.ts) against the embedded store (a real DuckDB file in
 * a temp dir): the same data written to the store through line protocol and to one Parquet file per
 * measurement and UTC day answers every kind of range query identically; answers over disjoint day sets,
 * merged, equal the answer over all days.
 *
 * Values are multiples of 1/4 and small integers, so sums and means are exact whatever order DuckDB adds
 * them in (the embedded store and the Parquet reader may add them in different orders).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { writeParquet, type ExportRow } from '../../nodes/lib/retention/parquet';
import { mergeResults, queryParquet } from '../../nodes/lib/retention/warm-query';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';
import { StoreError, type Aggregate, type FieldValue, type Point, type QueryResult, type RangeQuery } from '../../nodes/lib/store/types';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MIN = 60_000;
const DAYS = 4;
/** A UTC day whose number is even: 2-day buckets start on it. */
const T0 = (() => {
  const base = Date.UTC(2026, 0, 4);
  return base - ((base / DAY) % 2) * DAY;
})();
const END = T0 + DAYS * DAY;
const DEVICES = ['dev-a', 'dev-b', 'dev "c" \\ ü'];
const AGGS: Aggregate[] = ['mean', 'min', 'max', 'sum', 'count', 'last'];
const TELEMETRY_FIELDS = ['temp', 'count', 'on', 'state', 'mixed', 'big'];

/** Points of both measurements, each (series, ts) once. */
function makePoints(): Point[] {
  const points: Point[] = [];
  for (let slot = 0; slot < (DAYS * DAY) / (20 * MIN); slot++) {
    const t = T0 + slot * 20 * MIN;
    DEVICES.forEach((device, d) => {
      // dev-b reports from two sites at different minutes: series that differ only in `site` merge.
      const site = device === 'dev-b' ? (slot % 2 === 0 ? 'north' : 'south') : undefined;
      const ts = t + (site === 'south' ? 7 * MIN : 0) + d * 1000;
      const fields: Record<string, FieldValue> = {
        temp: (((slot * 7 + d * 13) % 97) - 40) / 4,
        count: BigInt((slot * 3 + d) % 50),
        on: (slot + d) % 3 === 0,
        state: ['idle', 'run', "it's \"hot\"", '', '温度 🌡️'][(slot + d) % 5],
      };
      // One field whose type changes over time (the store keeps one table per type).
      const m = slot % 4;
      fields.mixed = m === 0 ? slot / 4 : m === 1 ? BigInt(slot) : m === 2 ? 'text' : slot % 8 === 3;
      if (slot % 50 === 0) fields.big = slot % 100 === 0 ? 2n ** 63n - 1n : -(2n ** 63n);
      points.push({ measurement: 'telemetry', tags: site ? { device, site } : { device }, fields, ts });
    });
    // Rollup-like rows: level/metric tags, humidity 30 s after temperature (no equal times when merged).
    if (slot % 3 === 0) {
      for (const device of DEVICES.slice(0, 2)) {
        for (const [metric, off] of [
          ['temperature', 0],
          ['humidity', 30_000],
        ] as const) {
          const base = ((slot % 40) + (metric === 'humidity' ? 100 : 0)) / 2;
          const level = slot % 9 === 0 ? '1h' : '1m';
          points.push({ measurement: 'rollup', tags: { device, level, metric }, fields: { mean: base, min: base - 1, max: base + 1, n: BigInt(slot % 7) }, ts: t + off });
        }
      }
    }
    // A measurement without a device tag.
    if (slot % 6 === 0) points.push({ measurement: 'system', tags: { host: 'gw' }, fields: { load: (slot % 16) / 8 }, ts: t });
  }
  return points;
}

/**
 * Around the epoch (negative times: buckets floor), one series per value type under tag `src`, all at the
 * same times: merged, equal times order float, integer, boolean, string, as the store's per-type tables do.
 */
function edgePoints(): Point[] {
  const points: Point[] = [];
  for (let ts = -5 * HOUR; ts < 5 * HOUR; ts += 25 * MIN) {
    const i = ts / (25 * MIN);
    points.push({ measurement: 'edge', tags: { device: 'd', src: 'a' }, fields: { v: i / 2 }, ts });
    points.push({ measurement: 'edge', tags: { device: 'd', src: 'b' }, fields: { v: BigInt(i * 3) }, ts });
    points.push({ measurement: 'edge', tags: { device: 'd', src: 'c' }, fields: { v: `s${i}` }, ts });
    points.push({ measurement: 'edge', tags: { device: 'd', src: 'd' }, fields: { v: i % 2 === 0 }, ts });
  }
  return points;
}

function rowsOf(points: Point[]): ExportRow[] {
  const rows: ExportRow[] = [];
  for (const p of points) {
    const { device = '', ...tags } = p.tags;
    for (const [field, value] of Object.entries(p.fields)) rows.push({ measurement: p.measurement, device, tags, field, ts: p.ts, value });
  }
  return rows;
}

let tmp: string;
let backend: EmbeddedBackend;
/** files[day] = the Parquet files of that day (one per measurement). */
const files: string[][] = [];
let edgeFile: string;
const all = (): string[] => [...files.flat(), edgeFile];
const days = (...ds: number[]): string[] => ds.flatMap((d) => files[d]);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-warm-query-'));
  backend = await EmbeddedBackend.open({ path: path.join(tmp, 'hot.duckdb') });
  const points = [...makePoints(), ...edgePoints()];
  for (let o = 0; o < points.length; o += 1000) {
    const lines = points.slice(o, o + 1000).map(encodePoint);
    await backend.write({ lines: lines.join('\n'), count: lines.length });
  }
  const rows = rowsOf(points);
  for (let d = 0; d < DAYS; d++) {
    files.push([]);
    for (const measurement of ['telemetry', 'rollup', 'system']) {
      const dayRows = rows.filter((r) => r.measurement === measurement && r.ts >= T0 + d * DAY && r.ts < T0 + (d + 1) * DAY);
      const file = path.join(tmp, 'warm', measurement, `day '${d}'.parquet`);
      // Handed over in pieces and out of order: the file sorts them.
      const stats = await writeParquet(file, async (sink) => {
        const half = Math.floor(dayRows.length / 2);
        await sink(dayRows.slice(half));
        await sink(dayRows.slice(0, half));
      });
      expect(stats.rows).toBe(dayRows.length);
      files[d].push(file);
    }
  }
  edgeFile = path.join(tmp, 'warm', 'edge.parquet');
  await writeParquet(edgeFile, (sink) => sink(rowsOf(edgePoints())));
}, 60_000);

afterAll(async () => {
  await backend?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function q(partial: Partial<RangeQuery> = {}): RangeQuery {
  return { measurement: 'telemetry', fields: TELEMETRY_FIELDS, start: T0, end: END, ...partial };
}

const MID = { start: T0 + DAY + 5 * HOUR + 123, end: T0 + 3 * DAY + 2 * HOUR };

const QUERIES: Array<[string, RangeQuery]> = [
  ['raw, every field', q()],
  ['raw, part of the range', q(MID)],
  ['raw, devices filter', q({ devices: ['dev-a', 'dev "c" \\ ü'] })],
  ['raw, where site', q({ where: { site: 'north' } })],
  ['raw, where device', q({ where: { device: 'dev-b' } })],
  ['raw, one field that only some devices have', q({ fields: ['big', 'nope'] })],
  ['raw, no such device', q({ devices: ['nobody'] })],
  ['raw, no such tag value', q({ where: { site: 'east' } })],
  ['rollup raw, level and metric', q({ measurement: 'rollup', fields: ['mean', 'min', 'max', 'n'], where: { level: '1h', metric: 'temperature' } })],
  ['rollup raw, level only (metrics merge)', q({ measurement: 'rollup', fields: ['mean'], where: { level: '1m' } })],
  ['no device tag', q({ measurement: 'system', fields: ['load'] })],
  ...AGGS.map((agg): [string, RangeQuery] => [`3 h buckets, ${agg}`, q({ fields: ['temp', 'count', 'on', 'state', 'mixed'], bucketMs: 3 * HOUR, agg })]),
  ...AGGS.map((agg): [string, RangeQuery] => [`odd buckets in part of the range, ${agg}`, q({ ...MID, fields: ['temp', 'mixed', 'state'], bucketMs: 7 * MIN + 13_000, agg })]),
  ...AGGS.map((agg): [string, RangeQuery] => [`no buckets, ${agg}`, q({ ...MID, agg })]),
  ...AGGS.map((agg): [string, RangeQuery] => [`rollup 1 d buckets, ${agg}`, q({ measurement: 'rollup', fields: ['mean', 'n'], where: { level: '1m' }, bucketMs: DAY, agg })]),
  ['bucket without agg (mean)', q({ fields: ['temp'], bucketMs: HOUR })],
  ['limit, raw', q({ limit: 7 })],
  ['limit, buckets', q({ fields: ['temp', 'state'], bucketMs: HOUR, agg: 'last', limit: 3 })],
  ['maxPoints, raw (LTTB for numbers, newest for others)', q({ maxPoints: 25 })],
  ['maxPoints 1 and 2', q({ fields: ['temp', 'state'], maxPoints: 2 })],
  ['maxPoints, buckets', q({ fields: ['temp'], bucketMs: HOUR, agg: 'max', maxPoints: 10 })],
  ['limit and maxPoints', q({ fields: ['temp', 'on'], limit: 40, maxPoints: 9 })],
];

const EDGE = (partial: Partial<RangeQuery>): RangeQuery => q({ measurement: 'edge', fields: ['v'], start: -6 * HOUR, end: 6 * HOUR, ...partial });
QUERIES.push(
  ['around the epoch, raw (equal times of four types)', EDGE({})],
  ['around the epoch, raw with limit', EDGE({ limit: 10 })],
  ...AGGS.map((agg): [string, RangeQuery] => [`around the epoch, 1 h buckets, ${agg}`, EDGE({ bucketMs: HOUR, agg })]),
  ['around the epoch, 7 min buckets from a negative start, count', EDGE({ start: -4 * HOUR - 1, bucketMs: 7 * MIN, agg: 'count' })],
  ['around the epoch, no buckets, last', EDGE({ agg: 'last' })],
);

const EMPTY = new Set(['raw, no such device', 'raw, no such tag value']);

describe('queryParquet answers as the embedded store does', () => {
  test.each(QUERIES)('%s', async (name, query) => {
    const hot = await backend.query(query);
    if (EMPTY.has(name)) expect(hot.series).toEqual([]);
    else expect(hot.series.length).toBeGreaterThan(0);
    const warm = await queryParquet(all(), query);
    expect(warm).toStrictEqual(hot);
  });

  test('the answers are not trivial: merged series, mixed types, int64 as numbers', async () => {
    const r = await queryParquet(all(), q({ devices: ['dev-b'], fields: ['temp', 'mixed', 'big'] }));
    const temp = r.series.find((s) => s.field === 'temp')!;
    // north and south merged into one series, in time order.
    expect(temp.points).toHaveLength((DAYS * DAY) / (20 * MIN));
    expect(temp.points.every((p, i) => i === 0 || p[0] > temp.points[i - 1][0])).toBe(true);
    const mixed = r.series.find((s) => s.field === 'mixed')!;
    expect(new Set(mixed.points.map((p) => typeof p[1]))).toEqual(new Set(['number', 'string', 'boolean']));
    const big = r.series.find((s) => s.field === 'big')!;
    expect(big.points.map((p) => p[1])).toContain(2 ** 63); // 2^63 - 1 as a double
    expect(big.points.map((p) => p[1])).toContain(-(2 ** 63));
  });

  test('an answer past the point budget: StoreError 413, not retryable; within it the same query answers', async () => {
    const whole = await queryParquet(all(), q());
    const n = whole.series.reduce((k, x) => k + x.points.length, 0);
    expect(n).toBeGreaterThan(1000);
    let err: unknown;
    await queryParquet(all(), q(), n - 1).catch((e: unknown) => (err = e));
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).status).toBe(413);
    expect((err as StoreError).retryable).toBe(false);
    expect((err as StoreError).message).toMatch(/^warm query: the answer has more than [\d,]+ points; narrow the range/);
    expect(await queryParquet(all(), q(), n)).toStrictEqual(whole);
  });

  test('no files: no series; a missing file or a bad query: StoreError', async () => {
    expect(await queryParquet([], q())).toEqual({ series: [] });
    await expect(queryParquet([path.join(tmp, 'missing.parquet')], q())).rejects.toThrow(StoreError);
    await expect(queryParquet(all(), q({ fields: [] }))).rejects.toThrow(/at least one field/);
    await expect(queryParquet(all(), q({ start: END, end: T0 }))).rejects.toThrow(/empty time range/);
    await expect(queryParquet(all(), q({ agg: 'median' as Aggregate }))).rejects.toThrow(/unknown aggregate/);
  });

  test('hostile query values are data, not SQL', async () => {
    const hostile = "x') OR 1=1; DROP TABLE t; --";
    const r = await queryParquet(all(), q({ devices: [hostile], where: { [hostile]: hostile } }));
    expect(r).toEqual({ series: [] });
    const quoteDevice = await queryParquet(all(), q({ devices: ['dev "c" \\ ü'], fields: ['temp'] }));
    expect(quoteDevice.series.map((s) => s.device)).toEqual(['dev "c" \\ ü']);
  });
});

describe('mergeResults', () => {
  async function merged(query: RangeQuery, split: number[][]): Promise<QueryResult> {
    const partQuery = { ...query, maxPoints: undefined };
    const parts: QueryResult[] = [];
    for (const ds of split) parts.push(await queryParquet(days(...ds), partQuery));
    return mergeResults(parts, query);
  }

  const DAY_ALIGNED: Array<[string, RangeQuery]> = [
    ['raw', q()],
    ['raw with limit', q({ limit: 100 })],
    ['raw with maxPoints', q({ fields: ['temp', 'state'], maxPoints: 30 })],
    ...(['min', 'max', 'sum', 'count', 'mean', 'last'] as Aggregate[]).map((agg): [string, RangeQuery] => [`1 d buckets, ${agg}`, q({ fields: ['temp', 'count', 'mixed'], bucketMs: DAY, agg })]),
    ['rollup 1 h buckets, sum', q({ measurement: 'rollup', fields: ['mean', 'n'], where: { level: '1m' }, bucketMs: HOUR, agg: 'sum' })],
  ];

  test.each(DAY_ALIGNED)('over days 0-1 and 2-3 equals the query over all days: %s', async (_name, query) => {
    const whole = await backend.query(query);
    expect(whole.series.length).toBeGreaterThan(0);
    expect(await merged(query, [
      [0, 1],
      [2, 3],
    ])).toStrictEqual(whole);
    expect(await merged(query, [[0], [1], [2], [3]])).toStrictEqual(whole);
  });

  test.each(['min', 'max', 'sum', 'count', 'last'] as Aggregate[])('a bucket straddling the parts is combined exactly: %s', async (agg) => {
    const query = q({ fields: ['temp', 'count', 'state'], bucketMs: 2 * DAY, agg });
    const whole = await backend.query(query);
    const a = await queryParquet(days(0), query);
    const b = await queryParquet(days(1, 2, 3), query);
    // The bucket at T0 is in both parts.
    expect(a.series[0].points[0][0]).toBe(T0);
    expect(b.series[0].points[0][0]).toBe(T0);
    expect(mergeResults([a, b], query)).toStrictEqual(whole);
  });

  test('agg without buckets: the parts combine into one point at start', async () => {
    for (const agg of ['min', 'max', 'sum', 'count', 'last'] as Aggregate[]) {
      const query = q({ fields: ['temp', 'count'], agg });
      const parts = [await queryParquet(days(0, 1), { ...query, end: T0 + 2 * DAY }), await queryParquet(days(2, 3), { ...query, start: T0 + 2 * DAY })];
      expect(mergeResults(parts, query)).toStrictEqual(await backend.query(query));
    }
  });

  test('mean of a straddling bucket is the mean of the parts means', async () => {
    const query = q({ fields: ['temp'], devices: ['dev-a'], bucketMs: 2 * DAY, agg: 'mean' });
    const a = await queryParquet(days(0), query);
    const b = await queryParquet(days(1, 2, 3), query);
    const m = mergeResults([a, b], query);
    expect(m.series[0].points[0]).toEqual([T0, ((a.series[0].points[0][1] as number) + (b.series[0].points[0][1] as number)) / 2]);
    expect(m.series[0].points[1]).toEqual(b.series[0].points[1]);
  });

  test('series keep their tags when the parts have them, ordered by device then field by code point', () => {
    const query = q({ fields: ['x', 'y'] });
    const parts: QueryResult[] = [
      { series: [{ device: '\u{1F600}', field: 'x', points: [[1, 1]] }, { device: 'b', field: 'y', tags: { k: '1' }, points: [[2, 2]] }] },
      { series: [{ device: '\uFFFD', field: 'x', points: [[3, 3]] }, { device: 'b', field: 'y', tags: { k: '1' }, points: [[4, 4]] }, { device: 'b', field: 'y', points: [[5, 5]] }] },
    ];
    expect(mergeResults(parts, query)).toStrictEqual({
      series: [
        { device: 'b', field: 'y', points: [[5, 5]] },
        { device: 'b', field: 'y', tags: { k: '1' }, points: [[2, 2], [4, 4]] },
        { device: '\uFFFD', field: 'x', points: [[3, 3]] },
        { device: '\u{1F600}', field: 'x', points: [[1, 1]] },
      ],
    });
  });
});
