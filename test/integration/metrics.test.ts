/**
 * GET /api/v1/metrics on the built runtime (a process on free loopback ports, the shipped flows):
 * readings published over MQTT to the embedded broker, one of them malformed, show up in the message
 * counters of the hooks, in the rejects by code and in the store's counters; the whole body is the
 * Prometheus text format; with API keys set the endpoint needs one of them.
 */
import mqtt from 'mqtt';
import { startRuntime, waitFor, type Runtime } from '../support/services';

jest.setTimeout(90_000);

function publish(port: number, topic: string, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: `metrics-${process.pid}-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 0 });
    c.once('error', reject);
    c.once('connect', () => {
      c.publish(topic, payload, { qos: 1 }, (err) => {
        c.end(false, {}, () => (err ? reject(err) : resolve()));
      });
    });
  });
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?Inf|NaN)';
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?,?\\})? (${VALUE})(?: -?\\d+)?$`);
const HELP_RE = new RegExp(`^# HELP (${NAME}) .*$`);
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const LABEL_G = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g;

/**
 * Parses the Prometheus text exposition format (0.0.4); throws on any line that is not a HELP or TYPE
 * comment, a blank line or a sample, and on a sample of a family that has no TYPE line before it.
 */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  const typed = new Map<string, string>();
  const helped = new Set<string>();
  text.split('\n').forEach((line, i) => {
    if (line === '') return;
    let m: RegExpExecArray | null;
    if ((m = HELP_RE.exec(line))) {
      helped.add(m[1]);
      return;
    }
    if ((m = TYPE_RE.exec(line))) {
      typed.set(m[1], m[2]);
      return;
    }
    m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not Prometheus text: ${JSON.stringify(line)}`);
    const name = m[1];
    const family = typed.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    if (!typed.has(family) || !helped.has(family)) throw new Error(`line ${i + 1}: ${name} has no TYPE or HELP line`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL_G)) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    const raw = m[3];
    const value = /Inf$/.test(raw) ? (raw.startsWith('-') ? -Infinity : Infinity) : Number(raw);
    samples.push({ name, labels, value });
  });
  return samples;
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${url}/api/v1/metrics`, { headers });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

describe('GET /api/v1/metrics without API keys (open on loopback)', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime();
  });
  afterAll(async () => {
    await rt?.stop();
  });

  test('readings over MQTT, one malformed: messages per node type, the reject by code, the store, the process', async () => {
    const ts = Date.now() - 2000;
    await publish(rt.mqttPort, 'devices/met-1/telemetry', JSON.stringify({ ts, temperature: 21.5 }));
    await publish(rt.mqttPort, 'devices/met-1/temperature', '22.5');
    await publish(rt.mqttPort, 'devices/met-2/telemetry', '{"temperature": 21.5');

    // Every scrape's body must parse; waitFor would retry over a parse error, so they are collected here.
    const invalid: string[] = [];
    const s = await waitFor('the reject and both readings in the metrics', async () => {
      const r = await scrape(rt.url);
      let got: Sample[];
      try {
        got = parseExposition(r.text);
      } catch (e) {
        invalid.push((e as Error).message);
        return undefined;
      }
      const stored = valueOf(got, 'thingwire_store_written_lines_total', { store: 'tw.store' }) ?? 0;
      return valueOf(got, 'thingwire_rejects_total', { node_type: 'thingwire-normalise', code: 'malformed_json' }) === 1 && stored >= 2 ? got : undefined;
    });
    expect(invalid).toEqual([]);
    const r = await scrape(rt.url);
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; .*version=0\.0\.4/);
    // Every line of the body parses (parseExposition throws otherwise), with HELP and TYPE per family.
    expect(parseExposition(r.text).length).toBeGreaterThan(50);

    // Hooks: three messages into thingwire-normalise (all three from the mqtt in node), two readings out of it and one reject.
    expect(valueOf(s, 'thingwire_node_messages_received_total', { type: 'thingwire-normalise' })).toBe(3);
    expect(valueOf(s, 'thingwire_node_messages_sent_total', { type: 'thingwire-normalise' })).toBe(3);
    expect(valueOf(s, 'thingwire_node_messages_sent_total', { type: 'thingwire-mqtt-in' })).toBeGreaterThanOrEqual(3);
    expect(valueOf(s, 'thingwire_node_messages_received_total', { type: 'thingwire-validate' })).toBe(2);
    // Only the malformed payload was rejected, by the normaliser.
    expect(s.filter((x) => x.name === 'thingwire_rejects_total').map((x) => [x.labels, x.value])).toEqual([[{ node_type: 'thingwire-normalise', code: 'malformed_json' }, 1]]);
    // No device id is a label value anywhere.
    expect(s.filter((x) => Object.values(x.labels).some((v) => v.startsWith('met-')))).toEqual([]);

    // The store (the starter flow's thingwire-store, id tw.store: embedded DuckDB).
    expect(valueOf(s, 'thingwire_store_state', { store: 'tw.store', state: 'ok' })).toBe(1);
    expect(valueOf(s, 'thingwire_store_state', { store: 'tw.store', state: 'spooling' })).toBe(0);
    for (const g of ['queued_lines', 'memory_batches', 'spooled_batches', 'spooled_bytes']) expect(valueOf(s, `thingwire_store_${g}`, { store: 'tw.store' })).toBe(0);
    expect(valueOf(s, 'thingwire_store_written_lines_total', { store: 'tw.store' })).toBeGreaterThanOrEqual(2);
    expect(valueOf(s, 'thingwire_store_rejected_lines_total', { store: 'tw.store' })).toBe(0);
    expect(valueOf(s, 'thingwire_store_dropped_lines_total', { store: 'tw.store' })).toBe(0);
    // How long the store's writes took: a histogram whose +Inf bucket is its count, buckets never decreasing.
    const writes = valueOf(s, 'thingwire_store_write_seconds_count', { store: 'tw.store' }) ?? 0;
    expect(writes).toBeGreaterThanOrEqual(1);
    const buckets = s.filter((x) => x.name === 'thingwire_store_write_seconds_bucket' && x.labels.store === 'tw.store');
    expect(buckets.map((b) => b.labels.le)).toEqual(['0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);
    expect(buckets[buckets.length - 1].value).toBe(writes);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i].value).toBeGreaterThanOrEqual(buckets[i - 1].value);
    expect(valueOf(s, 'thingwire_store_write_seconds_sum', { store: 'tw.store' })).toBeGreaterThan(0);

    // The starter's at-least-once ingest: three QoS 1 messages, each acknowledged once settled (the
    // malformed one refused by the normaliser, the other two stored), none left in flight.
    const ingest = await waitFor('the ingest to acknowledge all three', async () => {
      const got = parseExposition((await scrape(rt.url)).text);
      return valueOf(got, 'thingwire_ingest_messages_total', { node: 'tw.starter.mqttin', outcome: 'acknowledged' }) === 3 ? got : undefined;
    });
    expect(valueOf(ingest, 'thingwire_ingest_messages_total', { node: 'tw.starter.mqttin', outcome: 'received' })).toBe(3);
    expect(valueOf(ingest, 'thingwire_ingest_messages_total', { node: 'tw.starter.mqttin', outcome: 'refused' })).toBe(1);
    expect(valueOf(ingest, 'thingwire_ingest_messages_total', { node: 'tw.starter.mqttin', outcome: 'timed_out' })).toBe(0);
    expect(valueOf(ingest, 'thingwire_ingest_in_flight', { node: 'tw.starter.mqttin' })).toBe(0);
    expect(valueOf(ingest, 'thingwire_ingest_in_flight_bytes', { node: 'tw.starter.mqttin' })).toBe(0);

    // Broker (the flows' own client at least), devices (none registered: anonymous publishing), the process.
    expect(valueOf(s, 'thingwire_mqtt_clients_connected')).toBeGreaterThanOrEqual(1);
    // The embedded broker's publish log: the three QoS 1 messages logged before their PUBACK, released once the
    // ingest acknowledged them (refused or stored: either way settled).
    expect(valueOf(ingest, 'thingwire_mqtt_publish_log_messages_total', { outcome: 'appended' })).toBeGreaterThanOrEqual(3);
    const log = await waitFor('the publish log to release what the ingest acknowledged', async () => {
      const got = parseExposition((await scrape(rt.url)).text);
      const appended = valueOf(got, 'thingwire_mqtt_publish_log_messages_total', { outcome: 'appended' });
      return valueOf(got, 'thingwire_mqtt_publish_log_messages_total', { outcome: 'released' }) === appended ? got : undefined;
    });
    expect(valueOf(log, 'thingwire_mqtt_publish_log_messages_total', { outcome: 'dropped' })).toBe(0);
    expect(valueOf(log, 'thingwire_mqtt_publish_log_bytes')).toBeGreaterThanOrEqual(0);
    // The starter's input attached in process (not a network client of the broker), nothing waiting in its session.
    expect(valueOf(log, 'thingwire_mqtt_in_process_sessions', { state: 'attached' })).toBe(1);
    expect(valueOf(log, 'thingwire_mqtt_in_process_sessions', { state: 'detached' })).toBe(0);
    expect(valueOf(log, 'thingwire_mqtt_in_process_messages', { state: 'queued' })).toBe(0);
    expect(valueOf(log, 'thingwire_mqtt_in_process_messages', { state: 'unacknowledged' })).toBe(0);
    expect(valueOf(s, 'thingwire_devices_registered')).toBe(0);
    expect(valueOf(s, 'thingwire_nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(valueOf(s, 'thingwire_nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
    expect(valueOf(s, 'thingwire_process_resident_memory_bytes')).toBeGreaterThan(10 * 2 ** 20);
    expect(s.filter((x) => !x.name.startsWith('thingwire_'))).toEqual([]);
  });
});

