/**
 * The embedded broker's side of in-process delivery (the contract is in ../nodes/lib/in-process.ts): sessions named
 * by client id, each subscribed to aedes' message emitter with one listener, queueing what a thingwire-mqtt-in node
 * has not taken yet and remembering what it took and has not confirmed.
 *
 * What the broker's publish path sees: the listener is called while aedes publishes a message (before the
 * publisher's PUBACK, which waits for every listener); it queues the message, hands it over if a node is attached and
 * not paused, and returns at once, so a device's PUBACK does not wait for the store (the publish log holds the
 * message until the node confirms it: hooks.hold / hooks.release). Past a bound of queued messages the listener
 * holds its callback, and with it the publisher's PUBACK and aedes' reading of that connection: backpressure
 * reaches the devices instead of memory growing. The bound is smaller while a node is attached (it only waits for
 * the node's window) than while none is (a redeploy: the queue covers the gap).
 *
 * A session with no node attached keeps queueing for as long as the runtime runs (a redeploy, flows stopped from the
 * editor), up to its bound; then the devices wait. A node that is deleted ends its session (close(true)): what it
 * held is released, as a clean MQTT session drops its queue. A node whose client id changed takes its old session's
 * messages over and ends it (open() is told the node's id). A session recreated at start whose node does not come
 * within `restoredMs` ends, and what it held stays in the publish log (not released) for the next start.
 *
 * No Node-RED import; aedes through the small MqEmitter interface below.
 */
import { topicMatches } from '../nodes/lib/ack';
import type { InProcessBroker, InProcessConsumer, InProcessSession } from '../nodes/lib/in-process';

/** The fields of an aedes packet read here. */
export interface MqPacket {
  topic: string;
  payload?: unknown;
  qos?: number;
}

/** What the sessions need of aedes. */
export interface MqHost {
  subscribe(topic: string, fn: (packet: MqPacket, cb: () => void) => void, done: () => void): void;
  unsubscribe(topic: string, fn: (packet: MqPacket, cb: () => void) => void, done: () => void): void;
  /** Retained messages matching the filters (aedes persistence's createRetainedStreamCombi). */
  retained(filters: string[]): AsyncIterable<MqPacket>;
}

export interface InProcessHooks {
  /** A QoS 1 message is queued for a session: the publish log's handle for it (undefined when not logged). */
  hold(packet: MqPacket): unknown;
  /** The session is done with it (acknowledged, or the session ended). */
  release(handle: unknown): void;
  /** A session was created or ended (the broker saves the list for the next start). */
  changed(): void;
  log(m: string): void;
}

export interface InProcessLimits {
  /** Queued (not yet delivered) messages past which publishers wait, with a node attached (default 10,000). */
  attachedQueue: number;
  /** ... with no node attached (default 200,000). */
  detachedQueue: number;
  /** ... or queued payload bytes (default 256 MB, either way). */
  queueBytes: number;
  /** A session recreated at start expires after this long without a node (default 10 min). */
  restoredMs: number;
  /** Messages are handed over this long after the first of a group arrived (default 2 ms; 0: at the turn's end). */
  deliveryMs: number;
}

export const IN_PROCESS_LIMITS: InProcessLimits = {
  attachedQueue: 10_000,
  detachedQueue: 200_000,
  queueBytes: 256 * 1024 * 1024,
  restoredMs: 600_000,
  deliveryMs: 2,
};

interface Item {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
  handle: unknown;
  bytes: number;
}

/** A packet adopted from elsewhere (an aedes session taken over), with its log handle already held. */
export interface Adopted {
  packet: MqPacket;
  handle: unknown;
}

const toBuffer = (p: unknown): Buffer => (Buffer.isBuffer(p) ? p : Buffer.from(typeof p === 'string' ? p : String(p ?? '')));

