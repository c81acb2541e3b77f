/**
 * thingwire-validate in a real Node-RED runtime (node-red-node-test-helper): schema from the
 * dialog, from msg.schema and from a thingwire-schemas set; parsing, size limit, arrays, options,
 * reject routing (output 2, Catch), done() exactly once, status, and close.
 */
import schemasNode from '../../nodes/schemas/schemas';
import validateNode from '../../nodes/validate/validate';
import { ValidatorEngine } from '../../nodes/validate/engine';
import {
  TAB,
  errorCalls,
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

useHelper();

const NODES = [withCatalogue(validateNode), withCatalogue(schemasNode)];

const READING_SCHEMA = JSON.stringify({
  type: 'object',
  required: ['device', 'metrics'],
  properties: {
    device: { type: 'string' },
    metrics: { type: 'object', properties: { temperature: { type: 'number', maximum: 125 } } },
  },
});

/** A deep copy made in this realm (structuredClone's objects come from the host realm under jest). */
function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

const GOOD = { device: 'd1', metrics: { temperature: 21.5 } };
const TOO_HOT = { device: 'd1', metrics: { temperature: 200 } };

/**
 * The node under test (n1) with its two outputs wired to helper nodes `ok` and `bad`, plus a
 * Complete node (-> `completes`), a Catch node (-> `caught`) and a Status node (-> `statuses`)
 * scoped to it.
 */
function flow(config: Partial<FlowNodeConfig>, extra: FlowNodeConfig[] = []): FlowNodeConfig[] {
  return [
    TAB,
    {
      id: 'n1',
      type: 'thingwire-validate',
      z: 'tab1',
      name: 'validate',
      v: 1,
      property: 'payload',
      schemaSource: 'config',
      schema: READING_SCHEMA,
      arrays: 'items',
      wires: [['ok'], ['bad']],
      ...config,
    },
    { id: 'ok', type: 'helper', z: 'tab1' },
    { id: 'bad', type: 'helper', z: 'tab1' },
    { id: 'complete', type: 'complete', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['completes']] },
    { id: 'completes', type: 'helper', z: 'tab1' },
    { id: 'catch', type: 'catch', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab1' },
    { id: 'status', type: 'status', z: 'tab1', scope: ['n1'], wires: [['statuses']] },
    { id: 'statuses', type: 'helper', z: 'tab1' },
    ...extra,
  ];
}

interface Outputs {
  ok: NodeMsg[];
  bad: NodeMsg[];
  completes: NodeMsg[];
  caught: NodeMsg[];
  statuses: NodeMsg[];
}

async function start(config: Partial<FlowNodeConfig>, extra: FlowNodeConfig[] = []): Promise<Outputs> {
  await helper.load(NODES, positioned(flow(config, extra)));
  return { ok: record('ok'), bad: record('bad'), completes: record('completes'), caught: record('caught'), statuses: record('statuses') };
}

function send(msg: NodeMsg): void {
  getNode('n1').receive(msg);
}

/** Waits until `n` messages have been handled (completed or caught), then lets stragglers arrive. */
async function handled(out: Outputs, n: number): Promise<void> {
  await until(`${n} messages handled`, () => out.completes.length + out.caught.length >= n);
  await settle();
}

const SET = JSON.stringify({
  'pico-w': { type: 'object', required: ['temperature'], properties: { temperature: { type: 'number' } } },
  esp32: { type: 'object', required: ['rssi'] },
  generic: { type: 'object', required: ['device'] },
  broken: { type: 'nope' },
});

function schemaSet(config: Partial<FlowNodeConfig> = {}): FlowNodeConfig {
  return { id: 'set1', type: 'thingwire-schemas', name: 'device types', schemas: SET, defaultKey: '', ...config };
}

describe('schema from the dialog', () => {
  test('a valid payload leaves on output 1, unchanged, and done() is called', async () => {
    const out = await start({});
    send({ payload: clone(GOOD), topic: 'devices/d1/telemetry' });
    await handled(out, 1);
    expect(out.ok).toHaveLength(1);
    expect(out.ok[0].payload).toEqual(GOOD);
    expect(out.ok[0].topic).toBe('devices/d1/telemetry');
    expect(out.ok[0]).not.toHaveProperty('error');
    expect(out.bad).toHaveLength(0);
    expect(out.completes).toHaveLength(1);
    expect(out.caught).toHaveLength(0);
  });

  test('an invalid payload leaves on output 2 with msg.errors and msg.error', async () => {
    const out = await start({});
    send({ payload: clone(TOO_HOT) });
    await handled(out, 1);
    expect(out.ok).toHaveLength(0);
    expect(out.bad).toHaveLength(1);
    const m = out.bad[0];
    expect(m.payload).toEqual(TOO_HOT);
    expect(m.errors).toEqual([
      {
        instancePath: '/metrics/temperature',
        keyword: 'maximum',
        message: 'must be <= 125',
        schemaPath: '#/properties/metrics/properties/temperature/maximum',
        params: { comparison: '<=', limit: 125 },
      },
    ]);
    expect(m.error).toEqual({ code: 'validation_failed', message: '/metrics/temperature must be <= 125 (maximum)', source: 'thingwire-validate' });
    expect(m.rejects).toEqual([{ code: 'validation_failed', message: '/metrics/temperature must be <= 125 (maximum)', details: m.errors }]);
    // A reject is not an error: done() without error, no Catch.
    expect(out.completes).toHaveLength(1);
    expect(out.caught).toHaveLength(0);
  });

  test('several errors are all reported (allErrors defaults to on)', async () => {
    const out = await start({});
    send({ payload: { metrics: { temperature: 'hot' } } });
    await handled(out, 1);
    const errors = out.bad[0].errors as Array<{ instancePath: string; keyword: string }>;
    expect(errors.map((e) => `${e.instancePath} ${e.keyword}`).sort()).toEqual([' required', '/metrics/temperature type']);
  });

  test('allErrors off reports the first error only', async () => {
    const out = await start({ allErrors: false });
    send({ payload: { metrics: { temperature: 'hot' } } });
    await handled(out, 1);
    expect(out.bad[0].errors).toHaveLength(1);
  });

  test('"false" from the editor is read as false for allErrors', async () => {
    const out = await start({ allErrors: 'false' });
    send({ payload: { metrics: { temperature: 'hot' } } });
    await handled(out, 1);
    expect(out.bad[0].errors).toHaveLength(1);
  });

  test('an empty schema accepts everything', async () => {
    const out = await start({ schema: '  ' });
    send({ payload: { anything: [1, 2] } });
    send({ payload: 5 });
    await handled(out, 2);
    expect(out.ok.map((m) => m.payload)).toEqual([{ anything: [1, 2] }, 5]);
  });

  test('another property than payload is validated and written back', async () => {
    const out = await start({ property: 'data.reading', schema: '{"type":"object","required":["device"]}' });
    send({ payload: 'not validated', data: { reading: '{"device":"d1"}' } });
    send({ payload: 'not validated', data: { reading: { other: 1 } } });
    await handled(out, 2);
    expect(out.ok).toHaveLength(1);
    expect(out.ok[0].data).toEqual({ reading: { device: 'd1' } });
    expect(out.ok[0].payload).toBe('not validated');
    expect(out.bad).toHaveLength(1);
    expect(out.bad[0].data).toEqual({ reading: { other: 1 } });
  });
});

describe('raw payloads', () => {
  test('a JSON string payload is parsed, and the parsed value leaves on output 1', async () => {
    const out = await start({});
    send({ payload: JSON.stringify(GOOD) });
    await handled(out, 1);
    expect(out.ok[0].payload).toEqual(GOOD);
  });

  test('a JSON Buffer payload is parsed', async () => {
    const out = await start({});
    send({ payload: Buffer.from(JSON.stringify(GOOD)) });
    await handled(out, 1);
    expect(out.ok[0].payload).toEqual(GOOD);
  });

  test('a string payload that is invalid leaves on output 2 parsed', async () => {
    const out = await start({});
    send({ payload: JSON.stringify(TOO_HOT) });
    await handled(out, 1);
    expect(out.bad[0].payload).toEqual(TOO_HOT);
  });

  test('malformed JSON leaves on output 2 with malformed_json and the original payload', async () => {
    const out = await start({});
    send({ payload: '{"device": "d1", ' });
    send({ payload: Buffer.from('temperature=21.5') });
    await handled(out, 2);
    expect(out.ok).toHaveLength(0);
    expect(out.bad).toHaveLength(2);
    expect(out.bad[0].payload).toBe('{"device": "d1", ');
    expect((out.bad[0].error as { code: string }).code).toBe('malformed_json');
    expect((out.bad[0].error as { source: string }).source).toBe('thingwire-validate');
    expect(out.bad[0].errors).toEqual([]);
    expect((out.bad[0].rejects as Array<{ code: string }>).map((r) => r.code)).toEqual(['malformed_json']);
    expect(Buffer.isBuffer(out.bad[1].payload)).toBe(true);
    expect((out.bad[1].error as { code: string }).code).toBe('malformed_json');
    expect(out.completes).toHaveLength(2);
  });

  test('an oversize payload leaves on output 2 with payload_too_large', async () => {
    const out = await start({ maxBytes: 64 });
    const small = JSON.stringify(GOOD);
    const big = JSON.stringify({ ...GOOD, note: 'x'.repeat(100) });
    send({ payload: small });
    send({ payload: big });
    send({ payload: Buffer.from(big) });
    await handled(out, 3);
    expect(out.ok).toHaveLength(1);
    expect(out.bad.map((m) => (m.error as { code: string }).code)).toEqual(['payload_too_large', 'payload_too_large']);
    expect(out.bad[0].payload).toBe(big);
    expect((out.bad[0].rejects as Array<{ details: unknown }>)[0].details).toEqual({ bytes: big.length, maxBytes: 64 });
  });

  test('maxBytes from the editor as a string', async () => {
    const out = await start({ maxBytes: '10' });
    send({ payload: JSON.stringify(GOOD) });
    await handled(out, 1);
    expect((out.bad[0].error as { code: string }).code).toBe('payload_too_large');
  });
});

describe('arrays', () => {
  test('each element is validated: valid ones on output 1, invalid ones on output 2 with /index paths', async () => {
    const out = await start({});
    const items = [GOOD, TOO_HOT, { ...GOOD, device: 'd2' }, { metrics: {} }];
    send({ payload: clone(items), topic: 't' });
    await handled(out, 1);
    expect(out.ok).toHaveLength(1);
    expect(out.ok[0].payload).toEqual([items[0], items[2]]);
    expect(out.ok[0].topic).toBe('t');
    expect(out.bad).toHaveLength(1);
    const m = out.bad[0];
    expect(m.payload).toEqual([items[1], items[3]]);
    const errors = m.errors as Array<{ instancePath: string; keyword: string }>;
    expect(errors.map((e) => [e.instancePath, e.keyword])).toEqual([
      ['/1/metrics/temperature', 'maximum'],
      ['/3', 'required'],
    ]);
    expect((m.rejects as Array<{ index: number; code: string }>).map((r) => [r.index, r.code])).toEqual([
      [1, 'validation_failed'],
      [3, 'validation_failed'],
    ]);
    expect(m.error).toEqual({ code: 'validation_failed', message: '/metrics/temperature must be <= 125 (maximum)', source: 'thingwire-validate' });
    // One input message, one done().
    expect(out.completes).toHaveLength(1);
  });

  test('the two outputs carry separate message objects', async () => {
    const out = await start({});
    send({ payload: [GOOD, TOO_HOT] });
    await handled(out, 1);
    expect(out.ok[0]).not.toBe(out.bad[0]);
    expect(out.ok[0]._msgid).toBe(out.bad[0]._msgid);
  });

  test('all valid: the whole array on output 1, nothing on output 2', async () => {
    const out = await start({});
    send({ payload: JSON.stringify([GOOD, GOOD]) });
    await handled(out, 1);
    expect(out.ok[0].payload).toEqual([GOOD, GOOD]);
    expect(out.bad).toHaveLength(0);
  });

  test('all invalid: nothing on output 1', async () => {
    const out = await start({});
    send({ payload: [TOO_HOT, {}] });
    await handled(out, 1);
    expect(out.ok).toHaveLength(0);
    expect(out.bad[0].payload).toEqual([TOO_HOT, {}]);
  });

  test('an empty array is valid', async () => {
    const out = await start({});
    send({ payload: [] });
    await handled(out, 1);
    expect(out.ok[0].payload).toEqual([]);
  });

  test('arrays: whole validates the array against the schema as one value', async () => {
    const out = await start({ arrays: 'whole', schema: '{"type":"array","maxItems":2}' });
    send({ payload: [1, 2] });
    send({ payload: [1, 2, 3] });
    await handled(out, 2);
    expect(out.ok.map((m) => m.payload)).toEqual([[1, 2]]);
    expect(out.bad[0].payload).toEqual([1, 2, 3]);
    expect((out.bad[0].errors as Array<{ instancePath: string; keyword: string }>)[0]).toMatchObject({ instancePath: '', keyword: 'maxItems' });
  });
});

describe('options', () => {
  const NUMBERS = '{"type":"object","properties":{"t":{"type":"number"},"on":{"type":"boolean"},"unit":{"type":"string","default":"C"}}}';

  test('coerceTypes turns "21.5" into 21.5 in the message that leaves', async () => {
    const out = await start({ schema: NUMBERS, coerceTypes: true });
    send({ payload: { t: '21.5', on: 'false' } });
    send({ payload: '{"t":"7"}' });
    await handled(out, 2);
    expect(out.ok.map((m) => m.payload)).toEqual([{ t: 21.5, on: false }, { t: 7 }]);
  });

  test('without coerceTypes "21.5" is invalid', async () => {
    const out = await start({ schema: NUMBERS });
    send({ payload: { t: '21.5' } });
    await handled(out, 1);
    expect(out.ok).toHaveLength(0);
    expect((out.bad[0].errors as Array<{ keyword: string }>)[0].keyword).toBe('type');
    expect(out.bad[0].payload).toEqual({ t: '21.5' });
  });

  test('coerceTypes from the editor as "true"', async () => {
    const out = await start({ schema: NUMBERS, coerceTypes: 'true' });
    send({ payload: { t: '1' } });
    await handled(out, 1);
    expect(out.ok[0].payload).toEqual({ t: 1 });
  });

  // Regression, fixed (was: engine.ts validate/validateItems): a scalar at the root of what is validated (the whole
  // payload, or each element of an array) is coerced by ajv in a local variable only, so it leaves
  // on output 1 as the string the schema said must be a number.
  test('coerceTypes on an array of scalar strings sends numbers on output 1', async () => {
    const out = await start({ schema: '{"type":"number"}', coerceTypes: true });
    send({ payload: ['21.5', '22', 'warm'] });
    await handled(out, 1);
    expect(out.bad[0].payload).toEqual(['warm']);
    expect(out.ok[0].payload).toEqual([21.5, 22]);
  });

  test('coerceTypes on a scalar payload sends the number on output 1', async () => {
    const out = await start({ schema: '{"type":"number"}', coerceTypes: true });
    send({ payload: '"21.5"' });
    await handled(out, 1);
    expect(out.ok[0].payload).toBe(21.5);
  });

  test('useDefaults fills in defaults', async () => {
    const out = await start({ schema: NUMBERS, useDefaults: true });
    send({ payload: { t: 1 } });
    await handled(out, 1);
    expect(out.ok[0].payload).toEqual({ t: 1, unit: 'C' });
  });

  test('coerceTypes in each element of an array', async () => {
    const out = await start({ schema: NUMBERS, coerceTypes: true });
    send({ payload: [{ t: '1' }, { t: 'x' }, { t: '3' }] });
    await handled(out, 1);
    expect(out.ok[0].payload).toEqual([{ t: 1 }, { t: 3 }]);
    expect(out.bad[0].payload).toEqual([{ t: 'x' }]);
  });
});

describe('schema from msg.schema', () => {
  const SCHEMA = { type: 'object', required: ['device'] };

  test('each message is validated against its own schema', async () => {
    const out = await start({ schemaSource: 'msg' });
    send({ payload: { device: 'd1' }, schema: SCHEMA });
    send({ payload: { other: 1 }, schema: SCHEMA });
    send({ payload: 5, schema: { type: 'number' } });
    await handled(out, 3);
    expect(out.ok.map((m) => m.payload)).toEqual([{ device: 'd1' }, 5]);
    expect(out.bad.map((m) => m.payload)).toEqual([{ other: 1 }]);
  });

  test('JSON text in msg.schema works too', async () => {
    const out = await start({ schemaSource: 'msg' });
    send({ payload: { device: 'd1' }, schema: JSON.stringify(SCHEMA) });
    await handled(out, 1);
    expect(out.ok).toHaveLength(1);
  });

  test('the same schema in every message is compiled once', async () => {
    const compile = jest.spyOn(ValidatorEngine.prototype, 'compile');
    try {
      const out = await start({ schemaSource: 'msg' });
      for (let i = 0; i < 5; i++) send({ payload: { device: `d${i}` }, schema: JSON.parse(JSON.stringify(SCHEMA)) as object });
      send({ payload: 1, schema: { type: 'number' } });
      await handled(out, 6);
      expect(out.ok).toHaveLength(6);
      expect(compile).toHaveBeenCalledTimes(2);
    } finally {
      compile.mockRestore();
    }
  });

  test('the dialog schema is ignored when the source is msg.schema', async () => {
    const out = await start({ schemaSource: 'msg', schema: '{"type":"string"}' });
    send({ payload: { device: 'd1' }, schema: SCHEMA });
    await handled(out, 1);
    expect(out.ok).toHaveLength(1);
  });

  test('no msg.schema is schema_not_found on output 2', async () => {
    const out = await start({ schemaSource: 'msg' });
    send({ payload: { device: 'd1' } });
    await handled(out, 1);
    expect(out.ok).toHaveLength(0);
    expect(out.bad[0].error).toEqual({ code: 'schema_not_found', message: 'msg.schema is not set', source: 'thingwire-validate' });
    expect(out.completes).toHaveLength(1);
  });

  test('an invalid msg.schema is schema_invalid on output 2, and later messages still work', async () => {
    const out = await start({ schemaSource: 'msg' });
    send({ payload: {}, schema: { type: 'nope' } });
    send({ payload: {}, schema: '{not json' });
    send({ payload: { device: 'd1' }, schema: SCHEMA });
    await handled(out, 3);
    expect(out.bad.map((m) => (m.error as { code: string }).code)).toEqual(['schema_invalid', 'schema_invalid']);
    expect(out.ok).toHaveLength(1);
    expect(out.caught).toHaveLength(0);
  });

  // Regression, fixed (was: engine.ts compile, see test/unit/validate-engine.test.ts): after an msg.schema with an
  // $id fails to compile, the corrected schema with that $id throws ajv's raw Error: the message
  // goes to Catch as an error instead of being validated, until the flow is redeployed.
  test('a corrected msg.schema with the same $id as a broken one is used', async () => {
    const out = await start({ schemaSource: 'msg' });
    const id = 'https://example.com/reading.json';
    send({ payload: {}, schema: { $id: id, type: 'object', required: 'device' } });
    send({ payload: { device: 'd1' }, schema: { $id: id, type: 'object', required: ['device'] } });
    await handled(out, 2);
    expect(out.caught).toHaveLength(0);
    expect(out.bad.map((m) => (m.error as { code: string }).code)).toEqual(['schema_invalid']);
    expect(out.ok.map((m) => m.payload)).toEqual([{ device: 'd1' }]);
  });
});

describe('schema from a thingwire-schemas set', () => {
  test('the schema is looked up by msg.device.type (the default key property)', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet()]);
    send({ payload: { temperature: 20 }, device: { id: 'd1', type: 'pico-w' } });
    send({ payload: { temperature: 'x' }, device: { id: 'd1', type: 'pico-w' } });
    send({ payload: { rssi: -60 }, device: { id: 'd2', type: 'esp32' } });
    send({ payload: { temperature: 20 }, device: { id: 'd2', type: 'esp32' } });
    await handled(out, 4);
    expect(out.ok.map((m) => m.payload)).toEqual([{ temperature: 20 }, { rssi: -60 }]);
    expect(out.bad.map((m) => (m.errors as Array<{ keyword: string }>)[0].keyword)).toEqual(['type', 'required']);
  });

  test('a custom key property', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1', keyProperty: 'stream' }, [schemaSet()]);
    send({ payload: { rssi: 1 }, stream: 'esp32' });
    await handled(out, 1);
    expect(out.ok).toHaveLength(1);
  });

  test('an unknown key without a default key is schema_not_found', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet()]);
    send({ payload: { temperature: 20 }, device: { id: 'd1', type: 'arduino' } });
    send({ payload: { temperature: 20 }, device: { id: 'd1' } });
    send({ payload: { temperature: 20 }, device: { id: 'd1', type: 7 } });
    await handled(out, 3);
    expect(out.ok).toHaveLength(0);
    expect(out.bad.map((m) => m.error)).toEqual([
      { code: 'schema_not_found', message: 'no schema for key "arduino" (msg.device.type) in the schema set', source: 'thingwire-validate' },
      { code: 'schema_not_found', message: 'no schema for key null (msg.device.type) in the schema set', source: 'thingwire-validate' },
      { code: 'schema_not_found', message: 'no schema for key 7 (msg.device.type) in the schema set', source: 'thingwire-validate' },
    ]);
    expect(out.completes).toHaveLength(3);
  });

  test('an unknown or missing key falls back to the default key', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet({ defaultKey: 'generic' })]);
    send({ payload: { device: 'd1' }, device: { type: 'arduino' } });
    send({ payload: { device: 'd1' }, device: { id: 'd1' } });
    send({ payload: { nodevice: 1 }, device: { type: 'arduino' } });
    send({ payload: { temperature: 1 }, device: { type: 'pico-w' } });
    await handled(out, 4);
    expect(out.ok.map((m) => m.payload)).toEqual([{ device: 'd1' }, { device: 'd1' }, { temperature: 1 }]);
    expect((out.bad[0].errors as Array<{ keyword: string }>)[0].keyword).toBe('required');
  });

  // Regression, fixed: validate.ts reads the key with RED.util.getMessageProperty(msg, 'device.type'), which
  // throws a TypeError when msg.device itself is missing. The message then goes to Catch as an
  // error instead of using the default key (or being rejected with schema_not_found).
  test('a message without msg.device uses the default key', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet({ defaultKey: 'generic' })]);
    send({ payload: { device: 'd1' } });
    await handled(out, 1);
    expect(out.caught).toHaveLength(0);
    expect(out.ok.map((m) => m.payload)).toEqual([{ device: 'd1' }]);
  });

  test('a message without msg.device and no default key is schema_not_found on output 2', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet()]);
    send({ payload: { device: 'd1' } });
    await handled(out, 1);
    expect(out.caught).toHaveLength(0);
    expect(out.bad.map((m) => (m.error as { code: string }).code)).toEqual(['schema_not_found']);
  });

  test('a default key that is not in the set does not help', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet({ defaultKey: 'missing' })]);
    send({ payload: {}, device: { type: 'arduino' } });
    await handled(out, 1);
    expect((out.bad[0].error as { code: string }).code).toBe('schema_not_found');
  });

  test('a schema in the set that does not compile rejects its messages with schema_invalid', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet()]);
    send({ payload: {}, device: { type: 'broken' } });
    send({ payload: { temperature: 1 }, device: { type: 'pico-w' } });
    await handled(out, 2);
    expect((out.bad[0].error as { code: string }).code).toBe('schema_invalid');
    expect(out.ok).toHaveLength(1);
  });

  test('each key is compiled once', async () => {
    const compile = jest.spyOn(ValidatorEngine.prototype, 'compile');
    try {
      const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet()]);
      for (let i = 0; i < 3; i++) {
        send({ payload: { temperature: i }, device: { type: 'pico-w' } });
        send({ payload: { rssi: i }, device: { type: 'esp32' } });
      }
      await handled(out, 6);
      expect(out.ok).toHaveLength(6);
      expect(compile).toHaveBeenCalledTimes(2);
    } finally {
      compile.mockRestore();
    }
  });

  // A batch of several devices (msg.devices, as thingwire-device and thingwire-batch send it): before, the key was read
  // from msg.device only, which such a batch has not, so every reading got the default key's schema (or none).
  test('a batch of several devices: each reading is validated with its own device type\'s schema', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet({ defaultKey: 'generic' })]);
    const items = [
      { device: 'p1', temperature: 20 },
      { device: 'e1', rssi: -60 },
      { device: 'p1', rssi: -60 }, // a pico-w reading without temperature
      { device: 'e1', temperature: 20 }, // an esp32 reading without rssi
      { device: 'u1' }, // not in msg.devices: the default key
      { device: 'b1' }, // its type's schema does not compile
      { nodevice: 1 },
    ];
    send({ payload: clone(items), devices: { p1: { id: 'p1', type: 'pico-w' }, e1: { id: 'e1', type: 'esp32' }, b1: { id: 'b1', type: 'broken' } }, topic: 't' });
    await handled(out, 1);
    expect(out.caught).toHaveLength(0);
    expect(out.ok.map((m) => m.payload)).toEqual([[items[0], items[1], items[4]]]);
    expect(out.ok[0].topic).toBe('t');
    expect(out.bad).toHaveLength(1);
    expect(out.bad[0].payload).toEqual([items[2], items[3], items[5], items[6]]);
    expect((out.bad[0].rejects as Array<{ index: number; code: string }>).map((r) => [r.index, r.code])).toEqual([
      [2, 'validation_failed'],
      [3, 'validation_failed'],
      [5, 'schema_invalid'],
      [6, 'validation_failed'],
    ]);
    expect((out.bad[0].errors as Array<{ instancePath: string; keyword: string }>).map((e) => [e.instancePath, e.keyword])).toEqual([
      ['/2', 'required'],
      ['/3', 'required'],
      ['/6', 'required'],
    ]);
    expect(out.completes).toHaveLength(1);
  });

  test('a batch of several devices without a default key: a reading of an unknown type is schema_not_found, the rest go on', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet()]);
    send({ payload: [{ device: 'p1', temperature: 1 }, { device: 'a1', temperature: 1 }], devices: { p1: { id: 'p1', type: 'pico-w' }, a1: { id: 'a1', type: 'arduino' } } });
    await handled(out, 1);
    expect(out.ok.map((m) => m.payload)).toEqual([[{ device: 'p1', temperature: 1 }]]);
    expect(out.bad[0].rejects).toEqual([{ code: 'schema_not_found', message: 'no schema for key "arduino" (msg.device.type) in the schema set', index: 1 }]);
    expect(out.bad[0].error).toEqual({ code: 'schema_not_found', message: 'no schema for key "arduino" (msg.device.type) in the schema set', source: 'thingwire-validate' });
  });

  test('an invalid set is a config error: red status, and messages go to Catch', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet({ schemas: '{"a": 1}' })]);
    const setNode = getNode('set1');
    expect(errorCalls(setNode).map((c) => c.args[0])).toEqual(['schema set is invalid: schema for key "a" must be an object']);
    const n1 = getNode('n1');
    expect(statusCalls(n1)).toEqual([{ fill: 'red', shape: 'ring', text: 'thingwire-validate.status.config-error' }]);
    send({ payload: {}, device: { type: 'a' } });
    await handled(out, 1);
    expect(out.caught).toHaveLength(1);
    expect((out.caught[0].error as { message: string }).message).toContain('schema for key "a" must be an object');
    expect(out.ok).toHaveLength(0);
    expect(out.bad).toHaveLength(0);
  });

  test('no set selected is a config error', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: '' });
    expect(errorCalls(getNode('n1')).map((c) => c.args[0])).toEqual(['thingwire-validate is misconfigured: no schema set selected']);
    send({ payload: {} });
    await handled(out, 1);
    expect((out.caught[0].error as { message: string }).message).toContain('no schema set selected');
  });
});

