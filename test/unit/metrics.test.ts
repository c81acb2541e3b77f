/**
 * runtime/metrics.ts without the runtime: the hook handlers (FlowCounters) on Node-RED's send and
 * receive events, the same handlers installed as real hooks in a Node-RED runtime
 * (node-red-node-test-helper) around thingwire-normalise, the device gauges over a real registry
 * file, and the API key check of GET /api/v1/metrics.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Gauge } from 'prom-client';
import normaliseNode from '../../nodes/normalise/normalise';
import { openRegistry } from '../../nodes/lib/registry/registry';
import { checkReadKey, FlowCounters, HOOK_LABEL, MAX_TYPES, OTHER, RuntimeMetrics, type HooksApi, type SendEventLike } from '../../runtime/metrics';
import { TAB, getNode, helper, positioned, record, settle, until, useHelper, withCatalogue, type NodeMsg } from '../nodes/harness';

// Node-RED's hooks engine: the one the helper's runtime triggers (one module per process).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const hooks = (require('@node-red/util') as { hooks: HooksApi & { has(id: string): boolean } }).hooks;

/** A send event as Node-RED's Node.send builds it: one per message and wire. */
function sendEvent(type: string, wires: string[][], port: number, dest: string, msg: object): SendEventLike {
  return { msg, source: { id: `${type}-1`, port, node: { type, wires } }, destination: { id: dest } };
}

/** Values of one metric of the registry, by their labels as JSON. */
async function values(m: RuntimeMetrics, name: string): Promise<Record<string, number>> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const got = await metric.get();
  return Object.fromEntries(got.values.map((v) => [JSON.stringify(v.labels), v.value]));
}

describe('FlowCounters (the hook handlers)', () => {
  test('a message is counted once per output, whatever its number of wires; receives once per delivery', () => {
    const c = new FlowCounters();
    const wires = [['a', 'b', 'c'], ['r']];
    const m1 = { payload: 1 };
    const m2 = { payload: 2 };
    // Node.send: wire-outer, message-inner; output 0 sends two messages to three wires.
    const events = ['a', 'b', 'c'].flatMap((d) => [sendEvent('function', wires, 0, d, m1), sendEvent('function', wires, 0, d, m2)]);
    c.onSend(events);
    c.onSend([sendEvent('function', wires, 1, 'r', { payload: 3 })]);
    expect(c.sent.get('function')).toBe(3);
    for (const d of ['a', 'b', 'c']) c.onReceive({ msg: m1, destination: { id: d, node: { type: 'debug' } } });
    expect(c.received.get('debug')).toBe(3);
    // Events without a node (nothing to name) are skipped, never thrown on.
    c.onSend([{ msg: {}, source: { id: 'x', port: 0 }, destination: { id: 'y' } }]);
    c.onReceive({ msg: {}, destination: { id: 'y' } });
    expect([...c.sent.values()]).toEqual([3]);
  });

  test('a group from thingwire-mqtt-in counts as the messages it carries, sent and received', () => {
    const c = new FlowCounters();
    const group = { mqttGroup: true, payload: [{ topic: 't', payload: 'a' }, { topic: 't', payload: 'b' }, { topic: 't', payload: 'c' }] };
    c.onSend([sendEvent('thingwire-mqtt-in', [['n']], 0, 'n', group)]);
    c.onReceive({ msg: group, destination: { id: 'n', node: { type: 'thingwire-normalise' } } });
    // Not a group: a batch of readings, a group mark without an array, an empty group.
    c.onReceive({ msg: { payload: [1, 2, 3] }, destination: { id: 'n', node: { type: 'thingwire-normalise' } } });
    c.onReceive({ msg: { mqttGroup: true, payload: 'x' }, destination: { id: 'n', node: { type: 'thingwire-normalise' } } });
    c.onReceive({ msg: { mqttGroup: true, payload: [] }, destination: { id: 'n', node: { type: 'thingwire-normalise' } } });
    expect(c.sent.get('thingwire-mqtt-in')).toBe(3);
    expect(c.received.get('thingwire-normalise')).toBe(3 + 1 + 1 + 0);
  });

  test("rejects: msg.rejects counted per code when the sending node set msg.error itself, else 1; others' rejects are not counted again", () => {
    const c = new FlowCounters();
    const w = [['ok'], ['bad']];
    const batch = {
      error: { code: 'invalid_ts', message: 'm', source: 'thingwire-normalise' },
      rejects: [
        { code: 'invalid_ts', message: 'm', index: 0 },
        { code: 'no_metrics', message: 'm', index: 2 },
        { code: 'invalid_ts', message: 'm', index: 3 },
      ],
    };
    c.onSend([sendEvent('thingwire-normalise', w, 1, 'bad', batch)]);
    // The write node's server rejects: msg.error without msg.rejects.
    c.onSend([sendEvent('thingwire-write', w, 1, 'bad', { error: { code: 'server_rejected', message: 'm', source: 'thingwire-write' } })]);
    // A reject of normalise passed on by another Thingwire node, or by a stock node: not counted again.
    c.onSend([sendEvent('thingwire-validate', w, 0, 'ok', batch), sendEvent('function', w, 1, 'bad', batch)]);
    // No string code, or no error: nothing.
    c.onSend([sendEvent('thingwire-validate', w, 1, 'bad', { error: { code: 7, source: 'thingwire-validate' } }), sendEvent('thingwire-validate', w, 1, 'bad', { error: null })]);
    // A code that is not a plain identifier is counted as "other" (label values stay bounded and printable).
    c.onSend([sendEvent('thingwire-device', w, 1, 'bad', { error: { code: 'x y\n', message: 'm', source: 'thingwire-device' } })]);
    expect(c.rejectSeries().sort((a, b) => (a.node_type + a.code).localeCompare(b.node_type + b.code))).toEqual([
      { node_type: 'thingwire-device', code: OTHER, count: 1 },
      { node_type: 'thingwire-normalise', code: 'invalid_ts', count: 2 },
      { node_type: 'thingwire-normalise', code: 'no_metrics', count: 1 },
      { node_type: 'thingwire-write', code: 'server_rejected', count: 1 },
    ]);
    expect(c.sent.get('thingwire-validate')).toBe(3);
  });

  test(`past ${MAX_TYPES} node types the rest are counted as "other"`, () => {
    const c = new FlowCounters();
    for (let i = 0; i < MAX_TYPES + 20; i++) c.onReceive({ msg: {}, destination: { id: 'n', node: { type: `subflow:${i}` } } });
    expect(c.received.size).toBe(MAX_TYPES + 1);
    expect(c.received.get(OTHER)).toBe(20);
    expect(c.received.get('subflow:0')).toBe(1);
  });
});

