/**
 * thingwire-window in a real Node-RED runtime (node-red-node-test-helper): rollups out of a flow
 * checked against hand-computed aggregates, cascades, late data under each policy, rejects (output
 * 2, Catch), control messages, status, output modes, group by tag, the clock tick (idle timeout,
 * eviction), and state across close/load (restart, redeploy with other levels, corrupt file,
 * periodic saves, deletion with the node), timers cleared on close.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import windowNode from '../../nodes/window/window';
import type { Reading } from '../../nodes/lib/contract';
import type { LatestValue, WindowRollup, WindowStats } from '../../nodes/window/engine';
import {
  TAB,
  errorCalls,
  getNode,
  helper,
  positioned,
  record,
  setDataDir,
  sleep,
  statusCalls,
  until,
  useHelper,
  useTempDirs,
  withCatalogue,
  type FlowNodeConfig,
  type NodeMsg,
  type SpyCall,
  type TestNode,
} from './harness';

useHelper();
const tempDir = useTempDirs('window-nodes');

const NODES = [withCatalogue(windowNode)];
const T0 = Date.UTC(2026, 4, 4, 12);
const S = 1000;
const M = 60_000;
const H = 3_600_000;

let dataDir: string;
beforeEach(() => {
  dataDir = tempDir();
  setDataDir(dataDir);
});

function node(config: Partial<FlowNodeConfig>): FlowNodeConfig {
  return {
    id: 'n1',
    type: 'thingwire-window',
    z: 'tab1',
    name: '',
    v: 1,
    levels: '1m',
    lateness: '0',
    wires: [['out'], ['bad'], ['late']],
    ...config,
  };
}

function flow(config: Partial<FlowNodeConfig>): FlowNodeConfig[] {
  return [
    TAB,
    node(config),
    { id: 'out', type: 'helper', z: 'tab1' },
    { id: 'bad', type: 'helper', z: 'tab1' },
    { id: 'late', type: 'helper', z: 'tab1' },
    { id: 'complete', type: 'complete', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['completes']] },
    { id: 'completes', type: 'helper', z: 'tab1' },
    { id: 'catch', type: 'catch', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab1' },
  ];
}

interface Outputs {
  out: NodeMsg[];
  bad: NodeMsg[];
  late: NodeMsg[];
  completes: NodeMsg[];
  caught: NodeMsg[];
}

async function start(config: Partial<FlowNodeConfig> = {}): Promise<Outputs> {
  await helper.load(NODES, positioned(flow(config)));
  return { out: record('out'), bad: record('bad'), late: record('late'), completes: record('completes'), caught: record('caught') };
}

/** A deep copy made in this realm. */
function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

let sent = 0;
function send(msg: NodeMsg): void {
  sent++;
  getNode('n1').receive(clone(msg));
}

/** Waits until every message sent since start() has been handled (completed or caught). */
async function handled(out: Outputs): Promise<void> {
  await until(`${sent} messages handled`, () => out.completes.length + out.caught.length >= sent);
  // Outputs are sent before done(), and Node-RED delivers in order: a short pause is enough.
  await sleep(20);
}

beforeEach(() => {
  sent = 0;
});

function reading(device: string, ts: number, metrics: Record<string, number | string | boolean>, tags?: Record<string, string>): Reading {
  const r: Reading = { device, ts, metrics };
  if (tags) r.tags = tags;
  return r;
}

/** Every rollup that left on output 1, in order (batch or one per message; not the answers to latest and stats). */
function rollups(msgs: NodeMsg[]): WindowRollup[] {
  return msgs.filter((m) => m.action === undefined || m.action === 'flush').flatMap((m) => (Array.isArray(m.payload) ? (m.payload as WindowRollup[]) : [m.payload as WindowRollup]));
}

const stateFile = (id = 'n1'): string => path.join(dataDir, 'state', 'thingwire-window', `${id}.json`);
const stateFiles = (): string[] => {
  const d = path.join(dataDir, 'state', 'thingwire-window');
  return fs.existsSync(d) ? fs.readdirSync(d).sort() : [];
};

function warnings(n: TestNode): string[] {
  const warn = (n as unknown as { warn: { getCalls(): SpyCall[] } }).warn;
  return warn
    .getCalls()
    .filter((c) => c.thisValue === n)
    .map((c) => String(c.args[0]));
}

async function ask(out: Outputs, msg: NodeMsg): Promise<NodeMsg> {
  const before = out.out.length;
  send(msg);
  await handled(out);
  expect(out.out.length).toBe(before + 1);
  return out.out[before];
}

async function stats(out: Outputs): Promise<WindowStats> {
  return (await ask(out, { action: 'stats' })).payload as WindowStats;
}

