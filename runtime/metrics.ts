/**
 * Runtime metrics for operators (issue 8, item 3): GET /api/v1/metrics answers the Prometheus text
 * format (prom-client), so a Prometheus server (or anything that scrapes it) can watch a Thingwire
 * runtime without reaching into Node-RED.
 *
 * What is counted, and where it comes from:
 * - messages per node type: two Node-RED runtime hooks (RED.hooks, labelled `thingwire-metrics`).
 *   `onSend` sees every message a node sends along a wire, one send event per wire: a message is
 *   counted once per output (on the event of the output's first wire), so fan-out does not inflate
 *   it; a message sent on an output with no wire creates no event and is not seen. `onReceive` sees
 *   every message a node is about to be handed (one per delivery). The hooks only add to plain Maps
 *   keyed by node type (FlowCounters); prom-client reads them when scraped, so the per-message cost
 *   is a Map update, never label hashing. A hook must never throw (Node-RED would drop the message):
 *   both are wrapped.
 * - rejects by reason: a message sent by a thingwire-* node whose msg.error is that node's own reject
 *   (string `code`, `source` = the node's type, as nodes/lib/red.ts rejectError makes it) counts
 *   msg.rejects.length (each under its own code) when msg.rejects is a non-empty array, else 1. A
 *   message that carries an upstream node's reject through another node is not counted again.
 * - stores: each running store's writer figures (nodes/lib/store/registry.ts listStores), read at
 *   scrape time: sizes as gauges, written/rejected/dropped as counters (they restart from 0 when the
 *   store is redeployed, which Prometheus' rate() treats as a counter reset), and how long its writes
 *   took as a histogram (thingwire_store_write_seconds: the store's stalls show there).
 * - at-least-once MQTT ingest: each running thingwire-mqtt-in node's delivery window (nodes/lib/ack.ts),
 *   read at scrape time: messages in flight, and messages received / acknowledged / refused /
 *   left unacknowledged / released by the timeout since the node started (labelled by node id).
 * - devices: registered and enabled devices and streams, from the runtime's registry handle.
 *   Online/offline is not here: the liveness tracker lives inside each thingwire-device node.
 * - the embedded MQTT broker: connected clients, its publish log, its in-process sessions and their messages
 *   (runtime/broker.ts exposes no message count).
 * - the process: prom-client's default metrics with the `thingwire_` prefix (CPU, memory, heap, GC,
 *   handles, event-loop lag).
 *
 * Label cardinality is bounded: labels are node types, reject codes, store config node ids and a
 * store state, never a device id; past MAX_TYPES node types or MAX_REJECT_SERIES (type, code) pairs,
 * further ones are counted under `other`, and a code that is not a plain identifier is `other` too.
 *
 * Access: with THINGWIRE_API_KEY or THINGWIRE_API_READ_KEY set, a request needs one of them
 * (Authorization: Bearer <key> or X-API-Key, compared in constant time), as the HTTP API does;
 * without keys the endpoint is open (the runtime binds to loopback by default).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import { ackWindowStats } from '../nodes/lib/ack';
import { secretsEqual } from '../nodes/lib/registry/tokens';
import { listStores, type RegisteredStore } from '../nodes/lib/store/registry';
import type { WriteDurations } from '../nodes/lib/store/writer';
import type { PublishLogStats } from './publish-log';
import type { InProcessStats } from './in-process';

export const METRIC_PREFIX = 'thingwire_';
/** The label of the runtime hooks: `onSend.thingwire-metrics`, `onReceive.thingwire-metrics`. */
export const HOOK_LABEL = 'thingwire-metrics';
/** Distinct node types counted by name; more are counted as `other`. */
export const MAX_TYPES = 500;
/** Distinct (node type, reject code) pairs counted by name; more are counted under code `other`. */
export const MAX_REJECT_SERIES = 500;
/** The label value that takes what the bounds above leave out. */
export const OTHER = 'other';

const CODE_RE = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;
/** Separates node type and code in FlowCounters.rejects keys (neither can contain it). */
const SEP = '\u0000';

