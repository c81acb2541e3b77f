/**
 * BatchWriter: the part of the store that never loses data, whatever backend
 * is behind it. Lines are batched by size and time, sent one write at a time,
 * retried with backoff while the backend fails, and kept in a bounded disk
 * spool (DiskSpool) while it is away, then replayed in order. No Node-RED here;
 * clock and timers are injected so tests control time.
 *
 * Queue and order. Batches wait in two places: the spool (on disk) holds the
 * OLDEST ones, memory the newer ones; every spooled batch is older than every
 * memory batch, and the sender always takes the spool head first, so sends are
 * FIFO overall. When memory holds more than maxMemoryBatches, its oldest batch
 * moves to the spool tail (which keeps the invariant). The batch being sent is
 * the queue head: the spool head (read with peek(), acked when written) or, when
 * the spool is empty, memory's oldest (dropped from memory when written).
 *
 * Failures (see classify()):
 * - retryable (network, timeout, 404, 408, 429, 5xx, 401/403, and any error
 *   that is not a StoreError): the batch stays the queue head. If it came from
 *   memory (so the spool was empty), it is appended to the spool, where it is
 *   the head; if it came from the spool, it stays there un-acked. Then the
 *   writer backs off: min(maxMs, initialMs * factor^(n-1)) with jitter (the delay
 *   is scaled by a random factor in [1 - jitter, 1]; jitter 1 is "full jitter"),
 *   and never less than the server's Retry-After. It retries indefinitely (state
 *   'retrying'); a success resets the backoff.
 *   404 is retryable on purpose: for InfluxDB it means "database/bucket not
 *   found", a configuration error like 401/403 that the operator can fix
 *   without losing the data written meanwhile.
 * - 413 (too large): the batch is split in half by lines (splitLines keeps
 *   quoted newlines) and the halves are sent in its place, down to one line; a
 *   single line that is still too large is rejected.
 * - other non-retryable errors (400, 422, ...): the lines go to onReject with the
 *   server's message and the writer moves on: never retry forever on data the
 *   server will never accept.
 *
 * A batch that was both spooled and written (e.g. close() timed out while it was
 * in flight, or a write timed out after the server stored it) is written again:
 * InfluxDB and the embedded store overwrite the same series + timestamp, so that
 * is harmless; VictoriaMetrics keeps both samples unless it runs with
 * -dedup.minScrapeInterval=1ms (see the README).
 *
 * Settled callbacks (at-least-once delivery upstream): add(lines, onSettled)
 * calls onSettled once every batch holding those lines has left memory: 'durable'
 * when each was written or appended to the (fsynced) spool, 'rejected' when the
 * server refused some of them (400/422: sending again would not help), 'lost'
 * when some could not be kept (spool or memory full, closed without a spool).
 * The MQTT input acknowledges a message to its broker on 'durable' and
 * 'rejected' and leaves it unacknowledged on 'lost', so the broker delivers it
 * again. Batches are ordered by ordinal and leave memory oldest first (except a
 * rejected newest one), so settling is a scan of a short FIFO list.
 *
 * Memory bound: buffered lines < batchSize, memory batches <= maxMemoryBatches
 * (burstMemoryBatches while no write is failing), plus the batch being sent: at
 * most batchSize * (burstMemoryBatches + 2) lines while the backend answers and
 * batchSize * (maxMemoryBatches + 2) however long an outage. Group commit
 * (maxBatchSize) adds at most 3 * (maxBatchSize - batchSize): the buffer, the
 * batch being sent and the one behind it may hold maxBatchSize. When the spool
 * cannot take a batch (full under 'reject-new', or an I/O error), the NEWEST
 * memory batch is rejected through onReject; under 'drop-oldest' the spool
 * drops its oldest batches and onDrop reports the points. Without a spool, `overflow` applies the same two policies
 * to memory.
 */
import { encodePoint, splitLines } from '../line-protocol';
import { SpoolFullError, type DiskSpool, type SpoolPolicy } from './spool';
import { StoreError, type Batch, type Point, type StoreBackend } from './types';

/** The clock and timers the writer uses (injected, so tests control time). */
export interface WriterClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: WriterClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface RetryOptions {
  /** First backoff delay. */
  initialMs: number;
  /** Cap on the backoff delay (Retry-After may exceed it). */
  maxMs: number;
  /** Growth per consecutive failure. */
  factor: number;
  /** 0..1: the delay is scaled by a random factor in [1 - jitter, 1]. 1 = full jitter. */
  jitter: number;
}

export interface BatchWriterOptions {
  /** Lines per batch (a batch is cut when it is full). Default 5000. */
  batchSize: number;
  /**
   * Group commit, for a backend whose every write has a fixed cost (the embedded store: ~0.5 ms a table for each
   * appender flush, and a commit, however few the rows): when writes fall behind, the batches waiting in memory are
   * sent as one write of up to this many lines (their ordinals kept, so each add() still learns its own outcome),
   * and while a write is in flight with no batch behind it the buffer grows up to this many lines, cut (once it
   * holds batchSize) as soon as the write returns. A merged write the backend refuses (400, 413) is taken back
   * apart and its batches sent one by one, as without merging. Default batchSize: no merging; never below it.
   */
  maxBatchSize: number;
  /** A batch is cut this long after its first line was buffered. Default 1000. */
  flushIntervalMs: number;
  /** Ready batches kept in memory before the oldest spills to the spool while the backend fails. Default 4, at least 1. */
  maxMemoryBatches: number;
  /**
   * Ready batches kept in memory while the backend answers (no write failing): a burst faster than the store
   * waits in memory rather than in the disk spool, whose line encoding, fsync, read and parse cost more than the
   * write itself, at the moment the CPU is short. Once a write fails, maxMemoryBatches applies and the excess
   * spills at once. Default maxMemoryBatches (no burst room); never below it.
   */
  burstMemoryBatches: number;
  retry: RetryOptions;
  /** When there is no spool: what to do when memory is full. Default 'reject-new'. */
  overflow: SpoolPolicy;
  /** [0, 1) random source for jitter (tests make it deterministic). */
  random: () => number;
}

