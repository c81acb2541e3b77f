/**
 * thingwire-window engine benches.
 *
 * - throughput: 10,000 keys (10,000 devices x 1 metric), a 1m tumbling window, 5 s allowed
 *   lateness, percentiles on. Each key reports once a second of event time; one reading in ten
 *   arrives up to 2 s out of order (inside the lateness, so it is counted). 2^18 readings are
 *   replayed with their event times moved forward by the fixture's span on every pass, so windows
 *   keep closing: about 1 rollup per 60 readings. Target: 3,000,000 readings/s on one core.
 * - the same with 3 metrics per reading (3,334 devices x 3 metrics = 10,002 keys), and with the
 *   cascade 1m > 1h > 1d.
 * - memory: measureWindowMemory() builds 10,000 keys' state (open windows holding a minute of
 *   one-second temperatures, plus their open 1h and 1d windows for the cascade) between two full
 *   GCs and divides the growth of heapUsed + external by keys x levels. The "stats() over 10,000
 *   keys" case runs it in setup and prints the figures (target: at most 2 KB per key and level
 *   with the sketch on).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { WindowEngine, type WindowEngineOptions, type WindowOutput } from '../../../nodes/window/engine';
import { Journal } from '../../../nodes/window/journal';
import type { BenchCase } from '../harness';
import { rng } from '../fixtures';

const KEYS = 10_000;
const FIXTURES = 1 << 18;
const T0 = Date.UTC(2026, 0, 1);
/** Event-time span of one pass over the fixtures (ms): every key reports once a second. */
function spanOf(devices: number): number {
  return Math.ceil((FIXTURES * 1000) / devices);
}

/**
 * A pass of readings as columns: device strings (fresh ones, from JSON.parse as from MQTT), event
 * time offsets and metrics objects. Each op builds the Reading object the engine sees, with its ts
 * moved forward by the fixture's span on every pass, as a flow hands the node a new message
 * object each time (and the fixtures stay immutable, so no old-to-new pointers are created).
 */
interface Stream {
  devices: string[];
  offsets: Float64Array;
  metrics: Array<Record<string, number>>;
  span: number;
}

function stream(devices: number, metrics: readonly string[], seed: number): Stream {
  const r = rng(seed);
  const temp = Array.from({ length: devices }, () => 15 + r() * 10);
  const s: Stream = { devices: [], offsets: new Float64Array(FIXTURES), metrics: [], span: spanOf(devices) };
  for (let i = 0; i < FIXTURES; i++) {
    const d = i % devices;
    let off = Math.floor((i * 1000) / devices);
    if (r() < 0.1) off -= Math.floor(r() * 2000);
    temp[d] += (r() - 0.5) * 0.2;
    const m: Record<string, number> = {};
    for (let k = 0; k < metrics.length; k++) m[metrics[k]] = Math.round((temp[d] + k * 10) * 100) / 100;
    const parsed = JSON.parse(JSON.stringify({ device: `dev-${String(d).padStart(5, '0')}`, metrics: m })) as { device: string; metrics: Record<string, number> };
    s.devices.push(parsed.device);
    s.offsets[i] = off;
    s.metrics.push(parsed.metrics);
  }
  return s;
}

/** A stream replayed forward in event time, through one engine. */
class Replay {
  readonly engine: WindowEngine;
  private readonly s: Stream;
  private i = 0;
  private base = T0;

  constructor(s: Stream, options: WindowEngineOptions) {
    this.s = s;
    this.engine = new WindowEngine(options);
  }

  run(n: number): number {
    const { devices, offsets, metrics } = this.s;
    const e = this.engine;
    let sum = 0;
    let i = this.i;
    let base = this.base;
    for (let k = 0; k < n; k++) {
      if (i === FIXTURES) {
        base += this.s.span;
        i = 0;
      }
      const out: WindowOutput = e.ingest({ device: devices[i], ts: base + offsets[i], metrics: metrics[i] });
      i++;
      const rs = out.rollups;
      if (rs.length !== 0) sum += rs.length + (rs[0].count & 7);
    }
    this.i = i;
    this.base = base;
    return sum;
  }
}

