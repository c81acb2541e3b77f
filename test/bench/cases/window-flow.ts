/**
 * Through Node-RED: thingwire-window beside node-red-contrib-aggregator 2.0.0 doing the same job in
 * the same run: a 1 s tumbling mean per series over 1,000 series (1,000 devices x one metric, one
 * reading a message). Each node sits in its own pipeline of one flow in an embedded Node-RED 4
 * runtime with stock settings (asynchronous delivery, see node-red.ts): a bench source sends
 * messages into it as fast as the runtime takes them (chunks of 1,000 per event-loop turn) and its
 * outputs go to counting sinks (flow-nodes.ts). One op is 100,000 messages, timed from the first
 * message sent to the moment the node under test has run its input handler for the last one
 * (drain); an op takes longer than the harness's round, so every case times the same message
 * count per round, and the rounds of the cases are interleaved. "vs baseline" is a case's time per
 * message over the aggregator's.
 *
 * - aggregator: aggregationType mean, interval 1 s, submitPerTopic, submitIncompleteInterval.
 *   msg.topic = "<device>/temperature", msg.payload = the value.
 * - thingwire-window: levels "1s", lateness 0 (the aggregator waits for nothing either), persist
 *   off, output 'each' (one message per rollup, as the aggregator's submitPerTopic), the rest at
 *   the dialog's defaults: every rollup carries count, sum, mean, min, max, stddev, first, last
 *   and, with percentiles on (the default), p50..p99 from the sketch. Also with percentiles off.
 *   msg.payload = { device, ts: now, metrics: { temperature } }.
 *
 * Memory: setup measures, on the fresh node, the growth of heapUsed + external between two full
 * GCs around 50,000 messages (50 a series) sent just after a wall-clock second, so that each node
 * then holds one 1 s window of data for every series, and prints it. Setup then checks that the
 * node did the job: every reading accounted for in the closed windows (thingwire-window) or a mean
 * for every series (aggregator), nothing rejected.
 *
 * Node-RED's API is asynchronous and the harness is not, so the runtime lives in a worker thread
 * that this file starts from itself (as cases/store.ts does): run(n) posts the request and blocks
 * on Atomics.wait until the worker has drained all n ops and answered (tens of microseconds of
 * round trip against ops of a hundred milliseconds or more).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { isMainThread, MessageChannel, parentPort, receiveMessageOnPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import type { NodeMessage } from '../../../nodes/lib/red';
import type { BenchCase } from '../harness';
import { rng } from '../fixtures';
import { startNodeRed, type EmbeddedNodeRed, type FlowNode } from '../node-red';
import { ROOT } from '../../support/services';

const SERIES = 1000;
const MSGS_PER_OP = 100_000;
/** Messages of the memory probe: 50 a series, in one 1 s window even on a cold, busy runtime. */
const PROBE_MSGS = 50_000;
const CHUNK = 1000;
const METRIC = 'temperature';
const WORKER_MARK = 'thingwire-window-flow-bench';
const CALL_TIMEOUT_MS = 120_000;
const WINDOW_JS = path.join(ROOT, 'dist', 'nodes', 'window', 'window.js');

/** The nodes under test; each has its own source > node > sinks pipeline in the one flow. */
type Subject = 'agg' | 'tw' | 'tw-nop';
const SUBJECTS: Record<Subject, { name: string; window: boolean; percentiles?: boolean }> = {
  agg: { name: 'node-red-contrib-aggregator', window: false },
  tw: { name: 'thingwire-window', window: true, percentiles: true },
  'tw-nop': { name: 'thingwire-window percentiles off', window: true, percentiles: false },
};
type Command = 'setup' | 'run';

interface Request {
  cmd: Command;
  subject: Subject;
  n: number;
}

interface Reply {
  result?: number;
  /** Lines for the bench's stderr (the worker's own output would only show once the main thread is free). */
  notes?: string[];
  error?: string;
}

// ---- worker side ------------------------------------------------------------------------------

interface WorkerInit {
  mark: typeof WORKER_MARK;
  /** Node-RED's user directory, made and removed by the main thread. */
  dir: string;
  signal: SharedArrayBuffer;
  port: MessagePort;
}

