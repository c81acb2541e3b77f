/**
 * The device registry's contract (issue 4): what the registry engine (./registry.ts), the
 * thingwire-registry config node, the thingwire-device node, the embedded broker's authentication
 * and the HTTP API all speak. Pure types, no Node-RED.
 *
 * One registry per file: openRegistry(file) (./registry.ts) returns the same instance to every
 * caller in the process (reference counted), so the bundled runtime's broker and the flows'
 * thingwire-registry node share one registry in DATA_DIR/registry/registry.json.
 */

export interface DeviceLocation {
  name?: string;
  lat?: number;
  lon?: number;
}

/** A device as the registry returns it. Tokens are never returned, only whether one is set. */
export interface DeviceRecord {
  /** Device id: the contract's device id rules (nodes/lib/names.ts isValidDeviceId). */
  id: string;
  name: string;
  /** Device type, e.g. "pico-w-dht22" ("" when not set); schemas and streams can be chosen by it. */
  type: string;
  location?: DeviceLocation;
  tags: Record<string, string>;
  metadata: Record<string, unknown>;
  enabled: boolean;
  /** ms without data after which the device counts as offline; 0 = the registry's default. */
  livenessTimeout: number;
  createdAt: number;
  updatedAt: number;
  /** Event time (ms) of the newest data seen from it, null when it never sent anything. */
  lastSeen: number | null;
  hasToken: boolean;
  tokenRotatedAt: number | null;
}

/** What a client may set on a device (create: id required; update: any subset but id). */
export interface DeviceInput {
  id: string;
  name?: string;
  type?: string;
  location?: DeviceLocation;
  tags?: Record<string, string>;
  metadata?: Record<string, unknown>;
  enabled?: boolean;
  livenessTimeout?: number;
}

export type DevicePatch = Partial<Omit<DeviceInput, 'id'>>;

export interface StreamRecord {
  /** Stream id: same rules as a device id. */
  id: string;
  name: string;
  description: string;
  /** JSON Schema (2020-12) every entry must satisfy; null = any object of metrics. */
  schema: Record<string, unknown> | null;
  /** The device that owns it, or the device type whose devices may write to it (at most one of the two). */
  device: string | null;
  deviceType: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface StreamInput {
  id: string;
  name?: string;
  description?: string;
  schema?: Record<string, unknown> | null;
  device?: string | null;
  deviceType?: string | null;
}

/** Why a source was not let in. Also RejectCodes (nodes/lib/contract.ts). */
export type AuthFailure = 'unknown_device' | 'device_disabled' | 'unauthorized';

export type AuthResult = { ok: true; device: DeviceRecord } | { ok: false; code: AuthFailure; message: string };

export interface ListQuery {
  /** Default 0. */
  offset?: number;
  /** Default 100, at most 1000. */
  limit?: number;
  type?: string;
  /** Devices with this tag (key=value), e.g. "site=madrid". */
  tag?: string;
  enabled?: boolean;
  /** Case-insensitive substring of id or name. */
  q?: string;
}

export interface Page<T> {
  items: T[];
  total: number;
  offset: number;
  limit: number;
}

export type RegistryErrorCode = 'not_found' | 'conflict' | 'invalid' | 'forbidden';

export interface RegistryChange {
  kind: 'device' | 'stream';
  id: string;
  op: 'create' | 'update' | 'delete' | 'token';
}

export interface DeviceRegistry {
  /** The file it persists to. */
  readonly file: string;

  createDevice(input: DeviceInput): { device: DeviceRecord; token: string };
  getDevice(id: string): DeviceRecord | undefined;
  updateDevice(id: string, patch: DevicePatch): DeviceRecord;
  deleteDevice(id: string): boolean;
  listDevices(query?: ListQuery): Page<DeviceRecord>;
  /** A new random token (shown once); the old one stops working at once. */
  rotateToken(id: string): string;
  revokeToken(id: string): void;
  /**
   * Checks a device's token in constant time. Tokens are stored as salted scrypt hashes; a token
   * verified once is remembered (by a keyed hash of it, until rotated or revoked), so steady-state
   * checks cost a map lookup, not an scrypt.
   */
  authenticate(id: string, token: string | undefined): AuthResult;
  /** Registers a device with a provisioning key (when the registry has one); throws 'forbidden' otherwise. */
  provision(key: string, input: DeviceInput): { device: DeviceRecord; token: string };
  /** Notes data from a device (event time ms); cheap, persisted with the next save. */
  seen(id: string, ts: number): void;

  createStream(input: StreamInput): StreamRecord;
  getStream(id: string): StreamRecord | undefined;
  /** Full replace (PUT). */
  replaceStream(id: string, input: Omit<StreamInput, 'id'>): StreamRecord;
  deleteStream(id: string): boolean;
  listStreams(query?: { offset?: number; limit?: number; device?: string; deviceType?: string }): Page<StreamRecord>;

  readonly size: { devices: number; streams: number };
  /** Subscribe to changes (for caches and the liveness tracker); returns the unsubscribe function. */
  onChange(listener: (c: RegistryChange) => void): () => void;
  /** Writes pending changes now (atomic file write). */
  flush(): Promise<void>;
  /** Releases this reference; the last one flushes and closes. */
  close(): Promise<void>;
}

/** A change of a device's liveness, judged from data arrival (wall clock), never from connections. */
export interface LivenessEvent {
  device: string;
  state: 'online' | 'offline';
  /** When the state changed (ms, wall clock): the arrival of data, or the deadline that passed. */
  since: number;
  /** Arrival time of the newest data, null when the device never sent anything. */
  lastSeen: number | null;
  /** data: data arrived; timeout: no data for the device's timeout; never-seen: registered (or tracked after a restart) and silent for its timeout. */
  reason: 'data' | 'timeout' | 'never-seen';
}

/**
 * Liveness of many devices with one scheduler (nodes/lib/registry/liveness.ts implements it): a
 * min-heap of deadlines with lazy invalidation, so advance(now) costs O(k log n) for k due devices
 * and nothing per tick for the others; nextDeadline() lets the caller keep a single timer.
 * Events are emitted once per change. Pure: the caller passes `now`.
 */
export interface LivenessTrackerLike {
  /** Starts (or updates) tracking: timeout in ms; lastSeen null when never seen (offline, 'never-seen', once timeout passes from now). */
  track(id: string, timeoutMs: number, now: number, lastSeen: number | null): void;
  untrack(id: string): void;
  /** Data from the device arrived at `now`: an 'online' event when it was offline or unknown, else null. */
  seen(id: string, now: number): LivenessEvent | null;
  /** The offline events whose deadline is <= now, in deadline order. */
  advance(now: number): LivenessEvent[];
  /** The earliest pending deadline (ms), or Infinity. */
  nextDeadline(): number;
  state(id: string): 'online' | 'offline' | 'unknown' | undefined;
  readonly size: number;
}
