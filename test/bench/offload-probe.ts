/**
 * What moving the anomaly scorer off the main thread would save it (a feasibility probe, not a registry case):
 *
 *   npm run build && node dist/test/bench/offload-probe.js [--messages N] [--reps N]
 *
 * The full pipeline's batched limit is its main thread while a third of the machine is idle (README, Benchmarks), so
 * work moved to a worker can raise it, if handing it over costs the main thread less than doing it. Messages of 100
 * readings (3 metrics) of one device, 1,000 devices in turn, scored (a) by the scorer in this thread, and (b) by the
 * same scorer in a worker: the readings packed into Float64Arrays and transferred, the answer transferred back and
 * made into the AnomalyScore objects the node sends (the contract's output: the main thread still builds those), up to
 * 32 messages in flight. "main thread" is the event loop's active time a message (performance.eventLoopUtilization)
 * less the time to build the message; "wall" the run's length (the worker scores in parallel). Alternately, --reps
 * times (default 3); printed and written to test-output/offload-probe.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { AnomalyScorer } from '../../nodes/anomaly/scorer';
import type { AnomalyScore, Reading } from '../../nodes/lib/contract';
import { SIGNALS, STRIDE, type ProbeBatch } from './offload-worker';

const NAMES = ['temperature', 'humidity', 'vibration'];
const DEVICES = 1000;
const PER_MESSAGE = 100;
const IN_FLIGHT = 32;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  const v = i < 0 ? def : Number(process.argv[i + 1]);
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`${name} must be a positive whole number`);
  return v;
}

class Messages {
  private clock = Date.UTC(2026, 0, 1);
  make(i: number): Reading[] {
    const device = `load-${String(i % DEVICES).padStart(5, '0')}`;
    const b = new Array<Reading>(PER_MESSAGE);
    for (let j = 0; j < PER_MESSAGE; j++) {
      this.clock += 1;
      b[j] = { device, ts: this.clock, metrics: { temperature: 20 + Math.sin(j), humidity: 50 + (j % 7), vibration: 1 + (j % 3) / 10 } };
    }
    return b;
  }
}

interface Run {
  mainUs: number;
  wallMs: number;
  scores: number;
}

async function inThread(n: number): Promise<Run> {
  const scorer = new AnomalyScorer({});
  const msgs = new Messages();
  const e0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  let scores = 0;
  for (let i = 0; i < n; i++) {
    scores += scorer.score(msgs.make(i)).scores.length;
    if ((i & 63) === 63) await new Promise((r) => setImmediate(r));
  }
  const e = performance.eventLoopUtilization(e0);
  return { mainUs: (e.active * 1000) / n, wallMs: performance.now() - t0, scores };
}

async function offloaded(n: number): Promise<Run> {
  const w = new Worker(path.join(__dirname, 'offload-worker.js'));
  await new Promise((r) => w.once('online', r));
  const msgs = new Messages();
  const pending = new Map<number, Reading[]>();
  let sent = 0;
  let done = 0;
  let scores = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const post = (i: number): void => {
    const batch = msgs.make(i);
    const ts = new Float64Array(batch.length);
    const vals = new Float64Array(batch.length * NAMES.length);
    for (let j = 0; j < batch.length; j++) {
      ts[j] = batch[j].ts;
      for (let k = 0; k < NAMES.length; k++) vals[j * NAMES.length + k] = batch[j].metrics[NAMES[k]] as number;
    }
    pending.set(i, batch);
    const m: ProbeBatch = { id: i, device: batch[0].device, names: NAMES, ts, vals };
    w.postMessage(m, [ts.buffer, vals.buffer]);
  };
  const pump = (): void => {
    while (sent < n && sent - done < IN_FLIGHT) post(sent++);
    if (done === n) finish();
  };
  w.on('message', ({ id, r }: { id: number; r: Float64Array }) => {
    const batch = pending.get(id)!;
    pending.delete(id);
    const out = new Array<AnomalyScore>(r.length / STRIDE);
    let q = 0;
    for (let i = 0; i < batch.length; i++) {
      for (let k = 0; k < NAMES.length; k++, q++) {
        const o = q * STRIDE;
        out[q] = {
          device: batch[i].device,
          metric: NAMES[k],
          ts: batch[i].ts,
          value: batch[i].metrics[NAMES[k]] as number,
          score: r[o],
          anomalous: (r[o + 4] & 1) === 1,
          expected: r[o + 1],
          lower: r[o + 2],
          upper: r[o + 3],
          signal: SIGNALS[r[o + 5]],
          learning: (r[o + 4] & 2) === 2,
        };
      }
    }
    scores += out.length;
    done++;
    pump();
  });
  const e0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  pump();
  await all;
  const e = performance.eventLoopUtilization(e0);
  const wallMs = performance.now() - t0;
  await w.terminate();
  return { mainUs: (e.active * 1000) / n, wallMs, scores };
}

async function main(): Promise<void> {
  const n = arg('--messages', 20_000);
  const reps = arg('--reps', 3);
  const t = performance.now();
  const m = new Messages();
  for (let i = 0; i < n; i++) m.make(i);
  const buildUs = ((performance.now() - t) * 1000) / n;
  const rows: Array<{ inThread: Run; offloaded: Run }> = [];
  for (let r = 0; r < reps; r++) {
    const a = await inThread(n);
    const b = await offloaded(n);
    if (a.scores !== n * PER_MESSAGE * NAMES.length || b.scores !== a.scores) throw new Error(`offload probe: ${a.scores} / ${b.scores} scores`);
    rows.push({ inThread: a, offloaded: b });
    console.log(
      `main thread a ${PER_MESSAGE}-reading message: in thread ${(a.mainUs - buildUs).toFixed(1)} us, handed to a worker ${(b.mainUs - buildUs).toFixed(1)} us` +
        ` (building the message ${buildUs.toFixed(1)} us, left out); wall ${a.wallMs.toFixed(0)} / ${b.wallMs.toFixed(0)} ms`,
    );
  }
  fs.mkdirSync('test-output', { recursive: true });
  fs.writeFileSync(path.join('test-output', 'offload-probe.json'), JSON.stringify({ at: new Date().toISOString(), messages: n, buildUs, rows }, null, 2));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
