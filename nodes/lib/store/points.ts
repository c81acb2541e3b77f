/**
 * The point schema: how Readings, Rollups and Alert events become time-series
 * points. Documented in the README ("Point schema"); configurable on the write node.
 *
 *   Reading -> measurement `telemetry`, tags { device, ...reading.tags, ...device metadata tags },
 *              one field per metric (numbers float, or integer for the configured names;
 *              booleans; strings), time = reading.ts
 *   Rollup  -> measurement `rollup`, tags { device, metric, level, ...rollup.tags },
 *              fields count (integer), sum, mean, min, max, stddev, first, last, first_ts, last_ts
 *              (integers, ms), window_ms (integer), time = window.start
 *   Alert   -> measurement `alerts`, tags { device, rule, severity, key, metric? },
 *              fields state, value, since (integer ms), acknowledged, message, time = since
 *   AnomalyScore -> measurement `anomaly`, tags { device, metric, ...score.tags },
 *              fields value, score, expected, lower, upper (floats; the band is left out before it
 *              exists), anomalous, learning (booleans), signal (string), and with a maintenance
 *              estimate ttf (integer ms, left out when null) and probability, time = ts; or only the
 *              fields listed in the schema's scoreFields; with a BandGate, the band (expected, lower,
 *              upper) of a series at most once every bandEvery ms; with a ScoreGate, a series' scores
 *              at most once every scoreEvery ms, anomalous ones and maintenance alerts always
 */
import type { AlertEvent, AnomalyScore, Reading, Reject, Rollup } from '../contract';
import { ThingwireError } from '../errors';
import { preview } from '../names';
import { typeName } from '../time';
import type { FieldValue, Point } from './types';

export interface PointSchema {
  readingMeasurement: string;
  rollupMeasurement: string;
  alertMeasurement: string;
  /** Measurement of AnomalyScores; 'anomaly' when not set. */
  anomalyMeasurement?: string;
  /** Keys of `msg.device` (device metadata) copied into tags when they hold a string or number. */
  deviceTags: readonly string[];
  /** Metric names written as integers (when their value is a whole number). Others are floats. */
  intFields: readonly string[];
  /**
   * A reading's point may take the reading's `metrics` object as its fields (see readingToPoint): true only when
   * nothing can change it while the point waits to be written (the write node: when Thingwire's fan-out hooks run).
   */
  keepMetrics?: boolean;
  /** The AnomalyScore fields stored (see SCORE_FIELDS); every one when not set. */
  scoreFields?: ReadonlySet<ScoreField>;
  /** When set, a score's band (expected, lower, upper) is stored only when this gate admits it. */
  bandGate?: BandGate;
  /** When set, a score is stored only when this gate admits it (see ScoreGate); the others map to no point. */
  scoreGate?: ScoreGate;
}

/** Series a BandGate or ScoreGate remembers before it starts over (each entry ~100 bytes). */
export const BAND_GATE_MAX_SERIES = 100_000;

/**
 * Lets a device's metric through at most once every `everyMs` of event time, and always when the caller calls it
 * notable, or when the last one let through was notable. One not newer than the last let through (a redelivery, an
 * out-of-order reading) is let through and changes nothing, so what is delivered again is stored again. Holds one entry
 * per device and metric, up to maxSeries, then starts over (letting each through once more).
 */
class IntervalGate {
  private readonly last = new Map<string, Map<string, { ts: number; notable: boolean }>>();
  private size = 0;

  constructor(
    readonly everyMs: number,
    private readonly maxSeries: number = BAND_GATE_MAX_SERIES,
  ) {
    if (!(Number.isFinite(everyMs) && everyMs > 0)) throw new RangeError(`everyMs must be a number > 0, got ${everyMs}`);
  }

