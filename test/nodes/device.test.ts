/**
 * thingwire-device in a real Node-RED runtime (node-red-node-test-helper) with a real
 * thingwire-registry config node in a temp DATA_DIR: authenticate and enrich (tokens from msg and
 * HTTP requests, unknown/disabled devices, batches with foreign devices, no-token mode,
 * provisioning, unknown devices passed on, Catch), manage (CRUD, paging, 4xx), liveness (online/offline once, never-seen,
 * registry changes, restart without repeats or losses, the timer cleared on close), config errors.
 * Liveness timeouts are the registry's minimum (1 s); waits are generous and only "eventually".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import deviceNode from '../../nodes/device/device';
import { MAX_BATCH } from '../../nodes/lib/contract';
import registryNode from '../../nodes/registry/registry';
import type { RegistryNode } from '../../nodes/registry/config';
import type { DeviceRecord, LivenessEvent, Page } from '../../nodes/lib/registry/types';
import {
  TAB,
  errorCalls,
  getNode,
  helper,
  positioned,
  record,
  request,
  setDataDir,
  sleep,
  statusCalls,
  until,
  useHelper,
  useTempDirs,
  withCatalogue,
  type FlowNodeConfig,
  type NodeMsg,
} from './harness';

useHelper();
const tempDir = useTempDirs('device-nodes');

const NODES = [withCatalogue(registryNode), withCatalogue(deviceNode)];
const KEY = 'provisioning-key-for-tests';

let dataDir: string;
beforeEach(() => {
  dataDir = tempDir();
  setDataDir(dataDir);
});

interface Outputs {
  out: NodeMsg[];
  bad: NodeMsg[];
  completes: NodeMsg[];
  caught: NodeMsg[];
}

function flow(config: Partial<FlowNodeConfig>, registry: Partial<FlowNodeConfig> = {}): FlowNodeConfig[] {
  return [
    TAB,
    { id: 'reg', type: 'thingwire-registry', name: '', v: 1, file: '', defaultLivenessTimeout: '1s', ...registry },
    { id: 'n1', type: 'thingwire-device', z: 'tab1', name: '', v: 1, registry: 'reg', mode: 'auth', wires: [['out'], ['bad']], ...config },
    { id: 'out', type: 'helper', z: 'tab1' },
    { id: 'bad', type: 'helper', z: 'tab1' },
    { id: 'complete', type: 'complete', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['completes']] },
    { id: 'completes', type: 'helper', z: 'tab1' },
    { id: 'catch', type: 'catch', z: 'tab1', scope: ['n1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab1' },
  ];
}

async function start(config: Partial<FlowNodeConfig> = {}, registry: Partial<FlowNodeConfig> = {}): Promise<Outputs> {
  await helper.load(NODES, positioned(flow(config, registry)), { reg: { provisioningKey: KEY } });
  return { out: record('out'), bad: record('bad'), completes: record('completes'), caught: record('caught') };
}

/** The registry the flow's config node opened (the real one). */
function registry(): NonNullable<RegistryNode['registry']> {
  const r = (helper.getNode('reg') as unknown as RegistryNode | null)?.registry;
  if (!r) throw new Error('the registry node has no registry');
  return r;
}

let sent = 0;
beforeEach(() => {
  sent = 0;
});

function send(msg: NodeMsg): void {
  sent++;
  getNode('n1').receive(msg);
}

/** Waits until every message sent since start() has been handled (completed or caught). */
async function handled(o: Outputs): Promise<void> {
  await until(`${sent} messages handled`, () => o.completes.length + o.caught.length >= sent);
  await sleep(20);
}

const reading = (device: string, metrics: Record<string, number> = { t: 21.5 }, ts = Date.now() - 1000): Record<string, unknown> => ({ device, ts, metrics });

function lastStatusText(): string | undefined {
  return statusCalls(getNode('n1')).at(-1)?.text;
}

// ---- auth -------------------------------------------------------------------------------------

