/**
 * End-to-end write throughput into real servers (a standalone script, not a registry case):
 *
 *   npm run build && node dist/test/bench/store-e2e.js [--points 200000] [--devices 100] [--rounds 3] [--quick]
 *
 * The same N readings (3 float fields each, measurement `telemetry`, tag `device`, ms timestamps, recent)
 * are written, each run against a FRESH server started here on loopback, through
 *
 *   - Thingwire's path, as the write node does it: readings -> Point -> encodePoint -> StoreService
 *     (BatchWriter: 5,000-line / 1 s batches, one write in flight, disk spool, gzip) -> the backend
 *     (InfluxV1Backend for InfluxDB 1.x, InfluxV2Backend = @influxdata/influxdb-client for
 *     VictoriaMetrics). Two producers:
 *       burst: the readings are offered as fast as the producer makes them (the event loop is yielded
 *              every 1,000 readings, as messages arrive); what the writer cannot hold in memory
 *              (4 batches) goes through the disk spool and is replayed, as in production;
 *       paced: the producer waits while the writer holds 4 batches in memory (no spool I/O): the rate
 *              the backend path sustains;
 *   - @influxdata/influxdb-client's WriteApi with its DEFAULT write options (batchSize 1,000, gzip above
 *     1,000 bytes, retries...): writePoints() with the client's Point objects, same producer as burst,
 *     then close(). The client writes /api/v2/write only, which InfluxDB 1.6 does not have (404; shown
 *     below), so its figures are against VictoriaMetrics.
 *
 * Time runs from the first reading offered to the last point acknowledged by the server. The points are
 * then counted on the server (every field of every point, no duplicate timestamps) before any figure is
 * reported: a run that lost or duplicated a point fails the script.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { InfluxDB, Point as ClientPoint, setLogger } from '@influxdata/influxdb-client';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { StoreService } from '../../nodes/lib/store/service';
import type { StoreSettings } from '../../nodes/lib/store/env';
import type { Point } from '../../nodes/lib/store/types';
import { tmpDir } from '../support/services';
import { removeDataDir, startInfluxV1, startVictoriaMetrics, type InfluxV1Service, type VictoriaMetricsService } from '../support/tsdb';

// ---------------------------------------------------------------------------------------------
// Options

interface Args {
  points: number;
  devices: number;
  rounds: number;
}

const USAGE = 'usage: node dist/test/bench/store-e2e.js [--points N] [--devices N] [--rounds N] [--quick]';

function parseArgs(argv: string[]): Args {
  const a: Args = { points: 200_000, devices: 100, rounds: 3 };
  const num = (v: string | undefined, name: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) {
      console.error(`${name} must be a whole number >= 1, got ${JSON.stringify(v)}\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--points') a.points = num(argv[++i], '--points');
    else if (arg === '--devices') a.devices = num(argv[++i], '--devices');
    else if (arg === '--rounds') a.rounds = num(argv[++i], '--rounds');
    else if (arg === '--quick') {
      a.points = 20_000;
      a.rounds = 1;
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
      process.exit(2);
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// The readings

interface Reading {
  device: string;
  ts: number;
  temperature: number;
  humidity: number;
  vibration: number;
}

const MEASUREMENT = 'telemetry';
const FIELDS = ['temperature', 'humidity', 'vibration'] as const;
/** Readings per message handed to the writer (a device batching at the edge, or a few MQTT messages). */
const MSG_READINGS = 10;
/** The producer yields to the event loop after this many readings (messages arrive between turns). */
const YIELD_EVERY = 1000;

/** Deterministic readings, unique (device, ts), 50 ms apart per device, starting 3 hours ago. */
function makeReadings(n: number, devices: number): Reading[] {
  const base = Math.floor((Date.now() - 3 * 3_600_000) / 1000) * 1000;
  const out: Reading[] = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = {
      device: `bench-${String(i % devices).padStart(4, '0')}`,
      ts: base + Math.floor(i / devices) * 50,
      // Two decimals, as devices send them.
      temperature: (1000 + ((i * 7919) % 3000)) / 100,
      humidity: ((i * 104_729) % 10_000) / 100,
      vibration: ((i * 31) % 2000) / 100,
    };
  }
  return out;
}

