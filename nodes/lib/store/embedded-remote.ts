/**
 * The embedded store in a worker thread: a StoreBackend on the main thread whose DuckDB file is owned by an
 * EmbeddedBackend in embedded-thread.ts. Why: turning a batch's points into rows, filling DuckDB's vectors and the
 * appenders' flushes were ~12-20 % of the main thread at the runtime's batched limit (the profile in the README's
 * "What bounds the full pipeline's batched rate"), work that holds up every message behind it; in the thread it
 * runs on the other core and the main thread only packs the points (thread-wire.ts) and hands them over.
 *
 * The worker owns the file alone, queries and partition operations included: a DuckDBInstance made in another
 * thread is an instance of its own (its rows are not seen by this one, and DuckDB's file lock is per process, so
 * nothing would stop two writers). The file is claimed on this thread (open-files.ts) before the worker opens it,
 * so a second store of the same file is refused whichever thread it would run in.
 *
 * Every call has an id and is answered by id (writes, queries and exports run concurrently in the thread, as in
 * EmbeddedBackend). Should the worker stop on its own (an error thrown in it, its heap limit), every call it held
 * fails with a retryable StoreError (the writer keeps those batches and sends them again) and the next call starts
 * another worker on the same file once the first has exited. It is never terminated while a DuckDB call may run in
 * it: a worker stopped in the middle of a native call can abort the whole process (node-addon-api cannot throw into
 * an environment that is going away; seen here with @duckdb/node-api 3 times in 4), so close() stops it only once
 * the file is closed, and a worker that stops on its own in the middle of a write may take the process with it (the
 * writer's at-least-once delivery then redelivers after the restart, as after any crash).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { EmbeddedOptions } from './embedded';
import { CATCH_UP_SLICE_MS, SLICE_MS, TimeSlicer } from '../slice';
import { claimFile, releaseFile } from './open-files';
import { workerNice } from '../thread-priority';
import { maxAnswerPoints } from './query-plan';
import { packPoints, type PackedPoints } from './thread-wire';
import { StoreError, type BackendHealth, type Batch, type ExportRow, type PartitionSelector, type Point, type QueryResult, type RangeQuery, type StoreBackend, type WriteHints } from './types';

/** Points packed into one part of a write (see pack()): ~0.5 ms of packing. */
const PACK_PART = 2048;

/** A StoreError as it crosses the thread (`store` false: another Error, which the writer retries). */
export interface WireError {
  message: string;
  store: boolean;
  retryable: boolean;
  status?: number;
  retryAfterMs?: number;
  serverMessage?: string;
}

export type ToStoreThread =
  | { t: 'open'; id: number }
  | { t: 'write'; id: number; parts?: PackedPoints[]; lines?: string; count: number; behind: boolean }
  | { t: 'query'; id: number; q: RangeQuery }
  | { t: 'health'; id: number }
  | { t: 'count'; id: number; sel: PartitionSelector }
  | { t: 'extent'; id: number; sel: PartitionSelector }
  | { t: 'delete'; id: number; sel: PartitionSelector; expect?: number }
  | { t: 'export'; id: number; sel: PartitionSelector }
  | { t: 'export-next'; id: number }
  | { t: 'export-stop'; id: number; message: string }
  | { t: 'close'; id: number };

export type FromStoreThread = { t: 'ok'; id: number; value: unknown } | { t: 'err'; id: number; error: WireError } | { t: 'rows'; id: number; rows: ExportRow[] };

interface Call {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** An export's consumer, and what it threw (the export's answer then). */
  onRows?: (rows: ExportRow[]) => void | Promise<void>;
  consumerError?: Error;
}

/** The compiled worker script: next to this file, or (running from the TypeScript source, as the tests do) in dist/. */
export function storeThreadScript(): string {
  const here = path.join(__dirname, 'embedded-thread.js');
  if (fs.existsSync(here)) return here;
  const built = path.resolve(__dirname, '../../../dist/nodes/lib/store/embedded-thread.js');
  if (fs.existsSync(built)) return built;
  throw new Error(`the embedded store's worker script is missing (${here}; from source, run npm run build first)`);
}

function fromWire(e: WireError): Error {
  if (!e.store) return new Error(e.message);
  return new StoreError(e.message, { retryable: e.retryable, status: e.status, retryAfterMs: e.retryAfterMs, serverMessage: e.serverMessage });
}

/** The store's options, plus where its thread's script is and the thread's nice value (default: THINGWIRE_WORKER_NICE). */
export type EmbeddedThreadOptions = EmbeddedOptions & { script?: string; threadNice?: number };

/** What the thread is started with (workerData). */
export type StoreThreadInit = EmbeddedOptions & { threadNice: number };

