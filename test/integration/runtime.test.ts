/**
 * The bundled runtime as a user runs it: started as a process on free loopback
 * ports, fed by real MQTT clients (mqtt.js and mosquitto_pub), observed through
 * its health endpoint and the editor's debug channel, and stopped by a signal.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import mqtt from 'mqtt';
import { DebugTap } from '../support/comms';
import { ROOT, requireBinary, startMosquitto, startRuntime, tmpDir, waitFor, type Runtime, type Service } from '../support/services';

jest.setTimeout(60_000);

function publish(port: number, topic: string, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: `test-${process.pid}-${Math.random().toString(16).slice(2)}` });
    c.once('error', reject);
    c.once('connect', () => {
      c.publish(topic, payload, { qos: 1 }, (err) => {
        c.end(false, {}, () => (err ? reject(err) : resolve()));
      });
    });
  });
}

function mosquittoPub(port: number, topic: string, payload: string): void {
  const bin = requireBinary('mosquitto_pub', 'mosquitto-clients');
  const r = spawnSync(bin, ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-m', payload], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`mosquitto_pub failed: ${r.stderr}`);
}

async function health(url: string): Promise<{ status: number; body: { status: string; components: Record<string, { state: string; detail: string }> } }> {
  const res = await fetch(`${url}/api/v1/health`);
  return { status: res.status, body: (await res.json()) as never };
}

const rejectsOf = (tap: DebugTap) => tap.messages.filter((m) => m.name === 'rejected (msg.error)').map((m) => JSON.parse(m.msg) as { code: string; message: string; source: string });

describe('bundled runtime with the embedded broker', () => {
  let rt: Runtime;
  let tap: DebugTap;

  beforeAll(async () => {
    // A small answer budget, so one test can pass it (every other query here answers far fewer points).
    rt = await startRuntime({ THINGWIRE_QUERY_MAX_POINTS: '2000' });
    tap = await DebugTap.open(rt.url);
  });
  afterAll(async () => {
    tap?.close();
    await rt?.stop();
  });

  test('health names each component and its state', async () => {
    const h = await waitFor('flows to be up', async () => {
      const r = await health(rt.url);
      return r.body.components.flows.state === 'up' ? r : undefined;
    });
    expect(h.status).toBe(200);
    expect(h.body.status).toBe('ok');
    expect(h.body.components.broker.state).toBe('up');
    expect(h.body.components.broker.detail).toBe('embedded broker');
    // The starter flow's store: with no INFLUX_URL, the embedded DuckDB file in DATA_DIR.
    expect(h.body.components.store.state).toBe('up');
    expect(h.body.components.store.detail).toContain('embedded (DuckDB)');
  });

  test('the editor, the dashboard and the package examples are served', async () => {
    expect((await fetch(`${rt.url}/`)).status).toBe(200);
    expect((await fetch(`${rt.url}/dashboard`)).status).toBe(200);
    const nodes = (await (await fetch(`${rt.url}/nodes`, { headers: { Accept: 'application/json' } })).json()) as Array<{ module: string; types: string[]; enabled: boolean; err?: string }>;
    const ours = nodes.filter((n) => n.module === 'node-red-contrib-thingwire');
    expect(ours.flatMap((n) => n.types).sort()).toEqual(['thingwire-alert', 'thingwire-anomaly', 'thingwire-batch', 'thingwire-device', 'thingwire-mqtt-in', 'thingwire-normalise', 'thingwire-query', 'thingwire-registry', 'thingwire-retention', 'thingwire-schemas', 'thingwire-store', 'thingwire-validate', 'thingwire-window', 'thingwire-write']);
    for (const n of ours) expect(n.err).toBeUndefined();
    const ex = await fetch(`${rt.url}/library/examples/flows/node-red-contrib-thingwire/starter`);
    expect(ex.status).toBe(200);
    const flow = (await ex.json()) as Array<{ type: string }>;
    expect(flow.some((n) => n.type === 'thingwire-validate')).toBe(true);
  });

  test('readings from mqtt.js and mosquitto_pub pass; bad ones are rejected with their reason', async () => {
    // Valid readings produce no reject; a reject for them would show up below with their device.
    await publish(rt.mqttPort, 'devices/it-mqttjs/telemetry', JSON.stringify({ temperature: 21.5, humidity: 40 }));
    mosquittoPub(rt.mqttPort, 'devices/it-mosq/temperature', '22.25');
    // Three bad ones: not JSON, out of the schema's range, and a hostile device id in the payload.
    mosquittoPub(rt.mqttPort, 'devices/it-bad/telemetry', '{"temperature": 21.5');
    await publish(rt.mqttPort, 'devices/it-bad/telemetry', JSON.stringify({ temperature: 999 }));
    await publish(rt.mqttPort, 'devices/it-bad/telemetry', JSON.stringify({ device: 'it-bad\nx', temperature: 1 }));
    const rejects = await waitFor('three rejects in the debug sidebar', () => (rejectsOf(tap).length >= 3 ? rejectsOf(tap) : undefined));
    expect(rejects.map((r) => r.code).sort()).toEqual(['device_mismatch', 'malformed_json', 'validation_failed']);
    const schemaReject = rejects.find((r) => r.code === 'validation_failed')!;
    expect(schemaReject.source).toBe('thingwire-validate');
    expect(schemaReject.message).toContain('/metrics/temperature');
    // No node error reached the Catch node.
    expect(tap.messages.filter((m) => m.name === 'errors')).toEqual([]);
  });

  test('accepted readings are stored and read back through GET /api/v1/series', async () => {
    const ts = Date.now() - 5000;
    await publish(rt.mqttPort, 'devices/it-store/telemetry', JSON.stringify([{ ts, temperature: 20.25 }, { ts: ts + 1000, temperature: 20.75 }]));
    const body = await waitFor('the readings in the store', async () => {
      const res = await fetch(`${rt.url}/api/v1/series?devices=it-store&fields=temperature&start=-10m`);
      const b = (await res.json()) as { series: Array<{ device: string; field: string; points: Array<[number, number]> }> };
      return b.series[0]?.points.length === 2 ? b : undefined;
    });
    expect(body.series).toEqual([{ device: 'it-store', field: 'temperature', points: [[ts, 20.25], [ts + 1000, 20.75]] }]);
    const bad = await fetch(`${rt.url}/api/v1/series?devices=${encodeURIComponent("x' OR 1=1")}`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('invalid_query');
  });

  test('GET /api/v1/series: an answer past THINGWIRE_QUERY_MAX_POINTS is 413 query_too_large; with maxPoints the same range answers', async () => {
    const t0 = Date.now() - 2500 * 100 - 5000;
    const readings = Array.from({ length: 2500 }, (_, i) => ({ ts: t0 + i * 100, temperature: 20 + Math.sin(i / 50) }));
    await publish(rt.mqttPort, 'devices/it-big/telemetry', JSON.stringify(readings));
    const url = (q: string): string => `${rt.url}/api/v1/series?devices=it-big&fields=temperature&start=-10m&${q}`;
    await waitFor('2,500 readings in the store', async () => {
      const b = (await (await fetch(url('bucket=10m&agg=count'))).json()) as { series: Array<{ points: Array<[number, number]> }> };
      return b.series[0]?.points.reduce((n, p) => n + p[1], 0) === 2500 ? true : undefined;
    });
    const big = await fetch(url('maxPoints=0'));
    expect(big.status).toBe(413);
    expect(await big.json()).toEqual({
      error: { code: 'query_too_large', message: 'embedded store query: the answer has more than 2,000 points; narrow the range, the devices or the fields, or ask for maxPoints or buckets' },
    });
    const down = (await (await fetch(url('maxPoints=300'))).json()) as { series: Array<{ points: Array<[number, number]> }> };
    expect(down.series[0].points).toHaveLength(300);
    expect(down.series[0].points[0]).toEqual([t0, 20]);
    expect(down.series[0].points[299][0]).toBe(t0 + 2499 * 100);
  });

  test('the starter flow rolls readings up into 1m, 1h and 1d windows on event time, stored and read back by level', async () => {
    // Readings around the last UTC midnight D: the newest (D + 100 s) moves the device's watermark (minus 30 s
    // lateness) to D + 70 s, which closes the minutes up to D + 1 min, the hour [D - 1h, D) and the day [D - 1d, D).
    const D = Math.floor(Date.now() / 86_400_000) * 86_400_000;
    const before = [
      { ts: D - 150_000, temperature: 10 },
      { ts: D - 140_000, temperature: 14 },
      { ts: D - 90_000, temperature: 20 },
      { ts: D - 30_000, temperature: 30 },
    ];
    const after = [
      { ts: D + 45_000, temperature: 99 },
      { ts: D + 100_000, temperature: 98 },
    ];
    await publish(rt.mqttPort, 'devices/it-rollup/telemetry', JSON.stringify([...before, ...after]));
    type Body = { series: Array<{ device: string; field: string; tags?: Record<string, string>; points: Array<[number, number]> }> };
    const read = async (level: string, stat = 'mean'): Promise<Body> => {
      const res = await fetch(`${rt.url}/api/v1/series?devices=it-rollup&fields=temperature&start=${D - 2 * 86_400_000}&end=${D + 86_400_000}&level=${level}&stat=${stat}`);
      expect(res.status).toBe(200);
      return (await res.json()) as Body;
    };
    const day = await waitFor('the 1d rollup in the store', async () => {
      const b = await read('1d');
      return b.series[0]?.points.length === 1 ? b : undefined;
    });
    expect(day.series).toEqual([{ device: 'it-rollup', field: 'temperature', tags: { level: '1d', stat: 'mean' }, points: [[D - 86_400_000, 18.5]] }]);
    const hour = await read('1h', 'count');
    expect(hour.series[0].points).toEqual([[D - 3_600_000, 4]]);
    const minutes = await read('1m');
    expect(minutes.series[0].points).toEqual([
      [D - 180_000, 12],
      [D - 120_000, 20],
      [D - 60_000, 30],
      [D, 99], // [D, D + 1 min) closed too; [D + 1 min, D + 2 min) is still open
    ]);
    // 'auto' over these three days reads the 1h level (4,320 one-minute windows would be too many).
    const auto = (await (await fetch(`${rt.url}/api/v1/series?devices=it-rollup&fields=temperature&start=${D - 2 * 86_400_000}&end=${D + 86_400_000}&level=auto`)).json()) as Body;
    expect(auto.series[0].tags).toEqual({ level: '1h', stat: 'mean' });
  });

  test('the starter flow scores readings: scores with their band in the store, and an anomaly event when a reading jumps', async () => {
    // 300 calm readings (past the 150-reading warm-up), then a jump far outside everything seen.
    const t0 = Date.now() - 301 * 5_000;
    const calm = Array.from({ length: 300 }, (_, i) => ({ ts: t0 + i * 5_000, temperature: 20 + 0.2 * Math.sin(i / 7) + 0.05 * Math.cos(i * 1.7) }));
    await publish(rt.mqttPort, 'devices/it-anomaly/telemetry', JSON.stringify(calm));
    await publish(rt.mqttPort, 'devices/it-anomaly/telemetry', JSON.stringify({ ts: t0 + 300 * 5_000, temperature: 35 }));
    type Body = { series: Array<{ device: string; field: string; points: Array<[number, number | string | boolean]> }> };
    const read = async (q: string): Promise<Body> => (await (await fetch(`${rt.url}/api/v1/series?devices=it-anomaly&start=-1h&${q}`)).json()) as Body;
    const scores = await waitFor('301 scores in the store', async () => {
      const b = await read('measurement=anomaly&fields=score,expected,lower,upper,value');
      return b.series.find((x) => x.field === 'score')?.points.length === 301 ? b : undefined;
    });
    const field = (f: string): Array<[number, number | string | boolean]> => scores.series.find((x) => x.field === f)!.points;
    const last = field('score').at(-1)!;
    expect(last[0]).toBe(t0 + 300 * 5_000);
    expect(last[1]).toBeGreaterThanOrEqual(0.57);
    // While calm, the scores are low and the band holds the value.
    const calmScores = field('score').slice(200, 300).map((p) => p[1] as number);
    expect(Math.max(...calmScores)).toBeLessThan(0.57);
    // The starter stores no `value` with a score (Score fields): the reading's own value is in telemetry.
    expect(scores.series.map((x) => x.field)).not.toContain('value');
    const calmValue = calm[299].temperature;
    const lower = field('lower').at(-2)![1] as number;
    const upper = field('upper').at(-2)![1] as number;
    expect(field('lower').at(-2)![0]).toBe(t0 + 299 * 5_000);
    expect(lower).toBeLessThan(calmValue);
    expect(upper).toBeGreaterThan(calmValue);
    expect(upper).toBeLessThan(35);
    // The jump fired one anomaly event, stored with the alert events.
    const events = await waitFor('the anomaly event in the store', async () => {
      const b = await read('measurement=alerts&fields=state');
      return b.series[0]?.points.length ? b : undefined;
    });
    expect(events.series[0].points).toEqual([[t0 + 300 * 5_000, 'firing']]);
  });

  test('an oversize payload is rejected before parsing', async () => {
    const before = rejectsOf(tap).length;
    await publish(rt.mqttPort, 'devices/it-big/telemetry', `{"pad":"${'x'.repeat(300 * 1024)}"}`);
    const r = await waitFor('the oversize reject', () => rejectsOf(tap).slice(before).find((x) => x.code === 'payload_too_large'));
    expect(r.message).toContain('262144');
  });
});

describe('runtime lifecycle', () => {
  test('malformed environment stops start-up with a clear message', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/runtime/main.js')], {
      env: { ...process.env, PORT: 'eighty', MQTT_URL: 'http://x', THINGWIRE_TYPO: '1' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('PORT="eighty" is not a port number');
    expect(r.stderr).toContain('MQTT_URL="http://x" must use mqtt://');
    expect(r.stderr).toContain('THINGWIRE_TYPO is not a Thingwire setting');
  });

  test('SIGTERM closes flows and broker and exits 0; a restart keeps the deployed flows', async () => {
    const dataDir = tmpDir('restart');
    const rt = await startRuntime({}, dataDir);
    const flowFile = path.join(dataDir, 'node-red', 'flows.json');
    expect(fs.existsSync(flowFile)).toBe(true);
    // An integrator's change, deployed through the admin API.
    const flows = (await (await fetch(`${rt.url}/flows`, { headers: { 'Node-RED-API-Version': 'v2' } })).json()) as { rev: string; flows: Array<Record<string, unknown>> };
    const tab = flows.flows.find((n) => n.id === 'tw.starter.tab')!;
    tab.label = 'my edited flow';
    const dep = await fetch(`${rt.url}/flows`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify(flows),
    });
    expect(dep.status).toBe(200);
    // A reading still in the store's 1 s batch when SIGTERM arrives: close() must write it.
    await waitFor('the redeployed flow to subscribe', async () => (await health(rt.url)).body.components.flows.state === 'up');
    const tap = await DebugTap.open(rt.url);
    const ts = Date.now() - 1000;
    await waitFor('the reading to be accepted', async () => {
      await publish(rt.mqttPort, 'devices/it-restart/telemetry', JSON.stringify({ ts, temperature: 30.5 }));
      const h = (await (await fetch(`${rt.url}/api/v1/health`)).json()) as { components: { store: { stores?: Array<{ queuedLines: number; written: number }> } } };
      const s = h.components.store.stores?.[0];
      return s !== undefined && s.queuedLines + s.written > 0;
    });
    // The window node has it too (its status counts keys): it reaches the window through two more hops than the store.
    await waitFor('the window node to hold the reading', () => tap.statuses.some((st) => st.id === 'tw.win.window' && /^[1-9]\d* keys/.test(st.text ?? '')));
    tap.close();
    const exited = new Promise<number | null>((resolve) => rt.proc.once('exit', (code) => resolve(code)));
    rt.proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(rt.output()).toContain('[thingwire] stopped');
    // The window node saved its open windows on close, to be restored by the next start.
    expect(fs.existsSync(path.join(dataDir, 'state', 'thingwire-window', 'tw.win.window.json'))).toBe(true);

    const again = await startRuntime({}, dataDir);
    try {
      const after = (await (await fetch(`${again.url}/flows`)).json()) as Array<Record<string, unknown>>;
      expect(after.find((n) => n.id === 'tw.starter.tab')!.label).toBe('my edited flow');
      const series = (await (await fetch(`${again.url}/api/v1/series?devices=it-restart&fields=temperature&start=-10m`)).json()) as { series: Array<{ points: Array<[number, number]> }> };
      expect(series.series[0].points).toContainEqual([ts, 30.5]);
    } finally {
      await again.stop();
    }
    // THINGWIRE_RESEED=1 brings the shipped flows back, keeping a backup.
    const reseeded = await startRuntime({ THINGWIRE_RESEED: '1' }, dataDir);
    try {
      const after = (await (await fetch(`${reseeded.url}/flows`)).json()) as Array<Record<string, unknown>>;
      expect(after.find((n) => n.id === 'tw.starter.tab')!.label).toBe('Thingwire: telemetry starter');
      expect(fs.readdirSync(path.join(dataDir, 'node-red')).some((f) => f.startsWith('flows.json.') && f.endsWith('.bak'))).toBe(true);
    } finally {
      await reseeded.stop();
    }
  });
});

describe('runtime with an external broker (MQTT_URL, real mosquitto)', () => {
  let mosq: Service;
  let rt: Runtime;
  let tap: DebugTap;

  beforeAll(async () => {
    mosq = await startMosquitto();
    rt = await startRuntime({ MQTT_URL: `mqtt://127.0.0.1:${mosq.port}` });
    tap = await DebugTap.open(rt.url);
  });
  afterAll(async () => {
    tap?.close();
    await rt?.stop();
    await mosq?.stop();
  });

  test('no embedded broker is started; data flows through mosquitto', async () => {
    const h = await waitFor('external broker up', async () => {
      const r = await health(rt.url);
      return r.body.components.broker.state === 'up' && r.body.components.flows.state === 'up' ? r : undefined;
    });
    expect(h.body.components.broker.detail).toBe(`external broker mqtt://127.0.0.1:${mosq.port}`);
    expect(rt.mqttPort).toBe(mosq.port);
    // The flow subscribes a moment after it starts: publish until its reject shows up.
    await waitFor(
      'a reject through mosquitto',
      () => {
        mosquittoPub(mosq.port, 'devices/ext-1/telemetry', 'not json');
        return rejectsOf(tap).some((r) => r.code === 'malformed_json');
      },
      15_000,
      500,
    );
  });

  test('health says degraded when the external broker goes away', async () => {
    await mosq.stop();
    const h = await waitFor('broker down', async () => {
      const r = await health(rt.url);
      return r.body.components.broker.state === 'down' ? r : undefined;
    });
    expect(h.status).toBe(503);
    expect(h.body.status).toBe('degraded');
  });
});

