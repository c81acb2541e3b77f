/**
 * Thingwire load generator and delivery checker (issue 11, item 2): a fleet of load devices publishing
 * numbered readings over MQTT at a paced rate, optionally mixed with malformed and hostile messages, and a
 * checker that counts exactly what reached the store.
 *
 *   npm run build && node dist/runtime/loadgen.js --devices 200 --rate 400 --duration 5 --qos 1 \
 *        --hostile 2000 --check http://127.0.0.1:1880
 *
 * Generator. Devices load-00001..load-NNNNN publish on `{prefix}/{device}/telemetry` over K MQTT
 * connections (device i on connection i % K; anonymous, which the runtime's broker lets publish as any
 * device only with THINGWIRE_MQTT_ANONYMOUS=1), or, with a provisioning key, one connection per device
 * (user = device id, password `provision:<key>`) as runtime/simulate.ts does. Every reading carries the
 * metric `seq` (1, 2, 3... per device) and its event time `ts`: the publish time, made strictly increasing
 * per device (the store keeps one value per series and ms timestamp, so two readings of a device in the
 * same ms would overwrite each other). A message holds one reading (a JSON object) or a batch of B readings
 * (a JSON array, consecutive seqs of one device). Messages go round-robin over the devices, paced by a token
 * bucket (rate in readings/s, a small bucket: no bursts beyond about 50 ms of traffic; tokens that overflow
 * it while the publisher is held up, by its own CPU or by too many unacknowledged publishes, are lost and
 * show as achieved < asked; achieved counts until the last publish was answered, so publishes the broker
 * acknowledges late, holding them back, lower it too). The payload size is set by extra numeric metrics (`--metrics`) or a constant
 * string field `pad` (`--pad BYTES`, which the shipped normaliser makes a tag).
 *
 * Hostile mix. `--hostile N` spreads N malformed or hostile messages evenly over the run, on their own
 * connection, for devices hostile-00001.. (never a load device), cycling through HOSTILE_KINDS (weighted:
 * the large ones less often) so the count of each kind is exact; each kind names the node type and reject
 * code the shipped pipeline gives it and how many rejects one message counts (a batch counts one per bad
 * element; a reading the store refuses is refused again as an anomaly score), so the runtime's
 * `thingwire_rejects_total` can be compared with what was sent.
 *
 * Checker. Reads `seq` of every load device from the store, through `GET /api/v1/series` (in pages of
 * devices and of 100,000 points, the store's cap per series) or straight from the embedded DuckDB file
 * once the runtime has stopped (EmbeddedBackend.exportRange of measurement telemetry), and compares it
 * with what the generator published: per device expected, stored distinct, missing (the first few listed),
 * duplicates and unexpected values. What a duplicate can be: the store is idempotent on series + ts, so a
 * redelivery of the same message (same ts) is stored once and cannot be seen; what can be seen is the same
 * seq stored at two different ts (a reading published twice by its device), which is counted as a duplicate.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { EmbeddedBackend } from '../nodes/lib/store/embedded';
import { defaultBrokerUrl, parseBrokerUrl, redactUrl, UsageError, withDataDirKey } from './simulate';

// ---------------------------------------------------------------------------------------------
// Options

export const LOAD_DEFAULTS = {
  devices: 100,
  rate: 1000,
  durationS: 10,
  batch: 1,
  qos: 0 as 0 | 1,
  connections: 4,
  metrics: 3,
  padBytes: 0,
  prefix: 'devices',
  maxInFlight: 900,
} as const;

export const LOAD_LIMITS = {
  maxDevices: 99_999,
  maxRate: 10_000_000,
  maxBatch: 10_000,
  maxConnections: 1000,
  maxMetrics: 1000,
  maxPadBytes: 1_000_000,
  maxDurationS: 86_400,
  maxHostile: 100_000_000,
} as const;

/** Device ids of the load fleet: load-00001, load-00002, ... (index 0 is load-00001). */
export function loadDeviceId(index: number): string {
  return `load-${String(index + 1).padStart(5, '0')}`;
}

/** Device ids the hostile messages use (never a load device). */
export function hostileDeviceId(index: number): string {
  return `hostile-${String(index + 1).padStart(5, '0')}`;
}

export interface LoadOptions {
  /** Broker URL, mqtt:// or mqtts://. */
  url: string;
  devices: number;
  /** First topic segment: `{prefix}/{device}/telemetry`. */
  prefix: string;
  qos: 0 | 1;
  /** MQTT connections for the anonymous mode (ignored with a provisioning key: one per device). */
  connections: number;
  /** Numeric metrics besides seq: temperature, humidity, vibration, then x3, x4... (0..LOAD_LIMITS.maxMetrics). */
  metrics: number;
  /** Length of a constant string field `pad` in every reading (0: none). */
  padBytes: number;
  /** Publishes not yet acknowledged (QoS 1) or written (QoS 0) per connection before the generator waits. */
  maxInFlight: number;
  /** THINGWIRE_PROVISIONING_KEY: one connection per device with password provision:<key>. */
  provisioningKey?: string;
  /** Device indexes whose publish times are kept (for latency): seq -> wall-clock ms. */
  track?: readonly number[];
  /**
   * Reconnect after a lost connection (a broker restart) and send the unacknowledged QoS 1 publishes
   * again, as a device with a persistent outbox does. Default false: a lost connection fails them.
   */
  reconnect?: boolean;
  /**
   * How long connect() keeps trying while the broker cannot be reached (a runtime still starting), ms: a new attempt
   * every WAIT_RETRY_MS. Default 0: the first failure fails connect().
   */
  waitMs?: number;
  /** Told once when connect() starts waiting for the broker (why, and for how long at most). */
  onWait?: (line: string) => void;
}

/** How often connect() tries again while it waits for the broker (LoadOptions.waitMs). */
export const WAIT_RETRY_MS = 500;

export interface PhaseOptions {
  /** Readings per second asked, over all devices. */
  rate: number;
  durationMs: number;
  /** Readings per message: 1 = a JSON object, more = a JSON array of that many readings of one device. */
  batch: number;
  /** Hostile messages to spread evenly over the phase. */
  hostile?: number;
  /**
   * Readings to publish, exactly: the phase then ends when that many are published (at `rate`, however long a busy
   * machine makes it take) instead of at `durationMs`, which only spreads the hostile messages. A multiple of batch.
   */
  readings?: number;
  /** Called about every 100 ms with the figures so far. */
  onProgress?: (r: PhaseResult) => void;
}

export interface PhaseResult {
  askedRate: number;
  /** From the phase's start to the answer of its last publish (at least its duration). */
  seconds: number;
  /** Valid messages and readings published (the publish call succeeded; QoS 1: acknowledged). */
  messages: number;
  readings: number;
  /** readings / seconds. */
  achievedRate: number;
  /** Publishes that failed (connection lost...): their readings are not expected in the store. */
  failed: number;
  /** Tokens lost because the publisher was held up (readings not published). */
  lostTokens: number;
  /** Hostile messages sent, per kind (failed ones not counted). */
  hostile: Record<string, number>;
  hostileFailed: number;
}

// ---------------------------------------------------------------------------------------------
// Pacing

/**
 * A token bucket: `rate` tokens a second up to `capacity`; what overflows the bucket is counted as lost.
 * Pure: the caller passes the clock (ms).
 */
export class TokenBucket {
  tokens: number;
  lost = 0;
  private last: number;

  constructor(
    readonly rate: number,
    readonly capacity: number,
    now: number,
    initial = Math.min(1, capacity),
  ) {
    if (!(rate > 0) || !(capacity >= 1)) throw new Error(`token bucket: rate must be > 0 and capacity >= 1, got ${rate} and ${capacity}`);
    this.tokens = initial;
    this.last = now;
  }

