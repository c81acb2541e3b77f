/**
 * The starter's latest-values table is paced by its size: "latest values to table" (tw.starter.latest) records how
 * many rows it made, and "as often as the table's size allows" (tw.win.latestpace, between the 1 s inject and the
 * window node) lets a tick through only when 2.5 ms a row have passed since the last one it let through. Both
 * functions run from flows/starter.json with the flow and node contexts as Maps and a fake clock.
 */
import { mapStore, starterFunction, starterNode as byId } from '../support/starter';

type Fn = (msg: unknown, flow: unknown, context: unknown) => unknown;

function rig(): { tick: () => boolean; table: (devices: number) => void } {
  const flowCtx = mapStore();
  const paceCtx = mapStore();
  const latestCtx = mapStore();
  const pace = starterFunction<Fn>('tw.win.latestpace', 'msg', 'flow', 'context');
  const latest = starterFunction<Fn>('tw.starter.latest', 'msg', 'flow', 'context');
  return {
    tick: () => pace({ action: 'latest' }, flowCtx, paceCtx) !== null,
    table: (devices) => {
      const payload = [];
      for (let i = 0; i < devices; i++) for (const metric of ['temperature', 'humidity']) payload.push({ device: `d${String(i).padStart(5, '0')}`, metric, ts: Date.now(), value: i });
      const out = latest({ payload }, flowCtx, latestCtx) as Array<{ payload: unknown[] } | null>;
      expect(out[0]!.payload).toHaveLength(devices);
    },
  };
}

beforeEach(() => {
  jest.useFakeTimers({ now: 1_764_000_000_000 });
});
afterEach(() => {
  jest.useRealTimers();
});

test('wired between the 1 s inject and the window node', () => {
  expect(byId('tw.win.latesttick').wires).toEqual([['tw.win.latestpace']]);
  expect(byId('tw.win.latestpace').wires).toEqual([['tw.win.window']]);
});

test('a small fleet: every tick goes on', () => {
  const r = rig();
  for (let s = 0; s < 10; s++) {
    expect(r.tick()).toBe(true);
    r.table(400);
    jest.advanceTimersByTime(1000);
  }
});

test('2,000 devices: one tick in five goes on (every 5 s); back to every tick when the fleet shrinks', () => {
  const r = rig();
  const passed: number[] = [];
  for (let s = 0; s < 20; s++) {
    if (r.tick()) {
      passed.push(s);
      r.table(2000);
    }
    jest.advanceTimersByTime(1000);
  }
  expect(passed).toEqual([0, 5, 10, 15]);
  jest.advanceTimersByTime(4000);
  expect(r.tick()).toBe(true);
  r.table(10);
  jest.advanceTimersByTime(1000);
  expect(r.tick()).toBe(true);
});
