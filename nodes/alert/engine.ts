/**
 * The thingwire-alert engine: rule evaluation and the alert lifecycle per key. Pure (no Node-RED,
 * no timers, no clock: every call takes `now`, the wall clock in ms; the wrapper calls tick(now)
 * at nextDeadline()). Synchronous, so one key's updates are applied one after the other: repeated
 * or concurrent messages for a key can never create two alerts (dedupe is atomic per key).
 *
 * Input. ingest(payload, now) takes a Reading, an AnomalyScore, a LivenessEvent (the registry's
 * tracker: deadman; unregistered and disabled devices have no liveness, so never alert), an
 * AlertEvent of the anomaly node (rules "anomaly" and "maintenance"), or an array of any of these
 * (at most MAX_BATCH). Bad input is rejected with a RejectCode (and its index in a batch), never
 * thrown. Each message updates the facts (last value, rate, score, flags) of the keys it concerns
 * and evaluates those keys' rules; a fact older (event time) than the one held is ignored.
 *
 * Keys. A rule makes one alert key per device (or per device and metric, when the rule names a
 * "metric"), or per its key template (e.g. "{tags.site}/{rule}": then the facts come from whichever
 * device sent them last, and `device` is that device).
 *
 * Lifecycle per key: ok > pending (the level's raise condition must hold for `for` ms of wall
 * clock and `samples` consecutive evaluations; without either it fires at once) > firing >
 * resolved (its clear condition holds: hysteresis) > ok (silently, at the next evaluation that does
 * not raise). Pending that stops holding is cancelled (an event with state 'ok'). Levels: the most
 * severe level whose raise holds is the candidate; while firing, a more severe level escalates
 * after its own hold (the acknowledgement is dropped: a new severity needs a new look), and when
 * the current level's clear holds the alert de-escalates to the most severe lower level whose clear
 * does not hold, or resolves. Every episode has a stable id (from pending or firing to resolved).
 *
 * Events (AlertEvent with id, at, reason, thresholds, ack, notify...) are state changes only:
 * pending, firing, escalate, de-escalate, resolve, cancel; plus renotify (every `renotify` ms while
 * firing, unacknowledged, not silenced, not flapping), ack / unack, silenced / unsilenced, flapping
 * / stable, forgotten, rule-changed. `notify` says whether a notifier should send it: firing,
 * escalate, de-escalate and renotify do, resolve does when the firing was notified, flapping does
 * once; a silenced or flapping alert's events carry notify false and `suppressed`. When a silence
 * ends or flapping stops (stable) and what was last notified differs from the alert's state, that
 * event catches up (notify true: the firing, or the resolution of the notified episode).
 *
 * Flapping: `changes` state changes (firing, escalate, de-escalate, resolve) within `window` ms;
 * it ends after `stable` ms without one.
 *
 * Memory. At most maxKeys keys; at the bound the least recently used ~1/64 of the keys that are
 * quiet (ok or resolved, nothing to catch up) are dropped. When every key is active the message's
 * new key is not created (stats.overflow). Silences: at most maxSilences.
 *
 * State. snapshot() is a JSON-safe object of everything that decides future output; restore() on
 * an engine with the same rules continues exactly. Keys of rules that are gone or changed are
 * dropped; the active ones among them are resolved (reason 'rule-changed') by restore().
 */
import type { AlertAck, AlertEvent, AlertReason, AlertState, MetricValue, Reject, RejectCode, Severity } from '../lib/contract';
import { MAX_BATCH } from '../lib/contract';
import { isValidDeviceId, isValidName, preview } from '../lib/names';
import { formatProblems, parseRules, RULE_LIMITS, SEVERITIES, type CompiledLevel, type CompiledRule, type Fact, type RuleProblem } from './rules';

/** Largest batch taken in one message: the contract's. */
export { MAX_BATCH };
const OK = 0;
const PENDING = 1;
const FIRING = 2;
const RESOLVED = 3;
const STATE_NAMES: readonly AlertState[] = ['ok', 'pending', 'firing', 'resolved'];
/** Notified: nothing yet, a firing, a resolution. */
const N_NONE = 0;
const N_FIRING = 1;
const N_RESOLVED = 2;
/** Event time of a fact never set (JSON-safe, below any real time). */
const NO_TS = -Number.MAX_VALUE;

export interface AlertEngineOptions {
  /** Rules: JSON text, an array of rule objects (see rules.ts), or compiled rules. */
  rules: unknown;
  /** Most keys held. Default 100,000. */
  maxKeys?: number;
  /** Most silences held. Default 1,000. */
  maxSilences?: number;
  /** Prefix of alert ids (e.g. the node id). Default "". */
  idPrefix?: string;
}

/** Thrown by the constructor for bad rules; `problems` lists every one. */
export class AlertRulesError extends Error {
  readonly problems: RuleProblem[];
  constructor(problems: RuleProblem[]) {
    super(`bad alert rules: ${formatProblems(problems)}`);
    this.name = 'AlertRulesError';
    this.problems = problems;
  }
}

export interface AlertOutput {
  /** State changes (and notifications), in the order they happened. */
  events: AlertEvent[];
  rejects: Reject[];
  /** Rule evaluations done. */
  evaluations: number;
  /** True when the input was an array. */
  batch: boolean;
}

/** ack / unack / silence / unsilence: never throws; `code` says why it did nothing. */
export interface ActionResult {
  ok: boolean;
  events: AlertEvent[];
  code?: 'not_found' | 'invalid' | 'limit';
  message?: string;
  /** silence(): the new silence's id. */
  id?: string;
}

export interface SilenceSpec {
  /** Device id or glob. */
  device?: string;
  rule?: string;
  /** An alert key. */
  key?: string;
  /** End (ms epoch). */
  until: number;
  by?: string;
  comment?: string;
}

export interface Silence extends SilenceSpec {
  id: string;
  created: number;
}

export interface AlertStats {
  keys: number;
  maxKeys: number;
  pending: number;
  firing: number;
  acknowledged: number;
  silences: number;
  evaluations: number;
  ingested: number;
  rejected: number;
  /** Facts older than the one held (ignored). */
  stale: number;
  /** Messages of shapes the engine takes but does not use (e.g. AlertEvents of other rules). */
  ignored: number;
  evicted: number;
  /** New keys not created because every key was active at the bound. */
  overflow: number;
}

/** One alert key's state. Field names are short: there may be 100,000 of these. */
class Key {
  /** Facts per rule slot, their event times, rate samples ([ts, v, ts, v, ...] or null). */
  f: Fact[];
  ft: number[];
  rr: Array<number[] | null>;
  st = OK;
  /** Level index (pending: the candidate; firing: the current), -1 none. */
  lv = -1;
  since = 0;
  /** Hold of a pending level (pending: lv; firing: an escalation candidate, -1 none): start and count. */
  pl = -1;
  ps = 0;
  pc = 0;
  id: string | null = null;
  ack: AlertAck | null = null;
  /** What was last notified (N_*), at which level, for which episode, when. */
  ns = N_NONE;
  nl = -1;
  nid: string | null = null;
  ln = 0;
  flapping = false;
  /** Times of the last state changes (at most flap.changes), the last one. */
  ch: number[] = [];
  lc = 0;
  u = 0;
  live = false;
  /** The ingest() call that last evaluated it (AlertEngine.mark). */
  mk = 0;
  constructor(
    readonly rule: CompiledRule,
    readonly ri: number,
    readonly outer: string,
    readonly inner: string,
    readonly key: string,
    public device: string,
    readonly metric: string | null,
  ) {
    const n = rule.slots.length;
    this.f = new Array<Fact>(n).fill(null);
    this.ft = new Array<number>(n).fill(NO_TS);
    this.rr = new Array<number[] | null>(n).fill(null);
  }
}

