/**
 * thingwire-alert in a real Node-RED runtime (node-red-node-test-helper): a threshold raised after
 * its `for` hold (by the node's timer) and resolved, one message per event on output 1; the active
 * list on output 2 (throttled, always the latest) and the answers to control messages (ack, unack,
 * silence, unsilence, active, stats, forget) with refusals to Catch; rejects on output 3; tags from
 * msg.device; the state file: a restart keeps a firing alert firing with the same id and does not
 * notify it again, changed rules resolve it, removing the node deletes it; timers cleared on close;
 * bad rules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import alertNode from '../../nodes/alert/alert';
import type { AlertEvent } from '../../nodes/lib/contract';
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
} from './harness';

useHelper();
const tempDir = useTempDirs('alert-nodes');

const NODES = [withCatalogue(alertNode)];
const TYPE = 'thingwire-alert';

const HOT = [{ id: 'hot', metric: 'temperature', severity: 'major', when: { above: 80, hysteresis: 2 }, for: '200ms' }];
const HOT_NOW = [{ id: 'hot', metric: 'temperature', severity: 'major', when: { above: 80 } }];

function flow(config: Partial<FlowNodeConfig>): FlowNodeConfig[] {
  return [
    TAB,
    {
      id: 'n1',
      type: TYPE,
      z: 'tab1',
      name: '',
      v: 1,
      rules: JSON.stringify(HOT),
      maxKeys: 100000,
      persist: true,
      snapshotInterval: '10s',
      catchRejects: false,
      wires: [['events'], ['active'], ['bad']],
      ...config,
    },
    { id: 'events', type: 'helper', z: 'tab1' },
    { id: 'active', type: 'helper', z: 'tab1' },
    { id: 'bad', type: 'helper', z: 'tab1' },
    { id: 'complete', type: 'complete', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['completes']] },
    { id: 'completes', type: 'helper', z: 'tab1' },
    { id: 'catch', type: 'catch', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab1' },
  ];
}

interface Outputs {
  events: NodeMsg[];
  active: NodeMsg[];
  bad: NodeMsg[];
  completes: NodeMsg[];
  caught: NodeMsg[];
  dir: string;
}

async function start(config: Partial<FlowNodeConfig> = {}, dir = tempDir()): Promise<Outputs> {
  setDataDir(dir);
  await helper.load(NODES, positioned(flow(config)));
  return { events: record('events'), active: record('active'), bad: record('bad'), completes: record('completes'), caught: record('caught'), dir };
}

function send(msg: NodeMsg): void {
  getNode('n1').receive(msg);
}

function reading(device: string, temperature: number, extra: Record<string, unknown> = {}): NodeMsg {
  return { payload: { device, ts: Date.now(), metrics: { temperature } }, ...extra };
}

async function handled(out: Outputs, n: number): Promise<void> {
  await until(`${n} messages handled`, () => out.completes.length + out.caught.length >= n);
  await settle();
}

function ev(m: NodeMsg): AlertEvent {
  return m.payload as AlertEvent;
}

/** Events as "key:state:reason[!]" (! = notify). */
function brief(msgs: NodeMsg[]): string[] {
  return msgs.map((m) => `${ev(m).key}:${ev(m).state}:${ev(m).reason}${ev(m).notify ? '!' : ''}`);
}

/** The broadcasts of the active list (not answers to control messages). */
function lists(out: Outputs): AlertEvent[][] {
  return out.active.filter((m) => m.action === undefined).map((m) => m.payload as AlertEvent[]);
}

/** Sends a control message and waits for its answer (output 2) or its error (Catch). */
async function control(out: Outputs, action: string, payload?: unknown): Promise<{ reply?: NodeMsg; error?: { code?: string; message: string } }> {
  const a = out.active.length;
  const c = out.caught.length;
  send({ action, payload });
  await until(`an answer to ${action}`, () => out.active.slice(a).some((m) => m.action === action) || out.caught.length > c);
  const reply = out.active.slice(a).find((m) => m.action === action);
  const caught = out.caught[c];
  return reply ? { reply } : { error: caught.error as { code?: string; message: string } };
}

