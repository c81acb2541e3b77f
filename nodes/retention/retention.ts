/**
 * thingwire-retention: tiers a thingwire-store's data by a declarative policy (hot in the store, warm
 * Parquet files, a cold archive, deleted past the last tier), on a schedule and on demand, and makes
 * the store's queries (query node, HTTP API, dashboard) read across the tiers. The work is the
 * executor's (../lib/retention/run.ts); this file wires it in.
 *
 * Input: msg.action (or msg.topic) 'run' (the default), 'restore' with msg.payload { start, end?,
 * rules? }, or 'status'. Output: msg.payload = the run or restore report, or the summary; errors go to
 * done(err) (Catch nodes) and the status. The manifest and warm files live in
 * <DATA_DIR>/retention/<store id>/ so they belong to the store, whatever happens to this node; one
 * retention node per store.
 */
import * as path from 'node:path';
import { onInput, ThrottledStatus, type Node, type NodeAPI, type NodeMessage } from '../lib/red';
import { DirectoryTarget } from '../lib/retention/archive';
import { Retention, type RestoreReport, type RunReport } from '../lib/retention/run';
import { safeFileName, thingwireDataDir } from '../lib/state';
import type { StoreNode } from '../store/config';
import { parseRestore, parseRetentionConfig, RetentionConfigError, type RetentionConfig, type RetentionSettings } from './config';
import { installFastClone } from '../lib/clone';

const TYPE = 'thingwire-retention';
const MAX_DELAY_MS = 2 ** 31 - 1;
/** Store config node id -> the retention node managing it (one per store). */
const MANAGERS = new Map<string, string>();