describe('Catch nodes', () => {
  test('catchRejects: an invalid message goes to output 2 and to Catch with its code', async () => {
    const out = await start({ catchRejects: true });
    send({ payload: clone(TOO_HOT) });
    send({ payload: clone(GOOD) });
    await handled(out, 2);
    expect(out.bad).toHaveLength(1);
    expect(out.caught).toHaveLength(1);
    const c = out.caught[0];
    expect((c.error as { message: string }).message).toBe('RejectedError: validation_failed: /metrics/temperature must be <= 125 (maximum)');
    expect((c.error as { source: { id: string; type: string } }).source).toMatchObject({ id: 'n1', type: 'thingwire-validate' });
    // The reject's own msg.error is kept by the runtime as msg._error.
    expect((c._error as { code: string }).code).toBe('validation_failed');
    expect(c.payload).toEqual(TOO_HOT);
    // The valid one completes; the rejected one ends in done(err), which Catch receives instead.
    expect(out.ok).toHaveLength(1);
    expect(out.completes).toHaveLength(1);
  });

  test('catchRejects: malformed, oversize and array rejects reach Catch too', async () => {
    const out = await start({ catchRejects: 'true', maxBytes: 200 });
    send({ payload: '{oops' });
    send({ payload: 'x'.repeat(300) });
    send({ payload: [GOOD, TOO_HOT] });
    await handled(out, 3);
    expect(out.caught.map((m) => (m._error as { code: string }).code)).toEqual(['malformed_json', 'payload_too_large', 'validation_failed']);
    expect(out.bad).toHaveLength(3);
    expect(out.ok).toHaveLength(1);
    expect(out.completes).toHaveLength(0);
  });

  test('without catchRejects nothing reaches Catch', async () => {
    const out = await start({});
    send({ payload: '{oops' });
    send({ payload: TOO_HOT });
    await handled(out, 2);
    expect(out.caught).toHaveLength(0);
    expect(out.bad).toHaveLength(2);
  });

  test('a bad schema in the dialog: red status, an error at deploy, and every message to Catch via done(err)', async () => {
    const out = await start({ schema: '{"type": "nope"}' });
    const n1 = getNode('n1');
    expect(statusCalls(n1)).toEqual([{ fill: 'red', shape: 'ring', text: 'thingwire-validate.status.config-error' }]);
    expect(translate('thingwire-validate.status.config-error')).toBe('schema error: see the debug sidebar');
    const deployErrors = errorCalls(n1).map((c) => c.args[0]);
    expect(deployErrors).toHaveLength(1);
    expect(deployErrors[0]).toMatch(/^thingwire-validate is misconfigured: schema does not compile: schema is invalid: data\/type must be/);
    send({ payload: GOOD });
    send({ payload: JSON.stringify(TOO_HOT) });
    await handled(out, 2);
    expect(out.caught).toHaveLength(2);
    expect((out.caught[0].error as { message: string }).message).toMatch(/^Error: schema does not compile/);
    expect(out.caught.map((m) => m.payload)).toEqual([GOOD, JSON.stringify(TOO_HOT)]);
    expect(out.ok).toHaveLength(0);
    expect(out.bad).toHaveLength(0);
    expect(out.completes).toHaveLength(0);
  });

  test('a dialog schema that is not JSON is a config error too', async () => {
    const out = await start({ schema: '{"type":' });
    expect(statusCalls(getNode('n1'))[0]).toMatchObject({ fill: 'red' });
    send({ payload: GOOD });
    await handled(out, 1);
    expect((out.caught[0].error as { message: string }).message).toContain('schema is not valid JSON');
  });
});

