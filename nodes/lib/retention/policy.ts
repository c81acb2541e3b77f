/**
 * The retention policy: which data (a measurement, optionally narrowed by tag equality) stays hot in
 * the time-series store for how long, then how long it is kept as warm Parquet files and as cold
 * archive files, and when it is deleted. Ages are whole UTC days (a partition is one rule's day).
 *
 * Policy JSON:
 *   { "rules": [
 *       { "name": "raw", "measurement": "telemetry", "hotDays": 30, "warmDays": "1y", "coldDays": null },
 *       { "name": "rollup-1m", "measurement": "rollup", "where": { "level": "1m" },
 *         "hotDays": 30, "warmDays": 335, "coldDays": 0 } ] }
 *   name        1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit); unique, ignoring case
 *               (it names directories, and some file systems ignore case)
 *   measurement any text, 1-256 characters
 *   where       optional tag equality filters; values non-empty strings ("device" filters the device tag)
 *   hotDays     >= 1: data younger than this stays hot
 *   warmDays    >= 0: 0 = no warm tier (straight to cold, or deleted)
 *   coldDays    >= 0, or null / "forever" = kept in cold forever; 0 = no cold tier
 * Day fields take a whole number of days or a duration with a unit: "30d", "2w", "1y" (= 365 d); the
 * duration must come to whole days. A day older than hotDays + warmDays + coldDays (coldDays finite)
 * is deleted everywhere. Two rules may not select overlapping data: rules on the same measurement
 * must each hold a `where` key the other also holds, with a different value.
 *
 * parsePolicy reports every problem at once in one ThingwireError (code validation_failed, each
 * problem with its path in `details`). Pure.
 */
import { ThingwireError } from '../errors';
import { isValidName, preview } from '../names';
import { durationMs, typeName } from '../time';
import type { PartitionSelector } from '../store/types';
import { DAY_MS, dayOf, dayStart, isDay } from './manifest';

export interface RetentionRule {
  name: string;
  measurement: string;
  where?: Record<string, string>;
  /** >= 1; data younger than this stays hot. */
  hotDays: number;
  /** >= 0; 0 = no warm tier (straight to cold, or delete). */
  warmDays: number;
  /** >= 0; null = keep in cold forever; 0 = no cold tier. */
  coldDays: number | null;
}

export interface RetentionPolicy {
  rules: RetentionRule[];
}

export type { PartitionSelector } from '../store/types';

export interface PolicyProblem {
  /** Where, e.g. "rules[2].hotDays". */
  path: string;
  message: string;
}

export const POLICY_LIMITS = {
  rules: 100,
  measurementLength: 256,
  whereKeys: 16,
  whereValueLength: 256,
  /** Any one day field: 100 years. */
  maxDays: 36_600,
} as const;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const RULE_KEYS = new Set(['name', 'measurement', 'where', 'hotDays', 'warmDays', 'coldDays']);
const YEARS_RE = /^(\d{1,3})\s*y$/;

/** The shipped policy (measurements of DEFAULT_POINT_SCHEMA; rollup levels as the window node writes them). */
export const DEFAULT_POLICY: RetentionPolicy = {
  rules: [
    { name: 'raw', measurement: 'telemetry', hotDays: 30, warmDays: 365, coldDays: null },
    { name: 'rollup-1m', measurement: 'rollup', where: { level: '1m' }, hotDays: 30, warmDays: 335, coldDays: 0 },
    { name: 'rollup-1h', measurement: 'rollup', where: { level: '1h' }, hotDays: 90, warmDays: 3560, coldDays: null },
    { name: 'rollup-1d', measurement: 'rollup', where: { level: '1d' }, hotDays: 3650, warmDays: 0, coldDays: null },
    { name: 'anomaly', measurement: 'anomaly', hotDays: 30, warmDays: 335, coldDays: 0 },
    { name: 'alerts', measurement: 'alerts', hotDays: 365, warmDays: 0, coldDays: null },
  ],
};

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Days from a day field: a whole number, or a duration string ("30d", "2w", "1y" = 365 d) that is a
 * whole number of days. Returns the days, or a message (without the field name).
 */
