/**
 * The starter's live chart function (tw.starter.tochart), run as Node-RED runs it (On Start once, then On Message per
 * message): one point per device and second of readings with a temperature, for the first 12 devices seen, and the
 * same devices after the node starts again with its context (a redeploy).
 */
import { mapStore, starterNodeFunction } from '../support/starter';

type Out = Array<Array<{ payload: { device: string; ts: number; value: number } }>>;

const reading = (device: string, ts: number, metrics: Record<string, unknown>): Record<string, unknown> => ({ device, ts, metrics });

test('a point for a reading with a numeric temperature, for the first 12 devices seen', () => {
  const points = starterNodeFunction<Out>('tw.starter.tochart', { context: mapStore() });
  const batch = Array.from({ length: 14 }, (_, i) => reading(`d${i}`, 1000 + i, { temperature: 20 + i, humidity: 50 }));
  batch.push(reading('d0', 2000, { humidity: 40 }), reading('d1', 2001, { temperature: 'hot' }), reading('d2', 2002, { temperature: 30 }));
  const [out] = points({ payload: batch });
  expect(out.map((m) => m.payload)).toEqual([
    ...Array.from({ length: 12 }, (_, i) => ({ device: `d${i}`, ts: 1000 + i, value: 20 + i })),
    { device: 'd2', ts: 2002, value: 30 },
  ]);
  // One reading, not in an array.
  expect(points({ payload: reading('d5', 3000, { temperature: 1 }) })[0].map((m) => m.payload)).toEqual([{ device: 'd5', ts: 3000, value: 1 }]);
});

test('started again with the same context, it draws the same devices', () => {
  const context = mapStore();
  const first = starterNodeFunction<Out>('tw.starter.tochart', { context });
  first({ payload: Array.from({ length: 12 }, (_, i) => reading(`a${i}`, 1, { temperature: i })) });
  const again = starterNodeFunction<Out>('tw.starter.tochart', { context });
  const [out] = again({ payload: [reading('new', 2000, { temperature: 1 }), reading('a3', 2000, { temperature: 2 })] });
  expect(out.map((m) => m.payload.device)).toEqual(['a3']);
  // It remembers the second of each device's last point too: a3's 2999 falls in the second of its point at 2000, a4's
  // 999 in the second of its point at 1, so neither is drawn.
  expect(again({ payload: [reading('a3', 2999, { temperature: 3 }), reading('a4', 999, { temperature: 4 })] })[0]).toEqual([]);
});

test('at most one point a device each second of event time: the first reading with a temperature in it', () => {
  const points = starterNodeFunction<Out>('tw.starter.tochart', { context: mapStore() });
  const T = 1_800_000_000_000;
  // Two devices at 250 readings a second for 3 s, in 100-reading messages; d1's first reading of each second has no
  // temperature, so its second reading of that second is the one drawn.
  const drawn: Array<{ device: string; ts: number; value: number }> = [];
  for (let m = 0; m < 15; m++) {
    const batch = [];
    for (let k = 0; k < 100; k++) {
      const i = m * 100 + k;
      const device = i % 2 === 0 ? 'd0' : 'd1';
      const ts = T + Math.floor(i / 2) * 4;
      batch.push(reading(device, ts, device === 'd1' && ts % 1000 === 0 ? { humidity: 1 } : { temperature: i }));
    }
    for (const o of points({ payload: batch })[0]) drawn.push(o.payload);
  }
  expect(drawn).toEqual([
    { device: 'd0', ts: T, value: 0 },
    { device: 'd1', ts: T + 4, value: 3 },
    { device: 'd0', ts: T + 1000, value: 500 },
    { device: 'd1', ts: T + 1004, value: 503 },
    { device: 'd0', ts: T + 2000, value: 1000 },
    { device: 'd1', ts: T + 2004, value: 1003 },
  ]);
  // A late reading (an earlier second) is not drawn; one more than 10 minutes earlier is (the device's clock was set
  // back), and the device goes on from there.
  const late = points({ payload: [reading('d0', T + 1500, { temperature: 1 }), reading('d1', T - 601_000, { temperature: 2 }), reading('d1', T - 600_500, { temperature: 3 }), reading('d1', T - 599_000, { temperature: 4 })] })[0];
  expect(late.map((o) => o.payload)).toEqual([
    { device: 'd1', ts: T - 601_000, value: 2 },
    { device: 'd1', ts: T - 599_000, value: 4 },
  ]);
});
