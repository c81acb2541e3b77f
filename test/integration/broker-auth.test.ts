/**
 * The embedded broker authenticates devices against the device registry (issue 4, item 3) and the
 * editor asks for a login (item 5): the built runtime as a process, real MQTT clients (mqtt.js),
 * the starter flow storing what devices publish (read back with GET /api/v1/series), and the
 * registry written through openRegistry on the runtime's own file before it starts.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import bcrypt from 'bcryptjs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { openRegistry } from '../../nodes/lib/registry/registry';
import { ROOT, startRuntime, tmpDir, waitFor, type Runtime } from '../support/services';

jest.setTimeout(90_000);

const KEY = 'prov-key-0123456789abcdef';
const ADMIN_PASSWORD = 'correct horse battery staple';

type Connected = { ok: true; client: MqttClient } | { ok: false; code: number | undefined; message: string };

/** Connects once (no retry); resolves with the client, or the CONNACK return code that refused it. */
function tryConnect(port: number, opts: IClientOptions = {}): Promise<Connected> {
  return new Promise((resolve) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: `t-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    c.once('connect', () => resolve({ ok: true, client: c }));
    c.once('error', (e: Error & { code?: number }) => {
      c.end(true);
      resolve({ ok: false, code: e.code, message: e.message });
    });
  });
}

async function connect(port: number, opts: IClientOptions): Promise<MqttClient> {
  const r = await tryConnect(port, opts);
  if (!r.ok) throw new Error(`connection refused: ${r.message}`);
  return r.client;
}

function publish(c: MqttClient, topic: string, payload: string): Promise<void> {
  return new Promise((resolve, reject) => c.publish(topic, payload, { qos: 1 }, (e) => (e ? reject(e) : resolve())));
}

/** Resolves when the broker closes the client's connection (or rejects after timeoutMs). */
function closed(c: MqttClient, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the broker did not close the connection')), timeoutMs);
    c.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

type Series = { series: Array<{ device: string; field: string; points: Array<[number, number]> }> };

async function points(rt: Runtime, device: string, key?: string): Promise<Array<[number, number]>> {
  const res = await fetch(`${rt.url}/api/v1/series?devices=${device}&fields=temperature&start=-10m`, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  const b = (await res.json()) as Series;
  return b.series[0]?.points ?? [];
}

/** Publishes until the starter flow (which subscribes a moment after start) has stored the reading. */
async function deliver(rt: Runtime, c: MqttClient, device: string, ts: number, value: number, key?: string): Promise<void> {
  await waitFor(
    `the reading of ${device} in the store`,
    async () => {
      await publish(c, `devices/${device}/telemetry`, JSON.stringify({ ts, temperature: value }));
      return (await points(rt, device, key)).some(([t, v]) => t === ts && v === value);
    },
    20_000,
    500,
  );
}

describe('embedded broker with device authentication (no anonymous publishing)', () => {
  let rt: Runtime;
  let dataDir: string;
  const tokens: Record<string, string> = {};
  const clients: MqttClient[] = [];
  const keep = (c: MqttClient): MqttClient => (clients.push(c), c);

  beforeAll(async () => {
    dataDir = tmpDir('broker-auth');
    // Register devices on the runtime's registry file before it starts, as the thingwire-registry node would.
    const reg = openRegistry(path.join(dataDir, 'registry', 'registry.json'));
    for (const id of ['dev-a', 'dev-b', 'dev-off']) tokens[id] = reg.createDevice({ id }).token;
    reg.updateDevice('dev-off', { enabled: false });
    await reg.close();
    rt = await startRuntime(
      { THINGWIRE_MQTT_ANONYMOUS: '0', THINGWIRE_PROVISIONING_KEY: KEY, THINGWIRE_ADMIN_PASSWORD_HASH: bcrypt.hashSync(ADMIN_PASSWORD, 8) },
      dataDir,
    );
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await rt?.stop();
  });

  test('a registered device with its token publishes, and its reading is stored', async () => {
    const c = keep(await connect(rt.mqttPort, { username: 'dev-a', password: tokens['dev-a'] }));
    const ts = Date.now() - 2000;
    await deliver(rt, c, 'dev-a', ts, 21.5);
  });

  test('a wrong token, an unknown device, a disabled device, no password: CONNACK refused', async () => {
    const cases: Array<[IClientOptions, number]> = [
      [{ username: 'dev-a', password: tokens['dev-b'] }, 4],
      [{ username: 'dev-a', password: 'x'.repeat(43) }, 4],
      [{ username: 'nobody', password: tokens['dev-a'] }, 4],
      [{ username: 'dev-off', password: tokens['dev-off'] }, 5],
      [{ username: 'dev-a' }, 4],
      [{ username: 'bad/id', password: tokens['dev-a'] }, 4],
      [{ username: '$thingwire', password: 'guess' }, 4],
    ];
    for (const [opts, code] of cases) {
      const r = await tryConnect(rt.mqttPort, opts);
      expect([opts.username, r.ok ? 'connected' : r.code]).toEqual([opts.username, code]);
    }
    // Logged with the device id and the reason, never the token.
    await waitFor('the refusals in the log', () => rt.output().includes('refused device dev-off'));
    expect(rt.output()).toContain('refused device dev-a from 127.0.0.1: wrong token');
    expect(rt.output()).toContain('refused device nobody from 127.0.0.1: unknown device');
    for (const t of Object.values(tokens)) expect(rt.output()).not.toContain(t);
  });

  test("a device cannot subscribe to another device's topics; its own are fine", async () => {
    const c = keep(await connect(rt.mqttPort, { username: 'dev-a', password: tokens['dev-a'] }));
    // mqtt.js rejects a subscribe whose SUBACK holds a failure; the packet carries the return codes.
    const suback = await c.subscribeAsync(['devices/dev-b/telemetry', 'devices/+/telemetry', '#', 'devices/dev-a/#'], { qos: 1 }).then(
      () => undefined,
      (e: Error & { packet?: { granted: number[] } }) => e.packet,
    );
    expect(suback?.granted).toEqual([128, 128, 128, 1]);
    expect(c.connected).toBe(true);
    const got: string[] = [];
    c.on('message', (t) => got.push(t));
    await publish(c, 'devices/dev-a/status', 'online');
    await waitFor('its own message back', () => got.includes('devices/dev-a/status'));
  });

  test("a device publishing to another device's topic is disconnected, and nothing is stored", async () => {
    const c = keep(await connect(rt.mqttPort, { username: 'dev-a', password: tokens['dev-a'] }));
    const ts = Date.now() - 3000;
    const gone = closed(c);
    c.publish('devices/dev-b/telemetry', JSON.stringify({ ts, temperature: 66 }), { qos: 1 });
    await gone;
    // dev-b itself still gets through (which also shows the flow had time to store the forged one).
    const b = keep(await connect(rt.mqttPort, { username: 'dev-b', password: tokens['dev-b'] }));
    await deliver(rt, b, 'dev-b', ts + 1, 10.5);
    expect(await points(rt, 'dev-b')).toEqual([[ts + 1, 10.5]]);
    expect(rt.output()).toContain('refused a publish to "devices/dev-b/telemetry" by device dev-a');
  });

  test("a last will on another device's topic refuses the connection; one on its own is accepted", async () => {
    const bad = await tryConnect(rt.mqttPort, { username: 'dev-a', password: tokens['dev-a'], will: { topic: 'devices/dev-b/status', payload: Buffer.from('offline'), qos: 1, retain: false } });
    expect(bad.ok ? 'connected' : bad.code).toBe(5);
    const good = await tryConnect(rt.mqttPort, { username: 'dev-a', password: tokens['dev-a'], will: { topic: 'devices/dev-a/status', payload: Buffer.from('offline'), qos: 1, retain: false } });
    expect(good.ok).toBe(true);
    if (good.ok) keep(good.client);
  });

  test('another device cannot take over a connected client id', async () => {
    const a = keep(await connect(rt.mqttPort, { clientId: 'shared-id', username: 'dev-a', password: tokens['dev-a'] }));
    const r = await tryConnect(rt.mqttPort, { clientId: 'shared-id', username: 'dev-b', password: tokens['dev-b'] });
    expect(r.ok ? 'connected' : r.code).toBe(2);
    expect(a.connected).toBe(true);
  });

  test('provisioning: the right key registers an unknown device and lets it in; a wrong key is refused', async () => {
    const wrong = await tryConnect(rt.mqttPort, { username: 'prov-1', password: 'provision:not-the-key-at-all' });
    expect(wrong.ok ? 'connected' : wrong.code).toBe(4);
    const c = keep(await connect(rt.mqttPort, { username: 'prov-1', password: `provision:${KEY}` }));
    await deliver(rt, c, 'prov-1', Date.now() - 1000, 19.25);
    expect(rt.output()).toContain('provisioned device prov-1');
    // Registered in the shared registry file (saved within a second).
    const file = path.join(dataDir, 'registry', 'registry.json');
    await waitFor('prov-1 in the registry file', () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('"prov-1"'));
    // It comes back with the key; the key does not open a device that has a token of its own.
    c.end(true);
    keep(await connect(rt.mqttPort, { username: 'prov-1', password: `provision:${KEY}` }));
    const forged = await tryConnect(rt.mqttPort, { username: 'dev-a', password: `provision:${KEY}` });
    expect(forged.ok ? 'connected' : forged.code).toBe(4);
    expect(rt.output()).not.toContain(KEY);
  });

  test('anonymous clients may not publish (disconnected) but may subscribe from this machine (the flows do)', async () => {
    const c = keep(await connect(rt.mqttPort, {}));
    const granted = await c.subscribeAsync('devices/+/+', { qos: 1 });
    expect(granted[0].qos).toBe(1);
    const got: string[] = [];
    c.on('message', (t) => got.push(t));
    const a = keep(await connect(rt.mqttPort, { username: 'dev-a', password: tokens['dev-a'] }));
    await publish(a, 'devices/dev-a/humidity', '40');
    await waitFor('the device message at the anonymous subscriber', () => got.includes('devices/dev-a/humidity'));
    const gone = closed(c);
    c.publish('devices/anon/telemetry', '{"temperature": 1}', { qos: 1 });
    await gone;
  });

  test('the simulator registers its devices with the provisioning key and their readings are stored', async () => {
    const sim = spawn(process.execPath, [path.join(ROOT, 'dist', 'runtime', 'simulate.js'), '--devices', '3', '--interval', '200', '--duration', '3'], {
      cwd: ROOT,
      env: { ...process.env, MQTT_URL: '', MQTT_PORT: String(rt.mqttPort), THINGWIRE_PROVISIONING_KEY: KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    sim.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    sim.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => sim.on('close', (c) => resolve(c)));
    expect([code, out]).toEqual([0, expect.stringContaining('one connection per device')]);
    expect(out).toMatch(/done: [\d.]+s published=\d+ errors=0/);
    for (const id of ['sim-001', 'sim-002', 'sim-003']) {
      await waitFor(`readings of ${id}`, async () => (await fetch(`${rt.url}/api/v1/series?devices=${id}&fields=temperature&start=-10m`).then((r) => r.json()) as Series).series[0]?.points.length);
    }
  });

  test('the flows service account (${THINGWIRE_MQTT_USER} / ${THINGWIRE_MQTT_PASSWORD} in an mqtt-broker node) may publish to a device', async () => {
    const token = await login(rt);
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Node-RED-API-Version': 'v2' };
    const current = (await (await fetch(`${rt.url}/flows`, { headers })).json()) as { rev: string; flows: Array<Record<string, unknown>> };
    const a = keep(await connect(rt.mqttPort, { username: 'dev-a', password: tokens['dev-a'] }));
    const got: Array<[string, string]> = [];
    a.on('message', (t, p) => got.push([t, p.toString()]));
    await a.subscribeAsync('devices/dev-a/commands', { qos: 1 });
    const flows = [
      ...current.flows,
      { id: 'svc.tab', type: 'tab', label: 'service account test' },
      {
        id: 'svc.broker', type: 'mqtt-broker', name: 'as the service account', broker: '${THINGWIRE_MQTT_HOST}', port: '${THINGWIRE_MQTT_PORT}',
        clientid: '', autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true,
        credentials: { user: '${THINGWIRE_MQTT_USER}', password: '${THINGWIRE_MQTT_PASSWORD}' },
      },
      { id: 'svc.inject', type: 'inject', z: 'svc.tab', props: [{ p: 'payload' }], repeat: '1', once: true, onceDelay: '0.5', payload: 'reboot', payloadType: 'str', wires: [['svc.out']] },
      { id: 'svc.out', type: 'mqtt out', z: 'svc.tab', topic: 'devices/dev-a/commands', qos: '1', retain: 'false', broker: 'svc.broker', wires: [] },
    ];
    const dep = await fetch(`${rt.url}/flows`, { method: 'POST', headers: { ...headers, 'Node-RED-Deployment-Type': 'full' }, body: JSON.stringify({ rev: current.rev, flows }) });
    expect(dep.status).toBe(200);
    await waitFor('the command from the flow', () => got.some(([t, p]) => t === 'devices/dev-a/commands' && p === 'reboot'), 15_000);
  });

  test('the editor asks for a login: /flows is 401 without a token; the password grant gives one; the dashboard asks too', async () => {
    expect((await fetch(`${rt.url}/flows`)).status).toBe(401);
    const bad = await fetch(`${rt.url}/auth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ client_id: 'node-red-admin', grant_type: 'password', scope: '*', username: 'admin', password: 'wrong' }),
    });
    expect(bad.status).toBe(403);
    const token = await login(rt);
    const res = await fetch(`${rt.url}/flows`, { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(Array.isArray(await res.json())).toBe(true);
    // The dashboard asks for the same login (HTTP Basic): it can register devices and show their tokens.
    const open = await fetch(`${rt.url}/dashboard`);
    expect(open.status).toBe(401);
    expect(open.headers.get('www-authenticate')).toMatch(/^Basic realm="Thingwire dashboard"/);
    const basic = (user: string, pw: string): Record<string, string> => ({ Authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });
    expect((await fetch(`${rt.url}/dashboard/overview`, { headers: basic('admin', 'wrong') })).status).toBe(401);
    expect((await fetch(`${rt.url}/dashboard/overview`, { headers: basic('root', ADMIN_PASSWORD) })).status).toBe(401);
    expect((await fetch(`${rt.url}/dashboard/overview`, { headers: basic('admin', ADMIN_PASSWORD) })).status).toBe(200);
    // Its socket.io connection (Engine.IO polling, as the browser starts it): the namespace connect is refused
    // without the login, accepted with it.
    const connectAnswer = async (headers: Record<string, string>): Promise<string> => {
      const base = `${rt.url}/dashboard/socket.io/?EIO=4&transport=polling`;
      const open = await (await fetch(base, { headers })).text();
      const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid;
      expect((await fetch(`${base}&sid=${sid}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'text/plain;charset=UTF-8' }, body: '40' })).status).toBe(200);
      return (await fetch(`${base}&sid=${sid}`, { headers })).text();
    };
    expect(await connectAnswer({})).toMatch(/^44\{"message":"unauthorized/);
    expect(await connectAnswer(basic('admin', 'wrong'))).toMatch(/^44\{"message":"unauthorized/);
    expect(await connectAnswer(basic('admin', ADMIN_PASSWORD))).toMatch(/^40\{"sid":/);
    // The HTTP API is not behind it (it has its own keys and device tokens).
    expect((await fetch(`${rt.url}/api/v1/health`)).status).not.toBe(401);
  });
});

async function login(rt: Runtime): Promise<string> {
  const res = await fetch(`${rt.url}/auth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_id: 'node-red-admin', grant_type: 'password', scope: '*', username: 'admin', password: ADMIN_PASSWORD }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; token_type: string };
  expect(body.token_type).toBe('Bearer');
  return body.access_token;
}

describe('embedded broker with THINGWIRE_MQTT_ANONYMOUS=1 (demo switch)', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime({ THINGWIRE_MQTT_ANONYMOUS: '1' });
  });
  afterAll(async () => {
    await rt?.stop();
  });

  test('anonymous clients publish as any device, and the start-up warns about it', async () => {
    const c = await connect(rt.mqttPort, {});
    try {
      await deliver(rt, c, 'anon-1', Date.now() - 1000, 12.5);
    } finally {
      c.end(true);
    }
    expect(rt.output()).toContain('WARNING: THINGWIRE_MQTT_ANONYMOUS=1');
  });
});

