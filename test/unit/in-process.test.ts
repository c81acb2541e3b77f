/**
 * The embedded broker's in-process sessions (runtime/in-process.ts) on aedes' own message emitter (mqemitter, the
 * part of aedes that calls subscribers; aedes itself is an ES module Jest cannot load): what a node attached to a
 * session receives, what the publish log is told, when a publisher's acknowledgement waits, and what survives a
 * redeploy, a deleted node and an expired session. And which node URLs attach (nodes/lib/in-process.ts).
 */
import MQEmitter from 'mqemitter';
import { topicMatches } from '../../nodes/lib/ack';
import { inProcessBrokerFor, registerInProcessBroker, type InProcessMessage, type InProcessSession } from '../../nodes/lib/in-process';
import { InProcessSessions, type InProcessLimits, type MqHost, type MqPacket } from '../../runtime/in-process';

interface Handle {
  topic: string;
  payload: string;
}

interface Rig {
  sessions: InProcessSessions;
  /** Publishes like aedes: resolves when every subscriber called back (the publisher's PUBACK). */
  publish(topic: string, payload: string, qos?: 0 | 1): Promise<void>;
  held: Handle[];
  released: Handle[];
  logs: string[];
  changes: number;
  retained: MqPacket[];
}

function rig(limits: Partial<InProcessLimits> = {}, adopt?: (id: string) => Array<{ packet: MqPacket; handle: unknown }>): Rig {
  const mq = MQEmitter({ concurrency: 100 });
  const r: Rig = { held: [], released: [], logs: [], changes: 0, retained: [] } as unknown as Rig;
  const host: MqHost = {
    subscribe: (t, fn, done) => mq.on(t, fn as never, done),
    unsubscribe: (t, fn, done) => mq.removeListener(t, fn as never, done),
    retained: async function* (filters) {
      for (const p of r.retained) if (filters.some((f) => topicMatches(f, p.topic))) yield p;
    },
  };
  r.sessions = new InProcessSessions(
    1883,
    host,
    {
      hold: (p) => {
        const h = { topic: p.topic, payload: String(p.payload) };
        r.held.push(h);
        return h;
      },
      release: (h) => {
        if (h !== undefined) r.released.push(h as Handle);
      },
      changed: () => r.changes++,
      log: (m) => r.logs.push(m),
    },
    { deliveryMs: 0, ...limits },
    adopt,
  );
  r.publish = (topic, payload, qos = 1) => new Promise<void>((res) => mq.emit({ topic, payload: Buffer.from(payload), qos } as never, () => res()));
  return r;
}

/** A node stand-in: records what it is given. */
function consumer(): { got: InProcessMessage[]; deliver: (m: InProcessMessage) => void; texts: () => string[] } {
  const got: InProcessMessage[] = [];
  return { got, deliver: (m) => got.push(m), texts: () => got.map((m) => m.payload.toString()) };
}

function open(r: Rig, id: string, c: { deliver: (m: InProcessMessage) => void }, filters = ['devices/+/+']): InProcessSession {
  const s = r.sessions.open(id, filters, c);
  if (typeof s === 'string') throw new Error(s);
  s.resume();
  return s;
}

const turn = (): Promise<void> => new Promise((res) => setImmediate(res));
const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await turn();
};

afterEach(() => {
  jest.useRealTimers();
  registerInProcessBroker(undefined);
});

test('messages reach the attached node in order with their QoS; an acknowledgement releases each from the log', async () => {
  const r = rig();
  const c = consumer();
  const s = open(r, 'flows', c);
  await r.publish('devices/a/telemetry', '1');
  await r.publish('devices/b/telemetry', '2');
  await r.publish('devices/a/status', 'online', 0);
  await settle();
  expect(c.texts()).toEqual(['1', '2', 'online']);
  expect(c.got.map((m) => [m.topic, m.qos, m.retain])).toEqual([
    ['devices/a/telemetry', 1, false],
    ['devices/b/telemetry', 1, false],
    ['devices/a/status', 0, false],
  ]);
  // QoS 0 has nothing in the log and nothing to acknowledge.
  expect(r.held.map((h) => h.payload)).toEqual(['1', '2']);
  expect(s.stats()).toEqual({ queued: 0, unacknowledged: 2 });
  s.ack(c.got[1].id);
  expect(r.released.map((h) => h.payload)).toEqual(['2']);
  s.ack(c.got[1].id); // twice: once
  s.ack(12345); // unknown
  s.ack(c.got[0].id);
  expect(r.released.map((h) => h.payload)).toEqual(['2', '1']);
  expect(s.stats()).toEqual({ queued: 0, unacknowledged: 0 });
});