  /** Whether this one goes through; records it when it does. */
  admit(device: string, metric: string, ts: number, notable = false): boolean {
    let byMetric = this.last.get(device);
    const prev = byMetric?.get(metric);
    if (prev !== undefined) {
      // Not newer than the last let through: a redelivery (the same reading again, perhaps because its first write
      // was lost) or an out-of-order reading. Let through, stored again at worst (writes are idempotent).
      if (ts <= prev.ts) return true;
      if (!notable && !prev.notable && ts - prev.ts < this.everyMs) return false;
      prev.ts = ts;
      prev.notable = notable;
      return true;
    }
    if (this.size >= this.maxSeries) {
      this.last.clear();
      this.size = 0;
      byMetric = undefined;
    }
    if (byMetric === undefined) this.last.set(device, (byMetric = new Map()));
    byMetric.set(metric, { ts, notable });
    this.size++;
    return true;
  }

  /** Series remembered. */
  get series(): number {
    return this.size;
  }
}

/**
 * Lets the band fields (expected, lower, upper) of a device's metric through at most once every `everyMs` of event
 * time: the band is a smooth statistic that the Device page reads back in chart-wide buckets, so a device scored 25
 * times a second stored 75 band rows a second per metric that no chart showed, and those rows were most of what the
 * store wrote per reading (see the README's performance section). The score and the other fields are not gated.
 */
export class BandGate extends IntervalGate {
  /** Whether the band of this score is stored; records it when it is. */
  override admit(device: string, metric: string, ts: number): boolean {
    return super.admit(device, metric, ts, false);
  }
}

/**
 * Lets the scores of a device's metric through at most once every `everyMs` of event time, except those that matter on
 * their own: a score that is anomalous or carries a maintenance alert (`notable`) is always let through, and so is the
 * first one after it (the return to normal). A score is what the anomaly node gives for every reading of every scored
 * metric: three metrics of a device reporting 30 times a second were 90 score points a second, three stored rows for
 * every stored reading row, which the dashboard does not read back (it reads the band, see BandGate) and which bounded
 * what the embedded store takes (see the README's performance section). A device reporting every `everyMs` or slower
 * keeps every score.
 */
export class ScoreGate extends IntervalGate {}

/** Whether a score is stored whatever a ScoreGate's interval: anomalous, or with a maintenance alert. */
function notableScore(a: AnomalyScore): boolean {
  return a.anomalous === true || (isObject(a.maintenance) && a.maintenance.alert === true);
}

/** An AnomalyScore point's fields, every one it can have. */
export const SCORE_FIELDS = ['value', 'score', 'anomalous', 'expected', 'lower', 'upper', 'signal', 'learning', 'ttf', 'probability'] as const;
export type ScoreField = (typeof SCORE_FIELDS)[number];

/**
 * The score fields to store from a configured list: undefined (every field) for an empty list; names that are not
 * score fields come back in `unknown` (the caller refuses the configuration).
 */
export function parseScoreFields(names: readonly string[]): { fields?: ReadonlySet<ScoreField>; unknown: string[] } {
  const known = new Set<string>(SCORE_FIELDS);
  const unknown = names.filter((n) => !known.has(n));
  if (names.length === 0 || unknown.length > 0) return { unknown };
  return { fields: new Set(names as ScoreField[]), unknown };
}

export const DEFAULT_POINT_SCHEMA: PointSchema = {
  readingMeasurement: 'telemetry',
  rollupMeasurement: 'rollup',
  alertMeasurement: 'alerts',
  anomalyMeasurement: 'anomaly',
  deviceTags: [],
  intFields: [],
};

export type PayloadKind = 'reading' | 'rollup' | 'alert' | 'anomaly';

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Which contract type a value is, by its shape; undefined when it is none of them. */
export function kindOf(v: unknown): PayloadKind | undefined {
  if (!isObject(v)) return undefined;
  if (isObject(v.metrics)) return 'reading';
  if (typeof v.metric === 'string' && isObject(v.window)) return 'rollup';
  if (typeof v.rule === 'string' && typeof v.state === 'string' && typeof v.key === 'string') return 'alert';
  if (typeof v.metric === 'string' && typeof v.score === 'number' && typeof v.anomalous === 'boolean') return 'anomaly';
  return undefined;
}

