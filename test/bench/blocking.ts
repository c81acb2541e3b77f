/**
 * How long the runtime's heavy background jobs hold the event loop (a standalone script, not a registry case):
 *
 *   npm run build && node dist/test/bench/blocking.js [--devices N] [--reps N] [--history-devices N] [--history-rows N]
 *
 * Node-RED runs every node on one thread: while one job runs, no reading moves towards a dashboard. Each job
 * below runs with a 1 ms interval timer beside it; "longest block" is the longest gap between its ticks (the
 * event loop's longest stall), "CPU" the process's CPU time for the job (DuckDB's threads included).
 *
 * - store, new series: the first 1m rollups of N devices x 3 metrics (17 fields each: ~N x 51 new series), in
 *   5,000-point batches (as the writer hands the write node's points over) into a fresh embedded store, on the
 *   event loop (EmbeddedBackend.write: rows from the points, series rows, appends) and in the store's worker thread
 *   (EmbeddedThreadBackend: the points packed here, the rest there), alternately;
 * - store, steady: the same rollups a minute later (no new series), both ways;
 * - store, telemetry: 20 writes of 40,000 readings (400 devices x 100, 4 values each, one tags object a device as
 *   the write node makes them) after 5 to warm up, both ways: the runtime's batched load at its group-commit size;
 * - anomaly save: the anomaly node's state for N devices x 3 metrics (1 reading/s, so full daily and weekly
 *   profiles, ~24 KB a series) saved the node's way (StateFile.saveStream of snapshotText(), in ~4 ms slices)
 *   and the old way (StateFile.save of snapshot(): one JSON.stringify), alternately;
 * - history query: the starter's history chart (every device's temperature over the range, maxPoints 500) on
 *   --history-devices devices x --history-rows readings each (default 100 x 36,000: an hour at 10 readings/s),
 *   the store's way (M4 in the database, then LTTB) and the way before it (every row read, LTTB in
 *   JavaScript), alternately.
 * "busy" is the event loop's active time during the job (performance.eventLoopUtilization): what the job took
 * from everything else in the runtime, however it was sliced.
 *
 * Figures are medians over --reps (default 3). Printed; written to test-output/blocking-bench.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AnomalyScorer } from '../../nodes/anomaly/scorer';
import type { Reading } from '../../nodes/lib/contract';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { StateFile } from '../../nodes/lib/state';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';
import { EmbeddedThreadBackend } from '../../nodes/lib/store/embedded-remote';
import { downsample } from '../../nodes/lib/store/query-plan';
import type { Batch, Point, QueryResult, RangeQuery, StoreBackend } from '../../nodes/lib/store/types';

/** Where the store runs: on the event loop, or in its worker thread. */
type Where = 'loop' | 'thread';
import { ROOT } from '../support/services';

interface Args {
  devices: number;
  reps: number;
  historyDevices: number;
  historyRows: number;
}

const USAGE = 'usage: node dist/test/bench/blocking.js [--devices N] [--reps N] [--history-devices N] [--history-rows N]';

function parseArgs(argv: string[]): Args {
  const a: Args = { devices: 2000, reps: 3, historyDevices: 100, historyRows: 36_000 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = Number(argv[i + 1]);
    if (k === '--devices' && Number.isInteger(v) && v > 0) a.devices = v;
    else if (k === '--reps' && Number.isInteger(v) && v > 0) a.reps = v;
    else if (k === '--history-devices' && Number.isInteger(v) && v > 0) a.historyDevices = v;
    else if (k === '--history-rows' && Number.isInteger(v) && v > 0) a.historyRows = v;
    else throw new Error(`unknown or bad argument ${k}\n${USAGE}`);
    i++;
  }
  return a;
}

interface Measure {
  ms: number;
  cpuMs: number;
  busyMs: number;
  longestBlockMs: number;
}

/** Runs job with a 1 ms ticker beside it: wall time, CPU time and the longest gap between ticks. */
async function measure(job: () => Promise<unknown>): Promise<Measure> {
  let longest = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  try {
    await job();
  } finally {
    clearInterval(ticker);
  }
  const ms = performance.now() - t0;
  const end = performance.now();
  longest = Math.max(longest, end - last);
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, busyMs: performance.eventLoopUtilization(elu0).active, longestBlockMs: longest };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const med = (ms: Measure[]): Measure => ({
  ms: median(ms.map((m) => m.ms)),
  cpuMs: median(ms.map((m) => m.cpuMs)),
  busyMs: median(ms.map((m) => m.busyMs)),
  longestBlockMs: median(ms.map((m) => m.longestBlockMs)),
});
const METRICS = ['temperature', 'humidity', 'vibration'];
const ROLLUP_FIELDS = ['count', 'sum', 'mean', 'min', 'max', 'stddev', 'first', 'last', 'p50', 'p90', 'p95', 'p99', 'first_ts', 'last_ts', 'window_ms', 'p75', 'p25'];
const T0 = Date.UTC(2026, 0, 5);

