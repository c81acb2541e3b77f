/**
 * Node-RED's fan-out with Thingwire's hooks installed (nodes/lib/clone.ts), in a real Node-RED runtime:
 * every destination but the first still gets a message of its own, so one branch changing its message
 * changes nothing another branch sees; and the hook is what made those copies. Nodes that declare themselves
 * readers, and the link nodes, share one payload instead, while a node that may change its message (behind
 * the same link nodes) still gets a copy.
 */
import { getNode, helper, useHelper, type NodeMsg, type RegisterFn } from './harness';
import { FAST_CLONE_HOOK, SHARE_HOOK, declareInputUse } from '../../nodes/lib/clone';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { hooks } = require('@node-red/util') as { hooks: { has(id: string): boolean; remove(id: string): void } };
// The test helper's RED has no `hooks` (its mock runtime leaves them out); Node-RED's own RED.hooks is the
// @node-red/util hooks object that its Flow routes messages through, so the node gets that one here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const batchModule = require('../../nodes/batch/batch') as (RED: object) => void;
// Node-RED's own link nodes (the helper loads only Catch, Status and Complete of the core nodes by itself).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const linkNodes = require('@node-red/nodes/core/common/60-link') as RegisterFn;
const batchNode = ((RED: object) => batchModule(Object.assign(Object.create(RED) as object, { hooks }))) as unknown as RegisterFn;

useHelper();
afterEach(() => {
  hooks.remove(FAST_CLONE_HOOK);
  hooks.remove(SHARE_HOOK);
});

function reading(i: number): Record<string, unknown> {
  return { device: `d${i}`, ts: 1_700_000_000_000 + i, metrics: { t: i }, tags: { site: 'a' } };
}

test('a batch fanned out to three nodes: each has its own copy, the hook made them', async () => {
  await helper.load(
    [batchNode],
    [
      { id: 'b', type: 'thingwire-batch', maxItems: 3, maxWaitMs: 1000, wires: [['h1', 'h2', 'h3']] },
      { id: 'h1', type: 'helper' },
      { id: 'h2', type: 'helper' },
      { id: 'h3', type: 'helper' },
    ],
  );
  expect(hooks.has(FAST_CLONE_HOOK)).toBe(true);
  const got: Record<string, NodeMsg> = {};
  const all = new Promise<void>((resolve) => {
    for (const id of ['h1', 'h2', 'h3']) {
      getNode(id).on('input', (msg: NodeMsg) => {
        got[id] = msg;
        // Each branch scribbles on what it got, as a careless Function node would.
        (msg.payload as Array<{ metrics: Record<string, number> }>)[0].metrics.t = id === 'h1' ? 100 : 200;
        if (Object.keys(got).length === 3) resolve();
      });
    }
  });
  const b = getNode('b');
  for (let i = 0; i < 3; i++) b.receive({ payload: reading(i), mqttAck: `tok${i}` });
  await all;
  expect(new Set(Object.values(got)).size).toBe(3);
  // Delivery is in wire order: h1 changed its message before h2 and h3 got theirs (h1 got the batch itself: its
  // messages came to the batch node alone, so it is no more shared than they were).
  for (const id of ['h2', 'h3']) {
    const p = got[id].payload as Array<{ device: string; metrics: Record<string, number> }>;
    expect(p.map((r) => r.device)).toEqual(['d0', 'd1', 'd2']);
    expect(got[id].mqttAck).toEqual(['tok0', 'tok1', 'tok2']);
  }
  expect((got.h1.payload as Array<{ metrics: Record<string, number> }>)[0].metrics.t).toBe(100);
  expect((got.h2.payload as Array<{ metrics: Record<string, number> }>)[0].metrics.t).toBe(200);
  expect((got.h3.payload as Array<{ metrics: Record<string, number> }>)[0].metrics.t).toBe(200);
  expect(got.h2.payload).not.toBe(got.h3.payload);
  expect((got.h2.payload as unknown[])[1]).not.toBe((got.h3.payload as unknown[])[1]);
});

