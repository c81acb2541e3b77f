/**
 * The embedded store against a real DuckDB file in a temp directory: what goes in as line protocol
 * (made with encodePoint) comes back out of query() the same, however hostile the names and values.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';
import { EmbeddedThreadBackend } from '../../nodes/lib/store/embedded-remote';
import { packPoints } from '../../nodes/lib/store/thread-wire';
import { CATCH_UP_SLICE_MS, SLICE_MS, TimeSlicer } from '../../nodes/lib/slice';
import { StoreError, type Aggregate, type Batch, type FieldValue, type Point, type RangeQuery, type Series, type StoreBackend } from '../../nodes/lib/store/types';
import { downsample, m4 } from '../../nodes/lib/store/query-plan';

const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-embedded-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

let fileNo = 0;
function newFile(): string {
  return path.join(tmp, `case-${++fileNo}`, 'nested', 'store.duckdb');
}

function batchOf(points: Point[]): Batch {
  const lines = points.map(encodePoint);
  return { lines: lines.join('\n'), count: lines.length };
}

function point(device: string, ts: number, fields: Record<string, FieldValue>, measurement = 'telemetry', tags: Record<string, string> = {}): Point {
  return { measurement, tags: { device, ...tags }, fields, ts };
}

function q(partial: Partial<RangeQuery> & Pick<RangeQuery, 'fields'>): RangeQuery {
  return { measurement: 'telemetry', start: T0 - DAY, end: T0 + 30 * DAY, ...partial };
}

function find(series: Series[], device: string, field: string): Series | undefined {
  return series.find((s) => s.device === device && s.field === field);
}

async function expectStoreError(p: Promise<unknown>, retryable: boolean): Promise<StoreError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).retryable).toBe(retryable);
  return err as StoreError;
}

/** Names and values no store may mangle. Backslashes in names: see BACKSLASH_NAMES. */
const HOSTILE = [
  'plain',
  'with space',
  'comma,here',
  'equals=sign',
  'double "quotes"',
  "single 'quotes'",
  'ünïcödé 温度',
  'emoji 🚀🔥',
  "'; DROP TABLE points_float; --",
  '"; DROP TABLE series; --',
  '$1',
  '?',
  'a,b=c d"f',
  '%_*',
];

/**
 * encodePoint writes a backslash in a name as it is (InfluxDB reads `\` before any other character
 * literally), but parseLine drops every backslash before any character (`back\slash` reads back as
 * `backslash`). A line-protocol.ts bug, reported; this test starts passing when it is fixed.
 */
const BACKSLASH_NAMES = ['back\\slash', 'a,b=c d\\e"f'];

