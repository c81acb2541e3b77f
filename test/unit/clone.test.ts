/**
 * nodes/lib/clone.ts: the fast copy Node-RED's fan-out uses for plain-data messages. Checked against
 * Node-RED's own copy (RED.util.cloneMessage: lodash cloneDeep) on generated messages, and for what it must
 * refuse.
 */
import {
  FAST_CLONE_HOOK,
  FUNCTION_READS_ONLY,
  MAX_DEPTH,
  SHARE_HOOK,
  cloneMessage,
  declareInputUse,
  inputUseOf,
  installFastClone,
  isShared,
  markUnshared,
  preRouteCopy,
  shareForReaders,
  type RoutedSendEvent,
  type SendEventLike,
} from '../../nodes/lib/clone';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeRedUtil = require('@node-red/util').util as { cloneMessage<T>(m: T): T };

/** Every object and array reachable from v. */
function objectsOf(v: unknown, out = new Set<object>()): Set<object> {
  if (typeof v === 'object' && v !== null && !out.has(v)) {
    out.add(v);
    for (const x of Object.values(v)) objectsOf(x, out);
  }
  return out;
}

/** A small deterministic generator of plain-data values (the shapes telemetry messages take). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
function plain(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 3 ? 6 : 8));
  switch (k) {
    case 0:
      return r() * 1e6 - 5e5;
    case 1:
      return `s${Math.floor(r() * 1000)}`;
    case 2:
      return r() < 0.5;
    case 3:
      return null;
    case 4:
      return [NaN, -0, Infinity, undefined][Math.floor(r() * 4)];
    case 5:
      return BigInt(Math.floor(r() * 1e9));
    case 6: {
      const a: unknown[] = [];
      for (let i = Math.floor(r() * 5); i > 0; i--) a.push(plain(r, depth + 1));
      return a;
    }
    default: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 5); i > 0; i--) o[`k${Math.floor(r() * 20)}`] = plain(r, depth + 1);
      return o;
    }
  }
}

describe('cloneMessage (fast copy)', () => {
  test('equals Node-RED\'s copy on 2,000 generated plain-data messages and shares nothing with the original', () => {
    const r = rng(42);
    for (let i = 0; i < 2000; i++) {
      const msg = { _msgid: `m${i}`, topic: 't', payload: plain(r, 0), extra: plain(r, 0) };
      const fast = cloneMessage(msg);
      expect(fast).toBeDefined();
      expect(fast).toStrictEqual(nodeRedUtil.cloneMessage(msg));
      const mine = objectsOf(msg);
      for (const o of objectsOf(fast)) expect(mine.has(o)).toBe(false);
    }
  });

  test('a batch of readings: same keys in the same order, values equal, -0 and NaN kept', () => {
    const payload = Array.from({ length: 50 }, (_, i) => ({ device: `d${i % 7}`, ts: 1_700_000_000_000 + i, metrics: { t: i / 3, h: NaN, z: -0 }, tags: { site: 'a' } }));
    const msg = { _msgid: 'x', payload, mqttAck: payload.map((_, i) => `tok${i}`), devices: { d1: { name: 'one', tags: { fw: '1' } } } };
    const c = cloneMessage(msg)!;
    expect(c).toStrictEqual(nodeRedUtil.cloneMessage(msg));
    expect(Object.keys(c.payload[3])).toEqual(['device', 'ts', 'metrics', 'tags']);
    expect(Object.is(c.payload[0].metrics.z, -0)).toBe(true);
    c.payload[0].metrics.t = 99;
    c.devices.d1.tags.fw = '2';
    expect(msg.payload[0].metrics.t).toBe(0);
    expect(msg.devices.d1.tags.fw).toBe('1');
  });

  test('keys in Node-RED\'s order (integer-like first), own keys only even when Object.prototype has an enumerable one', () => {
    const o: Record<string, unknown> = { b: 1, 10: 'ten', a: 2, 2: 'two', '-1': 'minus' };
    Object.defineProperty(o, 'hidden', { value: 3, enumerable: false });
    const msg = { payload: o };
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 'inherited';
    try {
      const c = cloneMessage(msg)!;
      const lodash = nodeRedUtil.cloneMessage(msg);
      expect(Object.keys(c.payload)).toEqual(Object.keys(lodash.payload));
      expect(Object.keys(c.payload)).toEqual(['2', '10', 'b', 'a', '-1']);
      expect(Object.prototype.hasOwnProperty.call(c.payload, 'polluted')).toBe(false);
      expect(Object.prototype.hasOwnProperty.call(c.payload, 'hidden')).toBe(false);
      expect(Object.prototype.hasOwnProperty.call(c, 'polluted')).toBe(false);
    } finally {
      delete proto.polluted;
    }
  });

  test('array holes become undefined and null-prototype objects plain ones, as in Node-RED\'s copy', () => {
    // eslint-disable-next-line no-sparse-arrays
    const holes = [1, , 3];
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    const msg = { payload: { holes, bare } };
    const c = cloneMessage(msg)!;
    const lodash = nodeRedUtil.cloneMessage(msg);
    expect(c).toStrictEqual(lodash);
    expect(1 in c.payload.holes).toBe(true);
    expect(Object.getPrototypeOf(c.payload.bare)).toBe(Object.prototype);
  });

  test.each([
    ['a Buffer', { payload: Buffer.from('ab') }],
    ['a Date', { payload: { at: new Date(0) } }],
    ['a Map', { payload: [new Map()] }],
    ['a class instance', { payload: new (class Point { x = 1 })() }],
    ['a function', { payload: { f: () => 1 } }],
    ['a symbol key', { payload: { [Symbol('s')]: 1 } }],
    ['msg.req (kept by reference by Node-RED)', { req: { url: '/' }, payload: 1 }],
    ['msg.res', { res: {}, payload: 1 }],
    ['a typed array', { payload: new Float64Array(2) }],
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ['an object made in another realm (a Function node\'s sandbox)', { payload: require('node:vm').runInNewContext('({ a: [1] })') }],
  ])('gives up on %s (Node-RED copies it)', (_name, msg) => {
    expect(cloneMessage(msg as object)).toBeUndefined();
  });

  test('gives up on a cycle and on nesting deeper than MAX_DEPTH, and copies nesting just under it', () => {
    const cyc: Record<string, unknown> = { a: 1 };
    cyc.self = cyc;
    expect(cloneMessage({ payload: cyc })).toBeUndefined();
    const deep = (n: number): unknown => (n === 0 ? 'leaf' : { d: deep(n - 1) });
    expect(cloneMessage({ payload: deep(MAX_DEPTH) })).toBeUndefined();
    expect(cloneMessage({ payload: deep(MAX_DEPTH - 2) })).toStrictEqual({ payload: deep(MAX_DEPTH - 2) });
  });
});

describe('the preRoute hook', () => {
  test('copies a send event Node-RED would copy and tells Node-RED not to; leaves the others', () => {
    const msg = { payload: [{ a: 1 }] };
    const first: SendEventLike = { msg, cloneMessage: false };
    preRouteCopy(first);
    expect(first.msg).toBe(msg);
    const second: SendEventLike = { msg, cloneMessage: true };
    preRouteCopy(second);
    expect(second.cloneMessage).toBe(false);
    expect(second.msg).not.toBe(msg);
    expect(second.msg).toStrictEqual(msg);
    const odd: SendEventLike = { msg: { payload: new Date(0) }, cloneMessage: true };
    const before = odd.msg;
    preRouteCopy(odd);
    expect(odd.cloneMessage).toBe(true);
    expect(odd.msg).toBe(before);
  });

  test('installFastClone registers once, on Node-RED\'s hooks, unless settings turn it off', () => {
    const hooks = jestHooks();
    expect(installFastClone({ hooks, settings: {} })).toBe(true);
    expect(installFastClone({ hooks, settings: {} })).toBe(true);
    expect(hooks.added).toEqual([FAST_CLONE_HOOK, SHARE_HOOK]);
    const off = jestHooks();
    expect(installFastClone({ hooks: off, settings: { thingwireFastClone: false } })).toBe(false);
    expect(off.added).toEqual([]);
    expect(installFastClone({ settings: {} })).toBe(false);
  });

  test('with Node-RED\'s own hooks engine, the hook runs in preRoute', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { hooks } = require('@node-red/util') as { hooks: { add: (id: string, cb: unknown) => void; has: (id: string) => boolean; remove: (id: string) => void; trigger: (id: string, p: unknown, done: (err?: unknown) => void) => void } };
    try {
      expect(installFastClone({ hooks, settings: {} })).toBe(true);
      expect(hooks.has(FAST_CLONE_HOOK)).toBe(true);
      const msg = { payload: { v: 1 } };
      const ev: SendEventLike = { msg, cloneMessage: true };
      await new Promise<void>((resolve, reject) => hooks.trigger('preRoute', ev, (err) => (err ? reject(err as Error) : resolve())));
      expect(ev.cloneMessage).toBe(false);
      expect(ev.msg).not.toBe(msg);
      expect(ev.msg).toStrictEqual(msg);
    } finally {
      hooks.remove(FAST_CLONE_HOOK);
      hooks.remove(SHARE_HOOK);
    }
  });

  test('with Node-RED\'s own hooks engine, the sharing hook runs in onSend, synchronously', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { hooks } = require('@node-red/util') as { hooks: { has: (id: string) => boolean; remove: (id: string) => void; trigger: (id: string, p: unknown, done: (err?: unknown) => void) => void } };
    try {
      expect(installFastClone({ hooks: hooks as never, settings: {} })).toBe(true);
      expect(hooks.has(SHARE_HOOK)).toBe(true);
      const nodes: Record<string, FakeNode> = { f: node(), r: node('reads') };
      const from = Object.assign(node(), { _flow: { getNode: (id: string): unknown => nodes[id] } });
      const msg = { payload: [{ v: 1 }] };
      const events: RoutedSendEvent[] = [
        { msg, cloneMessage: false, source: { node: from }, destination: { id: 'f' } },
        { msg, cloneMessage: true, source: { node: from }, destination: { id: 'r' } },
      ];
      let called = false;
      hooks.trigger('onSend', events, (err) => {
        if (err) throw err as Error;
        called = true;
      });
      expect(called).toBe(true);
      expect(events[0].cloneMessage).toBe(true);
      expect(events[1].msg).not.toBe(msg);
      expect((events[1].msg as typeof msg).payload).toBe(msg.payload);
    } finally {
      hooks.remove(FAST_CLONE_HOOK);
      hooks.remove(SHARE_HOOK);
    }
  });
});

// ---- readers share ----------------------------------------------------------------------------

interface FakeNode {
  type: string;
}

/** A node that declares `use`, or (without) one that declares nothing, like a Function node. */
function node(use?: 'reads' | 'shares', type = 'thingwire-x'): FakeNode {
  const n = { type };
  if (use !== undefined) declareInputUse(n, use);
  return n;
}

