/**
 * thingwire-alert: alert rules over Readings, AnomalyScores, liveness events and the anomaly node's
 * alert events (./engine, ./rules), one lifecycle per alert key. Output 1: state changes, one
 * message per AlertEvent (for notifiers and the store); output 2: the active list (when it changes,
 * at most every 250 ms, a long list less often: see LIST_MS; always the latest) and the replies to
 * control messages; output 3: rejects.
 * One timer (./deadline-timer), armed at engine.nextDeadline() after a tick or an action and moved earlier by a
 * message's lastIngestDue(); the state is kept in a StateFile across redeploys and restarts. Control messages are checked in
 * ./control. This file only wires the engine in.
 */
import type { AlertEvent, Reject } from '../lib/contract';
import { afterFlowsStart, onInput, rejectError, RejectedError, ThrottledStatus, type Node, type NodeAPI, type NodeMessage, type SendFn } from '../lib/red';
import { StateFile, thingwireDataDir } from '../lib/state';
import { DeadlineTimer } from './deadline-timer';
import { AlertConfigError, parseAlertConfig, type AlertConfig, type AlertSettings } from './config';
import { metaOf, runControl } from './control';
import { AlertEngine, type AlertSnapshot } from './engine';
import { statusOf } from './status';
import { declareInputUse, installFastClone } from '../lib/clone';

const TYPE = 'thingwire-alert';
/**
 * The active list (output 2) and the status go out at most every LIST_MS, and a long list no more often than
 * LIST_MS_PER_ALERT a row (capped at LIST_MAX_MS): each list is copied by every consumer (a dashboard table
 * stores two deep copies of it), and 1,300 active alerts four times a second were a sixth of all the runtime's
 * allocations at 2,000 readings/s. With a thousand alerts active the list goes out once a second; alert events
 * (output 1) are never held.
 */
const LIST_MS = 250;
const LIST_MS_PER_ALERT = 1;
const LIST_MAX_MS = 2000;

