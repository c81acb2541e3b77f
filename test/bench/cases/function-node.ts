/**
 * A Node-RED Function node's loop over msg.payload. Node-RED runs the function's code in a VM context of its own, and
 * `for...of` there is not optimised: each item goes through the array iterator's generic `next` and allocates its
 * result, whichever context made the array (the third case: an array made inside the context is as slow). The
 * starter's functions that run per reading or score loop by index (flows/starter.json, 2026-12-05 from 14:56). The
 * cases run in one VM context over 300 objects (a batch of 100 readings' three scores).
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
export const functionNodeCases: BenchCase[] = [
  loopCase('forOf', 'items', FOR_OF),
  loopCase('index', 'items', 'index loop over the same array, in the same context', FOR_OF),
  loopCase('forOf', 'inner', 'for...of over an array of 300 made in the VM context itself', FOR_OF),
];
