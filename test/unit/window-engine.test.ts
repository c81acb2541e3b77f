/**
 * nodes/window/engine.ts against a brute-force reference, over seeded random streams with
 * out-of-order and late data, many seeds and configurations: tumbling and hopping windows, per-key
 * and global watermarks, the three late-data policies, cascades (1m > 1h, 1m > 5m > 1h, and
 * 1h > 1d > 1mo in Europe/Madrid checked against local dates from Intl), counters with resets.
 *
 * The reference keeps every accepted value and recomputes each window from scratch: which
 * readings a window holds is decided by replaying the stream in arrival order with the documented
 * watermark rule (a reading goes in when its window's end is above the watermark before it
 * arrived), and when each window must be emitted (the first arrival after which the watermark
 * reaches its end). Aggregates are computed directly from the values (two-pass variance, sorted
 * order statistics), never by merging.
 */
import type { MetricValue, Reading } from '../../nodes/lib/contract';
import { buildLevel, type LevelSpec, type WindowLevel } from '../../nodes/window/calendar';
import { WindowEngine, type WindowEngineOptions, type WindowRollup } from '../../nodes/window/engine';
import { mulberry32 } from '../../runtime/sim-model';

const T0 = Date.UTC(2026, 0, 5, 10);
const ALPHA = 0.01;

// ---- streams --------------------------------------------------------------------------------

interface StreamOpts {
  devices: number;
  n: number;
  /** Mean event-time step between generated readings, ms. */
  meanStep: number;
  /** Out-of-order jitter (ms) applied to most readings. */
  jitter: number;
  /** Share of readings delayed by up to lateMax (mostly beyond the lateness). */
  lateProb: number;
  lateMax: number;
  nonNumProb: number;
  /** Timestamps are multiples of this (ties happen). */
  grid: number;
}

const BASE_STREAM: StreamOpts = { devices: 3, n: 400, meanStep: 2000, jitter: 8000, lateProb: 0.1, lateMax: 300_000, nonNumProb: 0.05, grid: 250 };

/**
 * Readings from `devices` devices with metrics a and b (numbers on a 1/16 grid, so every sum is
 * exact in any order; sometimes a string or a boolean) and c (an integer counter that sometimes
 * resets). Event times move forward; most readings are jittered, some are very late.
 */
function genStream(seed: number, o: StreamOpts): Reading[] {
  const r = mulberry32(seed);
  const counters = Array.from({ length: o.devices }, () => Math.floor(r() * 100));
  const out: Reading[] = [];
  let t = T0;
  for (let i = 0; i < o.n; i++) {
    t += Math.floor(r() * 2 * o.meanStep);
    const d = Math.floor(r() * o.devices);
    let ts = t - (r() < o.lateProb ? Math.floor(r() * o.lateMax) : Math.floor(r() * o.jitter));
    ts -= ts % o.grid;
    const metrics: Record<string, MetricValue> = {};
    for (const m of ['a', 'b']) {
      if (r() < 0.75) {
        const x = r();
        metrics[m] = x < o.nonNumProb ? 'on' : x < 2 * o.nonNumProb ? true : Math.round((r() * 100 - 40) * 16) / 16;
      }
    }
    if (r() < 0.5 || Object.keys(metrics).length === 0) {
      counters[d] = r() < 0.04 ? Math.floor(r() * 5) : counters[d] + Math.floor(r() * 20);
      metrics.c = counters[d];
    }
    out.push({ device: `dev${d}`, ts, metrics });
  }
  return out;
}

// ---- reference --------------------------------------------------------------------------------

interface RefValue {
  ts: number;
  v: number;
  seq: number;
}

interface RefWindow {
  device: string;
  metric: string;
  level: string;
  start: number;
  end: number;
  values: RefValue[];
  nonNumeric: number;
  /** Arrival index after which it must have been emitted (drop/output), or the stream length for the final flush. */
  emitAt: number;
}

interface RefOptions {
  levels: WindowLevel[];
  lateness: number;
  global: boolean;
  policy: 'drop' | 'output' | 'reopen';
  horizon: number;
}

