/**
 * runtime/broker.ts BrokerAuth: who the embedded broker lets in and what each may publish and
 * subscribe to, against a real registry file (no sockets); ownTopic, isLocalAddress, LogLimiter.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openRegistry, type RegistryHandle } from '../../nodes/lib/registry/registry';
import { BrokerAuth, LogLimiter, SERVICE_USER, isLocalAddress, ownTopic, type BrokerAuthOptions, type ConnectDecision, type Principal } from '../../runtime/broker';

const KEY = 'the-provisioning-key-0001';
const REMOTE = '203.0.113.7';
const local = (a: string | undefined): boolean => a === '127.0.0.1';

let dir: string;
let reg: RegistryHandle;
let tokens: Record<string, string>;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-broker-auth-'));
  reg = openRegistry(path.join(dir, 'registry.json'), { provisioningKey: KEY, tokenHashCost: 1 });
  tokens = {};
  for (const id of ['dev-a', 'dev-b', 'dev-off']) tokens[id] = reg.createDevice({ id }).token;
  reg.updateDevice('dev-off', { enabled: false });
});

afterEach(async () => {
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function auth(o: Partial<BrokerAuthOptions> = {}): BrokerAuth {
  return new BrokerAuth({ registry: reg, provisioningKey: KEY, allowAnonymous: false, service: { username: SERVICE_USER, password: 'svc-secret' }, isLocal: local, ...o });
}

const refused = (d: ConnectDecision): [number, string] | 'ok' => (d.ok ? 'ok' : [d.code, d.reason]);

describe('devices', () => {
  test('id + token is let in as that device; its token in a Buffer too', () => {
    expect(auth().connect({ username: 'dev-a', password: tokens['dev-a'], remoteAddress: REMOTE })).toEqual({ ok: true, principal: { kind: 'device', id: 'dev-a' } });
    expect(auth().connect({ username: 'dev-a', password: Buffer.from(tokens['dev-a']) }).ok).toBe(true);
  });

  test('wrong token, unknown, disabled, no password, not a device id: refused with the reason', () => {
    const a = auth();
    expect(refused(a.connect({ username: 'dev-a', password: tokens['dev-b'] }))).toEqual([4, 'wrong token']);
    expect(refused(a.connect({ username: 'ghost', password: tokens['dev-a'] }))).toEqual([4, 'unknown device']);
    expect(refused(a.connect({ username: 'dev-off', password: tokens['dev-off'] }))).toEqual([5, 'device disabled']);
    expect(refused(a.connect({ username: 'dev-a' }))).toEqual([4, 'no password (the device token) was given']);
    expect(refused(a.connect({ username: 'dev-a', password: '' }))).toEqual([4, 'no password (the device token) was given']);
    for (const u of ['a/b', '+', '#', '__proto__x/', 'x'.repeat(200), ' dev-a']) {
      expect(refused(a.connect({ username: u, password: tokens['dev-a'] }))).toEqual([4, 'the user name is not a device id']);
    }
  });

  test('without a registry no device gets in', () => {
    expect(refused(auth({ registry: undefined }).connect({ username: 'dev-a', password: tokens['dev-a'] }))).toEqual([5, 'no device registry is open']);
  });

  test('a last will must be under its own topics', () => {
    const a = auth();
    expect(a.connect({ username: 'dev-a', password: tokens['dev-a'], willTopic: 'devices/dev-a/status' }).ok).toBe(true);
    for (const t of ['devices/dev-b/status', 'devices/dev-a', 'devices/dev-a/', 'other/dev-a/status', 'devices/dev-ab/status']) {
      expect(refused(a.connect({ username: 'dev-a', password: tokens['dev-a'], willTopic: t }))[0]).toBe(5);
    }
  });

  test('publish only under devices/{id}/, no wildcards; subscribe only to filters under it', () => {
    const a = auth();
    const p: Principal = { kind: 'device', id: 'dev-a' };
    for (const t of ['devices/dev-a/telemetry', 'devices/dev-a/temperature', 'devices/dev-a/status', 'devices/dev-a/x/y']) expect([t, a.canPublish(p, t)]).toEqual([t, true]);
    for (const t of ['devices/dev-b/telemetry', 'devices/dev-a', 'devices/dev-a/', 'devices/dev-ab/x', 'devices/dev-a/+', 'x/devices/dev-a/t', '$SYS/x', 'Devices/dev-a/t']) {
      expect([t, a.canPublish(p, t)]).toEqual([t, false]);
    }
    for (const f of ['devices/dev-a/#', 'devices/dev-a/+', 'devices/dev-a/commands']) expect([f, a.canSubscribe(p, f)]).toEqual([f, true]);
    for (const f of ['#', '+/+/+', 'devices/+/telemetry', 'devices/#', 'devices/dev-b/#', 'devices/dev-a', '$SYS/#']) expect([f, a.canSubscribe(p, f)]).toEqual([f, false]);
  });
});

describe('provisioning', () => {
  test('the right key registers an unknown device (token not returned) and lets it in; it comes back with the key', () => {
    const a = auth();
    expect(a.connect({ username: 'new-1', password: `provision:${KEY}` })).toEqual({ ok: true, principal: { kind: 'device', id: 'new-1' }, provisioned: true });
    const d = reg.getDevice('new-1')!;
    expect(d.metadata).toEqual({ provisionedVia: 'mqtt' });
    expect(d.hasToken).toBe(true);
    expect(a.connect({ username: 'new-1', password: `provision:${KEY}` })).toEqual({ ok: true, principal: { kind: 'device', id: 'new-1' } });
  });

  test('a wrong or empty key, or no key configured: refused, nothing registered', () => {
    expect(refused(auth().connect({ username: 'new-2', password: 'provision:nope' }))).toEqual([4, 'wrong provisioning key']);
    expect(refused(auth().connect({ username: 'new-2', password: 'provision:' }))).toEqual([4, 'wrong provisioning key']);
    expect(refused(auth({ provisioningKey: undefined }).connect({ username: 'new-2', password: `provision:${KEY}` }))).toEqual([4, 'provisioning is off (no THINGWIRE_PROVISIONING_KEY)']);
    expect(reg.getDevice('new-2')).toBeUndefined();
  });

  test('the key does not open a device with a token of its own, nor one whose token an operator rotated, nor a disabled one', () => {
    const a = auth();
    expect(refused(a.connect({ username: 'dev-a', password: `provision:${KEY}` }))[0]).toBe(4);
    a.connect({ username: 'new-3', password: `provision:${KEY}` });
    // A rotation is told apart by its time (tokenRotatedAt > createdAt): let the clock move on.
    const created = Date.now();
    while (Date.now() === created) {
      /* spin for under a millisecond */
    }
    const token = reg.rotateToken('new-3');
    expect(refused(a.connect({ username: 'new-3', password: `provision:${KEY}` }))[0]).toBe(4);
    expect(a.connect({ username: 'new-3', password: token }).ok).toBe(true);
    a.connect({ username: 'new-4', password: `provision:${KEY}` });
    reg.updateDevice('new-4', { enabled: false });
    expect(refused(a.connect({ username: 'new-4', password: `provision:${KEY}` }))).toEqual([5, 'device disabled']);
  });
});

