/**
 * The small part of Node-RED's API that Thingwire's wrappers use, typed here so
 * the nodes need no Node-RED import (and run on Node-RED 4 and 5 alike), plus
 * the helpers every wrapper shares: one input handler that guarantees exactly
 * one done() per message, reject routing, and a throttled status.
 */
import type { HooksLike } from './clone';
import type { Reject, RejectError } from './contract';

export interface NodeMessage {
  _msgid?: string;
  payload?: unknown;
  topic?: string;
  [key: string]: unknown;
}

export type SendFn = (msg: NodeMessage | null | Array<NodeMessage | NodeMessage[] | null>) => void;
export type DoneFn = (err?: Error) => void;

export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export interface Node {
  id: string;
  type: string;
  name?: string;
  credentials?: Record<string, string>;
  on(event: 'input', handler: (msg: NodeMessage, send: SendFn, done: DoneFn) => void): void;
  on(event: 'close', handler: (removed: boolean, done: () => void) => void): void;
  send: SendFn;
  status(status: NodeStatus | Record<string, never>): void;
  error(err: unknown, msg?: NodeMessage): void;
  warn(msg: unknown): void;
  log(msg: unknown): void;
  debug(msg: unknown): void;
}

export interface NodeAPI {
  nodes: {
    createNode(node: object, config: object): void;
    registerType(type: string, ctor: unknown, opts?: object): void;
    getNode(id: string): unknown;
  };
  settings: Record<string, unknown>;
  util: {
    getMessageProperty(msg: NodeMessage, expr: string): unknown;
    setMessageProperty(msg: NodeMessage, expr: string, value: unknown, createMissing?: boolean): boolean;
    cloneMessage<T>(msg: T): T;
  };
  _: (key: string, subs?: Record<string, unknown>) => string;
  /** Node-RED's message-routing hooks (Node-RED 2+); see ./clone.ts. */
  hooks?: HooksLike;
}

/**
 * Wraps an input handler so that every path calls done() exactly once, thrown
 * and rejected errors go to done(err) (where Catch nodes see them), and an
 * async handler can never leave an unhandled rejection behind.
 */
export function onInput(
  node: Node,
  handler: (msg: NodeMessage, send: SendFn) => void | Promise<void>,
  onError?: (err: Error, msg: NodeMessage) => void,
): void {
  node.on('input', (msg, send, done) => {
    let finished = false;
    const finish = (err?: unknown): void => {
      if (finished) return;
      finished = true;
      if (err === undefined) {
        done();
        return;
      }
      const e = err instanceof Error ? err : new Error(String(err));
      try {
        onError?.(e, msg);
      } finally {
        done(e);
      }
    };
    try {
      const r = handler(msg, send);
      if (r && typeof (r as Promise<void>).then === 'function') {
        (r as Promise<void>).then(() => finish(), finish);
      } else {
        finish();
      }
    } catch (e) {
      finish(e);
    }
  });
}

/** The `msg.error` a node sets when it routes a message to its reject output. */
export function rejectError(source: string, reject: Reject): RejectError {
  return { code: reject.code, message: reject.message, source };
}

/** An Error for done(err) that carries the reject code, so Catch flows can switch on it. */
export class RejectedError extends Error {
  readonly code: string;
  readonly source: string;
  constructor(source: string, reject: Reject) {
    super(`${reject.code}: ${reject.message}`);
    this.name = 'RejectedError';
    this.code = reject.code;
    this.source = source;
  }
}

/**
 * Node status that follows the truth without flooding the editor: the latest
 * status is pushed at most every `intervalMs`, and always pushed on flush().
 */
export class ThrottledStatus {
  private pending: NodeStatus | undefined;
  private last = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly node: Pick<Node, 'status'>,
    private readonly intervalMs = 500,
  ) {}

  set(status: NodeStatus): void {
    this.pending = status;
    if (this.timer === undefined) {
      this.flush();
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.pending) this.flush();
      }, this.intervalMs);
    }
  }

  flush(): void {
    const s = this.pending;
    this.pending = undefined;
    if (!s) return;
    const key = `${s.fill}|${s.shape}|${s.text}`;
    if (key === this.last) return;
    this.last = key;
    this.node.status(s);
  }

  /** Stops the timer (call from the node's close handler). */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }
}

