/**
 * thingwire-mqtt-in attached IN PROCESS (nodes/lib/in-process.ts) in a real Node-RED runtime
 * (node-red-node-test-helper): the broker side is runtime/in-process.ts on aedes' own emitter (mqemitter; Jest
 * cannot load aedes itself), registered as the runtime registers its embedded broker. What the node does with it:
 * the same outputs and tokens as over TCP, confirmations reaching the broker, the window pausing the session,
 * "lost" delivering again, a redeploy taking the session over, a deleted node ending it, and a node whose URL names
 * another broker not attaching.
 */
import MQEmitter from 'mqemitter';
import mqttInNode from '../../nodes/mqtt/mqtt-in';
import normaliseNode from '../../nodes/normalise/normalise';
import { ACK_PROPERTY, ackWindowStats, settleAck, type AckStats } from '../../nodes/lib/ack';
import { registerInProcessBroker } from '../../nodes/lib/in-process';
import { InProcessSessions } from '../../runtime/in-process';
import { getNode, helper, record, sleep, until, useHelper, withCatalogue, type FlowNodeConfig, type NodeMsg } from './harness';

jest.setTimeout(30_000);
useHelper();

const PORT = 18_883;
let mq: ReturnType<typeof MQEmitter>;
let sessions: InProcessSessions;
let released: string[];

beforeEach(() => {
  mq = MQEmitter({ concurrency: 100 });
  released = [];
  sessions = new InProcessSessions(
    PORT,
    {
      subscribe: (t, fn, done) => mq.on(t, fn as never, done),
      unsubscribe: (t, fn, done) => mq.removeListener(t, fn as never, done),
      retained: async function* () {
        /* none */
      },
    },
    { hold: (p) => String(p.payload), release: (h) => released.push(h as string), changed: () => undefined, log: () => undefined },
    { deliveryMs: 0 },
  );
  registerInProcessBroker(sessions);
});
afterEach(() => {
  registerInProcessBroker(undefined);
  sessions.close();
});

const publish = (topic: string, payload: string, qos: 0 | 1 = 1): Promise<void> =>
  new Promise((res) => mq.emit({ topic, payload: Buffer.from(payload), qos } as never, () => res()));

function inNode(extra: Partial<FlowNodeConfig> = {}): FlowNodeConfig {
  return {
    id: 'in1',
    type: 'thingwire-mqtt-in',
    z: 'tab1',
    v: 1,
    host: '127.0.0.1',
    port: PORT,
    clientId: 'flows',
    topics: 'devices/+/+',
    confirmOnReceipt: 'devices/+/status',
    wires: [['out'], ['status']],
    ...extra,
  };
}

async function load(extra: Partial<FlowNodeConfig> = {}): Promise<void> {
  await helper.load([withCatalogue(mqttInNode)], [
    { id: 'tab1', type: 'tab', label: 'test' },
    inNode(extra),
    { id: 'out', type: 'helper', z: 'tab1' },
    { id: 'status', type: 'helper', z: 'tab1' },
  ]);
}

async function attached(): Promise<void> {
  await until('the input attached in process', () => sessions.has('flows') && (getNode('in1').status.getCalls().at(-1)?.args[0] as { fill?: string })?.fill === 'green');
}

function windowStats(): AckStats {
  const all = ackWindowStats().filter((w) => w.id.startsWith('in1.'));
  if (all.length !== 1) throw new Error(`expected one open window for in1, got ${all.length}`);
  return all[0].stats;
}

const texts = (msgs: NodeMsg[]): string[] => msgs.map((m) => (m.payload as Buffer).toString());

/** Loads the input, waits for it to attach, publishes `payloads` to devices/a/telemetry and waits for them at its output. */
async function received(payloads: string[]): Promise<NodeMsg[]> {
  await load();
  await attached();
  const out = record('out');
  for (const p of payloads) await publish('devices/a/telemetry', p);
  await until(`${payloads.length} messages`, () => out.length === payloads.length);
  return out;
}

