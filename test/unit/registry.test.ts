/**
 * The device registry engine (nodes/lib/registry/registry.ts): device and stream CRUD, validation
 * of untrusted input (types, limits, hostile keys), listing with filters and paging, tokens (shown
 * once, stored hashed, rotated, revoked, checked in constant time, cached and invalidated),
 * provisioning, sharing and reference counting, persistence across reopen, corrupt and invalid
 * files, and 100,000 devices.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { openRegistry, openRegistryFiles, RegistryError, type RegistryHandle } from '../../nodes/lib/registry/registry';
import { hashToken, isTokenHash, verifyToken, TOKEN_LENGTH } from '../../nodes/lib/registry/tokens';
import type { RegistryChange } from '../../nodes/lib/registry/types';

// The crypto module object itself: tokens.ts reads its functions from it on every call, so spies see them.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const realCrypto = require('node:crypto') as typeof import('node:crypto');

/** Cheap scrypt for tests (N = 16); the stored hash records it. */
const FAST = { tokenHashCost: 4 };

let dir: string;
let open: RegistryHandle[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-registry-'));
});
afterEach(async () => {
  jest.restoreAllMocks();
  for (const r of open) await r.close();
  open = [];
  fs.rmSync(dir, { recursive: true, force: true });
});

function reg(opts: Parameters<typeof openRegistry>[1] = {}, file = path.join(dir, 'registry.json')): RegistryHandle {
  const r = openRegistry(file, { ...FAST, ...opts });
  open.push(r);
  return r;
}

/** The RegistryError a call throws (fails when it throws something else or nothing). */
function refusal(fn: () => unknown): RegistryError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RegistryError);
    return e as RegistryError;
  }
  throw new Error('expected a RegistryError');
}

describe('devices', () => {
  test('create, get, update, delete; records carry defaults and no token', () => {
    const r = reg();
    const before = Date.now();
    const { device, token } = r.createDevice({ id: 'pico-1', type: 'pico-w', tags: { site: 'madrid' }, metadata: { fw: '1.2' }, location: { name: 'hall', lat: 40.4, lon: -3.7 } });
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(device).toEqual({
      id: 'pico-1',
      name: 'pico-1',
      type: 'pico-w',
      location: { name: 'hall', lat: 40.4, lon: -3.7 },
      tags: { site: 'madrid' },
      metadata: { fw: '1.2' },
      enabled: true,
      livenessTimeout: 0,
      createdAt: device.createdAt,
      updatedAt: device.createdAt,
      lastSeen: null,
      hasToken: true,
      tokenRotatedAt: device.createdAt,
    });
    expect(device.createdAt).toBeGreaterThanOrEqual(before);
    expect(JSON.stringify(r.getDevice('pico-1'))).not.toContain(token);
    expect(r.getDevice('nope')).toBeUndefined();

    const u = r.updateDevice('pico-1', { name: 'Pico in the hall', enabled: false, livenessTimeout: 60_000, location: null as never });
    expect(u).toMatchObject({ name: 'Pico in the hall', enabled: false, livenessTimeout: 60_000, tags: { site: 'madrid' } });
    expect(u.location).toBeUndefined();
    expect(r.getDevice('pico-1')).toEqual(u);
    expect(r.size).toEqual({ devices: 1, streams: 0 });

    expect(r.deleteDevice('pico-1')).toBe(true);
    expect(r.deleteDevice('pico-1')).toBe(false);
    expect(r.getDevice('pico-1')).toBeUndefined();
    expect(r.size.devices).toBe(0);
  });

  test('a duplicate id is a conflict (409); a missing device is not_found (404)', () => {
    const r = reg();
    r.createDevice({ id: 'd1' });
    const e = refusal(() => r.createDevice({ id: 'd1' }));
    expect([e.code, e.status, e.message]).toEqual(['conflict', 409, 'device "d1" is already registered']);
    for (const fn of [() => r.updateDevice('zz', {}), () => r.rotateToken('zz'), () => r.revokeToken('zz')]) {
      const n = refusal(fn);
      expect([n.code, n.status, n.message]).toEqual(['not_found', 404, 'device "zz" is not registered']);
    }
  });

  test('records handed out are frozen: changing them throws and the registry is unchanged', () => {
    const r = reg();
    const { device } = r.createDevice({ id: 'd1', tags: { a: 'b' }, metadata: { nested: { x: 1 } } });
    expect(() => {
      (device as { name: string }).name = 'x';
    }).toThrow(TypeError);
    expect(() => {
      (device.tags as Record<string, string>).a = 'c';
    }).toThrow(TypeError);
    expect(() => {
      ((device.metadata.nested as Record<string, number>).x = 2);
    }).toThrow(TypeError);
    expect(r.getDevice('d1')).toMatchObject({ name: 'd1', tags: { a: 'b' }, metadata: { nested: { x: 1 } } });
  });

  test('input objects are copied: changing them afterwards changes nothing', () => {
    const r = reg();
    const tags = { a: 'b' };
    const metadata = { list: [1, 2] };
    r.createDevice({ id: 'd1', tags, metadata });
    tags.a = 'changed';
    metadata.list.push(3);
    expect(r.getDevice('d1')).toMatchObject({ tags: { a: 'b' }, metadata: { list: [1, 2] } });
  });

  test('onChange tells create, update, token and delete; the unsubscribe stops it; a throwing listener is a problem, not a failure', () => {
    const r = reg();
    const seen: RegistryChange[] = [];
    const off = r.onChange((c) => seen.push(c));
    r.onChange(() => {
      throw new Error('listener bug');
    });
    r.createDevice({ id: 'd1' });
    r.updateDevice('d1', { name: 'x' });
    r.rotateToken('d1');
    r.revokeToken('d1');
    r.createStream({ id: 's1' });
    r.deleteDevice('d1');
    r.seen('d1', Date.now());
    off();
    r.createDevice({ id: 'd2' });
    expect(seen).toEqual([
      { kind: 'device', id: 'd1', op: 'create' },
      { kind: 'device', id: 'd1', op: 'update' },
      { kind: 'device', id: 'd1', op: 'token' },
      { kind: 'device', id: 'd1', op: 'token' },
      { kind: 'stream', id: 's1', op: 'create' },
      { kind: 'device', id: 'd1', op: 'delete' },
    ]);
    expect(r.problems.filter((p) => p.includes('listener bug')).length).toBeGreaterThan(0);
    expect(r.getDevice('d2')).toBeDefined();
  });

  test('seen() keeps the newest event time, never later than now, and ignores junk and unknown devices', () => {
    const r = reg();
    r.createDevice({ id: 'd1' });
    const t = Date.now() - 60_000;
    r.seen('d1', t);
    expect(r.getDevice('d1')?.lastSeen).toBe(t);
    r.seen('d1', t - 1000);
    expect(r.getDevice('d1')?.lastSeen).toBe(t);
    for (const bad of [NaN, -1, Infinity * -1, '5' as unknown as number]) r.seen('d1', bad);
    expect(r.getDevice('d1')?.lastSeen).toBe(t);
    const before = Date.now();
    r.seen('d1', Date.now() + 10 * 86_400_000);
    const ls = r.getDevice('d1')!.lastSeen!;
    expect(ls).toBeGreaterThanOrEqual(before);
    expect(ls).toBeLessThanOrEqual(Date.now());
    r.seen('nobody', t);
    expect(r.getDevice('nobody')).toBeUndefined();
  });
});

