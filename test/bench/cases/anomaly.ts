/**
 * Streaming anomaly scoring: AnomalyDetector.update() on realistic telemetry,
 * a 5-minute series with a daily cycle, noise, slow drift and occasional
 * spikes and level shifts (seeded, so runs compare).
 */
import { AnomalyDetector } from '../../../nodes/anomaly/engine';
import type { BenchCase } from '../harness';
import { rng } from '../fixtures';

const POINTS = 1 << 16;
const STEP_MS = 5 * 60_000;
const T0 = Date.UTC(2026, 0, 1);
const SERIES = 1000;

let values: Float64Array;
let one: AnomalyDetector;
let many: AnomalyDetector[];
/** Next reading index per case; timestamps keep increasing across runs. */
let iOne = 0;
let iMany = 0;

/** Temperature-like: 20 + 5 sin(day) + drift + N(0, 0.5), a spike every ~2000 points, a level shift every ~10000. */
export function benchSeries(count = POINTS, seed = 7): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(count);
  let shift = 0;
  for (let i = 0; i < count; i++) {
    const day = (2 * Math.PI * i) / 288;
    const noise = (r() + r() + r() + r() - 2) * 0.85;
    if (r() < 1 / 10_000) shift += (r() - 0.5) * 8;
    let v = 20 + 5 * Math.sin(day) + 0.0001 * i + shift + noise;
    if (r() < 1 / 2000) v += (r() < 0.5 ? -1 : 1) * (6 + r() * 10);
    out[i] = v;
  }
  return out;
}

function setup(): void {
  if (values) return;
  values = benchSeries();
  one = new AnomalyDetector();
  // Past warm-up and with its seasonal profiles learnt, like a live series.
  for (let i = 0; i < 4 * 2016; i++, iOne++) one.update(T0 + iOne * STEP_MS, values[iOne & (POINTS - 1)]);
  let anomalous = 0;
  for (let i = 0; i < POINTS; i++, iOne++) if (one.update(T0 + iOne * STEP_MS, values[iOne & (POINTS - 1)]).anomalous) anomalous++;
  if (anomalous === 0 || anomalous > POINTS / 50) throw new Error(`anomaly bench fixture: ${anomalous} anomalous of ${POINTS}, expected a few`);
  many = [];
  for (let k = 0; k < SERIES; k++) many.push(new AnomalyDetector());
  for (let i = 0; i < 600 * SERIES; i++, iMany++) many[iMany % SERIES].update(T0 + Math.floor(iMany / SERIES) * STEP_MS, values[(iMany * 7 + (iMany % SERIES)) & (POINTS - 1)]);
}

export const anomalyCases: BenchCase[] = [
  {
    group: 'anomaly',
    name: 'update, one series (5-min, daily cycle)',
    target: { min: 1_000_000, per: 'op', unit: 'points scored' },
    setup,
    run(n) {
      const d = one;
      const v = values;
      let i = iOne;
      let s = 0;
      for (let k = 0; k < n; k++, i++) s += d.update(T0 + i * STEP_MS, v[i & (POINTS - 1)]).score;
      iOne = i;
      return s;
    },
  },
  {
    group: 'anomaly',
    name: `update, ${SERIES} series round-robin`,
    setup,
    run(n) {
      const ds = many;
      const v = values;
      let i = iMany;
      let s = 0;
      for (let k = 0; k < n; k++, i++) s += ds[i % SERIES].update(T0 + Math.floor(i / SERIES) * STEP_MS, v[(i * 7 + (i % SERIES)) & (POINTS - 1)]).score;
      iMany = i;
      return s;
    },
  },
];
