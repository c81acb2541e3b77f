/**
 * thingwire-mqtt-in in a real Node-RED runtime (node-red-node-test-helper) against a real mosquitto:
 * messages nothing settled are delivered again by the broker after a redeploy, settled ones are not;
 * messages published while the node is away wait in its persistent session; the in-flight bound
 * pauses reading; QoS 0 and "confirm at once" topics carry no token; and the whole path
 * mqtt-in > thingwire-normalise > thingwire-write (confirm delivery) into the embedded store, and into
 * an InfluxDB 1.x that is down (the disk spool makes the points durable, so they are confirmed).
 */
import * as net from 'node:net';
import * as mqtt from 'mqtt';
import mqttInNode from '../../nodes/mqtt/mqtt-in';
import normaliseNode from '../../nodes/normalise/normalise';
import storeNode from '../../nodes/store/store';
import writeNode from '../../nodes/write/write';
import queryNode from '../../nodes/query/query';
import batchNode from '../../nodes/batch/batch';
import { ACK_PROPERTY, ackWindowStats, settleAck, type AckStats } from '../../nodes/lib/ack';
import { startMosquitto, type Mosquitto } from '../support/services';
import { errorCalls, getNode, helper, record, setDataDir, sleep, until, useHelper, useTempDirs, withCatalogue, type FlowNodeConfig, type NodeMsg } from './harness';

jest.setTimeout(60_000);

useHelper();
const tempDir = useTempDirs('mqtt-in');
const NODES = [withCatalogue(mqttInNode), withCatalogue(normaliseNode), withCatalogue(storeNode), withCatalogue(writeNode), withCatalogue(queryNode), withCatalogue(batchNode)];

let broker: Mosquitto;
let pub: mqtt.MqttClient;
beforeAll(async () => {
  broker = await startMosquitto();
  pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'test-publisher', reconnectPeriod: 0 });
});
afterAll(async () => {
  await pub?.endAsync();
  await broker?.stop();
});

let nextClient = 0;
/** A client id of its own per test: each test starts from an empty session. */
function freshClientId(): string {
  return `tw-test-${process.pid}-${++nextClient}`;
}

function inNode(clientId: string, extra: Partial<FlowNodeConfig> = {}, wires = [['out']]): FlowNodeConfig {
  return { id: 'in1', type: 'thingwire-mqtt-in', z: 'tab1', v: 1, host: '127.0.0.1', port: broker.port, clientId, topics: 'devices/+/+', wires, ...extra };
}

async function load(flow: FlowNodeConfig[]): Promise<void> {
  await helper.load(NODES, [{ id: 'tab1', type: 'tab', label: 'test' }, ...flow]);
}

async function connected(): Promise<void> {
  await until('the input is connected and subscribed', () => {
    const calls = getNode('in1').status.getCalls();
    const last = calls[calls.length - 1]?.args[0] as { fill?: string } | undefined;
    return last?.fill === 'green';
  });
  // The SUBACK follows the CONNACK; give it a moment before publishing.
  await sleep(150);
}

function windowStats(): AckStats {
  const all = ackWindowStats().filter((w) => w.id.startsWith('in1.'));
  if (all.length !== 1) throw new Error(`expected one open window for in1, got ${all.length}`);
  return all[0].stats;
}

async function publish(topic: string, payload: string, qos: 0 | 1 = 1): Promise<void> {
  await pub.publishAsync(topic, payload, { qos });
}

const texts = (msgs: NodeMsg[]): string[] => msgs.map((m) => (m.payload as Buffer).toString());

