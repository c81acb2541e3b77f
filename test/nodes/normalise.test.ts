/**
 * thingwire-normalise in a real Node-RED runtime (node-red-node-test-helper): objects, batches
 * with partial rejects, bare values on device topics, raw payloads, the size limit, the config
 * options, reject routing (output 2, Catch), done() exactly once, status, and close.
 */
import normaliseNode from '../../nodes/normalise/normalise';
import {
  TAB,
  getNode,
  helper,
  positioned,
  record,
  settle,
  sleep,
  statusCalls,
  translate,
  until,
  useHelper,
  withCatalogue,
  type FlowNodeConfig,
  type NodeMsg,
} from './harness';

// Node-RED's own Function node, to feed the node as real flows do.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js') as (RED: never) => void;

useHelper();

const TS = Date.UTC(2026, 10, 24, 10, 0, 0);

interface Outputs {
  ok: NodeMsg[];
  bad: NodeMsg[];
  completes: NodeMsg[];
  caught: NodeMsg[];
  statuses: NodeMsg[];
}

interface Reading {
  device: string;
  ts: number;
  metrics: Record<string, unknown>;
  tags?: Record<string, string>;
}

interface Reject {
  code: string;
  message: string;
  index?: number;
}

function flow(config: Partial<FlowNodeConfig>): FlowNodeConfig[] {
  return positioned([
    TAB,
    { id: 'n1', type: 'thingwire-normalise', z: 'tab1', name: 'normalise', v: 1, tsUnit: 'ms', strings: 'tags', topicPrefix: 'devices', wires: [['ok'], ['bad']], ...config },
    { id: 'ok', type: 'helper', z: 'tab1' },
    { id: 'bad', type: 'helper', z: 'tab1' },
    { id: 'complete', type: 'complete', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['completes']] },
    { id: 'completes', type: 'helper', z: 'tab1' },
    { id: 'catch', type: 'catch', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab1' },
    { id: 'status', type: 'status', z: 'tab1', scope: ['n1'], wires: [['statuses']] },
    { id: 'statuses', type: 'helper', z: 'tab1' },
  ]);
}

async function start(config: Partial<FlowNodeConfig> = {}): Promise<Outputs> {
  await helper.load([withCatalogue(normaliseNode)], flow(config));
  return { ok: record('ok'), bad: record('bad'), completes: record('completes'), caught: record('caught'), statuses: record('statuses') };
}

function send(msg: NodeMsg): void {
  getNode('n1').receive(msg);
}

async function handled(out: Outputs, n: number): Promise<void> {
  await until(`${n} messages handled`, () => out.completes.length + out.caught.length >= n);
  await settle();
}

const codeOf = (m: NodeMsg): string => (m.error as { code: string }).code;

