/**
 * Indexed outgoing queues for aedes' in-memory persistence (aedes-persistence 11, MemoryPersistence).
 *
 * aedes keeps, per client with a persistent session, the QoS 1/2 messages queued or in flight to it (the "outgoing"
 * queue) in its persistence. The memory persistence keeps it as an array and scans it from the start for every
 * delivery (outgoingUpdate: the messageId aedes gave the packet, found by brokerId + brokerCounter) and for every
 * PUBACK (outgoingClearMessageId: found by messageId, then spliced out). With the flows' input holding up to 5,000
 * messages in flight, that is two scans of up to 5,000 packets per reading: at the single-reading knee
 * (~4,700 readings/s) outgoingClearMessageId alone took 5.6 % of the runtime's CPU samples.
 *
 * indexOutgoing() replaces the instance's five outgoing methods (and so its private queue, which nothing else
 * reads) with a queue per client kept as a linked list in order plus two indexes: (brokerId, brokerCounter) -> entry
 * and messageId -> entries. Each operation is O(1) (O(k) for k packets sharing a messageId, which aedes avoids while
 * fewer than 65,536 are in flight). The semantics are the array's, operation for operation:
 * - enqueue: a copy (aedes-packet's Packet) at the end;
 * - update: the first packet in order that has the packet's brokerId and brokerCounter (its messageId is set) or
 *   another brokerId and the packet's messageId (replaced by the packet: a PUBREL taking a PUBLISH's place); else
 *   an Error('no such packet');
 * - clear: the first packet in order with the messageId is removed and returned (undefined when none);
 * - stream: the queue as it is now, in order.
 * Checked by aedes-persistence's own conformance suite (test/unit/outgoing-queue.test.ts runs its abstract.js, through
 * test/support/outgoing-conformance.ts, against a memory persistence with this applied) and by a randomised
 * comparison with the array's behaviour (the same test file).
 */
import { Readable } from 'node:stream';

/** The fields of a queued packet the queue reads (aedes-packet's Packet has them all). */
export interface OutgoingPacket {
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number;
  [k: string]: unknown;
}

interface Entry {
  packet: OutgoingPacket;
  /** Order in the client's queue (grows with every enqueue): the first of several is the smallest. */
  seq: number;
  prev: Entry | null;
  next: Entry | null;
  /** The messageId it is indexed under: in byMid, or (undefined until aedes gives it one) in the list below. */
  mid: unknown;
  /** The list of packets without a messageId, in queue order. */
  uPrev: Entry | null;
  uNext: Entry | null;
  /** The (brokerId, brokerCounter) key it is indexed under in byKey. */
  key: string;
}

/** One client's queue. */
export class OutgoingQueue {
  private head: Entry | null = null;
  private tail: Entry | null = null;
  private seq = 0;
  private n = 0;
  private readonly byKey: Index<string> = new Map();
  private readonly byMid: Index<unknown> = new Map();
  /**
   * The packets without a messageId yet (queued, not delivered), in queue order: not in byMid under `undefined`,
   * as a key set and deleted for every packet makes V8's Map scan a chain of deleted entries (10 us an operation
   * with 5,000 packets queued, measured).
   */
  private uHead: Entry | null = null;
  private uTail: Entry | null = null;

  get size(): number {
    return this.n;
  }

  push(packet: OutgoingPacket): void {
    const e: Entry = { packet, seq: this.seq++, prev: this.tail, next: null, mid: undefined, uPrev: null, uNext: null, key: '' };
    if (this.tail === null) this.head = e;
    else this.tail.next = e;
    this.tail = e;
    this.n++;
    this.indexKey(e);
    this.indexMid(e);
  }

  /** See the file's comment: true when a packet was updated or replaced. */
  update(packet: OutgoingPacket): boolean {
    const found = firstOf(this.byKey.get(keyOf(packet)), () => true);
    const other = this.first(packet.messageId, (e) => e.packet.brokerId !== packet.brokerId);
    if (other !== undefined && (found === undefined || other.seq < found.seq)) {
      this.unindexMid(other);
      this.unindexKey(other);
      other.packet = packet;
      this.indexKey(other);
      this.indexMid(other);
      return true;
    }
    if (found === undefined) return false;
    this.unindexMid(found);
    found.packet.messageId = packet.messageId;
    this.indexMid(found);
    return true;
  }

  /** Removes and returns the first packet with `messageId` (undefined: the first that has none yet, as the scan did). */
  clear(messageId: unknown): OutgoingPacket | undefined {
    const e = this.first(messageId, () => true);
    if (e === undefined) return undefined;
    this.unindexMid(e);
    this.unindexKey(e);
    if (e.prev === null) this.head = e.next;
    else e.prev.next = e.next;
    if (e.next === null) this.tail = e.prev;
    else e.next.prev = e.prev;
    this.n--;
    return e.packet;
  }

  /** The packets in order (a copy: the queue can change while it is read). */
  toArray(): OutgoingPacket[] {
    const out = new Array<OutgoingPacket>(this.n);
    let i = 0;
    for (let e = this.head; e !== null; e = e.next) out[i++] = e.packet;
    return out;
  }