describe('rollups', () => {
  test('one window: the aggregates are exactly the hand-computed ones', async () => {
    const out = await start({});
    send({ payload: reading('d1', T0, { t: 10 }) });
    send({ payload: [reading('d1', T0 + 20 * S, { t: 20 }), reading('d1', T0 + 40 * S, { t: 30 })] });
    await handled(out);
    expect(out.out).toHaveLength(0);
    send({ payload: reading('d1', T0 + M, { t: 40 }) });
    await handled(out);
    expect(out.out).toHaveLength(1);
    const r = out.out[0].payload as WindowRollup[];
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({
      device: 'd1',
      metric: 't',
      level: '1m',
      window: { start: T0, end: T0 + M, size: M },
      count: 3,
      sum: 60,
      mean: 20,
      min: 10,
      max: 30,
      // sample standard deviation: sqrt(((10-20)^2 + 0 + (30-20)^2) / 2) = 10
      stddev: 10,
      first: 10,
      last: 30,
      firstTs: T0,
      lastTs: T0 + 40 * S,
      nonNumeric: 0,
    });
    expect(r[0].p50).toBeCloseTo(20, 0);
    expect(Math.abs(r[0].p50! - 20)).toBeLessThanOrEqual(0.2);
    expect(r[0]).not.toHaveProperty('correction');
    expect(out.bad).toHaveLength(0);
    expect(out.late).toHaveLength(0);
    expect(out.completes).toHaveLength(3);
    expect(out.caught).toHaveLength(0);
  });

  test('several devices and metrics, strings counted, lateness holds windows open', async () => {
    const out = await start({ lateness: '30s' });
    send({
      payload: [
        reading('d1', T0 + 5 * S, { t: 1, state: 'open' }),
        reading('d2', T0 + 6 * S, { t: 100 }),
        reading('d1', T0 + 50 * S, { t: 3, state: 'closed' }),
        // 80 s: not yet 30 s past the window's end
        reading('d1', T0 + 80 * S, { t: 5 }),
      ],
    });
    await handled(out);
    expect(out.out).toHaveLength(0);
    send({ payload: reading('d1', T0 + 90 * S, { t: 7 }) });
    await handled(out);
    const r = rollups(out.out);
    // d1's series close on d1's watermark (per key); d2 stays open. 'state' has no reading past 60 s yet.
    expect(r.map((x) => [x.device, x.metric, x.count, x.sum])).toEqual([['d1', 't', 2, 4]]);
    send({ payload: reading('d1', T0 + 95 * S, { state: 'open' }) });
    await handled(out);
    expect(rollups(out.out).slice(1)).toEqual([
      expect.objectContaining({ device: 'd1', metric: 'state', count: 0, nonNumeric: 2, sum: 0, mean: NaN }),
    ]);
  });

  test('cascade 1m > 1h: minute rollups, then the hour built from them, tagged by level', async () => {
    const out = await start({ levels: '1m,1h' });
    const values: number[] = [];
    const batch: Reading[] = [];
    for (let i = 0; i < 60; i += 7) {
      values.push(i);
      batch.push(reading('d1', T0 + i * M + 30 * S, { t: i }));
    }
    send({ payload: batch });
    await handled(out);
    let r = rollups(out.out);
    expect(r.every((x) => x.level === '1m')).toBe(true);
    expect(r.map((x) => x.window.start)).toEqual(values.slice(0, -1).map((i) => T0 + i * M));
    send({ payload: reading('d1', T0 + H, { t: 1000 }) });
    await handled(out);
    r = rollups(out.out);
    const hour = r.filter((x) => x.level === '1h');
    expect(hour).toHaveLength(1);
    const sum = values.reduce((a, b) => a + b, 0);
    expect(hour[0]).toMatchObject({
      device: 'd1',
      metric: 't',
      window: { start: T0, end: T0 + H, size: H },
      count: values.length,
      sum,
      mean: sum / values.length,
      min: 0,
      max: 56,
      first: 0,
      last: 56,
      firstTs: T0 + 30 * S,
      lastTs: T0 + 56 * M + 30 * S,
    });
    // The hour leaves after the minute it ends with, in the same message.
    const lastMsg = out.out[out.out.length - 1].payload as WindowRollup[];
    expect(lastMsg.map((x) => x.level)).toEqual(['1m', '1h']);
    expect(r.filter((x) => x.level === '1m')).toHaveLength(values.length);
  });

  test("output 'each': one message per rollup with topic device/metric/level", async () => {
    const out = await start({ levels: '1m,1h', output: 'each' });
    send({ payload: [reading('d1', T0, { t: 1, h: 50 }), reading('d1', T0 + H, { t: 2, h: 60 })] });
    await handled(out);
    expect(out.out.map((m) => m.topic)).toEqual(['d1/t/1m', 'd1/t/1h', 'd1/h/1m', 'd1/h/1h']);
    expect(out.out.every((m) => !Array.isArray(m.payload))).toBe(true);
    expect((out.out[1].payload as WindowRollup).window).toEqual({ start: T0, end: T0 + H, size: H });
  });

  test('hopping windows: 2m every 1m, each reading in two windows', async () => {
    const out = await start({ levels: '2m', step: '1m' });
    send({ payload: [reading('d1', T0 + 30 * S, { t: 1 }), reading('d1', T0 + 90 * S, { t: 2 }), reading('d1', T0 + 3 * M, { t: 4 })] });
    await handled(out);
    expect(rollups(out.out).map((r) => [r.level, r.window.start - T0, r.count, r.sum])).toEqual([
      ['2m/1m', -M, 1, 1],
      ['2m/1m', 0, 2, 3],
      ['2m/1m', M, 1, 2],
    ]);
  });

  test('counters: delta, rate and resets', async () => {
    const out = await start({ counters: 'energy' });
    send({ payload: [10, 15, 2, 6].map((v, i) => reading('m1', T0 + i * 10 * S, { energy: v })) });
    send({ payload: reading('m1', T0 + M, { energy: 8 }) });
    await handled(out);
    // 10 -> 15 (+5), reset to 2 (+2), 2 -> 6 (+4)
    expect(rollups(out.out)[0]).toMatchObject({ metric: 'energy', delta: 11, resets: 1, rate: 11 / 60 });
  });

  test("booleans 'number' are aggregated as 1/0; 'count' (default) counts them", async () => {
    let out = await start({ booleans: 'number' });
    send({ payload: [reading('d1', T0, { on: true }), reading('d1', T0 + S, { on: false }), reading('d1', T0 + 2 * S, { on: true }), reading('d1', T0 + M, { on: true })] });
    await handled(out);
    expect(rollups(out.out)[0]).toMatchObject({ count: 3, sum: 2, nonNumeric: 0 });
    await helper.unload();
    sent = 0;
    setDataDir(tempDir()); // else the restored state of the first node would take the readings as late
    out = await start({});
    send({ payload: [reading('d1', T0, { on: true }), reading('d1', T0 + M, { on: true })] });
    await handled(out);
    expect(rollups(out.out)[0]).toMatchObject({ count: 0, nonNumeric: 1 });
  });

  test('group by tag: rollups per site; a reading without the tag is rejected', async () => {
    const out = await start({ groupTag: 'site' });
    send({
      payload: [
        reading('d1', T0, { t: 1 }, { site: 'north' }),
        reading('d2', T0 + S, { t: 3 }, { site: 'north' }),
        reading('d3', T0 + 2 * S, { t: 5 }, { site: 'south' }),
        reading('d4', T0 + 3 * S, { t: 7 }),
        reading('d1', T0 + M, { t: 0 }, { site: 'north' }),
      ],
    });
    await handled(out);
    expect(rollups(out.out).map((r) => [r.device, r.count, r.sum])).toEqual([['north', 2, 4]]);
    expect(out.bad).toHaveLength(1);
    expect(out.bad[0].rejects).toEqual([{ code: 'invalid_value', message: 'groupBy failed: reading has no tag "site" to group by', index: 3 }]);
    // latest values stay per device
    const latest = (await ask(out, { action: 'latest', device: 'd3' })).payload as LatestValue[];
    expect(latest).toEqual([{ device: 'd3', metric: 't', ts: T0 + 2 * S, value: 5 }]);
  });
});

