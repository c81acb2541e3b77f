/**
 * The alert node's deadline timer (nodes/alert/deadline-timer.ts) on a fake clock: it fires at the deadline it is
 * set to, sooner() only moves it earlier, two ticks are at least the gap apart (an alert storm's holds ending a
 * millisecond apart are served in few ticks), a deadline a tick left behind is retried after stuckMs, close stops it.
 */
import { DeadlineTimer } from '../../nodes/alert/deadline-timer';

/** A fake clock with one-shot timers, run in time order by advance(). */
class Clock {
  now = 1_000_000;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private ids = 0;
  set = (fn: () => void, ms: number): unknown => {
    const id = ++this.ids;
    this.timers.push({ at: this.now + ms, fn, id });
    return id;
  };
  clear = (h: unknown): void => {
    this.timers = this.timers.filter((t) => t.id !== h);
  };
  get pending(): number {
    return this.timers.length;
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const t = this.timers[0];
      if (t === undefined || t.at > end) break;
      this.timers.shift();
      this.now = Math.max(this.now, t.at);
      t.fn();
    }
    this.now = end;
  }
}

/** A timer whose ticks are recorded; `deadlines` are what the engine would say is next after each tick. */
function rig(opts: { gapMs?: number; stuckMs?: number } = {}) {
  const c = new Clock();
  const ticks: number[] = [];
  let next: () => number = () => Infinity;
  const t = new DeadlineTimer({
    onTick: (now) => {
      ticks.push(now);
      t.set(next());
    },
    now: () => c.now,
    setTimer: c.set,
    clearTimer: c.clear,
    ...opts,
  });
  return { c, t, ticks, after: (f: () => number) => (next = f) };
}

test('fires at the deadline it is set to; set() again replaces it, Infinity disarms', () => {
  const { c, t, ticks } = rig();
  t.set(c.now + 500);
  expect(t.armedAt).toBe(c.now + 500);
  c.advance(499);
  expect(ticks).toEqual([]);
  c.advance(1);
  expect(ticks).toEqual([1_000_500]);
  t.set(c.now + 100);
  t.set(c.now + 300);
  c.advance(1000);
  expect(ticks).toEqual([1_000_500, 1_000_800]);
  t.set(c.now + 100);
  t.set(Infinity);
  expect(c.pending).toBe(0);
  c.advance(1000);
  expect(ticks).toHaveLength(2);
});

test('sooner() moves the timer earlier, never later, and arms an idle one', () => {
  const { c, t, ticks } = rig();
  t.sooner(c.now + 1000);
  expect(t.armedAt).toBe(c.now + 1000);
  t.sooner(c.now + 5000);
  expect(t.armedAt).toBe(c.now + 1000);
  t.sooner(c.now + 200);
  expect(t.armedAt).toBe(c.now + 200);
  t.sooner(Infinity);
  expect(c.pending).toBe(1);
  c.advance(2000);
  expect(ticks).toEqual([1_000_200]);
});

test('two ticks are at least gapMs apart: holds ending 1 ms apart are served every 10 ms, none early, none lost', () => {
  const { c, t, ticks, after } = rig({ gapMs: 10 });
  // 100 deadlines 1 ms apart; after each tick the engine's next is the first still ahead of now.
  const due = Array.from({ length: 100 }, (_, i) => c.now + 50 + i);
  after(() => due.find((d) => d > c.now) ?? Infinity);
  t.set(due[0]);
  c.advance(1000);
  expect(ticks[0]).toBe(due[0]);
  for (let i = 1; i < ticks.length; i++) expect(ticks[i] - ticks[i - 1]).toBeGreaterThanOrEqual(10);
  // Every deadline was served by a tick at or after it (the last one too), in 11 ticks instead of 100.
  expect(ticks.at(-1)!).toBeGreaterThanOrEqual(due.at(-1)!);
  expect(ticks.length).toBe(11);
  // sooner() obeys the gap as well.
  const last = ticks.at(-1)!;
  t.sooner(last + 1);
  expect(t.armedAt).toBe(last + 10);
});

test('a deadline a tick left in the past is retried after stuckMs, not in a busy loop', () => {
  const { c, t, ticks, after } = rig({ stuckMs: 1000 });
  const stuck = c.now + 100;
  after(() => stuck); // the engine keeps saying it is due
  t.set(stuck);
  c.advance(100);
  expect(ticks).toEqual([stuck]);
  expect(t.armedAt).toBe(stuck + 1000);
  t.sooner(stuck); // a message's due: the same past deadline
  expect(t.armedAt).toBe(stuck + 1000);
  c.advance(2500);
  expect(ticks).toEqual([stuck, stuck + 1000, stuck + 2000]);
});

test('close() clears the timer and ignores later calls', () => {
  const { c, t, ticks } = rig();
  t.set(c.now + 100);
  t.close();
  expect(c.pending).toBe(0);
  t.set(c.now + 50);
  t.sooner(c.now + 10);
  c.advance(1000);
  expect(ticks).toEqual([]);
  expect(t.armedAt).toBe(Infinity);
});