  private first(mid: unknown, ok: (e: Entry) => boolean): Entry | undefined {
    if (mid === undefined) {
      for (let e = this.uHead; e !== null; e = e.uNext) if (ok(e)) return e;
      return undefined;
    }
    return firstOf(this.byMid.get(mid), ok);
  }

  private indexKey(e: Entry): void {
    e.key = keyOf(e.packet);
    add(this.byKey, e.key, e);
  }

  private unindexKey(e: Entry): void {
    remove(this.byKey, e.key, e);
  }

  private indexMid(e: Entry): void {
    e.mid = e.packet.messageId;
    if (e.mid !== undefined) {
      add(this.byMid, e.mid, e);
      return;
    }
    // In queue order: after the last one queued before it (at the end, but for a packet replaced in place).
    let after = this.uTail;
    while (after !== null && after.seq > e.seq) after = after.uPrev;
    e.uPrev = after;
    e.uNext = after === null ? this.uHead : after.uNext;
    if (e.uNext === null) this.uTail = e;
    else e.uNext.uPrev = e;
    if (after === null) this.uHead = e;
    else after.uNext = e;
  }

  private unindexMid(e: Entry): void {
    if (e.mid !== undefined) {
      remove(this.byMid, e.mid, e);
      return;
    }
    if (e.uPrev === null) this.uHead = e.uNext;
    else e.uPrev.uNext = e.uNext;
    if (e.uNext === null) this.uTail = e.uPrev;
    else e.uNext.uPrev = e.uPrev;
    e.uPrev = e.uNext = null;
  }
}

// An index: key -> the entry with it, or the entries (in no order) when several have it.
type Index<K> = Map<K, Entry | Entry[]>;

function add<K>(m: Index<K>, k: K, e: Entry): void {
  const v = m.get(k);
  if (v === undefined) m.set(k, e);
  else if (Array.isArray(v)) v.push(e);
  else m.set(k, [v, e]);
}

function remove<K>(m: Index<K>, k: K, e: Entry): void {
  const v = m.get(k);
  if (v === e) m.delete(k);
  else if (Array.isArray(v)) {
    const i = v.indexOf(e);
    if (i >= 0) v.splice(i, 1);
    if (v.length === 1) m.set(k, v[0]);
    else if (v.length === 0) m.delete(k);
  }
}

/** The first in queue order of an index's entries that `ok` accepts. */
function firstOf(v: Entry | Entry[] | undefined, ok: (e: Entry) => boolean): Entry | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) return ok(v) ? v : undefined;
  let best: Entry | undefined;
  for (const e of v) if (ok(e) && (best === undefined || e.seq < best.seq)) best = e;
  return best;
}

/**
 * (brokerId, brokerCounter) as a key, equal exactly when both are strictly equal. Undefined counts: a PUBREL
 * (aedes' PubRel has neither) matches the first PUBREL queued before it, as in the array's scan.
 */
function keyOf(p: OutgoingPacket): string {
  const c = p.brokerCounter;
  const b = p.brokerId;
  return `${c === undefined ? 'u' : `n${String(c)}`}|${b === undefined ? 'u' : `s${String(b)}`}`;
}

/** The outgoing part of aedes' persistence interface. */
export interface OutgoingPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: object): Promise<void>;
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: object): Promise<void>;
  outgoingUpdate(client: { id: string }, packet: object): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: { messageId?: unknown }): Promise<unknown>;
  outgoingStream(client: { id: string }): Readable;
}

/**
 * Replaces `persistence`'s outgoing methods with indexed queues (call before any client connects). `copy` makes
 * the queued copy of a packet (aedes-packet's Packet: the memory persistence's own). Returns the queues, for tests.
 */
export function indexOutgoing(persistence: OutgoingPersistence, copy: (packet: object) => OutgoingPacket): Map<string, OutgoingQueue> {
  const queues = new Map<string, OutgoingQueue>();
  const queueOf = (id: string): OutgoingQueue => {
    let q = queues.get(id);
    if (q === undefined) queues.set(id, (q = new OutgoingQueue()));
    return q;
  };
  // Emptied queues are dropped (the array version kept one per client id for good).
  const dropEmpty = (id: string, q: OutgoingQueue): void => {
    if (q.size === 0) queues.delete(id);
  };
  persistence.outgoingEnqueue = async (sub, packet) => {
    queueOf(sub.clientId).push(copy(packet));
  };
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    for (let i = 0; i < subs.length; i++) queueOf(subs[i].clientId).push(copy(packet));
  };
  persistence.outgoingUpdate = async (client, packet) => {
    const q = queues.get(client.id);
    if (q === undefined || !q.update(packet as OutgoingPacket)) throw new Error('no such packet');
  };
  persistence.outgoingClearMessageId = async (client, packet) => {
    const q = queues.get(client.id);
    if (q === undefined) return undefined;
    const stored = q.clear(packet.messageId);
    dropEmpty(client.id, q);
    return stored;
  };
  persistence.outgoingStream = (client) => Readable.from(queues.get(client.id)?.toArray() ?? []);
  return queues;
}
