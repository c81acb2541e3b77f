/**
 * thingwire-write: writes Readings, Rollups and Alert events (or arrays of
 * them) to a thingwire-store, mapped to points by the point schema
 * (../lib/store/points), batched, retried and spooled by the store's writer.
 * Output 1: the message, once its points are queued. Output 2: rejects (points
 * that cannot be mapped or encoded, and lines the server refused or the spool
 * could not take).
 * With "confirm delivery" on, a message's MQTT delivery token (msg.mqttAck, from
 * thingwire-mqtt-in) is settled once its points are in the store or its disk
 * spool (or refused for good), so the broker's PUBACK means "stored".
 * With "pass on: when durable", output 1 gets the message only once its points are
 * written or in the disk spool (an HTTP flow answers 201 then, so an accepted
 * request is never lost); points the server refused send it to output 2
 * (store_rejected), and points the store could not keep (spool full) send it to
 * output 2 (store_unavailable) and end it with an error for Catch nodes.
 */
import { ACK_PROPERTY, settleAck, type AckOutcome } from '../lib/ack';
import type { Reject } from '../lib/contract';
import { checkBatch, encodeBatch } from '../lib/line-protocol';
import { BandGate, DEFAULT_POINT_SCHEMA, parseScoreFields, SCORE_FIELDS, ScoreGate, toPoints, type PointSchema } from '../lib/store/points';
import type { StoreListener } from '../lib/store/service';
import type { WriterStats } from '../lib/store/writer';
import type { Point } from '../lib/store/types';
import { LazyStatus } from '../lib/lazy-status';
import { configBool, configInt, configList, onInput, rejectError, RejectedError, type Node, type NodeAPI, type NodeMessage, type SendFn } from '../lib/red';
import type { StoreNode } from '../store/config';
import type { WriteConfig } from './config';
import { statusOf } from './status';
import { declareInputUse, installFastClone } from '../lib/clone';

const TYPE = 'thingwire-write';