function rollupBatches(devices: number, ts: number): Batch[] {
  const points: Point[] = [];
  const fields: Record<string, number> = {};
  ROLLUP_FIELDS.forEach((f, i) => (fields[f] = 1.5 + i));
  for (let d = 0; d < devices; d++) for (const metric of METRICS) points.push({ measurement: 'rollup', tags: { device: `sim-${d}`, metric, level: '1m' }, fields, ts });
  const out: Batch[] = [];
  for (let i = 0; i < points.length; i += 5000) {
    const part = points.slice(i, i + 5000);
    out.push({ lines: '', count: part.length, points: part });
  }
  return out;
}

const TELEMETRY_DEVICES = 400;
const TELEMETRY_PER_DEVICE = 100;
const TELEMETRY_WARM = 5;
const TELEMETRY_WRITES = 20;

/** Write k of the telemetry feed: every device's next 100 readings, 10 ms apart. */
function telemetryBatch(k: number): Batch {
  const points: Point[] = [];
  for (let d = 0; d < TELEMETRY_DEVICES; d++) {
    const tags = { device: `load-${d}` };
    for (let i = 0; i < TELEMETRY_PER_DEVICE; i++) {
      const n = k * TELEMETRY_PER_DEVICE + i;
      points.push({ measurement: 'telemetry', tags, fields: { seq: n, temperature: 20 + ((n * 7 + d) % 100) / 10, humidity: 50 + ((n + d) % 30), vibration: ((n * 13 + d) % 17) / 17 }, ts: T0 + n * 10 });
    }
  }
  return { lines: '', count: points.length, points };
}

async function writeAll(store: StoreBackend, batches: Batch[]): Promise<void> {
  for (const b of batches) await store.write(b);
}

