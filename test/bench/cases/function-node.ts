/**
 * A Node-RED Function node's loop over msg.payload. Node-RED runs the function's code in a VM context of its own, and
 * `for...of` there is not optimised: each item goes through the array iterator's generic `next` and allocates its
 * result, whichever context made the array (the third case: an array made inside the context is as slow). The
 * starter's functions that run per reading or score loop by index (flows/starter.json, 2026-12-05 from 14:56). The
 * cases run in one VM context over 300 objects (a batch of 100 readings' three scores).
 *
 * And Node-RED runs a Function node's On Message code as it does in 10-function.js: a vm.Script of an async function
 * expression, run for every message, so the function is a new one every message and V8 never optimises it. The last
 * two cases run one loop over a message of 100 readings that way and as a function made once (in On Start, kept in the
 * node's context): the starter's per-reading functions moved their loops to On Start (2026-12-05 from 17:31).
 */
import * as vm from 'node:vm';
import type { BenchCase } from '../harness';

type Loop = (items: ReadonlyArray<{ score: number }>) => number;

interface Fixture {
  /** Made in the main context, as msg.payload is. */
  items: Array<{ score: number }>;
  /** The same, made inside the VM context. */
  inner: Array<{ score: number }>;
  loops: { forOf: Loop; index: Loop };
}

let fx: Fixture | undefined;

function fixture(): Fixture {
  if (fx) return fx;
  const ctx = vm.createContext({});
  fx = {
    items: Array.from({ length: 300 }, (_, i) => ({ score: (i % 100) / 100 })),
    inner: vm.runInContext('Array.from({ length: 300 }, (_, i) => ({ score: (i % 100) / 100 }))', ctx) as Array<{ score: number }>,
    loops: {
      forOf: vm.runInContext('(function (a) { let s = 0; for (const x of a) if (x.score > 0.5) s++; return s; })', ctx) as Loop,
      index: vm.runInContext('(function (a) { let s = 0; for (let i = 0; i < a.length; i++) if (a[i].score > 0.5) s++; return s; })', ctx) as Loop,
    },
  };
  return fx;
}

function loopCase(how: 'forOf' | 'index', array: 'items' | 'inner', name: string, baseline?: string): BenchCase {
  return {
    group: 'function-node',
    name,
    itemsPerOp: 300,
    ...(baseline === undefined ? {} : { baseline: `function-node/${baseline}` }),
    setup() {
      const f = fixture();
      if (f.loops.forOf(f[array]) !== f.loops.index(f[array])) throw new Error('function-node bench: the two loops disagree');
    },
    run(n) {
      const f = fixture();
      const loop = f.loops[how];
      const a = f[array];
      let s = 0;
      for (let k = 0; k < n; k++) s += loop(a);
      return s;
    },
  };
}

const FOR_OF = 'for...of over a main-context array of 300, in a VM context';
/** A message of 100 readings of one device, as the load generator's batches reach the starter's functions. */
function readingsMessage(): { payload: Array<{ device: string; ts: number; metrics: Record<string, number> }> } {
  return {
    payload: Array.from({ length: 100 }, (_, j) => ({ device: 'load-00001', ts: 1.7e12 + j, metrics: { seq: j, temperature: 15 + j / 10, humidity: 30 + j / 7, vibration: 0.5 + j / 100 } })),
  };
}

/** The loop of the Device page's live function (its latest values by device), without the watchers. */
const LATEST_LOOP = `
  const readings = msg.payload;
  // Once a message: a global of a VM context is read through the context's interceptors (as flow.get is a call).
  const map = latest;
  let n = 0;
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i];
    let e = map.get(r.device);
    if (e === undefined) map.set(r.device, (e = { ts: r.ts, metrics: {} }));
    else if (e.ts > r.ts) continue;
    e.ts = r.ts;
    const m = r.metrics;
    for (const k in m) e.metrics[k] = m[k];
    n++;
  }`;

interface MessageRunner {
  run(msg: unknown): number;
}

function perMessageScript(): MessageRunner {
  const ctx = vm.createContext({ latest: new Map(), msg: undefined, results: 0 });
  // As 10-function.js wraps On Message (less the node object it builds first), run once per message.
  const script = new vm.Script(`var results = null; results = (function (msg) { ${LATEST_LOOP}\n  return n; })(msg);`);
  return {
    run(msg) {
      ctx.msg = msg;
      script.runInContext(ctx);
      return ctx.results as number;
    },
  };
}

function madeOnce(): MessageRunner {
  const ctx = vm.createContext({ latest: new Map() });
  const fn = vm.runInContext(`(function (msg) { ${LATEST_LOOP}\n  return n; })`, ctx) as (msg: unknown) => number;
  return { run: (msg) => fn(msg) };
}

function messageCase(make: () => MessageRunner, name: string, baseline?: string): BenchCase {
  let runner: MessageRunner | undefined;
  const msg = readingsMessage();
  return {
    group: 'function-node',
    name,
    itemsPerOp: 100,
    ...(baseline === undefined ? {} : { baseline: `function-node/${baseline}` }),
    setup() {
      runner = make();
      // Each message's readings are newer than the last's, so every reading is taken (none skipped as late).
      if (runner.run(msg) !== 100) throw new Error('function-node bench: the loop did not take every reading');
    },
    run(n) {
      let s = 0;
      for (let k = 0; k < n; k++) {
        for (const r of msg.payload) r.ts += 100;
        s += runner!.run(msg);
      }
      return s;
    },
  };
}

const PER_MESSAGE = 'a 100-reading message, the loop run as Node-RED runs On Message (a new function a message)';
export const functionNodeCases: BenchCase[] = [
  loopCase('forOf', 'items', FOR_OF),
  loopCase('index', 'items', 'index loop over the same array, in the same context', FOR_OF),
  loopCase('forOf', 'inner', 'for...of over an array of 300 made in the VM context itself', FOR_OF),
  messageCase(perMessageScript, PER_MESSAGE),
  messageCase(madeOnce, 'the same loop as a function made once (On Start), in the same kind of context', PER_MESSAGE),
];
