/**
 * The Device page's live function (tw.dp.live) and its request router (tw.dp.router), run from flows/starter.json with
 * the flow context as a Map: each valid reading becomes its device's latest (merged by metric, updated in place, late
 * readings ignored, the map kept in order of the last update to within 10 s) and goes to the browsers watching that device only; a
 * watch is answered with a copy of the latest entry, so a later reading cannot change an answer still on its way.
 */
import { mapStore, starterFunction, starterNodeFunction } from '../support/starter';

interface Out {
  topic: string;
  payload: { device?: string; ts?: number; metrics?: Record<string, unknown> };
  _client: { socketId: string };
}
type Fn = (msg: unknown, flow: unknown, node: unknown) => Array<Out | Out[] | null> | null;

interface DpState {
  latest: Map<string, { ts: number; metrics: Record<string, unknown> }>;
  watchers: Map<string, unknown>;
}

function rig(): { live: (payload: unknown) => Out[]; watch: (socketId: string, device: string) => Out; state: () => DpState } {
  const flow = mapStore();
  const node = { status: () => undefined, warn: () => undefined };
  const live = starterNodeFunction<ReturnType<Fn>>('tw.dp.live', { flow, node, context: mapStore() });
  const router = starterFunction<Fn>('tw.dp.router', 'msg', 'flow', 'node');
  return {
    live: (payload) => live({ payload })![0] as Out[],
    watch: (socketId, device) => router({ topic: 'watch', payload: { device }, _client: { socketId } }, flow, node)![0] as Out,
    state: () => flow.get('tw_dp_state') as DpState,
  };
}

test('latest: merged by metric, late readings ignored, in order of the last update to within 10 s', () => {
  jest.useFakeTimers({ now: 1_000_000 });
  try {
    const r = rig();
    expect(r.live({ device: 'a', ts: 1000, metrics: { temperature: 20, humidity: 50 } })).toEqual([]);
    r.live([
      { device: 'b', ts: 1500, metrics: { temperature: 30 } },
      { device: 'a', ts: 2000, metrics: { temperature: 21 } },
    ]);
    r.live({ device: 'a', ts: 1800, metrics: { temperature: 99, humidity: 99 } }); // late: history, not latest
    const { latest } = r.state();
    expect(latest.get('a')).toEqual({ ts: 2000, metrics: { temperature: 21, humidity: 50 }, moved: 1_000_000 });
    // Updated within 10 s of being placed: not moved (moving an entry on every reading cost 40 % of the node's time).
    expect([...latest.keys()]).toEqual(['a', 'b']);
    jest.advanceTimersByTime(10_000);
    r.live({ device: 'a', ts: 2200, metrics: { humidity: 51 } });
    expect([...latest.keys()]).toEqual(['b', 'a']);
    r.live({ device: 'b', ts: 2500, metrics: { humidity: 40 } });
    expect([...latest.keys()]).toEqual(['a', 'b']);
    expect(latest.get('b')).toEqual({ ts: 2500, metrics: { temperature: 30, humidity: 40 }, moved: 1_010_000 });
    jest.advanceTimersByTime(5_000);
    r.live({ device: 'a', ts: 2600, metrics: { humidity: 52 } }); // moved 5 s ago: stays
    expect([...latest.keys()]).toEqual(['a', 'b']);
    expect(latest.get('a')).toEqual({ ts: 2600, metrics: { temperature: 21, humidity: 52 }, moved: 1_010_000 });
  } finally {
    jest.useRealTimers();
  }
});

test('at most 10,000 devices: the least recently moved one is dropped for a new one', () => {
  jest.useFakeTimers({ now: 1_000_000 });
  try {
    const r = rig();
    for (const p of ['d', 'e']) r.live(Array.from({ length: 5000 }, (_, i) => ({ device: `${p}${i}`, ts: 1, metrics: { v: i } })));
    jest.advanceTimersByTime(10_000);
    r.live({ device: 'd0', ts: 2, metrics: { v: -1 } }); // placed 10 s ago: moved to the end
    r.live({ device: 'new', ts: 2, metrics: { v: 1 } });
    const keys = [...r.state().latest.keys()];
    expect(keys.length).toBe(10_000);
    expect([keys[0], keys.includes('d1'), keys.slice(-2)]).toEqual(['d2', false, ['d0', 'new']]);
  } finally {
    jest.useRealTimers();
  }
});

test('malformed readings are skipped, the others kept', () => {
  const r = rig();
  r.live([null, { device: 7, ts: 1, metrics: {} }, { device: 'c', ts: 'x', metrics: {} }, { device: 'c', ts: 5 }, { device: 'd', ts: 5, metrics: { v: 1 } }]);
  expect([...r.state().latest.keys()]).toEqual(['d']);
});

test('a reading goes to the browsers watching its device only, with its own metrics', () => {
  const r = rig();
  r.live({ device: 'a', ts: 1000, metrics: { temperature: 20, humidity: 50 } });
  r.watch('s1', 'a');
  r.watch('s2', 'b');
  r.watch('s3', 'a');
  const out = r.live([
    { device: 'a', ts: 2000, metrics: { temperature: 21 } },
    { device: 'b', ts: 2000, metrics: { temperature: 30 } },
    { device: 'c', ts: 2000, metrics: { temperature: 40 } },
  ]);
  expect(out.map((m) => [m._client.socketId, m.payload.device, m.payload.metrics])).toEqual([
    ['s1', 'a', { temperature: 21 }],
    ['s3', 'a', { temperature: 21 }],
    ['s2', 'b', { temperature: 30 }],
  ]);
});

test('a watch is answered with a copy of the latest entry', () => {
  const r = rig();
  r.live({ device: 'a', ts: 1000, metrics: { temperature: 20, humidity: 50 } });
  const answer = r.watch('s1', 'a');
  expect(answer.topic).toBe('latest');
  r.live({ device: 'a', ts: 2000, metrics: { temperature: 25 } });
  expect(answer.payload).toEqual({ device: 'a', ts: 1000, metrics: { temperature: 20, humidity: 50 } });
  expect(r.watch('s1', 'a').payload).toEqual({ device: 'a', ts: 2000, metrics: { temperature: 25, humidity: 50 } });
  expect(r.watch('s1', 'nobody').payload).toEqual({ device: 'nobody' });
});
