import { ThingwireError } from './errors';

/** Units a numeric timestamp can be given in. Never guessed: the node config says which. */
export type TimeUnit = 's' | 'ms' | 'us' | 'ns';
export const TIME_UNITS: readonly TimeUnit[] = ['s', 'ms', 'us', 'ns'];

// Divide (not multiply by 1e-3/1e-6) for sub-ms units: division is exact where the result is a whole
// ms, and multiplication by an inexact constant is not (1795514423757000000 ns would lose 1 ms).
const MS_PER: Record<TimeUnit, number> = { s: 1000, ms: 1, us: 1e3, ns: 1e6 };

/**
 * Plausible event times: 2000-01-01 to 2100-01-01 UTC. A timestamp outside is
 * almost always a unit mix-up (seconds read as ms lands in 1970), so it is
 * rejected with a message naming the unit rather than stored in the wrong year.
 */
export const MIN_TS = Date.UTC(2000, 0, 1);
export const MAX_TS = Date.UTC(2100, 0, 1);

// ISO 8601 / RFC 3339 date-time with an explicit zone (Z or +hh:mm), or a bare date.
const ISO_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/i;

export function isTimeUnit(u: unknown): u is TimeUnit {
  return typeof u === 'string' && (TIME_UNITS as readonly string[]).includes(u);
}

/** Converts a device timestamp (number in `unit`, or ISO 8601 string) to ms epoch; throws a ThingwireError. */
export function toEpochMs(ts: unknown, unit: TimeUnit): number {
  let ms: number;
  if (typeof ts === 'number') {
    if (!Number.isFinite(ts)) throw new ThingwireError('invalid_ts', `ts must be a finite number, got ${String(ts)}`);
    if (unit === 'ns') {
      // Epoch ns are above 2^53, so the number already carries ~256 ns of error: round to the
      // microsecond first, or 1795514447514000000 (stored as ...513999872) would lose a millisecond.
      ms = Math.round(ts / 1e3) / 1e3;
    } else {
      ms = unit === 'ms' ? ts : unit === 's' ? ts * MS_PER.s : ts / MS_PER[unit];
    }
    // Event times are kept to the millisecond.
    ms = Math.floor(ms);
  } else if (typeof ts === 'string') {
    if (!ISO_RE.test(ts)) {
      throw new ThingwireError('invalid_ts', `ts string must be ISO 8601 with a time zone (e.g. 2026-11-24T10:00:00Z), got ${JSON.stringify(ts.slice(0, 40))}`);
    }
    ms = Date.parse(ts);
    // Date.parse rolls impossible dates over (2026-02-30 becomes March 2): reject them instead.
    if (Number.isNaN(ms) || !isRealDate(ts)) throw new ThingwireError('invalid_ts', `ts is not a valid date: ${JSON.stringify(ts.slice(0, 40))}`);
  } else {
    throw new ThingwireError('invalid_ts', `ts must be a number (${unit} since epoch) or an ISO 8601 string, got ${typeName(ts)}`);
  }
  if (ms < MIN_TS || ms >= MAX_TS) {
    throw new ThingwireError(
      'ts_out_of_range',
      `ts ${String(ts)} read as ${unit} is ${describeMs(ms)}, outside 2000..2100; is the timestamp unit setting (${unit}) right?`,
    );
  }
  return ms;
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function describeMs(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms`;
}

/** True when the YYYY-MM-DD at the start of `iso` names a day that exists (and hh:mm:ss are in range). */
function isRealDate(iso: string): boolean {
  const y = Number(iso.slice(0, 4));
  const m = Number(iso.slice(5, 7));
  const d = Number(iso.slice(8, 10));
  if (m < 1 || m > 12 || d < 1) return false;
  const daysInMonth = new Date(Date.UTC(y, m, 0)).getUTCDate();
  if (d > daysInMonth) return false;
  if (iso.length > 10) {
    const hh = Number(iso.slice(11, 13));
    const mm = Number(iso.slice(14, 16));
    const ss = iso.length > 17 && iso[16] === ':' ? Number(iso.slice(17, 19)) : 0;
    if (hh > 23 || mm > 59 || ss > 59) return false;
  }
  return true;
}

const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)?$/;

/**
 * A duration as node dialogs and control messages write it: "500ms", "30s", "5m" (or "5min"), "1h", "1d", "1w",
 * or a number of ms (a number or digits). Returns ms (not rounded), or undefined when `v` is none of those;
 * each caller applies its own bounds and messages.
 */
export function durationMs(v: unknown): number | undefined {
  let ms: number | undefined;
  if (typeof v === 'number') ms = v;
  else if (typeof v === 'string' && v.length <= 32) {
    const m = DURATION_RE.exec(v.trim());
    if (m) ms = Number(m[1]) * DURATION_UNIT_MS[m[2] ?? 'ms'];
  }
  return ms !== undefined && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/**
 * A point in time as queries and control messages write it: ms since the epoch, an ISO 8601 time (from its
 * YYYY-MM-DD on), "now", or "-<duration>" before now ("-1h", "-30d"). Returns ms, or undefined when `v` is none of
 * those; each caller says what it expected.
 */
export function timeMs(v: unknown, now: number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  if (s === 'now') return now;
  if (s.startsWith('-')) {
    const d = durationMs(s.slice(1));
    return d !== undefined && d > 0 ? now - d : undefined;
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const t = Date.parse(s);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}
