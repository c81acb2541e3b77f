/**
 * The backends' partition operations (retention tiering: exportRange, countRange, extentOf,
 * deleteRange) against a real DuckDB file in a temp dir and a real influxd 1.x on loopback: hostile
 * measurement, tag and field names, all four value types (integers exactly, as bigint), `where`
 * filters, ranges that end exactly where data just outside them begins, deletes with a right and a
 * wrong `expect`, writing the same points back after a delete (no duplicates), and exports large
 * enough to arrive in several chunks.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';
import { InfluxV1Backend } from '../../nodes/lib/store/influx-v1';
import { StoreError, type Batch, type ExportRow, type FieldValue, type PartitionSelector, type Point, type StoreBackend } from '../../nodes/lib/store/types';
import { removeDataDir, startInfluxV1, type InfluxV1Service } from '../support/tsdb';

jest.setTimeout(180_000);

const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;
const END = T0 + DAY;

/** Names line protocol can carry (no control characters, no trailing backslash) that quoting must not mangle. */
const MEASUREMENT = 'tele metry,"q" \'s\' a=b \\x ünï 🌡️';
const DEVICES = ['dev "1", \'q\' a=b \\ back 温度 🔥', "x' OR '1'='1", 'plain'];
const TAG = 'loc ation,"x"=\\y';
const TAG_VALUES = ['hall =1 \\ 🏭', "'; DROP TABLE series; --"];
const FIELDS: Record<string, FieldValue> = {
  'temp °C, "x"=y \\z': 21.5,
  whole_float: 42,
  tiny: 1e-7,
  huge: 1e20,
  negative_zero: -0,
  count: 42n,
  max_int: 9_223_372_036_854_775_807n,
  min_int: -9_223_372_036_854_775_807n,
  past_2_53: 9_007_199_254_740_993n,
  'on "b"': true,
  off: false,
  text: 'he said "hi", a=b \\ back\nnew line 😀 ünï',
  empty: '',
  digits: '12345678901234567890',
};

function batchOf(points: Point[]): Batch {
  return { lines: points.map(encodePoint).join('\n'), count: points.length };
}

function typeLetter(v: FieldValue): string {
  return typeof v === 'number' ? 'f' : typeof v === 'bigint' ? 'i' : typeof v === 'boolean' ? 'b' : 's';
}

/** A row as comparable text: its key, its value's type and its value (String(-0) is "0", as rowHash has it). */
function rowKey(r: ExportRow): string {
  const tags = Object.entries(r.tags).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return JSON.stringify([r.measurement, r.device, tags, r.field, r.ts, typeLetter(r.value), String(r.value)]);
}

/** The export rows a set of points makes (one per field value). */
function rowsOf(points: Point[]): ExportRow[] {
  const out: ExportRow[] = [];
  for (const p of points) {
    const { device = '', ...tags } = p.tags;
    for (const [field, value] of Object.entries(p.fields)) out.push({ measurement: p.measurement, device, tags, field, ts: p.ts, value });
  }
  return out;
}

function keys(rows: ExportRow[]): string[] {
  return rows.map(rowKey).sort();
}

function inSelection(p: Point, sel: PartitionSelector): boolean {
  if (p.measurement !== sel.measurement || p.ts < sel.start || p.ts >= sel.end) return false;
  for (const [k, v] of Object.entries(sel.where ?? {})) if ((p.tags[k] ?? '') !== v) return false;
  return true;
}

async function exportAll(b: StoreBackend, sel: PartitionSelector): Promise<{ rows: ExportRow[]; calls: number[]; total: number }> {
  const rows: ExportRow[] = [];
  const calls: number[] = [];
  const total = await b.exportRange!(sel, async (chunk) => {
    calls.push(chunk.length);
    await new Promise((r) => setImmediate(r));
    rows.push(...chunk);
  });
  return { rows, calls, total };
}

