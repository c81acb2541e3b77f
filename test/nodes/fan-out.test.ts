/**
 * Node-RED's fan-out with Thingwire's copy hook installed (nodes/lib/clone.ts), in a real Node-RED runtime:
 * every destination but the first still gets a message of its own, so one branch changing its message
 * changes nothing another branch sees; and the hook is what made those copies.
 */
import { getNode, helper, useHelper, type NodeMsg, type RegisterFn } from './harness';
import { FAST_CLONE_HOOK } from '../../nodes/lib/clone';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { hooks } = require('@node-red/util') as { hooks: { has(id: string): boolean; remove(id: string): void } };
// The test helper's RED has no `hooks` (its mock runtime leaves them out); Node-RED's own RED.hooks is the
// @node-red/util hooks object that its Flow routes messages through, so the node gets that one here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const batchModule = require('../../nodes/batch/batch') as (RED: object) => void;
const batchNode = ((RED: object) => batchModule(Object.assign(Object.create(RED) as object, { hooks }))) as unknown as RegisterFn;

useHelper();
afterEach(() => hooks.remove(FAST_CLONE_HOOK));

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
  // Delivery is in wire order: h1 (the original) changed its message before h2 and h3 got theirs.
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
