/**
 * BatchWriter and DiskSpool benches.
 *
 * - writer/add+cut: the writer's own cost per point (buffering, cutting 5,000-line
 *   batches, the one-in-flight bookkeeping) with a backend that accepts at once.
 *   The backend answers synchronously (a thenable), because run() is synchronous
 *   and a real promise would only settle after it: the writer would then see an
 *   endless outage. Items are points.
 * - spool append+peek+ack: one 5,000-line batch through the disk spool per op
 *   (write tmp, fsync, rename, fsync dir; read back and verify the checksum;
 *   delete), with and without fsync. ops/s are batches/s; items are MB (10^6
 *   bytes of spool file), so items/s is MB/s.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodePoint } from '../../../nodes/lib/line-protocol';
import { DiskSpool, encodeSpoolFile } from '../../../nodes/lib/store/spool';
import type { Batch, StoreBackend } from '../../../nodes/lib/store/types';
import { BatchWriter, type WriterClock } from '../../../nodes/lib/store/writer';
import type { BenchCase } from '../harness';
import { telemetryValues } from '../fixtures';

const MSG_POINTS = 10;
const SPOOL_BATCH_LINES = 5000;

/** 8,192 encoded telemetry lines (a power of two, so cases cycle with a mask). */
let lines: string[] | undefined;
function telemetryLines(): string[] {
  lines ??= telemetryValues(8192).map((v) =>
    encodePoint({ measurement: 'telemetry', tags: { device: v.device }, fields: { temperature: v.temperature, humidity: v.humidity, vibration: v.vibration }, ts: v.ts }),
  );
  return lines;
}

// ---- writer/add+cut ----------------------------------------------------------------------------

/** A backend that accepts every batch at once, answering synchronously. */
class InstantBackend implements StoreBackend {
  readonly kind = 'embedded' as const;
  readonly description = 'instant (bench)';
  points = 0;
  write(batch: Batch): Promise<void> {
    this.points += batch.count;
    const done = { then: (ok: () => void) => ok() };
    return done as unknown as Promise<void>;
  }
  query(): never {
    throw new Error('not used');
  }
  health(): Promise<{ ok: boolean; detail: string }> {
    return Promise.resolve({ ok: true, detail: 'instant' });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Timers that never fire: size cuts only, and no real timer is left behind. */
const frozenClock: WriterClock = { now: () => 0, setTimeout: () => 1, clearTimeout: () => undefined };

let writer: BatchWriter | undefined;
let backend: InstantBackend;
let messages: string[][];

function writerFixtures(): void {
  if (writer) return;
  const all = telemetryLines();
  messages = [];
  for (let i = 0; i < all.length; i += MSG_POINTS) messages.push(all.slice(i, i + MSG_POINTS));
  messages.length = 512; // power of two; each has MSG_POINTS lines
  backend = new InstantBackend();
  writer = new BatchWriter({ backend, clock: frozenClock, batchSize: 5000, flushIntervalMs: 1000 });
  // Exercise: a full batch must be cut and written at once, with nothing left queued.
  for (let i = 0; i < 600; i++) writer.add(messages[i & 511]);
  const s = writer.stats();
  if (backend.points !== 5000 || s.bufferedLines !== 1000 || s.memoryBatches !== 0 || s.written !== 5000 || s.inFlight !== 0) {
    throw new Error(`writer bench fixture is not on the intended path: ${JSON.stringify(s)} backend=${backend.points}`);
  }
}

// ---- spool -------------------------------------------------------------------------------------

let spoolBatch: Batch | undefined;
function spoolFixtureBatch(): Batch {
  if (!spoolBatch) {
    const all = telemetryLines();
    const out: string[] = [];
    for (let i = 0; i < SPOOL_BATCH_LINES; i++) out.push(all[i & 8191]);
    spoolBatch = { lines: out.join('\n'), count: out.length };
  }
  return spoolBatch;
}

const spools = new Map<boolean, DiskSpool>();
function spoolFixture(fsync: boolean): () => void {
  return () => {
    if (spools.has(fsync)) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-bench-spool-'));
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    const spool = new DiskSpool(dir, { fsync, maxBytes: 64 * 1024 * 1024 });
    const b = spoolFixtureBatch();
    spool.append(b);
    const e = spool.peek();
    if (!e || e.batch.lines !== b.lines || e.batch.count !== SPOOL_BATCH_LINES) throw new Error('spool bench fixture did not round-trip');
    spool.ack(e.id);
    if (spool.size().batches !== 0 || fs.readdirSync(dir).length !== 0) throw new Error('spool bench fixture left files behind');
    spools.set(fsync, spool);
  };
}

function spoolRun(fsync: boolean): (n: number) => number {
  return (n) => {
    const spool = spools.get(fsync) as DiskSpool;
    const b = spoolFixtureBatch();
    let s = 0;
    for (let i = 0; i < n; i++) {
      spool.append(b);
      const e = spool.peek() as { id: number; batch: Batch };
      s += e.batch.count + (e.batch.lines.length & 7);
      spool.ack(e.id);
    }
    return s;
  };
}

function spoolCase(fsync: boolean): BenchCase {
  return {
    group: 'writer',
    name: `spool append+peek+ack ${SPOOL_BATCH_LINES}-line batch, ${fsync ? 'fsync' : 'no fsync'} (items = MB)`,
    get itemsPerOp(): number {
      return encodeSpoolFile(spoolFixtureBatch()).length / 1e6;
    },
    setup: spoolFixture(fsync),
    run: spoolRun(fsync),
  };
}

export const writerCases: BenchCase[] = [
  {
    group: 'writer',
    name: `add+cut ${MSG_POINTS}-point messages into 5000-line batches, instant backend`,
    itemsPerOp: MSG_POINTS,
    setup: writerFixtures,
    run(n) {
      const w = writer as BatchWriter;
      const msgs = messages;
      const before = backend.points;
      for (let i = 0; i < n; i++) w.add(msgs[i & 511]);
      return backend.points - before + w.stats().bufferedLines;
    },
  },
  spoolCase(true),
  spoolCase(false),
];
