import { ThingwireError } from './errors';

/** Units a numeric timestamp can be given in. Never guessed: the node config says which. */
export type TimeUnit = 's' | 'ms' | 'us' | 'ns';
export const TIME_UNITS: readonly TimeUnit[] = ['s', 'ms', 'us', 'ns'];

const TO_MS: Record<TimeUnit, number> = { s: 1000, ms: 1, us: 1e-3, ns: 1e-6 };

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
    ms = unit === 'ms' ? ts : ts * TO_MS[unit];
    // Event times are kept to the millisecond.
    ms = Math.floor(ms);
  } else if (typeof ts === 'string') {
    if (!ISO_RE.test(ts)) {
      throw new ThingwireError('invalid_ts', `ts string must be ISO 8601 with a time zone (e.g. 2026-11-24T10:00:00Z), got ${JSON.stringify(ts.slice(0, 40))}`);
    }
    ms = Date.parse(ts);
    if (Number.isNaN(ms)) throw new ThingwireError('invalid_ts', `ts is not a valid date: ${JSON.stringify(ts.slice(0, 40))}`);
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