type KeyRow = [
  rule: string,
  outer: string,
  inner: string,
  key: string,
  device: string,
  metric: string | null,
  f: Fact[],
  ft: number[],
  rr: Array<number[] | null>,
  nums: number[],
  id: string | null,
  ack: AlertAck | null,
  nid: string | null,
  flapping: boolean,
  ch: number[],
  /** Severity of the current level (describes the key's last event if its rule is gone). */
  severity: string,
];

/** A key as its snapshot row; `copy`: its arrays copied, so the row does not change with the key. */
function keyRow(k: Key, copy = true): KeyRow {
  if (!copy) return [k.rule.id, k.outer, k.inner, k.key, k.device, k.metric, k.f, k.ft, k.rr, [k.st, k.lv, k.since, k.pl, k.ps, k.pc, k.ns, k.nl, k.ln, k.lc, k.u], k.id, k.ack, k.nid, k.flapping, k.ch, k.rule.levels[k.lv < 0 ? 0 : k.lv].severity];
  return [
    k.rule.id,
    k.outer,
    k.inner,
    k.key,
    k.device,
    k.metric,
    k.f.slice(),
    k.ft.slice(),
    k.rr.map((r) => (r === null ? null : r.slice())),
    [k.st, k.lv, k.since, k.pl, k.ps, k.pc, k.ns, k.nl, k.ln, k.lc, k.u],
    k.id,
    k.ack === null ? null : { ...k.ack },
    k.nid,
    k.flapping,
    k.ch.slice(),
    k.rule.levels[k.lv < 0 ? 0 : k.lv].severity,
  ];
}

/** Key rows per piece of snapshotText (about 100 KB of JSON). */
const SNAPSHOT_KEYS_PER_PIECE = 250;

export interface AlertSnapshot {
  v: 1;
  /** Rule id to its source JSON. */
  rules: Record<string, string>;
  keys: KeyRow[];
  /** Indexes into keys of the active set, in its order. */
  live: number[];
  silences: Silence[];
  clock: number;
  seq: number;
  counts: number[];
}

const C_EVALS = 0;
const C_INGESTED = 1;
const C_REJECTED = 2;
const C_STALE = 3;
const C_IGNORED = 4;
const C_EVICTED = 5;
const C_OVERFLOW = 6;

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const hasOwn = Object.prototype.hasOwnProperty;

function tagOf(tags: Record<string, unknown> | undefined, name: string): string {
  if (tags === undefined || !hasOwn.call(tags, name)) return '-';
  const t = tags[name];
  return typeof t === 'string' ? t : '-';
}

function tagsMatch(rule: CompiledRule, tags: Record<string, unknown> | undefined): boolean {
  for (let i = 0; i < rule.tags.length; i++) {
    const [k, v] = rule.tags[i];
    if (tags === undefined || !hasOwn.call(tags, k) || tags[k] !== v) return false;
  }
  return true;
}

function held(l: CompiledLevel, k: Key, now: number): boolean {
  return k.pc >= l.samples && now - k.ps >= l.forMs;
}

export class AlertEngine {
  readonly rules: readonly CompiledRule[];
  readonly maxKeys: number;
  readonly maxSilences: number;
  private readonly idPrefix: string;
  /** Per rule: outer (device, or the expanded template) -> inner (metric or '') -> key. */
  private readonly maps: Array<Map<string, Map<string, Key>>>;
  private readonly byId = new Map<string, Key>();
  /** Keys pending, firing, flapping, or with a resolution to catch up: what tick() looks at. */
  private live = new Set<Key>();
  /**
   * The live keys the running ingest() evaluated or made live, each once (Key.mk === mark): what lastIngestDue looks
   * at; the first nTouched entries count (a count, not `length = 0`, which gave up the array's storage at every call).
   */
  private readonly touched: Key[] = [];
  private nTouched = 0;
  private mark = 0;
  private nKeys = 0;
  private silenceList: Silence[] = [];
  private clock = 0;
  private seq = 0;
  private readonly counts = [0, 0, 0, 0, 0, 0, 0];
  /** Device -> indexes of the rules whose device filter takes it (reading, anomaly, liveness). */
  private readonly ruleCache = new Map<string, [number[], number[], number[]]>();
  /** Bumped by every change of state (the wrapper saves when it moved). */
  version = 0;

  /** Throws AlertRulesError (every problem) for bad rules, RangeError for bad options. */
  constructor(opts: AlertEngineOptions) {
    let rules: CompiledRule[];
    if (Array.isArray(opts.rules) && opts.rules.every((r) => isObj(r) && typeof r.source === 'string' && Array.isArray(r.levels) && typeof r.levels[0]?.when === 'function')) {
      rules = opts.rules as CompiledRule[];
    } else {
      const p = parseRules(opts.rules);
      if (!p.ok) throw new AlertRulesError(p.problems);
      rules = p.rules;
    }
    this.rules = rules;
    this.maxKeys = opts.maxKeys ?? 100_000;
    if (!Number.isInteger(this.maxKeys) || this.maxKeys < 1 || this.maxKeys > 10_000_000) throw new RangeError(`maxKeys must be a whole number from 1 to 10,000,000, got ${preview(opts.maxKeys)}`);
    this.maxSilences = opts.maxSilences ?? 1000;
    if (!Number.isInteger(this.maxSilences) || this.maxSilences < 0 || this.maxSilences > 100_000) throw new RangeError(`maxSilences must be a whole number from 0 to 100,000, got ${preview(opts.maxSilences)}`);
    this.idPrefix = opts.idPrefix ?? '';
    if (typeof this.idPrefix !== 'string' || this.idPrefix.length > 64) throw new RangeError('idPrefix must be text of at most 64 characters');
    this.maps = rules.map(() => new Map());
  }

  // ---- input -----------------------------------------------------------------------------------

  /**
   * Takes a Reading, AnomalyScore, LivenessEvent, anomaly AlertEvent, or an array of them.
   * `meta.tags`: tags for messages that carry none (a LivenessEvent: the device's registry tags).
   */
  ingest(input: unknown, now: number, meta?: { tags?: Record<string, string> }): AlertOutput {
    const out: AlertOutput = { events: [], rejects: [], evaluations: 0, batch: Array.isArray(input) };
    const e0 = this.counts[C_EVALS];
    this.mark++;
    this.nTouched = 0;
    if (!(typeof now === 'number' && Number.isFinite(now))) {
      this.reject(out, 'invalid_ts', `now must be a finite number of ms, got ${preview(now)}`, undefined);
      return out;
    }
    const tags = meta && isObj(meta.tags) ? meta.tags : undefined;
    if (out.batch) {
      const list = input as unknown[];
      if (list.length > MAX_BATCH) this.reject(out, 'payload_too_large', `a batch holds at most ${MAX_BATCH} messages, got ${list.length}`, undefined);
      else for (let i = 0; i < list.length; i++) this.one(list[i], i, now, tags, out);
    } else {
      this.one(input, undefined, now, tags, out);
    }
    out.evaluations = this.counts[C_EVALS] - e0;
    return out;
  }

