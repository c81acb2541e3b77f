/**
 * The thingwire-device node's pure helpers around a message: where the token is (msg.token, the
 * HTTP request's headers and query), the provisioning key, stripping credentials, which devices a
 * message carries data from (liveness), and the dialog's settings with their defaults.
 */
import { deviceSettings, DEVICE_DEFAULTS } from '../../nodes/device/config';
import { findProvisioningKey, findToken, stripCredentials } from '../../nodes/device/credentials';
import { deviceIdsOf, MAX_IDS } from '../../nodes/device/ids';

describe('findToken', () => {
  test('msg.token first', () => {
    expect(findToken({ token: 'abc', req: { headers: { authorization: 'Bearer other' } } })).toEqual({ token: 'abc', origin: 'msg.token' });
  });

  test('the Authorization header: Bearer or Token, any case, surrounding spaces', () => {
    expect(findToken({ req: { headers: { authorization: 'Bearer t1' } } })).toEqual({ token: 't1', origin: 'authorization' });
    expect(findToken({ req: { headers: { authorization: 'token t2' } } })).toEqual({ token: 't2', origin: 'authorization' });
    expect(findToken({ req: { headers: { authorization: '  BEARER   t3  ' } } })).toEqual({ token: 't3', origin: 'authorization' });
  });

  test('other schemes and malformed Authorization values are not tokens; the next source is tried', () => {
    expect(findToken({ req: { headers: { authorization: 'Basic dXNlcjpwYXNz' } } })).toBeUndefined();
    expect(findToken({ req: { headers: { authorization: 'Bearer a b' } } })).toBeUndefined();
    expect(findToken({ req: { headers: { authorization: 'Bearer' } } })).toBeUndefined();
    expect(findToken({ req: { headers: { authorization: 'Basic x', 'x-device-token': 'd1' } } })).toEqual({ token: 'd1', origin: 'x-device-token' });
  });

  test('X-Device-Token, X-THINGSPEAKAPIKEY (header names in any case), then ?api_key=', () => {
    expect(findToken({ req: { headers: { 'x-device-token': 'd1', 'x-thingspeakapikey': 'k' } } })).toEqual({ token: 'd1', origin: 'x-device-token' });
    expect(findToken({ req: { headers: { 'X-Device-Token': 'd2' } } })).toEqual({ token: 'd2', origin: 'x-device-token' });
    expect(findToken({ req: { headers: { 'X-THINGSPEAKAPIKEY': 'ts' } } })).toEqual({ token: 'ts', origin: 'x-thingspeakapikey' });
    expect(findToken({ req: { headers: {}, query: { api_key: 'q1' } } })).toEqual({ token: 'q1', origin: 'api_key' });
    expect(findToken({ req: { query: { api_key: 'q2' } } })).toEqual({ token: 'q2', origin: 'api_key' });
  });

  test('no token: nothing, empty strings, non-strings, repeated headers (arrays), inherited query keys', () => {
    expect(findToken({})).toBeUndefined();
    expect(findToken({ token: '' })).toBeUndefined();
    expect(findToken({ token: 42 })).toBeUndefined();
    expect(findToken({ req: 'GET /' })).toBeUndefined();
    expect(findToken({ req: { headers: { 'x-device-token': ['a', 'b'] } } })).toBeUndefined();
    expect(findToken({ req: { query: { api_key: ['a', 'b'] } } })).toBeUndefined();
    expect(findToken({ req: { query: Object.create({ api_key: 'inherited' }) as object } })).toBeUndefined();
  });
});