test('messages leave as over TCP, "confirm at once" topics on output 2; a confirmation releases the message at the broker', async () => {
  await load();
  await attached();
  expect(getNode('in1').status.getCalls().at(-1)?.args[0]).toEqual({ fill: 'green', shape: 'dot', text: 'in process: in flight 0, confirmed 0' });
  const out = record('out');
  const st = record('status');
  await publish('devices/a/telemetry', '{"t":1}');
  await publish('devices/a/status', 'online');
  await publish('devices/a/telemetry', '{"t":0}', 0);
  await until('2 messages and a status', () => out.length === 2 && st.length === 1);
  expect(out[0]).toMatchObject({ topic: 'devices/a/telemetry', qos: 1, retain: false });
  expect(Buffer.isBuffer(out[0].payload)).toBe(true);
  expect(typeof out[0][ACK_PROPERTY]).toBe('string');
  expect(out[1][ACK_PROPERTY]).toBeUndefined(); // QoS 0
  expect(st[0][ACK_PROPERTY]).toBeUndefined();
  // The status message was confirmed on receipt; the reading waits for its settlement.
  expect(released).toEqual(['online']);
  expect(windowStats()).toMatchObject({ inFlight: 1, received: 1 });
  expect(settleAck(out[0], 'durable')).toBe(1);
  expect(released).toEqual(['online', '{"t":1}']);
  expect(windowStats()).toMatchObject({ inFlight: 0, acknowledged: 1 });
});

test('a full window pauses the session; confirmations let the rest through in order', async () => {
  await load({ maxInFlight: 2 });
  await attached();
  const out = record('out');
  for (let n = 0; n < 5; n++) await publish('devices/c/telemetry', `${n}`);
  await until('2 messages', () => out.length === 2);
  await sleep(100);
  expect(out).toHaveLength(2);
  expect(sessions.has('flows')).toBe(true);
  await until('the status says full', () => (getNode('in1').status.getCalls().at(-1)?.args[0] as { fill?: string }).fill === 'yellow', 3000);
  for (let i = 0; i < 5; i++) {
    await until(`message ${i + 1}`, () => out.length > i);
    settleAck(out[i], 'durable');
  }
  expect(texts(out)).toEqual(['0', '1', '2', '3', '4']);
  expect(released).toEqual(['0', '1', '2', '3', '4']);
});

test('"lost" (the store could not keep it): the unconfirmed messages come again, with new tokens', async () => {
  const out = await received(['a', 'b']);
  settleAck(out[0], 'lost');
  await until('a warning and the message again', () => out.length === 4, 5000);
  expect(texts(out)).toEqual(['a', 'b', 'a', 'b']);
  expect(out[2][ACK_PROPERTY]).not.toBe(out[0][ACK_PROPERTY]);
  // The old delivery's token no longer acknowledges anything.
  settleAck(out[1], 'durable');
  expect(released).toEqual([]);
  settleAck(out[2], 'durable');
  settleAck(out[3], 'durable');
  expect(released).toEqual(['a', 'b']);
});

test('a redeploy: the new node takes the session over, with the unconfirmed and what came meanwhile', async () => {
  let out = await received(['1', '2']);
  settleAck(out[0], 'durable');
  await helper.unload(); // closes the node with removed = false, as a redeploy of a changed node does
  await publish('devices/a/telemetry', '3');
  await load();
  out = record('out');
  await until('the unconfirmed and the queued message', () => out.length === 2);
  expect(texts(out)).toEqual(['2', '3']);
  expect(released).toEqual(['1']);
});

test("a redeploy with a changed client id: the node takes its old session's messages along", async () => {
  let out = await received(['1']);
  await helper.unload();
  await publish('devices/a/telemetry', '2');
  await load({ clientId: 'flows-renamed' });
  out = record('out');
  await until('both messages under the new client id', () => out.length === 2);
  expect(texts(out)).toEqual(['1', '2']);
  expect(sessions.has('flows')).toBe(false);
  expect(sessions.has('flows-renamed')).toBe(true);
});