class Session implements InProcessSession {
  private queue: Item[] = [];
  private head = 0;
  private queuedBytes = 0;
  private readonly inflight = new Map<number, Item>();
  private nextId = 0;
  private consumer: InProcessConsumer | undefined;
  private paused = false;
  private held: Array<() => void> = [];
  private lastPacket: MqPacket | undefined;
  private pumpQueued = false;
  /** Set once the filters changed (see arrive). */
  refilter = false;
  private expiry: NodeJS.Timeout | undefined;
  private ended = false;
  readonly listener = (packet: MqPacket, cb: () => void): void => this.arrive(packet, cb);

  /** The id of the node that last attached (a node whose client id changes takes its old session over). */
  node: string | undefined;

  constructor(
    readonly id: string,
    public filters: readonly string[],
    private readonly owner: InProcessSessions,
  ) {}

  /** Attaches a node, paused (see InProcessBroker.open). */
  attach(consumer: InProcessConsumer): void {
    this.clearExpiry();
    this.consumer = consumer;
    this.paused = true;
  }

  private arrive(packet: MqPacket, cb: () => void): void {
    // aedes calls a listener once per matching filter: one message, one delivery (as to an MQTT client).
    if (packet === this.lastPacket || this.ended) return cb();
    this.lastPacket = packet;
    // [MQTT-4.7.2-1] a filter starting with a wildcard does not match $-topics. And mqemitter removes a listener on
    // the next turn: after the filters changed, a message may still come through one the session dropped.
    if ((this.refilter || packet.topic.charCodeAt(0) === 36) && !this.filters.some((f) => topicMatches(f, packet.topic))) return cb();
    this.push(packet, (packet.qos ?? 0) > 0 ? this.owner.hooks.hold(packet) : undefined, false);
    this.pumpSoon();
    if (this.room()) cb();
    else this.held.push(cb);
  }

  push(packet: MqPacket, handle: unknown, retain: boolean): void {
    const payload = toBuffer(packet.payload);
    this.queue.push({ topic: packet.topic, payload, qos: (packet.qos ?? 0) > 0 ? 1 : 0, retain, handle, bytes: payload.length });
    this.queuedBytes += payload.length;
  }

  private room(): boolean {
    const limit = this.consumer === undefined ? this.owner.limits.detachedQueue : this.owner.limits.attachedQueue;
    return this.queue.length - this.head < limit && this.queuedBytes < this.owner.limits.queueBytes;
  }

  /**
   * Hands over what arrived within `deliveryMs` of the first, all at once. Messages arrive one publish at a time
   * (at 1,000 readings/s over 4 connections, ~1.4 a read of a device connection), and the flows after the input join
   * what arrives together (the starter's "readings per 1 ms" batch). Over TCP the input's messages came ~5-13 to a
   * turn (the leg through the socket delays them); delivered one by one in process they went on as ~1.7 readings a
   * batch instead of ~10, and the flows' cost per reading rose more than the socket's cost fell (runtime CPU at
   * 2,000 readings/s: TCP 55-58 %, one by one 54-56 %, every 2 ms 50-51 %, every 5 ms 49 %).
   */
  private pumpSoon(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    const ms = this.owner.limits.deliveryMs;
    if (ms > 0) setTimeout(this.pumpNow, ms);
    else setImmediate(this.pumpNow);
  }

  private readonly pumpNow = (): void => {
    this.pumpQueued = false;
    this.pump();
  };