describe('provisioning key and stripping', () => {
  test('findProvisioningKey takes non-empty strings only', () => {
    expect(findProvisioningKey({ provisioningKey: 'pk' })).toBe('pk');
    expect(findProvisioningKey({ provisioningKey: '' })).toBeUndefined();
    expect(findProvisioningKey({ provisioningKey: { k: 1 } })).toBeUndefined();
  });

  test('stripCredentials removes msg.token and msg.provisioningKey, nothing else', () => {
    const msg: Record<string, unknown> = { token: 't', provisioningKey: 'k', payload: 1, req: { headers: { authorization: 'Bearer t' } } };
    stripCredentials(msg);
    expect(msg).toEqual({ payload: 1, req: { headers: { authorization: 'Bearer t' } } });
  });
});

describe('deviceIdsOf', () => {
  test('msg.device.id (set by an authenticating node) wins, then the keys of msg.devices', () => {
    expect(deviceIdsOf({ device: { id: 'a' }, payload: { device: 'b' } }, 'payload', 'devices')).toEqual(['a']);
    expect(deviceIdsOf({ devices: { a: {}, b: {} }, payload: [] }, 'payload', 'devices')).toEqual(['a', 'b']);
  });

  test('from the payload: an object or each element of an array, distinct, invalid ids skipped', () => {
    expect(deviceIdsOf({ payload: { device: 'x' } }, 'payload', 'devices')).toEqual(['x']);
    expect(deviceIdsOf({ payload: [{ device: 'x' }, { device: 'y' }, { device: 'x' }, { device: '../etc' }, 5, null] }, 'payload', 'devices')).toEqual(['x', 'y']);
    expect(deviceIdsOf({ payload: 'text' }, 'payload', 'devices')).toEqual([]);
    expect(deviceIdsOf({ payload: { device: { id: 'x' } } }, 'payload', 'devices')).toEqual([]);
  });

  test('from the topic (with its prefix) or msg.deviceId', () => {
    expect(deviceIdsOf({ topic: 'devices/pico-1/temp', payload: 21.5 }, 'topic', 'devices')).toEqual(['pico-1']);
    expect(deviceIdsOf({ topic: 'site/a/devices/pico-1/temp' }, 'topic', 'site/a/devices')).toEqual(['pico-1']);
    expect(deviceIdsOf({ topic: 'other/pico-1/temp' }, 'topic', 'devices')).toEqual([]);
    expect(deviceIdsOf({ topic: 'devices/bad id/temp' }, 'topic', 'devices')).toEqual([]);
    expect(deviceIdsOf({ deviceId: 'm1' }, 'msg', 'devices')).toEqual(['m1']);
    expect(deviceIdsOf({ deviceId: 7 }, 'msg', 'devices')).toEqual([]);
  });

  test('a huge batch yields at most MAX_IDS ids', () => {
    const payload = Array.from({ length: MAX_IDS + 50 }, (_, i) => ({ device: `d${i}` }));
    expect(deviceIdsOf({ payload }, 'payload', 'devices')).toHaveLength(MAX_IDS);
  });
});

describe('deviceSettings', () => {
  test('defaults for a bare config', () => {
    expect(deviceSettings({ id: 'n' })).toEqual(DEVICE_DEFAULTS);
    expect(DEVICE_DEFAULTS).toMatchObject({ mode: 'auth', requireToken: true, idFrom: 'payload', provision: false, persist: true, catchRejects: false });
  });

  test('values from the dialog (booleans as strings too); unknown values fall back to defaults', () => {
    expect(deviceSettings({ id: 'n', mode: 'liveness', requireToken: 'false', idFrom: 'topic', topicPrefix: '/site/devices/', provision: 'true', persist: false, catchRejects: true })).toEqual({
      mode: 'liveness',
      requireToken: false,
      idFrom: 'topic',
      tokenFrom: 'msg',
      topicPrefix: 'site/devices',
      provision: true,
      unknown: 'reject',
      persist: false,
      catchRejects: true,
    });
    expect(deviceSettings({ id: 'n', mode: 'nonsense', idFrom: '__proto__', topicPrefix: '  ' })).toMatchObject({ mode: 'auth', idFrom: 'payload', topicPrefix: 'devices' });
  });
});
