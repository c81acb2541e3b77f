/**
 * The device registry engine (issue 4): devices, their tokens and streams, in one JSON file.
 * Pure Node.js (no Node-RED); the thingwire-registry config node, the thingwire-device node, the
 * embedded broker and the HTTP API all use it through the DeviceRegistry contract (./types.ts).
 *
 * One registry per file. openRegistry(file) returns a handle on the process-wide registry of
 * that file (path.resolve'd): every handle of one file sees the same devices at once. Handles
 * are reference counted; close() releases one (idempotent), and the last one flushes and drops
 * the registry (a later open reads the file again). An open while the last close is still
 * flushing keeps the same registry.
 *
 * Options: the first open of a file decides defaultLivenessTimeout, saveDelayMs,
 * seenSaveDelayMs and tokenHashCost; later opens with other values get the same registry and
 * a note in their handle's `problems`. The provisioning key is per handle: each opener (the
 * config node, the runtime) checks provision() against its own key.
 *
 * Persistence: `{format: "thingwire-registry", v: 1, devices: [...], streams: [...]}`, written
 * atomically (temporary file, fsync, rename, directory fsync) and debounced: a change is saved
 * within saveDelayMs (1 s); seen() alone (lastSeen) within seenSaveDelayMs (60 s), since it
 * changes with every message. flush() writes now: await it before telling a client a token
 * (so a crash cannot lose a token the client holds). Tokens are stored only as salted scrypt
 * hashes (./tokens.ts). Opening never silently starts empty over existing data:
 * - a file that cannot be read (permissions, a directory) throws;
 * - a file that is not JSON, or not a registry, is moved to `<file>.corrupt-<time>` and the
 *   registry starts empty, with the reason in `problems`;
 * - records that fail validation are skipped and named in `problems`, after the whole file was
 *   copied to `<file>.rejected-<time>`.
 *
 * Lookups are Map lookups (100,000 devices); listing scans and pages in id order.
 * Records handed out are frozen snapshots (tags, metadata, location and schemas included).
 */
import * as path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { preview } from '../names';
import { RegistryError } from './errors';
import { AtomicFile, copyAside, moveAside, readJson } from './persist';
import { DEFAULT_SCRYPT_COST, MAX_SCRYPT_COST, MAX_TOKEN_LENGTH, MIN_SCRYPT_COST, TokenDigester, hashToken, isTokenHash, newToken, secretsEqual, verifyToken } from './tokens';
import type {
  AuthResult,
  DeviceInput,
  DeviceLocation,
  DevicePatch,
  DeviceRecord,
  DeviceRegistry,
  ListQuery,
  Page,
  RegistryChange,
  StreamInput,
  StreamRecord,
} from './types';
import {
  REGISTRY_LIMITS,
  checkBool,
  checkId,
  checkKeys,
  checkLocation,
  checkMetadata,
  checkSchemaShape,
  checkTags,
  checkText,
  checkTimeout,
  checkType,
  invalid,
  isPlainObject,
  typeName,
} from './validate';

export { RegistryError, isRegistryError } from './errors';
export { REGISTRY_LIMITS } from './validate';

export interface RegistryOptions {
  /** Enables provision() for this handle; without it provision() is 'forbidden'. */
  provisioningKey?: string;
  /** ms; what a device's livenessTimeout 0 means. Default 5 minutes. */
  defaultLivenessTimeout?: number;
  /** Debounce of saves after a change (ms). Default 1000. */
  saveDelayMs?: number;
  /** Debounce of saves when only lastSeen changed (ms). Default 60,000. */
  seenSaveDelayMs?: number;
  /** log2 of scrypt's N for new token hashes (1..16). Default 12; lower only in tests and benches. */
  tokenHashCost?: number;
}

/** What openRegistry returns: the contract plus what the opener may want to know. */
export interface RegistryHandle extends DeviceRegistry {
  /** What went wrong loading or saving the file (moved-aside files, skipped records, failed saves), oldest first, at most 100. */
  readonly problems: readonly string[];
  /** ms a device's livenessTimeout 0 stands for. */
  readonly defaultLivenessTimeout: number;
  readonly closed: boolean;
}

export const DEFAULT_LIVENESS_TIMEOUT = 5 * 60_000;
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
const FORMAT = 'thingwire-registry';
const MAX_PROBLEMS = 100;

/** How far behind the data a handed-out record's lastSeen may be (ms). */
export const SEEN_VIEW_LAG_MS = 1000;