interface RefResult {
  windows: Map<string, RefWindow>;
  late: Reading[];
  dropped: number;
  tooLate: number;
}

const wkey = (device: string, metric: string, level: string, start: number): string => `${device}|${metric}|${level}|${start}`;

function simulate(stream: readonly Reading[], o: RefOptions): RefResult {
  const maxTs = new Map<string, number>();
  let gMax = -Infinity;
  const windows = new Map<string, RefWindow>();
  const pending = new Set<RefWindow>();
  const late: Reading[] = [];
  let dropped = 0;
  let tooLate = 0;
  let seq = 0;
  const base = o.levels[0];
  const wmOf = (series: string): number => (o.global ? gMax : (maxTs.get(series) ?? -Infinity)) - o.lateness;
  for (let j = 0; j < stream.length; j++) {
    const r = stream[j];
    for (const m of Object.keys(r.metrics)) {
      const series = `${r.device}|${m}`;
      const wmBefore = wmOf(series);
      if (r.ts > (maxTs.get(series) ?? -Infinity)) maxTs.set(series, r.ts);
      if (r.ts > gMax) gMax = r.ts;
      const raw = r.metrics[m];
      const numeric = typeof raw === 'number' && Number.isFinite(raw);
      const starts: number[] = [];
      if (!base.hopping) starts.push(base.startOf(r.ts));
      else for (let s = base.startOf(r.ts); s + base.ms > r.ts; s -= base.step) starts.push(s);
      let outputDone = false;
      seq++;
      for (const s of starts) {
        const e = base.hopping ? s + base.ms : base.endOf(s);
        if (e <= wmBefore) {
          if (o.policy === 'drop') {
            dropped++;
            continue;
          }
          if (o.policy === 'output') {
            if (!outputDone) late.push({ device: r.device, ts: r.ts, metrics: { [m]: raw } });
            outputDone = true;
            continue;
          }
          if (e <= wmBefore - o.horizon) {
            tooLate++;
            continue;
          }
        }
        const targets: Array<[WindowLevel, number, number]> = [[base, s, e]];
        if (!base.hopping) {
          for (const lv of o.levels.slice(1)) {
            const ps = lv.startOf(r.ts);
            targets.push([lv, ps, lv.endOf(ps)]);
          }
        }
        for (const [lv, ws, we] of targets) {
          const k = wkey(r.device, m, lv.label, ws);
          let w = windows.get(k);
          if (!w) {
            w = { device: r.device, metric: m, level: lv.label, start: ws, end: we, values: [], nonNumeric: 0, emitAt: stream.length };
            windows.set(k, w);
            pending.add(w);
          }
          if (numeric) w.values.push({ ts: r.ts, v: raw, seq });
          else w.nonNumeric++;
        }
      }
    }
    for (const w of pending) {
      if (wmOf(`${w.device}|${w.metric}`) >= w.end) {
        w.emitAt = j;
        pending.delete(w);
      }
    }
  }
  return { windows, late, dropped, tooLate };
}

interface Expected {
  count: number;
  sum: number;
  mean: number;
  min: number;
  max: number;
  stddev: number;
  first: number;
  last: number;
  firstTs: number;
  lastTs: number;
  sorted: number[];
  delta: number;
  resets: number;
}

function expected(w: RefWindow): Expected {
  const vs = w.values;
  const n = vs.length;
  let sum = 0;
  for (const x of vs) sum += x.v;
  const mean = n > 0 ? sum / n : NaN;
  let ss = 0;
  for (const x of vs) ss += (x.v - mean) * (x.v - mean);
  const byTime = [...vs].sort((a, b) => a.ts - b.ts || a.seq - b.seq);
  let delta = 0;
  let resets = 0;
  for (let i = 1; i < byTime.length; i++) {
    const a = byTime[i - 1].v;
    const b = byTime[i].v;
    if (b >= a) delta += b - a;
    else {
      delta += b;
      resets++;
    }
  }
  return {
    count: n,
    sum,
    mean,
    min: n > 0 ? Math.min(...vs.map((x) => x.v)) : NaN,
    max: n > 0 ? Math.max(...vs.map((x) => x.v)) : NaN,
    stddev: n === 0 ? NaN : n === 1 ? 0 : Math.sqrt(ss / (n - 1)),
    first: n > 0 ? byTime[0].v : NaN,
    last: n > 0 ? byTime[n - 1].v : NaN,
    firstTs: n > 0 ? byTime[0].ts : NaN,
    lastTs: n > 0 ? byTime[n - 1].ts : NaN,
    sorted: vs.map((x) => x.v).sort((a, b) => a - b),
    delta,
    resets,
  };
}

