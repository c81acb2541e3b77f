/**
 * Alert rules for the thingwire-alert engine (engine.ts): the JSON syntax, a parser that reports
 * every problem at once (with a path to each), and the compiled form the engine evaluates. Pure.
 *
 * A rule (JSON):
 *   {
 *     "id": "hot",                       required; letters, digits and ._:- (used in keys and topics)
 *     "name": "Too hot",                 optional, for people
 *     "devices": ["pump-*"],             optional device ids or globs (* and ?); default every device
 *     "tags": { "site": "madrid" },      optional: only readings with these tags
 *     "metric": "temperature",           optional name, glob or list: one alert key per matching metric;
 *                                        conditions without their own metric read this one
 *     "key": "{device}/{metric}/{rule}", optional key template: {device} {metric} {rule} {tags.NAME};
 *                                        default "{device}/{metric}/{rule}" ("{device}/{rule}" without "metric")
 *     "levels": [ { "severity": "critical", "when": COND, "clear": COND, "for": "30s", "samples": 3 }, ... ],
 *       or one level inline: "severity", "when", "clear", "for", "samples" on the rule itself
 *     "renotify": "15m",                 optional: repeat the notification while firing and unacknowledged
 *     "flap": { "changes": 6, "window": "10m", "stable": "10m" },  optional flap detection
 *     "message": "text",                 optional, copied into events
 *     "enabled": true
 *   }
 *
 * A condition (COND):
 *   { "above": 80 } / { "below": 5 } / { "inside": [10, 20] } / { "outside": [10, 20] } / { "equals": true }
 *       the value of the rule's metric; add "metric": "humidity" to read another one
 *   { "rate": true, "per": "min", "over": "5m", "above": 2 }
 *       rate of change (per "s", "min" or "h"; default "s") of the rule's metric (or "rate": "name"),
 *       over the last two values, or over a window ("over") of event time
 *   { "anomaly": true, "above": 0.8 }   the anomaly node's score for the metric (AnomalyScore);
 *   { "anomaly": true }                 without a comparison: the metric is anomalous (score flag or the
 *                                       anomaly node's "anomaly" alert, whichever came last)
 *   { "maintenance": true }             the anomaly node's maintenance alert for the metric is on;
 *   { "maintenance": true, "above": 0.5 } with a comparison: the failure probability
 *   { "offline": true }                 the device is offline (registry liveness; deadman)
 *   { "all": [COND, ...] } / { "any": [COND, ...] } / { "not": COND }
 *   Numeric comparisons take an optional "hysteresis": h. A level without "clear" clears when its
 *   "when" no longer holds with every comparison widened by its hysteresis (above 80, hysteresis 2
 *   clears at 78 or below; inside [a, b] clears outside [a - h, b + h]; outside [a, b] clears inside
 *   [a + h, b - h]; under "not" the other way round). A value never seen makes a comparison false.
 *
 * Levels are ordered by severity (critical > major > minor > warning > info); each severity once.
 */
import type { MetricValue, Severity } from '../lib/contract';
import { isValidDeviceId, isValidName, preview } from '../lib/names';
import { durationMs } from '../lib/time';

export const SEVERITIES: readonly Severity[] = ['critical', 'major', 'minor', 'warning', 'info'];

export const RULE_LIMITS = {
  rules: 1000,
  /** Conditions (leaves and operators) in one level's when + clear. */
  nodes: 64,
  depth: 8,
  /** Samples held for one windowed rate. */
  rateSamples: 17,
  maxDuration: 366 * 86_400_000,
  maxSamples: 1_000_000,
  maxFlapChanges: 100,
  patterns: 100,
  templateLength: 256,
  messageLength: 1024,
} as const;

export interface RuleProblem {
  /** Where, e.g. "rules[2].levels[0].when.all[1].above". */
  path: string;
  message: string;
}

/** Fact kinds a condition reads; one slot per (kind, metric, rate options) in a rule. */
export type SlotKind = 'value' | 'rate' | 'score' | 'anomalous' | 'maint' | 'prob' | 'offline';

export interface Slot {
  kind: SlotKind;
  /** The metric, or null for the key's metric (the rule-level "metric"); null for offline. */
  metric: string | null;
  /** rate: ms of the unit (1000, 60000, 3600000). */
  per: number;
  /** rate: window of event time in ms; 0 = the last two values. */
  over: number;
}

