/**
 * The thingwire-device node's liveness mode without Node-RED (nodes/device/monitor.ts), on a
 * controllable clock (a fake `now` and hand-run timers), with a real registry and the real
 * LivenessTracker: every registered device tracked with its timeout, events exactly once per
 * change, never-seen devices, registry changes, save/restore across a restart, and one timer only.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LivenessMonitor, isMonitorState, type MonitorState, type Timers } from '../../nodes/device/monitor';
import { LivenessTracker } from '../../nodes/lib/registry/liveness';
import { openRegistry, type RegistryHandle } from '../../nodes/lib/registry/registry';
import type { LivenessEvent } from '../../nodes/lib/registry/types';

const T0 = Date.UTC(2026, 10, 24, 12);
const DEFAULT = 10_000;

/** A clock and timers the test moves by hand. */
class Clock implements Timers {
  t = T0;
  private seq = 0;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  /** Most timers pending at once. */
  maxPending = 0;

  now = (): number => this.t;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.t + ms, fn });
    this.maxPending = Math.max(this.maxPending, this.pending.size);
    return id;
  }

  clearTimeout(h: unknown): void {
    this.pending.delete(h as number);
  }

  /** Moves the clock to `t`, running due timers in order (at their own times). */
  advanceTo(t: number): void {
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.pending) if (e[1].at <= t && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.pending.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = t;
  }
}

