/**
 * Nice values per thread (nodes/lib/thread-priority.ts, Linux): a worker that lowers its own priority and no other
 * thread's; the embedded store's thread with the threads DuckDB starts from it; the anomaly scoring thread; and the
 * load generator in a thread of its own (test/bench/gen-thread.ts) publishing to a real mosquitto, its probe times
 * shared with this thread. Each thread's nice value is read from /proc/self/task/<tid>/stat. The workers run the
 * built scripts (`npm test` builds first).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import mqtt from 'mqtt';
import { RemoteScorer } from '../../nodes/anomaly/remote';
import { DEFAULT_TEXT } from '../../nodes/anomaly/scorer';
import { EmbeddedThreadBackend } from '../../nodes/lib/store/embedded-remote';
import { niceCallingThread, workerNice } from '../../nodes/lib/thread-priority';
import { GeneratorThread, RING, SharedTimes } from '../../test/bench/gen-thread';
import { expectedOf, loadDeviceId } from '../../runtime/loadgen';
import { freePort, ROOT, startMosquitto, waitFor, type Mosquitto } from '../support/services';

/** This process's threads: tid -> nice value (field 19 of stat; the name, field 2, may hold spaces). */
function nices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(t), Number(fields[19 - 3]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function threadsAt(nice: number): number[] {
  return [...nices()].filter(([, n]) => n === nice).map(([t]) => t);
}

const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
});

test('THINGWIRE_WORKER_NICE: 0 unless set to a whole number from 0 to 19', () => {
  expect(workerNice({})).toBe(0);
  expect(workerNice({ THINGWIRE_WORKER_NICE: '12' })).toBe(12);
  for (const bad of ['20', '-3', 'x', '1.5']) expect(workerNice({ THINGWIRE_WORKER_NICE: bad })).toBe(0);
  // 0 asks for nothing: this thread stays where it is.
  expect(niceCallingThread(0)).toBeUndefined();
  expect(nices().get(process.pid)).toBe(0);
});