test('a deleted node ends its session: what it held is released, nothing more is kept for it', async () => {
  await received(['x']);
  await (getNode('in1') as unknown as { close(removed: boolean): Promise<void> }).close(true);
  expect(sessions.has('flows')).toBe(false);
  expect(released).toEqual(['x']);
  await helper.unload();
});

test('a second node with the same client id is refused with a clear error; another broker is reached over TCP', async () => {
  await helper.load([withCatalogue(mqttInNode)], [
    { id: 'tab1', type: 'tab', label: 'test' },
    inNode(),
    { ...inNode(), id: 'in2', wires: [[], []] },
    { id: 'out', type: 'helper', z: 'tab1' },
    { id: 'status', type: 'helper', z: 'tab1' },
  ]);
  await until('one of them refused', () =>
    ['in1', 'in2'].some((id) => getNode(id).error.getCalls().some((c) => /in process: client id "flows" is in use by another node/.test(String(c.args[0])))),
  );
  await helper.unload();
  // A port the registered broker does not listen on: the node connects over TCP (and finds nothing there).
  await load({ port: PORT + 1, clientId: 'elsewhere' });
  await until('connecting over TCP', () => String((getNode('in1').status.getCalls().at(-1)?.args[0] as { text?: string })?.text).startsWith('connecting'));
  await sleep(200);
  expect(sessions.has('elsewhere')).toBe(false);
});