interface Settings {
  defaultLivenessTimeout: number;
  saveDelayMs: number;
  seenSaveDelayMs: number;
  tokenHashCost: number;
}

/** A device as the registry keeps it. tags/metadata/location are frozen copies, replaced on update. */
interface Dev {
  id: string;
  name: string;
  type: string;
  location: Readonly<DeviceLocation> | undefined;
  tags: Readonly<Record<string, string>>;
  metadata: Readonly<Record<string, unknown>>;
  enabled: boolean;
  livenessTimeout: number;
  createdAt: number;
  updatedAt: number;
  lastSeen: number | null;
  tokenHash: string | null;
  tokenRotatedAt: number | null;
  /** Keyed digest of the last token that verified (the authentication cache); cleared on rotate, revoke, disable. */
  verified: string | undefined;
  /** Keyed digest of the last token that did not (so a device retrying a stale token costs no scrypt). */
  refused: string | undefined;
  /** The frozen record handed out, rebuilt after a change. */
  view: DeviceRecord | undefined;
}

interface StoredDevice {
  id: string;
  name: string;
  type: string;
  location?: DeviceLocation;
  tags: Record<string, string>;
  metadata: Record<string, unknown>;
  enabled: boolean;
  livenessTimeout: number;
  createdAt: number;
  updatedAt: number;
  lastSeen: number | null;
  tokenHash: string | null;
  tokenRotatedAt: number | null;
}

interface StoredFile {
  format: typeof FORMAT;
  v: 1;
  savedAt: number;
  devices: StoredDevice[];
  streams: StreamRecord[];
}