describe('late data', () => {
  const first = [reading('d1', T0 + 10 * S, { t: 1 }), reading('d1', T0 + 70 * S, { t: 2 })];

  test("reopen (default): the window is sent again with correction: true, same window, all levels", async () => {
    const out = await start({ levels: '1m,1h' });
    send({ payload: [...first, reading('d1', T0 + H + S, { t: 5 })] });
    await handled(out);
    const before = rollups(out.out);
    expect(before.map((r) => [r.level, r.window.start - T0, r.count])).toEqual([
      ['1m', 0, 1],
      ['1m', M, 1],
      ['1h', 0, 2],
    ]);
    send({ payload: reading('d1', T0 + 20 * S, { t: 3 }) });
    await handled(out);
    const corr = rollups(out.out).slice(before.length);
    expect(corr.map((r) => [r.level, r.window, r.count, r.sum, r.correction])).toEqual([
      ['1m', { start: T0, end: T0 + M, size: M }, 2, 4, true],
      ['1h', { start: T0, end: T0 + H, size: H }, 3, 6, true],
    ]);
    expect(out.late).toHaveLength(0);
    const s = await stats(out);
    expect(s.late.reopened).toBe(1);
    expect(s.corrections).toBe(2);
  });

  test("output: the late reading leaves on output 3 as an array of readings", async () => {
    const out = await start({ latePolicy: 'output' });
    send({ payload: first });
    await handled(out);
    send({ payload: [reading('d1', T0 + 20 * S, { t: 3, h: 9 }, { fw: '1.2' }), reading('d1', T0 + 80 * S, { t: 4 })] });
    await handled(out);
    expect(out.late).toHaveLength(1);
    expect(out.late[0].payload).toEqual([
      { device: 'd1', ts: T0 + 20 * S, metrics: { t: 3 }, tags: { fw: '1.2' } },
      // 'h' is a new series: its window is open, so it is not late
    ]);
    expect(rollups(out.out).map((r) => [r.window.start - T0, r.count, r.correction])).toEqual([[0, 1, undefined]]);
    expect((await stats(out)).late.output).toBe(1);
  });

  test('drop: nothing is sent, the drop is counted', async () => {
    const out = await start({ latePolicy: 'drop' });
    send({ payload: first });
    await handled(out);
    send({ payload: reading('d1', T0 + 20 * S, { t: 3 }) });
    await handled(out);
    expect(rollups(out.out)).toHaveLength(1);
    expect(out.late).toHaveLength(0);
    expect((await stats(out)).late.dropped).toBe(1);
  });

  test('reopen: past the correction horizon, late data is dropped as tooLate', async () => {
    const out = await start({ correctionHorizon: '1m' });
    send({ payload: [...first, reading('d1', T0 + 3 * M, { t: 9 })] });
    await handled(out);
    const n = rollups(out.out).length;
    send({ payload: reading('d1', T0 + 20 * S, { t: 3 }) });
    await handled(out);
    expect(rollups(out.out)).toHaveLength(n);
    expect((await stats(out)).late.tooLate).toBe(1);
  });
});