/** Reads a boolean from editor config, which may hold true/false or "true"/"false". */
export function configBool(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null || v === '') return dflt;
  return v === true || v === 'true';
}

/** Reads a positive integer from editor config, or the default when missing or bad. */
export function configInt(v: unknown, dflt: number, min = 1): number {
  const n = typeof v === 'number' ? v : parseInt(String(v ?? ''), 10);
  return Number.isFinite(n) && n >= min ? Math.floor(n) : dflt;
}

/** Reads a comma-separated list from editor config: trimmed, empty entries dropped. */
export function configList(s: string | undefined): string[] {
  return (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/** Longest wait for the runtime's 'flows:started' before work that must follow it runs anyway. */
export const FLOWS_STARTED_GRACE_MS = 5000;

/** A piece of work waiting for the flows to start (see afterFlowsStart). */
export interface StartGate {
  /** Runs it now, if it has not run and was not cancelled (e.g. on the node's first input: the flows run then). */
  run(): void;
  /** Forgets it (the node is closing): its timer and listener are removed. */
  cancel(): void;
}

/**
 * Runs `fn` once the runtime says the flows are started (its `flows:started` event): messages a node sends while
 * it is being created (events due at start, rollups of a replay) would otherwise meet nodes not yet created and be
 * lost. A runtime without the event (a test helper) gets it after `graceMs`. Exactly once, unless cancelled.
 */
export function afterFlowsStart(RED: unknown, fn: () => void, graceMs = FLOWS_STARTED_GRACE_MS): StartGate {
  const events = (RED as { events?: { on(event: string, l: () => void): void; removeListener(event: string, l: () => void): void } } | null)?.events;
  let pending = true;
  let timer: NodeJS.Timeout | undefined;
  const cancel = (): void => {
    if (!pending) return;
    pending = false;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    events?.removeListener('flows:started', run);
  };
  function run(): void {
    if (!pending) return;
    cancel();
    fn();
  }
  timer = setTimeout(run, graceMs);
  events?.on('flows:started', run);
  return { run, cancel };
}

/**
 * A message of the node's catalogue filled in without i18next on each call: the first call asks `translate` (RED._)
 * for the text with a marker in place of each of `names`, and later calls put the values where the markers came out.
 * For messages made per reading or per event (the anomaly node's event texts: at 13,000 readings/s of the load
 * generator's saw-tooth signals i18next took 1.3 % of the runtime's main thread). The text is the one RED._ gives
 * (its language is the runtime's, fixed when it starts). A catalogue text that does not show every marker once as it
 * was given, or whose first filled-in text differs from what RED._ makes of the same values (a value it formats), is
 * asked of `translate` on every call.
 */
export function catalogueText(translate: (key: string, subs?: Record<string, unknown>) => string, key: string, names: readonly string[]): (values: Record<string, string>) => string {
  let parts: string[] | undefined;
  let order: number[] = [];
  let direct = false;
  const fill = (values: Record<string, string>): string => {
    let s = parts![0];
    for (let i = 0; i < order.length; i++) s += values[names[order[i]]] + parts![i + 1];
    return s;
  };
  return (values) => {
    if (direct) return translate(key, values);
    if (parts === undefined) {
      const text = translate(key, Object.fromEntries(names.map((n, i) => [n, `\uE000${i}\uE000`])));
      // text, index, text, index, ..., text
      const split = text.split(/\uE000(\d+)\uE000/);
      order = split.filter((_, i) => i % 2 === 1).map(Number);
      parts = split.filter((_, i) => i % 2 === 0);
      const real = translate(key, values);
      if (order.length !== names.length || new Set(order).size !== names.length || text.split('\uE000').length !== 2 * names.length + 1 || fill(values) !== real) {
        direct = true;
      }
      return real;
    }
    return fill(values);
  };
}
