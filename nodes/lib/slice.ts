/**
 * Cooperative time slicing for long synchronous work on the main thread (a store batch parsed and
 * appended, a node's state serialised): the work checks `due()` every few items and, once it has run
 * for `budgetMs`, awaits `pause()`, which lets the event loop run everything that queued up meanwhile
 * (MQTT packets, the messages of other nodes, socket.io frames) before it goes on.
 *
 * Why: Node-RED runs every node on one thread. A 5,000-line store batch parsed in one go held it for
 * 20-30 ms, a catch-up of several batches for 300-600 ms, and the anomaly node's 140 MB snapshot (6,000
 * series) for about a second; every reading on its way to a dashboard waited that long
 * (bench:dashboard, 2,000 devices: p99 of 1.7-2.1 s before slicing).
 *
 * The pause is a `setImmediate` (the check phase, after I/O callbacks), not a microtask: a resolved
 * promise would run before any I/O and slice nothing. Pure Node.js, no Node-RED.
 */
import { performance } from 'node:perf_hooks';

/**
 * How long a slice runs before it pauses, by default (ms). A reading on its way to a dashboard passes
 * five event-loop turns (the broker, the MQTT input and three node hops), and while the store writes a
 * batch each of those turns holds a slice: with 4 ms slices, publish -> the Device page's live function
 * p99 was 50-59 ms at 2,000 readings/s, with 1 ms 44 ms (2 ms: 49-52; bench:dashboard, runs interleaved,
 * percentiles over all 180,000 readings of a run). The store's ingest alone is ~4 % slower at 1 ms.
 */
export const SLICE_MS = 1;

/**
 * The slice of a store write made while the writer is catching up (WriteHints.behind: batches queued behind it).
 * The store is then the bottleneck: at 100 readings a message, 1,000 devices, QoS 1, runtime alone, the store's
 * write loop was busy all the time while the main thread idled 11-13 % (during each COMMIT, on DuckDB's thread,
 * nothing else was left to do: every delivery in flight was processed and waiting for the store). With 1 ms
 * slices a write of 80,000 rows took ~30 ms of CPU spread over ~160 ms, one slice per turn of the event loop
 * behind the work its own last acknowledgements let in. A longer slice ends the write sooner, and that work
 * then runs during the COMMIT. Runtime alone, 200,000 readings/s asked, acknowledged readings/s over 20 s,
 * alternated: 116k / 129k / 117k / 110k against 102k / 115k / 109k / 112k with 1 ms (main thread 84-93 % against
 * 83-89 %); budgets of 4, 10 and 25 ms (a hack, same sitting) could not be told apart, none at all no better.
 * Not while keeping up (a 2,000 readings/s load never queues a batch): there 1 ms keeps the dashboards' latency.
 */
export const CATCH_UP_SLICE_MS = 4;

export class TimeSlicer {
  private start = performance.now();

  constructor(readonly budgetMs: number = SLICE_MS) {}

  /** True once the current slice has run for budgetMs. Cheap (one clock read); call it every few items. */
  due(): boolean {
    return performance.now() - this.start >= this.budgetMs;
  }

  /** Gives the event loop a turn, then starts a new slice. */
  async pause(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.start = performance.now();
  }

  /** Starts a new slice now (after an await that gave the event loop its turn anyway, e.g. a file write). */
  restart(): void {
    this.start = performance.now();
  }
}

/**
 * Runs a generator's steps to its end in slices (a pause once a slice has run `slicer.budgetMs`) and returns its value
 * with the time its steps took, pauses left out.
 */
export async function runSliced<T>(steps: Iterator<unknown, T>, slicer: TimeSlicer = new TimeSlicer()): Promise<{ value: T; busyMs: number }> {
  let busyMs = 0;
  let from = performance.now();
  slicer.restart();
  for (;;) {
    const r = steps.next();
    if (r.done === true) return { value: r.value, busyMs: busyMs + performance.now() - from };
    if (slicer.due()) {
      busyMs += performance.now() - from;
      await slicer.pause();
      from = performance.now();
    }
  }
}
