/**
 * The embedded MQTT broker (aedes) that the one-command runtime starts so no
 * external service is needed, and who may do what on it (issue 4, item 3).
 *
 * Who connects, and what each may do (BrokerAuth below, pure and unit-tested):
 * - A device: username = its device id, password = its token, checked by the device registry
 *   (registry.authenticate: unknown, disabled or a wrong token is refused in the CONNACK). It may
 *   publish and subscribe only under `devices/{its id}/...` (telemetry, metric topics, status),
 *   and its last will must be there too (a will elsewhere refuses the connection).
 * - A device with password `provision:<key>`: when the runtime has a provisioning key
 *   (THINGWIRE_PROVISIONING_KEY) and the key matches, an unknown device id is registered
 *   (registry.provision, metadata.provisionedVia = "mqtt") and let in; the token the registry
 *   issued is not sent over MQTT. Such a device keeps connecting with `provision:<key>` until its
 *   operator rotates its token (then only the token works); a device registered with a token of
 *   its own is never let in with the key, so the key cannot impersonate it.
 * - The runtime's own flows. The shipped starter flow's mqtt-broker node has no credentials (and
 *   flows seeded earlier cannot get any without editing the integrator's flow files), so:
 *   an ANONYMOUS client connecting from this machine (a loopback address, or one of this host's
 *   own interface addresses, which is where the flows connect from when HOST is a LAN address)
 *   is let in as a subscriber: it may subscribe to anything and publish only alert events under
 *   `alerts/{device}` (the starter flow's alert node publishes there for notifiers and other
 *   systems; a process on this machine could also forge alerts there: the same trust this machine
 *   already has to read all telemetry).
 *   Anonymous clients from elsewhere are refused. Flows that must publish (commands to devices)
 *   use the service account: the runtime generates a random password at every start and puts
 *   user and password in THINGWIRE_MQTT_USER / THINGWIRE_MQTT_PASSWORD; Node-RED 4 substitutes
 *   `${VAR}` in a node's credentials (runtime/lib/nodes/index.js createNode), so an mqtt-broker
 *   node with username `${THINGWIRE_MQTT_USER}` and password `${THINGWIRE_MQTT_PASSWORD}` gets
 *   full access. Its name, `$thingwire`, is not a valid device id, so no device can take it.
 * - THINGWIRE_MQTT_ANONYMOUS=1 (a demo switch, warned about at start): anonymous clients from
 *   anywhere may publish and subscribe to anything, as before device authentication.
 *
 * A refused PUBLISH disconnects the client: MQTT 3.1.1 has no negative acknowledgement, and the
 * spec (MQTT-3.3.5-2) lets the server either acknowledge normally or close the connection; closing
 * tells a misconfigured device something is wrong instead of silently losing its data. A refused
 * SUBSCRIBE is answered with the failure return code 0x80 for that filter (the connection stays).
 * A client id held by another identity (another device) is refused (CONNACK 2), so one device
 * cannot kick another off by reusing its client id. A connected device whose token is rotated or
 * revoked, or that is disabled or deleted in the registry, is disconnected at once.
 *
 * Refusals are logged with the device id and the reason, never the password, at most
 * LOG_LIMIT lines per LOG_WINDOW_MS (the rest counted in a summary line). Errors in the broker
 * or in a handler never crash the runtime: they refuse the operation and are logged.
 */
import * as net from 'node:net';
import * as os from 'node:os';
import { topicMatches } from '../nodes/lib/ack';
import { isValidDeviceId, preview } from '../nodes/lib/names';
import { secretsEqual } from '../nodes/lib/registry/tokens';
import { indexOutgoing, type OutgoingPacket, type OutgoingPersistence, type OutgoingQueue } from './outgoing-queue';
import { InProcessSessions, type Adopted, type InProcessLimits, type InProcessStats } from './in-process';
import { registerInProcessBroker } from '../nodes/lib/in-process';
import { PublishLog, readInProcessSessions, readSessions, writeSessions, type LogEntry, type PublishLogOptions, type PublishLogStats, type SessionSubs } from './publish-log';
import type { DeviceInput, DeviceRecord, DeviceRegistry } from '../nodes/lib/registry/types';

export interface EmbeddedBroker {
  /** The port it listens on (useful when asked for port 0). */
  port: number;
  host: string;
  /** Number of connected clients. */
  clients(): number;
  /** The publish log's figures (undefined without one). */
  publishLog(): PublishLogStats | undefined;
  /** The in-process sessions' figures (undefined when in-process delivery is off). */
  inProcess(): InProcessStats | undefined;
  close(): Promise<void>;
}

/** The service account's user name: not a valid device id, so no device can register it. */
export const SERVICE_USER = '$thingwire';
export const PROVISION_PREFIX = 'provision:';
export const LOG_LIMIT = 20;
export const LOG_WINDOW_MS = 60_000;