export type Fact = MetricValue | null;
export type Cond = (f: readonly Fact[]) => boolean;

export interface CompiledLevel {
  severity: Severity;
  /** 0 = critical .. 4 = info. */
  rank: number;
  when: Cond;
  clear: Cond;
  /** ms the raise condition must hold before firing (0 = none). */
  forMs: number;
  /** Consecutive evaluations it must hold for (1 = the first). */
  samples: number;
  /** Human-readable conditions for events ("temperature > 90"). */
  whenText: string;
  clearText: string;
}

export type TemplatePart = string | { v: 'device' | 'metric' | 'rule' } | { tag: string };

export interface CompiledRule {
  id: string;
  name: string;
  message?: string;
  /** JSON of the rule as given: a rule whose source changes starts afresh across a restore. */
  source: string;
  /** Device filter (null = every device). */
  devices: ((d: string) => boolean) | null;
  tags: ReadonlyArray<[string, string]>;
  /** Key metric selector: null = the rule has no key metric; exact names and/or a glob test. */
  metricNames: ReadonlySet<string> | null;
  metricTest: ((m: string) => boolean) | null;
  keyParts: readonly TemplatePart[];
  /** The default template (fast path in the engine). */
  defaultKey: boolean;
  /** Most severe first. */
  levels: readonly CompiledLevel[];
  slots: readonly Slot[];
  /** Index of the slot whose fact is the event's `value` (-1 none). */
  primary: number;
  /** Slot indexes whose kind is fed by readings, by anomaly scores/events, by liveness. */
  readingSlots: readonly number[];
  anomalySlots: readonly number[];
  livenessSlots: readonly number[];
  renotifyMs: number;
  flap: { changes: number; windowMs: number; stableMs: number } | null;
}

export type ParseResult = { ok: true; rules: CompiledRule[] } | { ok: false; problems: RuleProblem[] };

// ---- small parsers -----------------------------------------------------------------------------

const PER_MS: Record<string, number> = { s: 1000, second: 1000, min: 60_000, minute: 60_000, m: 60_000, h: 3_600_000, hour: 3_600_000 };

/** "30s", "5m", "1h", "2d", "250ms" or a number of ms -> ms; undefined when it is none of those. */
export function parseDurationMs(v: unknown): number | undefined {
  const ms = durationMs(v);
  return ms === undefined || ms > RULE_LIMITS.maxDuration ? undefined : Math.round(ms);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function own(o: Record<string, unknown>, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** A glob (* any run, ? one character) as a test; exact strings compare directly. */
export function globTest(pattern: string): (s: string) => boolean {
  if (!/[*?]/.test(pattern)) return (s) => s === pattern;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*+/g, '.*').replace(/\?/g, '.')}$`, 's');
  return (s) => re.test(s);
}

class Ctx {
  readonly problems: RuleProblem[] = [];
  add(path: string, message: string): void {
    if (this.problems.length < 200) this.problems.push({ path, message });
  }
}

function duration(ctx: Ctx, path: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  const ms = parseDurationMs(v);
  if (ms === undefined) {
    ctx.add(path, `must be a duration such as "30s", "5m", "1h" or a number of ms (0 to 366 days), got ${preview(v)}`);
    return dflt;
  }
  return ms;
}

function intIn(ctx: Ctx, path: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    ctx.add(path, `must be a whole number from ${min} to ${max}, got ${preview(v)}`);
    return dflt;
  }
  return v;
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

// ---- conditions --------------------------------------------------------------------------------

type CmpOp = 'above' | 'below' | 'inside' | 'outside' | 'equals';
const CMP_OPS: readonly CmpOp[] = ['above', 'below', 'inside', 'outside', 'equals'];
const SOURCES = ['rate', 'anomaly', 'maintenance', 'offline', 'all', 'any', 'not'] as const;

/** A parsed condition tree (before compiling against slots). */
type Node =
  | { t: 'and' | 'or'; c: Node[] }
  | { t: 'not'; c: Node }
  | { t: 'leaf'; slot: Slot; op: CmpOp | 'flag'; x: number; y: number; eq: MetricValue; h: number; label: string };

const LEAF_KEYS = new Set(['metric', 'rate', 'per', 'over', 'anomaly', 'maintenance', 'offline', 'hysteresis', ...CMP_OPS]);

interface CondCtx {
  ctx: Ctx;
  /** The rule has a key metric. */
  keyMetric: boolean;
  nodes: number;
}

function metricRef(cc: CondCtx, path: string, v: unknown, what: string): string | null | undefined {
  if (v === true) {
    if (!cc.keyMetric) {
      cc.ctx.add(path, `${what}: true reads the rule's "metric", but the rule has none; name the metric instead`);
      return undefined;
    }
    return null;
  }
  if (!isValidName(v)) {
    cc.ctx.add(path, `must be true (the rule's metric) or a metric name (1..128 characters, no control characters, not starting with _), got ${preview(v)}`);
    return undefined;
  }
  return v;
}

