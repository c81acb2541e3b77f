/**
 * test/bench/proc.ts's readings of /proc that the benchmarks report: a thread's time on a core and in the run queue.
 * Linux /proc, where the benchmarks and CI run.
 */
import { cpuMs, threadSchedMs } from '../bench/proc';

describe('threadSchedMs', () => {
  test('counts the main thread running while it computes', () => {
    const before = threadSchedMs(process.pid);
    const t0 = Date.now();
    let x = 0;
    while (Date.now() - t0 < 150) x += Math.sqrt(x + 1);
    const after = threadSchedMs(process.pid);
    expect(x).toBeGreaterThan(0);
    // 150 ms of a busy loop: most of it on a core (the rest, if the machine is busy, waiting for one).
    const ran = after.runMs - before.runMs;
    const waited = after.waitMs - before.waitMs;
    expect(ran).toBeGreaterThan(20);
    expect(ran + waited).toBeGreaterThan(100);
    expect(ran).toBeLessThan(1000);
    expect(waited).toBeGreaterThanOrEqual(0);
    // The process's own CPU counter saw at least as much (it counts every thread).
    expect(cpuMs(process.pid)).toBeGreaterThanOrEqual(after.runMs - 20);
  });

  test('answers NaN for a thread that does not exist', () => {
    const r = threadSchedMs(process.pid, 2 ** 30);
    expect(Number.isNaN(r.runMs)).toBe(true);
    expect(Number.isNaN(r.waitMs)).toBe(true);
  });
});
