/**
 * The thingwire-device node's "manage" mode without Node-RED: a request `{ op, id?, device?,
 * stream?, query? }` mapped to a registry call, and its answer with an HTTP-style status code, ready
 * for an http-response node. Query values may be strings (an http-in node's msg.req.query).
 */
import { preview } from '../lib/names';
import type { DevicePatch, DeviceRegistry, ListQuery, RegistryErrorCode, StreamInput } from '../lib/registry/types';
import { isRegistryError } from '../lib/registry/errors';

export const MANAGE_OPS = [
  'create',
  'get',
  'update',
  'delete',
  'list',
  'rotate',
  'revoke',
  'createStream',
  'getStream',
  'replaceStream',
  'deleteStream',
  'listStreams',
] as const;
export type ManageOp = (typeof MANAGE_OPS)[number];

export interface ManageError {
  code: RegistryErrorCode;
  message: string;
  /** The registry's detail, e.g. `{ field }` for an invalid field. */
  details?: unknown;
}

export type ManageResult =
  | { ok: true; op: ManageOp; statusCode: 200 | 201 | 204; payload: unknown }
  | { ok: false; op?: ManageOp; statusCode: 400 | 403 | 404 | 409; error: ManageError };

const STATUS: Record<RegistryErrorCode, 400 | 403 | 404 | 409> = { invalid: 400, forbidden: 403, not_found: 404, conflict: 409 };

/** A client's mistake, answered with a 4xx (never thrown out of runManage). */
class BadRequest extends Error {
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function isOp(v: unknown): v is ManageOp {
  return typeof v === 'string' && (MANAGE_OPS as readonly string[]).includes(v);
}

function idOf(req: Record<string, unknown>): string {
  const id = req.id;
  if (typeof id !== 'string' || id === '') throw new BadRequest('invalid', `"id" must be a non-empty string, got ${preview(id)}`);
  return id;
}

/** The body object (device or stream); its `id`, when given, must agree with the request's. */
function bodyOf(req: Record<string, unknown>, key: 'device' | 'stream', id: string | undefined): Record<string, unknown> {
  const body = req[key];
  if (!isPlainObject(body)) throw new BadRequest('invalid', `"${key}" must be an object, got ${body === undefined ? 'nothing' : preview(body)}`);
  if (id !== undefined && body.id !== undefined && body.id !== id) throw new BadRequest('invalid', `${key}.id ${preview(body.id)} does not match id ${preview(id)}`);
  return body;
}

function without(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const k of Object.keys(o)) if (k !== key) copy[k] = o[k];
  return copy;
}

function intParam(name: string, v: unknown): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d{1,15}\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new BadRequest('invalid', `query.${name} must be a whole number >= 0, got ${preview(v)}`);
  return n;
}

function stringParam(name: string, v: unknown): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new BadRequest('invalid', `query.${name} must be a string, got ${preview(v)}`);
  return v;
}

function boolParam(name: string, v: unknown): boolean | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new BadRequest('invalid', `query.${name} must be true or false, got ${preview(v)}`);
}

function queryOf(req: Record<string, unknown>): Record<string, unknown> {
  const q = req.query;
  if (q === undefined || q === null) return {};
  if (!isPlainObject(q)) throw new BadRequest('invalid', `"query" must be an object, got ${preview(q)}`);
  return q;
}

export function deviceQuery(q: Record<string, unknown>): ListQuery {
  const out: ListQuery = {};
  const offset = intParam('offset', q.offset);
  const limit = intParam('limit', q.limit);
  const type = stringParam('type', q.type);
  const tag = stringParam('tag', q.tag);
  const enabled = boolParam('enabled', q.enabled);
  const text = stringParam('q', q.q);
  if (offset !== undefined) out.offset = offset;
  if (limit !== undefined) out.limit = limit;
  if (type !== undefined) out.type = type;
  if (tag !== undefined) out.tag = tag;
  if (enabled !== undefined) out.enabled = enabled;
  if (text !== undefined) out.q = text;
  return out;
}