function parseCond(cc: CondCtx, path: string, v: unknown, depth: number): Node | undefined {
  const { ctx } = cc;
  if (++cc.nodes > RULE_LIMITS.nodes) {
    if (cc.nodes === RULE_LIMITS.nodes + 1) ctx.add(path, `too many conditions (at most ${RULE_LIMITS.nodes} per level)`);
    return undefined;
  }
  if (depth > RULE_LIMITS.depth) {
    ctx.add(path, `conditions nest too deep (at most ${RULE_LIMITS.depth} levels)`);
    return undefined;
  }
  if (!isObj(v)) {
    ctx.add(path, `a condition must be an object such as {"above": 80}, {"any": [...]}, {"offline": true}; got ${preview(v)}`);
    return undefined;
  }
  const sources = SOURCES.filter((k) => own(v, k));
  if (sources.length > 1) {
    ctx.add(path, `a condition has one of ${SOURCES.join(', ')}; got ${sources.join(' and ')} (combine them with "all" or "any")`);
    return undefined;
  }
  const src = sources[0];
  if (src === 'all' || src === 'any') {
    const list = v[src];
    for (const k of Object.keys(v)) if (k !== src) ctx.add(`${path}.${k}`, `unexpected beside "${src}"`);
    if (!Array.isArray(list) || list.length === 0) {
      ctx.add(`${path}.${src}`, `must be a non-empty array of conditions, got ${preview(list)}`);
      return undefined;
    }
    if (list.length > RULE_LIMITS.nodes) {
      ctx.add(`${path}.${src}`, `at most ${RULE_LIMITS.nodes} conditions`);
      return undefined;
    }
    const c: Node[] = [];
    let okAll = true;
    list.forEach((x, i) => {
      const n = parseCond(cc, `${path}.${src}[${i}]`, x, depth + 1);
      if (n) c.push(n);
      else okAll = false;
    });
    return okAll ? { t: src === 'all' ? 'and' : 'or', c } : undefined;
  }
  if (src === 'not') {
    for (const k of Object.keys(v)) if (k !== 'not') ctx.add(`${path}.${k}`, 'unexpected beside "not"');
    const n = parseCond(cc, `${path}.not`, v.not, depth + 1);
    return n ? { t: 'not', c: n } : undefined;
  }
  let bad = false;
  for (const k of Object.keys(v)) {
    if (!LEAF_KEYS.has(k)) {
      ctx.add(`${path}.${k}`, `unknown condition field (expected ${[...LEAF_KEYS].join(', ')}, all, any, not)`);
      bad = true;
    }
  }
  const ops = CMP_OPS.filter((k) => own(v, k));
  if (ops.length > 1) {
    ctx.add(path, `one comparison per condition; got ${ops.join(' and ')} (use inside/outside for a band, or "all")`);
    return undefined;
  }
  const op = ops[0] as CmpOp | undefined;
  let slot: Slot;
  let label: string;
  const onlyFor = (keys: string[], kind: string): void => {
    for (const k of keys) {
      if (own(v, k)) {
        ctx.add(`${path}.${k}`, `not used by a ${kind} condition`);
        bad = true;
      }
    }
  };
  if (src === 'offline') {
    if (v.offline !== true) {
      ctx.add(`${path}.offline`, `must be true (use {"not": {"offline": true}} for online), got ${preview(v.offline)}`);
      return undefined;
    }
    onlyFor(['metric', 'per', 'over', 'hysteresis', ...CMP_OPS], 'offline');
    if (cc.keyMetric) {
      ctx.add(`${path}.offline`, 'a deadman condition is per device: use it in a rule without "metric"');
      return undefined;
    }
    if (bad) return undefined;
    return { t: 'leaf', slot: { kind: 'offline', metric: null, per: 0, over: 0 }, op: 'flag', x: 0, y: 0, eq: 0, h: 0, label: 'offline' };
  }
  if (src === 'anomaly' || src === 'maintenance') {
    const m = metricRef(cc, `${path}.${src}`, v[src], src);
    onlyFor(['metric', 'per', 'over'], src);
    if (m === undefined) return undefined;
    const name = m ?? '{metric}';
    if (op === undefined) {
      if (own(v, 'hysteresis')) ctx.add(`${path}.hysteresis`, 'needs a comparison');
      slot = { kind: src === 'anomaly' ? 'anomalous' : 'maint', metric: m, per: 0, over: 0 };
      if (bad) return undefined;
      return { t: 'leaf', slot, op: 'flag', x: 0, y: 0, eq: 0, h: 0, label: src === 'anomaly' ? `${name} anomalous` : `${name} maintenance due` };
    }
    slot = { kind: src === 'anomaly' ? 'score' : 'prob', metric: m, per: 0, over: 0 };
    label = src === 'anomaly' ? `anomaly(${name})` : `failure probability(${name})`;
  } else if (src === 'rate') {
    const m = metricRef(cc, `${path}.rate`, v.rate, 'rate');
    onlyFor(['metric'], 'rate');
    let per = 1000;
    if (own(v, 'per')) {
      const p = typeof v.per === 'string' ? PER_MS[v.per] : undefined;
      if (p === undefined) {
        ctx.add(`${path}.per`, `must be "s", "min" or "h", got ${preview(v.per)}`);
        bad = true;
      } else per = p;
    }
    const over = duration(ctx, `${path}.over`, v.over, 0);
    if (m === undefined) return undefined;
    slot = { kind: 'rate', metric: m, per, over };
    const unit = per === 1000 ? 's' : per === 60_000 ? 'min' : 'h';
    label = `rate(${m ?? '{metric}'})/${unit}${over > 0 ? ` over ${over}ms` : ''}`;
  } else {
    let m: string | null;
    if (own(v, 'metric')) {
      if (!isValidName(v.metric)) {
        ctx.add(`${path}.metric`, `must be a metric name (1..128 characters, no control characters, not starting with _), got ${preview(v.metric)}`);
        return undefined;
      }
      m = v.metric;
    } else if (cc.keyMetric) {
      m = null;
    } else {
      ctx.add(path, 'needs "metric" (the rule has no "metric" of its own)');
      return undefined;
    }
    onlyFor(['per', 'over'], 'value');
    slot = { kind: 'value', metric: m, per: 0, over: 0 };
    label = m ?? '{metric}';
  }
  if (op === undefined) {
    ctx.add(path, `needs a comparison: ${CMP_OPS.join(', ')}`);
    return undefined;
  }
  let x = 0;
  let y = 0;
  let eq: MetricValue = 0;
  const a = v[op];
  if (op === 'above' || op === 'below') {
    if (!finite(a)) {
      ctx.add(`${path}.${op}`, `must be a finite number, got ${preview(a)}`);
      return undefined;
    }
    x = a;
  } else if (op === 'inside' || op === 'outside') {
    if (!Array.isArray(a) || a.length !== 2 || !finite(a[0]) || !finite(a[1]) || a[0] > a[1]) {
      ctx.add(`${path}.${op}`, `must be [low, high] with finite numbers, low <= high, got ${preview(a)}`);
      return undefined;
    }
    x = a[0];
    y = a[1];
  } else {
    if (slot.kind !== 'value' || !(typeof a === 'boolean' || typeof a === 'string' || finite(a))) {
      ctx.add(`${path}.equals`, slot.kind !== 'value' ? 'equals compares a metric value only' : `must be a number, boolean or string, got ${preview(a)}`);
      return undefined;
    }
    if (typeof a === 'string' && a.length > 1024) {
      ctx.add(`${path}.equals`, 'at most 1024 characters');
      return undefined;
    }
    eq = a;
  }
  let h = 0;
  if (own(v, 'hysteresis')) {
    if (op === 'equals' || !finite(v.hysteresis) || v.hysteresis < 0) {
      ctx.add(`${path}.hysteresis`, op === 'equals' ? 'needs a numeric comparison' : `must be a number >= 0, got ${preview(v.hysteresis)}`);
      return undefined;
    }
    h = v.hysteresis;
    if (op === 'outside' && y - x <= 2 * h && h > 0) {
      ctx.add(`${path}.hysteresis`, `an "outside" band [${x}, ${y}] is too narrow for hysteresis ${h} (it would never clear)`);
      return undefined;
    }
  }
  if (bad) return undefined;
  return { t: 'leaf', slot, op, x, y, eq, h, label };
}

