/**
 * aedes-persistence's own conformance suite (abstract.js, node:test) run against its memory persistence with
 * runtime/outgoing-queue.ts's indexed outgoing queues in place of its arrays: `node --test
 * dist/test/support/outgoing-conformance.js` (test/unit/outgoing-queue.test.ts runs it; a separate process
 * because the suite is written for node:test, not Jest).
 */
import { test } from 'node:test';
import { indexOutgoing, type OutgoingPacket, type OutgoingPersistence } from '../../runtime/outgoing-queue';

/* eslint-disable @typescript-eslint/no-require-imports */
const AsyncMemory = require('aedes-persistence/asyncPersistence.js') as new () => OutgoingPersistence;
const abstractPersistence = require('aedes-persistence/abstract.js') as (opts: object) => void;
const Packet = require('aedes-packet') as new (p: object) => OutgoingPacket;
/* eslint-enable @typescript-eslint/no-require-imports */

abstractPersistence({
  test,
  persistence: () => {
    const p = new AsyncMemory();
    indexOutgoing(p, (x) => new Packet(x));
    return p;
  },
  testAsync: true,
});
