/**
 * The liveness tracker (nodes/lib/registry/liveness.ts) on a controllable clock: online and
 * offline once per change, devices that never sent anything, per-device timeouts, untrack,
 * snapshot/restore across a "restart", and 100,000 devices without a scan (counted heap work).
 */
import { LivenessTracker } from '../../nodes/lib/registry/liveness';
import type { LivenessEvent } from '../../nodes/lib/registry/types';

const T0 = 1_700_000_000_000;
const MIN = 60_000;

/** A tracker and a clock that only moves when the test says so, collecting every event. */
function setup(defaultTimeout = 5 * MIN): { t: LivenessTracker; events: LivenessEvent[]; at(ms: number): LivenessEvent[]; seen(id: string, ms: number): LivenessEvent | null } {
  const t = new LivenessTracker({ defaultTimeout });
  const events: LivenessEvent[] = [];
  return {
    t,
    events,
    at(ms) {
      const e = t.advance(T0 + ms);
      events.push(...e);
      return e;
    },
    seen(id, ms) {
      const e = t.seen(id, T0 + ms);
      if (e) events.push(e);
      return e;
    },
  };
}

describe('online and offline, once per change', () => {
  test('data makes a device online once; silence for its timeout makes it offline once', () => {
    const { t, at, seen, events } = setup();
    t.track('d1', 0, T0, null);
    expect(t.state('d1')).toBe('unknown');
    expect(seen('d1', 1000)).toEqual({ device: 'd1', state: 'online', since: T0 + 1000, lastSeen: T0 + 1000, reason: 'data' });
    for (let s = 2; s < 200; s++) expect(seen('d1', s * 1000)).toBeNull();
    expect(t.state('d1')).toBe('online');
    expect(at(199_000 + 5 * MIN - 1)).toEqual([]);
    expect(t.nextDeadline()).toBeLessThanOrEqual(T0 + 199_000 + 5 * MIN);
    expect(at(199_000 + 5 * MIN)).toEqual([{ device: 'd1', state: 'offline', since: T0 + 199_000 + 5 * MIN, lastSeen: T0 + 199_000, reason: 'timeout' }]);
    expect(at(10 * 60 * MIN)).toEqual([]);
    expect(t.state('d1')).toBe('offline');
    expect(t.nextDeadline()).toBe(Infinity);
    expect(seen('d1', 11 * 60 * MIN)).toMatchObject({ state: 'online', reason: 'data' });
    expect(events.map((e) => e.state)).toEqual(['online', 'offline', 'online']);
  });

  test('a late advance still gives one event, with since = the deadline that passed', () => {
    const { at, seen } = setup(MIN);
    seen('d1', 0);
    expect(at(10 * MIN)).toEqual([{ device: 'd1', state: 'offline', since: T0 + MIN, lastSeen: T0, reason: 'timeout' }]);
    expect(at(20 * MIN)).toEqual([]);
  });

  test('events come in deadline order', () => {
    const { t, at, seen } = setup(MIN);
    t.track('slow', 3 * MIN, T0, null);
    seen('slow', 0);
    seen('a', 30_000);
    seen('b', 10_000);
    t.track('c', 2 * MIN, T0, null);
    seen('c', 0);
    expect(at(60 * MIN).map((e) => [e.device, e.since - T0])).toEqual([
      ['b', 70_000],
      ['a', 90_000],
      ['c', 2 * MIN],
      ['slow', 3 * MIN],
    ]);
  });

  test('data from an untracked device tracks it with the default timeout', () => {
    const { t, at, seen } = setup(MIN);
    expect(seen('new', 0)).toMatchObject({ state: 'online', reason: 'data' });
    expect(t.size).toBe(1);
    expect(at(MIN)).toMatchObject([{ device: 'new', state: 'offline', reason: 'timeout' }]);
  });
});

