/**
 * nodes/window/engine.ts state: snapshot() / restore() mid-stream gives the same outputs as an
 * uninterrupted run (through JSON text, for many seeds, cut points and configurations), bounded
 * memory (maxKeys with LRU eviction, evictAfter), idle timeouts driven by the caller's clock, and
 * the stats() figures.
 */
import type { MetricValue, Reading } from '../../nodes/lib/contract';
import { WindowEngine, type WindowEngineOptions, type WindowOutput, type WindowRollup } from '../../nodes/window/engine';
import { mulberry32 } from '../../runtime/sim-model';

const T0 = Date.UTC(2026, 4, 4, 8);
const MIN = 60_000;

/** Readings from a few devices, out of order, some very late, some non-numeric, a counter. */
function stream(seed: number, n = 500, meanStep = 3000, lateMax = 600_000): Reading[] {
  const r = mulberry32(seed);
  const out: Reading[] = [];
  let t = T0;
  let c = 0;
  for (let i = 0; i < n; i++) {
    t += Math.floor(r() * 2 * meanStep);
    const ts = t - (r() < 0.1 ? Math.floor(r() * lateMax) : Math.floor(r() * 10_000));
    const metrics: Record<string, MetricValue> = { v: Math.round(r() * 4000) / 16 };
    if (r() < 0.3) metrics.s = r() < 0.5 ? 'open' : false;
    if (r() < 0.4) {
      c = r() < 0.05 ? 0 : c + Math.floor(r() * 7);
      metrics.c = c;
    }
    const rd: Reading = { device: `d${Math.floor(r() * 4)}`, ts, metrics };
    if (r() < 0.2) rd.tags = { site: 'north' };
    out.push(rd);
  }
  return out;
}

interface Trace {
  rollups: WindowRollup[];
  late: Reading[];
}

function collect(t: Trace, out: WindowOutput): void {
  t.rollups.push(...out.rollups);
  t.late.push(...out.late);
}

/**
 * Feeds the stream with a wall clock 5 s per reading (faster than event time, about 3 s a reading),
 * and after every 10th reading a 20 s pause with an advance() at its end, so idle timeouts move
 * watermarks past the data.
 */
function feed(e: WindowEngine, s: readonly Reading[], from: number, to: number, t: Trace): void {
  const wall = (j: number): number => 1_000_000 + j * 5000 + Math.floor(j / 10) * 20_000;
  for (let j = from; j < to; j++) {
    collect(t, e.ingest(s[j], wall(j)));
    if (j % 10 === 9) collect(t, e.advance(wall(j) + 20_000));
  }
}

const CONFIGS: Array<[string, WindowEngineOptions]> = [
  ['1m, key watermark, drop', { levels: ['1m'], lateness: 10_000, counters: ['c'] }],
  ['1m > 1h, global watermark, reopen', { levels: ['1m', '1h'], lateness: 10_000, watermark: 'global', latePolicy: 'reopen', correctionHorizon: 900_000, counters: ['c'] }],
  ['1m > 5m > 1h, key watermark, reopen, idle timeout', { levels: ['1m', '5m', '1h'], lateness: 5_000, latePolicy: 'reopen', idleTimeout: 20_000, counters: ['c'] }],
  ['1m, global watermark, drop, idle timeout', { levels: ['1m'], lateness: 30_000, watermark: 'global', idleTimeout: 10_000 }],
  ['hopping 3m/1m, late output', { levels: [{ size: '3m', step: '1m' }], lateness: 5_000, latePolicy: 'output' }],
  ['1h > 1d in Europe/Madrid, groupBy site, booleans as numbers', { levels: ['1h', '1d'], timeZone: 'Europe/Madrid', groupBy: (r) => r.tags?.site ?? 'none', booleans: 'number', lateness: 60_000 }],
  ['1m, small maxKeys (evictions), evictAfter', { levels: ['1m'], lateness: 10_000, maxKeys: 5, evictAfter: 200_000 }],
];