  pump(): void {
    while (this.consumer !== undefined && !this.paused && this.head < this.queue.length) {
      const it = this.queue[this.head];
      this.queue[this.head++] = undefined as unknown as Item;
      this.queuedBytes -= it.bytes;
      const id = ++this.nextId;
      if (it.qos === 1) this.inflight.set(id, it);
      this.consumer.deliver({ id, topic: it.topic, payload: it.payload, qos: it.qos, retain: it.retain });
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    while (this.held.length > 0 && this.room()) (this.held.shift() as () => void)();
  }

  ack(id: number): void {
    const it = this.inflight.get(id);
    if (it === undefined) return;
    this.inflight.delete(id);
    this.owner.hooks.release(it.handle);
  }

  redeliver(): void {
    this.requeue();
    this.pump();
  }

  /** Everything it holds, unacknowledged first, leaving it empty (a node whose client id changed takes it over). */
  drain(): Item[] {
    this.requeue();
    const items = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    return items;
  }

  /** Takes over items drained from another session. */
  take(items: readonly Item[]): void {
    for (const it of items) {
      this.queue.push(it);
      this.queuedBytes += it.bytes;
    }
  }

  /** What was delivered and not acknowledged goes back to the front of the queue, in order. */
  private requeue(): void {
    if (this.inflight.size === 0) return;
    const back = [...this.inflight.values()];
    this.inflight.clear();
    for (const it of back) this.queuedBytes += it.bytes;
    this.queue = back.concat(this.queue.slice(this.head));
    this.head = 0;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.pump();
  }

  stats(): { queued: number; unacknowledged: number } {
    return { queued: this.queue.length - this.head, unacknowledged: this.inflight.size };
  }

  close(end: boolean): void {
    if (this.ended) return;
    this.consumer = undefined;
    this.paused = false;
    this.requeue();
    if (end) {
      this.end(true);
      return;
    }
    this.pump(); // the detached bound is larger: publishers held for the attached one go on
  }

  expireAfter(ms: number, why: string): void {
    this.clearExpiry();
    this.expiry = setTimeout(() => {
      this.expiry = undefined;
      if (this.consumer !== undefined || this.ended) return;
      const n = this.queue.length - this.head;
      this.owner.hooks.log(
        `mqtt: the in-process session ${JSON.stringify(this.id)} had no node for ${Math.round(ms / 1000)} s (${why}): ended; its ${n} queued messages stay in the publish log for the next start`,
      );
      this.end(false);
    }, ms);
    this.expiry.unref();
  }

  private clearExpiry(): void {
    if (this.expiry !== undefined) clearTimeout(this.expiry);
    this.expiry = undefined;
  }

  /** Unsubscribes and forgets; release = its messages are released (else the log keeps them for the next start). */
  end(release: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.clearExpiry();
    this.consumer = undefined;
    for (let i = this.head; i < this.queue.length; i++) if (release) this.owner.hooks.release(this.queue[i].handle);
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    for (const cb of this.held.splice(0)) cb();
    this.owner.remove(this);
  }

  get attached(): boolean {
    return this.consumer !== undefined;
  }
}

export interface InProcessStats {
  /** Sessions a thingwire-mqtt-in node is attached to. */
  attached: number;
  /** Sessions without a node (flows stopped, or not started yet after a restart): they keep queueing, bounded. */
  detached: number;
  /** Messages queued, not yet handed to a node. */
  queued: number;
  /** Messages handed to a node and not yet acknowledged by it. */
  unacknowledged: number;
}

/** The broker's in-process sessions (one per client id). */
export class InProcessSessions implements InProcessBroker {
  readonly limits: InProcessLimits;
  private readonly sessions = new Map<string, Session>();
  private closed = false;

  /** Where the broker listens (set by the broker once it does). */
  host = '127.0.0.1';

  constructor(
    public port: number,
    private readonly mq: MqHost,
    readonly hooks: InProcessHooks,
    limits: Partial<InProcessLimits> = {},
    /** Called before a session is created for a client id: hands over what an aedes session of that id queued. */
    private readonly adopt: (clientId: string) => Adopted[] = () => [],
  ) {
    this.limits = { ...IN_PROCESS_LIMITS, ...limits };
  }

