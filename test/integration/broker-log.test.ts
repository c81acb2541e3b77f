/**
 * The embedded broker's publish log (runtime/broker.ts + publish-log.ts): the broker alone in a child process
 * (test/support/broker-child.ts) on a loopback port, real mqtt.js clients, and a real crash: the process killed
 * with SIGKILL, a new one started on the same log directory. The end-to-end form (the whole runtime killed under
 * load) is in ingest-faults.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { readSessions, type PublishLogStats } from '../../runtime/publish-log';
import { ROOT, sleep, tmpDir, waitFor } from '../support/services';

jest.setTimeout(30_000);

const service = { username: '$thingwire', password: 'test-service-password-0123' };

interface ChildBroker {
  port: number;
  proc: ChildProcess;
  output: () => string;
  /** The publish log's figures, as last printed (every 100 ms) after output offset `since`. */
  publishLog: (since?: number) => PublishLogStats | undefined;
  kill: () => Promise<void>;
}

const brokers: ChildBroker[] = [];
const clients: MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  for (const b of brokers.splice(0)) await b.kill();
});

async function start(dir: string, env: Record<string, string> = {}): Promise<ChildBroker> {
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'test', 'support', 'broker-child.js'), dir], {
    env: { ...process.env, TW_SERVICE_PASSWORD: service.password, TW_ROTATE_MS: '200', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const b: ChildBroker = {
    port: 0,
    proc,
    output: () => out,
    publishLog: (since = 0) => {
      const lines = out
        .slice(since)
        .split('\n')
        .filter((l) => l.startsWith('stats ') && l.endsWith('}'));
      return lines.length > 0 ? (JSON.parse(lines[lines.length - 1].slice(6)) as PublishLogStats) : undefined;
    },
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  brokers.push(b);
  const m = await waitFor('the broker to start', () => {
    if (proc.exitCode !== null) throw new Error(`the broker exited: ${out}`);
    return /^ready (\d+)$/m.exec(out);
  });
  b.port = Number(m[1]);
  return b;
}

/** Waits for figures printed after this call that pass `test`. */
async function freshStats(b: ChildBroker, test: (s: PublishLogStats) => boolean, what: string): Promise<PublishLogStats> {
  const since = b.output().length;
  return waitFor(what, () => {
    const s = b.publishLog(since);
    return s !== undefined && test(s) ? s : undefined;
  });
}

/** Connects; `setup` runs before the CONNACK (a session's queued messages can come in the same read as it). */
async function connect(b: ChildBroker, opts: IClientOptions, setup: (c: MqttClient) => void = () => undefined): Promise<MqttClient> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${b.port}`, { reconnectPeriod: 0, username: service.username, password: service.password, ...opts });
  clients.push(c);
  setup(c);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

/** The flows' input: a persistent session; `ack` false withholds every PUBACK (messages not yet stored). */
async function ingest(b: ChildBroker, ack: boolean, got: string[]): Promise<MqttClient> {
  return connect(b, { clientId: 'tw-ingest', clean: false }, (c) => {
    // As thingwire-mqtt-in does: mqtt.js skips its PUBACK when handleMessage calls back with an error.
    if (!ack) c.handleMessage = (_packet, cb) => cb(new Error('PUBACK withheld'));
    c.on('message', (_t, m) => got.push(m.toString()));
  });
}

const reading = (seq: number): string => JSON.stringify({ seq });

test('after a crash, what the broker acknowledged but the flows had not goes to their session again, and what comes before they reconnect waits for them', async () => {
  const dir = tmpDir('broker-log');
  const b1 = await start(dir);
  const got1: string[] = [];
  const in1 = await ingest(b1, false, got1);
  await in1.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const pub = await connect(b1, { clientId: 'device-side' });
  for (let i = 0; i < 20; i++) await pub.publishAsync(`devices/d${i % 2}/telemetry`, reading(i), { qos: 1 }); // each PUBACKed
  await waitFor('the flows to get the 20 messages', () => got1.length === 20);
  await b1.kill();

  const b2 = await start(dir);
  expect(b2.output()).toMatch(/publishing again the 20 messages the publish log held from the last run, queued for the flows' 1 persistent session/);
  const pub2 = await connect(b2, { clientId: 'device-side' });
  await pub2.publishAsync('devices/d0/telemetry', reading(20), { qos: 1 }); // before the flows are back
  const got2: string[] = [];
  await ingest(b2, true, got2); // its session was recreated: no SUBSCRIBE needed
  await waitFor('the flows to get 21 messages', () => got2.length >= 21).catch((e: Error) => {
    throw new Error(`${e.message}: got ${JSON.stringify(got2)}\n${b2.output().split('\n').filter((l) => !l.startsWith('stats')).join('\n')}\nlast: ${JSON.stringify(b2.publishLog())}`);
  });
  expect(new Set(got2)).toEqual(new Set(Array.from({ length: 21 }, (_, i) => reading(i))));
  expect(got2).toHaveLength(21);
  // Acknowledged now: the log lets go of them (the old run's segment, the replay's and the new message's).
  const s = await freshStats(b2, (x) => x.released === x.appended && x.segments === 1, 'the log to release them');
  expect(s).toMatchObject({ appended: 21, released: 21, dropped: 0 });
});

test('messages nobody keeps a session for are released at once, and the log stays one small segment', async () => {
  const dir = tmpDir('broker-log');
  const b = await start(dir);
  const got: string[] = [];
  const sub = await connect(b, { clientId: 'clean-sub', clean: true });
  sub.on('message', (_t, m) => got.push(m.toString()));
  await sub.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const pub = await connect(b, { clientId: 'device-side' });
  for (let i = 0; i < 50; i++) await pub.publishAsync('devices/d1/telemetry', reading(i), { qos: 1 });
  await waitFor('the subscriber to get them', () => got.length === 50);
  const s = await freshStats(b, (x) => x.segments === 1 && x.bytes === 0, 'the log to rotate past them');
  expect(s).toMatchObject({ appended: 50, released: 50 });
  // QoS 0 is not logged.
  await pub.publishAsync('devices/d1/telemetry', reading(50), { qos: 0 });
  await waitFor('the QoS 0 message', () => got.length === 51);
  expect((await freshStats(b, () => true, 'the figures')).appended).toBe(50);
});

test('the replay goes to the flows\' recreated session, not to whoever subscribes first after the start', async () => {
  const dir = tmpDir('broker-log');
  const b1 = await start(dir);
  const in1 = await ingest(b1, false, []);
  await in1.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const pub = await connect(b1, { clientId: 'device-side' });
  for (let i = 0; i < 5; i++) await pub.publishAsync('devices/d1/telemetry', reading(i), { qos: 1 });
  await freshStats(b1, (x) => x.appended === 5, 'the log to hold them');
  await b1.kill();
  const b2 = await start(dir);
  // The replay went to the flows' recreated session, not to whoever subscribes first.
  const early: string[] = [];
  const other = await connect(b2, { clientId: 'someone-else', clean: false });
  other.on('message', (_t, m) => early.push(m.toString()));
  await other.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const got: string[] = [];
  await ingest(b2, true, got);
  await waitFor('the flows to get the 5', () => got.length === 5);
  expect(early).toEqual([]);
});

test('a recreated session whose client does not come back stops collecting after the expiry; what it had stays queued for it', async () => {
  const dir = tmpDir('broker-log');
  const b1 = await start(dir);
  const in1 = await ingest(b1, true, []);
  await in1.subscribeAsync('devices/+/telemetry', { qos: 1 });
  await b1.kill();
  const b2 = await start(dir, { TW_SESSION_EXPIRY_MS: '1500' });
  const pub = await connect(b2, { clientId: 'device-side' });
  for (let i = 0; i < 3; i++) await pub.publishAsync('devices/d1/telemetry', reading(i), { qos: 1 }); // queued for it
  await waitFor('the expiry', () => /the flows' session "tw-ingest" from the last run did not come back within 2 s: its subscriptions were removed/.test(b2.output())).catch((e: Error) => {
    throw new Error(`${e.message}\n${b2.output().split('\n').filter((l) => !l.startsWith('stats')).join('\n')}`);
  });
  for (let i = 3; i < 6; i++) await pub.publishAsync('devices/d1/telemetry', reading(i), { qos: 1 }); // nobody's now
  const s = await freshStats(b2, (x) => x.appended === 6 && x.released === 3, 'the later three released at once');
  expect(s.dropped).toBe(0);
  const got: string[] = [];
  await ingest(b2, true, got);
  await waitFor('what was queued before the expiry', () => got.length >= 3);
  await sleep(500);
  expect(got).toEqual([reading(0), reading(1), reading(2)]);
  await freshStats(b2, (x) => x.released === 6, 'all released once it took them');
});

test("the flows' saved sessions: written when they subscribe, gone when their client id connects with a clean session (a deleted input ends its session)", async () => {
  const dir = tmpDir('broker-log');
  const b = await start(dir);
  const in1 = await ingest(b, true, []);
  await in1.subscribeAsync('devices/+/telemetry', { qos: 1 });
  await waitFor('the session saved', () => readSessions(dir).get('tw-ingest')?.get('devices/+/telemetry') === 1);
  await in1.endAsync();
  await connect(b, { clientId: 'tw-ingest', clean: true });
  await waitFor('the session forgotten', () => !readSessions(dir).has('tw-ingest'));
});

// ---- the start-up hold (EmbeddedBrokerOptions.holdUntilSubscribedMs; the runtime sets it) ----------------------------

/** The broker's own log lines (not the figures it prints every 100 ms). */
const logLines = (b: ChildBroker): string =>
  b
    .output()
    .split('\n')
    .filter((l) => l.startsWith('log '))
    .join('\n');

test('while nothing subscribes, a QoS 1 publish is refused and sent again; the first subscriber gets it, and QoS 0 passes meanwhile', async () => {
  const b = await start(tmpDir('broker-log'), { TW_HOLD_MS: '60000' });
  const pub = await connect(b, { clientId: 'device-side', reconnectPeriod: 100 });
  let closes = 0;
  pub.on('close', () => closes++);
  const sent = pub.publishAsync('devices/d1/telemetry', reading(1), { qos: 1 });
  await waitFor('the hold', () => /holding publishes back until the flows subscribe \(at most 60 s\): no subscriber for "?devices\/d1\/telemetry"?/.test(logLines(b)));
  await waitFor('the publisher disconnected', () => closes > 0);
  // QoS 0 is never held (nothing would send it again).
  await connect(b, { clientId: 'qos0-side' }).then((c) => c.publishAsync('devices/d2/telemetry', reading(0), { qos: 0 }));
  const got: string[] = [];
  const sub = await connect(b, { clientId: 'clean-sub', clean: true });
  sub.on('message', (_t, m) => got.push(m.toString()));
  await sub.subscribeAsync('devices/+/telemetry', { qos: 1 });
  await sent; // acknowledged once the publisher sent it again after its reconnect
  await waitFor('the subscriber to get it', () => got.length === 1);
  expect(got).toEqual([reading(1)]);
  await waitFor('the end of the hold logged', () => /publishes were refused while the flows started \(their publishers send them again\); the flows subscribe now/.test(logLines(b)));
  // Over: a publish nobody subscribes to is acknowledged (and dropped) as any broker does.
  await pub.publishAsync('other/topic', reading(2), { qos: 1 });
});

test('the hold ends after its time even when nothing subscribes', async () => {
  const b = await start(tmpDir('broker-log'), { TW_HOLD_MS: '1500' });
  const pub = await connect(b, { clientId: 'device-side', reconnectPeriod: 100 });
  await pub.publishAsync('devices/d1/telemetry', reading(1), { qos: 1 }); // refused until the hold's end, then acknowledged
  expect(logLines(b)).toMatch(/publishes were refused while the flows started \(their publishers send them again\); nothing subscribed to what devices publish within 2 s: publishes are accepted now/);
});