function metadataTags(device: unknown, keys: readonly string[], tags: Record<string, string>): void {
  if (!isObject(device) || keys.length === 0) return;
  for (const k of keys) {
    const v = device[k];
    if (typeof v === 'string' && v !== '') tags[k] = v;
    else if (typeof v === 'number' && Number.isFinite(v)) tags[k] = String(v);
  }
}

function requireString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw new ThingwireError('not_a_reading', `${what} must be a non-empty string, got ${typeName(v)}`);
  return v;
}

/** Times every store can hold, in ms: InfluxDB's int64 nanoseconds (1677-09-21 to 2262-04-11). */
const MAX_STORE_TS = 9_223_372_036_854;

function requireTs(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ThingwireError('invalid_ts', `${what} must be ms since epoch, got ${preview(v)}`);
  if (Math.abs(v) > MAX_STORE_TS) throw new ThingwireError('ts_out_of_range', `${what} ${v} is outside what a time-series store can hold (1677-09-21 to 2262-04-11)`);
  return v;
}

function storableMs(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= MAX_STORE_TS;
}

/**
 * A Reading's point. `sameTags`: given only for a reading without tags of its own, the tags of the point made before
 * it from the same payload with the same device metadata, when that reading had none either; used as they are (one
 * object for the points of a batch) when the device is the same. With `s.keepMetrics`, the point's fields are the reading's
 * `metrics` object itself when every metric is stored as it is (numbers, booleans and strings, no integer field among
 * them): the copy was a third of what the store allocated a reading, kept until the batch was written.
 */
export function readingToPoint(r: Reading, device: unknown, s: PointSchema, sameTags?: Record<string, string>): Point {
  const id = requireString(r.device, 'reading.device');
  let tags: Record<string, string>;
  if (sameTags !== undefined && sameTags.device === id) tags = sameTags;
  else {
    tags = {};
    metadataTags(device, s.deviceTags, tags);
    if (isObject(r.tags)) for (const k in r.tags) if (typeof r.tags[k] === 'string') tags[k] = r.tags[k];
    tags.device = id;
  }
  const metrics = r.metrics;
  const ints = s.intFields.length > 0;
  let n = 0;
  let asIs = s.keepMetrics === true;
  for (const k in metrics) {
    const v = metrics[k];
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new ThingwireError('invalid_value', `metric ${preview(k)} is ${v}`);
      if (ints && s.intFields.includes(k) && Number.isSafeInteger(v)) asIs = false;
    } else if (typeof v !== 'boolean' && typeof v !== 'string') {
      asIs = false;
      continue;
    }
    n++;
  }
  if (n === 0) throw new ThingwireError('no_metrics', `reading from ${preview(r.device)} has no metrics`);
  let fields = metrics as Record<string, FieldValue>;
  if (!asIs) {
    fields = {};
    for (const k in metrics) {
      const v = metrics[k];
      if (typeof v === 'number') fields[k] = ints && s.intFields.includes(k) && Number.isSafeInteger(v) ? BigInt(v) : v;
      else if (typeof v === 'boolean' || typeof v === 'string') fields[k] = v;
    }
  }
  return { measurement: s.readingMeasurement, tags, fields, ts: requireTs(r.ts, 'reading.ts') };
}

/** Whether a reading's `tags` has a tag a point would take (a text value). */
function hasTags(t: unknown): boolean {
  if (!isObject(t)) return false;
  for (const k in t) if (typeof t[k] === 'string') return true;
  return false;
}

const ROLLUP_FLOATS = ['sum', 'mean', 'min', 'max', 'stddev', 'first', 'last', 'p50', 'p90', 'p95', 'p99', 'delta', 'rate'] as const;

