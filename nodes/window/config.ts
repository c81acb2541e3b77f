/**
 * The saved configuration of a thingwire-window node (what the editor dialog writes) and the pure
 * functions that turn it into WindowEngineOptions and the wrapper's own settings. Every value is
 * checked; all problems are reported together in one WindowConfigError. No Node-RED here.
 */
import type { Reading } from '../lib/contract';
import { MAX_BATCH } from '../lib/contract';
import { isValidName, preview } from '../lib/names';
import { configBool, configList } from '../lib/red';
import { durationMs } from '../lib/time';
import { buildLevel, checkNesting, type LevelSpec, type SizeSpec, type WindowLevel } from './calendar';
import type { LatePolicy, WatermarkScope, WindowEngineOptions } from './engine';

export type OutputMode = 'batch' | 'each';

export interface WindowConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  /** Comma list of window sizes, level 0 first (e.g. "1m,1h,1d"). */
  levels?: string;
  /** Level-0 hop step ("" = tumbling). */
  step?: string;
  timeZone?: string;
  alignOffset?: string | number;
  lateness?: string | number;
  watermark?: string;
  latePolicy?: string;
  correctionHorizon?: string | number;
  idleTimeout?: string | number;
  evictAfter?: string | number;
  maxKeys?: number | string;
  /** Comma list of counter metric names. */
  counters?: string;
  percentiles?: boolean | string;
  booleans?: string;
  /** Group by this tag of the reading instead of the device ("" = by device). */
  groupTag?: string;
  tick?: string | number;
  persist?: boolean | string;
  snapshotInterval?: string | number;
  output?: string;
  catchRejects?: boolean | string;
  /** Drop redelivered readings (same device, metric and ts among the last 16, 64 after one out of order); absent in older flows: off. */
  dedupe?: boolean | string;
}

/** The dialog's defaults (window.html uses the same values). */
export const WINDOW_DEFAULTS = {
  levels: '1m,1h,1d',
  step: '',
  timeZone: 'UTC',
  alignOffset: '',
  lateness: '30s',
  watermark: 'key' as WatermarkScope,
  latePolicy: 'reopen' as LatePolicy,
  correctionHorizon: '1h',
  idleTimeout: '',
  evictAfter: '',
  maxKeys: 100_000,
  counters: '',
  percentiles: true,
  booleans: 'count' as const,
  groupTag: '',
  tick: '1s',
  persist: true,
  snapshotInterval: '60s',
  output: 'batch' as OutputMode,
  catchRejects: false,
};

/** The wrapper's settings (what is not the engine's). */
export interface NodeSettings {
  tickMs: number;
  persist: boolean;
  snapshotMs: number;
  output: OutputMode;
  catchRejects: boolean;
  /** The canonical IANA zone (for the status line). */
  timeZone: string;
}

/** Readings per message above which the whole message is rejected (payload_too_large): the contract's. */
export { MAX_BATCH };
/** Most window levels in one node. */
export const MAX_LEVELS = 8;
/** Upper bound of every duration: ten years of ms. */
export const MAX_DURATION = 10 * 366 * 86_400_000;
/** Bounds of the timers (setInterval takes at most 2^31 - 1 ms). */
export const TICK_MIN = 10;
export const TICK_MAX = 3_600_000;
export const SNAPSHOT_MIN = 100;
export const SNAPSHOT_MAX = 86_400_000;
export const MAX_KEYS_LIMIT = 100_000_000;

/** One or more problems in a node's configuration; the message lists them all. */
export class WindowConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('; '));
    this.name = 'WindowConfigError';
    this.problems = problems;
  }
}

export interface DurationBounds {
  min?: number;
  max?: number;
}

/**
 * A duration as the dialog holds it: "500ms", "30s", "5m", "1h", "1d", "1w", or a plain number
 * of ms (number or digits). Empty, undefined and null give `dflt`. The result must be a whole
 * number of ms within [min, max] (default [0, MAX_DURATION]). Throws a RangeError naming `what`.
 */
export function parseDuration(v: unknown, what: string, dflt: number, bounds: DurationBounds = {}): number {
  const min = bounds.min ?? 0;
  const max = bounds.max ?? MAX_DURATION;
  if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) return dflt;
  const ms = typeof v === 'number' ? v : (durationMs(v) ?? NaN);
  if (!Number.isFinite(ms)) throw new RangeError(`${what} must be a duration such as "500ms", "30s", "5m", "1h" or "1d" (or a number of ms), got ${preview(v)}`);
  const whole = Math.round(ms);
  if (Math.abs(ms - whole) > 1e-6) throw new RangeError(`${what} must be a whole number of ms, got ${preview(v)}`);
  if (whole < min || whole > max) throw new RangeError(`${what} must be between ${formatDuration(min)} and ${formatDuration(max)}, got ${preview(v)}`);
  return whole;
}