const DEVICE_INPUT_KEYS = new Set(['id', 'name', 'type', 'location', 'tags', 'metadata', 'enabled', 'livenessTimeout']);
const DEVICE_READ_ONLY = new Set(['createdAt', 'updatedAt', 'lastSeen', 'hasToken', 'tokenRotatedAt', 'token', 'tokenHash']);
const STREAM_INPUT_KEYS = new Set(['id', 'name', 'description', 'schema', 'device', 'deviceType']);
const STREAM_READ_ONLY = new Set(['createdAt', 'updatedAt']);
const LIST_KEYS = new Set(['offset', 'limit', 'type', 'tag', 'enabled', 'q']);
const STREAM_LIST_KEYS = new Set(['offset', 'limit', 'device', 'deviceType']);

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function pageArgs(q: Record<string, unknown>): { offset: number; limit: number } {
  const offset = q.offset ?? 0;
  const limit = q.limit ?? DEFAULT_LIST_LIMIT;
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) throw invalid(`offset must be a whole number >= 0, got ${preview(offset)}`, 'offset');
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw invalid(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT}, got ${preview(limit)}`, 'limit');
  }
  return { offset, limit };
}

class RegistryCore {
  readonly file: string;
  readonly settings: Settings;
  readonly problems: string[] = [];
  refs = 0;
  private readonly devices = new Map<string, Dev>();
  private readonly streams = new Map<string, StreamRecord>();
  private sortedDevices: string[] | null = null;
  private sortedStreams: string[] | null = null;
  private readonly listeners = new Set<(c: RegistryChange) => void>();
  private readonly digester = new TokenDigester();
  private readonly out: AtomicFile;
  private ajv: Ajv2020 | undefined;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private closing: Promise<void> | undefined;

  constructor(file: string, settings: Settings) {
    this.file = file;
    this.settings = settings;
    this.out = new AtomicFile(file);
    this.load();
  }

  problem(p: string): void {
    this.problems.push(p);
    if (this.problems.length > MAX_PROBLEMS) this.problems.splice(0, this.problems.length - MAX_PROBLEMS);
  }

  // ---- loading and saving ------------------------------------------------------------------

  private load(): void {
    const r = readJson(this.file);
    if (r.kind === 'missing') return;
    let why: string | undefined;
    if (r.kind === 'corrupt') why = `not JSON: ${r.why}`;
    else {
      const v = r.value;
      if (!isPlainObject(v) || v.format !== FORMAT) why = 'not a thingwire registry file';
      else if (v.v !== 1) why = `registry file version ${preview(v.v)} is not supported`;
      else if (!Array.isArray(v.devices) || !Array.isArray(v.streams)) why = 'devices and streams must be arrays';
      else {
        this.loadRecords(v.devices as unknown[], v.streams as unknown[]);
        return;
      }
    }
    const aside = moveAside(this.file, 'corrupt');
    this.problem(`registry file ${this.file} is unusable (${why}); moved to ${aside}, starting empty`);
  }

  private loadRecords(devices: unknown[], streams: unknown[]): void {
    const skipped: string[] = [];
    for (let i = 0; i < devices.length; i++) {
      try {
        const d = this.deviceFromStored(devices[i]);
        if (this.devices.has(d.id)) throw invalid(`device ${preview(d.id)} appears twice`);
        this.devices.set(d.id, d);
      } catch (e) {
        skipped.push(`device #${i}: ${(e as Error).message}`);
      }
    }
    for (let i = 0; i < streams.length; i++) {
      try {
        const s = this.streamFromStored(streams[i]);
        if (this.streams.has(s.id)) throw invalid(`stream ${preview(s.id)} appears twice`);
        this.streams.set(s.id, s);
      } catch (e) {
        skipped.push(`stream #${i}: ${(e as Error).message}`);
      }
    }
    if (skipped.length > 0) {
      const copy = copyAside(this.file, 'rejected');
      const shown = skipped.slice(0, 10).join('; ');
      this.problem(`registry file ${this.file}: skipped ${skipped.length} invalid record(s) (${shown}${skipped.length > 10 ? '; ...' : ''}); the file as it was is kept in ${copy}`);
    }
  }

  private deviceFromStored(v: unknown): Dev {
    if (!isPlainObject(v)) throw invalid(`not an object but ${typeName(v)}`);
    const { createdAt, updatedAt, lastSeen, tokenHash, tokenRotatedAt } = v;
    if (!isTime(createdAt) || !isTime(updatedAt)) throw invalid('createdAt/updatedAt must be times in ms');
    if (lastSeen !== null && !isTime(lastSeen)) throw invalid('lastSeen must be null or a time in ms');
    if (tokenHash !== null && !isTokenHash(tokenHash)) throw invalid('tokenHash is malformed');
    if (tokenRotatedAt !== null && !isTime(tokenRotatedAt)) throw invalid('tokenRotatedAt must be null or a time in ms');
    const input: Record<string, unknown> = {};
    for (const k of DEVICE_INPUT_KEYS) if (v[k] !== undefined) input[k] = v[k];
    const d = this.newDev(input, createdAt);
    d.updatedAt = updatedAt;
    d.lastSeen = lastSeen;
    d.tokenHash = tokenHash;
    d.tokenRotatedAt = tokenRotatedAt;
    return d;
  }

  private streamFromStored(v: unknown): StreamRecord {
    if (!isPlainObject(v)) throw invalid(`not an object but ${typeName(v)}`);
    if (!isTime(v.createdAt) || !isTime(v.updatedAt)) throw invalid('createdAt/updatedAt must be times in ms');
    const input: Record<string, unknown> = {};
    for (const k of STREAM_INPUT_KEYS) if (v[k] !== undefined) input[k] = v[k];
    // Owners may have been deleted since; a stored stream keeps its owner.
    return this.streamFromInput(input, v.createdAt, v.updatedAt, false);
  }

  private serialise(): string {
    const devices: StoredDevice[] = [];
    for (const d of this.devices.values()) {
      const s: StoredDevice = {
        id: d.id,
        name: d.name,
        type: d.type,
        tags: d.tags,
        metadata: d.metadata,
        enabled: d.enabled,
        livenessTimeout: d.livenessTimeout,
        createdAt: d.createdAt,
        updatedAt: d.updatedAt,
        lastSeen: d.lastSeen,
        tokenHash: d.tokenHash,
        tokenRotatedAt: d.tokenRotatedAt,
      };
      if (d.location) s.location = d.location;
      devices.push(s);
    }
    const file: StoredFile = { format: FORMAT, v: 1, savedAt: Date.now(), devices, streams: [...this.streams.values()] };
    return JSON.stringify(file);
  }

  private changed(change: RegistryChange | null): void {
    this.dirty = true;
    if (!change) {
      // lastSeen only (every message): any save already scheduled will do.
      if (this.timer === undefined) this.schedule(this.settings.seenSaveDelayMs);
      return;
    }
    this.schedule(this.settings.saveDelayMs);
    for (const l of [...this.listeners]) {
      try {
        l(change);
      } catch (e) {
        this.problem(`a registry change listener threw: ${(e as Error).message}`);
      }
    }
  }

  private schedule(delay: number): void {
    const due = Date.now() + delay;
    if (this.timer && this.timerDue <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      this.save().catch(() => undefined);
    }, delay);
    this.timer.unref();
  }

  private async save(): Promise<void> {
    if (!this.dirty) return this.out.idle();
    this.dirty = false;
    try {
      await this.out.write(this.serialise());
    } catch (e) {
      this.dirty = true;
      this.problem(`could not save the registry to ${this.file}: ${(e as Error).message}`);
      if (this.refs > 0) this.schedule(Math.max(this.settings.saveDelayMs, 1000));
      throw e;
    }
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.timerDue = Infinity;
    }
    await this.save();
  }

  /** Drops one reference; the last one flushes and removes the registry from the process. */
  release(): Promise<void> {
    this.refs--;
    if (this.refs > 0) return Promise.resolve();
    this.closing ??= this.flush().finally(() => {
      this.closing = undefined;
      if (this.refs === 0) {
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        this.listeners.clear();
        if (cores.get(this.file) === this) cores.delete(this.file);
      }
    });
    return this.closing;
  }

  // ---- devices -------------------------------------------------------------------------------

  /** A new device from checked input (create and load share it). */
  private newDev(input: Record<string, unknown>, now: number): Dev {
    checkKeys(input, DEVICE_INPUT_KEYS, DEVICE_READ_ONLY, 'device');
    const id = checkId(input.id, 'device');
    const d: Dev = {
      id,
      name: id,
      type: '',
      location: undefined,
      tags: Object.freeze({}),
      metadata: Object.freeze({}),
      enabled: true,
      livenessTimeout: 0,
      createdAt: now,
      updatedAt: now,
      lastSeen: null,
      tokenHash: null,
      tokenRotatedAt: null,
      verified: undefined,
      refused: undefined,
      view: undefined,
    };
    this.applyPatch(d, input);
    return d;
  }

  /** Checks every field of `patch` first, then applies them all (nothing changes when one is wrong). */
  private applyPatch(d: Dev, patch: Record<string, unknown>): void {
    const next: Partial<Dev> = {};
    if (patch.name !== undefined) next.name = checkText(patch.name, 'name', REGISTRY_LIMITS.name);
    if (patch.type !== undefined) next.type = checkType(patch.type);
    if (patch.location !== undefined) next.location = patch.location === null ? undefined : deepFreeze(checkLocation(patch.location));
    if (patch.tags !== undefined) next.tags = deepFreeze(checkTags(patch.tags));
    if (patch.metadata !== undefined) next.metadata = deepFreeze(checkMetadata(patch.metadata));
    if (patch.enabled !== undefined) next.enabled = checkBool(patch.enabled, 'enabled');
    if (patch.livenessTimeout !== undefined) next.livenessTimeout = checkTimeout(patch.livenessTimeout);
    Object.assign(d, next);
    d.view = undefined;
  }

  private view(d: Dev): DeviceRecord {
    let v = d.view;
    if (v === undefined) {
      const r: DeviceRecord = {
        id: d.id,
        name: d.name,
        type: d.type,
        tags: d.tags as Record<string, string>,
        metadata: d.metadata as Record<string, unknown>,
        enabled: d.enabled,
        livenessTimeout: d.livenessTimeout,
        createdAt: d.createdAt,
        updatedAt: d.updatedAt,
        lastSeen: d.lastSeen,
        hasToken: d.tokenHash !== null,
        tokenRotatedAt: d.tokenRotatedAt,
      };
      if (d.location) r.location = d.location;
      v = d.view = Object.freeze(r);
    }
    return v;
  }

  private mustGet(id: string): Dev {
    const d = typeof id === 'string' ? this.devices.get(id) : undefined;
    if (!d) throw new RegistryError('not_found', `device ${preview(id)} is not registered`);
    return d;
  }

  createDevice(input: DeviceInput): { device: DeviceRecord; token: string } {
    if (!isPlainObject(input)) throw invalid(`a device must be an object, got ${typeName(input)}`);
    const d = this.newDev(input as unknown as Record<string, unknown>, Date.now());
    if (this.devices.has(d.id)) throw new RegistryError('conflict', `device ${preview(d.id)} is already registered`, { field: 'id' });
    const token = newToken();
    d.tokenHash = hashToken(token, this.settings.tokenHashCost);
    d.tokenRotatedAt = d.createdAt;
    this.devices.set(d.id, d);
    this.sortedDevices = null;
    this.changed({ kind: 'device', id: d.id, op: 'create' });
    return { device: this.view(d), token };
  }

  getDevice(id: string): DeviceRecord | undefined {
    const d = typeof id === 'string' ? this.devices.get(id) : undefined;
    return d && this.view(d);
  }

  updateDevice(id: string, patch: DevicePatch): DeviceRecord {
    const d = this.mustGet(id);
    if (!isPlainObject(patch)) throw invalid(`a device update must be an object, got ${typeName(patch)}`);
    const p = patch as Record<string, unknown>;
    if ('id' in p && p.id !== id) throw invalid(`a device's id cannot be changed (from ${preview(id)} to ${preview(p.id)})`, 'id');
    const rest: Record<string, unknown> = {};
    for (const k of Object.keys(p)) if (k !== 'id') rest[k] = p[k];
    checkKeys(rest, DEVICE_INPUT_KEYS, DEVICE_READ_ONLY, 'device');
    const wasEnabled = d.enabled;
    this.applyPatch(d, rest);
    if (wasEnabled && !d.enabled) d.verified = d.refused = undefined;
    d.updatedAt = Math.max(Date.now(), d.updatedAt);
    this.changed({ kind: 'device', id, op: 'update' });
    return this.view(d);
  }

  deleteDevice(id: string): boolean {
    if (typeof id !== 'string' || !this.devices.has(id)) return false;
    const d = this.devices.get(id)!;
    d.verified = d.refused = undefined;
    this.devices.delete(id);
    this.sortedDevices = null;
    this.changed({ kind: 'device', id, op: 'delete' });
    return true;
  }

  listDevices(query: ListQuery = {}): Page<DeviceRecord> {
    if (!isPlainObject(query)) throw invalid(`a list query must be an object, got ${typeName(query)}`);
    const q = query as Record<string, unknown>;
    checkKeys(q, LIST_KEYS, new Set(), 'list query');
    const { offset, limit } = pageArgs(q);
    const type = q.type === undefined ? undefined : checkType(q.type);
    const enabled = q.enabled === undefined ? undefined : checkBool(q.enabled, 'enabled');
    let tagKey: string | undefined;
    let tagValue: string | undefined;
    if (q.tag !== undefined) {
      const t = checkText(q.tag, 'tag', 400);
      const eq = t.indexOf('=');
      tagKey = eq < 0 ? t : t.slice(0, eq);
      tagValue = eq < 0 ? undefined : t.slice(eq + 1);
    }
    const text = q.q === undefined ? undefined : checkText(q.q, 'q', REGISTRY_LIMITS.name).toLowerCase();
    const ids = (this.sortedDevices ??= [...this.devices.keys()].sort());
    const filtered = type !== undefined || enabled !== undefined || tagKey !== undefined || text !== undefined;
    if (!filtered) {
      return { items: ids.slice(offset, offset + limit).map((id) => this.view(this.devices.get(id)!)), total: ids.length, offset, limit };
    }
    const items: DeviceRecord[] = [];
    let total = 0;
    for (const id of ids) {
      const d = this.devices.get(id)!;
      if (type !== undefined && d.type !== type) continue;
      if (enabled !== undefined && d.enabled !== enabled) continue;
      if (tagKey !== undefined) {
        if (!Object.prototype.hasOwnProperty.call(d.tags, tagKey)) continue;
        if (tagValue !== undefined && d.tags[tagKey] !== tagValue) continue;
      }
      if (text !== undefined && !d.id.toLowerCase().includes(text) && !d.name.toLowerCase().includes(text)) continue;
      if (total >= offset && items.length < limit) items.push(this.view(d));
      total++;
    }
    return { items, total, offset, limit };
  }

  rotateToken(id: string): string {
    const d = this.mustGet(id);
    const token = newToken();
    d.tokenHash = hashToken(token, this.settings.tokenHashCost);
    d.tokenRotatedAt = d.updatedAt = Math.max(Date.now(), d.updatedAt);
    d.verified = d.refused = d.view = undefined;
    this.changed({ kind: 'device', id, op: 'token' });
    return token;
  }

  revokeToken(id: string): void {
    const d = this.mustGet(id);
    d.tokenHash = null;
    d.tokenRotatedAt = d.updatedAt = Math.max(Date.now(), d.updatedAt);
    d.verified = d.refused = d.view = undefined;
    this.changed({ kind: 'device', id, op: 'token' });
  }

  authenticate(id: string, token: string | undefined): AuthResult {
    const d = typeof id === 'string' ? this.devices.get(id) : undefined;
    if (d === undefined) return { ok: false, code: 'unknown_device', message: `device ${preview(id)} is not registered` };
    if (!d.enabled) return { ok: false, code: 'device_disabled', message: `device ${preview(id)} is disabled` };
    if (typeof token !== 'string' || token === '') return { ok: false, code: 'unauthorized', message: `no token was given for device ${preview(id)}` };
    if (d.tokenHash === null) return { ok: false, code: 'unauthorized', message: `device ${preview(id)} has no token (it was revoked); rotate its token to issue a new one` };
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, code: 'unauthorized', message: `the token given for device ${preview(id)} is not a device token (too long)` };
    const digest = this.digester.digest(token);
    // Comparing keyed digests: equality timing says nothing usable about the token (see tokens.ts).
    if (digest !== d.verified) {
      if (digest === d.refused || !verifyToken(token, d.tokenHash)) {
        d.refused = digest;
        return { ok: false, code: 'unauthorized', message: `wrong token for device ${preview(id)}` };
      }
      d.verified = digest;
    }
    return { ok: true, device: d.view ?? this.view(d) };
  }

  seen(id: string, ts: number): void {
    const d = this.devices.get(id);
    if (d === undefined || typeof ts !== 'number' || !(ts >= 0)) return;
    // Event time, but never later than the wall clock: a device with a clock in the future must not pin it.
    const now = Date.now();
    const t = ts > now ? now : ts;
    if (d.lastSeen !== null && t <= d.lastSeen) return;
    d.lastSeen = t;
    // The frozen record handed out keeps its lastSeen for up to a second: rebuilding it on every message would cost
    // more than the authentication it rides on (authenticate + seen + enrich is the per-message path).
    if (d.view !== undefined && (d.view.lastSeen === null || t - d.view.lastSeen >= SEEN_VIEW_LAG_MS)) d.view = undefined;
    this.changed(null);
  }

  // ---- streams -------------------------------------------------------------------------------

  private compileSchema(schema: Record<string, unknown>): void {
    const ajv = (this.ajv ??= makeAjv());
    try {
      ajv.compile(schema);
    } catch (e) {
      throw new RegistryError('invalid', `schema does not compile: ${(e as Error).message}`, { field: 'schema' });
    } finally {
      try {
        ajv.removeSchema(schema);
      } catch {
        // nothing was registered
      }
    }
  }

  private streamFromInput(input: Record<string, unknown>, createdAt: number, updatedAt: number, ownerMustExist: boolean): StreamRecord {
    checkKeys(input, STREAM_INPUT_KEYS, STREAM_READ_ONLY, 'stream');
    const id = checkId(input.id, 'stream');
    const name = input.name === undefined ? id : checkText(input.name, 'name', REGISTRY_LIMITS.name);
    const description = input.description === undefined ? '' : checkText(input.description, 'description', REGISTRY_LIMITS.description, true);
    let schema: Record<string, unknown> | null = null;
    if (input.schema !== undefined && input.schema !== null) {
      schema = checkSchemaShape(input.schema);
      this.compileSchema(schema);
    }
    const device = input.device === undefined || input.device === null ? null : checkId(input.device, 'owning device');
    const deviceType = input.deviceType === undefined || input.deviceType === null ? null : checkType(input.deviceType, 'deviceType') || null;
    if (device !== null && deviceType !== null) throw invalid('a stream belongs to a device or to a device type, not both', 'device');
    if (ownerMustExist && device !== null && !this.devices.has(device)) throw invalid(`owning device ${preview(device)} is not registered`, 'device');
    return deepFreeze({ id, name, description, schema, device, deviceType, createdAt, updatedAt });
  }

  createStream(input: StreamInput): StreamRecord {
    if (!isPlainObject(input)) throw invalid(`a stream must be an object, got ${typeName(input)}`);
    const id = checkId((input as unknown as Record<string, unknown>).id, 'stream');
    if (this.streams.has(id)) throw new RegistryError('conflict', `stream ${preview(id)} already exists`, { field: 'id' });
    const now = Date.now();
    const s = this.streamFromInput(input as unknown as Record<string, unknown>, now, now, true);
    this.streams.set(id, s);
    this.sortedStreams = null;
    this.changed({ kind: 'stream', id, op: 'create' });
    return s;
  }

  getStream(id: string): StreamRecord | undefined {
    return typeof id === 'string' ? this.streams.get(id) : undefined;
  }

  replaceStream(id: string, input: Omit<StreamInput, 'id'>): StreamRecord {
    const old = typeof id === 'string' ? this.streams.get(id) : undefined;
    if (!old) throw new RegistryError('not_found', `stream ${preview(id)} does not exist`);
    if (!isPlainObject(input)) throw invalid(`a stream must be an object, got ${typeName(input)}`);
    const p = input as Record<string, unknown>;
    if ('id' in p && p.id !== id) throw invalid(`a stream's id cannot be changed (from ${preview(id)} to ${preview(p.id)})`, 'id');
    const s = this.streamFromInput({ ...p, id }, old.createdAt, Math.max(Date.now(), old.updatedAt), true);
    this.streams.set(id, s);
    this.changed({ kind: 'stream', id, op: 'update' });
    return s;
  }

  deleteStream(id: string): boolean {
    if (typeof id !== 'string' || !this.streams.delete(id)) return false;
    this.sortedStreams = null;
    this.changed({ kind: 'stream', id, op: 'delete' });
    return true;
  }

  listStreams(query: { offset?: number; limit?: number; device?: string; deviceType?: string } = {}): Page<StreamRecord> {
    if (!isPlainObject(query)) throw invalid(`a list query must be an object, got ${typeName(query)}`);
    const q = query as Record<string, unknown>;
    checkKeys(q, STREAM_LIST_KEYS, new Set(), 'list query');
    const { offset, limit } = pageArgs(q);
    const device = q.device === undefined ? undefined : checkId(q.device, 'device');
    const deviceType = q.deviceType === undefined ? undefined : checkType(q.deviceType, 'deviceType');
    const ids = (this.sortedStreams ??= [...this.streams.keys()].sort());
    const items: StreamRecord[] = [];
    let total = 0;
    for (const id of ids) {
      const s = this.streams.get(id)!;
      if (device !== undefined && s.device !== device) continue;
      if (deviceType !== undefined && s.deviceType !== deviceType) continue;
      if (total >= offset && items.length < limit) items.push(s);
      total++;
    }
    return { items, total, offset, limit };
  }

  get size(): { devices: number; streams: number } {
    return { devices: this.devices.size, streams: this.streams.size };
  }

  addListener(l: (c: RegistryChange) => void): void {
    this.listeners.add(l);
  }

  removeListener(l: (c: RegistryChange) => void): void {
    this.listeners.delete(l);
  }
}