describe('the hooks in a Node-RED runtime', () => {
  useHelper();
  let metrics: RuntimeMetrics | undefined;
  afterEach(() => {
    metrics?.close();
    metrics = undefined;
  });

  test('thingwire-normalise: sent, received and rejects by code; close() removes the hooks', async () => {
    metrics = new RuntimeMetrics({ processMetrics: false, stores: () => [] });
    metrics.attach(hooks);
    expect(hooks.has(`onSend.${HOOK_LABEL}`) && hooks.has(`onReceive.${HOOK_LABEL}`)).toBe(true);
    expect(() => metrics!.attach(hooks)).toThrow(/already installed/);
    await helper.load(
      [withCatalogue(normaliseNode)],
      positioned([
        TAB,
        { id: 'n1', type: 'thingwire-normalise', z: 'tab1', name: '', v: 1, tsUnit: 'ms', strings: 'tags', topicPrefix: 'devices', wires: [['ok1', 'ok2'], ['bad']] },
        { id: 'ok1', type: 'helper', z: 'tab1' },
        { id: 'ok2', type: 'helper', z: 'tab1' },
        { id: 'bad', type: 'helper', z: 'tab1' },
      ]),
    );
    const ok = record('ok1');
    const bad = record('bad');
    const n1 = getNode('n1');
    n1.receive({ topic: 'devices/d1/telemetry', payload: { temperature: 21.5 } });
    // A batch of three: one good reading, one without metrics, one with a time in the wrong unit.
    n1.receive({ topic: 'devices/d1/telemetry', payload: [{ temperature: 1 }, { fw: '1.0' }, { ts: 1_764_000_000, temperature: 2 }] });
    n1.receive({ topic: 'devices/d1/telemetry', payload: '{"temperature": 21.5' });
    await until('the outputs', () => ok.length === 2 && bad.length === 2);
    await settle();
    const codes = bad.flatMap((m: NodeMsg) => (m.rejects as Array<{ code: string }>).map((r) => r.code)).sort();

    expect(await values(metrics, 'thingwire_node_messages_sent_total')).toEqual({ '{"type":"thingwire-normalise"}': 4 });
    // Three into normalise; out of it two readings to two helpers each, and two rejects to one.
    expect(await values(metrics, 'thingwire_node_messages_received_total')).toEqual({ '{"type":"thingwire-normalise"}': 3, '{"type":"helper"}': 6 });
    const rejects = await values(metrics, 'thingwire_rejects_total');
    const expected: Record<string, number> = {};
    for (const code of codes) {
      const k = JSON.stringify({ node_type: 'thingwire-normalise', code });
      expected[k] = (expected[k] ?? 0) + 1;
    }
    expect(codes).toEqual(['malformed_json', 'no_metrics', 'ts_out_of_range']);
    expect(rejects).toEqual(expected);

    metrics.close();
    expect(hooks.has(`onSend.${HOOK_LABEL}`) || hooks.has(`onReceive.${HOOK_LABEL}`)).toBe(false);
    n1.receive({ topic: 'devices/d1/telemetry', payload: { temperature: 3 } });
    await until('the reading', () => ok.length === 3);
    expect(await values(metrics, 'thingwire_node_messages_sent_total')).toEqual({ '{"type":"thingwire-normalise"}': 4 });
  });
});

