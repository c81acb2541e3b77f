/**
 * The worker side of test/bench/offload-probe.ts: scores batches posted as typed arrays with the anomaly scorer and
 * answers each score's numbers in one transferred Float64Array (score, expected, lower, upper, flags, signal).
 */
import { parentPort } from 'node:worker_threads';
import { AnomalyScorer } from '../../nodes/anomaly/scorer';
import type { Reading } from '../../nodes/lib/contract';

export const SIGNALS = ['learning', 'invalid', 'none', 'level', 'daily', 'weekly', 'range', 'recent-range'] as const;
/** Numbers a score takes in the answer. */
export const STRIDE = 6;

export interface ProbeBatch {
  id: number;
  device: string;
  names: readonly string[];
  ts: Float64Array;
  /** names.length values a reading, reading by reading. */
  vals: Float64Array;
}

if (parentPort) {
  const port = parentPort;
  const scorer = new AnomalyScorer({});
  port.on('message', (m: ProbeBatch) => {
    const n = m.ts.length;
    const k = m.names.length;
    const batch = new Array<Reading>(n);
    for (let i = 0; i < n; i++) {
      const metrics: Record<string, number> = {};
      for (let j = 0; j < k; j++) metrics[m.names[j]] = m.vals[i * k + j];
      batch[i] = { device: m.device, ts: m.ts[i], metrics };
    }
    const s = scorer.score(batch).scores;
    const r = new Float64Array(s.length * STRIDE);
    for (let i = 0; i < s.length; i++) {
      const a = s[i];
      const o = i * STRIDE;
      r[o] = a.score;
      r[o + 1] = a.expected;
      r[o + 2] = a.lower;
      r[o + 3] = a.upper;
      r[o + 4] = (a.anomalous ? 1 : 0) | (a.learning ? 2 : 0);
      r[o + 5] = SIGNALS.indexOf(a.signal as (typeof SIGNALS)[number]);
    }
    port.postMessage({ id: m.id, r }, [r.buffer]);
  });
}