export function rollupToPoint(r: Rollup, device: unknown, s: PointSchema): Point {
  const tags: Record<string, string> = {};
  metadataTags(device, s.deviceTags, tags);
  if (isObject(r.tags)) for (const k in r.tags) if (typeof r.tags[k] === 'string') tags[k] = r.tags[k];
  tags.device = requireString(r.device, 'rollup.device');
  tags.metric = requireString(r.metric, 'rollup.metric');
  if (typeof r.level === 'string' && r.level !== '') tags.level = r.level;
  if (!isObject(r.window)) throw new ThingwireError('not_a_reading', 'rollup.window must be an object');
  const fields: Record<string, FieldValue> = {};
  if (typeof r.count !== 'number' || !Number.isInteger(r.count) || r.count < 0) throw new ThingwireError('invalid_value', `rollup.count must be a whole number, got ${preview(r.count)}`);
  fields.count = BigInt(r.count);
  for (const k of ROLLUP_FLOATS) {
    const v = r[k];
    if (typeof v === 'number' && Number.isFinite(v)) fields[k] = v;
  }
  if (typeof r.nonNumeric === 'number' && Number.isSafeInteger(r.nonNumeric)) fields.non_numeric = BigInt(r.nonNumeric);
  if (typeof r.resets === 'number' && Number.isSafeInteger(r.resets)) fields.resets = BigInt(r.resets);
  if (storableMs(r.firstTs)) fields.first_ts = BigInt(Math.trunc(r.firstTs));
  if (storableMs(r.lastTs)) fields.last_ts = BigInt(Math.trunc(r.lastTs));
  if (storableMs(r.window.size)) fields.window_ms = BigInt(Math.trunc(r.window.size));
  return { measurement: s.rollupMeasurement, tags, fields, ts: requireTs(r.window.start, 'rollup.window.start') };
}

export function alertToPoint(a: AlertEvent, device: unknown, s: PointSchema): Point {
  const tags: Record<string, string> = {};
  metadataTags(device, s.deviceTags, tags);
  tags.device = requireString(a.device, 'alert.device');
  tags.rule = requireString(a.rule, 'alert.rule');
  tags.severity = requireString(a.severity, 'alert.severity');
  tags.key = requireString(a.key, 'alert.key');
  if (typeof a.metric === 'string' && a.metric !== '') tags.metric = a.metric;
  const since = requireTs(a.since, 'alert.since');
  const fields: Record<string, FieldValue> = { state: requireString(a.state, 'alert.state'), since: BigInt(Math.trunc(since)) };
  if (typeof a.value === 'number' && Number.isFinite(a.value)) fields.value = a.value;
  else if (typeof a.value === 'string' || typeof a.value === 'boolean') fields.value_text = String(a.value);
  if (typeof a.acknowledged === 'boolean') fields.acknowledged = a.acknowledged;
  if (typeof a.message === 'string') fields.message = a.message;
  return { measurement: s.alertMeasurement, tags, fields, ts: since };
}

const BAND = ['expected', 'lower', 'upper'] as const;

/** Whether a score field is stored under the schema's scoreFields (every field when it is not set). */
function stores(keep: ReadonlySet<ScoreField> | undefined, f: ScoreField): boolean {
  return keep === undefined || keep.has(f);
}

/** Throws the reject for a score that cannot be stored (before any gate looks at it); its ts when it can. */
function checkScore(a: AnomalyScore): number {
  requireString(a.device, 'anomaly.device');
  requireString(a.metric, 'anomaly.metric');
  if (typeof a.value !== 'number' || !Number.isFinite(a.value)) throw new ThingwireError('invalid_value', `anomaly.value must be a finite number, got ${preview(a.value)}`);
  if (!Number.isFinite(a.score)) throw new ThingwireError('invalid_value', `anomaly.score must be a finite number, got ${preview(a.score)}`);
  return requireTs(a.ts, 'anomaly.ts');
}

export function anomalyToPoint(a: AnomalyScore, device: unknown, s: PointSchema): Point {
  return checkedScoreToPoint(a, checkScore(a), device, s);
}

