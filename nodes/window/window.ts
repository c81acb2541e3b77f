/**
 * thingwire-window: event-time windowed rollups of Readings (./engine), per device and metric,
 * cascaded across levels (1m > 1h > 1d ...). Output 1: rollups (and the answers to control
 * messages); output 2: rejects (msg.error, msg.rejects); output 3: late readings (late policy
 * 'output'). A timer advances the wall clock (idle timeouts, eviction); the state is kept in a
 * StateFile and a journal (./persist, ./journal) across redeploys, restarts and crashes. This file only
 * wires the engine in.
 */
import { ACK_PROPERTY } from '../lib/ack';
import type { Reject } from '../lib/contract';
import { preview } from '../lib/names';
import { afterFlowsStart, onInput, rejectError, RejectedError, ThrottledStatus, type Node, type NodeAPI, type NodeMessage, type SendFn } from '../lib/red';
import { thingwireDataDir } from '../lib/state';
import { MAX_BATCH, parseWindowConfig, type NodeSettings, type WindowConfig } from './config';
import { WindowEngine, type WindowEngineOptions, type WindowOutput, type WindowRollup } from './engine';
import { WindowPersistence, type RestoreResult } from './persist';
import { statusOf } from './status';
import { declareInputUse, installFastClone } from '../lib/clone';
import { runSliced } from '../lib/slice';

const TYPE = 'thingwire-window';
/**
 * The status line is recomputed at most once a second, and no more often than 100 times what the
 * last walk of the engine's figures took (it walks every series: about 80 ms at 100,000 series, in
 * slices), so that it never takes more than 1 % of the event loop.
 */