describe.each(CONFIGS)('snapshot/restore mid-stream: %s', (_name, options) => {
  test('20 seeds x 3 cut points: same rollups, late readings, stats and latest values as an uninterrupted run', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const s = stream(seed);
      const whole: Trace = { rollups: [], late: [] };
      const a = new WindowEngine(options);
      feed(a, s, 0, s.length, whole);
      collect(whole, a.flush());
      expect(whole.rollups.length).toBeGreaterThan(10);

      const r = mulberry32(seed + 1000);
      for (let k = 0; k < 3; k++) {
        const cut = 1 + Math.floor(r() * (s.length - 2));
        const split: Trace = { rollups: [], late: [] };
        const b = new WindowEngine(options);
        feed(b, s, 0, cut, split);
        // snapshotText() (the node's background save, in pieces) is the same state as snapshot().
        const pieces = [...b.snapshotText()].join('');
        expect(JSON.parse(pieces)).toEqual(JSON.parse(JSON.stringify(b.snapshot())));
        const text = k === 1 ? pieces : JSON.stringify(b.snapshot());
        const c = new WindowEngine(options);
        c.restore(JSON.parse(text));
        feed(c, s, cut, s.length, split);
        collect(split, c.flush());
        expect(split.rollups).toEqual(whole.rollups);
        expect(split.late).toEqual(whole.late);
        // bytes aside: the estimate counts the closed window each series keeps for reuse, which a snapshot leaves out.
        expect({ ...c.stats(), bytes: 0 }).toEqual({ ...a.stats(), bytes: 0 });
        expect(c.latest()).toEqual(a.latest());
      }
    }
  });
});

/**
 * What a store would hold after these rollups: the last one written for each (device, metric, level, window),
 * numbers to 12 digits (a window corrected by a late reading merges its parts in another order after a replay:
 * the last digit of a stddev may differ).
 */
function storeOf(into: Map<string, unknown>, out: WindowOutput): void {
  for (const r of out.rollups) {
    const { correction: _c, ...rest } = r as WindowRollup & { correction?: boolean };
    const approx: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rest)) approx[k] = typeof v === 'number' ? Number(v.toPrecision(12)) : v;
    into.set(`${r.device}|${r.metric}|${r.level}|${r.window.start}`, approx);
  }
}

// Not with a Max keys the fleet reaches: which series the replay evicts (flushing its windows early) depends on
// the order the series were restored and touched, which differs from the run that crashed.
describe.each(CONFIGS.filter(([, o]) => o.maxKeys === undefined))('journal replay after a crash: %s', (_name, options) => {
  test('20 seeds: a snapshot in pieces with readings between them, a crash later, restore + replay: the store ends as after an uninterrupted run', () => {
    const wall = (j: number): number => 1_000_000 + j * 5000 + Math.floor(j / 10) * 20_000;
    for (let seed = 1; seed <= 20; seed++) {
      const s = stream(seed);
      const whole = new Map<string, unknown>();
      const a = new WindowEngine(options);
      for (let j = 0; j < s.length; j++) {
        storeOf(whole, a.ingest(s[j], wall(j)));
        if (j % 10 === 9) storeOf(whole, a.advance(wall(j) + 20_000));
      }
      storeOf(whole, a.flush());

      // As the window node does: each ingest journaled (a JSON copy, as the file holds it) before the engine
      // takes it, each tick that closed windows after it.
      const journal: Array<{ s: number; n: number; p?: unknown; t?: 1 }> = [];
      let mark = 0;
      const got = new Map<string, unknown>();
      const step = (e: WindowEngine, j: number): void => {
        journal.push({ s: ++mark, n: wall(j), p: JSON.parse(JSON.stringify(s[j])) });
        storeOf(got, e.ingest(s[j], wall(j)));
        if (j % 10 === 9) {
          const o = e.advance(wall(j) + 20_000);
          if (o.rollups.length > 0) journal.push({ s: ++mark, n: wall(j) + 20_000, t: 1 });
          storeOf(got, o);
        }
      };
      const r = mulberry32(seed + 2000);
      const snapAt = 1 + Math.floor(r() * (s.length - 100));
      const crashAt = snapAt + 20 + Math.floor(r() * 60);
      const b = new WindowEngine(options);
      let j = 0;
      while (j < snapAt) step(b, j++);
      const floor = mark;
      const pieces: string[] = [];
      const it = b.snapshotText(() => mark);
      for (let p = it.next(); !p.done; p = it.next()) {
        pieces.push(p.value);
        if (j < crashAt) step(b, j++);
      }
      while (j < crashAt) step(b, j++);
      // The crash: b and everything it held are gone; the snapshot and the journal are on disk.
      const c = new WindowEngine(options);
      const marks = c.restore(JSON.parse(pieces.join('')));
      for (const rec of journal) {
        if (rec.s <= floor) continue;
        storeOf(got, rec.t === 1 ? c.advance(rec.n) : c.replay(rec.p, rec.n, rec.s, marks, floor));
      }
      for (; j < s.length; j++) {
        storeOf(got, c.ingest(s[j], wall(j)));
        if (j % 10 === 9) storeOf(got, c.advance(wall(j) + 20_000));
      }
      storeOf(got, c.flush());
      expect(got).toEqual(whole);
      expect(c.latest()).toEqual(a.latest());
    }
  });
});

