/**
 * The thingwire-device node's "authenticate and enrich" step, without Node-RED: which device a
 * message speaks for (its payload's Reading.device, a devices/{id}/... topic or msg.deviceId),
 * whether the registry lets it in (token, or only registered and enabled), provisioning with a
 * provisioning key, and which readings of a batch go on and which are rejected, with why. With
 * unknown 'pass', data of devices that are not registered at all goes on without metadata (a
 * pipeline that enriches what it knows and stores the rest); disabled devices and wrong tokens of
 * registered devices are still rejected.
 */
import type { Reject, RejectCode } from '../lib/contract';
import { MAX_BATCH } from '../lib/contract';
import { isValidDeviceId, preview } from '../lib/names';
import { parseDeviceTopic } from '../lib/normalise';
import { isRegistryError } from '../lib/registry/errors';
import type { DeviceRecord, DeviceRegistry, RegistryErrorCode } from '../lib/registry/types';
import { MAX_TS, MIN_TS } from '../lib/time';
import type { IdSource, UnknownDevices } from './config';

/**
 * Largest batch (array payload) looked at; larger ones are rejected whole. The contract's: the node sits after
 * thingwire-batch too, whose batches may hold that many (it was 10,000 until 2026-12-05, and a batch node set above
 * it refused every merged batch whole, its deliveries settled as refused and its readings lost). A device's own
 * payload is bounded lower, by bytes and at normalise.
 */
export { MAX_BATCH };

/** What rides in msg.device: the registry's description of the device, never its credentials. */
export interface DeviceInfo {
  id: string;
  name: string;
  type: string;
  location?: { name?: string; lat?: number; lon?: number };
  tags: Record<string, string>;
  metadata: Record<string, unknown>;
}

/** A copy of the descriptive part of a record: the message can be changed downstream without touching the registry (whose records are frozen). */
export function deviceInfo(d: DeviceRecord): DeviceInfo {
  const info: DeviceInfo = { id: d.id, name: d.name, type: d.type, tags: { ...d.tags }, metadata: copyJson(d.metadata) as Record<string, unknown> };
  if (d.location !== undefined && d.location !== null) info.location = { ...d.location };
  return info;
}

/** A deep copy of JSON data (what the registry stores as metadata: plain objects, arrays, primitives; depth-limited there). */
function copyJson(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(copyJson);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    // defineProperty, not assignment: a "__proto__" key stays a plain key of the copy.
    if (k === '__proto__') Object.defineProperty(out, k, { value: copyJson(x), enumerable: true, writable: true, configurable: true });
    else out[k] = x !== null && typeof x === 'object' ? copyJson(x) : x;
  }
  return out;
}

export interface AuthOptions {
  /** Check the token (true), or only that the device is registered and enabled (false: the broker authenticated it). */
  requireToken: boolean;
  idFrom: IdSource;
  topicPrefix: string;
  /** An unknown device with a provisioning key is registered (registry.provision). */
  provision: boolean;
  /**
   * A device that is not registered (and not provisioned): 'reject' it with unknown_device (the
   * default), or 'pass' its data on without metadata. Never applies to a disabled device or to a
   * wrong token of a registered one.
   */
  unknown?: UnknownDevices;
  maxBatch?: number;
}

export interface AuthInput {
  /** The payload, already parsed when it came as JSON text. */
  payload: unknown;
  topic?: unknown;
  /** msg.deviceId (idFrom 'msg'). */
  deviceId?: unknown;
  token?: string;
  provisioningKey?: string;
  /** Wall clock (ms): the last-seen time of readings without a usable ts, and the latest one accepted. */
  now: number;
}

export interface AuthOutcome {
  /** The payload was an array (even of one element). */
  batch: boolean;
  /** Indexes (into the batch, or [0]) of the elements let through, in input order. */
  accepted: number[];
  /** One per rejected element (with its index for a batch), or a single one for a message rejected whole. */
  rejects: Reject[];
  /** The whole message was rejected (source unknown, not authenticated, batch too large...). */
  whole: boolean;
  /** The registered devices the accepted elements belong to, in order of first appearance. */
  devices: DeviceRecord[];
  /** Indexes (a subset of `accepted`, in order) of elements from devices that are not registered, let through by unknown 'pass'. */
  passed: number[];
  /** Those unregistered devices, in order of first appearance. */
  unknown: string[];
  /** Devices registered on the way with the provisioning key, with their new tokens (shown once). */
  provisioned: Array<{ device: DeviceRecord; token: string }>;
  /** Newest event time (ms) per accepted registered device, for registry.seen(). */
  seen: Map<string, number>;
}

/** The registry's answer for one device; device null: not registered, let through by unknown 'pass'. */
type Check = { ok: true; device: DeviceRecord | null } | { ok: false; code: RejectCode; message: string };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** The code of a RegistryError (../lib/registry/errors), undefined for any other error. */
export function registryErrorCode(e: unknown): RegistryErrorCode | undefined {
  return isRegistryError(e) ? e.code : undefined;
}