function close(actual: number, want: number, rel: number, what: string): void {
  if (Number.isNaN(want)) {
    if (!Number.isNaN(actual)) throw new Error(`${what}: expected NaN, got ${actual}`);
    return;
  }
  if (!(Math.abs(actual - want) <= rel * Math.max(1, Math.abs(want)))) throw new Error(`${what}: expected ${want}, got ${actual}`);
}

function same(actual: number, want: number, what: string): void {
  if (!Object.is(actual, want) && !(actual === want)) throw new Error(`${what}: expected ${want}, got ${actual}`);
}

/** Checks one rollup against the reference window; counters only where exactness is promised. */
function checkRollup(r: WindowRollup, w: RefWindow, opts: { counters: boolean }): void {
  const at = `${w.device}/${w.metric} ${w.level} ${new Date(w.start).toISOString()}`;
  const x = expected(w);
  same(r.window.start, w.start, `${at} start`);
  same(r.window.end, w.end, `${at} end`);
  same(r.count, x.count, `${at} count`);
  same(r.nonNumeric, w.nonNumeric, `${at} nonNumeric`);
  same(r.sum, x.sum, `${at} sum`);
  same(r.min, x.min, `${at} min`);
  same(r.max, x.max, `${at} max`);
  same(r.first, x.first, `${at} first`);
  same(r.last, x.last, `${at} last`);
  same(r.firstTs, x.firstTs, `${at} firstTs`);
  same(r.lastTs, x.lastTs, `${at} lastTs`);
  close(r.mean, x.mean, 1e-12, `${at} mean`);
  close(r.stddev, x.stddev, 1e-9, `${at} stddev`);
  const n = x.count;
  for (const [q, est] of [
    [0.5, r.p50],
    [0.9, r.p90],
    [0.95, r.p95],
    [0.99, r.p99],
  ] as const) {
    if (n === 0) {
      if (!Number.isNaN(est)) throw new Error(`${at} p${q * 100}: expected NaN, got ${est}`);
      continue;
    }
    const want = x.sorted[Math.floor(q * (n - 1))];
    if (!(Math.abs(est! - want) <= ALPHA * Math.abs(want) * (1 + 1e-12))) throw new Error(`${at} p${q * 100}: ${est} not within ${ALPHA} of ${want}`);
  }
  if (w.metric === 'c') {
    if (r.delta === undefined) throw new Error(`${at}: no delta on a counter`);
    if (opts.counters) {
      same(r.delta!, x.delta, `${at} delta`);
      same(r.resets!, x.resets, `${at} resets`);
      close(r.rate!, x.delta / ((w.end - w.start) / 1000), 1e-12, `${at} rate`);
    }
  } else if (r.delta !== undefined) throw new Error(`${at}: delta on a metric that is not a counter`);
}

interface Emitted {
  r: WindowRollup;
  at: number;
}

function run(stream: readonly Reading[], options: WindowEngineOptions): { emitted: Emitted[]; late: Reading[]; engine: WindowEngine } {
  const engine = new WindowEngine(options);
  const emitted: Emitted[] = [];
  const late: Reading[] = [];
  for (let j = 0; j < stream.length; j++) {
    const out = engine.ingest(stream[j]);
    if (out.rejects.length !== 0) throw new Error(`unexpected reject ${JSON.stringify(out.rejects)}`);
    for (const r of out.rollups) emitted.push({ r, at: j });
    late.push(...out.late);
  }
  const out = engine.flush();
  for (const r of out.rollups) emitted.push({ r, at: stream.length });
  return { emitted, late, engine };
}

