/**
 * The embedded store in its worker thread (embedded-remote.ts, embedded-thread.ts) against real DuckDB files: it
 * answers every StoreBackend call as the store on this thread does (same files written, same answers), owns its file
 * (a second store of it is refused, on either thread), streams exports a chunk at a time and stops one whose consumer
 * throws, passes errors with what the writer needs of them, and goes on after its thread stopped: the calls it held
 * fail retryable, and the next call starts another thread on the same file with everything committed before there.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';
import { EmbeddedThreadBackend } from '../../nodes/lib/store/embedded-remote';
import { embeddedThread, StoreService } from '../../nodes/lib/store/service';
import { packPoints } from '../../nodes/lib/store/thread-wire';
import { StoreError, type Batch, type ExportRow, type FieldValue, type PartitionSelector, type Point, type StoreBackend } from '../../nodes/lib/store/types';

jest.setTimeout(60_000);

const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-store-thread-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

let fileNo = 0;
function newFile(): string {
  return path.join(tmp, `case-${++fileNo}`, 'store.duckdb');
}

function points(devices: number, perDevice: number, from = T0): Point[] {
  const out: Point[] = [];
  for (let d = 0; d < devices; d++) {
    const tags = { device: `dev "${d}", ünï`, site: d % 2 === 0 ? 'hall =1' : "'; DROP TABLE series; --" };
    for (let i = 0; i < perDevice; i++) {
      const fields: Record<string, FieldValue> = { seq: i, temperature: 20 + d + i / 100, count: BigInt(i * 3), ok: i % 3 === 0, note: `n ${i} "q"` };
      out.push({ measurement: 'telemetry', tags, fields, ts: from + i * 1000 });
    }
  }
  return out;
}

function pointsBatch(pts: Point[]): Batch {
  return { lines: '', count: pts.length, points: pts };
}

const SEL: PartitionSelector = { measurement: 'telemetry', start: T0 - DAY, end: T0 + DAY };

/** What a store holds, read through every read-only call. */
async function contents(store: StoreBackend): Promise<unknown> {
  const rows: ExportRow[] = [];
  const exported = await store.exportRange!(SEL, (r) => {
    rows.push(...r);
  });
  return {
    raw: await store.query({ measurement: 'telemetry', fields: ['seq', 'temperature', 'count', 'ok', 'note'], start: SEL.start, end: SEL.end }),
    buckets: await store.query({ measurement: 'telemetry', fields: ['temperature'], where: { site: 'hall =1' }, start: SEL.start, end: SEL.end, bucketMs: 60_000, agg: 'mean' }),
    reduced: await store.query({ measurement: 'telemetry', fields: ['temperature'], start: SEL.start, end: SEL.end, maxPoints: 20 }),
    count: await store.countRange!(SEL),
    extent: await store.extentOf!(SEL),
    exported,
    rows,
  };
}

function workerOf(store: EmbeddedThreadBackend): Worker {
  const w = (store as unknown as { worker?: Worker }).worker;
  if (w === undefined) throw new Error('no worker running');
  return w;
}