// ---- compiling ---------------------------------------------------------------------------------

function slotIndex(slots: Slot[], s: Slot): number {
  for (let i = 0; i < slots.length; i++) {
    const o = slots[i];
    if (o.kind === s.kind && o.metric === s.metric && o.per === s.per && o.over === s.over) return i;
  }
  slots.push(s);
  return slots.length - 1;
}

type Leaf = Extract<Node, { t: 'leaf' }>;

/** sign: +1 widens the comparison by its hysteresis, -1 narrows it, 0 leaves it. A missing or non-numeric fact fails a numeric comparison. */
function compileLeaf(n: Leaf, slots: Slot[], sign: number): { f: Cond; text: string } {
  const i = slotIndex(slots, n.slot);
  const d = n.h * sign;
  switch (n.op) {
    case 'flag':
      return { f: (f) => f[i] === true, text: n.label };
    case 'above': {
      const x = n.x - d;
      return {
        f: (f) => {
          const v = f[i];
          return typeof v === 'number' && v > x;
        },
        text: `${n.label} > ${x}`,
      };
    }
    case 'below': {
      const x = n.x + d;
      return {
        f: (f) => {
          const v = f[i];
          return typeof v === 'number' && v < x;
        },
        text: `${n.label} < ${x}`,
      };
    }
    case 'inside': {
      const lo = n.x - d;
      const hi = n.y + d;
      return {
        f: (f) => {
          const v = f[i];
          return typeof v === 'number' && v >= lo && v <= hi;
        },
        text: `${n.label} in [${lo}, ${hi}]`,
      };
    }
    case 'outside': {
      const lo = n.x + d;
      const hi = n.y - d;
      return {
        f: (f) => {
          const v = f[i];
          return typeof v === 'number' && (v < lo || v > hi);
        },
        text: `${n.label} outside [${lo}, ${hi}]`,
      };
    }
    default: {
      const eq = n.eq;
      return { f: (f) => f[i] === eq, text: `${n.label} = ${JSON.stringify(eq)}` };
    }
  }
}

