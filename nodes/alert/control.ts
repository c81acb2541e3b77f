/**
 * Control messages of thingwire-alert (msg.action): ack, unack, silence, unsilence, active,
 * silences, stats, forget. Checks msg.payload, runs the engine's action and says what to send:
 * the events (output 1) and the reply (output 2). A refused action throws an AlertControlError
 * whose `code` Catch flows can switch on. No Node-RED here; the texts come from the catalogue.
 */
import type { AlertEvent } from '../lib/contract';
import { preview } from '../lib/names';
import type { AlertEngine, Silence, SilenceSpec } from './engine';
import { parseDurationMs } from './rules';

export const ACTIONS = ['ack', 'unack', 'silence', 'unsilence', 'active', 'silences', 'stats', 'forget'] as const;
export type Action = (typeof ACTIONS)[number];

export type ControlCode = 'not_found' | 'invalid' | 'limit' | 'unknown_action';

/** A control message the node refused (done(err): Catch nodes get msg.error.code). */
export class AlertControlError extends Error {
  readonly code: ControlCode;
  constructor(code: ControlCode, message: string) {
    super(message);
    this.name = 'AlertControlError';
    this.code = code;
  }
}

export interface ControlResult {
  /** State changes to send on output 1. */
  events: AlertEvent[];
  /** msg.payload of the reply on output 2. */
  reply: unknown;
  /** The engine's state changed (save, refresh the active list and the status). */
  changed: boolean;
}

/** Translates a catalogue key of this node (`thingwire-alert.` + key). */
export type Translate = (key: string, subs?: Record<string, unknown>) => string;

const FIELDS: Record<string, readonly string[]> = {
  ack: ['id', 'key', 'by', 'comment'],
  unack: ['id', 'key'],
  silence: ['device', 'rule', 'key', 'until', 'by', 'comment'],
  unsilence: ['id'],
  forget: ['device'],
};

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * The end of a silence: a number is a time (ms since the epoch); text is a duration from now
 * ("2h", "30m", "1d", "500ms") or an ISO 8601 date-time with a zone ("2026-05-04T18:00:00Z").
 * Undefined when it is none of those.
 */
export function parseUntil(v: unknown, now: number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string' || v.length > 64) return undefined;
  const s = v.trim();
  if (ISO_RE.test(s)) {
    const t = Date.parse(s);
    return Number.isFinite(t) ? t : undefined;
  }
  const d = parseDurationMs(s);
  return d === undefined ? undefined : now + d;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** msg.payload of an action that takes fields: a plain object with only the known ones. */
function fields(action: string, payload: unknown, _: Translate): Record<string, unknown> {
  const known = FIELDS[action];
  if (!isObj(payload)) throw new AlertControlError('invalid', _('control.payload', { action, fields: known.join(', '), got: preview(payload) }));
  for (const k of Object.keys(payload)) {
    if (!known.includes(k)) throw new AlertControlError('invalid', _('control.field', { action, field: preview(k), fields: known.join(', ') }));
  }
  return payload;
}

/** The alert an ack/unack names: payload.id, else payload.key. */
function target(action: string, p: Record<string, unknown>, _: Translate): string {
  const t = p.id ?? p.key;
  if (typeof t !== 'string' || t === '') throw new AlertControlError('invalid', _('control.target', { action }));
  return t;
}

function refused(action: string, r: { code?: string; message?: string }, _: Translate): never {
  const code: ControlCode = r.code === 'not_found' || r.code === 'limit' ? r.code : 'invalid';
  throw new AlertControlError(code, _('control.failed', { action, error: r.message ?? code }));
}

/** Runs one control action on the engine at `now`. Throws AlertControlError when it is refused. */
export function runControl(engine: AlertEngine, action: unknown, payload: unknown, now: number, _: Translate): ControlResult {
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action)) {
    throw new AlertControlError('unknown_action', _('control.unknown', { action: typeof action === 'string' ? preview(action) : typeof action, actions: ACTIONS.join(', ') }));
  }
  switch (action as Action) {
    case 'active':
      return { events: [], reply: engine.active(now), changed: false };
    case 'silences':
      return { events: [], reply: engine.silences(now), changed: false };
    case 'stats':
      return { events: [], reply: engine.stats(), changed: false };
    case 'ack': {
      const p = fields(action, payload, _);
      const t = target(action, p, _);
      const r = engine.ack(t, { by: p.by as string, ...(p.comment === undefined ? {} : { comment: p.comment as string }) }, now);
      if (!r.ok) refused(action, r, _);
      return { events: r.events, reply: engine.get(t, now), changed: true };
    }
    case 'unack': {
      const t = target(action, fields(action, payload, _), _);
      const r = engine.unack(t, now);
      if (!r.ok) refused(action, r, _);
      return { events: r.events, reply: engine.get(t, now), changed: true };
    }
    case 'silence': {
      const p = fields(action, payload, _);
      const until = parseUntil(p.until, now);
      if (until === undefined) throw new AlertControlError('invalid', _('control.until', { got: preview(p.until) }));
      const spec: SilenceSpec = { until };
      for (const k of ['device', 'rule', 'key', 'by', 'comment'] as const) if (p[k] !== undefined) (spec as unknown as Record<string, unknown>)[k] = p[k];
      const r = engine.silence(spec, now);
      if (!r.ok) refused(action, r, _);
      const s: Silence | undefined = engine.silences().find((x) => x.id === r.id);
      return { events: r.events, reply: s, changed: true };
    }
    case 'unsilence': {
      const p = fields(action, payload, _);
      if (typeof p.id !== 'string' || p.id === '') throw new AlertControlError('invalid', _('control.silence-id'));
      const s = engine.silences().find((x) => x.id === p.id);
      const r = engine.unsilence(p.id, now);
      if (!r.ok) refused(action, r, _);
      return { events: r.events, reply: s, changed: true };
    }
    case 'forget': {
      const p = fields(action, payload, _);
      if (typeof p.device !== 'string' || p.device === '' || p.device.length > 128) throw new AlertControlError('invalid', _('control.device'));
      const events = engine.forget(p.device, now);
      return { events, reply: { device: p.device, resolved: events.length }, changed: true };
    }
  }
}

/**
 * The engine's `meta` from msg.device (thingwire-device in auth mode): its string tags (at most
 * 64; other values and "__proto__" left out), or undefined when it carries none.
 */
export function metaOf(device: unknown): { tags: Record<string, string> } | undefined {
  if (!isObj(device) || !isObj(device.tags)) return undefined;
  const tags: Record<string, string> = {};
  let n = 0;
  for (const k of Object.keys(device.tags)) {
    const v = device.tags[k];
    if (typeof v !== 'string' || k === '__proto__' || k.length > 128 || v.length > 1024) continue;
    tags[k] = v;
    if (++n >= 64) break;
  }
  return n === 0 ? undefined : { tags };
}
