/**
 * The embedded broker's outgoing queue for a persistent session (runtime/outgoing-queue.ts) against
 * aedes-persistence's memory persistence (arrays scanned per operation), side by side. One op is what aedes
 * does per QoS 1 message to the flows' input: enqueue, outgoingUpdate (its messageId given at delivery) and,
 * `inFlight` messages later, outgoingClearMessageId (the PUBACK, in order, as the input acknowledges in store
 * order). `inFlight` is the input's in-flight window: 100 (a store keeping up) and 5,000 (the input's maximum,
 * reached when the store is slow or at the knee).
 */
import { indexOutgoing, type OutgoingPacket, type OutgoingPersistence } from '../../../runtime/outgoing-queue';
import type { BenchCase } from '../harness';

/* eslint-disable @typescript-eslint/no-require-imports */
const AsyncMemory = require('aedes-persistence/asyncPersistence.js') as new () => OutgoingPersistence;
const Packet = require('aedes-packet') as new (p: object) => OutgoingPacket;
/* eslint-enable @typescript-eslint/no-require-imports */

const CLIENT = { id: 'thingwire-flows' };
const SUB = { clientId: CLIENT.id };
const PAYLOAD = Buffer.from('{"ts":1767225600000,"temperature":21.5}');

function queueCase(name: string, inFlight: number, indexed: boolean, baseline?: string): BenchCase {
  let p: OutgoingPersistence | undefined;
  let counter = 0;
  let mid = 0;
  const step = (q: OutgoingPersistence): void => {
    counter++;
    const packet = { cmd: 'publish', topic: 'devices/d-1/telemetry', payload: PAYLOAD, qos: 1, retain: false, dup: false, brokerId: 'b', brokerCounter: counter };
    void q.outgoingEnqueue(SUB, packet);
    mid = mid === 65535 ? 1 : mid + 1;
    const delivered = new Packet(packet);
    delivered.messageId = mid;
    void q.outgoingUpdate(CLIENT, delivered);
    const acked = mid - inFlight;
    if (counter > inFlight) void q.outgoingClearMessageId(CLIENT, { messageId: acked <= 0 ? acked + 65535 : acked });
  };
  return {
    group: 'broker-queue',
    name,
    baseline,
    setup() {
      p = new AsyncMemory();
      if (indexed) indexOutgoing(p, (x) => new Packet(x));
      for (let i = 0; i < inFlight; i++) step(p);
    },
    run(n) {
      const q = p!;
      for (let i = 0; i < n; i++) step(q);
      return counter;
    },
  };
}

const BASE_100 = 'broker-queue/aedes-persistence arrays, 100 in flight';
const BASE_5000 = 'broker-queue/aedes-persistence arrays, 5,000 in flight';

export const brokerQueueCases: BenchCase[] = [
  queueCase('aedes-persistence arrays, 100 in flight', 100, false),
  queueCase('indexed, 100 in flight', 100, true, BASE_100),
  queueCase('aedes-persistence arrays, 5,000 in flight', 5000, false),
  queueCase('indexed, 5,000 in flight', 5000, true, BASE_5000),
];
