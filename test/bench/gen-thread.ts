/**
 * The load generator (runtime/loadgen.ts) in a worker thread of its own, at a nice value of its own (bench:e2e).
 *
 * The benchmark machine's two cores are shared by the runtime under test and the generator, which stands for
 * devices that are not on the runtime's machine. At the same priority the generator's thread takes core time from the
 * runtime's event loop (the pipeline's serial stage) whenever both are ready; at nice 19 it gets what the runtime
 * leaves (runtime alone at 300,000 readings/s asked, 60 s windows: docs/benchmark-log.md, 2026-12-06 from 05:36). In
 * bench:e2e, though, a generator at nice 19 could not keep the asked rate once the runtime was busy (knees ~142,000
 * against 237,660 at 0), so `--generator-nice` defaults to 0 and the thread's main gain is an event loop of its own.
 * Only the generator's thread is niced: this process's event loop (the latency polls, the checks) and the runtimes
 * it starts (which would inherit the nice value of the thread that starts them) keep theirs.
 *
 * What e2e.ts reads of a LoadGenerator is mirrored here: lastSeq, failedSeqs and totalReadings as of the end of the
 * last call, and the probe devices' publish times live, in shared memory (the latency polls look them up while a
 * step runs).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { LoadOptions, PhaseOptions, PhaseResult, PublishedSeqs, PublishTimes } from '../../runtime/loadgen';

/** Publish times kept per probe device: the last RING seqs (a slot per seq modulo RING). */
export const RING = 1 << 16;

/**
 * One tracked device's publish times in shared memory: the generator's thread writes a slot's time, then its seq
 * (Atomics.store, so a reader that sees the seq sees the time); a reader answers a seq only from its own slot.
 */
export class SharedTimes implements PublishTimes {
  readonly seqs: Uint32Array;
  readonly times: Float64Array;

  constructor(readonly buffers: { seqs: SharedArrayBuffer; times: SharedArrayBuffer } = { seqs: new SharedArrayBuffer(4 * RING), times: new SharedArrayBuffer(8 * RING) }) {
    this.seqs = new Uint32Array(buffers.seqs);
    this.times = new Float64Array(buffers.times);
  }

  set(seq: number, at: number): this {
    const slot = seq % RING;
    this.times[slot] = at;
    Atomics.store(this.seqs, slot, seq);
    return this;
  }

  get(seq: number): number | undefined {
    const slot = seq % RING;
    if (seq === 0 || Atomics.load(this.seqs, slot) !== seq) return undefined;
    const at = this.times[slot];
    // Overwritten meanwhile by a seq RING later: not this one's time.
    return Atomics.load(this.seqs, slot) === seq ? at : undefined;
  }
}

/** What the thread is started with. */
export interface GenThreadInit {
  opts: LoadOptions;
  nice: number;
  tracked: Array<{ device: number; seqs: SharedArrayBuffer; times: SharedArrayBuffer }>;
}

export type ToGenThread = { id: number; op: 'connect' } | { id: number; op: 'run'; phase: Omit<PhaseOptions, 'onProgress'> } | { id: number; op: 'close' };

/** A call answered: the generator's figures as of its end. */
export interface GenThreadDone {
  id: number;
  ok: true;
  result?: PhaseResult;
  lastSeq: Uint32Array;
  failed: Array<[number, number[]]>;
  total: number;
}

export type FromGenThread = { op: 'ready'; niceProblem?: string; nice: number } | GenThreadDone | { id: number; ok: false; error: string };

/** The thread's script: next to this file when built, else in dist/ (a test running from source; npm test builds first). */
function workerScript(): string {
  const here = path.join(__dirname, 'gen-thread-worker.js');
  return fs.existsSync(here) ? here : path.resolve(__dirname, '../../dist/test/bench/gen-thread-worker.js');
}

export class GeneratorThread implements PublishedSeqs {
  readonly lastSeq: Uint32Array;
  readonly failedSeqs = new Map<number, number[]>();
  readonly publishedAt = new Map<number, SharedTimes>();
  totalReadings = 0;
  /** The nice value the thread runs at, and why not the one asked for (when it could not be set). */
  nice = 0;
  niceProblem: string | undefined;
  private readonly worker: Worker;
  private readonly calls = new Map<number, { resolve: (m: GenThreadDone) => void; reject: (e: Error) => void }>();
  /** start()'s promise, settled by the thread's 'ready' or its failure. */
  private starting: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private nextId = 1;
  private stopped: Error | undefined;

  private constructor(readonly opts: LoadOptions, nice: number) {
    this.lastSeq = new Uint32Array(opts.devices);
    for (const d of opts.track ?? []) this.publishedAt.set(d, new SharedTimes());
    const init: GenThreadInit = { opts, nice, tracked: [...this.publishedAt].map(([device, t]) => ({ device, ...t.buffers })) };
    this.worker = new Worker(workerScript(), { workerData: init });
    this.worker.on('message', (m: FromGenThread) => this.answer(m));
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`the load generator's thread exited (code ${code})`)));
  }

  /** Starts the thread; resolves once it runs (at `nice`, or as it could: see niceProblem). */
  static start(opts: LoadOptions, nice: number): Promise<GeneratorThread> {
    const g = new GeneratorThread(opts, nice);
    return new Promise((resolve, reject) => {
      g.starting = { resolve: () => resolve(g), reject };
    });
  }

  connect(): Promise<void> {
    return this.call({ id: this.nextId++, op: 'connect' }).then(() => undefined);
  }

  /** One phase (onProgress is not carried over to the thread). */
  async run(phase: PhaseOptions): Promise<PhaseResult> {
    const { onProgress, ...rest } = phase;
    if (onProgress !== undefined) throw new Error('GeneratorThread.run: onProgress is not supported');
    const m = await this.call({ id: this.nextId++, op: 'run', phase: rest });
    return m.result!;
  }

  /** Closes the generator's connections and stops the thread. */
  async close(): Promise<void> {
    try {
      await this.call({ id: this.nextId++, op: 'close' });
    } finally {
      await this.worker.terminate();
    }
  }

  private call(m: ToGenThread): Promise<GenThreadDone> {
    if (this.stopped) return Promise.reject(this.stopped);
    return new Promise((resolve, reject) => {
      this.calls.set(m.id, { resolve, reject });
      this.worker.postMessage(m);
    });
  }

  private answer(m: FromGenThread): void {
    if ('op' in m) {
      this.nice = m.nice;
      this.niceProblem = m.niceProblem;
      this.starting?.resolve();
      this.starting = undefined;
      return;
    }
    const c = this.calls.get(m.id);
    if (!c) return;
    this.calls.delete(m.id);
    if (!m.ok) {
      c.reject(new Error(m.error));
      return;
    }
    this.lastSeq.set(m.lastSeq);
    this.failedSeqs.clear();
    for (const [d, list] of m.failed) this.failedSeqs.set(d, list);
    this.totalReadings = m.total;
    c.resolve(m);
  }

  private fail(e: Error): void {
    this.stopped ??= e;
    this.starting?.reject(e);
    this.starting = undefined;
    for (const c of this.calls.values()) c.reject(e);
    this.calls.clear();
  }
}
