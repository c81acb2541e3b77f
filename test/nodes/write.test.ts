/**
 * thingwire-write in a real Node-RED runtime (node-red-node-test-helper) against the real embedded
 * DuckDB store in a temp data dir, read back through thingwire-query: Readings, batches, Rollups and
 * Alert events; output 1 and output 2 (msg.error, msg.rejects with indexes); done() exactly once;
 * Catch; hostile names; and an InfluxDB 1.x store that is down: nothing lost, spooled on disk across
 * a redeploy, replayed into a real influxd when it comes back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import queryNode from '../../nodes/query/query';
import storeNode from '../../nodes/store/store';
import writeNode from '../../nodes/write/write';
import type { StoreNode } from '../../nodes/store/config';
import { ACK_PROPERTY, AckWindow } from '../../nodes/lib/ack';
import { FAST_CLONE_HOOK, SHARE_HOOK } from '../../nodes/lib/clone';
import { freePort } from '../support/services';
import { removeDataDir, startFakeHttp, startInfluxV1, type FakeHttp, type InfluxV1Service } from '../support/tsdb';
import {
  TAB,
  eventually,
  errorCalls,
  getNode,
  helper,
  positioned,
  record,
  request,
  setDataDir,
  settle,
  statusCalls,
  until,
  useHelper,
  useTempDirs,
  withCatalogue,
  type FlowNodeConfig,
  type NodeMsg,
} from './harness';

jest.setTimeout(120_000);

useHelper();
const tempDir = useTempDirs('write-nodes');

const NODES = [withCatalogue(storeNode), withCatalogue(writeNode), withCatalogue(queryNode)];
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js') as (RED: never) => void;
// The test helper's RED has no `hooks`; Node-RED's own (the @node-red/util object its Flow routes messages through),
// for the write node that runs with Thingwire's fan-out hooks as in the runtime (see fan-out.test.ts).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { hooks } = require('@node-red/util') as { hooks: { has(id: string): boolean; remove(id: string): void } };
const writeWithHooks = withCatalogue(((RED: object) => (writeNode as unknown as (r: object) => void)(Object.assign(Object.create(RED) as object, { hooks }))) as never);

const T0 = Math.floor((Date.now() - 30 * 60_000) / 60_000) * 60_000;

type Series = { device: string; field: string; points: Array<[number, unknown]> };
type Reject = { code: string; message: string; index?: number };

function reading(device: string, ts: number, metrics: Record<string, unknown>, tags?: Record<string, string>): Record<string, unknown> {
  return tags ? { device, ts, metrics, tags } : { device, ts, metrics };
}

function rollup(device: string, start: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    device,
    metric: 'temperature',
    window: { start, end: start + 60_000, size: 60_000 },
    level: '1m',
    count: 4,
    sum: 86,
    mean: 21.5,
    min: 20,
    max: 23,
    stddev: 1.118,
    first: 20,
    last: 23,
    firstTs: start + 1000,
    lastTs: start + 50_000,
    ...over,
  };
}

function alert(device: string, since: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { key: `too-hot/${device}`, device, rule: 'too-hot', state: 'firing', severity: 'major', value: 31.5, since, metric: 'temperature', acknowledged: false, message: 'temperature 31.5 > 30', ...over };
}

/** A deep copy made in this realm (so toEqual compares plain objects). */
function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

interface Outputs {
  ok: NodeMsg[];
  bad: NodeMsg[];
  qok: NodeMsg[];
  qbad: NodeMsg[];
  completes: NodeMsg[];
  caught: NodeMsg[];
  statuses: NodeMsg[];
}

