/**
 * thingwire-anomaly in a real Node-RED runtime (node-red-node-test-helper): scores on output 1,
 * rejects on output 2 (and Catch), alert events on output 3 once per change, time order and
 * redeliveries, control actions, config errors, status, and the state file: periodic and closing
 * saves, a restart that keeps every series past its warm-up and scoring as if it never stopped,
 * corrupt and mismatched state moved aside, deleted with the node, timers cleared on close.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import anomalyNode from '../../nodes/anomaly/anomaly';
import { AnomalyDetector } from '../../nodes/anomaly/engine';
import { mulberry32 } from '../../runtime/sim-model';
import {
  TAB,
  errorCalls,
  getNode,
  helper,
  positioned,
  record,
  setDataDir,
  settle,
  sleep,
  statusCalls,
  translate,
  until,
  useHelper,
  useTempDirs,
  withCatalogue,
  type FlowNodeConfig,
  type NodeMsg,
  type SpyCall,
} from './harness';

useHelper();
const tempDir = useTempDirs('anomaly-nodes');

const NODES = [withCatalogue(anomalyNode)];
const TYPE = 'thingwire-anomaly';
const T0 = Date.UTC(2026, 0, 5);
const STEP = 5 * 60_000;

/** A deep copy made in this realm (so toEqual compares plain objects). */
function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function reading(i: number, metrics: Record<string, unknown>, device = 'd1'): Record<string, unknown> {
  return { device, ts: T0 + i * STEP, metrics };
}

/** A seeded temperature-like series: daily cycle and noise. */
function series(n: number, seed = 5): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => 20 + 5 * Math.sin((2 * Math.PI * i) / 288) + (r() + r() + r() + r() - 2) * 0.8);
}

/** The mode under test (describe.each below): the models in Node-RED's thread, or in a worker thread. */
let mode: Partial<FlowNodeConfig> = {};

function flow(config: Partial<FlowNodeConfig>): FlowNodeConfig[] {
  return [
    TAB,
    {
      id: 'n1',
      type: TYPE,
      z: 'tab1',
      name: '',
      v: 1,
      threshold: 0.57,
      warmup: 150,
      daily: true,
      weekly: true,
      metrics: '',
      maxSeries: 10000,
      maintenance: '[]',
      clearAfter: 5,
      persist: true,
      snapshotInterval: '60s',
      catchRejects: false,
      wires: [['scores'], ['bad'], ['events']],
      ...mode,
      ...config,
    },
    { id: 'scores', type: 'helper', z: 'tab1' },
    { id: 'bad', type: 'helper', z: 'tab1' },
    { id: 'events', type: 'helper', z: 'tab1' },
    { id: 'complete', type: 'complete', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['completes']] },
    { id: 'completes', type: 'helper', z: 'tab1' },
    { id: 'catch', type: 'catch', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab1' },
    { id: 'status', type: 'status', z: 'tab1', scope: ['n1'], wires: [['statuses']] },
    { id: 'statuses', type: 'helper', z: 'tab1' },
  ];
}

interface Outputs {
  scores: NodeMsg[];
  bad: NodeMsg[];
  events: NodeMsg[];
  completes: NodeMsg[];
  caught: NodeMsg[];
  statuses: NodeMsg[];
  dir: string;
}

/** Loads the flow with DATA_DIR at `dir` (a fresh temp dir by default). */
async function start(config: Partial<FlowNodeConfig> = {}, dir = tempDir()): Promise<Outputs> {
  setDataDir(dir);
  await helper.load(NODES, positioned(flow(config)));
  return { scores: record('scores'), bad: record('bad'), events: record('events'), completes: record('completes'), caught: record('caught'), statuses: record('statuses'), dir };
}

function send(msg: NodeMsg): void {
  getNode('n1').receive(msg);
}

/** Waits until `n` messages have been handled (completed or caught), then lets stragglers arrive. */
async function handled(out: Outputs, n: number): Promise<void> {
  await until(`${n} messages handled`, () => out.completes.length + out.caught.length >= n);
  await settle();
}

function stateFile(dir: string, id = 'n1'): string {
  return path.join(dir, 'state', TYPE, `${id}.json`);
}