test("the publisher's acknowledgement does not wait for the node's confirmation", async () => {
  const r = rig();
  const c = consumer();
  open(r, 'flows', c);
  // Resolves although nothing acknowledged the message: the log holds it instead.
  await r.publish('devices/a/telemetry', 'x');
  expect(r.held).toHaveLength(1);
  expect(r.released).toHaveLength(0);
});

test('what arrives within deliveryMs is handed over together', async () => {
  jest.useFakeTimers();
  const r = rig({ deliveryMs: 5 });
  const c = consumer();
  open(r, 'flows', c);
  const pubs = [r.publish('devices/a/t', '1'), r.publish('devices/a/t', '2')];
  await Promise.resolve();
  jest.advanceTimersByTime(4);
  expect(c.got).toHaveLength(0);
  jest.advanceTimersByTime(1);
  expect(c.texts()).toEqual(['1', '2']);
  jest.useRealTimers();
  await Promise.all(pubs);
});

test('one delivery per message however many filters match; $-topics only to filters that name them', async () => {
  const r = rig();
  const c = consumer();
  open(r, 'flows', c, ['devices/+/+', 'devices/#', '#']);
  await r.publish('devices/a/telemetry', 'once');
  await r.publish('$SYS/broker/uptime', 'sys');
  await settle();
  expect(c.texts()).toEqual(['once']);
  const c2 = consumer();
  open(r, 'sys', c2, ['$SYS/#']);
  await r.publish('$SYS/broker/uptime', 'sys2');
  await settle();
  expect(c2.texts()).toEqual(['sys2']);
  expect(c.texts()).toEqual(['once']);
});

test('paused: the broker queues; past the bound the publisher waits; resume delivers the rest in order', async () => {
  const r = rig({ attachedQueue: 3 });
  const c = consumer();
  const s = open(r, 'flows', c);
  s.pause();
  const acked: number[] = [];
  const pubs = [1, 2, 3, 4, 5].map((n) => r.publish('devices/a/t', String(n)).then(() => acked.push(n)));
  await settle();
  expect(c.got).toHaveLength(0);
  // The first two fit under the bound; from the third on the publishers wait for room.
  expect(acked.sort()).toEqual([1, 2]);
  expect(s.stats().queued).toBe(5);
  s.resume();
  await Promise.all(pubs);
  expect(c.texts()).toEqual(['1', '2', '3', '4', '5']);
  expect(acked.sort()).toEqual([1, 2, 3, 4, 5]);
});

test('the queued payload bytes are bounded too', async () => {
  const r = rig({ queueBytes: 10 });
  const c = consumer();
  const s = open(r, 'flows', c);
  s.pause();
  let done = false;
  const p = r.publish('devices/a/t', 'x'.repeat(11)).then(() => (done = true));
  await settle();
  expect(done).toBe(false);
  s.resume();
  await p;
  expect(c.texts()).toEqual(['x'.repeat(11)]);
});

test('redeliver() hands over again, in order, what was delivered and not acknowledged', async () => {
  const r = rig();
  const c = consumer();
  const s = open(r, 'flows', c);
  for (const n of [1, 2, 3]) await r.publish('devices/a/t', String(n));
  await settle();
  s.ack(c.got[1].id);
  c.got.length = 0;
  s.redeliver();
  expect(c.texts()).toEqual(['1', '3']);
  // Fresh ids: an acknowledgement of an old delivery does nothing.
  s.ack(1);
  expect(r.released.map((h) => h.payload)).toEqual(['2']);
  s.ack(c.got[0].id);
  s.ack(c.got[1].id);
  expect(r.released.map((h) => h.payload)).toEqual(['2', '1', '3']);
});