describe('anonymous clients and the service account', () => {
  test('anonymous from this machine: subscribe to anything, publish only alert events, no will; from elsewhere: refused', () => {
    const a = auth();
    const d = a.connect({ remoteAddress: '127.0.0.1' });
    expect(d).toEqual({ ok: true, principal: { kind: 'anonymous', local: true, demo: false } });
    const p = (d as { principal: Principal }).principal;
    expect(a.canSubscribe(p, 'devices/+/+')).toBe(true);
    expect(a.canPublish(p, 'devices/x/telemetry')).toBe(false);
    // The flows publish alert events under alerts/{device}; nothing else, no wildcards.
    expect(a.canPublish(p, 'alerts/pump-1')).toBe(true);
    for (const t of ['alerts/', 'alerts', 'alerts/+', 'alerts/#', 'alertsx/pump-1', 'devices/pump-1/alerts', '$SYS/alerts/x']) expect([t, a.canPublish(p, t)]).toEqual([t, false]);
    expect(refused(a.connect({ remoteAddress: REMOTE }))[0]).toBe(5);
    expect(refused(a.connect({ remoteAddress: undefined }))[0]).toBe(5);
    expect(refused(a.connect({ remoteAddress: '127.0.0.1', willTopic: 'devices/x/status' }))[0]).toBe(5);
    expect(refused(a.connect({ password: 'x', remoteAddress: '127.0.0.1' }))[0]).toBe(4);
  });

  test('THINGWIRE_MQTT_ANONYMOUS: anonymous clients from anywhere publish and subscribe to anything', () => {
    const a = auth({ allowAnonymous: true });
    const d = a.connect({ remoteAddress: REMOTE });
    expect(d.ok).toBe(true);
    const p = (d as { principal: Principal }).principal;
    expect(a.canPublish(p, 'devices/anyone/telemetry')).toBe(true);
    expect(a.canSubscribe(p, '#')).toBe(true);
    // Devices keep their rules.
    expect(refused(a.connect({ username: 'dev-a', password: 'wrong' }))[0]).toBe(4);
  });

  test('the service account: full access with its password, refused without it', () => {
    const a = auth();
    const d = a.connect({ username: SERVICE_USER, password: 'svc-secret', remoteAddress: REMOTE });
    expect(d).toEqual({ ok: true, principal: { kind: 'service' } });
    expect(a.canPublish({ kind: 'service' }, 'devices/dev-b/commands')).toBe(true);
    expect(a.canSubscribe({ kind: 'service' }, '#')).toBe(true);
    expect(refused(a.connect({ username: SERVICE_USER, password: 'svc-secreT' }))).toEqual([4, 'wrong password for the service account']);
    expect(refused(a.connect({ username: SERVICE_USER }))[0]).toBe(4);
    // Without a configured service account the name is just not a device id.
    expect(refused(auth({ service: undefined }).connect({ username: SERVICE_USER, password: 'svc-secret' }))).toEqual([4, 'the user name is not a device id']);
  });
});

