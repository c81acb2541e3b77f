/**
 * Rules for names that flow through Thingwire into stores, topics and URLs.
 * Device ids are strict (they appear in MQTT topics and URL paths); metric and
 * tag names are permissive (any printable text, unicode included) but never
 * control characters, which no store can escape everywhere.
 */

export const MAX_NAME_LENGTH = 128;

const DEVICE_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

/** The last id isValidDeviceId said yes to: the readings of a batch are asked about one after another, with one id. */
let lastDeviceId = '';

export function isValidDeviceId(id: unknown): id is string {
  if (typeof id !== 'string') return false;
  if (id === lastDeviceId) return true;
  if (!DEVICE_RE.test(id)) return false;
  lastDeviceId = id;
  return true;
}

/**
 * Names isValidName said yes to, up to KNOWN_NAMES_MAX (the first ones: never cleared, so churning hostile names cannot
 * push the fleet's real ones out): a fleet has a handful of metric names, asked about for every value of every reading,
 * and a Set hit on a name JSON.parse made (an internalised string, its hash kept) is cheaper than the regex.
 */
const knownNames = new Set<string>();
const KNOWN_NAMES_MAX = 4096;

/** Metric and tag names: 1..128 characters, no control characters, not starting with `_` (reserved by InfluxDB). */
export function isValidName(name: unknown): name is string {
  if (typeof name !== 'string') return false;
  if (knownNames.has(name)) return true;
  const ok = name.length > 0 && name.length <= MAX_NAME_LENGTH && name.charCodeAt(0) !== 95 /* _ */ && !CONTROL_RE.test(name);
  if (ok && knownNames.size < KNOWN_NAMES_MAX) knownNames.add(name);
  return ok;
}

/** For error messages: a bounded, quoted preview of an untrusted value. */
export function preview(v: unknown, max = 40): string {
  let s: string;
  try {
    s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  if (s.length > max) s = `${s.slice(0, max)}...`;
  return JSON.stringify(s);
}

/**
 * A plain object (a JSON object): not null, not an array, its prototype Object.prototype or null. Objects made in a
 * Function node live in another vm realm with its own Object.prototype: they count too.
 */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as object | null;
  return proto === null || proto === Object.prototype || (Object.getPrototypeOf(proto) === null && Object.prototype.toString.call(v) === '[object Object]');
}
