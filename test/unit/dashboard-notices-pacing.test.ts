/**
 * The starter's dashboard notices are paced: "recent events" (tw.an.events) sends the 50-event table at most once a
 * second, the last list of a burst one second after the one before; every toast (anomaly and maintenance warnings
 * from tw.an.notify, devices offline or back from tw.dev.notify) passes "one toast every 5 s" (tw.toast.pace), which
 * tells in one toast how many more of each kind came meanwhile. A fleet-wide anomaly in the dashboard bench was ~100
 * events a second, each a list and a toast to every open page (150 socket frames and 2.7 MB a second); a broker
 * restart takes every device offline at once. The functions run from flows/starter.json with their context as a
 * Map, Jest's fake clock and timers.
 */
import { mapStore, starterFunction, starterNode } from '../support/starter';

interface Out {
  topic?: string;
  payload: unknown;
}
type Fn = (msg: unknown, context: unknown, node: unknown, setTimeout: unknown) => Out | null;

/**
 * Runs the given function nodes one after the other (each one's result into the next, as wired) with their own
 * contexts: what the last returned and what it sent later, in order. `timer` stands for their setTimeout.
 */
function rig(ids: string[], stores = ids.map(() => mapStore()), timer: unknown = setTimeout): { input: (payload: unknown) => void; out: unknown[]; stores: typeof stores } {
  const out: unknown[] = [];
  const fns = ids.map((id) => starterFunction<Fn>(id, 'msg', 'context', 'node', 'setTimeout'));
  const last = fns.length - 1;
  const node = { send: (m: Out) => out.push(m.payload) };
  return {
    input: (payload) => {
      let m: Out | null = { payload };
      for (let i = 0; i < fns.length && m !== null; i++) m = fns[i](m, stores[i], i === last ? node : {}, timer);
      if (m !== null) out.push(m.payload);
    },
    out,
    stores,
  };
}

const ANOMALY_TOASTS = ['tw.an.notify', 'tw.toast.pace'];
const DEVICE_TOASTS = ['tw.dev.notify', 'tw.toast.pace'];
const event = (i: number, state = 'firing') => ({ since: 1_764_000_000_000 + i, device: `d${i}`, metric: 'temperature', rule: 'anomaly', state, severity: 'warning', message: `anomaly ${i}` });
const liveness = (i: number, state: string) => ({ device: `d${i}`, state, message: 'no reading for 2m' });

beforeEach(() => {
  jest.useFakeTimers({ now: 1_764_000_000_000 });
});
afterEach(() => {
  jest.useRealTimers();
});

test('wired: the events table after its function (through the Live page\'s gate), every toast through the pacing', () => {
  expect(starterNode('tw.an.events').wires).toEqual([['tw.dlive.events']]);
  expect(starterNode('tw.dlive.events').wires).toEqual([['tw.an.eventtable']]);
  expect(starterNode('tw.an.notify').wires).toEqual([['tw.toast.pace']]);
  expect(starterNode('tw.dev.notify').wires).toEqual([['tw.toast.pace']]);
  expect(starterNode('tw.toast.pace').wires).toEqual([['tw.an.toast']]);
});

test('events table: the first list at once, a burst as one list a second later, then at once again', () => {
  const r = rig(['tw.an.events']);
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
  const r = rig(['tw.an.events']);
  r.input(event(0));
  jest.advanceTimersByTime(1000);
  r.input(event(1));
  expect((r.out[0] as unknown[]).length).toBe(1);
  expect((r.out[1] as unknown[]).length).toBe(2);
});

test('anomaly toasts: one every 5 s at most, and one telling how many more started meanwhile', () => {
  const r = rig(ANOMALY_TOASTS);
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

test('offline toasts: a fleet going offline at once is one toast, then one with how many more', () => {
  const r = rig(DEVICE_TOASTS);
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

test('anomaly and device toasts share the pace: one toast every 5 s in all, counted by kind', () => {
  const pace = mapStore();
  const anomalies = rig(ANOMALY_TOASTS, [mapStore(), pace]);
  const devices = rig(DEVICE_TOASTS, [mapStore(), pace]);
  anomalies.input(event(0));
  devices.input(liveness(1, 'firing'));
  devices.input(liveness(2, 'firing'));
  anomalies.input(event(3));
  expect(anomalies.out).toEqual(['d0: anomaly 0']);
  expect(devices.out).toEqual([]);
  jest.advanceTimersByTime(5000);
  // The pending toast goes out from the first rig's pacing call that scheduled it: the devices' one.
  expect(devices.out).toEqual(['2 more devices went offline or came back: see Devices; 1 more anomaly or maintenance warning started: see Events']);
});

test('a redeploy that cancels the pending timer does not leave the table or the toasts stuck', () => {
  for (const [ids, every] of [
    [['tw.an.events'], 1000],
    [ANOMALY_TOASTS, 5000],
  ] as const) {
    // The nodes before the redeploy: their timers never fire (Node-RED clears a function node's timers on close);
    // the contexts stay.
    const before = rig([...ids], undefined, () => undefined);
    before.input(event(0));
    jest.advanceTimersByTime(10);
    before.input(event(1)); // pending: a timer is set, and cancelled
    jest.advanceTimersByTime(every);
    const after = rig([...ids], before.stores);
    after.input(event(2));
    expect([ids, after.out.length]).toEqual([ids, 1]);
  }
});