/** Store `store1`, write node `w1` (outputs ok, bad) with Complete, Catch and Status nodes on it, query node `q1` (qok, qbad). */
function flow(store: Partial<FlowNodeConfig>, write: Partial<FlowNodeConfig> = {}, extra: FlowNodeConfig[] = []): FlowNodeConfig[] {
  return positioned([
    TAB,
    { id: 'store1', type: 'thingwire-store', name: 'store', v: 1, backend: 'embedded', flushInterval: 50, ...store },
    { id: 'w1', type: 'thingwire-write', z: 'tab1', v: 1, store: 'store1', wires: [['ok'], ['bad']], ...write },
    { id: 'q1', type: 'thingwire-query', z: 'tab1', v: 1, store: 'store1', fields: 'temperature', start: '-1h', wires: [['qok'], ['qbad']] },
    { id: 'ok', type: 'helper', z: 'tab1' },
    { id: 'bad', type: 'helper', z: 'tab1' },
    { id: 'qok', type: 'helper', z: 'tab1' },
    { id: 'qbad', type: 'helper', z: 'tab1' },
    { id: 'complete', type: 'complete', z: 'tab1', scope: ['w1'], uncaught: false, wires: [['completes']] },
    { id: 'completes', type: 'helper', z: 'tab1' },
    { id: 'catch', type: 'catch', z: 'tab1', scope: ['w1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab1' },
    { id: 'status', type: 'status', z: 'tab1', scope: ['w1'], wires: [['statuses']] },
    { id: 'statuses', type: 'helper', z: 'tab1' },
    ...extra,
  ]);
}

async function start(store: Partial<FlowNodeConfig> = {}, write: Partial<FlowNodeConfig> = {}, extra: FlowNodeConfig[] = []): Promise<Outputs> {
  await helper.load(NODES, flow(store, write, extra));
  return { ok: record('ok'), bad: record('bad'), qok: record('qok'), qbad: record('qbad'), completes: record('completes'), caught: record('caught'), statuses: record('statuses') };
}

/** A fresh data dir, then the flow. */
async function startEmbedded(write: Partial<FlowNodeConfig> = {}, store: Partial<FlowNodeConfig> = {}): Promise<Outputs> {
  setDataDir(tempDir());
  return start(store, write);
}

function send(msg: NodeMsg): void {
  getNode('w1').receive(msg);
}

/** Waits until `n` messages have ended (done() or done(err)), then lets stragglers arrive. */
async function handled(out: Outputs, n: number): Promise<void> {
  await until(`${n} messages handled`, () => out.completes.length + out.caught.length >= n);
  await settle();
}

/** Queries through q1 until the answer holds at least `want` points in all. */
async function readBack(out: Outputs, payload: Record<string, unknown>, want: number): Promise<Series[]> {
  return eventually(`${want} points from the store`, async () => {
    const r = await request('q1', { payload }, [out.qok, out.qbad]);
    if (r.output !== 0) throw new Error(`query failed: ${JSON.stringify(r.msg.error)}`);
    const series = (r.msg.payload as { series: Series[] }).series;
    return series.reduce((n, s) => n + s.points.length, 0) >= want ? series : undefined;
  });
}

/** One query through q1, answered on output 1. */
async function query(out: Outputs, payload: Record<string, unknown>): Promise<Series[]> {
  const r = await request('q1', { payload }, [out.qok, out.qbad]);
  expect(r.output).toBe(0);
  return (r.msg.payload as { series: Series[] }).series;
}

function storeOf(): StoreNode {
  return getNode('store1') as unknown as StoreNode;
}

/** Waits until the store's writer has nothing buffered, in memory or in flight. */
async function drained(): Promise<void> {
  await eventually('the writer to drain', () => {
    const s = storeOf().service!.stats();
    return s.bufferedLines === 0 && s.memoryBatches === 0 && s.inFlight === 0 ? true : undefined;
  });
}

describe('writing to the embedded store', () => {
  test('a Reading is written, and the message leaves on output 1 as it came', async () => {
    const out = await startEmbedded();
    const payload = reading('d1', T0, { temperature: 21.5, humidity: 40 });
    send({ payload: clone(payload), topic: 'devices/d1/telemetry', device: { id: 'd1' } });
    await handled(out, 1);
    expect(out.ok).toHaveLength(1);
    expect(out.ok[0].payload).toEqual(payload);
    expect(out.ok[0].topic).toBe('devices/d1/telemetry');
    expect(out.ok[0]).not.toHaveProperty('error');
    expect(out.bad).toHaveLength(0);
    expect(out.completes).toHaveLength(1);
    expect(out.caught).toHaveLength(0);

    const series = await readBack(out, { fields: 'temperature,humidity', start: T0, end: T0 + 1 }, 2);
    expect(series).toEqual([
      { device: 'd1', field: 'humidity', points: [[T0, 40]] },
      { device: 'd1', field: 'temperature', points: [[T0, 21.5]] },
    ]);
  });

  test.each([
    ['with', true],
    ['without', false],
  ])('%s the fan-out hooks, a node after it that changes the readings it sends on changes nothing stored', async (_, withHooks) => {
    // With the hooks the points keep the readings' metrics objects until the batch is written (2 s here), and the
    // write node's messages go on as shared ones, so a node that may change them gets a copy; without them Node-RED
    // passes the message itself on, and the points hold copies.
    setDataDir(tempDir());
    const mutate = { id: 'mut', type: 'function', z: 'tab1', func: 'msg.payload[0].metrics.temperature = -999; msg.payload[1].metrics.humidity = -1; return msg;', outputs: 1, wires: [['ok']] };
    const nodes = withHooks ? [withCatalogue(storeNode), writeWithHooks, withCatalogue(queryNode)] : NODES;
    try {
      await helper.load([functionNode, ...nodes] as never, flow({ flushInterval: 2000 }, { wires: [['mut'], ['bad']] }, [mutate]));
      expect(hooks.has(SHARE_HOOK)).toBe(withHooks);
      await changedAfter();
    } finally {
      hooks.remove(FAST_CLONE_HOOK);
      hooks.remove(SHARE_HOOK);
    }
  });

  async function changedAfter(): Promise<void> {
    const out: Outputs = { ok: record('ok'), bad: record('bad'), qok: record('qok'), qbad: record('qbad'), completes: record('completes'), caught: record('caught'), statuses: record('statuses') };
    const batch = [reading('d1', T0, { temperature: 21.5, humidity: 40 }), reading('d1', T0 + 1000, { temperature: 22, humidity: 41 })];
    send({ payload: clone(batch) });
    await handled(out, 1);
    await until('the changed message', () => out.ok.length === 1);
    expect((out.ok[0].payload as Array<{ metrics: Record<string, number> }>).map((r) => r.metrics)).toEqual([
      { temperature: -999, humidity: 40 },
      { temperature: 22, humidity: -1 },
    ]);
    const series = await readBack(out, { fields: 'temperature,humidity', start: T0, end: T0 + 2000 }, 4);
    expect(series).toEqual([
      { device: 'd1', field: 'humidity', points: [[T0, 40], [T0 + 1000, 41]] },
      { device: 'd1', field: 'temperature', points: [[T0, 21.5], [T0 + 1000, 22]] },
    ]);
  }

  test('a batch (array of Readings) is written in one message', async () => {
    const out = await startEmbedded();
    const batch = [0, 1, 2, 3, 4].map((i) => reading(i % 2 ? 'd2' : 'd1', T0 + i * 1000, { temperature: 20 + i }));
    send({ payload: clone(batch) });
    await handled(out, 1);
    expect(out.ok.map((m) => m.payload)).toEqual([batch]);
    const series = await readBack(out, { start: T0, end: T0 + 10_000 }, 5);
    expect(series).toEqual([
      { device: 'd1', field: 'temperature', points: [[T0, 20], [T0 + 2000, 22], [T0 + 4000, 24]] },
      { device: 'd2', field: 'temperature', points: [[T0 + 1000, 21], [T0 + 3000, 23]] },
    ]);
  });

  test('booleans, strings and intFields integers are written with their types', async () => {
    const out = await startEmbedded({ intFields: 'count, rssi' });
    send({ payload: reading('d1', T0, { count: 7, rssi: -60.5, on: true, mode: 'eco "quoted"\nline 2 \\ back' }) });
    await handled(out, 1);
    const series = await readBack(out, { fields: ['count', 'rssi', 'on', 'mode'], start: T0, end: T0 + 1 }, 4);
    expect(series).toEqual([
      { device: 'd1', field: 'count', points: [[T0, 7]] },
      { device: 'd1', field: 'mode', points: [[T0, 'eco "quoted"\nline 2 \\ back']] },
      { device: 'd1', field: 'on', points: [[T0, true]] },
      { device: 'd1', field: 'rssi', points: [[T0, -60.5]] },
    ]);
  });

  test('device metadata from msg.device becomes tags (configured keys only)', async () => {
    const out = await startEmbedded({ deviceTags: 'type, floor' });
    send({ payload: reading('d1', T0, { temperature: 1 }), device: { id: 'd1', type: 'pico-w', floor: 3, secret: 'x' } });
    send({ payload: reading('d1', T0 + 1, { temperature: 2 }), device: { id: 'd1', type: 'esp32', floor: 3 } });
    await handled(out, 2);
    expect(await readBack(out, { start: T0, end: T0 + 10, where: { type: 'pico-w', floor: '3' } }, 1)).toEqual([{ device: 'd1', field: 'temperature', points: [[T0, 1]] }]);
    expect(await query(out, { start: T0, end: T0 + 10, where: { type: 'esp32' } })).toEqual([{ device: 'd1', field: 'temperature', points: [[T0 + 1, 2]] }]);
    expect(await query(out, { start: T0, end: T0 + 10, where: { secret: 'x' } })).toEqual([]);
  });

  test('a Rollup goes to measurement rollup, tagged with metric and level, at window.start', async () => {
    const out = await startEmbedded();
    send({ payload: rollup('d1', T0) });
    send({ payload: rollup('d1', T0, { level: '1h', mean: 99 }) });
    await handled(out, 2);
    const fields = ['count', 'mean', 'min', 'max', 'first_ts', 'last_ts', 'window_ms'];
    const series = await readBack(out, { measurement: 'rollup', fields, start: T0, end: T0 + 1, where: { level: '1m', metric: 'temperature' } }, fields.length);
    expect(series).toEqual([
      { device: 'd1', field: 'count', points: [[T0, 4]] },
      { device: 'd1', field: 'first_ts', points: [[T0, T0 + 1000]] },
      { device: 'd1', field: 'last_ts', points: [[T0, T0 + 50_000]] },
      { device: 'd1', field: 'max', points: [[T0, 23]] },
      { device: 'd1', field: 'mean', points: [[T0, 21.5]] },
      { device: 'd1', field: 'min', points: [[T0, 20]] },
      { device: 'd1', field: 'window_ms', points: [[T0, 60_000]] },
    ]);
    expect(await query(out, { measurement: 'rollup', fields: 'mean', start: T0, end: T0 + 1, where: { level: '1h' } })).toEqual([{ device: 'd1', field: 'mean', points: [[T0, 99]] }]);
  });

  test('an AlertEvent goes to measurement alerts, tagged with rule, severity and key, at since', async () => {
    const out = await startEmbedded();
    send({ payload: alert('d1', T0 + 5000) });
    send({ payload: alert('d1', T0 + 9000, { state: 'resolved', value: 'back to normal', acknowledged: true }) });
    await handled(out, 2);
    const fields = ['state', 'value', 'value_text', 'since', 'acknowledged', 'message'];
    const series = await readBack(out, { measurement: 'alerts', fields, start: T0, end: T0 + 60_000, where: { rule: 'too-hot', severity: 'major', key: 'too-hot/d1' } }, 9);
    expect(series).toEqual([
      { device: 'd1', field: 'acknowledged', points: [[T0 + 5000, false], [T0 + 9000, true]] },
      { device: 'd1', field: 'message', points: [[T0 + 5000, 'temperature 31.5 > 30'], [T0 + 9000, 'temperature 31.5 > 30']] },
      { device: 'd1', field: 'since', points: [[T0 + 5000, T0 + 5000], [T0 + 9000, T0 + 9000]] },
      { device: 'd1', field: 'state', points: [[T0 + 5000, 'firing'], [T0 + 9000, 'resolved']] },
      { device: 'd1', field: 'value', points: [[T0 + 5000, 31.5]] },
      { device: 'd1', field: 'value_text', points: [[T0 + 9000, 'back to normal']] },
    ]);
  });

  test('a mixed array of Readings, Rollups and Alert events', async () => {
    const out = await startEmbedded();
    send({ payload: [reading('d1', T0, { temperature: 5 }), rollup('d1', T0), alert('d1', T0)] });
    await handled(out, 1);
    expect(out.bad).toHaveLength(0);
    await readBack(out, { start: T0, end: T0 + 1 }, 1);
    await readBack(out, { measurement: 'rollup', fields: 'mean', start: T0, end: T0 + 1 }, 1);
    await readBack(out, { measurement: 'alerts', fields: 'state', start: T0, end: T0 + 1 }, 1);
  });

  test('the measurements set in the dialog are used', async () => {
    const out = await startEmbedded({ readingMeasurement: 'sensors', rollupMeasurement: 'agg', alertMeasurement: 'events' });
    send({ payload: [reading('d1', T0, { temperature: 5 }), rollup('d1', T0), alert('d1', T0)] });
    await handled(out, 1);
    await readBack(out, { measurement: 'sensors', start: T0, end: T0 + 1 }, 1);
    await readBack(out, { measurement: 'agg', fields: 'mean', start: T0, end: T0 + 1 }, 1);
    await readBack(out, { measurement: 'events', fields: 'state', start: T0, end: T0 + 1 }, 1);
    expect(await query(out, { start: T0, end: T0 + 1 })).toEqual([]);
  });
});

describe('anomaly scores', () => {
  const score = (metric: string, ts: number, value: number): Record<string, unknown> => ({
    device: 'd1',
    metric,
    ts,
    value,
    score: 0.25,
    anomalous: false,
    expected: value - 0.5,
    lower: value - 2,
    upper: value + 1,
    signal: 'daily',
    learning: false,
  });

  test('with Score fields set, only those are stored', async () => {
    const out = await startEmbedded({ scoreFields: ' score, expected ,lower, upper ' });
    send({ payload: [score('temperature', T0, 21), score('humidity', T0, 40)] });
    await handled(out, 1);
    expect(out.bad).toHaveLength(0);
    expect(out.ok).toHaveLength(1);
    for (const [metric, value] of [['temperature', 21], ['humidity', 40]] as const) {
      const q = { measurement: 'anomaly', where: { metric }, start: T0, end: T0 + 1 };
      await readBack(out, { ...q, fields: 'score,expected,lower,upper' }, 4);
      await drained();
      const all = await query(out, { ...q, fields: 'value,score,expected,lower,upper,anomalous,signal,learning' });
      expect(Object.fromEntries(all.map((x) => [x.field, x.points]))).toEqual({
        score: [[T0, 0.25]],
        expected: [[T0, value - 0.5]],
        lower: [[T0, value - 2]],
        upper: [[T0, value + 1]],
      });
    }
  });

  test('with Band every set, a series stores its band at most that often; score and anomalous every time', async () => {
    const out = await startEmbedded({ scoreFields: 'score, anomalous, expected, lower, upper', bandEvery: '500' });
    // 25 scores a second for 2 s, two metrics; then one more message with an older score (a redelivery).
    const scores = [];
    for (let i = 0; i < 50; i++) for (const m of ['temperature', 'humidity']) scores.push(score(m, T0 + i * 40, 20 + i));
    send({ payload: scores });
    send({ payload: [score('temperature', T0 + 40, 21)] });
    await handled(out, 2);
    expect(out.bad).toHaveLength(0);
    const q = { measurement: 'anomaly', where: { metric: 'temperature' }, start: T0, end: T0 + 2000 };
    await readBack(out, { ...q, fields: 'score' }, 50);
    await drained();
    const all = Object.fromEntries((await query(out, { ...q, fields: 'score,anomalous,expected,lower,upper' })).map((x) => [x.field, x.points.map((p) => p[0])]));
    expect(all.score).toHaveLength(50);
    expect(all.anomalous).toHaveLength(50);
    const kept = [T0, T0 + 40, T0 + 520, T0 + 1040, T0 + 1560]; // every 500 ms from the first; T0 + 40 from the redelivery
    expect(all.expected).toEqual(kept);
    expect(all.lower).toEqual(kept);
    expect(all.upper).toEqual(kept);
  });

  test('with Score every set, a series stores a score at most that often; anomalous ones and the return to normal always; the message goes on whole', async () => {
    const out = await startEmbedded({ scoreFields: 'score, anomalous', scoreEvery: '500' });
    // 25 scores a second for 2 s, two metrics, one anomalous temperature score at T0 + 600; then a redelivery.
    const scores = [];
    for (let i = 0; i < 50; i++) for (const m of ['temperature', 'humidity']) scores.push({ ...score(m, T0 + i * 40, 20 + i), anomalous: m === 'temperature' && i === 15 });
    send({ payload: scores });
    send({ payload: [score('temperature', T0 + 40, 21)] });
    await handled(out, 2);
    expect(out.bad).toHaveLength(0);
    // Every score goes on (to the alert node, the dashboard): the gate only decides what is stored.
    expect((out.ok[0].payload as unknown[]).length).toBe(100);
    const at = async (metric: string, want: number): Promise<number[]> =>
      (await readBack(out, { measurement: 'anomaly', where: { metric }, fields: 'score', start: T0, end: T0 + 2000 }, want))[0].points.map((p) => p[0] - T0);
    await drained();
    // Temperature: every 500 ms from the first, the anomalous one at 600 and the calm one after it at 640, then 500 ms on.
    expect(await at('temperature', 7)).toEqual([0, 40, 520, 600, 640, 1160, 1680]);
    expect(await at('humidity', 4)).toEqual([0, 520, 1040, 1560]);
    const anomalous = await query(out, { measurement: 'anomaly', where: { metric: 'temperature' }, fields: 'anomalous', start: T0, end: T0 + 2000 });
    expect(anomalous[0].points.filter((p) => p[1] === true).map((p) => p[0] - T0)).toEqual([600]);
  });

  test.each(['often', '-1', '2.5'])('a Score every of %p: an error at start and every message ends with it', async (bad) => {
    const out = await startEmbedded({ scoreEvery: bad });
    expect(errorCalls(getNode('w1')).map((c) => c.args[0])).toEqual([`thingwire-write cannot write: Score every is ${bad}, not a whole number of ms (0 or empty: every score)`]);
    send({ payload: score('temperature', T0, 21) });
    await handled(out, 1);
    expect(out.caught).toHaveLength(1);
    expect(out.ok).toHaveLength(0);
  });

  test('with Confirm on, a message whose scores Score every leaves out is confirmed as stored; one refused whole, as refused', async () => {
    const out = await startEmbedded({ scoreFields: 'score', scoreEvery: '1000', confirm: true });
    const acks: number[] = [];
    const win = new AckWindow('write-test', { maxInFlight: 10, timeoutMs: 0, sendAck: (id) => acks.push(id) });
    win.connect();
    try {
      send({ payload: [score('temperature', T0, 21)], [ACK_PROPERTY]: win.track(1, 't') });
      send({ payload: [score('temperature', T0 + 100, 21), score('temperature', T0 + 200, 22)], [ACK_PROPERTY]: win.track(2, 't') }); // both left out
      send({ payload: [{ ...score('temperature', T0 + 300, 21), value: 'hot' }], [ACK_PROPERTY]: win.track(3, 't') }); // refused
      await handled(out, 3);
      await until('three deliveries settled', () => acks.length === 3);
      expect(acks.slice().sort()).toEqual([1, 2, 3]);
      expect(win.stats()).toMatchObject({ inFlight: 0, acknowledged: 3, rejected: 1 });
      expect(out.bad.map((m) => (m.error as { code: string }).code)).toEqual(['invalid_value']);
    } finally {
      win.close();
    }
  });

  test('without Score fields a score stores all of its fields', async () => {
    const out = await startEmbedded();
    send({ payload: score('temperature', T0, 21) });
    await handled(out, 1);
    const all = await readBack(out, { measurement: 'anomaly', fields: 'value,score,expected,lower,upper,anomalous,signal,learning', start: T0, end: T0 + 1 }, 8);
    expect(Object.fromEntries(all.map((x) => [x.field, x.points[0][1]]))).toEqual({
      value: 21,
      score: 0.25,
      expected: 20.5,
      lower: 19,
      upper: 22,
      anomalous: false,
      signal: 'daily',
      learning: false,
    });
  });

  test('a Score fields name that is not a score field: an error at start, a red status, and every message ends with the error', async () => {
    const out = await startEmbedded({ scoreFields: 'score, vaule' });
    const w1 = getNode('w1');
    expect(errorCalls(w1).map((c) => c.args[0])).toEqual([
      'thingwire-write cannot write: Score fields lists vaule, which are not fields of an anomaly score (those are: value, score, anomalous, expected, lower, upper, signal, learning, ttf, probability)',
    ]);
    expect(statusCalls(w1)).toEqual([{ fill: 'red', shape: 'ring', text: 'thingwire-write.status.config-error' }]);
    send({ payload: score('temperature', T0, 21) });
    await handled(out, 1);
    expect(out.caught).toHaveLength(1);
    expect((out.caught[0].error as { message: string }).message).toContain('Score fields lists vaule, which are not fields of an anomaly score');
    expect(out.ok).toHaveLength(0);
    expect(await query(out, { measurement: 'anomaly', fields: 'score', start: T0, end: T0 + 1 })).toEqual([]);
  });

  test.each(['fast', '-5', '1.5'])('a Band every of %p: an error at start and every message ends with it, nothing stored', async (bad) => {
    const out = await startEmbedded({ bandEvery: bad });
    expect(errorCalls(getNode('w1')).map((c) => c.args[0])).toEqual([`thingwire-write cannot write: Band every is ${bad}, not a whole number of ms (0 or empty: every score's band)`]);
    send({ payload: score('temperature', T0, 21) });
    await handled(out, 1);
    expect(out.caught).toHaveLength(1);
    expect(out.ok).toHaveLength(0);
  });
});

describe('hostile names', () => {
  const METRICS = ['temp °C', 'a,b=c d', 'say "hi"', "it's", 'ünïcödé 温度', 'emoji 🌡️🔥', "'; DROP TABLE series; --", '"; DROP TABLE points_float; --', '%_*?$1'];
  const TAG = 'a,b=c "d" \'e\' ü 🔥 ; DROP';
  const TEXT = 'line 1\nline 2 "quoted" \'single\' back\\slash, a=b ünï 😀';

  test('metric names, tag values, string values and measurement names round-trip through write and query', async () => {
    const measurement = 'tele metry,"x" \'y\' ü';
    const out = await startEmbedded({ readingMeasurement: measurement });
    const metrics: Record<string, unknown> = {};
    METRICS.forEach((m, i) => (metrics[m] = i + 0.5));
    metrics.text = TEXT;
    send({ payload: reading('dev-1.a:b_c', T0, metrics, { site: TAG }) });
    await handled(out, 1);
    expect(out.bad).toHaveLength(0);
    const series = await readBack(out, { measurement, fields: [...METRICS, 'text'], devices: 'dev-1.a:b_c', where: { site: TAG }, start: T0, end: T0 + 1 }, METRICS.length + 1);
    const got = Object.fromEntries(series.map((s) => [s.field, s.points]));
    expect(got).toEqual({ ...Object.fromEntries(METRICS.map((m, i) => [m, [[T0, i + 0.5]]])), text: [[T0, TEXT]] });
    expect(series.every((s) => s.device === 'dev-1.a:b_c')).toBe(true);
    // Nothing was executed: the tables still answer.
    expect(await query(out, { measurement, fields: 'text', start: T0, end: T0 + 1 })).toHaveLength(1);
  });

  test('a name that line protocol cannot carry (a newline, a trailing backslash) is rejected on output 2, not written wrong', async () => {
    const out = await startEmbedded();
    send({ payload: reading('d1', T0, { 'new\nline': 1 }) });
    send({ payload: reading('d1', T0, { temperature: 1 }, { site: 'ends with \\' }) });
    await handled(out, 2);
    expect(out.ok).toHaveLength(0);
    expect(out.bad.map((m) => (m.error as { code: string }).code)).toEqual(['invalid_value', 'invalid_value']);
    expect((out.bad[0].rejects as Reject[])[0]).not.toHaveProperty('index');
  });
});

describe('rejects', () => {
  test('a payload that is none of the types goes to output 2 with msg.error and msg.rejects', async () => {
    const out = await startEmbedded();
    send({ payload: { hello: 'world' }, topic: 't' });
    await handled(out, 1);
    expect(out.ok).toHaveLength(0);
    expect(out.bad).toHaveLength(1);
    const m = out.bad[0];
    expect(m.payload).toEqual({ hello: 'world' });
    expect(m.topic).toBe('t');
    const message = 'payload is not a Reading, Rollup, Alert event or anomaly score: "{\\"hello\\":\\"world\\"}"';
    expect(m.error).toEqual({ code: 'not_a_reading', message, source: 'thingwire-write' });
    expect(m.rejects).toEqual([{ code: 'not_a_reading', message }]);
    // A reject is not an error: done() without error.
    expect(out.completes).toHaveLength(1);
    expect(out.caught).toHaveLength(0);
  });

  test('a batch with bad elements: the good ones are written and the message leaves on output 1, the rejects with their indexes on output 2', async () => {
    const out = await startEmbedded();
    const batch = [reading('d1', T0, { temperature: 1 }), 'junk', reading('d1', T0 + 1, {}), reading('d1', T0 + 2, { temperature: 3 }), { metrics: { t: 1 } }];
    send({ payload: clone(batch) });
    await handled(out, 1);
    expect(out.ok).toHaveLength(1);
    expect(out.ok[0].payload).toEqual(batch);
    expect(out.ok[0]).not.toHaveProperty('error');
    expect(out.bad).toHaveLength(1);
    expect(out.bad[0]).not.toBe(out.ok[0]);
    expect(out.bad[0]._msgid).toBe(out.ok[0]._msgid);
    expect((out.bad[0].rejects as Reject[]).map((r) => [r.index, r.code])).toEqual([
      [1, 'not_a_reading'],
      [2, 'no_metrics'],
      [4, 'not_a_reading'],
    ]);
    expect(out.bad[0].error).toMatchObject({ code: 'not_a_reading', source: 'thingwire-write' });
    expect(out.completes).toHaveLength(1);
    expect(await readBack(out, { start: T0, end: T0 + 10 }, 2)).toEqual([{ device: 'd1', field: 'temperature', points: [[T0, 1], [T0 + 2, 3]] }]);
  });

  test('all elements bad: nothing on output 1', async () => {
    const out = await startEmbedded();
    send({ payload: [1, null] });
    await handled(out, 1);
    expect(out.ok).toHaveLength(0);
    expect((out.bad[0].rejects as Reject[]).map((r) => r.index)).toEqual([0, 1]);
  });

  // Regression, fixed (was: write.ts line 73): rejects from encodeBatch carry the index of the point in
  // mapped.points, not of the element in msg.payload. Here element 0 fails mapping, so the point
  // of element 1 is points[0] and its encoding reject says index 0: two rejects for index 0,
  // none for index 1. Fix: toPoints (points.ts) also returns `indexes: number[]` (the payload
  // index of each point, pushed next to each points.push), and write.ts line 73 uses
  // `mapped.batch ? mapped.indexes[r.index] : undefined`.
  test('a point that cannot be encoded is reported with its index in the payload', async () => {
    const out = await startEmbedded();
    send({ payload: ['junk', reading('d1', T0, { 'bad\nname': 1 }), reading('d1', T0, { temperature: 1 })] });
    await handled(out, 1);
    const rejects = (out.bad[0].rejects as Reject[]).map((r) => [r.index, r.code] as const);
    expect([...rejects].sort((a, b) => (a[0] ?? -1) - (b[0] ?? -1))).toEqual([
      [0, 'not_a_reading'],
      [1, 'invalid_value'],
    ]);
  });

  test('the status says how many could not be mapped', async () => {
    const out = await startEmbedded();
    send({ payload: [1, 2] });
    await handled(out, 1);
    await until('the unmappable status', () => out.statuses.some((s) => (s.status as { text?: string }).text === '2 could not be mapped'));
    expect(out.statuses.find((s) => (s.status as { text?: string }).text === '2 could not be mapped')!.status).toMatchObject({ fill: 'yellow', shape: 'dot', text: '2 could not be mapped' });
  });

  test('catchRejects: a reject goes to output 2 and to Catch with its code', async () => {
    const out = await startEmbedded({ catchRejects: true });
    send({ payload: 'junk', seq: 1 });
    send({ payload: reading('d1', T0, { temperature: 1 }), seq: 2 });
    send({ payload: [reading('d1', T0 + 1, { temperature: 2 }), 5], seq: 3 });
    await handled(out, 3);
    expect(out.bad.map((m) => m.seq)).toEqual([1, 3]);
    expect(out.ok.map((m) => m.seq)).toEqual([2, 3]);
    expect(out.completes.map((m) => m.seq)).toEqual([2]);
    expect(out.caught.map((m) => m.seq)).toEqual([1, 3]);
    const c = out.caught[0];
    expect((c.error as { message: string }).message).toBe('RejectedError: not_a_reading: payload is not a Reading, Rollup, Alert event or anomaly score: "junk"');
    expect((c.error as { source: { id: string; type: string } }).source).toMatchObject({ id: 'w1', type: 'thingwire-write' });
    expect((c._error as { code: string }).code).toBe('not_a_reading');
    expect((out.caught[1].error as { message: string }).message).toBe('RejectedError: not_a_reading: payload is not a Reading, Rollup, Alert event or anomaly score: "5"');
    // The good points of the mixed message are written all the same.
    expect(await readBack(out, { start: T0, end: T0 + 10 }, 2)).toEqual([{ device: 'd1', field: 'temperature', points: [[T0, 1], [T0 + 1, 2]] }]);
  });

  test('catchRejects "false" from the editor: nothing reaches Catch', async () => {
    const out = await startEmbedded({ catchRejects: 'false' });
    send({ payload: 'junk' });
    await handled(out, 1);
    expect(out.caught).toHaveLength(0);
    expect(out.bad).toHaveLength(1);
  });

  describe('lines the server refuses', () => {
    let fake: FakeHttp;
    beforeEach(async () => {
      fake = await startFakeHttp();
    });
    afterEach(async () => {
      await fake.close();
    });

    test('leave on output 2 of the first write node of the store (only), with the server message, and reach Catch', async () => {
      setDataDir(tempDir());
      const second: FlowNodeConfig[] = [
        { id: 'w2', type: 'thingwire-write', z: 'tab1', store: 'store1', wires: [['ok2'], ['bad2']] },
        { id: 'ok2', type: 'helper', z: 'tab1' },
        { id: 'bad2', type: 'helper', z: 'tab1' },
      ];
      const error = 'partial write: field type conflict: input field "temperature" on measurement "telemetry" is type string, already exists as type float dropped=1';
      fake.answer({ status: 400, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ error }) });
      const out = await start({ backend: 'influxdb-v1', url: fake.url, db: 'tw', flushInterval: 50 }, {}, second);
      const bad2 = record('bad2');
      send({ payload: reading('d1', T0, { temperature: 'hot' }) });
      await until('the server reject on output 2', () => out.bad.length >= 1);
      await until('the reject reported to Catch', () => out.caught.length >= 1);
      await settle();
      expect(fake.requests.filter((r) => r.url.startsWith('/write'))).toHaveLength(1);
      expect(out.bad).toHaveLength(1);
      const m = out.bad[0];
      expect(m.payload).toEqual([`telemetry,device=d1 temperature="hot" ${T0}`]);
      expect(m.error).toEqual({
        code: 'server_rejected',
        message: `influxdb-v1 ${fake.url} db=tw rejected 1 lines (HTTP 400): ${error}`,
        source: 'thingwire-write',
        status: 400,
        serverMessage: error,
      });
      expect(bad2).toHaveLength(0);
      expect(out.caught).toHaveLength(1);
      expect((out.caught[0].error as { message: string }).message).toBe(`1 points were not written: ${(m.error as { message: string }).message}`);
      // The message itself was queued and completed normally, before the server answered.
      expect(out.ok).toHaveLength(1);
      expect(out.completes).toHaveLength(1);
      await until('the rejected count in the status', () => out.statuses.some((s) => (s.status as { text?: string }).text === 'written 0, buffered 0'));
      expect(out.statuses.find((s) => (s.status as { text?: string }).text === 'written 0, buffered 0')!.status).toMatchObject({ fill: 'yellow', shape: 'dot' });
    });
  });

  // Regression, fixed (was: points.ts line 83, see test/unit/points.test.ts): an intFields value past the 64-bit range
  // becomes an integer line the store refuses, and the writer rejects the whole batch that line is
  // in: the other messages' good points of the same batch are lost with it.
  test('an integer metric out of range does not take the good points of other messages down with it', async () => {
    const out = await startEmbedded({ intFields: 'n' }, { flushInterval: 200 });
    send({ payload: reading('d1', T0, { n: 1 }) });
    send({ payload: reading('d1', T0 + 1, { n: 1e19 }) });
    send({ payload: reading('d1', T0 + 2, { n: 3 }) });
    await handled(out, 3);
    await drained();
    const series = await query(out, { fields: 'n', start: T0, end: T0 + 10 });
    expect(series.flatMap((s) => s.points.map((p) => p[0]))).toEqual(expect.arrayContaining([T0, T0 + 2]));
  });
  // Regression, fixed (was: points.ts requireTs, see test/unit/points.test.ts): a time no store can hold (here 1e16 ms,
  // past year 300000) is mapped and queued; the store refuses the line with 400 and the writer rejects
  // the whole batch it sits in, so the good points other messages put in the same batch are lost.
  test('a Reading whose time no store can hold is rejected on output 2 and does not take other messages down', async () => {
    const out = await startEmbedded({}, { flushInterval: 200 });
    send({ payload: reading('d1', T0, { temperature: 1 }), seq: 0 });
    send({ payload: reading('d1', 1e16, { temperature: 2 }), seq: 1 });
    send({ payload: reading('d1', T0 + 2, { temperature: 3 }), seq: 2 });
    await handled(out, 3);
    await drained();
    expect(await query(out, { start: T0, end: T0 + 10 })).toEqual([{ device: 'd1', field: 'temperature', points: [[T0, 1], [T0 + 2, 3]] }]);
    expect(out.bad.map((m) => m.seq)).toEqual([1]);
    expect((out.bad[0].error as { code: string }).code).toBe('ts_out_of_range');
  });
});