async function storeError(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof StoreError) return e;
    throw new Error(`expected a StoreError, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected a StoreError, but it succeeded');
}

/**
 * The data set: every device with both tag values, one point with no device tag, every field on
 * each point; times at the range's edges and just outside them; a second measurement in the range.
 */
function dataSet(): Point[] {
  const points: Point[] = [];
  const times = [T0 - 1, T0, T0 + 1, T0 + 12 * 3_600_000, END - 1, END];
  for (const device of DEVICES) {
    for (const [t, value] of TAG_VALUES.entries()) {
      for (const ts of times) points.push({ measurement: MEASUREMENT, tags: { device, [TAG]: value, level: t === 0 ? '1m' : '1h' }, fields: FIELDS, ts });
    }
  }
  points.push({ measurement: MEASUREMENT, tags: { [TAG]: TAG_VALUES[0] }, fields: { 'temp °C, "x"=y \\z': 1.25, count: 7n }, ts: T0 + 5 });
  points.push({ measurement: 'other', tags: { device: 'plain' }, fields: { v: 1.5 }, ts: T0 + 10 });
  return points;
}

/** The same checks for every backend that has the partition operations. */
function partitionSuite(name: string, open: () => Promise<{ backend: StoreBackend; fresh: () => Promise<StoreBackend> }>, opts: { exactCountInDelete: boolean }): void {
  describe(name, () => {
    let backend: StoreBackend;
    let fresh: () => Promise<StoreBackend>;
    const points = dataSet();
    const day: PartitionSelector = { measurement: MEASUREMENT, start: T0, end: END };
    const wide: PartitionSelector = { measurement: MEASUREMENT, start: T0 - DAY, end: END + DAY };

    beforeAll(async () => {
      ({ backend, fresh } = await open());
      await backend.write(batchOf(points));
    });

    test('exportRange returns exactly the values in the range, typed (integers as bigint), and says how many', async () => {
      const { rows, calls, total } = await exportAll(backend, day);
      const expected = rowsOf(points.filter((p) => inSelection(p, day)));
      expect(expected.length).toBe(3 * 2 * 4 * Object.keys(FIELDS).length + 2);
      expect(keys(rows)).toEqual(keys(expected));
      expect(total).toBe(expected.length);
      expect(calls.reduce((a, b) => a + b, 0)).toBe(total);
      // Types exactly as written: a whole float stays a number, integers beyond 2^53 are exact.
      const dev = DEVICES[2];
      const of = (field: string): FieldValue | undefined => rows.find((r) => r.device === dev && r.field === field && r.ts === T0 + 1)?.value;
      expect(of('whole_float')).toBe(42);
      expect(of('huge')).toBe(1e20);
      expect(of('max_int')).toBe(9_223_372_036_854_775_807n);
      expect(of('past_2_53')).toBe(9_007_199_254_740_993n);
      expect(of('digits')).toBe('12345678901234567890');
      expect(of('on "b"')).toBe(true);
      // The point without a device tag: device '' and its other tags.
      const bare = rows.filter((r) => r.device === '');
      expect(bare.map((r) => [r.field, r.tags, r.value]).sort()).toEqual([
        ['count', { [TAG]: TAG_VALUES[0] }, 7n],
        ['temp °C, "x"=y \\z', { [TAG]: TAG_VALUES[0] }, 1.25],
      ]);
    });

    test('countRange and extentOf agree with the export; an empty selection is 0 and null', async () => {
      const expected = rowsOf(points.filter((p) => inSelection(p, day)));
      expect(await backend.countRange!(day)).toBe(expected.length);
      expect(await backend.extentOf!(day)).toEqual({ min: T0, max: END - 1, count: expected.length });
      const wideRows = rowsOf(points.filter((p) => inSelection(p, wide)));
      expect(await backend.extentOf!(wide)).toEqual({ min: T0 - 1, max: END, count: wideRows.length });
      const nothing = { measurement: MEASUREMENT, start: END + DAY, end: END + 2 * DAY };
      expect(await backend.countRange!(nothing)).toBe(0);
      expect(await backend.extentOf!(nothing)).toBeNull();
      expect(await backend.countRange!({ measurement: 'no such measurement', start: T0, end: END })).toBe(0);
      expect(await backend.extentOf!({ ...day, where: { device: 'nobody' } })).toBeNull();
    });

    test('where filters select by device (also no device: "") and by other tags, however hostile', async () => {
      const wheres: Array<Record<string, string>> = [
        { device: DEVICES[0] },
        { device: DEVICES[1], level: '1h' },
        { level: '1m' },
        { [TAG]: TAG_VALUES[1] },
        { [TAG]: TAG_VALUES[0], device: '' },
        { level: "1m' OR '1'='1" },
        { 'no such tag': 'x' },
      ];
      for (const where of wheres) {
        const sel = { ...day, where };
        const expected = rowsOf(points.filter((p) => inSelection(p, sel)));
        const { rows, total } = await exportAll(backend, sel);
        expect({ where, rows: keys(rows) }).toEqual({ where, rows: keys(expected) });
        expect(total).toBe(expected.length);
        expect(await backend.countRange!(sel)).toBe(expected.length);
      }
      expect(await backend.countRange!({ ...day, where: { device: '' } })).toBe(2);
      expect(await backend.countRange!({ ...day, where: { level: "1m' OR '1'='1" } })).toBe(0);
    });

    test('a selector that is not one is refused with a StoreError before anything runs', async () => {
      for (const bad of [
        { measurement: '', start: T0, end: END },
        { measurement: MEASUREMENT, start: END, end: T0 },
        { measurement: MEASUREMENT, start: T0 + 0.5, end: END },
        { measurement: MEASUREMENT, start: T0, end: END, where: { level: 1 as unknown as string } },
      ]) {
        const e = await storeError(backend.deleteRange!(bad));
        expect(e.retryable).toBe(false);
      }
      expect(await backend.countRange!(wide)).toBe(rowsOf(points.filter((p) => inSelection(p, wide))).length);
    });

    test('deleteRange with a wrong expect deletes nothing and says both counts', async () => {
      const sel = { ...day, where: { device: DEVICES[0] } };
      const n = rowsOf(points.filter((p) => inSelection(p, sel))).length;
      const e = await storeError(backend.deleteRange!(sel, n - 1));
      expect(e.retryable).toBe(false);
      expect(e.message).toContain('counts differ');
      expect(e.message).toContain(`expected ${n - 1}`);
      expect(e.message).toContain(`holds ${n}`);
      expect(await backend.countRange!(sel)).toBe(n);
      expect(await backend.countRange!(wide)).toBe(rowsOf(points.filter((p) => inSelection(p, wide))).length);
    });

    test('deleteRange deletes exactly the selection: values just outside the range and outside the filter survive', async () => {
      const sel = { ...day, where: { device: DEVICES[0] } };
      const gone = points.filter((p) => inSelection(p, sel));
      expect(await backend.deleteRange!(sel, rowsOf(gone).length)).toBe(rowsOf(gone).length);
      expect(await backend.countRange!(sel)).toBe(0);
      const left = points.filter((p) => !inSelection(p, sel) && inSelection(p, wide));
      const { rows } = await exportAll(backend, wide);
      expect(keys(rows)).toEqual(keys(rowsOf(left)));
      // The device's values at T0 - 1 and at END survived.
      expect(new Set(rows.filter((r) => r.device === DEVICES[0]).map((r) => r.ts))).toEqual(new Set([T0 - 1, END]));
      // Without expect: the rest of the day, every device; returns how many.
      const rest = rowsOf(points.filter((p) => inSelection(p, day) && !inSelection(p, sel))).length;
      expect(await backend.deleteRange!(day)).toBe(rest);
      expect(await backend.extentOf!(day)).toBeNull();
      expect(keys((await exportAll(backend, wide)).rows)).toEqual(keys(rowsOf(points.filter((p) => inSelection(p, wide) && !inSelection(p, day)))));
      expect(await backend.countRange!({ measurement: 'other', start: T0, end: END })).toBe(1);
    });

    test('writing the same points back after a delete restores them once: no duplicates, also when written twice', async () => {
      await backend.write(batchOf(points));
      await backend.write(batchOf(points));
      const expected = rowsOf(points.filter((p) => inSelection(p, wide)));
      const { rows, total } = await exportAll(backend, wide);
      expect(total).toBe(expected.length);
      expect(keys(rows)).toEqual(keys(expected));
      expect(await backend.countRange!(wide)).toBe(expected.length);
      // A newer value at a restored key replaces it (the store's idempotence is intact).
      const dev = DEVICES[2];
      await backend.write(batchOf([{ measurement: MEASUREMENT, tags: { device: dev, [TAG]: TAG_VALUES[0], level: '1m' }, fields: { count: 43n }, ts: T0 + 1 }]));
      const sel = { ...day, where: { device: dev, [TAG]: TAG_VALUES[0] } };
      const after = (await exportAll(backend, sel)).rows.filter((r) => r.field === 'count' && r.ts === T0 + 1);
      expect(after.map((r) => r.value)).toEqual([43n]);
      expect(await backend.countRange!(wide)).toBe(expected.length);
    });

    test('an export of 50,000 values arrives in several chunks of at most 10,000 and adds up', async () => {
      const b = await fresh();
      const big: Point[] = [];
      // Uneven on purpose: 30,000 values in the first 3 seconds, 20,000 spread over the day (one type per field: InfluxDB insists).
      for (let i = 0; i < 30_000; i++) big.push({ measurement: 'big', tags: { device: `d${i % 10}` }, fields: i % 3 === 0 ? { n: BigInt(i) } : { v: i + 0.5 }, ts: T0 + Math.floor(i / 10) });
      for (let i = 0; i < 20_000; i++) big.push({ measurement: 'big', tags: { device: `d${i % 10}`, level: '1m' }, fields: { on: i % 2 === 0 }, ts: T0 + 3_000 + Math.floor(i / 10) * 40_000 });
      for (let o = 0; o < big.length; o += 5000) await b.write(batchOf(big.slice(o, o + 5000)));
      const sel = { measurement: 'big', start: T0, end: END };
      const { rows, calls, total } = await exportAll(b, sel);
      expect(total).toBe(50_000);
      expect(calls.length).toBeGreaterThanOrEqual(5);
      expect(Math.max(...calls)).toBeLessThanOrEqual(10_000);
      expect(calls.reduce((a, c) => a + c, 0)).toBe(50_000);
      expect(keys(rows)).toEqual(keys(rowsOf(big)));
      expect(await b.countRange!(sel)).toBe(50_000);
      expect(await b.extentOf!(sel)).toEqual({ min: T0, max: T0 + 3_000 + 1999 * 40_000, count: 50_000 });
      expect(await b.deleteRange!({ ...sel, where: { level: '1m' } }, 20_000)).toBe(20_000);
      expect(await b.countRange!(sel)).toBe(30_000);
    });

    if (opts.exactCountInDelete) {
      test('a delete queued behind a write counts and deletes what that write stored (no interleaving)', async () => {
        const sel = { measurement: 'queued', start: T0, end: END };
        const w = backend.write(batchOf(Array.from({ length: 3000 }, (_, i) => ({ measurement: 'queued', tags: { device: 'q' }, fields: { v: i }, ts: T0 + i }))));
        const d = backend.deleteRange!(sel, 3000);
        await w;
        expect(await d).toBe(3000);
        expect(await backend.countRange!(sel)).toBe(0);
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------

let tmp: string;
const opened: StoreBackend[] = [];
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-partitions-'));
});
afterAll(async () => {
  for (const b of opened) await b.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

let fileNo = 0;
async function openEmbedded(): Promise<EmbeddedBackend> {
  const b = await EmbeddedBackend.open({ path: path.join(tmp, `store-${++fileNo}.duckdb`) });
  opened.push(b);
  return b;
}

partitionSuite(
  'embedded store (DuckDB file)',
  async () => ({ backend: await openEmbedded(), fresh: openEmbedded }),
  { exactCountInDelete: true },
);

describe('embedded store: the series catalogue after a delete', () => {
  test("deleting a series' newest values, then writing older and newer ones, keeps one value per key (also after reopening)", async () => {
    const file = path.join(tmp, 'catalogue.duckdb');
    let b = await EmbeddedBackend.open({ path: file });
    const pts = (from: number, to: number, v: (i: number) => FieldValue): Point[] =>
      Array.from({ length: to - from }, (_, k) => ({ measurement: 'cat', tags: { device: 'c' }, fields: { v: v(from + k) }, ts: T0 + (from + k) * 1000 }));
    const sel = (a: number, z: number): PartitionSelector => ({ measurement: 'cat', start: T0 + a * 1000, end: T0 + z * 1000 });
    await b.write(batchOf(pts(0, 100, (i) => i + 0.5)));
    // Delete the newest 50: the series' newest stored ts drops from 99 s to 49 s.
    expect(await b.deleteRange(sel(50, 100), 50)).toBe(50);
    // Values at 40..59 (half of them replace stored ones), then 45..120 again with another type.
    await b.write(batchOf(pts(40, 60, (i) => BigInt(i))));
    await b.write(batchOf(pts(45, 121, (i) => `s${i}`)));
    const check = async (): Promise<void> => {
      const rows: ExportRow[] = [];
      expect(await b.exportRange(sel(0, 200), (r) => void rows.push(...r))).toBe(121);
      const byTs = new Map(rows.map((r) => [(r.ts - T0) / 1000, r.value]));
      expect(byTs.size).toBe(121);
      expect(byTs.get(10)).toBe(10.5);
      expect(byTs.get(42)).toBe(42n);
      expect(byTs.get(45)).toBe('s45');
      expect(byTs.get(120)).toBe('s120');
      expect(await b.extentOf(sel(0, 200))).toEqual({ min: T0, max: T0 + 120_000, count: 121 });
    };
    await check();
    // Delete everything: a later write of old values is stored once.
    expect(await b.deleteRange(sel(0, 200))).toBe(121);
    await b.write(batchOf(pts(0, 10, (i) => i + 0.25)));
    await b.write(batchOf(pts(0, 10, (i) => i + 0.25)));
    expect(await b.countRange(sel(0, 200))).toBe(10);
    await b.write(batchOf(pts(10, 121, (i) => (i < 40 ? i + 0.5 : i < 45 ? BigInt(i) : `s${i}`))));
    await b.write(batchOf(pts(0, 10, (i) => i + 0.5)));
    await check();
    await b.close();
    b = await EmbeddedBackend.open({ path: file });
    opened.push(b);
    await check();
    await b.write(batchOf(pts(100, 121, (i) => `s${i}`)));
    await check();
  });

  test('a wrong expect leaves the store writable and unchanged', async () => {
    const b = await openEmbedded();
    await b.write(batchOf([{ measurement: 'e', tags: {}, fields: { v: 1n, w: 'x' }, ts: T0 }]));
    const e = await storeError(b.deleteRange({ measurement: 'e', start: T0, end: END }, 3));
    expect(e.message).toMatch(/expected 3 values but the selection holds 2/);
    await b.write(batchOf([{ measurement: 'e', tags: {}, fields: { v: 2n }, ts: T0 }]));
    const rows: ExportRow[] = [];
    await b.exportRange({ measurement: 'e', start: T0, end: END }, (r) => void rows.push(...r));
    expect(keys(rows)).toEqual(keys(rowsOf([{ measurement: 'e', tags: {}, fields: { v: 2n, w: 'x' }, ts: T0 }])));
  });
});

// ---------------------------------------------------------------------------------------------

describe('InfluxDB 1.x', () => {
  let influx: InfluxV1Service;
  let dbNo = 0;
  const newDb = async (): Promise<InfluxV1Backend> => {
    const b = new InfluxV1Backend({ url: influx.url, db: `partitions_${++dbNo}`, timeoutMs: 30_000 });
    await b.createDatabase();
    return b;
  };

  beforeAll(async () => {
    influx = await startInfluxV1();
  });
  afterAll(async () => {
    await influx?.stop();
    removeDataDir(influx);
  });

  partitionSuite(
    'InfluxV1Backend with influxd 1.x',
    async () => ({ backend: await newDb(), fresh: newDb }),
    { exactCountInDelete: false },
  );
});