  open(clientId: string, filters: readonly string[], consumer: InProcessConsumer, node?: string): InProcessSession | string {
    if (this.closed) return 'the broker is closed';
    if (filters.length === 0) return 'no topic filter';
    let s = this.sessions.get(clientId);
    if (s?.attached) return `client id ${JSON.stringify(clientId)} is in use by another node`;
    // The same node under another client id before (its client id was changed): nobody comes back for that session.
    const before = node === undefined ? [] : [...this.sessions.values()].filter((o) => o.node === node && o.id !== clientId && !o.attached);
    if (s !== undefined && !sameFilters(s.filters, filters)) {
      // Changed topics: as an MQTT client with a persistent session would subscribe anew; the old queue is kept.
      this.resubscribe(s, filters);
    }
    if (s === undefined) {
      s = this.create(clientId, filters);
      for (const a of this.adopt(clientId)) s.push(a.packet, a.handle, false);
      this.sendRetained(s);
    }
    for (const o of before) {
      const items = o.drain();
      s.take(items);
      o.end(false); // empty now: its messages are the new session's
      this.hooks.log(`mqtt: node ${node} now takes messages as ${JSON.stringify(clientId)}: the ${items.length} messages its session ${JSON.stringify(o.id)} held were handed over`);
    }
    s.node = node;
    s.attach(consumer);
    return s;
  }

  /** Recreates a session of the last run (no node yet): it queues from now on, for its node to take. */
  restore(clientId: string, filters: readonly string[]): void {
    if (this.sessions.has(clientId) || filters.length === 0) return;
    this.create(clientId, filters).expireAfter(this.limits.restoredMs, 'recreated at start; its client id changed or the node is gone?');
  }

  /** True when some session subscribes to `topic`. */
  matches(topic: string): boolean {
    for (const s of this.sessions.values()) if (s.filters.some((f) => topicMatches(f, topic))) return true;
    return false;
  }

  /** The sessions and their filters (for the sessions file). */
  list(): Map<string, readonly string[]> {
    return new Map([...this.sessions].map(([id, s]) => [id, s.filters]));
  }

  has(clientId: string): boolean {
    return this.sessions.has(clientId);
  }

  /** Figures for the runtime's metrics: sessions with and without a node, messages waiting and handed over unacknowledged. */
  stats(): InProcessStats {
    const st: InProcessStats = { attached: 0, detached: 0, queued: 0, unacknowledged: 0 };
    for (const s of this.sessions.values()) {
      if (s.attached) st.attached++;
      else st.detached++;
      const q = s.stats();
      st.queued += q.queued;
      st.unacknowledged += q.unacknowledged;
    }
    return st;
  }

  /** The broker stops: sessions end without releasing (the publish log keeps the messages for the next start). */
  close(): void {
    this.closed = true;
    for (const s of [...this.sessions.values()]) s.end(false);
  }

  /** Called by a session that ended. */
  remove(s: Session): void {
    if (this.sessions.get(s.id) !== s) return;
    this.sessions.delete(s.id);
    for (const f of s.filters) this.mq.unsubscribe(f, s.listener, noop);
    if (!this.closed) this.hooks.changed();
  }

  private create(clientId: string, filters: readonly string[]): Session {
    const s = new Session(clientId, [...filters], this);
    this.sessions.set(clientId, s);
    for (const f of s.filters) this.mq.subscribe(f, s.listener, noop);
    this.hooks.changed();
    return s;
  }

  private resubscribe(s: Session, filters: readonly string[]): void {
    for (const f of s.filters) if (!filters.includes(f)) this.mq.unsubscribe(f, s.listener, noop);
    for (const f of filters) if (!s.filters.includes(f)) this.mq.subscribe(f, s.listener, noop);
    s.filters = [...filters];
    s.refilter = true;
    this.hooks.changed();
  }

  private sendRetained(s: Session): void {
    void (async () => {
      try {
        for await (const p of this.mq.retained([...s.filters])) {
          if (!this.sessions.has(s.id)) return;
          s.push(p, undefined, true);
          s.pump();
        }
      } catch (e) {
        this.hooks.log(`mqtt: could not read the retained messages for the in-process session ${JSON.stringify(s.id)}: ${(e as Error).message}`);
      }
    })();
  }
}

function sameFilters(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((f) => b.includes(f));
}

function noop(): void {
  /* mqemitter's subscribe/unsubscribe callback */
}
