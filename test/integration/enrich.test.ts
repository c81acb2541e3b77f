/**
 * The starter flow attaches the registry's metadata to MQTT readings (issue 8: "device auth and
 * enrichment" before validation and the store): the built runtime as a process, devices registered
 * through the HTTP API, readings published over the embedded broker (anonymous publishing, as
 * startRuntime allows by default). A registered device's readings are stored with its type as a tag;
 * an unregistered device's readings are stored too, without it; a disabled device's reading is
 * rejected and counted. The tags are read from the embedded DuckDB file once the runtime has stopped.
 */
import * as path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';
import type { ExportRow } from '../../nodes/lib/store/types';
import { startRuntime, tmpDir, waitFor, type Runtime } from '../support/services';

jest.setTimeout(120_000);

const API_KEY = 'enrich-test-admin-key-0123456789abcdef';
const AUTH = { Authorization: `Bearer ${API_KEY}` };
const TYPE = 'pico-w-dht22';

function connect(port: number): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: `enrich-${process.pid}-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 0, connectTimeout: 5000 });
    c.once('connect', () => resolve(c));
    c.once('error', (e) => {
      c.end(true);
      reject(e);
    });
  });
}

function publish(c: MqttClient, topic: string, payload: string): Promise<void> {
  return new Promise((resolve, reject) => c.publish(topic, payload, { qos: 1 }, (e) => (e ? reject(e) : resolve())));
}

async function register(rt: Runtime, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${rt.url}/api/v1/devices`, { method: 'POST', headers: { ...AUTH, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  expect([body.id, res.status]).toEqual([body.id, 201]);
}

type Series = { series: Array<{ device: string; field: string; points: Array<[number, number]> }> };

async function points(rt: Runtime, device: string): Promise<Array<[number, number]>> {
  const res = await fetch(`${rt.url}/api/v1/series?devices=${device}&fields=temperature&start=-10m`, { headers: AUTH });
  expect(res.status).toBe(200);
  return ((await res.json()) as Series).series[0]?.points ?? [];
}

/** Publishes until the starter flow (which subscribes a moment after start) has stored the reading. */
async function deliver(rt: Runtime, c: MqttClient, device: string, ts: number, value: number): Promise<void> {
  await waitFor(
    `the reading of ${device} in the store`,
    async () => {
      await publish(c, `devices/${device}/telemetry`, JSON.stringify({ ts, temperature: value }));
      return (await points(rt, device)).some(([t, v]) => t === ts && v === value) ? true : undefined;
    },
    30_000,
    500,
  );
}

/** thingwire_rejects_total{node_type, code} from GET /api/v1/metrics (0 when the series is not there). */
async function rejects(rt: Runtime, nodeType: string, code: string): Promise<number> {
  const res = await fetch(`${rt.url}/api/v1/metrics`, { headers: AUTH });
  expect(res.status).toBe(200);
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith('thingwire_rejects_total{') && l.includes(`node_type="${nodeType}"`) && l.includes(`code="${code}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('the starter flow enriches MQTT readings with the registry', () => {
  let rt: Runtime | undefined;
  let dataDir: string;
  let client: MqttClient | undefined;
  const t0 = Date.now() - 60_000;

  beforeAll(async () => {
    dataDir = tmpDir('enrich');
    rt = await startRuntime({ THINGWIRE_API_KEY: API_KEY }, dataDir);
  });
  afterAll(async () => {
    client?.end(true);
    await rt?.stop();
  });

  test('registered, unregistered and disabled devices over MQTT; the tags in the store', async () => {
    const r = rt!;
    await register(r, { id: 'gh-1', name: 'Greenhouse 1', type: TYPE, location: { name: 'greenhouse', lat: 40.4, lon: -3.7 }, tags: { site: 'north' } });
    await register(r, { id: 'gh-off', type: TYPE, enabled: false });
    client = await connect(r.mqttPort);

    await deliver(r, client, 'gh-1', t0, 21.5);
    await deliver(r, client, 'stranger-1', t0 + 1000, 18.25);
    expect(await points(r, 'gh-1')).toEqual([[t0, 21.5]]);
    expect(await points(r, 'stranger-1')).toEqual([[t0 + 1000, 18.25]]);

    // The flow is running (both readings above were stored): one reading of the disabled device, rejected and counted.
    expect(await rejects(r, 'thingwire-device', 'device_disabled')).toBe(0);
    await publish(client, 'devices/gh-off/telemetry', JSON.stringify({ ts: t0 + 2000, temperature: 30 }));
    await waitFor('the disabled device counted as rejected', async () => ((await rejects(r, 'thingwire-device', 'device_disabled')) === 1 ? true : undefined), 20_000, 250);
    // A reading published after it is stored: had the disabled one gone on, it would be in the store by now too.
    await deliver(r, client, 'gh-1', t0 + 3000, 22);
    expect(await points(r, 'gh-off')).toEqual([]);
    expect(await rejects(r, 'thingwire-device', 'unknown_device')).toBe(0);

    client.end(true);
    client = undefined;
    await r.stop();
    rt = undefined;

    // The store as written: the registered device's points carry its type; the unregistered one's only the device.
    const store = new EmbeddedBackend({ path: path.join(dataDir, 'store', 'thingwire.duckdb'), threads: 1, memoryLimit: '128MB' });
    try {
      const rows: ExportRow[] = [];
      const n = await store.exportRange({ measurement: 'telemetry', start: t0 - 1, end: t0 + 10_000 }, (chunk) => {
        rows.push(...chunk);
      });
      expect(n).toBe(rows.length);
      expect(rows.map((x) => [x.device, x.tags, x.field, x.ts, x.value])).toEqual([
        ['gh-1', { type: TYPE }, 'temperature', t0, 21.5],
        ['gh-1', { type: TYPE }, 'temperature', t0 + 3000, 22],
        ['stranger-1', {}, 'temperature', t0 + 1000, 18.25],
      ]);
      const byType = await store.query({ measurement: 'telemetry', fields: ['temperature'], where: { type: TYPE }, start: t0 - 1, end: t0 + 10_000 });
      expect(byType.series.map((s) => [s.device, s.points])).toEqual([
        [
          'gh-1',
          [
            [t0, 21.5],
            [t0 + 3000, 22],
          ],
        ],
      ]);
    } finally {
      await store.close();
    }
  });
});
