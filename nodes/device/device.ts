/**
 * thingwire-device: the device registry's node (issue 4), in one of three modes.
 * - auth: checks the device a message comes from (its token, or only that it is registered and
 *   enabled) and enriches the message with msg.device; rejects leave on output 2 with msg.error.
 *   With unknown 'pass', data of unregistered devices goes on output 1 without msg.device.
 * - liveness: online/offline events judged from data arrival, per device timeout, one timer.
 * - manage: CRUD of devices and streams from msg.payload = { op, ... }, with HTTP status codes.
 * The logic lives in ./auth, ./monitor and ./manage (no Node-RED); this file only wires it in.
 */
import { ACK_PROPERTY, settleAck } from '../lib/ack';
import type { Reject } from '../lib/contract';
import { ThingwireError } from '../lib/errors';
import { DEFAULT_MAX_BYTES, parsePayload } from '../lib/payload';
import { afterFlowsStart, onInput, rejectError, RejectedError, type Node, type NodeAPI, type NodeMessage, type SendFn } from '../lib/red';
import { LivenessTracker } from '../lib/registry/liveness';
import { DEFAULT_LIVENESS_TIMEOUT } from '../lib/registry/registry';
import type { DeviceRegistry, LivenessEvent } from '../lib/registry/types';
import { StateFile, thingwireDataDir } from '../lib/state';
import { authenticate, deviceInfo, type DeviceInfo } from './auth';
import { deviceSettings, type DeviceConfig, type DeviceSettings, type RegistryNodeLike } from './config';
import { findProvisioningKey, findToken, stripCredentials } from './credentials';
import { deviceIdsOf } from './ids';
import { runManage } from './manage';
import { isMonitorState, LivenessMonitor, type MonitorChange, type MonitorState } from './monitor';
import { LazyStatus } from '../lib/lazy-status';
import { declareInputUse, installFastClone } from '../lib/clone';

const TYPE = 'thingwire-device';
/** A save after liveness events or device changes waits this long (more changes share it); after data only, longer. */
const SAVE_AFTER_CHANGE_MS = 1000;
const SAVE_AFTER_DATA_MS = 10_000;

const fmt = new Intl.NumberFormat('en-US');

