/**
 * nodes/lib/ack.ts (at-least-once delivery: which PUBACKs go out, when, in what order) and
 * nodes/mqtt/options.ts (the MQTT input's config checks). Pure logic, manual clock.
 */
import { ACK_PROPERTY, AckWindow, ackWindowStats, settleAck, topicFilterProblem, topicMatcher, topicMatches } from '../../nodes/lib/ack';
import { mqttInOptions } from '../../nodes/mqtt/options';

function rig(maxInFlight = 100, timeoutMs = 0): { w: AckWindow; acks: number[]; clock: { t: number } } {
  const clock = { t: 1000 };
  const acks: number[] = [];
  const w = new AckWindow('node1', { maxInFlight, timeoutMs, sendAck: (id) => acks.push(id), now: () => clock.t });
  w.connect();
  return { w, acks, clock };
}

const windowsToClose: AckWindow[] = [];
afterEach(() => {
  for (const w of windowsToClose.splice(0)) w.close();
});
function open(...a: Parameters<typeof rig>): ReturnType<typeof rig> {
  const r = rig(...a);
  windowsToClose.push(r.w);
  return r;
}

describe('AckWindow', () => {
  test('PUBACKs go out in arrival order: a settled message waits for the ones before it', () => {
    const { w, acks } = open();
    const t = [11, 12, 13, 14].map((id) => w.track(id, 'devices/a/telemetry'));
    expect(settleAck({ [ACK_PROPERTY]: t[2] }, 'durable')).toBe(1);
    expect(settleAck({ [ACK_PROPERTY]: t[1] }, 'rejected')).toBe(1);
    expect(acks).toEqual([]);
    expect(w.inFlight()).toBe(4);
    settleAck({ [ACK_PROPERTY]: t[0] }, 'durable');
    expect(acks).toEqual([11, 12, 13]);
    expect(w.stats()).toEqual({ inFlight: 1, inFlightBytes: 0, received: 4, acknowledged: 3, rejected: 1, unacknowledged: 0, timedOut: 0 });
  });

  test('settling is idempotent: the first settle of a token wins (fan-out clones carry the same token)', () => {
    const { w, acks } = open();
    const tok = w.track(5, 't');
    expect(settleAck({ [ACK_PROPERTY]: tok }, 'lost')).toBe(1);
    expect(settleAck({ [ACK_PROPERTY]: tok }, 'durable')).toBe(0);
    expect(acks).toEqual([]);
    expect(w.stats().unacknowledged).toBe(1);
  });

  test("'lost' is released without a PUBACK (the broker delivers it again); later ones are still acknowledged", () => {
    const { w, acks } = open();
    const a = w.track(1, 't');
    const b = w.track(2, 't');
    settleAck({ [ACK_PROPERTY]: a }, 'lost');
    settleAck({ [ACK_PROPERTY]: b }, 'durable');
    expect(acks).toEqual([2]);
    expect(w.stats()).toMatchObject({ inFlight: 0, acknowledged: 1, unacknowledged: 1 });
  });

  test("a 'lost' message of the current connection calls onLost once per release (the input reconnects)", () => {
    let lost = 0;
    const w = new AckWindow('x', { maxInFlight: 10, timeoutMs: 0, sendAck: () => undefined, onLost: () => lost++ });
    windowsToClose.push(w);
    w.connect();
    const a = w.track(1, 't');
    const b = w.track(2, 't');
    settleAck({ [ACK_PROPERTY]: b }, 'lost');
    expect(lost).toBe(0); // not released yet: a is still in flight before it
    settleAck({ [ACK_PROPERTY]: a }, 'lost');
    expect(lost).toBe(1);
    // A message of an old connection lost: it comes again anyway, no reconnect asked.
    const c = w.track(3, 't');
    w.disconnect();
    w.connect();
    settleAck({ [ACK_PROPERTY]: c }, 'lost');
    expect(lost).toBe(1);
  });

  test('messages of an earlier connection are never acknowledged on the new one (their packet ids are stale)', () => {
    const { w, acks } = open();
    const old = w.track(7, 't');
    w.disconnect();
    w.connect();
    const fresh = w.track(7, 't'); // the broker may reuse the id for the redelivery
    settleAck({ [ACK_PROPERTY]: old }, 'durable');
    expect(acks).toEqual([]);
    settleAck({ [ACK_PROPERTY]: fresh }, 'durable');
    expect(acks).toEqual([7]);
    expect(w.stats()).toMatchObject({ acknowledged: 1, unacknowledged: 1 });
  });

  test('nothing is acknowledged while disconnected', () => {
    const { w, acks } = open();
    const tok = w.track(3, 't');
    w.disconnect();
    settleAck({ [ACK_PROPERTY]: tok }, 'durable');
    expect(acks).toEqual([]);
  });

  test('full() at maxInFlight; whenRoom() calls back once a message is released', () => {
    const { w } = open(2);
    const a = w.track(1, 't');
    w.track(2, 't');
    expect(w.full()).toBe(true);
    const called: string[] = [];
    w.whenRoom(() => called.push('x'));
    expect(called).toEqual([]);
    settleAck({ [ACK_PROPERTY]: a }, 'durable');
    expect(called).toEqual(['x']);
    w.whenRoom(() => called.push('y'));
    expect(called).toEqual(['x', 'y']);
  });

  test('full() also at maxInFlightBytes of payload; a message larger than the bound is still taken, alone', () => {
    const acks: number[] = [];
    const w = new AckWindow('bytes', { maxInFlight: 100, maxInFlightBytes: 1000, timeoutMs: 0, sendAck: (id) => acks.push(id) });
    windowsToClose.push(w);
    w.connect();
    const a = w.track(1, 't', 600);
    expect(w.full()).toBe(false);
    const b = w.track(2, 't', 400);
    expect(w.full()).toBe(true);
    expect(w.stats()).toMatchObject({ inFlight: 2, inFlightBytes: 1000 });
    const called: string[] = [];
    w.whenRoom(() => called.push('room'));
    settleAck({ [ACK_PROPERTY]: b }, 'durable');
    // Released in arrival order: b waits for a, so its bytes still count.
    expect(called).toEqual([]);
    expect(w.inFlightBytes()).toBe(1000);
    settleAck({ [ACK_PROPERTY]: a }, 'durable');
    expect(called).toEqual(['room']);
    expect(w.stats()).toMatchObject({ inFlight: 0, inFlightBytes: 0 });
    const big = w.track(3, 't', 5000);
    expect(w.full()).toBe(true);
    settleAck({ [ACK_PROPERTY]: big }, 'rejected');
    expect(w.full()).toBe(false);
    expect(acks).toEqual([1, 2, 3]);
    w.track(4, 't', 2000);
    w.close();
    expect(w.inFlightBytes()).toBe(0);
    expect(() => new AckWindow('x', { maxInFlight: 1, maxInFlightBytes: -1, timeoutMs: 0, sendAck: () => undefined })).toThrow(RangeError);
    expect(() => new AckWindow('x', { maxInFlight: 1, maxInFlightBytes: 1.5, timeoutMs: 0, sendAck: () => undefined })).toThrow(RangeError);
  });

  test('sweep() releases (and acknowledges) messages unsettled past the timeout, oldest first, and names a topic', () => {
    const { w, acks, clock } = open(100, 5000);
    w.track(1, 'devices/a/status');
    clock.t += 3000;
    const b = w.track(2, 'devices/b/t');
    expect(w.sweep()).toBe(0);
    clock.t += 2000;
    expect(w.sweep()).toBe(1);
    expect(acks).toEqual([1]);
    expect(w.lastTimedOutTopic).toBe('devices/a/status');
    settleAck({ [ACK_PROPERTY]: b }, 'durable');
    expect(acks).toEqual([1, 2]);
    expect(w.stats()).toMatchObject({ timedOut: 1, acknowledged: 2 });
  });

  test('timeout 0 never releases', () => {
    const { w, clock } = open(100, 0);
    w.track(1, 't');
    clock.t += 1e9;
    expect(w.sweep()).toBe(0);
    expect(w.inFlight()).toBe(1);
  });

  test('a long run stays bounded (the queue is compacted) and counts add up', () => {
    const { w, acks } = open(10);
    for (let i = 0; i < 50_000; i++) settleAck({ [ACK_PROPERTY]: w.track((i % 65535) + 1, 't') }, 'durable');
    expect(acks).toHaveLength(50_000);
    expect(w.stats()).toMatchObject({ inFlight: 0, received: 50_000, acknowledged: 50_000 });
    expect((w as unknown as { queue: unknown[] }).queue.length).toBeLessThan(2100);
  });

  test('close(): pending messages stay unacknowledged, tokens no longer settle, the window leaves the table', () => {
    const { w, acks } = open();
    const tok = w.track(1, 't');
    expect(ackWindowStats().some((x) => x.id === w.id)).toBe(true);
    w.close();
    expect(settleAck({ [ACK_PROPERTY]: tok }, 'durable')).toBe(0);
    expect(acks).toEqual([]);
    expect(ackWindowStats().some((x) => x.id === w.id)).toBe(false);
  });

  test('settleAck: arrays of tokens, and anything else (absent, garbage, unknown window) settles nothing', () => {
    const { w, acks } = open();
    const toks = [w.track(1, 't'), w.track(2, 't')];
    expect(settleAck({ [ACK_PROPERTY]: toks }, 'durable')).toBe(2);
    expect(acks).toEqual([1, 2]);
    for (const bad of [undefined, 42, 'nohash', 'ghost.1#1', `${w.id}#x`, `${w.id}#999`, { a: 1 }]) {
      expect(settleAck({ [ACK_PROPERTY]: bad }, 'durable')).toBe(0);
    }
    expect(settleAck(null, 'durable')).toBe(0);
  });

  test('bad options are refused', () => {
    const sendAck = (): void => undefined;
    expect(() => new AckWindow('x', { maxInFlight: 0, timeoutMs: 0, sendAck })).toThrow(RangeError);
    expect(() => new AckWindow('x', { maxInFlight: 70_000, timeoutMs: 0, sendAck })).toThrow(RangeError);
    expect(() => new AckWindow('x', { maxInFlight: 1, timeoutMs: -1, sendAck })).toThrow(RangeError);
  });
});

