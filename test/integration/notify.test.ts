/**
 * The shipped notifications flow (flows/notify.json) in the real runtime: AlertEvents published on
 * alerts/{device} reach a generic webhook (the event as JSON) and a Slack webhook (text + blocks),
 * both served here on loopback; events a notifier must not send are held back; each branch is rate
 * limited to 1 msg/s, dropping what comes in between; failures are counted; the email branch formats
 * the mail (to the debug sidebar: no email node is installed).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import mqtt from 'mqtt';
import type { AlertEvent } from '../../nodes/lib/contract';
import { DebugTap } from '../support/comms';
import { ROOT, sleep, startRuntime, waitFor, type Runtime } from '../support/services';

jest.setTimeout(60_000);

interface Received {
  path: string;
  at: number;
  contentType: string;
  body: unknown;
}

const RATE_GAP_MS = 1150; // a little over the flow's 1 msg/s rate limit

let server: http.Server;
const received: Received[] = [];
let rt: Runtime;
let client: mqtt.MqttClient;
let tap: DebugTap;
let seq = 0;

function event(over: Partial<AlertEvent> = {}): AlertEvent {
  seq++;
  const now = Date.now();
  return {
    key: `high-temp|dev-1|temperature`,
    device: 'dev-1',
    rule: 'high-temp',
    state: 'firing',
    severity: 'critical',
    value: 95.5,
    metric: 'temperature',
    since: now - 30_000,
    at: now,
    id: `al-${seq}`,
    reason: 'firing',
    thresholds: { raise: 'temperature > 90', clear: 'temperature < 85' },
    notify: true,
    message: 'Temperature <high> & rising',
    ...over,
  };
}

function publish(e: unknown, device = 'dev-1'): Promise<void> {
  return new Promise((resolve, reject) => {
    client.publish(`alerts/${device}`, typeof e === 'string' ? e : JSON.stringify(e), { qos: 1 }, (err) => (err ? reject(err) : resolve()));
  });
}

const hooks = (since = 0) => received.filter((r) => r.path === '/hook' && r.at >= since);
const slacks = (since = 0) => received.filter((r) => r.path === '/slack' && r.at >= since);
const idOf = (r: Received) => (r.body as AlertEvent).id;
const lastStatus = (id: string) => [...tap.statuses].reverse().find((s) => s.id === id)?.text;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* kept as text */
      }
      received.push({ path: req.url ?? '', at: Date.now(), contentType: String(req.headers['content-type'] ?? ''), body });
      const failing = (body as AlertEvent | null)?.device === 'dev-fail' || (typeof (body as { text?: unknown })?.text === 'string' && (body as { text: string }).text.includes('dev-fail'));
      res.writeHead(failing ? 500 : 200, { 'content-type': 'text/plain' });
      res.end(failing ? 'boom' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  rt = await startRuntime({
    THINGWIRE_WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
    THINGWIRE_SLACK_WEBHOOK_URL: `http://127.0.0.1:${port}/slack`,
    THINGWIRE_SMTP_HOST: '127.0.0.1',
    THINGWIRE_SMTP_TO: 'ops@example.com',
    THINGWIRE_SMTP_FROM: 'thingwire@example.com',
  });
  tap = await DebugTap.open(rt.url);
  client = await mqtt.connectAsync(`mqtt://127.0.0.1:${rt.mqttPort}`, { clientId: 'notify-test', reconnectPeriod: 0 });
  // The flow subscribes once its broker connection is up: probe (one per rate window) until the webhook answers.
  await waitFor(
    'the notifications flow to receive alert events',
    async () => {
      await publish(event({ id: 'probe' }));
      await sleep(RATE_GAP_MS);
      return hooks().some((r) => idOf(r) === 'probe');
    },
    20_000,
    0,
  );
  await sleep(RATE_GAP_MS);
});

