/**
 * thingwire-mqtt-in: an MQTT subscriber with at-least-once delivery into the
 * store. Unlike Node-RED's own mqtt in node, it keeps a persistent session
 * (clean session off, a stable client id), subscribes at QoS 1 and sends each
 * PUBACK only when the flow has settled the message (../lib/ack.ts): its points
 * are durable in the store or its disk spool (a thingwire-write node with
 * "confirm delivery"), or a Thingwire node refused it for good. Until then the
 * broker keeps the message and delivers it again after a crash or disconnect.
 *
 * Output 1: messages to process (QoS 1 ones carry msg.mqttAck). Output 2: messages on
 * the "confirm at once" topics (device status, last will), acknowledged on receipt,
 * so a flow routes them without a switch node. With "Group messages" on, output 1
 * sends the messages that arrive together as one group message (../lib/group.ts)
 * for thingwire-normalise: Node-RED's cost per message is then paid per group.
 *
 * Backpressure: at most maxInFlight messages (and maxInFlightMB of payload) are tracked; past that the node
 * stops reading from the connection (mqtt.js handleMessage's callback is held),
 * so memory stays bounded and the broker holds the rest. Subscriptions are sent
 * again after every connect the broker answers without a session.
 *
 * In process: when the bundled runtime's embedded broker runs in this process and the node's host and port name it
 * (../lib/in-process.ts), the node attaches to it directly instead of connecting: the same messages and outputs, the
 * same window and confirmations, without encoding each one to a socket and parsing it back (the runtime's largest
 * per-reading cost at the knee). The session is named by the client id and outlives a redeploy; backpressure pauses
 * the session instead of the socket.
 */
import * as mqtt from 'mqtt';
import { ACK_PROPERTY, AckWindow, topicMatcher } from '../lib/ack';
import { Grouper } from '../lib/group';
import { inProcessBrokerFor, type InProcessBroker, type InProcessMessage, type InProcessSession } from '../lib/in-process';
import { LazyStatus } from '../lib/lazy-status';
import { afterFlowsStart, type Node, type NodeAPI, type NodeMessage, type NodeStatus, type StartGate } from '../lib/red';
import type { MqttInConfig } from './config';
import { mqttInOptions } from './options';
import { installFastClone } from '../lib/clone';

const TYPE = 'thingwire-mqtt-in';
/** Given to mqtt.js's handleMessage callback: it then skips its own PUBACK (we send it when settled). */
const DEFERRED = new Error('PUBACK deferred until the message is settled');
const WARN_EVERY_MS = 60_000;
/** Longest wait, when the node is deleted, for the broker to end its session (see endSession). */
const SESSION_END_MS = 2000;

interface MqttInNode extends Node {
  credentials: { user?: string; password?: string };
}

/** A payload's size for the in-flight byte bound (mqtt.js gives a Buffer; a string when a custom parser did). */
function payloadBytes(p: unknown): number {
  if (Buffer.isBuffer(p)) return p.length;
  return typeof p === 'string' ? Buffer.byteLength(p) : 0;
}