describe('device gauges and the text format', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-metrics-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('registered, enabled and streams from a registry; a closed handle does not break the scrape', async () => {
    const reg = openRegistry(path.join(dir, 'registry.json'), { tokenHashCost: 1, saveDelayMs: 0 });
    reg.createDevice({ id: 'a' });
    reg.createDevice({ id: 'b', enabled: false });
    reg.createDevice({ id: 'c' });
    reg.createStream({ id: 's1', device: 'a', schema: { type: 'object' } });
    const m = new RuntimeMetrics({ registry: reg, processMetrics: false, stores: () => [] });
    expect(await values(m, 'thingwire_devices_registered')).toEqual({ '{}': 3 });
    expect(await values(m, 'thingwire_devices_enabled')).toEqual({ '{}': 2 });
    expect(await values(m, 'thingwire_streams_registered')).toEqual({ '{}': 1 });
    const text = await m.text();
    expect(text).toContain('# HELP thingwire_devices_enabled ');
    expect(text).toContain('# TYPE thingwire_devices_enabled gauge\nthingwire_devices_enabled 2\n');
    expect(m.contentType).toMatch(/^text\/plain; .*version=0\.0\.4/);
    await reg.close();
    // A closed handle: the scrape still answers (with the last values), it does not throw.
    await expect(m.text()).resolves.toContain('thingwire_devices_registered 3');
  });

  test('NaN is written as the format spells it (prom-client writes "Nan")', async () => {
    const m = new RuntimeMetrics({ processMetrics: false, stores: () => [] });
    new Gauge({ name: 'thingwire_test_nan', help: 'a gauge that is not a number', registers: [m.registry] }).set(NaN);
    const text = await m.text();
    expect(text).toContain('\nthingwire_test_nan NaN\n');
    expect(text).not.toMatch(/Nan$/m);
  });

  test('process metrics carry the prefix, event-loop lag among them', async () => {
    const m = new RuntimeMetrics({ stores: () => [] });
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(['thingwire_nodejs_eventloop_lag_seconds', 'thingwire_nodejs_eventloop_lag_p99_seconds', 'thingwire_process_resident_memory_bytes', 'thingwire_nodejs_heap_size_used_bytes']));
    expect(names.filter((n) => !n.startsWith('thingwire_'))).toEqual([]);
  });
});

describe('checkReadKey (who may read the metrics)', () => {
  const ADMIN = 'admin-key-0123456789';
  const READ = 'read-key-0123456789ab';

  test('open without keys', () => {
    expect(checkReadKey({}, {})).toBeNull();
    expect(checkReadKey({}, { THINGWIRE_API_KEY: '', THINGWIRE_API_READ_KEY: '' })).toBeNull();
  });

  test('with a key: either key, as a Bearer token or X-API-Key; nothing else', () => {
    const env = { THINGWIRE_API_KEY: ADMIN, THINGWIRE_API_READ_KEY: READ };
    expect(checkReadKey({ authorization: `Bearer ${ADMIN}` }, env)).toBeNull();
    expect(checkReadKey({ authorization: `bearer  ${READ} ` }, env)).toBeNull();
    expect(checkReadKey({ 'x-api-key': READ }, env)).toBeNull();
    expect(checkReadKey({}, env)).toMatchObject({ status: 401, code: 'unauthorized', message: expect.stringContaining('an API key is required') });
    expect(checkReadKey({ authorization: `Basic ${ADMIN}` }, env)).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(checkReadKey({ 'x-api-key': `${READ}x` }, env)).toMatchObject({ status: 401, message: 'wrong API key' });
    expect(checkReadKey({ 'x-api-key': READ }, { THINGWIRE_API_KEY: ADMIN })).toMatchObject({ status: 401 });
    expect(checkReadKey({ 'x-api-key': READ }, { THINGWIRE_API_READ_KEY: READ })).toBeNull();
  });

  test('a key under 16 characters is never accepted', () => {
    expect(checkReadKey({ 'x-api-key': 'short' }, { THINGWIRE_API_KEY: 'short' })).toMatchObject({ status: 503, code: 'not_configured' });
    expect(checkReadKey({ 'x-api-key': 'short' }, { THINGWIRE_API_KEY: 'short', THINGWIRE_API_READ_KEY: READ })).toMatchObject({ status: 401 });
  });
});