test('a worker lowers its own priority, not the process\'s, and never raises it back', async () => {
  const script = path.join(ROOT, 'dist', 'nodes', 'lib', 'thread-priority.js');
  const w = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const { niceCallingThread, callingThreadId } = require(${JSON.stringify(script)});
     const first = niceCallingThread(7);
     const again = niceCallingThread(3);
     parentPort.postMessage({ first, again, tid: callingThreadId() });
     setInterval(() => undefined, 1000);`,
    { eval: true },
  );
  try {
    const m = await new Promise<{ first?: string; again?: string; tid: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(m.first).toBeUndefined();
    expect(m.again).toBeUndefined();
    expect(m.tid).not.toBe(process.pid);
    const n = nices();
    expect(n.get(m.tid)).toBe(7);
    expect(n.get(process.pid)).toBe(0);
    expect(threadsAt(7)).toEqual([m.tid]);
  } finally {
    await w.terminate();
  }
});

test('the embedded store\'s thread and DuckDB\'s threads run at threadNice; none is left when it closes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-nice-'));
  tmp.push(dir);
  expect(threadsAt(9)).toEqual([]);
  const store = await EmbeddedThreadBackend.open({ path: path.join(dir, 'a.duckdb'), threadNice: 9 });
  try {
    await store.write({ lines: 'telemetry,device=d1 t=1 1767225600000', count: 1 });
    // The store's thread and the thread(s) DuckDB started (2 threads by default: the caller and one more).
    expect(threadsAt(9).length).toBeGreaterThanOrEqual(2);
    expect(nices().get(process.pid)).toBe(0);
  } finally {
    await store.close();
  }
  await waitFor('the store thread gone', () => threadsAt(9).length === 0, 10_000);
});

test('the anomaly scoring thread runs at its nice value', async () => {
  const r = new RemoteScorer({ scorer: { warmup: 30, clearAfter: 2, maintenance: [], metrics: [] }, text: DEFAULT_TEXT, warn: () => undefined, nice: 11 });
  try {
    expect(threadsAt(11)).toEqual([]);
    const out = await r.score([{ device: 'd1', ts: Date.UTC(2026, 0, 1), metrics: { t: 20 } }]);
    expect(out.scores.length).toBeGreaterThan(0);
    expect(threadsAt(11)).toHaveLength(1);
  } finally {
    await r.close(false);
  }
  await waitFor('the scoring thread gone', () => threadsAt(11).length === 0, 10_000);
});

test('shared publish times: a seq is answered from its own slot only', () => {
  const t = new SharedTimes();
  const other = new SharedTimes(t.buffers); // as the generator's thread sees the same memory
  other.set(5, 1000);
  expect(t.get(5)).toBe(1000);
  expect(t.get(4)).toBeUndefined();
  expect(t.get(0)).toBeUndefined();
  other.set(5 + RING, 2000); // the same slot, a ring later
  expect(t.get(5)).toBeUndefined();
  expect(t.get(5 + RING)).toBe(2000);
});

describe('the load generator in its own thread', () => {
  let broker: Mosquitto | undefined;
  afterAll(async () => {
    await broker?.stop();
  });

  test('publishes at its nice value; counts, seqs and the probes\' publish times come back to this thread', async () => {
    const port = await freePort();
    broker = await startMosquitto({ port });
    // What the broker delivered, per device: the seqs in the payloads.
    const seen = new Map<string, number[]>();
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'tw-nice-sub' });
    sub.on('message', (topic, payload) => {
      const device = topic.split('/')[1];
      const list = seen.get(device) ?? [];
      for (const r of JSON.parse(payload.toString()) as Array<{ seq: number }>) list.push(r.seq);
      seen.set(device, list);
    });
    let gen: GeneratorThread | undefined;
    try {
      await sub.subscribeAsync('devices/+/telemetry', { qos: 1 });
      gen = await GeneratorThread.start({ url: `mqtt://127.0.0.1:${port}`, devices: 20, prefix: 'devices', qos: 1, connections: 2, metrics: 3, padBytes: 0, maxInFlight: 100, track: [0, 7] }, 13);
      expect(gen.niceProblem).toBeUndefined();
      expect(gen.nice).toBe(13);
      expect(threadsAt(13)).toHaveLength(1);
      expect(nices().get(process.pid)).toBe(0);
      await gen.connect();
      const t0 = Date.now();
      const r = await gen.run({ rate: 2000, durationMs: 10_000, batch: 10, readings: 4000 });
      expect(r.readings).toBe(4000);
      expect(gen.totalReadings).toBe(4000);
      expect(gen.failedSeqs.size).toBe(0);
      await waitFor('every message at the subscriber', () => [...seen.values()].reduce((a, l) => a + l.length, 0) === 4000, 10_000);
      // lastSeq came back: per device, the seqs 1..lastSeq were delivered, each once.
      const expected = expectedOf(gen);
      let sum = 0;
      for (const [device, last] of expected) {
        expect(last).toBeGreaterThan(0);
        sum += last;
        expect([...(seen.get(device) ?? [])].sort((a, b) => a - b)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      }
      expect(sum).toBe(4000);
      // The tracked devices' publish times, written by the thread, read here; an untracked device has none.
      for (const d of [0, 7]) {
        const times = gen.publishedAt.get(d)!;
        for (let q = 1; q <= gen.lastSeq[d]; q++) {
          const at = times.get(q);
          expect(at).toBeGreaterThanOrEqual(t0 - 1);
          expect(at).toBeLessThanOrEqual(Date.now());
        }
        expect(times.get(gen.lastSeq[d] + 1)).toBeUndefined();
      }
      expect(gen.publishedAt.get(1)).toBeUndefined();
      expect(loadDeviceId(0)).toBe([...expected.keys()][0]);
    } finally {
      await gen?.close();
      await sub.endAsync();
    }
    await waitFor('the generator thread gone', () => threadsAt(13).length === 0, 10_000);
  }, 40_000);
});