test('a batch of messages that came to it alone goes on uncopied; one holding a shared message is copied', async () => {
  await helper.load(
    [batchNode],
    [
      { id: 's', type: 'helper', wires: [['b', 'r']] },
      { id: 'b', type: 'thingwire-batch', maxItems: 2, maxWaitMs: 1000, wires: [['h']] },
      { id: 'r', type: 'helper' },
      { id: 'h', type: 'helper' },
    ],
  );
  declareInputUse(getNode('r'), 'reads');
  const batches: NodeMsg[] = [];
  let arrived: () => void = () => undefined;
  getNode('h').on('input', (msg: NodeMsg) => {
    batches.push(msg);
    arrived();
  });
  const next = (): Promise<void> => new Promise<void>((resolve) => (arrived = resolve));
  const b = getNode('b');
  // Two messages straight to the batch node (each reached it alone): the node after it gets those very readings.
  const r0 = reading(0);
  const r1 = reading(1);
  let got = next();
  b.receive({ payload: r0 });
  b.receive({ payload: r1 });
  await got;
  expect((batches[0].payload as unknown[])[0]).toBe(r0);
  expect((batches[0].payload as unknown[])[1]).toBe(r1);
  // One of them shared with a reader (s sends it to the batch node and to r): the batch is a copy for h.
  const r2 = reading(2);
  const r3 = reading(3);
  got = next();
  (getNode('s') as unknown as { send(m: NodeMsg): void }).send({ payload: r2 });
  await new Promise((resolve) => setImmediate(resolve));
  b.receive({ payload: r3 });
  await got;
  const p = batches[1].payload as unknown[];
  expect(p).toEqual([r2, r3]);
  expect(p[0]).not.toBe(r2);
  expect(p[1]).not.toBe(r3);
});

test('settings thingwireFastClone: false leaves Node-RED\'s own copy', async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('node-red-node-test-helper').settings({ thingwireFastClone: false });
  try {
    await helper.load([batchNode], [{ id: 'b', type: 'thingwire-batch', maxItems: 1, maxWaitMs: 10, wires: [[]] }]);
    expect(hooks.has(FAST_CLONE_HOOK)).toBe(false);
  } finally {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('node-red-node-test-helper').settings({});
  }
});

test('readers behind link nodes share one payload; a node that changes its message gets a copy', async () => {
  await helper.load(
    [batchNode, linkNodes],
    [
      { id: 'b', type: 'thingwire-batch', maxItems: 3, maxWaitMs: 1000, wires: [['h1', 'lo']] },
      { id: 'h1', type: 'helper' },
      { id: 'lo', type: 'link out', mode: 'link', links: ['li1', 'li2', 'li3', 'li4'], wires: [] },
      { id: 'li1', type: 'link in', wires: [['ha']] },
      { id: 'li2', type: 'link in', wires: [['hb']] },
      { id: 'li3', type: 'link in', wires: [['hc']] },
      { id: 'li4', type: 'link in', wires: [['hd']] },
      { id: 'ha', type: 'helper' },
      { id: 'hb', type: 'helper' },
      { id: 'hc', type: 'helper' },
      { id: 'hd', type: 'helper' },
    ],
  );
  expect(hooks.has(SHARE_HOOK)).toBe(true);
  // ha and hd stand for readers: nodes that declare it (as Thingwire's write and liveness nodes do 'reads', and its
  // window, anomaly, alert and batch nodes 'shares'); hb and hc for anything else (a Function node).
  declareInputUse(getNode('ha'), 'reads');
  declareInputUse(getNode('hd'), 'shares');
  const ids = ['h1', 'ha', 'hb', 'hc', 'hd'];
  const got: Record<string, NodeMsg> = {};
  const all = new Promise<void>((resolve) => {
    for (const id of ids) {
      getNode(id).on('input', (msg: NodeMsg) => {
        got[id] = msg;
        if (id === 'h1' || id === 'hb') (msg.payload as Array<{ metrics: Record<string, number> }>)[0].metrics.t = id === 'h1' ? 100 : 200;
        if (Object.keys(got).length === ids.length) resolve();
      });
    }
  });
  const b = getNode('b');
  for (let i = 0; i < 3; i++) b.receive({ payload: reading(i), mqttAck: `tok${i}` });
  await all;
  const t = (id: string): number => (got[id].payload as Array<{ metrics: Record<string, number> }>)[0].metrics.t;
  // h1 and hb changed their own copies; the readers and hc saw none of it.
  expect(ids.map(t)).toEqual([100, 0, 200, 0, 0]);
  // The readers share one payload (no copy was made for them or the link nodes), each with its own message.
  expect(got.ha).not.toBe(got.hd);
  expect(got.ha.payload).toBe(got.hd.payload);
  expect(new Set(ids.map((id) => got[id].payload)).size).toBe(4);
  for (const id of ['ha', 'hb', 'hc', 'hd']) {
    expect((got[id].payload as Array<{ device: string }>).map((r) => r.device)).toEqual(['d0', 'd1', 'd2']);
    expect(got[id].mqttAck).toEqual(['tok0', 'tok1', 'tok2']);
  }
});
