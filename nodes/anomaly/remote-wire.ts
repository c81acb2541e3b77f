/**
 * How the anomaly node hands readings to its scoring worker and takes the scores back (the node's *Score in a
 * worker thread* option: remote.ts on the node's side, scorer-worker.ts in the worker). No Node-RED, no worker here:
 * pure functions, tested alone (test/unit/anomaly-remote.test.ts).
 *
 * Why packed: a structured clone of a 100-reading message cost the main thread ~40 us, more than half of scoring it
 * there; written into typed arrays (transferred, not copied) it costs ~12-16 us, and the worker makes the readings
 * again. Only the scores handed out come back (with *Scores out* a few a message), as numbers, and the node builds
 * them from its own readings, so they are the objects the scorer in the thread would have made (same properties in
 * the same order, the reading's own `tags` object).
 *
 * Readings. An item whose shape alone refuses it (shapeReject: not an object, `metrics` not an object, a device id
 * that is not one, a ts that is not a finite number) is judged here and never sent; the worker only counts it. Every
 * other item is sent as: u32 device (an index into `strs`), u32 metric count, per metric u32 name and u32 1 when its
 * value is a number (0 when not: the scorer skips those, but they count as metrics), and f64 ts, then the numbers in
 * order. `idx` holds each sent item's index in the batch. Tags are not sent: the scorer only copies them into the
 * scores, which the node makes from its own reading.
 *
 * Scores. Per score f64 ts, value, score, expected, lower, upper and u32 the reading's index in the batch, the metric
 * (an index into the request's `strs` followed by the reply's `names`), and (signal << 2 | learning << 1 | anomalous),
 * the signal being a name as well. A maintenance estimate (only with maintenance rules) goes by structured clone.
 *
 * Events keep their shape (structured clone) but their message texts are made by the node, from its message
 * catalogue: the worker's scorer writes a marker `\uE001<n>` as the text and the reply carries the facts
 * (`facts[n]`: which text, and its parameters) for the node to fill in (fillEventText).
 */
import type { AlertEvent, AnomalyScore, MaintenanceEstimate, Reject } from '../lib/contract';
import { MAX_BATCH } from '../lib/contract';
import { isValidDeviceId } from '../lib/names';
import { shapeReject, tooLargeReject, type EventText } from './scorer';

/** The readings of one message as sent to the worker. */
export interface PackedReadings {
  /** True when the payload was an array. */
  batch: boolean;
  /** Items sent (a single reading: 0 or 1). */
  n: number;
  /** Items judged by their shape before sending (rejected; the worker counts them). */
  refused: number;
  strs: string[];
  u: Uint32Array;
  f: Float64Array;
  /** Index in the batch of each item sent. */
  idx: Uint32Array;
}

/** What packReadings gives: the message to send (undefined when nothing is left to score) and the rejects it judged. */
export interface Packed {
  msg: PackedReadings;
  /** The rejects judged here, in input order. */
  rejects: Reject[];
}

class Growing {
  u: Uint32Array;
  f: Float64Array;
  up = 0;
  fp = 0;
  constructor(items: number) {
    this.u = new Uint32Array(Math.max(16, items * 12));
    this.f = new Float64Array(Math.max(8, items * 5));
  }
  int(v: number): void {
    if (this.up === this.u.length) {
      const b = new Uint32Array(this.u.length * 2);
      b.set(this.u);
      this.u = b;
    }
    this.u[this.up++] = v;
  }
  num(v: number): void {
    if (this.fp === this.f.length) {
      const b = new Float64Array(this.f.length * 2);
      b.set(this.f);
      this.f = b;
    }
    this.f[this.fp++] = v;
  }
}

/**
 * Packs a message's payload (a reading, an array of them, or anything: what cannot be a reading is rejected here as
 * the scorer would reject it).
 */
