/**
 * The thingwire-window engine: event-time windowed rollups with watermarks, late-data policies,
 * cascaded levels and snapshot/restore. Pure (no Node-RED, no timers, no clock: the caller passes
 * `now` for the wall-clock features).
 *
 * Keys. One series per group and metric; the group is the reading's device unless `groupBy` says
 * otherwise (its result becomes the rollup's `device`). A reading with several metrics fans out to
 * one series per metric. Numbers are aggregated; booleans, strings and non-finite numbers are
 * counted (`nonNumeric`), not averaged (booleans can be read as 1/0 with `booleans: 'number'`).
 *
 * Windows. Level 0 is built from readings: tumbling or hopping, fixed sizes aligned to the epoch
 * (plus `alignOffset`), or calendar sizes (d, w, mo, y) aligned to `timeZone` (see calendar.ts).
 * Each further level is tumbling and built only by merging the closed windows of the level below
 * (their partial aggregates, see acc.ts), never from readings; the constructor checks that every
 * upper window is an exact union of lower ones (1m > 1h > 1d > 1mo in Europe/Madrid is fine, 1w >
 * 1mo is not). Every rollup carries its level label.
 *
 * Watermark. watermark = the highest event time seen - `lateness`. A window is emitted when the
 * watermark reaches its end (watermark >= end; end is exclusive), upper levels after the lower
 * level's windows they contain. A reading whose window is still open is counted, however out of
 * order; a reading whose window has already closed follows `latePolicy`: 'drop' (counted in
 * stats), 'output' (returned in `late`, as a one-metric Reading), or 'reopen' (merged into the kept
 * window, which is emitted again with `correction: true` and the same window key, then into every
 * level above, which re-emit as corrections too when already closed). 'reopen' keeps closed
 * windows for `correctionHorizon` ms of watermark after their end; later data is dropped and
 * counted as tooLate. Corrections are coalesced per ingest() call: one corrected rollup per window.
 *
 * The watermark is per key by default (`watermark: 'key'`): each series' own highest event time
 * decides when its windows close. IoT devices have independent clocks, skew and buffers; a device
 * that uploads an hour of buffered readings after a network outage, or one whose clock runs ahead,
 * must neither see its data dropped as late nor make every other device's data late, which a
 * global watermark does. The cost: a series that goes quiet keeps its last window open, which is
 * what `idleTimeout` is for: once a key has had no reading for idleTimeout ms of wall-clock time
 * (as passed to ingest/advance), its event time is taken to advance with the wall clock
 * (watermark = highest ts - lateness + quiet time), so its windows close. `watermark: 'global'`
 * (one watermark from the highest event time over all keys) suits synchronised sources where a
 * quiet device's windows should close as the others advance; idleTimeout then applies to the
 * whole stream. Readings that then arrive for windows the idle watermark closed are late, so the
 * timeout should exceed the longest normal gap between a device's readings plus its clock skew.
 *
 * Output. ingest(), advance() and flush() return { rollups, late, rejects }. A rollup is a
 * contract Rollup plus the fields this engine adds (WindowRollup: nonNumeric, p50..p99, and delta,
 * rate, resets for counters); the window key for idempotent writes is (device, metric, level,
 * window.start). A window with only non-numeric values has count 0 and NaN (JSON null) in the
 * numeric fields. Bad input becomes a Reject with a RejectCode (and its index in a batch).
 *
 * State. snapshot() is a JSON-safe object of everything that decides future output (open and kept
 * windows with their sketches and counter samples, watermarks, idle clocks, LRU order, counts,
 * latest values); restore() on an engine built with the same levels and sketch settings continues
 * exactly where the snapshot left off (other options may change across a restart).
 *
 * Memory. `maxKeys` bounds the series; at the bound the least recently used series are flushed
 * (their open windows emitted) and dropped, about 1/64 of maxKeys at a time. `evictAfter` drops
 * series idle for that long (flushing them first). Each series keeps its last closed level-0
 * window to reuse for the next one (no allocation per window in steady state). stats() reports
 * keys, open and kept windows and an estimate of the bytes held.
 *
 * Latest values. latest() / latestOf() give the reading with the highest event time per device
 * and metric (any value type), for the dashboard's "instant" view.
 */
import type { MetricValue, Reading, Reject, Rollup } from '../lib/contract';
import { ThingwireError } from '../lib/errors';
import { Acc, dec, enc, type AccState, type Num } from './acc';
import { buildLevel, checkNesting, type LevelSpec, type SizeSpec, type WindowLevel } from './calendar';
import { SKETCH_MIN_MAGNITUDE, SketchMapping } from './sketch';

export type LatePolicy = 'drop' | 'output' | 'reopen';
export type WatermarkScope = 'key' | 'global';

export interface WindowEngineOptions {
  /** Level 0 first; e.g. ['1m', '1h', '1d', '1mo'] or [{ size: '5m', step: '1m' }]. Default ['1m']. */
  levels?: ReadonlyArray<SizeSpec | LevelSpec>;
  /** IANA zone for calendar sizes (d, w, mo, y). Default 'UTC'. */
  timeZone?: string;
  /** ISO weekday weeks start on, 1 = Monday (default) .. 7 = Sunday. */
  weekStart?: number;
  /** Shift of fixed-size windows from the epoch, ms (e.g. 1800000 for hours on :30). Default 0. */
  alignOffset?: number;
  /** Allowed lateness, ms: the watermark trails the highest event time by this much. Default 0. */
  lateness?: number;
  /** Watermark per key (default) or one for all keys. */
  watermark?: WatermarkScope;
  /** What happens to a reading whose window has already closed. Default 'drop'. */
  latePolicy?: LatePolicy;
  /** 'reopen': how long (ms of watermark after a window's end) a closed window can still be corrected. Default 1 h. */
  correctionHorizon?: number;
  /** Wall-clock ms without readings after which a key's (or, with a global watermark, the stream's) event time advances with the wall clock. 0 = off (default). */
  idleTimeout?: number;
  /** Wall-clock ms without readings after which a key is flushed and forgotten. 0 = off (default). */
  evictAfter?: number;
  /** Most series kept (group x metric). Default 100,000. */
  maxKeys?: number;
  /** Group readings by something other than the device; the result is the rollups' `device`. */
  groupBy?: (reading: Reading) => string;
  /** Metrics that are counters (delta, rate, resets): names, or a predicate. Default none. */
  counters?: readonly string[] | ((metric: string, group: string) => boolean);
  /** Approximate percentiles p50/p90/p95/p99 from a LogSketch. Default true. */
  percentiles?: boolean;
  /** Sketch relative accuracy. Default 0.01 (1 %). */
  relativeAccuracy?: number;
  /** Sketch buckets per sign before the lowest are collapsed. Default 2048. */
  maxSketchBuckets?: number;
  /** Counter samples kept per open base window for exact out-of-order deltas. Default 4096. */
  maxCounterPoints?: number;
  /** Booleans: counted as non-numeric (default) or aggregated as 1/0. */
  booleans?: 'count' | 'number';
  /**
   * Drop a value whose (series, ts) was taken already among the series' last 16 (a redelivered reading:
   * at-least-once ingest; 64 once the series got a value out of order, up to 256 for a series that gets its
   * values in batches). Default false: two
   * readings with the same ts both count (first = earlier arrival).
   */
  dedupe?: boolean;
  /** Keep the latest-value view. Default true. */
  latest?: boolean;
}

