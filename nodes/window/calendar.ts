/**
 * Window levels: how an event time maps to the window that holds it.
 *
 * Fixed sizes (ms, s, m, h, and whole days in UTC) are aligned to the Unix epoch, shifted by an
 * optional `alignOffset` (for example 30 min for hourly windows on Asia/Kolkata's half hours):
 * start = floor((ts - offset) / size) * size + offset. They can hop (size, step).
 *
 * Calendar sizes (d, w, mo, y in a time zone other than UTC, and w, mo, y always) are aligned to
 * the zone's local calendar: a Europe/Madrid day starts at local midnight, 22:00 or 23:00 UTC, and
 * lasts 23 h on the spring DST day and 25 h on the autumn one; months have their real lengths, leap
 * years included. A window is [the first instant the local clock reads the unit's first day at
 * 00:00, the first instant it reads the next unit's first day at 00:00): contiguous and
 * non-overlapping even when a DST change skips midnight (America/Santiago: the day starts at 01:00)
 * or repeats it (America/Havana: 00:00-01:00 happens twice, both times in the new day).
 *
 * Zone offsets come from Intl.DateTimeFormat (no dependency) and are cached per UTC minute (every
 * zone transition since 2000 falls on a whole minute); window boundaries are cached too, so the
 * hot path never formats a date.
 */
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const WEEK = 7 * DAY;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: MINUTE, h: HOUR, d: DAY, w: WEEK };

export type CalendarUnit = 'd' | 'w' | 'mo' | 'y';

/** A size as configured: ms as a number, or `<n><unit>` with unit ms, s, m, h, d, w, mo or y. */
export type SizeSpec = number | string;

export interface ParsedSize {
  /** Fixed duration in ms (fixed sizes), or the nominal size (calendar sizes: d 1 day, w 7 days, mo 30 days x n, y 365 days). */
  ms: number;
  calendar?: { unit: CalendarUnit; n: number };
  /** Canonical label, e.g. "1m", "1h", "1d", "1mo". */
  label: string;
}

const SIZE_RE = /^\s*(\d+)\s*(ms|s|m|h|d|w|mo|y)\s*$/;

/** Parses a size; throws a RangeError naming the problem. */
export function parseSize(spec: SizeSpec, timeZone: string): ParsedSize {
  if (typeof spec === 'number') {
    if (!Number.isInteger(spec) || spec <= 0) throw new RangeError(`window size must be a positive whole number of ms, got ${spec}`);
    return { ms: spec, label: labelForMs(spec) };
  }
  const m = typeof spec === 'string' ? SIZE_RE.exec(spec) : null;
  if (!m) throw new RangeError(`window size must be ms or "<n><unit>" with unit ms, s, m, h, d, w, mo or y, got ${JSON.stringify(spec)}`);
  const n = Number(m[1]);
  const unit = m[2];
  if (n <= 0) throw new RangeError(`window size must be positive, got ${JSON.stringify(spec)}`);
  const label = `${n}${unit}`;
  if (unit === 'mo') {
    if (12 % n !== 0) throw new RangeError(`a month window must divide the year (1, 2, 3, 4, 6 or 12 mo), got ${JSON.stringify(spec)}`);
    return { ms: n * 30 * DAY, calendar: { unit: 'mo', n }, label };
  }
  if (unit === 'y') {
    if (n !== 1) throw new RangeError(`only 1y year windows are supported, got ${JSON.stringify(spec)}`);
    return { ms: 365 * DAY, calendar: { unit: 'y', n: 1 }, label };
  }
  if (unit === 'w') {
    if (n !== 1) throw new RangeError(`only 1w week windows are supported, got ${JSON.stringify(spec)}`);
    return { ms: WEEK, calendar: { unit: 'w', n: 1 }, label };
  }
  if (unit === 'd' && !isUtc(timeZone)) {
    if (n !== 1) throw new RangeError(`only 1d day windows are supported in time zone ${timeZone} (in UTC, Nd is a fixed size), got ${JSON.stringify(spec)}`);
    return { ms: DAY, calendar: { unit: 'd', n: 1 }, label };
  }
  return { ms: n * UNIT_MS[unit], label };
}

function labelForMs(ms: number): string {
  for (const [u, k] of [
    ['d', DAY],
    ['h', HOUR],
    ['m', MINUTE],
    ['s', 1000],
  ] as const) {
    if (ms % k === 0) return `${ms / k}${u}`;
  }
  return `${ms}ms`;
}

