/**
 * The anomaly scorer in a worker thread (nodes/anomaly/remote.ts, remote-wire.ts, scorer-worker.ts): what it gives
 * for every message equals what the scorer in the thread gives for it (scores, their order and objects, events and
 * their texts, rejects, skips, thinning, stats), for clean and hostile input, pipelined; its state file continues a
 * run exactly; a stopped worker fails only what it held and another takes over; the queue is bounded.
 * The worker runs the built script (dist/nodes/anomaly/scorer-worker.js: `npm test` builds first).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { MaintenanceRule } from '../../nodes/anomaly/config';
import { packReadings, unpackReadings } from '../../nodes/anomaly/remote-wire';
import { RemoteScorer, type RemoteScorerOptions } from '../../nodes/anomaly/remote';
import { AnomalyScorer, DEFAULT_TEXT, MAX_BATCH, type ScoreOutput, type ScorerOptions } from '../../nodes/anomaly/scorer';
import { mulberry32 } from '../../runtime/sim-model';

const T0 = Date.UTC(2026, 0, 5);
const MIN = 60_000;
const RULE: MaintenanceRule = { metric: 't', threshold: 60, direction: 'above', window: 3_600_000, horizon: 86_400_000, level: 0.5 };
const OPTS: ScorerOptions = { warmup: 30, clearAfter: 2, maintenance: [RULE], metrics: [] };

const open: RemoteScorer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close(false);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function remote(opts: ScorerOptions, extra: Partial<RemoteScorerOptions> = {}): RemoteScorer {
  const r = new RemoteScorer({ scorer: opts, text: DEFAULT_TEXT, warn: () => undefined, ...extra });
  open.push(r);
  return r;
}

/**
 * Messages of a small fleet, one a minute: batches of every device's reading (a spike now and then, a metric `t`
 * that climbs past the maintenance threshold and falls back, a boolean and a string among the metrics, tags on
 * some), single readings, and among them what a hostile or broken sender gives.
 */
function messages(steps: number, seed = 3): unknown[] {
  const r = mulberry32(seed);
  const out: unknown[] = [];
  const devices = ['dev-0', 'dev-1', 'dev-2'];
  for (let i = 0; i < steps; i++) {
    const ts = T0 + i * MIN;
    const batch: unknown[] = devices.map((device, d) => {
      let temp = 20 + d + 3 * Math.sin(i / 30) + (r() - 0.5) * 0.4;
      if (i > 60 && r() < 0.03) temp += 15;
      const t = 20 + (i > 100 && i < 200 ? (i - 100) * 0.6 : 0) + (r() - 0.5) * 0.2;
      const reading: Record<string, unknown> = { device, ts, metrics: { temperature: temp, humidity: 50 + (r() - 0.5) * 2, t, ok: true, fw: 'v1' } };
      if (d === 1) reading.tags = { site: 'north' };
      return reading;
    });
    if (i % 17 === 5) batch.push(null, 'text', [1, 2], { device: 'dev-0', ts, metrics: 5 }, { device: 42, ts, metrics: { a: 1 } });
    if (i % 19 === 7) batch.push({ device: 'bad id!', ts, metrics: { a: 1 } }, { device: 'dev-1', ts: 'soon', metrics: { a: 1 } }, { device: 'dev-1', ts: Number.NaN, metrics: { a: 1 } });
    if (i % 23 === 11) batch.push({ device: 'dev-2', ts, metrics: { temperature: Number.NaN, _hidden: 3, 'bad\u0000name': 1 } }, { device: 'dev-2', ts, metrics: {} });
    if (i % 13 === 4 && i > 0) batch.push({ device: 'dev-0', ts: ts - MIN, metrics: { temperature: 20 } }); // out of order
    if (i % 11 === 3) batch.push({ ...(batch[0] as object) }); // a redelivery within the message
    if (i % 29 === 9) batch.push({ device: 'dev-3', ts, metrics: { '3': 1, '1': 2, x: 4 } }); // integer-like names
    out.push(batch);
    if (i % 10 === 0) out.push({ device: 'dev-9', ts, metrics: { temperature: 20 + (i % 3) }, tags: { one: 'x' } });
    if (i % 31 === 0) out.push('not json at all');
    if (i % 37 === 0) out.push([]);
  }
  return out;
}