describe('snapshot format', () => {
  test('snapshotText() while readings go on between pieces: each group once, restorable', () => {
    const e = new WindowEngine({ levels: ['1m'], lateness: 0, maxKeys: 3 });
    e.ingest([0, 1, 2].map((d) => ({ device: `d${d}`, ts: T0, metrics: { v: d } })));
    const it = e.snapshotText();
    const pieces = [it.next().value as string, it.next().value as string]; // head, d0
    // d0 (written) is evicted by d3 and comes back (evicting d1, not yet written): at the end of the map.
    e.ingest([{ device: 'd3', ts: T0 + 1000, metrics: { v: 3 } }]);
    e.ingest([{ device: 'd0', ts: T0 + 2000, metrics: { v: 10 } }]);
    for (let r = it.next(); !r.done; r = it.next()) pieces.push(r.value);
    const snap = JSON.parse(pieces.join('')) as ReturnType<WindowEngine['snapshot']>;
    const names = snap.groups.map(([n]) => n);
    expect(names).toEqual(['d0', 'd2', 'd3']);
    expect(e.snapshot().groups.map(([n]) => n)).toEqual(['d2', 'd3', 'd0']);
    const c = new WindowEngine({ levels: ['1m'], lateness: 0, maxKeys: 3 });
    c.restore(snap);
    expect(c.stats().keys).toBe(3);
  });

  test('JSON-safe: a JSON round trip gives back the same object (no NaN, Infinity or -0 lost)', () => {
    const e = new WindowEngine({ levels: ['1m', '1h'], latePolicy: 'reopen', counters: ['c'] });
    e.ingest([
      { device: 'a', ts: T0, metrics: { v: -0, s: 'x', c: 1 } },
      { device: 'a', ts: T0 + 2 * MIN, metrics: { v: 1e300, c: 0 } },
      { device: 'a', ts: T0 + 1000, metrics: { v: 5 } },
    ]);
    const snap = e.snapshot();
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });

  test.each(['key', 'global'] as const)('the idle state survives a restart (%s watermark)', (watermark) => {
    const options: WindowEngineOptions = { levels: ['10s'], lateness: 30_000, idleTimeout: 10_000, watermark };
    const run = (restart: boolean, readFirst: boolean): unknown[] => {
      let e = new WindowEngine(options);
      const seen: unknown[] = [];
      e.ingest({ device: 'a', ts: T0 + 40_000, metrics: { v: 1 } }, 5_000);
      e.advance(20_000); // quiet 15 s: the watermark moves to 40 - 30 + 15 = T0 + 25 s
      if (restart) {
        const next = new WindowEngine(options);
        next.restore(JSON.parse(JSON.stringify(e.snapshot())));
        e = next;
      }
      // Its 10 s window ended at T0 + 20 s, below the idle watermark: late.
      if (readFirst) e.ingest({ device: 'a', ts: T0 + 12_000, metrics: { v: 2 } }, 20_500);
      // Quiet since the reading at 5 s (not since the restart, nor since 0).
      e.advance(21_000);
      seen.push(e.watermark('a', 'v'), e.stats().late.dropped);
      seen.push(e.advance(40_000).rollups.map((r) => r.window.start - T0));
      return seen;
    };
    expect(run(false, true)[1]).toBe(1);
    expect(run(false, false)[0]).toBe(T0 + 26_000);
    for (const readFirst of [true, false]) expect(run(true, readFirst)).toEqual(run(false, readFirst));
  });

  test('restore refuses a snapshot of other levels or sketch settings, or not a snapshot', () => {
    const snap = new WindowEngine({ levels: ['1m'] }).snapshot();
    expect(() => new WindowEngine({ levels: ['5m'] }).restore(snap)).toThrow(/other window levels/);
    expect(() => new WindowEngine({ levels: ['1m'], percentiles: false }).restore(snap)).toThrow(RangeError);
    expect(() => new WindowEngine({ levels: ['1m'], relativeAccuracy: 0.02 }).restore(snap)).toThrow(RangeError);
    expect(() => new WindowEngine().restore({} as never)).toThrow(/not a thingwire-window snapshot/);
    // Lateness and policies may change across a restart.
    expect(() => new WindowEngine({ levels: ['1m'], lateness: 5000, latePolicy: 'reopen' }).restore(snap)).not.toThrow();
  });

  test('a restored engine keeps the watermark: data late before the restart is late after it', () => {
    const e = new WindowEngine({ levels: ['1m'] });
    e.ingest({ device: 'a', ts: T0 + 5 * MIN, metrics: { v: 1 } });
    const f = new WindowEngine({ levels: ['1m'] });
    f.restore(JSON.parse(JSON.stringify(e.snapshot())));
    f.ingest({ device: 'a', ts: T0, metrics: { v: 1 } });
    expect(f.stats().late.dropped).toBe(1);
  });
});