function positive(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
}

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  function DeviceNode(this: Node, config: DeviceConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const settings = deviceSettings(config);

    const registryNode = config.registry ? (RED.nodes.getNode(config.registry) as RegistryNodeLike | null) : null;
    let configError: string | undefined;
    if (!registryNode) configError = RED._(`${TYPE}.errors.no-registry`);
    else if (!registryNode.registry) configError = RED._(`${TYPE}.errors.registry`, { error: registryNode.registryError ?? '' });
    if (configError !== undefined || !registryNode?.registry) {
      // Misconfigured: say so once, answer every message with the error, start nothing.
      const error = RED._(`${TYPE}.errors.config`, { error: configError ?? '' });
      node.error(error);
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config-error` });
      onInput(node, () => {
        throw new Error(error);
      });
      node.on('close', (removed, done) => {
        if (removed && settings.mode === 'liveness') removeState(node);
        done();
      });
      return;
    }
    const registry = registryNode.registry;
    if (settings.mode === 'auth') authMode(node, registry, settings);
    else if (settings.mode === 'manage') manageMode(node, registry, settings);
    else livenessMode(node, registry, registryNode, settings);
  }

  function removeState(node: Node): void {
    try {
      new StateFile(thingwireDataDir(RED.settings), TYPE, node.id).remove();
    } catch (e) {
      node.warn(RED._(`${TYPE}.errors.remove`, { error: (e as Error).message }));
    }
  }

  // ---- auth ------------------------------------------------------------------------------------

  function authMode(node: Node, registry: DeviceRegistry, settings: DeviceSettings): void {
    let ok = 0;
    let passed = 0;
    let rejected = 0;
    const statusKey = settings.unknown === 'pass' ? 'auth-pass' : 'auth';
    const status = new LazyStatus(node, () => ({
      fill: rejected > 0 ? 'yellow' : 'green',
      shape: 'dot',
      text: RED._(`${TYPE}.status.${statusKey}`, { ok: fmt.format(ok), passed: fmt.format(passed), rejected: fmt.format(rejected) }),
    }));
    const showCounts = (): void => status.mark();
    node.status({ fill: 'green', shape: 'ring', text: `${TYPE}.status.ready` });

    function rejectAll(msg: NodeMessage, send: SendFn, reject: Reject): void {
      rejected++;
      // Refused for good: its MQTT delivery is settled (see ../lib/ack).
      settleAck(msg, 'rejected');
      msg.error = rejectError(TYPE, reject);
      msg.rejects = [reject];
      send([null, msg]);
      showCounts();
      if (settings.catchRejects) throw new RejectedError(TYPE, reject);
    }

    onInput(node, (msg, send) => {
      const found = findToken(msg);
      const provisioningKey = findProvisioningKey(msg);
      // Never echoed: the credentials leave the message before it goes anywhere.
      stripCredentials(msg);

      let payload = msg.payload;
      if (settings.idFrom === 'payload' && (typeof payload === 'string' || Buffer.isBuffer(payload))) {
        try {
          payload = parsePayload(payload, DEFAULT_MAX_BYTES);
        } catch (e) {
          if (!(e instanceof ThingwireError)) throw e;
          rejectAll(msg, send, e.toReject());
          return;
        }
        msg.payload = payload;
      }

      const r = authenticate(
        registry,
        { payload, topic: msg.topic, deviceId: msg.deviceId, token: found?.token, provisioningKey, now: Date.now() },
        { requireToken: settings.requireToken, idFrom: settings.idFrom, topicPrefix: settings.topicPrefix, provision: settings.provision, unknown: settings.unknown },
      );
      for (const [id, ts] of r.seen) registry.seen(id, ts);
      ok += r.accepted.length - r.passed.length;
      passed += r.passed.length;
      rejected += r.rejects.length;

      const items: unknown[] = r.batch ? (payload as unknown[]) : [payload];
      let good: NodeMessage | null = null;
      if (r.accepted.length > 0) {
        good = r.rejects.length > 0 ? RED.util.cloneMessage(msg) : msg;
        if (r.batch && r.rejects.length > 0) good.payload = r.accepted.map((i) => items[i]);
        if (r.devices.length === 1 && r.passed.length === 0) {
          good.device = deviceInfo(r.devices[0]);
          delete good.devices;
        } else if (r.devices.length === 0) {
          // Only unregistered devices (unknown 'pass'): no metadata, and none left over from upstream.
          delete good.device;
          delete good.devices;
        } else {
          // Several devices, or a registered one mixed with unregistered ones: by id, so that no reading
          // is taken for another device's (msg.device applies to the whole payload downstream).
          const all: Record<string, DeviceInfo> = {};
          for (const d of r.devices) all[d.id] = deviceInfo(d);
          good.devices = all;
          delete good.device;
        }
        if (r.provisioned.length > 0) good.provisioned = r.provisioned.map((p) => ({ device: deviceInfo(p.device), token: p.token }));
      }
      let bad: NodeMessage | null = null;
      if (r.rejects.length > 0) {
        bad = msg;
        // The MQTT delivery goes on with the accepted part, or is settled here when nothing is accepted.
        if (good === null) settleAck(bad, 'rejected');
        else delete bad[ACK_PROPERTY];
        if (r.batch && !r.whole) bad.payload = r.rejects.map((x) => items[x.index!]);
        bad.error = rejectError(TYPE, r.rejects[0]);
        bad.rejects = r.rejects;
        delete bad.device;
        delete bad.devices;
      }
      send([good, bad]);
      showCounts();
      if (bad !== null && settings.catchRejects) throw new RejectedError(TYPE, r.rejects[0]);
    });

    node.on('close', (_removed, done) => {
      status.close();
      done();
    });
  }

  // ---- manage ----------------------------------------------------------------------------------

  function manageMode(node: Node, registry: DeviceRegistry, settings: DeviceSettings): void {
    let ok = 0;
    let failed = 0;
    const status = new LazyStatus(node, () => ({ fill: failed > 0 ? 'yellow' : 'green', shape: 'dot', text: RED._(`${TYPE}.status.manage`, { ok: fmt.format(ok), failed: fmt.format(failed) }) }));
    const showCounts = (): void => status.mark();
    node.status({ fill: 'green', shape: 'ring', text: `${TYPE}.status.ready` });

    onInput(node, async (msg, send) => {
      let r;
      try {
        r = runManage(registry, msg.payload);
        // A token leaves only once the registry file holds its hash: a crash right after the answer must not
        // lose a device whose token the client already has.
        const op = (msg.payload as { op?: unknown } | null)?.op;
        if (r.ok && (op === 'create' || op === 'rotate')) await registry.flush();
      } catch (e) {
        // Not the request's fault (the registry failed): a 500 for the HTTP flow, and the error to Catch nodes.
        failed++;
        msg.statusCode = 500;
        msg.error = { code: 'internal', message: (e as Error).message, source: TYPE };
        send([null, msg]);
        showCounts();
        throw e;
      }
      msg.statusCode = r.statusCode;
      if (r.ok) {
        ok++;
        msg.payload = r.payload;
        delete msg.error;
        send([msg, null]);
        showCounts();
        return;
      }
      failed++;
      msg.error = { ...r.error, source: TYPE };
      send([null, msg]);
      showCounts();
      if (settings.catchRejects) {
        const err = new Error(`${r.error.code}: ${r.error.message}`) as Error & { code: string; source: string };
        err.name = 'ManageError';
        err.code = r.error.code;
        err.source = TYPE;
        throw err;
      }
    });

    node.on('close', (_removed, done) => {
      status.close();
      done();
    });
  }

  // ---- liveness --------------------------------------------------------------------------------

  function livenessMode(node: Node, registry: DeviceRegistry, registryNode: RegistryNodeLike, settings: DeviceSettings): void {
    // Reads its input only, sends on the message it got and events of its own: it shares a fan-out's message with the
    // other readers (../lib/clone).
    declareInputUse(node, 'reads');
    const status = new LazyStatus(node, () => {
      const c = monitor.counts();
      return {
        fill: c.offline > 0 ? 'yellow' : 'green',
        shape: 'dot',
        text: RED._(`${TYPE}.status.${c.unknown > 0 ? 'liveness-unknown' : 'liveness'}`, { online: fmt.format(c.online), offline: fmt.format(c.offline), unknown: fmt.format(c.unknown) }),
      };
    }, 250);
    // What a device's livenessTimeout 0 means: the registry's own default (the first opener's setting).
    const defaultTimeout = positive((registry as { defaultLivenessTimeout?: unknown }).defaultLivenessTimeout) ?? positive(registryNode.defaultLivenessTimeout) ?? DEFAULT_LIVENESS_TIMEOUT;
    const state = settings.persist ? new StateFile<MonitorState>(thingwireDataDir(RED.settings), TYPE, node.id) : undefined;
    let closed = false;
    let dirty = false;
    let saveTimer: NodeJS.Timeout | undefined;
    let saveAt = Infinity;

    function eventMessage(ev: LivenessEvent): NodeMessage {
      const m: NodeMessage = { topic: `${settings.topicPrefix}/${ev.device}/liveness`, payload: ev };
      const d = registry.getDevice(ev.device);
      if (d !== undefined) m.device = deviceInfo(d);
      return m;
    }

    function showStatus(): void {
      if (!closed) status.mark();
    }

    function save(): void {
      saveTimer = undefined;
      saveAt = Infinity;
      if (closed || !dirty || state === undefined) return;
      dirty = false;
      state.save(monitor.snapshot()).catch((e: Error) => {
        dirty = true;
        node.warn(RED._(`${TYPE}.errors.save`, { error: e.message }));
      });
    }

    function changed(what: MonitorChange): void {
      dirty = true;
      // Data alone changes no count.
      if (what !== 'data') showStatus();
      if (state === undefined || closed) return;
      const at = Date.now() + (what === 'data' ? SAVE_AFTER_DATA_MS : SAVE_AFTER_CHANGE_MS);
      if (saveTimer !== undefined && saveAt <= at) return;
      if (saveTimer !== undefined) clearTimeout(saveTimer);
      saveAt = at;
      saveTimer = setTimeout(save, at - Date.now());
    }

    const makeMonitor = (): LivenessMonitor =>
      new LivenessMonitor({
        registry,
        tracker: new LivenessTracker({ defaultTimeout }),
        emit: (events) => {
          if (!closed) node.send([null, events.map(eventMessage)]);
        },
        changed,
        onError: (e) => node.error(RED._(`${TYPE}.errors.liveness`, { error: e.message })),
      });

    let monitor = makeMonitor();
    let saved: MonitorState | undefined;
    if (state !== undefined) {
      const loaded = state.load(isMonitorState);
      if (loaded.problem !== undefined) node.warn(RED._(`${TYPE}.warn.corrupt`, { problem: loaded.problem }));
      saved = loaded.value;
    }
    try {
      monitor.start(saved);
      if (saved !== undefined) node.log(RED._(`${TYPE}.log.restored`, { devices: monitor.size, file: state!.file }));
    } catch (e) {
      if (saved === undefined) throw e;
      // A snapshot the tracker refuses: start afresh, every device unknown until its timeout.
      node.warn(RED._(`${TYPE}.warn.restore`, { error: (e as Error).message }));
      monitor.close();
      monitor = makeMonitor();
      monitor.start();
    }
    showStatus();

    // Events wait for the flows to run (those due at start, e.g. after a restart, would otherwise go
    // to nodes not yet created); a runtime that never says so gets them after FLOWS_STARTED_GRACE_MS.
    const starting = afterFlowsStart(RED, () => {
      if (!closed) monitor.run();
    });

    onInput(node, (msg, send) => {
      if (closed) return;
      monitor.run();
      const events: NodeMessage[] = [];
      for (const id of deviceIdsOf(msg, settings.idFrom, settings.topicPrefix)) {
        const ev = monitor.seen(id);
        if (ev !== null) events.push(eventMessage(ev));
      }
      send([msg, events.length > 0 ? events : null]);
    });

    node.on('close', (removed, done) => {
      closed = true;
      monitor.close();
      starting.cancel();
      if (saveTimer !== undefined) clearTimeout(saveTimer);
      saveTimer = undefined;
      status.close();
      if (state === undefined) {
        if (removed) removeState(node);
        done();
        return;
      }
      // After any background save: the final save (or, for a node deleted from the flows, the delete).
      state
        .idle()
        .then(() => {
          if (removed) state.remove();
          else state.saveSync(monitor.snapshot());
        })
        .catch((e: Error) => node.error(RED._(`${TYPE}.errors.close`, { error: e.message })))
        .finally(() => done());
    });
  }

  RED.nodes.registerType(TYPE, DeviceNode);
};
