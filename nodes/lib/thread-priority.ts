/**
 * The nice value of the runtime's worker threads (the anomaly scorer's, the embedded store's and the threads DuckDB
 * starts from it). Linux keeps a nice value per thread, and a thread inherits its creator's: a worker that raises its
 * own leaves the event loop where it was and takes DuckDB's threads with it. The event loop is the pipeline's one
 * serial stage, and the workers have queues: with THINGWIRE_WORKER_NICE=19 and a CPU-hungry neighbour at a lower
 * priority too, the event loop gets a core when it has work (docs/benchmark-log.md, 2026-12-06 from 05:36).
 * Read on the main thread (a worker's process.env is a copy made when it starts; a test runner's never reaches it)
 * and passed in workerData. No Node-RED here.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

export const WORKER_NICE_ENV = 'THINGWIRE_WORKER_NICE';

/** The largest nice value (the lowest priority). */
export const MAX_NICE = 19;

/** Why a THINGWIRE_WORKER_NICE value cannot be used, or undefined when it can (unset or empty is 0). */
export function workerNiceProblem(value: string | undefined): string | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > MAX_NICE) return `${WORKER_NICE_ENV} must be a whole number from 0 (as the event loop) to ${MAX_NICE} (the lowest priority), got ${JSON.stringify(value)}`;
  return undefined;
}

/** The nice value asked for the worker threads: 0 when unset (the runtime refuses a bad value at start, runtime/config.ts; here it counts as 0). */
export function workerNice(env: NodeJS.ProcessEnv = process.env): number {
  const v = env[WORKER_NICE_ENV];
  if (v === undefined || workerNiceProblem(v) !== undefined || v.trim() === '') return 0;
  return Number(v);
}

/** The calling thread's id, from /proc/thread-self (Linux), or undefined where there is none. */
export function callingThreadId(): number | undefined {
  try {
    const link = fs.readlinkSync('/proc/thread-self'); // "<pid>/task/<tid>"
    const tid = Number(link.slice(link.lastIndexOf('/') + 1));
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sets the calling thread's nice value to `nice` when that lowers its priority (a higher value; raising a priority
 * needs a privilege the runtime should not ask for). Returns undefined once done (or when nothing was to be done),
 * else why it could not be.
 */
export function niceCallingThread(nice: number): string | undefined {
  if (!(nice > 0)) return undefined;
  const tid = callingThreadId();
  if (tid === undefined) return `${WORKER_NICE_ENV}: a thread's own priority can be set on Linux only (no /proc/thread-self here)`;
  return niceThread(tid, nice);
}

/** Sets thread `tid`'s nice value to `nice` unless it is there or higher already; returns why not when it fails. */
function niceThread(tid: number, nice: number): string | undefined {
  try {
    if (os.getPriority(tid) < nice) os.setPriority(tid, Math.min(nice, MAX_NICE));
    return undefined;
  } catch (e) {
    return `${WORKER_NICE_ENV}: could not set thread ${tid}'s nice value to ${nice}: ${(e as Error).message}`;
  }
}

/** The ids of this process's threads now (empty where /proc/self/task cannot be read). */
export function threadIds(): Set<number> {
  try {
    return new Set(fs.readdirSync('/proc/self/task').map(Number));
  } catch {
    return new Set();
  }
}

/**
 * Sets the nice value of the threads that are not in `before` (the threads a library started meanwhile: DuckDB starts
 * its own from the libuv thread that opens the database, which does not have the caller's nice value). Returns
 * undefined once done, else why not for the first thread that refused.
 */
export function niceNewThreads(before: ReadonlySet<number>, nice: number): string | undefined {
  if (!(nice > 0)) return undefined;
  let problem: string | undefined;
  for (const tid of threadIds()) {
    if (before.has(tid)) continue;
    // Every new thread is tried, whatever the one before answered.
    const p = niceThread(tid, nice);
    problem ??= p;
  }
  return problem;
}