/** Alert ids start with the node id (unique across alert nodes writing to one store); ids that are not short and plain are left out. */
function idPrefixOf(id: string): string {
  return /^[A-Za-z0-9._-]{1,48}$/.test(id) ? `${id}-` : '';
}

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  const _ = (key: string, subs?: Record<string, unknown>): string => RED._(`${TYPE}.${key}`, subs);

  function AlertNode(this: Node, config: AlertConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    // Reads its input only; what it sends may hold the readings' objects: it shares a fan-out's message with the other readers,
    // and what it sends counts as shared (../lib/clone).
    declareInputUse(node, 'shares');
    const stateFile = (): StateFile<AlertSnapshot> => new StateFile<AlertSnapshot>(thingwireDataDir(RED.settings), TYPE, node.id);

    let settings: AlertSettings;
    let engine: AlertEngine;
    try {
      settings = parseAlertConfig(config);
      engine = new AlertEngine({ rules: settings.rules, maxKeys: settings.maxKeys, idPrefix: idPrefixOf(node.id) });
    } catch (e) {
      // Misconfigured: say so once (every problem), answer every message with the error, start nothing.
      const problems = e instanceof AlertConfigError ? e.problems : [(e as Error).message];
      const error = _('errors.config', { error: problems.join('; ') });
      node.error(error);
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config-error` });
      onInput(node, () => {
        throw new Error(error);
      });
      node.on('close', (removed, done) => {
        if (removed) {
          try {
            stateFile().remove();
          } catch (err) {
            node.warn(_('errors.save', { error: (err as Error).message }));
          }
        }
        done();
      });
      return;
    }

    const status = new ThrottledStatus(node, LIST_MS);
    let closed = false;
    let started = false;

    // ---- state ------------------------------------------------------------------------------
    const state = settings.persist ? stateFile() : undefined;
    /** Events restore() produced (alerts of changed rules resolved): sent once the flows run. */
    let startupEvents: AlertEvent[] = [];
    let savedVersion = engine.version;
    if (state !== undefined) {
      let why: string | undefined;
      const e = engine;
      const loaded = state.load((v): v is AlertSnapshot => {
        try {
          startupEvents = e.restore(v, Date.now());
          return true;
        } catch (err) {
          why = (err as Error).message;
          return false;
        }
      });
      if (loaded.problem !== undefined) node.warn(_('errors.state', { error: why === undefined ? loaded.problem : `${why}; ${loaded.problem}` }));
      if (loaded.value !== undefined) {
        const s = engine.stats();
        node.log(_('log.restored', { keys: s.keys, firing: s.firing, pending: s.pending, resolved: startupEvents.length, file: state.file }));
      }
      // Alerts resolved by restore(): the file still holds them active.
      savedVersion = startupEvents.length > 0 ? -1 : engine.version;
    }
    /** Every write and delete of the state file, in order (a delete never races a save). */
    let io: Promise<void> = Promise.resolve();
    let saving = false;
    let saveTimer: NodeJS.Timeout | undefined;

    function save(): void {
      saveTimer = undefined;
      if (state === undefined || closed) return;
      if (saving) {
        saveSoon();
        return;
      }
      if (engine.version === savedVersion) return;
      saving = true;
      const version = engine.version;
      const st = state;
      // In pieces, between which the node goes on (engine.snapshotText); the close handler still saves in one go.
      io = io
        .then(() => st.saveStream(() => engine.snapshotText()))
        .then(
          () => {
            savedVersion = version;
          },
          (e: unknown) => node.warn(_('errors.save', { error: (e as Error).message })),
        )
        .finally(() => {
          saving = false;
          if (engine.version !== savedVersion) saveSoon();
        });
    }

    /** A save `snapshotInterval` after a change (later changes share it); none while nothing changes. */
    function saveSoon(): void {
      if (state === undefined || closed || saveTimer !== undefined || settings.snapshotInterval === 0 || engine.version === savedVersion) return;
      saveTimer = setTimeout(save, settings.snapshotInterval);
    }

    // ---- active list and status ---------------------------------------------------------------
    let listDirty = true;
    let statusDirty = true;
    let lastShown = -Infinity;
    /** The wait after the last list: LIST_MS, longer for a long list. */
    let listGap = LIST_MS;
    let showTimer: NodeJS.Timeout | undefined;

    function show(): void {
      showTimer = undefined;
      if (closed) return;
      lastShown = Date.now();
      if (listDirty && started) {
        listDirty = false;
        const active = engine.active(lastShown);
        listGap = Math.min(LIST_MAX_MS, Math.max(LIST_MS, active.length * LIST_MS_PER_ALERT));
        node.send([null, { topic: 'active', payload: active }, null]);
      }
      if (statusDirty) {
        statusDirty = false;
        status.set(statusOf(engine.stats(), RED._));
      }
    }

    /** The list and status go out now, or listGap after the last time (with whatever is latest then). */
    function showSoon(): void {
      if (closed || showTimer !== undefined) return;
      const wait = lastShown + listGap - Date.now();
      if (wait <= 0) show();
      else showTimer = setTimeout(show, wait);
    }

    // ---- the deadline timer -------------------------------------------------------------------
    const deadlines = new DeadlineTimer({
      onTick: (now) => {
        try {
          afterChange(engine.tick(now), (m) => node.send(m));
        } catch (e) {
          node.error(_('errors.tick', { error: (e as Error).message }));
        }
        arm();
      },
    });

    /** Arms the timer at the engine's next deadline (a scan of every live key: after a tick, an action, the start). */
    function arm(): void {
      if (closed || !started) return;
      deadlines.set(engine.nextDeadline(Date.now()));
    }

    /**
     * After a message: moves the timer earlier when a key the message evaluated is due sooner (lastIngestDue). Not
     * arm(): its scan of every live key after every message was most of this node's time with thousands of alerts
     * pending or firing.
     */
    function armSooner(due: number): void {
      if (closed || !started) return;
      deadlines.sooner(due);
    }

    // ---- output -------------------------------------------------------------------------------
    /** Sends events on output 1 (one message each) and schedules what follows a change. */
    function afterChange(events: readonly AlertEvent[], send: SendFn): void {
      if (events.length > 0) {
        send([events.map((e) => ({ topic: e.key, payload: e })), null, null]);
        if (events.some((e) => e.reason !== 'renotify')) listDirty = true;
      }
      statusDirty = true;
      showSoon();
      saveSoon();
    }

    // ---- start: after the flows run (events due at start would go to nodes not yet created) ----
    const starting = afterFlowsStart(RED, () => {
      if (closed) return;
      started = true;
      const events = startupEvents;
      startupEvents = [];
      listDirty = true;
      const now = Date.now();
      afterChange([...events, ...engine.tick(now)], (m) => node.send(m));
      arm();
    });
    show();

    // ---- input --------------------------------------------------------------------------------
    function rejects(msg: NodeMessage, list: Reject[], batch: boolean): NodeMessage {
      if (batch && Array.isArray(msg.payload)) {
        const items = msg.payload as unknown[];
        const seen = new Set<number>();
        const bad: unknown[] = [];
        for (const r of list) {
          if (r.index !== undefined && !seen.has(r.index)) {
            seen.add(r.index);
            bad.push(items[r.index]);
          }
        }
        msg.payload = bad;
      }
      msg.error = rejectError(TYPE, list[0]);
      msg.rejects = list;
      return msg;
    }

    onInput(node, (msg, send) => {
      if (closed) return;
      starting.run();
      const now = Date.now();
      const action = msg.action;
      if (action !== undefined && action !== null && action !== '') {
        const r = runControl(engine, action, msg.payload, now, _);
        msg.payload = r.reply;
        send([null, msg, null]);
        afterChange(r.events, send);
        arm();
        return;
      }
      const out = engine.ingest(msg.payload, now, metaOf(msg.device));
      let bad: NodeMessage | null = null;
      if (out.rejects.length > 0) bad = rejects(msg, out.rejects, out.batch);
      if (bad !== null) send([null, null, bad]);
      afterChange(out.events, send);
      armSooner(engine.lastIngestDue(now));
      if (bad !== null && settings.catchRejects) throw new RejectedError(TYPE, out.rejects[0]);
    });

    node.on('close', (removed, done) => {
      closed = true;
      deadlines.close();
      for (const t of [showTimer, saveTimer]) if (t !== undefined) clearTimeout(t);
      showTimer = saveTimer = undefined;
      starting.cancel();
      status.close();
      if (state === undefined) {
        if (removed) {
          try {
            stateFile().remove();
          } catch (e) {
            node.warn(_('errors.save', { error: (e as Error).message }));
          }
        }
        done();
        return;
      }
      // After any background save: the final save (or, for a node deleted from the flows, the delete).
      void io.then(() => {
        try {
          if (removed) state.remove();
          else if (engine.version !== savedVersion) {
            state.saveSync(engine.snapshot());
            savedVersion = engine.version;
          }
        } catch (e) {
          node.warn(_('errors.save', { error: (e as Error).message }));
        }
        done();
      });
    });
  }
  RED.nodes.registerType(TYPE, AlertNode);
};