function compileCond(n: Node, slots: Slot[], sign: number): { f: Cond; text: string } {
  if (n.t === 'leaf') return compileLeaf(n, slots, sign);
  if (n.t === 'not') {
    const c = compileCond(n.c, slots, -sign);
    const g = c.f;
    return { f: (f) => !g(f), text: `not (${c.text})` };
  }
  const cs = n.c.map((x) => compileCond(x, slots, sign));
  const fs = cs.map((x) => x.f);
  const text = cs.map((x) => (cs.length > 1 ? `(${x.text})` : x.text)).join(n.t === 'and' ? ' and ' : ' or ');
  if (fs.length === 1) return { f: fs[0], text };
  const and = n.t === 'and';
  if (fs.length === 2) {
    const [a, b] = fs;
    return { f: and ? (f) => a(f) && b(f) : (f) => a(f) || b(f), text };
  }
  return {
    f: (f) => {
      for (let k = 0; k < fs.length; k++) if (fs[k](f) !== and) return !and;
      return and;
    },
    text,
  };
}

function firstSlot(n: Node): Slot | undefined {
  if (n.t === 'leaf') return n.slot;
  if (n.t === 'not') return firstSlot(n.c);
  for (const c of n.c) {
    const s = firstSlot(c);
    if (s) return s;
  }
  return undefined;
}

// ---- rules -------------------------------------------------------------------------------------

const RULE_KEYS = new Set(['id', 'name', 'devices', 'tags', 'metric', 'key', 'levels', 'severity', 'when', 'clear', 'for', 'samples', 'renotify', 'flap', 'message', 'enabled']);
const LEVEL_KEYS = new Set(['severity', 'when', 'clear', 'for', 'samples']);
const TEMPLATE_RE = /\{([^{}]*)\}/g;

