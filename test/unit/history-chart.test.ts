/**
 * The starter's temperature history chart: "range to query" (tw.hist.ask) asks the store, "history to chart"
 * (tw.hist.tochart) draws the first 12 devices by id. With more devices than it draws, the chart keeps their ids in
 * the flow context and the minute refreshes ask for those alone; a new range and every 10th refresh ask for every
 * device. Both functions run from flows/starter.json, each in a VM context of its own as Node-RED runs them.
 */
import { mapStore, starterFunctionIsolated, starterNode as byId } from '../support/starter';

type Fn = (msg: Record<string, unknown>, flow: unknown, context: unknown) => unknown;
interface Query {
  fields: string[];
  start: string;
  level: string;
  maxPoints: number;
  devices?: string[];
}

function rig(fleet: number) {
  const flow = mapStore();
  const askCtx = mapStore();
  const chartCtx = mapStore();
  const ask = starterFunctionIsolated<Fn>('tw.hist.ask', 'msg', 'flow', 'context');
  const chart = starterFunctionIsolated<Fn>('tw.hist.tochart', 'msg', 'flow', 'context');
  const ids = Array.from({ length: fleet }, (_, i) => `dev-${String(fleet - i).padStart(4, '0')}`);
  /** One trip: the button's or the inject's message through ask, a store answer for what it asked, and the chart. */
  return {
    flow,
    trip(payload: string): { query: Query; drawn: string[] } {
      const asked = ask({ payload }, flow, askCtx) as Record<string, unknown>;
      const query = asked.payload as Query;
      const devices = query.devices ?? ids;
      // The store's answer: a series per device asked for (in no particular order), two points each.
      const series = devices.map((device, i) => ({ device, field: 'temperature', points: [[1000 + i, 20 + i], [2000 + i, 21]] }));
      const [toChart] = chart({ ...asked, payload: { series }, level: 'raw' }, flow, chartCtx) as Array<{ payload: Array<{ device: string; ts: number }> }>;
      const drawn = [...new Set(toChart.payload.map((p) => p.device))].sort();
      for (let i = 1; i < toChart.payload.length; i++) expect(toChart.payload[i].ts).toBeGreaterThanOrEqual(toChart.payload[i - 1].ts);
      return { query, drawn };
    },
  };
}

test('wired: the buttons and the minute inject ask, the query answers the chart', () => {
  expect(byId('tw.hist.range').wires).toEqual([['tw.hist.ask']]);
  expect(byId('tw.hist.start').wires).toEqual([['tw.hist.ask']]);
  expect(byId('tw.hist.ask').wires).toEqual([['tw.hist.query']]);
  expect(byId('tw.hist.query').wires?.[0]).toEqual(['tw.hist.tochart']);
});

test('1,000 devices: refreshes ask for the 12 drawn, every 10th and a new range for all', () => {
  const r = rig(1000);
  const first12 = Array.from({ length: 12 }, (_, i) => `dev-${String(i + 1).padStart(4, '0')}`);
  // The first refresh (the inject once at start): every device, the first 12 by id drawn.
  let t = r.trip('');
  expect(t.query).toEqual({ fields: ['temperature'], start: '-1h', level: 'auto', maxPoints: 500 });
  expect(t.drawn).toEqual(first12);
  const asked: Array<number | 'all'> = [];
  for (let i = 2; i <= 21; i++) {
    t = r.trip('');
    asked.push(t.query.devices === undefined ? 'all' : t.query.devices.length);
    expect(t.query.start).toBe('-1h');
    expect(t.drawn).toEqual(first12);
  }
  // Refreshes 2-9 narrow, the 10th all, 11-19 narrow, the 20th all, the 21st narrow.
  expect(asked).toEqual([12, 12, 12, 12, 12, 12, 12, 12, 'all', 12, 12, 12, 12, 12, 12, 12, 12, 12, 'all', 12]);
  // A range from the buttons: every device, then narrow refreshes of that range.
  t = r.trip('-24h');
  expect(t.query.devices).toBeUndefined();
  expect(t.query.start).toBe('-24h');
  t = r.trip('');
  expect(t.query.devices).toEqual(first12);
  expect(t.query.start).toBe('-24h');
});

test('a fleet the chart draws whole: every refresh asks for every device', () => {
  const r = rig(7);
  for (let i = 0; i < 5; i++) {
    const t = r.trip('');
    expect(t.query.devices).toBeUndefined();
    expect(t.drawn).toHaveLength(7);
  }
  expect(r.flow.get('tw_history_devices')).toBeNull();
});
