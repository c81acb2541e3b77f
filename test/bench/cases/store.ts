/**
 * Time-series store benches: the embedded DuckDB backend's ingest and range queries, and LTTB.
 *
 * The harness is synchronous (run(n) returns a number) and DuckDB's API is asynchronous, so the
 * DuckDB cases run in a worker thread that this file starts from itself: run(n) posts the request
 * and blocks on Atomics.wait until the worker has finished all n ops and answered; the answer is
 * read with receiveMessageOnPort. The round trip costs tens of microseconds, against ops of
 * milliseconds. The databases live in a temp directory that is removed when the process exits.
 *
 * - ingest: 5,000-line batches of live telemetry (64 devices, 3 float fields a line, timestamps
 *   moving forward) written one after the other with EmbeddedBackend.write(), each committed before
 *   the next starts, as the batch writer does. Items are lines (points); field values are 3x that.
 *   Every batch is new data (a replay would take the overwrite path), built in setup: building the
 *   text costs about 2 ms a batch, which is the writer's cost, not the store's.
 * - rollup ingest: 5,000-line batches of 1m rollups as the window node makes them (1,250 devices x 4 metrics, 11
 *   fields a line: 55,000 values a batch), written twice over: as lines made with encodePoint (what a batch read
 *   back from the spool is) and as points (what the write node hands the writer for this store: its lines are
 *   never made). A pool of 16 batches is built in setup (about 100 MB), then batches are built in the timed op.
 * - queries: over 1,000,000 stored field values (100 devices x 5,000 times x 2 fields over one day),
 *   written once in setup (about 2 s): 5-minute mean buckets for all of them, and one device's raw
 *   day cut to 1,000 points with LTTB, as a dashboard chart asks.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMainThread, MessageChannel, parentPort, receiveMessageOnPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { EmbeddedBackend } from '../../../nodes/lib/store/embedded';
import { lttb } from '../../../nodes/lib/store/lttb';
import { encodePoint } from '../../../nodes/lib/line-protocol';
import type { Batch, Point, RangeQuery } from '../../../nodes/lib/store/types';
import type { BenchCase } from '../harness';
import { rng, telemetryValues } from '../fixtures';

const INGEST_BATCH = 5000;
const INGEST_DEVICES = 64;
/** Batches built in setup: a full run writes about 130 of them at 300,000 lines/s; past these, they are built in the timed op. */
const INGEST_POOL = 512;
const QUERY_DEVICES = 100;
const QUERY_TIMES = 5000;
const QUERY_FIELDS = ['temperature', 'humidity'];
const QUERY_POINTS = QUERY_DEVICES * QUERY_TIMES * QUERY_FIELDS.length;
const LTTB_POINTS = 1_000_000;
const LTTB_THRESHOLD = 1000;
const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;
const WORKER_MARK = 'thingwire-store-bench';
const CALL_TIMEOUT_MS = 300_000;

type Command = 'setup-ingest' | 'ingest' | 'setup-rollups' | 'rollups-lines' | 'rollups-points' | 'setup-query' | 'query-buckets' | 'query-lttb';

const ROLLUP_DEVICES = 1250;
const ROLLUP_METRICS = ['temperature', 'humidity', 'vibration', 'pressure'];
const ROLLUP_POOL = 16;

interface Request {
  cmd: Command;
  n: number;
}

interface Reply {
  result?: number;
  error?: string;
}

// ---- worker side ------------------------------------------------------------------------------

interface WorkerInit {
  mark: typeof WORKER_MARK;
  dir: string;
  signal: SharedArrayBuffer;
  port: MessagePort;
}

/** The ingest stream: batch k is lines k*5000 .. k*5000+4999 of an endless, time-ordered feed. */
class IngestFeed {
  /** Line j of the feed starts with prefixes[j & 1023]: device j % 64, values cycling through 1,024. */
  private readonly prefixes: string[] = [];
  private readonly pool: Batch[] = [];
  private made = 0;
  private used = 0;

  constructor() {
    const values = telemetryValues(1024, 3);
    for (let j = 0; j < 1024; j++) {
      const v = values[j];
      const device = `sensor-${String(j % INGEST_DEVICES).padStart(3, '0')}`;
      this.prefixes.push(`telemetry,device=${device} temperature=${v.temperature},humidity=${v.humidity},vibration=${v.vibration} `);
    }
  }