test('a redeploy: the next node with the client id gets what the last did not confirm, then what came meanwhile', async () => {
  const r = rig();
  const c1 = consumer();
  const s1 = open(r, 'flows', c1);
  for (const n of [1, 2]) await r.publish('devices/a/t', String(n));
  await settle();
  expect(r.sessions.stats()).toEqual({ attached: 1, detached: 0, queued: 0, unacknowledged: 2 });
  s1.ack(c1.got[0].id);
  s1.close(false);
  await r.publish('devices/a/t', '3'); // no node: queued
  await settle();
  // The unconfirmed one back at the queue's front, with the new one.
  expect(r.sessions.stats()).toEqual({ attached: 0, detached: 1, queued: 2, unacknowledged: 0 });
  const c2 = consumer();
  const s2 = r.sessions.open('flows', ['devices/+/+'], c2);
  if (typeof s2 === 'string') throw new Error(s2);
  expect(c2.got).toHaveLength(0); // opened paused
  s2.resume();
  expect(c2.texts()).toEqual(['2', '3']);
  expect(r.released.map((h) => h.payload)).toEqual(['1']);
  expect(r.sessions.stats()).toEqual({ attached: 1, detached: 0, queued: 0, unacknowledged: 2 });
});

test('two nodes cannot share a session; a different client id is a session of its own', async () => {
  const r = rig();
  open(r, 'flows', consumer());
  expect(r.sessions.open('flows', ['devices/+/+'], consumer())).toMatch(/client id "flows" is in use by another node/);
  const other = consumer();
  open(r, 'other', other);
  await r.publish('devices/a/t', 'both');
  await settle();
  expect(other.texts()).toEqual(['both']);
  expect(r.held).toHaveLength(2); // one log hold per session
});

test('a deleted node ends its session: what it held is released and nothing more is queued', async () => {
  const r = rig();
  const c = consumer();
  const s = open(r, 'flows', c);
  s.pause();
  for (const n of [1, 2]) await r.publish('devices/a/t', String(n));
  const changes = r.changes;
  s.close(true);
  expect(r.released.map((h) => h.payload).sort()).toEqual(['1', '2']);
  expect(r.sessions.has('flows')).toBe(false);
  expect(r.changes).toBe(changes + 1);
  await r.publish('devices/a/t', '3');
  expect(r.held).toHaveLength(2);
  expect(r.sessions.matches('devices/a/t')).toBe(false);
});

test('a session left without a node keeps queueing (flows stopped, a slow redeploy); one recreated at start and never taken expires', async () => {
  jest.useFakeTimers();
  const r = rig({ restoredMs: 1000 });
  const s = open(r, 'flows', consumer());
  s.close(false);
  r.sessions.restore('gone', ['devices/+/+']);
  const p = r.publish('devices/a/t', 'waiting');
  await Promise.resolve();
  jest.advanceTimersByTime(3_600_000);
  jest.useRealTimers();
  await p;
  expect(r.sessions.has('flows')).toBe(true);
  expect(r.sessions.has('gone')).toBe(false);
  expect(r.released).toHaveLength(0);
  expect(r.logs.join('\n')).toMatch(/in-process session "gone" had no node for 1 s .*ended; its 1 queued messages stay in the publish log/);
  const c = consumer();
  open(r, 'flows', c);
  expect(c.texts()).toEqual(['waiting']);
});

test("a node whose client id changed takes its old session's messages over and ends it", async () => {
  const r = rig();
  const c1 = consumer();
  const s1 = r.sessions.open('old-id', ['devices/+/+'], c1, 'node-1');
  if (typeof s1 === 'string') throw new Error(s1);
  s1.resume();
  await r.publish('devices/a/t', '1');
  await settle();
  s1.close(false);
  await r.publish('devices/a/t', '2');
  // Another node's detached session is left alone.
  const other = r.sessions.open('other', ['devices/+/+'], consumer(), 'node-2');
  if (typeof other === 'string') throw new Error(other);
  other.close(false);
  const c2 = consumer();
  const s2 = r.sessions.open('new-id', ['devices/+/+'], c2, 'node-1');
  if (typeof s2 === 'string') throw new Error(s2);
  s2.resume();
  expect(c2.texts()).toEqual(['1', '2']);
  expect(r.sessions.has('old-id')).toBe(false);
  expect(r.sessions.has('other')).toBe(true);
  expect(r.logs.join('\n')).toMatch(/node node-1 now takes messages as "new-id": the 2 messages its session "old-id" held were handed over/);
  for (const m of c2.got) s2.ack(m.id);
  expect(r.released.map((h) => h.payload)).toEqual(['1', '2']);
});