/** The parts of Node-RED's SendEvent (onSend hook) that are read here. */
export interface SendEventLike {
  msg: unknown;
  source: { id: string; port: number; node?: { type: string; wires?: string[][] } };
  destination: { id: string };
}

/** The parts of Node-RED's ReceiveEvent (onReceive hook) that are read here. */
export interface ReceiveEventLike {
  msg: unknown;
  destination: { id: string; node?: { type: string } };
}

/** Node-RED's RED.hooks. */
export interface HooksApi {
  add(hookId: string, callback: (payload: never) => void): void;
  remove(hookId: string): void;
}

/**
 * Message and reject counts per node type, fed by the runtime hooks. No Node-RED, no prom-client:
 * the hook handlers are plain functions of the events Node-RED passes them.
 */
export class FlowCounters {
  /** Messages sent, by the sending node's type. */
  readonly sent = new Map<string, number>();
  /** Messages received, by the receiving node's type. */
  readonly received = new Map<string, number>();
  /** Rejects, by `${node type}\0${code}` (see rejectSeries()). */
  readonly rejects = new Map<string, number>();

  /** The onSend hook: an array of send events, one per message and wire. Never throws. */
  readonly onSend = (events: readonly SendEventLike[]): void => {
    try {
      for (let i = 0; i < events.length; i++) {
        const ev = events[i];
        const node = ev.source.node;
        if (node === undefined) continue;
        // One send event per wire of the output: count the message on its first wire's event only.
        const wires = node.wires?.[ev.source.port];
        if (wires !== undefined && wires.length > 1 && wires[0] !== ev.destination.id) continue;
        const type = node.type;
        bump(this.sent, type, messageCount(ev.msg), MAX_TYPES);
        if (type.startsWith('thingwire-')) this.countRejects(type, ev.msg);
      }
    } catch {
      // A metrics hook must never stop a message.
    }
  };

  /** The onReceive hook: one event per message a node is about to be given. Never throws. */
  readonly onReceive = (ev: ReceiveEventLike): void => {
    try {
      const node = ev.destination.node;
      if (node !== undefined) bump(this.received, node.type, messageCount(ev.msg), MAX_TYPES);
    } catch {
      // A metrics hook must never stop a message.
    }
  };

  /** Counts the rejects `msg` carries when it is the reject of a node of `type` (see the file header). */
  countRejects(type: string, msg: unknown): void {
    const err = (msg as { error?: unknown } | null)?.error as { code?: unknown; source?: unknown } | null | undefined;
    if (err === null || typeof err !== 'object' || typeof err.code !== 'string' || err.source !== type) return;
    const list = (msg as { rejects?: unknown }).rejects;
    if (Array.isArray(list) && list.length > 0) {
      for (const r of list) {
        const code = (r as { code?: unknown } | null)?.code;
        this.addReject(type, typeof code === 'string' ? code : err.code, 1);
      }
    } else {
      this.addReject(type, err.code, 1);
    }
  }

  private addReject(type: string, code: string, n: number): void {
    const c = CODE_RE.test(code) ? code : OTHER;
    const key = type + SEP + c;
    if (this.rejects.has(key) || this.rejects.size < MAX_REJECT_SERIES) this.rejects.set(key, (this.rejects.get(key) ?? 0) + n);
    else {
      const other = type + SEP + OTHER;
      this.rejects.set(other, (this.rejects.get(other) ?? 0) + n);
    }
  }

  /** The rejects as { node_type, code, count } rows. */
  rejectSeries(): Array<{ node_type: string; code: string; count: number }> {
    const rows: Array<{ node_type: string; code: string; count: number }> = [];
    for (const [key, count] of this.rejects) {
      const at = key.indexOf(SEP);
      rows.push({ node_type: key.slice(0, at), code: key.slice(at + 1), count });
    }
    return rows;
  }
}

/**
 * How many messages `msg` counts as: a group from thingwire-mqtt-in (../nodes/lib/group.ts) as the MQTT messages it
 * carries, so the counts mean the same with the input's "Group" on or off; anything else as one.
 */
function messageCount(msg: unknown): number {
  const m = msg as { mqttGroup?: unknown; payload?: unknown } | null;
  return m !== null && typeof m === 'object' && m.mqttGroup === true && Array.isArray(m.payload) ? m.payload.length : 1;
}

