/**
 * runtime/loadgen.ts, its pure parts: pacing (token bucket), reading payloads, the hostile kinds (each run
 * through the real pipeline libraries, in the shipped starter flow's order: parsePayload + normalise, the
 * starter's reading schema, readingToPoint + encodePoint, and the anomaly scores' anomalyToPoint + encodePoint,
 * to check the node type, code and count each kind declares), the checker's tally, the Prometheus parsing and the command line.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { DEFAULT_NORMALISE_OPTIONS, normalise } from '../../nodes/lib/normalise';
import { parsePayload } from '../../nodes/lib/payload';
import { DEFAULT_POINT_SCHEMA, anomalyToPoint, readingToPoint } from '../../nodes/lib/store/points';
import type { Point } from '../../nodes/lib/store/types';
import { ThingwireError } from '../../nodes/lib/errors';
import type { AnomalyScore, Reading } from '../../nodes/lib/contract';
import { ValidatorEngine } from '../../nodes/validate/engine';
import {
  HOSTILE_KINDS,
  TokenBucket,
  bucketCapacity,
  diffCounts,
  expectedRejects,
  getText,
  hostileDeviceId,
  hostileKindAt,
  loadDeviceId,
  metricNames,
  parseLoadArgs,
  parseMetric,
  readingJson,
  ReadingEncoder,
  rejectsByCode,
  rollupMismatches,
  tally,
} from '../../runtime/loadgen';
import { UsageError } from '../../runtime/simulate';

const ROOT = path.resolve(__dirname, '..', '..');
const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);

/** The starter flow's reading schema, as shipped. */
function starterSchema(): unknown {
  const flows = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'starter.json'), 'utf8')) as Array<{ id: string; schema?: string }>;
  const v = flows.find((n) => n.id === 'tw.starter.validate');
  if (!v?.schema) throw new Error('starter flow has no tw.starter.validate schema');
  return JSON.parse(v.schema);
}

type Outcome = { accepted: Reading[] } | { nodeType: string; codes: string[] };

