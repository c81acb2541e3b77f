/**
 * The starter's Alerts page functions (from flows/src/dashboard/pages/alerts.js), run on their own with the flow
 * context as a Map. "resolved alerts" (tw.da.changes): an episode's start is remembered from pending or firing
 * until it resolves (listed, with how long it lasted) or is cancelled (state "ok": forgotten, not listed), and the
 * remembered episodes stay under their cap without counting them on every event. "requests" (tw.da.router) and
 * "active list" (tw.da.active): the lists go to the browsers with the page open, addressed to each, and to no one
 * when none is (a dashboard message without msg._client reaches every page of every browser).
 */
import { starterFunctionIsolated } from '../support/starter';

type Fn = (msg: unknown, flow: unknown, node: unknown) => unknown;
type Sent = { topic: string; payload: unknown; _client?: { socketId: string } };

/** The flow context as a Map; which store each key was read and written in. */
function flowContext(): { flow: unknown; ctx: Map<string, unknown>; stores: Map<string, Set<string | undefined>> } {
  const ctx = new Map<string, unknown>();
  const stores = new Map<string, Set<string | undefined>>();
  const note = (k: string, store: string | undefined): void => void (stores.get(k) ?? stores.set(k, new Set()).get(k))?.add(store);
  return {
    ctx,
    stores,
    flow: {
      get: (k: string, store?: string) => (note(k, store), ctx.get(k)),
      set: (k: string, v: unknown, store?: string) => (note(k, store), ctx.set(k, v)),
    },
  };
}

function changes(): { run: (payload: Record<string, unknown>) => unknown; ctx: Map<string, unknown> } {
  const fn = starterFunctionIsolated<Fn>('tw.da.changes', 'msg', 'flow', 'node');
  const { flow, ctx, stores } = flowContext();
  return {
    ctx,
    run: (payload) => {
      const out = fn({ payload }, flow, {});
      // The episodes and the recent list in the file store (kept over a restart); who watches, in memory.
      const misplaced = [...stores].filter(([k, s]) => s.size !== 1 || !s.has(k === 'tw_da_watchers' ? undefined : 'file'));
      if (misplaced.length > 0) expect(misplaced).toEqual([]);
      return out;
    },
  };
}

/** The recent list as tw.da.changes sends it: one message per open page. */
const recentSent = (out: unknown): Sent[] => (out as Sent[][])[0];

const ev = (id: string, state: string, since: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id,
  state,
  since,
  device: 'd1',
  rule: 'hot',
  severity: 'warning',
  ...extra,
});

test('pending then cancelled ("ok"): remembered, then forgotten, nothing listed', () => {
  const c = changes();
  expect(c.run(ev('a1', 'pending', 1000))).toBeNull();
  expect(c.ctx.get('tw_da_open')).toEqual({ a1: 1000 });
  expect(c.ctx.get('tw_da_open_n')).toBe(1);
  expect(c.run(ev('a1', 'ok', 1000, { at: 1500 }))).toBeNull();
  expect(c.ctx.get('tw_da_open')).toEqual({});
  expect(c.ctx.get('tw_da_open_n')).toBe(0);
  expect(c.ctx.get('tw_da_recent')).toBeUndefined();
  // An "ok" for an episode never seen here changes nothing.
  expect(c.run(ev('zz', 'ok', 1))).toBeNull();
  expect(c.ctx.get('tw_da_open_n')).toBe(0);
});

test('pending, firing, resolved: listed with when it started; the open entry goes', () => {
  const c = changes();
  const now = Date.now();
  c.run(ev('b1', 'pending', now - 5000));
  c.run(ev('b1', 'firing', now - 5000));
  c.run(ev('b2', 'firing', now - 4000));
  expect(c.ctx.get('tw_da_open_n')).toBe(2);
  c.ctx.set('tw_da_watchers', new Map([['s1', { client: { socketId: 's1' }, at: now }]]));
  const [out, ...more] = recentSent(c.run(ev('b1', 'resolved', now - 5000, { at: now - 1000, reason: 'clear', ack: { by: 'ops', at: now - 2000 } })));
  expect(more).toEqual([]);
  expect(out.topic).toBe('recent');
  expect(out._client).toEqual({ socketId: 's1' });
  expect(out.payload).toEqual([{ id: 'b1', device: 'd1', rule: 'hot', severity: 'warning', resolved: now - 1000, reason: 'clear', started: now - 5000, ack: { by: 'ops', at: now - 2000 } }]);
  expect(c.ctx.get('tw_da_open')).toEqual({ b2: now - 4000 });
  expect(c.ctx.get('tw_da_open_n')).toBe(1);
});