function windowPipeline(s: Subject, percentiles: boolean): FlowNode[] {
  return [
    { id: `src-${s}`, type: 'tw-bench-source', chunk: CHUNK, wires: [[`node-${s}`]] },
    {
      id: `node-${s}`,
      type: 'thingwire-window',
      name: '',
      v: 1,
      levels: '1s',
      step: '',
      timeZone: 'UTC',
      alignOffset: '',
      lateness: '0s',
      watermark: 'key',
      latePolicy: 'drop',
      correctionHorizon: '1h',
      idleTimeout: '',
      evictAfter: '',
      maxKeys: 100000,
      counters: '',
      percentiles,
      booleans: 'count',
      groupTag: '',
      tick: '1s',
      persist: false,
      snapshotInterval: '60s',
      output: 'each',
      catchRejects: false,
      wires: [[`out-${s}`], [`rej-${s}`], [`late-${s}`]],
    },
    { id: `out-${s}`, type: 'tw-bench-sink', wires: [] },
    { id: `rej-${s}`, type: 'tw-bench-sink', wires: [] },
    { id: `late-${s}`, type: 'tw-bench-sink', wires: [] },
  ];
}

function aggregatorPipeline(s: Subject): FlowNode[] {
  return [
    { id: `src-${s}`, type: 'tw-bench-source', chunk: CHUNK, wires: [[`node-${s}`]] },
    {
      id: `node-${s}`,
      type: 'aggregator',
      name: '',
      topic: '',
      intervalCount: 1,
      intervalUnits: 's',
      submitIncompleteInterval: true,
      submitPerTopic: true,
      aggregationType: 'mean',
      wires: [[`out-${s}`]],
    },
    { id: `out-${s}`, type: 'tw-bench-sink', wires: [] },
  ];
}

/** Every pipeline (the aggregator's alone when window.js is not built). */
function benchFlow(withWindow: boolean): FlowNode[] {
  const flow: FlowNode[] = [];
  for (const [s, def] of Object.entries(SUBJECTS) as Array<[Subject, (typeof SUBJECTS)[Subject]]>) {
    if (!def.window) flow.push(...aggregatorPipeline(s));
    else if (withWindow) flow.push(...windowPipeline(s, def.percentiles ?? true));
  }
  return flow;
}

/** The same values for every subject: message i is series i % SERIES with value VALUES[i & 4095]. */
const devices = Array.from({ length: SERIES }, (_, k) => `dev-${String(k).padStart(4, '0')}`);
const topics = devices.map((d) => `${d}/${METRIC}`);
const VALUES = (() => {
  const r = rng(5);
  return Float64Array.from({ length: 4096 }, () => Math.round((15 + r() * 10) * 100) / 100);
})();

const makeReading = (i: number, now: number): NodeMessage => ({ payload: { device: devices[i % SERIES], ts: now, metrics: { [METRIC]: VALUES[i & 4095] } } });
const makeTopicValue = (i: number): NodeMessage => ({ topic: topics[i % SERIES], payload: VALUES[i & 4095] });
const makerOf = (s: Subject): ((i: number, now: number) => NodeMessage) => (SUBJECTS[s].window ? makeReading : makeTopicValue);

function gcFunction(): () => void {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    if (typeof gc === 'function') {
      return () => {
        (gc as () => void)();
        (gc as () => void)();
      };
    }
  } catch {
    // fall through
  }
  throw new Error('window-flow bench: cannot reach gc() in the worker');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Waits until the wall clock is `phase` ms past the next whole second (a new 1 s window for both nodes). */
async function atPhase(phase: number): Promise<void> {
  const target = (Math.floor(Date.now() / 1000) + 1) * 1000 + phase;
  await sleep(target - Date.now());
  while (Date.now() < target) await turn();
}

