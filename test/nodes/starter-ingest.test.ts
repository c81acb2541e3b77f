/**
 * The starter's ingest chain as the flow file configures it: normalise > a 1 ms batch > registry metadata > validate.
 * Single readings of several devices that arrive together cross the registry and validate nodes as one message (that is
 * what the 1 ms batch is for), and every reading still gets its own verdict: each device's metadata by id, a bad
 * value rejected alone with its index, a malformed payload rejected at normalise, every delivery token kept with the
 * readings that go on.
 */
import * as path from 'node:path';
import batchNode from '../../nodes/batch/batch';
import deviceNode from '../../nodes/device/device';
import normaliseNode from '../../nodes/normalise/normalise';
import registryNode from '../../nodes/registry/registry';
import validateNode from '../../nodes/validate/validate';
import { starterNode as readStarterNode } from '../support/starter';
import { TAB, getNode, helper, positioned, record, setDataDir, settle, until, useHelper, useTempDirs, withCatalogue, type FlowNodeConfig } from './harness';

useHelper();
const tempDir = useTempDirs('starter-ingest');

const NODES = [batchNode, deviceNode, normaliseNode, registryNode, validateNode].map((n) => withCatalogue(n as (RED: never) => void));

/** A node of flows/starter.json as the flow file configures it, on the test's tab. */
function starterNode(id: string): FlowNodeConfig {
  return { ...readStarterNode(id), z: 'tab1', x: undefined, y: undefined };
}

/** The chain with the starter's own wiring between its nodes; what leaves it goes to helpers. */
function flow(): FlowNodeConfig[] {
  const normalise = starterNode('tw.starter.normalise');
  const turn = starterNode('tw.starter.turn');
  const enrich = starterNode('tw.starter.enrich');
  const validate = starterNode('tw.starter.validate');
  // The chain is the starter's: normalise feeds the 1 ms batch, which feeds the registry node, which feeds validate.
  expect(normalise.wires?.[0]).toEqual(['tw.starter.turn']);
  expect(turn).toMatchObject({ type: 'thingwire-batch', maxWaitMs: 1 });
  expect(turn.wires).toEqual([['tw.starter.enrich']]);
  expect(enrich.wires?.[0]).toEqual(['tw.starter.validate']);
  return positioned([
    TAB,
    { ...starterNode('tw.http.registry'), file: path.join(tempDir(), 'registry.json') },
    { ...normalise, wires: [['tw.starter.turn'], ['bad']] },
    turn,
    { ...enrich, wires: [['tw.starter.validate', 'enriched'], ['bad']] },
    { ...validate, wires: [['ok'], ['bad']] },
    { id: 'enriched', type: 'helper', z: 'tab1' },
    { id: 'ok', type: 'helper', z: 'tab1' },
    { id: 'bad', type: 'helper', z: 'tab1' },
  ]);
}

test('readings of several devices that arrive together cross registry and validate as one message, each judged on its own', async () => {
  setDataDir(tempDir());
  await helper.load(NODES as never, flow());
  const registry = (getNode('tw.http.registry') as unknown as { registry: { createDevice(d: object): unknown } }).registry;
  registry.createDevice({ id: 'r1', name: 'R1', type: 'probe', tags: { line: 'l1' } });
  const enriched = record('enriched');
  const ok = record('ok');
  const bad = record('bad');
  const ts = Date.now();
  const mqtt = (device: string, body: string, token: string) => ({ topic: `devices/${device}/telemetry`, payload: Buffer.from(body), mqttAck: token });
  const normalise = getNode('tw.starter.normalise');
  normalise.receive(mqtt('r1', JSON.stringify({ ts, temperature: 21 }), 't1'));
  normalise.receive(mqtt('u2', JSON.stringify({ ts, temperature: 22 }), 't2')); // not registered: passes without metadata
  normalise.receive(mqtt('r1', JSON.stringify({ ts: ts + 1, temperature: 500 }), 't3')); // above the schema's 150
  normalise.receive(mqtt('u3', '{"ts": ', 't4')); // malformed

  await until('the readings validated', () => ok.length > 0 && bad.length >= 2);
  await settle();
  // One message through the registry node and one through validate for the three readings.
  expect(enriched).toHaveLength(1);
  expect(ok).toHaveLength(1);
  expect(ok[0].payload).toEqual([
    { device: 'r1', ts, metrics: { temperature: 21 } },
    { device: 'u2', ts, metrics: { temperature: 22 } },
  ]);
  // Metadata by id: the registered device's, none for the unregistered one.
  expect(ok[0].device).toBeUndefined();
  expect(Object.keys(ok[0].devices as object)).toEqual(['r1']);
  expect((ok[0].devices as Record<string, { name: string }>).r1.name).toBe('R1');
  // The rejected reading's delivery is confirmed with the rest (it is refused for good, not to be sent again).
  expect([...(ok[0].mqttAck as string[])].sort()).toEqual(['t1', 't2', 't3']);

  const byCode = Object.fromEntries(bad.map((m) => [(m.error as { code: string }).code, m]));
  expect(Object.keys(byCode).sort()).toEqual(['malformed_json', 'validation_failed']);
  expect(byCode.validation_failed.payload).toEqual([{ device: 'r1', ts: ts + 1, metrics: { temperature: 500 } }]);
  expect((byCode.validation_failed.rejects as Array<{ index: number }>).map((r) => r.index)).toEqual([2]);
  expect(byCode.validation_failed.mqttAck).toBeUndefined();
  expect(byCode.malformed_json.topic).toBe('devices/u3/telemetry');
});