export class EmbeddedThreadBackend implements StoreBackend {
  readonly kind = 'embedded' as const;
  readonly description: string;
  readonly path: string;
  private readonly opts: EmbeddedOptions;
  private readonly script: string;
  private readonly threadNice: number;
  private worker: Worker | undefined;
  /** The worker being started (claim, spawn, open), shared by the calls that wait for it. */
  private starting: Promise<Worker> | undefined;
  /** Resolves when the stopped worker has exited (its file released): a new one waits for it. */
  private exited: Promise<void> = Promise.resolve();
  private readonly calls = new Map<number, Call>();
  private nextId = 1;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Resolves once every write made so far has been handed to the thread (or failed before): see write(). */
  private handedOver: Promise<void> = Promise.resolve();
  /** Workers started (1 after the first call; more after one stopped). */
  starts = 0;

  constructor(opts: EmbeddedThreadOptions) {
    if (!opts || typeof opts.path !== 'string' || opts.path === '') throw new Error('embedded store: path is required');
    this.path = opts.path === ':memory:' ? opts.path : path.resolve(opts.path);
    const { script, threadNice, ...rest } = opts;
    this.threadNice = threadNice ?? workerNice();
    // Read on this thread, as the store on this thread reads it: the worker's process.env is a copy Node makes of the
    // process's (a test runner's own process.env object never reaches it).
    this.opts = { ...rest, path: this.path, maxAnswerPoints: rest.maxAnswerPoints ?? maxAnswerPoints() };
    this.script = script ?? storeThreadScript();
    this.description = `embedded (DuckDB) ${this.path}`;
  }

  /** Starts the worker and opens the file in it (the other methods also start it on first use). */
  static async open(opts: EmbeddedThreadOptions): Promise<EmbeddedThreadBackend> {
    const b = new EmbeddedThreadBackend(opts);
    await b.ready();
    return b;
  }

  // ---- the worker --------------------------------------------------------------------------

