/**
 * The starter's live chart function (tw.starter.tochart), run as Node-RED runs it (On Start once, then On Message per
 * message): one point per reading with a temperature for the first 12 devices seen, and the same devices after the
 * node starts again with its context (a redeploy).
 */
import { mapStore, starterNodeFunction } from '../support/starter';

type Out = Array<Array<{ payload: { device: string; ts: number; value: number } }>>;

const reading = (device: string, ts: number, metrics: Record<string, unknown>): Record<string, unknown> => ({ device, ts, metrics });

test('one point per reading with a numeric temperature, for the first 12 devices seen', () => {
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
  const [out] = again({ payload: [reading('new', 2, { temperature: 1 }), reading('a3', 2, { temperature: 2 })] });
  expect(out.map((m) => m.payload.device)).toEqual(['a3']);
});