/** The history store: devices x rows temperature readings 100 ms apart, in 20,000-line batches. */
async function fillHistory(store: EmbeddedBackend, devices: number, rows: number): Promise<void> {
  let lines: string[] = [];
  for (let t = 0; t < rows; t++) {
    for (let d = 0; d < devices; d++) {
      const temperature = Math.round((20 + 5 * Math.sin(t / 500 + d) + ((t * 7919 + d * 104_729) % 100) / 100) * 100) / 100;
      lines.push(`telemetry,device=sim-${d} temperature=${temperature},humidity=50 ${T0 + t * 100}`);
      if (lines.length === 20_000) {
        await store.write({ lines: lines.join('\n'), count: lines.length });
        lines = [];
      }
    }
  }
  if (lines.length > 0) await store.write({ lines: lines.join('\n'), count: lines.length });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-blocking-'));
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  log(`blocking bench: ${args.devices} devices x ${METRICS.length} metrics, ${args.reps} repetitions, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  try {
    const newSeries: Record<Where, Measure[]> = { loop: [], thread: [] };
    const steady: Record<Where, Measure[]> = { loop: [], thread: [] };
    const telemetry: Record<Where, Measure[]> = { loop: [], thread: [] };
    for (let r = 0; r < args.reps; r++) {
      for (const where of ['loop', 'thread'] as const) {
        const file = path.join(dir, `store-${where}-${r}.duckdb`);
        const store: StoreBackend = where === 'loop' ? new EmbeddedBackend({ path: file }) : new EmbeddedThreadBackend({ path: file });
        try {
          await store.write({ lines: encodePoint({ measurement: 'warm', tags: { device: 'x' }, fields: { a: 1 }, ts: T0 }), count: 1 });
          const first = rollupBatches(args.devices, T0);
          const next = rollupBatches(args.devices, T0 + 60_000);
          newSeries[where].push(await measure(() => writeAll(store, first)));
          steady[where].push(await measure(() => writeAll(store, next)));
          const feed = Array.from({ length: TELEMETRY_WARM + TELEMETRY_WRITES }, (_, k) => telemetryBatch(k));
          await writeAll(store, feed.slice(0, TELEMETRY_WARM));
          telemetry[where].push(await measure(() => writeAll(store, feed.slice(TELEMETRY_WARM))));
        } finally {
          await store.close();
        }
      }
    }

    const scorer = new AnomalyScorer({ maxSeries: args.devices * METRICS.length + 1 });
    // 40 readings a series at 1 s: enough to fix the cadence and allocate full daily and weekly profiles.
    for (let i = 0; i < 40; i++) {
      const batch: Reading[] = [];
      for (let d = 0; d < args.devices; d++) batch.push({ device: `sim-${d}`, ts: T0 + i * 1000, metrics: { temperature: 20 + Math.sin(i + d), humidity: 50 + (i % 7), vibration: 0.1 * (d % 5) } });
      for (let k = 0; k < batch.length; k += 1000) scorer.score(batch.slice(k, k + 1000));
    }
    const state = new StateFile(dir, 'thingwire-anomaly', 'bench');
    const streamed: Measure[] = [];
    const whole: Measure[] = [];
    let bytes = 0;
    for (let r = 0; r < args.reps; r++) {
      streamed.push(await measure(async () => (bytes = await state.saveStream(() => scorer.snapshotText()))));
      whole.push(await measure(() => state.save(scorer.snapshot())));
    }

    const history = new EmbeddedBackend({ path: path.join(dir, 'history.duckdb') });
    const m4Runs: Measure[] = [];
    const rawRuns: Measure[] = [];
    try {
      await fillHistory(history, args.historyDevices, args.historyRows);
      const q: RangeQuery = { measurement: 'telemetry', fields: ['temperature'], start: T0, end: T0 + args.historyRows * 100, maxPoints: 500 };
      const check = (r: QueryResult): void => {
        const points = r.series.reduce((n, x) => n + x.points.length, 0);
        const want = args.historyDevices * Math.min(500, args.historyRows);
        if (r.series.length !== args.historyDevices || points !== want) throw new Error(`history answered ${r.series.length} series, ${points} points; expected ${want}`);
      };
      for (let r = 0; r < args.reps; r++) {
        m4Runs.push(await measure(async () => check(await history.query(q))));
        rawRuns.push(
          await measure(async () => {
            const all = await history.query({ ...q, maxPoints: undefined });
            for (const x of all.series) x.points = downsample(x.points, 500);
            check(all);
          }),
        );
      }
    } finally {
      await history.close();
    }

    const rows: Array<[string, Measure]> = [
      [`store, ${(args.devices * METRICS.length * ROLLUP_FIELDS.length).toLocaleString('en-US')} new series (first 1m rollups), event loop`, med(newSeries.loop)],
      ['store, the same, in its worker thread', med(newSeries.thread)],
      ['store, the same rollups a minute later, event loop', med(steady.loop)],
      ['store, the same, in its worker thread', med(steady.thread)],
      [`store, ${TELEMETRY_WRITES} writes of ${(TELEMETRY_DEVICES * TELEMETRY_PER_DEVICE).toLocaleString('en-US')} readings (4 values), event loop`, med(telemetry.loop)],
      ['store, the same, in its worker thread', med(telemetry.thread)],
      [`anomaly save, ${(args.devices * METRICS.length).toLocaleString('en-US')} series (${(bytes / 1e6).toFixed(0)} MB), in slices`, med(streamed)],
      ['anomaly save, one JSON.stringify (before)', med(whole)],
      [`history query, ${((args.historyDevices * args.historyRows) / 1e6).toFixed(1)}M rows to 500 a series, M4 + LTTB`, med(m4Runs)],
      ['history query, every row read + LTTB in JavaScript (before)', med(rawRuns)],
    ];
    log('job                                                                 |   wall ms |    CPU ms |   busy ms | longest block ms');
    for (const [name, m] of rows) {
      log(`${name.padEnd(67)} | ${m.ms.toFixed(0).padStart(9)} | ${m.cpuMs.toFixed(0).padStart(9)} | ${m.busyMs.toFixed(0).padStart(9)} | ${m.longestBlockMs.toFixed(1).padStart(16)}`);
    }
    const out = path.join(ROOT, 'test-output', 'blocking-bench.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), args, loadavg: os.loadavg(), rows: rows.map(([job, m]) => ({ job, ...m })) }, null, 2)}\n`);
    log(`written ${path.relative(ROOT, out)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
