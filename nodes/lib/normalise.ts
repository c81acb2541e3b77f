import type { MetricValue, Reading, Reject } from './contract';
import { ThingwireError } from './errors';
import { isPlainObject, isValidDeviceId, isValidName, preview } from './names';
import { toEpochMs, typeName, type TimeUnit } from './time';

/** What string fields of a flat device object become. */
export type StringFieldPolicy = 'tags' | 'metrics' | 'drop';

export interface NormaliseOptions {
  /** Unit of numeric `ts` values. ISO 8601 strings are always accepted. */
  tsUnit: TimeUnit;
  /** String fields in a flat object: tags (default), metrics, or dropped. */
  strings: StringFieldPolicy;
  /** First topic segment of device topics: `{prefix}/{device}/{metric|telemetry}`. */
  topicPrefix: string;
  /** Largest number of elements accepted in one batch (array payload). */
  maxBatch: number;
  /** Arrival time, used when a reading carries no `ts`. */
  now: () => number;
}

export const DEFAULT_NORMALISE_OPTIONS: NormaliseOptions = {
  tsUnit: 'ms',
  strings: 'tags',
  topicPrefix: 'devices',
  maxBatch: 10_000,
  now: Date.now,
};

/** Where the payload came from: the MQTT topic and/or a device id known from elsewhere. */
export interface NormaliseContext {
  topic?: string;
  device?: string;
}

export interface NormaliseResult {
  /** Readings accepted, in input order. */
  readings: Reading[];
  /** Inputs rejected; for a batch, each carries the element's index. */
  rejects: Reject[];
  /** True when the input was an array (a batch), even of one element. */
  batch: boolean;
}

const MAX_DEPTH = 3;

/** Splits `{prefix}/{device}/{rest}` into its parts; undefined when the topic is not a device topic. */
export function parseDeviceTopic(topic: string | undefined, prefix: string): { device: string; leaf: string } | undefined {
  // indexOf/slice rather than split/join: this runs for every MQTT message.
  if (typeof topic !== 'string' || topic.length <= prefix.length + 2) return undefined;
  if (topic.charCodeAt(prefix.length) !== 47 /* / */ || !topic.startsWith(prefix)) return undefined;
  const start = prefix.length + 1;
  const slash = topic.indexOf('/', start);
  if (slash < 0) return undefined;
  return { device: topic.slice(start, slash), leaf: topic.slice(slash + 1) };
}

/**
 * Turns one device payload (already parsed from JSON) into Readings:
 * - an object: numeric and boolean fields are metrics (nested objects are flattened with "."),
 *   `ts` is event time, `tags` an object of strings, `device` the device id; or the canonical
 *   form `{ device, ts, metrics: {...}, tags }`;
 * - an array of such objects (a batch): each element is judged alone;
 * - a bare number or boolean on a `devices/{device}/{metric}` topic (the Pico W style).
 * The device id comes from the payload, else the context (topic or known device); both given and
 * different is a reject (a device may not write as another).
 */
export function normalise(value: unknown, ctx: NormaliseContext, opts: NormaliseOptions): NormaliseResult {
  const topic = parseDeviceTopic(ctx.topic, opts.topicPrefix);
  if (ctx.device !== undefined && topic && topic.device !== ctx.device) {
    const r = single(new ThingwireError('device_mismatch', `topic device ${preview(topic.device)} is not the authenticated device ${preview(ctx.device)}`));
    return { ...r, batch: Array.isArray(value) };
  }
  const ctxDevice = ctx.device ?? topic?.device;

  if (Array.isArray(value)) {
    if (value.length > opts.maxBatch) {
      const err = new ThingwireError('payload_too_large', `batch of ${value.length} readings is over the limit of ${opts.maxBatch}`);
      return { readings: [], rejects: [err.toReject()], batch: true };
    }
    const readings: Reading[] = [];
    const rejects: Reject[] = [];
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      try {
        if (!isPlainObject(item)) {
          throw new ThingwireError('not_a_reading', `batch element must be an object, got ${typeName(item)}`);
        }
        readings.push(fromObject(item, ctxDevice, opts));
      } catch (e) {
        rejects.push(asReject(e, i));
      }
    }
    return { readings, rejects, batch: true };
  }

  try {
    if (isPlainObject(value)) return { readings: [fromObject(value, ctxDevice, opts)], rejects: [], batch: false };
    if ((typeof value === 'number' || typeof value === 'boolean') && topic) {
      return { readings: [fromBare(value, topic.device, topic.leaf, opts)], rejects: [], batch: false };
    }
    if (typeof value === 'number' || typeof value === 'boolean') {
      throw new ThingwireError('not_a_reading', `a bare value needs a ${opts.topicPrefix}/{device}/{metric} topic, got topic ${preview(ctx.topic ?? '')}`);
    }
    throw new ThingwireError('not_a_reading', `payload must be an object, an array of objects, or a bare number on a ${opts.topicPrefix}/{device}/{metric} topic; got ${typeName(value)} ${preview(value)}`);
  } catch (e) {
    return single(e);
  }
}

function single(e: unknown): NormaliseResult {
  return { readings: [], rejects: [asReject(e)], batch: false };
}

function asReject(e: unknown, index?: number): Reject {
  if (e instanceof ThingwireError) return e.toReject(index);
  // Anything else is a bug in this module; report it rather than crash the flow.
  const r: Reject = { code: 'not_a_reading', message: `could not read payload: ${(e as Error)?.message ?? String(e)}` };
  if (index !== undefined) r.index = index;
  return r;
}

