/**
 * nodes/lib/slice.ts: due() after the budget only, and pause() gives queued I/O-phase work (setImmediate)
 * its turn before the work goes on, where a resolved promise would not; runSliced runs a generator to its end
 * with such pauses between its steps.
 */
import { runSliced, TimeSlicer } from '../../nodes/lib/slice';

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

describe('runSliced', () => {
  function* steps(n: number, seen: string[]): Generator<void, string> {
    for (let i = 0; i < n; i++) {
      seen.push(`step ${i}`);
      yield;
    }
    return 'done';
  }

  test('a zero budget pauses after every step, so queued immediates run between them; the value comes back', async () => {
    const seen: string[] = [];
    setImmediate(() => seen.push('immediate'));
    const r = await runSliced(steps(3, seen), new TimeSlicer(0));
    expect(r.value).toBe('done');
    expect(seen).toEqual(['step 0', 'immediate', 'step 1', 'step 2']);
    expect(r.busyMs).toBeGreaterThanOrEqual(0);
  });

  test('a large budget runs every step in one go; busyMs counts the steps, not the pauses', async () => {
    const seen: string[] = [];
    setImmediate(() => seen.push('immediate'));
    const r = await runSliced(steps(3, seen), new TimeSlicer(10_000));
    expect(seen).toEqual(['step 0', 'step 1', 'step 2']);
    expect(r.value).toBe('done');
    // One step that spins 30 ms, after a pause the walk does not count.
    function* slow(): Generator<void, number> {
      yield;
      const end = performance.now() + 30;
      while (performance.now() < end) {
        // spin
      }
      return 1;
    }
    const t0 = performance.now();
    const s = await runSliced(slow(), new TimeSlicer(0));
    const wall = performance.now() - t0;
    expect(s.busyMs).toBeGreaterThanOrEqual(29);
    expect(s.busyMs).toBeLessThanOrEqual(wall);
  });
});
