/**
 * Retention tiering end to end against real stores (issue 9): a DuckDB file (the embedded store) and a
 * real influxd 1.x, with the executor (nodes/lib/retention/run.ts) moving days to warm Parquet and the
 * cold archive, verifying before it deletes, resuming after a failure injected after every phase,
 * restoring ranges back into the hot store, and answering queries across the tiers exactly as the
 * store did before the move. Hostile measurement, tag and field names throughout.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { DAY_MS } from '../../nodes/lib/retention/manifest';
import { parsePolicy, type RetentionPolicy } from '../../nodes/lib/retention/policy';
import { PHASES, Retention, type Phase } from '../../nodes/lib/retention/run';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';
import { InfluxV1Backend } from '../../nodes/lib/store/influx-v1';
import type { ExportRow, Point, QueryResult, RangeQuery, StoreBackend } from '../../nodes/lib/store/types';
import { removeDataDir, startInfluxV1, type InfluxV1Service } from '../support/tsdb';

jest.setTimeout(300_000);

const NOW = Date.UTC(2026, 10, 20, 13, 30);
const TODAY = Date.UTC(2026, 10, 20);
const MEAS = 'tele metry,"q" a=b \\x ünï';
const DEVICES = ['dev "1", a=b 温度', "x' OR '1'='1", 'plain'];
const DAYS = 24;

function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tw-ret-${prefix}-`));
}

/** Hourly points for DAYS days back from today, 3 devices, float + int + bool + string fields. */
function points(days = DAYS, measurement = MEAS): Point[] {
  const out: Point[] = [];
  for (let d = 0; d < days; d++) {
    for (let h = 0; h < 24; h += 2) {
      const ts = TODAY - d * DAY_MS + h * 3_600_000 + 123;
      DEVICES.forEach((device, i) => {
        out.push({ measurement, tags: { device, 'lo,c "x"': `hall ${i} =\\ x` }, fields: { 'temp °C "t"': 20 + i + h / 10 + d / 100, count: BigInt(d * 100 + h), on: h % 4 === 0, note: `d${d} "h"${h}` }, ts });
      });
    }
  }
  return out;
}

async function write(b: StoreBackend, pts: Point[]): Promise<void> {
  for (let i = 0; i < pts.length; i += 2000) {
    const chunk = pts.slice(i, i + 2000);
    await b.write({ lines: chunk.map(encodePoint).join('\n'), count: chunk.length });
  }
}

async function exportAll(b: StoreBackend, measurement = MEAS): Promise<string[]> {
  const rows: ExportRow[] = [];
  await b.exportRange!({ measurement, start: 0, end: TODAY + 2 * DAY_MS }, (r) => {
    rows.push(...r);
  });
  return rows.map((r) => JSON.stringify([r.device, Object.entries(r.tags).sort(), r.field, r.ts, typeof r.value, String(r.value)])).sort();
}

function policy(warm: number, cold: number | null, measurement = MEAS): RetentionPolicy {
  return parsePolicy({ rules: [{ name: 'raw', measurement, hotDays: 5, warmDays: warm, coldDays: cold }] });
}

const QUERIES: Array<[string, Omit<RangeQuery, 'measurement'>]> = [
  ['raw, every field', { fields: ['temp °C "t"', 'count', 'on', 'note'], start: TODAY - 30 * DAY_MS, end: TODAY + DAY_MS }],
  ['raw, one device, a range inside warm', { fields: ['temp °C "t"'], devices: ["x' OR '1'='1"], start: TODAY - 9 * DAY_MS - 5000, end: TODAY - 7 * DAY_MS + 77 }],
  ['daily mean', { fields: ['temp °C "t"', 'count'], start: TODAY - 30 * DAY_MS, end: TODAY + DAY_MS, bucketMs: DAY_MS, agg: 'mean' }],
  ['6-hour max', { fields: ['temp °C "t"'], start: TODAY - 30 * DAY_MS, end: TODAY + DAY_MS, bucketMs: 6 * 3_600_000, agg: 'max' }],
  ['daily count, where', { fields: ['count'], where: { 'lo,c "x"': 'hall 2 =\\ x' }, start: TODAY - 30 * DAY_MS, end: TODAY + DAY_MS, bucketMs: DAY_MS, agg: 'count' }],
  ['raw, downsampled to 40 points a series', { fields: ['temp °C "t"'], start: TODAY - 30 * DAY_MS, end: TODAY + DAY_MS, maxPoints: 40 }],
  ['sum of the whole range', { fields: ['count'], start: TODAY - 30 * DAY_MS, end: TODAY + DAY_MS, agg: 'sum' }],
];