describe('validation of untrusted input', () => {
  const BAD_DEVICES: Array<[unknown, string]> = [
    [{ id: '' }, 'device id must be 1 to 128 characters'],
    [{ id: 'has space' }, 'device id must be'],
    [{ id: 'devices/other' }, 'device id must be'],
    [{ id: 'x'.repeat(129) }, 'device id must be'],
    [{ id: 42 }, 'device id must be'],
    [{ id: 'd', name: 5 }, 'name must be a string, got a number'],
    [{ id: 'd', name: 'x'.repeat(201) }, 'name must be at most 200 characters'],
    [{ id: 'd', name: 'bell\u0007' }, 'name must not contain control characters'],
    [{ id: 'd', type: 'a b' }, 'type must be "" or'],
    [{ id: 'd', enabled: 'yes' }, 'enabled must be true or false'],
    [{ id: 'd', livenessTimeout: 5 }, 'livenessTimeout must be 0'],
    [{ id: 'd', livenessTimeout: 1.5e3 + 0.5 }, 'livenessTimeout must be 0'],
    [{ id: 'd', livenessTimeout: NaN }, 'livenessTimeout must be 0'],
    [{ id: 'd', location: { lat: 91 } }, 'location.lat must be a number from -90 to 90'],
    [{ id: 'd', location: { lon: '3' } }, 'location.lon must be a number from -180 to 180'],
    [{ id: 'd', location: { alt: 3 } }, 'unknown location field "alt"'],
    [{ id: 'd', location: [1, 2] }, 'location must be an object'],
    [{ id: 'd', tags: { site: 5 } }, 'tag "site" must be text, got a number'],
    [{ id: 'd', tags: { _hidden: 'x' } }, 'tag name "_hidden" is not allowed'],
    [{ id: 'd', tags: { '': 'x' } }, 'tag name "" is not allowed'],
    [{ id: 'd', tags: 'site=x' }, 'tags must be an object'],
    [{ id: 'd', tags: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`t${i}`, 'v'])) }, 'at most 64 tags, got 65'],
    [{ id: 'd', metadata: { big: 'x'.repeat(17_000) } }, 'metadata must be at most 16384 bytes'],
    [{ id: 'd', metadata: { n: NaN } }, 'metadata.n holds a number that is not finite'],
    [{ id: 'd', metadata: { f: () => 1 } }, 'metadata.f holds a function, which is not JSON'],
    [{ id: 'd', metadata: { d: new Date(0) } }, 'metadata.d holds a'],
    [{ id: 'd', metadata: [] }, 'metadata must be an object, got an array'],
    [{ id: 'd', colour: 'red' }, 'unknown device field "colour"'],
    [{ id: 'd', lastSeen: 5 }, 'device field "lastSeen" is set by the registry'],
    [{ id: 'd', hasToken: false }, 'device field "hasToken" is set by the registry'],
  ];
  test.each(BAD_DEVICES.map(([input, msg]) => [msg, input]))('refused: %s', (msg, input) => {
    const r = reg();
    const e = refusal(() => r.createDevice(input as never));
    expect([e.code, e.status]).toEqual(['invalid', 400]);
    expect(e.message).toContain(msg);
    expect(r.size.devices).toBe(0);
  });

  test('deeply nested metadata is refused, not a stack overflow', () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 10_000; i++) deep = { d: deep };
    const e = refusal(() => reg().createDevice({ id: 'd', metadata: deep }));
    expect(e.message).toContain('nested deeper than 16 levels');
  });

  test('non-objects are refused with a clear message', () => {
    const r = reg();
    for (const v of [null, undefined, 'd1', 7, ['d1']]) expect(refusal(() => r.createDevice(v as never)).message).toMatch(/^a device must be an object, got /);
    r.createDevice({ id: 'd1' });
    expect(refusal(() => r.updateDevice('d1', null as never)).message).toBe('a device update must be an object, got null');
    expect(refusal(() => r.updateDevice('d1', { id: 'd2' } as never)).message).toBe('a device\'s id cannot be changed (from "d1" to "d2")');
    expect(r.updateDevice('d1', { id: 'd1', name: 'same id is fine' } as never).name).toBe('same id is fine');
  });

  test('an update with one bad field changes nothing', () => {
    const r = reg();
    r.createDevice({ id: 'd1', name: 'before' });
    refusal(() => r.updateDevice('d1', { name: 'after', tags: { _bad: 'x' } }));
    expect(r.getDevice('d1')).toMatchObject({ name: 'before', tags: {} });
  });

  test('hostile keys: __proto__ is refused in tags and metadata at any depth; constructor is plain data', () => {
    const r = reg();
    const protoTags = JSON.parse('{"__proto__": {"polluted": "yes"}}') as Record<string, string>;
    expect(refusal(() => r.createDevice({ id: 'd1', tags: protoTags })).message).toContain('tag name "__proto__" is not allowed');
    const protoMeta = JSON.parse('{"a": {"b": [{"__proto__": {"polluted": "yes"}}]}}') as Record<string, unknown>;
    expect(refusal(() => r.createDevice({ id: 'd1', metadata: protoMeta })).message).toBe('metadata.a.b[0] must not hold a "__proto__" key');
    expect(refusal(() => r.createDevice(JSON.parse('{"id": "d1", "__proto__": {"enabled": false}}') as never)).message).toBe('unknown device field "__proto__"');

    const { device } = r.createDevice({ id: 'd1', tags: { constructor: 'x', toString: 'y' }, metadata: { constructor: { prototype: 1 } } });
    expect(device.tags).toEqual({ constructor: 'x', toString: 'y' });
    expect(device.metadata).toEqual({ constructor: { prototype: 1 } });
    expect(r.listDevices({ tag: 'constructor=x' }).total).toBe(1);
    expect(r.listDevices({ tag: 'hasOwnProperty' }).total).toBe(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(r.authenticate('constructor', 'x')).toMatchObject({ ok: false, code: 'unknown_device' });
    expect(r.authenticate('__proto__', 'x')).toMatchObject({ ok: false, code: 'unknown_device' });
    expect(r.getDevice('__proto__')).toBeUndefined();
    expect(r.getDevice('toString')).toBeUndefined();
  });
});

