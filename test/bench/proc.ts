/**
 * What the standalone bench scripts (alert-latency, dashboard, e2e, retention, faults) measure about processes and
 * the machine, their percentile, and the clean-up they need however they end: one copy instead of one per script.
 * Linux /proc; NaN where it is not there.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

/** user + system CPU time of a process (ms), from /proc/<pid>/stat. */
export function cpuMs(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/**
 * How long one thread of a process has run on a core and waited in the run queue for one (ms), from
 * /proc/<pid>/task/<tid>/schedstat (the kernel's schedstats: both in ns). The main thread's tid is the pid. A thread
 * that is runnable all the time shows run + wait near the wall time however little it runs: on a machine short of
 * cores, the wait is what the others took from it. NaN where it is not there.
 */
export function threadSchedMs(pid: number, tid: number = pid): { runMs: number; waitMs: number } {
  try {
    const [run, wait] = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    if (!Number.isFinite(run) || !Number.isFinite(wait)) return { runMs: NaN, waitMs: NaN };
    return { runMs: run / 1e6, waitMs: wait / 1e6 };
  } catch {
    return { runMs: NaN, waitMs: NaN };
  }
}

/** Resident set size of a process in MB, from /proc/<pid>/status. */
export function rssMB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Busy and total CPU time of the whole machine (ms, all cores). */
export function machineCpu(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

/** The load averages (1, 5, 15 min) as "1.23 1.45 2.01". */
export function loadavg(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** The p-th percentile (nearest rank) of ascending values; NaN for none. */
export function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

// ---- clean-up on the way out -------------------------------------------------------------------------------------

/**
 * What a bench script must undo however it ends (servers to kill, directories to remove): run newest first, each
 * best effort, by cleanupAll() and, once guardProcess() is called, on exit, SIGINT/SIGTERM and the watchdog.
 */
const cleanups: Array<() => void> = [];

/** Registers `fn`; the returned function unregisters it (when the thing was stopped the normal way). */
export function onCleanup(fn: () => void): () => void {
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

/** Runs every registered clean-up, newest first, synchronously and best effort. */
export function cleanupAll(): void {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      c();
    } catch {
      // best effort on the way out
    }
  }
}

/**
 * Cleans up on SIGINT/SIGTERM (exit 130) and on exit, and stops the script with exit 1 when it has not finished
 * after `watchdogMs` (saying so on stderr with the load average).
 */
export function guardProcess(name: string, watchdogMs: number): void {
  const t = setTimeout(() => {
    console.error(`${name}: not finished after ${Math.round(watchdogMs / 1000)} s; stopping (load average ${loadavg()})`);
    cleanupAll();
    process.exit(1);
  }, watchdogMs);
  t.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanupAll();
      process.exit(130);
    });
  }
  process.once('exit', cleanupAll);
}
