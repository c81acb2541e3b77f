/**
 * nodes/lib/clone.ts: the fast copy Node-RED's fan-out uses for plain-data messages. Checked against
 * Node-RED's own copy (RED.util.cloneMessage: lodash cloneDeep) on generated messages, and for what it must
 * refuse.
 */
import { FAST_CLONE_HOOK, MAX_DEPTH, cloneMessage, installFastClone, preRouteCopy, type SendEventLike } from '../../nodes/lib/clone';

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
    expect(hooks.added).toEqual([FAST_CLONE_HOOK]);
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
    }
  });
});

function jestHooks(): { added: string[]; add: (id: string) => void; has: (id: string) => boolean } {
  const added: string[] = [];
  return { added, add: (id) => added.push(id), has: (id) => added.includes(id) };
}