describe('bounded memory', () => {
  test('maxKeys: never more series than the bound; the least recently used are flushed and evicted', () => {
    const e = new WindowEngine({ levels: ['1m'], maxKeys: 64 });
    const rollups: WindowRollup[] = [];
    // A hot device that keeps reporting, and 1,000 one-off devices.
    for (let i = 0; i < 1000; i++) {
      rollups.push(...e.ingest({ device: 'hot', ts: T0 + i * 10, metrics: { v: 1 } }).rollups);
      rollups.push(...e.ingest({ device: `cold${i}`, ts: T0 + i * 10, metrics: { v: i } }).rollups);
      expect(e.stats().keys).toBeLessThanOrEqual(64);
    }
    const st = e.stats();
    expect(st.evicted).toBeGreaterThan(900);
    expect(st.keys + st.evicted).toBe(1001);
    // Every evicted key's open window went out, and the hot one was never evicted.
    expect(rollups.filter((r) => r.device.startsWith('cold'))).toHaveLength(st.evicted);
    expect(rollups.some((r) => r.device === 'hot')).toBe(false);
    expect(e.latestOf('hot', 'v')).toBeDefined();
  });

  test('evictAfter: idle keys are flushed and forgotten on advance()', () => {
    const e = new WindowEngine({ levels: ['1m'], evictAfter: 60_000 });
    e.ingest({ device: 'a', ts: T0, metrics: { v: 1 } }, 0);
    e.ingest({ device: 'b', ts: T0, metrics: { v: 2 } }, 30_000);
    expect(e.advance(59_999).rollups).toHaveLength(0);
    const out = e.advance(60_000);
    expect(out.rollups.map((r) => r.device)).toEqual(['a']);
    expect(e.stats().keys).toBe(1);
    expect(e.latestOf('a', 'v')).toBeUndefined();
    expect(e.advance(90_000).rollups.map((r) => r.device)).toEqual(['b']);
    expect(e.stats()).toMatchObject({ keys: 0, openWindows: 0, evicted: 2 });
  });

  test('stats: keys, open and kept windows, and a bytes estimate that follows the state', () => {
    const e = new WindowEngine({ levels: ['1m', '1h'], latePolicy: 'reopen', correctionHorizon: 10 * MIN });
    const empty = e.stats().bytes;
    expect(empty).toBe(0);
    for (let d = 0; d < 100; d++) for (let k = 0; k < 30; k++) e.ingest({ device: `d${d}`, ts: T0 + k * 5000, metrics: { v: d + k / 10, w: k } });
    let st = e.stats();
    // Per series: the current 1m window and the 1h window open, the two earlier minutes kept.
    expect(st).toMatchObject({ keys: 200, openWindows: 400, keptWindows: 400 });
    expect(st.bytes).toBeGreaterThan(200 * 500);
    expect(st.bytes).toBeLessThan(200 * 2048 * 2);
    // Past the horizon the kept windows go.
    for (let d = 0; d < 100; d++) e.ingest({ device: `d${d}`, ts: T0 + 30 * MIN, metrics: { v: 0, w: 0 } });
    st = e.stats();
    expect(st.keptWindows).toBe(0);
    expect(st.readings).toBe(3100);
    expect(st.values).toBe(6200);
  });
});

