/**
 * In-process delivery from the runtime's embedded broker to a thingwire-mqtt-in node (issue 11).
 *
 * When the bundled runtime runs the broker and Node-RED in one process, the flows' input used to be one more MQTT
 * client over loopback TCP: every reading was encoded by aedes, written to a socket, read and parsed by mqtt.js, and
 * its PUBACK went the same way back (about a third of the runtime's CPU at 2,000 readings/s: syscalls, mqtt-packet,
 * stream buffers). The runtime instead registers its broker here, and a thingwire-mqtt-in node whose host and port
 * name that broker attaches to it directly: the same messages, with the same at-least-once contract, as plain
 * objects.
 *
 * The contract (the broker side is runtime/in-process.ts):
 * - open(clientId, filters, consumer) gives the node a SESSION named by its client id. The session outlives the node:
 *   on a redeploy the next node with that client id takes it over, and what the old one had not confirmed is
 *   delivered again (as a persistent MQTT session does on reconnect). The broker queues what arrives while no node
 *   is attached.
 * - consumer.deliver(m) hands over one message; the node confirms it with ack(m.id) once it is settled (durable in
 *   the store, or refused for good), in delivery order or not. Until then the broker's publish log keeps it, so a
 *   crash of the process publishes it again at the next start.
 * - redeliver(): the messages delivered but not acknowledged are delivered again, in order (after the store lost
 *   some: the in-process counterpart of reconnecting).
 * - pause()/resume(): backpressure. While paused the broker hands over nothing and queues; past its bound it holds
 *   the publishers' acknowledgements, so devices slow down instead of memory growing.
 * - close(end): detach; end = the node was deleted, so the session goes too (nothing will confirm its messages).
 *   Without end the session keeps queueing (up to its bound, then devices wait) until a node takes it again; a node
 *   that names itself in open() and whose client id changed takes its old session's messages over.
 *
 * No Node-RED and no aedes import here: the registry is a process-wide slot (a global symbol, so a second copy of
 * this module, e.g. a differently installed node package, finds the same broker).
 */

/** One message handed to the node. */
export interface InProcessMessage {
  /** The session's number for it: give it to ack(). */
  id: number;
  topic: string;
  payload: Buffer;
  /** As delivered to a QoS 1 subscriber: min(1, the publish's QoS). */
  qos: 0 | 1;
  /** True for a retained message sent when the session was created. */
  retain: boolean;
}

export interface InProcessConsumer {
  deliver(m: InProcessMessage): void;
}

export interface InProcessSession {
  /** The message is settled: the broker forgets it (and its publish log releases it). Unknown ids are ignored. */
  ack(id: number): void;
  /** Delivers again, in order, every message delivered and not yet acknowledged. */
  redeliver(): void;
  pause(): void;
  resume(): void;
  /** Messages queued for the node (not yet delivered) and delivered but not acknowledged. */
  stats(): { queued: number; unacknowledged: number };
  /** Detaches the node; end = the session ends too (its messages are released). */
  close(end: boolean): void;
}

export interface InProcessBroker {
  /** Where it listens: a node whose port is this one and whose host is a loopback address or this attaches in process. */
  readonly port: number;
  readonly host: string;
  /**
   * Opens (or takes over) the session of `clientId`, PAUSED: nothing is delivered until resume() (so the caller can
   * keep the session first). `node` (the node's id): a detached session this node had under another client id is
   * handed over and ended. A string says why it cannot (the node shows it).
   */
  open(clientId: string, filters: readonly string[], consumer: InProcessConsumer, node?: string): InProcessSession | string;
}

const SLOT = Symbol.for('thingwire.mqtt.inProcessBroker');
type Slot = { [SLOT]?: InProcessBroker };

/** Called by the runtime once its broker listens; undefined unregisters. */
export function registerInProcessBroker(b: InProcessBroker | undefined): void {
  if (b === undefined) delete (globalThis as Slot)[SLOT];
  else (globalThis as Slot)[SLOT] = b;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * The registered broker when `url` (mqtt://host:port, as the node builds it) names it: plain MQTT (not TLS), its port,
 * a loopback host or the one it binds to. Anything else (another broker, TLS) is left to TCP.
 */
export function inProcessBrokerFor(url: string): InProcessBroker | undefined {
  const b = (globalThis as Slot)[SLOT];
  if (b === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'mqtt:' || Number(u.port || 1883) !== b.port) return undefined;
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!LOOPBACK.has(u.hostname) && host !== b.host.replace(/^\[(.*)\]$/, '$1')) return undefined;
  return b;
}