export const DEFAULT_WRITER_OPTIONS: Readonly<BatchWriterOptions> = Object.freeze({
  batchSize: 5000,
  maxBatchSize: 5000,
  flushIntervalMs: 1000,
  maxMemoryBatches: 4,
  burstMemoryBatches: 4,
  retry: Object.freeze({ initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 }),
  overflow: 'reject-new',
  random: Math.random,
});

export type WriterRejectCode = 'server_rejected' | 'spool_full' | 'memory_full' | 'closed_unsent';

/** What onReject receives with the lines: why they were not (and will not be) written. */
export class WriteRejectedError extends Error {
  readonly code: WriterRejectCode;
  /** HTTP status, for server_rejected. */
  readonly status?: number;
  /** The server's own message, for server_rejected. */
  readonly serverMessage?: string;
  constructor(code: WriterRejectCode, message: string, opts: { status?: number; serverMessage?: string; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'WriteRejectedError';
    this.code = code;
    this.status = opts.status;
    this.serverMessage = opts.serverMessage;
  }
}

export type WriterState = 'ok' | 'retrying' | 'spooling';

/** Upper bounds, in seconds, of the write-duration histogram (BatchWriter.writeDurations; the store's metrics). */
export const WRITE_SECONDS_BUCKETS: readonly number[] = Object.freeze([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/**
 * How long the backend took over each write, success or failure, since the writer started: `cumulative[i]` writes
 * took at most `le[i]` seconds (Prometheus' buckets), `count` writes in all, `sum` seconds in all.
 */
export interface WriteDurations {
  le: readonly number[];
  cumulative: number[];
  sum: number;
  count: number;
}

export interface WriterStats {
  /** Lines waiting to be cut into a batch. */
  bufferedLines: number;
  /** Batches in memory (the one being sent included, when it came from memory). */
  memoryBatches: number;
  spooledBatches: number;
  spooledBytes: number;
  /** Points in the write in flight (0 when none). */
  inFlight: number;
  /** Points the backend accepted. */
  written: number;
  /** Points given to onReject. */
  rejected: number;
  /** Points dropped (drop-oldest), reported through onDrop. */
  dropped: number;
  /** Failed writes that will be retried. */
  retries: number;
  /** Spool files moved aside as corrupt. */
  corrupt: number;
  /** The last write error's message (kept after recovery; `state` tells whether it still fails). */
  lastError?: string;
  /** 'retrying': the backend is failing and the writer is backing off; 'spooling': batches wait on disk. */
  state: WriterState;
  /** When the next retry is due (clock ms), while retrying. */
  retryAt?: number;
}

export interface FlushResult {
  /** True when everything queued at the time of the call was written (or rejected by the server). */
  complete: boolean;
  stats: WriterStats;
}

export interface CloseResult {
  /** True when everything was written before the timeout. */
  complete: boolean;
  /** Batches and points put in the spool by close(), to be replayed on next start. */
  spooledBatches: number;
  spooledPoints: number;
  /** Points that could not be spooled (no spool, or spool full): given to onReject/onDrop. */
  lostPoints: number;
}

/** The callbacks are called synchronously from the writer's own calls and timers: they must not throw. */
export interface BatchWriterConfig extends Partial<Omit<BatchWriterOptions, 'retry'>> {
  backend: StoreBackend;
  /** The disk spool; undefined to run without one (the embedded backend may). */
  spool?: DiskSpool;
  clock?: WriterClock;
  retry?: Partial<RetryOptions>;
  /** Lines that will not be written, with why (server rejected them, spool full...). */
  onReject?: (lines: string[], error: WriteRejectedError) => void;
  /** Points dropped under 'drop-oldest', with a message saying so. */
  onDrop?: (count: number, message: string) => void;
  /** Called with the stats whenever they change (the node throttles it into its status). */
  onStats?: (stats: WriterStats) => void;
}

/** The batches a queued batch holds, by cut order within this writer: 1, 2, ...; 0 = spooled by an earlier run. */
interface Ordinals {
  ordinal: number;
  /** The last one: more than `ordinal` when batches waiting in memory were merged into one write (maxBatchSize). */
  last: number;
}

interface MemBatch extends Ordinals {
  batch: Batch;
  /** The batches a merged one was made of (mergeHead), in order: what a refusal takes it back to. */
  merged?: MemBatch[];
}

/** The queue head being sent: its origin and what is left to send of it (several parts after a 413 split). */
interface Current {
  origin: 'spool' | 'memory';
  /** The spool id, when origin is 'spool'. */
  spoolId?: number;
  /** memory[0], when origin is 'memory'. */
  mem?: MemBatch;
  ordinal: number;
  last: number;
  parts: Batch[];
}

/** What add()'s onSettled receives; see the file comment. */
export type SettleOutcome = 'durable' | 'rejected' | 'lost';

interface SettleWaiter {
  /** The ordinals of the batches holding the lines: from..to. */
  from: number;
  to: number;
  cb: (outcome: SettleOutcome) => void;
}

interface FlushWaiter {
  target: number;
  resolve: (r: FlushResult) => void;
}

/**
 * How the writer treats an error from backend.write(): 413 is split; a StoreError
 * marked retryable, or with status 401, 403, 404, 408, 429 or 5xx (whatever the
 * backend marked), is retried; other StoreErrors are rejected; anything that is
 * not a StoreError (a bug, an unexpected network failure) is retried, so that no
 * data is lost to it.
 */
export function classify(err: unknown): 'retry' | 'split' | 'reject' {
  if (!(err instanceof StoreError)) return 'retry';
  const s = err.status;
  if (s === 413) return 'split';
  if (err.retryable) return 'retry';
  if (s !== undefined && (s === 401 || s === 403 || s === 404 || s === 408 || s === 429 || s >= 500)) return 'retry';
  return 'reject';
}

/**
 * A batch cut from the buffer, of lines or of points. Its lines are joined into one string only when something
 * reads `lines` (the spool, an InfluxDB write): joining 5,000 lines only for the embedded store to split them again
 * was ~6 % of the runtime's CPU at 10,000 batched readings/s. A batch of points (addPoints) makes its lines only
 * when something reads them (the spool, a refusal); the embedded store reads the points: encoding lines it did not
 * read was 10 % of the runtime's main thread at 10,000 batched readings/s.
 */
class CutBatch implements Batch {
  readonly count: number;
  private list: readonly string[] | undefined;
  private joined: string | undefined;
  private constructor(lineList: readonly string[] | undefined, readonly points: readonly Point[] | undefined) {
    this.list = lineList;
    this.count = lineList !== undefined ? lineList.length : points!.length;
  }
  static ofLines(lines: readonly string[]): CutBatch {
    return new CutBatch(lines, undefined);
  }
  static ofPoints(points: readonly Point[]): CutBatch {
    return new CutBatch(undefined, points);
  }
  get lineList(): readonly string[] {
    // addPoints took checked points (checkPoint), so encodePoint does not throw here.
    return (this.list ??= this.points!.map(encodePoint));
  }
  get lines(): string {
    return (this.joined ??= this.lineList.join('\n'));
  }
}

/**
 * The lists one after another, in one new array. Array.prototype.flatMap did this at ~80 ns an item (a merge of a
 * few hundred thousand points was ~2 % of the runtime's main thread at 190,000 readings/s); this at ~2 ns.
 */
function concat<T>(lists: ReadonlyArray<readonly T[]>): T[] {
  let n = 0;
  for (let k = 0; k < lists.length; k++) n += lists[k].length;
  const out = new Array<T>(n);
  let j = 0;
  for (let k = 0; k < lists.length; k++) {
    const l = lists[k];
    for (let i = 0; i < l.length; i++) out[j++] = l[i];
  }
  return out;
}

/** A batch's lines one by one. */
function linesOf(batch: Batch): readonly string[] {
  return batch.lineList ?? splitLines(batch.lines);
}

function errMessage(e: unknown): string {
  if (e instanceof StoreError) return e.serverMessage && !e.message.includes(e.serverMessage) ? `${e.message}: ${e.serverMessage}` : e.message;
  return e instanceof Error ? e.message : String(e);
}

export class BatchWriter {
  readonly options: Readonly<BatchWriterOptions>;
  private readonly backend: StoreBackend;
  private readonly spool?: DiskSpool;
  private readonly clock: WriterClock;
  private readonly onReject?: BatchWriterConfig['onReject'];
  private readonly onDrop?: BatchWriterConfig['onDrop'];
  private readonly onStats?: BatchWriterConfig['onStats'];

  /** What add() and addPoints() gave and no batch holds yet: lines, and points whose lines are not made yet. */
  private buffer: Array<string | Point> = [];
  /** How many of the buffered entries are points. */
  private bufferedPoints = 0;
  private flushTimer: unknown;
  private memory: MemBatch[] = [];
  private current: Current | undefined;
  /** The part being written, while a write is in flight. */
  private inFlight: Batch | undefined;
  private backoffTimer: unknown;
  private retryAt: number | undefined;
  private attempt = 0;
  private failing = false;
  private lastOrdinal = 0;
  /** Ordinals of batches this writer spooled (earlier runs' batches are 0). */
  private readonly spoolOrdinals = new Map<number, Ordinals>();
  /** Batches up to this ordinal came back from a merged batch the backend refused: not merged again. */
  private unmergedThrough = 0;
  private waiters: FlushWaiter[] = [];
  /** add() callbacks in ordinal order, waiting for their batches to leave memory. */
  private addWaiters: SettleWaiter[] = [];
  /** Batches that were not written as sent: ordinal -> outcome ('rejected' or 'lost'); pruned as callbacks settle. */
  private readonly outcomes = new Map<number, SettleOutcome>();
  /** Why the last spill failed, as the error the lines it rejects carry. */
  private spoolError = new WriteRejectedError('spool_full', 'spool full');

  private written = 0;
  /** Writes by duration: writeBuckets[i] took at most WRITE_SECONDS_BUCKETS[i] and more than the bound before. */
  private readonly writeBuckets = new Array<number>(WRITE_SECONDS_BUCKETS.length).fill(0);
  private writeCount = 0;
  private writeSecondsSum = 0;
  private rejected = 0;
  private dropped = 0;
  private retries = 0;
  private lastError: string | undefined;
  private lastStats: WriterStats | undefined;

  private closing = false;
  private stopped = false;
  private closePromise: Promise<CloseResult> | undefined;
  private closeResolve: ((r: CloseResult) => void) | undefined;
  private closeTimer: unknown;

  constructor(cfg: BatchWriterConfig) {
    const d = DEFAULT_WRITER_OPTIONS;
    this.options = Object.freeze({
      batchSize: cfg.batchSize ?? d.batchSize,
      maxBatchSize: Math.max(cfg.maxBatchSize ?? 0, cfg.batchSize ?? d.batchSize),
      flushIntervalMs: cfg.flushIntervalMs ?? d.flushIntervalMs,
      maxMemoryBatches: cfg.maxMemoryBatches ?? d.maxMemoryBatches,
      burstMemoryBatches: Math.max(cfg.burstMemoryBatches ?? 0, cfg.maxMemoryBatches ?? d.maxMemoryBatches),
      retry: Object.freeze({ ...d.retry, ...cfg.retry }),
      overflow: cfg.overflow ?? d.overflow,
      random: cfg.random ?? d.random,
    });
    const o = this.options;
    if (!(Number.isInteger(o.batchSize) && o.batchSize >= 1)) throw new RangeError(`batchSize must be an integer >= 1, got ${o.batchSize}`);
    if (!Number.isInteger(o.maxBatchSize)) throw new RangeError(`maxBatchSize must be an integer, got ${cfg.maxBatchSize}`);
    if (!(o.flushIntervalMs >= 0)) throw new RangeError(`flushIntervalMs must be >= 0, got ${o.flushIntervalMs}`);
    if (!(Number.isInteger(o.maxMemoryBatches) && o.maxMemoryBatches >= 1)) throw new RangeError(`maxMemoryBatches must be an integer >= 1, got ${o.maxMemoryBatches}`);
    if (!Number.isInteger(o.burstMemoryBatches)) throw new RangeError(`burstMemoryBatches must be an integer, got ${cfg.burstMemoryBatches}`);
    const r = o.retry;
    if (!(r.initialMs >= 0 && r.maxMs >= r.initialMs && r.factor >= 1 && r.jitter >= 0 && r.jitter <= 1)) {
      throw new RangeError(`bad retry options ${JSON.stringify(r)}`);
    }
    this.backend = cfg.backend;
    this.spool = cfg.spool;
    this.clock = cfg.clock ?? systemClock;
    this.onReject = cfg.onReject;
    this.onDrop = cfg.onDrop;
    this.onStats = cfg.onStats;
    // Replay what an earlier run spooled, before anything new.
    if (this.spool && this.spool.size().batches > 0) this.pump();
  }

  // ---- input ------------------------------------------------------------------------------

  /**
   * Buffers encoded lines (one point each, no trailing newline); empty strings are skipped.
   * onSettled, when given, is called once when the lines are durable, refused or lost (see the
   * file comment): usually later; before add() returns only when the spool or memory refuses
   * them at once.
   */
  add(lines: readonly string[], onSettled?: (outcome: SettleOutcome) => void): void {
    if (this.closing) throw new Error('BatchWriter is closed');
    const from = this.lastOrdinal + 1;
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i];
      if (l.length === 0) continue;
      this.buffer.push(l);
      if (this.buffer.length >= this.cutSize()) this.cut();
    }
    this.afterAdd(from, onSettled);
  }

  /**
   * Buffers points that checkPoint accepted, as add() buffers lines: a batch of nothing but points carries them
   * (Batch.points) and makes their lines only when something reads them. The points must not change afterwards.
   * For a backend that reads points (the embedded store); any other reads the lines, made for it when the batch is
   * sent.
   */
  addPoints(points: readonly Point[], onSettled?: (outcome: SettleOutcome) => void): void {
    if (this.closing) throw new Error('BatchWriter is closed');
    const from = this.lastOrdinal + 1;
    for (let i = 0; i < points.length; i++) {
      this.buffer.push(points[i]);
      this.bufferedPoints++;
      if (this.buffer.length >= this.cutSize()) this.cut();
    }
    this.afterAdd(from, onSettled);
  }

  /** Lines the buffer holds before it is cut: maxBatchSize while a write is in flight with no batch behind it. */
  private cutSize(): number {
    return this.inFlight !== undefined && this.memory.length <= (this.current?.origin === 'memory' ? 1 : 0) ? this.options.maxBatchSize : this.options.batchSize;
  }

  /** The flush timer and the settled callback of an add() or addPoints() whose first batch has ordinal `from`. */
  private afterAdd(from: number, onSettled: ((outcome: SettleOutcome) => void) | undefined): void {
    if (this.buffer.length > 0 && this.flushTimer === undefined) {
      this.flushTimer = this.clock.setTimeout(() => {
        this.flushTimer = undefined;
        this.cut();
        this.emitStats();
      }, this.options.flushIntervalMs);
    }
    if (onSettled) {
      const to = this.buffer.length > 0 ? this.lastOrdinal + 1 : this.lastOrdinal;
      // Nothing buffered (all lines empty): still answered asynchronously, like every other call.
      if (to < from) queueMicrotask(() => onSettled('durable'));
      else this.addWaiters.push({ from, to, cb: onSettled });
    }
    this.emitStats();
  }

  /** The oldest ordinal whose batch is still in memory or the buffer (Infinity when none). */
  private lowestUnsettled(): number {
    let low = this.buffer.length > 0 ? this.lastOrdinal + 1 : Infinity;
    for (const m of this.memory) if (m.ordinal < low) low = m.ordinal;
    return low;
  }

  /** Calls the add() callbacks whose batches all left memory (written, spooled, refused or lost). */
  private settleAdds(): void {
    if (this.addWaiters.length === 0) {
      if (this.outcomes.size > 0) this.outcomes.clear();
      return;
    }
    const low = this.lowestUnsettled();
    let n = 0;
    while (n < this.addWaiters.length && this.addWaiters[n].to < low) n++;
    if (n === 0) return;
    const done = this.addWaiters.splice(0, n);
    for (const w of done) {
      let outcome: SettleOutcome = 'durable';
      if (this.outcomes.size > 0) {
        for (let o = w.from; o <= w.to; o++) {
          const x = this.outcomes.get(o);
          if (x === 'lost') outcome = 'lost';
          else if (x === 'rejected' && outcome === 'durable') outcome = 'rejected';
        }
      }
      try {
        w.cb(outcome);
      } catch {
        // A callback must not break the writer (see BatchWriterConfig): ignore its failure.
      }
    }
    const next = this.addWaiters.length > 0 ? this.addWaiters[0].from : Infinity;
    for (const o of this.outcomes.keys()) if (o < next) this.outcomes.delete(o);
  }

  /** Cuts the buffer into a batch at the memory tail, spills past the bound, and starts a send. */
  private cut(): void {
    if (this.flushTimer !== undefined) {
      this.clock.clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.buffer.length === 0) return;
    const entries = this.buffer;
    const nPoints = this.bufferedPoints;
    this.buffer = [];
    this.bufferedPoints = 0;
    const batch =
      nPoints === entries.length
        ? CutBatch.ofPoints(entries as Point[])
        : CutBatch.ofLines(nPoints === 0 ? (entries as string[]) : entries.map((e) => (typeof e === 'string' ? e : encodePoint(e))));
    const ordinal = ++this.lastOrdinal;
    this.memory.push({ batch, ordinal, last: ordinal });
    this.enforceMemoryBound();
    this.pump();
  }

  /** Memory batches allowed now: room for a burst while the backend answers, the outage bound while it fails. */
  private memoryBound(): number {
    return this.failing ? this.options.maxMemoryBatches : this.options.burstMemoryBatches;
  }

  private enforceMemoryBound(): void {
    const bound = this.memoryBound();
    while (this.memory.length > bound) {
      const oldest = this.memory[0];
      if (this.spool) {
        if (this.spill(oldest)) continue;
        // The spool cannot take it: keep the older data, reject the newest batch
        // (memory.length >= 2 here, so the newest is never the batch being sent).
        const newest = this.memory.pop() as MemBatch;
        this.rejectLines(newest.batch, this.spoolError, newest);
      } else if (this.options.overflow === 'drop-oldest') {
        const i = this.current?.mem === oldest ? 1 : 0;
        const [d] = this.memory.splice(i, 1);
        for (let o = d.ordinal; o <= d.last; o++) this.outcomes.set(o, 'lost');
        this.drop(d.batch.count, `memory full (${bound} batches, no spool): dropped the oldest batch of ${d.batch.count} points`);
      } else {
        const newest = this.memory.pop() as MemBatch;
        this.rejectLines(
          newest.batch,
          new WriteRejectedError('memory_full', `memory full (${bound} batches waiting, no spool): ${newest.batch.count} lines not written`),
          newest,
        );
      }
    }
  }

  /** Moves memory[0] to the spool tail. False (nothing changed) when the spool refuses it. */
  private spill(m: MemBatch): boolean {
    const spool = this.spool as DiskSpool;
    let r;
    try {
      r = spool.append(m.batch);
    } catch (e) {
      const msg = e instanceof SpoolFullError ? e.message : `spool write failed: ${errMessage(e)}`;
      this.spoolError = new WriteRejectedError('spool_full', msg, { cause: e });
      return false;
    }
    if (this.memory[0] === m) this.memory.shift();
    this.spoolOrdinals.set(r.id, { ordinal: m.ordinal, last: m.last });
    if (this.current?.mem === m) {
      this.current.origin = 'spool';
      this.current.spoolId = r.id;
      this.current.mem = undefined;
      spool.pin(r.id);
    }
    if (r.droppedPoints > 0 || r.droppedBatches > 0) {
      for (const id of r.droppedIds) this.spoolOrdinals.delete(id);
      this.drop(r.droppedPoints, `spool full (bound ${spool.maxBytes} bytes, policy drop-oldest): dropped the ${r.droppedBatches} oldest batches, ${r.droppedPoints} points`);
    }
    return true;
  }

  /** Gives the lines to onReject; `of`: the batches they came from, whose settled callbacks learn the outcome. */
  private rejectLines(batch: Batch, err: WriteRejectedError, of?: Ordinals): void {
    if (of !== undefined && of.ordinal > 0) for (let o = of.ordinal; o <= of.last; o++) this.outcomes.set(o, err.code === 'server_rejected' ? 'rejected' : 'lost');
    this.rejected += batch.count;
    this.onReject?.(linesOf(batch).slice(), err);
  }

  private drop(count: number, message: string): void {
    this.dropped += count;
    this.onDrop?.(count, message);
  }

  // ---- sending ----------------------------------------------------------------------------

  /** Starts the next write, unless one is in flight, the writer is backing off, or it is stopped. */
  private pump(): void {
    if (this.stopped || this.inFlight !== undefined || this.backoffTimer !== undefined) return;
    if (this.current === undefined) {
      // A buffer that grew past batchSize while the last write was in flight (maxBatchSize) is the next batch.
      if (this.buffer.length >= this.options.batchSize && this.memory.length === 0) this.cut();
      if (this.current !== undefined || this.inFlight !== undefined) return;
      try {
        this.current = this.takeNext();
      } catch (e) {
        // Reading the spool failed (I/O error): back off and try again.
        this.failed(e);
        return;
      }
      if (this.current === undefined) {
        this.settleWaiters(false);
        if (this.closing) this.finishClose();
        this.emitStats();
        return;
      }
    }
    const cur = this.current;
    const part = cur.parts[0];
    this.inFlight = part;
    const started = this.clock.now();
    let p: Promise<void>;
    try {
      p = this.backend.write(part, { behind: this.behind(cur) });
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      () => {
        this.timed(started);
        this.onWritten(cur, part);
      },
      (e: unknown) => {
        this.timed(started);
        this.onWriteFailed(cur, part, e);
      },
    );
    this.emitStats();
  }

  /**
   * Whether the writer is catching up with the write of `cur`'s head part (WriteHints.behind): batches wait behind
   * it, or it is one that only falling behind makes (merged, or grown past batchSize while a write was in flight).
   */
  private behind(cur: Current): boolean {
    if (cur.parts.length > 1 || cur.mem?.merged !== undefined || cur.parts[0].count > this.options.batchSize) return true;
    // The batch being sent is still counted where it came from (memory[0], or the spool's head).
    const spooled = this.spool?.size().batches ?? 0;
    return this.memory.length + spooled > 1;
  }

  private takeNext(): Current | undefined {
    if (this.spool && this.spool.size().batches > 0) {
      const e = this.spool.peek();
      if (e) {
        const o = this.spoolOrdinals.get(e.id);
        return { origin: 'spool', spoolId: e.id, ordinal: o?.ordinal ?? 0, last: o?.last ?? 0, parts: [e.batch] };
      }
    }
    const m = this.memory[0];
    if (m === undefined) return undefined;
    const h = this.failing ? m : this.mergeHead();
    return { origin: 'memory', mem: h, ordinal: h.ordinal, last: h.last, parts: [h.batch] };
  }

  /**
   * Merges the batches waiting at the head of memory into one of at most maxBatchSize lines (all of points, or all
   * of lines, as the head), in their order; returns memory[0]. The merged batch keeps their ordinals (first..last),
   * so every settled callback, refusal and loss still reaches the lines it concerns.
   */
  private mergeHead(): MemBatch {
    const head = this.memory[0];
    const max = this.options.maxBatchSize;
    const ofPoints = head.batch.points !== undefined;
    let n = head.batch.count;
    let k = 1;
    while (k < this.memory.length) {
      const b = this.memory[k].batch;
      if ((b.points !== undefined) !== ofPoints || n + b.count > max) break;
      n += b.count;
      k++;
    }
    if (k === 1 || head.ordinal <= this.unmergedThrough) return head;
    const taken = this.memory.slice(0, k);
    const batch = ofPoints ? CutBatch.ofPoints(concat(taken.map((m) => m.batch.points as Point[]))) : CutBatch.ofLines(concat(taken.map((m) => linesOf(m.batch))));
    const merged: MemBatch = { batch, ordinal: head.ordinal, last: taken[k - 1].last, merged: taken };
    this.memory.splice(0, k, merged);
    return merged;
  }

  private onWritten(cur: Current, part: Batch): void {
    if (this.stopped || this.current !== cur) return;
    this.inFlight = undefined;
    this.written += part.count;
    this.attempt = 0;
    this.failing = false;
    this.partDone(cur);
  }

  /** The head part is done with (written or rejected): next part, or the whole batch is done. */
  private partDone(cur: Current): void {
    cur.parts.shift();
    if (cur.parts.length === 0) {
      if (cur.origin === 'spool') {
        this.spool?.ack(cur.spoolId as number);
        this.spoolOrdinals.delete(cur.spoolId as number);
      } else if (this.memory[0] === cur.mem) {
        this.memory.shift();
      }
      this.current = undefined;
    }
    this.settleWaiters(false);
    this.pump();
    this.emitStats();
  }

  private onWriteFailed(cur: Current, part: Batch, err: unknown): void {
    if (this.stopped || this.current !== cur) return;
    this.inFlight = undefined;
    const c = classify(err);
    const m = cur.mem;
    if (c !== 'retry' && cur.origin === 'memory' && m?.merged !== undefined && cur.parts.length === 1 && this.memory[0] === m) {
      // A merged batch refused, or too large: back to the batches it was made of, each sent (and refused or split)
      // on its own, so a bad line costs its own batch and no more, and each add() learns its own outcome.
      this.memory.splice(0, 1, ...m.merged);
      this.unmergedThrough = m.last;
      this.current = undefined;
      this.pump();
      this.emitStats();
      return;
    }
    if (c === 'split' && part.count > 1) {
      const p = part.points;
      const lines = p === undefined ? linesOf(part) : undefined;
      const n = p !== undefined ? p.length : lines!.length;
      if (n > 1) {
        const half = Math.ceil(n / 2);
        cur.parts.splice(
          0,
          1,
          ...(p !== undefined ? [CutBatch.ofPoints(p.slice(0, half)), CutBatch.ofPoints(p.slice(half))] : [CutBatch.ofLines(lines!.slice(0, half)), CutBatch.ofLines(lines!.slice(half))]),
        );
        this.pump();
        this.emitStats();
        return;
      }
    }
    if (c !== 'retry') {
      const se = err instanceof StoreError ? err : undefined;
      const server = se?.serverMessage ?? errMessage(err);
      this.lastError = errMessage(err);
      // The server answered: it is reachable, so the backoff starts over.
      this.attempt = 0;
      this.failing = false;
      this.rejectLines(
        part,
        new WriteRejectedError('server_rejected', `${this.backend.description} rejected ${part.count} lines${se?.status ? ` (HTTP ${se.status})` : ''}: ${server}`, {
          status: se?.status,
          serverMessage: se?.serverMessage,
          cause: err,
        }),
        cur,
      );
      this.partDone(cur);
      return;
    }
    // Retryable: keep the batch as the queue head, on disk.
    if (cur.origin === 'memory' && this.spool && cur.mem) this.spill(cur.mem);
    this.failed(err);
  }

  /** A retryable failure: count it and back off (or, while closing, stop). */
  private failed(err: unknown): void {
    this.retries++;
    this.attempt++;
    this.failing = true;
    this.lastError = errMessage(err);
    // The burst room is for a store that answers: while it fails, what is past the outage bound goes to disk now.
    this.enforceMemoryBound();
    if (this.closing) {
      this.finishClose();
      return;
    }
    const delay = this.backoffDelay(err instanceof StoreError ? err.retryAfterMs : undefined);
    this.retryAt = this.clock.now() + delay;
    this.backoffTimer = this.clock.setTimeout(() => {
      this.backoffTimer = undefined;
      this.retryAt = undefined;
      this.pump();
    }, delay);
    this.settleWaiters(true);
    this.emitStats();
  }

  /** The delay before retry number `attempt`: exponential, capped, jittered, never below Retry-After. */
  backoffDelay(retryAfterMs?: number, attempt = this.attempt): number {
    const r = this.options.retry;
    let base = r.initialMs;
    for (let i = 1; i < attempt && base < r.maxMs; i++) base *= r.factor;
    base = Math.min(base, r.maxMs);
    const jittered = base * (1 - r.jitter * this.options.random());
    return Math.round(Math.max(jittered, retryAfterMs ?? 0));
  }

  // ---- flush and close --------------------------------------------------------------------

  /** Ordinal of the oldest batch still queued (Infinity when nothing is). */
  private oldestQueued(): number {
    if (this.current) return this.current.ordinal;
    const head = this.spool?.headId();
    if (head !== undefined) return this.spoolOrdinals.get(head)?.ordinal ?? 0;
    return this.memory[0]?.ordinal ?? Infinity;
  }

  private settleWaiters(failed: boolean): void {
    if (this.waiters.length === 0) return;
    const oldest = this.oldestQueued();
    const keep: FlushWaiter[] = [];
    let stats: WriterStats | undefined;
    for (const w of this.waiters) {
      if (oldest > w.target) w.resolve({ complete: true, stats: (stats ??= this.stats()) });
      else if (failed || this.stopped) w.resolve({ complete: false, stats: (stats ??= this.stats()) });
      else keep.push(w);
    }
    this.waiters = keep;
  }

  /**
   * Cuts the buffer into a batch and resolves when everything queued at the
   * time of the call (spool + memory) is written, or rejected by the server.
   * Never rejects and never hangs on an outage: when a write fails with a
   * retryable error (or the writer is already backing off, or is closed) it
   * resolves with complete: false and the stats; the data stays queued and the
   * writer keeps retrying. It does not cut a backoff short.
   */
  flush(): Promise<FlushResult> {
    if (!this.closing) this.cut();
    const target = this.lastOrdinal;
    return new Promise((resolve) => {
      this.waiters.push({ target, resolve });
      this.settleWaiters(this.backoffTimer !== undefined || this.closing);
    });
  }

  /**
   * Stops timers and tries to write everything within timeoutMs: the buffer is
   * cut, a pending backoff is cut short (one immediate attempt), and the queue
   * is sent until it is empty, a write fails with a retryable error, or the
   * time is up. Then whatever is not written (memory batches, and the batch in
   * flight if it came from memory) is appended to the spool, to be replayed on
   * next start; a batch in flight from the spool stays there un-acked. Without a
   * spool (or when it is full), those lines go to onReject ('closed_unsent').
   * A write still in flight is abandoned: its outcome is ignored (the backend's
   * own close() ends it). Resolves with no timer of the writer left; idempotent.
   */
  close(timeoutMs = 10_000): Promise<CloseResult> {
    if (this.closePromise) return this.closePromise;
    this.closing = true;
    this.closePromise = new Promise<CloseResult>((resolve) => {
      this.closeResolve = resolve;
    });
    if (this.backoffTimer !== undefined) {
      this.clock.clearTimeout(this.backoffTimer);
      this.backoffTimer = undefined;
      this.retryAt = undefined;
    }
    this.cut();
    if (!this.stopped) {
      this.closeTimer = this.clock.setTimeout(() => {
        this.closeTimer = undefined;
        this.finishClose();
      }, Math.max(0, timeoutMs));
      this.pump();
    }
    return this.closePromise;
  }

  private finishClose(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of [this.closeTimer, this.flushTimer, this.backoffTimer]) if (t !== undefined) this.clock.clearTimeout(t);
    this.closeTimer = this.flushTimer = this.backoffTimer = undefined;
    this.retryAt = undefined;
    const complete = this.current === undefined && this.memory.length === 0 && (this.spool?.size().batches ?? 0) === 0;

    // What is left, oldest first: the unsent parts of a head batch from memory, then memory.
    const left: Batch[] = [];
    const leftOrdinals: Ordinals[] = [];
    const cur = this.current;
    let memory = this.memory;
    if (cur?.origin === 'memory' && memory[0] === cur.mem) {
      left.push(...cur.parts);
      for (let i = 0; i < cur.parts.length; i++) leftOrdinals.push(cur);
      memory = memory.slice(1);
    }
    for (const m of memory) {
      left.push(m.batch);
      leftOrdinals.push(m);
    }
    this.memory = [];
    this.current = undefined;
    this.inFlight = undefined;
    this.spool?.pin(undefined);

    const result: CloseResult = { complete, spooledBatches: 0, spooledPoints: 0, lostPoints: 0 };
    for (let i = 0; i < left.length; i++) {
      const b = left[i];
      const ordinal = leftOrdinals[i];
      if (this.spool) {
        try {
          const r = this.spool.append(b);
          result.spooledBatches++;
          result.spooledPoints += b.count;
          if (r.droppedPoints > 0) {
            result.lostPoints += r.droppedPoints;
            this.drop(r.droppedPoints, `spool full (bound ${this.spool.maxBytes} bytes, policy drop-oldest) while closing: dropped the ${r.droppedBatches} oldest batches, ${r.droppedPoints} points`);
          }
          continue;
        } catch (e) {
          const msg = e instanceof SpoolFullError ? e.message : `spool write failed: ${errMessage(e)}`;
          result.lostPoints += b.count;
          this.rejectLines(b, new WriteRejectedError('closed_unsent', `closing: not written in time and not spooled (${msg})`, { cause: e }), ordinal);
          continue;
        }
      }
      result.lostPoints += b.count;
      this.rejectLines(b, new WriteRejectedError('closed_unsent', `closing: ${b.count} lines not written in time and there is no spool to keep them`), ordinal);
    }
    this.settleWaiters(true);
    this.emitStats();
    const resolve = this.closeResolve;
    this.closeResolve = undefined;
    resolve?.(result);
  }