function toDays(v: unknown, min: number): number | { why: string } {
  const range = `a whole number >= ${min}`;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < min) return { why: `must be ${range} (got ${v})` };
    if (v > POLICY_LIMITS.maxDays) return { why: `must be at most ${POLICY_LIMITS.maxDays} days (got ${v})` };
    return v;
  }
  if (typeof v !== 'string') return { why: `must be ${range} of days or a duration such as "30d" or "1y" (got ${typeName(v)})` };
  const s = v.trim();
  let days: number | undefined;
  const y = YEARS_RE.exec(s);
  if (y) days = Number(y[1]) * 365;
  else if (/[a-z]$/i.test(s)) {
    // A bare number in a string would be ms to durationMs: a unit is required here.
    const ms = durationMs(s);
    if (ms !== undefined) {
      if (ms % DAY_MS !== 0) return { why: `must be a whole number of days (got ${preview(v)}, ${+(ms / DAY_MS).toFixed(3)} d)` };
      days = ms / DAY_MS;
    }
  }
  if (days === undefined) return { why: `must be ${range} of days or a duration such as "30d" or "1y" (got ${preview(v)})` };
  if (days < min) return { why: `must be ${range} of days (got ${preview(v)})` };
  if (days > POLICY_LIMITS.maxDays) return { why: `must be at most ${POLICY_LIMITS.maxDays} days (got ${preview(v)})` };
  return days;
}

/** Parses and checks a policy (an object, or its JSON text); throws a ThingwireError listing every problem. */
export function parsePolicy(json: unknown): RetentionPolicy {
  const problems: PolicyProblem[] = [];
  const add = (p: string, message: string): void => {
    if (problems.length < 200) problems.push({ path: p, message });
  };
  let v = json;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch (e) {
      return fail([{ path: 'policy', message: `retention policy is not valid JSON: ${(e as Error).message}` }]);
    }
  }
  if (Array.isArray(v)) v = { rules: v };
  if (!isObj(v) || !Array.isArray(v.rules)) {
    return fail([{ path: 'policy', message: `retention policy must be an object with a "rules" list (got ${preview(v)})` }]);
  }
  for (const k of Object.keys(v)) if (k !== 'rules') add(k, `retention policy: unknown key ${preview(k)}`);
  if (v.rules.length > POLICY_LIMITS.rules) return fail([{ path: 'rules', message: `retention policy: at most ${POLICY_LIMITS.rules} rules (got ${v.rules.length})` }]);

  const rules: RetentionRule[] = [];
  const seen = new Map<string, string>();
  v.rules.forEach((r: unknown, i: number) => {
    const at = `rules[${i}]`;
    if (!isObj(r)) {
      add(at, `${at}: a rule must be an object (got ${preview(r)})`);
      return;
    }
    const nameOk = typeof r.name === 'string' && NAME_RE.test(r.name);
    const label = nameOk ? `rule ${JSON.stringify(r.name)}` : at;
    const before = problems.length;
    if (!nameOk) {
      add(`${at}.name`, `${at}: name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (got ${preview(r.name)})`);
    } else {
      const lower = (r.name as string).toLowerCase();
      const other = seen.get(lower);
      if (other !== undefined) add(`${at}.name`, `${label}: name is used twice (${JSON.stringify(other)}; names are compared ignoring case)`);
      else seen.set(lower, r.name as string);
    }
    for (const k of Object.keys(r)) if (!RULE_KEYS.has(k)) add(`${at}.${k}`, `${label}: unknown key ${preview(k)}`);
    if (typeof r.measurement !== 'string' || r.measurement === '' || r.measurement.length > POLICY_LIMITS.measurementLength) {
      add(`${at}.measurement`, `${label}: measurement must be a string of 1-${POLICY_LIMITS.measurementLength} characters (got ${preview(r.measurement)})`);
    }
    let where: Record<string, string> | undefined;
    if (r.where !== undefined) {
      if (!isObj(r.where)) add(`${at}.where`, `${label}: where must be an object of tag = value (got ${preview(r.where)})`);
      else {
        const keys = Object.keys(r.where);
        if (keys.length > POLICY_LIMITS.whereKeys) add(`${at}.where`, `${label}: where has ${keys.length} tags, at most ${POLICY_LIMITS.whereKeys}`);
        where = {};
        for (const k of keys.sort()) {
          const val = r.where[k];
          if (!isValidName(k)) add(`${at}.where`, `${label}: where tag ${preview(k)} is not a valid tag name`);
          else if (typeof val !== 'string' || val === '' || val.length > POLICY_LIMITS.whereValueLength) {
            add(`${at}.where.${k}`, `${label}: where.${k} must be a non-empty string of at most ${POLICY_LIMITS.whereValueLength} characters (got ${preview(val)})`);
          } else where[k] = val;
        }
      }
    }
    const days = (field: 'hotDays' | 'warmDays' | 'coldDays', min: number): number | null => {
      const raw = r[field];
      if (raw === undefined) {
        add(`${at}.${field}`, `${label}: ${field} is missing${field === 'coldDays' ? ' (null or "forever" keeps cold data forever)' : ''}`);
        return 0;
      }
      if (field === 'coldDays' && (raw === null || raw === 'forever')) return null;
      const d = toDays(raw, min);
      if (typeof d === 'object') {
        add(`${at}.${field}`, `${label}: ${field} ${d.why}`);
        return 0;
      }
      return d;
    };
    const hotDays = days('hotDays', 1) as number;
    const warmDays = days('warmDays', 0) as number;
    const coldDays = days('coldDays', 0);
    if (problems.length > before) return;
    const rule: RetentionRule = { name: r.name as string, measurement: r.measurement as string, hotDays, warmDays, coldDays };
    if (where && Object.keys(where).length > 0) rule.where = where;
    rules.push(rule);
  });

  // Overlaps: two rules on one measurement are disjoint only when some tag is in both `where`s with different values.
  for (let i = 0; i < rules.length; i++) {
    for (let j = i + 1; j < rules.length; j++) {
      const a = rules[i];
      const b = rules[j];
      if (a.measurement !== b.measurement) continue;
      const wa = a.where ?? {};
      const wb = b.where ?? {};
      if (Object.keys(wa).some((k) => k in wb && wb[k] !== wa[k])) continue;
      add(
        `rules[${v.rules.findIndex((r: unknown) => isObj(r) && r.name === b.name)}]`,
        `rule ${JSON.stringify(b.name)}: selects data rule ${JSON.stringify(a.name)} also selects (measurement ${preview(a.measurement)}; give both a "where" tag with different values)`,
      );
    }
  }
  if (problems.length > 0) return fail(problems);
  return { rules };
}