describe('rejects', () => {
  test('a batch with bad elements: the good ones are aggregated, the bad ones leave on output 2', async () => {
    const out = await start({});
    send({ payload: [reading('d1', T0, { t: 1 }), { device: '', ts: T0, metrics: { t: 1 } }, 'junk', reading('d1', T0 + 5 * S, { t: 2 }), { device: 'd1', ts: 'soon', metrics: {} }] });
    await handled(out);
    expect(out.bad).toHaveLength(1);
    const m = out.bad[0];
    expect(m.payload).toEqual([{ device: '', ts: T0, metrics: { t: 1 } }, 'junk', { device: 'd1', ts: 'soon', metrics: {} }]);
    expect(m.rejects).toEqual([
      { code: 'invalid_device', message: 'reading device must be a non-empty string', index: 1 },
      { code: 'not_a_reading', message: 'a reading must be an object { device, ts, metrics }', index: 2 },
      { code: 'invalid_ts', message: 'reading ts must be a finite number of ms since the epoch, got string', index: 4 },
    ]);
    expect(m.error).toEqual({ code: 'invalid_device', message: 'reading device must be a non-empty string', source: 'thingwire-window' });
    expect(out.completes).toHaveLength(1);
    expect(out.caught).toHaveLength(0);
    const f = await ask(out, { action: 'flush' });
    expect((f.payload as WindowRollup[]).map((r) => [r.count, r.sum])).toEqual([[2, 3]]);
  });

  test('a single bad payload: the message itself leaves on output 2', async () => {
    const out = await start({});
    send({ payload: 'hello', topic: 'devices/x' });
    send({ payload: { device: 'd1', ts: T0, metrics: {} } });
    send({ payload: { device: 'd1', ts: T0, metrics: { t: 1 } } });
    send({ payload: [] });
    await handled(out);
    expect(out.bad.map((m) => [m.payload, (m.error as { code: string }).code, m.topic])).toEqual([
      ['hello', 'not_a_reading', 'devices/x'],
      [{ device: 'd1', ts: T0, metrics: {} }, 'no_metrics', undefined],
    ]);
    expect(out.bad[0].rejects).toEqual([{ code: 'not_a_reading', message: 'a reading must be an object { device, ts, metrics }' }]);
    expect(out.completes).toHaveLength(4);
  });

  test('NaN, Infinity and numbers as strings do not corrupt the aggregates', async () => {
    const out = await start({});
    getNode('n1').receive({ payload: [reading('d1', T0, { t: NaN }), reading('d1', T0 + S, { t: Infinity }), reading('d1', T0 + 2 * S, { t: '5' }), reading('d1', T0 + 3 * S, { t: 2 })] });
    sent++;
    send({ payload: reading('d1', T0 + M, { t: 0 }) });
    await handled(out);
    expect(rollups(out.out)[0]).toMatchObject({ count: 1, sum: 2, min: 2, max: 2, nonNumeric: 3 });
  });

  test('hostile names (__proto__, constructor) are plain keys; nothing leaks into prototypes', async () => {
    const out = await start({});
    const payload = JSON.parse(
      `[{"device":"__proto__","ts":${T0},"metrics":{"__proto__":1,"constructor":2}},{"device":"__proto__","ts":${T0 + M},"metrics":{"__proto__":3,"constructor":4}}]`,
    ) as unknown;
    getNode('n1').receive({ payload });
    sent++;
    await handled(out);
    expect(rollups(out.out).map((r) => [r.device, r.metric, r.sum])).toEqual([
      ['__proto__', '__proto__', 1],
      ['__proto__', 'constructor', 2],
    ]);
    expect(({} as Record<string, unknown>).constructor).toBe(Object);
    expect(Object.prototype).not.toHaveProperty('sum');
    const latest = (await ask(out, { action: 'latest', device: '__proto__' })).payload as LatestValue[];
    expect(latest.map((l) => [l.metric, l.value])).toEqual([
      ['__proto__', 3],
      ['constructor', 4],
    ]);
    expect((await ask(out, { action: 'latest', device: 'constructor' })).payload).toEqual([]);
  });

  test('a batch over 100,000 readings is rejected whole as payload_too_large', async () => {
    const out = await start({});
    getNode('n1').receive({ payload: new Array(100_001).fill(0) });
    sent++;
    await handled(out);
    expect(out.bad).toHaveLength(1);
    expect(out.bad[0].rejects).toEqual([{ code: 'payload_too_large', message: 'a batch of 100001 readings is over the limit of 100000 per message' }]);
    expect((await stats(out)).readings).toBe(0);
  });

  test('catchRejects: rejects also reach Catch nodes; done() is called once either way', async () => {
    const out = await start({ catchRejects: true });
    send({ payload: [reading('d1', T0, { t: 1 }), { device: 'd1' }] });
    send({ payload: reading('d1', T0 + S, { t: 2 }) });
    await handled(out);
    expect(out.bad).toHaveLength(1);
    expect(out.caught).toHaveLength(1);
    expect((out.caught[0].error as { message: string }).message).toBe('RejectedError: invalid_ts: reading ts must be a finite number of ms since the epoch, got undefined');
    expect(out.completes).toHaveLength(1);
    expect((await stats(out)).readings).toBe(2);
  });
});