test('at the cap (20,000 open episodes) the oldest are dropped, one for each new one', () => {
  const c = changes();
  for (let i = 0; i < 20_003; i++) c.run(ev(`e${i}`, 'pending', i));
  const open = c.ctx.get('tw_da_open') as Record<string, number>;
  expect(c.ctx.get('tw_da_open_n')).toBe(20_000);
  expect(Object.keys(open)).toHaveLength(20_000);
  expect(open.e0).toBeUndefined();
  expect(open.e2).toBeUndefined();
  expect(open.e3).toBe(3);
  expect(open.e20002).toBe(20_002);
});

test('a count missing from an older context is taken from the open episodes once', () => {
  const c = changes();
  c.ctx.set('tw_da_open', { x1: 1, x2: 2 });
  c.run(ev('x3', 'pending', 3));
  expect(c.ctx.get('tw_da_open_n')).toBe(3);
});

test('a resolved alert with no Alerts page open is kept in the recent list and sent to no one', () => {
  const c = changes();
  const now = Date.now();
  c.run(ev('n1', 'firing', now - 3000));
  expect(recentSent(c.run(ev('n1', 'resolved', now - 3000, { at: now })))).toEqual([]);
  expect((c.ctx.get('tw_da_recent') as Array<{ id: string }>).map((r) => r.id)).toEqual(['n1']);
});

describe('the lists go to the open Alerts pages only', () => {
  const client = (id: string): { socketId: string } => ({ socketId: id });
  function page(): { router: (msg: object) => unknown; active: (msg: object) => unknown; ctx: Map<string, unknown>; status: unknown[] } {
    const { flow, ctx } = flowContext();
    const status: unknown[] = [];
    const node = { status: (s: unknown) => status.push(s) };
    const router = starterFunctionIsolated<Fn>('tw.da.router', 'msg', 'flow', 'node');
    const active = starterFunctionIsolated<Fn>('tw.da.active', 'msg', 'flow', 'node');
    return { router: (m) => router(m, flow, node), active: (m) => active(m, flow, node), ctx, status };
  }
  const list = [{ id: 'a', severity: 'critical' }];

  test('no page open: the active list goes nowhere', () => {
    const p = page();
    expect(p.active({ topic: 'active', payload: list })).toEqual([[]]);
  });

  test('load registers the browser and asks for its list; the active list then goes to each open page, addressed', () => {
    const p = page();
    const [control, answer] = p.router({ topic: 'load', _client: client('s1') }) as [Record<string, unknown>, Sent];
    expect(control).toMatchObject({ action: 'active', tw_da: 'active', _client: client('s1') });
    expect(answer).toMatchObject({ topic: 'recent', payload: [], _client: client('s1') });
    p.router({ topic: 'load', _client: client('s2') });
    const [sent] = p.active({ topic: 'active', payload: list }) as Sent[][];
    expect(sent.map((m) => [m.topic, m._client?.socketId, m.payload])).toEqual([
      ['active', 's1', list],
      ['active', 's2', list],
    ]);
    expect(p.status.at(-1)).toMatchObject({ text: '1 active' });
  });

  test('hello: a known page is renewed silently; an unknown one (a reconnected socket) is loaded again', () => {
    const p = page();
    p.router({ topic: 'load', _client: client('s1') });
    expect(p.router({ topic: 'hello', _client: client('s1') })).toBeNull();
    const again = p.router({ topic: 'hello', _client: client('s9') }) as [Record<string, unknown>, Sent];
    expect(again[0]).toMatchObject({ action: 'active', _client: client('s9') });
    expect(((p.active({ topic: 'active', payload: list }) as Sent[][])[0]).map((m) => m._client?.socketId)).toEqual(['s1', 's9']);
  });

  test('bye, or 30 s without a hello (a closed tab), and the page gets nothing more', () => {
    const p = page();
    p.router({ topic: 'load', _client: client('s1') });
    p.router({ topic: 'load', _client: client('s2') });
    p.router({ topic: 'load', _client: client('s3') });
    expect(p.router({ topic: 'bye', _client: client('s1') })).toBeNull();
    (p.ctx.get('tw_da_watchers') as Map<string, { at: number }>).get('s2')!.at = Date.now() - 31_000;
    expect(((p.active({ topic: 'active', payload: list }) as Sent[][])[0]).map((m) => m._client?.socketId)).toEqual(['s3']);
    expect(p.status.at(-1)).toMatchObject({ text: '1 active' });
    p.router({ topic: 'bye', _client: client('s3') });
    expect(p.active({ topic: 'active', payload: list })).toEqual([[]]);
  });

  test('answers to a page\'s own control messages still go to it alone; others\' answers are not for the page', () => {
    const p = page();
    expect(p.active({ action: 'active', tw_da: 'active', payload: list, _client: client('s4') })).toEqual({ topic: 'active', payload: list, _client: client('s4') });
    expect(p.active({ action: 'active', payload: list })).toBeNull();
  });
});