function fromBare(value: number | boolean, device: string, leaf: string, opts: NormaliseOptions): Reading {
  checkDevice(device);
  if (!isValidName(leaf)) throw new ThingwireError('invalid_metric', `metric name from topic ${preview(leaf)} is not allowed`);
  checkValue(leaf, value);
  return { device, ts: opts.now(), metrics: { [leaf]: value } };
}

function fromObject(o: Record<string, unknown>, ctxDevice: string | undefined, opts: NormaliseOptions): Reading {
  let device: unknown = o.device;
  if (device === undefined) {
    device = ctxDevice;
    if (device === undefined) throw new ThingwireError('invalid_device', 'no device id: give "device" in the payload or publish on a devices/{device}/... topic');
  } else if (ctxDevice !== undefined && device !== ctxDevice) {
    throw new ThingwireError('device_mismatch', `payload device ${preview(device)} does not match topic device ${preview(ctxDevice)}`);
  }
  checkDevice(device);

  const ts = o.ts === undefined || o.ts === null ? opts.now() : toEpochMs(o.ts, opts.tsUnit);
  const metrics: Record<string, MetricValue> = {};
  let tags: Record<string, string> | undefined;
  let n = 0;

  if (o.tags !== undefined) tags = readTags(o.tags);

  if (o.metrics !== undefined) {
    if (!isPlainObject(o.metrics)) throw new ThingwireError('not_a_reading', `"metrics" must be an object, got ${typeName(o.metrics)}`);
    for (const name in o.metrics) {
      const v = o.metrics[name];
      if (v === null || v === undefined) continue;
      if (!isValidName(name)) throw new ThingwireError('invalid_metric', `metric name ${preview(name)} is not allowed`);
      if (typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'string') {
        throw new ThingwireError('invalid_value', `metric ${preview(name)} must be a number, boolean or string, got ${typeName(v)}`);
      }
      checkValue(name, v);
      metrics[name] = v;
      n++;
    }
  } else {
    // A number or boolean field (what a device sends most) is taken here; anything else goes through collect(),
    // which puts the text fields it makes tags in `out` (made then: a callback for them was a closure made for every
    // field of every reading).
    let out: TagsOut | undefined;
    for (const key in o) {
      if (key === 'device' || key === 'ts' || key === 'tags') continue;
      const v = o[key];
      if (typeof v === 'number' || typeof v === 'boolean') n += metric(key, v, metrics);
      else n += collect(key, v, 1, metrics, opts, (out ??= { tags }));
    }
    if (out !== undefined) tags = out.tags;
  }
  if (n === 0) throw new ThingwireError('no_metrics', 'reading has no numeric or boolean metrics');
  const reading: Reading = { device: device as string, ts, metrics };
  if (tags !== undefined) reading.tags = tags;
  return reading;
}

/** A number or boolean field of a flat device object, as a metric: 1 (a metric added), or a reject thrown. */
function metric(name: string, v: number | boolean, metrics: Record<string, MetricValue>): number {
  if (!isValidName(name)) throw new ThingwireError('invalid_metric', `field name ${preview(name)} is not allowed`);
  checkValue(name, v);
  metrics[name] = v;
  return 1;
}

/** Where collect() puts the text fields it makes tags (created when the first comes). */
interface TagsOut {
  tags: Record<string, string> | undefined;
}

/** Adds one field of a flat device object; returns how many metrics it added. */
function collect(name: string, v: unknown, depth: number, metrics: Record<string, MetricValue>, opts: NormaliseOptions, out: TagsOut): number {
  if (v === null || v === undefined) return 0;
  switch (typeof v) {
    case 'number':
    case 'boolean':
      return metric(name, v, metrics);
    case 'string':
      if (!isValidName(name)) throw new ThingwireError('invalid_metric', `field name ${preview(name)} is not allowed`);
      if (opts.strings === 'metrics') {
        metrics[name] = v;
        return 1;
      }
      if (opts.strings === 'tags') (out.tags ??= {})[name] = v;
      return 0;
    default:
      break;
  }
  if (!isValidName(name)) throw new ThingwireError('invalid_metric', `field name ${preview(name)} is not allowed`);
  if (isPlainObject(v)) {
    if (depth >= MAX_DEPTH) throw new ThingwireError('invalid_metric', `field ${preview(name)} is nested deeper than ${MAX_DEPTH} levels`);
    let n = 0;
    for (const k in v) n += collect(`${name}.${k}`, v[k], depth + 1, metrics, opts, out);
    return n;
  }
  throw new ThingwireError('invalid_value', `field ${preview(name)} must be a number, boolean, string or object, got ${typeName(v)}`);
}

function readTags(t: unknown): Record<string, string> {
  if (!isPlainObject(t)) throw new ThingwireError('invalid_tags', `"tags" must be an object of strings, got ${typeName(t)}`);
  const out: Record<string, string> = {};
  for (const k in t) {
    const v = t[k];
    if (!isValidName(k)) throw new ThingwireError('invalid_tags', `tag name ${preview(k)} is not allowed`);
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else throw new ThingwireError('invalid_tags', `tag ${preview(k)} must be a string, got ${typeName(v)}`);
  }
  return out;
}

function checkDevice(device: unknown): asserts device is string {
  if (!isValidDeviceId(device)) {
    throw new ThingwireError('invalid_device', `device id ${preview(device)} is not allowed (1-128 of A-Z a-z 0-9 . _ : -, starting with a letter or digit)`);
  }
}

function checkValue(name: string, v: MetricValue): void {
  if (typeof v === 'number' && !Number.isFinite(v)) {
    throw new ThingwireError('invalid_value', `metric ${preview(name)} is ${String(v)}; values must be finite numbers`);
  }
}

