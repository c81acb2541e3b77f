/**
 * The nodes that declare themselves readers of their input (declareInputUse in nodes/lib/clone.ts: the fan-out
 * then gives them one shared message instead of a deep copy each) keep the promise: configured as in the
 * starter flow, fed batches whose every object below the top level is frozen, they report no error (a write to
 * a frozen object throws in their strict-mode code, now or from a timer later), still do their work, and the
 * 'reads' ones send nothing that holds an object of a message they got, except that message itself. And the
 * starter's Function nodes whose code starts with FUNCTION_READS_ONLY (they share messages too) leave what they get
 * as it was.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import alertNode from '../../nodes/alert/alert';
import batchNode from '../../nodes/batch/batch';
import anomalyNode from '../../nodes/anomaly/anomaly';
import deviceNode from '../../nodes/device/device';
import registryNode from '../../nodes/registry/registry';
import storeNode from '../../nodes/store/store';
import windowNode from '../../nodes/window/window';
import writeNode from '../../nodes/write/write';
import { FUNCTION_READS_ONLY, inputUseOf } from '../../nodes/lib/clone';
import { TAB, errorCalls, getNode, helper, positioned, record, setDataDir, sleep, until, useHelper, useTempDirs, withCatalogue, type FlowNodeConfig, type NodeMsg } from './harness';

useHelper();
const tempDir = useTempDirs('readers');

const NODES = [batchNode, storeNode, writeNode, windowNode, anomalyNode, alertNode, registryNode, deviceNode].map((n) => withCatalogue(n as (RED: never) => void));
const STARTER = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'flows', 'starter.json'), 'utf8')) as FlowNodeConfig[];
/** The readers of the starter's batch fan-out (and the batch node itself), with the number of outputs each has. */
const READERS: Record<string, number> = { 'tw.starter.batch': 1, 'tw.starter.write': 2, 'tw.win.window': 3, 'tw.an.anomaly': 3, 'tw.dev.liveness': 2, 'tw.al.alert': 3 };

function starterNode(id: string): FlowNodeConfig {
  const n = STARTER.find((x) => x.id === id);
  if (!n) throw new Error(`${id} is not in the starter flow`);
  return n;
}

/** The starter's readers with their own configuration, each output wired to a helper `<id>#<output>`. */
function flow(): FlowNodeConfig[] {
  const nodes: FlowNodeConfig[] = [TAB, { ...starterNode('tw.store'), backend: 'embedded', flushInterval: 50 }, starterNode('tw.http.registry')];
  for (const [id, outputs] of Object.entries(READERS)) {
    const wires = Array.from({ length: outputs }, (_, o) => [`${id}#${o}`]);
    nodes.push({ ...starterNode(id), z: 'tab1', x: undefined, y: undefined, wires });
    for (let o = 0; o < outputs; o++) nodes.push({ id: `${id}#${o}`, type: 'helper', z: 'tab1' });
  }
  nodes.push({ id: 'catch', type: 'catch', z: 'tab1', scope: Object.keys(READERS), uncaught: false, wires: [['caught']] });
  nodes.push({ id: 'caught', type: 'helper', z: 'tab1' });
  return positioned(nodes);
}

/** Freezes everything below the top level (a reader may set and delete its message's own properties). */
function freezeBelowTop(msg: Record<string, unknown>): NodeMsg {
  const deep = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || Object.isFrozen(v)) return;
    Object.freeze(v);
    for (const k of Object.keys(v)) deep((v as Record<string, unknown>)[k]);
  };
  for (const k of Object.keys(msg)) deep(msg[k]);
  return msg as NodeMsg;
}

/** Every object reachable from v (v included when it is one). */
function objectsOf(v: unknown, into = new Set<object>()): Set<object> {
  if (v === null || typeof v !== 'object' || into.has(v)) return into;
  into.add(v);
  for (const k of Object.keys(v)) objectsOf((v as Record<string, unknown>)[k], into);
  return into;
}

const DEVICES = ['r1', 'r2', 'r3'];
const T0 = Date.now() - 10 * 60_000;