export function streamQuery(q: Record<string, unknown>): { offset?: number; limit?: number; device?: string; deviceType?: string } {
  const out: { offset?: number; limit?: number; device?: string; deviceType?: string } = {};
  const offset = intParam('offset', q.offset);
  const limit = intParam('limit', q.limit);
  const device = stringParam('device', q.device);
  const deviceType = stringParam('deviceType', q.deviceType);
  if (offset !== undefined) out.offset = offset;
  if (limit !== undefined) out.limit = limit;
  if (device !== undefined) out.device = device;
  if (deviceType !== undefined) out.deviceType = deviceType;
  return out;
}

function notFound(what: 'device' | 'stream', id: string): BadRequest {
  return new BadRequest('not_found', `${what} ${JSON.stringify(id)} does not exist`);
}

function run(registry: DeviceRegistry, op: ManageOp, req: Record<string, unknown>): { statusCode: 200 | 201 | 204; payload: unknown } {
  switch (op) {
    case 'create': {
      const id = req.id === undefined ? undefined : idOf(req);
      const body = bodyOf(req, 'device', id);
      const input = { ...body, id: body.id ?? id } as unknown as Parameters<DeviceRegistry['createDevice']>[0];
      return { statusCode: 201, payload: registry.createDevice(input) };
    }
    case 'get': {
      const id = idOf(req);
      const d = registry.getDevice(id);
      if (d === undefined) throw notFound('device', id);
      return { statusCode: 200, payload: d };
    }
    case 'update': {
      const id = idOf(req);
      const patch = without(bodyOf(req, 'device', id), 'id') as DevicePatch;
      return { statusCode: 200, payload: registry.updateDevice(id, patch) };
    }
    case 'delete': {
      const id = idOf(req);
      if (!registry.deleteDevice(id)) throw notFound('device', id);
      return { statusCode: 204, payload: null };
    }
    case 'list':
      return { statusCode: 200, payload: registry.listDevices(deviceQuery(queryOf(req))) };
    case 'rotate': {
      const id = idOf(req);
      const token = registry.rotateToken(id);
      const device = registry.getDevice(id);
      if (device === undefined) throw notFound('device', id);
      return { statusCode: 200, payload: { device, token } };
    }
    case 'revoke': {
      const id = idOf(req);
      registry.revokeToken(id);
      return { statusCode: 204, payload: null };
    }
    case 'createStream': {
      const id = req.id === undefined ? undefined : idOf(req);
      const body = bodyOf(req, 'stream', id);
      const input = { ...body, id: body.id ?? id } as unknown as StreamInput;
      return { statusCode: 201, payload: registry.createStream(input) };
    }
    case 'getStream': {
      const id = idOf(req);
      const s = registry.getStream(id);
      if (s === undefined) throw notFound('stream', id);
      return { statusCode: 200, payload: s };
    }
    case 'replaceStream': {
      const id = idOf(req);
      const input = without(bodyOf(req, 'stream', id), 'id') as Omit<StreamInput, 'id'>;
      return { statusCode: 200, payload: registry.replaceStream(id, input) };
    }
    case 'deleteStream': {
      const id = idOf(req);
      if (!registry.deleteStream(id)) throw notFound('stream', id);
      return { statusCode: 204, payload: null };
    }
    case 'listStreams':
      return { statusCode: 200, payload: registry.listStreams(streamQuery(queryOf(req))) };
  }
}

/**
 * Runs one request. Client mistakes (bad request, unknown op, not found, conflict, forbidden) come
 * back as `ok: false` with a 4xx status; anything else (a broken registry) is thrown.
 */
export function runManage(registry: DeviceRegistry, request: unknown): ManageResult {
  if (!isPlainObject(request)) return { ok: false, statusCode: 400, error: { code: 'invalid', message: `the request (msg.payload) must be an object { op, ... }, got ${preview(request)}` } };
  const op = request.op;
  if (!isOp(op)) return { ok: false, statusCode: 400, error: { code: 'invalid', message: `unknown op ${preview(op)}; expected one of ${MANAGE_OPS.join(', ')}` } };
  try {
    return { ok: true, op, ...run(registry, op, request) };
  } catch (e) {
    if (e instanceof BadRequest) return { ok: false, op, statusCode: STATUS[e.code], error: { code: e.code, message: e.message } };
    if (!isRegistryError(e)) throw e;
    const error: ManageError = { code: e.code, message: e.message };
    if (e.details !== undefined) error.details = e.details;
    return { ok: false, op, statusCode: STATUS[e.code], error };
  }
}