export function packReadings(payload: unknown): Packed {
  const batch = Array.isArray(payload);
  const rejects: Reject[] = [];
  if (batch && (payload as unknown[]).length > MAX_BATCH) {
    rejects.push(tooLargeReject((payload as unknown[]).length));
    return { msg: { batch, n: 0, refused: 1, strs: [], u: new Uint32Array(0), f: new Float64Array(0), idx: new Uint32Array(0) }, rejects };
  }
  const items: readonly unknown[] = batch ? (payload as unknown[]) : [payload];
  const g = new Growing(items.length);
  const idx = new Uint32Array(items.length);
  const strs: string[] = [];
  const ids = new Map<string, number>();
  const id = (s: string): number => {
    let k = ids.get(s);
    if (k === undefined) {
      k = strs.length;
      strs.push(s);
      ids.set(s, k);
    }
    return k;
  };
  let n = 0;
  // A batch is mostly one device's readings with the same metrics in the same order: the device id is checked once
  // and the names' ids are those of the reading before while the names are the same strings.
  let lastDevice: string | undefined;
  let lastDeviceId = 0;
  const prevNames: string[] = [];
  const prevIds: number[] = [];
  for (let i = 0; i < items.length; i++) {
    const r = items[i];
    let ok = false;
    if (r !== null && typeof r === 'object' && !Array.isArray(r)) {
      const { device, ts, metrics } = r as { device?: unknown; ts?: unknown; metrics?: unknown };
      ok =
        metrics !== null &&
        typeof metrics === 'object' &&
        !Array.isArray(metrics) &&
        typeof device === 'string' &&
        (device === lastDevice || isValidDeviceId(device)) &&
        typeof ts === 'number' &&
        ts - ts === 0;
    }
    if (!ok) {
      rejects.push(shapeReject(r, batch ? i : undefined)!);
      continue;
    }
    const rd = r as { device: string; ts: number; metrics: Record<string, unknown> };
    idx[n++] = i;
    if (rd.device !== lastDevice) {
      lastDevice = rd.device;
      lastDeviceId = id(rd.device);
    }
    g.int(lastDeviceId);
    g.num(rd.ts);
    const countAt = g.up;
    g.int(0);
    let m = 0;
    const metrics = rd.metrics;
    for (const name in metrics) {
      const v = metrics[name];
      let k: number;
      if (prevNames[m] === name) k = prevIds[m];
      else {
        k = id(name);
        prevNames[m] = name;
        prevIds[m] = k;
      }
      g.int(k);
      if (typeof v === 'number') {
        g.int(1);
        g.num(v);
      } else {
        g.int(0);
      }
      m++;
    }
    g.u[countAt] = m;
  }
  return { msg: { batch, n, refused: rejects.length, strs, u: g.u.subarray(0, g.up), f: g.f.subarray(0, g.fp), idx: idx.subarray(0, n) }, rejects };
}

/** The worker's side: the items sent, made into readings again (for AnomalyScorer.score). */
export function unpackReadings(p: PackedReadings): Array<{ device: string; ts: number; metrics: Record<string, number | null> }> {
  const out = new Array<{ device: string; ts: number; metrics: Record<string, number | null> }>(p.n);
  const { u, f, strs } = p;
  let up = 0;
  let fp = 0;
  for (let i = 0; i < p.n; i++) {
    const device = strs[u[up++]];
    const ts = f[fp++];
    const m = u[up++];
    const metrics: Record<string, number | null> = {};
    for (let j = 0; j < m; j++) {
      const name = strs[u[up++]];
      metrics[name] = u[up++] === 1 ? f[fp++] : null;
    }
    out[i] = { device, ts, metrics };
  }
  return out;
}

/** The facts behind an event's text, for the node to write it with its catalogue. */
export type EventFacts = { [K in keyof EventText]: [K, Parameters<EventText[K]>[0]] }[keyof EventText];

/** What the worker answers a scored message with. */
export interface ScoredReply {
  /** f64 ts, value, score, expected, lower, upper per score. */
  rows: Float64Array;
  /** u32 reading index, metric, signal << 2 | learning << 1 | anomalous per score. */
  ru: Uint32Array;
  /** Names new to this reply (ids from the request's strs length on). */
  names: string[];
  /** Maintenance estimates: [score number, estimate]. */
  maint: Array<[number, MaintenanceEstimate]> | null;
  events: AlertEvent[];
  /** The worker's rejects (indexes in the batch). */
  rejects: Reject[];
  skipped: number;
  thinned: number;
  /** Facts of the events' texts, by marker number. */
  facts: Record<number, EventFacts>;
}

export const ROW = 6;
export const RU = 3;

/**
 * The worker's side: a scorer's output for `sent` (the unpacked items; `out.at` from score(..., true) indexes them)
 * as a reply. `strs` is the request's string table.
 */