const BASE: WindowEngineOptions = { levels: ['1m'], lateness: 5000, maxKeys: 200_000 };

let one: Replay | undefined;
let three: Replay | undefined;
let cascade: Replay | undefined;

function check(rp: Replay, keys: number): void {
  // One full pass plus a minute: windows must have closed for every key, nothing dropped.
  rp.run(FIXTURES + keys * 70);
  const st = rp.engine.stats();
  if (st.keys !== keys) throw new Error(`expected ${keys} keys, got ${st.keys}`);
  if (st.emitted < keys) throw new Error(`expected closed windows for every key, got ${st.emitted}`);
  if (st.late.dropped !== 0) throw new Error(`the bench stream should not drop readings, dropped ${st.late.dropped}`);
}

// ---- memory -------------------------------------------------------------------------------

function gcFunction(): () => void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as unknown;
  if (typeof gc !== 'function') throw new Error('cannot reach gc()');
  return () => {
    gc();
    gc();
  };
}

export interface MemoryResult {
  keys: number;
  levels: number;
  bytesPerKeyLevel: number;
  estimatePerKeyLevel: number;
  openWindows: number;
}

/**
 * Bytes of window state per key and level: `keys` keys whose open 1m window holds a minute of
 * one-second temperatures (random walk, 0.01 resolution; or, with `wide`, values uniform in
 * 0..1000, a worst case for the sketch's dense buckets). With several levels, every level has an
 * open window: the keys first report once a minute for 62 minutes (closing the first hour into the
 * 1d window), then the dense minute. Measured as the growth of heapUsed + external between two full
 * GCs around creating the engine and feeding it, divided by keys x levels; everything the engine
 * holds counts (device names included), the readings themselves are garbage by then.
 */
export function measureWindowMemory(levels: readonly string[], wide = false, keys = KEYS): MemoryResult {
  const gc = gcFunction();
  const r = rng(7);
  const temp = new Float64Array(keys);
  for (let d = 0; d < keys; d++) temp[d] = 15 + r() * 10;
  const value = (d: number): number => {
    temp[d] += (r() - 0.5) * 0.2;
    return wide ? r() * 1000 : Math.round(temp[d] * 100) / 100;
  };
  gc();
  const before = process.memoryUsage();
  const engine = new WindowEngine({ levels, lateness: 5000, maxKeys: 200_000 });
  let t = T0;
  if (levels.length > 1) {
    for (; t < T0 + 62 * 60_000; t += 60_000) {
      for (let d = 0; d < keys; d++) engine.ingest({ device: `dev-${String(d).padStart(5, '0')}`, ts: t + (d % 1000), metrics: { temperature: value(d) } });
    }
  }
  for (let sec = 0; sec < 55; sec++) {
    for (let d = 0; d < keys; d++) engine.ingest({ device: `dev-${String(d).padStart(5, '0')}`, ts: t + sec * 1000 + (d % 1000), metrics: { temperature: value(d) } });
  }
  gc();
  const after = process.memoryUsage();
  const st = engine.stats();
  const grown = after.heapUsed + after.external - (before.heapUsed + before.external);
  return {
    keys: st.keys,
    levels: levels.length,
    bytesPerKeyLevel: Math.round(grown / (st.keys * levels.length)),
    estimatePerKeyLevel: Math.round(st.bytes / (st.keys * levels.length)),
    openWindows: st.openWindows,
  };
}

let statsEngine: WindowEngine | undefined;

/**
 * The window node's crash journal as the starter flow feeds it: messages of 100 readings of one device (ts, seq and
 * three metrics, as normalised from the load generator), 1,000 devices in turn, appended (encoded and written with
 * one write to the page cache) to a file in the OS temp dir that starts afresh every 2,000 messages (as a snapshot
 * would rotate it).
 */