  /** Adds the tokens earned since the last call. */
  refill(now: number): void {
    if (now <= this.last) return;
    this.tokens += ((now - this.last) * this.rate) / 1000;
    this.last = now;
    if (this.tokens > this.capacity) {
      this.lost += this.tokens - this.capacity;
      this.tokens = this.capacity;
    }
  }

  /** Takes n tokens when there are that many. */
  take(n: number): boolean {
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}

/** The bucket size for a rate and batch: about 50 ms of traffic, at least one message. */
export function bucketCapacity(rate: number, batch: number): number {
  return Math.max(batch, rate * 0.05);
}

// ---------------------------------------------------------------------------------------------
// Payloads

const BASE_METRICS = ['temperature', 'humidity', 'vibration'];

/** Metric names besides seq for `n` metrics. */
export function metricNames(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(i < BASE_METRICS.length ? BASE_METRICS[i] : `x${i}`);
  return out;
}

/**
 * One reading as JSON text (the readable statement of the load format: ReadingEncoder writes the same bytes, and the
 * tests hold it to this): `{"ts":..,"seq":..,"temperature":..,...,"pad":"..."}`. Values stay inside the
 * starter flow's schema and below its alert thresholds (temperature 15-30 °C, humidity 30-70 %, vibration
 * 0.5-2.5 mm/s), and vary with seq.
 */
export function readingJson(ts: number, seq: number, names: readonly string[], pad: string): string {
  let keys = KEYS.get(names);
  if (keys === undefined) {
    keys = names.map((n) => `,"${n}":`);
    KEYS.set(names, keys);
  }
  // The values' texts come from tables made once (the same numbers, as the same text): formatting three fractions
  // took most of the ~580 ns a reading this cost, on the machine whose two cores the runtime under test shares.
  let s = `{"ts":${ts},"seq":${seq}`;
  for (let i = 0; i < keys.length; i++) {
    s += keys[i] + (i === 0 ? TEMPERATURE[seq % 150] : i === 1 ? HUMIDITY[seq % 400] : i === 2 ? VIBRATION[seq % 200] : String((seq * (i + 1)) % 1000));
  }
  if (pad !== '') s += `,"pad":"${pad}"`;
  return `${s}}`;
}

const KEYS = new WeakMap<readonly string[], string[]>();

/**
 * Writes messages of readings (the bytes readingJson's texts make, one object or a JSON array of them) straight into
 * a Buffer: the key texts and the value tables as bytes made once, ts and seq as digits. Building the text and
 * encoding it took most of the generator's ~1.1 us a reading (its garbage collection included), on the two cores
 * the runtime under test shares with it.
 */
export class ReadingEncoder {
  /** Byte values of the key texts: `,"temperature":` for each name. */
  private readonly keys: Uint8Array[];
  /** `,"pad":"ppp"}` or `}`. */
  private readonly tail: Uint8Array;
  /** The value texts of each name: a table for the first three, undefined for the rest (written as digits). */
  private readonly tables: Array<Uint8Array[] | undefined>;
  /** The most bytes a reading takes. */
  private readonly most: number;

  constructor(names: readonly string[], pad: string) {
    this.keys = names.map((n) => Buffer.from(`,"${n}":`));
    this.tail = Buffer.from(pad === '' ? '}' : `,"pad":"${pad}"}`);
    const bytesOf = (texts: string[]): Uint8Array[] => texts.map((t) => Buffer.from(t));
    this.tables = names.map((_, i) => (i === 0 ? bytesOf(TEMPERATURE) : i === 1 ? bytesOf(HUMIDITY) : i === 2 ? bytesOf(VIBRATION) : undefined));
    let most = HEAD_TS.length + HEAD_SEQ.length + 2 * 16 + this.tail.length + 1;
    for (const k of this.keys) most += k.length + 5;
    this.most = most;
  }

  /** One message: `count` readings with the times in `ts` and seq from `first` on; an array unless `single`. */
  encode(ts: ArrayLike<number>, first: number, count: number, single: boolean): Buffer {
    const buf = Buffer.allocUnsafe(this.most * count + 2);
    let o = 0;
    if (!single) buf[o++] = 0x5b; // [
    for (let j = 0; j < count; j++) {
      if (j > 0) buf[o++] = 0x2c; // ,
      const seq = first + j;
      o = put(buf, o, HEAD_TS);
      o = digits(buf, o, ts[j]);
      o = put(buf, o, HEAD_SEQ);
      o = digits(buf, o, seq);
      for (let i = 0; i < this.keys.length; i++) {
        o = put(buf, o, this.keys[i]);
        const table = this.tables[i];
        o = table !== undefined ? put(buf, o, table[seq % table.length]) : digits(buf, o, (seq * (i + 1)) % 1000);
      }
      o = put(buf, o, this.tail);
    }
    if (!single) buf[o++] = 0x5d; // ]
    return buf.subarray(0, o);
  }
}

const HEAD_TS = Buffer.from('{"ts":');
const HEAD_SEQ = Buffer.from(',"seq":');

/** Copies bytes into buf at o; returns the offset after them (a loop: the texts are a few bytes). */
function put(buf: Buffer, o: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) buf[o + i] = bytes[i];
  return o + bytes.length;
}

/** Writes a non-negative safe integer's decimal digits at o; returns the offset after them. */
function digits(buf: Buffer, o: number, n: number): number {
  if (n >= 1e8) {
    // Above 2^31 the remainder below would not be an int: the high part first, then 8 digits with their zeros.
    const high = Math.floor(n / 1e8);
    o = digits(buf, o, high);
    let low = n - high * 1e8;
    for (let i = 7; i >= 0; i--) {
      buf[o + i] = 0x30 + (low % 10);
      low = (low / 10) | 0;
    }
    return o + 8;
  }
  let len = 1;
  for (let t = n; t >= 10; t = (t / 10) | 0) len++;
  for (let i = len - 1; i >= 0; i--) {
    buf[o + i] = 0x30 + (n % 10);
    n = (n / 10) | 0;
  }
  return o + len;
}
const TEMPERATURE = Array.from({ length: 150 }, (_, k) => String(15 + k / 10));
const HUMIDITY = Array.from({ length: 400 }, (_, k) => String(30 + k / 10));
const VIBRATION = Array.from({ length: 200 }, (_, k) => String(0.5 + k / 100));

// ---------------------------------------------------------------------------------------------
// Hostile messages

/** Where a hostile kind is rejected in the shipped pipeline, and how many rejects one message counts. */
export interface HostileKind {
  name: string;
  /** thingwire_rejects_total labels. */
  nodeType: 'thingwire-normalise' | 'thingwire-validate' | 'thingwire-write';
  code: string;
  rejectsPerMessage: number;
  /** Messages of this kind per cycle of HOSTILE_KINDS. */
  weight: number;
  what: string;
  /** The topic and payload; i = this message's number among all hostile messages. */
  make(i: number, ts: number): { topic: string; payload: Buffer | string };
}

const HUGE_BYTES = 300 * 1024;
const HUGE_PAD = 'x'.repeat(HUGE_BYTES);
const BIG_BATCH = `[${new Array(10_001).fill('{"v":1}').join(',')}]`;
const telemetry = (i: number): string => `devices/${hostileDeviceId(i % 1000)}/telemetry`;

/**
 * The hostile kinds. Each is rejected as a whole (no reading of it accepted); the control-character tag
 * value is accepted by the normaliser and the schema (a tag value may be any text) and refused by the
 * store's write node, which cannot encode it in line protocol.
 */
