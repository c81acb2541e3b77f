/**
 * The Thingwire nodes in front of the store settle a message's MQTT delivery token (msg.mqttAck,
 * ../../nodes/lib/ack.ts) when they refuse the whole message, and pass it on with the accepted part
 * otherwise (the refused part leaves without it): normalise, validate and device (authenticate).
 * Real nodes in a real Node-RED runtime; the tokens come from an AckWindow made here.
 */
import deviceNode from '../../nodes/device/device';
import normaliseNode from '../../nodes/normalise/normalise';
import registryNode from '../../nodes/registry/registry';
import validateNode from '../../nodes/validate/validate';
import windowNode from '../../nodes/window/window';
import anomalyNode from '../../nodes/anomaly/anomaly';
import { ACK_PROPERTY, AckWindow } from '../../nodes/lib/ack';
import { TAB, getNode, helper, record, setDataDir, settle, until, useHelper, useTempDirs, withCatalogue, type FlowNodeConfig, type NodeMsg } from './harness';

useHelper();
const tempDir = useTempDirs('ack-settle');

let win: AckWindow;
let acks: number[];
beforeEach(() => {
  acks = [];
  win = new AckWindow('test', { maxInFlight: 100, timeoutMs: 0, sendAck: (id) => acks.push(id) });
  win.connect();
});
afterEach(() => win.close());

function twoOutputs(node: FlowNodeConfig): FlowNodeConfig[] {
  return [TAB, { ...node, id: 'n1', z: 'tab1', wires: [['ok'], ['bad']] }, { id: 'ok', type: 'helper', z: 'tab1' }, { id: 'bad', type: 'helper', z: 'tab1' }];
}

async function run(msgs: NodeMsg[], total: number): Promise<{ ok: NodeMsg[]; bad: NodeMsg[] }> {
  const ok = record('ok');
  const bad = record('bad');
  for (const m of msgs) getNode('n1').receive(m);
  await until(`${total} outputs`, () => ok.length + bad.length >= total);
  await settle();
  return { ok, bad };
}

const now = Date.now();

test('normalise: a wholly refused message is settled as refused; a partly refused batch keeps its token on the accepted part only', async () => {
  await helper.load([withCatalogue(normaliseNode)], twoOutputs({ id: 'n1', type: 'thingwire-normalise', v: 1 }));
  const t = [win.track(1, 't'), win.track(2, 't')];
  const whole = { topic: 'devices/a/telemetry', payload: '{oops', [ACK_PROPERTY]: t[0] };
  const part = { topic: 'devices/a/telemetry', payload: JSON.stringify([{ ts: now, v: 1 }, { ts: 'bad', v: 2 }]), [ACK_PROPERTY]: t[1] };
  const { ok, bad } = await run([whole, part], 3);
  expect(acks).toEqual([1]); // message 2 still waits for its accepted reading to be stored
  expect(win.stats()).toMatchObject({ inFlight: 1, rejected: 1 });
  expect(ok).toHaveLength(1);
  expect(ok[0][ACK_PROPERTY]).toBe(t[1]);
  expect(bad.map((m) => [(m.error as { code: string }).code, m[ACK_PROPERTY]])).toEqual([
    ['malformed_json', t[0]],
    ['invalid_ts', undefined],
  ]);
});

test('validate: the same for schema failures', async () => {
  setDataDir(tempDir());
  const schema = JSON.stringify({ type: 'object', required: ['v'], properties: { v: { type: 'number', maximum: 10 } } });
  await helper.load([withCatalogue(validateNode)], twoOutputs({ id: 'n1', type: 'thingwire-validate', v: 1, property: 'payload', schemaSource: 'config', schema, arrays: 'items' }));
  const t = [win.track(1, 't'), win.track(2, 't'), win.track(3, 't')];
  const whole = { payload: { v: 99 }, [ACK_PROPERTY]: t[0] };
  const part = { payload: [{ v: 1 }, { v: 99 }], [ACK_PROPERTY]: t[1] };
  const good = { payload: { v: 2 }, [ACK_PROPERTY]: t[2] };
  const { ok, bad } = await run([whole, part, good], 4);
  expect(acks).toEqual([1]);
  expect(ok.map((m) => m[ACK_PROPERTY]).sort()).toEqual([t[1], t[2]]);
  expect(bad.map((m) => m[ACK_PROPERTY]).sort()).toEqual([t[0], undefined]);
});

test('device (authenticate): an unknown device is refused and settled; a registered one passes with its token', async () => {
  setDataDir(tempDir());
  await helper.load(
    [withCatalogue(registryNode), withCatalogue(deviceNode)],
    [
      ...twoOutputs({ id: 'n1', type: 'thingwire-device', v: 1, registry: 'reg', mode: 'auth', requireToken: false }),
      { id: 'reg', type: 'thingwire-registry', name: '', v: 1, file: '', defaultLivenessTimeout: '1s' },
    ],
  );
  const reg = helper.getNode('reg') as unknown as { registry: { createDevice(d: { id: string }): unknown } };
  reg.registry.createDevice({ id: 'known' });
  const t = [win.track(1, 't'), win.track(2, 't')];
  const unknown = { topic: 'devices/ghost/telemetry', payload: { device: 'ghost', ts: now, metrics: { v: 1 } }, [ACK_PROPERTY]: t[0] };
  const known = { topic: 'devices/known/telemetry', payload: { device: 'known', ts: now, metrics: { v: 1 } }, [ACK_PROPERTY]: t[1] };
  const { ok, bad } = await run([unknown, known], 2);
  expect(acks).toEqual([1]);
  expect(bad.map((m) => (m.error as { code: string }).code)).toEqual(['unknown_device']);
  expect(ok.map((m) => m[ACK_PROPERTY])).toEqual([t[1]]);
});

test('window and anomaly outputs (rollups, scores) do not carry the reading\'s token: storing them must not confirm it', async () => {
  setDataDir(tempDir());
  await helper.load(
    [withCatalogue(windowNode), withCatalogue(anomalyNode)],
    [
      TAB,
      { id: 'win', type: 'thingwire-window', z: 'tab1', name: '', v: 1, levels: '1m', lateness: '0', wires: [['rollups'], [], []] },
      { id: 'an', type: 'thingwire-anomaly', z: 'tab1', name: '', v: 1, threshold: 0.57, warmup: 10, wires: [['scores'], [], []] },
      { id: 'rollups', type: 'helper', z: 'tab1' },
      { id: 'scores', type: 'helper', z: 'tab1' },
    ],
  );
  const rollups = record('rollups');
  const scores = record('scores');
  const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
  // Two readings a minute apart: the second closes the first minute's window.
  for (const [i, ts] of [t0 + 1000, t0 + 61_000].entries()) {
    const tok = win.track(i + 1, 't');
    getNode('win').receive({ payload: { device: 'd1', ts, metrics: { v: i } }, [ACK_PROPERTY]: tok });
    getNode('an').receive({ payload: { device: 'd1', ts, metrics: { v: i } }, [ACK_PROPERTY]: tok });
  }
  await until('a rollup and two scores', () => rollups.length >= 1 && scores.length >= 2);
  for (const m of [...rollups, ...scores]) expect(m[ACK_PROPERTY]).toBeUndefined();
});