function makeAjv(): Ajv2020 {
  // The same options as the validator engine (nodes/validate/engine.ts), so a schema accepted here compiles there.
  const ajv = new Ajv2020({ allErrors: true, strict: false, allowUnionTypes: true, logger: false });
  addFormats(ajv);
  return ajv;
}

const cores = new Map<string, RegistryCore>();

function settingsFrom(opts: RegistryOptions): Settings {
  const num = (v: unknown, what: string, dflt: number, min: number, max: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new RangeError(`${what} must be a whole number from ${min} to ${max}, got ${preview(v)}`);
    return v;
  };
  return {
    defaultLivenessTimeout: num(opts.defaultLivenessTimeout, 'defaultLivenessTimeout', DEFAULT_LIVENESS_TIMEOUT, REGISTRY_LIMITS.minTimeout, REGISTRY_LIMITS.maxTimeout),
    saveDelayMs: num(opts.saveDelayMs, 'saveDelayMs', 1000, 0, 3_600_000),
    seenSaveDelayMs: num(opts.seenSaveDelayMs, 'seenSaveDelayMs', 60_000, 0, 86_400_000),
    tokenHashCost: num(opts.tokenHashCost, 'tokenHashCost', DEFAULT_SCRYPT_COST, MIN_SCRYPT_COST, MAX_SCRYPT_COST),
  };
}