describe('topic filters', () => {
  test.each([
    ['devices/+/+', 'devices/a/telemetry', true],
    ['devices/+/+', 'devices/a/b/c', false],
    ['devices/+/status', 'devices/a/status', true],
    ['devices/+/status', 'devices/a/telemetry', false],
    ['devices/#', 'devices', true],
    ['devices/#', 'devices/a/b/c', true],
    ['#', '$SYS/broker/uptime', false],
    ['$SYS/#', '$SYS/broker/uptime', true],
    ['+/+', '/a', true],
    ['a', 'a/b', false],
  ])('%s matches %s: %s', (f, t, want) => {
    expect(topicMatches(f, t)).toBe(want);
    expect(topicMatcher([f])(t)).toBe(want);
  });

  test('topicMatcher (one regular expression for several filters) agrees with topicMatches on random filters and topics', () => {
    // Levels drawn from a small alphabet (with regex metacharacters, '$' and empty levels) so that matches are common.
    const words = ['a', 'b', 'a.b', '$SYS', 'x+y', '(c)', '', 'd*'];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const topic = (): string => Array.from({ length: 1 + rnd(4) }, () => words[rnd(words.length)]).join('/');
    const filter = (): string => {
      const n = 1 + rnd(4);
      const levels = Array.from({ length: n }, () => (rnd(3) === 0 ? '+' : words[rnd(words.length)]));
      if (rnd(3) === 0) levels[n - 1] = '#';
      return levels.join('/');
    };
    let matched = 0;
    for (let i = 0; i < 3000; i++) {
      const filters = Array.from({ length: 1 + rnd(3) }, filter).filter((f) => topicFilterProblem(f) === undefined);
      const m = topicMatcher(filters);
      for (let j = 0; j < 5; j++) {
        const t = topic();
        const want = filters.some((f) => topicMatches(f, t));
        if (want) matched++;
        expect([filters, t, m(t)]).toEqual([filters, t, want]);
      }
    }
    expect(matched).toBeGreaterThan(1000);
    expect(topicMatcher([])('a')).toBe(false);
  });

  test.each([
    ['devices/+/+', undefined],
    ['#', undefined],
    ['a/#', undefined],
    ['', 'is empty'],
    ['a/#/b', "uses '#' other than as the whole last level"],
    ['a#', "uses '#' other than as the whole last level"],
    ['a/b+', "uses '+' other than as a whole level"],
    ['a\u0000b', 'contains a NUL character'],
  ])('filter %j: %s', (f, want) => {
    expect(topicFilterProblem(f)).toBe(want);
  });
});