export const HOSTILE_KINDS: readonly HostileKind[] = [
  { name: 'malformed_json', nodeType: 'thingwire-normalise', code: 'malformed_json', rejectsPerMessage: 1, weight: 4, what: 'truncated JSON', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"temperature":2` }) },
  { name: 'empty', nodeType: 'thingwire-normalise', code: 'malformed_json', rejectsPerMessage: 1, weight: 4, what: 'an empty payload', make: (i) => ({ topic: telemetry(i), payload: Buffer.alloc(0) }) },
  { name: 'binary', nodeType: 'thingwire-normalise', code: 'malformed_json', rejectsPerMessage: 1, weight: 4, what: 'bytes that are not UTF-8 text', make: (i) => ({ topic: telemetry(i), payload: Buffer.from([0xff, 0xfe, 0x00, 0x81, i & 0xff, 0x7b]) }) },
  { name: 'nan_literal', nodeType: 'thingwire-normalise', code: 'malformed_json', rejectsPerMessage: 1, weight: 4, what: 'NaN as a bare JSON token', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"temperature":NaN}` }) },
  { name: 'nan_string', nodeType: 'thingwire-normalise', code: 'no_metrics', rejectsPerMessage: 1, weight: 4, what: '"NaN" as a string (a tag, so no metric)', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"temperature":"NaN"}` }) },
  { name: 'infinity', nodeType: 'thingwire-normalise', code: 'invalid_value', rejectsPerMessage: 1, weight: 4, what: '1e999 (Infinity once parsed)', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"temperature":1e999}` }) },
  { name: 'wrong_type', nodeType: 'thingwire-normalise', code: 'invalid_value', rejectsPerMessage: 1, weight: 4, what: 'an array as a metric value', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"temperature":[21,22]}` }) },
  { name: 'too_deep', nodeType: 'thingwire-normalise', code: 'invalid_metric', rejectsPerMessage: 1, weight: 4, what: 'an object nested 4 levels', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"a":{"b":{"c":{"d":1}}}}` }) },
  { name: 'not_an_object', nodeType: 'thingwire-normalise', code: 'not_a_reading', rejectsPerMessage: 1, weight: 4, what: 'a JSON string', make: (i) => ({ topic: telemetry(i), payload: '"hello"' }) },
  { name: 'null', nodeType: 'thingwire-normalise', code: 'not_a_reading', rejectsPerMessage: 1, weight: 4, what: 'JSON null', make: (i) => ({ topic: telemetry(i), payload: 'null' }) },
  { name: 'bad_batch', nodeType: 'thingwire-normalise', code: 'not_a_reading', rejectsPerMessage: 3, weight: 4, what: 'a batch of three non-objects (one reject each)', make: (i) => ({ topic: telemetry(i), payload: '[1,"x",null]' }) },
  { name: 'control_metric_name', nodeType: 'thingwire-normalise', code: 'invalid_metric', rejectsPerMessage: 1, weight: 4, what: 'a metric name with a control character', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"te\\u0007mp":21}` }) },
  { name: 'underscore_name', nodeType: 'thingwire-normalise', code: 'invalid_metric', rejectsPerMessage: 1, weight: 4, what: 'a metric name starting with _ (reserved)', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"_measurement":21}` }) },
  { name: 'control_tag_name', nodeType: 'thingwire-normalise', code: 'invalid_tags', rejectsPerMessage: 1, weight: 4, what: 'a tag name with a control character', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"temperature":21,"tags":{"si\\u0000te":"a"}}` }) },
  { name: 'ts_seconds', nodeType: 'thingwire-normalise', code: 'ts_out_of_range', rejectsPerMessage: 1, weight: 4, what: 'ts in seconds (a unit mix-up)', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${Math.floor(ts / 1000)},"temperature":21}` }) },
  { name: 'bad_ts', nodeType: 'thingwire-normalise', code: 'invalid_ts', rejectsPerMessage: 1, weight: 4, what: 'ts as text that is no time', make: (i) => ({ topic: telemetry(i), payload: '{"ts":"yesterday","temperature":21}' }) },
  { name: 'device_mismatch', nodeType: 'thingwire-normalise', code: 'device_mismatch', rejectsPerMessage: 1, weight: 4, what: 'the payload names another device than the topic', make: (i, ts) => ({ topic: telemetry(i), payload: `{"device":"load-00001","ts":${ts},"temperature":21}` }) },
  { name: 'invalid_device_topic', nodeType: 'thingwire-normalise', code: 'invalid_device', rejectsPerMessage: 1, weight: 4, what: 'a topic whose device id is not allowed (_x, unicode)', make: (i, ts) => ({ topic: `devices/${i % 2 === 0 ? '_hostile' : 'h\u00f6stile'}-${i % 1000}/telemetry`, payload: `{"ts":${ts},"temperature":21}` }) },
  { name: 'huge', nodeType: 'thingwire-normalise', code: 'payload_too_large', rejectsPerMessage: 1, weight: 1, what: `a ${HUGE_BYTES / 1024} KiB payload (limit 256 KiB)`, make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"temperature":21,"pad":"${HUGE_PAD}"}` }) },
  { name: 'batch_10001', nodeType: 'thingwire-normalise', code: 'payload_too_large', rejectsPerMessage: 1, weight: 1, what: 'a batch of 10,001 readings (limit 10,000)', make: (i) => ({ topic: telemetry(i), payload: BIG_BATCH }) },
  { name: 'out_of_range', nodeType: 'thingwire-validate', code: 'validation_failed', rejectsPerMessage: 1, weight: 4, what: 'temperature 1000 (schema maximum 150)', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"temperature":1000}` }) },
  // Refused twice: by the readings' write node, and by the anomaly scores' write node (a score carries its reading's tags).
  { name: 'control_tag_value', nodeType: 'thingwire-write', code: 'invalid_value', rejectsPerMessage: 2, weight: 4, what: 'a tag value with a control character (line protocol cannot carry it)', make: (i, ts) => ({ topic: telemetry(i), payload: `{"ts":${ts},"temperature":21,"site":"a\\u0001b"}` }) },
];

/** The kind of hostile message number i: a fixed cycle over HOSTILE_KINDS by weight, so counts are exact. */
export function hostileKindAt(i: number, kinds: readonly HostileKind[] = HOSTILE_KINDS): HostileKind {
  const cycle = kinds.reduce((s, k) => s + k.weight, 0);
  let r = i % cycle;
  for (const k of kinds) {
    if (r < k.weight) return k;
    r -= k.weight;
  }
  return kinds[kinds.length - 1];
}