function levelsOf(options: WindowEngineOptions): WindowLevel[] {
  const lo = { timeZone: options.timeZone ?? 'UTC', weekStart: 1, alignOffset: options.alignOffset ?? 0 };
  return (options.levels ?? ['1m']).map((s) => buildLevel(s as string | LevelSpec, lo));
}

/** Runs engine and reference and compares everything the configuration promises. */
function compare(stream: readonly Reading[], options: WindowEngineOptions): { windows: number; corrections: number; late: number } {
  const policy = options.latePolicy ?? 'drop';
  const ref = simulate(stream, {
    levels: levelsOf(options),
    lateness: options.lateness ?? 0,
    global: options.watermark === 'global',
    policy,
    horizon: options.correctionHorizon ?? 3_600_000,
  });
  const { emitted, late, engine } = run(stream, options);
  const byKey = new Map<string, Emitted[]>();
  for (const e of emitted) {
    const k = wkey(e.r.device, e.r.metric, e.r.level, e.r.window.start);
    let l = byKey.get(k);
    if (!l) byKey.set(k, (l = []));
    l.push(e);
  }
  expect([...byKey.keys()].sort()).toEqual([...ref.windows.keys()].sort());
  let corrections = 0;
  for (const [k, w] of ref.windows) {
    const list = byKey.get(k)!;
    if (list[0].r.correction !== undefined) throw new Error(`${k}: the first rollup is flagged as a correction`);
    for (const e of list.slice(1)) if (e.r.correction !== true) throw new Error(`${k}: a re-emission is not flagged as a correction`);
    corrections += list.length - 1;
    if (policy !== 'reopen') {
      if (list.length !== 1) throw new Error(`${k}: emitted ${list.length} times`);
      if (list[0].at !== w.emitAt) throw new Error(`${k}: emitted after arrival ${list[0].at}, expected ${w.emitAt}`);
    }
    const lastOne = list[list.length - 1].r;
    // Counters above the base level are exact unless corrections were merged in (see Counter).
    checkRollup(lastOne, w, { counters: policy !== 'reopen' || w.level === levelsOf(options)[0].label });
  }
  const st = engine.stats();
  expect(st.late.dropped).toBe(ref.dropped);
  expect(st.late.tooLate).toBe(ref.tooLate);
  expect(late).toEqual(ref.late);
  expect(st.corrections).toBe(corrections);
  return { windows: ref.windows.size, corrections, late: ref.dropped + ref.late.length + ref.tooLate };
}

// ---- property tests ---------------------------------------------------------------------------

interface Config {
  name: string;
  options: WindowEngineOptions;
  stream?: Partial<StreamOpts>;
}