/** anomalyToPoint of a score checkScore accepted, at the ts it returned. */
function checkedScoreToPoint(a: AnomalyScore, ts: number, device: unknown, s: PointSchema): Point {
  const tags: Record<string, string> = {};
  metadataTags(device, s.deviceTags, tags);
  if (isObject(a.tags)) for (const k in a.tags) if (typeof a.tags[k] === 'string') tags[k] = a.tags[k];
  tags.device = a.device;
  tags.metric = a.metric;
  const keep = s.scoreFields;
  const fields: Record<string, FieldValue> = {};
  if (stores(keep, 'value')) fields.value = a.value;
  if (stores(keep, 'score')) fields.score = a.score;
  if (s.bandGate === undefined || s.bandGate.admit(tags.device, tags.metric, ts)) {
    for (const k of BAND) {
      const v = a[k];
      if (typeof v === 'number' && Number.isFinite(v) && stores(keep, k)) fields[k] = v;
    }
  }
  if (stores(keep, 'anomalous')) fields.anomalous = a.anomalous;
  if (typeof a.signal === 'string' && a.signal !== '' && stores(keep, 'signal')) fields.signal = a.signal;
  if (typeof a.learning === 'boolean' && stores(keep, 'learning')) fields.learning = a.learning;
  const m = a.maintenance;
  if (isObject(m)) {
    if (storableMs(m.ttf) && stores(keep, 'ttf')) fields.ttf = BigInt(Math.round(m.ttf));
    if (typeof m.probability === 'number' && Number.isFinite(m.probability) && stores(keep, 'probability')) fields.probability = m.probability;
  }
  return { measurement: s.anomalyMeasurement || DEFAULT_POINT_SCHEMA.anomalyMeasurement!, tags, fields, ts };
}

/**
 * Maps a payload (one Reading, Rollup, Alert event or AnomalyScore, or an array of them) to points.
 * Elements that cannot be mapped become rejects with their index; the rest go on. Device metadata
 * (for deviceTags) is `devices[element.device]` when a map of several devices is given (a batch from
 * thingwire-batch or thingwire-device), else `device` for every element.
 */
export function toPoints(
  payload: unknown,
  deviceMeta: unknown,
  s: PointSchema,
  devices?: unknown,
): { points: Point[]; indexes: number[]; rejects: Reject[]; batch: boolean } {
  const byId = isObject(devices) && s.deviceTags.length > 0 ? devices : undefined;
  const batch = Array.isArray(payload);
  const items: unknown[] = batch ? (payload as unknown[]) : [payload];
  const points: Point[] = [];
  const indexes: number[] = [];
  const rejects: Reject[] = [];
  // The tags of the last reading point with no tags of its own, and the device metadata they were made with.
  let lastTags: Record<string, string> | undefined;
  let lastMeta: unknown;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const id = byId !== undefined && isObject(item) ? item.device : undefined;
    const device = typeof id === 'string' && Object.prototype.hasOwnProperty.call(byId, id) ? (byId as Record<string, unknown>)[id] : deviceMeta;
    try {
      switch (kindOf(item)) {
        case 'reading': {
          const untagged = !hasTags((item as Reading).tags);
          const p = readingToPoint(item as Reading, device, s, untagged && device === lastMeta ? lastTags : undefined);
          points.push(p);
          if (untagged) {
            lastTags = p.tags;
            lastMeta = device;
          }
          break;
        }
        case 'rollup':
          points.push(rollupToPoint(item as Rollup, device, s));
          break;
        case 'alert':
          points.push(alertToPoint(item as AlertEvent, device, s));
          break;
        case 'anomaly': {
          const a = item as AnomalyScore;
          const ts = checkScore(a);
          // Not stored under the score gate: no point, and no reject (a bad score is rejected before the gate looks).
          if (s.scoreGate !== undefined && !s.scoreGate.admit(a.device, a.metric, ts, notableScore(a))) continue;
          const p = checkedScoreToPoint(a, ts, device, s);
          // None of the chosen score fields in this score (ttf and probability only, and no maintenance estimate).
          if (s.scoreFields !== undefined && isEmpty(p.fields)) continue;
          points.push(p);
          break;
        }
        default:
          throw new ThingwireError('not_a_reading', `payload is not a Reading, Rollup, Alert event or anomaly score: ${preview(item)}`);
      }
      indexes.push(i);
    } catch (e) {
      if (!(e instanceof ThingwireError)) throw e;
      rejects.push(e.toReject(batch ? i : undefined));
    }
  }
  return { points, indexes, rejects, batch };
}
