/**
 * Predictive maintenance: MaintenanceEstimator.update() on one series at one
 * reading per 5 s (days of data: a slow drift with noise, seeded), default
 * 12 h window (and the previous 6 h), 24 h horizon, alert hysteresis. With the
 * default schedule the trend is refitted once per window / 128 (5.6 min, every
 * ~67 readings) over at most 256 buckets; the "refit every reading" case shows
 * what that saves. Also one series at 5 min (144 buckets in the window, every
 * reading refits).
 */
import { MAINTENANCE_TUNING, MaintenanceEstimator } from '../../../nodes/anomaly/maintenance';
import type { BenchCase } from '../harness';
import { rng } from '../fixtures';

const POINTS = 1 << 16; // 3.8 days at 5 s
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

let values: Float64Array | undefined;

/** 60 + a drift of +8 per day (wrapping every 2^16 readings) + N(0, 0.5)-ish noise. */
function series(): Float64Array {
  if (values) return values;
  const r = rng(11);
  const out = new Float64Array(POINTS);
  for (let i = 0; i < POINTS; i++) out[i] = 60 + (8 * i) / 17_280 + (r() + r() + r() + r() - 2) * 0.85;
  values = out;
  return out;
}

interface Feed {
  est: MaintenanceEstimator;
  i: number;
}

function feedCase(name: string, model: string, stepMs: number, opts: { baseline?: string; refitEvery?: boolean; target?: number; window?: number } = {}): BenchCase {
  let f: Feed;
  const step = (n: number): number => {
    const v = series();
    const e = f.est;
    let i = f.i;
    let s = 0;
    for (let k = 0; k < n; k++, i++) {
      const r = e.update(T0 + i * stepMs, v[i & (POINTS - 1)]);
      if (r !== null) s += r.probability + (r.ttf === null ? 0 : 1);
    }
    f.i = i;
    return s;
  };
  const run = (n: number): number => {
    if (!opts.refitEvery) return step(n);
    const saved = MAINTENANCE_TUNING.REFIT_FRACTION;
    MAINTENANCE_TUNING.REFIT_FRACTION = 0;
    try {
      return step(n);
    } finally {
      MAINTENANCE_TUNING.REFIT_FRACTION = saved;
    }
  };
  return {
    group: 'maintenance',
    name,
    baseline: opts.baseline,
    target: opts.target === undefined ? undefined : { min: opts.target, per: 'op', unit: 'readings estimated' },
    setup() {
      f = { est: new MaintenanceEstimator({ threshold: 100, model, window: opts.window }), i: 0 };
      // One window and a bit of history, so every timed reading gets an estimate.
      const warm = Math.ceil((1.1 * f.est.window) / stepMs);
      run(warm);
      const last = f.est.update(T0 + f.i * stepMs, series()[f.i & (POINTS - 1)]);
      f.i++;
      if (last === null) throw new Error(`maintenance bench (${name}): no estimate after a window of data`);
      if (f.est.points > MAINTENANCE_TUNING.MAX_POINTS) throw new Error(`maintenance bench (${name}): ${f.est.points} buckets held`);
    },
    run,
  };
}

const BASE = 'maintenance/update, 1 series at 5 s, theil-sen';

export const maintenanceCases: BenchCase[] = [
  feedCase('update, 1 series at 5 s, theil-sen', 'theil-sen', 5000, { target: 20_000 }),
  feedCase('update, 1 series at 5 s, theil-sen, 6 h window', 'theil-sen', 5000, { baseline: BASE, window: 6 * HOUR }),
  feedCase('update, 1 series at 5 s, theil-sen, refit every reading', 'theil-sen', 5000, { baseline: BASE, refitEvery: true }),
  feedCase('update, 1 series at 5 s, linear', 'linear', 5000, { baseline: BASE }),
  feedCase('update, 1 series at 5 s, quadratic', 'quadratic', 5000, { baseline: BASE }),
  feedCase('update, 1 series at 5 min, theil-sen', 'theil-sen', 300_000, { baseline: BASE }),
];