describe('idle timeout (wall clock passed in by the caller)', () => {
  test('per key: a quiet series has its windows closed once idleTimeout has passed, its event time moving with the clock', () => {
    const e = new WindowEngine({ levels: ['1m', '1h'], lateness: 10_000, idleTimeout: 30_000 });
    e.ingest({ device: 'quiet', ts: T0 + 40_000, metrics: { v: 1 } }, 1000);
    e.ingest({ device: 'busy', ts: T0 + 40_000, metrics: { v: 1 } }, 1000);
    // Not yet idle: nothing.
    expect(e.advance(30_999).rollups).toHaveLength(0);
    e.ingest({ device: 'busy', ts: T0 + 45_000, metrics: { v: 2 } }, 31_000);
    // quiet has been silent 30 s: its watermark is 40 s - 10 s + 30 s = 60 s, the 1m window's end.
    const out = e.advance(31_000);
    expect(out.rollups.map((r) => `${r.device} ${r.level}`)).toEqual(['quiet 1m']);
    expect(e.watermark('quiet', 'v')).toBe(T0 + 60_000);
    // A reading for the closed window is now late (dropped by default); the next window is fine.
    e.ingest({ device: 'quiet', ts: T0 + 59_000, metrics: { v: 3 } }, 32_000);
    expect(e.stats().late.dropped).toBe(1);
    // The hours close after about an hour of silence.
    expect(e.advance(31_000 + 3_600_000).rollups.map((r) => `${r.device} ${r.level}`)).toEqual(['quiet 1h', 'busy 1m', 'busy 1h']);
  });

  test('global watermark: the whole stream going quiet advances the global watermark', () => {
    const e = new WindowEngine({ levels: ['1m'], watermark: 'global', idleTimeout: 10_000 });
    e.ingest({ device: 'a', ts: T0 + 1000, metrics: { v: 1 } }, 0);
    e.ingest({ device: 'b', ts: T0 + 2000, metrics: { v: 1 } }, 0);
    expect(e.advance(9_999).rollups).toHaveLength(0);
    expect(e.advance(58_000).rollups).toHaveLength(2);
  });

  test('without idleTimeout, advance() never closes windows', () => {
    const e = new WindowEngine({ levels: ['1m'] });
    e.ingest({ device: 'a', ts: T0, metrics: { v: 1 } }, 0);
    expect(e.advance(1e12).rollups).toHaveLength(0);
    expect(e.tick(2e12).rollups).toHaveLength(0);
    expect(e.flush().rollups).toHaveLength(1);
  });
});
