/**
 * At-least-once ingest under faults (issue 11, item 4; short forms for CI, the long ones in
 * `npm run faults`): the built runtime with the shipped flows reads devices from an external mosquitto
 * (MQTT_URL; persistence on, no cap on queued messages: the settings the README asks for) through the
 * starter's thingwire-mqtt-in, whose PUBACKs wait until the raw readings are in the embedded store.
 * A load generator publishes numbered readings at QoS 1 and the checker reads every seq back through
 * GET /api/v1/series:
 * - the runtime killed with SIGKILL under load and started again on the same DATA_DIR: nothing lost
 *   (what it held unacknowledged comes again from the broker's session; the store keeps one copy), and
 *   the window node's 1m rollups count every reading exactly once (its journal taken again over its
 *   snapshot, the redeliveries recognised); the same with the runtime's own embedded broker, which dies
 *   with it (its publish log brings back what it had acknowledged);
 * - mosquitto stopped under load, down for 2 s, and started again on its persistence file: nothing lost
 *   (publishers and the runtime reconnect; the broker delivers what it had queued or in flight), and the
 *   rollups count each reading once (the redeliveries recognised);
 * - a burst faster than the store (embedded broker and store): what the store cannot take at once waits in
 *   memory (past 256 batches in its disk spool), nothing is refused, every message is acknowledged, every
 *   reading stored.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as mqtt from 'mqtt';
import { LoadGenerator, checkRollupCounts, expectedOf, readSeqsViaApi, type CheckReport } from '../../runtime/loadgen';
import { sleep, startMosquitto, startRuntime, tmpDir, waitFor, type Mosquitto, type Runtime } from '../support/services';
import { waitForEveryReading } from '../support/stored';

jest.setTimeout(180_000);

const DEVICES = 100;
const RATE = 300;
const SECONDS = 12;

let broker: Mosquitto | undefined;
let rt: Runtime | undefined;
afterEach(async () => {
  await rt?.stop();
  rt = undefined;
  await broker?.stop();
  broker = undefined;
});

/** Waits until the runtime's ingest stores a probe reading: its session and subscription exist. */
async function ingestReady(runtime: Runtime, mqttUrl: string): Promise<void> {
  const c = await mqtt.connectAsync(mqttUrl, { clientId: `probe-${process.pid}`, reconnectPeriod: 0 });
  try {
    let seq = 0;
    await waitFor(
      'the ingest to store a probe reading',
      async () => {
        await c.publishAsync('devices/probe-1/telemetry', JSON.stringify({ ts: Date.now(), seq: ++seq }), { qos: 1 });
        await sleep(300);
        return (await readSeqsViaApi(runtime.url, ['probe-1'], Date.now() - 60_000, Date.now() + 1000)).length > 0;
      },
      30_000,
      200,
    );
  } finally {
    await c.endAsync();
  }
}

async function everyReadingStored(runtime: Runtime, gen: LoadGenerator, start: number, published: number): Promise<CheckReport> {
  const report = await waitForEveryReading(runtime.url, gen, start, 90_000);
  expect(report).toMatchObject({ devices: DEVICES, expected: published, storedDistinct: published, missing: 0, duplicates: 0, unexpected: 0 });
  return report;
}

/**
 * The window node's 1m rollups count every published reading exactly once (checkRollupCounts: the load's windows
 * closed by a reading per device two minutes ahead; each device's stored counts of `seq` must be what it published:
 * none lost, no redelivery counted twice).
 */
async function everyReadingInRollups(runtime: Runtime, gen: LoadGenerator, mqttUrl: string, start: number, published: number): Promise<void> {
  const r = await checkRollupCounts(mqttUrl, runtime.url, expectedOf(gen), start, { timeoutMs: 60_000, settleMs: 1500 });
  expect(r.mismatched).toEqual([]);
  expect(r).toMatchObject({ published, counted: published });
}

function load(url: string): LoadGenerator {
  return new LoadGenerator({ url, devices: DEVICES, prefix: 'devices', qos: 1, connections: 4, metrics: 3, padBytes: 0, maxInFlight: 500, reconnect: true });
}