test('unsettled messages come again after a redeploy; settled ones do not', async () => {
  const id = freshClientId();
  await load([inNode(id), { id: 'out', type: 'helper', z: 'tab1' }]);
  await connected();
  let out = record('out');
  for (const n of [1, 2, 3]) await publish('devices/a/telemetry', `{"t":${n}}`);
  await until('3 messages', () => out.length === 3);
  expect(texts(out)).toEqual(['{"t":1}', '{"t":2}', '{"t":3}']);
  for (const m of out) expect(typeof m[ACK_PROPERTY]).toBe('string');
  expect(Buffer.isBuffer(out[0].payload)).toBe(true);
  expect(out[0]).toMatchObject({ topic: 'devices/a/telemetry', qos: 1, retain: false });
  expect(windowStats()).toMatchObject({ inFlight: 3, received: 3, acknowledged: 0 });

  // Redeploy with nothing settled: the broker delivers all three again.
  await helper.unload();
  await load([inNode(id), { id: 'out', type: 'helper', z: 'tab1' }]);
  out = record('out');
  await until('3 redelivered messages', () => out.length === 3);
  expect(texts(out)).toEqual(['{"t":1}', '{"t":2}', '{"t":3}']);
  // Settle them (as a write node would once stored): PUBACKs go out.
  for (const m of out) expect(settleAck(m, 'durable')).toBe(1);
  expect(windowStats()).toMatchObject({ inFlight: 0, acknowledged: 3 });
  await sleep(200);

  await helper.unload();
  await load([inNode(id), { id: 'out', type: 'helper', z: 'tab1' }]);
  out = record('out');
  await connected();
  await publish('devices/a/telemetry', '{"t":4}');
  await until('the new message', () => out.length >= 1);
  await sleep(300);
  expect(texts(out)).toEqual(['{"t":4}']);
});

test('messages published while the node is away wait in its persistent session', async () => {
  const id = freshClientId();
  await load([inNode(id), { id: 'out', type: 'helper', z: 'tab1' }]);
  await connected();
  await helper.unload();
  for (let n = 0; n < 5; n++) await publish('devices/b/telemetry', `{"n":${n}}`);
  await load([inNode(id), { id: 'out', type: 'helper', z: 'tab1' }]);
  const out = record('out');
  await until('5 queued messages', () => out.length === 5);
  expect(texts(out)).toEqual([0, 1, 2, 3, 4].map((n) => `{"n":${n}}`));
});

test('a deleted node ends its persistent session: the broker keeps nothing more for it', async () => {
  const id = freshClientId();
  await load([inNode(id), { id: 'out', type: 'helper', z: 'tab1' }]);
  await connected();
  // Node-RED closes a deleted node with removed = true (a redeploy of a changed one: false, as helper.unload does).
  await (getNode('in1') as unknown as { close(removed: boolean): Promise<void> }).close(true);
  await helper.unload();
  for (let n = 0; n < 3; n++) await publish('devices/b/telemetry', `{"n":${n}}`);
  // The same client id with a persistent session again: the broker has none for it, so nothing was queued.
  const got: string[] = [];
  const c = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, { clientId: id, clean: false, reconnectPeriod: 0 });
  c.on('message', (_t, m) => got.push(m.toString()));
  const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  await sleep(300);
  await c.endAsync();
  expect(connack.sessionPresent).toBe(false);
  expect(got).toEqual([]);
});

test('at most maxInFlight messages wait for confirmation: reading pauses, then goes on in order', async () => {
  const id = freshClientId();
  await load([inNode(id, { maxInFlight: 2 }), { id: 'out', type: 'helper', z: 'tab1' }]);
  await connected();
  const out = record('out');
  for (let n = 0; n < 6; n++) await publish('devices/c/telemetry', `{"n":${n}}`);
  await until('2 messages', () => out.length === 2);
  await sleep(300);
  expect(out).toHaveLength(2);
  const lastStatus = (): unknown => getNode('in1').status.getCalls().at(-1)?.args[0];
  // The status is rendered at most once a second.
  await until('the status says full', () => (lastStatus() as { fill?: string }).fill === 'yellow', 3000);
  expect(lastStatus()).toEqual({ fill: 'yellow', shape: 'dot', text: 'full: in flight 2 (0.0 MB), reading paused' });
  settleAck(out[0], 'durable');
  await until('the third message', () => out.length === 3);
  await sleep(200);
  expect(out).toHaveLength(3);
  // Settle the rest as they come.
  for (let i = 1; i < 6; i++) {
    await until(`message ${i + 1}`, () => out.length > i);
    settleAck(out[i], 'durable');
  }
  expect(texts(out)).toEqual([0, 1, 2, 3, 4, 5].map((n) => `{"n":${n}}`));
  expect(windowStats()).toMatchObject({ inFlight: 0, acknowledged: 6 });
});