describe('devices that never sent anything', () => {
  test('go offline once, reason never-seen, a timeout after they were tracked', () => {
    const { t, at } = setup(MIN);
    t.track('quiet', 0, T0 + 5000, null);
    expect(at(MIN + 4999)).toEqual([]);
    expect(at(MIN + 5000)).toEqual([{ device: 'quiet', state: 'offline', since: T0 + MIN + 5000, lastSeen: null, reason: 'never-seen' }]);
    expect(at(100 * MIN)).toEqual([]);
    expect(t.state('quiet')).toBe('offline');
  });

  test('tracking again (e.g. a timeout change) does not restart the count', () => {
    const { t, at } = setup(MIN);
    t.track('quiet', 0, T0, null);
    t.track('quiet', 0, T0 + 50_000, null);
    expect(at(MIN)).toMatchObject([{ device: 'quiet', reason: 'never-seen' }]);
  });

  test('a device tracked with an old lastSeen goes offline (timeout) when lastSeen + timeout passed', () => {
    const { t, at } = setup(MIN);
    t.track('old', 0, T0, T0 - 10 * MIN);
    t.track('recent', 0, T0, T0 - 30_000);
    expect(t.state('old')).toBe('unknown');
    expect(at(0)).toEqual([{ device: 'old', state: 'offline', since: T0 - 9 * MIN, lastSeen: T0 - 10 * MIN, reason: 'timeout' }]);
    expect(at(29_999)).toEqual([]);
    expect(at(30_000)).toEqual([{ device: 'recent', state: 'offline', since: T0 + 30_000, lastSeen: T0 - 30_000, reason: 'timeout' }]);
  });
});

describe('per-device timeouts', () => {
  test('each device keeps its own; 0 or junk means the default', () => {
    const { t, at, seen } = setup(5 * MIN);
    t.track('fast', 10_000, T0, null);
    t.track('default', 0, T0, null);
    t.track('junk', NaN, T0, null);
    t.track('slow', 60 * MIN, T0, null);
    for (const id of ['fast', 'default', 'junk', 'slow']) seen(id, 0);
    expect(at(10_000).map((e) => e.device)).toEqual(['fast']);
    expect(at(5 * MIN).map((e) => e.device).sort()).toEqual(['default', 'junk']);
    expect(at(60 * MIN - 1)).toEqual([]);
    expect(at(60 * MIN).map((e) => e.device)).toEqual(['slow']);
  });

  test('shortening a timeout takes effect at once; lengthening it postpones the offline event', () => {
    const { t, at, seen } = setup(10 * MIN);
    seen('a', 0);
    seen('b', 0);
    t.track('a', MIN, T0 + 1000, null);
    t.track('b', 20 * MIN, T0 + 1000, null);
    expect(at(MIN).map((e) => e.device)).toEqual(['a']);
    expect(at(10 * MIN)).toEqual([]);
    expect(at(20 * MIN)).toMatchObject([{ device: 'b', since: T0 + 20 * MIN }]);
  });

  test('an offline device keeps its new timeout for when it comes back', () => {
    const { t, at, seen } = setup(MIN);
    seen('a', 0);
    at(MIN);
    t.track('a', 10 * MIN, T0 + 2 * MIN, null);
    expect(t.state('a')).toBe('offline');
    seen('a', 3 * MIN);
    expect(at(12 * MIN)).toEqual([]);
    expect(at(13 * MIN)).toMatchObject([{ device: 'a', state: 'offline' }]);
  });
});