describe('control messages', () => {
  test('flush sends every open window now, with msg.action kept; later data for them is late', async () => {
    const out = await start({ levels: '1m,1h' });
    send({ payload: [reading('d1', T0, { t: 1 }), reading('d2', T0 + 90 * S, { t: 2 })] });
    await handled(out);
    expect(out.out).toHaveLength(0);
    const f = await ask(out, { action: 'flush', topic: 'eod' });
    expect(f.action).toBe('flush');
    expect(f.topic).toBe('eod');
    expect((f.payload as WindowRollup[]).map((r) => [r.device, r.level, r.window.start - T0])).toEqual([
      ['d1', '1m', 0],
      ['d1', '1h', 0],
      ['d2', '1m', M],
      ['d2', '1h', 0],
    ]);
    // Nothing open any more: a second flush sends nothing.
    send({ action: 'flush' });
    await handled(out);
    expect(out.out).toHaveLength(1);
    expect((await stats(out)).openWindows).toBe(0);
  });

  test("flush with output 'each': one message per rollup, each with the action and a topic", async () => {
    const out = await start({ output: 'each' });
    send({ payload: [reading('d1', T0, { t: 1, h: 2 })] });
    send({ action: 'flush', topic: 'ignored' });
    await handled(out);
    expect(out.out.map((m) => [m.topic, m.action, (m.payload as WindowRollup).metric])).toEqual([
      ['d1/t/1m', 'flush', 't'],
      ['d1/h/1m', 'flush', 'h'],
    ]);
  });

  test('latest: all devices, one device by id or by { id }', async () => {
    const out = await start({});
    send({ payload: [reading('d1', T0, { t: 1, s: 'on' }), reading('d1', T0 + 5 * S, { t: 2 }), reading('d1', T0 + 2 * S, { t: 99 }), reading('d2', T0, { t: 7 })] });
    await handled(out);
    const all = await ask(out, { action: 'latest' });
    expect(all.action).toBe('latest');
    expect(all.payload).toEqual([
      { device: 'd1', metric: 't', ts: T0 + 5 * S, value: 2 },
      { device: 'd1', metric: 's', ts: T0, value: 'on' },
      { device: 'd2', metric: 't', ts: T0, value: 7 },
    ]);
    expect((await ask(out, { action: 'latest', device: 'd2' })).payload).toEqual([{ device: 'd2', metric: 't', ts: T0, value: 7 }]);
    expect((await ask(out, { action: 'latest', device: { id: 'd2', type: 'pico-w' } })).payload).toEqual([{ device: 'd2', metric: 't', ts: T0, value: 7 }]);
    expect((await ask(out, { action: 'latest', device: 'nobody' })).payload).toEqual([]);
    send({ action: 'latest', device: 42 });
    await handled(out);
    expect((out.caught[0].error as { message: string }).message).toBe('Error: msg.device must be a device id (or { id }) for msg.action latest, got "42"');
  });

  test('stats: the engine figures', async () => {
    const out = await start({});
    send({ payload: [reading('d1', T0, { t: 1, s: 'x' }), reading('d2', T0, { t: 2 }), { nope: 1 }] });
    await handled(out);
    const s = await stats(out);
    expect(s).toMatchObject({ keys: 3, openWindows: 3, keptWindows: 0, readings: 2, values: 3, nonNumeric: 1, rejected: 1, emitted: 0, watermark: T0 });
    expect(s.bytes).toBeGreaterThan(0);
  });

  test('reset drops all state, sends nothing, and deletes the state file', async () => {
    const out = await start({ snapshotInterval: '100ms' });
    send({ payload: reading('d1', T0, { t: 1 }) });
    await handled(out);
    await until('a state file', () => fs.existsSync(stateFile()));
    send({ action: 'reset' });
    await handled(out);
    expect(out.out).toHaveLength(0);
    expect(fs.existsSync(stateFile())).toBe(false);
    expect((await stats(out)).keys).toBe(0);
    send({ action: 'flush' });
    await handled(out);
    expect(out.out).toHaveLength(1); // the stats answer only
  });

  test('an unknown action is an error for Catch nodes, naming the action', async () => {
    const out = await start({});
    send({ action: 'explode', payload: reading('d1', T0, { t: 1 }) });
    send({ action: 5 });
    await handled(out);
    expect(out.caught.map((m) => (m.error as { message: string }).message)).toEqual([
      'Error: unknown msg.action "explode": use flush, latest, stats or reset (or no msg.action for readings)',
      'Error: unknown msg.action "5": use flush, latest, stats or reset (or no msg.action for readings)',
    ]);
    expect(out.completes).toHaveLength(0);
    expect((await stats(out)).readings).toBe(0);
  });
});