describe('objects', () => {
  test('a flat object on a device topic becomes one Reading on output 1', async () => {
    const out = await start();
    send({ topic: 'devices/pico-1/telemetry', payload: { ts: TS, temperature: 21.5, door: false, fw: '1.2.0' } });
    await handled(out, 1);
    expect(out.ok).toHaveLength(1);
    expect(out.ok[0].payload).toEqual({ device: 'pico-1', ts: TS, metrics: { temperature: 21.5, door: false }, tags: { fw: '1.2.0' } });
    expect(out.ok[0].topic).toBe('devices/pico-1/telemetry');
    expect(out.bad).toHaveLength(0);
    expect(out.completes).toHaveLength(1);
  });

  test('the canonical form passes through', async () => {
    const out = await start();
    const reading = { device: 'd1', ts: TS, metrics: { t: 1, mode: 'eco' }, tags: { site: 'north' } };
    send({ payload: JSON.parse(JSON.stringify(reading)) as unknown });
    await handled(out, 1);
    expect(out.bad.map((m) => m.error)).toEqual([]);
    expect(out.ok[0].payload).toEqual(reading);
  });

  // Regression, fixed: isPlainObject in nodes/lib/normalise.ts compares the prototype with this realm's
  // Object.prototype. A Function node runs in its own vm context, so the object it builds has that
  // context's Object.prototype and is rejected as not_a_reading: function -> normalise never works.
  test('an object built by an upstream Function node is read', async () => {
    await helper.load(
      [functionNode, withCatalogue(normaliseNode)],
      positioned([
        TAB,
        {
          id: 'f1',
          type: 'function',
          z: 'tab1',
          name: 'build reading',
          func: 'msg.payload = { device: "d1", ts: msg.payload, env: { t: 21.5 } }; return msg;',
          outputs: 1,
          wires: [['n1']],
        },
        { id: 'n1', type: 'thingwire-normalise', z: 'tab1', name: 'normalise', wires: [['ok'], ['bad']] },
        { id: 'ok', type: 'helper', z: 'tab1' },
        { id: 'bad', type: 'helper', z: 'tab1' },
      ]),
    );
    const ok = record('ok');
    const bad = record('bad');
    getNode('f1').receive({ payload: TS });
    await until('a message out of normalise', () => ok.length + bad.length > 0);
    expect(bad.map((m) => m.error)).toEqual([]);
    expect(ok.map((m) => m.payload)).toEqual([{ device: 'd1', ts: TS, metrics: { 'env.t': 21.5 } }]);
  });

  test('without ts the arrival time is used', async () => {
    const out = await start();
    const before = Date.now();
    send({ payload: { device: 'd1', t: 1 } });
    await handled(out, 1);
    const ts = (out.ok[0].payload as Reading).ts;
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(ts).toBeLessThanOrEqual(Date.now());
  });

  test('a JSON string and a JSON Buffer are parsed', async () => {
    const out = await start();
    send({ topic: 'devices/d1/telemetry', payload: JSON.stringify({ ts: TS, t: 1 }) });
    send({ topic: 'devices/d1/telemetry', payload: Buffer.from(JSON.stringify({ ts: TS, t: 2 })) });
    await handled(out, 2);
    expect(out.ok.map((m) => m.payload)).toEqual([
      { device: 'd1', ts: TS, metrics: { t: 1 } },
      { device: 'd1', ts: TS, metrics: { t: 2 } },
    ]);
  });

  test('an invalid object leaves on output 2 with msg.error and msg.rejects, payload unchanged', async () => {
    const out = await start();
    const payload = { device: 'd1', ts: TS, t: NaN };
    send({ payload });
    await handled(out, 1);
    expect(out.ok).toHaveLength(0);
    expect(out.bad).toHaveLength(1);
    expect(out.bad[0].payload).toEqual(payload);
    expect(out.bad[0].error).toEqual({ code: 'invalid_value', message: 'metric "t" is NaN; values must be finite numbers', source: 'thingwire-normalise' });
    expect(out.bad[0].rejects).toEqual([{ code: 'invalid_value', message: 'metric "t" is NaN; values must be finite numbers' }]);
    expect(out.completes).toHaveLength(1);
    expect(out.caught).toHaveLength(0);
  });

  test('a payload device that differs from the topic device is device_mismatch', async () => {
    const out = await start();
    send({ topic: 'devices/d1/telemetry', payload: { device: 'd2', t: 1 } });
    await handled(out, 1);
    expect(codeOf(out.bad[0])).toBe('device_mismatch');
  });

  test('msg.device.id is the authenticated device: it fills in and must match', async () => {
    const out = await start();
    send({ payload: { t: 1 }, device: { id: 'auth-1' } });
    send({ payload: { device: 'other', t: 1 }, device: { id: 'auth-1' } });
    send({ topic: 'devices/other/t', payload: 5, device: { id: 'auth-1' } });
    send({ payload: { device: 'd9', t: 1 }, device: { name: 'no id' } });
    await handled(out, 4);
    expect(out.ok.map((m) => (m.payload as Reading).device)).toEqual(['auth-1', 'd9']);
    expect(out.bad.map(codeOf)).toEqual(['device_mismatch', 'device_mismatch']);
  });

  test('no device anywhere is invalid_device', async () => {
    const out = await start();
    send({ payload: { t: 1 } });
    await handled(out, 1);
    expect(codeOf(out.bad[0])).toBe('invalid_device');
  });

  test('hostile names are rejected', async () => {
    const out = await start();
    send({ payload: JSON.parse('{"device":"d1","__proto__":{"x":1}}') as unknown });
    send({ payload: { device: 'd1', 'a\nb': 1 } });
    send({ payload: { device: 'd1', ['m'.repeat(129)]: 1 } });
    send({ payload: { device: 'd1', 温度: 1 } });
    await handled(out, 4);
    expect(out.bad.map(codeOf)).toEqual(['invalid_metric', 'invalid_metric', 'invalid_metric']);
    expect((out.ok[0].payload as Reading).metrics).toEqual({ 温度: 1 });
  });
});

