/**
 * The thingwire-anomaly scorer (nodes/anomaly/scorer.ts) over 1,000 series: what the node adds
 * to the single-series engine (series lookup, time-order checks, AnomalyScore objects, the alert
 * state machine, the LRU clock). Readings of 1,000 devices with a temperature-like 5-minute
 * series each, past warm-up, as one batch per time step or one reading per call; and 100 series
 * with a predictive-maintenance rule on the metric (the trend fit's cost, for information: at a
 * 5-minute cadence with a 6 h window every reading refits the trend).
 */
import { AnomalyScorer } from '../../../nodes/anomaly/scorer';
import type { Reading } from '../../../nodes/lib/contract';
import type { BenchCase } from '../harness';
import { benchSeries } from './anomaly';

const SERIES = 1000;
/** Series of the maintenance case (its trend fits are ~400 times dearer than a score). */
const RULE_SERIES = 100;
const STEP_MS = 5 * 60_000;
const T0 = Date.UTC(2026, 0, 1);
const POINTS = 1 << 16;
/** Time steps fed before timing: past warm-up, seasonal profiles allocated. */
const WARM_STEPS = 600;

let values: Float64Array;

/** A scorer with its readings: one reusable Reading per device, updated in place for each step. */
interface Fleet {
  scorer: AnomalyScorer;
  series: number;
  readings: Reading[];
  step: number;
  /** Next device for the one-reading-per-call case. */
  next: number;
}

function fleet(maintenance: boolean, series = SERIES, warmSteps = WARM_STEPS): Fleet {
  values ??= benchSeries(POINTS);
  const scorer = new AnomalyScorer({
    maxSeries: 10_000,
    maintenance: maintenance ? [{ metric: 'temperature', threshold: 60, direction: 'above', window: 6 * 3_600_000, horizon: 24 * 3_600_000, level: 0.5 }] : [],
  });
  const readings: Reading[] = [];
  for (let d = 0; d < series; d++) readings.push({ device: `device-${String(d).padStart(4, '0')}`, ts: T0, metrics: { temperature: 0, online: true } });
  const f: Fleet = { scorer, series, readings, step: 0, next: 0 };
  let anomalous = 0;
  let estimates = 0;
  for (let s = 0; s < warmSteps; s++) {
    for (const sc of scoreStep(f)) {
      if (sc.anomalous) anomalous++;
      if (sc.maintenance !== undefined) estimates++;
    }
  }
  const st = scorer.stats();
  if (st.series !== series || st.learning !== 0 || st.rejected !== 0) throw new Error(`anomaly scorer bench fixture: ${JSON.stringify(st)}`);
  if (!maintenance && anomalous === 0) throw new Error('anomaly scorer bench fixture: no anomalies at all, the event path is not exercised');
  if (maintenance && estimates === 0) throw new Error('anomaly scorer bench fixture: no maintenance estimates');
  return f;
}

/** Sets reading d to time step `step`. */
function set(f: Fleet, d: number, step: number): void {
  const r = f.readings[d];
  r.ts = T0 + step * STEP_MS;
  r.metrics.temperature = values[(step * 7 + d * 131) & (POINTS - 1)] + (d % 10);
}

function scoreStep(f: Fleet): ReturnType<AnomalyScorer['score']>['scores'] {
  for (let d = 0; d < f.series; d++) set(f, d, f.step);
  f.step++;
  return f.scorer.score(f.readings).scores;
}

let batched: Fleet | undefined;
let single: Fleet | undefined;
let withRule: Fleet | undefined;

export const anomalyScorerCases: BenchCase[] = [
  {
    group: 'anomaly',
    name: `scorer, ${SERIES} series, one batch of ${SERIES} readings per call`,
    itemsPerOp: SERIES,
    target: { min: 1_000_000, per: 'item', unit: 'points scored' },
    setup() {
      batched ??= fleet(false);
    },
    run(n) {
      const f = batched!;
      let s = 0;
      for (let k = 0; k < n; k++) s += scoreStep(f).length;
      return s;
    },
  },
  {
    group: 'anomaly',
    name: `scorer, ${SERIES} series, one reading per call`,
    setup() {
      single ??= fleet(false);
    },
    run(n) {
      const f = single!;
      let s = 0;
      for (let k = 0; k < n; k++) {
        const d = f.next;
        set(f, d, f.step);
        s += f.scorer.score(f.readings[d]).scores.length;
        if (++f.next === SERIES) {
          f.next = 0;
          f.step++;
        }
      }
      return s;
    },
  },
  {
    group: 'anomaly',
    name: `scorer, ${RULE_SERIES} series with a maintenance rule, one batch per call`,
    itemsPerOp: RULE_SERIES,
    setup() {
      withRule ??= fleet(true, RULE_SERIES, 160);
    },
    run(n) {
      const f = withRule!;
      let s = 0;
      for (let k = 0; k < n; k++) s += scoreStep(f).length;
      return s;
    },
  },
];