describe('done() exactly once per message', () => {
  test('readings, batches, rollups, alerts, rejects and mixed batches each complete once', async () => {
    const out = await startEmbedded();
    const inputs: NodeMsg[] = [
      { payload: reading('d1', T0, { temperature: 1 }) },
      { payload: [reading('d1', T0 + 1, { temperature: 2 }), reading('d2', T0 + 1, { temperature: 3 })] },
      { payload: rollup('d1', T0) },
      { payload: alert('d1', T0) },
      { payload: 'junk' },
      { payload: [reading('d1', T0 + 2, { temperature: 4 }), null] },
      { payload: [] },
      { payload: reading('d1', T0 + 3, { temperature: Number.NaN }) },
    ];
    inputs.forEach((m, i) => send({ ...m, seq: i }));
    await handled(out, inputs.length);
    expect(out.completes.map((m) => m.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(out.caught).toHaveLength(0);
    expect(out.ok.map((m) => m.seq)).toEqual([0, 1, 2, 3, 5, 6]);
    expect(out.bad.map((m) => m.seq)).toEqual([4, 5, 7]);
  });
});

describe('status', () => {
  test('after a write: a green dot with the written and buffered counts', async () => {
    const out = await startEmbedded();
    send({ payload: [reading('d1', T0, { temperature: 1 }), reading('d1', T0 + 1, { temperature: 2 }), reading('d1', T0 + 2, { temperature: 3 })] });
    await handled(out, 1);
    await until('the written count', () => out.statuses.some((s) => (s.status as { text?: string }).text === 'written 3, buffered 0'));
    expect(out.statuses.find((s) => (s.status as { text?: string }).text === 'written 3, buffered 0')!.status).toMatchObject({ fill: 'green', shape: 'dot', text: 'written 3, buffered 0' });
  });
});

describe('pass on when durable', () => {
  test('the message leaves output 1 only once its points are in the store: a query right after finds them', async () => {
    // A long flush interval: queued now, written up to 1.5 s later.
    const out = await startEmbedded({ passOn: 'durable' }, { flushInterval: 1500 });
    const t0 = Date.now();
    send({ payload: [reading('dd', T0, { temperature: 1 }), reading('dd', T0 + 1000, { temperature: 2 })], topic: 'x' });
    await settle();
    expect(out.ok).toHaveLength(0);
    expect(out.completes).toHaveLength(0);
    await until('output 1', () => out.ok.length === 1, 10_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    // Read at once, not polled: the points were written before the message went on.
    const series = await query(out, { devices: 'dd', start: T0, end: T0 + 2000 });
    expect(series).toEqual([{ device: 'dd', field: 'temperature', points: [[T0, 1], [T0 + 1000, 2]] }]);
    await handled(out, 1);
    expect(out.completes).toHaveLength(1);
    expect(out.bad).toHaveLength(0);
  });

  test('a partly refused batch: the refused part leaves output 2 at once, the rest output 1 once stored', async () => {
    const out = await startEmbedded({ passOn: 'durable' }, { flushInterval: 800 });
    send({ payload: [reading('dp', T0, { temperature: 3 }), { nope: true }] });
    await until('the reject', () => out.bad.length === 1);
    expect(out.ok).toHaveLength(0);
    expect((out.bad[0].rejects as Reject[]).map((r) => [r.code, r.index])).toEqual([['not_a_reading', 1]]);
    await until('output 1', () => out.ok.length === 1, 10_000);
    expect(await query(out, { devices: 'dp', start: T0, end: T0 + 1 })).toEqual([{ device: 'dp', field: 'temperature', points: [[T0, 3]] }]);
    await handled(out, 1);
  });

  test('InfluxDB down: the points go to the disk spool, which makes them durable, so the message goes on', async () => {
    setDataDir(tempDir());
    const down = `http://127.0.0.1:${await freePort()}`;
    const out = await start({ backend: 'influxdb-v1', url: down, db: 'tw', createDb: true, flushInterval: 50 }, { passOn: 'durable' });
    send({ payload: reading('ds', T0, { temperature: 4 }) });
    await until('output 1', () => out.ok.length === 1, 30_000);
    expect(storeOf().service!.stats()).toMatchObject({ written: 0 });
    expect(storeOf().service!.stats().spooledBatches).toBeGreaterThan(0);
    await handled(out, 1);
    expect(out.caught).toHaveLength(0);
  });

  test('the node closing while a message waits ends that message with an error, not never', async () => {
    const out = await startEmbedded({ passOn: 'durable' }, { flushInterval: 60_000 });
    send({ payload: reading('dc', T0, { temperature: 5 }) });
    await settle();
    expect(out.completes.length + out.caught.length).toBe(0);
    const w = getNode('w1') as unknown as { close(removed: boolean): Promise<void> };
    await w.close(false);
    await until('the message ended', () => out.caught.length === 1);
    expect(String((out.caught[0].error as { message: string }).message)).toMatch(/closed before the store confirmed/);
    expect(out.ok).toHaveLength(0);
  });
});

describe('an InfluxDB 1.x store that is down', () => {
  let influx: InfluxV1Service | undefined;
  afterEach(async () => {
    await influx?.stop();
    removeDataDir(influx);
    influx = undefined;
  });

  function spooled(dir: string): string[] {
    const spool = path.join(dir, 'spool', 'store1');
    if (!fs.existsSync(spool)) return [];
    return fs
      .readdirSync(spool)
      .filter((f) => f.endsWith('.lp'))
      .sort()
      .flatMap((f) => fs.readFileSync(path.join(spool, f), 'utf8').split('\n').slice(1));
  }

  test('messages still pass, the batches are spooled across a redeploy, and replayed when the server comes back', async () => {
    const dir = tempDir();
    setDataDir(dir);
    const down = `http://127.0.0.1:${await freePort()}`;
    let out = await start({ backend: 'influxdb-v1', url: down, db: 'tw', createDb: true, flushInterval: 50 });
    const N = 30;
    for (let i = 0; i < N; i++) {
      const r = await request('w1', { payload: reading('d1', T0 + i * 1000, { temperature: i, seq: String(i) }) }, [out.ok, out.bad]);
      expect(r.output).toBe(0);
      // Several batches: a pause longer than the flush interval now and then.
      if (i % 10 === 9) await eventually('the buffer to be cut', () => (storeOf().service!.stats().bufferedLines === 0 ? true : undefined));
    }
    expect(out.bad).toHaveLength(0);
    expect(out.completes).toHaveLength(N);
    await until('the retrying status', () => out.statuses.some((s) => /^retrying: /.test((s.status as { text?: string }).text ?? '')));
    expect(out.statuses.find((s) => /^retrying: /.test((s.status as { text?: string }).text ?? ''))!.status).toMatchObject({ fill: 'yellow', shape: 'ring' });
    expect(storeOf().service!.stats().written).toBe(0);

    // Redeploy while the server is still down: everything is on disk.
    await helper.unload();
    const lines = spooled(dir);
    expect(lines).toHaveLength(N);
    expect(lines).toEqual(Array.from({ length: N }, (_, i) => `telemetry,device=d1 temperature=${i},seq="${i}" ${T0 + i * 1000}`));

    // Redeploy again, still down: still on disk, nothing lost or doubled.
    out = await start({ backend: 'influxdb-v1', url: down, db: 'tw', createDb: true, flushInterval: 50 });
    await helper.unload();
    expect(spooled(dir)).toEqual(lines);

    // The server comes back: a store with the same id replays the spool into it.
    influx = await startInfluxV1();
    out = await start({ backend: 'influxdb-v1', url: influx.url, db: 'tw', createDb: true, flushInterval: 50 });
    const rows = await eventually(
      'the spooled points in InfluxDB',
      async () => {
        const a = await influx!.query('SELECT "temperature", "seq" FROM "telemetry" WHERE "device" = \'d1\'', 'tw');
        const values = a.results[0]?.series?.[0]?.values ?? [];
        return values.length >= N ? values : undefined;
      },
      30_000,
      200,
    );
    expect(rows).toEqual(Array.from({ length: N }, (_, i) => [T0 + i * 1000, i, String(i)]));
    await until('the spool to be empty', () => spooled(dir).length === 0);

    // And the query node reads them back through the same store.
    const series = await query(out, { start: T0, end: T0 + N * 1000 });
    expect(series).toEqual([{ device: 'd1', field: 'temperature', points: Array.from({ length: N }, (_, i) => [T0 + i * 1000, i]) }]);
  });
});