afterAll(async () => {
  await client?.endAsync();
  tap?.close();
  await rt?.stop();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

test('the webhook gets the AlertEvent as JSON and Slack a plain-text message with blocks', async () => {
  const e = event({ id: 'first' });
  await publish(e);
  const hook = await waitFor('the webhook call', () => hooks().find((r) => idOf(r) === 'first'));
  expect(hook.contentType).toMatch(/^application\/json/);
  expect(hook.body).toEqual(e);

  const slack = await waitFor('the Slack call', () => slacks().find((r) => JSON.stringify(r.body).includes('alert first')));
  expect(slack.contentType).toMatch(/^application\/json/);
  const body = slack.body as { text: string; blocks: Array<{ type: string; text?: { type: string; text: string }; fields?: Array<{ type: string; text: string }>; elements?: Array<{ text: string }> }> };
  expect(body.text).toBe('[CRITICAL] FIRING: high-temp on dev-1. Value: temperature = 95.5. Since: ' + new Date(e.since).toISOString() + '. Raise / clear: temperature &gt; 90 / temperature &lt; 85');
  expect(body.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'context']);
  expect(body.blocks[0].text).toEqual({ type: 'plain_text', text: '[CRITICAL] FIRING: high-temp on dev-1', emoji: false });
  expect(body.blocks[1].fields?.map((f) => f.text)).toEqual([
    '*Severity*\ncritical',
    '*State*\nfiring (firing)',
    '*Device*\ndev-1',
    '*Rule*\nhigh-temp',
    '*Value*\ntemperature = 95.5',
    `*Since*\n${new Date(e.since).toISOString()}`,
    '*Raise / clear*\ntemperature &gt; 90 / temperature &lt; 85',
  ]);
  // The message is escaped for Slack mrkdwn.
  expect(body.blocks[2].text).toEqual({ type: 'mrkdwn', text: 'Temperature &lt;high&gt; &amp; rising' });
  expect(body.blocks[3].elements?.[0].text).toBe(`alert first at ${new Date(e.at as number).toISOString()}`);
  expect(JSON.stringify(body)).not.toMatch(/\p{Extended_Pictographic}|:[a-z_]+:/u);

  // The email branch formats the mail (no email node is installed: it goes to the debug sidebar).
  const mail = await waitFor('the formatted email', () => tap.messages.find((m) => m.name === 'email (formatted, not sent)' && m.msg.includes('high-temp')));
  expect(mail.msg).toBe('[CRITICAL] FIRING: high-temp on dev-1');
  await sleep(RATE_GAP_MS);
});

test('suppressed, notify:false and malformed events are not sent', async () => {
  const start = Date.now();
  await publish(event({ id: 'silenced', notify: false, suppressed: 'silenced', silenced: true }));
  await publish(event({ id: 'flapping', suppressed: 'flapping' }));
  await publish(event({ id: 'quiet', notify: false, reason: 'ack' }));
  await publish({ hello: 'world' });
  await publish([1, 2, 3]);
  // Had any of those passed, it would have taken the rate-limit slot and this one would be dropped.
  await publish(event({ id: 'marker' }));
  await waitFor('the marker on the webhook', () => hooks(start).some((r) => idOf(r) === 'marker'));
  await waitFor('the marker on Slack', () => slacks(start).some((r) => JSON.stringify(r.body).includes('alert marker')));
  await sleep(500);
  expect(hooks(start).map(idOf)).toEqual(['marker']);
  expect(slacks(start)).toHaveLength(1);
  await waitFor('the filter status', () => lastStatus('tw.nt.filter')?.match(/held [1-9]/));
  expect(lastStatus('tw.nt.filter')).toMatch(/^notify \d+, held 3, invalid 2$/);
  await sleep(RATE_GAP_MS);
});

test('a burst of 20 events is rate limited to one per second per branch, the rest dropped and counted', async () => {
  const start = Date.now();
  await Promise.all(Array.from({ length: 20 }, (_, i) => publish(event({ id: `burst-${i}`, severity: 'major' }))));
  await sleep(2000);
  const got = hooks(start).map(idOf);
  // The burst takes well under a second, so the first goes out and every later one is dropped.
  expect(got[0]).toBe('burst-0');
  expect(got.length).toBeGreaterThanOrEqual(1);
  expect(got.length).toBeLessThanOrEqual(2);
  expect(slacks(start).length).toBeGreaterThanOrEqual(1);
  expect(slacks(start).length).toBeLessThanOrEqual(2);
  const dropped = Number(/^dropped (\d+)/.exec(lastStatus('tw.nt.wh.dropped') ?? '')?.[1]);
  expect(dropped).toBe(20 - got.length);
  await sleep(RATE_GAP_MS);
});

test('a failed delivery is not retried and is counted in the branch status', async () => {
  const start = Date.now();
  await publish(event({ id: 'fails', device: 'dev-fail', key: 'high-temp|dev-fail|temperature' }), 'dev-fail');
  await waitFor('the failing webhook call', () => hooks(start).some((r) => idOf(r) === 'fails'));
  await waitFor('the failure in the status', () => lastStatus('tw.nt.wh.result')?.includes('failed 1'));
  expect(lastStatus('tw.nt.wh.result')).toMatch(/^sent \d+, failed 1 \(last: HTTP 500\)$/);
  await waitFor('the Slack failure in the status', () => lastStatus('tw.nt.sl.result')?.includes('failed 1'));
  await sleep(1500);
  expect(hooks(start)).toHaveLength(1);
  expect(slacks(start)).toHaveLength(1);
});

test('the flow shares the starter flow broker node exactly (the seed merges it by id) and names every node', () => {
  type N = { id: string; type: string; z?: string; name?: string };
  const read = (f: string) => JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', f), 'utf8')) as N[];
  const notify = read('notify.json');
  const starter = read('starter.json');
  expect(notify.find((n) => n.id === 'tw.starter.broker')).toEqual(starter.find((n) => n.id === 'tw.starter.broker'));
  expect(notify.filter((n) => n.type === 'mqtt-broker').map((n) => n.id)).toEqual(['tw.starter.broker']);
  expect(notify.filter((n) => n.id !== 'tw.starter.broker').every((n) => n.id.startsWith('tw.nt.'))).toBe(true);
  expect(notify.filter((n) => n.z === 'tw.nt.tab' && n.type !== 'comment' && !n.name)).toEqual([]);
  // Rate limiting: one delay node per branch, 1 msg/s, dropping (counted on its second output).
  const limits = notify.filter((n) => n.type === 'delay') as Array<N & Record<string, unknown>>;
  expect(limits.map((n) => [n.pauseType, n.rate, n.rateUnits, n.drop, n.outputs])).toEqual(Array(3).fill(['rate', '1', 'second', true, 2]));
});