test('at most maxInFlightMB of payload waits for confirmation: reading pauses at the byte bound', async () => {
  const id = freshClientId();
  await load([inNode(id, { maxInFlight: 100, maxInFlightMB: 1 }), { id: 'out', type: 'helper', z: 'tab1' }]);
  await connected();
  const out = record('out');
  // 400 KB each: the third makes 1.2 MB waiting, past the 1 MB bound.
  const big = (n: number): string => JSON.stringify({ n, pad: 'x'.repeat(400 * 1024) });
  for (let n = 0; n < 5; n++) await publish("devices/d/telemetry", big(n));
  await until('3 messages', () => out.length === 3);
  await sleep(300);
  expect(out).toHaveLength(3);
  expect(windowStats()).toMatchObject({ inFlight: 3 });
  expect(windowStats().inFlightBytes).toBe(3 * Buffer.byteLength(big(0)));
  const lastStatus = (): unknown => getNode('in1').status.getCalls().at(-1)?.args[0];
  await until('the status says full', () => (lastStatus() as { fill?: string }).fill === 'yellow', 3000);
  expect(lastStatus()).toEqual({ fill: 'yellow', shape: 'dot', text: 'full: in flight 3 (1.2 MB), reading paused' });
  settleAck(out[0], 'durable');
  await until('the fourth message', () => out.length === 4);
  for (let i = 1; i < 5; i++) {
    await until(`message ${i + 1}`, () => out.length > i);
    settleAck(out[i], 'durable');
  }
  expect(out.map((m) => (JSON.parse(String(m.payload)) as { n: number }).n)).toEqual([0, 1, 2, 3, 4]);
  expect(windowStats()).toMatchObject({ inFlight: 0, inFlightBytes: 0, acknowledged: 5 });
});

test('a full window holds reading longer than the keepalive without the connection being taken for dead', async () => {
  const id = freshClientId();
  await load([inNode(id, { maxInFlight: 2, keepalive: 1 }), { id: 'out', type: 'helper', z: 'tab1' }]);
  await connected();
  const out = record('out');
  for (let n = 0; n < 4; n++) await publish('devices/k/telemetry', `{"n":${n}}`);
  await until('2 messages', () => out.length === 2);
  // 5 s held: over three times the keepalive timeout (1.5 x 1 s) of mqtt.js, for a client that handles no packet,
  // and of the broker, for a client that sends none (nothing is settled meanwhile, so no PUBACK goes out).
  await sleep(5000);
  for (let i = 0; i < 4; i++) {
    await until(`message ${i + 1}`, () => out.length > i);
    settleAck(out[i], 'durable');
  }
  expect(texts(out)).toEqual([0, 1, 2, 3].map((n) => `{"n":${n}}`));
  // No reconnect in between: every message was acknowledged on the connection it came on.
  expect(windowStats()).toMatchObject({ inFlight: 0, received: 4, acknowledged: 4, unacknowledged: 0 });
});

test('QoS 0 messages carry no token; "confirm at once" topics leave on output 2, untracked', async () => {
  const id = freshClientId();
  await load([inNode(id, { confirmOnReceipt: 'devices/+/status' }, [['out'], ['status']]), { id: 'out', type: 'helper', z: 'tab1' }, { id: 'status', type: 'helper', z: 'tab1' }]);
  await connected();
  const out = record('out');
  const st = record('status');
  await publish('devices/d/status', 'offline', 1);
  await publish('devices/d/telemetry', '{"q":0}', 0);
  await until('2 messages', () => out.length + st.length === 2);
  expect(out.map((m) => [m.topic, m[ACK_PROPERTY]])).toEqual([['devices/d/telemetry', undefined]]);
  expect(st.map((m) => [m.topic, (m.payload as Buffer).toString(), m[ACK_PROPERTY]])).toEqual([['devices/d/status', 'offline', undefined]]);
  expect(windowStats()).toMatchObject({ inFlight: 0, received: 0 });
});

test('a message nothing confirms is released after the timeout, with a warning naming its topic', async () => {
  const id = freshClientId();
  await load([inNode(id, { ackTimeout: 1 }), { id: 'out', type: 'helper', z: 'tab1' }]);
  await connected();
  const out = record('out');
  const warned: string[] = [];
  getNode('in1').on('call:warn', (call: unknown) => warned.push(String((call as { args: unknown[] }).args[0])));
  await publish('devices/e/dropped', '1');
  await until('released', () => windowStats().timedOut === 1, 5000);
  expect(out).toHaveLength(1);
  expect(windowStats()).toMatchObject({ inFlight: 0, acknowledged: 1, timedOut: 1 });
  expect(warned.join('\n')).toContain('devices/e/dropped');
});