let dir: string;
let reg: RegistryHandle;
let clock: Clock;
let events: LivenessEvent[];
let monitors: LivenessMonitor[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-device-monitor-'));
  reg = openRegistry(path.join(dir, 'registry.json'), { tokenHashCost: 1, defaultLivenessTimeout: DEFAULT });
  clock = new Clock();
  events = [];
  monitors = [];
});
afterEach(async () => {
  for (const m of monitors) m.close();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function monitor(saved?: MonitorState): LivenessMonitor {
  const m = new LivenessMonitor({
    registry: reg,
    tracker: new LivenessTracker({ defaultTimeout: reg.defaultLivenessTimeout }),
    emit: (evs) => events.push(...evs),
    now: clock.now,
    timers: clock,
  });
  monitors.push(m);
  m.start(saved);
  m.run();
  return m;
}

const summary = (evs: LivenessEvent[]): string[] => evs.map((e) => `${e.device}:${e.state}:${e.reason}@${e.since - T0}`);

test('every registered, enabled device is tracked; silent ones go offline (never-seen) once, at their own timeout', () => {
  reg.createDevice({ id: 'a' });
  reg.createDevice({ id: 'b', livenessTimeout: 20_000 });
  reg.createDevice({ id: 'off', enabled: false });
  const m = monitor();
  expect(m.size).toBe(2);
  expect(m.counts()).toEqual({ online: 0, offline: 0, unknown: 2 });
  expect(m.isTracked('off')).toBe(false);
  clock.advanceTo(T0 + 9_999);
  expect(events).toEqual([]);
  clock.advanceTo(T0 + 60_000);
  expect(summary(events)).toEqual(['a:offline:never-seen@10000', 'b:offline:never-seen@20000']);
  expect(events[0].lastSeen).toBeNull();
  expect(m.counts()).toEqual({ online: 0, offline: 2, unknown: 0 });
  // Offline devices have no deadline: no timer is left, nothing repeats.
  expect(m.armed).toBe(false);
  clock.advanceTo(T0 + 1_000_000);
  expect(events).toHaveLength(2);
  expect(clock.maxPending).toBe(1);
});

test('data: online once, offline once after the timeout without data, online again at the next data', () => {
  reg.createDevice({ id: 'a' });
  const m = monitor();
  clock.advanceTo(T0 + 1000);
  expect(m.seen('a')).toEqual({ device: 'a', state: 'online', since: T0 + 1000, lastSeen: T0 + 1000, reason: 'data' });
  clock.advanceTo(T0 + 5000);
  expect(m.seen('a')).toBeNull();
  expect(m.counts()).toEqual({ online: 1, offline: 0, unknown: 0 });
  clock.advanceTo(T0 + 14_999);
  expect(events).toEqual([]);
  clock.advanceTo(T0 + 30_000);
  expect(summary(events)).toEqual(['a:offline:timeout@15000']);
  expect(events[0].lastSeen).toBe(T0 + 5000);
  clock.advanceTo(T0 + 31_000);
  expect(m.seen('a')).toMatchObject({ state: 'online', reason: 'data', since: T0 + 31_000 });
  expect(m.counts()).toEqual({ online: 1, offline: 0, unknown: 0 });
  expect(clock.maxPending).toBe(1);
});

test('data from unregistered or disabled devices is ignored', () => {
  reg.createDevice({ id: 'off', enabled: false });
  const m = monitor();
  expect(m.seen('ghost')).toBeNull();
  expect(m.seen('off')).toBeNull();
  expect(m.size).toBe(0);
  expect(m.armed).toBe(false);
});

test("a device the registry saw before the node started counts from that time ('timeout' when it passes)", () => {
  reg.createDevice({ id: 'a' });
  reg.seen('a', T0 - 4000);
  monitor();
  clock.advanceTo(T0 + 20_000);
  expect(summary(events)).toEqual(['a:offline:timeout@6000']);
});

test('registry changes: created devices are tracked, deleted and disabled ones dropped, re-enabled ones tracked again', () => {
  reg.createDevice({ id: 'a' });
  reg.createDevice({ id: 'b' });
  const m = monitor();
  clock.advanceTo(T0 + 2000);
  reg.createDevice({ id: 'c' });
  expect(m.isTracked('c')).toBe(true);
  reg.deleteDevice('a');
  reg.updateDevice('b', { enabled: false });
  expect(m.size).toBe(1);
  expect(m.counts()).toEqual({ online: 0, offline: 0, unknown: 1 });
  clock.advanceTo(T0 + 50_000);
  expect(summary(events)).toEqual(['c:offline:never-seen@12000']);
  reg.updateDevice('b', { enabled: true });
  reg.updateDevice('b', { name: 'no change to liveness' });
  expect(m.isTracked('b')).toBe(true);
  clock.advanceTo(T0 + 100_000);
  expect(summary(events)).toEqual(['c:offline:never-seen@12000', 'b:offline:never-seen@60000']);
  // Token changes and streams do not touch liveness.
  reg.rotateToken('b');
  reg.createStream({ id: 's1' });
  expect(m.size).toBe(2);
  expect(clock.maxPending).toBe(1);
});

test('a changed timeout applies at once and keeps the state (no repeated online)', () => {
  reg.createDevice({ id: 'a' });
  const m = monitor();
  m.seen('a');
  reg.updateDevice('a', { livenessTimeout: 2000 });
  expect(m.counts().online).toBe(1);
  clock.advanceTo(T0 + 5000);
  expect(summary(events)).toEqual(['a:offline:timeout@2000']);
  reg.updateDevice('a', { livenessTimeout: 60_000 });
  expect(m.counts()).toEqual({ online: 0, offline: 1, unknown: 0 });
  expect(events).toHaveLength(1);
});

test('restart: the restored state neither repeats nor loses events (deadlines passed while down come out once)', () => {
  for (const id of ['on-ahead', 'on-due', 'off', 'quiet']) reg.createDevice({ id });
  reg.updateDevice('on-ahead', { livenessTimeout: 100_000 });
  const m1 = monitor();
  clock.advanceTo(T0 + 1000);
  m1.seen('on-ahead');
  m1.seen('on-due');
  m1.seen('off');
  clock.advanceTo(T0 + 8000);
  m1.seen('on-due');
  clock.advanceTo(T0 + 12_000);
  // seen() returns the online events (the node sends them); the timer emits the offline ones.
  expect(summary(events)).toEqual(['quiet:offline:never-seen@10000', 'off:offline:timeout@11000']);
  const saved = JSON.parse(JSON.stringify(m1.snapshot())) as unknown;
  expect(isMonitorState(saved)).toBe(true);
  m1.close();
  expect(m1.armed).toBe(false);

  // Down for a while; meanwhile a device was added and one deleted.
  clock.advanceTo(T0 + 40_000);
  reg.createDevice({ id: 'new' });
  reg.deleteDevice('quiet');
  events = [];
  const m2 = monitor(saved as MonitorState);
  clock.advanceTo(T0 + 40_001);
  // on-due's deadline (8000 + 10000) passed while down: its one offline event; off and quiet do not repeat.
  expect(summary(events)).toEqual(['on-due:offline:timeout@18000']);
  expect(m2.counts()).toEqual({ online: 1, offline: 2, unknown: 1 });
  expect(m2.isTracked('quiet')).toBe(false);
  // on-ahead is still online: its next data is no event.
  expect(m2.seen('on-ahead')).toBeNull();
  clock.advanceTo(T0 + 60_000);
  expect(summary(events)).toEqual(['on-due:offline:timeout@18000', 'new:offline:never-seen@50000']);
});

test('close stops the timer and the registry listener', () => {
  reg.createDevice({ id: 'a' });
  const m = monitor();
  expect(m.armed).toBe(true);
  m.close();
  expect(m.armed).toBe(false);
  expect(clock.pending.size).toBe(0);
  reg.createDevice({ id: 'b' });
  expect(m.isTracked('b')).toBe(false);
  expect(m.seen('a')).toBeNull();
  clock.advanceTo(T0 + 100_000);
  expect(events).toEqual([]);
});

test('nothing leaves before run(); then what is due comes out at once', () => {
  reg.createDevice({ id: 'a' });
  const m = new LivenessMonitor({ registry: reg, tracker: new LivenessTracker({ defaultTimeout: DEFAULT }), emit: (evs) => events.push(...evs), now: clock.now, timers: clock });
  monitors.push(m);
  m.start();
  clock.advanceTo(T0 + 30_000);
  expect(events).toEqual([]);
  expect(m.armed).toBe(false);
  m.run();
  expect(summary(events)).toEqual(['a:offline:never-seen@10000']);
});

test('isMonitorState refuses what is not a saved state', () => {
  for (const v of [null, [], {}, { v: 2, savedAt: 1, tracker: { v: 1, devices: [] } }, { v: 1, savedAt: '1', tracker: { v: 1, devices: [] } }, { v: 1, savedAt: 1, tracker: { v: 1 } }]) {
    expect(isMonitorState(v)).toBe(false);
  }
  expect(isMonitorState({ v: 1, savedAt: 1, tracker: { v: 1, devices: [] } })).toBe(true);
});