/** The rejects `sent` (kind -> messages) should produce, by `${nodeType} ${code}`. */
export function expectedRejects(sent: Record<string, number>, kinds: readonly HostileKind[] = HOSTILE_KINDS): Map<string, number> {
  const out = new Map<string, number>();
  for (const k of kinds) {
    const n = sent[k.name] ?? 0;
    if (n === 0) continue;
    const key = `${k.nodeType} ${k.code}`;
    out.set(key, (out.get(key) ?? 0) + n * k.rejectsPerMessage);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The generator

/** Connects once, without retries; rejects with a clear message (the URL shown without its password). */
function connectClient(url: string, clientId: string, login?: { username: string; password: string }, reconnect = false): Promise<MqttClient> {
  const opts: IClientOptions = {
    clientId,
    ...(login ?? {}),
    clean: true,
    connectTimeout: 5000,
    reconnectPeriod: reconnect ? 250 : 0,
    queueQoSZero: false,
    keepalive: 30,
  };
  return new Promise((resolve, reject) => {
    const c = connect(url, opts);
    const fail = (why: string): void => {
      c.removeAllListeners('connect');
      c.on('error', () => undefined);
      c.end(true);
      reject(new Error(`cannot connect to ${redactUrl(url)} as ${clientId}: ${why}`));
    };
    const onError = (e: Error): void => fail(e.message);
    const onClose = (): void => fail('closed before the broker accepted the connection');
    c.once('connect', () => {
      c.removeListener('error', onError);
      c.removeListener('close', onClose);
      c.on('error', () => undefined);
      resolve(c);
    });
    c.once('error', onError);
    c.once('close', onClose);
  });
}

interface Conn {
  client: MqttClient;
  inFlight: number;
}

/** Where a tracked device's publish times are kept: a Map, or shared memory (test/bench/gen-thread.ts). */
export interface PublishTimes {
  get(seq: number): number | undefined;
  set(seq: number, at: number): unknown;
}

/** What the checker helpers read of a generator (a LoadGenerator, or one in a thread of its own). */
export interface PublishedSeqs {
  readonly opts: { readonly devices: number };
  readonly lastSeq: Uint32Array;
  readonly failedSeqs: ReadonlyMap<number, number[]>;
}

/**
 * The load generator: connect(), then one or more phases (run()), then close(). Sequences continue across
 * phases, so a checker sees 1..published per device over the whole session.
 */
export class LoadGenerator {
  /** Last seq given out per device (0: none yet). */
  readonly lastSeq: Uint32Array;
  /** Seqs whose publish failed, per device index (rare: a lost connection). */
  readonly failedSeqs = new Map<number, number[]>();
  /** Publish time (wall ms) per seq of the tracked devices (a Map each, unless the owner put another store there). */
  readonly publishedAt = new Map<number, PublishTimes>();
  /** Valid readings published over all phases. */
  totalReadings = 0;
  readonly hostileSent: Record<string, number> = {};
  private readonly lastTs: Float64Array;
  private readonly encoder: ReadingEncoder;
  /** The times of the message being made. */
  private readonly tsScratch = new Float64Array(LOAD_LIMITS.maxBatch);
  private readonly topics: string[];
  private conns: Conn[] = [];
  private hostileConn?: Conn;
  private cursor = 0;
  private hostileNo = 0;
  /**
   * Without reconnect: the first connection that closed before close() was called, and why. A run fails on it at
   * once; it used to go on with the connections left, find its publishes never answered, and fail 30 s after the
   * phase with no word of the cause (a runtime whose flows were still starting had refused a publish).
   */
  private lost: Error | undefined;
  private closing = false;

  constructor(readonly opts: LoadOptions) {
    this.lastSeq = new Uint32Array(opts.devices);
    this.lastTs = new Float64Array(opts.devices);
    this.encoder = new ReadingEncoder(metricNames(opts.metrics), 'p'.repeat(opts.padBytes));
    this.topics = Array.from({ length: opts.devices }, (_, i) => `${opts.prefix}/${loadDeviceId(i)}/telemetry`);
    for (const d of opts.track ?? []) this.publishedAt.set(d, new Map());
  }

  /** Device ids of the fleet. */
  deviceIds(): string[] {
    return Array.from({ length: this.opts.devices }, (_, i) => loadDeviceId(i));
  }

  async connect(withHostile = false): Promise<void> {
    this.closing = false;
    this.lost = undefined;
    await this.untilBrokerAnswers();
    const tag = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    if (this.opts.provisioningKey !== undefined) {
      const key = this.opts.provisioningKey;
      const ids = this.deviceIds();
      const out: Conn[] = new Array<Conn>(ids.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < ids.length) {
          const i = next++;
          out[i] = { client: await connectClient(this.opts.url, `tw-load-${tag}-${ids[i]}`, { username: ids[i], password: `provision:${key}` }, this.opts.reconnect), inFlight: 0 };
        }
      };
      await Promise.all(Array.from({ length: Math.min(20, ids.length) }, worker));
      this.conns = out;
    } else {
      this.conns = await Promise.all(
        Array.from({ length: Math.min(this.opts.connections, this.opts.devices) }, async (_, k) => ({ client: await connectClient(this.opts.url, `tw-load-${tag}-${k}`, undefined, this.opts.reconnect), inFlight: 0 })),
      );
    }
    if (withHostile) {
      if (this.opts.provisioningKey !== undefined) {
        throw new UsageError('hostile messages need an anonymous connection (a runtime with THINGWIRE_MQTT_ANONYMOUS=1): a device may publish under its own topics only');
      }
      this.hostileConn = { client: await connectClient(this.opts.url, `tw-load-${tag}-hostile`), inFlight: 0 };
    }
    if (!this.opts.reconnect) for (const c of [...this.conns, ...(this.hostileConn ? [this.hostileConn] : [])]) this.watch(c.client);
  }

  /** Notes the first connection that closes before close() (without reconnect: the run fails on it, see `lost`). */
  private watch(client: MqttClient): void {
    let why: string | undefined;
    client.on('error', (e: Error) => (why ??= e.message));
    client.once('close', () => {
      if (this.closing || this.lost !== undefined) return;
      this.lost = new Error(
        `load generator: lost the connection ${client.options.clientId ?? '?'} to ${redactUrl(this.opts.url)}${why !== undefined ? ` (${why})` : ''}; ` +
          'without --reconnect a lost connection ends the run (a runtime whose flows are still starting refuses publishes and ' +
          'closes the connection: pass --reconnect, as a device with an outbox would, or start the load once the runtime runs its flows)',
      );
    });
  }

  /**
   * With waitMs, tries a connection every WAIT_RETRY_MS until the broker accepts one (then closes it) or waitMs has
   * passed (then throws the last error). The fleet's connections are made after that, as without waiting.
   */
  private async untilBrokerAnswers(): Promise<void> {
    const waitMs = this.opts.waitMs ?? 0;
    if (waitMs <= 0) return;
    const deadline = Date.now() + waitMs;
    let told = false;
    for (;;) {
      try {
        const c = await connectClient(this.opts.url, `tw-load-probe-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, this.probeLogin());
        await new Promise<void>((resolve) => c.end(true, {}, () => resolve()));
        return;
      } catch (e) {
        if (Date.now() + WAIT_RETRY_MS > deadline) throw e;
        if (!told) {
          told = true;
          this.opts.onWait?.(`waiting up to ${Math.round(waitMs / 1000)} s for the broker: ${(e as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, WAIT_RETRY_MS));
      }
    }
  }

  /** The first device's login in the provisioning mode (the broker refuses anonymous clients then). */
  private probeLogin(): { username: string; password: string } | undefined {
    const key = this.opts.provisioningKey;
    return key === undefined ? undefined : { username: loadDeviceId(0), password: `provision:${key}` };
  }

  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.conns, ...(this.hostileConn ? [this.hostileConn] : [])];
    await Promise.all(
      all.map(
        (c) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => c.client.end(true, () => resolve()), 5000);
            c.client.end(false, () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
    this.conns = [];
    this.hostileConn = undefined;
  }

  private connOf(device: number): Conn {
    return this.conns.length === this.opts.devices ? this.conns[device] : this.conns[device % this.conns.length];
  }

  /** The next ts of a device: now, or 1 ms after its previous reading. */
  private nextTs(device: number, now: number): number {
    const t = Math.max(now, this.lastTs[device] + 1);
    this.lastTs[device] = t;
    return t;
  }

  /** Publishes one message of `batch` readings for the next device in turn; false when its connection is full. */
  private publishNext(batch: number, res: PhaseResult): boolean {
    const d = this.cursor;
    const conn = this.connOf(d);
    if (conn.inFlight >= this.opts.maxInFlight || !conn.client.connected) return false;
    this.cursor = (d + 1) % this.opts.devices;
    const now = Date.now();
    const first = this.lastSeq[d] + 1;
    const ts = this.tsScratch;
    for (let j = 0; j < batch; j++) ts[j] = this.nextTs(d, now);
    const body = this.encoder.encode(ts, first, batch, batch === 1);
    this.lastSeq[d] = first + batch - 1;
    const track = this.publishedAt.get(d);
    if (track) for (let j = 0; j < batch; j++) track.set(first + j, now);
    conn.inFlight++;
    conn.client.publish(this.topics[d], body, { qos: this.opts.qos }, (e) => {
      conn.inFlight--;
      if (e) {
        res.failed++;
        let list = this.failedSeqs.get(d);
        if (!list) this.failedSeqs.set(d, (list = []));
        for (let j = 0; j < batch; j++) list.push(first + j);
      } else {
        res.messages++;
        res.readings += batch;
        this.totalReadings += batch;
      }
    });
    return true;
  }

  private publishHostile(res: PhaseResult): boolean {
    const conn = this.hostileConn;
    if (!conn || conn.inFlight >= this.opts.maxInFlight || !conn.client.connected) return false;
    const i = this.hostileNo++;
    const kind = hostileKindAt(i);
    const m = kind.make(i, Date.now());
    conn.inFlight++;
    conn.client.publish(m.topic, m.payload, { qos: this.opts.qos }, (e) => {
      conn.inFlight--;
      if (e) res.hostileFailed++;
      else {
        res.hostile[kind.name] = (res.hostile[kind.name] ?? 0) + 1;
        this.hostileSent[kind.name] = (this.hostileSent[kind.name] ?? 0) + 1;
      }
    });
    return true;
  }

  /** Publishes for `durationMs` at `rate` readings/s; resolves when every publish of the phase has been answered. */
  async run(phase: PhaseOptions): Promise<PhaseResult> {
    if (this.conns.length === 0) throw new Error('load generator: connect() first');
    const batch = phase.batch;
    const res: PhaseResult = { askedRate: phase.rate, seconds: 0, messages: 0, readings: 0, achievedRate: 0, failed: 0, lostTokens: 0, hostile: {}, hostileFailed: 0 };
    const hostileTotal = phase.hostile ?? 0;
    if (hostileTotal > 0 && !this.hostileConn) throw new Error('load generator: connect(true) for hostile messages');
    const target = phase.readings;
    if (target !== undefined && !(Number.isSafeInteger(target) && target >= 0 && target % batch === 0)) {
      throw new Error(`load generator: readings must be a whole multiple of the batch (${batch}), not ${target}`);
    }
    const t0 = performance.now();
    let elapsed = 0;
    // Readings sent (res.readings counts those answered: under QoS 1, acknowledged).
    let sent = 0;
    const bucket = new TokenBucket(phase.rate, bucketCapacity(phase.rate, batch), t0, batch);
    let hostileDone = 0;
    let lastProgress = t0;
    await new Promise<void>((resolve, reject) => {
      const step = (): void => {
        if (this.lost !== undefined) return reject(this.lost);
        const now = performance.now();
        elapsed = now - t0;
        const over = target === undefined ? elapsed >= phase.durationMs : sent >= target;
        const at = over && target === undefined ? t0 + phase.durationMs : now;
        bucket.refill(at);
        // At most 1,000 messages a turn, so sockets and timers get theirs.
        let turn = 0;
        while (turn < 1000 && bucket.tokens >= batch && (target === undefined || sent < target) && this.publishNext(batch, res)) {
          bucket.take(batch);
          sent += batch;
          turn++;
        }
        const hostileDue = Math.min(hostileTotal, Math.floor((Math.min(elapsed, phase.durationMs) / phase.durationMs) * hostileTotal));
        while (hostileDone < hostileDue && this.publishHostile(res)) hostileDone++;
        if (phase.onProgress && now - lastProgress >= 100) {
          lastProgress = now;
          phase.onProgress({ ...res, seconds: elapsed / 1000, achievedRate: res.readings / Math.max(0.001, elapsed / 1000) });
        }
        if (over && (hostileDone >= hostileTotal || elapsed > phase.durationMs + 30_000)) {
          resolve();
          return;
        }
        // Out of budget: go on after the sockets' turn. Blocked (a connection's window full, or reconnecting) or out of
        // tokens: wait a timer tick. Blocked used to go on at once (setImmediate), which spun the publisher at full CPU
        // whenever the broker held its acknowledgements back: 61 % of a core instead of 32 % at ~11,500 msg/s, taken
        // from the runtime under test on the same two cores.
        if (turn >= 1000) setImmediate(step);
        else setTimeout(step, 1);
      };
      step();
    });
    res.lostTokens = Math.round(bucket.lost + bucket.tokens);
    // Wait for the answers (QoS 1 acknowledgements, QoS 0 writes).
    const deadline = Date.now() + 30_000;
    while (this.conns.some((c) => c.inFlight > 0) || (this.hostileConn?.inFlight ?? 0) > 0) {
      if (this.lost !== undefined) throw this.lost;
      if (Date.now() > deadline) throw new Error('load generator: publishes still unanswered 30 s after the phase ended');
      await new Promise((r) => setTimeout(r, 5));
    }
    // Until the last answer: a QoS 1 publish is the broker's once acknowledged, and a broker holding its
    // acknowledgements back (backpressure) has not taken the readings yet. The phase's nominal length (what this was
    // until 2026-12-05) overstated a burst: 1,900,000 readings "achieved at 190,000/s" in a 10 s phase were answered
    // over 20.6 s, with up to maxInFlight publishes a connection (2,500 x 4 of 100 readings) still unanswered at its end.
    res.seconds = Math.max(target === undefined ? phase.durationMs : 0, performance.now() - t0) / 1000;
    res.achievedRate = res.readings / res.seconds;
    return res;
  }
}

// ---------------------------------------------------------------------------------------------
// The checker

export interface DeviceCheck {
  device: string;
  expected: number;
  storedDistinct: number;
  missing: number;
  /** The first few missing seqs. */
  missingFirst: number[];
  /** The same seq stored at more than one ts. */
  duplicates: number;
  /** Stored seqs that were never published (above the last published, or not whole numbers >= 1). */
  unexpected: number;
}

export interface CheckReport {
  devices: number;
  expected: number;
  storedDistinct: number;
  storedRows: number;
  missing: number;
  duplicates: number;
  unexpected: number;
  /** Devices with anything missing, duplicated or unexpected (at most 50 listed). */
  problems: DeviceCheck[];
  /** Rows of devices that are not in the expected set (e.g. hostile-* readings that got through). */
  foreignRows: number;
  foreignDevices: string[];
}

/** Missing seqs listed per device. */
export const MISSING_LISTED = 5;

/**
 * Compares what the store holds with what was published. `expected`: device -> last published seq (seqs
 * 1..last; `failed` ones excluded, as they never reached the broker). `rows`: (device, seq, ts) as read.
 */
export function tally(expected: ReadonlyMap<string, number>, rows: Iterable<readonly [string, number, number]>, failed: ReadonlyMap<string, readonly number[]> = new Map()): CheckReport {
  const seen = new Map<string, Map<number, number>>(); // device -> seq -> ts of first row
  const dups = new Map<string, number>();
  const unexpected = new Map<string, number>();
  const foreign = new Map<string, number>();
  let storedRows = 0;
  for (const [device, seq, ts] of rows) {
    storedRows++;
    const last = expected.get(device);
    if (last === undefined) {
      foreign.set(device, (foreign.get(device) ?? 0) + 1);
      continue;
    }
    if (!Number.isInteger(seq) || seq < 1 || seq > last) {
      unexpected.set(device, (unexpected.get(device) ?? 0) + 1);
      continue;
    }
    let m = seen.get(device);
    if (!m) seen.set(device, (m = new Map()));
    const prev = m.get(seq);
    if (prev === undefined) m.set(seq, ts);
    else if (prev !== ts) dups.set(device, (dups.get(device) ?? 0) + 1);
  }
  const report: CheckReport = { devices: expected.size, expected: 0, storedDistinct: 0, storedRows, missing: 0, duplicates: 0, unexpected: 0, problems: [], foreignRows: 0, foreignDevices: [] };
  for (const [device, last] of expected) {
    const f = new Set(failed.get(device) ?? []);
    const m = seen.get(device) ?? new Map<number, number>();
    const c: DeviceCheck = { device, expected: last - f.size, storedDistinct: m.size, missing: 0, missingFirst: [], duplicates: dups.get(device) ?? 0, unexpected: unexpected.get(device) ?? 0 };
    for (let s = 1; s <= last; s++) {
      if (m.has(s) || f.has(s)) continue;
      c.missing++;
      if (c.missingFirst.length < MISSING_LISTED) c.missingFirst.push(s);
    }
    report.expected += c.expected;
    report.storedDistinct += c.storedDistinct;
    report.missing += c.missing;
    report.duplicates += c.duplicates;
    report.unexpected += c.unexpected;
    if ((c.missing > 0 || c.duplicates > 0 || c.unexpected > 0) && report.problems.length < 50) report.problems.push(c);
  }
  for (const [d, n] of foreign) {
    report.foreignRows += n;
    if (report.foreignDevices.length < 20) report.foreignDevices.push(d);
  }
  return report;
}

/** One line of a report. */
export function reportLine(r: CheckReport): string {
  const worst = r.problems
    .slice(0, 3)
    .map((p) => `${p.device}: missing ${p.missing} (first ${p.missingFirst.join(',')}), duplicates ${p.duplicates}, unexpected ${p.unexpected}`)
    .join('; ');
  return (
    `devices ${r.devices}, expected ${r.expected}, stored ${r.storedDistinct} distinct (${r.storedRows} rows), missing ${r.missing}, duplicates ${r.duplicates}, ` +
    `unexpected ${r.unexpected}${r.foreignRows > 0 ? `, ${r.foreignRows} rows of other devices (${r.foreignDevices.slice(0, 5).join(', ')})` : ''}${worst ? ` | ${worst}` : ''}`
  );
}

/** The per-series cap of the store's queries (query-plan.ts DEFAULT_LIMIT): a page that long may have more. */
export const SERIES_PAGE = 100_000;

/**
 * GET `u` and its body as text (status 200, or an Error with the status and the body's start). A connection the
 * server closed is tried again, twice: the runtime's HTTP server closes a keep-alive connection idle for 5 s, and a
 * checker parsing a 35 MB answer (16 million readings, 100 devices a request) kept the event loop busy past that,
 * so fetch reused a socket that was already closed ("fetch failed: other side closed", bench:e2e 2026-12-05).
 */
export async function getText(u: string, headers?: Record<string, string>, timeoutMs = 60_000): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(u, { headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (e) {
      // fetch rejects with a TypeError for a network failure (a timeout is a DOMException: not retried). By name, not
      // instanceof: the TypeError is of the realm fetch runs in (under jest, not the test's).
      if ((e as Error | undefined)?.name !== 'TypeError' || attempt >= 3) throw e;
      continue;
    }
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET ${u} answered ${res.status}: ${text.slice(0, 300)}`);
    return text;
  }
}

/**
 * Reads `field` (seq) of `devices` in [start, end] through GET /api/v1/series, in groups of devices and pages
 * of SERIES_PAGE points per series; yields (device, value, ts).
 */
export async function readSeqsViaApi(
  apiBase: string,
  devices: readonly string[],
  start: number,
  end: number,
  opts: { field?: string; group?: number; headers?: Record<string, string> } = {},
): Promise<Array<[string, number, number]>> {
  const field = opts.field ?? 'seq';
  const out: Array<[string, number, number]> = [];
  const group = opts.group ?? 50;
  let todo: Array<{ devices: string[]; from: number }> = [];
  for (let i = 0; i < devices.length; i += group) todo.push({ devices: devices.slice(i, i + group), from: start });
  while (todo.length > 0) {
    const next: typeof todo = [];
    for (const t of todo) {
      // maxPoints=0: every point (the API downsamples to 1,000 points a series by default, which hid readings from
      // the checker once a device had more than that in the range: a one-hour soak at 2.5 readings/s per device).
      const u = `${apiBase}/api/v1/series?devices=${encodeURIComponent(t.devices.join(','))}&fields=${encodeURIComponent(field)}&start=${t.from}&end=${end}&maxPoints=0`;
      const body = JSON.parse(await getText(u, opts.headers)) as { series: Array<{ device: string; field: string; points: Array<[number, number]> }> };
      for (const s of body.series) {
        if (s.field !== field) continue;
        for (const [ts, v] of s.points) out.push([s.device, v, ts]);
        if (s.points.length >= SERIES_PAGE) next.push({ devices: [s.device], from: s.points[s.points.length - 1][0] + 1 });
      }
    }
    todo = next;
  }
  return out;
}

/**
 * Per device, the sum of the window node's rollup counts of `field` (seq) in [start, end], through GET /api/v1/series
 * (`level` 1m by default, stat=count): how many readings the rollups took, to compare with what was published.
 */
export async function readRollupCountsViaApi(
  apiBase: string,
  devices: readonly string[],
  start: number,
  end: number,
  opts: { field?: string; level?: string; headers?: Record<string, string> } = {},
): Promise<Map<string, number>> {
  const field = opts.field ?? 'seq';
  const sums = new Map<string, number>();
  for (let i = 0; i < devices.length; i += 50) {
    const u = `${apiBase}/api/v1/series?devices=${encodeURIComponent(devices.slice(i, i + 50).join(','))}&fields=${encodeURIComponent(field)}&level=${encodeURIComponent(opts.level ?? '1m')}&stat=count&start=${start}&end=${end}&maxPoints=0`;
    const body = JSON.parse(await getText(u, opts.headers)) as { series: Array<{ device: string; points: Array<[number, number]> }> };
    for (const sr of body.series) for (const [, v] of sr.points) sums.set(sr.device, (sums.get(sr.device) ?? 0) + v);
  }
  return sums;
}

/**
 * Publishes one reading per device at event time `ts` (seq 0, QoS 1): a time later than the load's by more than
 * the window node's lateness plus a window moves each series' watermark past the load's windows, which then close
 * and are stored (readRollupCountsViaApi reads them). Read the load's seqs back before, or end before `ts`.
 */
export async function closeWindows(url: string, devices: readonly string[], ts: number, prefix = 'devices'): Promise<void> {
  const c = connect(url, { clientId: `tw-closer-${process.pid}-${Date.now()}`, reconnectPeriod: 0 });
  try {
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
    });
    for (const d of devices) await c.publishAsync(`${prefix}/${d}/telemetry`, JSON.stringify({ ts, seq: 0 }), { qos: 1 });
  } finally {
    await c.endAsync();
  }
}

/** Devices whose rollup count differs from what they published (expected: device -> readings that reached the broker). */
export function rollupMismatches(expected: ReadonlyMap<string, number>, counts: ReadonlyMap<string, number>): Array<[string, number, number]> {
  const out: Array<[string, number, number]> = [];
  for (const [d, n] of expected) {
    const c = counts.get(d) ?? 0;
    if (c !== n) out.push([d, n, c]);
  }
  return out;
}

export interface RollupCheck {
  devices: number;
  /** Readings expected in the rollups (sum of `expected`). */
  published: number;
  /** Readings the stored 1m rollups counted. */
  counted: number;
  /** [device, expected, counted] for each device off. */
  mismatched: Array<[string, number, number]>;
}

/**
 * The window node's 1m rollups against what was published (expected: device -> readings): closes the load's windows
 * (closeWindows, a reading per device two minutes ahead), waits until every device has rollups counting at least its
 * readings (up to `timeoutMs`), waits `settleMs` more (a late rollup would still change a count) and reads them once
 * more. `start`: the load's first publish (rollups from a minute before it are read).
 */
export async function checkRollupCounts(
  mqttUrl: string,
  apiBase: string,
  expected: ReadonlyMap<string, number>,
  start: number,
  opts: { timeoutMs?: number; everyMs?: number; settleMs?: number } = {},
): Promise<RollupCheck> {
  const devices = [...expected.keys()];
  const published = [...expected.values()].reduce((a, b) => a + b, 0);
  const ahead = Date.now() + 120_000;
  const from = start - 120_000;
  await closeWindows(mqttUrl, devices, ahead);
  const sum = (m: ReadonlyMap<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const counts = await readRollupCountsViaApi(apiBase, devices, from, ahead - 1);
    if ((counts.size === devices.length && sum(counts) >= published) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 1000));
  }
  await new Promise((r) => setTimeout(r, opts.settleMs ?? 2000));
  const counts = await readRollupCountsViaApi(apiBase, devices, from, ahead - 1);
  return { devices: devices.length, published, counted: sum(counts), mismatched: rollupMismatches(expected, counts) };
}

/** Reads `field` (seq) of every device in [start, end) straight from an embedded store file (the runtime stopped). */
export async function readSeqsFromFile(file: string, start: number, end: number, field = 'seq'): Promise<Array<[string, number, number]>> {
  if (!fs.existsSync(file)) throw new Error(`no store file at ${file}`);
  const store = await EmbeddedBackend.open({ path: file });
  const out: Array<[string, number, number]> = [];
  try {
    await store.exportRange({ measurement: 'telemetry', start, end }, (rows) => {
      for (const r of rows) if (r.field === field) out.push([r.device, Number(r.value), r.ts]);
    });
  } finally {
    await store.close();
  }
  return out;
}

/** The expected map of a generator: device -> last seq published. */
export function expectedOf(gen: PublishedSeqs): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < gen.opts.devices; i++) m.set(loadDeviceId(i), gen.lastSeq[i]);
  return m;
}

/** The failed seqs of a generator by device id. */
export function failedOf(gen: PublishedSeqs): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const [i, list] of gen.failedSeqs) m.set(loadDeviceId(i), list);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Prometheus counters

/** thingwire_rejects_total (and any other family) parsed from GET /api/v1/metrics: "labels" -> value. */
export async function fetchMetric(apiBase: string, name: string, headers?: Record<string, string>): Promise<Map<string, number>> {
  const res = await fetch(`${apiBase}/api/v1/metrics`, { headers, signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /api/v1/metrics answered ${res.status}: ${text.slice(0, 200)}`);
  return parseMetric(text, name);
}

/** Samples of one metric family in Prometheus text: the label part (`{a="b"}` or '') -> value. */
export function parseMetric(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const c = line[name.length];
    if (c !== '{' && c !== ' ') continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(name.length, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** thingwire_rejects_total as `${node_type} ${code}` -> count. */
export function rejectsByCode(samples: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [labels, v] of samples) {
    const t = /node_type="([^"]*)"/.exec(labels)?.[1];
    const c = /code="([^"]*)"/.exec(labels)?.[1];
    if (t === undefined || c === undefined) continue;
    out.set(`${t} ${c}`, v);
  }
  return out;
}