describe('listing', () => {
  function fill(r: RegistryHandle): void {
    for (let i = 0; i < 25; i++) {
      const id = `dev-${String(i).padStart(2, '0')}`;
      r.createDevice({ id, name: i % 5 === 0 ? `Boiler ${i}` : `Sensor ${i}`, type: i % 2 === 0 ? 'even' : 'odd', tags: { site: i < 10 ? 'madrid' : 'lisbon' }, enabled: i % 3 !== 0 });
    }
  }

  test('pages in id order, with the total', () => {
    const r = reg();
    fill(r);
    const p1 = r.listDevices({ limit: 10 });
    expect(p1.items.map((d) => d.id)).toEqual(Array.from({ length: 10 }, (_, i) => `dev-${String(i).padStart(2, '0')}`));
    expect([p1.total, p1.offset, p1.limit]).toEqual([25, 0, 10]);
    const p3 = r.listDevices({ offset: 20, limit: 10 });
    expect(p3.items.map((d) => d.id)).toEqual(['dev-20', 'dev-21', 'dev-22', 'dev-23', 'dev-24']);
    expect(r.listDevices({ offset: 100 }).items).toEqual([]);
    expect(r.listDevices().limit).toBe(100);
  });

  test('filters: type, tag (key=value or key), enabled, q (id or name, any case), combined and paged', () => {
    const r = reg();
    fill(r);
    expect(r.listDevices({ type: 'even' }).total).toBe(13);
    expect(r.listDevices({ tag: 'site=madrid' }).total).toBe(10);
    expect(r.listDevices({ tag: 'site' }).total).toBe(25);
    expect(r.listDevices({ tag: 'site=' }).total).toBe(0);
    expect(r.listDevices({ enabled: false }).items.map((d) => d.id)).toEqual(['dev-00', 'dev-03', 'dev-06', 'dev-09', 'dev-12', 'dev-15', 'dev-18', 'dev-21', 'dev-24']);
    expect(r.listDevices({ q: 'BOILER' }).items.map((d) => d.id)).toEqual(['dev-00', 'dev-05', 'dev-10', 'dev-15', 'dev-20']);
    expect(r.listDevices({ q: 'dev-1' }).total).toBe(10);
    const p = r.listDevices({ type: 'even', tag: 'site=lisbon', enabled: true, offset: 1, limit: 2 });
    expect(p.items.map((d) => d.id)).toEqual(['dev-14', 'dev-16']);
    expect(p.total).toBe(5);
  });

  test('bad queries are refused', () => {
    const r = reg();
    for (const [q, msg] of [
      [{ limit: 0 }, 'limit must be a whole number from 1 to 1000'],
      [{ limit: 1001 }, 'limit must be'],
      [{ offset: -1 }, 'offset must be a whole number >= 0'],
      [{ offset: '5' }, 'offset must be'],
      [{ enabled: 'true' }, 'enabled must be true or false'],
      [{ sort: 'id' }, 'unknown list query field "sort"'],
      [{ q: 5 }, 'q must be a string'],
    ] as const) {
      expect(refusal(() => r.listDevices(q as never)).message).toContain(msg);
    }
  });

  test('the order follows creation and deletion', () => {
    const r = reg();
    r.createDevice({ id: 'b' });
    r.createDevice({ id: 'a' });
    expect(r.listDevices().items.map((d) => d.id)).toEqual(['a', 'b']);
    r.createDevice({ id: 'c' });
    r.deleteDevice('a');
    expect(r.listDevices().items.map((d) => d.id)).toEqual(['b', 'c']);
  });
});

