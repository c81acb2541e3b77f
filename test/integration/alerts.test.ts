/**
 * The starter flow's Alerts section against the real runtime: a device that runs hot raises a critical
 * temperature alert after its 10 s hold; it is listed by GET /api/v1/alerts and stored in the alerts
 * measurement; POST /api/v1/alerts/:id/ack acknowledges it; cool readings resolve it.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import mqtt from 'mqtt';
import { openRegistry } from '../../nodes/lib/registry/registry';
import { startRuntime, tmpDir, waitFor, type Runtime } from '../support/services';

jest.setTimeout(60_000);

const API_KEY = 'alerts-test-api-key-0123456789';
const READ_KEY = 'alerts-test-read-key-987654321';
const DEVICE = 'it-hot';

interface Alert {
  id: string;
  key: string;
  device: string;
  rule: string;
  state: string;
  severity: string;
  value?: number;
  since: number;
  acknowledged: boolean;
  ack?: { by: string; at: number; comment?: string };
  thresholds: { raise: string; clear: string };
}
type Series = { series: Array<{ device: string; field: string; tags?: Record<string, string>; points: Array<[number, number | string | boolean]> }> };

describe('alerts in the starter flow', () => {
  let rt: Runtime;
  let client: mqtt.MqttClient;
  const auth = { Authorization: `Bearer ${API_KEY}` };

  beforeAll(async () => {
    rt = await startRuntime({ THINGWIRE_API_KEY: API_KEY, THINGWIRE_API_READ_KEY: READ_KEY });
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${rt.mqttPort}`, { clientId: `it-alerts-${process.pid}` });
  });
  afterAll(async () => {
    await client?.endAsync();
    await rt?.stop();
  });

  const publish = (temperature: number): Promise<unknown> =>
    client.publishAsync(`devices/${DEVICE}/telemetry`, JSON.stringify({ ts: Date.now(), temperature }), { qos: 1 });

  async function active(headers: Record<string, string> = auth): Promise<Alert[]> {
    const res = await fetch(`${rt.url}/api/v1/alerts`, { headers });
    expect(res.status).toBe(200);
    return ((await res.json()) as { alerts: Alert[] }).alerts.filter((a) => a.device === DEVICE);
  }

  async function stored(fields: string): Promise<Series['series']> {
    const res = await fetch(`${rt.url}/api/v1/series?devices=${DEVICE}&measurement=alerts&fields=${fields}&start=-1h`, { headers: auth });
    expect(res.status).toBe(200);
    return ((await res.json()) as Series).series;
  }

  test('the API needs a key: 401 without one, 403 for the read-only key on ack, 404 for an unknown alert', async () => {
    expect((await fetch(`${rt.url}/api/v1/alerts`)).status).toBe(401);
    expect((await fetch(`${rt.url}/api/v1/alerts`, { headers: { 'X-API-Key': 'wrong-key-0123456789' } })).status).toBe(401);
    expect(await active({ 'X-API-Key': READ_KEY })).toEqual([]);
    const ro = await fetch(`${rt.url}/api/v1/alerts/whatever/ack`, { method: 'POST', headers: { Authorization: `Bearer ${READ_KEY}` } });
    expect(ro.status).toBe(403);
    const missing = await fetch(`${rt.url}/api/v1/alerts/no-such-alert/ack`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{"by":"it"}' });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const bad = await fetch(`${rt.url}/api/v1/alerts/x/ack`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{"who":"it"}' });
    expect(bad.status).toBe(400);
  });

  test('a device above 60 °C for more than 10 s fires a critical alert; the API acknowledges it; cool readings resolve it', async () => {
    const t0 = Date.now();
    await publish(65);
    // Pending during the 10 s hold.
    const pending = await waitFor('the pending alert', async () => (await active()).find((a) => a.rule === 'temperature-high'), 10_000);
    expect(pending.state).toBe('pending');
    expect(pending.severity).toBe('critical');
    // Keep it hot (a reading every 2 s) until it fires.
    const keepHot = setInterval(() => void publish(66), 2000);
    let firing: Alert;
    try {
      firing = await waitFor('the firing alert', async () => (await active()).find((a) => a.rule === 'temperature-high' && a.state === 'firing'), 20_000, 250);
    } finally {
      clearInterval(keepHot);
    }
    expect(Date.now() - t0).toBeGreaterThanOrEqual(10_000);
    expect(firing).toMatchObject({ device: DEVICE, severity: 'critical', acknowledged: false, key: `${DEVICE}/temperature/temperature-high` });
    expect(firing.value).toBeGreaterThan(60);
    expect(firing.thresholds.raise).toContain('60');

    // In the store: one firing record.
    const states = await waitFor('the firing record', async () => {
      const s = (await stored('state')).find((x) => x.field === 'state');
      return s?.points.some((p) => p[1] === 'firing') ? s : undefined;
    });
    expect(states.points.map((p) => p[1])).toEqual(['firing']);

    // Acknowledge through the API.
    const res = await fetch(`${rt.url}/api/v1/alerts/${encodeURIComponent(firing.id)}/ack`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ by: 'it-operator', comment: 'looking at it' }),
    });
    expect(res.status).toBe(200);
    const acked = (await res.json()) as Alert;
    expect(acked).toMatchObject({ id: firing.id, state: 'firing', acknowledged: true, ack: { by: 'it-operator', comment: 'looking at it' } });
    expect((await active()).find((a) => a.id === firing.id)).toMatchObject({ acknowledged: true, ack: { by: 'it-operator' } });
    // The stored record (same episode, same since) says so too.
    await waitFor('the acknowledged record', async () => (await stored('acknowledged')).find((x) => x.field === 'acknowledged')?.points.at(-1)?.[1] === true);

    // Back below 55 °C: resolved, and gone from the active list.
    await publish(24);
    await waitFor('the alert to leave the active list', async () => (await active()).length === 0);
    const after = await waitFor('the resolved record', async () => {
      const s = (await stored('state')).find((x) => x.field === 'state');
      return s?.points.some((p) => p[1] === 'resolved') ? s : undefined;
    });
    expect(after.points.map((p) => p[1])).toEqual(['firing', 'resolved']);
    // Acknowledging a resolved alert is a 404.
    const gone = await fetch(`${rt.url}/api/v1/alerts/${encodeURIComponent(firing.id)}/ack`, { method: 'POST', headers: auth });
    expect(gone.status).toBe(404);
  });
});

describe('alerts API without THINGWIRE_API_KEY', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime({ THINGWIRE_API_KEY: '' });
  });
  afterAll(async () => {
    await rt?.stop();
  });

  test('answers 503 not_configured (list and ack)', async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/alerts'],
      ['POST', '/api/v1/alerts/any/ack'],
    ]) {
      // The flows (and so the route) start a moment after the runtime's ready line: until then Express answers 404.
      const res = await waitFor(`${method} ${url} to be served`, async () => {
        const r = await fetch(`${rt.url}${url}`, { method, headers: { Authorization: `Bearer ${API_KEY}` } });
        return r.status === 404 && !(r.headers.get('content-type') ?? '').includes('json') ? undefined : r;
      });
      expect([method, res.status]).toEqual([method, 503]);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_configured');
    }
  });
});

describe('alert events reach the notifications flow over MQTT with device authentication on', () => {
  let rt: Runtime;
  let server: http.Server;
  const received: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        try {
          received.push(JSON.parse(body) as Record<string, unknown>);
        } catch {
          received.push({ unparsable: body });
        }
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    const dataDir = tmpDir('alerts-notify');
    const reg = openRegistry(path.join(dataDir, 'registry', 'registry.json'));
    token = reg.createDevice({ id: 'it-notify' }).token;
    await reg.close();
    rt = await startRuntime({ THINGWIRE_MQTT_ANONYMOUS: '0', THINGWIRE_PROVISIONING_KEY: 'off', THINGWIRE_WEBHOOK_URL: `http://127.0.0.1:${port}/hook` }, dataDir);
  });
  let token: string;
  afterAll(async () => {
    await rt?.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('a hot registered device: the firing event is published on alerts/it-notify by the starter flow and posted to the webhook', async () => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${rt.mqttPort}`, { clientId: `it-notify-${process.pid}`, username: 'it-notify', password: token, reconnectPeriod: 0 });
    const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${rt.mqttPort}`, { clientId: `it-notify-watch-${process.pid}`, reconnectPeriod: 0 });
    const onTopic: string[] = [];
    watcher.on('message', (t) => onTopic.push(t));
    await watcher.subscribeAsync('alerts/#', { qos: 1 });
    const hot = setInterval(() => void c.publishAsync('devices/it-notify/telemetry', JSON.stringify({ ts: Date.now(), temperature: 66 }), { qos: 1 }), 1000);
    try {
      const event = await waitFor('the firing event at the webhook', () => received.find((e) => e.device === 'it-notify' && e.state === 'firing'), 40_000, 250);
      expect(event).toMatchObject({ rule: 'temperature-high', severity: 'critical', notify: true, key: 'it-notify/temperature/temperature-high' });
      expect(onTopic).toContain('alerts/it-notify');
    } finally {
      clearInterval(hot);
      await c.endAsync();
      await watcher.endAsync();
    }
  });
});