/** CONNACK return codes (MQTT 3.1.1): 2 identifier rejected, 4 bad user name or password, 5 not authorised. */
export type RefuseCode = 2 | 4 | 5;

export type Principal = { kind: 'device'; id: string } | { kind: 'service' } | { kind: 'anonymous'; local: boolean; demo: boolean };

export type ConnectDecision = { ok: true; principal: Principal; provisioned?: boolean } | { ok: false; code: RefuseCode; who: string; reason: string };

/** What BrokerAuth needs of the registry. */
export type AuthRegistry = Pick<DeviceRegistry, 'authenticate' | 'getDevice' | 'provision' | 'onChange'>;

export interface BrokerAuthOptions {
  /** The device registry; without one, only the service account and anonymous clients get in. */
  registry?: AuthRegistry;
  /** Enables `provision:<key>` passwords. */
  provisioningKey?: string;
  /** THINGWIRE_MQTT_ANONYMOUS=1: anonymous clients may publish and subscribe to anything. */
  allowAnonymous: boolean;
  /** The flows' service account (full access). */
  service?: { username: string; password: string };
  /** True when a remote address belongs to this machine (default: isLocalAddress). */
  isLocal?: (address: string | undefined) => boolean;
}

export interface ConnectRequest {
  username?: string;
  password?: Buffer | string;
  remoteAddress?: string;
  /** Topic of the client's last will, if it has one. */
  willTopic?: string;
}

/** Who may connect, publish and subscribe: pure, no sockets. */
export class BrokerAuth {
  private readonly isLocal: (address: string | undefined) => boolean;

  constructor(private readonly opts: BrokerAuthOptions) {
    this.isLocal = opts.isLocal ?? isLocalAddress;
  }

  connect(req: ConnectRequest): ConnectDecision {
    const user = req.username;
    const password = req.password === undefined ? undefined : Buffer.isBuffer(req.password) ? req.password.toString('utf8') : String(req.password);
    if (user === undefined || user === '') {
      if (password !== undefined && password !== '') return refuse(4, 'anonymous', 'a password without a user name');
      if (this.opts.allowAnonymous) return { ok: true, principal: { kind: 'anonymous', local: this.isLocal(req.remoteAddress), demo: true } };
      if (!this.isLocal(req.remoteAddress)) {
        return refuse(5, 'anonymous', `anonymous clients are only let in from this machine (read-only); devices connect with their id and token`);
      }
      if (req.willTopic !== undefined) return refuse(5, 'anonymous', 'a read-only anonymous client cannot have a last will');
      return { ok: true, principal: { kind: 'anonymous', local: true, demo: false } };
    }
    const svc = this.opts.service;
    if (svc && user === svc.username) {
      if (password !== undefined && secretsEqual(password, svc.password)) return { ok: true, principal: { kind: 'service' } };
      return refuse(4, user, 'wrong password for the service account');
    }
    if (!isValidDeviceId(user)) return refuse(4, preview(user), 'the user name is not a device id');
    if (password === undefined || password === '') return refuse(4, user, 'no password (the device token) was given');
    const registry = this.opts.registry;
    if (!registry) return refuse(5, user, 'no device registry is open');
    if (req.willTopic !== undefined && !ownTopic(user, req.willTopic, false)) {
      return refuse(5, user, `its last will topic ${preview(req.willTopic)} is not under devices/${user}/`);
    }
    if (password.startsWith(PROVISION_PREFIX)) return this.provision(user, password.slice(PROVISION_PREFIX.length), registry);
    const r = registry.authenticate(user, password);
    if (r.ok) return { ok: true, principal: { kind: 'device', id: user } };
    return refuse(r.code === 'device_disabled' ? 5 : 4, user, r.code === 'unknown_device' ? 'unknown device' : r.code === 'device_disabled' ? 'device disabled' : 'wrong token');
  }

  private provision(id: string, key: string, registry: AuthRegistry): ConnectDecision {
    const configured = this.opts.provisioningKey;
    if (configured === undefined || configured === '') return refuse(4, id, 'provisioning is off (no THINGWIRE_PROVISIONING_KEY)');
    if (key === '' || !secretsEqual(key, configured)) return refuse(4, id, 'wrong provisioning key');
    const existing: DeviceRecord | undefined = registry.getDevice(id);
    if (existing === undefined) {
      const input: DeviceInput = { id, metadata: { provisionedVia: 'mqtt' } };
      try {
        registry.provision(key, input);
      } catch (e) {
        return refuse(5, id, `provisioning failed: ${(e as Error).message}`);
      }
      return { ok: true, principal: { kind: 'device', id }, provisioned: true };
    }
    if (!existing.enabled) return refuse(5, id, 'device disabled');
    if (existing.metadata.provisionedVia === 'mqtt' && existing.hasToken && existing.tokenRotatedAt === existing.createdAt) {
      return { ok: true, principal: { kind: 'device', id } };
    }
    return refuse(4, id, 'the device has a token of its own (registered or rotated by an operator); connect with the token');
  }