function toPoint(r: Reading): Point {
  return { measurement: MEASUREMENT, tags: { device: r.device }, fields: { temperature: r.temperature, humidity: r.humidity, vibration: r.vibration }, ts: r.ts };
}

function toClientPoint(r: Reading): ClientPoint {
  return new ClientPoint(MEASUREMENT).tag('device', r.device).floatField('temperature', r.temperature).floatField('humidity', r.humidity).floatField('vibration', r.vibration).timestamp(r.ts);
}

const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

// ---------------------------------------------------------------------------------------------
// The paths

interface RunResult {
  seconds: number;
  /** Writer figures after the run (Thingwire paths). */
  notes: string;
}

const DEADLINE_MS = 180_000;

/** Thingwire's path: readings -> encodePoint -> StoreService (BatchWriter + spool + backend). */
async function runThingwire(settings: StoreSettings, readings: Reading[], paced: boolean): Promise<RunResult> {
  const dataDir = tmpDir('bench-e2e');
  const service = new StoreService({
    id: `bench-e2e-${process.pid}`,
    settings,
    dataDir,
    createDatabase: settings.backend === 'influxdb-v1',
  });
  const maxMem = service.writer.options.maxMemoryBatches;
  let wake: (() => void) | undefined;
  const problems: string[] = [];
  const unlisten = service.listen({
    onStats: (s) => {
      if (wake && s.memoryBatches < maxMem) {
        const w = wake;
        wake = undefined;
        w();
      }
    },
    // Writer callbacks must not throw: keep what happened, fail after the run.
    onReject: (lines, err) => {
      problems.push(`${lines.length} lines rejected: ${err.message}`);
    },
    onDrop: (count, message) => {
      problems.push(`${count} points dropped: ${message}`);
    },
  });
  let maxSpooled = 0;
  try {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < readings.length; i += MSG_READINGS) {
      if (paced) {
        while (service.stats().memoryBatches >= maxMem) await new Promise<void>((r) => (wake = r));
      } else if (i % YIELD_EVERY === 0 && i > 0) {
        await yieldLoop();
      }
      const end = Math.min(i + MSG_READINGS, readings.length);
      const lines: string[] = [];
      for (let j = i; j < end; j++) lines.push(encodePoint(toPoint(readings[j])));
      service.write(lines);
      if (!paced) maxSpooled = Math.max(maxSpooled, service.stats().spooledBatches);
    }
    // Everything offered: wait until the server acknowledged all of it.
    const deadline = Date.now() + DEADLINE_MS;
    for (;;) {
      const f = await service.writer.flush();
      maxSpooled = Math.max(maxSpooled, f.stats.spooledBatches);
      if (f.complete) break;
      if (Date.now() > deadline) throw new Error(`not written within ${DEADLINE_MS} ms: ${JSON.stringify(f.stats)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const s = service.stats();
    if (problems.length > 0) throw new Error(problems.join('; '));
    if (s.written !== readings.length || s.rejected !== 0 || s.dropped !== 0) throw new Error(`writer counts are off: ${JSON.stringify(s)}`);
    return { seconds, notes: `retries ${s.retries}, max ${maxSpooled} batches spooled` };
  } finally {
    unlisten();
    await service.close(10_000);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The InfluxDB client's WriteApi with its default write options: writePoints, then close().
 *
 * close() only awaits the send of the last, partial batch: the full batches that writePoints() sent on
 * its own (every 1,000 points) may still be in flight when it resolves (WriteBuffer.add() starts them
 * and drops the promise). So the clock stops when the server has acknowledged every point, counted
 * through the writeSuccess hook (a no-op by default; setting it changes nothing else), not at close().
 */
async function runClientDefaults(url: string, readings: Reading[]): Promise<RunResult> {
  let acked = 0;
  const failures: string[] = [];
  let done: (() => void) | undefined;
  const allAcked = new Promise<void>((resolve) => (done = resolve));
  const client = new InfluxDB({ url, token: 'bench-token' });
  const api = client.getWriteApi('bench-org', 'bench', 'ms', {
    writeSuccess(lines: string[]) {
      acked += lines.length;
      if (acked >= readings.length) done?.();
    },
    writeFailed(error: Error, lines: string[], attempt: number) {
      failures.push(`${lines.length} lines, attempt ${attempt}: ${error.message}`);
      return undefined; // what the default does: the client retries or gives up on its own
    },
  });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < readings.length; i += MSG_READINGS) {
    if (i % YIELD_EVERY === 0 && i > 0) await yieldLoop();
    const end = Math.min(i + MSG_READINGS, readings.length);
    const points: ClientPoint[] = [];
    for (let j = i; j < end; j++) points.push(toClientPoint(readings[j]));
    api.writePoints(points);
  }
  await api.close();
  const ackedAtClose = acked;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    allAcked,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`client: ${acked} of ${readings.length} points acknowledged after ${DEADLINE_MS} ms; failures: ${failures.slice(0, 3).join('; ')}`)), DEADLINE_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    seconds,
    notes: `${fmt(ackedAtClose)} of ${fmt(readings.length)} points acknowledged when close() resolved; ${failures.length} failed sends`,
  };
}

// ---------------------------------------------------------------------------------------------
// Counting on the server, around our code

async function verifyInflux(influx: InfluxV1Service, db: string, n: number): Promise<void> {
  const r = await influx.query(`SELECT ${FIELDS.map((f) => `COUNT("${f}")`).join(', ')} FROM "${MEASUREMENT}"`, db);
  const row = r.results[0]?.series?.[0]?.values?.[0] ?? [];
  const counts = row.slice(1).map(Number);
  if (counts.length !== FIELDS.length || counts.some((c) => c !== n)) throw new Error(`InfluxDB holds ${JSON.stringify(counts)} points per field (${FIELDS.join(', ')}), expected ${n} each`);
}

async function verifyVictoria(vm: VictoriaMetricsService, n: number, devices: number): Promise<void> {
  for (const f of FIELDS) {
    const series = await vm.exportSeries(`{__name__="${MEASUREMENT}_${f}"}`);
    let samples = 0;
    let distinct = 0;
    for (const s of series) {
      samples += s.timestamps.length;
      distinct += new Set(s.timestamps).size;
    }
    if (samples !== n || distinct !== n || series.length !== Math.min(devices, n)) {
      throw new Error(`VictoriaMetrics holds ${samples} samples (${distinct} distinct timestamps) in ${series.length} series of ${MEASUREMENT}_${f}, expected ${n} in ${Math.min(devices, n)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Runs

interface PathDef {
  name: string;
  server: 'influxdb-1.x' | 'victoria-metrics';
  run(readings: Reading[], devices: number): Promise<RunResult>;
}

const INFLUX_DB = 'bench';

async function withInflux<T>(fn: (influx: InfluxV1Service) => Promise<T>): Promise<T> {
  const influx = await startInfluxV1();
  try {
    return await fn(influx);
  } finally {
    await influx.stop();
    removeDataDir(influx);
  }
}

async function withVictoria<T>(fn: (vm: VictoriaMetricsService) => Promise<T>): Promise<T> {
  const vm = await startVictoriaMetrics();
  try {
    return await fn(vm);
  } finally {
    await vm.stop();
    removeDataDir(vm);
  }
}

const PATHS: PathDef[] = [
  ...[false, true].map(
    (paced): PathDef => ({
      name: `thingwire ${paced ? 'paced' : 'burst'}`,
      server: 'influxdb-1.x',
      run: (readings) =>
        withInflux(async (influx) => {
          const r = await runThingwire({ backend: 'influxdb-v1', url: influx.url, db: INFLUX_DB }, readings, paced);
          await verifyInflux(influx, INFLUX_DB, readings.length);
          return r;
        }),
    }),
  ),
  ...[false, true].map(
    (paced): PathDef => ({
      name: `thingwire ${paced ? 'paced' : 'burst'}`,
      server: 'victoria-metrics',
      run: (readings, devices) =>
        withVictoria(async (vm) => {
          const r = await runThingwire({ backend: 'influxdb-v2', version: 2, url: vm.url, token: 'bench-token', org: 'bench-org', bucket: 'bench' }, readings, paced);
          await verifyVictoria(vm, readings.length, devices);
          return r;
        }),
    }),
  ),
  {
    name: 'influxdb-client defaults',
    server: 'victoria-metrics',
    run: (readings, devices) =>
      withVictoria(async (vm) => {
        const r = await runClientDefaults(vm.url, readings);
        await verifyVictoria(vm, readings.length, devices);
        return r;
      }),
  },
];

/** The client against InfluxDB 1.6: it writes /api/v2/write only, which 1.6 answers 404. */
async function clientOnInfluxV1(readings: Reading[]): Promise<string> {
  return withInflux(async (influx) => {
    const client = new InfluxDB({ url: influx.url, token: 'bench-token' });
    const api = client.getWriteApi('bench-org', INFLUX_DB, 'ms');
    api.writePoints(readings.slice(0, 10).map(toClientPoint));
    try {
      await api.close();
      return 'accepted (unexpected)';
    } catch (e) {
      return (e as Error).message.split('\n')[0].slice(0, 120);
    }
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function table(headers: string[], rows: string[][], right: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  return [line(headers), `|${widths.map((w, i) => (right[i] ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`, ...rows.map(line)].join('\n');
}

const fmt = (v: number, digits = 0): string => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // The client logs every failed write to the console; the one expected failure (404 from 1.6) is reported below.
  setLogger({ error: () => undefined, warn: () => undefined });
  const readings = makeReadings(args.points, args.devices);
  console.log(
    `store end to end: ${fmt(args.points)} readings x ${FIELDS.length} fields, ${args.devices} devices, ${args.rounds} round(s), a fresh server per run; ` +
      `node ${process.version}, ${os.cpus().length} cpu(s) ${os.cpus()[0]?.model ?? ''}`,
  );

  const seconds = new Map<string, number[]>();
  const notes = new Map<string, string>();
  const key = (p: PathDef): string => `${p.name}|${p.server}`;
  for (let round = 1; round <= args.rounds; round++) {
    for (const p of PATHS) {
      const r = await p.run(readings, args.devices);
      const list = seconds.get(key(p)) ?? [];
      list.push(r.seconds);
      seconds.set(key(p), list);
      notes.set(key(p), r.notes);
      console.log(`  round ${round}: ${p.name.padEnd(24)} -> ${p.server.padEnd(16)} ${r.seconds.toFixed(3)} s  ${fmt(args.points / r.seconds)} points/s  (counts verified; ${r.notes})`);
    }
  }
  const clientV1 = await clientOnInfluxV1(readings);

  const clientSec = median(seconds.get(key(PATHS[PATHS.length - 1])) ?? [NaN]);
  const clientRate = args.points / clientSec;
  const rows = PATHS.map((p) => {
    const xs = seconds.get(key(p)) ?? [];
    const sec = median(xs);
    const rate = args.points / sec;
    const spread = xs.length > 1 ? `${fmt(args.points / Math.max(...xs))}..${fmt(args.points / Math.min(...xs))}` : '';
    const ratio = rate / clientRate;
    return [p.name, p.server, fmt(rate), sec.toFixed(3), spread, `${ratio.toFixed(2)}x${p.server === 'victoria-metrics' ? '' : ' *'}`];
  });
  rows.push(['influxdb-client defaults', 'influxdb-1.x', 'n/a', 'n/a', '', `fails: ${clientV1}`]);
  console.log('');
  console.log(table(['path', 'server', 'points/s (median)', 'seconds', 'points/s range', 'vs client defaults'], rows, [false, false, true, true, true, false]));
  console.log('');
  console.log('points: readings of 3 fields, one line each; every run counted on the server (each field, no duplicate timestamps).');
  console.log('ratio: points/s over the influxdb-client defaults on VictoriaMetrics; * InfluxDB 1.x rows compare across servers (the client cannot write to 1.6).');
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`store-e2e failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