class Handle implements RegistryHandle {
  readonly file: string;
  private core: RegistryCore | undefined;
  private readonly provisioningKey: string | undefined;
  private readonly own = new Set<(c: RegistryChange) => void>();
  private readonly notes: string[];

  constructor(core: RegistryCore, provisioningKey: string | undefined, notes: string[]) {
    this.core = core;
    this.file = core.file;
    this.provisioningKey = provisioningKey;
    this.notes = notes;
  }

  private get c(): RegistryCore {
    const c = this.core;
    if (c === undefined) throw new Error(`the registry handle for ${this.file} is closed`);
    return c;
  }

  get problems(): readonly string[] {
    return this.core ? [...this.core.problems, ...this.notes] : [...this.notes];
  }

  get defaultLivenessTimeout(): number {
    return this.c.settings.defaultLivenessTimeout;
  }

  get closed(): boolean {
    return this.core === undefined;
  }

  get size(): { devices: number; streams: number } {
    return this.c.size;
  }

  createDevice(input: DeviceInput): { device: DeviceRecord; token: string } {
    return this.c.createDevice(input);
  }

  getDevice(id: string): DeviceRecord | undefined {
    return this.c.getDevice(id);
  }

  updateDevice(id: string, patch: DevicePatch): DeviceRecord {
    return this.c.updateDevice(id, patch);
  }