test('a group of device batches bigger than one message may carry (15,000 readings) crosses the chain whole: nothing refused', async () => {
  // thingwire-mqtt-in hands over what arrives in one turn as one group; after the store settles a large write, that is
  // hundreds of device batches at once. The registry node takes at most 10,000 readings a message and refused the
  // group's one batch whole (payload_too_large): every delivery in it settled as refused, its readings lost.
  setDataDir(tempDir());
  await helper.load(NODES as never, flow());
  const ok = record('ok');
  const bad = record('bad');
  const ts = Date.now() - 60_000;
  const items = Array.from({ length: 150 }, (_, m) => ({
    topic: `devices/g${m % 10}/telemetry`,
    payload: Buffer.from(JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ ts: ts + m * 100 + i, temperature: 20 + (i % 5) })))),
    mqttAck: `g#${m}`,
  }));
  getNode('tw.starter.normalise').receive({ topic: items[0].topic, payload: items, mqttGroup: true, mqttAck: items.map((i) => i.mqttAck) });
  await until('all 15,000 readings validated', () => ok.reduce((n, m) => n + (m.payload as unknown[]).length, 0) >= 15_000 || bad.length > 0, 20_000);
  await settle();
  expect(bad.map((m) => (m.error as { code: string }).code)).toEqual([]);
  const readings = ok.flatMap((m) => m.payload as Array<{ device: string; ts: number }>);
  expect(readings).toHaveLength(15_000);
  expect(new Set(readings.map((r) => `${r.device}/${r.ts}`)).size).toBe(15_000);
  expect(ok.every((m) => (m.payload as unknown[]).length <= 10_000)).toBe(true);
  expect(ok.flatMap((m) => m.mqttAck as string[]).sort()).toEqual(items.map((i) => i.mqttAck).sort());
});

test('a batch node set to merge more than 10,000 readings feeds the registry node: every merged batch goes on whole', async () => {
  // Until 2026-12-05 the device node took at most 10,000 readings a message while thingwire-batch could be set to merge
  // up to 100,000: a batch node at 20,000 before it had every merged batch refused whole (payload_too_large), its
  // deliveries settled as refused and its readings lost. Both now use the contract's MAX_BATCH.
  setDataDir(tempDir());
  const nodes = flow().map((n) => (n.id === 'tw.starter.turn' ? { ...n, maxItems: 20_000, maxWaitMs: 200 } : n));
  await helper.load(NODES as never, nodes);
  const ok = record('ok');
  const bad = record('bad');
  const ts = Date.now() - 60_000;
  const turn = getNode('tw.starter.turn');
  for (let m = 0; m < 150; m++) {
    const payload = Array.from({ length: 100 }, (_, i) => ({ device: `b${m % 10}`, ts: ts + m * 100 + i, metrics: { temperature: 20 + (i % 5) } }));
    turn.receive({ payload, mqttAck: `b#${m}` });
  }
  await until('all 15,000 readings validated', () => ok.reduce((n, m) => n + (m.payload as unknown[]).length, 0) >= 15_000 || bad.length > 0, 20_000);
  await settle();
  expect(bad.map((m) => (m.error as { code: string }).code)).toEqual([]);
  // One merged message of 15,000 readings crossed the registry and validate nodes.
  expect(ok.map((m) => (m.payload as unknown[]).length)).toEqual([15_000]);
  expect(new Set(ok.flatMap((m) => (m.payload as Array<{ device: string; ts: number }>).map((r) => `${r.device}/${r.ts}`))).size).toBe(15_000);
  expect((ok[0].mqttAck as string[]).slice().sort()).toEqual(Array.from({ length: 150 }, (_, m) => `b#${m}`).sort());
});