  canPublish(p: Principal, topic: string): boolean {
    switch (p.kind) {
      case 'service':
        return true;
      case 'anonymous':
        return p.demo || (p.local && alertTopic(topic));
      case 'device':
        return ownTopic(p.id, topic, false);
    }
  }

  canSubscribe(p: Principal, filter: string): boolean {
    switch (p.kind) {
      case 'service':
      case 'anonymous':
        return true;
      case 'device':
        return ownTopic(p.id, filter, true);
    }
  }
}

function refuse(code: RefuseCode, who: string, reason: string): ConnectDecision {
  return { ok: false, code, who, reason };
}

/** A concrete topic under alerts/ (where the flows publish alert events). */
export function alertTopic(topic: string): boolean {
  return typeof topic === 'string' && topic.startsWith('alerts/') && topic.length > 'alerts/'.length && !/[+#]/.test(topic);
}

/** True when `topic` (a filter when `filter`) lies under devices/{id}/ and names something there. */
export function ownTopic(id: string, topic: string, filter: boolean): boolean {
  const prefix = `devices/${id}/`;
  if (typeof topic !== 'string' || !topic.startsWith(prefix) || topic.length === prefix.length) return false;
  return filter || !/[+#]/.test(topic);
}

export function principalName(p: Principal): string {
  return p.kind === 'device' ? `device ${p.id}` : p.kind === 'service' ? 'the service account' : 'an anonymous client';
}

let localCache: { at: number; addrs: Set<string> } | undefined;

/** True for a loopback address or one of this host's interface addresses (IPv4-mapped IPv6 included). */
export function isLocalAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a)) return true;
  const now = Date.now();
  if (!localCache || now - localCache.at > 60_000) {
    const addrs = new Set<string>();
    for (const list of Object.values(os.networkInterfaces())) for (const i of list ?? []) addrs.add(i.address);
    localCache = { at: now, addrs };
  }
  return localCache.addrs.has(a);
}

/** At most `limit` lines per window; the rest are counted and reported in one line when the next window opens. */
export class LogLimiter {
  private windowStart = -Infinity;
  private lines = 0;
  private suppressed = 0;

  constructor(
    private readonly log: (m: string) => void,
    private readonly limit = LOG_LIMIT,
    private readonly windowMs = LOG_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  note(line: string): void {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.flush();
      this.windowStart = t;
      this.lines = 0;
    }
    if (this.lines < this.limit) {
      this.lines++;
      this.log(line);
    } else {
      this.suppressed++;
    }
  }

  /** Reports what was suppressed (at the next window, or on close). */
  flush(): void {
    if (this.suppressed > 0) this.log(`mqtt: ${this.suppressed} more refusals were not logged (at most ${this.limit} lines per ${this.windowMs / 1000} s)`);
    this.suppressed = 0;
  }
}

interface AedesClient {
  id: string;
  clean?: boolean;
  conn?: { remoteAddress?: string };
  _will?: { topic?: string };
  close?(cb?: () => void): void;
}

interface AedesPacket {
  topic: string;
  payload?: unknown;
  qos?: number;
}

interface AedesSub {
  clientId?: string;
  qos?: number;
}

interface AedesPersistence {
  subscriptionsByTopic(topic: string): Promise<unknown[]>;
  addSubscriptions(client: { id: string }, subs: { topic: string; qos: number }[]): Promise<void>;
  removeSubscriptions(client: { id: string }, topics: string[]): Promise<void>;
  outgoingEnqueue(sub: AedesSub, packet: AedesPacket): Promise<void>;
  outgoingEnqueueCombi(subs: AedesSub[], packet: AedesPacket): Promise<void>;
  outgoingClearMessageId(client: AedesClient, packet: AedesPacket): Promise<AedesPacket | undefined>;
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<AedesPacket>;
}

interface AedesLike {
  handle: (socket: net.Socket) => void;
  persistence: AedesPersistence;
  published: (packet: AedesPacket, client: AedesClient | null, cb: (err?: Error | null) => void) => void;
  publish(packet: object, client: AedesClient | null, done: (err?: Error | null) => void): void;
  subscribe(topic: string, fn: (packet: AedesPacket, cb: () => void) => void, done: () => void): void;
  unsubscribe(topic: string, fn: (packet: AedesPacket, cb: () => void) => void, done: () => void): void;
  connectedClients: number;
  clients: Record<string, AedesClient | undefined>;
  authenticate: (client: AedesClient, username: string | undefined, password: Buffer | undefined, cb: (err: Error | null, ok?: boolean) => void) => void;
  authorizePublish: (client: AedesClient | null, packet: AedesPacket, cb: (err: Error | null) => void) => void;
  authorizeSubscribe: (client: AedesClient, sub: { topic: string; qos: number }, cb: (err: Error | null, sub?: unknown) => void) => void;
  close(cb: () => void): void;
  on(event: string, fn: (...args: unknown[]) => void): void;
}