function stateFile(dir: string, id = 'n1'): string {
  return path.join(dir, 'state', TYPE, `${id}.json`);
}

describe('lifecycle through the node', () => {
  test('a threshold goes pending, fires after its hold (timer), resolves with hysteresis; one id; key as topic', async () => {
    const out = await start();
    send(reading('d1', 70));
    send(reading('d1', 90));
    await handled(out, 2);
    expect(brief(out.events)).toEqual(['d1/temperature/hot:pending:pending']);
    await until('the firing event', () => out.events.length >= 2, 3000);
    expect(brief(out.events)).toEqual(['d1/temperature/hot:pending:pending', 'd1/temperature/hot:firing:firing!']);
    const firing = ev(out.events[1]);
    expect(out.events[1].topic).toBe('d1/temperature/hot');
    expect(firing).toMatchObject({ device: 'd1', rule: 'hot', severity: 'major', metric: 'temperature', value: 90, acknowledged: false });
    expect(firing.id).toBe(ev(out.events[0]).id);
    expect(firing.id!.startsWith('n1-')).toBe(true);
    expect(firing.at! - firing.since).toBe(0);
    expect(firing.since - ev(out.events[0]).since).toBeGreaterThanOrEqual(200);
    send(reading('d1', 79)); // inside the hysteresis
    await handled(out, 3);
    expect(out.events).toHaveLength(2);
    send(reading('d1', 78));
    await handled(out, 4);
    expect(brief(out.events.slice(2))).toEqual(['d1/temperature/hot:resolved:resolve!']);
    expect(ev(out.events[2]).id).toBe(firing.id);
    await until('an empty active list', () => lists(out).at(-1)?.length === 0, 2000);
    expect(out.bad).toHaveLength(0);
    expect(out.caught).toHaveLength(0);
    await until('the status', () => statusCalls(getNode('n1')).at(-1)?.text === translate(`${TYPE}.status.ok`, { keys: 1 }));
  });

  test('a hold that ends sooner than the one the timer waits for still fires on time (the timer moves earlier)', async () => {
    const rules = [
      { id: 'slow', metric: 'pressure', severity: 'minor', when: { above: 5 }, for: '1h' },
      ...HOT, // for 200 ms
    ];
    const out = await start({ rules: JSON.stringify(rules) });
    send({ payload: { device: 'd1', ts: Date.now(), metrics: { pressure: 9 } } });
    await handled(out, 1);
    const t0 = Date.now();
    send(reading('d2', 90));
    await until('the firing event', () => out.events.some((m) => ev(m).key === 'd2/temperature/hot' && ev(m).state === 'firing'), 3000);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(brief(out.events)).toEqual(['d1/pressure/slow:pending:pending', 'd2/temperature/hot:pending:pending', 'd2/temperature/hot:firing:firing!']);
  });

  test('the active list: sent when it changes, throttled, always the latest; answer to "active"', async () => {
    const out = await start({ rules: JSON.stringify(HOT_NOW) });
    await sleep(400);
    const before = lists(out).length;
    for (let i = 0; i < 20; i++) send(reading(`d${i}`, 90));
    await handled(out, 20);
    await sleep(400);
    const after = lists(out).slice(before);
    // 20 changes in a few ms: at most one list straight away and one 250 ms later.
    expect(after.length).toBeGreaterThanOrEqual(1);
    expect(after.length).toBeLessThanOrEqual(2);
    expect(after.at(-1)!.map((a) => a.device).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `d${i}`).sort());
    const r = await control(out, 'active');
    expect((r.reply!.payload as AlertEvent[]).length).toBe(20);
    expect(r.reply!.topic).toBeUndefined();
    const s = await control(out, 'stats');
    expect(s.reply!.payload).toMatchObject({ keys: 20, firing: 20, pending: 0, acknowledged: 0 });
    await until('the status', () => statusCalls(getNode('n1')).at(-1)?.text === '20 firing · 0 pending · 0 acked');
    expect(statusCalls(getNode('n1')).at(-1)?.fill).toBe('red');
  });

  test('a long active list goes out less often: 1 ms a row after the last one (800 alerts: 800 ms), still the latest', async () => {
    const out = await start({ rules: JSON.stringify(HOT_NOW) });
    const at: number[] = [];
    getNode('active').on('input', (m: NodeMsg) => {
      if (m.action === undefined) at.push(Date.now());
    });
    await sleep(400);
    send({ payload: Array.from({ length: 800 }, (_, i) => ({ device: `d${i}`, ts: Date.now(), metrics: { temperature: 90 } })) });
    await until('the list of 800', () => lists(out).at(-1)?.length === 800, 3000);
    const first = at.length;
    const shownAt = at[first - 1];
    // A change right after it: the next list waits 800 ms from the last one, not 250 ms.
    send(reading('d800', 90));
    await until('the list of 801', () => lists(out).at(-1)?.length === 801, 3000);
    expect(at.length).toBe(first + 1);
    expect(at[first] - shownAt).toBeGreaterThanOrEqual(700);
    // All resolved: an empty list (after the 801 ms), then the next change waits 250 ms again.
    send({ payload: Array.from({ length: 801 }, (_, i) => ({ device: `d${i}`, ts: Date.now(), metrics: { temperature: 20 } })) });
    await until('the empty list', () => lists(out).at(-1)?.length === 0, 3000);
    const emptyAt = at[at.length - 1];
    send(reading('d0', 90));
    await until('the list of 1', () => lists(out).at(-1)?.length === 1, 3000);
    expect(at[at.length - 1] - emptyAt).toBeGreaterThanOrEqual(240);
    expect(at[at.length - 1] - emptyAt).toBeLessThan(700);
  });

  test('msg.device tags (thingwire-device auth mode) reach rules with tags and key templates', async () => {
    const rules = [{ id: 'site-hot', tags: { site: 'north' }, key: '{tags.site}/{rule}', metric: 'temperature', severity: 'minor', when: { above: 80 } }];
    const out = await start({ rules: JSON.stringify(rules) });
    send(reading('d1', 90, { device: { id: 'd1', tags: { site: 'south' } } }));
    send(reading('d2', 95, { device: { id: 'd2', tags: { site: 'north', __proto__: 'x' } } }));
    await handled(out, 2);
    expect(brief(out.events)).toEqual(['north/site-hot:firing:firing!']);
    expect(ev(out.events[0]).device).toBe('d2');
  });
});