describe('mqttInOptions', () => {
  test('defaults: loopback 1883, stable client id from the node id, devices/+/+, 5,000 in flight (16 MB), 60 s', () => {
    const { options, problems } = mqttInOptions({ id: 'abc123' });
    expect(problems).toEqual([]);
    expect(options).toEqual({
      url: 'mqtt://127.0.0.1:1883',
      clientId: 'thingwire-abc123',
      topics: ['devices/+/+'],
      confirmOnReceipt: [],
      protocolVersion: 4,
      maxInFlight: 5000,
      maxInFlightBytes: 16 * 1024 * 1024,
      ackTimeoutMs: 60_000,
      sessionExpiryS: 86_400,
      keepaliveS: 30,
      group: false,
    });
  });

  test('group: on from the editor (true) and from saved text ("true"), else off', () => {
    expect(mqttInOptions({ id: 'n', group: true }).options.group).toBe(true);
    expect(mqttInOptions({ id: 'n', group: 'true' }).options.group).toBe(true);
    expect(mqttInOptions({ id: 'n', group: 'false' }).options.group).toBe(false);
    expect(mqttInOptions({ id: 'n', group: false }).options.group).toBe(false);
  });

  test('lists, TLS, IPv6, MQTT 5', () => {
    const { options, problems } = mqttInOptions({
      id: 'n',
      host: '::1',
      port: '8883',
      tls: 'mqtts',
      topics: 'a/+\n b/#, c',
      confirmOnReceipt: 'devices/+/status',
      protocol: '5',
      maxInFlight: '200',
      maxInFlightMB: '2',
      ackTimeout: '0',
    });
    expect(problems).toEqual([]);
    expect(options).toMatchObject({ url: 'mqtts://[::1]:8883', topics: ['a/+', 'b/#', 'c'], confirmOnReceipt: ['devices/+/status'], protocolVersion: 5, maxInFlight: 200, maxInFlightBytes: 2 * 1024 * 1024, ackTimeoutMs: 0 });
  });

  test('every problem is named', () => {
    const { problems } = mqttInOptions({ id: 'n', host: 'mqtt://x', port: '0', clientId: 'has space', topics: 'a/#/b', confirmOnReceipt: 'x+', maxInFlight: '70000', maxInFlightMB: '0', ackTimeout: 'soon' });
    expect(problems).toEqual([
      'host "mqtt://x" must be a host name or address (no scheme, path or credentials)',
      'port must be a whole number from 1 to 65535, got "0"',
      'client id "has space" must be 1-128 of A-Z a-z 0-9 . _ : -',
      'topic filter "a/#/b" uses \'#\' other than as the whole last level',
      'topic filter "x+" uses \'+\' other than as a whole level',
      'max in flight must be a whole number from 1 to 65535, got "70000"',
      'max in flight MB must be a whole number from 1 to 4096, got "0"',
      'confirmation timeout must be a whole number from 0 to 86400, got "soon"',
    ]);
    expect(mqttInOptions({ id: 'n', topics: ' , ' }).problems).toEqual(['no topic to subscribe to']);
  });
});
