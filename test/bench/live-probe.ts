/**
 * A probe bench:dashboard loads into the runtime it starts (`node -r dist/test/bench/live-probe.js`): every reading that
 * reaches one node (by default the starter's `tw.dp.live`, the Device page's live function) is timed against its own
 * `ts`, which the bench sets to the moment it published it. So the runtime's part of publish -> dashboard is measured
 * over every reading of every device (2,000 devices at 1/s: 120,000 in a 60 s window), not only over the watched
 * device's one a second, and its p99 means something.
 *
 * Counts go into 1 ms bins (0 .. 60 s; a reading later than that counts in the last bin), written as JSON
 * (`{ at, count, bins: [[ms, n], ...] }`, cumulative since the start) to $TW_LIVE_PROBE_FILE once a second; the bench
 * reads the file at both ends of its window and takes the difference. Node-RED's `onReceive` hook (public API, the
 * same registry the runtime uses; hooks are per process) costs one id comparison per delivered message.
 * Only on the main thread: a worker thread gets the same -r preload (until 2026-12-05 the anomaly node's scoring
 * worker wrote its own empty counts to the same file, and the bench read 0 readings or a mix of the two).
 * Bench-only: never loaded by the product.
 */
import * as fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';

interface HookEvent {
  msg?: { payload?: unknown };
  destination?: { id?: string };
}

const file = process.env.TW_LIVE_PROBE_FILE;
const target = process.env.TW_LIVE_PROBE_NODE || 'tw.dp.live';
const MAX_MS = 60_000;

// Preloads (-r) run in every worker thread too (the anomaly node's scoring worker): only Node-RED's thread has the
// hooks, and a second copy would write its empty counts over the file.
if (file && isMainThread) {
  const bins = new Uint32Array(MAX_MS + 1);
  let count = 0;
  const take = (r: unknown, now: number): void => {
    const ts = (r as { ts?: unknown } | null)?.ts;
    if (typeof ts !== 'number' || !Number.isFinite(ts)) return;
    const lag = Math.min(MAX_MS, Math.max(0, Math.round(now - ts)));
    bins[lag]++;
    count++;
  };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { hooks } = require('@node-red/util') as { hooks: { add(name: string, fn: (e: HookEvent) => void): void } };
  hooks.add('onReceive.thingwireLiveProbe', (e: HookEvent) => {
    if (e.destination?.id !== target) return;
    const now = Date.now();
    const p = e.msg?.payload;
    if (Array.isArray(p)) for (const r of p) take(r, now);
    else take(p, now);
  });
  const dump = (): void => {
    const out: Array<[number, number]> = [];
    for (let i = 0; i <= MAX_MS; i++) if (bins[i] !== 0) out.push([i, bins[i]]);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ at: Date.now(), count, bins: out }));
    fs.renameSync(tmp, file);
  };
  setInterval(dump, 1000).unref();
}