describe('status and configuration', () => {
  test('waiting, then keys, open windows and watermark', async () => {
    const out = await start({});
    const n = getNode('n1');
    expect(statusCalls(n)[0]).toEqual({ fill: 'grey', shape: 'dot', text: 'waiting for readings' });
    send({ payload: [reading('d1', T0, { t: 1, h: 2 }), reading('d2', T0 + 63 * S, { t: 3 })] });
    await handled(out);
    await until('a running status', () => statusCalls(n).some((s) => s.fill === 'green'), 3000);
    expect(statusCalls(n).filter((s) => s.fill === 'green')).toEqual([{ fill: 'green', shape: 'dot', text: '3 keys · 3 open · wm 2026-05-04 12:01:03' }]);
  });

  test('a bad config: an error from the catalogue, a red ring, and every message answered with the error', async () => {
    const out = await start({ levels: '2m,3m', timeZone: 'Mars/Olympus', tick: 'often' });
    const n = getNode('n1');
    const expected =
      'thingwire-window is misconfigured: unknown time zone "Mars/Olympus": use an IANA name such as "UTC" or "Europe/Madrid"; tick must be a duration such as "500ms", "30s", "5m", "1h" or "1d" (or a number of ms), got "often"';
    expect(errorCalls(n).map((c) => c.args[0])).toEqual([expected]);
    expect(statusCalls(n)).toEqual([{ fill: 'red', shape: 'ring', text: 'thingwire-window.status.config-error' }]);
    send({ payload: reading('d1', T0, { t: 1 }) });
    send({ action: 'stats' });
    await handled(out);
    expect(out.caught.map((m) => (m.error as { message: string }).message)).toEqual([`Error: ${expected}`, `Error: ${expected}`]);
    expect(out.out).toHaveLength(0);
    expect(out.completes).toHaveLength(0);
  });

  test('levels that do not nest are a config error naming them', async () => {
    await start({ levels: '1w,1mo' });
    expect(String(errorCalls(getNode('n1'))[0].args[0])).toMatch(/^thingwire-window is misconfigured: levels: level 1mo cannot be built from level 1w/);
  });
});

