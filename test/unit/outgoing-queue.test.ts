/**
 * runtime/outgoing-queue.ts: the indexed outgoing queues behave as aedes-persistence's memory persistence (its
 * arrays), operation for operation, on random sequences with colliding messageIds, PUBRELs and unknown packets;
 * and aedes-persistence's own conformance suite passes with them (test/support/outgoing-conformance.ts, run in a
 * child process: it is written for node:test).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { indexOutgoing, type OutgoingPacket, type OutgoingPersistence } from '../../runtime/outgoing-queue';
import { ROOT } from '../support/services';

/* eslint-disable @typescript-eslint/no-require-imports */
const AsyncMemory = require('aedes-persistence/asyncPersistence.js') as new () => OutgoingPersistence;
const Packet = require('aedes-packet') as new (p: object) => OutgoingPacket;
/* eslint-enable @typescript-eslint/no-require-imports */

async function drain(s: Readable): Promise<OutgoingPacket[]> {
  const out: OutgoingPacket[] = [];
  for await (const p of s) out.push(p as OutgoingPacket);
  return out;
}

/** What a test compares of a packet (the queues hold copies, so not identity). */
const view = (p: unknown): unknown => {
  if (p === undefined) return undefined;
  const o = p as OutgoingPacket;
  return [o.cmd, o.topic, o.brokerId, o.brokerCounter, o.messageId];
};

async function outcome<T>(f: () => Promise<T>): Promise<{ ok: unknown } | { err: string }> {
  try {
    return { ok: view(await f()) };
  } catch (e) {
    return { err: (e as Error).message };
  }
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test.each([1, 2, 3, 4])('random operations (seed %i): the same answers and queues as the arrays', async (seed) => {
  const ref = new AsyncMemory();
  const idx = new AsyncMemory();
  indexOutgoing(idx, (x) => new Packet(x));
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const clients = ['a', 'b'];
  const brokers = ['b1', 'b2'];
  let counter = 0;
  const counters: number[] = [];
  let ops = 0;
  for (let i = 0; i < 3000; i++) {
    const client = pick(clients);
    const x = r();
    let a: unknown;
    let b: unknown;
    if (x < 0.35) {
      // a publish queued for one or both clients (a small counter range repeats keys now and then)
      const c = r() < 0.1 && counters.length > 0 ? pick(counters) : ++counter;
      counters.push(c);
      const packet = { cmd: 'publish', topic: `t/${i}`, payload: Buffer.from('x'), qos: 1, brokerId: pick(brokers), brokerCounter: c };
      const subs = r() < 0.3 ? clients.map((id) => ({ clientId: id })) : [{ clientId: client }];
      a = await outcome(() => ref.outgoingEnqueueCombi(subs, packet));
      b = await outcome(() => idx.outgoingEnqueueCombi(subs, packet));
    } else if (x < 0.65) {
      // a delivery: the messageId given (from 1..12, so they collide), by (brokerId, brokerCounter)
      const packet = new Packet({ cmd: 'publish', topic: 'x', qos: 1, brokerId: pick(brokers), brokerCounter: counters.length > 0 ? pick(counters) : 1 });
      packet.messageId = 1 + Math.floor(r() * 12);
      a = await outcome(() => ref.outgoingUpdate({ id: client }, { ...packet }));
      b = await outcome(() => idx.outgoingUpdate({ id: client }, { ...packet }));
    } else if (x < 0.72) {
      // a PUBREL taking a publish's place (aedes' PubRel: cmd and messageId only; now and then without a messageId,
      // which takes the first queued packet that has none, as the scan did)
      const messageId = r() < 0.15 ? undefined : 1 + Math.floor(r() * 12);
      a = await outcome(() => ref.outgoingUpdate({ id: client }, { cmd: 'pubrel', messageId }));
      b = await outcome(() => idx.outgoingUpdate({ id: client }, { cmd: 'pubrel', messageId }));
    } else {
      // an acknowledgement (now and then of a packet without a messageId yet, as aedes' emptyOutgoingQueue does)
      const messageId = r() < 0.1 ? undefined : 1 + Math.floor(r() * 14);
      a = await outcome(() => ref.outgoingClearMessageId({ id: client }, { messageId }));
      b = await outcome(() => idx.outgoingClearMessageId({ id: client }, { messageId }));
    }
    expect(b).toEqual(a);
    // The queues' order and contents: every 20 operations (reading them whole each time took minutes).
    if (i % 20 === 19) for (const id of clients) expect((await drain(idx.outgoingStream({ id }))).map(view)).toEqual((await drain(ref.outgoingStream({ id }))).map(view));
    ops++;
  }
  expect(ops).toBe(3000);
  // The sequences reached the cases that matter: queues of some length and found/not-found answers both.
  expect(counter).toBeGreaterThan(500);
});

test("aedes-persistence's conformance suite passes with the indexed queues", () => {
  const script = path.join(ROOT, 'dist', 'test', 'support', 'outgoing-conformance.js');
  const res = spawnSync(process.execPath, ['--test', '--test-reporter=tap', script], { encoding: 'utf8', timeout: 120_000 });
  const out = `${res.stdout}\n${res.stderr}`;
  expect({ status: res.status, fail: /# fail (\d+)/.exec(out)?.[1] }).toEqual({ status: 0, fail: '0' });
  expect(Number(/# pass (\d+)/.exec(out)?.[1])).toBeGreaterThanOrEqual(50);
});