describe('auth', () => {
  let tokens: Record<string, string>;
  async function startAuth(config: Partial<FlowNodeConfig> = {}): Promise<Outputs> {
    const o = await start({ mode: 'auth', ...config });
    tokens = {};
    for (const id of ['a', 'b', 'off']) {
      tokens[id] = registry().createDevice({ id, name: `Device ${id}`, type: 'pico-w', tags: { site: 'mad' }, metadata: { fw: '1.2' }, location: { name: 'lab' } }).token;
    }
    registry().updateDevice('off', { enabled: false });
    return o;
  }

  test('a good token: output 1 with msg.device, the token removed, last seen noted', async () => {
    const o = await startAuth();
    const ts = Date.now() - 5000;
    send({ payload: reading('a', { t: 1 }, ts), token: tokens.a });
    await handled(o);
    expect(o.bad).toEqual([]);
    expect(o.out).toHaveLength(1);
    const m = o.out[0];
    expect(m.payload).toEqual({ device: 'a', ts, metrics: { t: 1 } });
    expect(m.device).toEqual({ id: 'a', name: 'Device a', type: 'pico-w', tags: { site: 'mad' }, metadata: { fw: '1.2' }, location: { name: 'lab' } });
    expect('token' in m).toBe(false);
    expect(JSON.stringify(m)).not.toContain(tokens.a);
    expect(registry().getDevice('a')!.lastSeen).toBe(ts);
    await until('the status', () => lastStatusText() === '1 ok · 0 rejected');
  });

  test('a bad or missing token, an unknown and a disabled device: output 2 with the reason, never the token', async () => {
    const o = await startAuth();
    send({ payload: reading('a'), token: tokens.b });
    send({ payload: reading('a') });
    send({ payload: reading('ghost'), token: tokens.a });
    send({ payload: reading('off'), token: tokens.off });
    send({ payload: { metrics: { t: 1 } }, token: tokens.a });
    send({ payload: 17, token: tokens.a });
    send({ payload: '{"device": "a", "metrics": ', token: tokens.a });
    await handled(o);
    expect(o.out).toEqual([]);
    expect(o.bad.map((m) => (m.error as { code: string }).code)).toEqual(['unauthorized', 'unauthorized', 'unknown_device', 'device_disabled', 'invalid_device', 'not_a_reading', 'malformed_json']);
    for (const m of o.bad) {
      expect(m.error).toEqual({ code: expect.any(String), message: expect.any(String), source: 'thingwire-device' });
      expect(m.rejects).toEqual([expect.objectContaining({ code: (m.error as { code: string }).code })]);
      expect('token' in m).toBe(false);
      expect('device' in m).toBe(false);
    }
    expect(o.completes).toHaveLength(7);
    expect(o.caught).toEqual([]);
    await until('the status', () => lastStatusText() === '0 ok · 7 rejected');
    expect(statusCalls(getNode('n1')).at(-1)?.fill).toBe('yellow');
  });

  test('tokens from an HTTP request: Authorization Bearer/Token, X-Device-Token, ?api_key=; JSON text payloads parsed', async () => {
    const o = await startAuth();
    send({ payload: reading('a'), req: { headers: { authorization: `Bearer ${tokens.a}` }, query: {} } });
    send({ payload: JSON.stringify(reading('a')), req: { headers: { authorization: `Token ${tokens.a}` } } });
    send({ payload: Buffer.from(JSON.stringify(reading('b'))), req: { headers: { 'x-device-token': tokens.b } } });
    send({ payload: reading('b'), req: { headers: {}, query: { api_key: tokens.b } } });
    send({ payload: reading('b'), req: { headers: { authorization: `Bearer ${tokens.a}` } } });
    await handled(o);
    expect(o.out.map((m) => (m.device as { id: string }).id)).toEqual(['a', 'a', 'b', 'b']);
    expect(o.out[1].payload).toMatchObject({ device: 'a', metrics: { t: 21.5 } });
    expect(o.bad.map((m) => (m.error as { code: string }).code)).toEqual(['unauthorized']);
  });

  test('requireToken off (the broker authenticated): the topic names the device, registered and enabled is enough', async () => {
    const o = await startAuth({ requireToken: false, idFrom: 'topic' });
    send({ topic: 'devices/a/temperature', payload: 21.5 });
    send({ topic: 'devices/off/temperature', payload: 21.5 });
    send({ topic: 'devices/ghost/temperature', payload: 21.5 });
    send({ topic: 'telemetry', payload: 21.5 });
    send({ topic: 'devices/b/telemetry', payload: [reading('b'), reading('a')] });
    await handled(o);
    expect(o.out.map((m) => [(m.device as { id: string }).id, m.payload])).toEqual([
      ['a', 21.5],
      ['b', [reading('b', { t: 21.5 }, (o.out[1].payload as Array<{ ts: number }>)[0].ts)]],
    ]);
    expect(o.bad.map((m) => (m.error as { code: string }).code)).toEqual(['device_disabled', 'unknown_device', 'invalid_device', 'device_mismatch']);
    expect(o.bad[3].rejects).toEqual([expect.objectContaining({ code: 'device_mismatch', index: 1 })]);
  });

  test('a batch with a foreign device: the authenticated readings go on, the foreign ones are rejected with their indexes', async () => {
    const o = await startAuth();
    const batch = [reading('a', { t: 1 }), reading('b', { t: 2 }), reading('a', { t: 3 })];
    send({ payload: batch, token: tokens.a, _msgid: 'm1' });
    await handled(o);
    expect(o.out).toHaveLength(1);
    expect((o.out[0].payload as Array<{ metrics: { t: number } }>).map((r) => r.metrics.t)).toEqual([1, 3]);
    expect((o.out[0].device as { id: string }).id).toBe('a');
    expect(o.bad).toHaveLength(1);
    expect(o.bad[0].payload).toEqual([batch[1]]);
    expect(o.bad[0].rejects).toEqual([{ code: 'device_mismatch', message: expect.stringContaining('"b"'), index: 1 }]);
    expect(o.completes).toHaveLength(1);
  });

  test('without a token, a batch of several devices is checked device by device and carries msg.devices', async () => {
    const o = await startAuth({ requireToken: false });
    send({ payload: [reading('a'), reading('b'), reading('off')] });
    await handled(o);
    expect(Object.keys(o.out[0].devices as object)).toEqual(['a', 'b']);
    expect('device' in o.out[0]).toBe(false);
    expect(o.bad[0].rejects).toEqual([expect.objectContaining({ code: 'device_disabled', index: 2 })]);
  });

  test('provisioning off: an unknown device with the key is rejected; on: it is registered and its token returned once', async () => {
    let o = await startAuth();
    send({ payload: reading('new-1'), provisioningKey: KEY });
    await handled(o);
    expect((o.bad[0].error as { code: string }).code).toBe('unknown_device');
    expect('provisioningKey' in o.bad[0]).toBe(false);
    expect(registry().getDevice('new-1')).toBeUndefined();
    await helper.unload();

    sent = 0;
    o = await start({ mode: 'auth', provision: true });
    send({ payload: reading('new-1'), provisioningKey: 'wrong' });
    send({ payload: reading('new-1'), provisioningKey: KEY });
    await handled(o);
    expect((o.bad[0].error as { code: string }).code).toBe('unauthorized');
    expect(o.out).toHaveLength(1);
    expect('provisioningKey' in o.out[0]).toBe(false);
    const provisioned = o.out[0].provisioned as Array<{ device: { id: string }; token: string }>;
    expect(provisioned.map((p) => p.device.id)).toEqual(['new-1']);
    expect(registry().authenticate('new-1', provisioned[0].token).ok).toBe(true);
    // Registered now: next time it needs its token.
    send({ payload: reading('new-1'), provisioningKey: KEY });
    send({ payload: reading('new-1'), token: provisioned[0].token });
    await handled(o);
    expect((o.bad[1].error as { code: string }).code).toBe('unauthorized');
    expect(o.out).toHaveLength(2);
    expect('provisioned' in o.out[1]).toBe(false);
  });

  test('hostile input: clear rejects, no crash, nothing registered', async () => {
    const o = await startAuth({ provision: true });
    const before = registry().size.devices;
    send({ payload: { device: '__proto__', metrics: { t: 1 } }, token: tokens.a, provisioningKey: KEY });
    send({ payload: '{"__proto__": {"polluted": true}, "device": "constructor", "metrics": {"t": 1}}', token: tokens.a });
    send({ payload: new Array(MAX_BATCH + 1).fill(reading('a')), token: tokens.a });
    send({ payload: [null, [], 'x', { device: 'a'.repeat(500) }], token: tokens.a });
    send({ payload: reading('a'), token: { toString: () => tokens.a } });
    send({ payload: reading('a'), req: { headers: { authorization: ['Bearer x', 'Bearer y'] }, query: { api_key: { $ne: '' } } } });
    await handled(o);
    expect(o.out).toEqual([]);
    expect(o.bad.map((m) => (m.error as { code: string }).code)).toEqual(['invalid_device', 'unknown_device', 'payload_too_large', 'not_a_reading', 'unauthorized', 'unauthorized']);
    expect((o.bad[3].rejects as Array<{ code: string; index: number }>).map((r) => [r.index, r.code])).toEqual([
      [0, 'not_a_reading'],
      [1, 'not_a_reading'],
      [2, 'not_a_reading'],
      [3, 'invalid_device'],
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(registry().size.devices).toBe(before);
    expect(o.caught).toEqual([]);
  });

  test("unknown 'pass': unregistered devices go on without msg.device, registered ones are enriched, disabled ones rejected", async () => {
    const o = await startAuth({ requireToken: false, unknown: 'pass' });
    send({ payload: reading('ghost', { t: 1 }), device: { id: 'stale' } });
    send({ payload: reading('a', { t: 2 }) });
    send({ payload: reading('off', { t: 3 }) });
    // A batch of one registered and one unregistered device: by id, never msg.device for the whole payload.
    const mixed = [reading('a', { t: 4 }), reading('ghost', { t: 5 }), reading('off', { t: 6 }), reading('ghost-2', { t: 7 })];
    send({ payload: mixed });
    send({ payload: [reading('ghost', { t: 8 }), reading('ghost-2', { t: 9 })] });
    send({ payload: [reading('a', { t: 10 }), reading('b', { t: 11 }), reading('ghost', { t: 12 })] });
    await handled(o);

    expect(o.out).toHaveLength(5);
    const [single, known, batch, unknownOnly, several] = o.out;
    expect(single.payload).toEqual(reading('ghost', { t: 1 }, (single.payload as { ts: number }).ts));
    expect('device' in single).toBe(false);
    expect('devices' in single).toBe(false);
    expect(known.device).toMatchObject({ id: 'a', type: 'pico-w', location: { name: 'lab' }, tags: { site: 'mad' } });
    expect((batch.payload as Array<{ metrics: { t: number } }>).map((r) => r.metrics.t)).toEqual([4, 5, 7]);
    expect('device' in batch).toBe(false);
    expect(Object.keys(batch.devices as object)).toEqual(['a']);
    expect((batch.devices as Record<string, { type: string }>).a.type).toBe('pico-w');
    expect((unknownOnly.payload as unknown[]).length).toBe(2);
    expect('device' in unknownOnly || 'devices' in unknownOnly).toBe(false);
    expect(Object.keys(several.devices as object)).toEqual(['a', 'b']);
    expect((several.payload as unknown[]).length).toBe(3);

    expect(o.bad.map((m) => (m.error as { code: string }).code)).toEqual(['device_disabled', 'device_disabled']);
    expect(o.bad[1].payload).toEqual([mixed[2]]);
    expect(o.bad[1].rejects).toEqual([expect.objectContaining({ code: 'device_disabled', index: 2 })]);
    expect(registry().getDevice('ghost')).toBeUndefined();
    // ok: a, a (batch), a and b; passed: ghost, ghost and ghost-2 (batch), 2 + 1 (later batches); rejected: off twice.
    await until('the status', () => lastStatusText() === '4 ok · 6 unknown passed · 2 rejected');
    expect(statusCalls(getNode('n1')).at(-1)?.fill).toBe('yellow');
  });

  test("unknown 'pass' with a token: an unregistered device passes, a registered one with a wrong or no token does not", async () => {
    const o = await startAuth({ unknown: 'pass' });
    send({ payload: reading('ghost'), token: 'whatever' });
    send({ payload: reading('a'), token: tokens.b });
    send({ payload: reading('a') });
    send({ payload: reading('off'), token: tokens.off });
    send({ payload: reading('a'), token: tokens.a });
    await handled(o);
    expect(o.out.map((m) => [(m.payload as { device: string }).device, (m.device as { id?: string } | undefined)?.id])).toEqual([
      ['ghost', undefined],
      ['a', 'a'],
    ]);
    expect(o.out.every((m) => !('token' in m))).toBe(true);
    expect(o.bad.map((m) => (m.error as { code: string }).code)).toEqual(['unauthorized', 'unauthorized', 'device_disabled']);
    await until('the status', () => lastStatusText() === '1 ok · 1 unknown passed · 3 rejected');
  });

  test('catchRejects: a reject also reaches Catch nodes, with its code', async () => {
    const o = await startAuth({ catchRejects: true });
    send({ payload: reading('a'), token: 'wrong' });
    await handled(o);
    expect(o.bad).toHaveLength(1);
    expect(o.caught).toHaveLength(1);
    expect(o.caught[0].error).toMatchObject({ message: expect.stringContaining('unauthorized') });
  });
});

// ---- manage -----------------------------------------------------------------------------------

describe('manage', () => {
  async function ask(o: Outputs, payload: unknown): Promise<NodeMsg> {
    sent++;
    return (await request('n1', { payload }, [o.out, o.bad])).msg;
  }

  test('CRUD of devices with status codes; the token only in the create/rotate answers', async () => {
    const o = await start({ mode: 'manage' });
    await until('the ready status', () => lastStatusText() === 'thingwire-device.status.ready');
    let m = await ask(o, { op: 'create', device: { id: 'd1', name: 'One' } });
    expect(m.statusCode).toBe(201);
    const { device, token } = m.payload as { device: DeviceRecord; token: string };
    expect(device).toMatchObject({ id: 'd1', name: 'One', hasToken: true });
    expect(registry().authenticate('d1', token).ok).toBe(true);
    // The answer left only after the registry file held the device (a crash now would not lose it).
    expect(fs.readFileSync(path.join(dataDir, 'registry', 'registry.json'), 'utf8')).toContain('"d1"');

    m = await ask(o, { op: 'get', id: 'd1' });
    expect(m).toMatchObject({ statusCode: 200, payload: { id: 'd1' } });
    expect(JSON.stringify(m.payload)).not.toContain(token);
    m = await ask(o, { op: 'update', id: 'd1', device: { name: 'Uno' } });
    expect(m).toMatchObject({ statusCode: 200, payload: { name: 'Uno' } });
    m = await ask(o, { op: 'rotate', id: 'd1' });
    expect(m.statusCode).toBe(200);
    expect(registry().authenticate('d1', (m.payload as { token: string }).token).ok).toBe(true);
    m = await ask(o, { op: 'delete', id: 'd1' });
    expect(m).toMatchObject({ statusCode: 204, payload: null });
    m = await ask(o, { op: 'get', id: 'd1' });
    expect(m).toMatchObject({ statusCode: 404, error: { code: 'not_found', source: 'thingwire-device' } });
    expect(o.bad).toContain(m);
    await until('the status', () => lastStatusText() === '5 ok · 1 failed');
  });

  test('paging, 409, 400 (unknown op, bad query, bad body), streams', async () => {
    const o = await start({ mode: 'manage' });
    for (let i = 0; i < 12; i++) registry().createDevice({ id: `dev-${String(i).padStart(2, '0')}` });
    let m = await ask(o, { op: 'list', query: { offset: '10', limit: '5' } });
    expect(m.statusCode).toBe(200);
    expect(m.payload).toMatchObject({ total: 12, offset: 10, limit: 5 });
    expect((m.payload as Page<DeviceRecord>).items.map((d) => d.id)).toEqual(['dev-10', 'dev-11']);
    m = await ask(o, { op: 'create', device: { id: 'dev-00' } });
    expect(m).toMatchObject({ statusCode: 409, error: { code: 'conflict' } });
    m = await ask(o, { op: 'explode' });
    expect(m).toMatchObject({ statusCode: 400, error: { code: 'invalid' } });
    m = await ask(o, { op: 'list', query: { limit: 'many' } });
    expect(m).toMatchObject({ statusCode: 400 });
    m = await ask(o, { op: 'create', device: { id: 'x', tags: { n: 5 } } });
    expect(m).toMatchObject({ statusCode: 400, error: { code: 'invalid' } });
    m = await ask(o, 'list');
    expect(m).toMatchObject({ statusCode: 400 });
    m = await ask(o, { op: 'createStream', stream: { id: 's1', schema: { type: 'object' } } });
    expect(m).toMatchObject({ statusCode: 201, payload: { id: 's1' } });
    m = await ask(o, { op: 'listStreams' });
    expect(m).toMatchObject({ statusCode: 200, payload: { total: 1 } });
    await handled(o);
    expect(o.caught).toEqual([]);
  });
});

// ---- liveness ---------------------------------------------------------------------------------

describe('liveness', () => {
  const events = (o: Outputs): LivenessEvent[] => o.bad.map((m) => m.payload as LivenessEvent);
  const summary = (o: Outputs): string[] => events(o).map((e) => `${e.device}:${e.state}:${e.reason}`);

  test('online on data, offline once after the timeout; never-seen devices go offline once; others pass untracked', async () => {
    const o = await start({ mode: 'liveness' });
    registry().createDevice({ id: 'a', name: 'A' });
    registry().createDevice({ id: 'b' });
    send({ payload: reading('a') });
    send({ payload: reading('ghost') });
    send({ topic: 'x', payload: 'no device' });
    await handled(o);
    expect(o.out).toHaveLength(3);
    expect(summary(o)).toEqual(['a:online:data']);
    expect(o.bad[0]).toMatchObject({ topic: 'devices/a/liveness', device: { id: 'a', name: 'A' } });
    await until('both offline', () => o.bad.length >= 3, 5000);
    await sleep(400);
    expect(summary(o).sort()).toEqual(['a:offline:timeout', 'a:online:data', 'b:offline:never-seen']);
    const off = events(o).find((e) => e.device === 'b')!;
    expect(off).toMatchObject({ state: 'offline', lastSeen: null });
    await until('the status', () => lastStatusText() === '0 online · 2 offline');
    // Back online with data, once; msg.device.id (from an authenticating node) names the device too.
    send({ payload: 21.5, device: { id: 'b' } });
    send({ payload: reading('b') });
    await handled(o);
    expect(summary(o).filter((s) => s === 'b:online:data')).toHaveLength(1);
    expect(errorCalls(getNode('n1'))).toEqual([]);
  });

  test('registry changes apply at once: created devices tracked, deleted and disabled ones dropped', async () => {
    const o = await start({ mode: 'liveness' });
    registry().createDevice({ id: 'a' });
    registry().createDevice({ id: 'b' });
    await sleep(100);
    registry().createDevice({ id: 'c' });
    registry().deleteDevice('a');
    registry().updateDevice('b', { enabled: false });
    await until('c offline', () => o.bad.length >= 1, 5000);
    await sleep(500);
    expect(summary(o)).toEqual(['c:offline:never-seen']);
    send({ payload: reading('b') });
    await handled(o);
    expect(summary(o)).toEqual(['c:offline:never-seen']);
    expect(o.out).toHaveLength(1);
  });

  test('restart (close, load with the same DATA_DIR): no event repeated, none lost', async () => {
    let o = await start({ mode: 'liveness' });
    registry().createDevice({ id: 'a', livenessTimeout: 2000 });
    registry().createDevice({ id: 'b' });
    send({ payload: reading('a') });
    await until('b offline', () => summary(o).includes('b:offline:never-seen'), 5000);
    expect(summary(o)).toEqual(['a:online:data', 'b:offline:never-seen']);
    const onlineAt = events(o)[0].since;
    await helper.unload();
    expect(fs.readdirSync(path.join(dataDir, 'state', 'thingwire-device'))).toEqual(['n1.json']);

    // Down until a's deadline (2 s after its data) has passed.
    while (Date.now() < onlineAt + 2300) await sleep(50);
    sent = 0;
    o = await start({ mode: 'liveness' });
    await until("a's offline event", () => o.bad.length >= 1, 5000);
    await sleep(300);
    expect(summary(o)).toEqual(['a:offline:timeout']);
    expect(events(o)[0].since).toBe(onlineAt + 2000);
    await until('the status', () => lastStatusText() === '0 online · 2 offline');
  });

  test('a restart before the deadline keeps the device online: no repeated online, offline still once', async () => {
    let o = await start({ mode: 'liveness' });
    registry().createDevice({ id: 'a', livenessTimeout: 2000 });
    send({ payload: reading('a') });
    await handled(o);
    expect(summary(o)).toEqual(['a:online:data']);
    await helper.unload();
    sent = 0;
    o = await start({ mode: 'liveness' });
    send({ payload: reading('a') });
    await handled(o);
    expect(summary(o)).toEqual([]);
    await until('a offline', () => o.bad.length >= 1, 5000);
    await sleep(300);
    expect(summary(o)).toEqual(['a:offline:timeout']);
  });

  test('close clears the timer; persist off writes no state; a node deleted from the flows deletes its state', async () => {
    const timers: Array<{ handle: unknown; mine: boolean }> = [];
    const realSet = global.setTimeout;
    const setSpy = jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      const handle = realSet(fn, ms);
      timers.push({ handle, mine: (new Error().stack ?? '').includes(`device${path.sep}monitor`) });
      return handle;
    }) as typeof setTimeout);
    const clearSpy = jest.spyOn(global, 'clearTimeout');
    try {
      await start({ mode: 'liveness', persist: false });
      registry().createDevice({ id: 'a' });
      await until('the liveness timer', () => timers.some((t) => t.mine));
      await helper.unload();
      const cleared = new Set(clearSpy.mock.calls.map((c) => c[0]));
      const mine = timers.filter((t) => t.mine);
      expect(mine.length).toBeGreaterThan(0);
      expect(cleared.has(mine.at(-1)!.handle as NodeJS.Timeout)).toBe(true);
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
    expect(fs.existsSync(path.join(dataDir, 'state'))).toBe(false);

    // The registry (same DATA_DIR) still holds "a".
    await start({ mode: 'liveness' });
    const setFlows = (helper as unknown as { setFlows(flow: FlowNodeConfig[], type?: string): Promise<void> }).setFlows.bind(helper);
    await helper.unload();
    expect(fs.readdirSync(path.join(dataDir, 'state', 'thingwire-device'))).toEqual(['n1.json']);
    await start({ mode: 'liveness' });
    await setFlows(positioned(flow({ mode: 'liveness' }).filter((n) => n.id !== 'n1')), 'full');
    await until('n1 to stop', () => helper.getNode('n1') === null);
    expect(fs.readdirSync(path.join(dataDir, 'state', 'thingwire-device'))).toEqual([]);
  });
});

// ---- configuration errors ---------------------------------------------------------------------

describe('configuration errors', () => {
  test('no registry: red status, every message to Catch (done(err))', async () => {
    const o = await start({ registry: '' });
    await until('the red status', () => statusCalls(getNode('n1')).some((s) => s.fill === 'red'));
    send({ payload: reading('a'), token: 'x' });
    await handled(o);
    expect(o.caught).toHaveLength(1);
    expect(o.out).toEqual([]);
    expect(errorCalls(getNode('n1')).length).toBeGreaterThan(0);
  });

  test('a registry that failed to open (its file is a directory): red status, done(err) per message', async () => {
    fs.mkdirSync(path.join(dataDir, 'registry', 'registry.json'), { recursive: true });
    const o = await start({ mode: 'manage' });
    await until('the red status', () => statusCalls(getNode('n1')).some((s) => s.fill === 'red' && s.text === 'thingwire-device.status.config-error'));
    send({ payload: { op: 'list' } });
    send({ payload: { op: 'list' } });
    await handled(o);
    expect(o.caught).toHaveLength(2);
    expect(o.caught[0].error).toMatchObject({ message: expect.stringContaining('registry did not open') });
  });
});