  /**
   * The earliest deadline (as nextDeadline) among the keys the last ingest() evaluated, Infinity when none has one.
   * The keys it did not evaluate kept their deadlines, so a caller whose timer is armed at the engine's next deadline
   * only moves it earlier when this is sooner (nextDeadline scans every live key: after every message, with thousands
   * of alerts pending or firing, that scan was most of the alert node's time). Asked once after each ingest().
   */
  lastIngestDue(now: number): number {
    let due = Infinity;
    for (let i = 0; i < this.nTouched; i++) {
      const t = this.deadlineOf(this.touched[i], now);
      if (t < due) due = t;
    }
    this.nTouched = 0;
    // A big batch's keys are not held past it (a key dropped later must not stay reachable from here).
    if (this.touched.length > 1024) this.touched.length = 0;
    return due;
  }

  private reject(out: AlertOutput, code: RejectCode, message: string, index: number | undefined): void {
    this.counts[C_REJECTED]++;
    const r: Reject = { code, message };
    if (index !== undefined) r.index = index;
    out.rejects.push(r);
  }

  private one(m: unknown, index: number | undefined, now: number, tags: Record<string, string> | undefined, out: AlertOutput): void {
    if (!isObj(m)) return this.reject(out, 'not_a_reading', `expected a Reading, AnomalyScore, LivenessEvent or anomaly AlertEvent object, got ${preview(m)}`, index);
    const device = m.device;
    // A device the rule cache holds was checked when first seen (rulesFor is reached only past this check): the
    // regular expression ran for every reading and score (1-2 % of the runtime at 100,000 readings/s).
    if (!(typeof device === 'string' && this.ruleCache.has(device)) && !isValidDeviceId(device)) return this.reject(out, 'invalid_device', `device must be 1..128 letters, digits and ._:- starting with a letter or digit, got ${preview(device)}`, index);
    const mt = m.metrics;
    if (mt !== undefined) {
      if (!isObj(mt)) return this.reject(out, 'not_a_reading', 'a reading must be an object { device, ts, metrics } with metrics an object', index);
      const ts = m.ts;
      if (typeof ts !== 'number' || !Number.isFinite(ts)) return this.reject(out, 'invalid_ts', `reading ts must be a finite number of ms since the epoch, got ${preview(ts)}`, index);
      this.counts[C_INGESTED]++;
      return this.reading(device, ts, mt, isObj(m.tags) ? m.tags : tags, now, index, out);
    }
    if (typeof m.score === 'number' && typeof m.metric === 'string') {
      const ts = m.ts;
      if (typeof ts !== 'number' || !Number.isFinite(ts)) return this.reject(out, 'invalid_ts', `score ts must be a finite number of ms since the epoch, got ${preview(ts)}`, index);
      if (!isValidName(m.metric)) return this.reject(out, 'invalid_metric', `metric name ${preview(m.metric)} is not allowed`, index);
      if (!(m.score >= 0 && m.score <= 1)) return this.reject(out, 'invalid_value', `score must be in [0, 1], got ${preview(m.score)}`, index);
      const mn = isObj(m.maintenance) ? m.maintenance : undefined;
      const prob = mn !== undefined && typeof mn.probability === 'number' && mn.probability >= 0 && mn.probability <= 1 ? mn.probability : null;
      const alert = mn !== undefined && typeof mn.alert === 'boolean' ? mn.alert : null;
      this.counts[C_INGESTED]++;
      return this.anomaly(device, m.metric, ts, m.score, m.anomalous === true, prob, alert, isObj(m.tags) ? m.tags : tags, now, out);
    }
    const state = m.state;
    if (state === 'online' || state === 'offline') {
      const since = m.since;
      if (typeof since !== 'number' || !Number.isFinite(since)) return this.reject(out, 'invalid_ts', `liveness since must be a finite number of ms, got ${preview(since)}`, index);
      this.counts[C_INGESTED]++;
      return this.liveness(device, state === 'offline', since, tags, now, out);
    }
    if (typeof m.rule === 'string' && typeof state === 'string') {
      const since = m.since;
      if (typeof since !== 'number' || !Number.isFinite(since)) return this.reject(out, 'invalid_ts', `event since must be a finite number of ms, got ${preview(since)}`, index);
      if ((m.rule !== 'anomaly' && m.rule !== 'maintenance') || typeof m.metric !== 'string' || !isValidName(m.metric)) {
        this.counts[C_IGNORED]++;
        return;
      }
      this.counts[C_INGESTED]++;
      const firing = state === 'firing';
      return this.anomaly(device, m.metric, since, null, m.rule === 'anomaly' ? firing : null, null, m.rule === 'maintenance' ? firing : null, tags, now, out);
    }
    return this.reject(out, 'not_a_reading', `expected a Reading { device, ts, metrics }, an AnomalyScore, a LivenessEvent or an anomaly AlertEvent, got ${preview(m)}`, index);
  }

  private rulesFor(device: string): [number[], number[], number[]] {
    let c = this.ruleCache.get(device);
    if (c === undefined) {
      c = [[], [], []];
      for (let i = 0; i < this.rules.length; i++) {
        const r = this.rules[i];
        if (r.devices !== null && !r.devices(device)) continue;
        if (r.readingSlots.length > 0) c[0].push(i);
        if (r.anomalySlots.length > 0) c[1].push(i);
        if (r.livenessSlots.length > 0) c[2].push(i);
      }
      if (this.ruleCache.size >= 50_000) this.ruleCache.clear();
      this.ruleCache.set(device, c);
    }
    return c;
  }

  private reading(device: string, ts: number, metrics: Record<string, unknown>, tags: Record<string, unknown> | undefined, now: number, index: number | undefined, out: AlertOutput): void {
    const list = this.rulesFor(device)[0];
    for (let j = 0; j < list.length; j++) {
      const ri = list[j];
      const rule = this.rules[ri];
      if (rule.tags.length > 0 && !tagsMatch(rule, tags)) continue;
      if (rule.metricNames === null) {
        const k = this.keyFor(ri, rule, device, null, tags);
        if (k !== null && this.applyReading(k, null, ts, metrics, index, out)) this.evaluate(k, now, out);
        continue;
      }
      if (rule.metricTest === null) {
        for (const m of rule.metricNames) {
          if (!hasOwn.call(metrics, m)) continue;
          const k = this.keyFor(ri, rule, device, m, tags);
          if (k !== null && this.applyReading(k, m, ts, metrics, index, out)) this.evaluate(k, now, out);
        }
        continue;
      }
      for (const m in metrics) {
        if (!hasOwn.call(metrics, m) || !(rule.metricNames.has(m) || rule.metricTest(m)) || !isValidName(m)) continue;
        const k = this.keyFor(ri, rule, device, m, tags);
        if (k !== null && this.applyReading(k, m, ts, metrics, index, out)) this.evaluate(k, now, out);
      }
    }
  }