  deleteDevice(id: string): boolean {
    return this.c.deleteDevice(id);
  }

  listDevices(query?: ListQuery): Page<DeviceRecord> {
    return this.c.listDevices(query);
  }

  rotateToken(id: string): string {
    return this.c.rotateToken(id);
  }

  revokeToken(id: string): void {
    this.c.revokeToken(id);
  }

  authenticate(id: string, token: string | undefined): AuthResult {
    return this.c.authenticate(id, token);
  }

  provision(key: string, input: DeviceInput): { device: DeviceRecord; token: string } {
    const core = this.c;
    if (this.provisioningKey === undefined) throw new RegistryError('forbidden', 'provisioning is off: no provisioning key is configured');
    if (typeof key !== 'string' || key === '' || !secretsEqual(key, this.provisioningKey)) throw new RegistryError('forbidden', 'wrong provisioning key');
    return core.createDevice(input);
  }

  seen(id: string, ts: number): void {
    this.c.seen(id, ts);
  }

  createStream(input: StreamInput): StreamRecord {
    return this.c.createStream(input);
  }

  getStream(id: string): StreamRecord | undefined {
    return this.c.getStream(id);
  }

  replaceStream(id: string, input: Omit<StreamInput, 'id'>): StreamRecord {
    return this.c.replaceStream(id, input);
  }

