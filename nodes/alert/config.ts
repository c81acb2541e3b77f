/**
 * The saved configuration of a thingwire-alert node (what the editor dialog writes) and the pure
 * function that checks it and compiles the rules (./rules). Every problem is reported, with the
 * field (or the rule path) it is in; the node shows them on deploy and refuses input until they
 * are fixed. No Node-RED here.
 */
import { preview } from '../lib/names';
import { configBool } from '../lib/red';
import { parseDurationMs, parseRules, type CompiledRule } from './rules';

export interface AlertConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  /** JSON array of rules (see rules.ts). Default "[]". */
  rules?: string;
  /** Most alert keys held. Default 100000. */
  maxKeys?: number | string;
  persist?: boolean | string;
  /** Duration after a change before the state is saved ("10s"; "0" = only on close). */
  snapshotInterval?: string | number;
  catchRejects?: boolean | string;
}

/** The checked settings. */
export interface AlertSettings {
  rules: CompiledRule[];
  maxKeys: number;
  persist: boolean;
  /** ms; 0 = saved on close only. */
  snapshotInterval: number;
  catchRejects: boolean;
}

/** The dialog's defaults (alert.html uses the same values). */
export const ALERT_DEFAULTS = {
  rules: '[]',
  maxKeys: 100_000,
  persist: true,
  snapshotInterval: '10s',
  catchRejects: false,
} as const;

export const ALERT_LIMITS = {
  maxKeys: 10_000_000,
  minSnapshotInterval: 100,
} as const;

/** Every problem found in a config, one sentence each. */
export class AlertConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.name = 'AlertConfigError';
    this.problems = problems;
  }
}

function show(v: unknown): string {
  return typeof v === 'number' || typeof v === 'boolean' || v === undefined || v === null ? String(v) : preview(v);
}

/** Checks a whole config; throws an AlertConfigError listing every problem (rule problems with their path). */
export function parseAlertConfig(c: AlertConfig): AlertSettings {
  const problems: string[] = [];
  if (c.v !== undefined && c.v !== null && Number(c.v) !== 1) problems.push(`config version ${show(c.v)} is not supported (this node reads version 1)`);

  let rules: CompiledRule[] = [];
  if (c.rules !== undefined && c.rules !== null && typeof c.rules !== 'string') problems.push(`rules must be JSON text, got ${show(c.rules)}`);
  else {
    const p = parseRules(c.rules ?? ALERT_DEFAULTS.rules);
    if (p.ok) rules = p.rules;
    else for (const x of p.problems) problems.push(`${x.path}: ${x.message}`);
  }

  let maxKeys: number = ALERT_DEFAULTS.maxKeys;
  if (c.maxKeys !== undefined && c.maxKeys !== null && c.maxKeys !== '') {
    const n = typeof c.maxKeys === 'number' ? c.maxKeys : typeof c.maxKeys === 'string' && c.maxKeys.trim() !== '' ? Number(c.maxKeys.trim()) : NaN;
    if (Number.isInteger(n) && n >= 1 && n <= ALERT_LIMITS.maxKeys) maxKeys = n;
    else problems.push(`maxKeys must be a whole number from 1 to ${ALERT_LIMITS.maxKeys}, got ${show(c.maxKeys)}`);
  }

  let snapshotInterval = parseDurationMs(ALERT_DEFAULTS.snapshotInterval)!;
  if (c.snapshotInterval !== undefined && c.snapshotInterval !== null && c.snapshotInterval !== '') {
    const d = parseDurationMs(c.snapshotInterval);
    if (d === undefined || (d > 0 && d < ALERT_LIMITS.minSnapshotInterval)) {
      problems.push(`snapshotInterval must be a duration such as "10s", "1m" (at least 100ms; "0" = only on close), got ${show(c.snapshotInterval)}`);
    } else snapshotInterval = d;
  }

  if (problems.length > 0) throw new AlertConfigError(problems);
  return {
    rules,
    maxKeys,
    persist: configBool(c.persist, ALERT_DEFAULTS.persist),
    snapshotInterval,
    catchRejects: configBool(c.catchRejects, ALERT_DEFAULTS.catchRejects),
  };
}