  private make(): Batch {
    const first = this.made++ * INGEST_BATCH;
    const lines = new Array<string>(INGEST_BATCH);
    // Each device reports once a second: line j is device j % 64 at second floor(j / 64), never repeated.
    for (let i = 0; i < INGEST_BATCH; i++) {
      const j = first + i;
      lines[i] = this.prefixes[j & 1023] + String(T0 + Math.floor(j / INGEST_DEVICES) * 1000);
    }
    return { lines: lines.join('\n'), count: INGEST_BATCH };
  }

  /** Builds the next `count` batches ahead (about 2 ms and 400 kB each): the timed ops then only write. */
  prepare(count: number): void {
    while (this.pool.length < count) this.pool.push(this.make());
  }

  next(): Batch {
    if (this.used < this.pool.length) {
      const b = this.pool[this.used];
      this.pool[this.used++] = EMPTY_BATCH; // let it be collected
      return b;
    }
    // Past the pool (a much faster machine): build it here, inside the timed op (slightly pessimistic).
    return this.make();
  }
}

const EMPTY_BATCH: Batch = { lines: '', count: 0 };

/** Batch k: minute k of 1m rollups for every device and metric, as lines and points (see the file comment). */
class RollupFeed {
  private readonly pool: Batch[] = [];
  private made = 0;
  private used = 0;

  private make(): Batch {
    const minute = this.made++;
    const start = T0 + minute * 60_000;
    const points: Point[] = [];
    for (let d = 0; d < ROLLUP_DEVICES; d++) {
      const device = `sensor-${String(d).padStart(3, '0')}`;
      ROLLUP_METRICS.forEach((metric, m) => {
        const mean = 20 + d / 10 + m + Math.sin(minute / 30 + d) * 3;
        points.push({
          measurement: 'rollup',
          tags: { device, metric, level: '1m' },
          fields: {
            count: 60n,
            sum: mean * 60,
            mean,
            min: mean - 1.25,
            max: mean + 1.5,
            stddev: 0.5 + (d % 7) / 10,
            first: mean - 0.5,
            last: mean + 0.25,
            first_ts: BigInt(start),
            last_ts: BigInt(start + 59_000),
            window_ms: 60_000n,
          },
          ts: start,
        });
      });
    }
    // The lines are made when first read: a batch of points never needs them.
    let lines: string | undefined;
    return {
      count: points.length,
      points,
      get lines(): string {
        return (lines ??= points.map(encodePoint).join('\n'));
      },
    };
  }

  /** Builds the pool, lines included (making them is the write node's or the spool's cost, not the store's). */
  prepare(count: number): void {
    while (this.pool.length < count) {
      const b = this.make();
      void b.lines;
      this.pool.push(b);
    }
  }

  /** The next batch, of points (as the write node gives them) or (as the spool gives it back) of lines. */
  next(withPoints: boolean): Batch {
    let b: Batch;
    if (this.used < this.pool.length) {
      b = this.pool[this.used];
      this.pool[this.used++] = EMPTY_BATCH;
    } else b = this.make();
    if (!withPoints) return { lines: b.lines, count: b.count };
    const unread = (): never => {
      throw new Error('the store read the lines of a batch of points');
    };
    return Object.defineProperties({ count: b.count, points: b.points } as unknown as Batch, { lines: { get: unread }, lineList: { get: unread } });
  }
}

async function fillQueryStore(store: EmbeddedBackend): Promise<void> {
  const r = rng(42);
  const step = DAY / QUERY_TIMES;
  let lines: string[] = [];
  for (let t = 0; t < QUERY_TIMES; t++) {
    const ts = T0 + Math.round(t * step);
    for (let d = 0; d < QUERY_DEVICES; d++) {
      const temperature = Math.round((20 + 5 * Math.sin((2 * Math.PI * t) / QUERY_TIMES + d) + r()) * 100) / 100;
      const humidity = Math.round((50 + 20 * Math.cos((2 * Math.PI * t) / QUERY_TIMES + d) + 5 * r()) * 100) / 100;
      lines.push(`telemetry,device=dev-${String(d).padStart(3, '0')} temperature=${temperature},humidity=${humidity} ${ts}`);
      if (lines.length === INGEST_BATCH) {
        await store.write({ lines: lines.join('\n'), count: lines.length });
        lines = [];
      }
    }
  }
  if (lines.length > 0) await store.write({ lines: lines.join('\n'), count: lines.length });
}