describe('untrack', () => {
  test('an untracked device gives no more events; tracked again it starts fresh', () => {
    const { t, at, seen } = setup(MIN);
    seen('a', 0);
    t.untrack('a');
    expect(t.state('a')).toBeUndefined();
    expect(t.size).toBe(0);
    expect(at(10 * MIN)).toEqual([]);
    t.track('a', 0, T0 + 10 * MIN, null);
    expect(at(11 * MIN)).toMatchObject([{ device: 'a', reason: 'never-seen' }]);
  });

  test('stale heap entries are compacted: the heap stays proportional to the tracked devices', () => {
    const t = new LivenessTracker({ defaultTimeout: MIN });
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 1000; i++) t.track(`d${i}`, 0, T0, null);
      for (let i = 0; i < 1000; i++) t.untrack(`d${i}`);
    }
    t.track('keep', 0, T0, null);
    // Shorter timeouts push a new entry each time; the old ones are stale.
    for (let k = 0; k < 5000; k++) t.track('keep', MIN - k, T0, T0);
    expect(t.size).toBe(1);
    expect(t.stats.heapSize).toBeLessThanOrEqual(2 * t.size + 1025);
  });
});

describe('snapshot and restore across a restart', () => {
  test('the snapshot is JSON-safe and a restore gives the same states and events', () => {
    const { t, at, seen } = setup(MIN);
    seen('online', 0);
    seen('gone', 0);
    at(MIN);
    seen('online', MIN);
    t.track('never', 0, T0 + MIN + 1, null);
    const snap = JSON.parse(JSON.stringify(t.snapshot())) as unknown;

    const t2 = new LivenessTracker({ defaultTimeout: MIN });
    expect(t2.restore(snap)).toEqual({ restored: 3, skipped: 0 });
    expect(['online', 'gone', 'never'].map((id) => t2.state(id))).toEqual(['online', 'offline', 'unknown']);
    expect(t2.advance(T0 + 2 * MIN - 1)).toEqual([]);
    expect(t2.advance(T0 + 2 * MIN + 1)).toEqual([
      { device: 'online', state: 'offline', since: T0 + 2 * MIN, lastSeen: T0 + MIN, reason: 'timeout' },
      { device: 'never', state: 'offline', since: T0 + 2 * MIN + 1, lastSeen: null, reason: 'never-seen' },
    ]);
    expect(t2.seen('gone', T0 + 3 * MIN)).toMatchObject({ state: 'online' });
  });

  test('the restart rule: online devices whose deadline passed while down go offline once, at the first advance; nothing repeats', () => {
    const { t, seen } = setup(5 * MIN);
    seen('stopped', 0); // stops sending before the restart
    seen('alive', 0); // keeps sending after it
    seen('offline-before', -10 * MIN);
    t.advance(T0); // 'offline-before' goes offline before the restart
    const snap = JSON.parse(JSON.stringify(t.snapshot())) as unknown;

    // Down for 20 minutes.
    const t2 = new LivenessTracker({ defaultTimeout: 5 * MIN });
    t2.restore(snap);
    // The device node re-syncs with the registry: states are kept.
    for (const id of ['stopped', 'alive', 'offline-before']) t2.track(id, 0, T0 + 20 * MIN, null);
    expect(t2.seen('alive', T0 + 20 * MIN)).toBeNull(); // it was online: no repeated 'online'
    const first = t2.advance(T0 + 20 * MIN);
    expect(first).toEqual([{ device: 'stopped', state: 'offline', since: T0 + 5 * MIN, lastSeen: T0, reason: 'timeout' }]);
    expect(t2.advance(T0 + 60 * MIN).map((e) => e.device)).toEqual(['alive']);
    expect(t2.advance(T0 + 120 * MIN)).toEqual([]);
  });

  test('an online device seen within its timeout before the restart stays online without a repeated event', () => {
    const { t, seen } = setup(5 * MIN);
    seen('d', 0);
    const t2 = new LivenessTracker({ defaultTimeout: 5 * MIN });
    t2.restore(t.snapshot());
    expect(t2.advance(T0 + MIN)).toEqual([]);
    expect(t2.seen('d', T0 + 2 * MIN)).toBeNull();
    expect(t2.advance(T0 + 7 * MIN - 1)).toEqual([]);
    expect(t2.advance(T0 + 7 * MIN)).toMatchObject([{ device: 'd', state: 'offline' }]);
  });

  test('malformed snapshots restore nothing; malformed rows are skipped and counted', () => {
    const t = new LivenessTracker({ defaultTimeout: MIN });
    t.track('x', 0, T0, null);
    for (const bad of [null, 5, 'snap', { v: 2, devices: [] }, { v: 1 }]) {
      expect(t.restore(bad)).toEqual({ restored: 0, skipped: 0 });
      expect(t.size).toBe(0);
    }
    const r = t.restore({
      v: 1,
      devices: [
        ['ok', MIN, T0, 'online', T0 + MIN],
        ['ok', MIN, T0, 'online', T0 + MIN],
        ['bad-state', MIN, T0, 'sleeping', T0],
        ['no-deadline', MIN, T0, 'online', null],
        ['bad-timeout', -1, T0, 'online', T0],
        [5, MIN, T0, 'online', T0],
        ['short'],
        'junk',
        ['off', MIN, null, 'offline', null],
      ],
    });
    expect(r).toEqual({ restored: 2, skipped: 7 });
    expect(t.state('ok')).toBe('online');
    expect(t.state('off')).toBe('offline');
    expect(t.nextDeadline()).toBe(T0 + MIN);
  });
});