/** A ms duration in the largest unit that divides it ("90s", "1h", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  for (const [u, k] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % k === 0) return `${ms / k}${u}`;
  }
  return `${ms}ms`;
}

/**
 * An IANA time zone as the user wrote it, checked: ICU knows it (else a RangeError). The case is
 * fixed when ICU's name differs from it only in case ("europe/madrid" -> "Europe/Madrid"); other
 * spellings are kept, since ICU answers with legacy names (Asia/Kolkata -> Asia/Calcutta).
 */
export function canonicalTimeZone(v: unknown): string {
  if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) return 'UTC';
  if (typeof v !== 'string') throw new RangeError(`time zone must be an IANA name such as "UTC" or "Europe/Madrid", got ${preview(v)}`);
  const name = v.trim();
  // Offsets such as "+01:00" are not zones: their days do not follow a place's DST.
  if (!/^[A-Za-z]/.test(name)) throw new RangeError(`time zone must be an IANA name such as "UTC" or "Europe/Madrid", got ${preview(v)}`);
  try {
    const resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === name.toLowerCase() ? resolved : name;
  } catch {
    throw new RangeError(`unknown time zone ${preview(v)}: use an IANA name such as "UTC" or "Europe/Madrid"`);
  }
}

function enumOf<T extends string>(v: unknown, what: string, allowed: readonly T[], dflt: T): T {
  if (v === undefined || v === null || v === '') return dflt;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw new RangeError(`${what} must be ${allowed.map((a) => `'${a}'`).join(', ')}, got ${preview(v)}`);
}

/** A window size entry: digits are ms, anything else goes to parseSize as it is. */
function sizeSpec(s: string): SizeSpec {
  return /^\d+$/.test(s) ? Number(s) : s;
}

function maxKeysOf(v: unknown): number {
  if (v === undefined || v === null || v === '') return WINDOW_DEFAULTS.maxKeys;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_KEYS_LIMIT) throw new RangeError(`max keys must be a whole number from 1 to ${MAX_KEYS_LIMIT}, got ${preview(v)}`);
  return n;
}

/** groupBy for a tag: the tag's value, or an error naming the tag (the engine turns it into a reject). */
export function groupByTag(tag: string): (r: Reading) => string {
  return (r: Reading): string => {
    const tags = r.tags as unknown;
    if (tags !== null && typeof tags === 'object' && Object.prototype.hasOwnProperty.call(tags, tag)) {
      const v = (tags as Record<string, unknown>)[tag];
      if (typeof v === 'string' && v !== '') return v;
      throw new Error(`tag ${preview(tag)} must be a non-empty string to group by, got ${preview(v)}`);
    }
    throw new Error(`reading has no tag ${preview(tag)} to group by`);
  };
}

interface Parsed {
  engine: WindowEngineOptions;
  node: NodeSettings;
  engineProblems: string[];
  nodeProblems: string[];
}