describe('GET /api/v1/metrics with API keys', () => {
  const ADMIN = 'metrics-admin-key-0123456789';
  const READ = 'metrics-read-key-0123456789';
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime({ THINGWIRE_API_KEY: ADMIN, THINGWIRE_API_READ_KEY: READ });
  });
  afterAll(async () => {
    await rt?.stop();
  });

  test('401 in the API error shape without a key or with a wrong one; 200 with either key', async () => {
    for (const headers of [{}, { 'X-API-Key': 'not-the-key-0123456789' }, { Authorization: `Bearer ${READ}0` }] as Array<Record<string, string>>) {
      const r = await scrape(rt.url, headers);
      expect(r.status).toBe(401);
      expect(r.type).toMatch(/^application\/json/);
      expect(JSON.parse(r.text)).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    }
    const byRead = await scrape(rt.url, { Authorization: `Bearer ${READ}` });
    expect(byRead.status).toBe(200);
    expect(valueOf(parseExposition(byRead.text), 'thingwire_devices_registered')).toBe(0);
    const byAdmin = await scrape(rt.url, { 'X-API-Key': ADMIN });
    expect(byAdmin.status).toBe(200);
    expect(parseExposition(byAdmin.text).length).toBeGreaterThan(50);
  });

  test('registered and enabled devices follow the registry', async () => {
    const api = (method: string, p: string, body?: object): Promise<Response> =>
      fetch(`${rt.url}/api/v1${p}`, { method, headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
    expect((await api('POST', '/devices', { id: 'met-a' })).status).toBe(201);
    expect((await api('POST', '/devices', { id: 'met-b' })).status).toBe(201);
    expect((await api('PATCH', '/devices/met-b', { enabled: false })).status).toBe(200);
    const s = parseExposition((await scrape(rt.url, { 'X-API-Key': READ })).text);
    expect(valueOf(s, 'thingwire_devices_registered')).toBe(2);
    expect(valueOf(s, 'thingwire_devices_enabled')).toBe(1);
    // The API's requests went through the flow's thingwire-device node, and the hooks saw it.
    expect(valueOf(s, 'thingwire_node_messages_received_total', { type: 'thingwire-device' })).toBeGreaterThanOrEqual(3);
  });
});