describe('the embedded store in a worker thread', () => {
  test('stores and answers as the store on this thread does: points, lines, replaced rows, partition operations', async () => {
    const here = await EmbeddedBackend.open({ path: newFile() });
    const there = await EmbeddedThreadBackend.open({ path: newFile() });
    try {
      expect(there.description).toBe(`embedded (DuckDB) ${there.path}`);
      const first = points(6, 300);
      // Points (packed across), lines (a batch read back from the spool), and the first points written again with
      // other values (rows that replace stored ones).
      const again = first.slice(0, 500).map((p) => ({ ...p, fields: { ...p.fields, temperature: -1 } }));
      const lines = points(2, 50, T0 + 400_000).map(encodePoint).join('\n');
      for (const store of [here, there]) {
        await store.write(pointsBatch(first), { behind: true });
        await store.write({ lines, count: 100 });
        await store.write(pointsBatch(again));
      }
      const a = await contents(here);
      expect(await contents(there)).toEqual(a);
      expect((a as { count: number }).count).toBe((1800 + 100) * 5);
      expect(((a as { rows: ExportRow[] }).rows.length)).toBe(9500);
      // Deletes, with a wrong and a right expectation.
      const sel: PartitionSelector = { ...SEL, where: { site: 'hall =1' } };
      const err = await there.deleteRange(sel, 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err).toMatchObject({ retryable: false, message: expect.stringContaining('holds') });
      const n = await here.deleteRange(sel, await here.countRange(sel));
      expect(await there.deleteRange(sel, await there.countRange(sel))).toBe(n);
      expect(await contents(there)).toEqual(await contents(here));
      expect((await there.health()).ok).toBe(true);
      expect(there.starts).toBe(1);
    } finally {
      await here.close();
      await there.close();
    }
  });

  test('a malformed batch and a bad query fail with the StoreError the writer needs; the store goes on', async () => {
    const store = await EmbeddedThreadBackend.open({ path: newFile() });
    try {
      await store.write(pointsBatch(points(1, 3)));
      const bad = await store.write({ lines: ['telemetry,device=x v=1 1', 'telemetry,device=x v='].join('\n'), count: 2 }).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(StoreError);
      expect(bad).toMatchObject({ retryable: false, status: 400, message: expect.stringMatching(/^line 2: /) });
      // A point the line protocol cannot carry: refused with its index, as on this thread.
      const unc = await store.write(pointsBatch([points(1, 1)[0], { measurement: 'a\nb', tags: { device: 'd' }, fields: { v: 1 }, ts: T0 }])).catch((e: unknown) => e);
      expect(unc).toMatchObject({ retryable: false, message: expect.stringContaining('line 2: measurement "a\\nb" contains a control character') });
      const q = await store.query({ measurement: 'telemetry', fields: [], start: T0, end: T0 + 1 }).catch((e: unknown) => e);
      expect(q).toBeInstanceOf(StoreError);
      expect((q as StoreError).status).toBe(400);
      // A value no thread can be handed: that call fails, nothing else.
      const fn = await store.query({ measurement: 'telemetry', fields: ['seq'], start: T0, end: T0 + DAY, where: { x: (() => 'y') as unknown as string } }).catch((e: unknown) => e);
      expect(fn).toMatchObject({ retryable: false, status: 400, message: expect.stringContaining('cannot hand the call to its thread') });
      const r = await store.query({ measurement: 'telemetry', fields: ['seq'], start: T0, end: T0 + DAY });
      expect(r.series[0].points).toEqual([
        [T0, 0],
        [T0 + 1000, 1],
        [T0 + 2000, 2],
      ]);
    } finally {
      await store.close();
    }
  });

  test('the store refuses a packed message that is not one (non-retryable, nothing of it stored)', async () => {
    const store = await EmbeddedBackend.open({ path: newFile() });
    try {
      const good = packPoints([{ measurement: 'm', tags: { device: 'd' }, fields: { v: 1, s: 'x' }, ts: T0 }]);
      const u = good.u.slice();
      u[0] = 5;
      const kinds = good.u.slice();
      // The first field's kind: series, measurement, tag count, key, value, field count, name, kind.
      kinds[7] = 9;
      for (const [bad, why] of [
        [{ ...good, strs: good.strs.slice(0, 1) }, /string \d+ of 1/],
        [{ ...good, nu: good.nu + 1 }, /read \d+ of \d+ words/],
        [{ ...good, u }, /series 5 before 0/],
        [{ ...good, u: kinds }, /field kind 9/],
      ] as const) {
        const err = await store.writePacked([packPoints([{ measurement: 'm', tags: { device: 'ok' }, fields: { v: 2 }, ts: T0 }]), bad]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StoreError);
        expect(err).toMatchObject({ retryable: false, message: expect.stringMatching(why) });
      }
      expect(await store.countRange({ measurement: 'm', start: T0 - 1, end: T0 + 1 })).toBe(0);
      await store.writePacked([good]);
      expect(await store.countRange({ measurement: 'm', start: T0 - 1, end: T0 + 1 })).toBe(2);
    } finally {
      await store.close();
    }
  });

  test('an export streams chunk by chunk, waits for a slow consumer, and stops when the consumer throws', async () => {
    const store = await EmbeddedThreadBackend.open({ path: newFile() });
    try {
      await store.write(pointsBatch(points(5, 1000)));
      const sizes: number[] = [];
      let busy = false;
      const total = await store.exportRange({ measurement: 'telemetry', start: T0, end: T0 + DAY }, async (rows) => {
        expect(busy).toBe(false);
        busy = true;
        sizes.push(rows.length);
        await new Promise((r) => setTimeout(r, 20));
        busy = false;
      });
      expect(total).toBe(25_000);
      expect(sizes.length).toBeGreaterThan(1);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(25_000);
      const broken = new Error('the archive disk is full');
      let calls = 0;
      const err = await store
        .exportRange({ measurement: 'telemetry', start: T0, end: T0 + DAY }, () => {
          calls++;
          throw broken;
        })
        .catch((e: unknown) => e);
      expect(err).toBe(broken);
      expect(calls).toBe(1);
      // Nothing is left hanging: the store still answers, and writes.
      await store.write(pointsBatch(points(1, 1, T0 + 2 * DAY)));
      expect(await store.countRange({ measurement: 'telemetry', start: T0, end: T0 + 3 * DAY })).toBe(25_005);
    } finally {
      await store.close();
    }
  });

  test('owns its file: a second store of it is refused on either thread until the first is closed', async () => {
    const file = newFile();
    const there = await EmbeddedThreadBackend.open({ path: file });
    await there.write(pointsBatch(points(1, 2)));
    await expect(EmbeddedBackend.open({ path: file })).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('already open in this process') });
    await expect(EmbeddedThreadBackend.open({ path: file })).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('already open in this process') });
    await there.close();
    await there.close();
    // Closed: calls fail retryable (the writer keeps the batch), health says so.
    await expect(there.write(pointsBatch(points(1, 1)))).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('is closed') });
    expect((await there.health()).ok).toBe(false);
    const here = await EmbeddedBackend.open({ path: file });
    try {
      expect(await here.countRange(SEL)).toBe(10);
      await expect(EmbeddedThreadBackend.open({ path: file })).rejects.toMatchObject({ message: expect.stringContaining('already open in this process') });
    } finally {
      await here.close();
    }
  });

  test('writes reach the thread in the order they were made, however long each one took to pack', async () => {
    const store = await EmbeddedThreadBackend.open({ path: newFile() });
    try {
      // A large write (packed over several turns of the event loop) then a one-point write of the same series and
      // time: the second must replace the first's point, as it would on this thread.
      const big = points(8, 6000);
      const last = { ...big[0], fields: { ...big[0].fields, temperature: -99 } };
      await Promise.all([store.write(pointsBatch(big), { behind: false }), store.write(pointsBatch([last]))]);
      const r = await store.query({ measurement: 'telemetry', fields: ['temperature'], devices: [big[0].tags.device], start: T0, end: T0 + 1 });
      expect(r.series[0].points).toEqual([[T0, -99]]);
      expect(await store.countRange(SEL)).toBe(8 * 6000 * 5);
    } finally {
      await store.close();
    }
  });

  test('close() finishes the writes already handed over', async () => {
    const file = newFile();
    const store = await EmbeddedThreadBackend.open({ path: file });
    const writes = Array.from({ length: 5 }, (_, k) => store.write(pointsBatch(points(1, 200, T0 + k * 300_000))));
    const closed = store.close();
    await Promise.all(writes);
    await closed;
    const again = await EmbeddedBackend.open({ path: file });
    try {
      expect(await again.countRange(SEL)).toBe(5 * 200 * 5);
    } finally {
      await again.close();
    }
  });

  test('its thread stopping fails what it held as retryable; the next call starts another on the same file', async () => {
    // Stopped while no DuckDB call runs in it (an export waiting for its consumer): a worker terminated in the middle
    // of a native call can abort the whole process (node-addon-api), which is why close() stops it only once the file
    // is closed.
    const file = newFile();
    const store = await EmbeddedThreadBackend.open({ path: file });
    try {
      await store.write(pointsBatch(points(2, 3000)));
      const w = workerOf(store);
      let chunks = 0;
      const held = store.exportRange(SEL, async () => {
        chunks++;
        await w.terminate();
      });
      await expect(held).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('stopped') });
      expect(chunks).toBe(1);
      // The next call starts a new thread on the same file (once the first has let it go), with everything committed.
      await store.write(pointsBatch(points(2, 100, T0 + 3_500_000)));
      expect(store.starts).toBe(2);
      expect(await store.countRange(SEL)).toBe(2 * 3100 * 5);
      expect((await store.health()).ok).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('which thread the store service uses (THINGWIRE_STORE_THREAD)', () => {
  test('worker by default, main on request, anything else refused by name', () => {
    expect(embeddedThread({})).toBe(true);
    expect(embeddedThread({ THINGWIRE_STORE_THREAD: 'worker' })).toBe(true);
    expect(embeddedThread({ THINGWIRE_STORE_THREAD: ' main ' })).toBe(false);
    expect(() => embeddedThread({ THINGWIRE_STORE_THREAD: 'both' })).toThrow('THINGWIRE_STORE_THREAD="both" must be worker or main');
  });

  test.each([
    ['worker', 1],
    ['main', 0],
  ])('a store service with %s writes points and reads them back, and closes its thread', async (where, threads) => {
    const before = process.env.THINGWIRE_STORE_THREAD;
    process.env.THINGWIRE_STORE_THREAD = where;
    const dataDir = path.join(tmp, `service-${where}`);
    const service = new StoreService({ id: `svc-${where}`, settings: { backend: 'embedded' }, dataDir, flushIntervalMs: 20 });
    try {
      const settled = new Promise<string>((resolve) => service.writePoints(points(3, 10), resolve));
      expect(await settled).toBe('durable');
      const r = await service.query({ measurement: 'telemetry', fields: ['seq'], start: T0, end: T0 + DAY });
      expect(r.series.map((s) => s.points.length)).toEqual([10, 10, 10]);
      const inner = (service.backend as unknown as { backend?: StoreBackend }).backend;
      expect(inner instanceof EmbeddedThreadBackend ? 1 : 0).toBe(threads);
    } finally {
      await service.close();
      if (before === undefined) delete process.env.THINGWIRE_STORE_THREAD;
      else process.env.THINGWIRE_STORE_THREAD = before;
    }
    // Closed: the file is free again for a store on this thread.
    const again = await EmbeddedBackend.open({ path: path.join(dataDir, 'store', 'thingwire.duckdb') });
    try {
      expect(await again.countRange(SEL)).toBe(3 * 10 * 5);
    } finally {
      await again.close();
    }
  });
});