/** Adds n to map[key], or to map[OTHER] when key is new and the map holds `max` keys already (two Map lookups, not three: it runs per message). */
function bump(map: Map<string, number>, key: string, n: number, max: number): void {
  if (typeof key === 'string') {
    const v = map.get(key);
    if (v !== undefined) {
      map.set(key, v + n);
      return;
    }
    if (map.size < max) {
      map.set(key, n);
      return;
    }
  }
  map.set(OTHER, (map.get(OTHER) ?? 0) + n);
}

/** What RuntimeMetrics reads the device figures from (a RegistryHandle). */
export interface DeviceCounts {
  readonly closed?: boolean;
  readonly size: { devices: number; streams: number };
  listDevices(query: { enabled: boolean; limit: number }): { total: number };
}

export interface RuntimeMetricsOptions {
  /** The runtime's device registry handle; without it no device metrics. */
  registry?: DeviceCounts;
  /** The embedded broker; without it (an external broker) no broker metrics. */
  broker?: { clients(): number; publishLog?(): PublishLogStats | undefined; inProcess?(): InProcessStats | undefined };
  /** The running stores (default: listStores(), the stores of this process). */
  stores?: () => RegisteredStore[];
  /** prom-client's default process metrics (default true). */
  processMetrics?: boolean;
}

/** A store's write durations as its stats give them (BatchWriter.writeDurations), or undefined when they are not that. */
function writeDurationsOf(v: unknown): WriteDurations | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const d = v as { le?: unknown; cumulative?: unknown; sum?: unknown; count?: unknown };
  if (!Array.isArray(d.le) || !Array.isArray(d.cumulative) || d.le.length !== d.cumulative.length) return undefined;
  if (typeof d.sum !== 'number' || typeof d.count !== 'number') return undefined;
  return { le: d.le as number[], cumulative: d.cumulative as number[], sum: d.sum, count: d.count };
}

type StoreNumber = 'queuedLines' | 'memoryBatches' | 'spooledBatches' | 'spooledBytes' | 'written' | 'rejected' | 'dropped';
const STORE_STATES = ['ok', 'retrying', 'spooling'] as const;

/**
 * A labelled gauge's or counter's values from a source read at each scrape: reset, then `put` once per entry of
 * `values` with `{ [label]: key }` (nothing when the source has no figures).
 */
function setByLabel(metric: { reset(): void }, label: string, values: Record<string, number> | undefined, put: (labels: Record<string, string>, n: number) => void): void {
  metric.reset();
  if (values === undefined) return;
  for (const k in values) put({ [label]: k }, values[k]);
}

/** The metrics registry of one runtime and the hooks that feed it. */
export class RuntimeMetrics {
  readonly registry = new Registry();
  readonly counters = new FlowCounters();
  private hooks: HooksApi | undefined;

