/**
 * Liveness of many devices, judged from data arrival, with one scheduler (issue 4).
 *
 * A binary min-heap of (deadline, device, generation) with lazy invalidation:
 * - seen() is O(1) while a device is online: it moves the device's true deadline but leaves its
 *   heap entry where it is; when that entry comes due, advance() finds the later true deadline
 *   and pushes the entry back (once per timeout period per device, not per message);
 * - a shorter timeout (track()) pushes a new entry with a new generation; the old one is skipped
 *   when it surfaces, as are entries of untracked devices; the heap is rebuilt when skipped
 *   entries outnumber live ones;
 * - advance(now) pops only what is due: O(k log n) for k due entries, nothing for the rest;
 *   nextDeadline() is the heap's top, so the caller needs one timer.
 *
 * States and events (each emitted once per change):
 * - a newly tracked device is 'unknown' until an event settles it: 'online' (reason 'data') at
 *   its first data, or 'offline' when its deadline passes: reason 'never-seen' when it never sent
 *   anything (deadline = tracked time + timeout), 'timeout' when track() was given a lastSeen
 *   (deadline = lastSeen + timeout);
 * - online -> offline (reason 'timeout') when the timeout passes without data, since = the
 *   deadline; offline/unknown -> online (reason 'data') at data, since = its arrival;
 * - an offline device has no deadline: nothing happens until it sends data.
 *
 * Restarts: snapshot() is JSON-safe; restore() brings back every device's state, lastSeen,
 * timeout and deadline. Rule: a device whose deadline passed while the process was down gets
 * its one offline event at the first advance() after restore (online before the restart and
 * lastSeen + timeout passed: 'timeout', since = that deadline; still unknown: 'never-seen' or
 * 'timeout'), unless its data arrives before that advance (then it simply stays online); an offline
 * device stays offline without a repeat event; an online device whose deadline is still ahead
 * stays online without a repeat 'online' at its next data. After restore(), call track() for
 * every current device (new ones start, changed timeouts apply, states are kept) and untrack()
 * the ones that are gone.
 *
 * Pure: every call takes `now` (ms) from the caller, so tests drive a fake clock.
 */
import type { LivenessEvent, LivenessTrackerLike } from './types';

type State = 'online' | 'offline' | 'unknown';

interface Entry {
  timeout: number;
  /** Arrival time (ms) of the newest data, or the lastSeen given to track(); null = never seen. */
  lastSeen: number | null;
  state: State;
  /** When the device goes offline unless data arrives; Infinity when offline. */
  deadline: number;
  /** Generation of this device's live heap entry; entries with another generation are stale. */
  gen: number;
  /** Deadline of the live heap entry (<= deadline), or Infinity when none is queued. */
  queued: number;
}

/** A JSON-safe snapshot: [id, timeout, lastSeen, state, deadline] per device (deadline null = none). */
export interface LivenessSnapshot {
  v: 1;
  devices: Array<[string, number, number | null, State, number | null]>;
}

export interface LivenessStats {
  /** Entries in the heap, live and stale. */
  heapSize: number;
  /** Heap entries popped since the tracker was made (due, stale or pushed back). */
  pops: number;
  /** Heap entries pushed since the tracker was made. */
  pushes: number;
}

const MAX_TIMEOUT = 365 * 86_400_000;

export class LivenessTracker implements LivenessTrackerLike {
  readonly defaultTimeout: number;
  private readonly entries = new Map<string, Entry>();
  // The heap, as parallel arrays (no object per entry).
  private hDeadline: number[] = [];
  private hId: string[] = [];
  private hGen: number[] = [];
  private nextGen = 1;
  private pops = 0;
  private pushes = 0;