const COUNTERS = { counters: ['c'] };
const CONFIGS: Config[] = [
  { name: 'tumbling 1m, key watermark, drop', options: { levels: ['1m'], lateness: 10_000, ...COUNTERS } },
  { name: 'tumbling 1m, global watermark, drop', options: { levels: ['1m'], lateness: 10_000, watermark: 'global', ...COUNTERS } },
  { name: 'tumbling 1m, no lateness, drop', options: { levels: ['1m'], ...COUNTERS } },
  { name: 'tumbling 1m, key watermark, late output', options: { levels: ['1m'], lateness: 10_000, latePolicy: 'output', ...COUNTERS } },
  { name: 'tumbling 1m, global watermark, late output', options: { levels: ['1m'], lateness: 5_000, latePolicy: 'output', watermark: 'global', ...COUNTERS } },
  { name: 'tumbling 1m, key watermark, reopen within 4m', options: { levels: ['1m'], lateness: 10_000, latePolicy: 'reopen', correctionHorizon: 240_000, ...COUNTERS } },
  { name: 'tumbling 1m, global watermark, reopen within 1h', options: { levels: ['1m'], lateness: 10_000, latePolicy: 'reopen', watermark: 'global', ...COUNTERS } },
  { name: 'tumbling 30s offset 7s, key watermark, drop', options: { levels: ['30s'], alignOffset: 7000, lateness: 3000, ...COUNTERS } },
  { name: 'hopping 5m/1m, key watermark, drop', options: { levels: [{ size: '5m', step: '1m' }], lateness: 10_000, ...COUNTERS } },
  { name: 'hopping 3m/2m, global watermark, late output', options: { levels: [{ size: '3m', step: '2m' }], lateness: 10_000, latePolicy: 'output', watermark: 'global', ...COUNTERS } },
  { name: 'hopping 2m/30s, key watermark, reopen', options: { levels: [{ size: '2m', step: '30s' }], lateness: 5000, latePolicy: 'reopen', correctionHorizon: 600_000, ...COUNTERS } },
  {
    name: 'cascade 1m > 1h, key watermark, drop',
    options: { levels: ['1m', '1h'], lateness: 30_000, ...COUNTERS },
    stream: { meanStep: 30_000, lateMax: 2 * 3_600_000 },
  },
  {
    name: 'cascade 1m > 5m > 1h, global watermark, reopen',
    options: { levels: ['1m', '5m', '1h'], lateness: 30_000, latePolicy: 'reopen', watermark: 'global', correctionHorizon: 3_600_000, ...COUNTERS },
    stream: { meanStep: 30_000, lateMax: 2 * 3_600_000 },
  },
  {
    name: 'cascade 10s > 1m > 1h, key watermark, late output',
    options: { levels: ['10s', '1m', '1h'], lateness: 5000, latePolicy: 'output', ...COUNTERS },
    stream: { meanStep: 20_000, lateMax: 3_600_000 },
  },
  {
    name: 'cascade 1h > 1d > 1mo in Europe/Madrid, key watermark, reopen',
    options: { levels: ['1h', '1d', '1mo'], timeZone: 'Europe/Madrid', lateness: 3_600_000, latePolicy: 'reopen', correctionHorizon: 5 * 86_400_000, ...COUNTERS },
    stream: { n: 300, meanStep: 4 * 3_600_000, jitter: 2 * 3_600_000, lateMax: 10 * 86_400_000, grid: 60_000 },
  },
];

const SEEDS = 50;

describe.each(CONFIGS)('$name: same as the brute-force reference', ({ options, stream }) => {
  test(`${SEEDS} seeded streams with out-of-order and late data`, () => {
    let windows = 0;
    let corrections = 0;
    let late = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const s = genStream(seed * 1009 + 17, { ...BASE_STREAM, ...stream });
      const res = compare(s, options);
      windows += res.windows;
      corrections += res.corrections;
      late += res.late;
    }
    // The streams exercise what the configuration is about.
    expect(windows).toBeGreaterThan(SEEDS * 10);
    if (options.latePolicy === 'reopen') expect(corrections).toBeGreaterThan(SEEDS);
    else expect(late).toBeGreaterThan(SEEDS);
  });
});

test('batches: ingesting arrays gives the same windows as one reading at a time (drop policy)', () => {
  for (let seed = 1; seed <= 10; seed++) {
    const s = genStream(seed, BASE_STREAM);
    const one = run(s, { levels: ['1m', '1h'], lateness: 10_000 }).emitted.map((e) => e.r);
    const e = new WindowEngine({ levels: ['1m', '1h'], lateness: 10_000 });
    const batched: WindowRollup[] = [];
    for (let i = 0; i < s.length; i += 7) batched.push(...e.ingest(s.slice(i, i + 7)).rollups);
    batched.push(...e.flush().rollups);
    expect(batched).toEqual(one);
  }
});

// ---- the cascade equals aggregating raw data ----------------------------------------------------