export function encodeScores(
  scores: readonly AnomalyScore[],
  at: readonly number[],
  p: PackedReadings,
): Pick<ScoredReply, 'rows' | 'ru' | 'names' | 'maint'> {
  const k = scores.length;
  const rows = new Float64Array(k * ROW);
  const ru = new Uint32Array(k * RU);
  const names: string[] = [];
  let ids: Map<string, number> | undefined;
  const id = (s: string): number => {
    if (ids === undefined) {
      ids = new Map();
      for (let i = 0; i < p.strs.length; i++) ids.set(p.strs[i], i);
    }
    let v = ids.get(s);
    if (v === undefined) {
      v = p.strs.length + names.length;
      names.push(s);
      ids.set(s, v);
    }
    return v;
  };
  let maint: Array<[number, MaintenanceEstimate]> | null = null;
  for (let i = 0; i < k; i++) {
    const s = scores[i];
    const o = i * ROW;
    rows[o] = s.ts;
    rows[o + 1] = s.value;
    rows[o + 2] = s.score;
    rows[o + 3] = s.expected;
    rows[o + 4] = s.lower;
    rows[o + 5] = s.upper;
    const q = i * RU;
    ru[q] = p.idx[at[i]];
    ru[q + 1] = id(s.metric);
    ru[q + 2] = (id(s.signal) << 2) | (s.learning ? 2 : 0) | (s.anomalous ? 1 : 0);
    if (s.maintenance !== undefined) (maint ??= []).push([i, s.maintenance]);
  }
  return { rows, ru, names, maint };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The node's side: the scores of a reply, made from the message's own readings (`payload`, as packed), as the scorer
 * in the thread makes them.
 */
export function decodeScores(payload: unknown, p: PackedReadings, r: Pick<ScoredReply, 'rows' | 'ru' | 'names' | 'maint'>): AnomalyScore[] {
  const k = r.ru.length / RU;
  const out = new Array<AnomalyScore>(k);
  const base = p.strs.length;
  const name = (i: number): string => (i < base ? p.strs[i] : r.names[i - base]);
  const items = p.batch ? (payload as unknown[]) : undefined;
  let mi = 0;
  for (let i = 0; i < k; i++) {
    const o = i * ROW;
    const q = i * RU;
    const item = (items === undefined ? payload : items[r.ru[q]]) as { device: string; tags?: unknown };
    const flags = r.ru[q + 2];
    const sc: AnomalyScore = {
      device: item.device,
      metric: name(r.ru[q + 1]),
      ts: r.rows[o],
      value: r.rows[o + 1],
      score: r.rows[o + 2],
      anomalous: (flags & 1) === 1,
      expected: r.rows[o + 3],
      lower: r.rows[o + 4],
      upper: r.rows[o + 5],
      signal: name(flags >>> 2),
      learning: (flags & 2) === 2,
    };
    if (r.maint !== null && mi < r.maint.length && r.maint[mi][0] === i) sc.maintenance = r.maint[mi++][1];
    if (isObject(item.tags)) sc.tags = item.tags as Record<string, string>;
    out[i] = sc;
  }
  return out;
}

/** Rejects of the worker and those judged before sending, in input order (each list is in order already). */
export function mergeRejects(worker: readonly Reject[], here: readonly Reject[]): Reject[] {
  if (here.length === 0) return worker as Reject[];
  if (worker.length === 0) return here as Reject[];
  const out: Reject[] = [];
  let i = 0;
  let j = 0;
  while (i < worker.length || j < here.length) {
    if (j >= here.length || (i < worker.length && (worker[i].index ?? 0) < (here[j].index ?? 0))) out.push(worker[i++]);
    else out.push(here[j++]);
  }
  return out;
}

/** The worker's event texts: a marker each, the facts kept for the reply (takeFacts). */
export class MarkerText {
  private next = 0;
  private held = new Map<number, EventFacts>();
  readonly text: EventText = {
    anomalyFiring: (p) => this.mark(['anomalyFiring', p]),
    anomalyResolved: (p) => this.mark(['anomalyResolved', p]),
    maintenanceFiring: (p) => this.mark(['maintenanceFiring', p]),
    maintenanceResolved: (p) => this.mark(['maintenanceResolved', p]),
    forgotten: (p) => this.mark(['forgotten', p]),
  };
  private mark(f: EventFacts): string {
    const n = this.next++;
    this.held.set(n, f);
    return `\uE001${n}`;
  }
  /** The facts of these events' markers (each given out once). */
  takeFacts(events: readonly AlertEvent[]): Record<number, EventFacts> {
    const out: Record<number, EventFacts> = {};
    for (const e of events) {
      const n = markerOf(e.message);
      if (n === undefined) continue;
      const f = this.held.get(n);
      if (f !== undefined) {
        out[n] = f;
        this.held.delete(n);
      }
    }
    return out;
  }
}

function markerOf(message: string | undefined): number | undefined {
  if (typeof message !== 'string' || message.charCodeAt(0) !== 0xe001) return undefined;
  const n = Number(message.slice(1));
  return Number.isInteger(n) ? n : undefined;
}

/** The node's side: the events' texts written with `text` from the reply's facts. */
export function fillEventText(events: AlertEvent[], facts: Record<number, EventFacts>, text: EventText): AlertEvent[] {
  for (const e of events) {
    const n = markerOf(e.message);
    if (n === undefined) continue;
    const f = facts[n];
    if (f === undefined) continue;
    e.message = (text[f[0]] as (p: unknown) => string)(f[1]);
  }
  return events;
}