describe('embedded store (DuckDB file)', () => {
  describe('round trip', () => {
    let store: EmbeddedBackend;
    const file = (): string => path.join(tmp, 'roundtrip', 'deeper', 'store.duckdb');
    beforeAll(async () => {
      store = await EmbeddedBackend.open({ path: file() });
    });
    afterAll(() => store.close());

    it('creates the file and its directory, and is healthy', async () => {
      expect(fs.existsSync(file())).toBe(true);
      const h = await store.health();
      expect(h.ok).toBe(true);
      expect(store.kind).toBe('embedded');
      expect(store.description).toContain(file());
    });

    it('reads back hostile device ids, field names, measurement names, tag values and string values', async () => {
      const points: Point[] = [];
      HOSTILE.forEach((name, i) => {
        points.push({
          measurement: `m ${name}`,
          tags: { device: name, [`tag ${name}`]: `v ${name}` },
          fields: { [`f ${name}`]: i + 0.5, text: `${name}\nsecond line\r\n\ttab "q" \\ end` },
          ts: T0 + i,
        });
      });
      await store.write(batchOf(points));
      for (const [i, name] of HOSTILE.entries()) {
        const r = await store.query({ measurement: `m ${name}`, fields: [`f ${name}`, 'text'], devices: [name], where: { [`tag ${name}`]: `v ${name}` }, start: T0, end: T0 + 1000 });
        expect(r.series).toEqual([
          { device: name, field: `f ${name}`, points: [[T0 + i, i + 0.5]] },
          { device: name, field: 'text', points: [[T0 + i, `${name}\nsecond line\r\n\ttab "q" \\ end`]] },
        ]);
      }
      // Nothing was dropped or executed: every table still answers.
      const all = await store.query({ measurement: "m '; DROP TABLE points_float; --", fields: ["f '; DROP TABLE points_float; --"], start: T0, end: T0 + 1000 });
      expect(all.series).toHaveLength(1);
    });

    it('reads back backslashes in device ids, names and tag values', async () => {
      const points = BACKSLASH_NAMES.map((name, i) => ({ measurement: 'bs', tags: { device: name, tag: name }, fields: { [name]: i }, ts: T0 + i }));
      await store.write(batchOf(points));
      for (const [i, name] of BACKSLASH_NAMES.entries()) {
        const r = await store.query({ measurement: 'bs', fields: [name], devices: [name], where: { tag: name }, start: T0, end: T0 + 1000 });
        expect(r.series).toEqual([{ device: name, field: name, points: [[T0 + i, i]] }]);
      }
    });

    it('keeps integers, floats, booleans and strings apart', async () => {
      await store.write(
        batchOf([
          point('types', T0 + 1, { float: 21.5, wholeFloat: 42, int: 42n, negInt: -7n, big: 9007199254740991n, yes: true, no: false, str: '42', empty: '' }),
          point('types', T0 + 2, { float: -0.125, wholeFloat: 1e21, int: 0n, negInt: -9223372036854775807n, big: 1n, yes: false, no: true, str: 'true', empty: ' ' }),
        ]),
      );
      const r = await store.query(q({ fields: ['float', 'wholeFloat', 'int', 'negInt', 'big', 'yes', 'no', 'str', 'empty'], devices: ['types'] }));
      const get = (f: string): Series['points'] => find(r.series, 'types', f)!.points;
      expect(get('float')).toEqual([
        [T0 + 1, 21.5],
        [T0 + 2, -0.125],
      ]);
      expect(get('wholeFloat')).toEqual([
        [T0 + 1, 42],
        [T0 + 2, 1e21],
      ]);
      expect(get('int')).toEqual([
        [T0 + 1, 42],
        [T0 + 2, 0],
      ]);
      expect(get('negInt')).toEqual([
        [T0 + 1, -7],
        [T0 + 2, Number(-9223372036854775807n)], // as a number: exact up to 2^53 only
      ]);
      expect(get('big')).toEqual([
        [T0 + 1, 9007199254740991],
        [T0 + 2, 1],
      ]);
      expect(get('yes')).toEqual([
        [T0 + 1, true],
        [T0 + 2, false],
      ]);
      expect(get('no')).toEqual([
        [T0 + 1, false],
        [T0 + 2, true],
      ]);
      expect(get('str')).toEqual([
        [T0 + 1, '42'],
        [T0 + 2, 'true'],
      ]);
      expect(get('empty')).toEqual([
        [T0 + 1, ''],
        [T0 + 2, ' '],
      ]);
    });

    it('gives lines without a timestamp the time of the write', async () => {
      const before = Date.now();
      await store.write({ lines: 'telemetry,device=no-ts temperature=1.5', count: 1 });
      const after = Date.now();
      const r = await store.query({ measurement: 'telemetry', fields: ['temperature'], devices: ['no-ts'], start: before - 1, end: after + 1 });
      expect(r.series).toHaveLength(1);
      const [ts, v] = r.series[0].points[0];
      expect(v).toBe(1.5);
      expect(ts).toBeGreaterThanOrEqual(before);
      expect(ts).toBeLessThanOrEqual(after);
    });

    it('returns no series for a query that matches nothing, and refuses bad queries', async () => {
      expect((await store.query(q({ fields: ['nope'] }))).series).toEqual([]);
      expect((await store.query(q({ fields: ['temperature'], devices: ["x' OR '1'='1"] }))).series).toEqual([]);
      await expectStoreError(store.query(q({ fields: [] })), false);
      await expectStoreError(store.query(q({ fields: ['a'], start: T0, end: T0 })), false);
      await expectStoreError(store.query(q({ fields: ['a'], bucketMs: 0 })), false);
      await expectStoreError(store.query(q({ fields: ['a'], agg: 'median' as Aggregate })), false);
    });
  });

  describe('idempotence', () => {
    let store: EmbeddedBackend;
    beforeAll(async () => {
      store = await EmbeddedBackend.open({ path: newFile() });
    });
    afterAll(() => store.close());

    const batch = (): Batch =>
      batchOf(Array.from({ length: 100 }, (_, i) => point(`dev-${i % 5}`, T0 + Math.floor(i / 5) * 1000, { temperature: i / 4, count: BigInt(i), ok: i % 2 === 0 })));

    it('reads a batch written twice back once', async () => {
      await store.write(batch());
      await store.write(batch());
      const r = await store.query(q({ fields: ['temperature', 'count', 'ok'] }));
      expect(r.series).toHaveLength(15);
      for (const s of r.series) expect(s.points).toHaveLength(20);
      const counted = await store.query(q({ fields: ['temperature'], agg: 'count' }));
      expect(counted.series.map((s) => s.points[0][1])).toEqual([20, 20, 20, 20, 20]);
    });

    it('overwrites a point rewritten with a new value for the same series and time, even of another type', async () => {
      await store.write(batchOf([point('dev-1', T0 + 3000, { temperature: 99.5, count: 7.25, ok: 'text now' })]));
      const r = await store.query(q({ fields: ['temperature', 'count', 'ok'], devices: ['dev-1'], start: T0 + 3000, end: T0 + 3001 }));
      expect(r.series).toEqual([
        { device: 'dev-1', field: 'count', points: [[T0 + 3000, 7.25]] },
        { device: 'dev-1', field: 'ok', points: [[T0 + 3000, 'text now']] },
        { device: 'dev-1', field: 'temperature', points: [[T0 + 3000, 99.5]] },
      ]);
      const all = await store.query(q({ fields: ['temperature'], devices: ['dev-1'] }));
      expect(all.series[0].points).toHaveLength(20);
    });

    it('keeps the last of duplicate lines inside one batch, as InfluxDB does', async () => {
      await store.write(
        batchOf([
          point('dup', T0 + 5, { v: 1 }),
          point('dup', T0 + 6, { v: 2 }),
          point('dup', T0 + 5, { v: 3 }),
          point('dup', T0 + 4, { v: 4 }),
          point('dup', T0 + 5, { v: 5n }),
        ]),
      );
      const r = await store.query(q({ fields: ['v'], devices: ['dup'] }));
      expect(r.series[0].points).toEqual([
        [T0 + 4, 4],
        [T0 + 5, 5],
        [T0 + 6, 2],
      ]);
    });

    it('takes late (older) points without touching the newer ones', async () => {
      await store.write(batchOf([point('late', T0 + 10_000, { v: 10 }), point('late', T0 + 20_000, { v: 20 })]));
      await store.write(batchOf([point('late', T0 + 15_000, { v: 15 }), point('late', T0 + 5_000, { v: 5 }), point('late', T0 + 20_000, { v: 21 })]));
      const r = await store.query(q({ fields: ['v'], devices: ['late'] }));
      expect(r.series[0].points).toEqual([
        [T0 + 5_000, 5],
        [T0 + 10_000, 10],
        [T0 + 15_000, 15],
        [T0 + 20_000, 21],
      ]);
    });

    it('treats series with other tags as other series (not overwritten), merged into one answer per device and field', async () => {
      await store.write(
        batchOf([
          point('tagged', T0 + 1, { mean: 1 }, 'rollup', { level: '1m', metric: 'temperature' }),
          point('tagged', T0 + 1, { mean: 2 }, 'rollup', { level: '1h', metric: 'temperature' }),
          point('tagged', T0 + 2, { mean: 3 }, 'rollup', { level: '1m', metric: 'humidity' }),
        ]),
      );
      const narrowed = await store.query({ measurement: 'rollup', fields: ['mean'], where: { level: '1m', metric: 'temperature' }, start: T0, end: T0 + 10 });
      expect(narrowed.series).toEqual([{ device: 'tagged', field: 'mean', points: [[T0 + 1, 1]] }]);
      const merged = await store.query({ measurement: 'rollup', fields: ['mean'], start: T0, end: T0 + 10 });
      expect(merged.series).toHaveLength(1);
      expect(merged.series[0].points.map((p) => p[1]).sort()).toEqual([1, 2, 3]);
    });
  });

  describe('aggregation', () => {
    let store: EmbeddedBackend;
    // Data from before and after the epoch: buckets must be aligned to it on both sides.
    const START = -3_600_000;
    const END = 3 * 3_600_000;
    const devices = ['agg-a', 'agg b', "agg 'c'"];
    const data = new Map<string, Array<[number, number]>>();

    beforeAll(async () => {
      store = await EmbeddedBackend.open({ path: newFile() });
      let seed = 12345;
      const rnd = (): number => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648;
      };
      const points: Point[] = [];
      for (const d of devices) {
        for (const f of ['x', 'n']) data.set(`${d}|${f}`, []);
        const seen = new Set<number>();
        for (let i = 0; i < 3000; i++) {
          const ts = START + Math.floor(rnd() * (END - START));
          if (seen.has(ts)) continue;
          seen.add(ts);
          const x = Math.round((rnd() * 200 - 100) * 1000) / 1000;
          const n = BigInt(Math.floor(rnd() * 1000) - 500);
          points.push(point(d, ts, { x, n }));
          data.get(`${d}|x`)!.push([ts, x]);
          data.get(`${d}|n`)!.push([ts, Number(n)]);
        }
      }
      // Out of time order, several batches.
      for (let i = 0; i < points.length; i += 1000) await store.write(batchOf(points.slice(i, i + 1000)));
    });
    afterAll(() => store.close());

    function bruteForce(rows: Array<[number, number]>, bucket: number, agg: Aggregate, from: number, to: number): Array<[number, number]> {
      const byBucket = new Map<number, Array<[number, number]>>();
      for (const [ts, v] of rows) {
        if (ts < from || ts >= to) continue;
        const b = Math.floor(ts / bucket) * bucket;
        if (!byBucket.has(b)) byBucket.set(b, []);
        byBucket.get(b)!.push([ts, v]);
      }
      return [...byBucket.keys()]
        .sort((a, b) => a - b)
        .map((b) => {
          const vs = byBucket.get(b)!;
          const values = vs.map((x) => x[1]);
          let v: number;
          switch (agg) {
            case 'mean':
              v = values.reduce((s, x) => s + x, 0) / values.length;
              break;
            case 'sum':
              v = values.reduce((s, x) => s + x, 0);
              break;
            case 'min':
              v = Math.min(...values);
              break;
            case 'max':
              v = Math.max(...values);
              break;
            case 'count':
              v = values.length;
              break;
            case 'last':
              v = vs.reduce((best, x) => (x[0] > best[0] ? x : best))[1];
              break;
          }
          return [b, v];
        });
    }

    it.each<[Aggregate, number]>([
      ['mean', 600_000],
      ['min', 60_000],
      ['max', 3_600_000],
      ['sum', 420_000],
      ['count', 7_000],
      ['last', 900_000],
    ])('%s in %i ms buckets equals a brute-force computation', async (agg, bucketMs) => {
      const from = START + 12_345;
      const to = END - 54_321;
      const r = await store.query({ measurement: 'telemetry', fields: ['x', 'n'], start: from, end: to, bucketMs, agg });
      expect(r.series).toHaveLength(devices.length * 2);
      for (const d of devices) {
        for (const f of ['x', 'n']) {
          const expected = bruteForce(data.get(`${d}|${f}`)!, bucketMs, agg, from, to);
          const got = find(r.series, d, f)!.points as Array<[number, number]>;
          expect(got.map((p) => p[0])).toEqual(expected.map((p) => p[0]));
          for (let i = 0; i < got.length; i++) expect(got[i][1]).toBeCloseTo(expected[i][1], 6);
          for (const [ts] of got) expect(((ts % bucketMs) + bucketMs) % bucketMs).toBe(0);
        }
      }
    });

    it('defaults to mean when only bucketMs is given, and aggregates the whole range when only agg is', async () => {
      const mean = await store.query({ measurement: 'telemetry', fields: ['x'], devices: ['agg-a'], start: START, end: END, bucketMs: 3_600_000 });
      const expected = bruteForce(data.get('agg-a|x')!, 3_600_000, 'mean', START, END);
      expect(mean.series[0].points.map((p) => p[0])).toEqual(expected.map((p) => p[0]));
      const whole = await store.query({ measurement: 'telemetry', fields: ['x'], devices: ['agg-a'], start: START, end: END, agg: 'count' });
      expect(whole.series[0].points).toEqual([[START, data.get('agg-a|x')!.length]]);
    });

    it('caps buckets and raw rows per series with limit', async () => {
      const buckets = await store.query({ measurement: 'telemetry', fields: ['x'], start: START, end: END, bucketMs: 60_000, agg: 'max', limit: 7 });
      for (const s of buckets.series) expect(s.points).toHaveLength(7);
      const raw = await store.query({ measurement: 'telemetry', fields: ['x'], devices: ['agg b'], start: START, end: END, limit: 10 });
      const sorted = [...data.get('agg b|x')!].sort((a, b) => a[0] - b[0]);
      expect(raw.series[0].points).toEqual(sorted.slice(0, 10));
    });
  });

  describe('filters', () => {
    let store: EmbeddedBackend;
    beforeAll(async () => {
      store = await EmbeddedBackend.open({ path: newFile() });
      const points: Point[] = [];
      HOSTILE.forEach((name, i) => {
        points.push(point(name, T0 + i, { temperature: i }, 'telemetry', { site: name, zone: i % 2 === 0 ? 'even' : 'odd' }));
      });
      await store.write(batchOf(points));
    });
    afterAll(() => store.close());

    it('selects hostile devices exactly', async () => {
      for (const [i, name] of HOSTILE.entries()) {
        const r = await store.query(q({ fields: ['temperature'], devices: [name] }));
        expect(r.series).toEqual([{ device: name, field: 'temperature', points: [[T0 + i, i]] }]);
      }
      const two = await store.query(q({ fields: ['temperature'], devices: [HOSTILE[3], HOSTILE[10], 'not there'] }));
      expect(two.series.map((s) => s.device).sort()).toEqual([HOSTILE[3], HOSTILE[10]].sort());
    });

    it('filters on hostile tag values, and on device given as a tag', async () => {
      for (const [i, name] of HOSTILE.entries()) {
        const r = await store.query(q({ fields: ['temperature'], where: { site: name } }));
        expect(r.series).toEqual([{ device: name, field: 'temperature', points: [[T0 + i, i]] }]);
        const byDeviceTag = await store.query(q({ fields: ['temperature'], where: { device: name, zone: i % 2 === 0 ? 'even' : 'odd' } }));
        expect(byDeviceTag.series.map((s) => s.device)).toEqual([name]);
        const contradiction = await store.query(q({ fields: ['temperature'], where: { device: name, zone: i % 2 === 0 ? 'odd' : 'even' } }));
        expect(contradiction.series).toEqual([]);
      }
      const odd = await store.query(q({ fields: ['temperature'], where: { zone: 'odd' } }));
      expect(odd.series).toHaveLength(Math.floor(HOSTILE.length / 2));
      expect((await store.query(q({ fields: ['temperature'], where: { "site' OR '1'='1": 'x' } }))).series).toEqual([]);
      expect((await store.query(q({ fields: ['temperature'], where: { site: "x' OR '1'='1" } }))).series).toEqual([]);
      expect((await store.query(q({ fields: ['temperature'] }))).series).toHaveLength(HOSTILE.length);
    });

    it('reads only [start, end)', async () => {
      const r = await store.query({ measurement: 'telemetry', fields: ['temperature'], start: T0 + 2, end: T0 + 5 });
      expect(r.series.map((s) => s.points[0][0]).sort()).toEqual([T0 + 2, T0 + 3, T0 + 4]);
    });
  });

  describe('maxPoints', () => {
    let store: EmbeddedBackend;
    beforeAll(async () => {
      store = await EmbeddedBackend.open({ path: newFile() });
      const points: Point[] = [];
      for (let i = 0; i < 5000; i++) {
        points.push(point('dense', T0 + i * 1000, { wave: i === 2500 ? 1000 : Math.sin(i / 100), label: `s${i}`, flag: i % 3 === 0 }));
        if (i % 10 === 0) points.push(point('sparse', T0 + i * 1000, { wave: i }));
      }
      await store.write(batchOf(points));
    });
    afterAll(() => store.close());

    it('caps the points of every series, keeping ends and spikes of numeric ones', async () => {
      const r = await store.query(q({ fields: ['wave', 'label', 'flag'], maxPoints: 100 }));
      const wave = find(r.series, 'dense', 'wave')!.points;
      expect(wave).toHaveLength(100);
      expect(wave[0]).toEqual([T0, 0]);
      expect(wave[99][0]).toBe(T0 + 4999 * 1000);
      expect(wave).toContainEqual([T0 + 2500 * 1000, 1000]);
      for (let i = 1; i < wave.length; i++) expect(wave[i][0]).toBeGreaterThan(wave[i - 1][0]);
      // Non-numeric series keep their newest points, as the InfluxDB backends do.
      const label = find(r.series, 'dense', 'label')!.points;
      expect(label).toHaveLength(100);
      expect(label[99]).toEqual([T0 + 4999 * 1000, 's4999']);
      expect(find(r.series, 'dense', 'flag')!.points).toHaveLength(100);
      expect(find(r.series, 'sparse', 'wave')!.points).toHaveLength(100);
    });

    it('reads the whole range of a series larger than limit: reduced in the database (M4), then LTTB', async () => {
      // 5,000 rows, limit 1,000: read raw, the answer ended at the 1,000th row (the first 17 minutes of 83).
      const r = await store.query(q({ fields: ['wave'], devices: ['dense'], maxPoints: 100, limit: 1000 }));
      const wave = r.series[0].points;
      expect(wave).toHaveLength(100);
      expect(wave[0]).toEqual([T0, 0]);
      expect(wave[99]).toEqual([T0 + 4999 * 1000, Math.sin(4999 / 100)]);
      expect(wave).toContainEqual([T0 + 2500 * 1000, 1000]);
      // Under 4 x maxPoints of room the limit keeps its meaning: the earliest rows, then downsampled.
      const tight = await store.query(q({ fields: ['wave'], devices: ['dense'], maxPoints: 100, limit: 399 }));
      expect(tight.series[0].points[99][0]).toBe(T0 + 398 * 1000);
    });

    it('answers what downsample(m4(every row)) gives, ties and merged series included; mixed series are read raw', async () => {
      const s = await EmbeddedBackend.open({ path: newFile() });
      try {
        const points: Point[] = [];
        for (let i = 0; i < 3000; i++) {
          const ts = T0 + Math.floor(i / 2) * 700 + (i % 7 === 0 ? 1 : 0);
          // Two tagsets of one device and field (one answer series), values from a small set, equal times.
          points.push(point('ties', ts, { v: (i * 7919) % 5 }, 'telemetry', { site: i % 2 === 0 ? 'a' : 'b' }));
          // Integers and floats in one series.
          points.push(point('kinds', T0 + i * 500, { v: i % 3 === 0 ? BigInt(i % 11) : (i % 13) / 2 }));
          // Numbers and strings in one series: no reduction, downsample keeps the newest points.
          points.push(point('mixed', T0 + i * 500, { v: i % 10 === 0 ? `s${i}` : i }));
        }
        await s.write(batchOf(points));
        for (const maxPoints of [3, 50, 200]) {
          const all = await s.query(q({ fields: ['v'] }));
          const down = await s.query(q({ fields: ['v'], maxPoints }));
          for (const device of ['ties', 'kinds']) {
            const raw = find(all.series, device, 'v')!.points as Array<[number, number]>;
            expect(raw.length).toBeGreaterThan(4 * maxPoints);
            expect([device, maxPoints, find(down.series, device, 'v')!.points]).toEqual([device, maxPoints, downsample(m4(raw, maxPoints), maxPoints)]);
          }
          const mixed = find(all.series, 'mixed', 'v')!.points;
          expect(find(down.series, 'mixed', 'v')!.points).toEqual(mixed.slice(mixed.length - maxPoints));
        }
      } finally {
        await s.close();
      }
    });

    it('an answer past the store\'s point budget fails with a 413 naming what would make it smaller, and the store goes on', async () => {
      const small = await EmbeddedBackend.open({ path: newFile(), maxAnswerPoints: 5000 });
      const points: Point[] = [];
      for (let i = 0; i < 5000; i++) {
        points.push(point('dense', T0 + i * 1000, { wave: Math.sin(i / 100), label: `s${i}`, flag: i % 3 === 0 }));
        if (i % 10 === 0) points.push(point('sparse', T0 + i * 1000, { wave: i }));
      }
      await small.write(batchOf(points));
      // 15,500 values in all, 5,500 of them waves: the budget is counted over every series and kind.
      const err = await expectStoreError(small.query(q({ fields: ['wave', 'label', 'flag'] })), false);
      expect(err.status).toBe(413);
      expect(err.message).toBe('embedded store query: the answer has more than 5,000 points; narrow the range, the devices or the fields, or ask for maxPoints or buckets');
      expect((await expectStoreError(small.query(q({ fields: ['wave'] })), false)).status).toBe(413);
      // Within it: one device, the reduced series (M4 reads at most 4 x maxPoints rows a series), wide buckets.
      expect((await small.query(q({ fields: ['wave'], devices: ['dense'] }))).series[0].points).toHaveLength(5000);
      expect((await small.query(q({ fields: ['wave'], maxPoints: 100 }))).series.map((x) => x.points.length)).toEqual([100, 100]);
      expect((await small.query(q({ fields: ['wave', 'label', 'flag'], bucketMs: 60_000, agg: 'last' }))).series).toHaveLength(4);
      expect((await expectStoreError(small.query(q({ fields: ['wave', 'label', 'flag'], bucketMs: 1000, agg: 'last' })), false)).status).toBe(413);
      await small.close();
      expect(() => new EmbeddedBackend({ path: newFile(), maxAnswerPoints: 0 })).toThrow('maxAnswerPoints must be a positive whole number');
    });

    it('leaves smaller series alone, applies after bucketing, and treats 1 and 2 as last / ends', async () => {
      const small = await store.query(q({ fields: ['wave'], devices: ['sparse'], maxPoints: 1000 }));
      expect(small.series[0].points).toHaveLength(500);
      const bucketed = await store.query(q({ fields: ['wave'], devices: ['dense'], bucketMs: 10_000, agg: 'max', maxPoints: 50 }));
      expect(bucketed.series[0].points).toHaveLength(50);
      expect(bucketed.series[0].points).toContainEqual([T0 + 2500 * 1000, 1000]);
      const one = await store.query(q({ fields: ['wave'], devices: ['dense'], maxPoints: 1 }));
      expect(one.series[0].points).toEqual([[T0 + 4999 * 1000, Math.sin(4999 / 100)]]);
      const ends = await store.query(q({ fields: ['wave'], devices: ['dense'], maxPoints: 2 }));
      expect(ends.series[0].points.map((p) => p[0])).toEqual([T0, T0 + 4999 * 1000]);
    });
  });

  describe('durability and failures', () => {
    it('keeps the data (and idempotence) across close and reopen', async () => {
      const file = newFile();
      const batch = batchOf(Array.from({ length: 50 }, (_, i) => point(`r-${i % 2}`, T0 + i * 1000, { temperature: i, n: BigInt(i), s: `v${i}` })));
      const a = await EmbeddedBackend.open({ path: file });
      await a.write(batch);
      const before = await a.query(q({ fields: ['temperature', 'n', 's'] }));
      await a.close();
      await a.close(); // twice is fine

      const b = await EmbeddedBackend.open({ path: file });
      try {
        expect(await b.query(q({ fields: ['temperature', 'n', 's'] }))).toEqual(before);
        // The same batch again after a restart still counts once; a new point still lands.
        await b.write(batch);
        await b.write(batchOf([point('r-0', T0 + 100_000, { temperature: -1 })]));
        const after = await b.query(q({ fields: ['temperature'], devices: ['r-0'] }));
        expect(after.series[0].points).toHaveLength(26);
        expect(after.series[0].points[25]).toEqual([T0 + 100_000, -1]);
      } finally {
        await b.close();
      }

      // The value types are stored as written: look at the file directly.
      const db = await DuckDBInstance.create(file);
      const conn = await db.connect();
      try {
        const counts = await conn.runAndReadAll(
          `SELECT (SELECT count(*) FROM points_float)::INTEGER, (SELECT count(*) FROM points_int)::INTEGER, (SELECT count(*) FROM points_str)::INTEGER, (SELECT count(*) FROM points_bool)::INTEGER`,
        );
        expect(counts.getRows()[0]).toEqual([51, 50, 50, 0]);
      } finally {
        conn.closeSync();
        db.closeSync();
      }
    });

    it('refuses a malformed batch with a non-retryable StoreError and writes nothing of it', async () => {
      const store = await EmbeddedBackend.open({ path: newFile() });
      try {
        await store.write(batchOf([point('good', T0, { temperature: 1 })]));
        const good = [point('good', T0 + 1000, { temperature: 2 }), point('new-device', T0 + 1000, { temperature: 3, fresh: 'x' })].map(encodePoint);
        for (const bad of ['telemetry,device=bad temperature=', 'telemetry,device=bad temperature="unterminated', 'telemetry,device=bad', 'telemetry,device=bad temperature=1 notatime', 'telemetry,device=bad v=99999999999999999999i 1', 'telemetry,device= v=1 1']) {
          const err = await expectStoreError(store.write({ lines: [...good, bad, encodePoint(point('after', T0, { v: 1 }))].join('\n'), count: 4 }), false);
          expect(err.message).toMatch(/^line 3: /);
        }
        const r = await store.query(q({ fields: ['temperature', 'fresh', 'v'] }));
        expect(r.series).toEqual([{ device: 'good', field: 'temperature', points: [[T0, 1]] }]);
        // The series the failed batches would have created are not half-known: the same lines now go in.
        await store.write({ lines: good.join('\n'), count: 2 });
        const r2 = await store.query(q({ fields: ['temperature', 'fresh'] }));
        expect(r2.series.map((s) => `${s.device}/${s.field}:${s.points.length}`)).toEqual(['good/temperature:2', 'new-device/fresh:1', 'new-device/temperature:1']);
      } finally {
        await store.close();
      }
    });

    it('rolls a batch back when the database fails half way (retryable), and writes it on the retry', async () => {
      const store = await EmbeddedBackend.open({ path: newFile() });
      try {
        await store.write(batchOf([point('tx', T0, { v: 1, s: 'old' })]));
        // A batch that replaces a stored point, adds points to a known series and creates new series.
        const batch = batchOf([point('tx', T0, { v: 2, s: 'new' }), point('tx', T0 + 1, { v: 3 }), point('tx-new', T0, { v: 4, flag: true })]);
        // Fail the append of the string rows: the new series, the delete and the float rows are already in the transaction.
        const internals = store as unknown as { appendPoints: (...args: unknown[]) => void };
        const original = internals.appendPoints;
        internals.appendPoints = function (this: unknown, ...args: unknown[]): void {
          if (args[3] === 3) throw new Error('IO Error: simulated disk failure');
          original.apply(this, args);
        };
        const err = await expectStoreError(store.write(batch), true);
        expect(err.message).toContain('simulated disk failure');
        const r = await store.query(q({ fields: ['v', 's', 'flag'] }));
        expect(r.series).toEqual([
          { device: 'tx', field: 's', points: [[T0, 'old']] },
          { device: 'tx', field: 'v', points: [[T0, 1]] },
        ]);
        internals.appendPoints = original;
        await store.write(batch);
        const r2 = await store.query(q({ fields: ['v', 's', 'flag'] }));
        expect(r2.series).toEqual([
          { device: 'tx', field: 's', points: [[T0, 'new']] },
          {
            device: 'tx',
            field: 'v',
            points: [
              [T0, 2],
              [T0 + 1, 3],
            ],
          },
          { device: 'tx-new', field: 'flag', points: [[T0, true]] },
          { device: 'tx-new', field: 'v', points: [[T0, 4]] },
        ]);
      } finally {
        await store.close();
      }
    });

    it('ignores empty batches, and fails writes after close as retryable', async () => {
      const store = await EmbeddedBackend.open({ path: newFile() });
      await store.write({ lines: '', count: 0 });
      await store.write({ lines: '\n# only a comment\n', count: 0 });
      await store.close();
      await expectStoreError(store.write(batchOf([point('x', T0, { v: 1 })])), true);
      expect((await store.health()).ok).toBe(false);
    });

    it('opens lazily, and refuses to open a file this process already has open', async () => {
      const file = newFile();
      const lazy = new EmbeddedBackend({ path: file, threads: 1, memoryLimit: '128MB' });
      expect(fs.existsSync(file)).toBe(false);
      await lazy.write(batchOf([point('lazy', T0, { v: 1 })]));
      expect(fs.existsSync(file)).toBe(true);
      const second = new EmbeddedBackend({ path: file });
      await expectStoreError(second.write(batchOf([point('lazy', T0 + 1, { v: 2 })])), true);
      await lazy.close();
      // Once the first one is closed, the second can open it.
      await second.write(batchOf([point('lazy', T0 + 1, { v: 2 })]));
      expect((await second.query(q({ fields: ['v'] }))).series[0].points).toEqual([
        [T0, 1],
        [T0 + 1, 2],
      ]);
      await second.close();
    });

    it('finishes writes already queued when close() is called', async () => {
      const store = await EmbeddedBackend.open({ path: newFile() });
      const writes = Array.from({ length: 5 }, (_, k) => store.write(batchOf(Array.from({ length: 200 }, (_, i) => point(`q-${k}`, T0 + i, { v: i })))));
      const closed = store.close();
      await Promise.all(writes);
      await closed;
      const again = await EmbeddedBackend.open({ path: store.path });
      try {
        const r = await again.query(q({ fields: ['v'] }));
        expect(r.series.map((s) => s.points.length)).toEqual([200, 200, 200, 200, 200]);
      } finally {
        await again.close();
      }
    });
  });
});

