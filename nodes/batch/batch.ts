/**
 * thingwire-batch: merges the messages of a busy stream of readings into one
 * message per maxWaitMs (or per maxItems readings), carrying their MQTT delivery
 * tokens and device metadata along. The logic is ./batcher (no Node-RED); this
 * file wires it in. Each input message is done() at once: it lives on in the
 * batch, and its delivery is confirmed when the batch is stored.
 */
import { LazyStatus } from '../lib/lazy-status';
import { configInt, onInput, type Node, type NodeAPI } from '../lib/red';
import { BATCHER_DEFAULTS, Batcher } from './batcher';
import type { BatchConfig } from './config';
import { declareInputUse, installFastClone, isShared, markUnshared } from '../lib/clone';

const TYPE = 'thingwire-batch';

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  function BatchNode(this: Node, config: BatchConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    // Reads its input only; a batch holds the readings (and device metadata) of the messages it got, so what it sends
    // counts as shared (../lib/clone): the starter's fan-out of batches then copies nothing for its readers. A batch
    // of messages that all came to this node alone (none shared) is no more shared than they were: the node after it
    // gets it without a copy, as it would get those messages (the starter's 1 ms batch after the normaliser: a deep
    // copy of every batch for the registry node, 2 % of the runtime's main thread at 13,000 readings/s).
    declareInputUse(node, 'shares');
    let batcher: Batcher;
    try {
      batcher = new Batcher((out, shared) => {
        if (!shared) markUnshared(out);
        node.send(out);
        status.mark();
      }, { maxItems: configInt(config.maxItems, BATCHER_DEFAULTS.maxItems), maxWaitMs: configInt(config.maxWaitMs, BATCHER_DEFAULTS.maxWaitMs) });
    } catch (e) {
      node.error(RED._(`${TYPE}.errors.config`, { error: (e as Error).message }));
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config` });
      return;
    }
    const fmt = new Intl.NumberFormat('en-US');
    const status = new LazyStatus(
      node,
      () => ({ fill: 'green', shape: 'dot', text: RED._(`${TYPE}.status.counts`, { batches: fmt.format(batcher.batches), readings: fmt.format(batcher.itemsOut) }) }),
      1000,
    );

    onInput(node, (msg) => {
      batcher.add(msg, isShared(msg));
    });

    node.on('close', (_removed, done) => {
      // What is waiting goes on now (at most maxWaitMs of readings); a token downstream does not confirm is
      // delivered again by the broker.
      batcher.close();
      status.close();
      done();
    });
  }
  RED.nodes.registerType(TYPE, BatchNode);
};
