/**
 * thingwire-retention in a real Node-RED runtime (node-red-node-test-helper) with a real embedded
 * store (DuckDB) in a temp DATA_DIR: a run moves days 40-60 days old to warm and cold Parquet files
 * under <DATA_DIR>/retention/<store id>/ and the store's queries still answer them (tiered read);
 * status; restore writes them back into the hot store; bad requests, a misconfigured policy and a
 * second retention node on the same store are refused clearly (Catch, status); closing releases the
 * manifest (a redeploy works, also one right after a deploy). Each message gets exactly one done.
 * Also the editor (retention.html, run in a vm): its default policy, checks and timeline arithmetic
 * agree with policy.ts; and the message catalogue has every key retention.ts uses.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import retentionNode from '../../nodes/retention/retention';
import storeNode from '../../nodes/store/store';
import { RETENTION_DEFAULTS } from '../../nodes/retention/config';
import type { StoreNode } from '../../nodes/store/config';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { DEFAULT_POLICY, describePolicy, parsePolicy, type RetentionRule } from '../../nodes/lib/retention/policy';
import { DAY_MS, dayOf, dayStart, startOfUtcDay } from '../../nodes/lib/retention/manifest';
import type { RestoreReport, RetentionSummary, RunReport } from '../../nodes/lib/retention/run';
import { STORE_ENV_VARS } from '../../nodes/lib/store/env';
import type { FieldValue, RangeQuery } from '../../nodes/lib/store/types';
import {
  TAB,
  errorCalls,
  getNode,
  helper,
  positioned,
  record,
  setDataDir,
  settle,
  statusCalls,
  translate,
  until,
  useHelper,
  useTempDirs,
  withCatalogue,
  type FlowNodeConfig,
  type NodeMsg,
} from './harness';

useHelper();
const tempDir = useTempDirs('retention-nodes');

const TYPE = 'thingwire-retention';
const NODES = [withCatalogue(storeNode), withCatalogue(retentionNode)];
const NODE_DIR = path.resolve(__dirname, '..', '..', 'nodes', 'retention');

// The env backend reads process.env: keep the runner's INFLUX_* out of these tests (the store is embedded anyway).
const savedEnv: Record<string, string | undefined> = {};
beforeAll(() => {
  for (const k of Object.keys(STORE_ENV_VARS)) {
    savedEnv[k] = process.env[k];
    delete process.env[k];
  }
});
afterAll(() => {
  for (const [k, v] of Object.entries(savedEnv)) if (v !== undefined) process.env[k] = v;
});

/** hot 30 d, warm to 40 d, cold forever. */
const POLICY = { rules: [{ name: 'raw', measurement: 'telemetry', hotDays: 30, warmDays: 10, coldDays: null }] };

function retentionConfig(extra: Partial<FlowNodeConfig> = {}): FlowNodeConfig {
  return { id: 'r1', type: TYPE, z: 'tab1', name: '', v: 1, store: 'store1', policy: JSON.stringify(POLICY), interval: '0', startDelay: '1m', restoreDays: 7, maxPartitions: 100, archiveDir: '', wires: [['out']], ...extra };
}