function patterns(ctx: Ctx, path: string, v: unknown, check: (s: string) => boolean, what: string): string[] | undefined {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || list.length > RULE_LIMITS.patterns) {
    ctx.add(path, `must be ${what} or a list of 1..${RULE_LIMITS.patterns} of them, got ${preview(v)}`);
    return undefined;
  }
  let ok = true;
  list.forEach((p, i) => {
    if (typeof p !== 'string' || p.length === 0 || p.length > 128 || !check(p)) {
      ctx.add(Array.isArray(v) ? `${path}[${i}]` : path, `must be ${what} (* and ? allowed), got ${preview(p)}`);
      ok = false;
    }
  });
  return ok ? (list as string[]) : undefined;
}

function matcher(list: string[]): { names: Set<string>; test: ((s: string) => boolean) | null } {
  const names = new Set<string>();
  const tests: Array<(s: string) => boolean> = [];
  for (const p of list) {
    if (/[*?]/.test(p)) tests.push(globTest(p));
    else names.add(p);
  }
  return { names, test: tests.length === 0 ? null : tests.length === 1 ? tests[0] : (s) => tests.some((t) => t(s)) };
}

function parseTemplate(ctx: Ctx, path: string, v: unknown, keyMetric: boolean): TemplatePart[] | undefined {
  if (typeof v !== 'string' || v.length === 0 || v.length > RULE_LIMITS.templateLength) {
    ctx.add(path, `must be a template of 1..${RULE_LIMITS.templateLength} characters such as "{device}/{metric}" or "{tags.site}", got ${preview(v)}`);
    return undefined;
  }
  const parts: TemplatePart[] = [];
  let last = 0;
  let ok = true;
  let vars = 0;
  for (const m of v.matchAll(TEMPLATE_RE)) {
    if (m.index > last) parts.push(v.slice(last, m.index));
    last = m.index + m[0].length;
    const name = m[1].trim();
    vars++;
    if (name === 'device' || name === 'rule') parts.push({ v: name });
    else if (name === 'metric') {
      if (!keyMetric) {
        ctx.add(path, '{metric} needs a rule-level "metric"');
        ok = false;
      }
      parts.push({ v: 'metric' });
    } else if (name.startsWith('tags.') && isValidName(name.slice(5))) parts.push({ tag: name.slice(5) });
    else {
      ctx.add(path, `unknown placeholder {${name.slice(0, 40)}} (use {device}, {metric}, {rule} or {tags.NAME})`);
      ok = false;
    }
  }
  if (last < v.length) parts.push(v.slice(last));
  if (vars === 0) {
    ctx.add(path, 'needs at least one placeholder ({device}, {metric}, {rule} or {tags.NAME})');
    ok = false;
  }
  return ok ? parts : undefined;
}

interface LevelDraft {
  severity: Severity;
  when: Node;
  clear: Node | null;
  forMs: number;
  samples: number;
}

function parseLevel(ctx: Ctx, path: string, v: Record<string, unknown>, keyMetric: boolean, inline: boolean): LevelDraft | undefined {
  if (!inline) for (const k of Object.keys(v)) if (!LEVEL_KEYS.has(k)) ctx.add(`${path}.${k}`, `unknown level field (expected ${[...LEVEL_KEYS].join(', ')})`);
  const sev = v.severity ?? (inline ? 'warning' : undefined);
  let ok = true;
  if (!SEVERITIES.includes(sev as Severity)) {
    ctx.add(`${path}.severity`, `must be one of ${SEVERITIES.join(', ')}, got ${preview(sev)}`);
    ok = false;
  }
  const cc: CondCtx = { ctx, keyMetric, nodes: 0 };
  if (!own(v, 'when')) {
    ctx.add(`${path}.when`, 'is required: the condition that raises the alert');
    ok = false;
  }
  const when = own(v, 'when') ? parseCond(cc, `${path}.when`, v.when, 1) : undefined;
  const clear = own(v, 'clear') ? parseCond(cc, `${path}.clear`, v.clear, 1) : null;
  const forMs = duration(ctx, `${path}.for`, v.for, 0);
  const samples = intIn(ctx, `${path}.samples`, v.samples, 1, 1, RULE_LIMITS.maxSamples);
  if (!ok || when === undefined || clear === undefined) return undefined;
  return { severity: sev as Severity, when, clear, forMs, samples };
}

