/**
 * The Live page's gates (flows/src/dashboard/pages/live.js): the page's tables and texts go out only while a
 * browser has the Live page open, at most once a second with the latest winning; what comes while none is open
 * waits (the last message only) and goes when one opens. Each Function node runs in a VM context of its own, as
 * in Node-RED (the viewers node's Map is read by the gates through the flow context).
 */
import { mapStore, starterFunctionIsolated, starterNode } from '../support/starter';

type Fn = (msg: unknown, flow: unknown, context: unknown, node: unknown) => unknown;
const T0 = 1_764_000_000_000;
const GATES = ['tw.dlive.alerts', 'tw.dlive.latest', 'tw.dlive.rejects', 'tw.dlive.events', 'tw.dlive.devices'];

beforeEach(() => jest.useFakeTimers({ now: T0 }));
afterEach(() => jest.useRealTimers());

interface Wired {
  /** A message into the viewers node (hello / bye from the Live page's template); what it sent goes to every gate. */
  viewer: (topic: string, socketId: string) => unknown;
  /** A message into one gate: what it returned at once. */
  feed: (gate: string, msg: Record<string, unknown>) => unknown;
  /** What each gate sent later (from its timer) or returned. */
  sent: Map<string, unknown[]>;
  status: Map<string, unknown>;
}

function wire(): Wired {
  const flow = mapStore();
  const sent = new Map<string, unknown[]>(GATES.map((g) => [g, []]));
  const status = new Map<string, unknown>();
  const gates = new Map(
    GATES.map((id) => {
      const fn = starterFunctionIsolated<Fn>(id, 'msg', 'flow', 'context', 'node');
      const context = mapStore();
      const node = { status: (s: unknown) => status.set(id, s), send: (m: unknown) => sent.get(id)!.push(m) };
      return [id, (msg: unknown) => fn(msg, flow, context, node)] as const;
    }),
  );
  const viewersFn = starterFunctionIsolated<Fn>('tw.dlive.viewers', 'msg', 'flow', 'context', 'node');
  const vnode = { status: (s: unknown) => status.set('tw.dlive.viewers', s) };
  const feed = (gate: string, msg: Record<string, unknown>): unknown => {
    const out = gates.get(gate)!(msg);
    if (out) sent.get(gate)!.push(out);
    return out;
  };
  return {
    viewer: (topic, socketId) => {
      const out = viewersFn({ topic, _client: { socketId } }, flow, mapStore(), vnode);
      if (out) for (const g of GATES) feed(g, out as Record<string, unknown>);
      return out;
    },
    feed,
    sent,
    status,
  };
}

test('wired: each gated widget gets its producers\' messages through its gate; the template says hello to the viewers node', () => {
  const widgets: Record<string, string> = {
    'tw.dlive.alerts': 'tw.al.table',
    'tw.dlive.latest': 'tw.starter.table',
    'tw.dlive.rejects': 'tw.starter.rejtext',
    'tw.dlive.events': 'tw.an.eventtable',
    'tw.dlive.devices': 'tw.dev.table',
  };
  for (const [gate, widget] of Object.entries(widgets)) expect(starterNode(gate).wires).toEqual([[widget]]);
  expect(starterNode('tw.al.answer').wires?.[0]).toEqual(['tw.dlive.alerts']);
  expect(starterNode('tw.starter.latest').wires?.[0]).toEqual(['tw.dlive.latest']);
  expect(starterNode('tw.starter.rejects').wires?.[0]).toEqual(['tw.dlive.rejects']);
  expect(starterNode('tw.starter.rejinit').wires?.[0]).toEqual(['tw.dlive.rejects']);
  expect(starterNode('tw.dev.events').wires?.[0]).toEqual(['tw.dlive.devices']);
  expect(starterNode('tw.dlive.beacon').wires).toEqual([['tw.dlive.viewers']]);
  expect(starterNode('tw.dlive.viewers').wires).toEqual([GATES]);
});

