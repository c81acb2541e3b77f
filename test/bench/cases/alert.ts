/**
 * The thingwire-alert engine (nodes/alert/engine.ts): rule evaluations per second with 10,000
 * alert keys. Two shapes: 1,000 devices x 10 metrics under one rule with a metric glob (a reading
 * of 10 metrics evaluates 10 keys), and 10,000 devices under one rule with two levels and
 * hysteresis (one key per reading). Values wander around the thresholds, so keys go through
 * pending, firing, escalation and resolution while timed (the event path is exercised).
 */
import { AlertEngine, type AlertOutput } from '../../../nodes/alert/engine';
import type { Reading } from '../../../nodes/lib/contract';
import type { BenchCase } from '../harness';

const T0 = Date.UTC(2026, 0, 1);
const POINTS = 1 << 16;

let values: Float64Array | undefined;

/** Values in [0, 100) with a slow walk, so conditions change now and then. */
function series(): Float64Array {
  if (values) return values;
  values = new Float64Array(POINTS);
  let x = 50;
  let s = 12345;
  for (let i = 0; i < POINTS; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    x += ((s / 0x7fffffff) - 0.5) * 6;
    if (x < 0) x = -x;
    if (x >= 100) x = 199.99 - x;
    values[i] = x;
  }
  return values;
}

interface Fleet {
  engine: AlertEngine;
  readings: Reading[];
  metrics: string[];
  next: number;
  step: number;
  now: number;
}

function fleet(devices: number, metrics: number, rules: unknown): Fleet {
  const v = series();
  const names = Array.from({ length: metrics }, (_, i) => `m${i}`);
  const engine = new AlertEngine({ rules, maxKeys: 20_000 });
  const readings: Reading[] = [];
  for (let d = 0; d < devices; d++) {
    const m: Record<string, number> = {};
    for (const n of names) m[n] = 0;
    readings.push({ device: `device-${String(d).padStart(5, '0')}`, ts: T0, metrics: m });
  }
  const f: Fleet = { engine, readings, metrics: names, next: 0, step: 0, now: T0 };
  for (let i = 0; i < devices * 3; i++) feed(f, v);
  const st = engine.stats();
  if (st.keys !== devices * metrics) throw new Error(`alert bench fixture: ${st.keys} keys, expected ${devices * metrics}`);
  if (st.firing + st.pending === 0) throw new Error('alert bench fixture: nothing firing, the event path is not exercised');
  return f;
}

/** One reading of the next device; returns the evaluations it made. */
function feed(f: Fleet, v: Float64Array): number {
  const d = f.next;
  const r = f.readings[d];
  r.ts = T0 + f.step * 10_000;
  const m = r.metrics as Record<string, number>;
  for (let i = 0; i < f.metrics.length; i++) m[f.metrics[i]] = v[(f.step * 7 + d * 131 + i * 977) & (POINTS - 1)];
  f.now = r.ts;
  const out = f.engine.ingest(r, f.now);
  if (++f.next === f.readings.length) {
    f.next = 0;
    f.step++;
  }
  return out.evaluations;
}

const GLOB_RULES = [{ id: 'high', metric: 'm*', when: { above: 90, hysteresis: 2 }, samples: 2, renotify: '15m' }];
const LEVEL_RULES = [
  {
    id: 'temp',
    metric: 'm0',
    levels: [
      { severity: 'critical', when: { above: 95 }, clear: { below: 90 } },
      { severity: 'warning', when: { above: 80, hysteresis: 3 }, for: '20s' },
    ],
  },
];

let glob: Fleet | undefined;
let levels: Fleet | undefined;

/**
 * An alert storm: 10,000 devices all above a threshold held for an hour (10,000 alerts pending, each with a
 * deadline), fed as the pipeline feeds the alert node: messages of 100 readings of one device. After each message the
 * node learns when to wake: before 2026-12-05 from 14:56 by nextDeadline() (a scan of every live key), now from the
 * message's own lastIngestDue() (the keys it evaluated).
 */
interface Storm {
  engine: AlertEngine;
  batches: Reading[][];
  next: number;
  now: number;
}

