/**
 * thingwire-normalise: turns device payloads (JSON objects, batches, bare numbers
 * on devices/{device}/{metric} topics) into Thingwire Readings. Accepted
 * readings leave on output 1; rejects on output 2 with msg.error and msg.rejects.
 * A group message from thingwire-mqtt-in (../lib/group.ts) leaves as one batch (several past maxBatch readings).
 * The logic lives in ../lib/normalise (no Node-RED); this file only wires it in.
 */
import { ACK_PROPERTY, settleAck } from '../lib/ack';
import type { Reading, Reject } from '../lib/contract';
import { ThingwireError } from '../lib/errors';
import { GROUP_PROPERTY, isGroupMessage, type GroupMessage } from '../lib/group';
import { normalise, DEFAULT_NORMALISE_OPTIONS, type NormaliseOptions, type NormaliseResult, type StringFieldPolicy } from '../lib/normalise';
import { parsePayload, DEFAULT_MAX_BYTES } from '../lib/payload';
import { LazyStatus } from '../lib/lazy-status';
import { configBool, configInt, onInput, rejectError, RejectedError, type Node, type NodeAPI, type NodeMessage, type SendFn } from '../lib/red';
import { isTimeUnit } from '../lib/time';
import type { NormaliseConfig } from './config';
import { installFastClone } from '../lib/clone';

const TYPE = 'thingwire-normalise';

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  function NormaliseNode(this: Node, config: NormaliseConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const strings: StringFieldPolicy = config.strings === 'metrics' || config.strings === 'drop' ? config.strings : 'tags';
    const opts: NormaliseOptions = {
      ...DEFAULT_NORMALISE_OPTIONS,
      tsUnit: isTimeUnit(config.tsUnit) ? config.tsUnit : 'ms',
      strings,
      topicPrefix: config.topicPrefix || 'devices',
      maxBatch: configInt(config.maxBatch, DEFAULT_NORMALISE_OPTIONS.maxBatch),
    };
    const maxBytes = configInt(config.maxBytes, DEFAULT_MAX_BYTES);
    const catchRejects = configBool(config.catchRejects, false);
    let accepted = 0;
    let rejected = 0;
    // Built at most once a second: a catalogue lookup per message was ~10 % of the pipeline's CPU (profiled).
    const status = new LazyStatus(node, () => ({
      fill: rejected > 0 ? 'yellow' : 'green',
      shape: 'dot',
      text: RED._(`${TYPE}.status.counts`, { accepted, rejected }),
    }), 1000);

    node.status({});

    /** One device payload (a message's, or a group item's) to readings and rejects. */
    function run(payload: unknown, topic: unknown, known: unknown): { result: NormaliseResult; value: unknown } {
      try {
        const value = parsePayload(payload, maxBytes);
        const result = normalise(value, { topic: typeof topic === 'string' ? topic : undefined, device: typeof known === 'string' ? known : undefined }, opts);
        return { result, value };
      } catch (e) {
        if (!(e instanceof ThingwireError)) throw e;
        return { result: { readings: [], rejects: [e.toReject()], batch: false }, value: payload };
      }
    }

    /** The reject output's message for `src` (the input message, or a group item), which it becomes. */
    function rejectMessage(src: NodeMessage, result: NormaliseResult, value: unknown): NodeMessage {
      // The MQTT delivery goes on with the accepted readings, or is settled here when there are none.
      if (result.readings.length === 0) settleAck(src, 'rejected');
      else delete src[ACK_PROPERTY];
      if (result.batch && Array.isArray(value)) src.payload = result.rejects.map((r) => (r.index === undefined ? value : (value as unknown[])[r.index]));
      src.error = rejectError(TYPE, result.rejects[0]);
      src.rejects = result.rejects;
      return src;
    }

    onInput(node, (msg, send) => {
      if (isGroupMessage(msg)) {
        group(msg, send);
        return;
      }
      const { result, value } = run(msg.payload, msg.topic, (msg.device as { id?: unknown } | undefined)?.id);
      accepted += result.readings.length;
      rejected += result.rejects.length;
      status.mark();

      const hasBad = result.rejects.length > 0;
      // An empty batch ([]): nothing to store and nothing refused; its delivery is done here (else it waited for the
      // input's timeout, holding a place in its window and every later PUBACK behind it).
      if (result.readings.length === 0 && !hasBad) settleAck(msg, 'rejected');
      if (result.readings.length > 0) {
        // Keep the original message for the reject output when both outputs are used.
        const ok = hasBad ? RED.util.cloneMessage(msg) : msg;
        ok.payload = result.batch ? result.readings : result.readings[0];
        send([ok, null]);
      }
      if (hasBad) {
        send([null, rejectMessage(msg, result, value)]);
        if (catchRejects) throw new RejectedError(TYPE, result.rejects[0]);
      }
    });

    /**
     * A group from thingwire-mqtt-in (../lib/group.ts): every item is normalised as its own message would be; the
     * readings of all leave as one batch carrying the tokens of the items that gave some, and each item with a
     * reject leaves on the reject output as its own message would have (its token settled there when it gave no
     * reading). A group whose readings are more than maxBatch (the most one message may carry, and what the nodes
     * after it accept in one) leaves as several batches of at most maxBatch, split between items, each with its
     * items' tokens: a burst of device batches delivered in one turn made groups of 15,000+ readings that the device
     * node refused whole (payload_too_large), their deliveries settled as refused and their readings lost.
     */
    function group(msg: GroupMessage, send: SendFn): void {
      let readings: Reading[] = [];
      let tokens: string[] = [];
      let firstReject: Reject | undefined;
      for (const entry of msg.payload as unknown[]) {
        // A group is made by thingwire-mqtt-in; anything else in one (a hand-made message) is judged as a bare payload.
        const item: NodeMessage = entry !== null && typeof entry === 'object' && !Array.isArray(entry) ? (entry as NodeMessage) : { payload: entry };
        const { result, value } = run(item.payload, item.topic, undefined);
        accepted += result.readings.length;
        rejected += result.rejects.length;
        if (result.readings.length > 0) {
          if (readings.length > 0 && readings.length + result.readings.length > opts.maxBatch) {
            const part: NodeMessage = { ...msg };
            delete part[GROUP_PROPERTY];
            part.payload = readings;
            if (tokens.length > 0) part[ACK_PROPERTY] = tokens;
            else delete part[ACK_PROPERTY];
            send([part, null]);
            readings = [];
            tokens = [];
          }
          for (const r of result.readings) readings.push(r);
          const t = item[ACK_PROPERTY];
          if (typeof t === 'string') tokens.push(t);
        }
        if (result.readings.length === 0 && result.rejects.length === 0) settleAck(item, 'rejected'); // an empty batch
        if (result.rejects.length > 0) {
          firstReject ??= result.rejects[0];
          // A message of its own, as the item would have been alone (a copy: the item stays as it was in the group).
          const bad: NodeMessage = { ...item };
          send([null, rejectMessage(bad, result, value)]);
        }
      }
      status.mark();
      if (readings.length > 0) {
        const ok: NodeMessage = msg;
        delete ok[GROUP_PROPERTY];
        ok.payload = readings;
        if (tokens.length > 0) ok[ACK_PROPERTY] = tokens;
        else delete ok[ACK_PROPERTY];
        send([ok, null]);
      }
      if (catchRejects && firstReject !== undefined) throw new RejectedError(TYPE, firstReject);
    }

    node.on('close', (_removed, done) => {
      status.close();
      done();
    });
  }
  RED.nodes.registerType(TYPE, NormaliseNode);
};
