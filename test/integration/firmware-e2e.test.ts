/**
 * The device firmware end to end (issue 10, item 5): the MicroPython code base run under CPython by
 * firmware/tests/host.py (real time, real sockets; only Wi-Fi, DHT22 and watchdog stood in for)
 * against the built runtime with device authentication on the broker. Devices are registered through
 * the HTTP API (the README's provisioning steps); each transport's readings must come back through
 * GET /api/v1/series exactly as the firmware says it delivered them: MQTT batches, MQTT summaries,
 * HTTP to the native entries endpoint, HTTP to the ThingSpeak bulk_update endpoint.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { ROOT, startRuntime, type Runtime } from '../support/services';

jest.setTimeout(120_000);

const KEY = 'admin-key-firmware-e2e-0123456789';
const H = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' };
const HOST = path.join(ROOT, 'firmware', 'tests', 'host.py');

type Reading = Record<string, number> & { ts: number };
interface DeviceRun {
  sent: Reading[];
  stats: Record<string, number>;
  code: number | null;
  stderr: string;
}

async function register(rt: Runtime, id: string): Promise<string> {
  const res = await fetch(`${rt.url}/api/v1/devices`, { method: 'POST', headers: H, body: JSON.stringify({ id, type: 'pico-w-dht22' }) });
  const body = (await res.json()) as { token?: string };
  if (res.status !== 201 || !body.token) throw new Error(`registering ${id}: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

async function stream(rt: Runtime, id: string, device: string): Promise<void> {
  const schema = { type: 'object', properties: { temperature: { type: 'number', minimum: -40, maximum: 80 }, humidity: { type: 'number', minimum: 0, maximum: 100 } } };
  const res = await fetch(`${rt.url}/api/v1/streams`, { method: 'POST', headers: H, body: JSON.stringify({ id, name: id, device, schema }) });
  if (res.status !== 201) throw new Error(`stream ${id}: ${res.status} ${await res.text()}`);
}

function runDevice(args: string[]): Promise<DeviceRun> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', [HOST, ...args], { cwd: ROOT, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const sent: Reading[] = [];
      let stats: Record<string, number> = {};
      for (const line of out.split('\n').filter(Boolean)) {
        const o = JSON.parse(line) as { sent?: Reading | Reading[]; stats?: Record<string, number> };
        if (o.sent) sent.push(...(Array.isArray(o.sent) ? o.sent : [o.sent]));
        if (o.stats) stats = o.stats;
      }
      resolve({ sent, stats, code, stderr: err });
    });
  });
}

async function stored(rt: Runtime, device: string, fields: string[]): Promise<Map<string, Map<number, number>>> {
  const res = await fetch(`${rt.url}/api/v1/series?devices=${device}&fields=${fields.join(',')}&start=-30m`, { headers: H });
  const body = (await res.json()) as { series: Array<{ device: string; field: string; points: Array<[number, number]> }> };
  const out = new Map<string, Map<number, number>>();
  for (const s of body.series) if (s.device === device) out.set(s.field, new Map(s.points));
  return out;
}

/** Waits until the store holds every sent reading's `fields` (the write node batches for up to a second). */
async function expectStored(rt: Runtime, device: string, sent: Reading[], fields: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  let missing: string[];
  for (;;) {
    const got = await stored(rt, device, fields);
    missing = [];
    for (const r of sent) {
      for (const f of fields) {
        const v = got.get(f)?.get(r.ts);
        if (v === undefined || Math.abs(v - r[f]) > 1e-9) missing.push(`${f}@${r.ts}=${r[f]} (stored ${String(v)})`);
      }
    }
    if (!missing.length) {
      for (const f of fields) expect(got.get(f)?.size).toBe(sent.length); // nothing extra, nothing twice
      return;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${device}: ${missing.length} of ${sent.length * fields.length} values not stored, e.g. ${missing.slice(0, 5).join(', ')}`);
}

describe('firmware (under CPython) against the real runtime', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime({ THINGWIRE_API_KEY: KEY, THINGWIRE_MQTT_ANONYMOUS: '0' });
  });
  afterAll(async () => {
    await rt?.stop();
  });

  it('delivers readings over MQTT (batches and edge summaries) and HTTP (native and ThingSpeak) that come back through the query API', async () => {
    const ids = ['pico-mqtt', 'pico-summary', 'pico-http', 'pico-ts'];
    const tokens = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await register(rt, id)] as const)));
    await stream(rt, 'pico-http-s', 'pico-http');
    await stream(rt, 'pico-ts-s', 'pico-ts');
    const broker = `127.0.0.1:${rt.mqttPort}`;
    // --token=<token>: a token may start with '-' (base64url), which argparse would take for an option after a space.
    const common = ['--samples', '15', '--sample-ms', '200', '--send-s', '1', '--timeout-s', '60'];
    const [mqttRun, summaryRun, httpRun, tsRun] = await Promise.all([
      runDevice(['--device', 'pico-mqtt', `--token=${tokens['pico-mqtt']}`, '--broker', broker, ...common]),
      runDevice(['--device', 'pico-summary', `--token=${tokens['pico-summary']}`, '--broker', broker, '--send-mode', 'summary', ...common]),
      runDevice(['--device', 'pico-http', `--token=${tokens['pico-http']}`, '--transport', 'http', '--http-url', rt.url, '--stream', 'pico-http-s', ...common]),
      runDevice(['--device', 'pico-ts', `--token=${tokens['pico-ts']}`, '--transport', 'http', '--http-api', 'thingspeak', '--http-url', rt.url, '--stream', 'pico-ts-s', ...common]),
    ]);
    for (const [name, r] of Object.entries({ mqttRun, summaryRun, httpRun, tsRun })) {
      if (r.code !== 0) throw new Error(`${name} exited ${String(r.code)}: ${JSON.stringify(r.stats)}\n${r.stderr}`);
      expect(r.stats.queued).toBe(0);
      expect(r.stats.rejected).toBe(0);
      expect(r.stats.dropped).toBe(0);
    }
    expect(mqttRun.sent).toHaveLength(15);
    expect(httpRun.sent).toHaveLength(15);
    expect(tsRun.sent).toHaveLength(15);
    expect(mqttRun.stats.connects).toBe(1);
    // Summaries: fewer messages than samples, each with mean, min, max and count.
    expect(summaryRun.sent.length).toBeGreaterThanOrEqual(2);
    expect(summaryRun.sent.length).toBeLessThan(15);
    expect(summaryRun.sent.reduce((n, r) => n + r.samples, 0)).toBe(15);
    for (const r of summaryRun.sent) expect(r.temperature_min).toBeLessThanOrEqual(r.temperature_max);

    await expectStored(rt, 'pico-mqtt', mqttRun.sent, ['temperature', 'humidity', 'chip_temperature']);
    await expectStored(rt, 'pico-summary', summaryRun.sent, ['temperature', 'temperature_min', 'temperature_max', 'samples']);
    await expectStored(rt, 'pico-http', httpRun.sent, ['temperature', 'humidity', 'chip_temperature']);
    // ThingSpeak: created_at carries the ms; field1..3 are stored as metrics of the device under those names.
    const asFields = tsRun.sent.map((r) => ({ ts: r.ts, field1: r.temperature, field2: r.humidity, field3: r.chip_temperature }) as Reading);
    await expectStored(rt, 'pico-ts', asFields, ['field1', 'field2', 'field3']);
  });

  it('a device with a wrong token keeps its readings and says why', async () => {
    await register(rt, 'pico-bad');
    const r = await runDevice(['--device', 'pico-bad', '--token=not-the-token', '--broker', `127.0.0.1:${rt.mqttPort}`, '--samples', '3', '--sample-ms', '200', '--timeout-s', '4']);
    expect(r.code).toBe(1);
    expect(r.sent).toEqual([]);
    expect(r.stats.queued).toBe(3);
    expect(r.stderr).toMatch(/mqtt connect failed .*retry in/);
  });
});