  private ready(): Promise<Worker> {
    if (this.worker !== undefined) return Promise.resolve(this.worker);
    if (this.closed) return Promise.reject(new StoreError(`${this.description} is closed`, { retryable: true }));
    this.starting ??= this.start().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async start(): Promise<Worker> {
    await this.exited;
    if (this.path !== ':memory:') claimFile(this.path);
    let exited!: () => void;
    this.exited = new Promise<void>((r) => (exited = r));
    let w: Worker;
    try {
      const init: StoreThreadInit = { ...this.opts, threadNice: this.threadNice };
      w = new Worker(this.script, { workerData: init });
    } catch (e) {
      this.release();
      exited();
      throw new StoreError(`cannot start the thread of ${this.description}: ${(e as Error).message}`, { retryable: true, cause: e });
    }
    this.starts++;
    w.on('message', (m: FromStoreThread) => this.answer(m));
    w.on('error', (e: Error) => this.stopped(w, e.message));
    w.on('exit', (code) => {
      this.stopped(w, `exit code ${code}`);
      this.release();
      exited();
    });
    this.worker = w;
    try {
      await this.post<void>(w, { t: 'open', id: this.nextId++ });
    } catch (e) {
      this.worker = undefined;
      await w.terminate();
      throw e;
    }
    return w;
  }

  private release(): void {
    if (this.path !== ':memory:') releaseFile(this.path);
  }

  /** The worker stopped (an error, or it exited): every call it held fails, retryable; the next call starts another. */
  private stopped(w: Worker, why: string): void {
    if (this.worker === w) this.worker = undefined;
    if (this.calls.size === 0) return;
    const err = new StoreError(`the thread of ${this.description} stopped (${why}); what it held was not answered`, { retryable: true });
    const held = [...this.calls.values()];
    this.calls.clear();
    for (const c of held) c.reject(err);
  }

  private post<T>(w: Worker, m: ToStoreThread, transfer?: ArrayBuffer[], onRows?: Call['onRows']): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call: Call = { resolve: resolve as (v: unknown) => void, reject };
      if (onRows !== undefined) call.onRows = onRows;
      try {
        w.postMessage(m, transfer);
      } catch (e) {
        // A value the structured clone refuses (a query holding a function...): that call's error, nothing else's.
        reject(new StoreError(`${this.description}: cannot hand the call to its thread: ${(e as Error).message}`, { retryable: false, status: 400 }));
        return;
      }
      if (this.calls.size === 0) w.ref();
      this.calls.set(m.id, call);
    });
  }

  /**
   * Hands a call over: at once when the worker runs (so calls reach it in the order they were made, close() last),
   * else once it has started.
   */
  private call<T>(make: () => { m: ToStoreThread; transfer?: ArrayBuffer[] }, onRows?: Call['onRows']): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError(`${this.description} is closed`, { retryable: true }));
    const send = (w: Worker): Promise<T> => {
      const { m, transfer } = make();
      return this.post<T>(w, m, transfer, onRows);
    };
    return this.worker !== undefined ? send(this.worker) : this.ready().then(send);
  }

  private settle(id: number): Call | undefined {
    const c = this.calls.get(id);
    if (c === undefined) return undefined;
    this.calls.delete(id);
    // An idle worker does not keep the process alive (a call waiting for it does).
    if (this.calls.size === 0) this.worker?.unref();
    return c;
  }

  private answer(m: FromStoreThread): void {
    if (m.t === 'rows') {
      const c = this.calls.get(m.id);
      if (c?.onRows === undefined) return;
      const w = this.worker;
      let done: Promise<void>;
      try {
        done = Promise.resolve(c.onRows(m.rows));
      } catch (e) {
        done = Promise.reject(e);
      }
      done.then(
        () => w?.postMessage({ t: 'export-next', id: m.id } satisfies ToStoreThread),
        (e: unknown) => {
          c.consumerError = e instanceof Error ? e : new Error(String(e));
          w?.postMessage({ t: 'export-stop', id: m.id, message: c.consumerError.message } satisfies ToStoreThread);
        },
      );
      return;
    }
    const c = this.settle(m.id);
    if (c === undefined) return;
    if (m.t === 'ok') c.resolve(m.value);
    else c.reject(c.consumerError ?? fromWire(m.error));
  }

  // ---- StoreBackend ------------------------------------------------------------------------

  write(batch: Batch, hints?: WriteHints): Promise<void> {
    if (batch.count === 0 && (batch.points === undefined || batch.points.length === 0)) return Promise.resolve();
    const behind = hints?.behind === true;
    const points = batch.points;
    // Handed over in the order they were made, whatever each one's packing took (a later write of the same series and
    // time replaces an earlier one).
    const before = this.handedOver;
    let handed!: () => void;
    this.handedOver = new Promise<void>((resolve) => (handed = resolve));
    const packed = points === undefined ? Promise.resolve(undefined) : this.pack(points, behind);
    return Promise.all([packed, before]).then(
      ([parts]) => {
        const answer = this.call<void>(() => {
          const id = this.nextId++;
          if (parts === undefined) return { m: { t: 'write', id, lines: batch.lines, count: batch.count, behind } };
          const transfer: ArrayBuffer[] = [];
          for (const p of parts) transfer.push(p.u.buffer as ArrayBuffer, p.f.buffer as ArrayBuffer);
          return { m: { t: 'write', id, parts, count: points!.length, behind }, transfer };
        });
        handed();
        return answer;
      },
      (e: unknown) => {
        handed();
        throw e;
      },
    );
  }

  /**
   * Packs a batch's points in parts of PACK_PART points, giving the event loop a turn between parts once a slice has
   * run (as the store on this thread slices its parsing, ../slice): packing 40,000 points at once (a group commit)
   * held it for ~10 ms.
   */
  private async pack(points: readonly Point[], behind: boolean): Promise<PackedPoints[]> {
    const slicer = new TimeSlicer(behind ? CATCH_UP_SLICE_MS : SLICE_MS);
    const parts: PackedPoints[] = [];
    for (let at = 0; at < points.length; at += PACK_PART) {
      if (at > 0 && slicer.due()) await slicer.pause();
      parts.push(packPoints(points, at, Math.min(points.length, at + PACK_PART)));
    }
    return parts;
  }

  query(q: RangeQuery): Promise<QueryResult> {
    return this.call<QueryResult>(() => ({ m: { t: 'query', id: this.nextId++, q } }));
  }

  async health(): Promise<BackendHealth> {
    try {
      return await this.call<BackendHealth>(() => ({ m: { t: 'health', id: this.nextId++ } }));
    } catch (e) {
      const why = (e as Error).message;
      return { ok: false, detail: why.startsWith(this.description) ? why : `${this.description}: ${why}` };
    }
  }

  countRange(sel: PartitionSelector): Promise<number> {
    return this.call<number>(() => ({ m: { t: 'count', id: this.nextId++, sel } }));
  }

  extentOf(sel: PartitionSelector): Promise<{ min: number; max: number; count: number } | null> {
    return this.call<{ min: number; max: number; count: number } | null>(() => ({ m: { t: 'extent', id: this.nextId++, sel } }));
  }

  deleteRange(sel: PartitionSelector, expect?: number): Promise<number> {
    return this.call<number>(() => ({ m: expect === undefined ? { t: 'delete', id: this.nextId++, sel } : { t: 'delete', id: this.nextId++, sel, expect } }));
  }

  exportRange(sel: PartitionSelector, onRows: (rows: ExportRow[]) => void | Promise<void>): Promise<number> {
    return this.call<number>(() => ({ m: { t: 'export', id: this.nextId++, sel } }), onRows);
  }

  /** Finishes what the thread holds, checkpoints and closes the file there, and stops the thread. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // Writes being packed are handed over first.
      await this.handedOver;
      this.closed = true;
      const w = this.worker ?? (this.starting ? await this.starting.catch(() => undefined) : undefined);
      if (w === undefined) return;
      try {
        await this.post<void>(w, { t: 'close', id: this.nextId++ });
      } finally {
        this.worker = undefined;
        await w.terminate();
        await this.exited;
      }
    })();
    return this.closing;
  }
}