class JournalFeed {
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-bench-journal-'));
  private journal = new Journal(path.join(this.dir, 'w'));
  private readonly messages: Array<Array<{ device: string; ts: number; metrics: Record<string, number> }>> = [];
  private i = 0;
  private marks = 0;
  constructor() {
    const r = rng(21);
    for (let m = 0; m < 1000; m++) {
      const device = JSON.parse(`"load-${String(m).padStart(5, '0')}"`) as string;
      const batch = [];
      for (let k = 0; k < 100; k++) {
        // Fresh objects from JSON text, as the normaliser's input gives them names.
        batch.push({ device, ts: T0 + m * 100 + k, metrics: JSON.parse(`{"seq":${m * 100 + k},"temperature":${20 + r()},"humidity":${50 + r()},"vibration":${1 + r()}}`) as Record<string, number> });
      }
      this.messages.push(batch);
    }
  }
  run(n: number): number {
    for (let k = 0; k < n; k++) {
      if (this.i % 2000 === 1999) {
        for (const [, f] of this.journal.files()) fs.rmSync(f, { force: true });
        this.journal.close();
        this.journal = new Journal(path.join(this.dir, 'w'));
      }
      this.marks += this.journal.append(T0, this.messages[this.i++ % this.messages.length]);
    }
    return this.marks;
  }
}

let journalFeed: JournalFeed | undefined;

export const windowCases: BenchCase[] = [
  {
    group: 'window',
    name: 'journal: append a 100-reading message (one device, 4 metrics)',
    itemsPerOp: 100,
    setup() {
      journalFeed ??= new JournalFeed();
    },
    run(n) {
      return journalFeed!.run(n);
    },
  },
  {
    group: 'window',
    name: 'ingest 1 metric, 10,000 keys, 1m window',
    target: { min: 3_000_000, per: 'op', unit: 'readings' },
    setup() {
      if (one) return;
      one = new Replay(stream(KEYS, ['temperature'], 11), BASE);
      check(one, KEYS);
    },
    run(n) {
      return one!.run(n);
    },
  },
  {
    group: 'window',
    name: 'ingest 3 metrics, 10,002 keys, 1m window',
    itemsPerOp: 3,
    setup() {
      if (three) return;
      three = new Replay(stream(3334, ['temperature', 'humidity', 'pressure'], 12), BASE);
      check(three, 3334 * 3);
    },
    run(n) {
      return three!.run(n);
    },
  },
  {
    group: 'window',
    name: 'ingest 1 metric, 10,000 keys, cascade 1m>1h>1d',
    setup() {
      if (cascade) return;
      cascade = new Replay(stream(KEYS, ['temperature'], 13), { ...BASE, levels: ['1m', '1h', '1d'] });
      check(cascade, KEYS);
    },
    run(n) {
      return cascade!.run(n);
    },
  },
  {
    group: 'window',
    name: 'stats() over 10,000 keys (memory per key and level printed in setup)',
    setup() {
      if (statsEngine) return;
      for (const [levels, wide] of [
        [['1m'], false],
        [['1m', '1h', '1d'], false],
        [['1m'], true],
        [['1m', '1h', '1d'], true],
      ] as const) {
        const m = measureWindowMemory(levels, wide);
        process.stderr.write(
          `  window state memory, ${levels.join('>')}${wide ? ', values uniform in 0..1000' : ''}: ` +
            `${m.bytesPerKeyLevel} B per key and level measured (${m.keys} keys, ${m.openWindows} open windows; stats() estimate ${m.estimatePerKeyLevel} B), target <= 2048 B\n`,
        );
      }
      statsEngine = new WindowEngine(BASE);
      const r = rng(3);
      for (let d = 0; d < KEYS; d++) statsEngine.ingest({ device: `dev-${d}`, ts: T0 + d, metrics: { temperature: 20 + r() } });
    },
    run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += statsEngine!.stats().keys;
      return s;
    },
  },
];