/**
 * A Rollup with the fields this engine adds (proposed for contract.ts): nonNumeric always;
 * p50..p99 when percentiles are on; delta, rate (per second over the window's duration) and
 * resets for counter metrics. Numeric fields of a window without numeric values are NaN (JSON null).
 */
export interface WindowRollup extends Rollup {
  level: string;
  firstTs: number;
  lastTs: number;
  nonNumeric: number;
  p50?: number;
  p90?: number;
  p95?: number;
  p99?: number;
  delta?: number;
  rate?: number;
  resets?: number;
}

export interface WindowOutput {
  readonly rollups: readonly WindowRollup[];
  /** latePolicy 'output': readings (one metric each) whose window had closed. */
  readonly late: readonly Reading[];
  readonly rejects: readonly Reject[];
}

export interface LatestValue {
  device: string;
  metric: string;
  ts: number;
  value: MetricValue;
}

export interface WindowStats {
  keys: number;
  openWindows: number;
  /** Closed windows kept for corrections (latePolicy 'reopen'). */
  keptWindows: number;
  /** Estimated bytes of window state (series, windows, sketches, counter samples). */
  bytes: number;
  /** The global watermark (watermark 'global'), or the highest per-key watermark. */
  watermark: number;
  readings: number;
  values: number;
  nonNumeric: number;
  rejected: number;
  emitted: number;
  corrections: number;
  late: { dropped: number; output: number; reopened: number; tooLate: number };
  evicted: number;
  /** Values of a (series, ts) already taken: redeliveries, not counted again. */
  duplicates: number;
}

export interface SeriesState {
  m: string;
  c: 0 | 1;
  mx: Num;
  fl: Num;
  ls: number;
  t: number;
  lt: Num;
  /** Latest value: a non-number, or null. */
  lv: MetricValue | null;
  /** Latest value when it is a number, or null. */
  ln: Num | null;
  o: AccState[][];
  k: AccState[][] | null;
  /** The remembered event times (dedupe), oldest first; absent when none. */
  r?: number[];
}

export interface WindowSnapshot {
  v: 1;
  config: string;
  now: number;
  gMax: Num;
  gFloor: Num;
  lastSeen: number;
  clock: number;
  counts: number[];
  /**
   * A group's series, and in snapshotText(mark) the mark when the group's piece was made (replay() skips the
   * group's readings of journal records up to it: they are in the piece).
   */
  groups: Array<[string, SeriesState[]] | [string, SeriesState[], number]>;
  latest: Array<[string, Array<[string, number, MetricValue]>]> | null;
}

/** A group's series as saved state (copies: later changes to the series do not reach it). */
function seriesStates(g: Group): SeriesState[] {
  const list: SeriesState[] = [];
  for (const s of g.values()) {
    list.push({
      m: s.metric,
      c: s.counter ? 1 : 0,
      mx: enc(s.maxTs),
      fl: enc(s.floor),
      ls: s.lastSeen,
      t: s.touch,
      lt: enc(s.latestTs),
      lv: s.latestV,
      ln: s.latestTs === -Infinity || s.latestV !== null ? null : enc(s.latestNum),
      o: s.open.map((l) => l.map((a) => a.toJSON())),
      k: s.kept === null ? null : s.kept.map((l) => l.map((a) => a.toJSON())),
      ...(s.recent === null ? {} : { r: s.recentTimes() }),
    });
  }
  return list;
}

function latestEntry(device: string, m: Map<string, { ts: number; v: MetricValue }>): [string, Array<[string, number, MetricValue]>] {
  return [device, [...m].map(([metric, e]) => [metric, e.ts, e.v] as [string, number, MetricValue])];
}

const EMPTY_OUTPUT: WindowOutput = Object.freeze({ rollups: Object.freeze([]), late: Object.freeze([]), rejects: Object.freeze([]) }) as WindowOutput;

/** Bytes-estimate constants (V8, 64-bit, no pointer compression), calibrated by the bench's memory case. */
const BYTES = { series: 420, acc: 420, sketch: 90, counter: 120, point: 18, recent: 200 };

/**
 * With `dedupe`, how many of a series' latest event times are remembered to recognise a redelivered reading
 * (at-least-once ingest delivers a message again after a reconnect; the store keeps one copy of a series at a
 * time, and so does the window): a value whose (series, ts) is among them is a duplicate and is not counted
 * again. Kept in saved state (SeriesState.r), so a redelivery after a restart is recognised too. A series
 * whose values come in batches (a device's buffered upload, 100 readings a message) remembers more: the ring
 * doubles while one ingest() brings more than half of it, up to RECENT_MAX, so a batch that comes again
 * whole is recognised whole. A series that gets a value out of order (ts not above its highest: a redelivery, or
 * a publisher sending again what it had in flight after a reconnect) remembers at least RECENT_REORDERED from
 * then on: its redeliveries come while newer readings keep arriving (mqtt.js sends its in-flight messages again
 * one at a time, after the newest; under load up to 16 newer readings of a series came first and the
 * redelivery was counted again: test/integration/ingest-faults.test.ts, the embedded broker's kill).
 */
const RECENT = 16;
const RECENT_REORDERED = 64;
const RECENT_MAX = 256;

class Series {
  readonly group: string;
  readonly metric: string;
  readonly counter: boolean;
  maxTs = -Infinity;
  floor = -Infinity;
  lastSeen: number;
  touch: number;
  latestTs = -Infinity;
  /** The latest value when it is a number (kept unboxed), else NaN. */
  latestNum = NaN;
  /** The latest value when it is not a number, else null. */
  latestV: MetricValue | null = null;
  /** Level-0 window of the previous reading (fast path). */
  cur: Acc | null = null;
  /** Open windows per level, sorted by start. */
  open: Acc[][];
  /** Closed windows kept for corrections per level, sorted by start. */
  kept: Acc[][] | null = null;
  /** Watermark at which something is due: the earliest open window end or kept window expiry. */
  due = Infinity;
  /** A closed level-0 window to reuse for the next one (not kept, nothing refers to it). */
  spare: Acc | null = null;
  /** The last event times taken (a ring of RECENT to RECENT_MAX, next write at `ri`): a value at one of them is a duplicate. */
  recent: Float64Array | null = null;
  ri = 0;
  /** The ingest() call the series last took a value in, and how many values it took in it. */
  callId = 0;
  callN = 0;

  /** True when ts was taken before (among the remembered ones); otherwise remembers it. `call` numbers the ingest() call. */
  duplicate(ts: number, call: number): boolean {
    let r = this.recent;
    if (r === null) {
      r = this.recent = new Float64Array(RECENT).fill(NaN);
    } else if (ts <= this.maxTs) {
      // Out of order: a redelivery episode has begun, and what else comes again may come after newer readings.
      if (r.length < RECENT_REORDERED) r = this.setRecent(this.recentTimes(), RECENT_REORDERED);
      for (let i = 0; i < r.length; i++) if (r[i] === ts) return true;
    }
    if (this.callId !== call) {
      this.callId = call;
      this.callN = 0;
    }
    if (++this.callN * 2 > r.length && r.length < RECENT_MAX) r = this.setRecent(this.recentTimes(), r.length * 2);
    r[this.ri] = ts;
    this.ri = this.ri === r.length - 1 ? 0 : this.ri + 1;
    return false;
  }