let storm: Storm | undefined;
/** The first device's hold ends then (the clock is at T0 + 1 ms at its first message). */
const STORM_FIRST = T0 + 1 + 3_600_000;
const STORM_RULES = [{ id: 'hot', metric: 't', when: { above: 45, hysteresis: 2 }, for: '1h', severity: 'warning' }];

function stormFixture(): Storm {
  if (storm) return storm;
  const engine = new AlertEngine({ rules: STORM_RULES, maxKeys: 20_000 });
  const batches: Reading[][] = [];
  for (let d = 0; d < 10_000; d++) {
    const device = `device-${String(d).padStart(5, '0')}`;
    batches.push(Array.from({ length: 100 }, (_, i) => ({ device, ts: T0, metrics: { t: 50 + (i % 10) } })));
  }
  storm = { engine, batches, next: 0, now: T0 };
  for (let i = 0; i < batches.length; i++) stormFeed(storm, true);
  const st = engine.stats();
  if (st.pending !== 10_000) throw new Error(`alert storm fixture: ${st.pending} pending, expected 10,000`);
  if (engine.nextDeadline(storm.now) !== STORM_FIRST) throw new Error('alert storm fixture: the next deadline is not the first hold');
  return storm;
}

/**
 * One message of 100 readings of the next device; returns the engine's output. The clock moves 1 ms a message while
 * the fixture is built, then stands (a reading at the time the key holds is taken, not stale), so no hold ends.
 */
function stormFeed(f: Storm, building = false): AlertOutput {
  const b = f.batches[f.next];
  if (building) f.now += 1;
  for (let i = 0; i < b.length; i++) b[i].ts = f.now;
  if (++f.next === f.batches.length) f.next = 0;
  return f.engine.ingest(b, f.now);
}

/** A storm case: a message, then `wake` (true when it found the deadline it should). */
function stormCase(how: string, wake: (f: Storm, out: AlertOutput) => boolean, baseline?: string): BenchCase {
  const name = (h: string): string => `storm: 10,000 alerts pending, 100 readings a message, then ${h}`;
  return {
    group: 'alert',
    name: name(how),
    itemsPerOp: 100,
    ...(baseline === undefined ? {} : { baseline: `alert/${name(baseline)}` }),
    setup() {
      stormFixture();
    },
    run(n) {
      const f = stormFixture();
      let s = 0;
      for (let k = 0; k < n; k++) s += wake(f, stormFeed(f)) ? 1 : 0;
      if (s !== n) throw new Error(`alert storm bench (${how}): a message without the deadline expected`);
      return s;
    },
  };
}

export const alertCases: BenchCase[] = [
  {
    group: 'alert',
    name: '10,000 keys (1,000 devices x 10 metrics, glob rule), one reading per call',
    itemsPerOp: 10,
    target: { min: 1_000_000, per: 'item', unit: 'rule evaluations' },
    setup() {
      glob ??= fleet(1000, 10, GLOB_RULES);
    },
    run(n) {
      const f = glob!;
      const v = series();
      let s = 0;
      for (let k = 0; k < n; k++) s += feed(f, v);
      if (s !== n * 10) throw new Error(`alert bench: ${s} evaluations for ${n} readings`);
      return s;
    },
  },
  {
    group: 'alert',
    name: '10,000 keys (10,000 devices, two-level rule), one reading per call',
    target: { min: 1_000_000, per: 'item', unit: 'rule evaluations' },
    setup() {
      levels ??= fleet(10_000, 1, LEVEL_RULES);
    },
    run(n) {
      const f = levels!;
      const v = series();
      let s = 0;
      for (let k = 0; k < n; k++) s += feed(f, v);
      return s;
    },
  },
  stormCase('nextDeadline() (every live key)', (f) => f.engine.nextDeadline(f.now) === STORM_FIRST),
  stormCase('lastIngestDue() (the keys it evaluated)', (f) => {
    const due = f.engine.lastIngestDue(f.now);
    return due >= STORM_FIRST && due < STORM_FIRST + 10_000;
  }, 'nextDeadline() (every live key)'),
];
