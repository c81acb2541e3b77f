/**
 * The starter's temperature history chart: "range to query" (tw.hist.ask) asks the store, "history to chart"
 * (tw.hist.tochart) draws the first 12 devices by id. A new range, every 10th refresh, and every refresh while the
 * chart draws the whole fleet first ask which devices have readings (a count each), then the chart asks for the
 * first 12 alone (its third output, back to the query node); other refreshes ask for the 12 it drew (flow context).
 * Both functions run from flows/starter.json, each in a VM context of its own as Node-RED runs them; the store is
 * a stand-in that answers what was asked.
 */
import { mapStore, starterFunctionIsolated, starterNode as byId } from '../support/starter';

type Fn = (msg: Record<string, unknown>, flow: unknown, context: unknown) => unknown;
interface Query {
  fields: string[];
  start: string;
  level: string;
  maxPoints?: number;
  devices?: string[];
  bucket?: string;
  agg?: string;
}
type Out = Array<Record<string, unknown> | null>;

function rig(fleet: number) {
  const flow = mapStore();
  const askCtx = mapStore();
  const chartCtx = mapStore();
  const ask = starterFunctionIsolated<Fn>('tw.hist.ask', 'msg', 'flow', 'context');
  const chart = starterFunctionIsolated<Fn>('tw.hist.tochart', 'msg', 'flow', 'context');
  // Ids in no particular order; the first 12 by id are dev-0001..dev-0012.
  const ids = Array.from({ length: fleet }, (_, i) => `dev-${String(fleet - i).padStart(4, '0')}`);
  /** The query node and the store: a count per device for a count query, two points a device otherwise. */
  const answer = (msg: Record<string, unknown>): Record<string, unknown> => {
    const q = msg.payload as Query;
    const devices = q.devices ?? ids;
    const series = devices.map((device, i) => ({ device, field: 'temperature', points: q.agg === 'count' ? [[0, 60]] : [[1000 + i, 20 + i], [2000 + i, 21]] }));
    return { ...msg, payload: { series }, level: 'raw' };
  };
  return {
    flow,
    /** The button's or the inject's message through ask, the store and the chart, and the chart's own follow-up. */
    trip(payload: string): { queries: Query[]; drawn: string[] | undefined } {
      const queries: Query[] = [];
      let msg = ask({ payload }, flow, askCtx) as Record<string, unknown>;
      for (let hop = 0; hop < 3; hop++) {
        queries.push(msg.payload as Query);
        const out = chart(answer(msg), flow, chartCtx) as Out;
        expect(out).toHaveLength(3);
        if (out[2] !== null) {
          expect(out[0]).toBeNull();
          msg = out[2];
          continue;
        }
        const points = (out[0] as { payload: Array<{ device: string; ts: number }> }).payload;
        for (let i = 1; i < points.length; i++) expect(points[i].ts).toBeGreaterThanOrEqual(points[i - 1].ts);
        return { queries, drawn: [...new Set(points.map((p) => p.device))].sort() };
      }
      throw new Error('the chart kept asking');
    },
  };
}

const first = (n: number): string[] => Array.from({ length: n }, (_, i) => `dev-${String(i + 1).padStart(4, '0')}`);

test('wired: the buttons and the minute inject ask, the query answers the chart, the chart can ask again', () => {
  expect(byId('tw.hist.range').wires).toEqual([['tw.hist.ask']]);
  expect(byId('tw.hist.start').wires).toEqual([['tw.hist.ask']]);
  expect(byId('tw.hist.ask').wires).toEqual([['tw.hist.query']]);
  expect(byId('tw.hist.query').wires?.[0]).toEqual(['tw.hist.tochart']);
  expect(byId('tw.hist.tochart').wires).toEqual([['tw.hist.chart'], ['tw.hist.level'], ['tw.hist.query']]);
});

test('1,000 devices: a count first, then the first 12; refreshes ask for those 12; every 10th and a new range count again', () => {
  const r = rig(1000);
  const count = { fields: ['temperature'], start: '-1h', level: 'auto', bucket: '3650d', agg: 'count' };
  const twelve = { fields: ['temperature'], start: '-1h', level: 'auto', maxPoints: 500, devices: first(12) };
  // The first refresh (the inject once at start).
  let t = r.trip('');
  expect(t.queries).toEqual([count, twelve]);
  expect(t.drawn).toEqual(first(12));
  const asked: string[] = [];
  for (let i = 2; i <= 21; i++) {
    t = r.trip('');
    asked.push(t.queries.map((q) => (q.agg === 'count' ? 'count' : String(q.devices?.length))).join('+'));
    expect(t.queries.at(-1)).toEqual(twelve);
    expect(t.drawn).toEqual(first(12));
  }
  // Refreshes 2-9 the 12, the 10th a count first, 11-19 the 12, the 20th a count, the 21st the 12.
  expect(asked).toEqual(['12', '12', '12', '12', '12', '12', '12', '12', 'count+12', '12', '12', '12', '12', '12', '12', '12', '12', '12', 'count+12', '12']);
  // A range from the buttons: a count of that range, then its 12; refreshes keep the range.
  t = r.trip('-24h');
  expect(t.queries.map((q) => [q.start, q.agg ?? q.devices?.length])).toEqual([
    ['-24h', 'count'],
    ['-24h', 12],
  ]);
  t = r.trip('');
  expect(t.queries).toEqual([{ ...twelve, start: '-24h' }]);
});

test('a fleet the chart draws whole: every refresh counts first, so a new device shows at the next one', () => {
  const r = rig(7);
  for (let i = 0; i < 3; i++) {
    const t = r.trip('');
    expect(t.queries.map((q) => q.agg ?? q.devices?.length)).toEqual(['count', 7]);
    expect(t.drawn).toHaveLength(7);
  }
  expect(r.flow.get('tw_history_devices')).toBeNull();
});

test('no readings in the range: the chart is cleared and says so', () => {
  const r = rig(0);
  const ask = starterFunctionIsolated<Fn>('tw.hist.ask', 'msg', 'flow', 'context');
  const chart = starterFunctionIsolated<Fn>('tw.hist.tochart', 'msg', 'flow', 'context');
  const msg = ask({ payload: '-7d' }, r.flow, mapStore()) as Record<string, unknown>;
  const out = chart({ ...msg, payload: { series: [] }, level: '1h' }, r.flow, mapStore()) as Out;
  expect(out).toEqual([{ payload: [], action: 'replace' }, { payload: 'no readings in this range' }, null]);
});