function hhmm(t: number): string {
  return new Date(t).toISOString().slice(11, 16);
}

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  const _ = (key: string, subs?: Record<string, unknown>): string => RED._(`${TYPE}.${key}`, subs);

  function RetentionNode(this: Node, config: RetentionConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const status = new ThrottledStatus(node, 500);

    let settings: RetentionSettings;
    try {
      settings = parseRetentionConfig(config);
    } catch (e) {
      const problems = e instanceof RetentionConfigError ? e.problems : [(e as Error).message];
      refuse(_('errors.config', { error: problems.join('; ') }));
      return;
    }
    const storeNode = config.store ? (RED.nodes.getNode(config.store) as StoreNode | null) : null;
    const service = storeNode?.service;
    if (!service || !storeNode) {
      refuse(_('errors.no-store'));
      return;
    }

    /** Misconfigured: say so once, answer every message with the error, start nothing. */
    function refuse(error: string): void {
      node.error(error);
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config-error` });
      onInput(node, () => {
        throw new Error(error);
      });
    }

    const other = MANAGERS.get(storeNode.id);
    if (other !== undefined && other !== node.id) {
      refuse(_('errors.second', { store: storeNode.name || storeNode.id, other }));
      return;
    }
    MANAGERS.set(storeNode.id, node.id);
    const root = path.join(thingwireDataDir(RED.settings), 'retention', safeFileName(storeNode.id));
    let retention: Retention | undefined;
    let detach: (() => void) | undefined;
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    let lastError: string | undefined;

    async function start(): Promise<Retention> {
      const r = await Retention.open({
        root,
        backend: service!.backend,
        policy: settings.policy,
        restoreDays: settings.restoreDays,
        maxPartitions: settings.maxPartitions,
        ...(settings.archiveDir ? { archive: new DirectoryTarget(settings.archiveDir) } : {}),
        log: (m) => node.log(m),
      });
      try {
        if (closed) throw new Error(_('errors.closed'));
        detach = service!.attachTiers(r);
      } catch (e) {
        await r.close();
        throw e;
      }
      return r;
    }
    const opening: Promise<Retention> = start().then(
      (r) => {
        retention = r;
        if (closed) return r;
        node.log(_('log.started', { root, archive: r.archive.description, rules: settings.policy.rules.map((x) => x.name).join(', ') }));
        show();
        schedule(settings.startDelayMs);
        return r;
      },
      (e: Error) => {
        lastError = e.message;
        if (!closed) {
          node.error(_('errors.open', { error: e.message }));
          node.status({ fill: 'red', shape: 'ring', text: _('status.failed', { error: e.message.slice(0, 60) }) });
        }
        throw e;
      },
    );
    opening.catch(() => undefined); // reported above; input handlers see it through `opening`

    function show(running = false): void {
      const r = retention;
      if (!r) return;
      const s = r.summary();
      const last = s.lastRun;
      const base = { warm: s.partitions.warm, cold: s.partitions.cold };
      if (running) status.set({ fill: 'blue', shape: 'dot', text: _('status.running', base) });
      else if (lastError) status.set({ fill: 'red', shape: 'dot', text: _('status.error', { ...base, error: lastError.slice(0, 60) }) });
      else if (last && last.errors.length) status.set({ fill: 'yellow', shape: 'dot', text: _('status.errors', { ...base, errors: last.errors.length, at: hhmm(last.finished) }) });
      else if (last) status.set({ fill: 'green', shape: 'dot', text: _('status.ran', { ...base, moved: last.moved.length, deleted: last.deleted.length, at: hhmm(last.finished) }) });
      else status.set({ fill: 'grey', shape: 'ring', text: _('status.idle', base) });
    }

    function schedule(delay: number): void {
      if (closed || settings.intervalMs === 0) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(onTimer, Math.min(MAX_DELAY_MS, delay));
    }

    function onTimer(): void {
      timer = undefined;
      runNow().then(
        (report) => node.send({ topic: 'run', payload: report }),
        (e: Error) => node.error(_('errors.run', { error: e.message })),
      );
    }

    async function runNow(): Promise<RunReport> {
      const r = await opening;
      if (timer) clearTimeout(timer);
      timer = undefined;
      status.set({ fill: 'blue', shape: 'dot', text: _('status.running', { warm: r.summary().partitions.warm, cold: r.summary().partitions.cold }) });
      try {
        const report = await r.run();
        lastError = undefined;
        for (const e of report.errors) node.warn(_('errors.partition', { rule: e.rule, day: e.day, step: e.kind, error: e.error }));
        return report;
      } catch (e) {
        lastError = (e as Error).message;
        throw e;
      } finally {
        show();
        schedule(settings.intervalMs);
      }
    }

    async function restoreNow(payload: unknown): Promise<RestoreReport> {
      const r = await opening;
      const range = parseRestore(payload, Date.now());
      const report = await r.restore(range);
      show();
      if (report.errors.length) node.warn(_('errors.restore', { count: report.errors.length, error: report.errors[0].error }));
      return report;
    }

    onInput(node, async (msg: NodeMessage, send) => {
      const action = String(msg.action ?? (msg.topic === 'restore' || msg.topic === 'status' ? msg.topic : 'run'));
      if (action === 'run') {
        const report = await runNow();
        send({ ...msg, topic: 'run', payload: report });
        if (report.errors.length) throw new Error(_('errors.run-partial', { count: report.errors.length, error: report.errors[0].error }));
      } else if (action === 'restore') {
        const report = await restoreNow(msg.payload);
        send({ ...msg, topic: 'restore', payload: report });
        if (report.errors.length) throw new Error(_('errors.restore', { count: report.errors.length, error: report.errors[0].error }));
      } else if (action === 'status') {
        const r = await opening;
        send({ ...msg, topic: 'status', payload: { ...r.summary(), root, archive: r.archive.description, policy: settings.policy } });
      } else {
        throw new Error(_('errors.action', { action }));
      }
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closed = true;
      if (MANAGERS.get(storeNode.id) === node.id) MANAGERS.delete(storeNode.id);
      if (timer) clearTimeout(timer);
      timer = undefined;
      detach?.();
      status.close();
      // A run in progress stops after its current partition (each step is resumable). Still opening:
      // wait for it, so the manifest is released before a redeployed node opens it (start() closes
      // it when it sees `closed`; one that opened just before is closed here).
      const closing = retention ? retention.close() : opening.then((r) => r.close(), () => undefined);
      closing.then(
        () => done(),
        (e: Error) => {
          node.error(_('errors.close', { error: e.message }));
          done();
        },
      );
    });
  }

  RED.nodes.registerType(TYPE, RetentionNode);
};