function parseRule(ctx: Ctx, path: string, v: unknown, ids: Set<string>): CompiledRule | null | undefined {
  if (!isObj(v)) {
    ctx.add(path, `a rule must be an object with "id" and "when" or "levels", got ${preview(v)}`);
    return undefined;
  }
  const before = ctx.problems.length;
  for (const k of Object.keys(v)) if (!RULE_KEYS.has(k)) ctx.add(`${path}.${k}`, `unknown rule field (expected ${[...RULE_KEYS].join(', ')})`);
  const id = v.id;
  if (!isValidDeviceId(id)) ctx.add(`${path}.id`, `must be 1..128 letters, digits and ._:- starting with a letter or digit, got ${preview(id)}`);
  else if (ids.has(id)) ctx.add(`${path}.id`, `duplicate rule id ${preview(id)}`);
  else ids.add(id);
  if (v.name !== undefined && (typeof v.name !== 'string' || v.name.length > 256)) ctx.add(`${path}.name`, 'must be text of at most 256 characters');
  if (v.message !== undefined && (typeof v.message !== 'string' || v.message.length > RULE_LIMITS.messageLength)) ctx.add(`${path}.message`, `must be text of at most ${RULE_LIMITS.messageLength} characters`);
  if (v.enabled !== undefined && typeof v.enabled !== 'boolean') ctx.add(`${path}.enabled`, `must be true or false, got ${preview(v.enabled)}`);
  const devices = v.devices === undefined ? null : patterns(ctx, `${path}.devices`, v.devices, (p) => isValidDeviceId(p.replace(/[*?]/g, 'a')), 'a device id or glob');
  const tags: Array<[string, string]> = [];
  if (v.tags !== undefined) {
    if (!isObj(v.tags)) ctx.add(`${path}.tags`, `must be an object of tag name to value, got ${preview(v.tags)}`);
    else
      for (const [k, t] of Object.entries(v.tags)) {
        if (!isValidName(k) || typeof t !== 'string' || t.length > 1024) ctx.add(`${path}.tags.${k.slice(0, 40)}`, 'tag names are 1..128 characters (not starting with _); values are text');
        else tags.push([k, t]);
      }
  }
  const keyMetric = v.metric !== undefined;
  const metrics = keyMetric ? patterns(ctx, `${path}.metric`, v.metric, (p) => isValidName(p), 'a metric name or glob') : null;
  const keyParts = v.key === undefined ? undefined : parseTemplate(ctx, `${path}.key`, v.key, keyMetric);
  const levels: LevelDraft[] = [];
  const inlineKeys = ['severity', 'when', 'clear', 'for', 'samples'].filter((k) => own(v, k));
  if (own(v, 'levels')) {
    if (inlineKeys.length > 0) ctx.add(path, `give either "levels" or ${inlineKeys.map((k) => `"${k}"`).join(', ')} on the rule, not both`);
    if (!Array.isArray(v.levels) || v.levels.length === 0 || v.levels.length > SEVERITIES.length) {
      ctx.add(`${path}.levels`, `must be a list of 1..${SEVERITIES.length} levels, got ${preview(v.levels)}`);
    } else {
      v.levels.forEach((l, i) => {
        if (!isObj(l)) ctx.add(`${path}.levels[${i}]`, `a level must be an object {severity, when, clear?, for?, samples?}, got ${preview(l)}`);
        else {
          const d = parseLevel(ctx, `${path}.levels[${i}]`, l, keyMetric, false);
          if (d) {
            if (levels.some((o) => o.severity === d.severity)) ctx.add(`${path}.levels[${i}].severity`, `severity ${d.severity} appears twice`);
            levels.push(d);
          }
        }
      });
    }
  } else if (own(v, 'when')) {
    const d = parseLevel(ctx, path, v, keyMetric, true);
    if (d) levels.push(d);
  } else ctx.add(path, 'needs "when" (one level) or "levels"');
  const renotifyMs = duration(ctx, `${path}.renotify`, v.renotify, 0);
  let flap: CompiledRule['flap'] = null;
  if (v.flap !== undefined) {
    if (!isObj(v.flap)) ctx.add(`${path}.flap`, `must be {"changes": n, "window": "10m", "stable"?: "10m"}, got ${preview(v.flap)}`);
    else {
      for (const k of Object.keys(v.flap)) if (!['changes', 'window', 'stable'].includes(k)) ctx.add(`${path}.flap.${k}`, 'unknown flap field (changes, window, stable)');
      const changes = intIn(ctx, `${path}.flap.changes`, v.flap.changes ?? -1, 6, 2, RULE_LIMITS.maxFlapChanges);
      const windowMs = duration(ctx, `${path}.flap.window`, v.flap.window ?? -1, 600_000);
      const stableMs = duration(ctx, `${path}.flap.stable`, v.flap.stable, windowMs);
      if (windowMs === 0) ctx.add(`${path}.flap.window`, 'must be more than 0');
      flap = { changes, windowMs, stableMs };
    }
  }
  if (ctx.problems.length > before) return undefined;
  if (v.enabled === false) return null;

  const slots: Slot[] = [];
  levels.sort((a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity));
  const compiled: CompiledLevel[] = levels.map((l) => {
    const w = compileCond(l.when, slots, 0);
    const c = l.clear ? compileCond(l.clear, slots, 0) : compileCond({ t: 'not', c: l.when }, slots, -1);
    // clear = not (when, widened by hysteresis): compiling "not" flips the sign, so start at -1.
    return { severity: l.severity, rank: SEVERITIES.indexOf(l.severity), when: w.f, clear: c.f, forMs: l.forMs, samples: l.samples, whenText: w.text, clearText: c.text };
  });
  const p = firstSlot(levels[0].when);
  const primary = p ? slots.findIndex((s) => s === p || (s.kind === p.kind && s.metric === p.metric && s.per === p.per && s.over === p.over)) : -1;
  const idx = (kinds: SlotKind[]): number[] => slots.map((s, i) => (kinds.includes(s.kind) ? i : -1)).filter((i) => i >= 0);
  const defaultParts: TemplatePart[] = keyMetric ? [{ v: 'device' }, '/', { v: 'metric' }, '/', { v: 'rule' }] : [{ v: 'device' }, '/', { v: 'rule' }];
  const m = metrics ? matcher(metrics) : null;
  const dm = devices ? matcher(devices) : null;
  return {
    id: id as string,
    name: typeof v.name === 'string' ? v.name : (id as string),
    ...(typeof v.message === 'string' ? { message: v.message } : {}),
    source: JSON.stringify(v),
    devices: dm ? (dm.test === null ? (d) => dm.names.has(d) : (d) => dm.names.has(d) || dm.test!(d)) : null,
    tags,
    metricNames: m ? m.names : null,
    metricTest: m ? m.test : null,
    keyParts: keyParts ?? defaultParts,
    defaultKey: keyParts === undefined,
    levels: compiled,
    slots,
    primary,
    readingSlots: idx(['value', 'rate']),
    anomalySlots: idx(['score', 'anomalous', 'maint', 'prob']),
    livenessSlots: idx(['offline']),
    renotifyMs,
    flap,
  };
}