  /** The remembered event times, oldest first. */
  recentTimes(): number[] {
    const out: number[] = [];
    const r = this.recent;
    if (r === null) return out;
    for (let k = 0; k < r.length; k++) {
      const v = r[(this.ri + k) % r.length];
      if (!Number.isNaN(v)) out.push(v);
    }
    return out;
  }

  /** Remembers `times` (oldest first, as recentTimes() gave them) in a ring of at least `size` that holds them all (up to RECENT_MAX). */
  setRecent(times: readonly number[], size = RECENT): Float64Array {
    let n = Math.max(RECENT, Math.min(size, RECENT_MAX));
    while (n < times.length && n < RECENT_MAX) n *= 2;
    const r = (this.recent = new Float64Array(n).fill(NaN));
    let i = 0;
    for (let k = Math.max(0, times.length - n); k < times.length; k++) if (typeof times[k] === 'number' && !Number.isNaN(times[k])) r[i++] = times[k];
    this.ri = i % n;
    return r;
  }

  constructor(group: string, metric: string, counter: boolean, levels: number, now: number, touch: number) {
    this.group = group;
    this.metric = metric;
    this.counter = counter;
    this.lastSeen = now;
    this.touch = touch;
    this.open = new Array<Acc[]>(levels).fill(NONE);
  }
}

/**
 * The series of one group (device), by metric. The first metric is held inline (most devices in a
 * window engine report one or a few metrics, and arrays cost 56+ bytes each), further ones in
 * exact-size arrays searched linearly (metric names from JSON.parse are internalised, so a
 * comparison is usually one pointer check), and in a Map past 12 metrics.
 */
class Group {
  private m0: string | null = null;
  private s0: Series | null = null;
  private names: string[] | null = null;
  private list: Series[] | null = null;
  private index: Map<string, Series> | null = null;

  get(metric: string): Series | undefined {
    if (this.m0 === metric) return this.s0!;
    if (this.index !== null) return this.index.get(metric);
    const n = this.names;
    if (n !== null) for (let i = 0; i < n.length; i++) if (n[i] === metric) return this.list![i];
    return undefined;
  }

  set(metric: string, s: Series): void {
    if (this.m0 === null) {
      this.m0 = metric;
      this.s0 = s;
      return;
    }
    const n = this.names === null ? 0 : this.names.length;
    const names = new Array<string>(n + 1);
    const list = new Array<Series>(n + 1);
    for (let i = 0; i < n; i++) {
      names[i] = this.names![i];
      list[i] = this.list![i];
    }
    names[n] = metric;
    list[n] = s;
    this.names = names;
    this.list = list;
    if (this.index !== null) this.index.set(metric, s);
    else if (n + 1 > 12) this.index = new Map(names.map((m, i) => [m, list[i]]));
  }

  delete(metric: string): void {
    const all = this.values().filter((s) => s.metric !== metric);
    this.m0 = null;
    this.s0 = null;
    this.names = null;
    this.list = null;
    this.index = null;
    for (const s of all) this.set(s.metric, s);
  }

  get size(): number {
    return (this.m0 === null ? 0 : 1) + (this.names === null ? 0 : this.names.length);
  }

  /** The series in creation order (a fresh array). */
  values(): Series[] {
    const out: Series[] = [];
    if (this.s0 !== null) out.push(this.s0);
    if (this.list !== null) for (const s of this.list) out.push(s);
    return out;
  }
}

interface Dirty {
  s: Series;
  level: number;
  acc: Acc;
}

function findByStart(list: readonly Acc[] | undefined, start: number): Acc | undefined {
  if (list === undefined) return undefined;
  for (let i = 0; i < list.length; i++) if (list[i].start === start) return list[i];
  return undefined;
}

/**
 * Window lists (open or kept, per level) are replaced rather than grown: a pushed-to JS array
 * reserves 17 slots, and most lists hold one window, so these keep them at their exact size (the
 * shared NONE when empty; it is never written to).
 */
const NONE: Acc[] = [];

function insertByStart(lists: Acc[][], level: number, a: Acc): void {
  const list = lists[level];
  const n = list.length;
  if (n === 0) {
    lists[level] = [a];
    return;
  }
  let i = n;
  while (i > 0 && list[i - 1].start > a.start) i--;
  const out = new Array<Acc>(n + 1);
  for (let k = 0; k < i; k++) out[k] = list[k];
  out[i] = a;
  for (let k = i; k < n; k++) out[k + 1] = list[k];
  lists[level] = out;
}

function shiftList(lists: Acc[][], level: number): Acc {
  const list = lists[level];
  if (list.length === 1) {
    lists[level] = NONE;
    return list[0];
  }
  return list.shift()!;
}

