/**
 * The starter's "alerts page: resolved alerts" function (tw.da.changes, from flows/src/dashboard/pages/alerts.js),
 * run on its own with the flow context as a Map: an episode's start is remembered from pending or firing until
 * it resolves (listed, with how long it lasted) or is cancelled (state "ok": forgotten, not listed), and the
 * remembered episodes stay under their cap without counting them on every event.
 */
import { starterFunction } from '../support/starter';

type Fn = (msg: unknown, flow: unknown, node: unknown) => unknown;

function changes(): { run: (payload: Record<string, unknown>) => unknown; ctx: Map<string, unknown> } {
  const fn = starterFunction<Fn>('tw.da.changes', 'msg', 'flow', 'node');
  const ctx = new Map<string, unknown>();
  const stores = new Set<string>();
  const flow = {
    get: (k: string, store: string) => (stores.add(store), ctx.get(k)),
    set: (k: string, v: unknown, store: string) => (stores.add(store), ctx.set(k, v)),
  };
  return {
    ctx,
    run: (payload) => {
      const out = fn({ payload }, flow, {});
      expect([...stores]).toEqual(['file']);
      return out;
    },
  };
}

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
  const out = c.run(ev('b1', 'resolved', now - 5000, { at: now - 1000, reason: 'clear', ack: { by: 'ops', at: now - 2000 } })) as { topic: string; payload: Array<Record<string, unknown>> };
  expect(out.topic).toBe('recent');
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