/** One MQTT message through the starter pipeline's libraries: where it is rejected, or what is stored. */
function pipeline(topic: string, payload: Buffer | string, validator: ReturnType<ValidatorEngine['compile']>, engine: ValidatorEngine): Outcome {
  let value: unknown;
  try {
    value = parsePayload(Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8'), 262_144);
  } catch (e) {
    if (e instanceof ThingwireError) return { nodeType: 'thingwire-normalise', codes: [e.code] };
    throw e;
  }
  const r = normalise(value, { topic }, { ...DEFAULT_NORMALISE_OPTIONS, now: () => NOW });
  if (r.rejects.length > 0) {
    expect(r.readings).toEqual([]); // a hostile message is rejected whole
    return { nodeType: 'thingwire-normalise', codes: r.rejects.map((x) => x.code) };
  }
  const writeRejects: string[] = [];
  const write = (p: () => Point): void => {
    try {
      encodePoint(p());
    } catch (e) {
      if (!(e instanceof ThingwireError)) throw e;
      writeRejects.push(e.code);
    }
  };
  for (const reading of r.readings) {
    const v = engine.validate(validator, reading);
    if (!v.valid) return { nodeType: 'thingwire-validate', codes: ['validation_failed'] };
    write(() => readingToPoint(reading, undefined, DEFAULT_POINT_SCHEMA));
    // The starter's anomaly node scores these metrics; its scores (with the reading's tags) go to a write node too.
    for (const metric of ['temperature', 'humidity', 'vibration']) {
      const value = reading.metrics[metric];
      if (typeof value !== 'number') continue;
      const score: AnomalyScore = { device: reading.device, metric, ts: reading.ts, value, score: 0, anomalous: false, ...(reading.tags ? { tags: reading.tags } : {}) } as AnomalyScore;
      write(() => anomalyToPoint(score, undefined, DEFAULT_POINT_SCHEMA));
    }
  }
  if (writeRejects.length > 0) return { nodeType: 'thingwire-write', codes: writeRejects };
  return { accepted: r.readings };
}

describe('token bucket', () => {
  test('earns rate tokens a second and keeps at most its capacity; what overflows is lost', () => {
    const b = new TokenBucket(1000, 50, 0, 0);
    b.refill(10);
    expect(b.tokens).toBeCloseTo(10);
    expect(b.take(11)).toBe(false);
    expect(b.take(10)).toBe(true);
    b.refill(110); // 100 more, capacity 50
    expect(b.tokens).toBe(50);
    expect(b.lost).toBeCloseTo(50);
    b.refill(100); // the clock going back adds nothing
    expect(b.tokens).toBe(50);
  });

  test('a steady consumer gets exactly the rate', () => {
    const b = new TokenBucket(400, bucketCapacity(400, 1), 0);
    let taken = 0;
    for (let t = 1; t <= 5000; t += 3) {
      b.refill(t);
      while (b.take(1)) taken++;
    }
    // 5 s at 400/s, plus the one initial token, minus what is still in the bucket
    expect(taken).toBeGreaterThanOrEqual(1999);
    expect(taken).toBeLessThanOrEqual(2001);
    expect(b.lost).toBe(0);
  });

  test('the capacity holds at least one batch', () => {
    expect(bucketCapacity(100, 100)).toBe(100);
    expect(bucketCapacity(100_000, 1)).toBe(5000);
    expect(() => new TokenBucket(0, 1, 0)).toThrow(/rate must be > 0/);
  });
});

describe('payloads', () => {
  test('device ids', () => {
    expect(loadDeviceId(0)).toBe('load-00001');
    expect(loadDeviceId(99_998)).toBe('load-99999');
    expect(hostileDeviceId(9)).toBe('hostile-00010');
  });

  test('metric names: the three simulator metrics, then x3..', () => {
    expect(metricNames(0)).toEqual([]);
    expect(metricNames(5)).toEqual(['temperature', 'humidity', 'vibration', 'x3', 'x4']);
  });

  test('a reading is valid JSON the pipeline stores as it is, seq included, inside the schema', () => {
    const engine = new ValidatorEngine();
    const schema = engine.compile(starterSchema());
    for (const seq of [1, 149, 150, 399, 12_345]) {
      const text = readingJson(NOW + seq, seq, metricNames(5), 'ppp');
      const o = JSON.parse(text) as Record<string, unknown>;
      expect(o.ts).toBe(NOW + seq);
      expect(o.seq).toBe(seq);
      const out = pipeline('devices/load-00001/telemetry', text, schema, engine);
      expect(out).toEqual({
        accepted: [{ device: 'load-00001', ts: NOW + seq, metrics: { seq, temperature: o.temperature, humidity: o.humidity, vibration: o.vibration, x3: o.x3, x4: o.x4 }, tags: { pad: 'ppp' } }],
      });
      expect(o.temperature as number).toBeLessThan(45); // below the starter's alert rules
      expect(o.vibration as number).toBeLessThan(7.1);
    }
  });
});

test('the values are the documented functions of seq (the texts come from tables, the numbers must not change)', () => {
  const names = metricNames(5);
  for (let seq = 0; seq < 2_000; seq += 7) {
    const o = JSON.parse(readingJson(NOW + seq, seq, names, '')) as Record<string, number>;
    expect(o).toEqual({ ts: NOW + seq, seq, temperature: 15 + (seq % 150) / 10, humidity: 30 + (seq % 400) / 10, vibration: 0.5 + (seq % 200) / 100, x3: (seq * 4) % 1000, x4: (seq * 5) % 1000 });
  }
  expect(readingJson(NOW, 3, metricNames(0), '')).toBe(`{"ts":${NOW},"seq":3}`);
});

test('the encoder writes the bytes of readingJson, one reading or an array, whatever the numbers', () => {
  for (const [n, pad] of [[0, ''], [3, ''], [5, 'ppp']] as const) {
    const names = metricNames(n);
    const enc = new ReadingEncoder(names, pad);
    // ts with zeros inside their low 8 digits, seq across the tables' lengths and past 10^8 and 2^31.
    const ts = [0, 7, NOW, 1_800_000_000_005, 1_700_000_000_000, 99_999_999, 100_000_000, 123_456_789_012];
    for (const first of [0, 1, 149, 399, 99_999_995, 4_294_967_290]) {
      const single = enc.encode([ts[3]], first, 1, true);
      expect(single.toString()).toBe(readingJson(ts[3], first, names, pad));
      const batch = enc.encode(ts, first, ts.length, false);
      expect(batch.toString()).toBe(`[${ts.map((t, j) => readingJson(t, first + j, names, pad)).join(',')}]`);
    }
  }
});

describe('hostile kinds', () => {
  const engine = new ValidatorEngine();
  const schema = engine.compile(starterSchema());

  test.each(HOSTILE_KINDS.map((k) => [k.name, k] as const))('%s is rejected where and how it says', (_name, kind) => {
    for (const i of [0, 1, 7]) {
      const m = kind.make(i, NOW);
      const out = pipeline(m.topic, m.payload, schema, engine);
      expect(out).toEqual({ nodeType: kind.nodeType, codes: new Array<string>(kind.rejectsPerMessage).fill(kind.code) });
      expect(m.topic).not.toMatch(/load-/); // never a load device's topic
    }
  });

  test('the huge and the 10,001-item kinds are over the normaliser limits; the rest are small', () => {
    const size = (name: string): number => {
      const p = HOSTILE_KINDS.find((k) => k.name === name)!.make(0, NOW).payload;
      return Buffer.byteLength(p);
    };
    expect(size('huge')).toBeGreaterThan(256 * 1024);
    expect(JSON.parse(HOSTILE_KINDS.find((k) => k.name === 'batch_10001')!.make(0, NOW).payload as string)).toHaveLength(10_001);
    expect(size('empty')).toBe(0);
    for (const k of HOSTILE_KINDS) if (k.name !== 'huge' && k.name !== 'batch_10001') expect(size(k.name)).toBeLessThan(200);
  });

  test('the cycle gives each kind its weight, so counts are exact', () => {
    const cycle = HOSTILE_KINDS.reduce((s, k) => s + k.weight, 0);
    const counts: Record<string, number> = {};
    for (let i = 0; i < cycle * 3; i++) {
      const k = hostileKindAt(i);
      counts[k.name] = (counts[k.name] ?? 0) + 1;
    }
    for (const k of HOSTILE_KINDS) expect(counts[k.name]).toBe(3 * k.weight);
    expect(new Set(HOSTILE_KINDS.map((k) => k.name)).size).toBe(HOSTILE_KINDS.length);
  });

  test('expected rejects sum kinds by node type and code, batches counting per element', () => {
    const m = expectedRejects({ malformed_json: 2, empty: 3, bad_batch: 4, out_of_range: 1, unknown_kind: 9 });
    expect([...m].sort()).toEqual([
      ['thingwire-normalise malformed_json', 5],
      ['thingwire-normalise not_a_reading', 12],
      ['thingwire-validate validation_failed', 1],
    ]);
  });
});

describe('tally', () => {
  test('counts expected, stored, missing (first few listed), duplicates, unexpected and foreign rows', () => {
    const expected = new Map([
      ['a', 5],
      ['b', 3],
      ['c', 0],
    ]);
    const rows: Array<[string, number, number]> = [
      ['a', 1, 10],
      ['a', 2, 11],
      ['a', 2, 11], // the same row read twice (same ts): not a duplicate
      ['a', 4, 13],
      ['b', 1, 20],
      ['b', 2, 21],
      ['b', 2, 25], // the same seq at another ts: a duplicate
      ['b', 3, 22],
      ['b', 9, 30], // never published
      ['b', 1.5, 31],
      ['zz', 1, 1],
    ];
    const r = tally(expected, rows);
    expect(r).toMatchObject({ devices: 3, expected: 8, storedDistinct: 6, storedRows: 11, missing: 2, duplicates: 1, unexpected: 2, foreignRows: 1, foreignDevices: ['zz'] });
    expect(r.problems).toEqual([
      { device: 'a', expected: 5, storedDistinct: 3, missing: 2, missingFirst: [3, 5], duplicates: 0, unexpected: 0 },
      { device: 'b', expected: 3, storedDistinct: 3, missing: 0, missingFirst: [], duplicates: 1, unexpected: 2 },
    ]);
  });

  test('failed publishes are not expected; at most five missing seqs are listed', () => {
    const r = tally(new Map([['a', 10]]), [['a', 1, 1]], new Map([['a', [2, 3]]]));
    expect(r.expected).toBe(8);
    expect(r.missing).toBe(7);
    expect(r.problems[0].missingFirst).toEqual([4, 5, 6, 7, 8]);
  });

  test('a complete store is clean', () => {
    const rows: Array<[string, number, number]> = [];
    for (let s = 1; s <= 100; s++) rows.push(['d', s, s]);
    expect(tally(new Map([['d', 100]]), rows)).toMatchObject({ missing: 0, duplicates: 0, unexpected: 0, storedDistinct: 100, problems: [] });
  });
});

describe('metrics text', () => {
  const TEXT = [
    '# HELP thingwire_rejects_total Rejects',
    '# TYPE thingwire_rejects_total counter',
    'thingwire_rejects_total{node_type="thingwire-normalise",code="malformed_json"} 12',
    'thingwire_rejects_total{node_type="thingwire-write",code="invalid_value"} 3',
    'thingwire_rejects_total_other 5',
    'thingwire_store_queued_lines{store="tw.store"} 0',
  ].join('\n');

  test('one family by labels; reject codes keyed by node type and code; differences', () => {
    const s = parseMetric(TEXT, 'thingwire_rejects_total');
    expect(s.size).toBe(2);
    const by = rejectsByCode(s);
    expect(by.get('thingwire-normalise malformed_json')).toBe(12);
    const later = new Map(by);
    later.set('thingwire-write invalid_value', 5);
    later.set('thingwire-validate validation_failed', 1);
    expect([...diffCounts(by, later)]).toEqual([
      ['thingwire-write invalid_value', 2],
      ['thingwire-validate validation_failed', 1],
    ]);
  });
});

describe('command line', () => {
  const env = {};
  test('defaults and flags', () => {
    const p = parseLoadArgs(['--devices', '200', '--rate=400', '--duration', '5', '--qos', '1', '--hostile', '2000', '--check', 'http://127.0.0.1:1880/'], env);
    if (p.help) throw new Error('help');
    expect(p.options).toMatchObject({ rate: 400, durationMs: 5000, batch: 1, hostile: 2000, check: 'http://127.0.0.1:1880', load: { devices: 200, qos: 1, connections: 4, metrics: 3, url: 'mqtt://127.0.0.1:1883', reconnect: false } });
  });

  test('--reconnect takes no value and turns the generator\'s reconnect on', () => {
    const p = parseLoadArgs(['--reconnect', '--devices', '3'], env);
    if (p.help) throw new Error('help');
    expect(p.options.load).toMatchObject({ reconnect: true, devices: 3 });
  });

  test('per-device rate and hostile ratio', () => {
    const p = parseLoadArgs(['--devices', '10', '--per-device', '5', '--duration', '2', '--batch', '10', '--hostile-ratio', '0.5'], env);
    if (p.help) throw new Error('help');
    expect(p.options.rate).toBe(50);
    expect(p.options.hostile).toBe(5); // 100 readings in 10 messages, half as many hostile
  });

  test.each([
    [['--devices', '0'], /--devices must be a whole number 1\.\.99999/],
    [['--rate', '5', '--per-device', '1'], /--rate or --per-device/],
    [['--qos', '2'], /--qos must be 0 or 1/],
    [['--bogus'], /unknown argument/],
    [['--check', 'ftp://x'], /--check must be/],
    [['--batch'], /--batch needs a value/],
    [['--reconnect=yes'], /--reconnect takes no value/],
    [['--reconnect', '--reconnect'], /more than once/],
  ])('%j is refused', (argv, re) => {
    expect(() => parseLoadArgs(argv, env)).toThrow(UsageError);
    expect(() => parseLoadArgs(argv, env)).toThrow(re);
  });

  test('hostile messages need the anonymous mode', () => {
    expect(() => parseLoadArgs(['--hostile', '5'], { THINGWIRE_PROVISIONING_KEY: 'k' })).toThrow(/anonymous mode/);
  });
});

test('rollupMismatches: devices whose rollups counted other than they published, a missing device as 0', () => {
  const expected = new Map([
    ['load-0001', 10],
    ['load-0002', 5],
    ['load-0003', 7],
  ]);
  expect(
    rollupMismatches(
      expected,
      new Map([
        ['load-0001', 10],
        ['load-0002', 6],
        ['other', 3],
      ]),
    ),
  ).toEqual([
    ['load-0002', 5, 6],
    ['load-0003', 7, 0],
  ]);
  expect(rollupMismatches(expected, new Map(expected))).toEqual([]);
});

describe('getText (the checker reading the store through the API)', () => {
  /** A server that drops the connection of its first `drops` requests without an answer, then answers 'ok'. */
  async function flaky(drops: number, status = 200): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
    let n = 0;
    const server = http.createServer((req, res) => {
      n++;
      if (n <= drops) {
        req.socket.destroy();
        return;
      }
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'no such thing');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    return { url: `http://127.0.0.1:${port}/x`, requests: () => n, close: () => new Promise((r) => server.close(() => r())) };
  }

  test('a connection closed by the server is tried again, twice', async () => {
    const s = await flaky(2);
    try {
      await expect(getText(s.url)).resolves.toBe('ok');
      expect(s.requests()).toBe(3);
    } finally {
      await s.close();
    }
  });

  test('a third closed connection fails; an answer other than 200 fails at once with its status', async () => {
    const s = await flaky(3);
    try {
      await expect(getText(s.url)).rejects.toThrow('fetch failed');
      expect(s.requests()).toBe(3);
    } finally {
      await s.close();
    }
    const t = await flaky(0, 404);
    try {
      await expect(getText(t.url)).rejects.toThrow(/answered 404: no such thing/);
      expect(t.requests()).toBe(1);
    } finally {
      await t.close();
    }
  });
});