  constructor(opts: RuntimeMetricsOptions = {}) {
    const registers = [this.registry];
    const counters = this.counters;
    const p = METRIC_PREFIX;

    // Counters whose value is kept elsewhere: reset and set to that value at each scrape.
    const mirror = (name: string, help: string, label: string, source: Map<string, number>): void => {
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          for (const [k, v] of source) this.inc({ [label]: k }, v);
        },
      });
    };
    mirror(`${p}node_messages_sent_total`, 'Messages sent by Node-RED nodes along wires, by node type (once per output, whatever its number of wires; a group from thingwire-mqtt-in counts as its messages).', 'type', counters.sent);
    mirror(`${p}node_messages_received_total`, 'Messages delivered to Node-RED nodes, by node type (a group from thingwire-mqtt-in counts as its messages).', 'type', counters.received);
    new Counter({
      name: `${p}rejects_total`,
      help: 'Rejected readings and requests sent to the reject output of Thingwire nodes, by node type and reject code (one per element of msg.rejects).',
      labelNames: ['node_type', 'code'],
      registers,
      collect() {
        this.reset();
        for (const r of counters.rejectSeries()) this.inc({ node_type: r.node_type, code: r.code }, r.count);
      },
    });

    this.storeMetrics(opts.stores ?? listStores);
    this.ingestMetrics();
    if (opts.registry) this.deviceMetrics(opts.registry);
    const broker = opts.broker;
    if (broker) {
      new Gauge({
        name: `${p}mqtt_clients_connected`,
        help: 'Clients connected to the embedded MQTT broker over the network (devices, external subscribers, flows whose input is not in process).',
        registers,
        collect() {
          this.set(broker.clients());
        },
      });
      if (broker.inProcess?.() !== undefined) {
        const stats = (): InProcessStats | undefined => broker.inProcess?.();
        new Gauge({
          name: `${p}mqtt_in_process_sessions`,
          help: "The embedded broker's in-process sessions (thingwire-mqtt-in nodes attached without a network connection): attached, or detached (no node: flows stopped or not started yet; they keep queueing, bounded).",
          labelNames: ['state'],
          registers,
          collect() {
            const st = stats();
            setByLabel(this, 'state', st && { attached: st.attached, detached: st.detached }, (l, n) => this.set(l, n));
          },
        });
        new Gauge({
          name: `${p}mqtt_in_process_messages`,
          help: 'Messages in the in-process sessions: queued (not yet handed to a node: past 10,000 with a node attached, 200,000 without, devices wait for their PUBACK) and unacknowledged (handed over, not yet stored).',
          labelNames: ['state'],
          registers,
          collect() {
            const st = stats();
            setByLabel(this, 'state', st && { queued: st.queued, unacknowledged: st.unacknowledged }, (l, n) => this.set(l, n));
          },
        });
      }
      if (broker.publishLog?.() !== undefined) {
        const stats = (): PublishLogStats | undefined => broker.publishLog?.();
        new Counter({
          name: `${p}mqtt_publish_log_messages_total`,
          help: "The embedded broker's publish log: QoS 1/2 messages appended (before their PUBACK), released (every persistent QoS 1 delivery acknowledged), dropped (deleted past the size bound before release).",
          labelNames: ['outcome'],
          registers,
          collect() {
            const st = stats();
            setByLabel(this, 'outcome', st && { appended: st.appended, released: st.released, dropped: st.dropped }, (l, n) => this.inc(l, n));
          },
        });
        new Gauge({
          name: `${p}mqtt_publish_log_bytes`,
          help: "Bytes of the embedded broker's publish log on disk (its segments; about a second of messages while the flows keep up).",
          registers,
          collect() {
            this.set(stats()?.bytes ?? 0);
          },
        });
      }
    }
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: p });
  }

  private storeMetrics(stores: () => RegisteredStore[]): void {
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    const num = (stats: Record<string, unknown>, key: StoreNumber): number | undefined => {
      const v = stats[key];
      return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
    };
    const gauge = (name: string, help: string, key: StoreNumber): void => {
      new Gauge({
        name,
        help,
        labelNames: ['store'],
        registers,
        collect() {
          this.reset();
          for (const s of stores()) {
            const v = num(s.stats(), key);
            if (v !== undefined) this.set({ store: s.id }, v);
          }
        },
      });
    };
    const counter = (name: string, help: string, key: StoreNumber): void => {
      new Counter({
        name,
        help,
        labelNames: ['store'],
        registers,
        collect() {
          this.reset();
          for (const s of stores()) {
            const v = num(s.stats(), key);
            if (v !== undefined && v >= 0) this.inc({ store: s.id }, v);
          }
        },
      });
    };
    new Gauge({
      name: `${p}store_state`,
      help: 'State of each store (thingwire-store config node id) writer: 1 for its current state (ok, retrying, spooling), 0 for the others.',
      labelNames: ['store', 'state'],
      registers,
      collect() {
        this.reset();
        for (const s of stores()) {
          const state = s.stats().state;
          for (const st of STORE_STATES) this.set({ store: s.id, state: st }, state === st ? 1 : 0);
        }
      },
    });
    gauge(`${p}store_queued_lines`, 'Lines waiting to be cut into a batch, per store.', 'queuedLines');
    gauge(`${p}store_memory_batches`, 'Batches waiting in memory to be written, per store.', 'memoryBatches');
    gauge(`${p}store_spooled_batches`, 'Batches waiting in the disk spool (the server was unreachable), per store.', 'spooledBatches');
    gauge(`${p}store_spooled_bytes`, 'Bytes of the disk spool, per store.', 'spooledBytes');
    counter(`${p}store_written_lines_total`, 'Lines written to the store since it started (restarts at a redeploy).', 'written');
    counter(`${p}store_rejected_lines_total`, 'Lines the store server refused since the store started.', 'rejected');
    counter(`${p}store_dropped_lines_total`, 'Lines dropped because the spool was full, since the store started.', 'dropped');
    // The writer keeps the buckets (BatchWriter.writeDurations); prom-client's Histogram can only be observed into,
    // so this is a collector of its own that reads them at scrape time, exposed as a histogram.
    const writeSeconds = `${p}store_write_seconds`;
    const histogram = {
      name: writeSeconds,
      help: "How long each write to the store took (the backend's answer, success or failure), since the store started: queueing in front of the store shows here first.",
      type: 'histogram',
      get: () => {
        const values: Array<{ metricName: string; labels: Record<string, string>; value: number }> = [];
        for (const s of stores()) {
          const d = writeDurationsOf(s.stats().writeSeconds);
          if (d === undefined) continue;
          d.le.forEach((le, i) => values.push({ metricName: `${writeSeconds}_bucket`, labels: { store: s.id, le: String(le) }, value: d.cumulative[i] }));
          values.push({ metricName: `${writeSeconds}_bucket`, labels: { store: s.id, le: '+Inf' }, value: d.count });
          values.push({ metricName: `${writeSeconds}_sum`, labels: { store: s.id }, value: d.sum });
          values.push({ metricName: `${writeSeconds}_count`, labels: { store: s.id }, value: d.count });
        }
        return { name: writeSeconds, help: histogram.help, type: 'histogram', values, aggregator: 'sum' };
      },
    };
    this.registry.registerMetric(histogram as unknown as Metric);
  }

  private ingestMetrics(): void {
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    // A window id is "<node id>.<instance>": the node id is the stable label.
    const windows = (): Array<{ node: string; stats: ReturnType<typeof ackWindowStats>[number]['stats'] }> =>
      ackWindowStats().map((w) => ({ node: w.id.replace(/\.\d+$/, ''), stats: w.stats }));
    new Gauge({
      name: `${p}ingest_in_flight`,
      help: 'MQTT messages a thingwire-mqtt-in node has received and not yet acknowledged (waiting for the store), per node.',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const w of windows()) this.set({ node: w.node }, w.stats.inFlight);
      },
    });
    new Gauge({
      name: `${p}ingest_in_flight_bytes`,
      help: 'Payload bytes of the MQTT messages a thingwire-mqtt-in node has received and not yet acknowledged, per node.',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const w of windows()) this.set({ node: w.node }, w.stats.inFlightBytes);
      },
    });
    new Counter({
      name: `${p}ingest_messages_total`,
      help:
        'MQTT messages of a thingwire-mqtt-in node since it started, by outcome: received; acknowledged (stored, or refused for good: also counted under refused); unacknowledged (left for the broker to deliver again); timed_out (acknowledged unconfirmed after the timeout).',
      labelNames: ['node', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const w of windows()) {
          const s = w.stats;
          this.inc({ node: w.node, outcome: 'received' }, s.received);
          this.inc({ node: w.node, outcome: 'acknowledged' }, s.acknowledged);
          this.inc({ node: w.node, outcome: 'refused' }, s.rejected);
          this.inc({ node: w.node, outcome: 'unacknowledged' }, s.unacknowledged);
          this.inc({ node: w.node, outcome: 'timed_out' }, s.timedOut);
        }
      },
    });
  }

  private deviceMetrics(reg: DeviceCounts): void {
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    const open = (): boolean => reg.closed !== true;
    new Gauge({
      name: `${p}devices_registered`,
      help: 'Devices in the device registry.',
      registers,
      collect() {
        if (open()) this.set(reg.size.devices);
      },
    });
    new Gauge({
      name: `${p}devices_enabled`,
      help: 'Enabled devices in the device registry (a disabled device cannot connect or write).',
      registers,
      collect() {
        if (open()) this.set(reg.listDevices({ enabled: true, limit: 1 }).total);
      },
    });
    new Gauge({
      name: `${p}streams_registered`,
      help: 'Streams in the device registry.',
      registers,
      collect() {
        if (open()) this.set(reg.size.streams);
      },
    });
  }

  /** Installs the onSend and onReceive hooks in Node-RED (once; a second call is refused). */
  attach(hooks: HooksApi): void {
    if (this.hooks !== undefined) throw new Error('the metrics hooks are already installed');
    hooks.add(`onSend.${HOOK_LABEL}`, this.counters.onSend as (p: never) => void);
    try {
      hooks.add(`onReceive.${HOOK_LABEL}`, this.counters.onReceive as (p: never) => void);
    } catch (e) {
      hooks.remove(`onSend.${HOOK_LABEL}`);
      throw e;
    }
    this.hooks = hooks;
  }

  /**
   * The Prometheus text exposition of every metric. prom-client 15 writes NaN as `Nan` (the event-loop
   * lag mean and stddev when no delay was sampled since the previous scrape); the format says `NaN`.
   */
  async text(): Promise<string> {
    return (await this.registry.metrics()).replace(/^([^#\n][^\n]* )Nan$/gm, '$1NaN');
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Removes the hooks (idempotent). */
  close(): void {
    const h = this.hooks;
    this.hooks = undefined;
    if (h === undefined) return;
    h.remove(`onSend.${HOOK_LABEL}`);
    h.remove(`onReceive.${HOOK_LABEL}`);
  }
}

/** The answer to a request without the right key, in the HTTP API's error shape. */
export interface KeyRefusal {
  status: 401 | 503;
  code: 'unauthorized' | 'not_configured';
  message: string;
}

/**
 * Checks a request's API key against THINGWIRE_API_KEY and THINGWIRE_API_READ_KEY, read from `env`
 * at each request as the API flow does: null when it may read (or when neither key is set). A key
 * shorter than 16 characters is never accepted (the API refuses to run with one either).
 */
export function checkReadKey(headers: IncomingHttpHeaders, env: NodeJS.ProcessEnv): KeyRefusal | null {
  const set = [env.THINGWIRE_API_KEY, env.THINGWIRE_API_READ_KEY].filter((k): k is string => typeof k === 'string' && k !== '');
  if (set.length === 0) return null;
  const usable = set.filter((k) => k.length >= 16);
  if (usable.length === 0) {
    return { status: 503, code: 'not_configured', message: 'THINGWIRE_API_KEY / THINGWIRE_API_READ_KEY is too short: use at least 16 characters and restart Thingwire' };
  }
  let given: string | undefined;
  const auth = headers.authorization;
  const m = typeof auth === 'string' ? /^\s*Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  const xKey = headers['x-api-key'];
  if (m) given = m[1];
  else if (typeof xKey === 'string' && xKey !== '') given = xKey;
  if (given === undefined) return { status: 401, code: 'unauthorized', message: 'an API key is required: send "Authorization: Bearer <key>" or "X-API-Key: <key>"' };
  let ok = false;
  // Every key is compared (no early exit), each in constant time.
  for (const k of usable) ok = secretsEqual(given, k) || ok;
  return ok ? null : { status: 401, code: 'unauthorized', message: 'wrong API key' };
}

/** The Express handler of GET /api/v1/metrics. */
export function metricsHandler(metrics: RuntimeMetrics, env: NodeJS.ProcessEnv = process.env): (req: Request, res: Response) => void {
  return (req, res) => {
    res.set('Cache-Control', 'no-store');
    const refusal = checkReadKey(req.headers, env);
    if (refusal) {
      res.status(refusal.status).json({ error: { code: refusal.code, message: refusal.message } });
      return;
    }
    metrics.text().then(
      (body) => {
        res.status(200).set('Content-Type', metrics.contentType).send(body);
      },
      (e: Error) => {
        res.status(500).json({ error: { code: 'internal', message: `could not collect the metrics: ${e.message}` } });
      },
    );
  };
}