test('ownTopic', () => {
  expect(ownTopic('a', 'devices/a/t', false)).toBe(true);
  expect(ownTopic('a', 'devices/a/#', false)).toBe(false);
  expect(ownTopic('a', 'devices/a/#', true)).toBe(true);
  expect(ownTopic('a', 'devices/a/', true)).toBe(false);
  expect(ownTopic('a', undefined as unknown as string, true)).toBe(false);
});

test('isLocalAddress: loopback, IPv4-mapped loopback and this host interface addresses', () => {
  for (const a of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.1.2.3']) expect([a, isLocalAddress(a)]).toEqual([a, true]);
  for (const a of ['203.0.113.7', '::ffff:203.0.113.7', '', undefined, '127.0.0.1.example']) expect([a, isLocalAddress(a)]).toEqual([a, false]);
  const own = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).map((i) => i.address);
  for (const a of own) expect([a, isLocalAddress(a)]).toEqual([a, true]);
});

test('LogLimiter: at most `limit` lines per window, the rest counted once the next window opens', () => {
  const lines: string[] = [];
  let now = 0;
  const l = new LogLimiter((m) => lines.push(m), 3, 1000, () => now);
  for (let i = 0; i < 10; i++) l.note(`refusal ${i}`);
  expect(lines).toEqual(['refusal 0', 'refusal 1', 'refusal 2']);
  now = 1000;
  l.note('refusal 10');
  expect(lines.slice(3)).toEqual(['mqtt: 7 more refusals were not logged (at most 3 lines per 1 s)', 'refusal 10']);
  l.flush();
  expect(lines).toHaveLength(5);
});

describe('topic authorisation under fuzzing', () => {
  /** A small deterministic generator (mulberry32), so a failure names a reproducible case. */
  function rng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const SEGMENTS = ['devices', 'dev-a', 'dev-b', 'dev-a-2', 'dev', '+', '#', '', '$share', '$SYS', 'telemetry', '..', 'dev-a\u0000', 'DEV-A', 'dév-a', ' dev-a', 'dev-a ', 'x'.repeat(300)];

  test('20,000 random topics: a device publishes only to concrete topics under devices/{id}/ and subscribes only to filters there; nothing throws', () => {
    const a = auth();
    const me: Principal = { kind: 'device', id: 'dev-a' };
    const next = rng(20261201);
    let allowedPub = 0;
    let allowedSub = 0;
    for (let i = 0; i < 20_000; i++) {
      const n = 1 + Math.floor(next() * 5);
      // Half start inside the device's own tree, so the allowed side is explored as hard as the refused one.
      const parts: string[] = next() < 0.5 ? ['devices', 'dev-a'] : [];
      for (let k = 0; k < n; k++) parts.push(SEGMENTS[Math.floor(next() * SEGMENTS.length)]);
      const topic = parts.join('/');
      const pub = a.canPublish(me, topic);
      const sub = a.canSubscribe(me, topic);
      if (pub) {
        allowedPub++;
        expect([topic, topic.startsWith('devices/dev-a/') && topic.length > 'devices/dev-a/'.length && !/[+#]/.test(topic)]).toEqual([topic, true]);
      }
      if (sub) {
        allowedSub++;
        expect([topic, topic.startsWith('devices/dev-a/') && topic.length > 'devices/dev-a/'.length]).toEqual([topic, true]);
      }
    }
    // The generator does reach the allowed space (so the checks above ran).
    expect(allowedPub).toBeGreaterThan(1000);
    expect(allowedSub).toBeGreaterThan(allowedPub);
    for (const hostile of [undefined, null, 42, {}, ['devices', 'dev-a', 't']] as unknown[]) {
      expect(a.canPublish(me, hostile as string)).toBe(false);
      expect(a.canSubscribe(me, hostile as string)).toBe(false);
    }
  });
});