export = function register(RED: NodeAPI): void {
  // Whether Thingwire's fan-out hooks run in this runtime: only then does a node after this one that may change the
  // readings get a copy of them, so only then may the points keep the readings' metrics objects (below).
  const guarded = installFastClone(RED);
  function WriteNode(this: Node, config: WriteConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    // Reads its input only, and sends on the message it got: it shares a fan-out's message with the other readers
    // (../lib/clone). 'shares', not 'reads': its points keep the readings' metrics objects until their batch is
    // written, so the message it sends on counts as shared and a node after it that may change it gets a copy (with
    // the hooks; without them Node-RED passes the message itself to the first node after, and the points copy).
    declareInputUse(node, 'shares');
    const scoreFields = parseScoreFields(configList(config.scoreFields));
    const schema: PointSchema = {
      readingMeasurement: config.readingMeasurement || DEFAULT_POINT_SCHEMA.readingMeasurement,
      rollupMeasurement: config.rollupMeasurement || DEFAULT_POINT_SCHEMA.rollupMeasurement,
      alertMeasurement: config.alertMeasurement || DEFAULT_POINT_SCHEMA.alertMeasurement,
      deviceTags: configList(config.deviceTags),
      intFields: configList(config.intFields),
      keepMetrics: guarded,
      ...(scoreFields.fields ? { scoreFields: scoreFields.fields } : {}),
    };
    const bandEvery = configInt(config.bandEvery, 0);
    if (bandEvery > 0) schema.bandGate = new BandGate(bandEvery);
    const scoreEvery = configInt(config.scoreEvery, 0);
    if (scoreEvery > 0) schema.scoreGate = new ScoreGate(scoreEvery);
    // A name that is not a score field would silently store nothing of it, a Band every or Score every that is not a
    // number every band or score: the node refuses to run instead.
    const bandText = String(config.bandEvery ?? '').trim();
    const scoreText = String(config.scoreEvery ?? '').trim();
    const configProblem =
      scoreFields.unknown.length > 0
        ? RED._(`${TYPE}.errors.score-fields`, { names: scoreFields.unknown.join(', '), known: SCORE_FIELDS.join(', ') })
        : bandText !== '' && !/^\d+$/.test(bandText)
          ? RED._(`${TYPE}.errors.band-every`, { value: bandText })
          : scoreText !== '' && !/^\d+$/.test(scoreText)
            ? RED._(`${TYPE}.errors.score-every`, { value: scoreText })
            : undefined;
    const catchRejects = configBool(config.catchRejects, false);
    // Saved flows from before the option have no `confirm`: off for them (the editor's default for new nodes is on).
    const confirm = configBool(config.confirm, false);
    const whenDurable = config.passOn === 'durable';
    /** Messages waiting for their points to be durable (whenDurable): failed at close, so none waits forever. */
    const waiting = new Set<(err: Error) => void>();
    const storeNode = config.store ? (RED.nodes.getNode(config.store) as StoreNode | null) : null;
    const service = storeNode?.service;
    let mappingRejects = 0;
    // The status shows the latest of: the writer's figures, or the count of payloads that could not be mapped. Its
    // text is built at most once a second (the writer reports figures on every message).
    let lastStats: WriterStats | undefined;
    let showUnmappable = false;
    const status = new LazyStatus(
      node,
      () =>
        showUnmappable || lastStats === undefined
          ? { fill: 'yellow', shape: 'dot', text: RED._(`${TYPE}.status.unmappable`, { count: mappingRejects }) }
          : statusOf(lastStats, RED._),
      1000,
    );

    if (configProblem !== undefined) {
      node.error(RED._(`${TYPE}.errors.config`, { error: configProblem }));
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config-error` });
    } else if (!service) {
      const why = !storeNode ? RED._(`${TYPE}.errors.no-store`) : storeNode.storeError ?? RED._(`${TYPE}.errors.no-store`);
      node.error(RED._(`${TYPE}.errors.config`, { error: why }));
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.no-store` });
    } else {
      node.status({ fill: 'grey', shape: 'dot', text: service.description });
    }

    // Events that belong to no message (server rejects, spool full, drops) leave on output 2 of one
    // write node per store: the first to register, so they are reported once.
    const listener: StoreListener = {
      onStats: (s) => {
        lastStats = s;
        showUnmappable = false;
        status.mark();
      },
      onReject: (lines, err) => {
        if (!service?.isPrimary(listener)) return;
        const msg = {
          payload: lines,
          error: { code: err.code, message: err.message, source: TYPE, status: err.status, serverMessage: err.serverMessage },
        };
        node.send([null, msg]);
        node.error(RED._(`${TYPE}.errors.rejected`, { count: lines.length, error: err.message }), msg);
      },
      onCorrupt: (message) => {
        if (service?.isPrimary(listener)) node.warn(message);
      },
      onDrop: (count, message) => {
        if (!service?.isPrimary(listener)) return;
        node.warn(RED._(`${TYPE}.errors.dropped`, { count, error: message }));
      },
    };
    const unlisten = service?.listen(listener);

    onInput(node, (msg, send) => {
      if (configProblem !== undefined) throw new Error(RED._(`${TYPE}.errors.config`, { error: configProblem }));
      if (!service) throw new Error(RED._(`${TYPE}.errors.no-store`));
      // The token is taken now: the message may change downstream before the points are durable.
      const ack = confirm ? msg[ACK_PROPERTY] : undefined;
      const mapped = toPoints(msg.payload, msg.device, schema, msg.devices);
      // The embedded store reads points: they are only checked here (their lines are made if the spool or a
      // refusal needs them). Every other store gets lines, encoded here.
      let points: readonly Point[] | undefined;
      let lines: readonly string[] | undefined;
      let refused: ReturnType<typeof checkBatch>['rejects'];
      if (service.takesPoints) ({ points, rejects: refused } = checkBatch(mapped.points));
      else ({ lines, rejects: refused } = encodeBatch(mapped.points));
      const count = points !== undefined ? points.length : lines!.length;
      // The common case has no rejects: no array is built for it.
      const rejects: Reject[] = refused.length === 0 ? mapped.rejects : [...mapped.rejects];
      for (const r of refused) rejects.push(r.error.toReject(mapped.batch ? mapped.indexes[r.index] : undefined));
      const queue = (onSettled: ((outcome: AckOutcome) => void) | undefined): void => {
        if (points !== undefined) service.writePoints(points, onSettled);
        else service.write(lines!, onSettled);
      };
      let durable: Promise<AckOutcome> | undefined;
      if (count > 0 && whenDurable) {
        durable = new Promise<AckOutcome>((resolve, reject) => {
          waiting.add(reject);
          queue((outcome: AckOutcome) => {
            waiting.delete(reject);
            if (ack !== undefined) settleAck({ [ACK_PROPERTY]: ack }, outcome);
            resolve(outcome);
          });
        });
      } else if (count > 0) {
        queue(ack === undefined ? undefined : (outcome: AckOutcome) => settleAck({ [ACK_PROPERTY]: ack }, outcome));
      } else if (ack !== undefined) {
        // Nothing to store. Every point refused: settled as refused, the rejects say why. None refused (an empty batch,
        // or every score left out by Score every): nothing of it needed storing, so it is as good as durable.
        settleAck({ [ACK_PROPERTY]: ack }, rejects.length > 0 ? 'rejected' : 'durable');
      }
      if (rejects.length > 0) {
        mappingRejects += rejects.length;
        const bad = count > 0 ? RED.util.cloneMessage(msg) : msg;
        bad.error = rejectError(TYPE, rejects[0]);
        bad.rejects = rejects;
        if (count > 0 && durable === undefined) send([msg, null]);
        send([null, bad]);
        showUnmappable = true;
        status.mark();
        if (durable !== undefined) return passOnWhenDurable(msg, send, durable, catchRejects ? rejects[0] : undefined);
        if (catchRejects) throw new RejectedError(TYPE, rejects[0]);
        return;
      }
      if (durable !== undefined) return passOnWhenDurable(msg, send, durable, undefined);
      send([msg, null]);
    });

    /** whenDurable: the message goes on once the store has its points (done() waits for it). */
    async function passOnWhenDurable(msg: NodeMessage, send: SendFn, durable: Promise<AckOutcome>, reject: Reject | undefined): Promise<void> {
      const outcome = await durable;
      if (outcome === 'lost') {
        // Output 2 too, so a flow that answers someone (an HTTP request) can say "not stored, send it again".
        msg.error = { code: 'store_unavailable', message: RED._(`${TYPE}.errors.lost`), source: TYPE };
        send([null, msg]);
        throw new Error(RED._(`${TYPE}.errors.lost`));
      }
      if (outcome === 'rejected') {
        msg.error = { code: 'store_rejected', message: RED._(`${TYPE}.errors.store-rejected`), source: TYPE };
        send([null, msg]);
        return;
      }
      send([msg, null]);
      if (reject !== undefined) throw new RejectedError(TYPE, reject);
    }

    node.on('close', (_removed, done) => {
      for (const fail of waiting) fail(new Error(RED._(`${TYPE}.errors.closed`)));
      waiting.clear();
      unlisten?.();
      status.close();
      done();
    });
  }
  RED.nodes.registerType(TYPE, WriteNode);
};