export function isUtc(timeZone: string): boolean {
  return timeZone === 'UTC' || timeZone === 'Etc/UTC' || timeZone === 'Etc/GMT' || timeZone === 'GMT' || timeZone === 'Z';
}

function floorMod(a: number, b: number): number {
  const r = a % b;
  return r < 0 ? r + b : r;
}

// ---- zone offsets --------------------------------------------------------------------------

const MAX_CACHE = 50_000;

/** UTC offsets (local wall time minus UTC, ms) of one IANA time zone, cached per minute. */
export class ZoneClock {
  readonly timeZone: string;
  readonly utc: boolean;
  private readonly dtf: Intl.DateTimeFormat | null;
  private readonly offsets = new Map<number, number>();
  private readonly wallStarts = new Map<number, number>();

  constructor(timeZone: string) {
    this.timeZone = timeZone;
    this.utc = isUtc(timeZone);
    if (this.utc) {
      this.dtf = null;
      return;
    }
    try {
      this.dtf = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new RangeError(`unknown time zone ${JSON.stringify(timeZone)}`);
    }
  }

  /** Local wall time minus UTC at instant `u` (ms). */
  offset(u: number): number {
    if (this.utc) return 0;
    const key = Math.floor(u / MINUTE);
    const hit = this.offsets.get(key);
    if (hit !== undefined) return hit;
    const base = key * MINUTE;
    let y = 0;
    let mo = 0;
    let d = 0;
    let h = 0;
    let mi = 0;
    let s = 0;
    for (const p of this.dtf!.formatToParts(base)) {
      switch (p.type) {
        case 'year':
          y = Number(p.value);
          break;
        case 'month':
          mo = Number(p.value);
          break;
        case 'day':
          d = Number(p.value);
          break;
        case 'hour':
          h = Number(p.value);
          break;
        case 'minute':
          mi = Number(p.value);
          break;
        case 'second':
          s = Number(p.value);
          break;
      }
    }
    const wall = Date.UTC(y, mo - 1, d, h === 24 ? 0 : h, mi, s) + (h === 24 ? DAY : 0);
    const off = wall - base;
    if (this.offsets.size >= MAX_CACHE) this.offsets.clear();
    this.offsets.set(key, off);
    return off;
  }

  /** Local wall-clock time at instant `u`, as ms since the epoch of a UTC clock showing the same reading. */
  wall(u: number): number {
    return u + this.offset(u);
  }

  /**
   * The first instant at which the local clock reads wall time `w` or later (the "entrance" into
   * `w`): the instant itself when `w` exists once, the earlier of the two when a fall-back repeats
   * it, and the transition instant when a spring-forward skips it.
   */
  startOfWall(w: number): number {
    if (this.utc) return w;
    const hit = this.wallStarts.get(w);
    if (hit !== undefined) return hit;
    const oEarly = this.offset(w - DAY);
    const oLate = this.offset(w + DAY);
    const u1 = w - oEarly;
    const u2 = w - oLate;
    const ok1 = this.offset(u1) === oEarly;
    const ok2 = this.offset(u2) === oLate;
    let u: number;
    if (ok1 && ok2) u = Math.min(u1, u2);
    else if (ok1) u = u1;
    else if (ok2) u = u2;
    else {
      // A gap: the clock jumps over w. The entrance is the transition instant in (u2, u1]: the
      // first instant whose offset is the later one.
      let lo = Math.min(u1, u2);
      let hi = Math.max(u1, u2);
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (mid + this.offset(mid) >= w) hi = mid;
        else lo = mid;
      }
      u = hi;
    }
    if (this.wallStarts.size >= MAX_CACHE) this.wallStarts.clear();
    this.wallStarts.set(w, u);
    return u;
  }
}

const clocks = new Map<string, ZoneClock>();

/** One shared ZoneClock (and its caches) per zone. */
export function zoneClock(timeZone: string): ZoneClock {
  let z = clocks.get(timeZone);
  if (!z) {
    z = new ZoneClock(timeZone);
    clocks.set(timeZone, z);
  }
  return z;
}

// ---- levels --------------------------------------------------------------------------------

/** One window level as the engine uses it. */
export interface WindowLevel {
  /** Tag on every rollup of this level, e.g. "1m" or "5m/1m" for hopping. */
  readonly label: string;
  /** TimeWindow.size: the duration, or the nominal duration for calendar windows. */
  readonly size: number;
  readonly calendar: boolean;
  /** Fixed sizes: the window duration and the hop between window starts (equal when tumbling). */
  readonly ms: number;
  readonly step: number;
  readonly offset: number;
  readonly hopping: boolean;
  /** Start of the (tumbling) window holding ts. */
  startOf(ts: number): number;
  /** End of the (tumbling) window starting at `start`. */
  endOf(start: number): number;
  /** For validation and fingerprints. */
  describe(): string;
}

