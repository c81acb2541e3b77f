/**
 * nodes/batch/batcher.ts: batches close on size or on time after their first item; arrays are merged,
 * never split; delivery tokens and device metadata travel with the batch. Manual timer.
 */
import { Batcher, type BatchOutput, type BatchTimer } from '../../nodes/batch/batcher';

class ManualTimer implements BatchTimer {
  private next = 0;
  readonly timers = new Map<number, () => void>();
  setTimeout(fn: () => void, _ms: number): unknown {
    const id = ++this.next;
    this.timers.set(id, fn);
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  fire(): void {
    const all = [...this.timers.values()];
    this.timers.clear();
    for (const f of all) f();
  }
}

const r = (device: string, ts: number): Record<string, unknown> => ({ device, ts, metrics: { v: ts } });

function rig(maxItems = 3, maxWaitMs = 20): { b: Batcher; out: BatchOutput[]; timer: ManualTimer } {
  const out: BatchOutput[] = [];
  const timer = new ManualTimer();
  return { b: new Batcher((o) => out.push(o), { maxItems, maxWaitMs }, timer), out, timer };
}

test('a batch closes when it is full, in arrival order', () => {
  const { b, out } = rig(3);
  for (let i = 1; i <= 7; i++) b.add({ payload: r('a', i) });
  expect(out.map((o) => o.payload.map((x) => (x as { ts: number }).ts))).toEqual([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  expect(b.pending()).toBe(1);
});

test('a quiet stream: the batch leaves when its timer fires, and one timer runs per batch', () => {
  const { b, out, timer } = rig(100);
  b.add({ payload: r('a', 1) });
  b.add({ payload: r('a', 2) });
  expect(timer.timers.size).toBe(1);
  expect(out).toEqual([]);
  timer.fire();
  expect(out).toHaveLength(1);
  expect(out[0].payload).toHaveLength(2);
  expect(timer.timers.size).toBe(0);
});

test('an array payload contributes its elements and is never split; one bigger than a batch goes alone', () => {
  const { b, out } = rig(3);
  b.add({ payload: r('a', 1) });
  b.add({ payload: [r('a', 2), r('a', 3), r('a', 4), r('a', 5)] });
  expect(out.map((o) => o.payload.length)).toEqual([1, 4]);
});

test('delivery tokens of every merged message travel with the batch', () => {
  const { b, out, timer } = rig(10);
  b.add({ payload: r('a', 1), mqttAck: 'w.1#1' });
  b.add({ payload: r('a', 2) });
  b.add({ payload: [r('a', 3)], mqttAck: ['w.1#2', 'w.1#3', 42] });
  timer.fire();
  expect(out[0].mqttAck).toEqual(['w.1#1', 'w.1#2', 'w.1#3']);
});

test('device metadata: `device` when every reading is that device\'s, else `devices` by id', () => {
  const { b, out, timer } = rig(10);
  const A = { id: 'a', type: 'pico-w' };
  const B = { id: 'b', type: 'esp32' };
  b.add({ payload: r('a', 1), device: A });
  b.add({ payload: r('a', 2), device: A });
  timer.fire();
  b.add({ payload: r('a', 3), device: A });
  b.add({ payload: r('x', 4) }); // an unregistered device: no metadata
  timer.fire();
  b.add({ payload: r('a', 5), device: A });
  b.add({ payload: [r('b', 6)], devices: { b: B } });
  timer.fire();
  b.add({ payload: r('x', 7) });
  timer.fire();
  expect(out.map((o) => [o.device, o.devices])).toEqual([
    [A, undefined],
    [undefined, { a: A }],
    [undefined, { a: A, b: B }],
    [undefined, undefined],
  ]);
});

test('maxWaitMs 0 passes every message on at once; close() flushes and refuses more', () => {
  const { b, out } = rig(10, 0);
  b.add({ payload: r('a', 1) });
  expect(out).toHaveLength(1);
  const c = rig(10);
  c.b.add({ payload: r('a', 1) });
  c.b.close();
  expect(c.out).toHaveLength(1);
  expect(c.timer.timers.size).toBe(0);
  expect(() => c.b.add({ payload: r('a', 2) })).toThrow('closed');
});

test('bad options are refused', () => {
  expect(() => new Batcher(() => undefined, { maxItems: 0 })).toThrow(RangeError);
  expect(() => new Batcher(() => undefined, { maxWaitMs: -1 })).toThrow(RangeError);
});

test('a batch is shared when a message merged into it was (the flag goes with that batch only)', () => {
  const out: Array<{ n: number; shared: boolean }> = [];
  const timer = new ManualTimer();
  const b = new Batcher((o, shared) => out.push({ n: o.payload.length, shared }), { maxItems: 3, maxWaitMs: 20 }, timer);
  b.add({ payload: r('a', 1) });
  b.add({ payload: r('a', 2) });
  timer.fire();
  b.add({ payload: r('a', 3) });
  b.add({ payload: r('a', 4) }, true);
  timer.fire();
  b.add({ payload: r('a', 5) });
  timer.fire();
  // A shared message that does not fit closes the waiting batch first: that batch is not marked, the next one is.
  b.add({ payload: [r('a', 6), r('a', 7)] });
  b.add({ payload: [r('a', 8), r('a', 9)] }, true);
  b.close();
  expect(out).toEqual([
    { n: 2, shared: false },
    { n: 2, shared: true },
    { n: 1, shared: false },
    { n: 2, shared: false },
    { n: 2, shared: true },
  ]);
});