/** A batch as the starter's batch node sends it: readings of several devices, one hot, one with a bad value, one late. */
function batch(i: number): NodeMsg {
  const payload: Array<Record<string, unknown>> = DEVICES.map((device, d) => ({
    device,
    ts: T0 + i * 5_000 + d,
    metrics: { temperature: i >= 20 && i <= 25 && d === 0 ? 75 : 20 + ((i * 7 + d) % 5), humidity: 40 + (i % 3), vibration: 2 + (d % 2) },
    tags: { site: 'mad', line: `l${d}` },
  }));
  if (i % 10 === 5) payload.push({ device: 'r1', ts: T0 + i * 5_000 + 7, metrics: { temperature: 'hot' }, tags: { site: 'mad' } });
  if (i % 10 === 6) payload.push({ device: 'r3', ts: T0 + i * 5_000 + 8, metrics: { humidity: Number.NaN }, tags: { site: 'mad' } });
  if (i === 30) payload.push({ device: 'r2', ts: T0, metrics: { temperature: 19 }, tags: { site: 'mad', line: 'l1' } });
  return freezeBelowTop({ payload, topic: 'readings', mqttAck: [`w#${i}`], devices: { r1: { id: 'r1', name: 'R1', tags: { type: 'probe' } } } });
}

test('the starter\'s readers change nothing below the top of a message, and the "reads" ones send none of its objects on', async () => {
  setDataDir(tempDir());
  await helper.load(NODES as never, flow());
  for (const id of Object.keys(READERS)) expect(inputUseOf(getNode(id))).toBeDefined();
  const registry = (getNode('tw.http.registry') as unknown as { registry: { createDevice(d: object): unknown } }).registry;
  for (const id of DEVICES) registry.createDevice({ id, name: id.toUpperCase(), type: 'probe', tags: { type: 'probe' } });
  const outs: Record<string, NodeMsg[]> = {};
  for (const [id, outputs] of Object.entries(READERS)) for (let o = 0; o < outputs; o++) outs[`${id}#${o}`] = record(`${id}#${o}`);
  const caught = record('caught');

  // Each node gets its own top level over the shared contents, as the fan-out's hook gives it (a reader may set
  // msg.payload on its own message: the anomaly node replaces it with its scores).
  const sent: NodeMsg[] = [];
  const given = new Map<string, NodeMsg[]>(Object.keys(READERS).map((id) => [id, []]));
  for (let i = 0; i < 40; i++) {
    const m = batch(i);
    sent.push(m);
    for (const id of Object.keys(READERS)) {
      const shell = { ...m };
      given.get(id)!.push(shell);
      getNode(id).receive(shell);
    }
  }
  const inputs = new Set<object>();
  for (const m of sent) for (const k of Object.keys(m)) objectsOf(m[k], inputs);
  const readings = sent.reduce((n, m) => n + (m.payload as unknown[]).length, 0);
  const batched = (): number => outs['tw.starter.batch#0'].reduce((n, m) => n + (m.payload as unknown[]).length, 0);
  // The window closes what it holds; the alert node's hold timers and the liveness monitor run a while.
  getNode('tw.win.window').receive({ action: 'flush' });
  await until('every batch stored and passed on', () => outs['tw.starter.write#0'].length === 40, 10_000);
  await until('every reading batched', () => batched() === readings, 10_000);
  await sleep(300);

  for (const id of Object.keys(READERS)) expect(errorCalls(getNode(id)).map((c) => String(c.args[0]))).toEqual([]);
  expect(caught).toEqual([]);
  // Each did its work: rollups, scores, a reject for each bad value, liveness events, alert events.
  expect(outs['tw.win.window#0'].length).toBeGreaterThan(0);
  expect(outs['tw.an.anomaly#0'].length).toBe(40);
  expect(outs['tw.win.window#1'].length + outs['tw.an.anomaly#1'].length).toBeGreaterThan(0);
  expect(outs['tw.starter.write#1'].length).toBe(4);
  expect(outs['tw.dev.liveness#1'].length).toBeGreaterThan(0);
  expect(outs['tw.al.alert#0'].length + outs['tw.al.alert#1'].length).toBeGreaterThan(0);

  for (const id of Object.keys(READERS).filter((x) => inputUseOf(getNode(x)) === 'reads')) {
    const own = given.get(id)!;
    for (let o = 0; o < READERS[id]; o++) {
      for (const m of outs[`${id}#${o}`]) {
        if (own.includes(m)) continue;
        const held = [...objectsOf(m)].filter((x) => inputs.has(x));
        expect({ from: `${id}#${o}`, held }).toEqual({ from: `${id}#${o}`, held: [] });
      }
    }
  }
});