  deleteStream(id: string): boolean {
    return this.c.deleteStream(id);
  }

  listStreams(query?: { offset?: number; limit?: number; device?: string; deviceType?: string }): Page<StreamRecord> {
    return this.c.listStreams(query);
  }

  onChange(listener: (c: RegistryChange) => void): () => void {
    const core = this.c;
    // Each subscription gets its own function, so subscribing the same listener twice needs two unsubscribes.
    const l = (c: RegistryChange): void => listener(c);
    this.own.add(l);
    core.addListener(l);
    return () => {
      this.own.delete(l);
      core.removeListener(l);
    };
  }

  flush(): Promise<void> {
    return this.c.flush();
  }

  close(): Promise<void> {
    const core = this.core;
    if (core === undefined) return Promise.resolve();
    this.core = undefined;
    for (const l of this.own) core.removeListener(l);
    this.own.clear();
    return core.release();
  }
}

/**
 * Opens the registry stored in `file` (created at the first save when missing). Throws when the
 * file exists but cannot be read, or when an option is out of range (RangeError).
 */
export function openRegistry(file: string, opts: RegistryOptions = {}): RegistryHandle {
  if (typeof file !== 'string' || file === '') throw new TypeError('openRegistry needs a file path');
  const resolved = path.resolve(file);
  const settings = settingsFrom(opts);
  const key = opts.provisioningKey;
  if (key !== undefined && typeof key !== 'string') throw new TypeError('provisioningKey must be a string');
  let core = cores.get(resolved);
  const notes: string[] = [];
  if (core) {
    const differ = (Object.keys(settings) as Array<keyof Settings>).filter((k) => (opts as Record<string, unknown>)[k] !== undefined && settings[k] !== core!.settings[k]);
    if (differ.length > 0) notes.push(`registry ${resolved} was already open with other ${differ.join(', ')}; the first open's settings apply`);
  } else {
    core = new RegistryCore(resolved, settings);
    cores.set(resolved, core);
  }
  core.refs++;
  return new Handle(core, key === '' ? undefined : key, notes);
}

/** The files of the registries open in this process (for tests and diagnostics). */
export function openRegistryFiles(): string[] {
  return [...cores.keys()];
}