/**
 * The load for SECONDS, the runtime killed with SIGKILL 4 s in and started again by `restart` (on the same
 * DATA_DIR); then every reading stored once and counted once in the 1m rollups.
 */
async function killedUnderLoad(mqttUrl: string, restart: () => Promise<Runtime>, batch = 1, rate = RATE): Promise<void> {
  await ingestReady(rt!, mqttUrl);
  const gen = load(mqttUrl);
  await gen.connect();
  const start = Date.now();
  // An exact count: a phase bounded by time alone published fewer on a loaded machine (tokens lost while held up).
  const phase = gen.run({ rate, durationMs: SECONDS * 1000, batch, readings: rate * SECONDS });
  await sleep(4000);
  const killed = rt!;
  const exited = new Promise((r) => killed.proc.once('exit', r));
  killed.proc.kill('SIGKILL');
  await exited;
  rt = undefined;
  await sleep(1000);
  rt = await restart();
  const res = await phase;
  await gen.close();
  expect(res.failed).toBe(0);
  expect(res.readings).toBe(rate * SECONDS);
  await everyReadingStored(rt, gen, start, res.readings);
  await everyReadingInRollups(rt, gen, mqttUrl, start, res.readings);
}

test('the runtime killed (SIGKILL) under load and restarted: every reading is stored', async () => {
  broker = await startMosquitto({ persistence: true });
  const mqttUrl = `mqtt://127.0.0.1:${broker.port}`;
  const dataDir = tmpDir('ingest-kill');
  rt = await startRuntime({ MQTT_URL: mqttUrl }, dataDir);
  await killedUnderLoad(mqttUrl, () => startRuntime({ MQTT_URL: mqttUrl }, dataDir));
});

test('the runtime killed (SIGKILL) under load with its EMBEDDED broker and restarted: every reading is stored', async () => {
  // No external broker: the broker dies with the runtime. What it had acknowledged to the publishers but the ingest
  // had not yet stored comes back from its publish log (DATA_DIR/mqtt-log), queued for the flows' session, which
  // it recreates before it listens; what it had not acknowledged, the publishers send again when they reconnect.
  // Before the log: 660 of 3,600 readings lost (82 with the sessions recreated but no replay).
  const dataDir = tmpDir('ingest-kill-embedded');
  rt = await startRuntime({}, dataDir);
  const mqttPort = rt.mqttPort;
  await killedUnderLoad(`mqtt://127.0.0.1:${mqttPort}`, () => startRuntime({ MQTT_PORT: String(mqttPort) }, dataDir));
});

test('devices sending batches, the runtime killed (SIGKILL) with its EMBEDDED broker and restarted: every reading is stored', async () => {
  // After the restart the broker's publish log hands the flows' session what it held, and the input takes up to its
  // window of it in one turn: one group of hundreds of device batches. normalise made that one batch of more readings
  // than the registry node takes (10,000), refused whole: its deliveries acknowledged, its readings lost.
  const dataDir = tmpDir('ingest-kill-embedded-batches');
  rt = await startRuntime({}, dataDir);
  const mqttPort = rt.mqttPort;
  await killedUnderLoad(`mqtt://127.0.0.1:${mqttPort}`, () => startRuntime({ MQTT_PORT: String(mqttPort) }, dataDir), 100, 20_000);
  const m = await (await fetch(`${rt!.url}/api/v1/metrics`)).text();
  expect(m).not.toMatch(/thingwire_rejects_total\{[^}]*code="payload_too_large"\}/);
});

test('mosquitto stopped under load and started again (persistence): every reading is stored', async () => {
  broker = await startMosquitto({ persistence: true });
  const mqttUrl = `mqtt://127.0.0.1:${broker.port}`;
  rt = await startRuntime({ MQTT_URL: mqttUrl }, tmpDir('ingest-broker'));
  await ingestReady(rt, mqttUrl);

  const gen = load(mqttUrl);
  await gen.connect();
  const start = Date.now();
  const phase = gen.run({ rate: RATE, durationMs: SECONDS * 1000, batch: 1, readings: RATE * SECONDS });
  await sleep(4000);
  const { dir, port } = broker;
  await broker.stop();
  await sleep(2000);
  broker = await startMosquitto({ persistence: true, dir, port });
  const res = await phase;
  await gen.close();
  expect(res.failed).toBe(0);
  expect(res.readings).toBe(RATE * SECONDS);
  await everyReadingStored(rt, gen, start, res.readings);
  await everyReadingInRollups(rt, gen, mqttUrl, start, res.readings);
});

