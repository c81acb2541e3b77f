/**
 * Retention tiering, measured (issue 9; a standalone script, not a registry case):
 *
 *   npm run build && node dist/test/bench/retention.js [--values N] [--year-days N] [--runs N] [--influx] [--influx-values N] [--quick]
 *
 * Four parts, side by side in one run, printed as tables and written to test-output/retention-bench.json:
 *
 * 1. Moves on the embedded store: one UTC day partition of N values (default 1,000,000: 200 devices x 5
 *    metrics - temperature, humidity, pressure, voltage as floats, rssi as an integer - one reading every
 *    86.4 s, seeded random walks rounded as sensors report them) is moved hot -> warm by Retention.run()
 *    (hot 1 d / warm 30 d), and, from a byte copy of the same hot file, hot -> cold (warm 0 d: written
 *    directly at ZSTD 22). Each phase is timed through the failAt hook used as a timestamp callback
 *    (exported, merged, verified, archived, recorded, hot-deleted, finished, cleaned) plus a thin wrapper
 *    on the backend that notes when exportRange is called and returns (run start -> export call is the
 *    run's garbage collection, extents and count). Reported: rows/s of the export (hot -> delta Parquet
 *    including its verification by re-reading), of the whole run, and the time of every phase.
 * 2. Sizes: the DuckDB file holding the N values after close() (which checkpoints; the WAL is counted
 *    when one is left), the warm Parquet file and the cold one: bytes per value, per million values and
 *    against the hot file. Also the hot file after the move (DuckDB does not give deleted space back).
 * 3. A year across tiers: one device, 1 value a minute, 2 metrics (temperature float, energy integer
 *    counter), 365 days (--year-days), written to one embedded store and byte-copied to a second one;
 *    the first is tiered (hot 30 d / warm the rest / cold 0), the second stays all hot. Then, median of
 *    --runs runs each (after one warm-up, alternating which side goes first), Retention.query on the
 *    tiered one against the same query on the all-hot one: (a) the year in 1-day buckets, mean (the same
 *    series and days; float means equal to 1e-12, as DuckDB sums in no fixed order; the script throws otherwise),
 *    (b) the year raw with maxPoints 1000 and limit 1,000,000 (the default limit, 100,000 rows a series,
 *    would keep only the first ~69 days), (c) the last 30 days (all hot) raw with maxPoints 1000; (b) and (c)
 *    must be identical.
 * 4. --influx: the same two moves of a smaller day (--influx-values, default 200,000) against a real
 *    influxd 1.x started with test/support/tsdb.ts.
 *
 * Every move is checked before its figures count: no errors, one partition, all N values in the file,
 * none left hot. Everything runs under a watchdog; temp dirs (and influxd) are removed on every exit.
 * --quick: N = 100,000, a 60-day "year", 3 runs (a smoke check, well under a minute).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { DAY_MS } from '../../nodes/lib/retention/manifest';
import { parsePolicy, type RetentionPolicy } from '../../nodes/lib/retention/policy';
import { Retention, type Phase, type RunReport } from '../../nodes/lib/retention/run';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';
import { InfluxV1Backend } from '../../nodes/lib/store/influx-v1';
import type { Point, QueryResult, RangeQuery, StoreBackend } from '../../nodes/lib/store/types';
import { ROOT, tmpDir } from '../support/services';
import { removeDataDir, startInfluxV1, type InfluxV1Service } from '../support/tsdb';
import { cleanupAll, guardProcess, loadavg, onCleanup } from './proc';

/** Repository root, from dist/test/bench/retention.js (or test/bench/retention.ts). */
const OUT_FILE = path.join(ROOT, 'test-output', 'retention-bench.json');

// ---------------------------------------------------------------------------------------------
// Options

interface Args {
  values: number;
  yearDays: number;
  runs: number;
  influx: boolean;
  influxValues: number;
  quick: boolean;
}

const USAGE = 'usage: node dist/test/bench/retention.js [--values N] [--year-days N] [--runs N] [--influx] [--influx-values N] [--quick]';
const DEVICES = 200;
const METRICS = ['temperature', 'humidity', 'pressure', 'voltage', 'rssi'] as const;
/** Values per reading round of all devices: N must be a multiple. */
const PER_ROUND = DEVICES * METRICS.length;
const HOT_DAYS_YEAR = 30;