const BUCKET_QUERY: RangeQuery = { measurement: 'telemetry', fields: QUERY_FIELDS, start: T0, end: T0 + DAY, bucketMs: 300_000, agg: 'mean' };
const LTTB_QUERY: RangeQuery = { measurement: 'telemetry', fields: ['temperature'], devices: ['dev-007'], start: T0, end: T0 + DAY, maxPoints: 1000 };

function startWorker(init: WorkerInit): void {
  const signal = new Int32Array(init.signal);
  let ingest: EmbeddedBackend | undefined;
  let feed: IngestFeed | undefined;
  let rollups: RollupFeed | undefined;
  let query: EmbeddedBackend | undefined;

  const handle = async (req: Request): Promise<number> => {
    switch (req.cmd) {
      case 'setup-ingest':
        ingest ??= await EmbeddedBackend.open({ path: path.join(init.dir, 'ingest.duckdb') });
        if (!feed) {
          feed = new IngestFeed();
          feed.prepare(INGEST_POOL);
        }
        return 0;
      case 'ingest': {
        for (let i = 0; i < req.n; i++) await ingest!.write(feed!.next());
        return req.n * INGEST_BATCH;
      }
      case 'setup-rollups':
        ingest ??= await EmbeddedBackend.open({ path: path.join(init.dir, 'ingest.duckdb') });
        rollups ??= new RollupFeed();
        rollups.prepare(ROLLUP_POOL);
        return 0;
      case 'rollups-lines':
      case 'rollups-points': {
        let lines = 0;
        for (let i = 0; i < req.n; i++) {
          const b = rollups!.next(req.cmd === 'rollups-points');
          await ingest!.write(b);
          lines += b.count;
        }
        return lines;
      }
      case 'setup-query': {
        if (!query) {
          query = await EmbeddedBackend.open({ path: path.join(init.dir, 'query.duckdb') });
          await fillQueryStore(query);
          const r = await query.query(BUCKET_QUERY);
          const points = r.series.reduce((s, x) => s + x.points.length, 0);
          if (r.series.length !== QUERY_DEVICES * QUERY_FIELDS.length || points !== r.series.length * 288) {
            throw new Error(`query store holds ${r.series.length} series / ${points} buckets, expected ${QUERY_DEVICES * QUERY_FIELDS.length} x 288`);
          }
          const one = await query.query({ ...LTTB_QUERY, maxPoints: undefined });
          if (one.series[0]?.points.length !== QUERY_TIMES) throw new Error('the LTTB query should read 5,000 raw points');
        }
        return 0;
      }
      case 'query-buckets': {
        let s = 0;
        for (let i = 0; i < req.n; i++) {
          const r = await query!.query(BUCKET_QUERY);
          s += r.series.length + r.series[i % r.series.length].points.length;
        }
        return s;
      }
      case 'query-lttb': {
        let s = 0;
        for (let i = 0; i < req.n; i++) s += (await query!.query(LTTB_QUERY)).series[0].points.length;
        return s;
      }
    }
  };

  parentPort!.on('message', (req: Request) => {
    handle(req).then(
      (result) => init.port.postMessage({ result } satisfies Reply),
      (e: unknown) => init.port.postMessage({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies Reply),
    ).finally(() => {
      Atomics.store(signal, 0, 1);
      Atomics.notify(signal, 0);
    });
  });
}

const init = workerData as WorkerInit | undefined;
if (!isMainThread && init?.mark === WORKER_MARK) startWorker(init);

// ---- main side --------------------------------------------------------------------------------

let worker: { w: Worker; signal: Int32Array; port: MessagePort } | undefined;

function ensureWorker(): NonNullable<typeof worker> {
  if (worker) return worker;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-bench-store-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const signal = new SharedArrayBuffer(4);
  const { port1, port2 } = new MessageChannel();
  const data: WorkerInit = { mark: WORKER_MARK, dir, signal, port: port2 };
  // The worker runs this very file (compiled: dist/test/bench/cases/store.js); execArgv carries a TS loader if one is in use.
  const w = new Worker(__filename, { workerData: data, transferList: [port2], execArgv: process.execArgv });
  w.unref();
  port1.unref();
  worker = { w, signal: new Int32Array(signal), port: port1 };
  return worker;
}

/** Sends one request to the worker and blocks until it has answered. */
function call(cmd: Command, n = 0): number {
  const { w, signal, port } = ensureWorker();
  Atomics.store(signal, 0, 0);
  w.postMessage({ cmd, n } satisfies Request);
  if (Atomics.wait(signal, 0, 0, CALL_TIMEOUT_MS) === 'timed-out') throw new Error(`store bench worker: ${cmd} took over ${CALL_TIMEOUT_MS / 1000} s`);
  const msg = receiveMessageOnPort(port)?.message as Reply | undefined;
  if (!msg) throw new Error(`store bench worker: no answer to ${cmd}`);
  if (msg.error !== undefined) throw new Error(`store bench worker: ${cmd} failed: ${msg.error}`);
  return msg.result ?? 0;
}

let series: Array<[number, number]> | undefined;

function lttbFixture(): void {
  if (series) return;
  const r = rng(7);
  const pts: Array<[number, number]> = new Array<[number, number]>(LTTB_POINTS);
  let y = 20;
  for (let i = 0; i < LTTB_POINTS; i++) {
    y += r() - 0.5;
    // A spike now and then, as real sensors have: LTTB must keep them.
    pts[i] = [T0 + i * 1000, i % 99_991 === 5 ? y + 50 : y];
  }
  const out = lttb(pts, LTTB_THRESHOLD);
  if (out.length !== LTTB_THRESHOLD) throw new Error(`lttb returned ${out.length} points`);
  if (!out.some((p) => p[1] === pts[5][1])) throw new Error('lttb lost the first spike');
  series = pts;
}

export const storeCases: BenchCase[] = [
  {
    group: 'store',
    name: `embedded ingest ${INGEST_BATCH.toLocaleString('en-US')}-line batches (3 fields a line; items = lines)`,
    itemsPerOp: INGEST_BATCH,
    target: { min: 300_000, per: 'item', unit: 'points (lines)' },
    setup: () => void call('setup-ingest'),
    run: (n) => call('ingest', n),
  },
  {
    group: 'store',
    name: `embedded ingest ${(ROLLUP_DEVICES * ROLLUP_METRICS.length).toLocaleString('en-US')}-line batches of 1m rollups (11 fields a line), lines only (as from the spool; items = lines)`,
    itemsPerOp: ROLLUP_DEVICES * ROLLUP_METRICS.length,
    setup: () => void call('setup-rollups'),
    run: (n) => call('rollups-lines', n),
  },
  {
    group: 'store',
    name: `embedded ingest ${(ROLLUP_DEVICES * ROLLUP_METRICS.length).toLocaleString('en-US')}-line batches of 1m rollups (11 fields a line), as points (as from the write node; items = lines)`,
    itemsPerOp: ROLLUP_DEVICES * ROLLUP_METRICS.length,
    setup: () => void call('setup-rollups'),
    run: (n) => call('rollups-points', n),
  },
  {
    group: 'store',
    name: `embedded query 5-min mean buckets over ${(QUERY_POINTS / 1e6).toFixed(0)}M points (200 series; items = stored points)`,
    itemsPerOp: QUERY_POINTS,
    setup: () => void call('setup-query'),
    run: (n) => call('query-buckets', n),
  },
  {
    group: 'store',
    name: 'embedded query one device raw day (5,000) to maxPoints 1,000',
    setup: () => void call('setup-query'),
    run: (n) => call('query-lttb', n),
  },
  {
    group: 'store',
    name: `lttb ${(LTTB_POINTS / 1e6).toFixed(0)}M -> ${LTTB_THRESHOLD.toLocaleString('en-US')} points (items = input points)`,
    itemsPerOp: LTTB_POINTS,
    setup: lttbFixture,
    run(n) {
      const pts = series!;
      let s = 0;
      for (let i = 0; i < n; i++) {
        const out = lttb(pts, LTTB_THRESHOLD);
        s += out.length + (out[(i * 7) % out.length][0] & 7);
      }
      return s;
    },
  },
];