describe('clock tick', () => {
  test('idleTimeout: a quiet series has its window closed by the tick, with no further input', async () => {
    const out = await start({ levels: '1s', idleTimeout: '100ms', tick: '50ms' });
    send({ payload: [reading('d1', T0 + 200, { t: 1 }), reading('d1', T0 + 950, { t: 3 })] });
    await handled(out);
    await until('the idle window to close', () => out.out.length > 0, 3000);
    const r = rollups(out.out);
    expect(r.map((x) => [x.window.start - T0, x.count, x.sum])).toEqual([[0, 2, 4]]);
    expect(out.out[0]._msgid).toEqual(expect.any(String));
    expect(out.completes).toHaveLength(1);
  });

  test('evictAfter: a quiet series is flushed and forgotten', async () => {
    const out = await start({ evictAfter: '100ms', tick: '50ms' });
    send({ payload: reading('d1', T0, { t: 5 }) });
    await handled(out);
    await until('the eviction', () => out.out.length > 0, 3000);
    expect(rollups(out.out).map((x) => [x.device, x.count, x.sum])).toEqual([['d1', 1, 5]]);
    const s = await stats(out);
    expect(s.keys).toBe(0);
    expect(s.evicted).toBe(1);
  });

  test('close clears the node timers', async () => {
    const setSpy = jest.spyOn(global, 'setInterval');
    const clearSpy = jest.spyOn(global, 'clearInterval');
    try {
      await start({ tick: '37ms', snapshotInterval: '173ms' });
      const mine = setSpy.mock.calls.map((c, i) => [c[1], setSpy.mock.results[i].value] as const).filter(([ms]) => ms === 37 || ms === 173);
      expect(mine.map(([ms]) => ms).sort()).toEqual([173, 37]);
      await helper.unload();
      const cleared = new Set(clearSpy.mock.calls.map((c) => c[0]));
      for (const [, t] of mine) expect(cleared.has(t as NodeJS.Timeout)).toBe(true);
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
  });
});

describe('state', () => {
  test('restart: half a window before close, the rest after load; the rollup covers every reading', async () => {
    let out = await start({ levels: '1m,1h' });
    send({ payload: [reading('d1', T0, { t: 1 }), reading('d1', T0 + 10 * S, { t: 2 }), reading('d1', T0 + 20 * S, { t: 3 })] });
    await handled(out);
    expect(fs.existsSync(stateFile())).toBe(false); // saved every 60 s by default: not yet
    await helper.unload(); // close: saved synchronously
    expect(stateFiles()).toEqual(['n1.json']);

    sent = 0;
    out = await start({ levels: '1m,1h' });
    expect(warnings(getNode('n1'))).toEqual([]);
    send({ payload: [reading('d1', T0 + 30 * S, { t: 4 }), reading('d1', T0 + 40 * S, { t: 5 }), reading('d1', T0 + 50 * S, { t: 6 })] });
    send({ payload: reading('d1', T0 + H, { t: 100 }) });
    await handled(out);
    const r = rollups(out.out);
    expect(r.map((x) => [x.level, x.window.start - T0, x.count, x.sum, x.min, x.max, x.first, x.last])).toEqual([
      ['1m', 0, 6, 21, 1, 6, 1, 6],
      ['1h', 0, 6, 21, 1, 6, 1, 6],
    ]);
    expect((await stats(out)).readings).toBe(7);
  });

  test('a crash between snapshots: the journal is taken again, the windows it closed are sent, a redelivery is not counted twice', async () => {
    const cfg = { levels: '1m', snapshotInterval: '1s', dedupe: true };
    let out = await start(cfg);
    send({ payload: [reading('d1', T0, { t: 1 }), reading('d1', T0 + 10 * S, { t: 2 })] });
    await handled(out);
    const saved = (): number => (fs.existsSync(stateFile()) ? (JSON.parse(fs.readFileSync(stateFile(), 'utf8')) as { snapshot: { counts: number[] } }).snapshot.counts[0] : 0);
    await until('a snapshot of the first two readings', () => saved() === 2);
    // After the snapshot: a reading, and one that closes 12:00-12:01 (its rollup leaves at once).
    send({ payload: reading('d1', T0 + 20 * S, { t: 3 }) });
    send({ payload: reading('d1', T0 + 61 * S, { t: 4 }) });
    await handled(out);
    expect(rollups(out.out).map((r) => [r.window.start - T0, r.count, r.sum])).toEqual([[0, 3, 6]]);
    // The files as a process killed now leaves them (the next save is up to a second away).
    const image = path.join(tempDir(), 'state');
    fs.cpSync(path.join(dataDir, 'state'), image, { recursive: true });
    expect(saved()).toBe(2);
    expect(fs.readdirSync(path.join(image, 'thingwire-window')).sort()).toEqual(['n1.journal-2', 'n1.json']);
    await helper.unload(); // (a stop writes everything; the crash image is what counts)
    fs.rmSync(path.join(dataDir, 'state'), { recursive: true });
    fs.cpSync(image, path.join(dataDir, 'state'), { recursive: true });

    sent = 0;
    out = await start(cfg);
    expect(warnings(getNode('n1'))).toEqual([]);
    // The replay closed 12:00-12:01 again: sent once the flows run, in case the store never had it.
    await until('the replayed rollup', () => rollups(out.out).length === 1);
    expect(rollups(out.out).map((r) => [r.window.start - T0, r.count, r.sum])).toEqual([[0, 3, 6]]);
    // The broker delivers again what was not acknowledged before the kill; then 12:01-12:02 closes.
    send({ payload: [reading('d1', T0 + 61 * S, { t: 4 }), reading('d1', T0 + 62 * S, { t: 5 })] });
    send({ payload: reading('d1', T0 + 125 * S, { t: 0 }) });
    await handled(out);
    expect(rollups(out.out).map((r) => [r.window.start - T0, r.count, r.sum])).toEqual([
      [0, 3, 6],
      [M, 2, 9],
    ]);
    expect((await stats(out)).duplicates).toBe(1);
    await helper.unload();
    expect(stateFiles()).toEqual(['n1.json']);
  });

  test('a node that only restarted sees no warning and writes nothing when nothing changed', async () => {
    await start({});
    await helper.unload();
    expect(stateFiles()).toEqual([]);
  });

  test('periodic saves while running (only when something changed)', async () => {
    const out = await start({ snapshotInterval: '100ms' });
    send({ payload: reading('d1', T0, { t: 1 }) });
    await handled(out);
    await until('a state file', () => fs.existsSync(stateFile()));
    const doc = JSON.parse(fs.readFileSync(stateFile(), 'utf8')) as { v: number; savedAt: number; snapshot: { counts: number[] } };
    expect(doc.v).toBe(1);
    expect(doc.snapshot.counts[0]).toBe(1);
    const mtime = fs.statSync(stateFile()).mtimeMs;
    await sleep(350);
    expect(fs.statSync(stateFile()).mtimeMs).toBe(mtime);
    send({ payload: reading('d1', T0 + S, { t: 2 }) });
    await handled(out);
    await until('a second save', () => (JSON.parse(fs.readFileSync(stateFile(), 'utf8')) as { snapshot: { counts: number[] } }).snapshot.counts[0] === 2);
  });

  test('redeploy with other levels: the old state is moved aside with a warning; the node starts empty', async () => {
    let out = await start({ levels: '1m' });
    send({ payload: reading('d1', T0, { t: 1 }) });
    await handled(out);
    await helper.unload();
    sent = 0;
    out = await start({ levels: '5m' });
    const n = getNode('n1');
    const w = warnings(n);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/^the saved window state does not fit this configuration \(snapshot was taken with other window levels or sketch settings: .*\); it was moved to .*n1\.json\.mismatch-\d+ and the node starts empty$/);
    const files = stateFiles();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^n1\.json\.mismatch-\d+$/);
    expect((await stats(out)).keys).toBe(0);
    send({ payload: [reading('d1', T0, { t: 1 }), reading('d1', T0 + 5 * M, { t: 2 })] });
    await handled(out);
    expect(rollups(out.out).map((r) => [r.level, r.count])).toEqual([['5m', 1]]);
  });

  test('other settings (lateness, policy) may change across a redeploy: the state is kept', async () => {
    let out = await start({ latePolicy: 'drop' });
    send({ payload: reading('d1', T0, { t: 1 }) });
    await handled(out);
    await helper.unload();
    sent = 0;
    out = await start({ latePolicy: 'reopen', lateness: '10s' });
    expect(warnings(getNode('n1'))).toEqual([]);
    send({ payload: reading('d1', T0 + 70 * S, { t: 2 }) });
    await handled(out);
    expect(rollups(out.out).map((r) => [r.count, r.sum])).toEqual([[1, 1]]);
  });

  test('a corrupt state file: warning, moved aside, the node works', async () => {
    fs.mkdirSync(path.dirname(stateFile()), { recursive: true });
    fs.writeFileSync(stateFile(), '{"v":1,"savedAt":');
    const out = await start({});
    const w = warnings(getNode('n1'));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/^the saved window state could not be used, starting empty: state file .*n1\.json is unusable \(.*\); moved to .*n1\.json\.corrupt-\d+$/);
    expect(stateFiles()[0]).toMatch(/^n1\.json\.corrupt-\d+$/);
    send({ payload: [reading('d1', T0, { t: 1 }), reading('d1', T0 + M, { t: 2 })] });
    await handled(out);
    expect(rollups(out.out)).toHaveLength(1);
  });

  test('a state document the engine cannot take (hand-edited) is moved aside too', async () => {
    fs.mkdirSync(path.dirname(stateFile()), { recursive: true });
    fs.writeFileSync(stateFile(), JSON.stringify({ v: 1, savedAt: 1, snapshot: { v: 1, config: 'x' } }));
    const out = await start({});
    expect(warnings(getNode('n1'))[0]).toMatch(/^the saved window state does not fit this configuration/);
    expect(stateFiles()[0]).toMatch(/^n1\.json\.mismatch-\d+$/);
    expect((await stats(out)).keys).toBe(0);
  });

  test('persist false: no file is read or written', async () => {
    fs.mkdirSync(path.dirname(stateFile('other')), { recursive: true });
    const out = await start({ persist: 'false', snapshotInterval: '100ms' });
    send({ payload: reading('d1', T0, { t: 1 }) });
    await handled(out);
    await sleep(250);
    await helper.unload();
    expect(stateFiles()).toEqual([]);
  });

  test('a node deleted from the flows deletes its state file', async () => {
    const out = await start({});
    send({ payload: reading('d1', T0, { t: 1 }) });
    await handled(out);
    // A redeploy without n1: Node-RED closes it with removed = true.
    const setFlows = (helper as unknown as { setFlows(flow: FlowNodeConfig[], type?: string): Promise<void> }).setFlows.bind(helper);
    await setFlows(positioned(flow({}).filter((n) => n.id !== 'n1')), 'full');
    await until('n1 to stop', () => helper.getNode('n1') === null);
    expect(stateFiles()).toEqual([]);
  });
});