/**
 * Hold a connection's writes until the end of the event-loop turn, so the packets written to it in one turn go out in
 * one system call. aedes writes every packet as it is made (mqtt-packet corks the socket and uncorks it on the next
 * tick, which joins only the pieces of one packet), and its publish path is asynchronous, so each PUBLISH to the
 * flows' subscriber was a write of its own. At 4,000 single readings/s over 4 connections, 30 s: to the subscriber
 * 119,083 writes in 1.16 s before, 8,221 in 0.47 s after; PUBACKs to the publishers 0.8-1.4 s either way (how many a
 * write depends on how many packets each read brought). The first write of a turn corks the socket once more and a
 * `setImmediate` uncorks it: a packet waits at most for the rest of the turn (no change in publish -> dashboard
 * latency was measurable). Backpressure is unchanged (a corked socket's write() still returns false past its
 * high-water mark, and 'drain' comes once the joined write is done).
 */
export function writeOncePerTurn(socket: net.Socket): void {
  let held = false;
  const release = (): void => {
    held = false;
    socket.uncork(); // balanced with the cork below even when the socket was destroyed meanwhile
  };
  const write = socket.write;
  socket.write = function (this: net.Socket, ...args: unknown[]): boolean {
    if (!held) {
      held = true;
      socket.cork();
      setImmediate(release);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as net.Socket['write'];
}

/** An error aedes reports back through 'clientError' that we made (and logged) ourselves. */
const OURS = Symbol('thingwire-auth');

function ourError(message: string, returnCode?: number): Error {
  const e = new Error(message) as Error & { returnCode?: number; [OURS]?: true };
  if (returnCode !== undefined) e.returnCode = returnCode;
  e[OURS] = true;
  return e;
}

/** At most this many clean sessions' filters are remembered during the start-up hold. */
const MAX_HOLD_FILTERS = 10_000;
/** Replayed messages published per event-loop turn. */
const REPLAY_CHUNK = 500;

/** QoS 1 deliveries among `subs` for a message of `qos` (deliveries at QoS 2 are not tracked, see publish-log.ts). */
function qos1Deliveries(subs: readonly AedesSub[], qos: number | undefined): number {
  let n = 0;
  for (const s of subs) if (Math.min(s.qos ?? 0, qos ?? 0) === 1) n++;
  return n;
}

interface LoggedBroker {
  logPublish: (packet: AedesPacket, cb: (err: Error | null) => void) => void;
  restore: () => Promise<void>;
  /** For in-process sessions: one more delivery of the message to wait for (its log entry), and its release. */
  hold: (packet: AedesPacket) => LogEntry | undefined;
  release: (handle: unknown) => void;
  saveSessions: () => void;
  adopt: (clientId: string) => Adopted[];
  stop: () => void;
}

/**
 * Wires the publish log into aedes: each QoS 1/2 publish a client makes is logged before the broker acknowledges
 * it (authorizePublish calls back once the line is written: `logPublish`), and released as aedes' persistence
 * sees its QoS 1 deliveries queued on persistent sessions and acknowledged; the broker's `published` hook ends its
 * transit. A log entry is found again from the message's payload Buffer, which aedes passes along by reference
 * (into every copy it queues). Returns the function authorizePublish calls for an allowed publish, and the
 * replay: once the flows (not a device) subscribe with a persistent session, what an earlier run left in the log
 * is published again.
 */
function attachPublishLog(
  broker: AedesLike,
  plog: PublishLog,
  isFlows: (client: AedesClient) => boolean,
  log: (m: string) => void,
  limiter: LogLimiter,
  sessionExpiryMs: number,
  queues: Map<string, OutgoingQueue>,
  inproc: () => InProcessSessions | undefined,
): LoggedBroker {
  const dir = plog.dir;
  // A message's log entry rides on its payload Buffer as a property under this broker's own symbol (not enumerable:
  // a clone or a copy of the payload does not carry it). A WeakMap did the same at ~0.5 us more a message (set and
  // get on fresh Buffers, its weak table walked by every GC; a micro-benchmark); the knee, alternately: +2.5 % on
  // average, inside the spread between runs.
  const ENTRY = Symbol('thingwire.publishLogEntry');
  const entries = new WeakMap<object, LogEntry>(); // payloads that take no property (non-extensible), should one come
  const setEntry = (payload: object, e: LogEntry): void => {
    if (Object.isExtensible(payload)) Object.defineProperty(payload, ENTRY, { value: e, writable: true, configurable: true });
    else entries.set(payload, e);
  };
  const entryOf = (packet: AedesPacket | undefined): LogEntry | undefined => {
    const pl = packet?.payload as unknown as { [ENTRY]?: LogEntry } | undefined | null;
    if (typeof pl !== 'object' || pl === null) return undefined;
    return Object.isExtensible(pl) ? pl[ENTRY] : entries.get(pl);
  };

  const p = broker.persistence;
  const enqueue = p.outgoingEnqueue.bind(p);
  const enqueueCombi = p.outgoingEnqueueCombi.bind(p);
  const clear = p.outgoingClearMessageId.bind(p);
  p.outgoingEnqueue = (sub, packet) => {
    const e = entryOf(packet);
    if (e) plog.enqueued(e, qos1Deliveries([sub], packet.qos));
    return enqueue(sub, packet);
  };
  p.outgoingEnqueueCombi = (subs, packet) => {
    const e = entryOf(packet);
    if (e) plog.enqueued(e, qos1Deliveries(subs, packet.qos));
    return enqueueCombi(subs, packet);
  };
  p.outgoingClearMessageId = async (client, packet) => {
    const stored = await clear(client, packet);
    const e = entryOf(stored);
    if (e) plog.delivered(e);
    return stored;
  };
  const published = broker.published;
  broker.published = (packet, client, cb) => {
    const e = entryOf(packet);
    if (e) plog.published(e);
    published.call(broker, packet, client, cb);
  };

  const logPublish = (packet: AedesPacket, cb: (err: Error | null) => void): void => {
    const { payload, qos } = packet;
    if ((qos !== 1 && qos !== 2) || !Buffer.isBuffer(payload)) return cb(null);
    try {
      setEntry(payload, plog.append({ topic: packet.topic, payload, qos }, cb));
    } catch (e) {
      cb(e as Error);
    }
  };

  // This run's persistent sessions of the flows, kept for the next start (see readSessions).
  const sessions: SessionSubs = new Map();
  const saveSessions = (): void => {
    try {
      writeSessions(dir, sessions, inproc()?.list());
    } catch (e) {
      limiter.note(`mqtt: cannot save the flows' sessions in ${dir}: ${(e as Error).message}`);
    }
  };
  broker.on('subscribe', (subs: unknown, client: unknown) => {
    const c = client as AedesClient;
    if (c.clean !== false || !isFlows(c) || !Array.isArray(subs)) return;
    let m = sessions.get(c.id);
    if (m === undefined) sessions.set(c.id, (m = new Map()));
    let changed = false;
    for (const sub of subs as AedesSub[] & { topic?: unknown }[]) {
      const topic = (sub as { topic?: unknown }).topic;
      if (typeof topic !== 'string' || (sub.qos !== 1 && sub.qos !== 2) || m.get(topic) === sub.qos) continue;
      m.set(topic, sub.qos);
      changed = true;
    }
    if (changed) saveSessions();
  });
  broker.on('unsubscribe', (topics: unknown, client: unknown) => {
    const m = sessions.get((client as AedesClient).id);
    if (m === undefined || !Array.isArray(topics)) return;
    let changed = false;
    for (const t of topics) changed = m.delete(String(t)) || changed;
    if (changed) saveSessions();
  });

  let stopped = false;
  // A recreated session whose client does not come back (its node was removed, its client id changed) would
  // collect every message for the rest of the run: after sessionExpiryMs its subscriptions go (what it already
  // has stays queued for it; the log keeps those until the next start, which publishes them to the sessions then).
  /** Recreated sessions whose client has not connected yet (only those: every device's id would grow it). */
  const awaited = new Set<string>();
  const expiries: NodeJS.Timeout[] = [];
  broker.on('client', (client: unknown) => {
    const c = client as AedesClient;
    awaited.delete(c.id);
    // A clean session ends the old one (a deleted thingwire-mqtt-in does this): not recreated at the next start.
    if (c.clean === true && sessions.delete(c.id)) saveSessions();
  });
  /**
   * Recreates the flows' persistent sessions of the last run (their subscriptions, offline until they connect) and
   * publishes again what the log held: queued for those sessions, delivered when the flows' input connects.
   */
  async function restore(): Promise<void> {
    const last = readSessions(dir, log);
    const ip = inproc();
    for (const [id, filters] of readInProcessSessions(dir)) {
      if (ip !== undefined) ip.restore(id, filters);
      else if (!last.has(id)) last.set(id, new Map(filters.map((f) => [f, 1]))); // in-process delivery is off this run
    }
    for (const [id, subs] of last) {
      const list = [...subs].map(([topic, qos]) => ({ topic, qos }));
      await p.addSubscriptions({ id }, list);
      awaited.add(id);
      const t = setTimeout(() => {
        if (!awaited.delete(id) || stopped) return;
        p.removeSubscriptions({ id }, list.map((x) => x.topic)).then(
          () => log(`mqtt: the flows' session ${preview(id)} from the last run did not come back within ${Math.round(sessionExpiryMs / 1000)} s: its subscriptions were removed (a node's client id changed or the node is gone?)`),
          (e: Error) => limiter.note(`mqtt: could not remove the subscriptions of the session ${preview(id)}: ${e.message}`),
        );
      }, sessionExpiryMs);
      t.unref();
      expiries.push(t);
    }
    const packets = plog.recovered();
    if (packets.length === 0) return;
    const bad = plog.stats().badLines;
    const n = last.size + (ip?.list().size ?? 0);
    log(`mqtt: publishing again the ${packets.length} messages the publish log held from the last run${bad > 0 ? ` (${bad} unreadable lines skipped: a write cut by the crash)` : ''}, queued for the flows' ${n} persistent session(s)`);
    let i = 0;
    let outstanding = packets.length;
    let failed = 0;
    const oneDone = (err: Error | null): void => {
      if (err) failed++;
      if (--outstanding > 0) return;
      if (failed > 0) {
        limiter.note(`mqtt: ${failed} of ${packets.length} messages from the publish log could not be logged again; the old log is kept for the next start`);
        return;
      }
      plog.dropRecovered();
    };
    const step = (): void => {
      if (stopped) return;
      const end = Math.min(packets.length, i + REPLAY_CHUNK);
      for (; i < end; i++) {
        const pk = packets[i];
        try {
          setEntry(pk.payload, plog.append(pk, oneDone));
        } catch (e) {
          oneDone(e as Error);
          continue;
        }
        broker.publish({ cmd: 'publish', topic: pk.topic, payload: pk.payload, qos: pk.qos, retain: false, dup: false }, null, (err) => {
          if (err) limiter.note(`mqtt: could not publish again a logged message to ${preview(pk.topic)}: ${err.message}`);
        });
      }
      if (i < packets.length) setImmediate(step);
    };
    step();
  }
  return {
    logPublish,
    restore,
    hold: (packet) => {
      const e = entryOf(packet);
      if (e) plog.enqueued(e, 1);
      return e;
    },
    release: (handle) => {
      if (handle !== undefined) plog.delivered(handle as LogEntry);
    },
    saveSessions,
    // A persistent MQTT session of the last run recreated for a client id that now attaches in process (the first
    // start after an upgrade): what it queued is handed over (the log already counts those deliveries) and it goes.
    adopt: (id) => {
      if (!awaited.delete(id)) return [];
      const list = [...(sessions.get(id)?.keys() ?? [])];
      const packets = queues.get(id)?.toArray() ?? [];
      queues.delete(id);
      sessions.delete(id);
      if (list.length > 0) {
        p.removeSubscriptions({ id }, list).catch((e: Error) => limiter.note(`mqtt: could not remove the subscriptions of the session ${preview(id)}: ${e.message}`));
      }
      if (packets.length > 0) log(`mqtt: the flows' session ${preview(id)} now takes messages in process: its ${packets.length} queued messages were handed over`);
      return packets.map((pk) => ({ packet: pk as unknown as AedesPacket, handle: entryOf(pk as unknown as AedesPacket) }));
    },
    stop: () => {
      stopped = true;
      for (const t of expiries) clearTimeout(t);
      plog.close();
    },
  };
}

export interface EmbeddedBrokerOptions {
  /**
   * Directory of the publish log (see publish-log.ts): QoS 1/2 publishes survive a crash of the process. Absent:
   * no log (sessions in memory only).
   */
  publishLogDir?: string;
  /** Settings of the publish log (tests). */
  publishLog?: Omit<PublishLogOptions, 'dir' | 'log'>;
  /** A flows' session recreated at start loses its subscriptions if its client has not connected by then (default 10 min). */
  sessionExpiryMs?: number;
  /**
   * At most this long after the start (ms; 0 or absent: off), a QoS 1/2 publish that no subscription matches yet is
   * refused (the publisher is disconnected and keeps the message, to send it again), so that what devices publish
   * while the flows start is not acknowledged and dropped. The hold ends at the first publish a subscription
   * matches, or after this time (logged).
   */
  holdUntilSubscribedMs?: number;
  /**
   * Offer in-process delivery to thingwire-mqtt-in nodes in this process (see in-process.ts): registered once the
   * broker listens; a node whose host is a loopback address (or the broker's host) and whose port is this one
   * attaches directly instead of connecting. Limits for tests. Off unless given.
   */
  inProcess?: boolean | Partial<InProcessLimits>;
}

export const SESSION_EXPIRY_MS = 600_000;

export async function startEmbeddedBroker(
  port: number,
  host: string,
  log: (m: string) => void,
  authOpts: BrokerAuthOptions,
  brokerOpts: EmbeddedBrokerOptions = {},
): Promise<EmbeddedBroker> {
  // aedes 1.x is an ES module; require() of it works on Node 20.19+.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Aedes } = require('aedes') as { Aedes: { createBroker(opts?: object): Promise<AedesLike> } };
  const broker = await Aedes.createBroker();
  // O(1) outgoing queues instead of the memory persistence's scanned arrays (see outgoing-queue.ts); before any
  // client connects and before the publish log wraps the same methods.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Packet = require('aedes-packet') as new (p: object) => OutgoingPacket;
  const queues = indexOutgoing(broker.persistence as unknown as OutgoingPersistence, (p) => new Packet(p));
  const auth = new BrokerAuth(authOpts);
  const limiter = new LogLimiter(log);
  const principals = new WeakMap<AedesClient, Principal>();
  const same = (a: Principal | undefined, b: Principal): boolean =>
    a !== undefined && a.kind === b.kind && (a.kind !== 'device' || (b.kind === 'device' && a.id === b.id));

  broker.authenticate = (client, username, password, cb) => {
    const remote = client.conn?.remoteAddress;
    try {
      const d = auth.connect({ username, password, remoteAddress: remote, willTopic: client._will?.topic });
      if (!d.ok) {
        limiter.note(`mqtt: refused ${d.who === 'anonymous' ? 'an anonymous client' : `device ${d.who}`} from ${remote ?? '?'}: ${d.reason}`);
        cb(ourError(d.reason, d.code), false);
        return;
      }
      // A client id in use by another identity: refuse rather than let one device kick another off.
      const holder = broker.clients[client.id];
      if (holder !== undefined && holder !== client && !same(principals.get(holder), d.principal)) {
        limiter.note(`mqtt: refused ${principalName(d.principal)} from ${remote ?? '?'}: client id ${preview(client.id)} is in use by another identity`);
        cb(ourError('client id in use by another identity', 2), false);
        return;
      }
      principals.set(client, d.principal);
      if (d.provisioned && d.principal.kind === 'device') log(`mqtt: provisioned device ${d.principal.id} (provisioning key, from ${remote ?? '?'})`);
      cb(null, true);
    } catch (e) {
      limiter.note(`mqtt: refused a client from ${remote ?? '?'}: internal error ${(e as Error).message}`);
      cb(ourError('internal error', 3), false);
    }
  };

  const plog = brokerOpts.publishLogDir === undefined ? undefined : new PublishLog({ ...brokerOpts.publishLog, dir: brokerOpts.publishLogDir, log });
  const isFlows = (c: AedesClient): boolean => {
    const k = principals.get(c)?.kind;
    return k === 'service' || k === 'anonymous';
  };
  const sessionExpiryMs = brokerOpts.sessionExpiryMs ?? SESSION_EXPIRY_MS;
  let inproc: InProcessSessions | undefined;
  const logged = plog ? attachPublishLog(broker, plog, isFlows, log, limiter, sessionExpiryMs, queues, () => inproc) : undefined;
  if (brokerOpts.inProcess) {
    const limits = typeof brokerOpts.inProcess === 'object' ? brokerOpts.inProcess : {};
    inproc = new InProcessSessions(
      0, // set once it listens
      {
        subscribe: (t, fn, done) => broker.subscribe(t, fn, done),
        unsubscribe: (t, fn, done) => broker.unsubscribe(t, fn, done),
        retained: (filters) => broker.persistence.createRetainedStreamCombi(filters),
      },
      {
        hold: (packet) => logged?.hold(packet as AedesPacket),
        release: (handle) => logged?.release(handle),
        changed: () => logged?.saveSessions(),
        log,
      },
      { restoredMs: sessionExpiryMs, ...limits },
      (id) => logged?.adopt(id) ?? [],
    );
  }
  const allowed = (packet: AedesPacket, cb: (err: Error | null) => void): void => {
    if (logged === undefined) return cb(null);
    // The PUBACK (or PUBREC) waits for the line: what the publisher is told is kept is on disk.
    logged.logPublish(packet, (err) => {
      if (!err) return cb(null);
      limiter.note(`mqtt: refused a publish to ${preview(packet.topic)}: ${err.message}; the publisher keeps it and sends it again`);
      cb(ourError(`the broker cannot log the message: ${err.message}`));
    });
  };

  // The start-up hold (see EmbeddedBrokerOptions.holdUntilSubscribedMs). On the first start there is no session of the
  // flows' input yet (later starts recreate it from the publish log before listening), and the flows subscribe a few
  // seconds after the broker listens: a QoS 1 publish with no subscriber would be acknowledged and dropped.
  const holdMs = brokerOpts.holdUntilSubscribedMs ?? 0;
  let holding = holdMs > 0;
  let heldBack = 0;
  /** Filters subscribed while holding by clean sessions (aedes keeps only persistent ones in its persistence). */
  const liveFilters: string[] = [];
  const endHold = (why: string): void => {
    if (!holding) return;
    holding = false;
    clearTimeout(holdTimer);
    liveFilters.length = 0;
    if (heldBack > 0) log(`mqtt: ${heldBack} publishes were refused while the flows started (their publishers send them again); ${why}`);
  };
  const holdTimer = holding ? setTimeout(() => endHold(`nothing subscribed to what devices publish within ${Math.round(holdMs / 1000)} s: publishes are accepted now`), holdMs) : undefined;
  holdTimer?.unref();
  broker.on('subscribe', (subs: unknown) => {
    if (!holding || !Array.isArray(subs)) return;
    for (const x of subs as Array<{ topic?: unknown }>) if (typeof x?.topic === 'string' && liveFilters.length < MAX_HOLD_FILTERS) liveFilters.push(x.topic);
  });
  const held = (packet: AedesPacket, cb: (err: Error | null) => void): void => {
    const accept = (): void => {
      endHold('the flows subscribe now');
      allowed(packet, cb);
    };
    if (liveFilters.some((f) => topicMatches(f, packet.topic)) || inproc?.matches(packet.topic)) return accept();
    broker.persistence.subscriptionsByTopic(packet.topic).then(
      (subs) => {
        if (!holding || subs.length > 0) return accept();
        if (heldBack++ === 0) log(`mqtt: holding publishes back until the flows subscribe (at most ${Math.round(holdMs / 1000)} s): no subscriber for ${preview(packet.topic)} yet`);
        cb(ourError('no subscriber yet: the flows are starting; the publisher keeps the message and sends it again'));
      },
      () => accept(),
    );
  };

  broker.authorizePublish = (client, packet, cb) => {
    // client null: aedes publishing a stale will with no client; it was authorised when stored.
    if (client === null) return cb(null);
    const p = principals.get(client);
    try {
      if (p !== undefined && auth.canPublish(p, packet.topic)) return holding && (packet.qos ?? 0) > 0 ? held(packet, cb) : allowed(packet, cb);
    } catch {
      // fall through: refused
    }
    limiter.note(`mqtt: refused a publish to ${preview(packet.topic)} by ${p ? principalName(p) : 'an unauthenticated client'}: not its topic; disconnecting it`);
    cb(ourError(`not allowed to publish to ${packet.topic}`));
  };

  broker.authorizeSubscribe = (client, sub, cb) => {
    const p = principals.get(client);
    let ok: boolean;
    try {
      ok = p !== undefined && auth.canSubscribe(p, sub.topic);
    } catch {
      ok = false;
    }
    if (ok) return cb(null, sub);
    limiter.note(`mqtt: refused a subscription to ${preview(sub.topic)} by ${p ? principalName(p) : 'an unauthenticated client'}`);
    cb(null, null); // SUBACK 0x80 for this filter
  };

  broker.on('clientError', (client: unknown, err: unknown) => {
    if ((err as { [OURS]?: true })?.[OURS]) return;
    limiter.note(`mqtt: client ${preview((client as AedesClient)?.id ?? '?')} error: ${(err as Error)?.message}`);
  });
  broker.on('connectionError', (_client: unknown, err: unknown) => {
    limiter.note(`mqtt: connection error: ${(err as Error)?.message}`);
  });

  // A device whose token was rotated or revoked, or that was disabled or deleted, loses its session at once (its
  // credentials were checked at CONNECT only); it can reconnect with what it has now.
  const unlisten = authOpts.registry?.onChange((c) => {
    if (c.kind !== 'device') return;
    if (c.op === 'update' && authOpts.registry?.getDevice(c.id)?.enabled !== false) return;
    if (c.op === 'create') return;
    for (const client of Object.values(broker.clients)) {
      if (client === undefined) continue;
      const p = principals.get(client);
      if (p?.kind !== 'device' || p.id !== c.id) continue;
      log(`mqtt: disconnected device ${c.id}: ${c.op === 'token' ? 'its token changed' : c.op === 'delete' ? 'it was deleted' : 'it was disabled'}`);
      try {
        client.close?.();
      } catch (e) {
        limiter.note(`mqtt: could not disconnect device ${c.id}: ${(e as Error).message}`);
      }
    }
  });

  // Before the listener: the sessions exist (and the old log's messages are queued) when the first device connects.
  if (logged) await logged.restore();

  const server = net.createServer((socket) => {
    socket.on('error', () => undefined); // aedes reports it; a reset socket must not throw
    writeOncePerTurn(socket);
    try {
      broker.handle(socket);
    } catch (e) {
      limiter.note(`mqtt: could not handle a connection: ${(e as Error).message}`);
      socket.destroy();
    }
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => log(`mqtt: server error: ${e.message}`));
  const actual = (server.address() as net.AddressInfo).port;
  if (inproc) {
    inproc.port = actual;
    inproc.host = host;
    registerInProcessBroker(inproc);
  }
  let closed: Promise<void> | undefined;
  return {
    port: actual,
    host,
    clients: () => broker.connectedClients,
    publishLog: () => plog?.stats(),
    inProcess: () => inproc?.stats(),
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        clearTimeout(holdTimer);
        unlisten?.();
        if (inproc) {
          registerInProcessBroker(undefined);
          inproc.close();
        }
        limiter.flush();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        broker.close(() => undefined);
        // What the flows had not acknowledged stays in the log and is published again at the next start.
        logged?.stop();
      });
      return closed;
    },
  };
}