describe('done() exactly once per message', () => {
  test('valid, invalid, malformed, oversize, mixed arrays and missing schemas each complete once', async () => {
    const out = await start({ maxBytes: 300 });
    const inputs: NodeMsg[] = [
      { payload: GOOD },
      { payload: TOO_HOT },
      { payload: '{bad json' },
      { payload: 'y'.repeat(400) },
      { payload: [GOOD, TOO_HOT, GOOD] },
      { payload: [GOOD] },
      { payload: [TOO_HOT] },
      { payload: Buffer.from(JSON.stringify(GOOD)) },
    ];
    inputs.forEach((m, i) => send({ ...m, seq: i }));
    await handled(out, inputs.length);
    expect(out.completes.map((m) => m.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(out.caught).toHaveLength(0);
  });

  test('with catchRejects every message ends exactly once: done() or done(err)', async () => {
    const out = await start({ catchRejects: true });
    const inputs: NodeMsg[] = [{ payload: GOOD }, { payload: TOO_HOT }, { payload: '{x' }, { payload: [GOOD, TOO_HOT] }];
    inputs.forEach((m, i) => send({ ...m, seq: i }));
    await handled(out, inputs.length);
    expect(out.completes.map((m) => m.seq)).toEqual([0]);
    expect(out.caught.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  test('msg.schema and schema set paths complete once each', async () => {
    const out = await start({ schemaSource: 'set', schemaSet: 'set1' }, [schemaSet()]);
    send({ payload: { temperature: 1 }, device: { type: 'pico-w' }, seq: 0 });
    send({ payload: {}, device: { type: 'pico-w' }, seq: 1 });
    send({ payload: {}, device: { type: 'unknown' }, seq: 2 });
    send({ payload: {}, device: { type: 'broken' }, seq: 3 });
    await handled(out, 4);
    expect(out.completes.map((m) => m.seq)).toEqual([0, 1, 2, 3]);
  });
});

describe('status', () => {
  type Status = { fill?: string; shape?: string; text?: string };
  const last = (out: Outputs): Status => out.statuses[out.statuses.length - 1].status as Status;

  test('no status at deploy (cleared)', async () => {
    await start({});
    expect(statusCalls(getNode('n1'))).toEqual([{}]);
  });

  test('valid messages only: a green dot with the counts', async () => {
    const out = await start({});
    send({ payload: GOOD });
    await handled(out, 1);
    await until('a status', () => out.statuses.length > 0);
    expect(last(out)).toMatchObject({ fill: 'green', shape: 'dot', text: 'valid 1 / invalid 0' });
  });

  test('after rejects: a yellow dot with both counts (throttled, then flushed)', async () => {
    const out = await start({ maxBytes: 100 });
    send({ payload: GOOD });
    send({ payload: GOOD });
    send({ payload: TOO_HOT });
    send({ payload: '{x' });
    send({ payload: [GOOD, TOO_HOT, TOO_HOT] });
    await handled(out, 5);
    await until('the final counts in the status', () => out.statuses.length > 0 && last(out).text === 'valid 3 / invalid 4');
    expect(last(out)).toMatchObject({ fill: 'yellow', shape: 'dot', text: 'valid 3 / invalid 4' });
  });

  test('the status text is the catalogue entry with the counts filled in', async () => {
    const out = await start({});
    send({ payload: GOOD });
    await until('a status', () => out.statuses.length > 0);
    expect(translate('thingwire-validate.status.counts', { valid: 1, invalid: 0 })).toBe('valid 1 / invalid 0');
    expect((out.statuses[0].status as Status).text).toBe('valid 1 / invalid 0');
  });

  // Regression, fixed: for a message that fails validation, validate.ts calls showCounts() before reject()
  // increments `invalid`, so the status pushed (at once, the throttle lets the first through)
  // still reads green "invalid 0". It only catches up with a later message.
  test('the first invalid message turns the status yellow with invalid 1', async () => {
    const out = await start({});
    send({ payload: TOO_HOT });
    await handled(out, 1);
    await sleep(700); // longer than the 500 ms throttle: whatever is pending has been pushed
    expect(out.statuses.length).toBeGreaterThan(0);
    expect(last(out)).toMatchObject({ fill: 'yellow', text: 'valid 0 / invalid 1' });
  });

  // Regression, fixed (was: same cause): with catchRejects, reject() throws before the showCounts() that follows it,
  // so a malformed message never shows in the counts.
  test('with catchRejects, a malformed message is counted in the status', async () => {
    const out = await start({ catchRejects: true });
    send({ payload: '{x' });
    await handled(out, 1);
    await sleep(700);
    expect(out.statuses.length).toBeGreaterThan(0);
    expect(last(out)).toMatchObject({ fill: 'yellow', text: 'valid 0 / invalid 1' });
  });
});

describe('close', () => {
  test('close stops the status timer: nothing is pushed after the flow stops', async () => {
    const out = await start({});
    const n1 = getNode('n1');
    // The first status is pushed at once and starts the throttle timer; the rest wait for it.
    send({ payload: GOOD });
    send({ payload: GOOD });
    send({ payload: GOOD });
    await handled(out, 3);
    // Counts changed after the first push, so an update is pending in the throttle.
    expect(statusCalls(n1).filter((s) => s.text !== undefined)).toHaveLength(1);
    const spy = jest.spyOn(n1, 'status');
    await helper.unload();
    await sleep(700); // past the 500 ms throttle interval
    expect(spy).not.toHaveBeenCalled();
  });

  test('without close the pending update would have been pushed (the check above can fail)', async () => {
    const out = await start({});
    const n1 = getNode('n1');
    send({ payload: GOOD });
    send({ payload: GOOD });
    await handled(out, 2);
    await until('the pending status', () => statusCalls(n1).filter((s) => s.text !== undefined).length === 2);
  });

  test('a redeploy (unload, load) starts from zero counts', async () => {
    let out = await start({});
    send({ payload: GOOD });
    await handled(out, 1);
    await helper.unload();
    out = await start({});
    send({ payload: TOO_HOT });
    send({ payload: GOOD });
    await handled(out, 2);
    await until('the counts', () => out.statuses.some((s) => (s.status as { text?: string }).text === 'valid 1 / invalid 1'));
  });
});