describe('cascade 1m > 1h > 1d equals aggregating the raw data directly', () => {
  test('in-order and out-of-order (within lateness) streams, 20 seeds, every level and metric', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = mulberry32(seed);
      const readings: Reading[] = [];
      let t = T0;
      let counter = 0;
      // Two and a half days, a reading about every 2 minutes, out of order within 5 minutes.
      while (t < T0 + 2.5 * 86_400_000) {
        t += Math.floor(r() * 240_000);
        counter = r() < 0.01 ? 0 : counter + Math.floor(r() * 10);
        readings.push({ device: 'd', ts: t - Math.floor(r() * 300_000), metrics: { v: Math.round(r() * 1000) / 8, c: counter } });
      }
      const options: WindowEngineOptions = { levels: ['1m', '1h', '1d'], lateness: 300_000, counters: ['c'] };
      const { emitted, engine } = run(readings, options);
      expect(engine.stats().late.dropped).toBe(0);
      // Direct aggregation: group the raw values by each level's window.
      const levels = levelsOf(options);
      let seq = 0;
      const direct = new Map<string, RefWindow>();
      for (const rd of readings) {
        seq++;
        for (const [m, v] of Object.entries(rd.metrics)) {
          for (const lv of levels) {
            const s = lv.startOf(rd.ts);
            const k = wkey('d', m, lv.label, s);
            let w = direct.get(k);
            if (!w) direct.set(k, (w = { device: 'd', metric: m, level: lv.label, start: s, end: lv.endOf(s), values: [], nonNumeric: 0, emitAt: 0 }));
            w.values.push({ ts: rd.ts, v: v as number, seq });
          }
        }
      }
      expect(emitted).toHaveLength(direct.size);
      for (const { r: roll } of emitted) checkRollup(roll, direct.get(wkey('d', roll.metric, roll.level, roll.window.start))!, { counters: true });
      const days = emitted.filter((e) => e.r.level === '1d');
      expect(days.length).toBe(6); // 2 metrics x 3 days
    }
  });

  test('1h > 1d > 1mo in Europe/Madrid over two DST changes: days are local dates (checked with Intl), with 23 h and 25 h', () => {
    const fmt = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Madrid', year: 'numeric', month: '2-digit', day: '2-digit' });
    const localDate = (ts: number): string => fmt.format(ts);
    const r = mulberry32(99);
    const readings: Reading[] = [];
    // 1 March .. 1 November 2026, a reading every ~20 minutes, in order.
    for (let t = Date.UTC(2026, 2, 1); t < Date.UTC(2026, 10, 1); t += 1 + Math.floor(r() * 2_400_000)) {
      readings.push({ device: 'm', ts: t, metrics: { v: Math.round(r() * 400) / 16 } });
    }
    const { emitted } = run(readings, { levels: ['1h', '1d', '1mo'], timeZone: 'Europe/Madrid', lateness: 0 });
    const byDate = new Map<string, number[]>();
    const byMonth = new Map<string, number[]>();
    for (const rd of readings) {
      const d = localDate(rd.ts);
      if (!byDate.has(d)) byDate.set(d, []);
      byDate.get(d)!.push(rd.metrics.v as number);
      const m = d.slice(0, 7);
      if (!byMonth.has(m)) byMonth.set(m, []);
      byMonth.get(m)!.push(rd.metrics.v as number);
    }
    const days = emitted.map((e) => e.r).filter((x) => x.level === '1d');
    const months = emitted.map((e) => e.r).filter((x) => x.level === '1mo');
    expect(days.length).toBe(byDate.size);
    expect(months.length).toBe(byMonth.size);
    expect(byMonth.size).toBe(9); // March .. October, and the first hour of 1 November local time
    const lengths = new Map<number, number>();
    for (const d of days) {
      const date = localDate(d.window.start);
      // The window starts at local midnight of its date and ends at the next one.
      expect(localDate(d.window.end)).not.toBe(date);
      expect(localDate(d.window.end - 1)).toBe(date);
      const vs = byDate.get(date)!;
      expect(d.count).toBe(vs.length);
      expect(d.sum).toBe(vs.reduce((a, b) => a + b, 0));
      expect(d.window.size).toBe(86_400_000);
      const h = (d.window.end - d.window.start) / 3_600_000;
      lengths.set(h, (lengths.get(h) ?? 0) + 1);
    }
    expect(lengths.get(23)).toBe(1); // 29 March
    expect(lengths.get(25)).toBe(1); // 25 October
    for (const m of months) {
      const vs = byMonth.get(localDate(m.window.start).slice(0, 7))!;
      expect(m.count).toBe(vs.length);
      expect(m.sum).toBe(vs.reduce((a, b) => a + b, 0));
      expect(m.min).toBe(Math.min(...vs));
      expect(m.max).toBe(Math.max(...vs));
    }
  });
});