  constructor(opts: { defaultTimeout: number }) {
    const t = opts?.defaultTimeout;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > MAX_TIMEOUT) throw new RangeError(`defaultTimeout must be a number of ms from 1 to ${MAX_TIMEOUT}, got ${String(t)}`);
    this.defaultTimeout = t;
  }

  get size(): number {
    return this.entries.size;
  }

  get stats(): LivenessStats {
    return { heapSize: this.hDeadline.length, pops: this.pops, pushes: this.pushes };
  }

  private timeoutOf(t: unknown): number {
    return typeof t === 'number' && Number.isFinite(t) && t > 0 ? Math.min(t, MAX_TIMEOUT) : this.defaultTimeout;
  }

  track(id: string, timeoutMs: number, now: number, lastSeen: number | null): void {
    if (typeof id !== 'string') return;
    const timeout = this.timeoutOf(timeoutMs);
    const seenAt = typeof lastSeen === 'number' && Number.isFinite(lastSeen) ? lastSeen : null;
    const e = this.entries.get(id);
    if (e === undefined) {
      const deadline = (seenAt ?? now) + timeout;
      const entry: Entry = { timeout, lastSeen: seenAt, state: 'unknown', deadline, gen: 0, queued: Infinity };
      this.entries.set(id, entry);
      this.enqueue(id, entry);
      return;
    }
    const oldTimeout = e.timeout;
    e.timeout = timeout;
    if (e.state === 'offline') return;
    if (seenAt !== null && (e.lastSeen === null || seenAt > e.lastSeen)) e.lastSeen = seenAt;
    // A never-seen device keeps counting from when it was first tracked.
    const base = e.lastSeen ?? e.deadline - oldTimeout;
    e.deadline = base + timeout;
    if (e.deadline < e.queued) this.enqueue(id, e);
  }

  untrack(id: string): void {
    this.entries.delete(id);
    this.compactIfStale();
  }

  seen(id: string, now: number): LivenessEvent | null {
    let e = this.entries.get(id);
    if (e === undefined) {
      // Data from a device nobody tracked yet: track it with the default timeout.
      e = { timeout: this.defaultTimeout, lastSeen: null, state: 'unknown', deadline: Infinity, gen: 0, queued: Infinity };
      this.entries.set(id, e);
    }
    if (e.lastSeen === null || now > e.lastSeen) e.lastSeen = now;
    e.deadline = e.lastSeen + e.timeout;
    if (e.queued === Infinity || e.deadline < e.queued) this.enqueue(id, e);
    if (e.state === 'online') return null;
    e.state = 'online';
    return { device: id, state: 'online', since: now, lastSeen: e.lastSeen, reason: 'data' };
  }

  advance(now: number): LivenessEvent[] {
    const events: LivenessEvent[] = [];
    const hd = this.hDeadline;
    while (hd.length > 0 && hd[0] <= now) {
      const id = this.hId[0];
      const gen = this.hGen[0];
      const at = hd[0];
      this.pop();
      const e = this.entries.get(id);
      if (e === undefined || e.gen !== gen) continue;
      e.queued = Infinity;
      if (e.deadline > at) {
        // Data moved the deadline since this entry was queued: queue the true one.
        if (e.deadline !== Infinity) this.push(e.deadline, id, e.gen, e);
        continue;
      }
      const reason = e.lastSeen === null ? 'never-seen' : 'timeout';
      e.state = 'offline';
      const since = e.deadline;
      e.deadline = Infinity;
      events.push({ device: id, state: 'offline', since, lastSeen: e.lastSeen, reason });
    }
    return events;
  }

  nextDeadline(): number {
    // Stale entries at the top may make this early, never late: an early wake-up finds nothing due.
    return this.hDeadline.length > 0 ? this.hDeadline[0] : Infinity;
  }

  state(id: string): 'online' | 'offline' | 'unknown' | undefined {
    return this.entries.get(id)?.state;
  }

  /** The device's timeout, lastSeen and deadline (Infinity when offline), for status and tests. */
  info(id: string): { state: State; timeout: number; lastSeen: number | null; deadline: number } | undefined {
    const e = this.entries.get(id);
    return e && { state: e.state, timeout: e.timeout, lastSeen: e.lastSeen, deadline: e.deadline };
  }

  snapshot(): LivenessSnapshot {
    const devices: LivenessSnapshot['devices'] = [];
    for (const [id, e] of this.entries) devices.push([id, e.timeout, e.lastSeen, e.state, e.deadline === Infinity ? null : e.deadline]);
    return { v: 1, devices };
  }

  /**
   * Replaces the tracker's contents with a snapshot (see the restart rule above). Entries that
   * are not well formed are skipped and counted; a snapshot that is not one at all restores nothing.
   */
  restore(snapshot: unknown): { restored: number; skipped: number } {
    this.entries.clear();
    this.hDeadline = [];
    this.hId = [];
    this.hGen = [];
    const snap = snapshot as Partial<LivenessSnapshot> | null;
    if (snap === null || typeof snap !== 'object' || snap.v !== 1 || !Array.isArray(snap.devices)) return { restored: 0, skipped: 0 };
    let skipped = 0;
    for (const row of snap.devices as unknown[]) {
      if (!Array.isArray(row) || row.length !== 5) {
        skipped++;
        continue;
      }
      const [id, timeout, lastSeen, state, deadline] = row as unknown[];
      const okState = state === 'online' || state === 'offline' || state === 'unknown';
      const okSeen = lastSeen === null || (typeof lastSeen === 'number' && Number.isFinite(lastSeen));
      const okDeadline = state === 'offline' ? deadline === null : typeof deadline === 'number' && Number.isFinite(deadline);
      if (typeof id !== 'string' || this.entries.has(id) || typeof timeout !== 'number' || !(timeout > 0) || !okState || !okSeen || !okDeadline) {
        skipped++;
        continue;
      }
      const e: Entry = {
        timeout: this.timeoutOf(timeout),
        lastSeen: lastSeen as number | null,
        state,
        deadline: state === 'offline' ? Infinity : (deadline as number),
        gen: 0,
        queued: Infinity,
      };
      this.entries.set(id, e);
      if (e.deadline !== Infinity) {
        e.gen = this.nextGen++;
        e.queued = e.deadline;
        this.hDeadline.push(e.deadline);
        this.hId.push(id);
        this.hGen.push(e.gen);
      }
    }
    // Floyd's heap construction: O(n).
    for (let i = (this.hDeadline.length >> 1) - 1; i >= 0; i--) this.down(i);
    return { restored: this.entries.size, skipped };
  }

  // ---- heap ---------------------------------------------------------------------------------

  private enqueue(id: string, e: Entry): void {
    e.gen = this.nextGen++;
    this.push(e.deadline, id, e.gen, e);
    this.compactIfStale();
  }

  private push(deadline: number, id: string, gen: number, e: Entry): void {
    e.queued = deadline;
    this.pushes++;
    const hd = this.hDeadline;
    hd.push(deadline);
    this.hId.push(id);
    this.hGen.push(gen);
    this.up(hd.length - 1);
  }

  private pop(): void {
    this.pops++;
    const hd = this.hDeadline;
    const last = hd.length - 1;
    if (last > 0) this.move(last, 0);
    hd.pop();
    this.hId.pop();
    this.hGen.pop();
    if (last > 0) this.down(0);
  }

  private move(from: number, to: number): void {
    this.hDeadline[to] = this.hDeadline[from];
    this.hId[to] = this.hId[from];
    this.hGen[to] = this.hGen[from];
  }

  private up(i: number): void {
    const hd = this.hDeadline;
    const d = hd[i];
    const id = this.hId[i];
    const g = this.hGen[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (hd[p] <= d) break;
      this.move(p, i);
      i = p;
    }
    hd[i] = d;
    this.hId[i] = id;
    this.hGen[i] = g;
  }

  private down(i: number): void {
    const hd = this.hDeadline;
    const n = hd.length;
    const d = hd[i];
    const id = this.hId[i];
    const g = this.hGen[i];
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && hd[c + 1] < hd[c]) c++;
      if (hd[c] >= d) break;
      this.move(c, i);
      i = c;
    }
    hd[i] = d;
    this.hId[i] = id;
    this.hGen[i] = g;
  }

  /** Rebuilds the heap from the live entries when stale ones are the majority (bounded memory). */
  private compactIfStale(): void {
    if (this.hDeadline.length <= 2 * this.entries.size + 1024) return;
    const ids: string[] = [];
    const ds: number[] = [];
    const gs: number[] = [];
    for (const [id, e] of this.entries) {
      if (e.queued === Infinity) continue;
      ids.push(id);
      ds.push(e.queued);
      gs.push(e.gen);
    }
    this.hDeadline = ds;
    this.hId = ids;
    this.hGen = gs;
    for (let i = (ds.length >> 1) - 1; i >= 0; i--) this.down(i);
  }
}
