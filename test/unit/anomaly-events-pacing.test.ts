/**
 * The starter's anomaly events to the dashboard are paced: "recent events" (tw.an.events) sends the 50-event table at
 * most once a second, the last list of a burst one second after the one before; "firing events to a toast"
 * (tw.an.notify) shows at most one toast every 5 s and tells in one toast how many more started meanwhile. A
 * fleet-wide anomaly in the dashboard bench was ~100 events a second, each a list and a toast to every open page
 * (150 socket frames and 2.7 MB a second). The device offline toasts (tw.dev.notify) are paced the same way: a broker
 * restart takes a whole fleet offline at once. The functions run from flows/starter.json with their context as a
 * Map, Jest's fake clock and timers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

interface FlowNode {
  id: string;
  func?: string;
  wires?: string[][];
}
interface Out {
  payload: unknown;
}
type Fn = (msg: unknown, context: unknown, node: unknown, setTimeout: unknown) => Out | null;

const ROOT = path.join(__dirname, '..', '..');
const flows = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'starter.json'), 'utf8')) as FlowNode[];
const byId = (id: string): FlowNode => {
  const n = flows.find((x) => x.id === id);
  if (n === undefined) throw new Error(`${id} is not in flows/starter.json`);
  return n;
};

/** Runs one function node: what it returned and what it sent later, in order. */
function rig(id: string, ctx = new Map<string, unknown>(), timer: unknown = setTimeout): { input: (payload: unknown) => void; out: unknown[] } {
  const context = { get: (k: string) => ctx.get(k), set: (k: string, v: unknown) => ctx.set(k, v) };
  const out: unknown[] = [];
  const node = { send: (m: Out) => out.push(m.payload) };
  const fn = new Function('msg', 'context', 'node', 'setTimeout', byId(id).func!) as Fn;
  return {
    input: (payload) => {
      const r = fn({ payload }, context, node, timer);
      if (r !== null) out.push(r.payload);
    },
    out,
  };
}

const event = (i: number, state = 'firing') => ({ since: 1_764_000_000_000 + i, device: `d${i}`, metric: 'temperature', rule: 'anomaly', state, severity: 'warning', message: `anomaly ${i}` });

beforeEach(() => {
  jest.useFakeTimers({ now: 1_764_000_000_000 });
});
afterEach(() => {
  jest.useRealTimers();
});

test('wired from the anomaly node to the events table and the toast', () => {
  expect(byId('tw.an.events').wires).toEqual([['tw.an.eventtable']]);
  expect(byId('tw.an.notify').wires).toEqual([['tw.an.toast']]);
  expect(byId('tw.dev.notify').wires).toEqual([['tw.an.toast']]);
});

test('events table: the first list at once, a burst as one list a second later, then at once again', () => {
  const r = rig('tw.an.events');
  r.input(event(0));
  expect(r.out).toHaveLength(1);
  for (let i = 1; i <= 300; i++) {
    jest.advanceTimersByTime(2); // 500 events a second for 0.6 s
    r.input(event(i));
  }
  expect(r.out).toHaveLength(1);
  jest.advanceTimersByTime(400);
  expect(r.out).toHaveLength(2);
  const list = r.out[1] as Array<{ device: string }>;
  expect(list).toHaveLength(50);
  expect(list[0].device).toBe('d300');
  expect(list[49].device).toBe('d251');
  jest.advanceTimersByTime(5000); // quiet: nothing pending, nothing sent
  expect(r.out).toHaveLength(2);
  r.input(event(301, 'resolved'));
  expect(r.out).toHaveLength(3);
  expect((r.out[2] as Array<{ device: string; state: string }>)[0]).toMatchObject({ device: 'd301', state: 'resolved' });
});

test('events table: each list sent is a copy, not the list the function keeps changing', () => {
  const r = rig('tw.an.events');
  r.input(event(0));
  jest.advanceTimersByTime(1000);
  r.input(event(1));
  expect((r.out[0] as unknown[]).length).toBe(1);
  expect((r.out[1] as unknown[]).length).toBe(2);
});

test('toasts: one every 5 s at most, and one telling how many more started meanwhile', () => {
  const r = rig('tw.an.notify');
  r.input(event(0));
  expect(r.out).toEqual(['d0: anomaly 0']);
  r.input(event(1, 'resolved')); // resolved events make no toast and are not counted
  for (let i = 2; i <= 101; i++) {
    jest.advanceTimersByTime(10);
    r.input(event(i));
  }
  expect(r.out).toHaveLength(1);
  jest.advanceTimersByTime(5000);
  expect(r.out).toEqual(['d0: anomaly 0', '100 more anomaly or maintenance warnings started: see Events']);
  r.input(event(102)); // the last toast went out at 5 s, 1 s ago: this one is counted for the next
  jest.advanceTimersByTime(4000);
  expect(r.out[2]).toBe('1 more anomaly or maintenance warning started: see Events');
  jest.advanceTimersByTime(5000); // quiet for 5 s: the next event shows at once
  r.input(event(103));
  expect(r.out[3]).toBe('d103: anomaly 103');
  expect(r.out).toHaveLength(4);
});

test('a redeploy that cancels the pending timer does not leave the table or the toasts stuck', () => {
  for (const [id, every] of [
    ['tw.an.events', 1000],
    ['tw.an.notify', 5000],
    ['tw.dev.notify', 5000],
  ] as const) {
    const ctx = new Map<string, unknown>();
    // The node before the redeploy: its timers never fire (Node-RED clears a function node's timers on close); the
    // context stays.
    const before = rig(id, ctx, () => undefined);
    before.input(event(0));
    jest.advanceTimersByTime(10);
    before.input(event(1)); // pending: a timer is set, and cancelled
    jest.advanceTimersByTime(every);
    const after = rig(id, ctx);
    after.input(event(2));
    expect([id, after.out.length]).toEqual([id, 1]);
  }
});

test('offline toasts: a fleet going offline at once is one toast, then one with how many more', () => {
  const r = rig('tw.dev.notify');
  const liveness = (i: number, state: string) => ({ device: `d${i}`, state, message: `no reading for 2m` });
  for (let i = 0; i < 2000; i++) {
    r.input(liveness(i, 'firing'));
    if (i % 4 === 3) jest.advanceTimersByTime(1);
  }
  expect(r.out).toEqual(['d0: offline, no reading for 2m']);
  jest.advanceTimersByTime(5000);
  expect(r.out).toEqual(['d0: offline, no reading for 2m', '1999 more devices went offline or came back: see Devices']);
  jest.advanceTimersByTime(5000);
  r.input(liveness(0, 'resolved'));
  expect(r.out[2]).toBe('d0: back online, no reading for 2m');
});