describe('redelivered readings (at-least-once ingest delivers a message again after a reconnect)', () => {
  test('a value at a (series, ts) already taken is not counted again; other series and newer times are', () => {
    const e = new WindowEngine({ levels: ['1m'], lateness: 0, dedupe: true });
    const rs: Reading[] = [
      { device: 'd', ts: T0 + 1000, metrics: { v: 1, w: 5 } },
      { device: 'd', ts: T0 + 2000, metrics: { v: 2 } },
      { device: 'd', ts: T0 + 1000, metrics: { v: 1, w: 5 } },
      { device: 'e', ts: T0 + 1000, metrics: { v: 10 } },
      { device: 'd', ts: T0 + 2000, metrics: { v: 2, w: 6 } },
    ];
    for (const r of rs) e.ingest(r);
    const out = e.flush().rollups;
    const of = (device: string, metric: string): WindowRollup | undefined => out.find((r) => r.device === device && r.metric === metric);
    expect([of('d', 'v')?.count, of('d', 'v')?.sum]).toEqual([2, 3]);
    // w at T0+2000 is new for series w, even though v was already seen at that time.
    expect([of('d', 'w')?.count, of('d', 'w')?.sum]).toEqual([2, 11]);
    expect([of('e', 'v')?.count, of('e', 'v')?.sum]).toEqual([1, 10]);
    expect(e.stats().duplicates).toBe(3);
  });

  test('only the last 16 times of a series are remembered', () => {
    const e = new WindowEngine({ levels: ['1m'], lateness: 60_000, dedupe: true });
    for (let i = 0; i < 20; i++) e.ingest({ device: 'd', ts: T0 + i * 100, metrics: { v: 1 } });
    e.ingest({ device: 'd', ts: T0 + 19 * 100, metrics: { v: 1 } }); // remembered: a duplicate
    e.ingest({ device: 'd', ts: T0, metrics: { v: 1 } }); // forgotten: counted again
    const out = e.flush().rollups;
    expect(out.find((r) => r.metric === 'v')?.count).toBe(21);
    expect(e.stats().duplicates).toBe(1);
  });

  test('a series that gets its values in batches remembers a batch whole (up to 256), across a snapshot too', () => {
    const e = new WindowEngine({ levels: ['1h'], lateness: 0, dedupe: true });
    const batch = (from: number, n: number): Reading[] => Array.from({ length: n }, (_, i) => ({ device: 'd', ts: T0 + (from + i) * 1000, metrics: { v: 1 } }));
    e.ingest(batch(0, 100));
    e.ingest(batch(100, 100));
    // The last message comes again whole (a reconnect, or a crash before its acknowledgement): all recognised.
    e.ingest(batch(100, 100));
    expect(e.stats().duplicates).toBe(100);
    const f = new WindowEngine({ levels: ['1h'], lateness: 0, dedupe: true });
    f.restore(JSON.parse(JSON.stringify(e.snapshot())));
    f.ingest(batch(100, 100));
    expect(f.stats().duplicates).toBe(200);
    // The limit: 400 readings of one series in a message. The ring stops at 256; the message's first 144 are
    // forgotten, come again as new, and each pushes out one the ring still held, so none is recognised.
    const g = new WindowEngine({ levels: ['1h'], lateness: 0, dedupe: true });
    g.ingest(batch(0, 400));
    g.ingest(batch(0, 400));
    expect(g.stats().duplicates).toBe(0);
    expect(g.flush().rollups[0].count).toBe(800);
  });

  test('a series that got a value out of order remembers 64 from then on, across a snapshot too', () => {
    // A publisher's reconnect: what it had in flight comes again one at a time, after newer readings (mqtt.js).
    const e = new WindowEngine({ levels: ['1h'], lateness: 0, dedupe: true });
    const at = (i: number): Reading => ({ device: 'd', ts: T0 + i * 1000, metrics: { v: 1 } });
    for (let i = 0; i < 12; i++) e.ingest(at(i));
    e.ingest(at(9)); // the first redelivery: recognised, and the ring grows
    for (let i = 12; i < 42; i++) e.ingest(at(i));
    e.ingest(at(10));
    e.ingest(at(11)); // 30 newer readings came first: a ring of 16 had forgotten both
    expect(e.stats().duplicates).toBe(3);
    expect(e.flush().rollups[0].count).toBe(42);
    const snap = JSON.parse(JSON.stringify(e.snapshot())) as ReturnType<WindowEngine['snapshot']>;
    expect(snap.groups[0][1][0].r?.length).toBe(42);
    const f = new WindowEngine({ levels: ['1h'], lateness: 0, dedupe: true });
    f.restore(snap);
    f.ingest(at(2));
    expect(f.stats().duplicates).toBe(4);
    // In order, nothing grows: a second series keeps 16 (the memory of an in-order series is unchanged).
    for (let i = 0; i < 40; i++) f.ingest({ device: 'e', ts: T0 + i * 1000, metrics: { v: 1 } });
    f.ingest({ device: 'e', ts: T0 + 20 * 1000, metrics: { v: 1 } }); // 19 newer came first: forgotten, counted again
    expect(f.stats().duplicates).toBe(4);
  });

  test('one reading a message: the ring stays at 16', () => {
    const e = new WindowEngine({ levels: ['1h'], lateness: 0, dedupe: true });
    const bytes0 = (() => {
      e.ingest({ device: 'd', ts: T0, metrics: { v: 1 } });
      return e.stats().bytes;
    })();
    for (let i = 1; i < 100; i++) e.ingest({ device: 'd', ts: T0 + i * 1000, metrics: { v: 1 } });
    expect(e.stats().bytes).toBe(bytes0);
    expect((e.snapshot().groups[0][1][0].r ?? []).length).toBe(16);
  });

  test('without dedupe (the default) two readings at one time both count', () => {
    const e = new WindowEngine({ levels: ['1m'], lateness: 0 });
    e.ingest({ device: 'd', ts: T0 + 1000, metrics: { v: 1 } });
    e.ingest({ device: 'd', ts: T0 + 1000, metrics: { v: 1 } });
    expect(e.flush().rollups.find((r) => r.metric === 'v')?.count).toBe(2);
    expect(e.stats().duplicates).toBe(0);
  });
});