describe('the one-command demo: npm start generates a provisioning key, npm run simulate finds it', () => {
  let rt: Runtime;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = tmpDir('broker-auth-demo');
    rt = await startRuntime({ THINGWIRE_MQTT_ANONYMOUS: '0' }, dataDir);
  });
  afterAll(async () => {
    await rt?.stop();
  });

  test('DATA_DIR/provisioning-key (mode 0600) is made once and kept; the simulator, given only DATA_DIR, provisions its devices', async () => {
    const file = path.join(dataDir, 'provisioning-key');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const key = fs.readFileSync(file, 'utf8').trim();
    expect(key.length).toBeGreaterThanOrEqual(16);
    expect(rt.output()).toContain(`generated a provisioning key in ${file}`);
    expect(rt.output()).not.toContain(key);
    const env: NodeJS.ProcessEnv = { ...process.env, MQTT_URL: '', MQTT_PORT: String(rt.mqttPort), DATA_DIR: dataDir };
    delete env.THINGWIRE_PROVISIONING_KEY;
    const sim = spawn(process.execPath, [path.join(ROOT, 'dist', 'runtime', 'simulate.js'), '--devices', '2', '--interval', '200', '--duration', '2', '--seed', '7'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    sim.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    sim.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => sim.on('close', (c) => resolve(c)));
    expect([code, out]).toEqual([0, expect.stringContaining('one connection per device')]);
    await waitFor('readings of sim-001', async () => ((await fetch(`${rt.url}/api/v1/series?devices=sim-001&fields=temperature&start=-10m`).then((r) => r.json())) as Series).series[0]?.points.length);
  });
});