describe('tokens', () => {
  test('hashed with scrypt by default (N = 2^12), never stored or echoed', async () => {
    const file = path.join(dir, 'default-cost.json');
    const r = openRegistry(file);
    open.push(r);
    const { token } = r.createDevice({ id: 'd1' });
    expect(token).toHaveLength(TOKEN_LENGTH);
    await r.flush();
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain(token);
    const stored = (JSON.parse(text) as { devices: Array<{ tokenHash: string }> }).devices[0].tokenHash;
    expect(stored).toMatch(/^scrypt\$12\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(verifyToken(token, stored)).toBe(true);
    expect(verifyToken(`${token}x`, stored)).toBe(false);
    const wrong = r.authenticate('d1', 'not-the-token');
    expect(wrong).toEqual({ ok: false, code: 'unauthorized', message: 'wrong token for device "d1"' });
    expect(JSON.stringify(wrong)).not.toContain('not-the-token');
  });

  test('hashes are salted: one token hashes differently each time; malformed hashes never verify', () => {
    expect(hashToken('t', 4)).not.toBe(hashToken('t', 4));
    expect(isTokenHash(hashToken('t', 4))).toBe(true);
    for (const bad of ['', 'scrypt$4$8$1$short$x', 'bcrypt$10$abc', 'scrypt$30$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 5]) {
      expect(isTokenHash(bad)).toBe(false);
    }
    expect(verifyToken('t', 'nonsense')).toBe(false);
  });

  test('authenticate: ok with the device; unknown, disabled, missing, wrong, revoked and over-long tokens refused with clear messages', () => {
    const r = reg();
    const { token } = r.createDevice({ id: 'd1', tags: { site: 'x' } });
    const ok = r.authenticate('d1', token);
    expect(ok).toEqual({ ok: true, device: r.getDevice('d1') });
    expect(r.authenticate('d2', token)).toEqual({ ok: false, code: 'unknown_device', message: 'device "d2" is not registered' });
    expect(r.authenticate(5 as never, token)).toEqual({ ok: false, code: 'unknown_device', message: 'device "5" is not registered' });
    expect(r.authenticate('d1', undefined)).toEqual({ ok: false, code: 'unauthorized', message: 'no token was given for device "d1"' });
    expect(r.authenticate('d1', '')).toEqual({ ok: false, code: 'unauthorized', message: 'no token was given for device "d1"' });
    expect(r.authenticate('d1', 42 as never)).toMatchObject({ ok: false, code: 'unauthorized' });
    const long = r.authenticate('d1', 'y'.repeat(100_000));
    expect(long).toEqual({ ok: false, code: 'unauthorized', message: 'the token given for device "d1" is not a device token (too long)' });
    r.updateDevice('d1', { enabled: false });
    expect(r.authenticate('d1', token)).toEqual({ ok: false, code: 'device_disabled', message: 'device "d1" is disabled' });
    r.updateDevice('d1', { enabled: true });
    expect(r.authenticate('d1', token).ok).toBe(true);
    r.revokeToken('d1');
    expect(r.getDevice('d1')?.hasToken).toBe(false);
    expect(r.authenticate('d1', token)).toEqual({ ok: false, code: 'unauthorized', message: 'device "d1" has no token (it was revoked); rotate its token to issue a new one' });
  });

  test('rotate: a new token works at once, the old one stops at once (also when it was cached)', () => {
    const r = reg();
    const { token: t1 } = r.createDevice({ id: 'd1' });
    expect(r.authenticate('d1', t1).ok).toBe(true);
    const before = r.getDevice('d1')!.tokenRotatedAt!;
    const t2 = r.rotateToken('d1');
    expect(t2).not.toBe(t1);
    expect(r.authenticate('d1', t1)).toMatchObject({ ok: false, code: 'unauthorized' });
    expect(r.authenticate('d1', t2).ok).toBe(true);
    expect(r.getDevice('d1')!.tokenRotatedAt!).toBeGreaterThanOrEqual(before);
    // A revoked device gets a token again by rotation.
    r.revokeToken('d1');
    const t3 = r.rotateToken('d1');
    expect(r.authenticate('d1', t3).ok).toBe(true);
    expect(r.authenticate('d1', t2).ok).toBe(false);
  });

  test('constant time: every check that reaches a hash compares equal-length keys with timingSafeEqual', () => {
    const r = reg();
    const { token } = r.createDevice({ id: 'd1' });
    const tse = jest.spyOn(realCrypto, 'timingSafeEqual');
    for (const t of [token, 'short', `${token}x`, token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')]) {
      r.rotateToken('d1'); // clears the cache, so each candidate reaches the hash
      r.authenticate('d1', t);
    }
    expect(tse).toHaveBeenCalledTimes(4);
    for (const c of tse.mock.calls) {
      const [a, b] = c as unknown as [Buffer, Buffer];
      expect(a.length).toBe(32);
      expect(b.length).toBe(32);
    }
  });

  test('the cache: one scrypt per verified token until rotate, revoke, disable or delete; a repeated wrong token costs one scrypt', () => {
    const r = reg();
    const { token } = r.createDevice({ id: 'd1' });
    const scrypt = jest.spyOn(realCrypto, 'scryptSync');
    const calls = (): number => scrypt.mock.calls.length;

    for (let i = 0; i < 100; i++) expect(r.authenticate('d1', token).ok).toBe(true);
    expect(calls()).toBe(1);

    for (let i = 0; i < 50; i++) expect(r.authenticate('d1', 'stale-token').ok).toBe(false);
    expect(calls()).toBe(2);
    expect(r.authenticate('d1', token).ok).toBe(true);
    expect(calls()).toBe(2);

    r.updateDevice('d1', { name: 'renamed' }); // not a credential change: the cache stays
    expect(r.authenticate('d1', token).ok).toBe(true);
    expect(calls()).toBe(2);

    r.updateDevice('d1', { enabled: false });
    r.updateDevice('d1', { enabled: true });
    expect(r.authenticate('d1', token).ok).toBe(true);
    expect(calls()).toBe(3);

    const t2 = r.rotateToken('d1'); // one scrypt to hash the new token
    expect(calls()).toBe(4);
    expect(r.authenticate('d1', t2).ok).toBe(true);
    expect(calls()).toBe(5);

    r.deleteDevice('d1');
    const again = r.createDevice({ id: 'd1' });
    expect(r.authenticate('d1', t2).ok).toBe(false);
    expect(r.authenticate('d1', again.token).ok).toBe(true);
  });

  test('a verified device record reflects later updates and seen()', () => {
    const r = reg();
    const { token } = r.createDevice({ id: 'd1' });
    r.authenticate('d1', token);
    r.updateDevice('d1', { tags: { a: 'b' } });
    const t = Date.now() - 5000;
    r.seen('d1', t);
    const res = r.authenticate('d1', token);
    expect(res.ok && res.device).toMatchObject({ tags: { a: 'b' }, lastSeen: t });
  });
});

describe('provisioning', () => {
  test('off without a key: forbidden (403)', () => {
    const e = refusal(() => reg().provision('anything', { id: 'd1' }));
    expect([e.code, e.status, e.message]).toEqual(['forbidden', 403, 'provisioning is off: no provisioning key is configured']);
    expect(refusal(() => reg({ provisioningKey: '' }, path.join(dir, 'other.json')).provision('', { id: 'd1' })).message).toBe('provisioning is off: no provisioning key is configured');
  });

  test('with a key: a wrong key is forbidden, the right one registers the device and gives its token', () => {
    const r = reg({ provisioningKey: 'let-me-in' });
    for (const k of ['let-me-i', 'let-me-inn', '', 'LET-ME-IN', undefined, 5]) {
      const e = refusal(() => r.provision(k as never, { id: 'd1' }));
      expect([e.code, e.message]).toEqual(['forbidden', 'wrong provisioning key']);
    }
    expect(r.size.devices).toBe(0);
    const { device, token } = r.provision('let-me-in', { id: 'd1', type: 'pico' });
    expect(device).toMatchObject({ id: 'd1', type: 'pico', hasToken: true });
    expect(r.authenticate('d1', token).ok).toBe(true);
    expect(refusal(() => r.provision('let-me-in', { id: 'd1' })).code).toBe('conflict');
    expect(refusal(() => r.provision('let-me-in', { id: 'bad id' })).code).toBe('invalid');
  });

  test('the key belongs to the handle: another opener of the same file has its own (or none)', () => {
    const a = reg({ provisioningKey: 'key-a' });
    const b = reg({ provisioningKey: 'key-b' });
    const c = reg();
    expect(a.provision('key-a', { id: 'd1' }).device.id).toBe('d1');
    expect(refusal(() => a.provision('key-b', { id: 'd2' })).code).toBe('forbidden');
    expect(b.provision('key-b', { id: 'd2' }).device.id).toBe('d2');
    expect(refusal(() => c.provision('key-a', { id: 'd3' })).message).toBe('provisioning is off: no provisioning key is configured');
    expect(c.size.devices).toBe(2);
  });
});

describe('streams', () => {
  const SCHEMA = { type: 'object', required: ['temperature'], properties: { temperature: { type: 'number', maximum: 100 }, at: { type: 'string', format: 'date-time' } } };

  // Regression, fixed: a schema (or any object) made in a Function node's sandbox, another vm realm, was refused as
  // "must be a JSON Schema object or null, got an object" (its prototype is that realm's Object.prototype).
  test('a schema made in another realm (a Function node) is taken', () => {
    const r = reg();
    r.createDevice({ id: 'd1' });
    const schema = vm.runInNewContext(`(${JSON.stringify(SCHEMA)})`) as Record<string, unknown>;
    const s = r.createStream({ id: 'from-a-function', schema, device: 'd1' });
    expect(s.schema).toEqual(SCHEMA);
  });

  test('create, get, replace (PUT), delete, list with filters', () => {
    const r = reg();
    r.createDevice({ id: 'd1' });
    const s = r.createStream({ id: 'hall-temps', name: 'Hall temperatures', schema: SCHEMA, device: 'd1' });
    expect(s).toEqual({ id: 'hall-temps', name: 'Hall temperatures', description: '', schema: SCHEMA, device: 'd1', deviceType: null, createdAt: s.createdAt, updatedAt: s.createdAt });
    expect(Object.isFrozen(s.schema)).toBe(true);
    expect(r.getStream('hall-temps')).toEqual(s);
    expect(r.getStream('nope')).toBeUndefined();

    const s2 = r.replaceStream('hall-temps', { description: 'per type now', deviceType: 'pico-w' });
    expect(s2).toEqual({ id: 'hall-temps', name: 'hall-temps', description: 'per type now', schema: null, device: null, deviceType: 'pico-w', createdAt: s.createdAt, updatedAt: s2.updatedAt });
    r.createStream({ id: 'other', device: 'd1' });
    r.createStream({ id: 'free' });
    expect(r.listStreams().items.map((x) => x.id)).toEqual(['free', 'hall-temps', 'other']);
    expect(r.listStreams({ device: 'd1' }).items.map((x) => x.id)).toEqual(['other']);
    expect(r.listStreams({ deviceType: 'pico-w' }).items.map((x) => x.id)).toEqual(['hall-temps']);
    expect(r.listStreams({ offset: 1, limit: 1 })).toEqual({ items: [r.getStream('hall-temps')], total: 3, offset: 1, limit: 1 });
    expect(r.size.streams).toBe(3);
    expect(r.deleteStream('other')).toBe(true);
    expect(r.deleteStream('other')).toBe(false);
    expect(r.size.streams).toBe(2);
  });

  test('errors: conflict, not_found, schemas that do not compile (with ajv\'s message), owners, fields', () => {
    const r = reg();
    r.createDevice({ id: 'd1' });
    r.createStream({ id: 's1' });
    expect(refusal(() => r.createStream({ id: 's1' })).code).toBe('conflict');
    expect(refusal(() => r.replaceStream('s9', {})).code).toBe('not_found');
    const bad = refusal(() => r.createStream({ id: 's2', schema: { type: 'nonsense' } }));
    expect([bad.code, bad.status]).toEqual(['invalid', 400]);
    expect(bad.message).toMatch(/^schema does not compile: schema is invalid: data\/type must be equal to one of the allowed values/);
    expect(refusal(() => r.createStream({ id: 's2', schema: { $ref: '#/$defs/missing' } })).message).toContain("can't resolve reference #/$defs/missing");
    expect(refusal(() => r.createStream({ id: 's2', schema: { $schema: 'http://json-schema.org/draft-07/schema#' } })).message).toMatch(/^schema does not compile/);
    expect(refusal(() => r.createStream({ id: 's2', schema: 'object' as never })).message).toBe('schema must be a JSON Schema object or null, got a string');
    expect(refusal(() => r.createStream({ id: 's2', schema: JSON.parse('{"properties": {"__proto__": {}}}') as never })).message).toContain('"__proto__"');
    expect(refusal(() => r.createStream({ id: 's2', device: 'ghost' })).message).toBe('owning device "ghost" is not registered');
    expect(refusal(() => r.createStream({ id: 's2', device: 'd1', deviceType: 'pico' })).message).toBe('a stream belongs to a device or to a device type, not both');
    expect(refusal(() => r.createStream({ id: 's2', createdAt: 5 } as never)).message).toBe('stream field "createdAt" is set by the registry and cannot be written');
    expect(refusal(() => r.createStream({ id: 'a/b' })).message).toMatch(/^stream id must be/);
    expect(refusal(() => r.replaceStream('s1', { id: 's2' } as never)).message).toBe('a stream\'s id cannot be changed (from "s1" to "s2")');
    expect(refusal(() => r.listStreams({ device: 'a b' })).code).toBe('invalid');
    expect(r.size.streams).toBe(1);
  });

  test('schemas with an $id can be created, replaced and used again', () => {
    const r = reg();
    const schema = { $id: 'https://example.com/entry', type: 'object' };
    r.createStream({ id: 's1', schema });
    r.replaceStream('s1', { schema });
    expect(r.createStream({ id: 's2', schema }).schema).toEqual(schema);
  });
});

describe('sharing, closing and persistence', () => {
  test('one registry per file: handles see each other\'s changes; the last close releases it', async () => {
    const file = path.join(dir, 'shared.json');
    const a = openRegistry(file, FAST);
    const b = openRegistry(path.join(dir, '.', 'shared.json'), { ...FAST, defaultLivenessTimeout: 60_000 });
    expect(b.problems.some((p) => p.includes('already open with other defaultLivenessTimeout'))).toBe(true);
    expect(b.defaultLivenessTimeout).toBe(300_000);
    a.createDevice({ id: 'd1' });
    expect(b.getDevice('d1')).toBeDefined();
    await a.close();
    await a.close(); // idempotent
    expect(a.closed).toBe(true);
    expect(() => a.getDevice('d1')).toThrow(/closed/);
    expect(b.getDevice('d1')).toBeDefined();
    expect(openRegistryFiles()).toContain(file);
    await b.close();
    expect(openRegistryFiles()).not.toContain(file);
  });

  test('a closing handle removes its listeners', async () => {
    const a = reg();
    const b = reg();
    const heard: string[] = [];
    a.onChange((c) => heard.push(`a:${c.id}`));
    b.onChange((c) => heard.push(`b:${c.id}`));
    await a.close();
    b.createDevice({ id: 'd1' });
    expect(heard).toEqual(['b:d1']);
  });

  test('devices, tokens, streams and lastSeen survive a close and reopen', async () => {
    const file = path.join(dir, 'r.json');
    const r1 = openRegistry(file, FAST);
    const { token } = r1.createDevice({ id: 'd1', tags: { site: 'x' }, metadata: { a: [1, { b: null }] }, location: { lat: 1, lon: 2 } });
    r1.createDevice({ id: 'd2', enabled: false });
    r1.createStream({ id: 's1', schema: { type: 'object' }, device: 'd1' });
    const seenAt = Date.now() - 1000;
    r1.seen('d1', seenAt);
    const d1 = r1.getDevice('d1');
    await r1.close();

    const r2 = openRegistry(file, FAST);
    open.push(r2);
    expect(r2.problems).toEqual([]);
    expect(r2.getDevice('d1')).toEqual({ ...d1, lastSeen: seenAt });
    expect(r2.getDevice('d2')?.enabled).toBe(false);
    expect(r2.getStream('s1')).toMatchObject({ schema: { type: 'object' }, device: 'd1' });
    expect(r2.authenticate('d1', token).ok).toBe(true);
  });

  test('saves are debounced: nothing is written until the delay, one write for many changes', async () => {
    const file = path.join(dir, 'debounce.json');
    const r = openRegistry(file, { ...FAST, saveDelayMs: 200 });
    open.push(r);
    for (let i = 0; i < 20; i++) r.createDevice({ id: `d${i}` });
    expect(fs.existsSync(file)).toBe(false);
    await new Promise((res) => setTimeout(res, 600));
    expect((JSON.parse(fs.readFileSync(file, 'utf8')) as { devices: unknown[] }).devices).toHaveLength(20);
  });

  test('lastSeen alone is saved on the slower seen delay (or with the next change or flush)', async () => {
    const file = path.join(dir, 'seen.json');
    const r = openRegistry(file, { ...FAST, saveDelayMs: 20, seenSaveDelayMs: 3_600_000 });
    open.push(r);
    r.createDevice({ id: 'd1' });
    await r.flush();
    const stored = (): unknown => (JSON.parse(fs.readFileSync(file, 'utf8')) as { devices: Array<{ lastSeen: unknown }> }).devices[0].lastSeen;
    const t = Date.now() - 1000;
    r.seen('d1', t);
    await new Promise((res) => setTimeout(res, 200));
    expect(stored()).toBeNull();
    await r.flush();
    expect(stored()).toBe(t);
  });

  test('a file that is not JSON, or not a registry, is moved aside and reported; the registry starts empty', () => {
    for (const [i, text] of ['{"devices": [', '[1,2]', '{"format": "thingwire-registry", "v": 2, "devices": [], "streams": []}', '{"format": "thingwire-registry", "v": 1, "devices": {}}'].entries()) {
      const file = path.join(dir, `bad${i}.json`);
      fs.writeFileSync(file, text);
      const r = reg({}, file);
      expect(r.size).toEqual({ devices: 0, streams: 0 });
      expect(r.problems).toHaveLength(1);
      expect(r.problems[0]).toMatch(new RegExp(`^registry file ${file.replace(/[.]/g, '\\.')} is unusable \\(.+\\); moved to ${file.replace(/[.]/g, '\\.')}\\.corrupt-\\d+, starting empty$`));
      const aside = fs.readdirSync(dir).filter((f) => f.startsWith(`bad${i}.json.corrupt-`));
      expect(aside).toHaveLength(1);
      expect(fs.readFileSync(path.join(dir, aside[0]), 'utf8')).toBe(text);
      expect(fs.existsSync(file)).toBe(false);
    }
  });

  test('invalid records are skipped and named; the file as it was is kept', () => {
    const file = path.join(dir, 'partial.json');
    const good = { id: 'ok', name: 'ok', type: '', tags: {}, metadata: {}, enabled: true, livenessTimeout: 0, createdAt: 1, updatedAt: 1, lastSeen: null, tokenHash: hashToken('t', 4), tokenRotatedAt: 1 };
    const text = JSON.stringify({
      format: 'thingwire-registry',
      v: 1,
      devices: [good, { ...good, id: 'bad id' }, { ...good, id: 'x', tokenHash: 'plain-token' }, { ...good }, 'junk'],
      streams: [{ id: 's', name: 's', description: '', schema: { type: 'wrong' }, device: null, deviceType: null, createdAt: 1, updatedAt: 1 }],
    });
    fs.writeFileSync(file, text);
    const r = reg({}, file);
    expect(r.listDevices().items.map((d) => d.id)).toEqual(['ok']);
    expect(r.authenticate('ok', 't').ok).toBe(true);
    expect(r.size.streams).toBe(0);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toContain('skipped 5 invalid record(s) (device #1: device id must be');
    expect(r.problems[0]).toContain('device #2: tokenHash is malformed');
    expect(r.problems[0]).toContain('device #3: device "ok" appears twice');
    expect(r.problems[0]).toContain('device #4: not an object but a string');
    expect(r.problems[0]).toContain('stream #0: schema does not compile');
    const copy = fs.readdirSync(dir).filter((f) => f.startsWith('partial.json.rejected-'));
    expect(copy).toHaveLength(1);
    expect(fs.readFileSync(path.join(dir, copy[0]), 'utf8')).toBe(text);
  });

  test('a file that cannot be read throws instead of starting empty over it', () => {
    const file = path.join(dir, 'is-a-dir.json');
    fs.mkdirSync(file);
    expect(() => openRegistry(file)).toThrow(/^cannot read the registry file .*is-a-dir\.json: EISDIR/);
    expect(openRegistryFiles()).not.toContain(file);
  });

  test('bad options are refused', () => {
    expect(() => openRegistry('')).toThrow(TypeError);
    expect(() => openRegistry(path.join(dir, 'o.json'), { defaultLivenessTimeout: 10 })).toThrow(/defaultLivenessTimeout must be a whole number from 1000/);
    expect(() => openRegistry(path.join(dir, 'o.json'), { tokenHashCost: 30 })).toThrow(/tokenHashCost must be a whole number from 1 to 16/);
    expect(() => openRegistry(path.join(dir, 'o.json'), { provisioningKey: 5 as never })).toThrow(TypeError);
  });

  test('a failed save is reported and retried; flush() rejects with the cause', async () => {
    const blocker = path.join(dir, 'blocker');
    const r = reg({}, path.join(blocker, 'registry.json'));
    fs.writeFileSync(blocker, 'a file where a directory should be');
    r.createDevice({ id: 'd1' });
    await expect(r.flush()).rejects.toThrow();
    expect(r.problems.some((p) => p.startsWith(`could not save the registry to ${path.join(blocker, 'registry.json')}`))).toBe(true);
    fs.rmSync(blocker);
    await r.flush();
    expect(fs.existsSync(path.join(blocker, 'registry.json'))).toBe(true);
  });
});

describe('100,000 devices', () => {
  test('a registry of 100,000 devices opens, finds, authenticates, lists and saves', async () => {
    const file = path.join(dir, 'big.json');
    const hash = hashToken('shared-test-token', 1);
    const devices = Array.from({ length: 100_000 }, (_, i) => ({
      id: `dev-${i}`,
      name: `Device ${i}`,
      type: i % 2 ? 'odd' : 'even',
      tags: { site: `site-${i % 100}` },
      metadata: { n: i },
      enabled: true,
      livenessTimeout: 0,
      createdAt: 1,
      updatedAt: 1,
      lastSeen: null,
      tokenHash: hash,
      tokenRotatedAt: 1,
    }));
    fs.writeFileSync(file, JSON.stringify({ format: 'thingwire-registry', v: 1, devices, streams: [] }));
    const r = reg({}, file);
    expect(r.problems).toEqual([]);
    expect(r.size.devices).toBe(100_000);
    expect(r.getDevice('dev-99999')).toMatchObject({ name: 'Device 99999', tags: { site: 'site-99' } });
    expect(r.authenticate('dev-54321', 'shared-test-token').ok).toBe(true);
    expect(r.authenticate('dev-54321', 'shared-test-token').ok).toBe(true);
    expect(r.listDevices({ tag: 'site=site-7', limit: 1000 }).total).toBe(1000);
    expect(r.listDevices({ offset: 99_990 }).items).toHaveLength(10);
    r.createDevice({ id: 'dev-new' });
    await r.flush();
    expect((JSON.parse(fs.readFileSync(file, 'utf8')) as { devices: unknown[] }).devices).toHaveLength(100_001);
  });
});
