/**
 * thingwire-anomaly: online anomaly scores per device and metric, and predictive-maintenance
 * estimates for metrics with a failure threshold. Output 1: the scores (AnomalyScore[]), one
 * message per input message; output 2: rejects; output 3: alert events (state changes only).
 * The logic lives in ./scorer (no Node-RED); this file wires it in and keeps its state on disk.
 */
import { ACK_PROPERTY } from '../lib/ack';
import type { AlertEvent } from '../lib/contract';
import { LazyStatus } from '../lib/lazy-status';
import { catalogueText, onInput, rejectError, RejectedError, type Node, type NodeAPI, type NodeMessage, type SendFn } from '../lib/red';
import { StateFile, thingwireDataDir } from '../lib/state';
import { parseConfig, type AnomalyConfig, type AnomalySettings } from './config';
import { RemoteScorer } from './remote';
import { ScorerPersistence } from './persist';
import { AnomalyScorer, formatDuration, type EventText, type ScoreOutput, type ScorerSnapshot } from './scorer';
import { declareInputUse, installFastClone } from '../lib/clone';

const TYPE = 'thingwire-anomaly';

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  const _ = (key: string, subs?: Record<string, unknown>): string => RED._(`${TYPE}.${key}`, subs);

  /** Values in event messages: 6 significant digits (21.79999456660126 reads 21.8). */
  const num = (v: number): string => (Number.isFinite(v) ? String(Number(v.toPrecision(6))) : String(v));
  // The two made per anomaly (often, for a noisy fleet) are filled in without i18next after the first.
  const firingText = catalogueText((k, subs) => RED._(k, subs), `${TYPE}.events.anomaly-firing`, ['metric', 'value', 'score', 'signal']);
  const resolvedText = catalogueText((k, subs) => RED._(k, subs), `${TYPE}.events.anomaly-resolved`, ['metric', 'value', 'normal']);
  /** The event messages, from the message catalogue. */
  const text: EventText = {
    anomalyFiring: (p) => firingText({ metric: p.metric, value: num(p.value), score: p.score.toFixed(2), signal: p.signal }),
    anomalyResolved: (p) => resolvedText({ metric: p.metric, value: num(p.value), normal: String(p.normal) }),
    maintenanceFiring: (p) =>
      _('events.maintenance-firing', {
        metric: p.metric,
        threshold: p.estimate.threshold,
        direction: p.estimate.direction,
        ttf: p.estimate.ttf === null ? _('events.ttf-unknown') : formatDuration(p.estimate.ttf),
        probability: `${Math.round(p.estimate.probability * 100)}%`,
        horizon: formatDuration(p.estimate.horizon),
      }),
    maintenanceResolved: (p) =>
      _('events.maintenance-resolved', {
        metric: p.metric,
        threshold: p.estimate.threshold,
        probability: `${Math.round(p.estimate.probability * 100)}%`,
        horizon: formatDuration(p.estimate.horizon),
      }),
    forgotten: (p) => _(`events.forgotten-${p.why}`, { metric: p.metric, rule: p.rule }),
  };

  function AnomalyNode(this: Node, config: AnomalyConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    // Reads its input only; what it sends may hold the readings' objects: it shares a fan-out's message with the other readers,
    // and what it sends counts as shared (../lib/clone).
    declareInputUse(node, 'shares');
    let settings: AnomalySettings | undefined;
    /** The models in this thread, or (settings.worker) in a worker thread. */
    let scorer: AnomalyScorer | undefined;
    let remote: RemoteScorer | undefined;
    let configError: string | undefined;
    try {
      settings = parseConfig(config);
      // Built here in both modes: a setting the scorer refuses is a config error at deploy (the worker's would be late).
      const local = new AnomalyScorer({ ...settings, text });
      if (settings.worker) {
        remote = new RemoteScorer({
          scorer: settings,
          text,
          state: settings.persist ? { dataDir: thingwireDataDir(RED.settings), type: TYPE, id: node.id, interval: settings.snapshotInterval } : undefined,
          warn: (key, error) => node.warn(_(`errors.${key}`, { error })),
          onStats: () => status.mark(),
        });
      } else {
        scorer = local;
      }
    } catch (e) {
      configError = (e as Error).message;
      settings = undefined;
      scorer = undefined;
      remote = undefined;
    }
    const ready = scorer !== undefined || remote !== undefined;
    // The status text (the scorer's stats walk every series; the catalogue lookup) is built at most once a second,
    // not per message: at 1,000 readings/s the per-message version took a sixth of the runtime's CPU. In a worker
    // the stats are those it last sent (with a message at most every 0.5 s).
    const status = new LazyStatus(node, () => {
      const s = remote ? remote.stats() : scorer!.stats();
      const subs = { series: s.series, learning: s.learning, anomalous: s.anomalous, maintenance: s.maintenance };
      return {
        fill: s.anomalous > 0 || s.maintenance > 0 ? 'yellow' : s.series === 0 ? 'grey' : 'green',
        shape: 'dot',
        text: _(settings!.maintenance.length > 0 ? 'status.counts-maintenance' : 'status.counts', subs),
      };
    }, 1000);
    // In a worker the state file is the worker's (scorer-worker.ts).
    const persistence =
      settings?.persist && scorer
        ? new ScorerPersistence(scorer, new StateFile<ScorerSnapshot>(thingwireDataDir(RED.settings), TYPE, node.id), settings.snapshotInterval, (key, error) =>
            node.warn(_(`errors.${key}`, { error })),
          )
        : undefined;

    function showStatus(): void {
      if (ready) status.mark();
    }

    if (configError !== undefined || !ready || !settings) {
      node.error(_('errors.config', { error: configError }));
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config-error` });
    } else {
      persistence?.load();
      if (remote) remote.refreshStats().catch(() => undefined);
      showStatus();
    }

    function eventMessages(events: AlertEvent[]): NodeMessage[] | null {
      if (events.length === 0) return null;
      return events.map((e) => ({ topic: e.key, payload: e }));
    }

    function resetDevice(msg: NodeMessage): string | undefined {
      const d = msg.device;
      return typeof d === 'string' && d !== '' ? d : d !== null && typeof d === 'object' && typeof (d as { id?: unknown }).id === 'string' ? (d as { id: string }).id : undefined;
    }

    function control(action: unknown, msg: NodeMessage, send: (m: Array<NodeMessage | NodeMessage[] | null>) => void): void | Promise<void> {
      if (action === 'stats') {
        if (remote) {
          return remote.refreshStats().then((st) => {
            msg.payload = st;
            send([msg, null, null]);
          });
        }
        msg.payload = scorer!.stats();
        send([msg, null, null]);
        return;
      }
      if (action === 'reset') {
        const device = resetDevice(msg);
        if (remote) {
          return remote.reset(device).then((r) => {
            const events = eventMessages(r.events);
            if (events) send([null, null, events]);
            showStatus();
          });
        }
        const r = scorer!.reset(device);
        const events = eventMessages(r.events);
        if (events) send([null, null, events]);
        persistence?.afterReset(device === undefined);
        showStatus();
        return;
      }
      throw new Error(_('errors.action', { action: typeof action === 'string' ? action.slice(0, 40) : typeof action }));
    }

    /** Sends what scoring `msg` gave (the same in the thread and from the worker). */
    function deliver(msg: NodeMessage, send: SendFn, out: ScoreOutput): void {
      const hasBad = out.rejects.length > 0;
      let bad: NodeMessage | null = null;
      if (hasBad) {
        bad = RED.util.cloneMessage(msg);
        if (out.batch) {
          const items = bad.payload as unknown[];
          const seen = new Set<number>();
          const rejected: unknown[] = [];
          for (const r of out.rejects) {
            if (r.index !== undefined && !seen.has(r.index)) {
              seen.add(r.index);
              rejected.push(items[r.index]);
            }
          }
          bad.payload = rejected;
        }
        bad.error = rejectError(TYPE, out.rejects[0]);
        bad.rejects = out.rejects;
      }
      // Output 1 carries what was scored; a message whose readings were all rejected goes to output 2 only, and one
      // whose scores were all left out by scoreEvery sends nothing there (its events still go to output 3).
      let ok: NodeMessage | null = null;
      if (out.scores.length > 0 || (!hasBad && out.thinned === 0)) {
        ok = msg;
        ok.payload = out.scores;
        // Scores are not the reading: storing them must not confirm the reading's MQTT delivery.
        delete ok[ACK_PROPERTY];
      }
      send([ok, bad, eventMessages(out.events)]);
      showStatus();
      if (hasBad && settings!.catchRejects) throw new RejectedError(TYPE, out.rejects[0]);
    }

    onInput(node, (msg, send) => {
      if (!ready || !settings) throw new Error(_('errors.config', { error: configError }));
      const action = msg.action;
      if (action !== undefined && action !== null && action !== '') return control(action, msg, send);
      if (remote) {
        return remote.score(msg.payload).then(
          (out) => deliver(msg, send, out),
          (e: unknown) => {
            showStatus();
            throw e;
          },
        );
      }
      deliver(msg, send, scorer!.score(msg.payload));
    });

    node.on('close', (removed, done) => {
      status.close();
      if (remote) {
        remote.close(removed).then(done, (e: unknown) => {
          node.warn(_('errors.save', { error: (e as Error).message }));
          done();
        });
        return;
      }
      if (!persistence) {
        done();
        return;
      }
      void persistence.close(removed).then(() => done());
    });
  }
  RED.nodes.registerType(TYPE, AnomalyNode);
};