describe('statsWalk (the status line, walked in slices)', () => {
  test('yields once every seriesPerStep series and returns what stats() returns; readings between steps count', () => {
    const e = new WindowEngine({ levels: ['1m', '1h'], lateness: 60_000 });
    for (let d = 0; d < 10; d++) for (let i = 0; i < 5; i++) e.ingest({ device: `d${d}`, ts: T0 + i * 30_000, metrics: { v: i, w: d } });
    const walk = e.statsWalk(3);
    let steps = 0;
    let r = walk.next();
    for (; r.done !== true; r = walk.next()) steps++;
    // 20 series, a yield before the 3rd, 6th, ... 18th.
    expect(steps).toBe(6);
    expect(r.value).toEqual(e.stats());
    expect(r.value).toMatchObject({ keys: 20, readings: 50 });
    expect(r.value.openWindows).toBeGreaterThan(0);
    expect(r.value.bytes).toBeGreaterThan(0);

    const mid = e.statsWalk(5);
    mid.next();
    e.ingest({ device: 'd0', ts: T0 + 200_000, metrics: { v: 1 } });
    let m = mid.next();
    while (m.done !== true) m = mid.next();
    // The counters are read at the end; d0's series were walked before the reading came (as they were then).
    expect(m.value.readings).toBe(51);
    expect(m.value.watermark).toBeLessThan(e.stats().watermark);
  });
});