async function until(ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function both(opts: ScorerOptions, msgs: unknown[]): Promise<{ here: ScoreOutput[]; there: ScoreOutput[]; local: AnomalyScorer; rs: RemoteScorer }> {
  const local = new AnomalyScorer(opts);
  const rs = remote(opts);
  // Pipelined: every message handed over before the first answer.
  const pending = msgs.map((m) => rs.score(m));
  const here = msgs.map((m) => local.score(m));
  const there = await Promise.all(pending);
  return { here, there, local, rs };
}

describe('packing', () => {
  test('the items sent come back as the readings the scorer reads; what cannot be one is judged as the scorer judges it', () => {
    const batch = messages(40).find((m, i) => Array.isArray(m) && i > 20 && (m as unknown[]).length > 6) as unknown[];
    const { msg, rejects } = packReadings(batch);
    const items = unpackReadings(msg);
    const sent = [...msg.idx].map((i) => batch[i] as { device: string; ts: number; metrics: Record<string, unknown> });
    expect(items).toEqual(sent.map((r) => ({ device: r.device, ts: r.ts, metrics: Object.fromEntries(Object.entries(r.metrics).map(([k, v]) => [k, typeof v === 'number' ? v : null])) })));
    // For-in order of the rebuilt metrics is the original's (integer-like names first).
    for (let i = 0; i < items.length; i++) expect(Object.keys(items[i].metrics)).toEqual(Object.keys(sent[i].metrics));
    const scorerRejects = new AnomalyScorer().score(batch.filter((_, i) => !msg.idx.includes(i))).rejects;
    expect(rejects.map((r) => ({ code: r.code, message: r.message }))).toEqual(scorerRejects.map((r) => ({ code: r.code, message: r.message })));
    expect(msg.refused).toBe(rejects.length);
    expect(rejects.length).toBeGreaterThan(0);
  });

  test('a batch over the limit is refused whole, as by the scorer', () => {
    const big = new Array<unknown>(MAX_BATCH + 1).fill({ device: 'd', ts: T0, metrics: { a: 1 } });
    const { msg, rejects } = packReadings(big);
    expect(msg.n).toBe(0);
    expect(rejects).toEqual(new AnomalyScorer().score(big).rejects);
  });
});

describe('in a worker, as in the thread', () => {
  test('every message: the same scores, events (with their texts), rejects, skips, and stats', async () => {
    const msgs = messages(320);
    const { here, there, local, rs } = await both(OPTS, msgs);
    expect(there).toEqual(here);
    const all = here.flatMap((o) => o.events);
    // The stream did what it is for: anomalies and a maintenance alert raised and cleared, rejects of each kind.
    expect(all.filter((e) => e.rule === 'anomaly' && e.state === 'firing').length).toBeGreaterThan(2);
    expect(all.filter((e) => e.rule === 'maintenance').map((e) => e.state)).toContain('resolved');
    const codes = new Set(here.flatMap((o) => o.rejects.map((r) => r.code)));
    for (const c of ['not_a_reading', 'invalid_device', 'invalid_ts', 'invalid_value', 'invalid_metric', 'no_metrics', 'out_of_order']) expect(codes).toContain(c);
    expect(here.reduce((s, o) => s + o.skipped, 0)).toBeGreaterThan(0);
    expect(await rs.refreshStats()).toEqual(local.stats());
    expect(rs.stats()).toEqual(local.stats());
  });

  test('a score carries its reading\'s own tags object, as in the thread', async () => {
    const rs = remote({ warmup: 5 });
    const tags = { site: 'north' };
    const out = await rs.score([{ device: 'd1', ts: T0, metrics: { a: 1 }, tags }]);
    expect(out.scores[0].tags).toBe(tags);
  });

  test('with Scores out: the same thinning', async () => {
    const opts = { ...OPTS, scoreEvery: 10 * MIN };
    const { here, there } = await both(opts, messages(260, 8));
    expect(there).toEqual(here);
    expect(here.reduce((s, o) => s + o.thinned, 0)).toBeGreaterThan(100);
  });

  test('reset of a device and of everything: the same events and stats', async () => {
    const msgs = messages(150, 5);
    const { local, rs } = await both(OPTS, msgs);
    expect(await rs.reset('dev-1')).toEqual(local.reset('dev-1'));
    expect(rs.stats()).toEqual(local.stats());
    const more = messages(20, 6).map((m) => (Array.isArray(m) ? m.map((x) => (x !== null && typeof x === 'object' && 'ts' in x ? { ...x, ts: (x as { ts: number }).ts + 400 * MIN } : x)) : m));
    for (const m of more) expect(await rs.score(m)).toEqual(local.score(m));
    expect(await rs.reset()).toEqual(local.reset());
    expect(rs.stats()).toEqual(local.stats());
  });
});

describe('state file', () => {
  test('saved by the worker on close, taken back by the next: the run continues as if it never stopped', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-remote-'));
    dirs.push(dataDir);
    const state = { dataDir, type: 'thingwire-anomaly', id: 'n1', interval: 0 };
    const msgs = messages(300, 11);
    const local = new AnomalyScorer(OPTS);
    const want = msgs.map((m) => local.score(m));
    const first = new RemoteScorer({ scorer: OPTS, text: DEFAULT_TEXT, warn: () => undefined, state });
    for (const m of msgs.slice(0, 150)) await first.score(m);
    await first.close(false);
    const file = path.join(dataDir, 'state', 'thingwire-anomaly', 'n1.json');
    expect(fs.existsSync(file)).toBe(true);
    const warnings: string[] = [];
    const second = remote(OPTS, { state, warn: (k, e) => warnings.push(`${k}: ${e}`) });
    const rest = await Promise.all(msgs.slice(150).map((m) => second.score(m)));
    expect(rest).toEqual(want.slice(150));
    expect(warnings).toEqual([]);
    // Removed with the node: the file goes.
    open.splice(open.indexOf(second), 1);
    await second.close(true);
    expect(fs.existsSync(file)).toBe(false);
  });

  test('an unusable state file is reported and moved aside; scoring starts empty', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-remote-'));
    dirs.push(dataDir);
    const file = path.join(dataDir, 'state', 'thingwire-anomaly', 'n2.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"v":1,"config":"other"}');
    const warnings: string[] = [];
    const rs = remote(OPTS, { state: { dataDir, type: 'thingwire-anomaly', id: 'n2', interval: 0 }, warn: (k, e) => warnings.push(`${k}: ${e}`) });
    const out = await rs.score({ device: 'd1', ts: T0, metrics: { a: 1 } });
    expect(out.scores).toHaveLength(1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^state: the state was saved with other detector settings.*moved to/);
  });
});