export class FixedLevel implements WindowLevel {
  readonly label: string;
  readonly size: number;
  readonly calendar = false;
  readonly ms: number;
  readonly step: number;
  readonly offset: number;
  readonly hopping: boolean;

  constructor(ms: number, step: number, offset: number, label: string) {
    if (!(step > 0) || step > ms) throw new RangeError(`hop step must be in (0, size], got step ${step} for size ${ms}`);
    if (!Number.isInteger(offset)) throw new RangeError(`alignOffset must be a whole number of ms, got ${offset}`);
    this.ms = ms;
    this.size = ms;
    this.step = step;
    this.offset = floorMod(offset, step);
    this.hopping = step !== ms;
    this.label = label;
  }

  startOf(ts: number): number {
    return ts - floorMod(ts - this.offset, this.step);
  }

  endOf(start: number): number {
    return start + this.ms;
  }

  describe(): string {
    return `fixed:${this.ms}/${this.step}@${this.offset}`;
  }
}

export class CalendarLevel implements WindowLevel {
  readonly label: string;
  readonly size: number;
  readonly calendar = true;
  readonly ms: number;
  readonly step: number;
  readonly offset = 0;
  readonly hopping = false;
  readonly unit: CalendarUnit;
  /** Months per window for unit mo. */
  readonly months: number;
  /** ISO weekday the week starts on: 1 = Monday ... 7 = Sunday. */
  readonly weekStart: number;
  readonly zone: ZoneClock;
  private cs = NaN;
  private ce = NaN;
  private readonly ends = new Map<number, number>();

  constructor(unit: CalendarUnit, n: number, zone: ZoneClock, weekStart: number, label: string, nominal: number) {
    if (!Number.isInteger(weekStart) || weekStart < 1 || weekStart > 7) throw new RangeError(`weekStart must be 1 (Monday) .. 7 (Sunday), got ${weekStart}`);
    this.unit = unit;
    this.months = unit === 'mo' ? n : unit === 'y' ? 12 : 0;
    this.zone = zone;
    this.weekStart = weekStart;
    this.label = label;
    this.size = nominal;
    this.ms = nominal;
    this.step = nominal;
  }

  /** The wall time (UTC-clock ms) at which the unit holding local wall time `w` begins. */
  private unitWall(w: number): number {
    switch (this.unit) {
      case 'd':
        return w - floorMod(w, DAY);
      case 'w': {
        const day = Math.floor(w / DAY);
        const iso = floorMod(day + 3, 7) + 1; // 1970-01-01 was a Thursday (ISO 4)
        return (day - floorMod(iso - this.weekStart, 7)) * DAY;
      }
      default: {
        const dt = new Date(w);
        const y = dt.getUTCFullYear();
        const m = dt.getUTCMonth();
        return Date.UTC(y, m - (m % this.months), 1);
      }
    }
  }

  /** The wall time at which the unit after the one beginning at wall `w0` begins. */
  private nextWall(w0: number): number {
    switch (this.unit) {
      case 'd':
        return w0 + DAY;
      case 'w':
        return w0 + WEEK;
      default: {
        const dt = new Date(w0);
        return Date.UTC(dt.getUTCFullYear(), dt.getUTCMonth() + this.months, 1);
      }
    }
  }

  private prevWall(w0: number): number {
    switch (this.unit) {
      case 'd':
        return w0 - DAY;
      case 'w':
        return w0 - WEEK;
      default: {
        const dt = new Date(w0);
        return Date.UTC(dt.getUTCFullYear(), dt.getUTCMonth() - this.months, 1);
      }
    }
  }

  startOf(ts: number): number {
    if (ts >= this.cs && ts < this.ce) return this.cs;
    const z = this.zone;
    let w0 = this.unitWall(z.wall(ts));
    let s = z.startOfWall(w0);
    let e = z.startOfWall(this.nextWall(w0));
    // A repeated hour across midnight belongs to the new unit (its entrance came first).
    for (let guard = 0; guard < 4 && ts >= e; guard++) {
      w0 = this.nextWall(w0);
      s = e;
      e = z.startOfWall(this.nextWall(w0));
    }
    for (let guard = 0; guard < 4 && ts < s; guard++) {
      w0 = this.prevWall(w0);
      e = s;
      s = z.startOfWall(w0);
    }
    this.cs = s;
    this.ce = e;
    if (this.ends.size >= MAX_CACHE) this.ends.clear();
    this.ends.set(s, e);
    return s;
  }

