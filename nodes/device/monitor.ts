/**
 * The thingwire-device node's liveness mode without Node-RED: a LivenessTracker
 * (../lib/registry/liveness) kept in step with the registry (every registered, enabled device is
 * tracked with its own timeout; registry changes track and untrack), fed with data arrivals, and
 * driven by ONE timer armed at the tracker's next deadline (never a timer per device, never a
 * periodic scan). Online/offline counts are kept incrementally. The state (the tracker's snapshot
 * plus the timeouts it was tracked with) can be saved and restored, so that a restart neither
 * repeats nor loses an event.
 */
import type { LivenessSnapshot, LivenessTracker } from '../lib/registry/liveness';
import type { DeviceRecord, DeviceRegistry, LivenessEvent, RegistryChange } from '../lib/registry/types';

/** What the liveness mode saves: the tracker's snapshot (every tracked device's state, lastSeen, timeout and deadline). */
export interface MonitorState {
  v: 1;
  savedAt: number;
  tracker: LivenessSnapshot;
}

export function isMonitorState(v: unknown): v is MonitorState {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const s = v as Partial<MonitorState>;
  return s.v === 1 && typeof s.savedAt === 'number' && s.tracker !== null && typeof s.tracker === 'object' && s.tracker.v === 1 && Array.isArray(s.tracker.devices);
}

/** The timer functions the monitor uses (tests pass a controllable clock). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export type MonitorChange = 'events' | 'devices' | 'data';

export interface LivenessCounts {
  online: number;
  offline: number;
  /** Tracked but not judged yet (registered, silent, its timeout not over). */
  unknown: number;
}

export interface MonitorOptions {
  registry: DeviceRegistry;
  /** A fresh tracker; its defaultTimeout stands for a device's livenessTimeout 0. */
  tracker: LivenessTracker;
  /** Called with the events of one step (data arrival, deadline, registry change), in order. */
  emit: (events: LivenessEvent[]) => void;
  /** Called after the tracked state changed (for saving and the status): events left, devices were (un)tracked, or only data arrived. */
  changed?: (what: MonitorChange) => void;
  /** Errors from the timer or a registry listener (they cannot be thrown anywhere useful). */
  onError?: (e: Error) => void;
  now?: () => number;
  timers?: Timers;
}

/** setTimeout's largest delay; later deadlines are reached in steps. */
const MAX_DELAY = 2 ** 31 - 1;
/** Devices read from the registry per page when tracking all of them. */
const PAGE = 1000;

type TrackedState = 'online' | 'offline' | 'unknown';

export class LivenessMonitor {
  private readonly registry: DeviceRegistry;
  private readonly tracker: LivenessTracker;
  private readonly now: () => number;
  private readonly timers: Timers;
  /** Tracked devices: their timeout setting and their state as the tracker last reported it. */
  private readonly tracked = new Map<string, { timeout: number; state: TrackedState }>();
  private readonly n: LivenessCounts = { online: 0, offline: 0, unknown: 0 };
  private timer: unknown;
  private armedFor = Infinity;
  private unsubscribe: (() => void) | undefined;
  private closed = false;
  private running = false;

  constructor(private readonly opts: MonitorOptions) {
    this.registry = opts.registry;
    this.tracker = opts.tracker;
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? REAL_TIMERS;
  }

  /**
   * Restores `saved` (when given) and tracks every registered, enabled device with its timeout:
   * restored devices keep their state (a changed timeout applies), devices new to the tracker
   * start unknown with the registry's lastSeen (offline once their timeout passes without data:
   * 'never-seen' when they never sent anything), and restored devices since deleted or disabled
   * are dropped. Events whose deadline passed while the node was down come out (once) at run().
   * Then follows the registry's changes. No event leaves before run().
   */
  start(saved?: MonitorState): void {
    const now = this.now();
    const restored: string[] = [];
    if (saved !== undefined) {
      this.tracker.restore(saved.tracker);
      for (const row of saved.tracker.devices) if (Array.isArray(row) && typeof row[0] === 'string' && this.tracker.state(row[0]) !== undefined) restored.push(row[0]);
    }
    const enabled = new Set<string>();
    for (let offset = 0; ; offset += PAGE) {
      const page = this.registry.listDevices({ offset, limit: PAGE });
      for (const d of page.items) {
        if (!d.enabled) continue;
        enabled.add(d.id);
        this.track(d, now);
      }
      if (page.items.length < PAGE || offset + page.items.length >= page.total) break;
    }
    for (const id of restored) if (!enabled.has(id)) this.tracker.untrack(id);
    this.unsubscribe = this.registry.onChange((c) => this.onRegistryChange(c));
  }

