/**
 * Checks what clients send to the registry (and what its file holds), field by field, with
 * messages that say which field is wrong and why. Input is untrusted: wrong types, huge values,
 * hostile keys (`__proto__`) are refused with RegistryError('invalid'), never a crash, and only
 * copies built here (from checked keys) are stored.
 */
import { isPlainObject, isValidDeviceId, isValidName, preview } from '../names';
import { RegistryError } from './errors';
import type { DeviceLocation } from './types';

export const REGISTRY_LIMITS = {
  /** Characters in a device or stream name. */
  name: 200,
  /** Characters in a stream description. */
  description: 2000,
  /** Tags per device. */
  tags: 64,
  /** Characters in a tag value. */
  tagValue: 256,
  /** Bytes of a device's metadata as JSON. */
  metadataBytes: 16 * 1024,
  /** Nesting depth of metadata. */
  metadataDepth: 16,
  /** Bytes of a stream's JSON Schema as JSON. */
  schemaBytes: 64 * 1024,
  /** Liveness timeout bounds (ms), 0 meaning the registry's default. */
  minTimeout: 1000,
  maxTimeout: 365 * 86_400_000,
} as const;

// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

export function invalid(message: string, field?: string): RegistryError {
  return new RegistryError('invalid', message, field === undefined ? undefined : { field });
}

export { isPlainObject };

/** Refuses keys outside `allowed`, naming read-only ones as such. */
export function checkKeys(input: Record<string, unknown>, allowed: ReadonlySet<string>, readOnly: ReadonlySet<string>, what: string): void {
  for (const k of Object.keys(input)) {
    if (allowed.has(k)) continue;
    if (readOnly.has(k)) throw invalid(`${what} field "${k}" is set by the registry and cannot be written`, k);
    throw invalid(`unknown ${what} field ${preview(k)}`, k);
  }
}

export function checkId(v: unknown, what: string): string {
  if (!isValidDeviceId(v)) {
    throw invalid(`${what} id must be 1 to 128 characters of letters, digits, ".", "_", ":" and "-", starting with a letter or digit; got ${preview(v)}`, 'id');
  }
  return v;
}

/** Free text: a string of at most `max` characters without control characters. */
export function checkText(v: unknown, field: string, max: number, allowNewlines = false): string {
  if (typeof v !== 'string') throw invalid(`${field} must be a string, got ${typeName(v)}`, field);
  if (v.length > max) throw invalid(`${field} must be at most ${max} characters, got ${v.length}`, field);
  const probe = allowNewlines ? v.replace(/[\n\r\t]/g, ' ') : v;
  if (CONTROL_RE.test(probe)) throw invalid(`${field} must not contain control characters`, field);
  return v;
}

/** A device type: "" (none) or the same form as an id. */
export function checkType(v: unknown, field = 'type'): string {
  if (v === '') return '';
  if (!isValidDeviceId(v)) throw invalid(`${field} must be "" or 1 to 128 characters of letters, digits, ".", "_", ":" and "-"; got ${preview(v)}`, field);
  return v;
}

export function checkBool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw invalid(`${field} must be true or false, got ${typeName(v)}`, field);
  return v;
}

export function checkTimeout(v: unknown, field = 'livenessTimeout'): number {
  const { minTimeout, maxTimeout } = REGISTRY_LIMITS;
  if (typeof v !== 'number' || !Number.isInteger(v) || (v !== 0 && (v < minTimeout || v > maxTimeout))) {
    throw invalid(`${field} must be 0 (the registry's default) or a whole number of ms from ${minTimeout} to ${maxTimeout}, got ${preview(v)}`, field);
  }
  return v;
}

const LOCATION_KEYS = new Set(['name', 'lat', 'lon']);

export function checkLocation(v: unknown): DeviceLocation {
  if (!isPlainObject(v)) throw invalid(`location must be an object such as {"name": "hall", "lat": 40.4, "lon": -3.7}, got ${typeName(v)}`, 'location');
  checkKeys(v, LOCATION_KEYS, new Set(), 'location');
  const out: DeviceLocation = {};
  if (v.name !== undefined) out.name = checkText(v.name, 'location.name', REGISTRY_LIMITS.name);
  for (const [k, lo, hi] of [
    ['lat', -90, 90],
    ['lon', -180, 180],
  ] as const) {
    const x = v[k];
    if (x === undefined) continue;
    if (typeof x !== 'number' || !Number.isFinite(x) || x < lo || x > hi) throw invalid(`location.${k} must be a number from ${lo} to ${hi}, got ${preview(x)}`, `location.${k}`);
    out[k] = x;
  }
  return out;
}