/** b - a per key (keys of either). */
export function diffCounts(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const d = (b.get(k) ?? 0) - (a.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The command line

export interface CliOptions {
  load: LoadOptions;
  rate: number;
  durationMs: number;
  batch: number;
  hostile: number;
  /** --check URL: the runtime's HTTP base; the checker runs after the phase. */
  check?: string;
  /** --check-file PATH: an embedded store file to read instead (the runtime stopped). */
  checkFile?: string;
  /** How long the checker waits for the store to catch up, ms. */
  settleMs: number;
}

export const LOAD_USAGE = `Thingwire load generator: numbered readings over MQTT at a paced rate, optional hostile messages, and a check of the store.

Usage: node dist/runtime/loadgen.js [options]

  --devices N        load devices load-00001.. (default ${LOAD_DEFAULTS.devices}, at most ${LOAD_LIMITS.maxDevices})
  --rate N           readings per second over all devices (default ${LOAD_DEFAULTS.rate}); or
  --per-device N     readings per second per device
  --duration S       seconds to publish (default ${LOAD_DEFAULTS.durationS})
  --batch B          readings per message: 1 = a JSON object, more = a JSON array (default 1, at most ${LOAD_LIMITS.maxBatch})
  --qos 0|1          (default 0)
  --connections K    MQTT connections (anonymous mode; default ${LOAD_DEFAULTS.connections})
  --metrics N        numeric metrics besides seq (default ${LOAD_DEFAULTS.metrics}: temperature, humidity, vibration, then x3..)
  --pad BYTES        a constant string field "pad" of that length in every reading (default 0)
  --max-in-flight N  unanswered publishes per connection before the generator waits (default ${LOAD_DEFAULTS.maxInFlight})
  --hostile N        malformed/hostile messages spread over the run (anonymous mode only); or
  --hostile-ratio R  hostile messages per valid message
  --url URL          broker (default $MQTT_URL, else mqtt://127.0.0.1:$MQTT_PORT)
  --check URL        after publishing, read seq back through URL/api/v1/series and compare; with --hostile also
                     compare URL/api/v1/metrics thingwire_rejects_total with what was sent (exit 1 on a mismatch)
  --check-file PATH  read the embedded store file instead (after the runtime stopped)
  --settle S         seconds the check waits for the store to catch up (default 15)
  --wait S           keep trying to connect for up to S seconds while the broker cannot be reached (a runtime
                     that is still starting; default 0: fail at once)
  --reconnect        after a lost connection (the broker restarted, or it refused publishes while the runtime's
                     flows started) connect again and send the unacknowledged QoS 1 publishes again, as a device
                     with an outbox does (default: a lost connection fails the run)

With THINGWIRE_PROVISIONING_KEY set (or DATA_DIR/provisioning-key present), each device connects with user = its id and
password provision:<key>, as npm run simulate does; without, K anonymous connections (THINGWIRE_MQTT_ANONYMOUS=1).
Every reading: {"ts": <publish ms, increasing per device>, "seq": <1, 2, ... per device>, <metrics>}.
Exit codes: 0 done (and checked), 1 failure or a check found loss, 2 bad arguments.
`;

const CLI_FLAGS = [
  '--devices',
  '--rate',
  '--per-device',
  '--duration',
  '--batch',
  '--qos',
  '--connections',
  '--metrics',
  '--pad',
  '--max-in-flight',
  '--hostile',
  '--hostile-ratio',
  '--url',
  '--check',
  '--check-file',
  '--settle',
  '--reconnect',
  '--wait',
] as const;

/** Flags without a value. */
const BOOLEAN_FLAGS: readonly string[] = ['--reconnect'];

function intFlag(flag: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw new UsageError(`${flag} must be a whole number ${min}..${max}, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`${flag} must be a whole number ${min}..${max}, got ${raw}`);
  return n;
}

function numFlag(flag: string, raw: string, min: number, max: number): number {
  if (!/^\d+(\.\d+)?$/.test(raw)) throw new UsageError(`${flag} must be a number ${min}..${max}, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`${flag} must be a number ${min}..${max}, got ${raw}`);
  return n;
}

/** Parses the command line (without node and the script); throws UsageError naming the flag. */
export function parseLoadArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): { help: true } | { help: false; options: CliOptions } {
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return { help: true };
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    if (!(CLI_FLAGS as readonly string[]).includes(name)) throw new UsageError(`unknown argument ${JSON.stringify(name)} (see --help)`);
    if (given.has(name)) throw new UsageError(`${name} is given more than once`);
    if (BOOLEAN_FLAGS.includes(name)) {
      if (eq >= 0) throw new UsageError(`${name} takes no value`);
      given.set(name, '');
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value.trim() === '') throw new UsageError(`${name} needs a value`);
    given.set(name, value.trim());
  }
  const get = (f: string): string | undefined => given.get(f);
  const devices = get('--devices') !== undefined ? intFlag('--devices', get('--devices')!, 1, LOAD_LIMITS.maxDevices) : LOAD_DEFAULTS.devices;
  if (get('--rate') !== undefined && get('--per-device') !== undefined) throw new UsageError('give --rate or --per-device, not both');
  let rate: number = LOAD_DEFAULTS.rate;
  if (get('--rate') !== undefined) rate = numFlag('--rate', get('--rate')!, 0.001, LOAD_LIMITS.maxRate);
  if (get('--per-device') !== undefined) rate = numFlag('--per-device', get('--per-device')!, 0.001, LOAD_LIMITS.maxRate) * devices;
  if (rate > LOAD_LIMITS.maxRate) throw new UsageError(`the total rate ${rate}/s is over ${LOAD_LIMITS.maxRate}/s`);
  const durationS = get('--duration') !== undefined ? numFlag('--duration', get('--duration')!, 0.1, LOAD_LIMITS.maxDurationS) : LOAD_DEFAULTS.durationS;
  const batch = get('--batch') !== undefined ? intFlag('--batch', get('--batch')!, 1, LOAD_LIMITS.maxBatch) : LOAD_DEFAULTS.batch;
  const q = get('--qos');
  if (q !== undefined && q !== '0' && q !== '1') throw new UsageError(`--qos must be 0 or 1, got ${JSON.stringify(q)}`);
  const qos: 0 | 1 = q === '1' ? 1 : 0;
  const connections = get('--connections') !== undefined ? intFlag('--connections', get('--connections')!, 1, LOAD_LIMITS.maxConnections) : LOAD_DEFAULTS.connections;
  const metrics = get('--metrics') !== undefined ? intFlag('--metrics', get('--metrics')!, 0, LOAD_LIMITS.maxMetrics) : LOAD_DEFAULTS.metrics;
  const padBytes = get('--pad') !== undefined ? intFlag('--pad', get('--pad')!, 0, LOAD_LIMITS.maxPadBytes) : LOAD_DEFAULTS.padBytes;
  const maxInFlight = get('--max-in-flight') !== undefined ? intFlag('--max-in-flight', get('--max-in-flight')!, 1, 1_000_000) : LOAD_DEFAULTS.maxInFlight;
  if (get('--hostile') !== undefined && get('--hostile-ratio') !== undefined) throw new UsageError('give --hostile or --hostile-ratio, not both');
  let hostile = 0;
  if (get('--hostile') !== undefined) hostile = intFlag('--hostile', get('--hostile')!, 0, LOAD_LIMITS.maxHostile);
  if (get('--hostile-ratio') !== undefined) hostile = Math.round(numFlag('--hostile-ratio', get('--hostile-ratio')!, 0, 1000) * Math.ceil((rate * durationS) / batch));
  const url = get('--url') !== undefined ? parseBrokerUrl(get('--url')!, '--url') : defaultBrokerUrl(env);
  let check = get('--check');
  if (check !== undefined) {
    if (!/^https?:\/\/[^/\s]+\/?$/.test(check)) throw new UsageError(`--check must be the runtime's base URL like http://127.0.0.1:1880, got ${JSON.stringify(check)}`);
    check = check.replace(/\/$/, '');
  }
  const checkFile = get('--check-file');
  if (check !== undefined && checkFile !== undefined) throw new UsageError('give --check or --check-file, not both');
  const waitMs = get('--wait') !== undefined ? numFlag('--wait', get('--wait')!, 0, 3600) * 1000 : 0;
  const settleMs = get('--settle') !== undefined ? numFlag('--settle', get('--settle')!, 0, 3600) * 1000 : 15_000;
  const pk = env.THINGWIRE_PROVISIONING_KEY;
  const provisioningKey = pk !== undefined && pk !== '' ? pk : undefined;
  if (provisioningKey !== undefined && hostile > 0) {
    throw new UsageError('--hostile needs the anonymous mode (THINGWIRE_MQTT_ANONYMOUS=1 on the runtime, no THINGWIRE_PROVISIONING_KEY here): a device may publish under its own topics only');
  }
  return {
    help: false,
    options: {
      load: { url, devices, prefix: LOAD_DEFAULTS.prefix, qos, connections, metrics, padBytes, maxInFlight, reconnect: given.has('--reconnect'), waitMs, ...(provisioningKey ? { provisioningKey } : {}) },
      rate,
      durationMs: Math.round(durationS * 1000),
      batch,
      hostile,
      ...(check !== undefined ? { check } : {}),
      ...(checkFile !== undefined ? { checkFile } : {}),
      settleMs,
    },
  };
}