function warnCalls(): SpyCall[] {
  const n = getNode('n1') as unknown as { warn: { getCalls(): SpyCall[] } };
  return n.warn.getCalls().filter((c) => c.thisValue === n);
}

async function stats(out: Outputs): Promise<Record<string, number>> {
  const before = out.scores.length;
  const n = out.completes.length + out.caught.length;
  send({ action: 'stats' });
  await handled(out, n + 1);
  expect(out.scores).toHaveLength(before + 1);
  return out.scores[before].payload as Record<string, number>;
}

// Every behaviour below holds with the models in Node-RED's thread and in a worker thread (nodes/anomaly/remote.ts).
describe.each([
  ['in the thread', {}],
  ['in a worker thread', { worker: true }],
])('%s', (_name, m: Partial<FlowNodeConfig>) => {
  beforeAll(() => {
    mode = m;
  });
  afterAll(() => {
    mode = {};
  });

  describe('scores', () => {
    test('a reading gives one message on output 1 with one AnomalyScore per numeric metric', async () => {
      const out = await start();
      send({ payload: { ...reading(0, { temperature: 21.5, humidity: 40, door: true, state: 'open' }), tags: { site: 'north' } }, topic: 'devices/d1/telemetry' });
      await handled(out, 1);
      expect(out.scores).toHaveLength(1);
      expect(out.scores[0].topic).toBe('devices/d1/telemetry');
      const payload = clone(out.scores[0].payload) as Array<Record<string, unknown>>;
      expect(payload.map((s) => [s.device, s.metric, s.value, s.learning, s.signal, s.score, s.anomalous])).toEqual([
        ['d1', 'temperature', 21.5, true, 'learning', 0, false],
        ['d1', 'humidity', 40, true, 'learning', 0, false],
      ]);
      expect(payload[0]).toMatchObject({ ts: T0, expected: 21.5, tags: { site: 'north' } });
      expect(out.bad).toHaveLength(0);
      expect(out.events).toHaveLength(0);
      expect(out.completes).toHaveLength(1);
      expect(out.caught).toHaveLength(0);
      await until('the status', () => out.statuses.some((m) => (m.status as { text?: string }).text === translate(`${TYPE}.status.counts`, { series: 2, learning: 2, anomalous: 0 })));
    });

    test('a batch gives one message for the whole batch; metrics limits what is scored', async () => {
      const out = await start({ metrics: 'temperature' });
      send({ payload: [reading(0, { temperature: 20, humidity: 1 }), reading(0, { temperature: 21 }, 'd2'), reading(1, { temperature: 22 })] });
      await handled(out, 1);
      expect(out.scores).toHaveLength(1);
      expect((out.scores[0].payload as Array<{ device: string; metric: string }>).map((s) => `${s.device}/${s.metric}`)).toEqual(['d1/temperature', 'd2/temperature', 'd1/temperature']);
    });

    test('events leave on output 3 once per change, keyed and with the key as topic', async () => {
      const out = await start({ warmup: 5, clearAfter: 2 });
      const values = [10, 11, 10, 11, 10, 11, 10, 11, 100, 150, 10, 11, 10, 11];
      values.forEach((v, i) => send({ payload: reading(i, { t: v }) }));
      await handled(out, values.length);
      expect(out.scores).toHaveLength(values.length);
      expect(out.events.map((m) => [m.topic, (m.payload as { state: string }).state])).toEqual([
        ['d1/t/anomaly', 'firing'],
        ['d1/t/anomaly', 'resolved'],
      ]);
      expect(clone(out.events[0].payload)).toEqual({
        key: 'd1/t/anomaly',
        device: 'd1',
        rule: 'anomaly',
        state: 'firing',
        severity: 'warning',
        value: 100,
        since: T0 + 8 * STEP,
        metric: 't',
        message: translate(`${TYPE}.events.anomaly-firing`, { metric: 't', value: 100, score: '1.00', signal: 'range' }),
      });
      expect((out.events[1].payload as { since: number; message: string }).since).toBe(T0 + 11 * STEP);
      expect((out.events[1].payload as { message: string }).message).toBe('t 11 is back to normal (2 normal scores in a row)');
    });

    test('with Scores out, a message whose scores were all left out sends nothing on output 1; events still go out', async () => {
      const out = await start({ warmup: 5, clearAfter: 2, scoreEvery: '1h' });
      const values = [10, 11, 10, 11, 10, 11, 10, 11, 100, 150, 10, 11, 10, 11];
      values.forEach((v, i) => send({ payload: reading(i, { t: v }) }));
      await handled(out, values.length);
      // The first score, the two anomalous ones and the first normal one after them; the rest are within the hour.
      expect(out.scores.map((m) => (m.payload as Array<{ ts: number; anomalous: boolean }>).map((s) => [(s.ts - T0) / STEP, s.anomalous]))).toEqual([
        [[0, false]],
        [[8, true]],
        [[9, true]],
        [[10, false]],
      ]);
      expect(out.events.map((m) => [m.topic, (m.payload as { state: string }).state])).toEqual([
        ['d1/t/anomaly', 'firing'],
        ['d1/t/anomaly', 'resolved'],
      ]);
      expect(out.completes).toHaveLength(values.length);
      const st = await stats(out);
      expect([st.scored, st.thinned]).toEqual([values.length, values.length - 4]);
    });

    test('a bad Scores out is a config error', async () => {
      await start({ scoreEvery: 'often' });
      await until('the config error', () => errorCalls(getNode('n1')).length > 0);
      expect(String(errorCalls(getNode('n1'))[0].args[0])).toContain('scoreEvery must be a duration');
    });

    test('maintenance estimates ride on the scores and fire a major event', async () => {
      const out = await start({ warmup: 5, maintenance: JSON.stringify([{ metric: 't', threshold: 90, window: '1h', horizon: '24h' }]) });
      const values = Array.from({ length: 90 }, (_, i) => 20 + i * 0.5 + (i % 2) * 0.2);
      send({ payload: values.map((v, i) => ({ device: 'd1', ts: T0 + i * 60_000, metrics: { t: v } })) });
      await handled(out, 1);
      const scores = out.scores[0].payload as Array<{ maintenance?: { alert: boolean; ttf: number | null; probability: number } }>;
      expect(scores.filter((s) => s.maintenance !== undefined).length).toBeGreaterThan(0);
      const m = out.events.map((e) => clone(e.payload) as Record<string, unknown>).filter((e) => e.rule === 'maintenance');
      expect(m).toHaveLength(1);
      expect(m[0]).toMatchObject({ key: 'd1/t/maintenance', state: 'firing', severity: 'major', metric: 't' });
      expect(m[0].message).toMatch(/^t may go above 90 in .+ \(probability \d+% within 1d\)$/);
      // The rising trend also breaks the range seen so far, so the anomaly count varies; the maintenance count does not.
      const anomalous = (await stats(out)).anomalous;
      await until('the status with maintenance', () =>
        out.statuses.some((s) => (s.status as { text?: string }).text === translate(`${TYPE}.status.counts-maintenance`, { series: 1, learning: 0, anomalous, maintenance: 1 })),
      );
    });
  });

  describe('rejects', () => {
    test('a bad reading leaves on output 2 with msg.error and msg.rejects; nothing on output 1', async () => {
      const out = await start();
      send({ payload: { device: 'd1', ts: T0, metrics: { t: NaN } } });
      send({ payload: 'hello' });
      await handled(out, 2);
      expect(out.scores).toHaveLength(0);
      expect(out.bad).toHaveLength(2);
      expect(out.bad[0].error).toEqual({ code: 'invalid_value', message: 'd1/"t": value NaN is not a finite number', source: TYPE });
      expect(out.bad[0].rejects).toEqual([{ code: 'invalid_value', message: 'd1/"t": value NaN is not a finite number', details: { metric: 't' } }]);
      expect((out.bad[1].error as { code: string }).code).toBe('not_a_reading');
      expect(out.bad[1].payload).toBe('hello');
      expect(out.completes).toHaveLength(2);
      expect(out.caught).toHaveLength(0);
    });

    test('in a batch, the good readings are scored and only the rejected ones leave on output 2', async () => {
      const out = await start();
      const bad = { device: 'no good', ts: T0, metrics: { t: 1 } };
      send({ payload: [reading(0, { t: 1 }), bad, reading(1, { t: 2 })] });
      await handled(out, 1);
      expect((out.scores[0].payload as unknown[]).length).toBe(2);
      expect(out.bad).toHaveLength(1);
      expect(clone(out.bad[0].payload)).toEqual([bad]);
      expect((out.bad[0].rejects as Array<{ index: number }>)[0].index).toBe(1);
    });

    test('with catchRejects a Catch node gets the reject as an error with its code', async () => {
      const out = await start({ catchRejects: true });
      send({ payload: { device: 'd1', ts: 'yesterday', metrics: { t: 1 } } });
      await handled(out, 1);
      expect(out.bad).toHaveLength(1);
      expect(out.caught).toHaveLength(1);
      const err = out.caught[0].error as { message: string; source: { id: string } };
      expect(err.message).toMatch(/^RejectedError: invalid_ts: reading ts must be a finite number/);
      expect(err.source.id).toBe('n1');
    });

    test('an older ts is rejected out_of_order; the same ts again is a redelivery, skipped and counted', async () => {
      const out = await start();
      send({ payload: reading(5, { t: 1 }) });
      send({ payload: reading(4, { t: 2 }) });
      send({ payload: reading(5, { t: 1 }) });
      await handled(out, 3);
      expect(out.bad.map((m) => (m.error as { code: string }).code)).toEqual(['out_of_order']);
      // The redelivery is consumed quietly: an empty list of scores.
      expect(out.scores.map((m) => (m.payload as unknown[]).length)).toEqual([1, 1 - 1]);
      expect(await stats(out)).toMatchObject({ series: 1, scored: 1, skipped: 1, rejected: 1 });
    });
  });

  describe('control', () => {
    test('stats replies on output 1', async () => {
      const out = await start({ maxSeries: 50 });
      send({ payload: [reading(0, { t: 1, u: 2 }), reading(0, { t: 1 }, 'd2')] });
      await handled(out, 1);
      const s = await stats(out);
      expect(s).toEqual({ series: 3, maxSeries: 50, learning: 3, anomalous: 0, maintenance: 0, stateBytes: expect.any(Number), scored: 3, skipped: 0, rejected: 0, evicted: 0, thinned: 0 });
      expect(s.stateBytes).toBeGreaterThan(0);
    });

    test('reset of one device (msg.device as an id or an object), then of all, which deletes the state file', async () => {
      const out = await start({ snapshotInterval: '100ms' });
      send({ payload: [reading(0, { t: 1, u: 2 }), reading(0, { t: 1 }, 'd2'), reading(0, { t: 1 }, 'd3')] });
      await handled(out, 1);
      await until('the state file', () => fs.existsSync(stateFile(out.dir)));
      send({ action: 'reset', device: 'd1' });
      send({ action: 'reset', device: { id: 'd2', type: 'pico-w' } });
      await handled(out, 3);
      expect((await stats(out)).series).toBe(1);
      send({ action: 'reset' });
      await handled(out, 5);
      expect((await stats(out)).series).toBe(0);
      await until('the state file gone', () => !fs.existsSync(stateFile(out.dir)));
      // The reset series start again from scratch.
      send({ payload: reading(0, { t: 1 }) });
      await handled(out, 7);
      expect(out.bad).toHaveLength(0);
    });

    test('reset resolves the alerts that were firing', async () => {
      const out = await start({ warmup: 5 });
      [10, 11, 10, 11, 10, 11, 10, 11, 100].forEach((v, i) => send({ payload: reading(i, { t: v }) }));
      await handled(out, 9);
      send({ action: 'reset' });
      await handled(out, 10);
      expect(out.events.map((m) => `${m.topic} ${(m.payload as { state: string }).state}`)).toEqual(['d1/t/anomaly firing', 'd1/t/anomaly resolved']);
      expect((out.events[1].payload as { message: string }).message).toBe(translate(`${TYPE}.events.forgotten-reset`, { metric: 't', rule: 'anomaly' }));
    });

    test('an unknown action is an error for Catch nodes', async () => {
      const out = await start();
      send({ action: 'explode' });
      await handled(out, 1);
      expect(out.caught).toHaveLength(1);
      expect((out.caught[0].error as { message: string }).message).toBe('Error: unknown msg.action "explode" (known: reset, stats)');
      expect(out.scores).toHaveLength(0);
    });
  });

  describe('config errors', () => {
    test('bad maintenance rules: node.error on deploy, red status, and every message is an error', async () => {
      const out = await start({ maintenance: '[{"metric": "t"}]', threshold: 3 });
      const n = getNode('n1');
      const errs = errorCalls(n).map((c) => String(c.args[0]));
      expect(errs).toEqual([
        'thingwire-anomaly is misconfigured: threshold must be a number from 0 to 1, got 3; maintenance rule 1: "threshold" must be a finite number, got undefined',
      ]);
      expect(statusCalls(n)).toContainEqual({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config-error` });
      send({ payload: reading(0, { t: 1 }) });
      send({ payload: reading(1, { t: 1 }) });
      await handled(out, 2);
      expect(out.caught).toHaveLength(2);
      expect((out.caught[0].error as { message: string }).message).toBe(`Error: ${errs[0]}`);
      expect(out.scores).toHaveLength(0);
      expect(fs.existsSync(path.join(out.dir, 'state'))).toBe(false);
    });

    test('a model the estimator does not know is a config error too', async () => {
      const out = await start({ maintenance: '[{"metric": "t", "threshold": 5, "model": "magic"}]' });
      expect(errorCalls(getNode('n1')).map((c) => String(c.args[0]))).toEqual([expect.stringMatching(/^thingwire-anomaly is misconfigured: maintenance rule for "t": model must be one of /)]);
      send({ payload: reading(0, { t: 1 }) });
      await handled(out, 1);
      expect(out.caught).toHaveLength(1);
    });
  });

  describe('state', () => {
    const N = 300;
    const values = series(N + 1);
    const batch = (from: number, to: number): Array<Record<string, unknown>> => values.slice(from, to).map((v, i) => reading(from + i, { temperature: v }));

    test('a restart keeps the warm-up: the next score is not learning and equals an uninterrupted run', async () => {
      const dir = tempDir();
      let out = await start({}, dir);
      send({ payload: batch(0, N) });
      await handled(out, 1);
      await helper.unload();
      // Saved on close.
      const saved = JSON.parse(fs.readFileSync(stateFile(dir), 'utf8')) as { v: number; groups: unknown[] };
      expect(saved.v).toBe(1);
      expect(saved.groups).toHaveLength(1);

      out = await start({}, dir);
      send({ payload: reading(N, { temperature: values[N] }) });
      await handled(out, 1);
      // (After the first answer: in a worker thread a warning about the state would have come before it.)
      expect(warnCalls()).toEqual([]);
      const [score] = clone(out.scores[0].payload) as Array<Record<string, unknown>>;
      const ref = new AnomalyDetector();
      for (let i = 0; i < N; i++) ref.update(T0 + i * STEP, values[i]);
      const want = ref.update(T0 + N * STEP, values[N]);
      expect(score.learning).toBe(false);
      expect(score).toEqual(clone({ device: 'd1', metric: 'temperature', ts: T0 + N * STEP, value: values[N], ...want }));
      // Time order survives too: the last value before the restart is a redelivery now.
      send({ payload: reading(N - 1, { temperature: 1 }) });
      await handled(out, 2);
      expect(out.bad.map((m) => (m.error as { code: string }).code)).toEqual(['out_of_order']);
    });

    test('the state is saved in the background when it changed', async () => {
      const out = await start({ snapshotInterval: '100ms' });
      send({ payload: batch(0, 10) });
      await handled(out, 1);
      await until('the periodic save', () => fs.existsSync(stateFile(out.dir)), 3000);
      const first = fs.statSync(stateFile(out.dir)).mtimeMs;
      // Nothing changed: nothing is written.
      await sleep(350);
      expect(fs.statSync(stateFile(out.dir)).mtimeMs).toBe(first);
      send({ payload: batch(10, 11) });
      await handled(out, 2);
      await until('the next save', () => (JSON.parse(fs.readFileSync(stateFile(out.dir), 'utf8')) as { counts: number[] }).counts[0] === 11, 3000);
    });

    test('close clears the save timer; removing the node deletes its state', async () => {
      const out = await start({ snapshotInterval: '100ms' });
      send({ payload: batch(0, 10) });
      await handled(out, 1);
      await until('the periodic save', () => fs.existsSync(stateFile(out.dir)), 3000);
      // A redeploy without the node: close(removed = true).
      await (helper as unknown as { setFlows(f: FlowNodeConfig[], type: string): Promise<void> }).setFlows(positioned([TAB, { id: 'other', type: 'helper', z: 'tab1' }]), 'full');
      expect(fs.existsSync(stateFile(out.dir))).toBe(false);
      // No timer left behind to write it again.
      await sleep(350);
      expect(fs.existsSync(stateFile(out.dir))).toBe(false);
      expect(fs.readdirSync(path.dirname(stateFile(out.dir)))).toEqual([]);
    });

    test('after close nothing writes the file any more', async () => {
      const dir = tempDir();
      const out = await start({ snapshotInterval: '100ms' }, dir);
      send({ payload: batch(0, 10) });
      await handled(out, 1);
      await helper.unload();
      const text = fs.readFileSync(stateFile(dir), 'utf8');
      const mtime = fs.statSync(stateFile(dir)).mtimeMs;
      await sleep(350);
      expect(fs.readFileSync(stateFile(dir), 'utf8')).toBe(text);
      expect(fs.statSync(stateFile(dir)).mtimeMs).toBe(mtime);
    });

    test('a corrupt state file: warn, move it aside, start empty', async () => {
      const dir = tempDir();
      fs.mkdirSync(path.dirname(stateFile(dir)), { recursive: true });
      fs.writeFileSync(stateFile(dir), '{"v": 1, "groups": [');
      const out = await start({}, dir);
      // In a worker thread the state is read there and the warning comes a moment later.
      await until('the warning', () => warnCalls().length > 0);
      const warns = warnCalls().map((c) => String(c.args[0]));
      expect(warns).toHaveLength(1);
      expect(warns[0]).toMatch(/^saved state not used, starting empty: state file .* is unusable \(.*\); moved to .*\.corrupt-\d+$/);
      expect(fs.existsSync(stateFile(dir))).toBe(false);
      expect(fs.readdirSync(path.dirname(stateFile(dir))).filter((f) => f.includes('.corrupt-'))).toHaveLength(1);
      expect((await stats(out)).series).toBe(0);
      send({ payload: reading(0, { t: 1 }) });
      await handled(out, 2);
      expect((out.scores[1].payload as unknown[]).length).toBe(1);
    });

    test('state saved with other detector settings is moved aside with the reason', async () => {
      const dir = tempDir();
      let out = await start({}, dir);
      send({ payload: batch(0, 5) });
      await handled(out, 1);
      await helper.unload();
      out = await start({ threshold: 0.6 }, dir);
      await until('the warning', () => warnCalls().length > 0);
      const warns = warnCalls().map((c) => String(c.args[0]));
      expect(warns).toEqual([expect.stringMatching(/^saved state not used, starting empty: the state was saved with other detector settings .*; state file .* is unusable \(unexpected content\); moved to /)]);
      expect((await stats(out)).series).toBe(0);
    });

    test('a hostile state file (valid JSON, wrong shapes) is refused, never a crash', async () => {
      const dir = tempDir();
      fs.mkdirSync(path.dirname(stateFile(dir)), { recursive: true });
      fs.writeFileSync(stateFile(dir), JSON.stringify({ v: 1, config: JSON.stringify({ threshold: 0.57, warmup: 150, daily: true, weekly: true }), clock: 1, counts: [], groups: [['d1', [{ m: '__proto__', t: 1, u: 1, a: {}, e: [0, 0, 0, 0, 0] }]]] }));
      const out = await start({}, dir);
      await until('the warning', () => warnCalls().length > 0);
      expect(warnCalls().map((c) => String(c.args[0]))).toEqual([expect.stringMatching(/malformed series of "d1"/)]);
      expect((await stats(out)).series).toBe(0);
    });

    test('with persist off nothing is written', async () => {
      const dir = tempDir();
      const out = await start({ persist: false, snapshotInterval: '100ms' }, dir);
      send({ payload: batch(0, 5) });
      await handled(out, 1);
      await sleep(250);
      await helper.unload();
      expect(fs.existsSync(path.join(dir, 'state'))).toBe(false);
    });
  });
});