/**
 * Batches of 100 readings from `devices` at `rate` readings/s for `seconds` into a fresh runtime (embedded broker and
 * store): every reading stored once, every delivery acknowledged, none refused or left unacknowledged, no line
 * refused by the store and no batch refused as too large.
 */
async function batchedBurst(o: { devices: number; rate: number; seconds: number; maxInFlight: number; storedWithinMs: number }): Promise<void> {
  rt = await startRuntime();
  const runtime = rt;
  const gen = new LoadGenerator({ url: `mqtt://127.0.0.1:${runtime.mqttPort}`, devices: o.devices, prefix: 'devices', qos: 1, connections: 4, metrics: 3, padBytes: 0, maxInFlight: o.maxInFlight });
  await gen.connect();
  const start = Date.now();
  const readings = o.rate * o.seconds;
  const res = await gen.run({ rate: o.rate, durationMs: o.seconds * 1000, batch: 100, readings });
  await gen.close();
  expect(res.failed).toBe(0);
  expect(res.readings).toBe(readings);
  const report = await waitForEveryReading(runtime.url, gen, start, o.storedWithinMs);
  expect(report).toMatchObject({ devices: o.devices, expected: readings, storedDistinct: readings, missing: 0, duplicates: 0, unexpected: 0 });
  const m = await (await fetch(`${runtime.url}/api/v1/metrics`)).text();
  const value = (re: RegExp): number => Number(re.exec(m)?.[1]);
  const ingest = (outcome: string): number => value(new RegExp(`thingwire_ingest_messages_total\\{node="tw.starter.mqttin",outcome="${outcome}"\\} (\\S+)`));
  expect(value(/thingwire_store_rejected_lines_total\{store="tw.store"\} (\S+)/)).toBe(0);
  expect(ingest('unacknowledged')).toBe(0);
  expect(ingest('refused')).toBe(0);
  expect(ingest('acknowledged')).toBe(res.messages);
  expect(m).not.toMatch(/thingwire_rejects_total\{[^}]*code="payload_too_large"\}/);
}

test('a burst faster than the store (batches of 100 readings at 20,000 readings/s, embedded broker and store): nothing refused, every reading stored', async () => {
  await batchedBurst({ devices: DEVICES, rate: 20_000, seconds: 3, maxInFlight: 900, storedWithinMs: 90_000 });
});

test('a burst far past the knee (1,000 devices, batches of 100 readings at 160,000 readings/s for 10 s): no delivery refused, every reading stored', async () => {
  // bench:e2e's 160,000/s step, shortened. There the input's window, freed by the store's group commit settling
  // thousands of deliveries at once, took in hundreds of device batches in one turn: one group message of 15,000+
  // readings that the registry node refused whole (payload_too_large), every delivery in it acknowledged as refused,
  // its readings lost. Whether a run makes such a group depends on timing (this test did not on the build before
  // the fix); the batched SIGKILL test above and test/nodes/starter-ingest.test.ts do (13,900 and 16,700 readings lost
  // in two runs of the first on that build). This one checks the whole path under the burst.
  await batchedBurst({ devices: 1000, rate: 160_000, seconds: 10, maxInFlight: 2500, storedWithinMs: 150_000 });
}, 360_000);

interface DeployedNode {
  id: string;
  type: string;
  name?: string;
  [k: string]: unknown;
}

/** Deploys `change(flows)` as a "modified nodes" deploy (only the changed nodes restart), as the editor's Deploy does. */
async function redeploy(runtime: Runtime, change: (flows: DeployedNode[]) => DeployedNode[]): Promise<void> {
  const cur = (await (await fetch(`${runtime.url}/flows`, { headers: { 'Node-RED-API-Version': 'v2' } })).json()) as { rev: string; flows: DeployedNode[] };
  const before = runtime.output().length;
  const res = await fetch(`${runtime.url}/flows`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'nodes' },
    body: JSON.stringify({ rev: cur.rev, flows: change(cur.flows) }),
  });
  expect(res.status).toBe(200);
  await waitFor('the flows to start again', () => runtime.output().slice(before).includes('Started'), 15_000);
}