  // ---- stats ------------------------------------------------------------------------------

  /** Counts a write that started at `started` (clock ms) and has just ended. */
  private timed(started: number): void {
    const s = Math.max(0, this.clock.now() - started) / 1000;
    this.writeCount++;
    this.writeSecondsSum += s;
    const i = WRITE_SECONDS_BUCKETS.findIndex((le) => s <= le);
    if (i >= 0) this.writeBuckets[i]++;
  }

  /** The durations of the writes so far (see WriteDurations): for the store's metrics. */
  writeDurations(): WriteDurations {
    const cumulative: number[] = [];
    let n = 0;
    for (const c of this.writeBuckets) cumulative.push((n += c));
    return { le: WRITE_SECONDS_BUCKETS, cumulative, sum: this.writeSecondsSum, count: this.writeCount };
  }

  stats(): WriterStats {
    const sz = this.spool?.size() ?? { batches: 0, bytes: 0 };
    const state: WriterState = this.failing ? 'retrying' : sz.batches > 0 ? 'spooling' : 'ok';
    const s: WriterStats = {
      bufferedLines: this.buffer.length,
      memoryBatches: this.memory.length,
      spooledBatches: sz.batches,
      spooledBytes: sz.bytes,
      inFlight: this.inFlight?.count ?? 0,
      written: this.written,
      rejected: this.rejected,
      dropped: this.dropped,
      retries: this.retries,
      corrupt: this.spool?.corrupt.length ?? 0,
      state,
    };
    if (this.lastError !== undefined) s.lastError = this.lastError;
    if (this.retryAt !== undefined) s.retryAt = this.retryAt;
    return s;
  }

  private emitStats(): void {
    this.settleAdds();
    if (!this.onStats) return;
    const s = this.stats();
    const l = this.lastStats;
    if (
      l &&
      l.bufferedLines === s.bufferedLines &&
      l.memoryBatches === s.memoryBatches &&
      l.spooledBatches === s.spooledBatches &&
      l.spooledBytes === s.spooledBytes &&
      l.inFlight === s.inFlight &&
      l.written === s.written &&
      l.rejected === s.rejected &&
      l.dropped === s.dropped &&
      l.retries === s.retries &&
      l.corrupt === s.corrupt &&
      l.lastError === s.lastError &&
      l.state === s.state &&
      l.retryAt === s.retryAt
    ) {
      return;
    }
    this.lastStats = s;
    this.onStats(s);
  }
}