describe('input > normalise (group on unless a test says otherwise)', () => {
  async function loadGrouped(extra: Partial<FlowNodeConfig> = {}): Promise<void> {
    await helper.load([withCatalogue(mqttInNode), withCatalogue(normaliseNode)], [
      { id: 'tab1', type: 'tab', label: 'test' },
      inNode({ group: true, wires: [['norm'], ['status']], ...extra }),
      { id: 'norm', type: 'thingwire-normalise', z: 'tab1', v: 1, wires: [['out'], ['rej']] },
      { id: 'out', type: 'helper', z: 'tab1' },
      { id: 'rej', type: 'helper', z: 'tab1' },
      { id: 'status', type: 'helper', z: 'tab1' },
    ]);
    await attached();
  }

  test("one hand-over leaves as one batch of readings; a refused item's token is settled, the others travel on", async () => {
    await loadGrouped();
    const out = record('out');
    const rej = record('rej');
    const st = record('status');
    const ts = Date.now() - 1000;
    // Published together: the session hands them over in one turn.
    await Promise.all([
      publish('devices/a/telemetry', JSON.stringify({ ts, t: 1 })),
      publish('devices/b/telemetry', '{not json'),
      publish('devices/c/telemetry', JSON.stringify([{ ts, t: 3 }, { ts, t: 'NaN', u: null }, { ts: ts + 1, t: 4 }])),
      publish('devices/d/status', 'online'),
      publish('devices/e/telemetry', JSON.stringify([{ ts, t: Number.MAX_VALUE, x: { y: { z: { w: 1 } } } }])),
      publish('devices/f/temperature', '21.5', 0),
    ]);
    await until('the batch, the rejects and the status', () => out.length === 1 && rej.length === 3 && st.length === 1);
    await sleep(50);
    expect(out).toHaveLength(1);
    const readings = out[0].payload as Array<{ device: string; metrics: Record<string, unknown> }>;
    expect(readings.map((r) => [r.device, r.metrics.t ?? r.metrics.temperature])).toEqual([
      ['a', 1],
      ['c', 3],
      ['c', 4],
      ['f', 21.5],
    ]);
    expect(out[0].mqttGroup).toBeUndefined();
    // The tokens of the two QoS 1 messages that gave readings (f was QoS 0: none).
    const tokens = out[0][ACK_PROPERTY] as string[];
    expect(tokens).toHaveLength(2);
    // Each reject leaves as its message would have alone, with its reason.
    expect(rej.map((m) => [m.topic, (m.error as { code: string }).code])).toEqual([
      ['devices/b/telemetry', 'malformed_json'],
      ['devices/c/telemetry', 'no_metrics'],
      ['devices/e/telemetry', 'invalid_metric'],
    ]);
    expect(settleAck(rej[0], 'durable')).toBe(0); // its token: settled already, as refused
    expect(rej[1][ACK_PROPERTY]).toBeUndefined(); // its message travels on with the accepted readings
    expect(rej[1].payload).toEqual([{ ts, t: 'NaN', u: null }]); // the refused element, as for a batch alone
    expect(rej[1].rejects).toEqual([expect.objectContaining({ code: 'no_metrics', index: 1 })]);
    // Settled, the refused ones (b, e) still wait for a's confirmation: PUBACKs go out in arrival order.
    expect(released).toEqual(['online']);
    expect(windowStats()).toMatchObject({ inFlight: 4, acknowledged: 0 });
    expect(settleAck(out[0], 'durable')).toBe(2);
    expect(windowStats()).toMatchObject({ inFlight: 0, acknowledged: 4, rejected: 2 });
    expect(released).toHaveLength(5);
  });

  test.each([true, false])('group %p: an empty batch ([]) is confirmed at once, and does not hold back the PUBACKs after it', async (grouped) => {
    await loadGrouped({ group: grouped });
    const out = record('out');
    const rej = record('rej');
    await publish('devices/a/telemetry', '[]');
    // Before this was settled in normalise, the empty batch held its place in the window until the 60 s timeout.
    await until('the empty batch released', () => released.includes('[]'));
    expect(windowStats()).toMatchObject({ inFlight: 0, acknowledged: 1, rejected: 1 });
    const ts = Date.now() - 1000;
    await Promise.all([publish('devices/a/telemetry', '[]'), publish('devices/a/telemetry', JSON.stringify({ ts, t: 1 }))]);
    await until('the reading', () => out.length === 1);
    expect(out[0].payload).toEqual(grouped ? [expect.objectContaining({ device: 'a', ts })] : expect.objectContaining({ device: 'a', ts }));
    expect(rej).toHaveLength(0);
    expect(settleAck(out[0], 'durable')).toBe(1);
    expect(windowStats()).toMatchObject({ inFlight: 0, acknowledged: 3, rejected: 2 });
    expect(released).toEqual(['[]', '[]', JSON.stringify({ ts, t: 1 })]);
  });

  test('a full window still pauses the session; every message arrives once, in order, in groups', async () => {
    await loadGrouped({ maxInFlight: 3 });
    const out = record('out');
    const ts = Date.now() - 1000;
    await Promise.all(Array.from({ length: 10 }, (_, i) => publish('devices/a/telemetry', JSON.stringify({ ts: ts + i, n: i }))));
    const seen: number[] = [];
    for (let k = 0; seen.length < 10 && k < 10; k++) {
      await until(`group ${k + 1}`, () => out.length > k);
      const rs = out[k].payload as Array<{ metrics: { n: number } }>;
      expect(rs.length).toBeLessThanOrEqual(3);
      for (const r of rs) seen.push(r.metrics.n);
      settleAck(out[k], 'durable');
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(out.length).toBeLessThan(10);
    expect(windowStats()).toMatchObject({ inFlight: 0, acknowledged: 10 });
  });

  test('"lost": the group\'s unconfirmed messages come again in a new group with new tokens', async () => {
    await loadGrouped();
    const out = record('out');
    const ts = Date.now() - 1000;
    await Promise.all([publish('devices/a/telemetry', JSON.stringify({ ts, n: 1 })), publish('devices/a/telemetry', JSON.stringify({ ts: ts + 1, n: 2 }))]);
    await until('the group', () => out.length === 1);
    expect(out[0].payload).toHaveLength(2);
    settleAck(out[0], 'lost');
    await until('the group again', () => out.length === 2, 5000);
    expect((out[1].payload as Array<{ metrics: { n: number } }>).map((r) => r.metrics.n)).toEqual([1, 2]);
    expect(out[1][ACK_PROPERTY]).not.toEqual(out[0][ACK_PROPERTY]);
    settleAck(out[1], 'durable');
    expect(released).toHaveLength(2);
  });
});