describe('batches', () => {
  test('partial rejects: good readings on output 1, bad elements on output 2 with their indexes', async () => {
    const out = await start();
    const batch = [{ ts: TS, t: 1 }, { ts: 'later', t: 2 }, { ts: TS + 1, t: 3 }, 'junk', { device: 'd2', t: 5 }];
    send({ topic: 'devices/d1/telemetry', payload: JSON.stringify(batch) });
    await handled(out, 1);
    expect(out.ok).toHaveLength(1);
    expect(out.ok[0].payload).toEqual([
      { device: 'd1', ts: TS, metrics: { t: 1 } },
      { device: 'd1', ts: TS + 1, metrics: { t: 3 } },
    ]);
    expect(out.ok[0].topic).toBe('devices/d1/telemetry');
    expect(out.ok[0]).not.toHaveProperty('error');
    expect(out.bad).toHaveLength(1);
    const bad = out.bad[0];
    expect(bad.payload).toEqual([batch[1], batch[3], batch[4]]);
    expect((bad.rejects as Reject[]).map((r) => [r.index, r.code])).toEqual([
      [1, 'invalid_ts'],
      [3, 'not_a_reading'],
      [4, 'device_mismatch'],
    ]);
    expect(bad.error).toEqual({ code: 'invalid_ts', message: (bad.rejects as Reject[])[0].message, source: 'thingwire-normalise' });
    expect(out.ok[0]).not.toBe(bad);
    expect(out.ok[0]._msgid).toBe(bad._msgid);
    expect(out.completes).toHaveLength(1);
  });

  test('a good batch: an array of readings, even of one', async () => {
    const out = await start();
    send({ payload: [{ device: 'd1', ts: TS, t: 1 }] });
    send({ payload: [{ device: 'd1', ts: TS, t: 1 }, { device: 'd2', ts: TS, t: 2 }] });
    await handled(out, 2);
    expect(out.ok.map((m) => (m.payload as Reading[]).length)).toEqual([1, 2]);
    expect(out.bad).toHaveLength(0);
  });

  test('an all-bad batch sends nothing on output 1', async () => {
    const out = await start();
    send({ payload: [1, 2] });
    await handled(out, 1);
    expect(out.ok).toHaveLength(0);
    expect((out.bad[0].rejects as Reject[]).map((r) => r.index)).toEqual([0, 1]);
    expect(out.bad[0].payload).toEqual([1, 2]);
  });

  test('an empty batch sends an empty array? no: nothing at all, and still completes', async () => {
    const out = await start();
    send({ payload: [] });
    await handled(out, 1);
    expect(out.ok).toHaveLength(0);
    expect(out.bad).toHaveLength(0);
    expect(out.completes).toHaveLength(1);
  });

  test('maxBatch: over the limit the whole batch is payload_too_large', async () => {
    const out = await start({ maxBatch: 2 });
    const item = { device: 'd1', t: 1 };
    send({ payload: [item, item] });
    send({ payload: [item, item, item] });
    await handled(out, 2);
    expect(out.ok).toHaveLength(1);
    expect(out.bad).toHaveLength(1);
    expect(out.bad[0].error).toEqual({ code: 'payload_too_large', message: 'batch of 3 readings is over the limit of 2', source: 'thingwire-normalise' });
    expect(out.bad[0].rejects).toEqual([{ code: 'payload_too_large', message: 'batch of 3 readings is over the limit of 2' }]);
  });
});