function startWorker(init: WorkerInit): void {
  const signal = new Int32Array(init.signal);
  const gc = gcFunction();
  let rt: EmbeddedNodeRed | undefined;
  const ready = new Set<Subject>();

  const ensureRuntime = async (subject: Subject): Promise<EmbeddedNodeRed> => {
    const built = fs.existsSync(WINDOW_JS);
    if (SUBJECTS[subject].window && !built) throw new Error(`${WINDOW_JS} is missing: npm run build`);
    rt ??= await startNodeRed({ flow: benchFlow(built), userDir: init.dir, packageNodes: built ? { 'thingwire-window': path.relative(ROOT, WINDOW_JS) } : {} });
    return rt;
  };

  /** Heap growth (heapUsed + external, between full GCs) of one op on a fresh node, started just after a wall-clock second. */
  const memoryProbe = async (subject: Subject): Promise<string> => {
    const r = rt!;
    await atPhase(100);
    gc();
    const m0 = process.memoryUsage();
    const t0 = Date.now();
    await r.bench(`src-${subject}`).pump(PROBE_MSGS, makerOf(subject));
    const t1 = Date.now();
    await turn();
    await turn();
    gc();
    const m1 = process.memoryUsage();
    const grown = m1.heapUsed + m1.external - (m0.heapUsed + m0.external);
    const crossed = Math.floor(t1 / 1000) - Math.floor(t0 / 1000);
    return (
      `${fmtBytes(grown)} held after ${PROBE_MSGS.toLocaleString('en-US')} messages over ${SERIES.toLocaleString('en-US')} series ` +
      `(${Math.round(grown / SERIES).toLocaleString('en-US')} B a series; ${t1 - t0} ms, ` +
      `${crossed === 0 ? 'all in one 1 s window' : `${crossed} window boundary(ies) crossed: part of the data already emitted`})`
    );
  };

  /** Checks that the node did the job: see the file header. */
  const check = async (subject: Subject): Promise<string> => {
    const r = rt!;
    const per = 5;
    const out = r.bench(`out-${subject}`);
    const rollups: Array<{ count: number; sum: number; mean: number; window: { start: number; size: number }; device: string }> = [];
    const means = new Map<string, number>();
    // Mid-second: the aggregator's interval timer (aligned to the second, drifting a little) is far.
    await atPhase(400);
    const second = Math.floor(Date.now() / 1000);
    await r.bench(`src-${subject}`).pump(SERIES * per, makerOf(subject));
    if (Math.floor(Date.now() / 1000) !== second) return 'skipped (the check straddled a second; machine too busy)';
    // Listening from here: what the earlier data produced has been emitted at this second's start.
    out.onMessage = (msg) => {
      const p = msg.payload;
      if (!SUBJECTS[subject].window) means.set(String(msg.topic), p as number);
      else for (const x of Array.isArray(p) ? p : [p]) rollups.push(x as (typeof rollups)[number]);
    };
    let expectedSum = 0;
    for (let i = 0; i < SERIES * per; i++) expectedSum += VALUES[i & 4095];
    if (!SUBJECTS[subject].window) {
      const deadline = Date.now() + 3000;
      while (means.size < SERIES && Date.now() < deadline) await sleep(20);
      out.onMessage = undefined;
      if (means.size !== SERIES) throw new Error(`aggregator emitted means for ${means.size} of ${SERIES} series`);
      let sum = 0;
      for (const [topic, mean] of means) {
        if (!Number.isFinite(mean)) throw new Error(`aggregator mean for ${topic} is ${mean}`);
        sum += mean * per;
      }
      if (Math.abs(sum - expectedSum) > 1e-6 * expectedSum) throw new Error(`aggregator means sum to ${sum / per} x ${per}, expected ${expectedSum}`);
      return `${means.size} series' means verified`;
    }
    // The next second's readings close every series' window (lateness 0).
    await atPhase(50);
    await r.bench(`src-${subject}`).pump(SERIES, makeReading);
    const deadline = Date.now() + 3000;
    const inWindow = (x: (typeof rollups)[number]): boolean => x.window.start === second * 1000;
    while (rollups.filter(inWindow).length < SERIES && Date.now() < deadline) await sleep(20);
    out.onMessage = undefined;
    const mine = rollups.filter(inWindow);
    const count = mine.reduce((s, x) => s + x.count, 0);
    const sum = mine.reduce((s, x) => s + x.sum, 0);
    const rejected = r.bench(`rej-${subject}`).messages + r.bench(`late-${subject}`).messages;
    if (mine.length !== SERIES || count !== SERIES * per || Math.abs(sum - expectedSum) > 1e-6 * expectedSum || rejected !== 0) {
      throw new Error(`thingwire-window: ${mine.length} rollups for ${SERIES} series, count ${count} (expected ${SERIES * per}), sum ${sum} (expected ${expectedSum}), ${rejected} rejected or late`);
    }
    for (const x of mine) {
      if (Math.abs(x.mean - x.sum / x.count) > 1e-9 || x.window.size !== 1000) throw new Error(`thingwire-window: bad rollup ${JSON.stringify(x)}`);
    }
    return `${mine.length} rollups verified (${count} readings)`;
  };

  const handle = async (req: Request): Promise<Reply> => {
    const r = await ensureRuntime(req.subject);
    if (req.cmd === 'setup') {
      if (ready.has(req.subject)) return { result: 0 };
      const name = SUBJECTS[req.subject].name;
      const notes = [`window-flow ${name}: memory ${await memoryProbe(req.subject)}`, `window-flow ${name}: ${await check(req.subject)}`];
      ready.add(req.subject);
      return { result: 0, notes };
    }
    const src = r.bench(`src-${req.subject}`);
    const make = makerOf(req.subject);
    for (let k = 0; k < req.n; k++) await src.pump(MSGS_PER_OP, make);
    return { result: r.bench(`out-${req.subject}`).items + req.n };
  };

  parentPort!.on('message', (req: Request) => {
    handle(req)
      .then(
        (reply) => init.port.postMessage(reply),
        (e: unknown) => init.port.postMessage({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies Reply),
      )
      .finally(() => {
        Atomics.store(signal, 0, 1);
        Atomics.notify(signal, 0);
      });
  });
}

function fmtBytes(b: number): string {
  const sign = b < 0 ? '-' : '';
  const a = Math.abs(b);
  return a >= 1 << 20 ? `${sign}${(a / 2 ** 20).toFixed(1)} MiB` : `${sign}${(a / 1024).toFixed(0)} KiB`;
}

const init = workerData as WorkerInit | undefined;
if (!isMainThread && init?.mark === WORKER_MARK) startWorker(init);

// ---- main side --------------------------------------------------------------------------------

let worker: { w: Worker; signal: Int32Array; port: MessagePort } | undefined;

function ensureWorker(): NonNullable<typeof worker> {
  if (worker) return worker;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-bench-nr-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const signal = new SharedArrayBuffer(4);
  const { port1, port2 } = new MessageChannel();
  const data: WorkerInit = { mark: WORKER_MARK, dir, signal, port: port2 };
  // The worker runs this very file (compiled: dist/test/bench/cases/window-flow.js).
  const w = new Worker(__filename, { workerData: data, transferList: [port2], execArgv: process.execArgv });
  // The runtime's timers would keep the process alive: stop the worker when the bench is done.
  w.unref();
  port1.unref();
  worker = { w, signal: new Int32Array(signal), port: port1 };
  return worker;
}

/** Sends one request to the worker and blocks until it has answered. */
function call(cmd: Command, subject: Subject, n = 0): number {
  const { w, signal, port } = ensureWorker();
  Atomics.store(signal, 0, 0);
  w.postMessage({ cmd, subject, n } satisfies Request);
  if (Atomics.wait(signal, 0, 0, CALL_TIMEOUT_MS) === 'timed-out') throw new Error(`window-flow bench worker: ${cmd} ${subject} took over ${CALL_TIMEOUT_MS / 1000} s`);
  const msg = receiveMessageOnPort(port)?.message as Reply | undefined;
  if (!msg) throw new Error(`window-flow bench worker: no answer to ${cmd} ${subject}`);
  if (msg.error !== undefined) throw new Error(`window-flow bench worker: ${cmd} ${subject} failed: ${msg.error}`);
  for (const line of msg.notes ?? []) process.stderr.write(`  ${line}\n`);
  return msg.result ?? 0;
}

const JOB = `1s mean x ${SERIES.toLocaleString('en-US')} series, ${(MSGS_PER_OP / 1000).toFixed(0)}k msgs/op (items = msgs)`;
const caseName = (s: Subject): string => `${SUBJECTS[s].name}, ${JOB}`;

function flowCase(s: Subject): BenchCase {
  return {
    group: 'window-flow',
    name: caseName(s),
    itemsPerOp: MSGS_PER_OP,
    baseline: s === 'agg' ? undefined : `window-flow/${caseName('agg')}`,
    setup: () => void call('setup', s),
    run: (n) => call('run', s, n),
  };
}

export const windowFlowCases: BenchCase[] = [flowCase('agg'), flowCase('tw'), flowCase('tw-nop')];