/** mqtt.js's packet writer: public enough (used by its own handlers) and the only way to send a PUBACK later. */
type PacketSender = { _sendPacket(packet: { cmd: 'puback'; messageId: number }, cb?: () => void): void };

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  function MqttInNode(this: MqttInNode, config: MqttInConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const { options: o, problems } = mqttInOptions(config);
    if (problems.length > 0) {
      node.error(RED._(`${TYPE}.errors.config`, { error: problems.join('; ') }));
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config` });
      return;
    }

    let client: mqtt.MqttClient | undefined;
    let keepAwake: NodeJS.Timeout | undefined;
    let session: InProcessSession | undefined;
    let attachGate: StartGate | undefined;
    const inProcess = inProcessBrokerFor(o.url);
    let state: 'connecting' | 'connected' | 'disconnected' = 'connecting';
    let lastError = '';
    let lastWarn = 0;
    const window = new AckWindow(node.id, {
      maxInFlight: o.maxInFlight,
      maxInFlightBytes: o.maxInFlightBytes,
      timeoutMs: o.ackTimeoutMs,
      sendAck: (messageId) => {
        if (session !== undefined) session.ack(messageId);
        else if (client?.connected) (client as unknown as PacketSender)._sendPacket({ cmd: 'puback', messageId });
      },
      // The store could not keep a message (its spool full): it stays unacknowledged, and the broker sends it again
      // on a new connection, so the connection is dropped (once a second at most) and mqtt.js reconnects; in
      // process, the session delivers again what is unacknowledged (a new epoch: as after a reconnect).
      onLost: () => {
        if (lostTimer !== undefined) return;
        lostTimer = setTimeout(() => {
          lostTimer = undefined;
          node.warn(RED._(`${TYPE}.errors.lost`));
          if (session !== undefined) {
            window.disconnect();
            window.connect();
            session.redeliver();
          } else client?.stream?.destroy();
        }, 1000);
      },
    });
    let lostTimer: NodeJS.Timeout | undefined;
    // In process a whole delivery turn is handed over synchronously (one group at the end of the task); over TCP the
    // messages one read of the socket brought (one group at the end of the event loop's turn).
    const grouper = o.group ? new Grouper((g) => node.send([g, null]), inProcess !== undefined ? 'microtask' : 'immediate') : undefined;
    const out = (msg: NodeMessage): void => {
      if (grouper !== undefined) grouper.add(msg as NodeMessage & { topic: string });
      else node.send([msg, null]);
    };
    const confirmAtOnce = topicMatcher(o.confirmOnReceipt);

    const status = new LazyStatus(node, (): NodeStatus => {
      const s = window.stats();
      const counts = { inFlight: s.inFlight, mb: (s.inFlightBytes / 1048576).toFixed(1), acknowledged: s.acknowledged, timedOut: s.timedOut };
      if (state !== 'connected') {
        return { fill: 'red', shape: 'ring', text: RED._(`${TYPE}.status.${state}`, { error: lastError, ...counts }) };
      }
      const full = window.full();
      const key = full ? 'full' : session !== undefined ? 'inProcess' : 'connected';
      return { fill: full || s.timedOut > 0 ? 'yellow' : 'green', shape: 'dot', text: RED._(`${TYPE}.status.${key}`, counts) };
    }, 1000);

    const sweeper = setInterval(() => {
      const n = window.sweep();
      if (n > 0) {
        status.mark();
        const now = Date.now();
        if (now - lastWarn >= WARN_EVERY_MS) {
          lastWarn = now;
          node.warn(RED._(`${TYPE}.errors.timeout`, { count: n, seconds: o.ackTimeoutMs / 1000, topic: window.lastTimedOutTopic ?? '' }));
        }
      }
    }, Math.max(250, Math.min(5000, o.ackTimeoutMs / 4 || 5000)));

    const connectOpts: mqtt.IClientOptions = {
      clientId: o.clientId,
      clean: false,
      protocolVersion: o.protocolVersion,
      keepalive: o.keepaliveS,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      resubscribe: false,
    };
    if (inProcess !== undefined) {
      // After the flows start: a queued message delivered while the nodes are still being created would be lost.
      attachGate = afterFlowsStart(RED, () => attach(inProcess));
    } else connectTcp();
    status.mark();

    /**
     * Sends a received message on its output (over TCP and in process alike): "confirm at once" topics on the second,
     * acknowledged by the caller at once; a QoS 1 message with an id is tracked in the window ('tracked': it waits for
     * its confirmation); anything else goes out untracked.
     */
    function take(topic: string, msg: NodeMessage, messageId: number | undefined, bytes: number): 'atOnce' | 'untracked' | 'tracked' {
      if (o.confirmOnReceipt.length > 0 && confirmAtOnce(topic)) {
        node.send([null, msg]);
        return 'atOnce';
      }
      if (msg.qos !== 1 || messageId === undefined) {
        out(msg);
        return 'untracked';
      }
      msg[ACK_PROPERTY] = window.track(messageId, topic, bytes);
      out(msg);
      status.mark();
      return 'tracked';
    }

    /** One message from the in-process session. */
    function deliver(m: InProcessMessage): void {
      const taken = take(m.topic, { topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain }, m.id, m.payload.length);
      if (taken === 'atOnce' && m.qos === 1) session?.ack(m.id);
      if (taken !== 'tracked' || !window.full()) return;
      // The broker queues the rest (and past its bound holds the publishers' acknowledgements).
      session?.pause();
      window.whenRoom(() => session?.resume());
    }

    function attach(b: InProcessBroker): void {
      attachGate = undefined;
      window.connect();
      const opened = b.open(o.clientId, o.topics, { deliver }, node.id);
      if (typeof opened === 'string') {
        window.disconnect();
        lastError = opened;
        state = 'disconnected';
        node.error(RED._(`${TYPE}.errors.inProcess`, { error: opened }));
        status.mark();
        return;
      }
      session = opened;
      state = 'connected';
      status.mark();
      session.resume(); // it opens paused: what it queued meanwhile comes now
    }

    function connectTcp(): void {
      if (node.credentials?.user) connectOpts.username = node.credentials.user;
      if (node.credentials?.password) connectOpts.password = node.credentials.password;
      if (o.protocolVersion === 5) {
        // Without a session expiry an MQTT 5 broker ends the session at disconnect (and with it the queued messages);
        // Receive Maximum lets the broker send as many unacknowledged messages as this node tracks.
        connectOpts.properties = { sessionExpiryInterval: o.sessionExpiryS, receiveMaximum: o.maxInFlight };
      }

      client = mqtt.connect(o.url, connectOpts);

      client.handleMessage = (packet, cb) => {
        const msg: NodeMessage = { topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: packet.retain };
        if (take(packet.topic, msg, packet.messageId, payloadBytes(packet.payload)) !== 'tracked') {
          cb(); // mqtt.js acknowledges it now (QoS 1)
          return;
        }
        // Hold mqtt.js's reading while the window is full: the broker keeps what we cannot take yet.
        if (!window.full()) {
          cb(DEFERRED);
          return;
        }
        paused(true);
        window.whenRoom(() => {
          paused(false);
          cb(DEFERRED);
        });
      };

      // While reading is held, mqtt.js handles no packet, PINGRESP included, and would take the connection for dead
      // after 1.5 keepalives (then reconnect, and get the whole window delivered again). The wait is for this flow,
      // not the network, so the keepalive clock is held too; a connection that dies meanwhile shows when reading
      // resumes, or when a PUBACK cannot be written.
      function paused(on: boolean): void {
        if (on && keepAwake === undefined && o.keepaliveS > 0) {
          keepAwake = setInterval(() => {
            // The broker times the connection out too when nothing comes from it (no PUBACK while the flow is stuck):
            // a PINGREQ keeps it alive (its PINGRESP waits in the socket until reading resumes), and mqtt.js's own
            // ping timer, which would otherwise expect that PINGRESP, is restarted.
            if (client?.connected) client.sendPing();
            client?.reschedulePing(true);
          }, Math.max(500, (o.keepaliveS * 1000) / 3));
        } else if (!on && keepAwake !== undefined) {
          clearInterval(keepAwake);
          keepAwake = undefined;
        }
      }

      client.on('connect', (connack) => {
        window.connect();
        state = 'connected';
        lastError = '';
        status.mark();
        if (connack.sessionPresent) return;
        client?.subscribe(
          o.topics.map((t) => ({ [t]: { qos: 1 as const } })).reduce((a, b) => ({ ...a, ...b }), {}),
          (err, granted) => {
            const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
            if (err || refused.length > 0) {
              lastError = err ? err.message : RED._(`${TYPE}.errors.refused`, { topics: refused.join(', ') });
              node.error(RED._(`${TYPE}.errors.subscribe`, { error: lastError }));
              status.mark();
            }
          },
        );
      });
      client.on('close', () => {
        window.disconnect();
        if (state === 'connected') state = 'disconnected';
        status.mark();
      });
      client.on('offline', () => {
        state = 'disconnected';
        status.mark();
      });
      client.on('error', (err) => {
        lastError = err.message;
        state = 'disconnected';
        status.mark();
        node.debug(RED._(`${TYPE}.errors.connection`, { url: o.url, error: err.message }));
      });
    }

    node.on('close', (removed, done) => {
      clearInterval(sweeper);
      if (lostTimer !== undefined) clearTimeout(lostTimer);
      if (keepAwake !== undefined) clearInterval(keepAwake);
      keepAwake = undefined;
      status.close();
      grouper?.close();
      attachGate?.cancel();
      // Whatever is still in flight stays unacknowledged: the broker delivers it again to the next session.
      window.close();
      if (session !== undefined) {
        // Deleted: the session ends (nobody comes back for it); redeployed: the next node takes it over.
        session.close(removed === true);
        session = undefined;
        done();
        return;
      }
      const c = client;
      client = undefined;
      if (!c) {
        done();
        return;
      }
      c.end(true, {}, () => (removed ? endSession(done) : done()));
    });

    /**
     * The node was deleted (not redeployed): nobody comes back for its persistent session, which the broker would
     * otherwise fill with every message on its topics for as long as it runs. A connection with the same client
     * id and a clean session ends it (MQTT 3.1.1 3.1.2.4; MQTT 5: session expiry 0). Best effort, at most
     * SESSION_END_MS; a broker that cannot be reached keeps the session.
     */
    function endSession(done: () => void): void {
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(guard);
        ender.end(true, {}, () => done());
      };
      const opts: mqtt.IClientOptions = { ...connectOpts, clean: true, reconnectPeriod: 0, connectTimeout: SESSION_END_MS };
      if (o.protocolVersion === 5) opts.properties = { sessionExpiryInterval: 0 };
      const ender = mqtt.connect(o.url, opts);
      const guard = setTimeout(finish, SESSION_END_MS);
      ender.once('connect', finish);
      ender.once('error', finish);
      ender.once('close', finish);
    }
  }
  RED.nodes.registerType(TYPE, MqttInNode, {
    credentials: { user: { type: 'text' }, password: { type: 'password' } },
  });
};