function opt(v: number | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a number >= 0, got ${String(v)}`);
  return v;
}

// Indices into the counters array (kept as one array so snapshots carry them in one go).
const C_READINGS = 0;
const C_VALUES = 1;
const C_NONNUM = 2;
const C_REJECTED = 3;
const C_EMITTED = 4;
const C_CORRECTIONS = 5;
const C_DROPPED = 6;
const C_OUTPUT = 7;
const C_REOPENED = 8;
const C_TOOLATE = 9;
const C_EVICTED = 10;
const C_DUPLICATES = 11;
const N_COUNTS = 12;

export class WindowEngine {
  readonly levels: readonly WindowLevel[];
  private readonly nLevels: number;
  private readonly lateness: number;
  private readonly globalWm: boolean;
  private readonly policy: LatePolicy;
  private readonly horizon: number;
  private readonly idle: number;
  private readonly evictAfter: number;
  private readonly maxKeys: number;
  private readonly groupBy: ((r: Reading) => string) | null;
  private readonly counterFn: (metric: string, group: string) => boolean;
  private readonly sketch: SketchMapping | null;
  private readonly maxPts: number;
  private readonly boolNumbers: boolean;
  private readonly dedupe: boolean;
  /** ingest() calls so far (a series' dedupe ring grows with what one call brings it). */
  private calls = 0;
  private readonly keepLatest: boolean;
  /** keepLatest without groupBy: the latest value lives on the series. */
  private readonly latestInSeries: boolean;
  private readonly fingerprint: string;
  // Level 0, unpacked for the hot path.
  private readonly b0: WindowLevel;
  private readonly b0Fixed: boolean;
  private readonly b0Ms: number;
  private readonly b0Step: number;
  private readonly b0Off: number;
  private readonly b0Hop: boolean;

  private groups = new Map<string, Group>();
  private nKeys = 0;
  private latestMap: Map<string, Map<string, { ts: number; v: MetricValue }>> | null;
  private latestCount = 0;
  private gMax = -Infinity;
  private gFloor = -Infinity;
  private lastSeen = 0;
  private now = 0;
  private clock = 0;
  /** Global watermark mode: a lower bound of every series' due. */
  private due = Infinity;
  private counts: number[] = new Array<number>(N_COUNTS).fill(0);

  private outR: WindowRollup[] | null = null;
  private outL: Reading[] | null = null;
  private outE: Reject[] | null = null;
  private deltas: Map<Series, Map<number, Acc>> | null = null;
  private dirty: Dirty[] = [];

  constructor(options: WindowEngineOptions = {}) {
    const timeZone = options.timeZone ?? 'UTC';
    const lo = { timeZone, weekStart: options.weekStart ?? 1, alignOffset: options.alignOffset ?? 0 };
    const specs = options.levels ?? ['1m'];
    if (!Array.isArray(specs) || specs.length === 0) throw new RangeError('levels must list at least one window size');
    this.levels = specs.map((s) => buildLevel(s, lo));
    for (let i = 1; i < this.levels.length; i++) checkNesting(this.levels[i - 1], this.levels[i]);
    const labels = new Set(this.levels.map((l) => l.label));
    if (labels.size !== this.levels.length) throw new RangeError('level labels must be unique');
    this.nLevels = this.levels.length;
    this.lateness = opt(options.lateness, 'lateness', 0);
    const wmScope = options.watermark ?? 'key';
    if (wmScope !== 'key' && wmScope !== 'global') throw new RangeError(`watermark must be 'key' or 'global', got ${String(wmScope)}`);
    this.globalWm = wmScope === 'global';
    const policy = options.latePolicy ?? 'drop';
    if (policy !== 'drop' && policy !== 'output' && policy !== 'reopen') throw new RangeError(`latePolicy must be 'drop', 'output' or 'reopen', got ${String(policy)}`);
    this.policy = policy;
    this.horizon = opt(options.correctionHorizon, 'correctionHorizon', 3_600_000);
    this.idle = opt(options.idleTimeout, 'idleTimeout', 0);
    this.evictAfter = opt(options.evictAfter, 'evictAfter', 0);
    this.maxKeys = opt(options.maxKeys, 'maxKeys', 100_000);
    if (this.maxKeys < 1) throw new RangeError('maxKeys must be at least 1');
    this.groupBy = options.groupBy ?? null;
    const c = options.counters;
    if (typeof c === 'function') this.counterFn = c;
    else {
      const set = new Set(c ?? []);
      this.counterFn = (m) => set.has(m);
    }
    const pct = options.percentiles ?? true;
    this.sketch = pct ? new SketchMapping(options.relativeAccuracy ?? 0.01, options.maxSketchBuckets ?? 2048) : null;
    this.maxPts = opt(options.maxCounterPoints, 'maxCounterPoints', 4096);
    this.boolNumbers = options.booleans === 'number';
    this.dedupe = options.dedupe === true;
    this.keepLatest = options.latest ?? true;
    this.latestMap = this.keepLatest && this.groupBy !== null ? new Map() : null;
    this.latestInSeries = this.keepLatest && this.groupBy === null;
    this.b0 = this.levels[0];
    this.b0Fixed = !this.b0.calendar;
    this.b0Ms = this.b0.ms;
    this.b0Step = this.b0.step;
    this.b0Off = this.b0.offset;
    this.b0Hop = this.b0.hopping;
    this.fingerprint = JSON.stringify({
      levels: this.levels.map((l) => [l.label, l.describe()]),
      sketch: this.sketch === null ? null : [this.sketch.relativeAccuracy, this.sketch.maxBuckets],
    });
  }

  // ---- input ------------------------------------------------------------------------------

  /**
   * Takes one Reading or an array of them. `now` (wall-clock ms) stamps the keys for idleTimeout,
   * evictAfter and LRU; omit it when those are off. Returns what closed (and late readings and
   * rejects); the returned object is shared when empty, do not mutate it.
   */
  ingest(input: Reading | readonly Reading[] | unknown, now?: number): WindowOutput {
    if (now !== undefined) this.now = now;
    this.calls++;
    if (Array.isArray(input)) {
      for (let i = 0; i < input.length; i++) this.one(input[i], i);
    } else {
      this.one(input, undefined);
    }
    return this.finish();
  }

  /**
   * Takes a journaled ingest again after restore() (the window node's journal, ./journal): `seq` is the
   * record's mark, `marks` the groups' marks as restore() returned them, `floor` the mark of the whole
   * snapshot. A group's readings are skipped when the record is at or below its mark (or, for a group the
   * snapshot does not hold, below `floor`): the snapshot has them already.
   */
  replay(input: unknown, now: number, seq: number, marks: ReadonlyMap<string, number>, floor: number): WindowOutput {
    // Filtered here, not in ingest()'s loop, which every reading runs through.
    const keep = (r: unknown): boolean => {
      const g = this.groupKey(r);
      return g === undefined || seq > (marks.get(g) ?? floor);
    };
    return this.ingest(Array.isArray(input) ? input.filter(keep) : keep(input) ? input : [], now);
  }

  /** The group a reading goes to, or undefined when it has none (ingest() rejects it). */
  private groupKey(r: unknown): string | undefined {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return undefined;
    const rd = r as Reading;
    if (this.groupBy === null) return typeof rd.device === 'string' ? rd.device : undefined;
    try {
      const g = this.groupBy(rd);
      return typeof g === 'string' ? g : undefined;
    } catch {
      return undefined;
    }
  }

  private reject(code: Reject['code'], message: string, index: number | undefined): void {
    this.counts[C_REJECTED]++;
    const r = new ThingwireError(code, message).toReject(index);
    (this.outE ??= []).push(r);
  }

  private one(r: unknown, index: number | undefined): void {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return this.reject('not_a_reading', 'a reading must be an object { device, ts, metrics }', index);
    const rd = r as Reading;
    const device = rd.device;
    if (typeof device !== 'string' || device.length === 0) return this.reject('invalid_device', 'reading device must be a non-empty string', index);
    const ts = rd.ts;
    if (typeof ts !== 'number' || !(ts - ts === 0)) return this.reject('invalid_ts', `reading ts must be a finite number of ms since the epoch, got ${typeof ts === 'number' ? String(ts) : typeof ts}`, index);
    const metrics = rd.metrics;
    if (metrics === null || typeof metrics !== 'object') return this.reject('no_metrics', 'reading metrics must be an object', index);
    let group = device;
    if (this.groupBy !== null) {
      let gk: unknown;
      try {
        gk = this.groupBy(rd);
      } catch (e) {
        return this.reject('invalid_value', `groupBy failed: ${e instanceof Error ? e.message : String(e)}`, index);
      }
      if (typeof gk !== 'string' || gk.length === 0) return this.reject('invalid_value', 'groupBy must return a non-empty string', index);
      group = gk;
    }
    let g = this.groups.get(group);
    let any = false;
    for (const m in metrics) {
      if (!any) {
        any = true;
        this.counts[C_READINGS]++;
      }
      let s = g === undefined ? undefined : g.get(m);
      if (s === undefined) {
        s = this.newSeries(group, m);
        g = this.groups.get(group);
      }
      if (this.dedupe && s.duplicate(ts, this.calls)) {
        this.counts[C_DUPLICATES]++;
        continue;
      }
      const raw = metrics[m];
      const a = s.cur;
      if (typeof raw === 'number' && a !== null && a.ctr === null && ts >= a.start && ts < a.end && raw - raw === 0) {
        // The hot path, written out here rather than called: a finite number for the series'
        // current level-0 window (open, so not late). Passing the unboxed ts and value to a call
        // that V8 does not inline would allocate two HeapNumbers per value. It does exactly what
        // value() + Acc.add() + LogSketch.add() do for this case (the property tests run both).
        this.counts[C_VALUES]++;
        s.lastSeen = this.now;
        s.touch = ++this.clock;
        if (this.latestInSeries) {
          if (ts >= s.latestTs) {
            s.latestTs = ts;
            s.latestNum = raw;
            s.latestV = null;
          }
        } else if (this.latestMap !== null) this.setLatest(device, m, ts, raw);
        const n = ++a.n;
        const sum = a.sum;
        const t = sum + raw;
        if ((sum >= 0 ? sum : -sum) >= (raw >= 0 ? raw : -raw)) a.comp += sum - t + raw;
        else a.comp += raw - t + sum;
        a.sum = t;
        const d = raw - a.mean;
        a.mean += d / n;
        a.m2 += d * (raw - a.mean);
        if (raw < a.min) a.min = raw;
        if (raw > a.max) a.max = raw;
        if (ts < a.firstTs) {
          a.firstTs = ts;
          a.first = raw;
        }
        if (ts >= a.lastTs) {
          a.lastTs = ts;
          a.last = raw;
        }
        const sk = a.sk;
        if (sk !== null) {
          let done = false;
          if (raw >= SKETCH_MIN_MAGNITUDE) {
            const j = Math.ceil(Math.log(raw) * sk.map.multiplier) - sk.pOff;
            const c = sk.pos;
            if (j >= 0 && j < c.length) {
              c[j]++;
              if (c[j] === 0) sk.overflow(true, j);
              sk.count++;
              done = true;
            }
          }
          if (!done) sk.add(raw);
        }
        if (ts > s.maxTs) s.maxTs = ts;
        if (this.globalWm) {
          this.lastSeen = this.now;
          if (ts > this.gMax) {
            this.gMax = ts;
            let gw = ts - this.lateness;
            if (this.gFloor > gw) gw = this.gFloor;
            if (gw >= this.due) this.serviceAll(gw);
          }
        } else {
          let w = s.maxTs - this.lateness;
          if (s.floor > w) w = s.floor;
          if (w >= s.due) this.service(s, w, true);
        }
        continue;
      }
      this.value(s, raw, rd);
    }
    if (!any) this.reject('no_metrics', 'reading has no metrics', index);
  }

  private newSeries(group: string, metric: string): Series {
    if (this.nKeys >= this.maxKeys) this.evictLru();
    let g = this.groups.get(group);
    if (g === undefined) {
      g = new Group();
      this.groups.set(group, g);
    }
    const s = new Series(group, metric, this.counterFn(metric, group), this.nLevels, this.now, this.clock);
    g.set(metric, s);
    this.nKeys++;
    return s;
  }

  /** One metric value of a reading, any case (ts is read here: passing it would box the double per call). */
  private value(s: Series, raw: MetricValue, rd: Reading): void {
    const ts = rd.ts;
    this.counts[C_VALUES]++;
    s.lastSeen = this.now;
    s.touch = ++this.clock;
    let v = 0;
    let numeric = false;
    if (typeof raw === 'number') {
      if (raw - raw === 0) {
        v = raw;
        numeric = true;
      }
    } else if (typeof raw === 'boolean' && this.boolNumbers) {
      v = raw ? 1 : 0;
      numeric = true;
    }
    if (!numeric) this.counts[C_NONNUM]++;
    if (this.keepLatest) {
      if (this.latestInSeries) {
        if (ts >= s.latestTs) {
          s.latestTs = ts;
          if (typeof raw === 'number') {
            s.latestNum = raw;
            s.latestV = null;
          } else s.latestV = raw;
        }
      } else this.setLatest(rd.device, s.metric, ts, raw);
    }
    // The watermark before this reading decides whether its window is still open.
    const L = this.lateness;
    let wm: number;
    if (this.globalWm) {
      wm = this.gMax - L;
      if (this.gFloor > wm) wm = this.gFloor;
      if (ts > this.gMax) this.gMax = ts;
      this.lastSeen = this.now;
    } else {
      wm = s.maxTs - L;
    }
    if (s.floor > wm) wm = s.floor;
    if (ts > s.maxTs) s.maxTs = ts;

    if (!this.b0Hop) {
      let a = s.cur;
      if (a === null || ts < a.start || ts >= a.end) {
        let start: number;
        let end: number;
        if (this.b0Fixed) {
          const r = (ts - this.b0Off) % this.b0Ms;
          start = ts - (r < 0 ? r + this.b0Ms : r);
          end = start + this.b0Ms;
        } else {
          start = this.b0.startOf(ts);
          end = this.b0.endOf(start);
        }
        if (end <= wm) {
          this.late(s, start, end, ts, numeric, v, raw, rd, wm, true);
          a = null;
        } else {
          a = findByStart(s.open[0], start) ?? this.openWindow(s, 0, start, end);
          s.cur = a;
        }
      }
      if (a !== null) {
        if (numeric) a.add(ts, v, this.maxPts);
        else a.nn++;
      }
    } else {
      const step = this.b0Step;
      const r = (ts - this.b0Off) % step;
      let start = ts - (r < 0 ? r + step : r);
      let first = true;
      for (; start + this.b0Ms > ts; start -= step) {
        const end = start + this.b0Ms;
        if (end <= wm) {
          this.late(s, start, end, ts, numeric, v, raw, rd, wm, first);
          first = false;
          continue;
        }
        const a = findByStart(s.open[0], start) ?? this.openWindow(s, 0, start, end);
        if (numeric) a.add(ts, v, this.maxPts);
        else a.nn++;
      }
    }

    // Close what the new watermark passed.
    if (this.globalWm) {
      let gw = this.gMax - L;
      if (this.gFloor > gw) gw = this.gFloor;
      if (gw >= this.due) this.serviceAll(gw);
    } else {
      let w = s.maxTs - L;
      if (s.floor > w) w = s.floor;
      if (w >= s.due) this.service(s, w, true);
    }
  }

  /** groupBy mode: the latest values live here, at most maxKeys of them (the first-seen devices go first). */
  private setLatest(device: string, metric: string, ts: number, raw: MetricValue): void {
    const map = this.latestMap!;
    let d = map.get(device);
    if (d === undefined) {
      d = new Map();
      map.set(device, d);
    }
    const e = d.get(metric);
    if (e === undefined) {
      d.set(metric, { ts, v: raw });
      if (++this.latestCount > this.maxKeys) {
        for (const [name, m] of map) {
          if (name === device) continue;
          map.delete(name);
          this.latestCount -= m.size;
          if (this.latestCount <= this.maxKeys) break;
        }
      }
    } else if (ts >= e.ts) {
      e.ts = ts;
      e.v = raw;
    }
  }

  private late(s: Series, start: number, end: number, ts: number, numeric: boolean, v: number, raw: MetricValue, rd: Reading, wm: number, once: boolean): void {
    switch (this.policy) {
      case 'drop':
        this.counts[C_DROPPED]++;
        return;
      case 'output': {
        if (!once) return;
        this.counts[C_OUTPUT]++;
        const out: Reading = { device: rd.device, ts, metrics: { [s.metric]: raw } };
        if (rd.tags !== undefined) out.tags = rd.tags;
        (this.outL ??= []).push(out);
        return;
      }
      case 'reopen': {
        if (end <= wm - this.horizon) {
          this.counts[C_TOOLATE]++;
          return;
        }
        this.counts[C_REOPENED]++;
        const ds = (this.deltas ??= new Map());
        let m = ds.get(s);
        if (m === undefined) {
          m = new Map();
          ds.set(s, m);
        }
        let d = m.get(start);
        if (d === undefined) {
          d = new Acc(start, end, this.sketch, s.counter, true);
          m.set(start, d);
        }
        if (numeric) d.add(ts, v, this.maxPts);
        else d.nn++;
        return;
      }
    }
  }

  // ---- windows ----------------------------------------------------------------------------

  private openWindow(s: Series, level: number, start: number, end: number): Acc {
    let a: Acc;
    if (level === 0 && s.spare !== null) {
      a = s.spare;
      s.spare = null;
      a.reset(start, end);
    } else a = new Acc(start, end, this.sketch, s.counter, level === 0);
    insertByStart(s.open, level, a);
    if (end < s.due) s.due = end;
    if (end < this.due) this.due = end;
    return a;
  }

  private wmOf(s: Series): number {
    let w = (this.globalWm ? this.gMax : s.maxTs) - this.lateness;
    if (this.globalWm && this.gFloor > w) w = this.gFloor;
    if (s.floor > w) w = s.floor;
    return w;
  }

  /** Closes s's windows with end <= wm, lowest level first, feeding each into the level above. Returns the latest end closed. */
  private service(s: Series, wm: number, purge: boolean): number {
    let maxEnd = -Infinity;
    const reopen = this.policy === 'reopen';
    for (let i = 0; i < this.nLevels; i++) {
      while (s.open[i].length > 0 && s.open[i][0].end <= wm) {
        const a = shiftList(s.open, i);
        if (a === s.cur) s.cur = null;
        this.emit(s, i, a, false);
        a.emitted = true;
        if (a.end > maxEnd) maxEnd = a.end;
        if (i + 1 < this.nLevels) this.mergeUp(s, i + 1, a);
        if (reopen) this.keep(s, i, a);
        else if (i === 0) s.spare = a;
      }
    }
    if (purge) this.purge(s, wm);
    s.due = this.dueOf(s);
    return maxEnd;
  }

  private mergeUp(s: Series, level: number, child: Acc): void {
    const lv = this.levels[level];
    const start = lv.startOf(child.start);
    const p = findByStart(s.open[level], start);
    if (p !== undefined) {
      p.merge(child, this.maxPts);
      return;
    }
    // Only after a flush or an idle close: the parent already closed.
    const k = findByStart(s.kept?.[level], start);
    if (k !== undefined) {
      k.merge(child, this.maxPts);
      this.markDirty(s, level, k);
      return;
    }
    this.openWindow(s, level, start, lv.endOf(start)).merge(child, this.maxPts);
  }

  private keep(s: Series, level: number, a: Acc): void {
    if (s.kept === null) s.kept = new Array<Acc[]>(this.nLevels).fill(NONE);
    insertByStart(s.kept, level, a);
  }

  private purge(s: Series, wm: number): void {
    const kept = s.kept;
    if (kept === null) return;
    const limit = wm - this.horizon;
    let any = false;
    for (let i = 0; i < kept.length; i++) {
      while (kept[i].length > 0 && kept[i][0].end <= limit && !kept[i][0].dirty) shiftList(kept, i);
      if (kept[i].length > 0) any = true;
    }
    if (!any) s.kept = null;
  }

  private dueOf(s: Series): number {
    let due = Infinity;
    for (let i = 0; i < this.nLevels; i++) {
      const o = s.open[i];
      if (o.length > 0 && o[0].end < due) due = o[0].end;
    }
    if (s.kept !== null) {
      for (let i = 0; i < this.nLevels; i++) {
        const k = s.kept[i];
        if (k.length > 0 && k[0].end + this.horizon < due) due = k[0].end + this.horizon;
      }
    }
    return due;
  }

  private serviceAll(gw: number): void {
    let due = Infinity;
    for (const g of this.groups.values()) {
      for (const s of g.values()) {
        const w = s.floor > gw ? s.floor : gw;
        if (s.due <= w) this.service(s, w, true);
        if (s.due < due) due = s.due;
      }
    }
    this.due = due;
  }

  private markDirty(s: Series, level: number, acc: Acc): void {
    if (acc.dirty) return;
    acc.dirty = true;
    this.dirty.push({ s, level, acc });
  }

  /** Merges each window's late readings into it (kept or new) and into the levels above. */
  private applyDeltas(): void {
    const ds = this.deltas!;
    this.deltas = null;
    for (const [s, m] of ds) {
      for (const d of m.values()) this.applyDelta(s, d);
    }
  }

  private applyDelta(s: Series, d: Acc): void {
    const wm = this.wmOf(s);
    if (d.end <= wm - this.horizon) {
      // The watermark moved on within this call and the window is no longer kept.
      const k = d.n + d.nn;
      this.counts[C_REOPENED] -= k;
      this.counts[C_TOOLATE] += k;
      return;
    }
    for (let i = 0; i < this.nLevels; i++) {
      let start = d.start;
      let end = d.end;
      if (i > 0) {
        start = this.levels[i].startOf(d.start);
        end = this.levels[i].endOf(start);
      }
      const o = findByStart(s.open[i], start);
      if (o !== undefined) {
        // Still open: it goes out with the late data when it closes, and so do the levels above.
        o.merge(d, this.maxPts);
        return;
      }
      let k = findByStart(s.kept?.[i], start);
      if (k === undefined) {
        if (end > wm) {
          this.openWindow(s, i, start, end).merge(d, this.maxPts);
          return;
        }
        k = new Acc(start, end, this.sketch, s.counter, i === 0);
        this.keep(s, i, k);
      }
      k.merge(d, this.maxPts);
      this.markDirty(s, i, k);
    }
    const due = this.dueOf(s);
    if (due < s.due) s.due = due;
    if (due < this.due) this.due = due;
  }

  private finish(): WindowOutput {
    if (this.deltas !== null) this.applyDeltas();
    if (this.dirty.length > 0) {
      const list = this.dirty;
      this.dirty = [];
      for (const { s, level, acc } of list) {
        acc.dirty = false;
        const correction = acc.emitted;
        this.emit(s, level, acc, correction);
        acc.emitted = true;
        if (correction) this.counts[C_CORRECTIONS]++;
      }
      for (const { s } of list) {
        s.due = this.dueOf(s);
        if (s.due < this.due) this.due = s.due;
      }
    }
    if (this.outR === null && this.outL === null && this.outE === null) return EMPTY_OUTPUT;
    const out: WindowOutput = { rollups: this.outR ?? [], late: this.outL ?? [], rejects: this.outE ?? [] };
    this.outR = null;
    this.outL = null;
    this.outE = null;
    return out;
  }

  private emit(s: Series, level: number, a: Acc, correction: boolean): void {
    this.counts[C_EMITTED]++;
    const lv = this.levels[level];
    const n = a.n;
    const some = n > 0;
    const sum = a.total;
    const r: WindowRollup = {
      device: s.group,
      metric: s.metric,
      window: { start: a.start, end: a.end, size: lv.size },
      level: lv.label,
      count: n,
      sum,
      mean: some ? sum / n : NaN,
      min: some ? a.min : NaN,
      max: some ? a.max : NaN,
      stddev: a.stddev,
      first: a.first,
      last: a.last,
      firstTs: some ? a.firstTs : NaN,
      lastTs: some ? a.lastTs : NaN,
      nonNumeric: a.nn,
    };
    const sk = a.sk;
    if (sk !== null) {
      r.p50 = sk.quantile(0.5, a.min, a.max);
      r.p90 = sk.quantile(0.9, a.min, a.max);
      r.p95 = sk.quantile(0.95, a.min, a.max);
      r.p99 = sk.quantile(0.99, a.min, a.max);
    }
    const c = a.ctr;
    if (c !== null) {
      r.delta = c.delta;
      r.rate = c.delta / ((a.end - a.start) / 1000);
      r.resets = c.resets;
    }
    if (correction) r.correction = true;
    (this.outR ??= []).push(r);
  }

  // ---- wall clock, flush, eviction --------------------------------------------------------

  /**
   * Wall-clock housekeeping, to be called periodically with the current time (ms): closes the
   * windows of keys (or, with a global watermark, the stream) idle for idleTimeout, and evicts
   * keys idle for evictAfter. Returns what closed.
   */
  advance(now: number): WindowOutput {
    this.now = now;
    if (this.idle > 0) {
      if (this.globalWm) {
        const quiet = now - this.lastSeen;
        if (quiet >= this.idle && this.gMax > -Infinity) {
          const f = this.gMax - this.lateness + quiet;
          if (f > this.gFloor) {
            this.gFloor = f;
            this.serviceAll(this.gMax - this.lateness > f ? this.gMax - this.lateness : f);
          }
        }
      } else {
        for (const g of this.groups.values()) {
          for (const s of g.values()) {
            const quiet = now - s.lastSeen;
            if (quiet < this.idle) continue;
            const f = s.maxTs - this.lateness + quiet;
            if (f > s.floor) s.floor = f;
            const w = this.wmOf(s);
            if (w >= s.due) this.service(s, w, true);
          }
        }
      }
    }
    if (this.evictAfter > 0) {
      const victims: Series[] = [];
      for (const g of this.groups.values()) for (const s of g.values()) if (now - s.lastSeen >= this.evictAfter) victims.push(s);
      for (const s of victims) this.evict(s);
    }
    return this.finish();
  }

  /** Same as advance(now). */
  tick(now: number): WindowOutput {
    return this.advance(now);
  }

  /**
   * Closes every open window of every level now (end of a stream, or on request). Later readings
   * for the flushed windows are late (each key's watermark moves to the latest end flushed).
   */
  flush(): WindowOutput {
    for (const g of this.groups.values()) {
      for (const s of g.values()) {
        const e = this.service(s, Infinity, false);
        if (e > s.floor) s.floor = e;
        this.purge(s, this.wmOf(s));
        s.due = this.dueOf(s);
      }
    }
    this.recomputeDue();
    return this.finish();
  }

  private recomputeDue(): void {
    let due = Infinity;
    for (const g of this.groups.values()) for (const s of g.values()) if (s.due < due) due = s.due;
    this.due = due;
  }

  private evict(s: Series): void {
    this.service(s, Infinity, true);
    const g = this.groups.get(s.group);
    if (g !== undefined && g.get(s.metric) === s) {
      g.delete(s.metric);
      if (g.size === 0) this.groups.delete(s.group);
      this.nKeys--;
      this.counts[C_EVICTED]++;
    }
    this.deltas?.delete(s);
  }

  private evictLru(): void {
    const all: Series[] = [];
    for (const g of this.groups.values()) for (const s of g.values()) all.push(s);
    all.sort((a, b) => a.touch - b.touch);
    const k = Math.max(1, Math.ceil(this.maxKeys / 64));
    for (let i = 0; i < k && i < all.length; i++) this.evict(all[i]);
  }

  // ---- views ------------------------------------------------------------------------------

  /** The latest reading (highest event time) per device and metric, optionally of one device. */
  latest(device?: string): LatestValue[] {
    const out: LatestValue[] = [];
    if (!this.keepLatest) return out;
    if (this.latestMap !== null) {
      const each = (d: string, m: Map<string, { ts: number; v: MetricValue }>): void => {
        for (const [metric, e] of m) out.push({ device: d, metric, ts: e.ts, value: e.v });
      };
      if (device !== undefined) {
        const m = this.latestMap.get(device);
        if (m) each(device, m);
      } else for (const [d, m] of this.latestMap) each(d, m);
      return out;
    }
    const each = (g: Group): void => {
      for (const s of g.values()) if (s.latestTs > -Infinity) out.push({ device: s.group, metric: s.metric, ts: s.latestTs, value: s.latestV ?? s.latestNum });
    };
    if (device !== undefined) {
      const g = this.groups.get(device);
      if (g) each(g);
    } else for (const g of this.groups.values()) each(g);
    return out;
  }

  latestOf(device: string, metric: string): LatestValue | undefined {
    if (!this.keepLatest) return undefined;
    if (this.latestMap !== null) {
      const e = this.latestMap.get(device)?.get(metric);
      return e === undefined ? undefined : { device, metric, ts: e.ts, value: e.v };
    }
    const s = this.groups.get(device)?.get(metric);
    return s === undefined || s.latestTs === -Infinity ? undefined : { device, metric, ts: s.latestTs, value: s.latestV ?? s.latestNum };
  }

  stats(): WindowStats {
    const walk = this.statsWalk();
    let r = walk.next();
    while (r.done !== true) r = walk.next();
    return r.value;
  }

  /**
   * stats() `seriesPerStep` series at a time, yielding between them so that a caller can let other work run
   * (runSliced in ../lib/slice): in one go it held the event loop for ~40 ms with 8,000 series and their kept 1m
   * windows (the window node's status line, every few seconds). Series that come or go meanwhile count or not
   * depending on where the walk is; the counters are read at the end.
   */
  *statsWalk(seriesPerStep = 256): Generator<void, WindowStats> {
    let open = 0;
    let kept = 0;
    let bytes = 0;
    let wmMax = -Infinity;
    let walked = 0;
    const accBytes = (a: Acc): number => {
      let b = BYTES.acc;
      if (a.sk !== null) b += BYTES.sketch + a.sk.storeBytes;
      if (a.ctr !== null) b += BYTES.counter + BYTES.point * a.ctr.points;
      return b;
    };
    for (const g of this.groups.values()) {
      for (const s of g.values()) {
        if (++walked % seriesPerStep === 0) yield;
        bytes += BYTES.series;
        if (s.recent !== null) bytes += BYTES.recent + 8 * (s.recent.length - RECENT);
        for (const l of s.open) for (const a of l) {
          open++;
          bytes += accBytes(a);
        }
        if (s.spare !== null) bytes += accBytes(s.spare);
        if (s.kept !== null) for (const l of s.kept) for (const a of l) {
          kept++;
          bytes += accBytes(a);
        }
        const w = this.wmOf(s);
        if (w > wmMax) wmMax = w;
      }
    }
    const c = this.counts;
    return {
      keys: this.nKeys,
      openWindows: open,
      keptWindows: kept,
      bytes,
      watermark: this.globalWm ? Math.max(this.gMax - this.lateness, this.gFloor) : wmMax,
      readings: c[C_READINGS],
      values: c[C_VALUES],
      nonNumeric: c[C_NONNUM],
      rejected: c[C_REJECTED],
      emitted: c[C_EMITTED],
      corrections: c[C_CORRECTIONS],
      late: { dropped: c[C_DROPPED], output: c[C_OUTPUT], reopened: c[C_REOPENED], tooLate: c[C_TOOLATE] },
      evicted: c[C_EVICTED],
      duplicates: c[C_DUPLICATES],
    };
  }

  /** The watermark of one series (per-key mode), or the global one; -Infinity before any reading. */
  watermark(device?: string, metric?: string): number {
    if (device !== undefined && metric !== undefined) {
      const s = this.groups.get(device)?.get(metric);
      if (s !== undefined) return this.wmOf(s);
    }
    return Math.max(this.gMax - this.lateness, this.gFloor);
  }

  // ---- state ------------------------------------------------------------------------------

  /** All state as a JSON-safe object (JSON.stringify it as is); restore() takes it back. */
  snapshot(): WindowSnapshot {
    const groups: Array<[string, SeriesState[]]> = [];
    for (const [name, g] of this.groups) groups.push([name, seriesStates(g)]);
    let latest: WindowSnapshot['latest'] = null;
    if (this.latestMap !== null) {
      latest = [];
      for (const [d, m] of this.latestMap) latest.push(latestEntry(d, m));
    }
    return { v: 1, config: this.fingerprint, ...this.clocks(), groups, latest };
  }

  /**
   * The snapshot as JSON text in pieces (a group's series, or a device's latest values, a piece), for
   * StateFile.saveStream: with an hour of kept windows for thousands of series, snapshot() and one
   * JSON.stringify held the event loop for most of a second. Readings may be taken between pieces (the
   * caller pauses): each group's piece is its state when the piece is made, a group dropped and seen again
   * meanwhile (it moves to the end of the map) is written once, and the engine's clocks and counts are taken
   * after the last group. restore() takes the text's JSON.parse as it takes a snapshot(). What came after
   * a piece is in no snapshot: `mark` (the window node's journal position) is written with each group's
   * piece, so that replay() takes again only what the piece does not hold.
   */
  *snapshotText(mark?: () => number): Generator<string> {
    yield `{"v":1,"config":${JSON.stringify(this.fingerprint)},"groups":[`;
    const written = new Set<string>();
    for (const [name, g] of this.groups) {
      if (written.has(name)) continue;
      const piece = mark === undefined ? [name, seriesStates(g)] : [name, seriesStates(g), mark()];
      yield `${written.size > 0 ? ',' : ''}${JSON.stringify(piece)}`;
      written.add(name);
    }
    if (this.latestMap === null) yield '],"latest":null';
    else {
      yield '],"latest":[';
      let first = true;
      for (const [d, m] of this.latestMap) {
        yield `${first ? '' : ','}${JSON.stringify(latestEntry(d, m))}`;
        first = false;
      }
      yield ']';
    }
    const clocks = JSON.stringify(this.clocks());
    yield `,${clocks.slice(1)}`;
  }

  private clocks(): Pick<WindowSnapshot, 'now' | 'gMax' | 'gFloor' | 'lastSeen' | 'clock' | 'counts'> {
    return { now: this.now, gMax: enc(this.gMax), gFloor: enc(this.gFloor), lastSeen: this.lastSeen, clock: this.clock, counts: this.counts.slice() };
  }

  /**
   * Replaces the state with a snapshot() taken by an engine with the same levels and sketch
   * settings (lateness, policies and limits may differ). Throws a RangeError otherwise. Returns the
   * groups' marks (snapshotText(mark)), for replay().
   */
  restore(snap: WindowSnapshot): Map<string, number> {
    if (snap === null || typeof snap !== 'object' || snap.v !== 1) throw new RangeError('not a thingwire-window snapshot (v1)');
    if (snap.config !== this.fingerprint) throw new RangeError(`snapshot was taken with other window levels or sketch settings: ${snap.config} vs ${this.fingerprint}`);
    const groups = new Map<string, Group>();
    const marks = new Map<string, number>();
    let n = 0;
    let due = Infinity;
    for (const [name, list, mark] of snap.groups) {
      if (typeof mark === 'number') marks.set(name, mark);
      const g = new Group();
      for (const st of list) {
        const s = new Series(name, st.m, st.c === 1, this.nLevels, st.ls, st.t);
        s.maxTs = dec(st.mx);
        s.floor = dec(st.fl);
        s.latestTs = dec(st.lt);
        s.latestV = st.lv;
        if (st.ln !== null) s.latestNum = dec(st.ln);
        if (st.o.length !== this.nLevels) throw new RangeError('snapshot level count differs');
        const accs = (l: AccState[]): Acc[] => (l.length === 0 ? NONE : l.map((a) => Acc.fromJSON(a, this.sketch, s.counter)));
        s.open = st.o.map(accs);
        s.kept = st.k === null ? null : st.k.map(accs);
        if (Array.isArray(st.r)) s.setRecent(st.r);
        s.due = this.dueOf(s);
        if (s.due < due) due = s.due;
        g.set(st.m, s);
        n++;
      }
      groups.set(name, g);
    }
    this.groups = groups;
    this.nKeys = n;
    this.due = due;
    this.now = snap.now;
    this.gMax = dec(snap.gMax);
    this.gFloor = dec(snap.gFloor);
    this.lastSeen = snap.lastSeen;
    this.clock = snap.clock;
    this.counts = new Array<number>(N_COUNTS).fill(0);
    for (let i = 0; i < N_COUNTS && i < snap.counts.length; i++) this.counts[i] = snap.counts[i];
    if (this.latestMap !== null) {
      this.latestMap = new Map();
      this.latestCount = 0;
      for (const [d, list] of snap.latest ?? []) {
        this.latestMap.set(d, new Map(list.map(([m, ts, v]) => [m, { ts, v }])));
        this.latestCount += list.length;
      }
    }
    this.outR = null;
    this.outL = null;
    this.outE = null;
    this.deltas = null;
    this.dirty = [];
    return marks;
  }
}