const STATUS_MS = 1000;
const STATUS_MAX_MS = 60_000;
type Out = NodeMessage | NodeMessage[] | null;

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  function WindowNode(this: Node, config: WindowConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    // Reads its input only; what it sends may hold the readings' objects: it shares a fan-out's message with the other readers,
    // and what it sends counts as shared (../lib/clone).
    declareInputUse(node, 'shares');

    let settings: NodeSettings;
    let engineOpts: WindowEngineOptions;
    let engine: WindowEngine;
    try {
      const parsed = parseWindowConfig(config);
      settings = parsed.node;
      engineOpts = parsed.engine;
      engine = new WindowEngine(engineOpts);
    } catch (e) {
      // Misconfigured: say so once, answer every message with the error, start nothing.
      const error = RED._(`${TYPE}.errors.config`, { error: (e as Error).message });
      node.error(error);
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config-error` });
      onInput(node, () => {
        throw new Error(error);
      });
      node.on('close', (removed, done) => {
        if (removed) removeState();
        done();
      });
      return;
    }

    const status = new ThrottledStatus(node, 250);
    let closed = false;
    /** The engine changed since the last save (or restore). */
    let changed = false;
    let statusTimer: NodeJS.Timeout | undefined;
    let statusDue = false;
    let statusWalking = false;

    function removeState(): void {
      try {
        const p = new WindowPersistence(thingwireDataDir(RED.settings), node.id);
        p.state.remove();
        p.journal.removeAll();
      } catch (e) {
        node.warn(RED._(`${TYPE}.errors.remove`, { error: (e as Error).message }));
      }
    }

    // ---- state ------------------------------------------------------------------------------
    let persistence: WindowPersistence | undefined;
    /** Rollups the journal's replay closed: sent once the flows run. */
    let replayed: WindowRollup[] = [];
    if (settings.persist) {
      persistence = new WindowPersistence(thingwireDataDir(RED.settings), node.id);
      let marks: Pick<RestoreResult, 'marks' | 'seq'> = { marks: new Map(), seq: 0 };
      try {
        const r = persistence.restore(engine);
        marks = r;
        if (r.problem !== undefined) node.warn(RED._(`${TYPE}.warn.corrupt`, { problem: r.problem }));
        if (r.mismatch !== undefined) {
          engine = new WindowEngine(engineOpts);
          node.warn(
            RED._(`${TYPE}.warn.mismatch`, {
              error: r.mismatch.error,
              file: r.mismatch.movedTo ?? persistence.file,
            }),
          );
        }
        if (r.restored) {
          const s = engine.stats();
          node.log(RED._(`${TYPE}.log.restored`, { keys: s.keys, open: s.openWindows, file: persistence.file, savedAt: new Date(r.savedAt!).toISOString() }));
        }
      } catch (e) {
        engine = new WindowEngine(engineOpts);
        node.warn(RED._(`${TYPE}.warn.restore`, { error: (e as Error).message }));
      }
      // What the engine took after the snapshot (a crash, or a kill, lost it from memory): taken again.
      try {
        const r = persistence.replay(engine, marks);
        if (r.bad > 0) node.warn(RED._(`${TYPE}.warn.journal-bad`, { bad: r.bad, file: persistence.file }));
        if (r.records > 0) {
          changed = true;
          replayed = r.rollups;
          node.log(RED._(`${TYPE}.log.replayed`, { records: r.records, files: r.files, bytes: r.bytes, rollups: r.rollups.length }));
        }
      } catch (e) {
        node.warn(RED._(`${TYPE}.warn.replay`, { error: (e as Error).message }));
      }
    }
    let journalFailing = false;
    /** Journals an ingest (persist on); a failure is told once, and the engine takes the readings anyway. */
    function record(now: number, payload: unknown, tick = false): void {
      if (persistence === undefined || (!tick && (payload === null || typeof payload !== 'object'))) return;
      try {
        if (tick) persistence.recordTick(now);
        else persistence.record(now, payload);
        if (journalFailing) {
          journalFailing = false;
          node.log(RED._(`${TYPE}.log.journal-ok`));
        }
      } catch (e) {
        if (!journalFailing) node.warn(RED._(`${TYPE}.warn.journal`, { error: (e as Error).message }));
        journalFailing = true;
      }
    }

    function save(): void {
      if (closed || !changed || persistence === undefined || persistence.busy) return;
      changed = false;
      // Readings taken while the save runs set `changed` again, so the next save has them.
      persistence.saveInBackground(engine)?.catch((e: Error) => {
        changed = true;
        node.warn(RED._(`${TYPE}.errors.save`, { error: e.message }));
      });
    }

    // ---- status -----------------------------------------------------------------------------
    function showStatus(): void {
      if (closed) return;
      if (statusTimer !== undefined || statusWalking) {
        statusDue = true;
        return;
      }
      // Walked a few hundred series a slice (engine.statsWalk): in one go it held the event loop ~40 ms at 8,000 series.
      statusWalking = true;
      runSliced(engine.statsWalk()).then(
        ({ value: stats, busyMs }) => {
          statusWalking = false;
          if (closed) return;
          status.set(statusOf(stats, Date.now(), settings.timeZone, RED._));
          statusTimer = setTimeout(
            () => {
              statusTimer = undefined;
              if (statusDue) {
                statusDue = false;
                showStatus();
              }
            },
            Math.min(STATUS_MAX_MS, Math.max(STATUS_MS, 100 * busyMs)),
          );
        },
        (e: unknown) => {
          statusWalking = false;
          node.warn(RED._(`${TYPE}.errors.status`, { error: (e as Error).message }));
        },
      );
    }

    // ---- output -----------------------------------------------------------------------------
    function rollupsOut(rollups: readonly WindowRollup[], base?: NodeMessage): Out {
      if (rollups.length === 0) return null;
      if (settings.output === 'batch') {
        if (base === undefined) return { payload: rollups };
        base.payload = rollups;
        // Rollups are not the reading: storing them must not confirm the reading's MQTT delivery.
        delete base[ACK_PROPERTY];
        return base;
      }
      const skeleton: NodeMessage | undefined = base === undefined ? undefined : RED.util.cloneMessage({ ...base, payload: undefined, _msgid: undefined });
      if (skeleton !== undefined) delete skeleton[ACK_PROPERTY];
      return rollups.map((r) => {
        const m: NodeMessage = skeleton === undefined ? {} : RED.util.cloneMessage(skeleton);
        delete m._msgid;
        m.topic = `${r.device}/${r.metric}/${r.level}`;
        m.payload = r;
        return m;
      });
    }

    /** Sends what one ingest produced; `msg` (the input) carries the rejects. Returns the first reject, if any. */
    function deliver(out: WindowOutput, send: SendFn, msg: NodeMessage | null): Reject | undefined {
      const o1 = rollupsOut(out.rollups);
      let o2: NodeMessage | null = null;
      if (out.rejects.length > 0 && msg !== null) {
        const rejects = out.rejects as Reject[];
        const input = msg.payload;
        if (Array.isArray(input)) msg.payload = rejects.map((r) => (r.index === undefined ? undefined : input[r.index]));
        msg.error = rejectError(TYPE, rejects[0]);
        msg.rejects = rejects;
        o2 = msg;
      }
      const o3: NodeMessage | null = out.late.length > 0 ? { payload: out.late } : null;
      if (o1 !== null || o2 !== null || o3 !== null) send([o1, o2, o3]);
      return o2 === null ? undefined : out.rejects[0];
    }

    function rejectWhole(msg: NodeMessage, send: SendFn, reject: Reject): void {
      msg.error = rejectError(TYPE, reject);
      msg.rejects = [reject];
      send([null, msg, null]);
      if (settings.catchRejects) throw new RejectedError(TYPE, reject);
    }

    // ---- control ----------------------------------------------------------------------------
    function deviceOf(msg: NodeMessage): string | undefined {
      const d = msg.device;
      if (d === undefined || d === null || d === '') return undefined;
      if (typeof d === 'string') return d;
      if (typeof d === 'object' && typeof (d as { id?: unknown }).id === 'string') return (d as { id: string }).id;
      throw new Error(RED._(`${TYPE}.errors.device`, { device: preview(d) }));
    }

    function control(msg: NodeMessage, send: SendFn, action: unknown): void | Promise<void> {
      switch (action) {
        case 'flush': {
          const out = engine.flush();
          changed = true;
          const o1 = rollupsOut(out.rollups, msg);
          if (o1 !== null) send([o1, null, null]);
          showStatus();
          return;
        }
        case 'latest':
          msg.payload = engine.latest(deviceOf(msg));
          send([msg, null, null]);
          return;
        case 'stats':
          msg.payload = engine.stats();
          send([msg, null, null]);
          return;
        case 'reset': {
          engine = new WindowEngine(engineOpts);
          changed = false;
          showStatus();
          if (persistence !== undefined) return persistence.remove();
          return;
        }
        default:
          throw new Error(RED._(`${TYPE}.errors.action`, { action: preview(action) }));
      }
    }

    // ---- input ------------------------------------------------------------------------------
    onInput(node, (msg, send) => {
      if (closed) return;
      if (msg.action !== undefined && msg.action !== null) return control(msg, send, msg.action);
      const payload = msg.payload;
      if (Array.isArray(payload) && payload.length > MAX_BATCH) {
        rejectWhole(msg, send, {
          code: 'payload_too_large',
          message: RED._(`${TYPE}.errors.batch`, { count: payload.length, max: MAX_BATCH }),
        });
        return;
      }
      const now = Date.now();
      record(now, payload);
      const out = engine.ingest(payload, now);
      changed = true;
      const first = deliver(out, send, msg);
      showStatus();
      if (first !== undefined && settings.catchRejects) throw new RejectedError(TYPE, first);
    });

    // ---- timers -----------------------------------------------------------------------------
    const tickTimer = setInterval(() => {
      if (closed) return;
      try {
        const now = Date.now();
        const out = engine.advance(now);
        if (out.rollups.length === 0) return;
        record(now, null, true);
        changed = true;
        deliver(out, (m) => node.send(m), null);
        showStatus();
      } catch (e) {
        node.error(RED._(`${TYPE}.errors.tick`, { error: (e as Error).message }));
      }
    }, settings.tickMs);
    const saveTimer = persistence === undefined ? undefined : setInterval(save, settings.snapshotMs);

    // ---- start: the replay's rollups once the flows run (sent earlier they would meet nodes not yet created)
    const starting =
      replayed.length === 0
        ? undefined
        : afterFlowsStart(RED, () => {
            const rollups = replayed;
            replayed = [];
            if (!closed) deliver({ rollups, late: [], rejects: [] }, (m) => node.send(m), null);
          });

    showStatus();

    node.on('close', (removed, done) => {
      closed = true;
      clearInterval(tickTimer);
      starting?.cancel();
      if (saveTimer !== undefined) clearInterval(saveTimer);
      if (statusTimer !== undefined) clearTimeout(statusTimer);
      statusTimer = undefined;
      status.close();
      if (persistence === undefined) {
        if (removed) removeState();
        done();
        return;
      }
      // After any background save: the final save (or, for a node deleted from the flows, the delete).
      persistence.close(removed ? null : () => (changed ? engine.snapshot() : undefined)).then(
        () => done(),
        (e: Error) => {
          node.error(RED._(`${TYPE}.errors.close`, { error: e.message }));
          done();
        },
      );
    });
  }
  RED.nodes.registerType(TYPE, WindowNode);
};