const SOURCE = node();
/** A send event as Node-RED builds it: the destination is looked up by the hook (here: the event's own `to`). */
function event(msg: object, to: FakeNode, cloneMessage: boolean, from: FakeNode = SOURCE): RoutedSendEvent & { to: FakeNode } {
  return { msg, cloneMessage, source: { node: from }, destination: { id: 'x' }, to };
}
const lookup = (e: RoutedSendEvent): unknown => (e as RoutedSendEvent & { to?: FakeNode }).to;

describe('readers share one message (the onSend hook)', () => {
  test('declared nodes and link nodes are readers; anything else is not', () => {
    expect(inputUseOf(node('reads'))).toBe('reads');
    expect(inputUseOf(node('shares'))).toBe('shares');
    expect(inputUseOf(node(undefined, 'link in'))).toBe('reads');
    expect(inputUseOf(node(undefined, 'link out'))).toBe('reads');
    expect(inputUseOf(node(undefined, 'function'))).toBeUndefined();
    expect(inputUseOf(undefined)).toBeUndefined();
  });

  test('a Function node whose code starts with the reads-only line shares; its messages count as shared', () => {
    const fn = (func: unknown): object => ({ type: 'function', func });
    expect(inputUseOf(fn(`${FUNCTION_READS_ONLY} (why)\nreturn msg;`))).toBe('shares');
    expect(inputUseOf(fn(`\n  ${FUNCTION_READS_ONLY}\nreturn msg;`))).toBe('shares');
    expect(inputUseOf(fn(`return msg;\n${FUNCTION_READS_ONLY}`))).toBeUndefined();
    expect(inputUseOf(fn('msg.payload.x = 1;\nreturn msg;'))).toBeUndefined();
    expect(inputUseOf(fn(undefined))).toBeUndefined();
    // Another node type with the same line in a property called func is not a Function node.
    expect(inputUseOf({ type: 'template', func: FUNCTION_READS_ONLY })).toBeUndefined();
  });

  test('a fan-out to readers and other nodes: readers get shells over one payload, every other node a copy', () => {
    const msg = { payload: [{ device: 'a', metrics: { t: 1 } }], topic: 't', _msgid: 'm1', _linkSource: [{ id: 'l', node: 'n' }] };
    const events = [event(msg, node(), false), event(msg, node('reads'), true), event(msg, node(undefined, 'link out'), true), event(msg, node(), true)];
    shareForReaders(events, lookup);
    expect(events.map((e) => e.cloneMessage)).toEqual([true, false, false, true]);
    const [, r1, r2] = events;
    for (const r of [r1, r2]) {
      expect(r.msg).not.toBe(msg);
      expect(r.msg).toEqual(msg);
      expect((r.msg as typeof msg).payload).toBe(msg.payload);
      // A return link pops this array: each shell has its own.
      expect((r.msg as typeof msg)._linkSource).not.toBe(msg._linkSource);
      expect(isShared(r.msg)).toBe(true);
    }
    expect(r1.msg).not.toBe(r2.msg);
    // The message itself went to nobody: the others copy it (preRoute), so nothing they change reaches the readers;
    // and it counts as shared, so the sender sending it again to a Function node would send a copy.
    expect(isShared(msg)).toBe(true);
    const again = event(msg, node(), false);
    shareForReaders([again], lookup);
    expect(again.cloneMessage).toBe(true);
  });

  test('without readers, Node-RED\'s flags stand (the first destination gets the message itself)', () => {
    const msg = { payload: 1 };
    const events = [event(msg, node(), false), event(msg, node(), true)];
    shareForReaders(events, lookup);
    expect(events.map((e) => e.cloneMessage)).toEqual([false, true]);
    expect(events[0].msg).toBe(msg);
    const one = event({ payload: 2 }, node(), false);
    shareForReaders([one], lookup);
    expect(one.cloneMessage).toBe(false);
  });

  test('a shared message is copied for any node that is not a reader, and passed as it is to one that is', () => {
    const msg = { payload: [1, 2] };
    const [shell] = ((): RoutedSendEvent[] => {
      const evs = [event(msg, node('reads'), false), event(msg, node('reads'), true)];
      shareForReaders(evs, lookup);
      return evs;
    })();
    // The reader passes its shell on, alone, to a Function node: a copy.
    const toFunction = event(shell.msg, node(), false, node('reads'));
    shareForReaders([toFunction], lookup);
    expect(toFunction.cloneMessage).toBe(true);
    // ... or to another reader: the shell itself.
    const toReader = event(shell.msg, node('reads'), false, node('reads'));
    shareForReaders([toReader], lookup);
    expect(toReader.cloneMessage).toBe(false);
    expect(toReader.msg).toBe(shell.msg);
    // ... or to several nodes, none of them readers: a copy for each.
    const evs = [event(shell.msg, node(), false), event(shell.msg, node(), true)];
    shareForReaders(evs, lookup);
    expect(evs.map((e) => e.cloneMessage)).toEqual([true, true]);
  });

  test('what a "shares" node sends counts as shared; what a "reads" node makes does not', () => {
    const sharer = node('shares');
    const fresh = { payload: { score: 1, tags: {} } };
    const toFunction = event(fresh, node(), false, sharer);
    shareForReaders([toFunction], lookup);
    expect(toFunction.cloneMessage).toBe(true);
    const toReader = event({ payload: 2 }, node('reads'), false, sharer);
    shareForReaders([toReader], lookup);
    expect(toReader.cloneMessage).toBe(false);
    expect(isShared(toReader.msg)).toBe(true);
    const fromReader = event({ payload: 3 }, node(), false, node('reads'));
    shareForReaders([fromReader], lookup);
    expect(fromReader.cloneMessage).toBe(false);
    const all = [event(fresh, node(), false, sharer), event(fresh, node(), true, sharer)];
    shareForReaders(all, lookup);
    expect(all.map((e) => e.cloneMessage)).toEqual([true, true]);
  });

  test('a "shares" node\'s message marked unshared (a batch of messages none of which was shared) is passed on as they were', () => {
    const sharer = node('shares');
    const own = { payload: [{ device: 'a' }] };
    markUnshared(own);
    // To one node that is not a reader: the message itself, as Node-RED passes a message on a single wire.
    const toFunction = event(own, node(), false, sharer);
    shareForReaders([toFunction], lookup);
    expect(toFunction.cloneMessage).toBe(false);
    expect(toFunction.msg).toBe(own);
    expect(isShared(own)).toBe(false);
    // To one reader: not marked shared either (what the reader sends on is not copied for its single next node).
    const own2 = { payload: [{ device: 'b' }] };
    markUnshared(own2);
    const toReader = event(own2, node('reads'), false, sharer);
    shareForReaders([toReader], lookup);
    expect(toReader.cloneMessage).toBe(false);
    expect(isShared(own2)).toBe(false);
    // A fan-out to a reader and another node: as for any unshared message, the reader a shell, the other a copy.
    const own3 = { payload: [{ device: 'c' }] };
    markUnshared(own3);
    const fan = [event(own3, node('reads'), false, sharer), event(own3, node(), true, sharer)];
    shareForReaders(fan, lookup);
    expect(fan.map((e) => e.cloneMessage)).toEqual([false, true]);
    expect(isShared(fan[0].msg)).toBe(true);
    // The mark is for that message only: another message of the same node counts as shared.
    const other = event({ payload: [{ device: 'd' }] }, node(), false, sharer);
    shareForReaders([other], lookup);
    expect(other.cloneMessage).toBe(true);
  });

  test('messages of one send may hold the same objects: once a reader gets one uncopied, the others are copies', () => {
    const payload = { v: 1 };
    const a = { payload };
    const b = { payload };
    // A node sending two messages over one payload on two outputs, to a reader and a Function node.
    const events = [event(a, node('reads'), false), event(b, node(), true)];
    shareForReaders(events, lookup);
    expect(events[0].msg).toBe(a);
    expect(events[0].cloneMessage).toBe(false);
    expect(isShared(a)).toBe(true);
    expect(events[1].cloneMessage).toBe(true);
  });

  test('a message that is not a plain object is copied for readers too', () => {
    class Msg {
      payload = 1;
    }
    const m = new Msg();
    const events = [event(m, node('reads'), false), event(m, node('reads'), true)];
    shareForReaders(events, lookup);
    expect(events.map((e) => e.cloneMessage)).toEqual([true, true]);
    expect(events[0].msg).toBe(m);
  });

  test('the destination is found through the sending node\'s flow, as Node-RED\'s router finds it', () => {
    const reader = node('reads');
    const other = node();
    const flow = { getNode: (id: string): unknown => ({ r: reader, o: other })[id] };
    const from = Object.assign(node(), { _flow: flow });
    const msg = { payload: [1] };
    const events: RoutedSendEvent[] = [
      { msg, cloneMessage: false, source: { node: from }, destination: { id: 'o' } },
      { msg, cloneMessage: true, source: { node: from }, destination: { id: 'r' } },
      { msg, cloneMessage: true, source: { node: from }, destination: { id: 'gone' } },
    ];
    shareForReaders(events);
    expect(events.map((e) => e.cloneMessage)).toEqual([true, false, true]);
    expect((events[1].msg as typeof msg).payload).toBe(msg.payload);
  });
});

function jestHooks(): { added: string[]; add: (id: string) => void; has: (id: string) => boolean } {
  const added: string[] = [];
  return { added, add: (id) => added.push(id), has: (id) => added.includes(id) };
}