describe('bare values', () => {
  test('a bare number on devices/{device}/{metric}', async () => {
    const out = await start();
    send({ topic: 'devices/pico-1/temperature', payload: 21.5 });
    send({ topic: 'devices/pico-1/door', payload: Buffer.from('true') });
    send({ topic: 'devices/pico-1/rssi', payload: '-67' });
    await handled(out, 3);
    expect(out.ok.map((m) => ({ ...(m.payload as Reading), ts: 0 }))).toEqual([
      { device: 'pico-1', ts: 0, metrics: { temperature: 21.5 } },
      { device: 'pico-1', ts: 0, metrics: { door: true } },
      { device: 'pico-1', ts: 0, metrics: { rssi: -67 } },
    ]);
  });

  test('a bare number without a device topic is not_a_reading', async () => {
    const out = await start();
    send({ topic: 'sensors/pico-1/temperature', payload: 21.5 });
    send({ payload: 3 });
    await handled(out, 2);
    expect(out.bad.map(codeOf)).toEqual(['not_a_reading', 'not_a_reading']);
  });

  test('a custom topic prefix', async () => {
    const out = await start({ topicPrefix: 'sensors' });
    send({ topic: 'sensors/pico-1/temperature', payload: 21.5 });
    send({ topic: 'devices/pico-1/temperature', payload: 21.5 });
    await handled(out, 2);
    expect((out.ok[0].payload as Reading).metrics).toEqual({ temperature: 21.5 });
    expect(out.bad.map(codeOf)).toEqual(['not_a_reading']);
    expect((out.bad[0].error as { message: string }).message).toContain('sensors/{device}/{metric}');
  });
});

describe('raw payloads', () => {
  test('malformed JSON leaves on output 2 with malformed_json and the original payload', async () => {
    const out = await start();
    send({ topic: 'devices/d1/telemetry', payload: '{"t": ' });
    send({ topic: 'devices/d1/state', payload: 'on' });
    send({ topic: 'devices/d1/telemetry', payload: Buffer.from('t=1') });
    await handled(out, 3);
    expect(out.ok).toHaveLength(0);
    expect(out.bad.map(codeOf)).toEqual(['malformed_json', 'malformed_json', 'malformed_json']);
    expect(out.bad[0].payload).toBe('{"t": ');
    expect(Buffer.isBuffer(out.bad[2].payload)).toBe(true);
    expect((out.bad[0].rejects as Reject[])[0]).not.toHaveProperty('index');
    expect(out.completes).toHaveLength(3);
  });

  test('an oversize payload leaves on output 2 with payload_too_large', async () => {
    const out = await start({ maxBytes: 50 });
    const small = JSON.stringify({ device: 'd1', t: 1 });
    const big = JSON.stringify({ device: 'd1', t: 1, note: 'x'.repeat(100) });
    send({ payload: small });
    send({ payload: big });
    send({ payload: Buffer.from(big) });
    send({ payload: `"${'é'.repeat(30)}"` }); // 32 characters, 62 bytes
    await handled(out, 4);
    expect(out.ok).toHaveLength(1);
    expect(out.bad.map(codeOf)).toEqual(['payload_too_large', 'payload_too_large', 'payload_too_large']);
    expect(out.bad[0].payload).toBe(big);
  });

  test('the default size limit is 256 KiB', async () => {
    const out = await start();
    send({ payload: JSON.stringify({ device: 'd1', t: 1, pad: 'x'.repeat(262144) }) });
    await handled(out, 1);
    expect(out.bad.map(codeOf)).toEqual(['payload_too_large']);
  });
});

describe('config', () => {
  test('tsUnit s: numeric ts are seconds', async () => {
    const out = await start({ tsUnit: 's' });
    send({ payload: { device: 'd1', ts: TS / 1000, t: 1 } });
    send({ payload: { device: 'd1', ts: TS, t: 1 } });
    await handled(out, 2);
    expect((out.ok[0].payload as Reading).ts).toBe(TS);
    expect(out.bad.map(codeOf)).toEqual(['ts_out_of_range']);
  });

  test('tsUnit us and ns', async () => {
    let out = await start({ tsUnit: 'us' });
    send({ payload: { device: 'd1', ts: TS * 1000, t: 1 } });
    await handled(out, 1);
    expect((out.ok[0].payload as Reading).ts).toBe(TS);
    await helper.unload();
    out = await start({ tsUnit: 'ns' });
    send({ payload: { device: 'd1', ts: TS * 1e6, t: 1 } });
    await handled(out, 1);
    expect((out.ok[0].payload as Reading).ts).toBe(TS);
  });

  test('tsUnit ms (default): seconds are rejected as out of range', async () => {
    const out = await start({ tsUnit: undefined });
    send({ payload: { device: 'd1', ts: TS / 1000, t: 1 } });
    send({ payload: { device: 'd1', ts: TS, t: 1 } });
    await handled(out, 2);
    expect(out.bad.map(codeOf)).toEqual(['ts_out_of_range']);
    expect((out.ok[0].payload as Reading).ts).toBe(TS);
  });

  test('an unknown tsUnit falls back to ms', async () => {
    const out = await start({ tsUnit: 'minutes' });
    send({ payload: { device: 'd1', ts: TS, t: 1 } });
    await handled(out, 1);
    expect((out.ok[0].payload as Reading).ts).toBe(TS);
  });

  test('ISO timestamps work whatever the unit', async () => {
    const out = await start({ tsUnit: 'ns' });
    send({ payload: { device: 'd1', ts: '2026-11-24T11:00:00+01:00', t: 1 } });
    await handled(out, 1);
    expect((out.ok[0].payload as Reading).ts).toBe(TS);
  });

  test.each<[string, Partial<Reading>]>([
    ['tags', { metrics: { t: 1 }, tags: { fw: '1.0' } }],
    ['metrics', { metrics: { t: 1, fw: '1.0' } }],
    ['drop', { metrics: { t: 1 } }],
    ['bogus', { metrics: { t: 1 }, tags: { fw: '1.0' } }],
  ])('strings: %s', async (strings, expected) => {
    const out = await start({ strings });
    send({ payload: { device: 'd1', ts: TS, t: 1, fw: '1.0' } });
    await handled(out, 1);
    expect(out.ok[0].payload).toEqual({ device: 'd1', ts: TS, ...expected });
  });
});