test('a session of the last run is recreated at start: it queues until its node comes, and the topics count as subscribed', async () => {
  const r = rig();
  r.sessions.restore('flows', ['devices/+/telemetry']);
  expect(r.sessions.matches('devices/a/telemetry')).toBe(true);
  expect(r.sessions.matches('devices/a/status')).toBe(false);
  await r.publish('devices/a/telemetry', 'early');
  const c = consumer();
  open(r, 'flows', c, ['devices/+/telemetry']);
  expect(c.texts()).toEqual(['early']);
  expect([...r.sessions.list()]).toEqual([['flows', ['devices/+/telemetry']]]);
});

test('changed topics on a taken-over session: subscribed anew, the queue kept', async () => {
  const r = rig();
  const s = open(r, 'flows', consumer(), ['a/#']);
  s.close(false);
  await r.publish('a/1', 'kept');
  const c = consumer();
  open(r, 'flows', c, ['b/#']);
  await r.publish('a/2', 'not any more');
  await r.publish('b/1', 'new');
  await settle();
  expect(c.texts()).toEqual(['kept', 'new']);
});

test('retained messages come once, when the session is created', async () => {
  const r = rig();
  r.retained.push({ topic: 'devices/a/status', payload: Buffer.from('online'), qos: 1 }, { topic: 'other/x', payload: Buffer.from('no'), qos: 1 });
  const c = consumer();
  const s = open(r, 'flows', c);
  await settle();
  expect(c.got.map((m) => [m.topic, m.payload.toString(), m.retain, m.qos])).toEqual([['devices/a/status', 'online', true, 1]]);
  s.ack(c.got[0].id);
  s.close(false);
  const c2 = consumer();
  open(r, 'flows', c2);
  await settle();
  expect(c2.got).toHaveLength(0);
});

test('what a persistent MQTT session of the same client id queued is adopted when the session is created', async () => {
  const handle = { topic: 'devices/a/t', payload: 'old' };
  const r = rig({}, (id) => (id === 'flows' ? [{ packet: { topic: 'devices/a/t', payload: Buffer.from('old'), qos: 1 }, handle }] : []));
  const c = consumer();
  const s = open(r, 'flows', c);
  expect(c.texts()).toEqual(['old']);
  expect(r.held).toHaveLength(0); // the log already counts that delivery
  s.ack(c.got[0].id);
  expect(r.released).toEqual([handle]);
});

test('the broker closing ends every session without releasing anything', async () => {
  const r = rig();
  const s = open(r, 'flows', consumer());
  s.pause();
  await r.publish('devices/a/t', '1');
  r.sessions.close();
  expect(r.released).toHaveLength(0);
  expect(r.sessions.open('x', ['a'], consumer())).toBe('the broker is closed');
});

test('which node URLs attach: plain MQTT, the broker port, a loopback host or the broker host', () => {
  expect(inProcessBrokerFor('mqtt://127.0.0.1:1883')).toBeUndefined(); // nothing registered
  const r = rig();
  r.sessions.host = '192.168.1.5';
  registerInProcessBroker(r.sessions);
  for (const url of ['mqtt://127.0.0.1:1883', 'mqtt://localhost:1883', 'mqtt://[::1]:1883', 'mqtt://192.168.1.5:1883']) {
    expect(inProcessBrokerFor(url)).toBe(r.sessions);
  }
  for (const url of ['mqtts://127.0.0.1:1883', 'mqtt://127.0.0.1:1884', 'mqtt://broker.example:1883', 'not a url']) {
    expect(inProcessBrokerFor(url)).toBeUndefined();
  }
});