  endOf(start: number): number {
    if (start === this.cs) return this.ce;
    const hit = this.ends.get(start);
    if (hit !== undefined) return hit;
    this.startOf(start);
    return this.ce;
  }

  describe(): string {
    return `cal:${this.unit}${this.months || ''}:${this.zone.timeZone}:w${this.weekStart}`;
  }
}

export interface LevelSpec {
  size: SizeSpec;
  /** Hop between window starts (hopping windows); fixed sizes on the base level only. */
  step?: SizeSpec;
  /** Tag on the rollups; defaults to the size ("1m"), or "size/step" when hopping. */
  label?: string;
}

export interface LevelOptions {
  timeZone: string;
  weekStart: number;
  alignOffset: number;
}

export function buildLevel(spec: SizeSpec | LevelSpec, o: LevelOptions): WindowLevel {
  const s: LevelSpec = typeof spec === 'object' && spec !== null ? spec : { size: spec };
  const size = parseSize(s.size, o.timeZone);
  if (size.calendar) {
    if (s.step !== undefined && parseSize(s.step, o.timeZone).ms !== size.ms) throw new RangeError(`calendar windows (${size.label}) cannot hop`);
    return new CalendarLevel(size.calendar.unit, size.calendar.n, zoneClock(o.timeZone), o.weekStart, s.label ?? size.label, size.ms);
  }
  const step = s.step === undefined ? size : parseSize(s.step, o.timeZone);
  if (step.calendar) throw new RangeError(`a hop step must be a fixed duration, got ${JSON.stringify(s.step)}`);
  const label = s.label ?? (step.ms === size.ms ? size.label : `${size.label}/${step.label}`);
  return new FixedLevel(size.ms, step.ms, o.alignOffset, label);
}

const UNIT_ORDER: Record<CalendarUnit, number> = { d: 0, w: 1, mo: 2, y: 3 };

/**
 * Checks that every window of `upper` is an exact union of windows of `lower`, so that a cascade
 * can build `upper` by merging `lower`'s partial aggregates. Throws a RangeError otherwise.
 */
export function checkNesting(lower: WindowLevel, upper: WindowLevel): void {
  const what = `level ${upper.label} cannot be built from level ${lower.label}`;
  if (upper.hopping || lower.hopping) throw new RangeError(`${what}: cascaded levels must be tumbling windows`);
  if (upper.size <= lower.size) throw new RangeError(`${what}: each level must be larger than the one below`);
  if (!upper.calendar && !lower.calendar) {
    if (upper.ms % lower.ms !== 0) throw new RangeError(`${what}: ${upper.ms} ms is not a multiple of ${lower.ms} ms`);
    if (floorMod(upper.offset - lower.offset, lower.ms) !== 0) throw new RangeError(`${what}: the alignments differ`);
    return;
  }
  if (!upper.calendar) throw new RangeError(`${what}: a fixed size cannot be built from calendar windows`);
  const up = upper as CalendarLevel;
  if (lower.calendar) {
    const lo = lower as CalendarLevel;
    if (lo.zone.timeZone !== up.zone.timeZone) throw new RangeError(`${what}: different time zones`);
    const ok =
      (lo.unit === 'd' && UNIT_ORDER[up.unit] > 0) ||
      (lo.unit === 'w' && up.unit === 'w') ||
      ((lo.unit === 'mo' || lo.unit === 'y') && (up.unit === 'mo' || up.unit === 'y') && up.months % lo.months === 0);
    if (!ok) throw new RangeError(`${what}: ${up.unit} boundaries do not fall on ${lo.unit} boundaries`);
    return;
  }
  // Calendar over fixed: every local midnight must fall on a boundary of the lower level. The
  // midnight instant is wall - offset, so the zone's offsets (sampled twice a year, 2000-2100)
  // plus the lower level's alignment must be multiples of its size, and the size must divide a day.
  if (DAY % lower.ms !== 0) throw new RangeError(`${what}: ${lower.ms} ms does not divide a day`);
  const z = up.zone;
  const seen = new Set<number>();
  for (let y = 2000; y < 2100; y++) {
    for (const m of [0, 6]) seen.add(z.offset(Date.UTC(y, m, 15)));
  }
  for (const off of seen) {
    if (floorMod(-off - lower.offset, lower.ms) !== 0) {
      throw new RangeError(`${what}: local midnight in ${z.timeZone} (UTC offset ${off / MINUTE} min) is not on a ${lower.label} boundary`);
    }
  }
}