describe('bad arguments', () => {
  test('the default timeout must be a positive number of ms', () => {
    for (const bad of [0, -1, NaN, Infinity, '5m']) expect(() => new LivenessTracker({ defaultTimeout: bad as never })).toThrow(RangeError);
  });

  test('non-string ids are ignored by track', () => {
    const t = new LivenessTracker({ defaultTimeout: MIN });
    t.track(5 as never, 0, T0, null);
    expect(t.size).toBe(0);
  });
});

describe('100,000 devices without a scan', () => {
  test('steady data costs no heap work; advance pops only what is due', () => {
    const N = 100_000;
    const t = new LivenessTracker({ defaultTimeout: 10 * MIN });
    for (let i = 0; i < N; i++) t.track(`dev-${i}`, 0, T0, null);
    expect(t.stats.heapSize).toBe(N);
    let online = 0;
    for (let i = 0; i < N; i++) if (t.seen(`dev-${i}`, T0 + 1000)) online++;
    expect(online).toBe(N);

    // 60 ticks of one second, every device sending every tick: no pushes, no pops.
    const before = t.stats;
    for (let s = 2; s <= 60; s++) {
      for (let i = 0; i < N; i += 1) t.seen(`dev-${i}`, T0 + s * 1000);
      expect(t.advance(T0 + s * 1000)).toEqual([]);
    }
    expect(t.stats.pops).toBe(before.pops);
    expect(t.stats.pushes).toBe(before.pushes);
    expect(t.stats.heapSize).toBe(N);

    // One device stops: when the queued deadline comes, every entry is re-queued once (one pop + push per
    // device per timeout period, not per message or tick); the silent one pops again and goes offline.
    const stopper = 'dev-42';
    for (let s = 61; s <= 600; s += 60) for (let i = 0; i < N; i++) if (`dev-${i}` !== stopper) t.seen(`dev-${i}`, T0 + s * 1000);
    const mid = t.stats;
    const events = t.advance(T0 + 10 * MIN + 60_000);
    expect(events).toEqual([{ device: stopper, state: 'offline', since: T0 + 60_000 + 10 * MIN, lastSeen: T0 + 60_000, reason: 'timeout' }]);
    expect(t.stats.pops - mid.pops).toBe(N + 1);
    expect(t.stats.pushes - mid.pushes).toBe(N);
    // Nothing is due until the re-queued deadlines: an advance costs nothing.
    const after = t.stats;
    expect(t.advance(T0 + 10 * MIN + 61_000)).toEqual([]);
    expect(t.stats.pops).toBe(after.pops);
    expect(t.nextDeadline()).toBeGreaterThan(T0 + 10 * MIN + 61_000);
  });
});