function parseArgs(argv: string[]): Args {
  const a: Args = { values: 1_000_000, yearDays: 365, runs: 7, influx: false, influxValues: 200_000, quick: false };
  const num = (v: string | undefined, name: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      console.error(`${name} must be a whole number >= ${min}, got ${JSON.stringify(v)}\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  const explicit = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--values') a.values = num(argv[++i], arg, PER_ROUND);
    else if (arg === '--year-days') a.yearDays = num(argv[++i], arg, HOT_DAYS_YEAR + 2);
    else if (arg === '--runs') a.runs = num(argv[++i], arg, 1);
    else if (arg === '--influx-values') a.influxValues = num(argv[++i], arg, PER_ROUND);
    else if (arg === '--influx') a.influx = true;
    else if (arg === '--quick') a.quick = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
      process.exit(2);
    }
    if (arg !== '--quick') explicit.add(arg);
  }
  if (a.quick) {
    if (!explicit.has('--values')) a.values = 100_000;
    if (!explicit.has('--year-days')) a.yearDays = 60;
    if (!explicit.has('--runs')) a.runs = 3;
    if (!explicit.has('--influx-values')) a.influxValues = 50_000;
  }
  for (const [name, v] of [['--values', a.values], ['--influx-values', a.influxValues]] as const) {
    if (v % PER_ROUND !== 0 || v / PER_ROUND > DAY_MS / 1000) {
      console.error(`${name} must be a multiple of ${PER_ROUND} (${DEVICES} devices x ${METRICS.length} metrics), at most one reading a second, got ${v}\n${USAGE}`);
      process.exit(2);
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Clean-up and the watchdog

function scratchDir(prefix: string): string {
  const d = tmpDir(prefix);
  onCleanup(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}


// ---------------------------------------------------------------------------------------------
// Data

const MEAS = 'telemetry';
/** Today in the bench's fixed clock (a UTC midnight); runs happen at NOW. */
const TODAY = Date.UTC(2026, 10, 20);
const NOW = TODAY + 13 * 3_600_000 + 30 * 60_000;
/** The moved day: two days before today. */
const MOVE_DAY = TODAY - 2 * DAY_MS;
const WRITE_BATCH = 5000;

/** mulberry32: small, seeded, good enough for sensor noise. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round = (v: number, decimals: number): number => {
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
};
const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/**
 * One day of fleet telemetry as line-protocol batches: `values` / 1000 readings per device spread
 * evenly over the day (86.4 s apart at 1,000,000), each device offset within the step, in time order.
 */
function* fleetDay(dayStart: number, values: number): Generator<string[]> {
  const readings = values / PER_ROUND;
  const step = Math.floor(DAY_MS / readings);
  const rand = rng(9);
  const devs = Array.from({ length: DEVICES }, (_, d) => ({
    id: `dev-${String(d).padStart(4, '0')}`,
    offset: Math.floor((d * step) / DEVICES),
    temperature: 18 + rand() * 8,
    humidity: 35 + rand() * 30,
    pressure: 1000 + rand() * 25,
    voltage: 3.9 + rand() * 0.3,
    rssi: -50 - Math.floor(rand() * 40),
  }));
  let batch: string[] = [];
  for (let i = 0; i < readings; i++) {
    for (const d of devs) {
      d.temperature = clamp(d.temperature + (rand() - 0.5) * 0.2, -10, 45);
      d.humidity = clamp(d.humidity + (rand() - 0.5) * 0.6, 5, 99);
      d.pressure = clamp(d.pressure + (rand() - 0.5) * 0.3, 950, 1050);
      d.voltage = clamp(d.voltage - rand() * 0.0004, 3.0, 4.2);
      d.rssi = clamp(d.rssi + Math.round((rand() - 0.5) * 4), -110, -30);
      const p: Point = {
        measurement: MEAS,
        tags: { device: d.id },
        fields: { temperature: round(d.temperature, 2), humidity: round(d.humidity, 1), pressure: round(d.pressure, 1), voltage: round(d.voltage, 3), rssi: BigInt(d.rssi) },
        ts: dayStart + i * step + d.offset,
      };
      batch.push(encodePoint(p));
      if (batch.length >= WRITE_BATCH) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield batch;
}

const YEAR_DEVICE = 'dev-year';

/** One device, a reading a minute over [first, first + days), temperature (float) and energy (integer counter). */
function* yearOfOneDevice(first: number, days: number): Generator<string[]> {
  const rand = rng(42);
  let temperature = 20;
  let energy = 1_000_000n;
  let batch: string[] = [];
  const minutes = days * 1440;
  for (let m = 0; m < minutes; m++) {
    const ts = first + m * 60_000;
    const season = 6 * Math.sin((2 * Math.PI * (ts / DAY_MS)) / 365);
    const daily = 3 * Math.sin((2 * Math.PI * (ts % DAY_MS)) / DAY_MS);
    temperature += (20 + season + daily - temperature) * 0.02 + (rand() - 0.5) * 0.3;
    energy += BigInt(Math.floor(rand() * 6));
    batch.push(encodePoint({ measurement: MEAS, tags: { device: YEAR_DEVICE }, fields: { temperature: round(temperature, 2), energy }, ts }));
    if (batch.length >= WRITE_BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** Writes the batches; returns values written and seconds taken. */
async function writeAll(b: StoreBackend, batches: Iterable<string[]>, fieldsPerLine: number): Promise<{ values: number; seconds: number }> {
  const t0 = performance.now();
  let lines = 0;
  for (const batch of batches) {
    await b.write({ lines: batch.join('\n'), count: batch.length });
    lines += batch.length;
  }
  return { values: lines * fieldsPerLine, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// A timed move

interface MoveTimes {
  /** ms since the run started, per mark. */
  exportCalled?: number;
  exportReturned?: number;
  phases: Partial<Record<Phase, number>>;
  run: number;
}

interface MoveResult {
  label: string;
  store: string;
  tier: 'warm' | 'cold';
  values: number;
  fileBytes: number;
  times: MoveTimes;
  /** Derived figures (seconds, values/s). */
  exportSeconds: number;
  exportRate: number;
  runRate: number;
  phaseSeconds: Record<string, number | null>;
}

/** The backend with exportRange timed; everything else passes through to the backend itself. */
function timedBackend(b: StoreBackend, mark: (what: 'exportCalled' | 'exportReturned') => void): StoreBackend {
  return new Proxy(b, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (prop === 'exportRange' && typeof v === 'function') {
        return async (...args: unknown[]) => {
          mark('exportCalled');
          const n = (await (v as (...a: unknown[]) => Promise<number>).apply(target, args)) as number;
          mark('exportReturned');
          return n;
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function movePolicy(tier: 'warm' | 'cold'): RetentionPolicy {
  return parsePolicy({ rules: [{ name: 'raw', measurement: MEAS, hotDays: 1, warmDays: tier === 'warm' ? 30 : 0, coldDays: null }] });
}

async function timedMove(label: string, store: string, backend: StoreBackend, root: string, tier: 'warm' | 'cold', values: number): Promise<MoveResult> {
  let t0 = 0;
  const times: MoveTimes = { phases: {}, run: 0 };
  const since = (): number => performance.now() - t0;
  const r = await Retention.open({
    root,
    backend: timedBackend(backend, (what) => (times[what] ??= since())),
    policy: movePolicy(tier),
    now: () => NOW,
    failAt: (phase) => {
      times.phases[phase] = since();
    },
  });
  let report: RunReport;
  try {
    t0 = performance.now();
    report = await r.run();
    times.run = since();
  } finally {
    await r.close();
  }
  const problems: string[] = [];
  if (report.errors.length > 0) problems.push(`errors: ${JSON.stringify(report.errors)}`);
  if (report.moved.length !== 1) problems.push(`${report.moved.length} partitions moved, expected 1`);
  const m = report.moved[0];
  if (m && (m.rows !== values || m.hotRows !== values || m.tier !== tier)) problems.push(`moved ${JSON.stringify(m)}, expected ${values} rows to ${tier}`);
  const left = await backend.countRange!({ measurement: MEAS, start: MOVE_DAY, end: MOVE_DAY + DAY_MS });
  if (left !== 0) problems.push(`${left} values left hot`);
  if (problems.length > 0) throw new Error(`${label}: the move did not do what it should: ${problems.join('; ')}`);

  const p = times.phases;
  const span = (from: number | undefined, to: number | undefined): number | null => (from === undefined || to === undefined ? null : (to - from) / 1000);
  const exportSeconds = span(times.exportCalled, p.exported)!;
  const phaseSeconds: Record<string, number | null> = {
    'plan, count (run start > export)': span(0, times.exportCalled),
    'read hot into staging': span(times.exportCalled, times.exportReturned),
    'delta Parquet written + verified': span(times.exportReturned, p.exported),
    'merge (warm: rename delta; cold: rewrite at ZSTD 22)': span(p.exported, p.merged),
    'verify (re-read)': span(p.merged, p.verified),
    'archive put + check': tier === 'cold' ? span(p.verified, p.archived) : null,
    'record (manifest)': span(tier === 'cold' ? p.archived : p.verified, p.recorded),
    'delete hot (count + delete)': span(p.recorded, p['hot-deleted']),
    'finish (manifest)': span(p['hot-deleted'], p.finished),
    clean: span(p.finished, p.cleaned),
  };
  return {
    label,
    store,
    tier,
    values,
    fileBytes: m.bytes,
    times,
    exportSeconds,
    exportRate: values / exportSeconds,
    runRate: values / (times.run / 1000),
    phaseSeconds,
  };
}

// ---------------------------------------------------------------------------------------------
// Embedded: moves and sizes

interface Sizes {
  values: number;
  /** An embedded store with no data, closed: the file's fixed part. */
  emptyBytes: number;
  hotBytes: number;
  hotWalBytes: number;
  hotAfterMoveBytes: number;
  warmBytes: number;
  coldBytes: number;
}

function fileBytes(f: string): number {
  try {
    return fs.statSync(f).size;
  } catch {
    return 0;
  }
}

async function embeddedMoves(args: Args, dir: string): Promise<{ ingest: { values: number; seconds: number }; warm: MoveResult; cold: MoveResult; sizes: Sizes }> {
  const empty = path.join(dir, 'empty.duckdb');
  await (await EmbeddedBackend.open({ path: empty })).close();
  const emptyBytes = fileBytes(empty) + fileBytes(`${empty}.wal`);
  const hotA = path.join(dir, 'hot-a.duckdb');
  const hotB = path.join(dir, 'hot-b.duckdb');
  const a = await EmbeddedBackend.open({ path: hotA });
  let ingest: { values: number; seconds: number };
  try {
    ingest = await writeAll(a, fleetDay(MOVE_DAY, args.values), METRICS.length);
    const n = await a.countRange({ measurement: MEAS, start: MOVE_DAY, end: MOVE_DAY + DAY_MS });
    if (n !== args.values) throw new Error(`the embedded store holds ${n} values of the day, expected ${args.values}`);
  } finally {
    await a.close(); // checkpoints
  }
  const hotBytes = fileBytes(hotA);
  const hotWalBytes = fileBytes(`${hotA}.wal`);
  fs.copyFileSync(hotA, hotB);
  if (hotWalBytes > 0) fs.copyFileSync(`${hotA}.wal`, `${hotB}.wal`);
  log(`  embedded: ${fmt(args.values)} values written in ${ingest.seconds.toFixed(1)} s; hot file ${fmtBytes(hotBytes)}${hotWalBytes ? ` + WAL ${fmtBytes(hotWalBytes)}` : ''}`);

  const moveOn = async (file: string, tier: 'warm' | 'cold'): Promise<MoveResult> => {
    const b = await EmbeddedBackend.open({ path: file });
    try {
      const r = await timedMove(`embedded > ${tier}`, 'embedded (DuckDB)', b, path.join(dir, `retention-${tier}`), tier, args.values);
      log(`  embedded > ${tier}: ${r.times.run.toFixed(0)} ms, ${fmtBytes(r.fileBytes)}`);
      return r;
    } finally {
      await b.close();
    }
  };
  const warm = await moveOn(hotA, 'warm');
  const hotAfterMoveBytes = fileBytes(hotA) + fileBytes(`${hotA}.wal`);
  const cold = await moveOn(hotB, 'cold');
  return { ingest, warm, cold, sizes: { values: args.values, emptyBytes, hotBytes, hotWalBytes, hotAfterMoveBytes, warmBytes: warm.fileBytes, coldBytes: cold.fileBytes } };
}

// ---------------------------------------------------------------------------------------------
// A year across tiers

interface QueryFigures {
  name: string;
  tieredMs: number[];
  hotMs: number[];
  tieredMedian: number;
  hotMedian: number;
  ratio: number;
  points: { tiered: number; hot: number };
  identical: boolean;
  /** When not identical but the same series and timestamps: the largest relative difference of a value, and how many differ. */
  close?: { maxRelative: number; differing: number; of: number };
}

interface YearFigures {
  days: number;
  values: number;
  ingestSeconds: number;
  move: { partitions: number; seconds: number; valuesMoved: number; warmBytes: number; hotLeft: number };
  queries: QueryFigures[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Relative difference allowed between float means summed in another order (a few ulps: 1e-15 seen). */
const FLOAT_SUM_TOLERANCE = 1e-12;

const pointCount = (r: QueryResult): number => r.series.reduce((n, s) => n + s.points.length, 0);

/**
 * Two answers with the same series and timestamps whose numbers differ by at most a relative `tolerance`:
 * (the fields in `exactFields` exactly): the largest relative difference and how many values differ; a string
 * saying where when they do not.
 */
function closeAnswers(x: QueryResult, y: QueryResult, tolerance: number, exactFields: string[]): { maxRelative: number; differing: number; of: number } | string {
  if (x.series.length !== y.series.length) return `${x.series.length} series vs ${y.series.length}`;
  let maxRelative = 0;
  let differing = 0;
  let of = 0;
  for (let i = 0; i < x.series.length; i++) {
    const a = x.series[i];
    const b = y.series[i];
    if (a.device !== b.device || a.field !== b.field) return `series ${i}: ${a.device}/${a.field} vs ${b.device}/${b.field}`;
    if (a.points.length !== b.points.length) return `${a.device}/${a.field}: ${a.points.length} points vs ${b.points.length}`;
    for (let j = 0; j < a.points.length; j++) {
      const [ta, va] = a.points[j];
      const [tb, vb] = b.points[j];
      of++;
      if (ta !== tb) return `${a.device}/${a.field} point ${j}: time ${ta} vs ${tb}`;
      if (va === vb) continue;
      if (typeof va !== 'number' || typeof vb !== 'number' || exactFields.includes(a.field)) return `${a.device}/${a.field} point ${j}: ${JSON.stringify(va)} vs ${JSON.stringify(vb)}`;
      const rel = Math.abs(va - vb) / Math.max(Math.abs(va), Math.abs(vb));
      if (!(rel <= tolerance)) return `${a.device}/${a.field} point ${j} (${new Date(ta).toISOString()}): ${va} vs ${vb} (relative difference ${rel.toExponential(2)})`;
      differing++;
      maxRelative = Math.max(maxRelative, rel);
    }
  }
  return { maxRelative, differing, of };
}

/** Where two answers first differ (for the error message). */
function firstDifference(x: QueryResult, y: QueryResult): string {
  if (x.series.length !== y.series.length) return `${x.series.length} series vs ${y.series.length}`;
  for (let i = 0; i < x.series.length; i++) {
    const a = x.series[i];
    const b = y.series[i];
    if (a.device !== b.device || a.field !== b.field) return `series ${i}: ${a.device}/${a.field} vs ${b.device}/${b.field}`;
    if (a.points.length !== b.points.length) return `${a.device}/${a.field}: ${a.points.length} points vs ${b.points.length}`;
    for (let j = 0; j < a.points.length; j++) {
      if (!isDeepStrictEqual(a.points[j], b.points[j])) return `${a.device}/${a.field} point ${j}: ${JSON.stringify(a.points[j])} vs ${JSON.stringify(b.points[j])}`;
    }
  }
  return 'no difference found';
}

async function yearAcrossTiers(args: Args, dir: string): Promise<YearFigures> {
  const days = args.yearDays;
  const first = TODAY - (days - 1) * DAY_MS;
  const end = TODAY + DAY_MS;
  const tieredFile = path.join(dir, 'year-tiered.duckdb');
  const hotFile = path.join(dir, 'year-hot.duckdb');
  const w = await EmbeddedBackend.open({ path: tieredFile });
  let ingest: { values: number; seconds: number };
  try {
    ingest = await writeAll(w, yearOfOneDevice(first, days), 2);
  } finally {
    await w.close();
  }
  fs.copyFileSync(tieredFile, hotFile);
  if (fs.existsSync(`${tieredFile}.wal`)) fs.copyFileSync(`${tieredFile}.wal`, `${hotFile}.wal`);
  log(`  year: ${fmt(ingest.values)} values (${days} days) written in ${ingest.seconds.toFixed(1)} s`);

  const tiered = await EmbeddedBackend.open({ path: tieredFile });
  const allHot = await EmbeddedBackend.open({ path: hotFile });
  let r: Retention | undefined;
  try {
    const policy = parsePolicy({ rules: [{ name: 'year', measurement: MEAS, hotDays: HOT_DAYS_YEAR, warmDays: days - HOT_DAYS_YEAR, coldDays: 0 }] });
    r = await Retention.open({ root: path.join(dir, 'retention-year'), backend: tiered, policy, now: () => NOW, maxPartitions: days + 10 });
    const t0 = performance.now();
    const report = await r.run();
    const moveSeconds = (performance.now() - t0) / 1000;
    const expectDays = days - HOT_DAYS_YEAR - 1; // today and the 30 days before it stay hot
    const hotLeft = await tiered.countRange({ measurement: MEAS, start: 0, end: end });
    const expectHot = (HOT_DAYS_YEAR + 1) * 1440 * 2;
    if (report.errors.length > 0 || report.moved.length !== expectDays || report.hotRowsDeleted !== expectDays * 1440 * 2 || hotLeft !== expectHot) {
      throw new Error(`year: the move did not do what it should: ${report.moved.length} partitions (expected ${expectDays}), ${report.hotRowsDeleted} values moved, ${hotLeft} left hot (expected ${expectHot}), errors ${JSON.stringify(report.errors.slice(0, 3))}`);
    }
    const warmBytes = report.moved.reduce((n, m) => n + m.bytes, 0);
    log(`  year: ${report.moved.length} day partitions moved to warm in ${moveSeconds.toFixed(1)} s`);

    const base = { measurement: MEAS, fields: ['temperature', 'energy'], devices: [YEAR_DEVICE] };
    // What must hold between the tiered and the all-hot answer: exact: identical; float-sum: the same series,
    // times and integers, floats equal up to the order DuckDB summed them in (avg over DOUBLE is not
    // associative: the store's per-type UNION and a Parquet scan feed it in different orders); no: not compared.
    const queries: Array<{ name: string; q: RangeQuery; match: 'exact' | 'float-sum' | 'no' }> = [
      { name: `(a) ${days} d, 1-day buckets, mean`, q: { ...base, start: first, end, bucketMs: DAY_MS, agg: 'mean' }, match: 'float-sum' },
      { name: `(b) ${days} d raw, maxPoints 1000`, q: { ...base, start: first, end, maxPoints: 1000, limit: 1_000_000 }, match: 'exact' },
      { name: '(c) last 30 d (all hot) raw, maxPoints 1000', q: { ...base, start: end - 30 * DAY_MS, end, maxPoints: 1000, limit: 1_000_000 }, match: 'exact' },
    ];
    const ret = r;
    const runTiered = (q: RangeQuery): Promise<QueryResult> => ret.query(q, (qq) => tiered.query(qq));
    const runHot = (q: RangeQuery): Promise<QueryResult> => allHot.query(q);
    const timed = async (fn: () => Promise<QueryResult>): Promise<[number, QueryResult]> => {
      const t = performance.now();
      const res = await fn();
      return [performance.now() - t, res];
    };
    const out: QueryFigures[] = [];
    for (const { name, q, match } of queries) {
      // Warm-up (file cache, DuckDB's first plans), and the answers compared.
      const [, t] = await timed(() => runTiered(q));
      const [, h] = await timed(() => runHot(q));
      const identical = isDeepStrictEqual(t, h);
      let close: QueryFigures['close'];
      if (!identical && match === 'exact') throw new Error(`${name}: the tiered answer differs from the all-hot one: ${firstDifference(t, h)}`);
      if (!identical && match === 'float-sum') {
        const c = closeAnswers(t, h, FLOAT_SUM_TOLERANCE, ['energy']);
        if (typeof c === 'string') throw new Error(`${name}: the tiered answer differs from the all-hot one: ${c}`);
        close = c;
      }
      if (pointCount(h) === 0) throw new Error(`${name}: the all-hot store answered no points`);
      const tieredMs: number[] = [];
      const hotMs: number[] = [];
      for (let i = 0; i < args.runs; i++) {
        const order = i % 2 === 0 ? ['t', 'h'] : ['h', 't'];
        for (const side of order) {
          if (side === 't') tieredMs.push((await timed(() => runTiered(q)))[0]);
          else hotMs.push((await timed(() => runHot(q)))[0]);
        }
      }
      const f: QueryFigures = {
        name,
        tieredMs,
        hotMs,
        tieredMedian: median(tieredMs),
        hotMedian: median(hotMs),
        ratio: median(tieredMs) / median(hotMs),
        points: { tiered: pointCount(t), hot: pointCount(h) },
        identical,
        ...(close ? { close } : {}),
      };
      out.push(f);
      log(`  ${name}: tiered ${f.tieredMedian.toFixed(1)} ms, all hot ${f.hotMedian.toFixed(1)} ms${identical ? '' : ' (answers differ)'}`);
    }
    return {
      days,
      values: ingest.values,
      ingestSeconds: ingest.seconds,
      move: { partitions: report.moved.length, seconds: moveSeconds, valuesMoved: report.hotRowsDeleted, warmBytes, hotLeft },
      queries: out,
    };
  } finally {
    await r?.close();
    await tiered.close();
    await allHot.close();
  }
}

// ---------------------------------------------------------------------------------------------
// InfluxDB 1.x

async function influxMoves(args: Args, dir: string): Promise<{ server: string; ingest: { values: number; seconds: number }; warm: MoveResult; cold: MoveResult }> {
  let influx: InfluxV1Service | undefined;
  const kill = (): void => {
    influx?.proc.kill('SIGKILL');
    removeDataDir(influx);
  };
  const forget = onCleanup(kill);
  try {
    influx = await startInfluxV1();
    const server = (await fetch(`${influx.url}/ping`)).headers.get('x-influxdb-version') ?? '1.x';
    const results: MoveResult[] = [];
    let ingest = { values: 0, seconds: 0 };
    for (const tier of ['warm', 'cold'] as const) {
      const backend = new InfluxV1Backend({ url: influx.url, db: `bench_${tier}`, timeoutMs: 60_000 });
      await backend.createDatabase();
      const w = await writeAll(backend, fleetDay(MOVE_DAY, args.influxValues), METRICS.length);
      if (tier === 'warm') ingest = w;
      const n = await backend.countRange({ measurement: MEAS, start: MOVE_DAY, end: MOVE_DAY + DAY_MS });
      if (n !== args.influxValues) throw new Error(`influxd holds ${n} values of the day, expected ${args.influxValues}`);
      const r = await timedMove(`influxdb > ${tier}`, `InfluxDB ${server}`, backend, path.join(dir, `retention-influx-${tier}`), tier, args.influxValues);
      log(`  influxdb > ${tier}: ${r.times.run.toFixed(0)} ms, ${fmtBytes(r.fileBytes)}`);
      results.push(r);
      await backend.close();
    }
    return { server, ingest, warm: results[0], cold: results[1] };
  } finally {
    await influx?.stop();
    removeDataDir(influx);
    forget();
  }
}

// ---------------------------------------------------------------------------------------------
// Printing

const fmt = (v: number, digits = 0): string => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const fmtBytes = (b: number): string => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} kB`);
const log = (s: string): void => console.log(s);

function table(headers: string[], rows: string[][], right: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  return [line(headers), `|${widths.map((w, i) => (right[i] ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`, ...rows.map(line)].join('\n');
}

function movesTable(moves: MoveResult[]): string {
  const secs = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v.toFixed(3));
  const phaseNames = [...new Set(moves.flatMap((m) => Object.keys(m.phaseSeconds)))];
  const rows: string[][] = [
    ['values', ...moves.map((m) => fmt(m.values))],
    ['export: values/s (hot > verified delta)', ...moves.map((m) => fmt(m.exportRate))],
    ['whole run: values/s', ...moves.map((m) => fmt(m.runRate))],
    ['whole run: s', ...moves.map((m) => secs(m.times.run / 1000))],
    ...phaseNames.map((p) => [`  ${p}: s`, ...moves.map((m) => secs(m.phaseSeconds[p]))]),
    ['file', ...moves.map((m) => fmtBytes(m.fileBytes))],
  ];
  return table(['', ...moves.map((m) => m.label)], rows, [false, ...moves.map(() => true)]);
}

function sizesTable(s: Sizes): string {
  const hot = s.hotBytes + s.hotWalBytes;
  const data = hot - s.emptyBytes;
  const row = (name: string, bytes: number): string[] => [name, fmt(bytes), (bytes / s.values).toFixed(2), fmtBytes((bytes / s.values) * 1e6), `${(hot / bytes).toFixed(1)}x`, `${(data / bytes).toFixed(1)}x`];
  return table(
    ['copy of the day', 'bytes', 'bytes/value', 'per million values', 'hot file / this', 'hot less empty / this'],
    [
      row(`hot: DuckDB file after close (checkpointed)${s.hotWalBytes ? ' + WAL' : ''}`, hot),
      row(`hot less an empty store's file (${fmtBytes(s.emptyBytes)})`, data),
      row('warm: Parquet, ZSTD default level', s.warmBytes),
      row('cold: Parquet, ZSTD 22', s.coldBytes),
    ],
    [false, true, true, true, true, true],
  );
}

function same(q: QueryFigures): string {
  if (q.identical) return 'identical';
  if (q.close) return `${q.close.differing} of ${q.close.of} values differ (float means only), max relative ${q.close.maxRelative.toExponential(1)}`;
  return 'no';
}

function yearTable(y: YearFigures): string {
  return table(
    ['query (1 device, 2 metrics)', 'tiered ms (median)', 'all hot ms (median)', 'tiered / hot', 'points (tiered, hot)', 'same answer'],
    y.queries.map((q) => [q.name, q.tieredMedian.toFixed(1), q.hotMedian.toFixed(1), `${q.ratio.toFixed(2)}x`, `${fmt(q.points.tiered)}, ${fmt(q.points.hot)}`, same(q)]),
    [false, true, true, true, true, false],
  );
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  guardProcess('retention bench', (args.quick ? 3 : 30) * 60_000 + (args.influx ? 5 * 60_000 : 0));
  const cpus = os.cpus();
  const machine = { cpus: cpus.length, model: cpus[0]?.model ?? '', node: process.version, platform: `${os.platform()} ${os.release()}`, loadavgStart: os.loadavg(), loadavgEnd: [] as number[] };
  log(`retention bench${args.quick ? ' (quick)' : ''}: node ${process.version}, ${cpus.length} cpu(s) ${machine.model}, load average ${loadavg()}`);
  const dir = scratchDir('retention-bench');
  const started = performance.now();

  log('1-2. one day on the embedded store: hot > warm, hot > cold, sizes');
  const emb = await embeddedMoves(args, dir);
  log(`3. a year (${args.yearDays} d) of one device across tiers vs all hot`);
  const year = await yearAcrossTiers(args, dir);
  let influx: Awaited<ReturnType<typeof influxMoves>> | undefined;
  if (args.influx) {
    log('4. one day on InfluxDB 1.x: hot > warm, hot > cold');
    influx = await influxMoves(args, dir);
  }
  machine.loadavgEnd = os.loadavg();
  const seconds = (performance.now() - started) / 1000;

  log('');
  log(`Moves of one day partition (${DEVICES} devices x ${METRICS.length} metrics: 4 float, 1 integer; run start = 0)`);
  log(movesTable([emb.warm, emb.cold, ...(influx ? [influx.warm, influx.cold] : [])]));
  log(`ingest: embedded ${fmt(emb.ingest.values / emb.ingest.seconds)} values/s${influx ? `, influxd ${fmt(influx.ingest.values / influx.ingest.seconds)} values/s` : ''} (5,000-line batches, 5 values a line)`);
  log('');
  log(`Sizes of ${fmt(emb.sizes.values)} values (one day); the hot file after the warm move (rows deleted): ${fmtBytes(emb.sizes.hotAfterMoveBytes)}`);
  log(sizesTable(emb.sizes));
  log('');
  log(
    `A year across tiers: ${fmt(year.values)} values over ${year.days} days, hot ${HOT_DAYS_YEAR} d / warm ${year.days - HOT_DAYS_YEAR} d; ` +
      `moved ${year.move.partitions} partitions (${fmt(year.move.valuesMoved)} values, ${fmtBytes(year.move.warmBytes)}) in ${year.move.seconds.toFixed(1)} s (${fmt(year.move.valuesMoved / year.move.seconds)} values/s); ${args.runs} runs each`,
  );
  log(yearTable(year));
  log(`checked: (b) and (c) identical; (a) the same series and days, integer means identical, float means equal within ${FLOAT_SUM_TOLERANCE} relative (DuckDB's avg sums in another order over Parquet than over the store's tables).`);
  log('');
  log(`machine: ${cpus.length} cpu(s) ${machine.model}; load average at start ${machine.loadavgStart.map((l) => l.toFixed(2)).join(' ')}, at end ${loadavg()}; ${seconds.toFixed(0)} s in all`);

  const result = { at: new Date().toISOString(), args, machine, seconds, embedded: emb, year, influx: influx ?? null };
  fs.mkdirSync(path.dirname(OUT_FILE), { recursive: true });
  fs.writeFileSync(OUT_FILE, `${JSON.stringify(result, null, 2)}\n`);
  log(`written ${path.relative(ROOT, OUT_FILE)}`);
}

main().then(
  () => {
    cleanupAll();
    process.exit(0);
  },
  (e: unknown) => {
    console.error(`retention bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    cleanupAll();
    process.exit(1);
  },
);