  /** Updates k's value and rate facts from a reading; true when any changed. */
  private applyReading(k: Key, km: string | null, ts: number, metrics: Record<string, unknown>, index: number | undefined, out: AlertOutput): boolean {
    const slots = k.rule.slots;
    const rs = k.rule.readingSlots;
    let any = false;
    for (let j = 0; j < rs.length; j++) {
      const i = rs[j];
      const s = slots[i];
      const name = s.metric ?? km!;
      if (!hasOwn.call(metrics, name)) continue;
      const v = metrics[name];
      const tv = typeof v;
      if (tv !== 'number' && tv !== 'boolean' && tv !== 'string') continue;
      if (tv === 'number' && !Number.isFinite(v)) {
        this.reject(out, 'invalid_value', `${k.device}/${preview(name, 60)}: value ${String(v)} is not a finite number`, index);
        continue;
      }
      if (ts < k.ft[i]) {
        this.counts[C_STALE]++;
        continue;
      }
      if (s.kind === 'value') {
        k.f[i] = v as MetricValue;
        k.ft[i] = ts;
        any = true;
        continue;
      }
      // rate
      if (tv !== 'number') continue;
      const x = v as number;
      const r = k.rr[i];
      if (r === null) {
        k.rr[i] = [ts, x];
        k.ft[i] = ts;
        any = true;
        continue;
      }
      if (ts === r[r.length - 2] && s.over === 0) continue;
      if (s.over === 0) {
        const rate = ((x - r[1]) / (ts - r[0])) * s.per;
        k.f[i] = Number.isFinite(rate) ? rate : null;
        r[0] = ts;
        r[1] = x;
      } else {
        // Drop samples while the next one is at or before the window's start: r[0] is then the newest
        // sample at or before ts - over, or the oldest inside the window.
        const start = ts - s.over;
        let drop = 0;
        while (r.length - drop >= 4 && r[drop + 2] <= start) drop += 2;
        if (drop > 0) r.splice(0, drop);
        const rate = ts > r[0] ? ((x - r[1]) / (ts - r[0])) * s.per : null;
        k.f[i] = rate !== null && Number.isFinite(rate) ? rate : null;
        if (ts - r[r.length - 2] >= s.over / (RULE_LIMITS.rateSamples - 1)) {
          r.push(ts, x);
          if (r.length > 2 * (RULE_LIMITS.rateSamples + 1)) r.splice(0, 2);
        }
      }
      k.ft[i] = ts;
      any = true;
    }
    return any;
  }

  private anomaly(device: string, metric: string, ts: number, score: number | null, anomalous: boolean | null, prob: number | null, alert: boolean | null, tags: Record<string, unknown> | undefined, now: number, out: AlertOutput): void {
    const list = this.rulesFor(device)[1];
    for (let j = 0; j < list.length; j++) {
      const ri = list[j];
      const rule = this.rules[ri];
      if (rule.tags.length > 0 && !tagsMatch(rule, tags)) continue;
      let km: string | null = null;
      if (rule.metricNames !== null) {
        // A rule with a key metric has one key per metric: only scores of a selected metric count.
        if (!rule.metricNames.has(metric) && !(rule.metricTest !== null && rule.metricTest(metric))) continue;
        km = metric;
      } else if (!rule.anomalySlots.some((i) => rule.slots[i].metric === metric)) continue;
      const k = this.keyFor(ri, rule, device, km, tags);
      if (k === null) continue;
      let any = false;
      for (const i of rule.anomalySlots) {
        const s = rule.slots[i];
        if ((s.metric ?? km) !== metric) continue;
        const v = s.kind === 'score' ? score : s.kind === 'anomalous' ? anomalous : s.kind === 'prob' ? prob : alert;
        if (v === null) continue;
        if (ts < k.ft[i]) {
          this.counts[C_STALE]++;
          continue;
        }
        k.f[i] = v;
        k.ft[i] = ts;
        any = true;
      }
      if (any) this.evaluate(k, now, out);
    }
  }

  private liveness(device: string, offline: boolean, since: number, tags: Record<string, unknown> | undefined, now: number, out: AlertOutput): void {
    const list = this.rulesFor(device)[2];
    for (let j = 0; j < list.length; j++) {
      const ri = list[j];
      const rule = this.rules[ri];
      if (rule.tags.length > 0 && !tagsMatch(rule, tags)) continue;
      // Online for a device without a key: nothing to clear, no key made.
      const k = offline ? this.keyFor(ri, rule, device, null, tags) : this.findKey(ri, rule, device, null, tags);
      if (k === null) continue;
      let any = false;
      for (const i of rule.livenessSlots) {
        if (since < k.ft[i]) {
          this.counts[C_STALE]++;
          continue;
        }
        k.f[i] = offline;
        k.ft[i] = since;
        any = true;
      }
      if (any) this.evaluate(k, now, out);
    }
  }

  // ---- keys ------------------------------------------------------------------------------------

  private expand(rule: CompiledRule, device: string, metric: string | null, tags: Record<string, unknown> | undefined): string {
    let s = '';
    for (const p of rule.keyParts) {
      if (typeof p === 'string') s += p;
      else if ('v' in p) s += p.v === 'device' ? device : p.v === 'rule' ? rule.id : (metric ?? '');
      else s += tagOf(tags, p.tag);
    }
    return s;
  }

  private findKey(ri: number, rule: CompiledRule, device: string, metric: string | null, tags: Record<string, unknown> | undefined): Key | null {
    const outer = rule.defaultKey ? device : this.expand(rule, device, metric, tags);
    const k = this.maps[ri].get(outer)?.get(rule.defaultKey ? (metric ?? '') : '');
    if (k === undefined) return null;
    k.u = ++this.clock;
    return k;
  }

  private keyFor(ri: number, rule: CompiledRule, device: string, metric: string | null, tags: Record<string, unknown> | undefined): Key | null {
    const outer = rule.defaultKey ? device : this.expand(rule, device, metric, tags);
    const inner = rule.defaultKey ? (metric ?? '') : '';
    let m = this.maps[ri].get(outer);
    let k = m?.get(inner);
    if (k === undefined) {
      if (this.nKeys >= this.maxKeys && !this.evict()) {
        this.counts[C_OVERFLOW]++;
        return null;
      }
      if (m === undefined) {
        m = new Map();
        this.maps[ri].set(outer, m);
      }
      k = new Key(rule, ri, outer, inner, rule.defaultKey ? this.expand(rule, device, metric, tags) : outer, device, metric);
      m.set(inner, k);
      this.nKeys++;
    } else if (k.device !== device) k.device = device;
    k.u = ++this.clock;
    this.version++;
    return k;
  }

  private dropKey(k: Key): void {
    const m = this.maps[k.ri].get(k.outer);
    if (m === undefined || m.get(k.inner) !== k) return;
    m.delete(k.inner);
    if (m.size === 0) this.maps[k.ri].delete(k.outer);
    this.nKeys--;
    this.live.delete(k);
    k.live = false;
    if (k.id !== null && this.byId.get(k.id) === k) this.byId.delete(k.id);
  }

  /** Drops ~1/64 of the quiet keys, least recently used first; false when none is quiet. */
  private evict(): boolean {
    const quiet: Key[] = [];
    for (const mm of this.maps) for (const m of mm.values()) for (const k of m.values()) if (!k.live) quiet.push(k);
    if (quiet.length === 0) return false;
    quiet.sort((a, b) => a.u - b.u);
    const n = Math.min(quiet.length, Math.max(1, Math.ceil(this.maxKeys / 64)));
    for (let i = 0; i < n; i++) this.dropKey(quiet[i]);
    this.counts[C_EVICTED] += n;
    return true;
  }