/** Event time of an element for registry.seen(): its ms or ISO `ts` when plausible (never in the future), else now. */
export function eventTime(item: unknown, now: number): number {
  if (!isPlainObject(item)) return now;
  const ts = item.ts;
  let ms = NaN;
  if (typeof ts === 'number') ms = ts;
  else if (typeof ts === 'string' && ts.length <= 64) ms = Date.parse(ts);
  if (!Number.isFinite(ms) || ms < MIN_TS || ms > MAX_TS) return now;
  return Math.min(Math.floor(ms), now);
}

function idOfSource(input: AuthInput, opts: AuthOptions): { id?: string; reject?: Reject } {
  if (opts.idFrom === 'topic') {
    const t = parseDeviceTopic(typeof input.topic === 'string' ? input.topic : undefined, opts.topicPrefix);
    if (t === undefined) return { reject: { code: 'invalid_device', message: `msg.topic ${preview(input.topic)} is not a ${opts.topicPrefix}/{device}/... topic` } };
    if (!isValidDeviceId(t.device)) return { reject: { code: 'invalid_device', message: `device id ${preview(t.device)} in msg.topic is not a valid device id` } };
    return { id: t.device };
  }
  if (input.deviceId === undefined || input.deviceId === null) return { reject: { code: 'invalid_device', message: 'msg.deviceId is not set' } };
  if (!isValidDeviceId(input.deviceId)) return { reject: { code: 'invalid_device', message: `msg.deviceId ${preview(input.deviceId)} is not a valid device id` } };
  return { id: input.deviceId };
}

/**
 * Decides who a message speaks for and whether the registry lets it in.
 * - idFrom 'topic' | 'msg': the source is the topic's or msg.deviceId's device; a failure rejects
 *   the message whole; elements whose own `device` names another device are 'device_mismatch'.
 * - idFrom 'payload': every element must be an object (else 'not_a_reading') with a valid
 *   `device` (else 'invalid_device'). With a token, the first such device is the one authenticated
 *   (a failure rejects the message whole) and elements of any other device are 'device_mismatch';
 *   without a token, each device is checked (registered and enabled) and its elements rejected alone.
 * - unknown 'pass': where a device would be rejected as unknown_device, its elements are accepted
 *   (and listed in `passed`) instead; with a token, an unregistered first device passes the same way
 *   and readings of other devices in its batch are still device_mismatch.
 * Throws only on errors that are not the message's fault (a broken registry).
 */
export function authenticate(registry: DeviceRegistry, input: AuthInput, opts: AuthOptions): AuthOutcome {
  const batch = Array.isArray(input.payload);
  const out: AuthOutcome = { batch, accepted: [], rejects: [], whole: false, devices: [], passed: [], unknown: [], provisioned: [], seen: new Map() };
  const rejectWhole = (reject: Reject): AuthOutcome => {
    out.accepted = [];
    out.rejects = [reject];
    out.whole = true;
    out.devices = [];
    out.passed = [];
    out.unknown = [];
    out.seen.clear();
    return out;
  };

  let source: string | undefined;
  if (opts.idFrom !== 'payload') {
    const s = idOfSource(input, opts);
    if (s.reject) return rejectWhole(s.reject);
    source = s.id;
  }

  if (!batch) {
    // One element (the common case): no per-batch bookkeeping. The source, when there is one, is checked first.
    const item = input.payload;
    if (source !== undefined) {
      const c = checkDevice(registry, source, input, opts, out);
      if (!c.ok) return rejectWhole({ code: c.code, message: c.message });
      const named = classify(item, source);
      if (typeof named !== 'string') return rejectWhole(named);
      return acceptOne(out, source, c.device, item, input.now);
    }
    const named = classify(item, undefined);
    if (typeof named !== 'string') return rejectWhole(named);
    const c = checkDevice(registry, named, input, opts, out);
    if (!c.ok) return rejectWhole({ code: c.code, message: c.message });
    return acceptOne(out, named, c.device, item, input.now);
  }

  const items = input.payload as unknown[];
  const maxBatch = opts.maxBatch ?? MAX_BATCH;
  if (items.length > maxBatch) return rejectWhole({ code: 'payload_too_large', message: `a batch of ${items.length} elements is over the limit of ${maxBatch}` });
  if (items.length === 0) return rejectWhole({ code: 'not_a_reading', message: 'the batch is empty' });

  // The device each element names (undefined: rejected).
  const owner: Array<string | undefined> = new Array<string | undefined>(items.length);
  const itemRejects: Array<Reject | undefined> = new Array<Reject | undefined>(items.length);
  for (let i = 0; i < items.length; i++) {
    const named = classify(items[i], source);
    if (typeof named === 'string') owner[i] = named;
    else itemRejects[i] = named;
  }

  const checks = new Map<string, Check>();
  const check = (id: string): Check => {
    let c = checks.get(id);
    if (c === undefined) {
      c = checkDevice(registry, id, input, opts, out);
      checks.set(id, c);
    }
    return c;
  };

  if (opts.requireToken) {
    const principal = source ?? owner.find((d) => d !== undefined);
    if (principal !== undefined) {
      const c = check(principal);
      if (!c.ok) return rejectWhole({ code: c.code, message: c.message });
      for (let i = 0; i < items.length; i++) {
        if (owner[i] !== undefined && owner[i] !== principal) {
          itemRejects[i] = { code: 'device_mismatch', message: `the reading names device ${JSON.stringify(owner[i])}, but the message was authenticated as ${JSON.stringify(principal)}` };
          owner[i] = undefined;
        }
      }
    }
  } else if (source !== undefined) {
    const c = check(source);
    if (!c.ok) return rejectWhole({ code: c.code, message: c.message });
  } else {
    for (let i = 0; i < items.length; i++) {
      const id = owner[i];
      if (id === undefined) continue;
      const c = check(id);
      if (!c.ok) {
        itemRejects[i] = { code: c.code, message: c.message };
        owner[i] = undefined;
      }
    }
  }

  const seenDevices = new Set<string>();
  for (let i = 0; i < items.length; i++) {
    const id = owner[i];
    if (id === undefined) {
      const r = itemRejects[i]!;
      out.rejects.push({ ...r, index: i });
      continue;
    }
    out.accepted.push(i);
    const c = checks.get(id) as { ok: true; device: DeviceRecord | null };
    const first = !seenDevices.has(id);
    if (first) seenDevices.add(id);
    if (c.device === null) {
      out.passed.push(i);
      if (first) out.unknown.push(id);
      continue;
    }
    if (first) out.devices.push(c.device);
    const ts = eventTime(items[i], input.now);
    const prev = out.seen.get(id);
    if (prev === undefined || ts > prev) out.seen.set(id, ts);
  }
  return out;
}