describe('THINGWIRE_PROVISIONING_KEY=off', () => {
  let rt: Runtime;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = tmpDir('broker-auth-off');
    rt = await startRuntime({ THINGWIRE_MQTT_ANONYMOUS: '0', THINGWIRE_PROVISIONING_KEY: 'off' }, dataDir);
  });
  afterAll(async () => {
    await rt?.stop();
  });

  test('no key is generated and devices cannot register themselves', async () => {
    expect(fs.existsSync(path.join(dataDir, 'provisioning-key'))).toBe(false);
    await expect(connect(rt.mqttPort, { username: 'self-made', password: 'provision:whatever-key-123456' })).rejects.toThrow();
  });
});

describe('the starter flow follows registered devices from their data: offline once after the timeout, online again', () => {
  let rt: Runtime;
  let token: string;
  beforeAll(async () => {
    const dataDir = tmpDir('broker-auth-liveness');
    const reg = openRegistry(path.join(dataDir, 'registry', 'registry.json'));
    token = reg.createDevice({ id: 'dev-live', livenessTimeout: 1500 }).token;
    await reg.close();
    rt = await startRuntime({ THINGWIRE_MQTT_ANONYMOUS: '0', THINGWIRE_PROVISIONING_KEY: 'off' }, dataDir);
  });
  afterAll(async () => {
    await rt?.stop();
  });

  test('a device that stops sending goes offline (an alert event in the store), and comes back online with its next reading', async () => {
    type Events = { series: Array<{ points: Array<[number, string]> }> };
    const events = async (): Promise<Array<[number, string]>> =>
      ((await (await fetch(`${rt.url}/api/v1/series?devices=dev-live&measurement=alerts&fields=state&start=-1h`)).json()) as Events).series[0]?.points ?? [];
    const c = await connect(rt.mqttPort, { username: 'dev-live', password: token });
    try {
      // Registered and silent: offline once its timeout passes ('never seen').
      await waitFor('the never-seen offline event', async () => ((await events()).length === 1 ? true : undefined), 15_000);
      expect((await events()).map((p) => p[1])).toEqual(['firing']);
      await deliver(rt, c, 'dev-live', Date.now() - 500, 20.5);
      await waitFor('the online (resolved) event', async () => ((await events()).length === 2 ? true : undefined), 15_000);
      // Silent again: offline once more, not repeatedly.
      await waitFor('the second offline event', async () => ((await events()).length === 3 ? true : undefined), 15_000);
      await new Promise((r) => setTimeout(r, 2500));
      expect((await events()).map((p) => p[1])).toEqual(['firing', 'resolved', 'firing']);
    } finally {
      c.end(true);
    }
  });
});

