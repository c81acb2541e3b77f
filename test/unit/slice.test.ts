/**
 * nodes/lib/slice.ts: due() after the budget only, and pause() gives queued I/O-phase work (setImmediate)
 * its turn before the work goes on, where a resolved promise would not.
 */
import { TimeSlicer } from '../../nodes/lib/slice';

describe('TimeSlicer', () => {
  test('due() once the budget has run, and again after pause() or restart() only when it has run again', async () => {
    const s = new TimeSlicer(1_000);
    expect(s.budgetMs).toBe(1_000);
    expect(s.due()).toBe(false);
    const zero = new TimeSlicer(0);
    expect(zero.due()).toBe(true);
    await zero.pause();
    expect(zero.due()).toBe(true);
    const short = new TimeSlicer(50);
    const end = performance.now() + 51;
    while (performance.now() < end) {
      // spin past the budget
    }
    expect(short.due()).toBe(true);
    short.restart();
    expect(short.due()).toBe(false);
  });

  test('pause() lets an immediate queued before it run first; awaiting a resolved promise does not', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('immediate'));
    await Promise.resolve();
    order.push('after a microtask');
    await new TimeSlicer().pause();
    order.push('after pause');
    expect(order).toEqual(['after a microtask', 'immediate', 'after pause']);
  });
});
