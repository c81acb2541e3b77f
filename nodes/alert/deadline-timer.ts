/**
 * The alert node's one timer: it wakes the engine (tick) at the next deadline. No Node-RED, no engine: the clock
 * and setTimeout are passed in, so the rules below are tested alone (test/unit/deadline-timer.test.ts).
 *
 * - set(t): the next deadline as the engine's full scan found it (after a tick, an action, the start);
 * - sooner(t): after a message, the earliest deadline of the keys it evaluated: the timer only moves earlier (the
 *   other keys kept theirs; one that went away costs a tick that finds nothing);
 * - two ticks are at least `gapMs` apart: every pending alert's hold ends at its own time, and in an alert storm
 *   (10,000 keys going pending over a second) a tick per millisecond, each a scan of every live key (~90 us with
 *   10,000), would take most of the main thread; a deadline within gapMs of the last tick waits for the gap;
 * - a deadline at or before the last tick was due then and tick() left it (never expected): it is retried after
 *   stuckMs, not in a busy loop.
 */
export interface DeadlineTimerOptions {
  /** Calls the engine's tick at `now` (the timer has already forgotten its time: set() or sooner() re-arm it). */
  onTick: (now: number) => void;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Least time between two ticks (ms). Default 10. */
  gapMs?: number;
  /** Retry delay for a deadline a tick left in the past (ms). Default 1000. */
  stuckMs?: number;
}

/** setTimeout's longest delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class DeadlineTimer {
  private handle: unknown;
  private at = Infinity;
  private lastTick = -Infinity;
  private closed = false;
  private readonly onTick: (now: number) => void;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private readonly gapMs: number;
  private readonly stuckMs: number;

  constructor(o: DeadlineTimerOptions) {
    this.onTick = o.onTick;
    this.now = o.now ?? Date.now;
    this.setTimer = o.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = o.clearTimer ?? ((h) => clearTimeout(h as NodeJS.Timeout));
    this.gapMs = o.gapMs ?? 10;
    this.stuckMs = o.stuckMs ?? 1000;
  }

  /** When the timer will fire (ms), Infinity when it is not armed. */
  get armedAt(): number {
    return this.at;
  }

  /** Arms the timer at the engine's next deadline (Infinity: none). */
  set(deadline: number): void {
    const t = this.earliest(deadline);
    if (this.closed || (t === this.at && this.handle !== undefined)) return;
    this.arm(t);
  }

  /** Moves the timer earlier when `deadline` comes before it; never later. */
  sooner(deadline: number): void {
    if (this.closed || !(deadline < this.at)) return;
    const t = this.earliest(deadline);
    if (t < this.at) this.arm(t);
  }

  close(): void {
    this.closed = true;
    if (this.handle !== undefined) this.clearTimer(this.handle);
    this.handle = undefined;
    this.at = Infinity;
  }

  /** The time a deadline can be served: not within the gap after the last tick, a stuck one after stuckMs. */
  private earliest(deadline: number): number {
    if (deadline === Infinity) return Infinity;
    if (deadline <= this.lastTick) return this.lastTick + this.stuckMs;
    return Math.max(deadline, this.lastTick + this.gapMs);
  }

  private arm(t: number): void {
    if (this.handle !== undefined) this.clearTimer(this.handle);
    this.handle = undefined;
    this.at = t;
    if (t === Infinity) return;
    this.handle = this.setTimer(this.fire, Math.min(MAX_DELAY_MS, Math.max(0, t - this.now())));
  }

  private readonly fire = (): void => {
    this.handle = undefined;
    this.at = Infinity;
    if (this.closed) return;
    const now = this.now();
    this.lastTick = now;
    this.onTick(now);
  };
}