/** Tags: at most 64 name -> string pairs; names follow the contract's tag rules (so never `__proto__`). */
export function checkTags(v: unknown): Record<string, string> {
  if (!isPlainObject(v)) throw invalid(`tags must be an object of name -> text, got ${typeName(v)}`, 'tags');
  const keys = Object.keys(v);
  if (keys.length > REGISTRY_LIMITS.tags) throw invalid(`at most ${REGISTRY_LIMITS.tags} tags, got ${keys.length}`, 'tags');
  const out: Record<string, string> = {};
  for (const k of keys) {
    if (!isValidName(k)) throw invalid(`tag name ${preview(k)} is not allowed: 1 to 128 characters, no control characters, not starting with "_"`, 'tags');
    const val = v[k];
    if (typeof val !== 'string') throw invalid(`tag ${preview(k)} must be text, got ${typeName(val)}`, 'tags');
    checkText(val, `tag ${preview(k)}`, REGISTRY_LIMITS.tagValue);
    out[k] = val;
  }
  return out;
}

/**
 * Metadata: a JSON object (null, booleans, finite numbers, strings, arrays, objects), at most
 * 16 KB as JSON and 16 levels deep, without `__proto__` keys (harmless once stored, but a trap
 * for any consumer that merges it with Object.assign). Returns a deep copy.
 */
export function checkMetadata(v: unknown): Record<string, unknown> {
  if (!isPlainObject(v)) throw invalid(`metadata must be an object, got ${typeName(v)}`, 'metadata');
  checkJson(v, 'metadata', 0, REGISTRY_LIMITS.metadataDepth, { budget: 100_000 });
  const text = JSON.stringify(v);
  const bytes = Buffer.byteLength(text);
  if (bytes > REGISTRY_LIMITS.metadataBytes) throw invalid(`metadata must be at most ${REGISTRY_LIMITS.metadataBytes} bytes as JSON, got ${bytes}`, 'metadata');
  return JSON.parse(text) as Record<string, unknown>;
}

/** A JSON Schema as stored: a JSON object without `__proto__` keys, at most 64 KB. Returns a deep copy. (ajv compiles it elsewhere.) */
export function checkSchemaShape(v: unknown): Record<string, unknown> {
  if (!isPlainObject(v)) throw invalid(`schema must be a JSON Schema object or null, got ${typeName(v)}`, 'schema');
  checkJson(v, 'schema', 0, 64, { budget: 200_000 });
  const text = JSON.stringify(v);
  const bytes = Buffer.byteLength(text);
  if (bytes > REGISTRY_LIMITS.schemaBytes) throw invalid(`schema must be at most ${REGISTRY_LIMITS.schemaBytes} bytes as JSON, got ${bytes}`, 'schema');
  return JSON.parse(text) as Record<string, unknown>;
}

function checkJson(v: unknown, where: string, depth: number, maxDepth: number, counter: { budget: number }): void {
  if (--counter.budget < 0) throw invalid(`${where} has too many values`, where.split(/[.[]/)[0]);
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw invalid(`${where} holds a number that is not finite`, where.split(/[.[]/)[0]);
    return;
  }
  if (depth >= maxDepth) throw invalid(`${where} is nested deeper than ${maxDepth} levels`, where.split(/[.[]/)[0]);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) checkJson(v[i], `${where}[${i}]`, depth + 1, maxDepth, counter);
    return;
  }
  if (isPlainObject(v)) {
    for (const k of Object.keys(v)) {
      if (k === '__proto__') throw invalid(`${where} must not hold a "__proto__" key`, where.split(/[.[]/)[0]);
      checkJson(v[k], `${where}.${k.length > 40 ? `${k.slice(0, 40)}...` : k}`, depth + 1, maxDepth, counter);
    }
    return;
  }
  throw invalid(`${where} holds ${typeName(v)}, which is not JSON`, where.split(/[.[]/)[0]);
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number' && Number.isNaN(v)) return 'NaN';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