async function answers(query: (q: RangeQuery) => Promise<QueryResult>, measurement = MEAS): Promise<QueryResult[]> {
  const out: QueryResult[] = [];
  for (const [, q] of QUERIES) out.push(await query({ measurement, ...q }));
  return out.map(rounded);
}

/**
 * Numbers to 12 significant digits: a mean is a floating-point sum whose order DuckDB's parallel
 * aggregation does not fix, so the last bits of the same mean can differ between two runs.
 */
function rounded(r: QueryResult): QueryResult {
  return { series: r.series.map((s) => ({ ...s, points: s.points.map(([t, v]) => [t, typeof v === 'number' ? Number(v.toPrecision(12)) : v] as [number, typeof v]) })) };
}

/** Answers with their series in one order (InfluxDB orders series its own way; the merged answer by device and field). */
function sorted(rs: QueryResult[]): QueryResult[] {
  const key = (s: QueryResult['series'][number]): string => JSON.stringify([s.device, s.field, s.tags ?? {}]);
  return rs.map((r) => ({ series: [...r.series].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)) }));
}

/** Every file under dir, relative, '/' separated. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name), rel ? `${rel}/${e.name}` : e.name);
      else out.push(rel ? `${rel}/${e.name}` : e.name);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** The files the manifest names: exactly those exist (nothing orphaned, nothing missing). */
function expectFilesMatchManifest(r: Retention, root: string): void {
  const named = r.entries().flatMap((e) => (e.file ? [e.file.path] : [])).sort();
  const onDisk = [...filesUnder(path.join(root, 'warm')).map((f) => `warm/${f}`), ...filesUnder(path.join(root, 'archive')).filter((f) => !f.startsWith('.tmp')).map((f) => f)].sort();
  expect(onDisk).toEqual(named);
}