test('bad configuration: a clear error, no connection', async () => {
  await load([inNode('x', { topics: 'a/#/b', port: 'nope' })]);
  const errs = errorCalls(getNode('in1')).map((c) => String(c.args[0]));
  expect(errs).toEqual([
    'bad configuration: port must be a whole number from 1 to 65535, got "nope"; topic filter "a/#/b" uses \'#\' other than as the whole last level',
  ]);
  expect(ackWindowStats().filter((w) => w.id.startsWith('in1.'))).toEqual([]);
});

describe('mqtt-in > normalise > write (confirm delivery)', () => {
  function pipeline(id: string, store: Partial<FlowNodeConfig>): FlowNodeConfig[] {
    return [
      inNode(id, {}, [['norm']]),
      { id: 'norm', type: 'thingwire-normalise', z: 'tab1', v: 1, wires: [['w1'], ['rej']] },
      { id: 'store1', type: 'thingwire-store', name: 'store', v: 1, flushInterval: 50, ...store },
      { id: 'w1', type: 'thingwire-write', z: 'tab1', v: 1, store: 'store1', confirm: true, wires: [['ok'], ['bad']] },
      { id: 'q1', type: 'thingwire-query', z: 'tab1', v: 1, store: 'store1', fields: 'v', start: '-1h', wires: [['qok'], ['qbad']] },
      { id: 'rej', type: 'helper', z: 'tab1' },
      { id: 'ok', type: 'helper', z: 'tab1' },
      { id: 'bad', type: 'helper', z: 'tab1' },
      { id: 'qok', type: 'helper', z: 'tab1' },
      { id: 'qbad', type: 'helper', z: 'tab1' },
    ];
  }

  test('embedded store: readings and refused messages are all confirmed, nothing comes again, the readings are stored', async () => {
    setDataDir(tempDir());
    const id = freshClientId();
    await load(pipeline(id, { backend: 'embedded' }));
    await connected();
    const rej = record('rej');
    const t0 = Date.now() - 60_000;
    for (let i = 0; i < 20; i++) await publish(`devices/p${i % 4}/telemetry`, JSON.stringify({ ts: t0 + i, v: i }));
    await publish('devices/p0/telemetry', '{not json');
    await publish('devices/p0/telemetry', '{"ts":"yesterday","v":1}');
    await until('all 22 confirmed', () => windowStats().acknowledged === 22, 10_000);
    expect(windowStats()).toMatchObject({ inFlight: 0, received: 22, rejected: 2, timedOut: 0 });
    expect(rej.map((m) => (m.error as { code: string }).code)).toEqual(['malformed_json', 'invalid_ts']);

    const qok = record('qok');
    getNode('q1').receive({ payload: { fields: ['v'], start: t0 - 1000, end: t0 + 1000 } });
    await until('query answer', () => qok.length === 1);
    const series = (qok[0].payload as { series: Array<{ device: string; points: unknown[] }> }).series;
    expect(series.map((s) => s.points.length).reduce((a, b) => a + b, 0)).toBe(20);

    // Nothing comes again after a redeploy (all were acknowledged).
    await helper.unload();
    await load([inNode(id), { id: 'out', type: 'helper', z: 'tab1' }]);
    const out = record('out');
    await connected();
    await sleep(500);
    expect(out).toEqual([]);
  });

  test('group on, over TCP: the same confirmations, rejects and stored readings, in fewer messages', async () => {
    setDataDir(tempDir());
    const id = freshClientId();
    const flow = pipeline(id, { backend: 'embedded' }).map((n) => (n.id === 'in1' ? { ...n, group: true } : n));
    flow.push({ id: 'seen', type: 'helper', z: 'tab1' });
    (flow.find((n) => n.id === 'norm') as FlowNodeConfig).wires = [['w1', 'seen'], ['rej']];
    await load(flow);
    await connected();
    const rej = record('rej');
    const seen = record('seen');
    const t0 = Date.now() - 60_000;
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < 40; i++) sends.push(publish(`devices/g${i % 4}/telemetry`, JSON.stringify({ ts: t0 + i, v: i })));
    sends.push(publish('devices/g0/telemetry', '{not json'));
    sends.push(publish('devices/g1/telemetry', JSON.stringify([{ ts: t0 + 100, v: 100 }, { ts: 'yesterday', v: 1 }])));
    await Promise.all(sends);
    await until('all 42 confirmed', () => windowStats().acknowledged === 42, 10_000);
    expect(windowStats()).toMatchObject({ inFlight: 0, received: 42, rejected: 1, timedOut: 0 });
    expect(rej.map((m) => (m.error as { code: string }).code).sort()).toEqual(['invalid_ts', 'malformed_json']);
    // Every normalised message is a batch; together they hold the 41 readings, each once.
    const vs = seen.flatMap((m) => (m.payload as Array<{ metrics: { v: number } }>).map((r) => r.metrics.v));
    expect(vs.sort((a, b) => a - b)).toEqual([...Array.from({ length: 40 }, (_, i) => i), 100]);
    expect(seen.every((m) => m.mqttGroup === undefined && Array.isArray(m[ACK_PROPERTY]))).toBe(true);

    const qok = record('qok');
    getNode('q1').receive({ payload: { fields: ['v'], start: t0 - 1000, end: t0 + 1000 } });
    await until('query answer', () => qok.length === 1);
    const series = (qok[0].payload as { series: Array<{ device: string; points: unknown[] }> }).series;
    expect(series.map((s) => s.points.length).reduce((a, b) => a + b, 0)).toBe(41);
  });

  test('InfluxDB 1.x down: the points go to the disk spool, which makes them durable, so they are confirmed', async () => {
    setDataDir(tempDir());
    const id = freshClientId();
    // A port held by a server that drops every connection at once: a free port left unbound could be taken by another
    // test's server meanwhile, whose silence costs the 10 s request timeout twice (create the database, then write),
    // past this test's wait (a CI run on 2026-12-05 timed out so, once in many).
    const dropper = net.createServer((sock) => sock.destroy());
    await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
    try {
      const down = `http://127.0.0.1:${(dropper.address() as net.AddressInfo).port}`;
      await load(pipeline(id, { backend: 'influxdb-v1', url: down, db: 'tw', createDb: true }));
      await connected();
      const t0 = Date.now() - 60_000;
      for (let i = 0; i < 10; i++) await publish('devices/s1/telemetry', JSON.stringify({ ts: t0 + i, v: i }));
      await until('all 10 confirmed', () => windowStats().acknowledged === 10, 15_000);
      const store = helper.getNode('store1') as unknown as { service: { stats(): { spooledBatches: number; written: number } } };
      expect(store.service.stats().spooledBatches).toBeGreaterThan(0);
      expect(store.service.stats().written).toBe(0);
    } finally {
      dropper.close();
    }
  });

  test('with thingwire-batch between: fewer, bigger writes, and every message in a batch is confirmed', async () => {
    setDataDir(tempDir());
    const id = freshClientId();
    const flow = pipeline(id, { backend: 'embedded' }).map((n) => (n.id === 'norm' ? { ...n, wires: [['bat'], ['rej']] } : n));
    flow.push({ id: 'bat', type: 'thingwire-batch', z: 'tab1', v: 1, maxItems: 1000, maxWaitMs: 50, wires: [['w1']] });
    await load(flow);
    await connected();
    const ok = record('ok');
    const t0 = Date.now() - 60_000;
    await Promise.all(Array.from({ length: 50 }, (_, i) => publish(`devices/b${i % 5}/telemetry`, JSON.stringify({ ts: t0 + i, v: i }))));
    await until('all 50 confirmed', () => windowStats().acknowledged === 50, 10_000);
    expect(windowStats()).toMatchObject({ inFlight: 0, received: 50, rejected: 0, timedOut: 0 });
    // The write node saw batches, not 50 messages, and they hold all 50 readings.
    expect(ok.length).toBeLessThan(50);
    expect(ok.map((m) => (m.payload as unknown[]).length).reduce((a, b) => a + b, 0)).toBe(50);
  });
});