describe('queries read one snapshot', () => {
  test('while batches that create new series commit, every answer has all fields of a point or none of them', async () => {
    const store = new EmbeddedBackend({ path: newFile() });
    try {
      await store.write(batchOf([point('d', T0, { a: 0 })]));
      // Each batch writes one point with field a and a field that is new (its series is created by that batch).
      const fields = ['a', ...Array.from({ length: 60 }, (_, i) => `f${i}`)];
      const torn: string[] = [];
      const writes: Array<Promise<void>> = [];
      const reads: Array<Promise<void>> = [];
      for (let i = 0; i < 60; i++) {
        writes.push(store.write(batchOf([point('d', T0 + 1 + i, { a: i + 1, [`f${i}`]: i })])));
        reads.push(
          store.query(q({ fields, start: T0, end: T0 + 1000, devices: ['d'] })).then((r) => {
            const a = find(r.series, 'd', 'a')?.points.map((p) => p[0]) ?? [];
            for (const ts of a) {
              if (ts === T0) continue;
              const f = `f${ts - T0 - 1}`;
              if (!find(r.series, 'd', f)?.points.some((p) => p[0] === ts)) torn.push(`${ts - T0}: a without ${f}`);
            }
          }),
        );
      }
      await Promise.all([...writes, ...reads]);
      expect(torn).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe('a batch is written in slices (the event loop runs between them)', () => {
  test('with a pause at every check, batches written while queries run are stored exactly, in order', async () => {
    // Every check of the slicer says "due": the store pauses every 64 lines parsed, every 16 new series and
    // between appended chunks, the most interleaving it can see.
    const due = jest.spyOn(TimeSlicer.prototype, 'due').mockReturnValue(true);
    const pause = jest.spyOn(TimeSlicer.prototype, 'pause');
    const store = new EmbeddedBackend({ path: newFile() });
    try {
      const devices = Array.from({ length: 50 }, (_, d) => `dev-${d}`);
      // Two batches of 5,000 points each (50 devices x 100 timestamps x 3 fields), the second rewriting the
      // first's last 20 timestamps with other values (the dedupe path), and queries started meanwhile.
      const first: Point[] = [];
      const second: Point[] = [];
      for (let i = 0; i < 100; i++) for (const d of devices) first.push(point(d, T0 + i * 1000, { t: i, h: d.length + i, ok: i % 2 === 0 }));
      for (let i = 80; i < 180; i++) for (const d of devices) second.push(point(d, T0 + i * 1000, { t: -i, h: 0, ok: true }));
      const w1 = store.write(batchOf(first));
      let ticks = 0;
      const tick = (): void => {
        ticks++;
        if (ticks < 100_000) setImmediate(tick);
      };
      setImmediate(tick);
      const during = store.query(q({ fields: ['t'], devices: ['dev-0'] }));
      const w2 = store.write(batchOf(second));
      await Promise.all([w1, w2, during]);
      const ticksDuringWrites = ticks;
      ticks = 100_000;
      expect(pause.mock.calls.length).toBeGreaterThan((2 * 5000) / 64);
      // The other work of the event loop ran while the batches were parsed and appended.
      expect(ticksDuringWrites).toBeGreaterThan((2 * 5000) / 64);
      const r = await store.query(q({ fields: ['t', 'h', 'ok'], start: T0, end: T0 + 200 * 1000 }));
      for (const d of devices) {
        const t = find(r.series, d, 't')!.points;
        expect(t).toHaveLength(180);
        expect(t.slice(0, 80).map((p) => p[1])).toEqual(Array.from({ length: 80 }, (_, i) => i));
        expect(t.slice(80).map((p) => p[1])).toEqual(Array.from({ length: 100 }, (_, i) => -(80 + i)));
        expect(find(r.series, d, 'ok')!.points.filter((p) => p[1] === true)).toHaveLength(40 + 100);
      }
      expect(due).toHaveBeenCalled();
    } finally {
      jest.restoreAllMocks();
      await store.close();
    }
  });

  test('a write the writer is catching up with (hints.behind) runs in the longer catch-up slices, and stores the same', async () => {
    const budgets: number[] = [];
    jest.spyOn(TimeSlicer.prototype, 'due').mockImplementation(function (this: TimeSlicer) {
      budgets.push(this.budgetMs);
      return false;
    });
    const store = new EmbeddedBackend({ path: newFile() });
    try {
      const pts = (from: number, v: number): Point[] => Array.from({ length: 3000 }, (_, i) => point(`dev-${i % 30}`, T0 + (from + i) * 1000, { t: v + i }));
      await store.write(batchOf(pts(0, 0)), { behind: true });
      const caughtUp = new Set(budgets);
      budgets.length = 0;
      await store.write(batchOf(pts(3000, 10_000)), { behind: false });
      const keepingUp = new Set(budgets);
      budgets.length = 0;
      await store.write(batchOf(pts(6000, 20_000)));
      expect([...caughtUp]).toEqual([CATCH_UP_SLICE_MS]);
      expect([...keepingUp]).toEqual([SLICE_MS]);
      expect([...new Set(budgets)]).toEqual([SLICE_MS]);
      expect(CATCH_UP_SLICE_MS).toBeGreaterThan(SLICE_MS);
      const r = await store.query(q({ fields: ['t'], start: T0, end: T0 + 9000 * 1000 }));
      const got = r.series.flatMap((x) => x.points.map((p) => p[1] as number)).sort((x, y) => x - y);
      expect(got).toEqual([...pts(0, 0), ...pts(3000, 10_000), ...pts(6000, 20_000)].map((p) => p.fields.t as number).sort((x, y) => x - y));
    } finally {
      jest.restoreAllMocks();
      await store.close();
    }
  });
});

describe('batches of any size (the rows of a batch keep their storage from batch to batch)', () => {
  test('a batch of 300,000 values, then 10, then 18,000: every value stored once, of its kind, duplicates resolved', async () => {
    const store = await EmbeddedBackend.open({ path: newFile() });
    try {
      // 30,000 lines x 10 fields of all four kinds (300,000 rows); the last 100 lines rewrite the first 100.
      const big: Point[] = [];
      for (let i = 0; i < 30_000; i++) {
        const j = i < 29_900 ? i : i - 29_900;
        const rewrite = i >= 29_900;
        big.push(
          point(`big-${j % 10}`, T0 + Math.floor(j / 10) * 1000, {
            f0: rewrite ? -j : j,
            f1: j / 2,
            f2: j + 0.25,
            f3: j * 3,
            f4: j - 7,
            f5: 1 / (j + 1),
            n: BigInt(j),
            ok: j % 3 === 0,
            s: rewrite ? `again ${j}` : `v ${j}`,
            t: `t${j % 7}`,
          }),
        );
      }
      await store.write(batchOf(big));
      await store.write(batchOf(Array.from({ length: 10 }, (_, i) => point('small', T0 + i, { v: i }))));
      await store.write(batchOf(Array.from({ length: 6_000 }, (_, i) => point(`mid-${i % 3}`, T0 + i, { a: i, b: BigInt(-i), c: i % 2 === 0 }))));

      const counts = await store.query(q({ fields: ['f0', 'f5', 'n', 'ok', 's', 't'], agg: 'count', devices: ['big-0'] }));
      expect(counts.series.map((s) => [s.field, s.points.reduce((n, p) => n + (p[1] as number), 0)])).toEqual([
        ['f0', 2_990],
        ['f5', 2_990],
        ['n', 2_990],
        ['ok', 2_990],
        ['s', 2_990],
        ['t', 2_990],
      ]);
      const first = await store.query(q({ fields: ['f0', 'n', 'ok', 's'], devices: ['big-3'], start: T0, end: T0 + 1 }));
      expect(first.series).toEqual([
        { device: 'big-3', field: 'f0', points: [[T0, -3]] },
        { device: 'big-3', field: 'n', points: [[T0, 3]] },
        { device: 'big-3', field: 'ok', points: [[T0, true]] },
        { device: 'big-3', field: 's', points: [[T0, 'again 3']] },
      ]);
      const last = await store.query(q({ fields: ['f0', 's'], devices: ['big-9'], start: T0 + 2_989_000, end: T0 + 2_989_001 }));
      expect(last.series).toEqual([
        { device: 'big-9', field: 'f0', points: [[T0 + 2_989_000, 29_899]] },
        { device: 'big-9', field: 's', points: [[T0 + 2_989_000, 'v 29899']] },
      ]);
      const small = await store.query(q({ fields: ['v'], devices: ['small'] }));
      expect(small.series[0].points).toEqual(Array.from({ length: 10 }, (_, i) => [T0 + i, i]));
      const mid = await store.query(q({ fields: ['a', 'b', 'c'], devices: ['mid-1'] }));
      expect(mid.series.map((s) => [s.field, s.points.length])).toEqual([
        ['a', 2_000],
        ['b', 2_000],
        ['c', 2_000],
      ]);
      expect(mid.series[1].points[1999]).toEqual([T0 + 5_998, -5_998]);
      expect(mid.series[2].points[1]).toEqual([T0 + 4, true]);
    } finally {
      await store.close();
    }
  });
});

/**
 * How a batch of points reaches the store: as points on this thread; packed (thread-wire.ts) and read by writePacked on
 * this thread, which is what the store's worker thread runs; and through the worker thread itself (embedded-remote.ts).
 * Each must store what the same points' lines store.
 */
const POINT_WRITERS: Array<[string, (file: string) => Promise<StoreBackend>, (store: StoreBackend, points: Point[]) => Promise<void>]> = [
  ['points', (file) => EmbeddedBackend.open({ path: file }), (store, points) => store.write(withPoints(points))],
  ['packed points in two parts (what the store thread runs)', (file) => EmbeddedBackend.open({ path: file }), (store, points) => (store as EmbeddedBackend).writePacked([packPoints(points, 0, 3), packPoints(points, 3)])],
  ['points through the store thread', (file) => EmbeddedThreadBackend.open({ path: file }), (store, points) => store.write(withPoints(points))],
];

/** A batch of points whose lines must not be read (the store reads the points). */
function withPoints(points: Point[]): Batch {
  const unread = (): never => {
    throw new Error('the lines of a batch of points were read');
  };
  return Object.defineProperties({ count: points.length, points } as unknown as Batch, { lines: { get: unread }, lineList: { get: unread } });
}

describe.each(POINT_WRITERS)('a batch of points (the writer gives them when the write node checked them), written as %s', (_how, openA, writeA) => {
  /** Points of every kind with hostile names and values, fractional times, a field without a value, backslashes in names. */
  function hostilePoints(round: number): Point[] {
    const out: Point[] = [];
    HOSTILE.forEach((name, i) => {
      const fields: Record<string, FieldValue> = {
        [`f ${name}`]: i + 0.5 + round,
        int: BigInt(i * 1000 + round),
        ok: (i + round) % 2 === 0,
        text: `${name}\nsecond line\r\n\ttab "q" \\ end ${round}`,
        neg: -0,
      };
      if (i % 3 === 0) (fields as Record<string, unknown>).gone = undefined;
      out.push({ measurement: `m ${name}`, tags: { device: name, [`tag ${name}`]: `v ${name}` }, fields, ts: T0 + round * 1000 + i + 0.75 });
    });
    BACKSLASH_NAMES.forEach((name, i) => out.push({ measurement: 'bs', tags: { device: name }, fields: { [name]: i + round }, ts: T0 + round * 1000 + i }));
    return out;
  }

  async function everything(store: StoreBackend): Promise<unknown[]> {
    const out: unknown[] = [];
    for (const name of HOSTILE) {
      out.push(await store.query({ measurement: `m ${name}`, fields: [`f ${name}`, 'int', 'ok', 'text', 'neg', 'gone'], start: T0, end: T0 + 10_000 }));
    }
    out.push(await store.query({ measurement: 'bs', fields: BACKSLASH_NAMES, start: T0, end: T0 + 10_000 }));
    return out;
  }

  test('stores exactly what the same lines without their points store', async () => {
    const a = await openA(newFile());
    const b = await EmbeddedBackend.open({ path: newFile() });
    try {
      // Round 0 meets every series for the first time (its lines are parsed whole); rounds 1 and 2 are of known
      // series (their values come from the points); round 2 rewrites round 1's times (replacing rows).
      for (const round of [0, 1, 2]) {
        const pts = hostilePoints(round === 2 ? 1 : round).map((p) => (round === 2 ? { ...p, fields: { ...p.fields, int: 7n } } : p));
        await writeA(a, pts);
        await b.write(batchOf(pts));
      }
      const fromPoints = await everything(a);
      expect(fromPoints).toEqual(await everything(b));
      const first = fromPoints[0] as { series: Series[] };
      expect(first.series.map((s) => [s.field, s.points.length])).toEqual([
        ['f plain', 2],
        ['int', 2],
        ['neg', 2],
        ['ok', 2],
        ['text', 2],
      ]);
      expect(find(first.series, 'plain', 'int')!.points).toEqual([
        [T0, 0],
        [T0 + 1000, 7],
      ]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a series is one series whatever the order of its point\'s tags, and a tag without a value is no tag', async () => {
    const a = await openA(newFile());
    const b = await EmbeddedBackend.open({ path: newFile() });
    try {
      const pts: Point[] = [];
      for (let i = 0; i < 6; i++) {
        const tags: Record<string, string> = [{ device: 'd', site: 's' }, { site: 's', device: 'd' }, { site: 's', extra: '', device: 'd' }][i % 3];
        pts.push({ measurement: 'm', tags, fields: { v: i }, ts: T0 + i });
        pts.push({ measurement: 'm', tags: { device: 'd', site: `other ${i % 2}` }, fields: { v: 10 + i }, ts: T0 + i });
      }
      // One point a batch, then all at once: each batch meets known and new series.
      for (const p of pts) await writeA(a, [p]);
      await b.write(withPoints(pts));
      for (const store of [a, b]) {
        const counts = async (site: string): Promise<number[]> =>
          (await store.query({ measurement: 'm', fields: ['v'], where: { site }, start: T0, end: T0 + 10 })).series.map((s) => s.points.length);
        expect(await counts('s')).toEqual([6]);
        expect(await counts('other 0')).toEqual([3]);
        expect(await counts('other 1')).toEqual([3]);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('points sharing one tags object (a batch of readings) in two measurements and between other series: each in its own', async () => {
    const a = await openA(newFile());
    const b = await EmbeddedBackend.open({ path: newFile() });
    try {
      const shared = { device: 'd', site: 's' };
      const pts: Point[] = [];
      for (let i = 0; i < 8; i++) {
        // Runs of the shared tags, broken by another measurement with the same object and by another series.
        pts.push({ measurement: 'm', tags: shared, fields: { v: i }, ts: T0 + i });
        pts.push({ measurement: 'm', tags: shared, fields: { w: -i }, ts: T0 + i });
        if (i % 2 === 0) pts.push({ measurement: 'n', tags: shared, fields: { v: 100 + i }, ts: T0 + i });
        if (i % 3 === 0) pts.push({ measurement: 'm', tags: { device: 'e', site: 's' }, fields: { v: 200 + i }, ts: T0 + i });
      }
      await writeA(a, pts);
      await writeA(a, pts.map((p) => ({ ...p, ts: p.ts + 100 })));
      for (const p of [...pts, ...pts.map((q) => ({ ...q, ts: q.ts + 100 }))]) await b.write(batchOf([p]));
      const all = async (store: StoreBackend): Promise<unknown[]> => [
        await store.query({ measurement: 'm', fields: ['v', 'w'], start: T0, end: T0 + 1000 }),
        await store.query({ measurement: 'n', fields: ['v'], start: T0, end: T0 + 1000 }),
      ];
      const got = (await all(a)) as Array<{ series: Series[] }>;
      expect(got).toEqual(await all(b));
      expect(got[0].series.map((x) => [x.device, x.field, x.points.length])).toEqual([
        ['d', 'v', 16],
        ['d', 'w', 16],
        ['e', 'v', 6],
      ]);
      expect(got[1].series.map((x) => [x.device, x.field, x.points.length])).toEqual([['d', 'v', 8]]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a point the line protocol cannot carry (not checked by checkPoint) fails the batch with its index, nothing stored', async () => {
    const store = await openA(newFile());
    try {
      await writeA(store, [point('dev', T0, { v: 1 })]);
      const bad = [point('dev', T0 + 1, { v: 2 }), { ...point('dev', T0 + 2, { v: 3 }), measurement: 'a\nb' }];
      await expect(writeA(store, bad)).rejects.toMatchObject({ retryable: false, message: expect.stringContaining('line 2: measurement "a\\nb" contains a control character') });
      const r = await store.query(q({ fields: ['v'], devices: ['dev'] }));
      expect(r.series[0].points).toEqual([[T0, 1]]);
    } finally {
      await store.close();
    }
  });

});
