/**
 * Batcher: gathers the messages of a busy stream into fewer, bigger ones. Each
 * message downstream of it costs Node-RED a hop and, at every fan-out, a deep
 * copy: at a few thousand readings a second that per-message cost, not the work
 * on each reading, is most of the pipeline's CPU. Batched, every downstream
 * node (all Thingwire nodes take arrays) pays it once per batch.
 *
 * A batch closes when it holds maxItems items, or maxWaitMs after its first
 * item arrived (so a quiet stream is delayed by at most maxWaitMs). What the
 * merged message keeps:
 * - payload: the items in arrival order (an array payload contributes its
 *   elements);
 * - mqttAck: every delivery token of the merged messages (../lib/ack.ts), so
 *   the one write that stores the batch confirms them all;
 * - device metadata: `device` when every item belongs to one device that has
 *   metadata, else `devices` (device id -> metadata), which thingwire-write
 *   reads per reading.
 * No Node-RED here: the timer is injected, so tests control time.
 */
import { ACK_PROPERTY } from '../lib/ack';
import { MAX_BATCH } from '../lib/contract';
import { isPlainObject } from '../lib/names';

export interface BatcherOptions {
  maxItems: number;
  maxWaitMs: number;
}

export const BATCHER_DEFAULTS: Readonly<BatcherOptions> = Object.freeze({ maxItems: 1000, maxWaitMs: 20 });

export interface BatchTimer {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemTimer: BatchTimer = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** The message parts the batcher reads. */
export interface BatchInput {
  payload?: unknown;
  device?: unknown;
  devices?: unknown;
  [key: string]: unknown;
}

export interface BatchOutput {
  payload: unknown[];
  device?: unknown;
  devices?: Record<string, unknown>;
  mqttAck?: string[];
  [key: string]: unknown;
}

export class Batcher {
  readonly options: Readonly<BatcherOptions>;
  private items: unknown[] = [];
  private tokens: string[] = [];
  private meta = new Map<string, unknown>();
  /** Whether a message merged into the waiting batch was shared with other readers (see add). */
  private shared = false;
  private timer: unknown;
  private closed = false;
  batches = 0;
  itemsOut = 0;

  constructor(
    /** Gets each batch, and whether any message merged into it was shared (see add). */
    private readonly emit: (out: BatchOutput, shared: boolean) => void,
    opts: Partial<BatcherOptions> = {},
    private readonly clock: BatchTimer = systemTimer,
  ) {
    const o = { ...BATCHER_DEFAULTS, ...opts };
    if (!(Number.isInteger(o.maxItems) && o.maxItems >= 1 && o.maxItems <= MAX_BATCH)) throw new RangeError(`maxItems must be a whole number from 1 to ${MAX_BATCH}, got ${o.maxItems}`);
    if (!(Number.isFinite(o.maxWaitMs) && o.maxWaitMs >= 0 && o.maxWaitMs <= 60_000)) throw new RangeError(`maxWaitMs must be from 0 to 60000, got ${o.maxWaitMs}`);
    this.options = Object.freeze(o);
  }

  /** Number of items waiting. */
  pending(): number {
    return this.items.length;
  }

  /**
   * Merges a message into the waiting batch. `shared`: other holders share the message's contents (the fan-out's
   * readers, ../lib/clone.ts); the batch that holds them is then shared too, and a batch of messages none of which
   * was shared is not.
   */
  add(msg: BatchInput, shared = false): void {
    if (this.closed) throw new Error('Batcher is closed');
    const p = msg.payload;
    const list = Array.isArray(p) ? p : [p];
    // A message bigger than a batch is never split (its token confirms it whole): it goes alone.
    if (this.items.length > 0 && this.items.length + list.length > this.options.maxItems) this.flush();
    if (shared) this.shared = true;
    for (const item of list) this.items.push(item);
    const t = msg[ACK_PROPERTY];
    if (typeof t === 'string') this.tokens.push(t);
    else if (Array.isArray(t)) for (const x of t) if (typeof x === 'string') this.tokens.push(x);
    const d = msg.device;
    if (isPlainObject(d) && typeof d.id === 'string') this.meta.set(d.id, d);
    if (isPlainObject(msg.devices)) for (const [id, m] of Object.entries(msg.devices)) this.meta.set(id, m);
    if (this.items.length >= this.options.maxItems || this.options.maxWaitMs === 0) this.flush();
    else if (this.timer === undefined) this.timer = this.clock.setTimeout(() => this.flushFromTimer(), this.options.maxWaitMs);
  }

  private flushFromTimer(): void {
    this.timer = undefined;
    this.flush();
  }

  /** Emits what is waiting (nothing when empty). */
  flush(): void {
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.items.length === 0) return;
    const out: BatchOutput = { payload: this.items };
    if (this.tokens.length > 0) out[ACK_PROPERTY] = this.tokens;
    if (this.meta.size > 0) {
      const only = this.meta.size === 1 ? [...this.meta][0] : undefined;
      if (only !== undefined && this.items.every((r) => isPlainObject(r) && r.device === only[0])) out.device = only[1];
      else out.devices = Object.fromEntries(this.meta);
    }
    const shared = this.shared;
    this.items = [];
    this.tokens = [];
    this.meta = new Map();
    this.shared = false;
    this.batches++;
    this.itemsOut += out.payload.length;
    this.emit(out, shared);
  }

  /** Emits what is waiting and stops the timer; add() is refused afterwards. */
  close(): void {
    this.flush();
    this.closed = true;
  }
}
