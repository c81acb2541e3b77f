/**
 * thingwire-normalise: turns device payloads (JSON objects, batches, bare numbers
 * on devices/{device}/{metric} topics) into Thingwire Readings. Accepted
 * readings leave on output 1; rejects on output 2 with msg.error and msg.rejects.
 * The logic lives in ../lib/normalise (no Node-RED); this file only wires it in.
 */
import { ACK_PROPERTY, settleAck } from '../lib/ack';
import { ThingwireError } from '../lib/errors';
import { normalise, DEFAULT_NORMALISE_OPTIONS, type NormaliseOptions, type StringFieldPolicy } from '../lib/normalise';
import { parsePayload, DEFAULT_MAX_BYTES } from '../lib/payload';
import { LazyStatus } from '../lib/lazy-status';
import { configBool, configInt, onInput, rejectError, RejectedError, type Node, type NodeAPI } from '../lib/red';
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

    onInput(node, (msg, send) => {
      let value: unknown;
      let result;
      try {
        value = parsePayload(msg.payload, maxBytes);
        const known = (msg.device as { id?: unknown } | undefined)?.id;
        result = normalise(value, { topic: msg.topic, device: typeof known === 'string' ? known : undefined }, opts);
      } catch (e) {
        if (!(e instanceof ThingwireError)) throw e;
        result = { readings: [], rejects: [e.toReject()], batch: false };
        value = msg.payload;
      }
      accepted += result.readings.length;
      rejected += result.rejects.length;
      status.mark();

      const hasBad = result.rejects.length > 0;
      if (result.readings.length > 0) {
        // Keep the original message for the reject output when both outputs are used.
        const ok = hasBad ? RED.util.cloneMessage(msg) : msg;
        ok.payload = result.batch ? result.readings : result.readings[0];
        send([ok, null]);
      }
      if (hasBad) {
        const bad = msg;
        // The MQTT delivery goes on with the accepted readings, or is settled here when there are none.
        if (result.readings.length === 0) settleAck(bad, 'rejected');
        else delete bad[ACK_PROPERTY];
        if (result.batch && Array.isArray(value)) bad.payload = result.rejects.map((r) => (r.index === undefined ? value : (value as unknown[])[r.index]));
        bad.error = rejectError(TYPE, result.rejects[0]);
        bad.rejects = result.rejects;
        send([null, bad]);
        if (catchRejects) throw new RejectedError(TYPE, result.rejects[0]);
      }
    });

    node.on('close', (_removed, done) => {
      status.close();
      done();
    });
  }
  RED.nodes.registerType(TYPE, NormaliseNode);
};