describe('Catch nodes', () => {
  test('catchRejects: rejects go to output 2 and to Catch with their code; done(err) instead of done()', async () => {
    const out = await start({ catchRejects: true });
    send({ payload: { device: 'd1', t: 1 }, seq: 0 });
    send({ payload: { t: 1 }, seq: 1 });
    send({ payload: '{x', seq: 2 });
    send({ payload: [{ device: 'd1', t: 1 }, 5], seq: 3 });
    await handled(out, 4);
    expect(out.completes.map((m) => m.seq)).toEqual([0]);
    expect(out.caught.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(out.caught.map((m) => (m._error as { code: string }).code)).toEqual(['invalid_device', 'malformed_json', 'not_a_reading']);
    expect((out.caught[0].error as { message: string }).message).toMatch(/^RejectedError: invalid_device: no device id/);
    expect((out.caught[0].error as { source: { id: string } }).source.id).toBe('n1');
    expect(out.bad.map((m) => m.seq)).toEqual([1, 2, 3]);
    // The good part of the batch still went on.
    expect(out.ok.map((m) => m.seq)).toEqual([0, 3]);
  });

  test('catchRejects from the editor as "true"; without it nothing is caught', async () => {
    let out = await start({ catchRejects: 'true' });
    send({ payload: 'x' });
    await handled(out, 1);
    expect(out.caught).toHaveLength(1);
    await helper.unload();
    out = await start({ catchRejects: false });
    send({ payload: 'x' });
    await handled(out, 1);
    expect(out.caught).toHaveLength(0);
    expect(out.bad).toHaveLength(1);
  });
});

describe('group messages (thingwire-mqtt-in with "Group" on)', () => {
  const group = (items: Array<{ topic: string; payload: unknown; mqttAck?: string }>, extra: NodeMsg = {}): NodeMsg => ({
    topic: items[0].topic,
    payload: items,
    mqttGroup: true,
    mqttAck: items.flatMap((i) => (i.mqttAck ? [i.mqttAck] : [])),
    ...extra,
  });

  test('each item judged as its own message: one batch out, each reject alone, done() once, counted per element', async () => {
    const out = await start({ maxBatch: 2 });
    send(
      group(
        [
          { topic: 'devices/a/telemetry', payload: Buffer.from(`{"ts":${TS},"t":1}`), mqttAck: 'x#1' },
          { topic: 'devices/b/telemetry', payload: Buffer.from('[1,2,3]'), mqttAck: 'x#2' },
          { topic: 'devices/c/t', payload: Buffer.from('2.5'), mqttAck: 'x#3' },
          { topic: 'devices/d/telemetry', payload: Buffer.from(`{"ts":${TS},"device":"e","t":1}`) },
        ],
        { seq: 7 },
      ),
    );
    await handled(out, 1);
    expect(out.completes).toHaveLength(1);
    expect(out.ok).toHaveLength(1);
    expect(out.ok[0].seq).toBe(7);
    expect(out.ok[0].mqttGroup).toBeUndefined();
    expect(out.ok[0].payload).toEqual([
      { device: 'a', ts: TS, metrics: { t: 1 } },
      { device: 'c', ts: expect.any(Number), metrics: { t: 2.5 } },
    ]);
    expect(out.ok[0].mqttAck).toEqual(['x#1', 'x#3']);
    expect(out.bad.map((m) => [m.topic, codeOf(m)])).toEqual([
      ['devices/b/telemetry', 'payload_too_large'],
      ['devices/d/telemetry', 'device_mismatch'],
    ]);
    expect(out.bad[0].payload).toEqual([[1, 2, 3]]); // as for the message alone: the refused batch
    await until('the status counts', () => (out.statuses.at(-1)?.status as { text?: string })?.text === 'readings 2 / rejected 2');
  });

  test('a group of more than maxBatch readings leaves as batches of at most maxBatch, split between items, each with its tokens', async () => {
    // A burst of device batches delivered in one turn made groups of 15,000+ readings, which the device node (10,000
    // a message at most) refused whole: every delivery in them settled as refused, its readings lost.
    const out = await start({ maxBatch: 3 });
    const batchOf = (n: number, from: number): Buffer => Buffer.from(JSON.stringify(Array.from({ length: n }, (_, i) => ({ ts: TS + from + i, t: from + i }))));
    send(
      group(
        [
          { topic: 'devices/a/telemetry', payload: batchOf(2, 0), mqttAck: 'x#1' },
          { topic: 'devices/b/telemetry', payload: batchOf(1, 10), mqttAck: 'x#2' },
          { topic: 'devices/c/telemetry', payload: batchOf(3, 20), mqttAck: 'x#3' },
          { topic: 'devices/d/telemetry', payload: Buffer.from('{'), mqttAck: 'x#4' },
          { topic: 'devices/e/telemetry', payload: batchOf(1, 30), mqttAck: 'x#5' },
        ],
        { seq: 9 },
      ),
    );
    await handled(out, 1);
    expect(out.completes).toHaveLength(1);
    expect(out.ok.map((m) => (m.payload as Array<{ device: string }>).map((r) => r.device))).toEqual([['a', 'a', 'b'], ['c', 'c', 'c'], ['e']]);
    expect(out.ok.map((m) => m.mqttAck)).toEqual([['x#1', 'x#2'], ['x#3'], ['x#5']]);
    expect(out.ok.map((m) => [m.seq, m.mqttGroup])).toEqual([
      [9, undefined],
      [9, undefined],
      [9, undefined],
    ]);
    expect(out.ok.flatMap((m) => (m.payload as Array<{ metrics: { t: number } }>).map((r) => r.metrics.t))).toEqual([0, 1, 10, 20, 21, 22, 30]);
    expect(out.bad.map((m) => [m.topic, codeOf(m)])).toEqual([['devices/d/telemetry', 'malformed_json']]);
  });

  test('a group of rejects only sends nothing on output 1; with catchRejects one done(err) for the group', async () => {
    const out = await start({ catchRejects: true });
    send(group([{ topic: 'devices/a/telemetry', payload: Buffer.from('{') }, { topic: 'devices/a/telemetry', payload: Buffer.from('"x"') }], { seq: 1 }));
    send(group([{ topic: 'devices/a/telemetry', payload: Buffer.from(`{"ts":${TS},"t":1}`) }], { seq: 2 }));
    await handled(out, 2);
    expect(out.ok.map((m) => m.seq)).toEqual([2]);
    expect(out.bad.map(codeOf)).toEqual(['malformed_json', 'not_a_reading']);
    expect(out.caught.map((m) => [m.seq, (m.error as { message: string }).message])).toEqual([[1, expect.stringMatching(/^RejectedError: malformed_json: /)]]);
    expect(out.completes.map((m) => m.seq)).toEqual([2]);
  });

  test('a hand-made group with items that are not messages: each a clear reject, no crash', async () => {
    const out = await start();
    send({ payload: [null, 5, 'x', [1], { topic: 'devices/a/t', payload: '1.5' }], mqttGroup: true, seq: 1 });
    await handled(out, 1);
    expect(out.completes).toHaveLength(1);
    expect((out.ok[0].payload as Array<{ device: string }>).map((r) => r.device)).toEqual(['a']);
    expect(out.bad.map(codeOf)).toEqual(['not_a_reading', 'not_a_reading', 'malformed_json', 'not_a_reading']);
  });
});

describe('done() exactly once per message', () => {
  test('objects, batches (good, mixed, bad, empty, too big), bare values, malformed and oversize', async () => {
    const out = await start({ maxBytes: 200, maxBatch: 3 });
    const item = { device: 'd1', t: 1 };
    const inputs: NodeMsg[] = [
      { payload: item },
      { payload: { device: 'd1' } },
      { payload: [item, item] },
      { payload: [item, 5] },
      { payload: [5] },
      { payload: [] },
      { payload: [item, item, item, item] },
      { topic: 'devices/d1/t', payload: 1 },
      { payload: 1 },
      { payload: '{' },
      { payload: 'x'.repeat(300) },
      { payload: Buffer.from(JSON.stringify(item)) },
    ];
    inputs.forEach((m, i) => send({ ...m, seq: i }));
    await handled(out, inputs.length);
    expect(out.completes.map((m) => m.seq)).toEqual(inputs.map((_m, i) => i));
    expect(out.caught).toHaveLength(0);
    // Each input leaves at most once per output.
    expect(out.ok.map((m) => m.seq)).toEqual([0, 2, 3, 7, 11]);
    expect(out.bad.map((m) => m.seq)).toEqual([1, 3, 4, 6, 8, 9, 10]);
  });
});

describe('status', () => {
  type Status = { fill?: string; shape?: string; text?: string };
  const last = (out: Outputs): Status => out.statuses[out.statuses.length - 1].status as Status;

  test('cleared at deploy', async () => {
    await start();
    expect(statusCalls(getNode('n1'))).toEqual([{}]);
  });

  test('green with the counts while everything is accepted', async () => {
    const out = await start();
    send({ payload: { device: 'd1', t: 1 } });
    await until('a status', () => out.statuses.length > 0);
    expect(last(out)).toEqual({ fill: 'green', shape: 'dot', text: 'readings 1 / rejected 0', source: { id: 'n1', type: 'thingwire-normalise', name: 'normalise' } });
    expect(translate('thingwire-normalise.status.counts', { accepted: 1, rejected: 0 })).toBe('readings 1 / rejected 0');
  });

  test('the first reject turns it yellow at once', async () => {
    const out = await start();
    send({ payload: 'x' });
    await until('a status', () => out.statuses.length > 0);
    expect(last(out)).toMatchObject({ fill: 'yellow', shape: 'dot', text: 'readings 0 / rejected 1' });
  });

  test('readings and rejects are counted per element (throttled, then flushed)', async () => {
    const out = await start();
    send({ payload: { device: 'd1', t: 1 } });
    send({ payload: [{ device: 'd1', t: 1 }, { device: 'd1', t: 2 }, 5] });
    send({ payload: '{' });
    await handled(out, 3);
    await until('the final counts', () => out.statuses.length > 0 && last(out).text === 'readings 3 / rejected 2');
    expect(last(out)).toMatchObject({ fill: 'yellow', text: 'readings 3 / rejected 2' });
  });

  test('with catchRejects the status still counts the reject', async () => {
    const out = await start({ catchRejects: true });
    send({ payload: 'x' });
    await until('a status', () => out.statuses.length > 0);
    expect(last(out)).toMatchObject({ fill: 'yellow', text: 'readings 0 / rejected 1' });
  });
});

describe('close', () => {
  test('close stops the status timer: nothing is pushed after the flow stops', async () => {
    const out = await start();
    const n1 = getNode('n1');
    for (let i = 0; i < 3; i++) send({ payload: { device: 'd1', t: i } });
    await handled(out, 3);
    // The first status was pushed; the latest counts wait for the throttle timer.
    expect(statusCalls(n1).filter((s) => s.text !== undefined)).toHaveLength(1);
    const spy = jest.spyOn(n1, 'status');
    await helper.unload();
    await sleep(700); // past the 500 ms throttle interval
    expect(spy).not.toHaveBeenCalled();
  });

  test('while running, the pending update is pushed by the timer', async () => {
    const out = await start();
    const n1 = getNode('n1');
    for (let i = 0; i < 3; i++) send({ payload: { device: 'd1', t: i } });
    await handled(out, 3);
    await until('the pending status', () => statusCalls(n1).some((s) => s.text === 'readings 3 / rejected 0'));
  });
});
