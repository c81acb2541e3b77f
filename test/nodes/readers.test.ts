/**
 * The nodes that declare themselves readers of their input (declareInputUse in nodes/lib/clone.ts: the fan-out
 * then gives them one shared message instead of a deep copy each) keep the promise: configured as in the
 * starter flow, fed batches whose every object below the top level is frozen, they report no error (a write to
 * a frozen object throws in their strict-mode code, now or from a timer later), still do their work, and the
 * 'reads' ones send nothing that holds an object of a message they got, except that message itself.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import alertNode from '../../nodes/alert/alert';
import anomalyNode from '../../nodes/anomaly/anomaly';
import deviceNode from '../../nodes/device/device';
import registryNode from '../../nodes/registry/registry';
import storeNode from '../../nodes/store/store';
import windowNode from '../../nodes/window/window';
import writeNode from '../../nodes/write/write';
import { inputUseOf } from '../../nodes/lib/clone';
import { TAB, errorCalls, getNode, helper, positioned, record, setDataDir, sleep, until, useHelper, useTempDirs, withCatalogue, type FlowNodeConfig, type NodeMsg } from './harness';

useHelper();
const tempDir = useTempDirs('readers');

const NODES = [storeNode, writeNode, windowNode, anomalyNode, alertNode, registryNode, deviceNode].map((n) => withCatalogue(n as (RED: never) => void));
const STARTER = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'flows', 'starter.json'), 'utf8')) as FlowNodeConfig[];
/** The readers of the starter's batch fan-out, with the number of outputs each has. */
const READERS: Record<string, number> = { 'tw.starter.write': 2, 'tw.win.window': 3, 'tw.an.anomaly': 3, 'tw.dev.liveness': 2, 'tw.al.alert': 3 };

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

  const sent: NodeMsg[] = [];
  for (let i = 0; i < 40; i++) {
    const m = batch(i);
    sent.push(m);
    for (const id of Object.keys(READERS)) getNode(id).receive(m);
  }
  // The window closes what it holds; the alert node's hold timers and the liveness monitor run a while.
  getNode('tw.win.window').receive({ action: 'flush' });
  await until('every batch stored and passed on', () => outs['tw.starter.write#0'].length === 40, 10_000);
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

  const inputs = new Set<object>();
  for (const m of sent) objectsOf(m, inputs);
  for (const id of Object.keys(READERS).filter((x) => inputUseOf(getNode(x)) === 'reads')) {
    for (let o = 0; o < READERS[id]; o++) {
      for (const m of outs[`${id}#${o}`]) {
        if (sent.includes(m)) continue;
        const held = [...objectsOf(m)].filter((x) => inputs.has(x));
        expect({ from: `${id}#${o}`, held }).toEqual({ from: `${id}#${o}`, held: [] });
      }
    }
  }
});