/**
 * Parses and compiles rules: an array of rule objects, or JSON text of one. Returns every problem
 * (with its path) when any rule is bad; disabled rules ("enabled": false) are checked and left out.
 */
export function parseRules(input: unknown): ParseResult {
  const ctx = new Ctx();
  let v = input;
  if (typeof v === 'string') {
    if (v.length > 4 * 1024 * 1024) return { ok: false, problems: [{ path: 'rules', message: 'rules text is over 4 MiB' }] };
    try {
      v = v.trim() === '' ? [] : JSON.parse(v);
    } catch (e) {
      return { ok: false, problems: [{ path: 'rules', message: `not valid JSON: ${(e as Error).message}` }] };
    }
  }
  if (isObj(v) && Array.isArray(v.rules)) v = v.rules;
  if (!Array.isArray(v)) return { ok: false, problems: [{ path: 'rules', message: `must be a list of rules, got ${preview(v)}` }] };
  if (v.length > RULE_LIMITS.rules) return { ok: false, problems: [{ path: 'rules', message: `at most ${RULE_LIMITS.rules} rules, got ${v.length}` }] };
  const ids = new Set<string>();
  const rules: CompiledRule[] = [];
  v.forEach((r, i) => {
    const c = parseRule(ctx, `rules[${i}]`, r, ids);
    if (c) rules.push(c);
  });
  return ctx.problems.length > 0 ? { ok: false, problems: ctx.problems } : { ok: true, rules };
}

/** One line per problem, for a node status or an error message. */
export function formatProblems(problems: readonly RuleProblem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('; ');
}
