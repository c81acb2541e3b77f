/**
 * The thingwire-alert engine (nodes/alert/engine.ts): rule evaluations per second with 10,000
 * alert keys. Two shapes: 1,000 devices x 10 metrics under one rule with a metric glob (a reading
 * of 10 metrics evaluates 10 keys), and 10,000 devices under one rule with two levels and
 * hysteresis (one key per reading). Values wander around the thresholds, so keys go through
 * pending, firing, escalation and resolution while timed (the event path is exercised).
 */
import { AlertEngine } from '../../../nodes/alert/engine';
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
];
