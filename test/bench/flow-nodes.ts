/**
 * Two node types for the through-Node-RED benches, loaded into an embedded runtime by
 * node-red.ts:
 *
 * - `tw-bench-source` sends messages on its output as fast as the runtime takes them: pump(n)
 *   sends them in chunks of `chunk` per event-loop turn (as a socket delivers a burst) and resolves
 *   when the runtime has handed every one of them to the next node's input handler. Node-RED
 *   delivers each message with its own setImmediate, first in first out, and the source queues
 *   its next chunk (and, after the last, its resolve) behind the deliveries it has queued: so when
 *   pump() resolves, the node under test has run its input handler for every message (drain).
 * - `tw-bench-sink` counts the messages it receives and the items in them (array payloads count
 *   their length) and can hand each message to a callback.
 *
 * The running instances are found by node id through benchNode(), a registry per JavaScript realm.
 */
import type { DoneFn, NodeAPI, NodeMessage, SendFn } from '../../nodes/lib/red';

export interface BenchNode {
  id: string;
  type: string;
  /** Source: sends n messages made by `make(i, now)` (now = Date.now() once per chunk), resolves at drain. */
  pump(n: number, make: (i: number, now: number) => NodeMessage): Promise<void>;
  /** Sink: messages received. */
  messages: number;
  /** Sink: items received (an array payload counts its length). */
  items: number;
  /** Sink: called with every message received, when set. */
  onMessage?: (msg: NodeMessage) => void;
}

interface RuntimeNodeBase {
  id: string;
  type: string;
  send: SendFn;
  on(event: 'input', handler: (msg: NodeMessage, send: SendFn, done: DoneFn) => void): void;
  on(event: 'close', handler: (removed: boolean, done: () => void) => void): void;
}

const REGISTRY_KEY = Symbol.for('thingwire.bench.flow-nodes');

function registry(): Map<string, BenchNode> {
  const g = globalThis as unknown as Record<symbol, Map<string, BenchNode> | undefined>;
  return (g[REGISTRY_KEY] ??= new Map());
}

export function benchNode(id: string): BenchNode {
  const n = registry().get(id);
  if (!n) throw new Error(`no bench node ${id} is running`);
  return n;
}

interface SourceConfig {
  chunk?: number;
}

export function registerBenchNodes(RED: NodeAPI): void {
  function Source(this: RuntimeNodeBase & BenchNode, config: SourceConfig): void {
    RED.nodes.createNode(this, config);
    const chunk = Math.max(1, Number(config.chunk) || 1000);
    this.messages = 0;
    this.items = 0;
    this.pump = (n, make) =>
      new Promise<void>((resolve) => {
        let i = 0;
        const step = (): void => {
          const end = Math.min(n, i + chunk);
          const now = Date.now();
          for (; i < end; i++) this.send(make(i, now));
          // Queued behind the deliveries just queued: runs once they have all been handled.
          setImmediate(i < n ? step : resolve);
        };
        step();
      });
    registry().set(this.id, this);
    this.on('close', (_removed, done) => {
      registry().delete(this.id);
      done();
    });
  }

  function Sink(this: RuntimeNodeBase & BenchNode, config: object): void {
    RED.nodes.createNode(this, config);
    this.messages = 0;
    this.items = 0;
    this.on('input', (msg, _send, done) => {
      this.messages++;
      this.items += Array.isArray(msg.payload) ? msg.payload.length : 1;
      this.onMessage?.(msg);
      done();
    });
    registry().set(this.id, this);
    this.on('close', (_removed, done) => {
      registry().delete(this.id);
      done();
    });
  }

  RED.nodes.registerType('tw-bench-source', Source);
  RED.nodes.registerType('tw-bench-sink', Sink);
}