  /** Notes a key for lastIngestDue, once an ingest. */
  private touch(k: Key): void {
    if (k.mk === this.mark) return;
    k.mk = this.mark;
    this.touched[this.nTouched++] = k;
  }

  private setLive(k: Key): void {
    const want = k.st === PENDING || k.st === FIRING || k.flapping || (k.ns === N_FIRING && k.st !== FIRING);
    if (want === k.live) return;
    k.live = want;
    if (want) {
      this.live.add(k);
      this.touch(k);
    } else this.live.delete(k);
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  private evaluate(k: Key, now: number, out: AlertOutput): void {
    this.counts[C_EVALS]++;
    // Only a live key has a deadline: one that becomes live is noted by setLive.
    if (k.live) this.touch(k);
    const levels = k.rule.levels;
    const f = k.f;
    if (k.st === FIRING) {
      let hi = -1;
      for (let i = 0; i < k.lv; i++) {
        if (levels[i].when(f)) {
          hi = i;
          break;
        }
      }
      if (hi >= 0) {
        if (k.pl !== hi) {
          k.pl = hi;
          k.ps = now;
          k.pc = 1;
        } else k.pc++;
        if (held(levels[hi], k, now)) this.change(k, FIRING, hi, 'escalate', now, out);
        return;
      }
      k.pl = -1;
      if (!levels[k.lv].clear(f)) return;
      for (let j = k.lv + 1; j < levels.length; j++) {
        if (!levels[j].clear(f)) {
          this.change(k, FIRING, j, 'de-escalate', now, out);
          return;
        }
      }
      this.change(k, RESOLVED, k.lv, 'resolve', now, out);
      return;
    }
    let hi = -1;
    for (let i = 0; i < levels.length; i++) {
      if (levels[i].when(f)) {
        hi = i;
        break;
      }
    }
    if (hi < 0) {
      if (k.st === PENDING) this.change(k, OK, k.lv, 'cancel', now, out);
      else if (k.st === RESOLVED) k.st = OK;
      return;
    }
    let started = false;
    if (k.st !== PENDING) {
      started = true;
      if (k.id !== null && this.byId.get(k.id) === k) this.byId.delete(k.id);
      k.id = `${this.idPrefix}${now.toString(36)}-${(this.seq++).toString(36)}`;
      this.byId.set(k.id, k);
      k.ack = null;
      k.st = PENDING;
      k.since = now;
      k.ps = now;
      k.pc = 1;
      k.lv = hi;
      k.pl = hi;
    } else {
      k.pc++;
      k.lv = hi;
      k.pl = hi;
    }
    if (held(levels[hi], k, now)) this.change(k, FIRING, hi, 'firing', now, out);
    else if (started) {
      this.emit(k, 'pending', now, out, false);
      this.setLive(k);
    }
  }

  /** A state or level change: updates the key, flap detection, notified state; emits the event. */
  private change(k: Key, st: number, lv: number, reason: AlertReason, now: number, out: AlertOutput): void {
    const prev = k.lv;
    const wasState = k.st;
    k.st = st;
    k.lv = lv;
    k.pl = -1;
    if (st !== wasState) k.since = now;
    if (reason === 'escalate') k.ack = null;
    let notifiable = false;
    let flapStarted = false;
    if (reason === 'firing' || reason === 'escalate' || reason === 'de-escalate' || reason === 'resolve') {
      notifiable = reason !== 'resolve' || k.ns === N_FIRING;
      flapStarted = this.flapCount(k, now);
    }
    if (reason === 'forgotten' || reason === 'rule-changed') notifiable = wasState === FIRING && k.ns === N_FIRING;
    const e = this.emit(k, reason, now, out, notifiable);
    if (prev !== lv && (reason === 'escalate' || reason === 'de-escalate')) e.previousSeverity = k.rule.levels[prev].severity;
    if (flapStarted) this.emit(k, 'flapping', now, out, true);
    this.setLive(k);
  }

  /** Counts a state change; true when it makes the key start flapping. */
  private flapCount(k: Key, now: number): boolean {
    const fl = k.rule.flap;
    k.lc = now;
    if (fl === null) return false;
    k.ch.push(now);
    if (k.ch.length > fl.changes) k.ch.shift();
    if (!k.flapping && k.ch.length === fl.changes && now - k.ch[0] <= fl.windowMs) {
      k.flapping = true;
      return true;
    }
    return false;
  }

  private silenced(k: Key, now: number): boolean {
    const list = this.silenceList;
    for (let i = 0; i < list.length; i++) {
      const s = list[i];
      if (s.until > now && (s.rule === undefined || s.rule === k.rule.id) && (s.key === undefined || s.key === k.key) && (s.device === undefined || matchDevice(s.device, k.device))) return true;
    }
    return false;
  }

  /**
   * Builds and appends an event. `notifiable`: whether it would notify if not silenced or flapping
   * (a 'flapping' event notifies when only flapping holds it back).
   */
  private emit(k: Key, reason: AlertReason, now: number, out: AlertOutput, notifiable: boolean): AlertEvent {
    const e = this.view(k, now);
    e.at = now;
    e.reason = reason;
    let notify = false;
    if (notifiable) {
      if (e.silenced) e.suppressed = 'silenced';
      else if (k.flapping && reason !== 'flapping') e.suppressed = 'flapping';
      else notify = true;
    }
    e.notify = notify;
    if (notify && reason !== 'flapping') {
      if (k.st === FIRING) {
        k.ns = N_FIRING;
        k.nl = k.lv;
        k.nid = k.id;
      } else k.ns = N_RESOLVED;
      k.ln = now;
    }
    out.events.push(e);
    this.version++;
    return e;
  }

  /** The alert as an event without reason (for active() and get()). */
  private view(k: Key, now: number): AlertEvent {
    const l = k.rule.levels[k.lv < 0 ? 0 : k.lv];
    const metric = k.metric;
    const e: AlertEvent = {
      key: k.key,
      device: k.device,
      rule: k.rule.id,
      state: STATE_NAMES[k.st],
      severity: l.severity,
      since: k.since,
      acknowledged: k.ack !== null,
      id: k.id ?? '',
      thresholds: metric === null ? { raise: l.whenText, clear: l.clearText } : { raise: l.whenText.split('{metric}').join(metric), clear: l.clearText.split('{metric}').join(metric) },
      silenced: this.silenced(k, now),
      flapping: k.flapping,
    };
    if (metric !== null) e.metric = metric;
    const p = k.rule.primary;
    if (p >= 0 && k.f[p] !== null) e.value = k.f[p] as MetricValue;
    if (k.ack !== null) e.ack = { ...k.ack };
    if (k.rule.message !== undefined) e.message = k.rule.message;
    const values: Record<string, MetricValue> = {};
    let any = false;
    k.rule.slots.forEach((s, i) => {
      const v = k.f[i];
      if (v === null) return;
      const m = s.metric ?? metric ?? '';
      const label = s.kind === 'value' ? m : s.kind === 'rate' ? `rate(${m})` : s.kind === 'offline' ? 'offline' : s.kind === 'score' ? `anomaly(${m})` : s.kind === 'anomalous' ? `anomalous(${m})` : s.kind === 'prob' ? `probability(${m})` : `maintenance(${m})`;
      values[label] = v;
      any = true;
    });
    if (any) e.values = values;
    return e;
  }

  /** Catch-up after a silence ends or flapping stops: notify what the last notification does not say. */
  private catchUp(k: Key, reason: AlertReason, now: number, out: AlertOutput): void {
    if (k.st === FIRING && (k.ns !== N_FIRING || k.nl !== k.lv || k.nid !== k.id)) {
      this.emit(k, reason, now, out, true);
    } else if (k.st !== FIRING && k.ns === N_FIRING) {
      const e = this.emit(k, reason, now, out, true);
      if (e.notify) {
        // The resolution of the episode that was notified as firing.
        e.state = 'resolved';
        if (k.nid !== null) e.id = k.nid;
        k.ns = N_RESOLVED;
      }
    } else this.emit(k, reason, now, out, false);
    this.setLive(k);
  }

  // ---- time ------------------------------------------------------------------------------------

  /** Holds that came due, re-notifications, silences that ended, flapping that stopped. */
  tick(now: number): AlertEvent[] {
    const out: AlertOutput = { events: [], rejects: [], evaluations: 0, batch: false };
    if (!(typeof now === 'number' && Number.isFinite(now))) return out.events;
    const expired: Silence[] = [];
    if (this.silenceList.length > 0) {
      const keep: Silence[] = [];
      for (const s of this.silenceList) (s.until > now ? keep : expired).push(s);
      if (expired.length > 0) {
        const before = [...this.live].filter((k) => expired.some((s) => silenceMatches(s, k)));
        this.silenceList = keep;
        this.version++;
        for (const k of before) if (!this.silenced(k, now)) this.catchUp(k, 'unsilenced', now, out);
      }
    }
    for (const k of [...this.live]) {
      const levels = k.rule.levels;
      if (k.st === PENDING && k.pl >= 0 && held(levels[k.pl], k, now) && levels[k.pl].when(k.f)) {
        this.change(k, FIRING, k.pl, 'firing', now, out);
      } else if (k.st === FIRING && k.pl >= 0 && k.pl < k.lv && held(levels[k.pl], k, now) && levels[k.pl].when(k.f)) {
        this.change(k, FIRING, k.pl, 'escalate', now, out);
      }
      const fl = k.rule.flap;
      if (k.flapping && fl !== null && now - k.lc >= fl.stableMs) {
        k.flapping = false;
        k.ch = [];
        this.catchUp(k, 'stable', now, out);
        this.setLive(k);
      }
      const rn = k.rule.renotifyMs;
      if (rn > 0 && k.st === FIRING && k.ack === null && !k.flapping && k.ns === N_FIRING && k.nid === k.id && now - k.ln >= rn && !this.silenced(k, now)) {
        this.emit(k, 'renotify', now, out, true);
      }
    }
    return out.events;
  }

  /**
   * The earliest time tick() has something to do (ms), or Infinity. With `now`, the re-notification
   * times of alerts silenced at `now` are left out (tick() does not renotify them; the silence's end
   * is a deadline of its own): without it, such a time stays in the past until the silence ends.
   */
  nextDeadline(now?: number): number {
    let t = Infinity;
    for (const s of this.silenceList) if (s.until < t) t = s.until;
    for (const k of this.live) {
      const d = this.deadlineOf(k, now);
      if (d < t) t = d;
    }
    return t;
  }

  /** The earliest time tick() has something to do for one key (see nextDeadline), Infinity when none. */
  private deadlineOf(k: Key, now: number | undefined): number {
    if (!k.live) return Infinity;
    let t = Infinity;
    if (k.pl >= 0 && (k.st === PENDING || k.st === FIRING)) {
      const l = k.rule.levels[k.pl];
      if (k.pc >= l.samples && l.forMs > 0) t = k.ps + l.forMs;
    }
    const fl = k.rule.flap;
    if (k.flapping && fl !== null) t = Math.min(t, k.lc + fl.stableMs);
    const rn = k.rule.renotifyMs;
    if (rn > 0 && k.st === FIRING && k.ack === null && !k.flapping && k.ns === N_FIRING && k.nid === k.id && k.ln + rn < t && (now === undefined || !this.silenced(k, now))) t = k.ln + rn;
    return t;
  }

  // ---- operator actions ------------------------------------------------------------------------

  private find(target: unknown): Key | undefined {
    if (typeof target !== 'string' || target === '' || target.length > 512) return undefined;
    const k = this.byId.get(target);
    if (k !== undefined && (k.st === PENDING || k.st === FIRING)) return k;
    for (const x of this.live) if (x.key === target && (x.st === PENDING || x.st === FIRING)) return x;
    return undefined;
  }

  /** Acknowledges an active (pending or firing) alert, by id or key. */
  ack(target: string, who: { by: string; comment?: string }, now: number): ActionResult {
    const k = this.find(target);
    if (k === undefined) return { ok: false, events: [], code: 'not_found', message: `no active alert ${preview(target)}` };
    if (!isObj(who) || typeof who.by !== 'string' || who.by.trim() === '' || who.by.length > 128) return { ok: false, events: [], code: 'invalid', message: 'ack needs "by": 1..128 characters' };
    if (who.comment !== undefined && (typeof who.comment !== 'string' || who.comment.length > 1024)) return { ok: false, events: [], code: 'invalid', message: 'ack comment: text of at most 1024 characters' };
    if (!Number.isFinite(now)) return { ok: false, events: [], code: 'invalid', message: 'now must be a finite number' };
    k.ack = who.comment === undefined ? { by: who.by, at: now } : { by: who.by, at: now, comment: who.comment };
    const out: AlertOutput = { events: [], rejects: [], evaluations: 0, batch: false };
    this.emit(k, 'ack', now, out, false);
    return { ok: true, events: out.events };
  }

  /** Removes an acknowledgement; re-notification resumes. */
  unack(target: string, now: number): ActionResult {
    const k = this.find(target);
    if (k === undefined || k.ack === null) return { ok: false, events: [], code: 'not_found', message: `no acknowledged active alert ${preview(target)}` };
    if (!Number.isFinite(now)) return { ok: false, events: [], code: 'invalid', message: 'now must be a finite number' };
    k.ack = null;
    const out: AlertOutput = { events: [], rejects: [], evaluations: 0, batch: false };
    this.emit(k, 'unack', now, out, false);
    return { ok: true, events: out.events };
  }

  /** Silences alerts of a device (id or glob), rule and/or key until `until`. */
  silence(spec: SilenceSpec, now: number): ActionResult {
    const bad = (message: string): ActionResult => ({ ok: false, events: [], code: 'invalid', message });
    if (!isObj(spec)) return bad('a silence is an object { device?, rule?, key?, until, by?, comment? }');
    const { device, rule, key, until, by, comment } = spec;
    if (device === undefined && rule === undefined && key === undefined) return bad('a silence needs a device, a rule or a key');
    if (device !== undefined && !(typeof device === 'string' && device.length <= 128 && isValidDeviceId(device.replace(/[*?]/g, 'a')))) return bad(`silence device must be a device id or glob, got ${preview(device)}`);
    if (rule !== undefined && !isValidDeviceId(rule)) return bad(`silence rule must be a rule id, got ${preview(rule)}`);
    if (key !== undefined && (typeof key !== 'string' || key === '' || key.length > 512)) return bad(`silence key must be text, got ${preview(key)}`);
    if (typeof until !== 'number' || !Number.isFinite(until) || !(until > now)) return bad(`silence until must be a time (ms) after now, got ${preview(until)}`);
    if (by !== undefined && (typeof by !== 'string' || by.length > 128)) return bad('silence by: text of at most 128 characters');
    if (comment !== undefined && (typeof comment !== 'string' || comment.length > 1024)) return bad('silence comment: text of at most 1024 characters');
    if (this.silenceList.length >= this.maxSilences) return { ok: false, events: [], code: 'limit', message: `at most ${this.maxSilences} silences` };
    const s: Silence = { id: `${this.idPrefix}s${now.toString(36)}-${(this.seq++).toString(36)}`, until, created: now };
    if (device !== undefined) s.device = device;
    if (rule !== undefined) s.rule = rule;
    if (key !== undefined) s.key = key;
    if (by !== undefined) s.by = by;
    if (comment !== undefined) s.comment = comment;
    const out: AlertOutput = { events: [], rejects: [], evaluations: 0, batch: false };
    const affected = [...this.live].filter((k) => (k.st === PENDING || k.st === FIRING) && silenceMatches(s, k) && !this.silenced(k, now));
    this.silenceList.push(s);
    this.version++;
    for (const k of affected) this.emit(k, 'silenced', now, out, false);
    return { ok: true, events: out.events, id: s.id };
  }

  /** Ends a silence now. */
  unsilence(id: string, now: number): ActionResult {
    const i = this.silenceList.findIndex((s) => s.id === id);
    if (i < 0) return { ok: false, events: [], code: 'not_found', message: `no silence ${preview(id)}` };
    const s = this.silenceList[i];
    const affected = [...this.live].filter((k) => silenceMatches(s, k) && this.silenced(k, now));
    this.silenceList.splice(i, 1);
    this.version++;
    const out: AlertOutput = { events: [], rejects: [], evaluations: 0, batch: false };
    for (const k of affected) if (!this.silenced(k, now)) this.catchUp(k, 'unsilenced', now, out);
    return { ok: true, events: out.events };
  }

  /** Silences still running at `now` (all held when now is omitted). */
  silences(now?: number): Silence[] {
    return this.silenceList.filter((s) => now === undefined || s.until > now).map((s) => ({ ...s }));
  }

  /**
   * Forgets a device (deleted or disabled in the registry): its active alerts are resolved
   * (reason 'forgotten'; pending ones cancelled) and its keys dropped.
   */
  forget(device: string, now: number): AlertEvent[] {
    const out: AlertOutput = { events: [], rejects: [], evaluations: 0, batch: false };
    for (let ri = 0; ri < this.rules.length; ri++) {
      const rule = this.rules[ri];
      const keys: Key[] = [];
      if (rule.defaultKey) {
        const m = this.maps[ri].get(device);
        if (m) keys.push(...m.values());
      } else for (const m of this.maps[ri].values()) for (const k of m.values()) if (k.device === device) keys.push(k);
      for (const k of keys) {
        if (k.st === FIRING) this.change(k, RESOLVED, k.lv, 'forgotten', now, out);
        else if (k.st === PENDING) this.change(k, OK, k.lv, 'forgotten', now, out);
        this.dropKey(k);
      }
    }
    this.ruleCache.delete(device);
    if (out.events.length > 0) this.version++;
    return out.events;
  }

  // ---- views -----------------------------------------------------------------------------------

  /** Pending and firing alerts (the dashboard's list), most severe first, then oldest first. */
  active(now: number): AlertEvent[] {
    const list: Key[] = [];
    for (const k of this.live) if (k.st === PENDING || k.st === FIRING) list.push(k);
    list.sort((a, b) => b.st - a.st || a.rule.levels[a.lv].rank - b.rule.levels[b.lv].rank || a.since - b.since || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return list.map((k) => this.view(k, now));
  }

  /** One active alert by id or key. */
  get(target: string, now: number): AlertEvent | undefined {
    const k = this.find(target);
    return k === undefined ? undefined : this.view(k, now);
  }

  stats(): AlertStats {
    let pending = 0;
    let firing = 0;
    let acknowledged = 0;
    for (const k of this.live) {
      if (k.st === PENDING) pending++;
      else if (k.st === FIRING) firing++;
      if (k.ack !== null && (k.st === PENDING || k.st === FIRING)) acknowledged++;
    }
    const c = this.counts;
    return {
      keys: this.nKeys,
      maxKeys: this.maxKeys,
      pending,
      firing,
      acknowledged,
      silences: this.silenceList.length,
      evaluations: c[C_EVALS],
      ingested: c[C_INGESTED],
      rejected: c[C_REJECTED],
      stale: c[C_STALE],
      ignored: c[C_IGNORED],
      evicted: c[C_EVICTED],
      overflow: c[C_OVERFLOW],
    };
  }

  // ---- state -----------------------------------------------------------------------------------

  snapshot(): AlertSnapshot {
    const keys: KeyRow[] = [];
    const index = new Map<Key, number>();
    for (const mm of this.maps) {
      for (const m of mm.values()) {
        for (const k of m.values()) {
          index.set(k, keys.length);
          keys.push(keyRow(k));
        }
      }
    }
    return {
      v: 1,
      rules: this.ruleSources(),
      keys,
      live: [...this.live].map((k) => index.get(k)!),
      silences: this.silenceList.map((s) => ({ ...s })),
      clock: this.clock,
      seq: this.seq,
      counts: this.counts.slice(),
    };
  }

  /**
   * The snapshot as JSON text in pieces (State.saveStream), for a save that runs between the engine's other work:
   * one snapshot() and its JSON.stringify held the event loop for 40-70 ms every 10 s with 2,000 devices. Each piece
   * is made when it is asked for, so the engine may change between pieces: every key's row is whole as of its piece
   * (a key seen again under the same rule and names, dropped and made anew meanwhile, is written once); `live` lists
   * the keys that were live when their row was made, so a row and its mark agree; silences, the clock, the id
   * sequence and the counters come last, so nothing restored is behind a row. With no change between the pieces the
   * text is JSON.stringify(snapshot()).
   */
  *snapshotText(keysPerPiece = SNAPSHOT_KEYS_PER_PIECE): Generator<string> {
    yield `{"v":1,"rules":${JSON.stringify(this.ruleSources())},"keys":[`;
    const index = new Map<Key, number>();
    const written = new Set<string>();
    const wasLive: Key[] = [];
    let piece: string[] = [];
    for (let ri = 0; ri < this.maps.length; ri++) {
      for (const m of this.maps[ri].values()) {
        for (const k of m.values()) {
          const name = `${ri}\u0000${k.outer}\u0000${k.inner}`;
          if (written.has(name)) continue;
          written.add(name);
          if (k.live) wasLive.push(k);
          piece.push(JSON.stringify(keyRow(k, false)));
          index.set(k, index.size);
          if (piece.length >= keysPerPiece) {
            yield (index.size > piece.length ? ',' : '') + piece.join(',');
            piece = [];
          }
        }
      }
    }
    if (piece.length > 0) yield (index.size > piece.length ? ',' : '') + piece.join(',');
    // In the order of the live set where they still are in it (as snapshot() lists them), then the rest.
    const marked = new Set(wasLive);
    const live: number[] = [];
    for (const k of this.live) if (marked.delete(k)) live.push(index.get(k)!);
    for (const k of wasLive) if (marked.has(k)) live.push(index.get(k)!);
    yield `],"live":${JSON.stringify(live)},"silences":${JSON.stringify(this.silenceList)},"clock":${JSON.stringify(this.clock)},"seq":${JSON.stringify(this.seq)},"counts":${JSON.stringify(this.counts)}}`;
  }

  private ruleSources(): Record<string, string> {
    const rules: Record<string, string> = {};
    for (const r of this.rules) rules[r.id] = r.source;
    return rules;
  }

  /**
   * Replaces the state with a snapshot's (throws RangeError for a malformed one, leaving the
   * state as it was). Keys of rules that are gone or changed are dropped; the returned events
   * resolve (or cancel) the active ones among them (reason 'rule-changed').
   */
  restore(snap: unknown, now: number): AlertEvent[] {
    const bad = (why: string): never => {
      throw new RangeError(`alert snapshot: ${why}`);
    };
    if (!isObj(snap) || snap.v !== 1) bad('not a version 1 snapshot');
    const s = snap as unknown as AlertSnapshot;
    if (!isObj(s.rules) || !Array.isArray(s.keys) || !Array.isArray(s.live) || !Array.isArray(s.silences) || !Array.isArray(s.counts)) bad('missing fields');
    if (!Number.isInteger(s.clock) || !Number.isInteger(s.seq) || s.counts.length !== this.counts.length || !s.counts.every((c) => Number.isInteger(c))) bad('bad counters');
    const byRule = new Map<string, number>();
    this.rules.forEach((r, i) => {
      if (s.rules[r.id] === r.source) byRule.set(r.id, i);
    });
    const maps = this.rules.map(() => new Map<string, Map<string, Key>>());
    const all: Key[] = [];
    const orphans: Key[] = [];
    const isFact = (v: unknown): boolean => v === null || typeof v === 'boolean' || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
    const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    for (const row of s.keys as unknown[]) {
      if (!Array.isArray(row) || row.length !== 16) bad('bad key row');
      const [rid, outer, inner, key, device, metric, f, ft, rr, nums, id, ack, nid, flapping, ch, severity] = row as KeyRow;
      if (typeof rid !== 'string' || typeof outer !== 'string' || typeof inner !== 'string' || typeof key !== 'string' || typeof device !== 'string' || !(metric === null || typeof metric === 'string')) bad('bad key names');
      if (!Array.isArray(nums) || nums.length !== 11 || !nums.every(isNum)) bad('bad key numbers');
      if (!(id === null || typeof id === 'string') || !(nid === null || typeof nid === 'string') || typeof flapping !== 'boolean' || !Array.isArray(ch) || !ch.every(isNum)) bad('bad key fields');
      if (!(ack === null || (isObj(ack) && typeof ack.by === 'string' && isNum(ack.at)))) bad('bad ack');
      const ri = byRule.get(rid);
      if (!SEVERITIES.includes(severity as Severity)) bad('bad severity');
      const rule = ri === undefined ? orphanRule(rid, severity as Severity) : this.rules[ri];
      const k = new Key(rule, ri ?? -1, outer, inner, key, device, metric);
      if (ri !== undefined) {
        if (!Array.isArray(f) || f.length !== rule.slots.length || !f.every(isFact)) bad('bad facts');
        if (!Array.isArray(ft) || ft.length !== rule.slots.length || !ft.every(isNum)) bad('bad fact times');
        if (!Array.isArray(rr) || rr.length !== rule.slots.length || !rr.every((r) => r === null || (Array.isArray(r) && r.every(isNum)))) bad('bad rate samples');
        if (nums[1] >= rule.levels.length || nums[3] >= rule.levels.length) bad('level out of range');
        k.f = f.slice();
        k.ft = ft.slice();
        k.rr = rr.map((r) => (r === null ? null : r.slice()));
      }
      [k.st, k.lv, k.since, k.pl, k.ps, k.pc, k.ns, k.nl, k.ln, k.lc, k.u] = nums;
      if (ri === undefined) {
        k.lv = 0;
        k.pl = -1;
      }
      if (k.st < OK || k.st > RESOLVED || !Number.isInteger(k.st)) bad('bad state');
      k.id = id;
      k.ack = ack === null ? null : ack.comment === undefined ? { by: ack.by, at: ack.at } : { by: ack.by, at: ack.at, comment: String(ack.comment) };
      k.nid = nid;
      k.flapping = flapping;
      k.ch = ch.slice();
      all.push(k);
      if (ri === undefined) orphans.push(k);
      else {
        let m = maps[ri].get(outer);
        if (m === undefined) maps[ri].set(outer, (m = new Map()));
        m.set(inner, k);
      }
    }
    const live: Key[] = [];
    for (const i of s.live as unknown[]) {
      if (!Number.isInteger(i) || (i as number) < 0 || (i as number) >= all.length) bad('bad live index');
      live.push(all[i as number]);
    }
    const silences: Silence[] = [];
    for (const x of s.silences as unknown[]) {
      if (!isObj(x) || typeof x.id !== 'string' || !isNum(x.until) || !isNum(x.created)) bad('bad silence');
      silences.push({ ...(x as unknown as Silence) });
    }
    // Commit.
    for (let i = 0; i < maps.length; i++) this.maps[i] = maps[i];
    this.byId.clear();
    this.live = new Set();
    this.nKeys = 0;
    for (const m of maps) for (const mm of m.values()) this.nKeys += mm.size;
    for (const k of live) {
      if (k.ri < 0) continue;
      k.live = true;
      this.live.add(k);
    }
    for (const k of all) if (k.ri >= 0 && k.id !== null) this.byId.set(k.id, k);
    this.silenceList = silences;
    this.clock = s.clock;
    this.seq = s.seq;
    for (let i = 0; i < this.counts.length; i++) this.counts[i] = s.counts[i];
    this.ruleCache.clear();
    this.version++;
    const out: AlertOutput = { events: [], rejects: [], evaluations: 0, batch: false };
    for (const k of orphans) {
      if (k.st === FIRING) this.change(k, RESOLVED, k.lv, 'rule-changed', now, out);
      else if (k.st === PENDING) this.change(k, OK, k.lv, 'rule-changed', now, out);
      this.live.delete(k);
    }
    return out.events;
  }
}

function matchDevice(pattern: string, device: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === device;
  let re = globCache.get(pattern);
  if (re === undefined) {
    re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*+/g, '.*').replace(/\?/g, '.')}$`, 's');
    if (globCache.size > 1000) globCache.clear();
    globCache.set(pattern, re);
  }
  return re.test(device);
}
const globCache = new Map<string, RegExp>();

function silenceMatches(s: Silence, k: Key): boolean {
  return (s.rule === undefined || s.rule === k.rule.id) && (s.key === undefined || s.key === k.key) && (s.device === undefined || matchDevice(s.device, k.device));
}

/** A stand-in rule for a restored key whose rule is gone: enough to describe its last event. */
function orphanRule(id: string, severity: Severity): CompiledRule {
  const levels = [{ severity, rank: SEVERITIES.indexOf(severity), when: () => false, clear: () => true, forMs: 0, samples: 1, whenText: '', clearText: '' }];
  return { id, name: id, source: '', devices: null, tags: [], metricNames: null, metricTest: null, keyParts: [], defaultKey: true, levels, slots: [], primary: -1, readingSlots: [], anomalySlots: [], livenessSlots: [], renotifyMs: 0, flap: null };
}