function flow(retention: FlowNodeConfig[]): FlowNodeConfig[] {
  const ids = retention.map((r) => r.id);
  return positioned([
    TAB,
    { id: 'store1', type: 'thingwire-store', name: 'store', v: 1, backend: 'embedded', flushInterval: 50 },
    ...retention,
    { id: 'out', type: 'helper', z: 'tab1' },
    { id: 'complete', type: 'complete', z: 'tab1', scope: ids, uncaught: false, wires: [['completes']] },
    { id: 'completes', type: 'helper', z: 'tab1' },
    { id: 'catch', type: 'catch', z: 'tab1', scope: ids, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab1' },
  ]);
}

interface Outputs {
  out: NodeMsg[];
  completes: NodeMsg[];
  caught: NodeMsg[];
  dir: string;
}

async function start(retention: FlowNodeConfig[] = [retentionConfig()], dir = tempDir()): Promise<Outputs> {
  setDataDir(dir);
  await helper.load(NODES, flow(retention));
  return { out: record('out'), completes: record('completes'), caught: record('caught'), dir };
}

function storeOf(): StoreNode {
  return getNode('store1') as unknown as StoreNode;
}

function lastStatus(id: string): { fill?: string; shape?: string; text?: string } | undefined {
  return statusCalls(getNode(id)).at(-1);
}

/** Waits until node `id` has opened its manifest (its status says how many partitions it holds). */
async function opened(id = 'r1'): Promise<void> {
  await until(`${id} to start`, () => /^warm \d+ · cold \d+ · /.test(lastStatus(id)?.text ?? ''), 10_000);
}

let msgNo = 0;

/**
 * Sends `msg` to node `id` and waits until it is done (Complete or Catch); returns what came out for
 * it, and checks the message was done exactly once.
 */
async function ask(out: Outputs, msg: NodeMsg, id = 'r1'): Promise<{ sent: NodeMsg[]; error?: string }> {
  const msgid = `ret-${++msgNo}`;
  getNode(id).receive({ ...msg, _msgid: msgid });
  const mine = (list: NodeMsg[]): NodeMsg[] => list.filter((m) => m._msgid === msgid);
  await until(`${msgid} to be done`, () => mine(out.completes).length + mine(out.caught).length > 0, 60_000);
  await settle();
  const completes = mine(out.completes);
  const caught = mine(out.caught);
  expect(completes.length + caught.length).toBe(1);
  return { sent: mine(out.out), ...(caught.length ? { error: (caught[0].error as { message: string }).message } : {}) };
}

// ---- data ------------------------------------------------------------------------------------

const NOW = Date.now();
const TODAY = startOfUtcDay(NOW);
const DEVICES = ['d1', 'd2'];
/**
 * Ages in days of the old points: 39.25, 39.75, ..., 58.75 (40 per device). The youngest are in a warm day (30-40 days
 * old) at any time of day: starting at 40.25 they were all cold between 00:00 and 06:00 UTC and the test failed then.
 */
const AGES = Array.from({ length: 40 }, (_, i) => 39.25 + i * 0.5);

interface Row {
  device: string;
  ts: number;
  fields: Record<string, FieldValue>;
}

function oldRows(): Row[] {
  const rows: Row[] = [];
  for (const device of DEVICES) {
    AGES.forEach((age, i) => {
      rows.push({ device, ts: Math.round(NOW - age * DAY_MS), fields: { temperature: 20.25 + i, count: BigInt(i), ok: i % 2 === 0, note: `n${i}` } });
    });
  }
  return rows;
}

/** One point per device an hour ago: stays hot. */
function recentRows(): Row[] {
  return DEVICES.map((device) => ({ device, ts: NOW - 3_600_000, fields: { temperature: 1.5, count: 7n, ok: true, note: 'recent' } }));
}

/** Writes rows straight into the store's backend (as a writer would have, long ago). */
async function writeRows(rows: Row[]): Promise<void> {
  const lines = rows.map((r) => encodePoint({ measurement: 'telemetry', tags: { device: r.device }, fields: r.fields, ts: r.ts }));
  await storeOf().service!.backend.write({ lines: lines.join('\n'), count: lines.length });
}

/** Values stored (one per field per row). */
const VALUES_PER_ROW = 4;

const QUERY: RangeQuery = { measurement: 'telemetry', fields: ['temperature', 'count', 'ok', 'note'], start: NOW - 61 * DAY_MS, end: NOW + 1000 };

/** The UTC days of the old rows, and the tier each should reach (past warm: end <= today - 40 d). */
function expectedDays(): Map<string, 'warm' | 'cold'> {
  const days = new Map<string, 'warm' | 'cold'>();
  for (const r of oldRows()) {
    const day = dayOf(r.ts);
    days.set(day, dayStart(day) + DAY_MS <= TODAY - 40 * DAY_MS ? 'cold' : 'warm');
  }
  return days;
}

function pointCount(series: Array<{ points: unknown[] }>): number {
  return series.reduce((n, s) => n + s.points.length, 0);
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  return out.sort();
}

// ---- the node --------------------------------------------------------------------------------

describe('misconfigured', () => {
  test('a bad policy and interval: one error listing every problem, red status, every message answered with the error', async () => {
    const bad = { rules: [{ name: 'raw', measurement: 'telemetry', hotDays: 0, warmDays: 10, coldDays: null }, { name: 'raw2', measurement: 'telemetry', hotDays: 1, warmDays: 0 }] };
    const out = await start([retentionConfig({ policy: JSON.stringify(bad), interval: 'soon' })]);
    const r1 = getNode('r1');
    const errors = errorCalls(r1).map((c) => String(c.args[0]));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^thingwire-retention is misconfigured: /);
    expect(errors[0]).toContain('policy: rule "raw": hotDays must be a whole number >= 1 (got 0)');
    expect(errors[0]).toContain('policy: rule "raw2": coldDays is missing');
    expect(errors[0]).toContain('interval must be a duration such as "1h"');
    expect(lastStatus('r1')).toEqual({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config-error` });

    const a = await ask(out, { action: 'run' });
    expect(a.sent).toHaveLength(0);
    expect(a.error).toBe(`Error: ${errors[0]}`);
    const b = await ask(out, { action: 'status' });
    expect(b.error).toBe(`Error: ${errors[0]}`);
    // Nothing was created for the store.
    expect(fs.existsSync(path.join(out.dir, 'retention'))).toBe(false);
  });

  test('invalid JSON in the policy', async () => {
    const out = await start([retentionConfig({ policy: '{"rules": [' })]);
    const errors = errorCalls(getNode('r1')).map((c) => String(c.args[0]));
    expect(errors).toEqual([expect.stringContaining('thingwire-retention is misconfigured: policy: retention policy is not valid JSON')]);
    expect((await ask(out, {})).error).toBe(`Error: ${errors[0]}`);
  });

  test('no store chosen', async () => {
    const out = await start([retentionConfig({ store: '' })]);
    const errors = errorCalls(getNode('r1')).map((c) => String(c.args[0]));
    expect(errors).toEqual([translate(`${TYPE}.errors.no-store`)]);
    expect(errors[0]).toContain('needs a thingwire-store');
    expect(lastStatus('r1')?.fill).toBe('red');
    expect((await ask(out, { action: 'run' })).error).toBe(`Error: ${errors[0]}`);
  });
});

describe('tiering through the node', () => {
  test('run moves old days to warm and cold, queries still read them; status; restore brings them back', async () => {
    const out = await start();
    await opened();
    expect(lastStatus('r1')).toEqual({ fill: 'grey', shape: 'ring', text: translate(`${TYPE}.status.idle`, { warm: 0, cold: 0 }) });
    const old = oldRows();
    await writeRows([...old, ...recentRows()]);
    const service = storeOf().service!;
    const before = await service.query(QUERY);
    expect(pointCount(before.series)).toBe((old.length + DEVICES.length) * VALUES_PER_ROW);

    // ---- run
    const run = await ask(out, { action: 'run', topic: 'mine', extra: 'kept' });
    expect(run.error).toBeUndefined();
    expect(run.sent).toHaveLength(1);
    expect(run.sent[0]).toMatchObject({ topic: 'run', extra: 'kept' });
    const report = run.sent[0].payload as RunReport;
    const days = expectedDays();
    expect(report.errors).toEqual([]);
    expect(report.deleted).toEqual([]);
    expect(report.moved.map((m) => [m.day, m.tier]).sort()).toEqual([...days.entries()].sort());
    expect(report.moved.every((m) => m.rule === 'raw' && m.rows === m.hotRows && m.bytes > 0)).toBe(true);
    expect(report.hotRowsDeleted).toBe(old.length * VALUES_PER_ROW);
    expect(report.moved.reduce((n, m) => n + m.rows, 0)).toBe(old.length * VALUES_PER_ROW);
    const warm = [...days.values()].filter((t) => t === 'warm').length;
    const cold = days.size - warm;
    expect(warm).toBeGreaterThan(0);
    expect(cold).toBeGreaterThan(0);

    // ---- files under <DATA_DIR>/retention/<store id>/
    const root = path.join(out.dir, 'retention', 'store1');
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'manifest.json'), 'utf8')) as { version: number; partitions: Record<string, { tier: string; file: { path: string } }> };
    expect(manifest.version).toBe(1);
    expect(Object.keys(manifest.partitions).sort()).toEqual([...days.keys()].map((d) => `raw|${d}`).sort());
    const want = [...days.entries()].map(([d, tier]) => (tier === 'warm' ? `warm/raw/${d.slice(0, 4)}/${d}.g1.parquet` : `archive/cold/raw/${d.slice(0, 4)}/${d}.g1.parquet`)).sort();
    expect(filesUnder(root).filter((f) => f.endsWith('.parquet'))).toEqual(want);
    for (const [key, e] of Object.entries(manifest.partitions)) {
      expect(e.tier).toBe(days.get(key.slice(4)));
      expect(fs.existsSync(path.join(root, e.tier === 'cold' ? 'archive' : '', e.file.path))).toBe(true);
    }

    // ---- the hot store holds only the recent points; queries through the store read all tiers
    const hot = await service.backend.query(QUERY);
    expect(pointCount(hot.series)).toBe(DEVICES.length * VALUES_PER_ROW);
    expect(await service.query(QUERY)).toEqual(before);
    await until('the status after the run', () => lastStatus('r1')?.text === translate(`${TYPE}.status.ran`, { warm, cold, moved: days.size, deleted: 0, at: new Date(report.finished).toISOString().slice(11, 16) }));
    expect(lastStatus('r1')?.fill).toBe('green');

    // ---- status (msg.topic works as the action)
    const st = await ask(out, { topic: 'status' });
    expect(st.sent).toHaveLength(1);
    const summary = st.sent[0].payload as RetentionSummary & { root: string; archive: string; policy: unknown };
    expect(st.sent[0].topic).toBe('status');
    expect(summary.partitions).toEqual({ warm, cold, deleted: 0, pending: 0, restored: 0 });
    expect(summary.rows.warm + summary.rows.cold).toBe(old.length * VALUES_PER_ROW);
    expect(summary.running).toBe(false);
    expect(summary.lastRun).toEqual(report);
    expect(summary.root).toBe(root);
    expect(summary.archive).toBe(`archive directory ${path.join(root, 'archive')}`);
    expect(summary.policy).toEqual(POLICY);

    // ---- a second run has nothing to do
    const again = await ask(out, {});
    expect((again.sent[0].payload as RunReport).moved).toEqual([]);
    expect((again.sent[0].payload as RunReport).hotRowsDeleted).toBe(0);

    // ---- restore
    const rs = await ask(out, { action: 'restore', payload: { start: '-60d' } });
    expect(rs.error).toBeUndefined();
    expect(rs.sent[0].topic).toBe('restore');
    const restored = rs.sent[0].payload as RestoreReport;
    expect(restored.errors).toEqual([]);
    expect(restored.rows).toBe(old.length * VALUES_PER_ROW);
    expect(restored.partitions.map((p) => [p.day, p.tier]).sort()).toEqual([...days.entries()].sort());
    expect(restored.until - restored.started).toBe(7 * DAY_MS);
    // Back in the hot store, and read once (from hot) through the store.
    expect(await service.backend.query(QUERY)).toEqual(before);
    expect(await service.query(QUERY)).toEqual(before);
    const after = await ask(out, { action: 'status' });
    expect((after.sent[0].payload as RetentionSummary).partitions.restored).toBe(days.size);
    expect(out.caught).toHaveLength(0);
  }, 120_000);

  test('bad restore payloads and unknown actions: done(err) with a clear message, nothing sent', async () => {
    const out = await start();
    await opened();
    const cases: Array<[NodeMsg, string]> = [
      [{ action: 'restore' }, 'a restore needs msg.payload = { start, end?, rules? }'],
      [{ action: 'restore', payload: 'yesterday' }, 'a restore needs msg.payload = { start, end?, rules? }'],
      [{ action: 'restore', payload: { start: 'last week' } }, 'start must be ms since the epoch, an ISO 8601 date or a time before now such as "-30d" (got "last week")'],
      [{ action: 'restore', payload: { start: '-1d', end: '-2d' } }, 'restore range is empty: end ('],
      [{ action: 'restore', payload: { start: '-1d', rules: 'raw' } }, 'rules must be an array of rule names'],
      [{ action: 'purge' }, 'unknown msg.action "purge": use run, restore or status'],
    ];
    for (const [msg, message] of cases) {
      const r = await ask(out, msg);
      expect(r.sent).toHaveLength(0);
      expect(r.error).toContain(message);
    }
    // A valid restore of a range with nothing in it: an empty report.
    const ok = await ask(out, { action: 'restore', payload: { start: Date.now() - DAY_MS, end: new Date().toISOString() } });
    expect(ok.error).toBeUndefined();
    expect(ok.sent[0].payload).toMatchObject({ partitions: [], rows: 0, errors: [] });
  });
});

describe('lifecycle', () => {
  test('close releases the manifest: the same flow deploys again and finds its partitions', async () => {
    const dir = tempDir();
    let out = await start([retentionConfig()], dir);
    await opened();
    await writeRows(oldRows());
    const first = await ask(out, { action: 'run' });
    const moved = (first.sent[0].payload as RunReport).moved.length;
    expect(moved).toBe(expectedDays().size);
    const before = await storeOf().service!.query(QUERY);

    await helper.unload();
    out = await start([retentionConfig()], dir);
    await opened();
    const warm = [...expectedDays().values()].filter((t) => t === 'warm').length;
    expect(lastStatus('r1')?.text).toBe(translate(`${TYPE}.status.idle`, { warm, cold: moved - warm }));
    expect(errorCalls(getNode('r1'))).toHaveLength(0);
    // The new store node reads the tiers through the new retention node.
    expect(await storeOf().service!.query(QUERY)).toEqual(before);
    expect((await ask(out, { action: 'run' })).error).toBeUndefined();
  }, 60_000);

  test('a redeploy right after a deploy (closed while still opening) starts cleanly', async () => {
    const dir = tempDir();
    // A large manifest (old deleted days of rules no longer in the policy) makes the opening take a while.
    const partitions: Record<string, unknown> = {};
    for (let r = 0; r < 8; r++) {
      for (let t = 0; t < 10_000; t++) {
        const day = dayOf(t * DAY_MS);
        partitions[`old${r}|${day}`] = { rule: `old${r}`, measurement: 'm', day, start: t * DAY_MS, end: (t + 1) * DAY_MS, tier: 'deleted', generation: 1, history: [{ at: 0, what: 'deleted past the end of its last tier' }] };
      }
    }
    fs.mkdirSync(path.join(dir, 'retention', 'store1'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'retention', 'store1', 'manifest.json'), JSON.stringify({ version: 1, partitions }));
    await start([retentionConfig()], dir);
    expect(lastStatus('r1')).toBeUndefined(); // still opening
    await helper.unload(); // at once: the manifest may still be opening
    const out = await start([retentionConfig()], dir);
    await until('r1 to start or fail', () => lastStatus('r1') !== undefined, 20_000);
    expect(errorCalls(getNode('r1')).map((c) => String(c.args[0]))).toEqual([]);
    await opened();
    expect((await ask(out, { action: 'status' })).error).toBeUndefined();
  }, 60_000);

  test('two retention nodes on one store: one runs, the other says why it cannot and refuses messages', async () => {
    const out = await start([retentionConfig(), retentionConfig({ id: 'r2' })]);
    const failed = (id: string): boolean => lastStatus(id)?.fill === 'red';
    await until('one node to start and one to fail', () => {
      const s = ['r1', 'r2'].map((id) => lastStatus(id)?.text ?? '');
      return s.some((t) => /^warm \d+ · cold \d+ · /.test(t)) && (failed('r1') || failed('r2'));
    });
    const [bad, good] = failed('r1') ? ['r1', 'r2'] : ['r2', 'r1'];
    expect(failed(good)).toBe(false);
    const errors = errorCalls(getNode(bad)).map((c) => String(c.args[0]));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBe(`store store already has a thingwire-retention node (${good}): one per store; remove one of them`);
    expect(lastStatus(bad)?.text).toBe('thingwire-retention.status.config-error');
    const r = await ask(out, { action: 'status' }, bad);
    expect(r.sent).toHaveLength(0);
    expect(r.error).toContain('already has a thingwire-retention node');
    const ok = await ask(out, { action: 'status' }, good);
    expect(ok.error).toBeUndefined();
    expect(ok.sent).toHaveLength(1);
  });
});

// ---- the editor and the catalogue ------------------------------------------------------------

interface EditorHelpers {
  parsePolicy(text: string): { rules: RetentionRule[]; problems: string[] };
  segments(rule: RetentionRule): Array<{ tier: string; from: number; to: number | null; text: string }>;
  describe(rule: RetentionRule): string;
  widths(segs: Array<{ from: number; to: number | null }>): number[];
  DEFAULT_POLICY: string;
}

interface NodeDefinition {
  category: string;
  defaults: Record<string, { value: unknown; type?: string; required?: boolean; validate?: (v: unknown, opt?: object) => boolean | string }>;
  inputs: number;
  outputs: number;
  icon: string;
  tw: EditorHelpers;
}

/** Runs the editor script of retention.html with a stub RED; returns what it registered. */
function loadEditor(): { type: string; def: NodeDefinition } {
  const html = fs.readFileSync(path.join(NODE_DIR, 'retention.html'), 'utf8');
  const script = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html)![1];
  let registered: { type: string; def: NodeDefinition } | undefined;
  const RED = { nodes: { registerType: (type: string, def: NodeDefinition) => (registered = { type, def }) } };
  vm.runInNewContext(script, { RED });
  return registered!;
}

describe('editor (retention.html)', () => {
  const { type, def } = loadEditor();
  const valid = (field: string, v: unknown): boolean | string => def.defaults[field].validate!(v, {});

  test('registers the node with the defaults config.ts expects', () => {
    expect(type).toBe(TYPE);
    expect(def).toMatchObject({ category: 'Thingwire', inputs: 1, outputs: 1, icon: 'font-awesome/fa-archive' });
    expect(def.defaults.policy.value).toBe(JSON.stringify(DEFAULT_POLICY));
    expect(def.defaults.store).toMatchObject({ type: 'thingwire-store', required: true });
    expect(def.defaults.interval.value).toBe(RETENTION_DEFAULTS.interval);
    expect(def.defaults.startDelay.value).toBe(RETENTION_DEFAULTS.startDelay);
    expect(def.defaults.restoreDays.value).toBe(RETENTION_DEFAULTS.restoreDays);
    expect(def.defaults.maxPartitions.value).toBe(RETENTION_DEFAULTS.maxPartitions);
    expect(def.defaults.archiveDir.value).toBe('');
    expect(def.defaults.v.value).toBe(1);
  });

  test('reads policies as policy.ts does, and the timeline text is describePolicy\'s', () => {
    const policies: unknown[] = [
      DEFAULT_POLICY,
      [
        { name: 'a', measurement: 'm', hotDays: '2w', warmDays: '1y', coldDays: 'forever' },
        { name: 'b', measurement: 'n', where: { site: 'x' }, hotDays: 1, warmDays: 0, coldDays: 0 },
        { name: 'c', measurement: 'n', where: { site: 'y' }, hotDays: '30d', warmDays: 400, coldDays: '3y' },
        { name: 'd', measurement: 'o', hotDays: 7, warmDays: 0, coldDays: 365 },
      ],
    ];
    for (const p of policies) {
      const mine = def.tw.parsePolicy(JSON.stringify(p));
      expect(mine.problems).toEqual([]);
      const theirs = parsePolicy(p);
      expect(mine.rules).toEqual(theirs.rules);
      for (const rule of theirs.rules) {
        expect(def.tw.describe(rule)).toBe(describePolicy(rule));
        const segs = def.tw.segments(rule);
        // Cumulative ages: each tier starts where the one before ends; only the last is open-ended.
        segs.forEach((s, i) => {
          if (i > 0) expect(s.from).toBe(segs[i - 1].to);
          expect(s.to === null).toBe(i === segs.length - 1);
        });
        const w = def.tw.widths(segs);
        expect(w.reduce((n, x) => n + x, 0)).toBeCloseTo(100, 6);
        expect(Math.min(...w)).toBeGreaterThanOrEqual(14);
      }
    }
    expect(def.tw.segments({ name: 'x', measurement: 'm', hotDays: 30, warmDays: 10, coldDays: null }).map((s) => [s.tier, s.from, s.to])).toEqual([
      ['hot', 0, 30],
      ['warm', 30, 40],
      ['cold', 40, null],
    ]);
    expect(def.tw.describe({ name: 'x', measurement: 'm', hotDays: 30, warmDays: 365, coldDays: null })).toBe('hot 30 d > warm Parquet to 1 y 30 d > cold archive forever');
  });

  test('flags what the runtime refuses, with a message', () => {
    const rule = { name: 'raw', measurement: 'telemetry', hotDays: 30, warmDays: 10, coldDays: null };
    const bad: Array<[unknown, string]> = [
      ['{"rules": [', 'not valid JSON'],
      [{ rules: 'x' }, 'must be an object with a "rules" list'],
      [{ rules: [{ ...rule, hotDays: 0 }] }, 'hotDays must be a whole number >= 1'],
      [{ rules: [{ ...rule, warmDays: '1.5d' }] }, 'warmDays must be a whole number of days'],
      [{ rules: [{ ...rule, coldDays: undefined }] }, 'coldDays is missing'],
      [{ rules: [{ ...rule, colddays: 1 }] }, 'unknown key "colddays"'],
      [{ rules: [rule, { ...rule, name: 'RAW', where: { level: '1m' } }] }, 'name is used twice'],
      [{ rules: [rule, { ...rule, name: 'other', where: { level: '1m' } }] }, 'selects data rule "raw" also selects'],
      [{ rules: [{ ...rule, name: 'no spaces' }] }, 'name must be 1-64 letters'],
      [{ rules: [{ ...rule, where: { level: '' } }] }, 'where.level must be a non-empty string'],
      [{ rules: [{ ...rule, measurement: '' }] }, 'measurement must be a string'],
      [{ rules: [rule], extra: 1 }, 'unknown key "extra"'],
    ];
    for (const [p, message] of bad) {
      const text = typeof p === 'string' ? p : JSON.stringify(p);
      expect(() => parsePolicy(text)).toThrow();
      const v = valid('policy', text);
      expect(typeof v).toBe('string');
      expect(v).toContain(message);
    }
    expect(valid('policy', JSON.stringify(DEFAULT_POLICY))).toBe(true);
    expect(valid('policy', '')).toBe(true); // the default policy
    expect(valid('policy', JSON.stringify([rule]))).toBe(true);
  });

  test('settings checks match config.ts', () => {
    for (const v of ['1h', '0', '60s', '1m', '90min', '', 3_600_000]) expect(valid('interval', v)).toBe(true);
    for (const v of ['30s', 'soon', '-1h', '60000000000']) expect(valid('interval', v)).toBe(false);
    for (const v of ['0', '1m', '500ms', '']) expect(valid('startDelay', v)).toBe(true);
    expect(valid('startDelay', 'later')).toBe(false);
    for (const v of [1, '7', 3650, 0.5]) expect(valid('restoreDays', v)).toBe(true);
    for (const v of [0, -1, 3651, 'x']) expect(valid('restoreDays', v)).toBe(false);
    for (const v of [1, '100', 100_000]) expect(valid('maxPartitions', v)).toBe(true);
    for (const v of [0, 1.5, 100_001]) expect(valid('maxPartitions', v)).toBe(false);
  });
});

describe('message catalogue', () => {
  const catalogue = JSON.parse(fs.readFileSync(path.join(NODE_DIR, 'locales', 'en-US', 'retention.json'), 'utf8')) as Record<string, unknown>;
  const lookup = (key: string): unknown => key.split('.').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), catalogue);

  test('every key retention.ts uses exists, with only the placeholders it fills in', () => {
    const source = fs.readFileSync(path.join(NODE_DIR, 'retention.ts'), 'utf8');
    const calls = [...source.matchAll(/\b_\('([^']+)'(?:, (\{[^\n]*?\}|\w+))?\)/g)];
    expect(calls.length).toBe(20);
    for (const [, key, subs = ''] of calls) {
      const text = lookup(`${TYPE}.${key}`);
      expect([key, typeof text]).toEqual([key, 'string']);
      // Names the call passes: `name:` entries, shorthands, and `base` = { warm, cold }.
      const given = new Set([...subs.matchAll(/(?:^|[{,]\s*)(?:\.\.\.)?(\w+)/g)].map((m) => m[1]).flatMap((n) => (n === 'base' ? ['warm', 'cold'] : [n])));
      for (const [, name] of (text as string).matchAll(/__([\w-]+)__/g)) expect([key, name, given.has(name)]).toEqual([key, name, true]);
    }
    expect(typeof lookup(`${TYPE}.status.config-error`)).toBe('string');
    for (const k of ['default', 'name', 'store', 'policy', 'interval', 'startDelay', 'restoreDays', 'maxPartitions', 'archiveDir']) expect(typeof lookup(`${TYPE}.label.${k}`)).toBe('string');
  });

  test('every data-i18n key of the dialog exists', () => {
    const html = fs.readFileSync(path.join(NODE_DIR, 'retention.html'), 'utf8');
    const keys = [...html.matchAll(/data-i18n="(?:\[\w+\])?([^"]+)"/g), ...html.matchAll(/_\(TYPE \+ '([^']+)'\)/g)].map((m) => (m[1].startsWith('.') ? TYPE + m[1] : m[1]));
    expect(keys.length).toBeGreaterThan(10);
    for (const k of keys) expect([k, typeof lookup(k)]).toEqual([k, 'string']);
  });

  test('the help names every action and report field', () => {
    const help = fs.readFileSync(path.join(NODE_DIR, 'locales', 'en-US', 'retention.html'), 'utf8');
    expect(help).toContain(`data-help-name="${TYPE}"`);
    for (const word of ['run', 'restore', 'status', 'moved', 'deleted', 'skipped', 'hotRowsDeleted', 'collected', 'errors', 'manifest.json', 'InfluxDB 2.x/3.x']) expect(help).toContain(word);
  });
});