function fail(problems: PolicyProblem[]): never {
  const text = problems.length === 1 ? problems[0].message : `retention policy has ${problems.length} problems: ${problems.map((p) => p.message).join('; ')}`;
  throw new ThingwireError('validation_failed', text, { problems });
}

/** "30 d", "1 y", "1 y 30 d" (a year is 365 days here, as in the policy). */
export function formatDays(days: number): string {
  if (days < 365) return `${days} d`;
  const y = Math.floor(days / 365);
  const d = days % 365;
  return d === 0 ? `${y} y` : `${y} y ${d} d`;
}

/**
 * A rule's timeline, ages counted from today: "hot 30 d > warm Parquet to 1 y > deleted",
 * "hot 30 d > warm Parquet to 1 y 30 d > cold archive forever". With `nowDay` (YYYY-MM-DD, the current
 * UTC day) each tier also says the oldest day it holds on that day: "hot 30 d (since 2026-10-25) > ...".
 */
export function describePolicy(rule: RetentionRule, nowDay?: string): string {
  if (nowDay !== undefined && !isDay(nowDay)) throw new ThingwireError('validation_failed', `describePolicy: nowDay must be a day (YYYY-MM-DD), got ${preview(nowDay)}`);
  const today = nowDay === undefined ? undefined : dayStart(nowDay);
  // The oldest day a tier holds: the day starting at the tier's boundary (today - age days).
  const since = (age: number): string => {
    if (today === undefined) return '';
    const t = today - age * DAY_MS;
    return t < 0 ? '' : ` (since ${dayOf(t)})`;
  };
  const before = (age: number): string => {
    if (today === undefined) return '';
    const t = today - age * DAY_MS;
    return t < 0 ? '' : ` (before ${dayOf(t)})`;
  };
  const parts = [`hot ${formatDays(rule.hotDays)}${since(rule.hotDays)}`];
  let age = rule.hotDays;
  if (rule.warmDays > 0) {
    age += rule.warmDays;
    parts.push(`warm Parquet to ${formatDays(age)}${since(age)}`);
  }
  if (rule.coldDays === null) parts.push('cold archive forever');
  else {
    if (rule.coldDays > 0) {
      age += rule.coldDays;
      parts.push(`cold archive to ${formatDays(age)}${since(age)}`);
    }
    parts.push(`deleted${before(age)}`);
  }
  return parts.join(' > ');
}

/** The selector of a rule's data in [start, end) ms (for the backends' partition operations). */
export function ruleSelector(rule: RetentionRule, start: number, end: number): PartitionSelector {
  if (!Number.isFinite(start) || !Number.isFinite(end) || start >= end) {
    throw new ThingwireError('validation_failed', `rule ${JSON.stringify(rule.name)}: selector range must be start < end (got ${start}, ${end})`);
  }
  const sel: PartitionSelector = { measurement: rule.measurement, start, end };
  if (rule.where && Object.keys(rule.where).length > 0) sel.where = { ...rule.where };
  return sel;
}