describe('retention on the embedded store', () => {
  const dirs: string[] = [];
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close().catch(() => undefined);
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  async function setup(pts = points()): Promise<{ backend: EmbeddedBackend; root: string; before: QueryResult[]; rows: string[] }> {
    const dir = tmp('emb');
    dirs.push(dir);
    const backend = await EmbeddedBackend.open({ path: path.join(dir, 'hot.duckdb') });
    open.push(backend);
    await write(backend, pts);
    const before = await answers((q) => backend.query(q));
    return { backend, root: path.join(dir, 'retention'), before, rows: await exportAll(backend) };
  }

  async function retention(backend: StoreBackend, root: string, pol: RetentionPolicy, extra: Partial<Parameters<typeof Retention.open>[0]> = {}): Promise<Retention> {
    const r = await Retention.open({ root, backend, policy: pol, now: () => NOW, ...extra });
    open.push(r);
    return r;
  }

  it('moves days past hot to warm and past warm to cold, deletes them from hot only after verifying, and reads across tiers as before', async () => {
    const { backend, root, before, rows } = await setup();
    const r = await retention(backend, root, policy(7, null));
    const report = await r.run();
    expect(report.errors).toEqual([]);
    // Days 6..12 back are past hot (5 d) and within warm (7 d); 13..23 are cold.
    const tiers = Object.fromEntries(r.entries().map((e) => [e.day, e.tier]));
    const dayName = (d: number): string => new Date(TODAY - d * DAY_MS).toISOString().slice(0, 10);
    for (let d = 6; d < DAYS; d++) expect(tiers[dayName(d)]).toBe(d <= 12 ? 'warm' : 'cold');
    for (let d = 0; d <= 5; d++) expect(tiers[dayName(d)]).toBeUndefined();
    expect(report.moved).toHaveLength(DAYS - 6);
    const perDay = 12 * DEVICES.length * 4;
    for (const m of report.moved) expect([m.rows, m.hotRows]).toEqual([perDay, perDay]);
    expect(report.hotRowsDeleted).toBe((DAYS - 6) * perDay);
    // Hot now holds only the last 6 days; the tiers hold the rest, and queries answer as before.
    expect(await backend.countRange!({ measurement: MEAS, start: 0, end: TODAY - 5 * DAY_MS })).toBe(0);
    expect(await backend.countRange!({ measurement: MEAS, start: TODAY - 5 * DAY_MS, end: TODAY + DAY_MS })).toBe(6 * perDay);
    expect(await answers((q) => r.query(q, (qq) => backend.query(qq)))).toEqual(before);
    expectFilesMatchManifest(r, root);
    const s = r.summary();
    expect(s.partitions).toEqual({ warm: 7, cold: 11, deleted: 0, pending: 0, restored: 0 });
    expect(s.rows.warm + s.rows.cold).toBe((DAYS - 6) * perDay);
    // A second run has nothing to do.
    const again = await r.run();
    expect([again.moved.length, again.deleted.length, again.errors.length]).toEqual([0, 0, 0]);
    // Restoring everything brings back exactly what was there.
    const restored = await r.restore({ start: 0, end: TODAY + DAY_MS });
    expect(restored.errors).toEqual([]);
    expect(restored.rows).toBe((DAYS - 6) * perDay);
    expect(await exportAll(backend)).toEqual(rows);
    expect(await answers((q) => r.query(q, (qq) => backend.query(qq)))).toEqual(before);
  });

  it('deletes past the last tier and never before', async () => {
    const { backend, root } = await setup();
    const r = await retention(backend, root, policy(4, 6));
    const report = await r.run();
    expect(report.errors).toEqual([]);
    // hot 5 + warm 4 + cold 6 = 15 days: days 16.. back are deleted everywhere.
    const byTier = (t: string): number => r.entries().filter((e) => e.tier === t).length;
    expect([byTier('warm'), byTier('cold'), byTier('deleted')]).toEqual([4, 6, DAYS - 16]);
    expect(await backend.countRange!({ measurement: MEAS, start: 0, end: TODAY - 15 * DAY_MS })).toBe(0);
    const res = await r.query({ measurement: MEAS, fields: ['count'], start: 0, end: TODAY + DAY_MS, agg: 'count', bucketMs: DAY_MS }, (q) => backend.query(q));
    const days = new Set(res.series.flatMap((s) => s.points.map(([t]) => t)));
    expect(days.size).toBe(16);
    expect(Math.min(...days)).toBe(TODAY - 15 * DAY_MS);
    expectFilesMatchManifest(r, root);
  });

  it.each(PHASES.map((p) => [p]))('resumes a run that failed after "%s" without losing or duplicating a row', async (phase: Phase) => {
    const { backend, root, before, rows } = await setup(points(12));
    let failed = 0;
    const r1 = await retention(backend, root, policy(3, null), {
      failAt: (p, a) => {
        // Fail the first warm move and the first cold move at this phase.
        if (p === phase && (a.day === new Date(TODAY - 6 * DAY_MS).toISOString().slice(0, 10) || a.day === new Date(TODAY - 11 * DAY_MS).toISOString().slice(0, 10))) {
          failed++;
          throw new Error(`injected failure after ${p}`);
        }
      },
    });
    const first = await r1.run();
    const expectedFailures = phase === 'archived' ? 1 : 2; // only the cold move has an archive phase
    expect(failed).toBe(expectedFailures);
    expect(first.errors).toHaveLength(expectedFailures);
    await r1.close();
    // A restart: the manifest is read again, the run finishes what was left.
    const r2 = await retention(backend, root, policy(3, null));
    const second = await r2.run();
    expect(second.errors).toEqual([]);
    expect(r2.entries().filter((e) => e.pending)).toEqual([]);
    expect(await backend.countRange!({ measurement: MEAS, start: 0, end: TODAY - 5 * DAY_MS })).toBe(0);
    expect(await answers((q) => r2.query(q, (qq) => backend.query(qq)))).toEqual(before);
    expectFilesMatchManifest(r2, root);
    await r2.restore({ start: 0, end: TODAY + DAY_MS });
    expect(await exportAll(backend)).toEqual(rows);
  });

  it('a row written between export and delete stops the delete; the next run moves it too', async () => {
    const { backend, root } = await setup(points(8));
    const late: Point = { measurement: MEAS, tags: { device: 'plain', 'lo,c "x"': 'hall 2 =\\ x' }, fields: { count: 999n }, ts: TODAY - 7 * DAY_MS + 5 };
    let wrote = false;
    const r = await retention(backend, root, policy(30, null), {
      failAt: async (p, a) => {
        if (p === 'recorded' && !wrote && a.day === new Date(TODAY - 7 * DAY_MS).toISOString().slice(0, 10)) {
          wrote = true;
          await write(backend, [late]);
        }
      },
    });
    const first = await r.run();
    expect(first.errors.map((e) => e.error).join()).toMatch(/counts differ, nothing deleted/);
    const day7 = (): Promise<number> => backend.countRange!({ measurement: MEAS, start: TODAY - 7 * DAY_MS, end: TODAY - 6 * DAY_MS });
    expect(await day7()).toBe(12 * 3 * 4 + 1);
    const second = await r.run();
    expect(second.errors).toEqual([]);
    expect(await day7()).toBe(0);
    const e = r.entries().find((x) => x.day === new Date(TODAY - 7 * DAY_MS).toISOString().slice(0, 10))!;
    expect(e.file!.rows).toBe(12 * 3 * 4 + 1);
    expectFilesMatchManifest(r, root);
  });

  it('a pending move whose hot rows were replaced (same count, other rows) is moved again, not deleted uncopied', async () => {
    const { backend, root } = await setup(points(8));
    const day = new Date(TODAY - 7 * DAY_MS).toISOString().slice(0, 10);
    let fail = true;
    const r1 = await retention(backend, root, policy(30, null), {
      failAt: (p, a) => {
        if (p === 'recorded' && a.day === day && fail) {
          fail = false;
          throw new Error('injected');
        }
      },
    });
    expect((await r1.run()).errors).toHaveLength(1);
    await r1.close();
    // Meanwhile one hot value of that day goes and another comes: the count stays, the rows do not.
    const gone = TODAY - 7 * DAY_MS + 123; // the first reading time of the day
    const sel = { measurement: MEAS, start: gone, end: gone + 1, where: { device: 'plain' } };
    const removed = await backend.deleteRange!(sel);
    expect(removed).toBe(4);
    const fresh = TODAY - 7 * DAY_MS + 999;
    await write(backend, [{ measurement: MEAS, tags: { device: 'plain', 'lo,c "x"': 'hall 2 =\\ x' }, fields: { count: 1n, on: true, note: 'new', 'temp °C "t"': 1.5 }, ts: fresh }]);
    const perDay = 12 * 3 * 4;
    expect(await backend.countRange!({ measurement: MEAS, start: TODAY - 7 * DAY_MS, end: TODAY - 6 * DAY_MS })).toBe(perDay);
    const r2 = await retention(backend, root, policy(30, null));
    expect((await r2.run()).errors).toEqual([]);
    // The new reading was copied before the hot rows went, and the removed one is still in the file (it was copied first).
    const e = r2.entries().find((x) => x.day === day)!;
    expect(e.pending).toBeUndefined();
    expect(e.file!.rows).toBe(perDay + 4);
    expect(await backend.countRange!({ measurement: MEAS, start: TODAY - 7 * DAY_MS, end: TODAY - 6 * DAY_MS })).toBe(0);
    const res = await r2.query({ measurement: MEAS, fields: ['note'], devices: ['plain'], start: fresh, end: fresh + 1 }, (q) => backend.query(q));
    expect(res.series[0].points).toEqual([[fresh, 'new']]);
    expectFilesMatchManifest(r2, root);
  });

  it('late rows for a moved day are read at once and folded into the next generation', async () => {
    const { backend, root } = await setup(points(8));
    const r = await retention(backend, root, policy(30, null));
    await r.run();
    const day = new Date(TODAY - 6 * DAY_MS).toISOString().slice(0, 10);
    const g1 = r.entries().find((e) => e.day === day)!;
    // A late row, and a late correction of a moved value (the hot value wins, as in the store).
    const ts = TODAY - 6 * DAY_MS + 123;
    await write(backend, [
      { measurement: MEAS, tags: { device: 'plain', 'lo,c "x"': 'hall 2 =\\ x' }, fields: { count: 4242n }, ts: ts + 1 },
      { measurement: MEAS, tags: { device: 'plain', 'lo,c "x"': 'hall 2 =\\ x' }, fields: { count: 7n }, ts },
    ]);
    const q: RangeQuery = { measurement: MEAS, fields: ['count'], devices: ['plain'], start: ts, end: ts + 2 };
    const seen = await r.query(q, (qq) => backend.query(qq));
    // Until the next run both copies of the corrected value are read (the tier's first, then hot's).
    expect(seen.series[0].points).toEqual([
      [ts, 600],
      [ts, 7],
      [ts + 1, 4242],
    ]);
    await r.run();
    const g2 = r.entries().find((e) => e.day === day)!;
    expect(g2.generation).toBe(g1.generation + 1);
    expect(g2.file!.rows).toBe(g1.file!.rows + 1);
    expect((await r.query(q, (qq) => backend.query(qq))).series[0].points).toEqual([
      [ts, 7],
      [ts + 1, 4242],
    ]);
    expectFilesMatchManifest(r, root);
  });

  it('restores a range idempotently, reads it from hot while restored, and sends it back after restoreDays', async () => {
    const { backend, root, before } = await setup(points(16));
    let now = NOW;
    const r = await retention(backend, root, policy(3, null), { now: () => now, restoreDays: 2 });
    await r.run();
    const start = TODAY - 12 * DAY_MS + 3_600_000; // rounds out to whole days: 12..9 back
    const end = TODAY - 9 * DAY_MS + 1;
    const one = await r.restore({ start, end });
    const two = await r.restore({ start, end });
    expect(one.partitions.map((p) => [p.day, p.tier])).toEqual([12, 11, 10, 9].map((d) => [new Date(TODAY - d * DAY_MS).toISOString().slice(0, 10), d > 8 ? 'cold' : 'warm']));
    expect(two.rows).toBe(one.rows);
    const inRange = (): Promise<number> => backend.countRange!({ measurement: MEAS, start: TODAY - 12 * DAY_MS, end: TODAY - 8 * DAY_MS });
    expect(await inRange()).toBe(one.rows);
    expect(await answers((q) => r.query(q, (qq) => backend.query(qq)))).toEqual(before);
    // While restored, runs leave those days alone.
    await r.run();
    expect(await inRange()).toBe(one.rows);
    now = NOW + 2 * DAY_MS + 1;
    const back = await r.run();
    expect(back.errors).toEqual([]);
    expect(await inRange()).toBe(0);
    expect(r.entries().filter((e) => e.restored)).toEqual([]);
    expect(await answers((q) => r.query(q, (qq) => backend.query(qq)))).toEqual(before);
    expectFilesMatchManifest(r, root);
  });

  it('refuses a file that no longer matches the manifest instead of building on it or restoring it', async () => {
    const { backend, root } = await setup(points(8));
    const r = await retention(backend, root, policy(30, null));
    await r.run();
    const e = r.entries()[0];
    const file = path.join(root, e.file!.path);
    const bytes = fs.readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const res = await r.restore({ start: e.start, end: e.end });
    expect(res.rows).toBe(0);
    expect(res.errors[0].error).toMatch(/does not match the manifest: sha256/);
  });

  it('refuses a backend that cannot export or delete ranges', async () => {
    const dir = tmp('nobackend');
    dirs.push(dir);
    const b = { kind: 'influxdb-v2', description: 'influxdb-v2 http://x', write: jest.fn(), query: jest.fn(), health: jest.fn(), close: jest.fn() } as unknown as StoreBackend;
    await expect(Retention.open({ root: dir, backend: b, policy: policy(3, null) })).rejects.toThrow(/needs the embedded store or InfluxDB 1.x.*bucket's retention/);
  });
});

describe('retention on InfluxDB 1.x', () => {
  let influx: InfluxV1Service;
  let backend: InfluxV1Backend;
  let dir: string;
  beforeAll(async () => {
    influx = await startInfluxV1();
  });
  afterAll(async () => {
    await influx?.stop();
    removeDataDir(influx);
  });
  beforeEach(async () => {
    dir = tmp('influx');
    const db = `ret_${Math.random().toString(36).slice(2, 8)}`;
    backend = new InfluxV1Backend({ url: influx.url, db });
    await backend.createDatabase();
  });
  afterEach(async () => {
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('moves, reads across tiers as before, resumes after a failure between record and delete, and restores', async () => {
    await write(backend, points(12));
    const before = await answers((q) => backend.query(q));
    const rows = await exportAll(backend);
    let fail = true;
    const r1 = await Retention.open({
      root: dir,
      backend,
      policy: policy(3, null),
      now: () => NOW,
      failAt: (p) => {
        if (p === 'recorded' && fail) {
          fail = false;
          throw new Error('injected');
        }
      },
    });
    const first = await r1.run();
    expect(first.errors).toHaveLength(1);
    await r1.close();
    const r = await Retention.open({ root: dir, backend, policy: policy(3, null), now: () => NOW });
    try {
      const second = await r.run();
      expect(second.errors).toEqual([]);
      expect(r.entries()).toHaveLength(6);
      expect(await backend.countRange!({ measurement: MEAS, start: 0, end: TODAY - 5 * DAY_MS })).toBe(0);
      expect(sorted(await answers((q) => r.query(q, (qq) => backend.query(qq))))).toEqual(sorted(before));
      expectFilesMatchManifest(r, dir);
      const res = await r.restore({ start: 0, end: TODAY });
      expect(res.errors).toEqual([]);
      expect(await exportAll(backend)).toEqual(rows);
    } finally {
      await r.close();
    }
  });
});