describe('faults and bounds', () => {
  test('a worker that stops fails what it held with an error; the next message starts another', async () => {
    const warnings: string[] = [];
    const rs = remote({ warmup: 5 }, { warn: (k, e) => warnings.push(`${k}: ${e}`) });
    await rs.score({ device: 'd1', ts: T0, metrics: { a: 1 } });
    // A message the worker cannot take (no readings in it) ends it with an error before the two after it.
    (rs as unknown as { worker: Worker }).worker.postMessage({ t: 'score', p: null, stats: false });
    const held = [rs.score({ device: 'd1', ts: T0 + 1, metrics: { a: 1 } }), rs.score({ device: 'd1', ts: T0 + 2, metrics: { a: 1 } })];
    for (const h of held) await expect(h).rejects.toThrow(/the anomaly scoring worker stopped \(Cannot read properties of null.*\); 2 message\(s\) it held were not scored/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^worker: the anomaly scoring worker stopped/);
    expect(rs.backlog).toBe(0);
    const out = await rs.score({ device: 'd1', ts: T0 + 3, metrics: { a: 1 } });
    expect(out.scores).toHaveLength(1);
    expect(rs.starts).toBe(2);
  });

  test('a worker ended from outside: the same, and the state file it saved is taken back', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-remote-'));
    dirs.push(dataDir);
    const rs = remote({ warmup: 5 }, { state: { dataDir, type: 'thingwire-anomaly', id: 'n3', interval: 50 } });
    for (let i = 0; i < 20; i++) await rs.score({ device: 'd1', ts: T0 + i * MIN, metrics: { a: i % 3 } });
    const file = path.join(dataDir, 'state', 'thingwire-anomaly', 'n3.json');
    await until(() => fs.existsSync(file));
    await (rs as unknown as { worker: Worker }).worker.terminate();
    const out = await rs.score({ device: 'd1', ts: T0 + 20 * MIN, metrics: { a: 2 } });
    expect(out.scores[0].learning).toBe(false); // the 20 values before, from the file: past the warm-up of 5
    expect(rs.starts).toBe(2);
  });

  test('past maxQueued readings waiting, a message is refused with an error; nothing handed over is lost', async () => {
    const rs = remote({ warmup: 5 }, { maxQueued: 10 });
    const batch = (t: number): unknown[] => Array.from({ length: 6 }, (_, i) => ({ device: `d${i}`, ts: T0 + t, metrics: { a: i } }));
    const first = rs.score(batch(0));
    await expect(rs.score(batch(1))).rejects.toThrow(/the scoring worker is behind: 6 readings wait for it \(at most 10\); this message's 6 were not scored/);
    expect((await first).scores).toHaveLength(6);
    expect((await rs.score(batch(2))).scores).toHaveLength(6);
    expect(rs.backlog).toBe(0);
  });

  test('after close, scoring is refused', async () => {
    const rs = new RemoteScorer({ scorer: {}, text: DEFAULT_TEXT, warn: () => undefined });
    await rs.close(false);
    await expect(rs.score({ device: 'd1', ts: T0, metrics: { a: 1 } })).rejects.toThrow(/closed/);
  });
});