// ---- the starter's Function nodes that say they only read ----------------------------------------

// Node-RED's own Function node.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function') as (RED: never) => void;

function score(device: string, metric: string, ts: number): Record<string, unknown> {
  return { device, metric, ts, value: 21, expected: 20, lower: 18, upper: 22, score: 0.4, anomalous: false, learning: false, tags: { site: 'mad' } };
}

/** What each opted-in starter function gets in the starter flow. */
const FUNCTION_INPUTS: Record<string, () => Array<Record<string, unknown>>> = {
  'tw.starter.tochart': () => [batch(1), batch(2)],
  'tw.dp.live': () => [batch(3), { payload: (batch(4).payload as unknown[])[0] }],
  'tw.do.readings': () => [batch(5)],
  'tw.an.band': () => [{ payload: DEVICES.map((d, i) => score(d, 'temperature', T0 + i)) }],
  'tw.an.score': () => [{ payload: DEVICES.map((d, i) => score(d, 'humidity', T0 + i)) }],
  'tw.dp.scores': () => [{ payload: DEVICES.map((d, i) => score(d, 'temperature', T0 + i)) }],
  'tw.do.alerts': () => [
    {
      topic: 'active',
      payload: [{ id: 'a1', severity: 'major', device: 'r1', rule: 'hot', metric: 'temperature', state: 'firing', since: T0, value: 75, acknowledged: false, tags: { site: 'mad' } }],
    },
  ],
};

test('the starter\'s Function nodes that say they only read change nothing in what they get', async () => {
  const opted = STARTER.filter((n) => n.type === 'function' && String(n.func).startsWith(FUNCTION_READS_ONLY)).map((n) => n.id);
  // Every one of them is exercised below, and they are the ones on the busy fan-outs.
  expect(opted.sort()).toEqual(Object.keys(FUNCTION_INPUTS).sort());
  const nodes: FlowNodeConfig[] = [TAB];
  for (const id of opted) {
    nodes.push({ ...starterNode(id), z: 'tab1', x: undefined, y: undefined, wires: [[`${id}#out`]] });
    nodes.push({ id: `${id}#out`, type: 'helper', z: 'tab1' });
  }
  await helper.load([functionNode] as never, positioned(nodes));
  for (const id of opted) expect(inputUseOf(getNode(id))).toBe('shares');
  // The Device page's functions push only to browsers watching a device: one watches r1; the band chart shows r1.
  const flowContext = (getNode('tw.dp.live') as unknown as { context(): { flow: { set(k: string, v: unknown): void } } }).context().flow;
  flowContext.set('tw_dp_state', { latest: new Map(), watchers: new Map([['sock1', { device: 'r1', at: Date.now() }]]) });
  flowContext.set('bandDevice', 'r1');
  const outs = Object.fromEntries(opted.map((id) => [id, record(`${id}#out`)]));
  const checks: Array<{ id: string; msg: Record<string, unknown>; before: unknown }> = [];
  for (const id of opted) {
    for (const msg of FUNCTION_INPUTS[id]()) {
      checks.push({ id, msg, before: structuredClone(msg) });
      getNode(id).receive(msg);
    }
  }
  await sleep(200);
  for (const id of opted) expect({ id, errors: errorCalls(getNode(id)).map((c) => String(c.args[0])) }).toEqual({ id, errors: [] });
  for (const c of checks) {
    // The top level may change (Node-RED sets _msgid); nothing below it.
    const { _msgid: _a, ...after } = c.msg;
    const { _msgid: _b, ...before } = c.before as Record<string, unknown>;
    expect({ id: c.id, msg: after }).toEqual({ id: c.id, msg: before });
  }
  // They did their work: chart points, the band, scores, the watched device's live reading and score.
  for (const id of ['tw.starter.tochart', 'tw.an.band', 'tw.an.score', 'tw.dp.live', 'tw.dp.scores']) expect({ id, n: outs[id].length > 0 }).toEqual({ id, n: true });
});