test('no Live page open: nothing goes out, the last message waits and goes when a page opens', () => {
  const w = wire();
  expect(w.feed('tw.dlive.latest', { payload: ['table 1'] })).toBeNull();
  expect(w.feed('tw.dlive.latest', { payload: ['table 2'] })).toBeNull();
  jest.advanceTimersByTime(5000);
  expect(w.sent.get('tw.dlive.latest')).toEqual([]);
  expect(w.status.get('tw.dlive.latest')).toMatchObject({ text: expect.stringContaining('no Live page open') });
  // A page opens: each gate with something waiting sends its last message, once; the others nothing.
  expect(w.viewer('hello', 's1')).toEqual({ tw_live: 'open' });
  expect(w.sent.get('tw.dlive.latest')).toEqual([{ payload: ['table 2'] }]);
  expect(w.sent.get('tw.dlive.alerts')).toEqual([]);
  expect(w.status.get('tw.dlive.viewers')).toMatchObject({ text: '1 on the Live page' });
  // Its next hello is not an opening.
  expect(w.viewer('hello', 's1')).toBeNull();
  expect(w.sent.get('tw.dlive.latest')).toHaveLength(1);
});

test('a page open: at most one message a second, the latest winning; a quiet gate passes at once', () => {
  const w = wire();
  w.viewer('hello', 's1');
  expect(w.feed('tw.dlive.alerts', { payload: ['a'] })).toEqual({ payload: ['a'] });
  jest.advanceTimersByTime(200);
  expect(w.feed('tw.dlive.alerts', { payload: ['b'] })).toBeNull();
  expect(w.feed('tw.dlive.alerts', { payload: ['c'] })).toBeNull();
  jest.advanceTimersByTime(799);
  expect(w.sent.get('tw.dlive.alerts')).toEqual([{ payload: ['a'] }]);
  jest.advanceTimersByTime(1);
  expect(w.sent.get('tw.dlive.alerts')).toEqual([{ payload: ['a'] }, { payload: ['c'] }]);
  jest.advanceTimersByTime(3000);
  expect(w.sent.get('tw.dlive.alerts')).toHaveLength(2);
  expect(w.feed('tw.dlive.alerts', { payload: ['d'] })).toEqual({ payload: ['d'] });
});

test('the last page closes (bye, or 30 s without a hello): the gates hold again, a due send included', () => {
  const w = wire();
  w.viewer('hello', 's1');
  w.viewer('hello', 's2');
  w.feed('tw.dlive.events', { payload: ['e1'] });
  w.viewer('bye', 's1');
  // s2 still there.
  w.feed('tw.dlive.events', { payload: ['e2'] });
  jest.advanceTimersByTime(1000);
  expect(w.sent.get('tw.dlive.events')).toEqual([{ payload: ['e1'] }, { payload: ['e2'] }]);
  // s2 said hello at T0 and says nothing more (a closed tab): counted until T0 + 30 s.
  jest.advanceTimersByTime(28_500); // T0 + 29.5 s
  expect(w.feed('tw.dlive.events', { payload: ['e3'] })).toEqual({ payload: ['e3'] });
  jest.advanceTimersByTime(400);
  // Due at T0 + 30.5 s, when no page is open any more: it waits.
  expect(w.feed('tw.dlive.events', { payload: ['e4'] })).toBeNull();
  jest.advanceTimersByTime(5000);
  expect(w.sent.get('tw.dlive.events')).toEqual([{ payload: ['e1'] }, { payload: ['e2'] }, { payload: ['e3'] }]);
  // s2's socket reconnects as s3: the gates send what waits.
  expect(w.viewer('hello', 's3')).toEqual({ tw_live: 'open' });
  expect(w.sent.get('tw.dlive.events')).toEqual([{ payload: ['e1'] }, { payload: ['e2'] }, { payload: ['e3'] }, { payload: ['e4'] }]);
});

test('messages without a browser, or other topics, change no one\'s viewing', () => {
  const w = wire();
  expect(w.viewer('hello', '')).toBeNull();
  expect(w.viewer('something', 's1')).toBeNull();
  expect(w.feed('tw.dlive.devices', { payload: ['row'] })).toBeNull();
  expect(w.status.get('tw.dlive.viewers')).toMatchObject({ text: '0 on the Live page' });
});