function parse(config: WindowConfig): Parsed {
  const engineProblems: string[] = [];
  const nodeProblems: string[] = [];
  const c = (config ?? {}) as WindowConfig;
  function get<T>(problems: string[], f: () => T, dflt: T): T {
    try {
      return f();
    } catch (e) {
      problems.push((e as Error).message);
      return dflt;
    }
  }
  const E = engineProblems;

  let timeZone = 'UTC';
  let zoneOk = true;
  try {
    timeZone = canonicalTimeZone(c.timeZone);
  } catch (e) {
    zoneOk = false;
    E.push((e as Error).message);
  }
  let alignOffset = 0;
  let alignOk = true;
  try {
    alignOffset = parseDuration(c.alignOffset, 'align offset', 0);
  } catch (e) {
    alignOk = false;
    E.push((e as Error).message);
  }

  // Levels: parsed and checked the way the engine will build them, for messages that name the level.
  const levels: Array<SizeSpec | LevelSpec> = [];
  const levelText = c.levels === undefined || c.levels === null ? WINDOW_DEFAULTS.levels : String(c.levels);
  const sizes = configList(levelText);
  const stepText = typeof c.step === 'string' ? c.step.trim() : c.step === undefined || c.step === null ? '' : String(c.step);
  if (sizes.length === 0) E.push('levels must list at least one window size, e.g. "1m,1h,1d"');
  else if (sizes.length > MAX_LEVELS) E.push(`levels lists ${sizes.length} sizes; at most ${MAX_LEVELS}`);
  else {
    sizes.forEach((s, i) => levels.push(i === 0 && stepText !== '' ? { size: sizeSpec(s), step: sizeSpec(stepText) } : sizeSpec(s)));
    if (zoneOk && alignOk) {
      const built: WindowLevel[] = [];
      const lo = { timeZone, weekStart: 1, alignOffset };
      for (let i = 0; i < levels.length; i++) {
        try {
          built.push(buildLevel(levels[i], lo));
        } catch (e) {
          E.push(`level ${i + 1} (${preview(sizes[i])}${i === 0 && stepText !== '' ? `, step ${preview(stepText)}` : ''}): ${(e as Error).message}`);
        }
      }
      if (built.length === levels.length) {
        for (let i = 1; i < built.length; i++) {
          try {
            checkNesting(built[i - 1], built[i]);
          } catch (e) {
            E.push(`levels: ${(e as Error).message}`);
          }
        }
        const labels = built.map((l) => l.label);
        if (new Set(labels).size !== labels.length) E.push(`levels: each size may appear once, got ${preview(levelText)}`);
      }
    }
  }

  const lateness = get(E, () => parseDuration(c.lateness, 'lateness', 30_000), 30_000);
  const watermark = get(E, () => enumOf<WatermarkScope>(c.watermark, 'watermark', ['key', 'global'], WINDOW_DEFAULTS.watermark), WINDOW_DEFAULTS.watermark);
  const latePolicy = get(E, () => enumOf<LatePolicy>(c.latePolicy, 'late policy', ['drop', 'output', 'reopen'], WINDOW_DEFAULTS.latePolicy), WINDOW_DEFAULTS.latePolicy);
  const correctionHorizon = get(E, () => parseDuration(c.correctionHorizon, 'correction horizon', 3_600_000), 3_600_000);
  const idleTimeout = get(E, () => parseDuration(c.idleTimeout, 'idle timeout', 0), 0);
  const evictAfter = get(E, () => parseDuration(c.evictAfter, 'evict after', 0), 0);
  const maxKeys = get(E, () => maxKeysOf(c.maxKeys), WINDOW_DEFAULTS.maxKeys);
  const counters = typeof c.counters === 'string' ? configList(c.counters) : [];
  if (c.counters !== undefined && c.counters !== null && typeof c.counters !== 'string') E.push(`counters must be a comma-separated list of metric names, got ${preview(c.counters)}`);
  const percentiles = configBool(c.percentiles, WINDOW_DEFAULTS.percentiles);
  const booleans = get(E, () => enumOf<'count' | 'number'>(c.booleans, 'booleans', ['count', 'number'], WINDOW_DEFAULTS.booleans), WINDOW_DEFAULTS.booleans);
  const groupTag = typeof c.groupTag === 'string' ? c.groupTag.trim() : '';
  if (c.groupTag !== undefined && c.groupTag !== null && typeof c.groupTag !== 'string') E.push(`group tag must be a tag name, got ${preview(c.groupTag)}`);
  else if (groupTag !== '' && !isValidName(groupTag)) E.push(`group tag ${preview(groupTag)} is not a valid tag name (1-128 characters, no control characters, not starting with "_")`);

  const engine: WindowEngineOptions = {
    levels,
    timeZone,
    alignOffset,
    lateness,
    watermark,
    latePolicy,
    correctionHorizon,
    idleTimeout,
    evictAfter,
    maxKeys,
    counters,
    percentiles,
    booleans,
    dedupe: configBool(c.dedupe, false),
  };
  if (groupTag !== '') engine.groupBy = groupByTag(groupTag);

  const N = nodeProblems;
  const node: NodeSettings = {
    tickMs: get(N, () => parseDuration(c.tick, 'tick', 1000, { min: TICK_MIN, max: TICK_MAX }), 1000),
    persist: configBool(c.persist, WINDOW_DEFAULTS.persist),
    snapshotMs: get(N, () => parseDuration(c.snapshotInterval, 'snapshot interval', 60_000, { min: SNAPSHOT_MIN, max: SNAPSHOT_MAX }), 60_000),
    output: get(N, () => enumOf<OutputMode>(c.output, 'output', ['batch', 'each'], WINDOW_DEFAULTS.output), WINDOW_DEFAULTS.output),
    catchRejects: configBool(c.catchRejects, WINDOW_DEFAULTS.catchRejects),
    timeZone,
  };
  return { engine, node, engineProblems, nodeProblems };
}

/** The engine options a dialog config asks for; throws a WindowConfigError listing every problem. */
export function engineOptions(config: WindowConfig): WindowEngineOptions {
  const p = parse(config);
  if (p.engineProblems.length > 0) throw new WindowConfigError(p.engineProblems);
  return p.engine;
}

/** Engine options and the wrapper's settings; throws a WindowConfigError listing every problem. */
export function parseWindowConfig(config: WindowConfig): { engine: WindowEngineOptions; node: NodeSettings } {
  const p = parse(config);
  const problems = [...p.engineProblems, ...p.nodeProblems];
  if (problems.length > 0) throw new WindowConfigError(problems);
  return { engine: p.engine, node: p.node };
}