describe('control messages', () => {
  test('ack and unack by id or key; refusals go to Catch with a code', async () => {
    const out = await start({ rules: JSON.stringify(HOT_NOW) });
    send(reading('d1', 90));
    await handled(out, 1);
    const id = ev(out.events[0]).id!;
    const a = await control(out, 'ack', { id, by: 'ops', comment: 'on it' });
    expect(a.reply!.payload).toMatchObject({ id, acknowledged: true, ack: { by: 'ops', comment: 'on it' } });
    expect(brief(out.events.slice(1))).toEqual(['d1/temperature/hot:firing:ack']);
    await until('the status', () => statusCalls(getNode('n1')).at(-1)?.text === '1 firing · 0 pending · 1 acked');
    expect(statusCalls(getNode('n1')).at(-1)?.fill).toBe('yellow');
    await until('the list with the ack', () => lists(out).at(-1)?.[0]?.acknowledged === true, 2000);

    const u = await control(out, 'unack', { key: 'd1/temperature/hot' });
    expect(u.reply!.payload).toMatchObject({ id, acknowledged: false });
    expect(brief(out.events.slice(2))).toEqual(['d1/temperature/hot:firing:unack']);

    expect((await control(out, 'unack', { id })).error).toMatchObject({ code: 'not_found' });
    expect((await control(out, 'ack', { id: 'nope', by: 'ops' })).error).toMatchObject({ code: 'not_found', message: expect.stringContaining('ack refused: no active alert "nope"') });
    expect((await control(out, 'ack', { id })).error).toMatchObject({ code: 'invalid' });
    expect((await control(out, 'ack', { id, by: 'ops', who: 'x' })).error).toMatchObject({ code: 'invalid', message: expect.stringContaining('unknown field "who"') });
    expect((await control(out, 'ack', 'just text')).error).toMatchObject({ code: 'invalid' });
    expect((await control(out, 'snooze', {})).error).toMatchObject({ code: 'unknown_action', message: expect.stringContaining('unknown msg.action "snooze"') });
    expect(out.events).toHaveLength(3);
  });

  test('silence: matching alerts keep their state but are not notified; unsilence; bad until', async () => {
    const out = await start({ rules: JSON.stringify(HOT_NOW) });
    send(reading('pump-1', 90));
    await handled(out, 1);
    const t0 = Date.now();
    const s = await control(out, 'silence', { device: 'pump-*', until: '2h', by: 'ops', comment: 'maintenance' });
    const silence = s.reply!.payload as { id: string; until: number; device: string; by: string };
    expect(silence).toMatchObject({ device: 'pump-*', by: 'ops', comment: 'maintenance' });
    expect(silence.until).toBeGreaterThanOrEqual(t0 + 7_200_000);
    expect(silence.until).toBeLessThan(t0 + 7_200_000 + 5000);
    expect(brief(out.events.slice(1))).toEqual(['pump-1/temperature/hot:firing:silenced']);
    send(reading('pump-2', 91));
    send(reading('other', 92));
    await until('two more events', () => out.events.length >= 4);
    expect(out.events.slice(2).map((m) => [ev(m).device, ev(m).notify, ev(m).suppressed])).toEqual([
      ['pump-2', false, 'silenced'],
      ['other', true, undefined],
    ]);
    const list = await control(out, 'silences');
    expect((list.reply!.payload as Array<{ id: string }>).map((x) => x.id)).toEqual([silence.id]);
    const u = await control(out, 'unsilence', { id: silence.id });
    expect((u.reply!.payload as { id: string }).id).toBe(silence.id);
    // pump-2 was never notified: its firing is notified now.
    await until('the catch-up', () => out.events.some((m) => ev(m).reason === 'unsilenced' && ev(m).device === 'pump-2'));
    expect(out.events.filter((m) => ev(m).reason === 'unsilenced' && ev(m).device === 'pump-2').map((m) => ev(m).notify)).toEqual([true]);
    expect((await control(out, 'unsilence', { id: silence.id })).error).toMatchObject({ code: 'not_found' });
    expect((await control(out, 'silence', { device: 'x', until: 'soon' })).error).toMatchObject({ code: 'invalid', message: expect.stringContaining('silence needs msg.payload.until') });
    expect((await control(out, 'silence', { device: 'x', until: 1000 })).error).toMatchObject({ code: 'invalid', message: expect.stringContaining('after now') });
    expect((await control(out, 'silence', { until: '1h' })).error).toMatchObject({ code: 'invalid' });
    const iso = await control(out, 'silence', { rule: 'hot', until: new Date(Date.now() + 60_000).toISOString() });
    expect((iso.reply!.payload as { rule: string }).rule).toBe('hot');
  });

  test('a silence that ends is noticed by the timer', async () => {
    const out = await start({ rules: JSON.stringify(HOT_NOW) });
    await control(out, 'silence', { device: 'd1', until: '300ms' });
    send(reading('d1', 90));
    await until('the firing', () => out.events.length >= 1);
    expect(ev(out.events[0]).notify).toBe(false);
    await until('the end of the silence', () => out.events.length >= 2, 3000);
    expect(brief(out.events)).toEqual(['d1/temperature/hot:firing:firing', 'd1/temperature/hot:firing:unsilenced!']);
  });

  test('forget resolves a device\'s alerts', async () => {
    const out = await start({ rules: JSON.stringify(HOT_NOW) });
    send(reading('d1', 90));
    await handled(out, 1);
    const r = await control(out, 'forget', { device: 'd1' });
    expect(r.reply!.payload).toEqual({ device: 'd1', resolved: 1 });
    expect(brief(out.events)).toEqual(['d1/temperature/hot:firing:firing!', 'd1/temperature/hot:resolved:forgotten!']);
  });
});

