/**
 * The starter's band chart (tw.an.band -> tw.an.bandchart) gets at most one message a second: the dashboard's ui-chart
 * copies its whole history (up to 600 points) twice for every message it gets, and the anomaly node hands the band
 * function about 20 batches a second under load, most with a score of the chosen device. The first points go at
 * once; those of a burst follow together a second after the ones before; after the chooser picks another device
 * (and clears the chart), points still waiting for the old one are dropped. Run from flows/starter.json with the
 * flow and node contexts as Maps, Jest's fake clock and timers.
 */
import { mapStore, starterFunction, starterNode } from '../support/starter';

interface Point {
  series: string;
  ts: number;
  y: number;
}
type Fn = (msg: unknown, flow: unknown, context: unknown, node: unknown, setTimeout: unknown) => { payload: Point[] } | null;

const T0 = 1_764_000_000_000;

function score(device: string, ts: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { device, metric: 'temperature', ts, value: 21, expected: 20, lower: 18, upper: 22, score: 0.1, learning: false, ...extra };
}

function rig(device: string): { input: (payload: unknown[]) => void; out: Point[][]; choose: (d: string) => void } {
  const flow = mapStore();
  flow.set('bandDevice', device);
  const context = mapStore();
  const out: Point[][] = [];
  const node = { send: (m: { payload: Point[] }) => out.push(m.payload) };
  const band = starterFunction<Fn>('tw.an.band', 'msg', 'flow', 'context', 'node', 'setTimeout');
  return {
    input: (payload) => {
      const m = band({ payload }, flow, context, node, setTimeout);
      if (m !== null) out.push(m.payload);
    },
    out,
    choose: (d) => flow.set('bandDevice', d),
  };
}

beforeEach(() => {
  jest.useFakeTimers({ now: T0 });
});
afterEach(() => {
  jest.useRealTimers();
});

test('wired: the band function and the device chooser into the band chart', () => {
  expect(starterNode('tw.an.band').wires).toEqual([['tw.an.bandchart']]);
  expect(starterNode('tw.an.choose').wires).toEqual([['tw.an.bandchart']]);
});

test('the first points at once, a burst as one message a second later, then at once again', () => {
  const r = rig('d1');
  r.input([score('d1', T0), score('d2', T0), score('d1', T0, { metric: 'humidity' })]);
  expect(r.out).toEqual([
    [
      { series: 'value', ts: T0, y: 21 },
      { series: 'expected', ts: T0, y: 20 },
      { series: 'lower', ts: T0, y: 18 },
      { series: 'upper', ts: T0, y: 22 },
    ],
  ]);
  for (let i = 1; i <= 12; i++) {
    jest.advanceTimersByTime(50); // 20 batches a second for 0.6 s
    r.input([score('d2', T0 + i), score('d1', T0 + i, { value: 21 + i })]);
  }
  expect(r.out).toHaveLength(1);
  jest.advanceTimersByTime(400);
  expect(r.out).toHaveLength(2);
  const burst = r.out[1];
  expect(burst).toHaveLength(48);
  expect(burst.filter((p) => p.series === 'value').map((p) => p.y)).toEqual(Array.from({ length: 12 }, (_, i) => 22 + i));
  expect(burst.map((p) => p.ts)).toEqual(Array.from({ length: 12 }, (_, i) => [T0 + 1 + i, T0 + 1 + i, T0 + 1 + i, T0 + 1 + i]).flat());
  jest.advanceTimersByTime(5000); // quiet: nothing waits, nothing is sent
  expect(r.out).toHaveLength(2);
  r.input([score('d1', T0 + 100, { learning: true })]); // still learning: the value without a band
  expect(r.out[2]).toEqual([{ series: 'value', ts: T0 + 100, y: 21 }]);
});

test('nothing for the chosen device: nothing sent, and no wait started', () => {
  const r = rig('d9');
  r.input([score('d1', T0)]);
  jest.advanceTimersByTime(2000);
  expect(r.out).toEqual([]);
  r.input([score('d9', T0 + 1)]);
  expect(r.out).toHaveLength(1);
});

test('another device chosen while points wait: the old device\'s points are dropped, the new one\'s sent', () => {
  const r = rig('d1');
  r.input([score('d1', T0)]);
  jest.advanceTimersByTime(100);
  r.input([score('d1', T0 + 1)]); // waits for the rest of the second
  r.choose('d2'); // the chooser clears the chart
  jest.advanceTimersByTime(1000);
  expect(r.out).toHaveLength(1); // d1's waiting point did not follow
  r.input([score('d1', T0 + 2), score('d2', T0 + 2, { value: 30 })]);
  expect(r.out).toHaveLength(2);
  expect(r.out[1].every((p) => p.ts === T0 + 2)).toBe(true);
  expect(r.out[1][0]).toEqual({ series: 'value', ts: T0 + 2, y: 30 });
  // A choice after the points of the new device were gathered in the same wait: only the newest device's go.
  jest.advanceTimersByTime(200);
  r.input([score('d2', T0 + 3)]);
  r.choose('d3');
  r.input([score('d3', T0 + 3, { value: 40 })]);
  jest.advanceTimersByTime(1000);
  expect(r.out).toHaveLength(3);
  expect(r.out[2].map((p) => p.y)).toEqual([40, 20, 18, 22]);
});
