/**
 * The thingwire-device node's authenticate step (nodes/device/auth.ts) against a real registry
 * (nodes/lib/registry/registry.ts, in a temp file): tokens, unknown and disabled devices, the three
 * id sources, batches (several devices, foreign devices, bad elements), provisioning, event times
 * for registry.seen(), the enrichment copy, and unknown devices passed on (unknown 'pass').
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { authenticate, deviceInfo, eventTime, MAX_BATCH, type AuthInput, type AuthOptions } from '../../nodes/device/auth';
import { DEVICE_DEFAULTS, deviceSettings } from '../../nodes/device/config';
import { openRegistry, type RegistryHandle } from '../../nodes/lib/registry/registry';

const NOW = Date.UTC(2026, 10, 24, 12);
const TOKEN_OPTS: AuthOptions = { requireToken: true, idFrom: 'payload', topicPrefix: 'devices', provision: false };
const BROKER_OPTS: AuthOptions = { ...TOKEN_OPTS, requireToken: false };

let dir: string;
let reg: RegistryHandle;
let tokens: Record<string, string>;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-device-auth-'));
  reg = openRegistry(path.join(dir, 'registry.json'), { tokenHashCost: 1, provisioningKey: 'prov-key' });
  tokens = {};
  for (const id of ['a', 'b', 'off']) tokens[id] = reg.createDevice({ id, name: `Device ${id}`, type: 'pico', tags: { site: 'mad' }, metadata: { fw: { v: 2 } }, location: { name: 'lab', lat: 40.4, lon: -3.7 } }).token;
  reg.updateDevice('off', { enabled: false });
});
afterEach(async () => {
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function run(input: Partial<AuthInput>, opts: Partial<AuthOptions> = {}): ReturnType<typeof authenticate> {
  return authenticate(reg, { payload: undefined, now: NOW, ...input }, { ...TOKEN_OPTS, ...opts });
}

const reading = (device: unknown, ts: unknown = NOW - 1000): Record<string, unknown> => ({ device, ts, metrics: { t: 1 } });

describe('with a token, id from the payload', () => {
  test('the right token lets a reading through with its device', () => {
    const r = run({ payload: reading('a'), token: tokens.a });
    expect(r).toMatchObject({ batch: false, accepted: [0], rejects: [], whole: false, provisioned: [] });
    expect(r.devices.map((d) => d.id)).toEqual(['a']);
    expect([...r.seen]).toEqual([['a', NOW - 1000]]);
  });

  test('a wrong, missing or over-long token is unauthorized; the message is rejected whole', () => {
    for (const token of [tokens.b, undefined, 'x'.repeat(100_000)]) {
      const r = run({ payload: reading('a'), token });
      expect(r).toMatchObject({ accepted: [], whole: true, devices: [] });
      expect(r.rejects).toEqual([{ code: 'unauthorized', message: expect.any(String) }]);
      expect(r.seen.size).toBe(0);
    }
  });

  test('unknown and disabled devices', () => {
    expect(run({ payload: reading('ghost'), token: tokens.a }).rejects[0].code).toBe('unknown_device');
    expect(run({ payload: reading('off'), token: tokens.off }).rejects[0].code).toBe('device_disabled');
  });

  test('not a reading, no device, a bad device id', () => {
    expect(run({ payload: 42, token: tokens.a }).rejects).toEqual([{ code: 'not_a_reading', message: expect.stringContaining('number') }]);
    expect(run({ payload: { metrics: {} }, token: tokens.a }).rejects).toEqual([{ code: 'invalid_device', message: 'the reading has no "device" id' }]);
    expect(run({ payload: reading('no spaces'), token: tokens.a }).rejects[0].code).toBe('invalid_device');
    expect(run({ payload: reading({ id: 'a' }), token: tokens.a }).rejects[0].code).toBe('invalid_device');
  });

  test('a batch speaks for its first device: readings of another one are device_mismatch, bad elements rejected alone', () => {
    const r = run({ payload: [reading('a', NOW - 5000), reading('b'), 'junk', reading('a', NOW - 2000), { metrics: {} }], token: tokens.a });
    expect(r.batch).toBe(true);
    expect(r.whole).toBe(false);
    expect(r.accepted).toEqual([0, 3]);
    expect(r.rejects.map((x) => [x.index, x.code])).toEqual([
      [1, 'device_mismatch'],
      [2, 'not_a_reading'],
      [4, 'invalid_device'],
    ]);
    expect([...r.seen]).toEqual([['a', NOW - 2000]]);
  });

  test('a batch whose first device fails authentication is rejected whole', () => {
    const r = run({ payload: [reading('b'), reading('a')], token: tokens.a });
    expect(r).toMatchObject({ whole: true, accepted: [] });
    expect(r.rejects).toEqual([{ code: 'unauthorized', message: expect.any(String) }]);
  });

  test('batches: empty, too large', () => {
    expect(run({ payload: [], token: tokens.a }).rejects[0].code).toBe('not_a_reading');
    const big = run({ payload: new Array(MAX_BATCH + 1).fill(reading('a')), token: tokens.a });
    expect(big).toMatchObject({ whole: true, rejects: [{ code: 'payload_too_large' }] });
  });
});

describe('id from the topic or msg.deviceId', () => {
  test('the topic names the device; any payload passes; readings naming another device are device_mismatch', () => {
    const opts = { idFrom: 'topic' as const };
    expect(run({ topic: 'devices/a/temp', payload: 21.5, token: tokens.a }, opts)).toMatchObject({ accepted: [0], rejects: [] });
    expect(run({ topic: 'devices/a/temp', payload: Buffer.from('21.5'), token: tokens.a }, opts).accepted).toEqual([0]);
    const r = run({ topic: 'devices/a/telemetry', payload: [reading('a'), reading('b'), { metrics: { t: 2 } }], token: tokens.a }, opts);
    expect(r.accepted).toEqual([0, 2]);
    expect(r.rejects).toEqual([{ code: 'device_mismatch', message: expect.stringContaining('"b"'), index: 1 }]);
  });

  test('a bad or missing topic is invalid_device; a token of another device is unauthorized', () => {
    const opts = { idFrom: 'topic' as const };
    expect(run({ topic: 'sensors/a/temp', payload: 1, token: tokens.a }, opts).rejects[0].code).toBe('invalid_device');
    expect(run({ topic: undefined, payload: 1, token: tokens.a }, opts).rejects[0].code).toBe('invalid_device');
    expect(run({ topic: 'devices/a b/temp', payload: 1, token: tokens.a }, opts).rejects[0].code).toBe('invalid_device');
    expect(run({ topic: 'devices/a/temp', payload: 1, token: tokens.b }, opts).rejects[0].code).toBe('unauthorized');
  });

  test('msg.deviceId', () => {
    const opts = { idFrom: 'msg' as const };
    expect(run({ deviceId: 'b', payload: { t: 1 }, token: tokens.b }, opts).accepted).toEqual([0]);
    expect(run({ deviceId: undefined, payload: { t: 1 }, token: tokens.b }, opts).rejects[0]).toEqual({ code: 'invalid_device', message: 'msg.deviceId is not set' });
    expect(run({ deviceId: ['b'], payload: { t: 1 }, token: tokens.b }, opts).rejects[0].code).toBe('invalid_device');
  });
});

describe('without a token (the broker authenticated the device)', () => {
  test('registered and enabled is enough; each device of a batch is checked on its own', () => {
    const r = authenticate(reg, { payload: [reading('a'), reading('ghost'), reading('b'), reading('off'), reading('a')], now: NOW }, BROKER_OPTS);
    expect(r.accepted).toEqual([0, 2, 4]);
    expect(r.rejects.map((x) => [x.index, x.code])).toEqual([
      [1, 'unknown_device'],
      [3, 'device_disabled'],
    ]);
    expect(r.devices.map((d) => d.id)).toEqual(['a', 'b']);
  });

  test('from the topic: an unknown or disabled source rejects the message whole', () => {
    const opts = { ...BROKER_OPTS, idFrom: 'topic' as const };
    expect(authenticate(reg, { topic: 'devices/a/x', payload: 1, now: NOW }, opts).accepted).toEqual([0]);
    expect(authenticate(reg, { topic: 'devices/off/x', payload: 1, now: NOW }, opts)).toMatchObject({ whole: true, rejects: [{ code: 'device_disabled' }] });
  });
});

describe('provisioning', () => {
  test('off: an unknown device with a key is still unknown', () => {
    expect(run({ payload: reading('new-1'), provisioningKey: 'prov-key' }).rejects[0].code).toBe('unknown_device');
    expect(reg.getDevice('new-1')).toBeUndefined();
  });

  test('on: the right key registers the device and returns its token once; it then authenticates with it', () => {
    const r = run({ payload: reading('new-1'), provisioningKey: 'prov-key' }, { provision: true });
    expect(r.accepted).toEqual([0]);
    expect(r.provisioned).toHaveLength(1);
    expect(r.provisioned[0].device.id).toBe('new-1');
    const token = r.provisioned[0].token;
    expect(run({ payload: reading('new-1'), token }).accepted).toEqual([0]);
  });

  test('on: a wrong key is unauthorized and registers nothing; known devices still need their token', () => {
    expect(run({ payload: reading('new-2'), provisioningKey: 'nope' }, { provision: true }).rejects[0].code).toBe('unauthorized');
    expect(reg.getDevice('new-2')).toBeUndefined();
    expect(run({ payload: reading('a'), provisioningKey: 'prov-key' }, { provision: true }).rejects[0].code).toBe('unauthorized');
  });

  test('on, without a token: each unknown device of a batch is registered', () => {
    const r = authenticate(reg, { payload: [reading('n1'), reading('n2'), reading('a')], provisioningKey: 'prov-key', now: NOW }, { ...BROKER_OPTS, provision: true });
    expect(r.accepted).toEqual([0, 1, 2]);
    expect(r.provisioned.map((p) => p.device.id)).toEqual(['n1', 'n2']);
  });
});

describe('eventTime and deviceInfo', () => {
  test('ms or ISO ts when plausible, never after now; else now', () => {
    expect(eventTime({ ts: NOW - 10 }, NOW)).toBe(NOW - 10);
    expect(eventTime({ ts: new Date(NOW - 500).toISOString() }, NOW)).toBe(NOW - 500);
    expect(eventTime({ ts: NOW + 60_000 }, NOW)).toBe(NOW);
    for (const ts of [undefined, 'soon', (NOW - 10) / 1000, NaN, Infinity, 'x'.repeat(100), { a: 1 }]) expect(eventTime({ ts }, NOW)).toBe(NOW);
    expect(eventTime(21.5, NOW)).toBe(NOW);
  });

  test('deviceInfo: the description only, as a mutable copy (the registry hands out frozen records)', () => {
    const rec = reg.getDevice('a')!;
    const info = deviceInfo(rec);
    expect(info).toEqual({ id: 'a', name: 'Device a', type: 'pico', tags: { site: 'mad' }, metadata: { fw: { v: 2 } }, location: { name: 'lab', lat: 40.4, lon: -3.7 } });
    expect(Object.keys(info).sort()).toEqual(['id', 'location', 'metadata', 'name', 'tags', 'type']);
    (info.metadata.fw as { v: number }).v = 3;
    info.tags.site = 'bcn';
    expect(reg.getDevice('a')!.metadata).toEqual({ fw: { v: 2 } });
    expect(reg.getDevice('a')!.tags).toEqual({ site: 'mad' });
  });
});

describe("unknown devices: 'pass'", () => {
  const PASS: Partial<AuthOptions> = { unknown: 'pass' };

  test('the setting: reject unless the dialog says pass', () => {
    expect(DEVICE_DEFAULTS.unknown).toBe('reject');
    expect(deviceSettings({ id: 'n', unknown: 'pass' }).unknown).toBe('pass');
    for (const unknown of [undefined, '', 'reject', 'PASS', '__proto__']) expect(deviceSettings({ id: 'n', unknown }).unknown).toBe('reject');
  });

  test('by default an unregistered device is still unknown_device', () => {
    const r = authenticate(reg, { payload: reading('ghost'), now: NOW }, BROKER_OPTS);
    expect(r).toMatchObject({ whole: true, accepted: [], passed: [], unknown: [], rejects: [{ code: 'unknown_device' }] });
  });

  test('without a token: a mixed batch keeps registered devices with their records, passes unregistered ones, rejects disabled ones', () => {
    const r = authenticate(reg, { payload: [reading('a', NOW - 3000), reading('ghost'), reading('b'), reading('off'), reading('ghost-2'), reading('ghost'), reading('a', NOW - 2000)], now: NOW }, { ...BROKER_OPTS, ...PASS });
    expect(r.whole).toBe(false);
    expect(r.accepted).toEqual([0, 1, 2, 4, 5, 6]);
    expect(r.passed).toEqual([1, 4, 5]);
    expect(r.unknown).toEqual(['ghost', 'ghost-2']);
    expect(r.devices.map((d) => d.id)).toEqual(['a', 'b']);
    expect(r.rejects).toEqual([{ code: 'device_disabled', message: expect.stringContaining('"off"'), index: 3 }]);
    // Nothing to note for devices the registry does not have.
    expect([...r.seen]).toEqual([
      ['a', NOW - 2000],
      ['b', NOW - 1000],
    ]);
    expect(reg.getDevice('ghost')).toBeUndefined();
  });

  test('one reading of an unregistered device passes; a disabled one is still rejected', () => {
    expect(authenticate(reg, { payload: reading('ghost'), now: NOW }, { ...BROKER_OPTS, ...PASS })).toMatchObject({ whole: false, accepted: [0], passed: [0], unknown: ['ghost'], devices: [], rejects: [] });
    expect(authenticate(reg, { payload: reading('off'), now: NOW }, { ...BROKER_OPTS, ...PASS })).toMatchObject({ whole: true, accepted: [], passed: [], rejects: [{ code: 'device_disabled' }] });
  });

  test('with a token: only an unregistered device passes; a wrong or missing token of a registered one is still unauthorized', () => {
    expect(run({ payload: reading('ghost'), token: 'anything' }, PASS)).toMatchObject({ accepted: [0], passed: [0], unknown: ['ghost'], devices: [] });
    expect(run({ payload: reading('ghost') }, PASS)).toMatchObject({ accepted: [0], passed: [0] });
    for (const token of [tokens.b, 'wrong', undefined]) {
      const r = run({ payload: reading('a'), token }, PASS);
      expect(r).toMatchObject({ whole: true, accepted: [], passed: [], unknown: [] });
      expect(r.rejects[0].code).toBe('unauthorized');
    }
    expect(run({ payload: reading('off'), token: tokens.off }, PASS).rejects[0].code).toBe('device_disabled');
    expect(run({ payload: reading('a'), token: tokens.a }, PASS)).toMatchObject({ accepted: [0], passed: [], unknown: [] });
  });

  test('with a token, a batch led by an unregistered device passes its own readings; readings of registered devices in it are device_mismatch', () => {
    const r = run({ payload: [reading('ghost'), reading('a'), reading('ghost')], token: tokens.a }, PASS);
    expect(r.accepted).toEqual([0, 2]);
    expect(r.passed).toEqual([0, 2]);
    expect(r.rejects.map((x) => [x.index, x.code])).toEqual([[1, 'device_mismatch']]);
    expect(r.devices).toEqual([]);
  });

  test('from the topic: an unregistered source passes the message whole, readings naming another device are still device_mismatch', () => {
    const opts = { ...BROKER_OPTS, ...PASS, idFrom: 'topic' as const };
    expect(authenticate(reg, { topic: 'devices/ghost/temperature', payload: 21.5, now: NOW }, opts)).toMatchObject({ accepted: [0], passed: [0], unknown: ['ghost'], rejects: [] });
    const r = authenticate(reg, { topic: 'devices/ghost/telemetry', payload: [reading('ghost'), reading('a')], now: NOW }, opts);
    expect(r).toMatchObject({ accepted: [0], passed: [0], rejects: [{ code: 'device_mismatch', index: 1 }] });
    expect(authenticate(reg, { topic: 'devices/off/temperature', payload: 1, now: NOW }, opts)).toMatchObject({ whole: true, rejects: [{ code: 'device_disabled' }] });
  });

  test('provisioning comes first: the right key registers the device, a wrong key is unauthorized, no key passes', () => {
    const opts = { ...PASS, provision: true };
    const ok = run({ payload: reading('new-1'), provisioningKey: 'prov-key' }, opts);
    expect(ok).toMatchObject({ accepted: [0], passed: [], unknown: [] });
    expect(ok.provisioned.map((p) => p.device.id)).toEqual(['new-1']);
    expect(run({ payload: reading('new-2'), provisioningKey: 'nope' }, opts).rejects[0].code).toBe('unauthorized');
    expect(reg.getDevice('new-2')).toBeUndefined();
    expect(run({ payload: reading('new-3') }, opts)).toMatchObject({ accepted: [0], passed: [0], unknown: ['new-3'], provisioned: [] });
    expect(reg.getDevice('new-3')).toBeUndefined();
  });
});