describe('rejects', () => {
  test('bad input goes to output 3 with msg.error and msg.rejects; a batch keeps its good items', async () => {
    const out = await start({ rules: JSON.stringify(HOT_NOW) });
    send({ payload: 'hello' });
    send({ payload: [{ device: 'd1', ts: Date.now(), metrics: { temperature: 99 } }, { device: '../x', ts: 1, metrics: {} }, { device: 'd2', ts: 'yesterday', metrics: { temperature: 1 } }] });
    send({ payload: { device: 'd3', ts: Date.now(), metrics: { temperature: 85 }, __proto__: { polluted: true } } });
    await handled(out, 3);
    expect(out.bad.map((m) => (m.error as { code: string }).code)).toEqual(['not_a_reading', 'invalid_device']);
    expect((out.bad[1].rejects as Array<{ code: string; index: number }>).map((r) => [r.code, r.index])).toEqual([
      ['invalid_device', 1],
      ['invalid_ts', 2],
    ]);
    expect((out.bad[1].payload as unknown[]).length).toBe(2);
    expect(out.bad[0].error).toMatchObject({ source: TYPE });
    expect(brief(out.events)).toEqual(['d1/temperature/hot:firing:firing!', 'd3/temperature/hot:firing:firing!']);
    expect(out.caught).toHaveLength(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('catchRejects: a rejected message is also an error for Catch', async () => {
    const out = await start({ catchRejects: true });
    send({ payload: 42 });
    await handled(out, 1);
    expect(out.bad).toHaveLength(1);
    expect(out.caught).toHaveLength(1);
    expect(out.caught[0].error).toMatchObject({ code: 'not_a_reading' });
  });
});

describe('state', () => {
  test('a restart keeps a firing alert firing with the same id, without notifying it again', async () => {
    const dir = tempDir();
    let out = await start({ rules: JSON.stringify(HOT_NOW) }, dir);
    send(reading('d1', 90));
    await handled(out, 1);
    const id = ev(out.events[0]).id;
    await helper.unload();
    expect(fs.existsSync(stateFile(dir))).toBe(true);

    out = await start({ rules: JSON.stringify(HOT_NOW) }, dir);
    await sleep(400);
    const a = await control(out, 'active');
    expect((a.reply!.payload as AlertEvent[]).map((x) => [x.key, x.state, x.id])).toEqual([['d1/temperature/hot', 'firing', id]]);
    send(reading('d1', 95));
    await handled(out, 2);
    expect(out.events).toHaveLength(0);
    send(reading('d1', 50));
    await handled(out, 3);
    expect(brief(out.events)).toEqual(['d1/temperature/hot:resolved:resolve!']);
    expect(ev(out.events[0]).id).toBe(id);
  });

  test('rules changed across a redeploy: the old alert is resolved (rule-changed) once the flows run', async () => {
    const dir = tempDir();
    let out = await start({ rules: JSON.stringify(HOT_NOW) }, dir);
    send(reading('d1', 90));
    await handled(out, 1);
    const id = ev(out.events[0]).id;
    await helper.unload();

    out = await start({ rules: JSON.stringify([{ ...HOT_NOW[0], when: { above: 85 } }]) }, dir);
    // Recorded before it is sent: the helper's flows:started comes first, the event leaves after it.
    await until('the rule-changed event', () => out.events.length >= 1, 6000);
    await settle();
    expect(brief(out.events)).toEqual(['d1/temperature/hot:resolved:rule-changed!']);
    expect(ev(out.events[0]).id).toBe(id);
    const a = await control(out, 'active');
    expect(a.reply!.payload).toEqual([]);
    await helper.unload();
    // The resolution was saved: a third start does not send it again.
    out = await start({ rules: JSON.stringify([{ ...HOT_NOW[0], when: { above: 85 } }]) }, dir);
    await sleep(400);
    expect(out.events).toHaveLength(0);
  });

  test('removing the node deletes its state; persist off writes none', async () => {
    const out = await start({ rules: JSON.stringify(HOT_NOW), snapshotInterval: '100ms' });
    send(reading('d1', 90));
    await handled(out, 1);
    await until('the background save', () => fs.existsSync(stateFile(out.dir)), 3000);
    await (helper as unknown as { setFlows(f: FlowNodeConfig[], type: string): Promise<void> }).setFlows(positioned([TAB, { id: 'other', type: 'helper', z: 'tab1' }]), 'full');
    expect(fs.existsSync(stateFile(out.dir))).toBe(false);
    await sleep(300);
    expect(fs.existsSync(stateFile(out.dir))).toBe(false);
    await helper.unload();

    const dir = tempDir();
    const o2 = await start({ rules: JSON.stringify(HOT_NOW), persist: false }, dir);
    send(reading('d1', 90));
    await handled(o2, 1);
    await helper.unload();
    expect(fs.existsSync(path.join(dir, 'state'))).toBe(false);
  });

  test('a corrupt state file: warn, move it aside, start empty', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.dirname(stateFile(dir)), { recursive: true });
    fs.writeFileSync(stateFile(dir), JSON.stringify({ v: 1, rules: {}, keys: [['x']], live: [], silences: [], clock: 0, seq: 0, counts: [] }));
    const out = await start({}, dir);
    const n = getNode('n1') as unknown as { warn: { getCalls(): Array<{ thisValue: unknown; args: unknown[] }> } };
    const warns = n.warn.getCalls().filter((c) => c.thisValue === n).map((c) => String(c.args[0]));
    expect(warns).toEqual([expect.stringMatching(/^saved state not used, starting empty: alert snapshot: .*moved to .*\.corrupt-\d+$/)]);
    const s = await control(out, 'stats');
    expect(s.reply!.payload).toMatchObject({ keys: 0 });
  });
});

describe('timers and configuration', () => {
  test('close clears the deadline timer (a pending hold never fires after close)', async () => {
    const mine = new Map<unknown, { fired: boolean }>();
    const realSet = global.setTimeout;
    const setSpy = jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      const ours = (new Error().stack ?? '').includes(`alert${path.sep}alert`);
      const rec = { fired: false };
      const handle = realSet(() => {
        rec.fired = true;
        fn();
      }, ms);
      if (ours) mine.set(handle, rec);
      return handle;
    }) as typeof setTimeout);
    const clearSpy = jest.spyOn(global, 'clearTimeout');
    try {
      const out = await start({ rules: JSON.stringify([{ ...HOT[0], for: '1s' }]), persist: false });
      send(reading('d1', 90));
      await handled(out, 1);
      expect(brief(out.events)).toEqual(['d1/temperature/hot:pending:pending']);
      await helper.unload();
      const cleared = new Set(clearSpy.mock.calls.map((c) => c[0]));
      const open = [...mine].filter(([h, r]) => !r.fired && !cleared.has(h as NodeJS.Timeout));
      expect(mine.size).toBeGreaterThan(0);
      expect(open).toEqual([]);
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
  });

  test('bad rules: every problem reported with its path, red status, every message to Catch', async () => {
    const rules = [{ id: 'hot', metric: 'temperature', when: { abuve: 80 }, severity: 'major' }, { id: 'hot', severity: 'huge', when: { above: 'x' } }];
    const out = await start({ rules: JSON.stringify(rules), maxKeys: 0 });
    const n = getNode('n1');
    const errs = errorCalls(n).map((c) => String(c.args[0]));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^thingwire-alert is misconfigured: rules\[0\]\.when/);
    expect(errs[0]).toContain('rules[1]');
    expect(errs[0]).toContain('maxKeys must be a whole number');
    expect(statusCalls(n).at(-1)).toEqual({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config-error` });
    send(reading('d1', 90));
    send({ action: 'active' });
    await handled(out, 2);
    expect(out.caught).toHaveLength(2);
    expect(out.events).toHaveLength(0);
    expect(out.active).toHaveLength(0);

    await helper.unload();
    const o2 = await start({ rules: '[{ not json' });
    expect(String(errorCalls(getNode('n1'))[0].args[0])).toMatch(/rules: not valid JSON/);
    send(reading('d1', 90));
    await handled(o2, 1);
    expect(o2.caught).toHaveLength(1);
  });
});