describe('the registry and token checks survive a restart', () => {
  const API_KEY = 'restart-test-api-key-0123456789';
  const READ_KEY = 'restart-test-read-key-987654321';
  let dataDir: string;
  const runtimes: Runtime[] = [];
  afterAll(async () => {
    for (const r of runtimes) await r.stop();
  });

  test('a device registered through the API and its rotated token work after a restart; the old token does not', async () => {
    dataDir = tmpDir('broker-auth-restart');
    const env = { THINGWIRE_MQTT_ANONYMOUS: '0', THINGWIRE_PROVISIONING_KEY: 'off', THINGWIRE_API_KEY: API_KEY, THINGWIRE_API_READ_KEY: READ_KEY };
    const first = await startRuntime(env, dataDir);
    runtimes.push(first);
    const headers = { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' };
    const created = await fetch(`${first.url}/api/v1/devices`, { method: 'POST', headers, body: JSON.stringify({ id: 'dev-restart', name: 'Restart' }) });
    expect(created.status).toBe(201);
    const oldToken = ((await created.json()) as { token: string }).token;
    const rotated = await fetch(`${first.url}/api/v1/devices/dev-restart/token`, { method: 'POST', headers });
    expect(rotated.status).toBe(200);
    const token = ((await rotated.json()) as { token: string }).token;
    expect(token).not.toBe(oldToken);
    await first.stop();

    const again = await startRuntime(env, dataDir);
    runtimes.push(again);
    // The flows start a moment after the runtime is ready.
    const res = await waitFor('the API flow', async () => {
      const r = await fetch(`${again.url}/api/v1/devices/dev-restart`, { headers });
      return r.status === 404 && !(r.headers.get('content-type') ?? '').includes('json') ? undefined : r;
    });
    expect(res.status).toBe(200);
    expect(JSON.stringify(await res.json())).toMatch(/"name":"Restart".*"hasToken":true|"hasToken":true.*"name":"Restart"/);
    await expect(connect(again.mqttPort, { username: 'dev-restart', password: oldToken })).rejects.toThrow();
    const c = await connect(again.mqttPort, { username: 'dev-restart', password: token });
    try {
      await deliver(again, c, 'dev-restart', Date.now() - 500, 31.5, READ_KEY);
    } finally {
      c.end(true);
    }
    // With API keys configured, reading series needs one of them; the read-only key cannot change anything.
    const series = `${again.url}/api/v1/series?devices=dev-restart&fields=temperature&start=-10m`;
    expect((await fetch(series)).status).toBe(401);
    expect((await fetch(series, { headers: { 'X-API-Key': 'not-the-key-0123456789' } })).status).toBe(401);
    expect((await fetch(series, { headers: { Authorization: `Bearer ${API_KEY}` } })).status).toBe(200);
    expect((await fetch(`${again.url}/api/v1/devices/dev-restart`, { headers: { 'X-API-Key': READ_KEY } })).status).toBe(200);
    const refused = await fetch(`${again.url}/api/v1/devices/dev-restart`, { method: 'DELETE', headers: { 'X-API-Key': READ_KEY } });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    // A connected device loses its session when its token is rotated (or it is disabled), and the old token is refused.
    const live = await connect(again.mqttPort, { username: 'dev-restart', password: token });
    const dropped = closed(live, 10_000);
    const rotatedAgain = await fetch(`${again.url}/api/v1/devices/dev-restart/token`, { method: 'POST', headers });
    expect(rotatedAgain.status).toBe(200);
    await dropped;
    expect(again.output()).toContain('mqtt: disconnected device dev-restart: its token changed');
    await expect(connect(again.mqttPort, { username: 'dev-restart', password: token })).rejects.toThrow();
    const newest = ((await rotatedAgain.json()) as { token: string }).token;
    const back = await connect(again.mqttPort, { username: 'dev-restart', password: newest });
    const droppedAgain = closed(back, 10_000);
    expect((await fetch(`${again.url}/api/v1/devices/dev-restart`, { method: 'PATCH', headers, body: JSON.stringify({ enabled: false }) })).status).toBe(200);
    await droppedAgain;
    expect(again.output()).toContain('mqtt: disconnected device dev-restart: it was disabled');
    // The token file holds no token, only its salted hash.
    const file = fs.readFileSync(path.join(dataDir, 'registry', 'registry.json'), 'utf8');
    expect(file).not.toContain(token);
    expect(file).not.toContain(oldToken);
  });
});