/** Runs the CLI: publish, then (optionally) check; resolves with the exit code. */
export async function runCli(o: CliOptions, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  const gen = new LoadGenerator({ ...o.load, onWait: (line) => log(`[loadgen] ${line}`) });
  await gen.connect(o.hostile > 0);
  const start = Date.now();
  log(
    `[loadgen] ${o.load.devices} devices over ${o.load.provisioningKey ? 'one connection each' : `${Math.min(o.load.connections, o.load.devices)} connection(s)`} to ${redactUrl(o.load.url)}: ` +
      `${o.rate} readings/s asked, batch ${o.batch}, qos ${o.load.qos}, ${o.durationMs / 1000} s${o.hostile > 0 ? `, ${o.hostile} hostile messages` : ''}`,
  );
  let before: Map<string, number> | undefined;
  if (o.check !== undefined && o.hostile > 0) before = rejectsByCode(await fetchMetric(o.check, 'thingwire_rejects_total'));
  let r: PhaseResult;
  try {
    r = await gen.run({ rate: o.rate, durationMs: o.durationMs, batch: o.batch, hostile: o.hostile });
  } finally {
    await gen.close();
  }
  log(`[loadgen] published ${r.readings} readings in ${r.messages} messages: ${r.achievedRate.toFixed(0)}/s achieved of ${o.rate}/s asked; ${r.failed} failed, ${r.lostTokens} not sent (publisher held up)`);
  if (o.hostile > 0) log(`[loadgen] hostile sent: ${Object.entries(r.hostile).map(([k, n]) => `${k} ${n}`).join(', ')}${r.hostileFailed ? `; ${r.hostileFailed} failed` : ''}`);
  if (o.check === undefined && o.checkFile === undefined) return r.failed > 0 ? 1 : 0;

  const expected = expectedOf(gen);
  const failed = failedOf(gen);
  const end = Date.now() + 60_000;
  let report: CheckReport;
  if (o.check !== undefined) {
    const deadline = Date.now() + o.settleMs;
    for (;;) {
      report = tally(expected, await readSeqsViaApi(o.check, [...expected.keys()], start - 60_000, end), failed);
      if (report.missing === 0 || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 1000));
    }
  } else {
    report = tally(expected, await readSeqsFromFile(o.checkFile!, start - 60_000, end), failed);
  }
  log(`[loadgen] store: ${reportLine(report)}`);
  let code = report.missing > 0 || report.duplicates > 0 || report.unexpected > 0 ? 1 : 0;
  if (before !== undefined && o.check !== undefined) {
    const want = expectedRejects(gen.hostileSent);
    let got = new Map<string, number>();
    const deadline = Date.now() + o.settleMs;
    for (;;) {
      got = diffCounts(before, rejectsByCode(await fetchMetric(o.check, 'thingwire_rejects_total')));
      if ([...want].every(([k, n]) => got.get(k) === n) || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    for (const k of new Set([...want.keys(), ...got.keys()])) {
      const ok = want.get(k) === got.get(k);
      if (!ok) code = 1;
      log(`[loadgen] rejects ${k}: sent ${want.get(k) ?? 0}, counted ${got.get(k) ?? 0}${ok ? '' : '  MISMATCH'}`);
    }
  }
  return code;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseLoadArgs(process.argv.slice(2), withDataDirKey(process.env));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`[loadgen] ${e.message}\nRun with --help for usage.\n`);
      process.exit(2);
    }
    throw e;
  }
  if (parsed.help) {
    process.stdout.write(LOAD_USAGE);
    return;
  }
  process.exit(await runCli(parsed.options));
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`[loadgen] ${(e as Error)?.message ?? String(e)}\n`);
    process.exit(1);
  });
}
