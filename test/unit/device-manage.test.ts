/**
 * The thingwire-device node's manage mode (nodes/device/manage.ts) against a real registry:
 * every op with its status code, paging and filters (query values as strings, like an http-in's
 * msg.req.query), and the errors: unknown op 400, bad input 400, not found 404, conflict 409.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deviceQuery, MANAGE_OPS, runManage, streamQuery, type ManageResult } from '../../nodes/device/manage';
import { openRegistry, type RegistryHandle } from '../../nodes/lib/registry/registry';
import type { DeviceRecord, Page, StreamRecord } from '../../nodes/lib/registry/types';

let dir: string;
let reg: RegistryHandle;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-device-manage-'));
  reg = openRegistry(path.join(dir, 'registry.json'), { tokenHashCost: 1 });
});
afterEach(async () => {
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function ok(r: ManageResult): { statusCode: number; payload: unknown } {
  if (!r.ok) throw new Error(`expected success, got ${r.statusCode} ${r.error.code}: ${r.error.message}`);
  return r;
}

function fail(r: ManageResult): { statusCode: number; code: string; message: string; details?: unknown } {
  if (r.ok) throw new Error(`expected an error, got ${r.statusCode}`);
  return { statusCode: r.statusCode, ...r.error };
}

describe('devices', () => {
  test('create (201, token once), get, update, rotate, revoke, delete (204), then 404', () => {
    const created = ok(runManage(reg, { op: 'create', device: { id: 'd1', name: 'One', tags: { site: 'mad' } } }));
    expect(created.statusCode).toBe(201);
    const { device, token } = created.payload as { device: DeviceRecord; token: string };
    expect(device).toMatchObject({ id: 'd1', name: 'One', hasToken: true });
    expect(typeof token).toBe('string');
    expect(reg.authenticate('d1', token).ok).toBe(true);

    expect(ok(runManage(reg, { op: 'get', id: 'd1' }))).toMatchObject({ statusCode: 200, payload: { id: 'd1', name: 'One' } });
    expect(ok(runManage(reg, { op: 'update', id: 'd1', device: { name: 'Uno', enabled: false } }))).toMatchObject({ statusCode: 200, payload: { name: 'Uno', enabled: false } });
    // The id in the body may repeat the request's.
    expect(ok(runManage(reg, { op: 'update', id: 'd1', device: { id: 'd1', enabled: true } })).payload).toMatchObject({ enabled: true });

    const rotated = ok(runManage(reg, { op: 'rotate', id: 'd1' }));
    const next = (rotated.payload as { token: string }).token;
    expect(rotated.statusCode).toBe(200);
    expect(reg.authenticate('d1', token).ok).toBe(false);
    expect(reg.authenticate('d1', next).ok).toBe(true);

    expect(ok(runManage(reg, { op: 'revoke', id: 'd1' }))).toEqual({ ok: true, op: 'revoke', statusCode: 204, payload: null });
    expect(reg.authenticate('d1', next).ok).toBe(false);
    expect(reg.getDevice('d1')!.hasToken).toBe(false);

    expect(ok(runManage(reg, { op: 'delete', id: 'd1' }))).toMatchObject({ statusCode: 204, payload: null });
    for (const op of ['get', 'delete', 'rotate', 'revoke']) expect(fail(runManage(reg, { op, id: 'd1' }))).toMatchObject({ statusCode: 404, code: 'not_found' });
    expect(fail(runManage(reg, { op: 'update', id: 'd1', device: { name: 'x' } }))).toMatchObject({ statusCode: 404, code: 'not_found' });
  });

  test('create takes the id from the request when the body has none', () => {
    expect(ok(runManage(reg, { op: 'create', id: 'd2', device: { name: 'Two' } })).payload).toMatchObject({ device: { id: 'd2' } });
  });

  test('409 for a duplicate; 400 for invalid fields (with the field), mismatched ids, missing bodies and ids', () => {
    ok(runManage(reg, { op: 'create', device: { id: 'd1' } }));
    expect(fail(runManage(reg, { op: 'create', device: { id: 'd1' } }))).toMatchObject({ statusCode: 409, code: 'conflict' });
    expect(fail(runManage(reg, { op: 'create', device: { id: 'bad id' } }))).toMatchObject({ statusCode: 400, code: 'invalid', details: { field: 'id' } });
    expect(fail(runManage(reg, { op: 'create', device: { id: 'd3', livenessTimeout: -1 } }))).toMatchObject({ statusCode: 400, details: { field: 'livenessTimeout' } });
    expect(fail(runManage(reg, { op: 'create', device: { id: 'd3', hasToken: true } }))).toMatchObject({ statusCode: 400, code: 'invalid' });
    expect(fail(runManage(reg, { op: 'create', device: { id: 'd3', __proto__x: 1, ['__proto__']: { polluted: 1 } } }))).toMatchObject({ statusCode: 400 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(fail(runManage(reg, { op: 'create', id: 'd4', device: { id: 'd5' } }))).toMatchObject({ statusCode: 400, message: expect.stringContaining('does not match') });
    expect(fail(runManage(reg, { op: 'create' }))).toMatchObject({ statusCode: 400, message: expect.stringContaining('"device" must be an object') });
    expect(fail(runManage(reg, { op: 'create', device: [] }))).toMatchObject({ statusCode: 400 });
    expect(fail(runManage(reg, { op: 'update', id: 'd1', device: { id: 'other' } }))).toMatchObject({ statusCode: 400 });
    for (const id of [undefined, '', 7, { id: 'd1' }]) expect(fail(runManage(reg, { op: 'get', id }))).toMatchObject({ statusCode: 400, code: 'invalid' });
  });

  test('list: pages in id order with total, filters; string query values; bad values are 400', () => {
    for (let i = 0; i < 25; i++) reg.createDevice({ id: `dev-${String(i).padStart(2, '0')}`, type: i % 2 ? 'odd' : 'even', tags: { site: i < 5 ? 'mad' : 'bcn' }, enabled: i !== 3 });
    const first = ok(runManage(reg, { op: 'list', query: { limit: '10' } })).payload as Page<DeviceRecord>;
    expect(first).toMatchObject({ total: 25, offset: 0, limit: 10 });
    expect(first.items.map((d) => d.id)).toEqual(Array.from({ length: 10 }, (_, i) => `dev-${String(i).padStart(2, '0')}`));
    const last = ok(runManage(reg, { op: 'list', query: { offset: '20', limit: 10 } })).payload as Page<DeviceRecord>;
    expect(last.items.map((d) => d.id)).toEqual(['dev-20', 'dev-21', 'dev-22', 'dev-23', 'dev-24']);
    expect((ok(runManage(reg, { op: 'list' })).payload as Page<DeviceRecord>).limit).toBe(100);
    expect((ok(runManage(reg, { op: 'list', query: { type: 'odd' } })).payload as Page<DeviceRecord>).total).toBe(12);
    expect((ok(runManage(reg, { op: 'list', query: { tag: 'site=mad', enabled: 'false' } })).payload as Page<DeviceRecord>).items.map((d) => d.id)).toEqual(['dev-03']);
    expect((ok(runManage(reg, { op: 'list', query: { q: 'DEV-1' } })).payload as Page<DeviceRecord>).total).toBe(10);

    for (const query of [{ limit: '0' }, { limit: '1001' }, { offset: '-1' }, { offset: '1.5' }, { limit: 'ten' }, { enabled: 'yes' }, { type: ['a', 'b'] }, 'limit=5']) {
      expect(fail(runManage(reg, { op: 'list', query }))).toMatchObject({ statusCode: 400, code: 'invalid' });
    }
  });
});

describe('streams', () => {
  test('createStream (201), getStream, replaceStream, listStreams with filters, deleteStream (204), then 404', () => {
    reg.createDevice({ id: 'd1' });
    const schema = { type: 'object', properties: { t: { type: 'number' } }, required: ['t'] };
    expect(ok(runManage(reg, { op: 'createStream', stream: { id: 's1', name: 'Temp', schema, device: 'd1' } }))).toMatchObject({ statusCode: 201, payload: { id: 's1', schema } });
    ok(runManage(reg, { op: 'createStream', id: 's2', stream: { deviceType: 'pico' } }));
    expect(ok(runManage(reg, { op: 'getStream', id: 's1' })).payload).toMatchObject({ id: 's1', device: 'd1' });
    const replaced = ok(runManage(reg, { op: 'replaceStream', id: 's1', stream: { name: 'Temperature' } })).payload as StreamRecord;
    expect(replaced).toMatchObject({ name: 'Temperature', schema: null, device: null });
    expect((ok(runManage(reg, { op: 'listStreams', query: { deviceType: 'pico' } })).payload as Page<StreamRecord>).items.map((s) => s.id)).toEqual(['s2']);
    expect((ok(runManage(reg, { op: 'listStreams', query: { limit: '1', offset: '1' } })).payload as Page<StreamRecord>)).toMatchObject({ total: 2, items: [{ id: 's2' }] });
    expect(ok(runManage(reg, { op: 'deleteStream', id: 's1' })).statusCode).toBe(204);
    expect(fail(runManage(reg, { op: 'getStream', id: 's1' }))).toMatchObject({ statusCode: 404 });
    expect(fail(runManage(reg, { op: 'deleteStream', id: 's1' }))).toMatchObject({ statusCode: 404 });
    expect(fail(runManage(reg, { op: 'replaceStream', id: 's1', stream: {} }))).toMatchObject({ statusCode: 404 });
  });

  test('409 duplicate, 400 for a schema that does not compile or an unknown owner', () => {
    ok(runManage(reg, { op: 'createStream', stream: { id: 's1' } }));
    expect(fail(runManage(reg, { op: 'createStream', stream: { id: 's1' } }))).toMatchObject({ statusCode: 409 });
    expect(fail(runManage(reg, { op: 'createStream', stream: { id: 's3', schema: { type: 'nonsense' } } }))).toMatchObject({ statusCode: 400, details: { field: 'schema' } });
    expect(fail(runManage(reg, { op: 'createStream', stream: { id: 's3', device: 'ghost' } }))).toMatchObject({ statusCode: 400 });
  });
});

describe('requests', () => {
  test('unknown or missing op, and a payload that is not an object, are 400', () => {
    for (const payload of [{ op: 'drop' }, { op: 'constructor' }, { op: '__proto__' }, {}, null, 'list', [{ op: 'list' }]]) {
      expect(fail(runManage(reg, payload))).toMatchObject({ statusCode: 400, code: 'invalid' });
    }
    expect(fail(runManage(reg, { op: 'drop' })).message).toContain(MANAGE_OPS.join(', '));
  });

  test('the query parsers keep only what was given', () => {
    expect(deviceQuery({})).toEqual({});
    expect(deviceQuery({ offset: 5, limit: '7', type: 'x', tag: 'a=b', enabled: true, q: 'z', other: 'ignored' })).toEqual({ offset: 5, limit: 7, type: 'x', tag: 'a=b', enabled: true, q: 'z' });
    expect(streamQuery({ device: 'd', deviceType: '' })).toEqual({ device: 'd' });
  });

  test('a registry error that is not the request\'s fault is thrown (the node answers 500)', async () => {
    const other = openRegistry(path.join(dir, 'other.json'), { tokenHashCost: 1 });
    await other.close();
    expect(() => runManage(other, { op: 'list' })).toThrow(/closed/);
  });
});