  /**
   * Starts the timer: what fell due while the node was down (or since start()) is emitted at
   * once. Separate from start() so that a node emits nothing before the flows it sends to run.
   */
  run(): void {
    if (this.running || this.closed) return;
    this.running = true;
    this.step();
  }

  /** Data from `id` arrived now: its 'online' event when it was offline or unknown. Untracked ids (unregistered, disabled) are ignored: null. */
  seen(id: string): LivenessEvent | null {
    const t = this.tracked.get(id);
    if (t === undefined || this.closed) return null;
    const ev = this.tracker.seen(id, this.now());
    if (ev !== null) this.setState(id, t, ev.state);
    this.arm();
    this.opts.changed?.(ev !== null ? 'events' : 'data');
    return ev;
  }

  /** Whether a device is tracked (registered and enabled). */
  isTracked(id: string): boolean {
    return this.tracked.has(id);
  }

  counts(): LivenessCounts {
    return { ...this.n };
  }

  get size(): number {
    return this.tracked.size;
  }

  snapshot(): MonitorState {
    return { v: 1, savedAt: this.now(), tracker: this.tracker.snapshot() };
  }

  /** Stops the timer and the registry listener; the state stays readable (snapshot()). */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** Whether the timer is armed (for tests: false after close). */
  get armed(): boolean {
    return this.timer !== undefined;
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Tracks (or re-tracks: the state is kept) a device; one new to the tracker starts from the registry's lastSeen. */
  private track(d: DeviceRecord, now: number): void {
    const known = this.tracker.state(d.id) !== undefined;
    // livenessTimeout 0 is the tracker's default.
    this.tracker.track(d.id, d.livenessTimeout, now, known ? null : d.lastSeen);
    this.set(d.id, d.livenessTimeout, this.tracker.state(d.id) ?? 'unknown');
  }

  private set(id: string, timeout: number, state: TrackedState): void {
    const t = this.tracked.get(id);
    if (t === undefined) {
      this.tracked.set(id, { timeout, state });
      this.n[state]++;
    } else {
      t.timeout = timeout;
      this.setState(id, t, state);
    }
  }

  private setState(_id: string, t: { state: TrackedState }, state: TrackedState): void {
    if (t.state === state) return;
    this.n[t.state]--;
    this.n[state]++;
    t.state = state;
  }

  private untrack(id: string): void {
    const t = this.tracked.get(id);
    if (t === undefined) return;
    this.tracker.untrack(id);
    this.tracked.delete(id);
    this.n[t.state]--;
  }

  private onRegistryChange(c: RegistryChange): void {
    if (this.closed || c.kind !== 'device' || c.op === 'token') return;
    try {
      const d = c.op === 'delete' ? undefined : this.registry.getDevice(c.id);
      const t = this.tracked.get(c.id);
      if (d === undefined || !d.enabled) {
        if (t === undefined) return;
        this.untrack(c.id);
      } else if (t === undefined || t.timeout !== d.livenessTimeout) {
        this.track(d, this.now());
      } else {
        return;
      }
      this.arm();
      this.opts.changed?.('devices');
    } catch (e) {
      this.opts.onError?.(e as Error);
    }
  }

  /** Emits what is due and re-arms the timer. */
  private step(): void {
    const events = this.tracker.advance(this.now());
    for (const ev of events) {
      const t = this.tracked.get(ev.device);
      if (t !== undefined) this.setState(ev.device, t, ev.state);
    }
    if (events.length > 0) {
      this.opts.emit(events);
      this.opts.changed?.('events');
    }
    this.arm();
  }

  /** Keeps the one timer at the earliest deadline (a later-armed timer is moved earlier; an earlier one just fires and re-arms). */
  private arm(): void {
    if (this.closed || !this.running) return;
    const next = this.tracker.nextDeadline();
    if (next === Infinity) {
      if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
      this.timer = undefined;
      this.armedFor = Infinity;
      return;
    }
    if (this.timer !== undefined && this.armedFor <= next) return;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.armedFor = next;
    const delay = Math.min(MAX_DELAY, Math.max(1, next - this.now()));
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.armedFor = Infinity;
      if (this.closed) return;
      try {
        this.step();
      } catch (e) {
        this.opts.onError?.(e as Error);
      }
    }, delay);
  }
}