/** The device an element belongs to (the source's, or its own valid `device`), or why it is rejected. */
function classify(item: unknown, source: string | undefined): string | Reject {
  if (source !== undefined) {
    const named = isPlainObject(item) ? item.device : undefined;
    if (named !== undefined && named !== source) return { code: 'device_mismatch', message: `the reading names device ${preview(named)}, but the message comes from ${JSON.stringify(source)}` };
    return source;
  }
  if (!isPlainObject(item)) return { code: 'not_a_reading', message: `expected an object with a "device" id, got ${item === null ? 'null' : Array.isArray(item) ? 'an array' : typeof item}` };
  const d = item.device;
  if (isValidDeviceId(d)) return d;
  return d === undefined ? { code: 'invalid_device', message: 'the reading has no "device" id' } : { code: 'invalid_device', message: `device id ${preview(d)} is not a valid device id` };
}

function acceptOne(out: AuthOutcome, id: string, device: DeviceRecord | null, item: unknown, now: number): AuthOutcome {
  out.accepted.push(0);
  if (device === null) {
    out.passed.push(0);
    out.unknown.push(id);
    return out;
  }
  out.devices.push(device);
  out.seen.set(device.id, eventTime(item, now));
  return out;
}

function checkDevice(registry: DeviceRegistry, id: string, input: AuthInput, opts: AuthOptions, out: AuthOutcome): Check {
  let c: Check;
  if (opts.requireToken) {
    // The registry refuses over-long tokens before hashing anything.
    const r = registry.authenticate(id, input.token);
    c = r.ok ? r : { ok: false, code: r.code, message: r.message };
  } else {
    const d = registry.getDevice(id);
    // An unregistered device let through (unknown 'pass', nothing to provision) is the common case of a demo
    // fleet: answered before building the unknown_device message it would only throw away (one per reading).
    if (d === undefined && opts.unknown === 'pass' && !(opts.provision && input.provisioningKey !== undefined)) return { ok: true, device: null };
    c = d === undefined ? unknown(id) : !d.enabled ? disabled(id) : { ok: true, device: d };
  }
  // Only a device the registry does not have at all is unknown: disabled devices and wrong tokens never pass.
  if (c.ok || c.code !== 'unknown_device') return c;

  if (opts.provision && input.provisioningKey !== undefined) {
    // A device that asks to be registered gets registered, or refused: never passed on as unknown.
    try {
      const p = registry.provision(input.provisioningKey, { id });
      out.provisioned.push(p);
      return { ok: true, device: p.device };
    } catch (e) {
      const code = registryErrorCode(e);
      if (code === 'forbidden') return { ok: false, code: 'unauthorized', message: `device ${JSON.stringify(id)} could not be provisioned: ${(e as Error).message}` };
      if (code === 'invalid') return { ok: false, code: 'invalid_device', message: (e as Error).message };
      throw e;
    }
  }
  return opts.unknown === 'pass' ? { ok: true, device: null } : c;
}

function unknown(id: string): Check {
  return { ok: false, code: 'unknown_device', message: `device ${JSON.stringify(id)} is not registered` };
}

function disabled(id: string): Check {
  return { ok: false, code: 'device_disabled', message: `device ${JSON.stringify(id)} is disabled` };
}