test('in process: the input redeployed twice under load, then its queue drained: every reading stored once', async () => {
  // The starter's input takes its messages from the embedded broker in process (runtime/in-process.ts). Each deploy of
  // a changed input closes the node (what it had not confirmed goes back to its session) and starts a new one with
  // the same client id, which takes the session over: what came meanwhile was queued for it.
  const dataDir = tmpDir('ingest-redeploy');
  rt = await startRuntime({ THINGWIRE_LOG_LEVEL: 'info' }, dataDir);
  const runtime = rt;
  const mqttUrl = `mqtt://127.0.0.1:${runtime.mqttPort}`;
  await ingestReady(runtime, mqttUrl);
  const gen = load(mqttUrl);
  await gen.connect();
  const start = Date.now();
  const phase = gen.run({ rate: RATE, durationMs: SECONDS * 1000, batch: 1, readings: RATE * SECONDS });
  for (const name of ['device telemetry (1)', 'device telemetry (2)']) {
    await sleep(3000);
    await redeploy(runtime, (flows) => flows.map((n) => (n.type === 'thingwire-mqtt-in' ? { ...n, name } : n)));
  }
  const res = await phase;
  await gen.close();
  expect(res.failed).toBe(0);
  expect(res.readings).toBe(RATE * SECONDS);
  await everyReadingStored(runtime, gen, start, res.readings);
  // The broker never had the input as a TCP client: the only one left is the flows' stock mqtt-broker connection.
  const metrics = await (await fetch(`${runtime.url}/api/v1/metrics`)).text();
  expect(metrics).toMatch(/^thingwire_mqtt_clients_connected 1$/m);
  // Two redeploys, one session: each new node took the last one's over.
  expect(metrics).toMatch(/^thingwire_mqtt_in_process_sessions\{state="attached"\} 1$/m);
  expect(metrics).toMatch(/^thingwire_mqtt_in_process_sessions\{state="detached"\} 0$/m);
  // Everything the log took was released once stored (nothing waits for a session).
  const logged = async (): Promise<{ appended: number; released: number }> => {
    const m = await (await fetch(`${runtime.url}/api/v1/metrics`)).text();
    const n = (o: string): number => Number(new RegExp(`^thingwire_mqtt_publish_log_messages_total\\{outcome="${o}"\\} (\\d+)$`, 'm').exec(m)?.[1]);
    return { appended: n('appended'), released: n('released') };
  };
  await waitFor('the publish log to release every message', async () => {
    const l = await logged();
    return l.appended > 0 && l.released === l.appended;
  }, 15_000);
  expect((await logged()).appended).toBeGreaterThanOrEqual(RATE * SECONDS);
});

test('in process: deleting the input ends its session on the broker; restoring it starts a new one', async () => {
  const dataDir = tmpDir('ingest-delete');
  rt = await startRuntime({ THINGWIRE_LOG_LEVEL: 'info' }, dataDir);
  const runtime = rt;
  const sessions = (): unknown => JSON.parse(fs.readFileSync(path.join(dataDir, 'mqtt-log', 'sessions.json'), 'utf8'));
  await waitFor('the in-process session saved', () => fs.existsSync(path.join(dataDir, 'mqtt-log', 'sessions.json')) && JSON.stringify(sessions()).includes('thingwire-starter'), 15_000);
  expect(sessions()).toEqual({ v: 1, sessions: {}, inProcess: { 'thingwire-starter': ['devices/+/+'] } });
  let removed: DeployedNode | undefined;
  await redeploy(runtime, (flows) => flows.filter((n) => (n.type === 'thingwire-mqtt-in' ? ((removed = n), false) : true)));
  await waitFor('the session gone from the file', () => !JSON.stringify(sessions()).includes('thingwire-starter'), 10_000);
  await redeploy(runtime, (flows) => [...flows, removed!]);
  await waitFor('a new session', () => JSON.stringify(sessions()).includes('thingwire-starter'), 10_000);
});
