/**
 * The saved configuration of a thingwire-retention node (what the editor dialog writes), the pure
 * function that checks it, and the parser of a restore request's range. Every problem is reported
 * with the field it is in. No Node-RED here.
 */
import { ThingwireError } from '../lib/errors';
import { durationMs, timeMs } from '../lib/time';
import { DEFAULT_MAX_PARTITIONS } from '../lib/retention/plan';
import { DEFAULT_POLICY, parsePolicy, type RetentionPolicy } from '../lib/retention/policy';
import { DEFAULT_RESTORE_DAYS } from '../lib/retention/run';

export interface RetentionConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  /** The thingwire-store config node whose data is tiered. */
  store?: string;
  /** The policy as JSON ({ rules: [...] } or a bare array); empty = the default policy. */
  policy?: string;
  /** Time between scheduled runs ("1h"; "0" = only when a message asks). */
  interval?: string | number;
  /** Wait after a (re)start before the first scheduled run ("1m"). */
  startDelay?: string | number;
  restoreDays?: string | number;
  maxPartitions?: string | number;
  /** Where cold files go; empty = <DATA_DIR>/retention/<store>/archive. */
  archiveDir?: string;
}

export interface RetentionSettings {
  policy: RetentionPolicy;
  /** ms between scheduled runs; 0 = on demand only. */
  intervalMs: number;
  startDelayMs: number;
  restoreDays: number;
  maxPartitions: number;
  archiveDir?: string;
}

/** The dialog's defaults (retention.html uses the same values). */
export const RETENTION_DEFAULTS = {
  interval: '1h',
  startDelay: '1m',
  restoreDays: DEFAULT_RESTORE_DAYS,
  maxPartitions: DEFAULT_MAX_PARTITIONS,
} as const;

const MIN_INTERVAL_MS = 60_000;
const MAX_DELAY_MS = 2 ** 31 - 1;

export class RetentionConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'RetentionConfigError';
  }
}

function blank(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
}

export function parseRetentionConfig(c: RetentionConfig): RetentionSettings {
  const problems: string[] = [];
  let policy: RetentionPolicy = DEFAULT_POLICY;
  if (!blank(c.policy)) {
    try {
      policy = parsePolicy(c.policy);
    } catch (e) {
      const details = (e as ThingwireError).details as { problems?: Array<{ path: string; message: string }> } | undefined;
      if (details?.problems?.length) for (const p of details.problems) problems.push(`policy: ${p.message}`);
      else problems.push(`policy: ${(e as Error).message}`);
    }
  }
  const duration = (v: unknown, dflt: string, what: string, min: number): number => {
    const ms = durationMs(blank(v) ? dflt : v);
    if (ms === undefined || ms > MAX_DELAY_MS || (ms !== 0 && ms < min)) {
      problems.push(`${what} must be a duration such as "1h" or "30m"${min > 0 ? ` of at least ${min / 1000} s, or 0` : ''} (got ${JSON.stringify(v)})`);
      return 0;
    }
    return ms;
  };
  const intervalMs = duration(c.interval, RETENTION_DEFAULTS.interval, 'interval', MIN_INTERVAL_MS);
  const startDelayMs = duration(c.startDelay, RETENTION_DEFAULTS.startDelay, 'start delay', 0);
  const restoreDays = blank(c.restoreDays) ? RETENTION_DEFAULTS.restoreDays : Number(c.restoreDays);
  if (!(Number.isFinite(restoreDays) && restoreDays > 0 && restoreDays <= 3650)) problems.push(`restore days must be a number from 1 to 3650 (got ${JSON.stringify(c.restoreDays)})`);
  const maxPartitions = blank(c.maxPartitions) ? RETENTION_DEFAULTS.maxPartitions : Number(c.maxPartitions);
  if (!(Number.isInteger(maxPartitions) && maxPartitions >= 1 && maxPartitions <= 100_000)) problems.push(`max partitions per run must be a whole number from 1 to 100000 (got ${JSON.stringify(c.maxPartitions)})`);
  if (problems.length) throw new RetentionConfigError(problems);
  return { policy, intervalMs, startDelayMs, restoreDays, maxPartitions, ...(blank(c.archiveDir) ? {} : { archiveDir: String(c.archiveDir).trim() }) };
}

/** A time in a restore request: ms since the epoch, an ISO 8601 date, "now" or "-30d" (before now). */
export function parseTime(v: unknown, now: number, what: string): number {
  const t = timeMs(v, now);
  if (t !== undefined) return Math.trunc(t);
  throw new ThingwireError('invalid_value', `${what} must be ms since the epoch, an ISO 8601 date or a time before now such as "-30d" (got ${JSON.stringify(v)})`);
}

/** The range of a restore message: msg.payload { start, end?, rules? } (end defaults to now). */
export function parseRestore(payload: unknown, now: number): { start: number; end: number; rules?: string[] } {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new ThingwireError('invalid_value', 'a restore needs msg.payload = { start, end?, rules? } (times as ms, ISO 8601 or "-30d")');
  }
  const p = payload as Record<string, unknown>;
  const start = parseTime(p.start, now, 'start');
  const end = blank(p.end) ? now : parseTime(p.end, now, 'end');
  if (!(end > start)) throw new ThingwireError('invalid_value', `restore range is empty: end (${new Date(end).toISOString()}) must be after start (${new Date(start).toISOString()})`);
  let rules: string[] | undefined;
  if (p.rules !== undefined) {
    if (!Array.isArray(p.rules) || p.rules.some((r) => typeof r !== 'string')) throw new ThingwireError('invalid_value', 'rules must be an array of rule names');
    rules = p.rules as string[];
  }
  return { start, end, ...(rules ? { rules } : {}) };
}
