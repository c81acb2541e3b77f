/**
 * nodes/lib/store/writer.ts: batching, one write in flight, FIFO through an
 * outage (memory + disk spool), backoff with Retry-After, rejects and 413
 * splits, the spool bound, restart replay, flush() and close(). Time is a
 * manual clock; the backend is scripted in memory; the spool is a real
 * DiskSpool in a temp dir.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { splitLines } from '../../nodes/lib/line-protocol';
import { DiskSpool, encodeSpoolFile, spoolFileName, type SpoolOptions } from '../../nodes/lib/store/spool';
import { StoreError, type Batch, type Point, type StoreBackend, type WriteHints } from '../../nodes/lib/store/types';
import { mulberry32 } from '../../runtime/sim-model';
import {
  BatchWriter,
  DEFAULT_WRITER_OPTIONS,
  WRITE_SECONDS_BUCKETS,
  classify,
  type BatchWriterConfig,
  type WriteRejectedError,
  type WriterClock,
  type WriterStats,
} from '../../nodes/lib/store/writer';

// ---- test doubles -----------------------------------------------------------------------------

/** Lets every pending promise callback run (one macrotask turn drains the microtask queue). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

class ManualClock implements WriterClock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  pending(): number {
    return this.timers.size;
  }
  /** Moves time forward by ms, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

interface Held {
  batch: Batch;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A backend that records every write and fails as scripted. */
class ScriptedBackend implements StoreBackend {
  readonly kind = 'embedded' as const;
  readonly description = 'scripted backend';
  readonly calls: Array<{ at: number; batch: Batch; failed?: boolean; behind?: boolean }> = [];
  readonly accepted: Batch[] = [];
  /** The batch objects themselves, as write() was given them. */
  readonly sent: Batch[] = [];
  /** Outcomes of the next calls, in order: an error to throw, or undefined to accept. */
  script: Array<Error | undefined> = [];
  /** Asked once the script is used up. */
  fail: (b: Batch) => Error | undefined = () => undefined;
  /** When true, writes neither succeed nor fail until released. */
  hold = false;
  readonly held: Held[] = [];

  constructor(private readonly clock: ManualClock) {}

  write(sent: Batch, hints?: WriteHints): Promise<void> {
    // What was sent, as the spool or a server would see it (a batch the writer cut also carries its lines
    // unjoined and their points: see the points tests).
    const batch: Batch = { lines: sent.lines, count: sent.count };
    this.sent.push(sent);
    this.calls.push({ at: this.clock.now(), batch, behind: hints?.behind });
    const err = this.script.length > 0 ? this.script.shift() : this.fail(batch);
    if (this.hold) {
      return new Promise((resolve, reject) => {
        this.held.push({
          batch,
          resolve: () => {
            this.accepted.push(batch);
            resolve();
          },
          reject,
        });
      });
    }
    if (err) {
      this.calls[this.calls.length - 1].failed = true;
      return Promise.reject(err);
    }
    this.accepted.push(batch);
    return Promise.resolve();
  }
  lines(): string[] {
    return this.accepted.flatMap((b) => splitLines(b.lines));
  }
  counts(): number[] {
    return this.calls.map((c) => c.batch.count);
  }
  query(): never {
    throw new Error('not used');
  }
  health(): Promise<{ ok: boolean; detail: string }> {
    return Promise.resolve({ ok: true, detail: 'scripted' });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const unavailable = (retryAfterMs?: number): StoreError => new StoreError('HTTP 503', { retryable: true, status: 503, retryAfterMs });
const status = (s: number, serverMessage?: string, retryable = false): StoreError =>
  new StoreError(`HTTP ${s}${serverMessage ? `: ${serverMessage}` : ''}`, { retryable, status: s, serverMessage });

/** One line of line protocol; fixed width for i < 9000, so batches of n lines have one size. */
const L = (i: number): string => `m,dev=d${i % 3} v=${1000 + i} ${100_000 + i}`;
const range = (from: number, n: number): string[] => Array.from({ length: n }, (_, k) => L(from + k));

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-writer-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Rig {
  clock: ManualClock;
  backend: ScriptedBackend;
  spool?: DiskSpool;
  w: BatchWriter;
  rejects: Array<{ lines: string[]; error: WriteRejectedError }>;
  drops: Array<{ count: number; message: string }>;
  stats: WriterStats[];
}

type RigConfig = Omit<Partial<BatchWriterConfig>, 'spool' | 'clock'> & { spool?: DiskSpool | false; spoolOpts?: SpoolOptions; clock?: ManualClock };

function rig(cfg: RigConfig = {}): Rig {
  const clock = cfg.clock ?? new ManualClock();
  const backend = (cfg.backend as ScriptedBackend | undefined) ?? new ScriptedBackend(clock);
  const spool = cfg.spool === false ? undefined : (cfg.spool ?? new DiskSpool(dir, { fsync: false, ...cfg.spoolOpts }));
  const r: Rig = { clock, backend, spool, rejects: [], drops: [], stats: [], w: undefined as unknown as BatchWriter };
  const { spoolOpts: _spoolOpts, spool: _spool, clock: _clock, ...rest } = cfg;
  r.w = new BatchWriter({
    random: () => 0.5,
    ...rest,
    backend,
    spool,
    clock,
    onReject: (lines, error) => r.rejects.push({ lines, error }),
    onDrop: (count, message) => r.drops.push({ count, message }),
    onStats: (s) => r.stats.push(s),
  });
  return r;
}

/** Advances time in steps until the writer has nothing left to send (or gives up). */
async function drain(r: Rig, stepMs = 1000, maxSteps = 10_000): Promise<void> {
  for (let i = 0; i < maxSteps; i++) {
    const s = r.w.stats();
    if (s.bufferedLines === 0 && s.memoryBatches === 0 && s.spooledBatches === 0 && s.inFlight === 0) return;
    await r.clock.advance(stepMs);
  }
  throw new Error(`writer did not drain: ${JSON.stringify(r.w.stats())}`);
}

// ---- tests ------------------------------------------------------------------------------------

describe('options', () => {
  test('defaults: 5,000 lines, 1 s, 4 memory batches, retry 500 ms..30 s x2 with 20% jitter', () => {
    const r = rig({ random: undefined });
    expect(r.w.options).toMatchObject({ batchSize: 5000, flushIntervalMs: 1000, maxMemoryBatches: 4, burstMemoryBatches: 4, overflow: 'reject-new' });
    expect(r.w.options.retry).toEqual({ initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 });
    expect(DEFAULT_WRITER_OPTIONS.retry).toEqual(r.w.options.retry);
  });

  test('bad options are refused', () => {
    const backend = new ScriptedBackend(new ManualClock());
    expect(() => new BatchWriter({ backend, batchSize: 0 })).toThrow(RangeError);
    expect(() => new BatchWriter({ backend, maxMemoryBatches: 0 })).toThrow(RangeError);
    expect(() => new BatchWriter({ backend, retry: { jitter: 2 } })).toThrow(RangeError);
    expect(() => new BatchWriter({ backend, retry: { initialMs: 1000, maxMs: 10 } })).toThrow(RangeError);
  });
});

describe('batching', () => {
  test('a batch is cut at batchSize lines; one write in flight, the rest queued in memory', async () => {
    const r = rig({ batchSize: 3, flushIntervalMs: 1000 });
    r.w.add(range(0, 7));
    // Synchronously: the first batch is being written, the second waits, one line is buffered.
    expect(r.backend.counts()).toEqual([3]);
    expect(r.w.stats()).toMatchObject({ bufferedLines: 1, memoryBatches: 2, inFlight: 3 });
    await settle();
    expect(r.backend.counts()).toEqual([3, 3]);
    expect(r.w.stats()).toMatchObject({ bufferedLines: 1, memoryBatches: 0, inFlight: 0, written: 6, state: 'ok' });
    await r.clock.advance(1000);
    expect(r.backend.counts()).toEqual([3, 3, 1]);
    expect(r.backend.lines()).toEqual(range(0, 7));
    expect(r.backend.accepted[0]).toEqual({ lines: range(0, 3).join('\n'), count: 3 });
  });

  test('lines across several add() calls fill one batch; empty strings are skipped', async () => {
    const r = rig({ batchSize: 4 });
    r.w.add([L(0), '']);
    r.w.add([L(1), L(2)]);
    expect(r.backend.calls).toHaveLength(0);
    r.w.add([L(3), L(4)]);
    await settle();
    expect(r.backend.counts()).toEqual([4]);
    expect(r.w.stats().bufferedLines).toBe(1);
  });

  test('a batch is cut flushIntervalMs after its first line, not after the last', async () => {
    const r = rig({ batchSize: 100, flushIntervalMs: 1000 });
    r.w.add([L(0)]);
    await r.clock.advance(600);
    r.w.add([L(1)]);
    await r.clock.advance(399);
    expect(r.backend.calls).toHaveLength(0);
    await r.clock.advance(1);
    expect(r.backend.calls).toEqual([{ at: 1000, batch: { lines: `${L(0)}\n${L(1)}`, count: 2 }, behind: false }]);
    // The next line starts a new interval.
    await r.clock.advance(500);
    r.w.add([L(2)]);
    await r.clock.advance(999);
    expect(r.backend.calls).toHaveLength(1);
    await r.clock.advance(1);
    expect(r.backend.calls[1]).toEqual({ at: 2500, batch: { lines: L(2), count: 1 }, behind: false });
    expect(r.clock.pending()).toBe(0);
  });

  test('a batch cut by size cancels the interval timer; leftover lines get their own', async () => {
    const r = rig({ batchSize: 2, flushIntervalMs: 1000 });
    r.w.add([L(0)]);
    expect(r.clock.pending()).toBe(1);
    r.w.add([L(1)]);
    expect(r.clock.pending()).toBe(0);
    r.w.add([L(2)]);
    await r.clock.advance(1000);
    expect(r.backend.counts()).toEqual([2, 1]);
  });

  test('exactly one write in flight: the next starts only when the previous settles', async () => {
    const r = rig({ batchSize: 2 });
    r.backend.hold = true;
    r.w.add(range(0, 6));
    await r.clock.advance(5000);
    expect(r.backend.calls).toHaveLength(1);
    r.backend.held[0].resolve();
    await settle();
    expect(r.backend.calls).toHaveLength(2);
    r.backend.held[1].resolve();
    await settle();
    r.backend.held[2].resolve();
    await settle();
    expect(r.backend.calls).toHaveLength(3);
    expect(r.backend.lines()).toEqual(range(0, 6));
  });
});

describe('outage: retries, spool, order', () => {
  test('every point is written exactly once and in order across a 60 s outage', async () => {
    const r = rig({ batchSize: 50, maxMemoryBatches: 2, flushIntervalMs: 1000, retry: { maxMs: 5000 }, random: mulberry(7) });
    r.backend.fail = () => (r.clock.now() < 60_000 ? unavailable() : undefined);
    let next = 0;
    // 100 points/s for 2 minutes, in messages of 10.
    for (let t = 0; t < 120_000; t += 100) {
      r.w.add(range(next, 10));
      next += 10;
      await r.clock.advance(100);
    }
    await drain(r);
    expect(r.backend.lines()).toEqual(range(0, next));
    const s = r.w.stats();
    expect(s).toMatchObject({ written: next, rejected: 0, dropped: 0, state: 'ok', spooledBatches: 0, memoryBatches: 0 });
    expect(s.retries).toBeGreaterThan(5);
    expect(s.lastError).toBe('HTTP 503');
    expect(Math.max(...r.stats.map((x) => x.spooledBatches))).toBeGreaterThan(50);
    // The status went ok -> retrying -> spooling (replaying) -> ok.
    const states = r.stats.map((x) => x.state).filter((x, i, a) => i === 0 || a[i - 1] !== x);
    expect(states).toEqual(['ok', 'retrying', 'spooling', 'ok']);
    // Nothing was sent out of order, even failed attempts: each attempt starts where the last success ended.
    let expectedFirst = 0;
    for (const c of r.backend.calls) {
      expect(splitLines(c.batch.lines)[0]).toBe(L(expectedFirst));
      if (!c.failed) expectedFirst += c.batch.count;
    }
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.lp'))).toEqual([]);
  });

  test('memory stays bounded during a long outage; the spool takes the rest', async () => {
    const batchSize = 100;
    const maxMemoryBatches = 3;
    const r = rig({ batchSize, maxMemoryBatches });
    r.backend.fail = () => unavailable();
    let maxInMemory = 0;
    const check = (s: WriterStats): void => {
      expect(s.bufferedLines).toBeLessThan(batchSize);
      expect(s.memoryBatches).toBeLessThanOrEqual(maxMemoryBatches);
      maxInMemory = Math.max(maxInMemory, s.bufferedLines + s.memoryBatches * batchSize + s.inFlight);
    };
    let next = 0;
    // 10 minutes at 200 points/s.
    for (let t = 0; t < 600_000; t += 500) {
      r.w.add(range(next % 8000, 100));
      next += 100;
      await r.clock.advance(500);
      check(r.w.stats());
    }
    for (const s of r.stats) check(s);
    expect(maxInMemory).toBeLessThanOrEqual(batchSize * (maxMemoryBatches + 2));
    const s = r.w.stats();
    expect(s.state).toBe('retrying');
    expect(s.spooledBatches).toBeGreaterThan(1000);
    expect(s.spooledBatches * batchSize + s.memoryBatches * batchSize + s.bufferedLines).toBe(next);
    r.backend.fail = () => undefined;
    await drain(r, 30_000);
    expect(r.w.stats()).toMatchObject({ written: next, state: 'ok' });
  });

  test('a burst while the backend answers waits in memory (burstMemoryBatches); once a write fails, the excess spills at once', async () => {
    const batchSize = 10;
    const r = rig({ batchSize, maxMemoryBatches: 2, burstMemoryBatches: 6 });
    expect(r.w.options).toMatchObject({ maxMemoryBatches: 2, burstMemoryBatches: 6 });
    r.backend.hold = true;
    // Six batches (the one in flight counts): all in memory, none on disk.
    r.w.add(range(0, 60));
    await settle();
    expect(r.w.stats()).toMatchObject({ memoryBatches: 6, spooledBatches: 0, state: 'ok' });
    expect(r.backend.held).toHaveLength(1);
    // A seventh is past the burst room: the oldest (the one in flight) goes to the spool.
    r.w.add(range(60, 10));
    await settle();
    expect(r.w.stats()).toMatchObject({ memoryBatches: 6, spooledBatches: 1 });
    // The write in flight fails: memory is cut to the outage bound at once, the rest spilled behind it in order.
    r.backend.hold = false;
    r.backend.held.shift()!.reject(unavailable());
    await settle();
    const s = r.w.stats();
    expect(s.state).toBe('retrying');
    expect(s.memoryBatches).toBe(2);
    expect(s.spooledBatches).toBe(5);
    for (const st of r.stats.filter((x) => x.state === 'retrying')) expect(st.memoryBatches).toBeLessThanOrEqual(2);
    // Back up: everything written once, in order.
    await drain(r);
    expect(r.backend.lines()).toEqual(range(0, 70));
    expect(r.w.stats()).toMatchObject({ written: 70, rejected: 0, dropped: 0, state: 'ok' });
  });

  test('a batch that fails from memory goes to the spool (its head) and is retried from there', async () => {
    const r = rig({ batchSize: 5, retry: { initialMs: 1000, jitter: 0 } });
    r.backend.script = [unavailable()];
    r.w.add(range(0, 5));
    await settle();
    expect(r.w.stats()).toMatchObject({ memoryBatches: 0, spooledBatches: 1, state: 'retrying', retries: 1, retryAt: 1000 });
    expect(new DiskSpool(dir).peek()?.batch).toEqual({ lines: range(0, 5).join('\n'), count: 5 });
    r.w.add(range(5, 5)); // newer: waits in memory behind the spooled one
    await settle();
    expect(r.backend.calls).toHaveLength(1);
    await r.clock.advance(1000);
    expect(r.backend.lines()).toEqual(range(0, 10));
    expect(r.w.stats()).toMatchObject({ spooledBatches: 0, memoryBatches: 0, state: 'ok' });
  });

  test('without a spool a failed batch waits in memory and is retried', async () => {
    const r = rig({ spool: false, batchSize: 5, retry: { initialMs: 100, jitter: 0 } });
    r.backend.script = [unavailable(), unavailable()];
    r.w.add(range(0, 10));
    await r.clock.advance(50);
    expect(r.w.stats()).toMatchObject({ memoryBatches: 2, spooledBatches: 0, state: 'retrying' });
    await r.clock.advance(1000);
    expect(r.backend.lines()).toEqual(range(0, 10));
  });

  test.each([401, 403, 404, 408, 429, 500, 502, 503])('HTTP %i is retried, even when the backend marked it non-retryable', async (code) => {
    const r = rig({ batchSize: 2, retry: { initialMs: 100, jitter: 0 } });
    r.backend.script = [status(code, 'try later'), status(code, 'try later')];
    r.w.add(range(0, 2));
    await r.clock.advance(1000);
    expect(r.backend.calls).toHaveLength(3);
    expect(r.backend.lines()).toEqual(range(0, 2));
    expect(r.rejects).toEqual([]);
    expect(r.w.stats().retries).toBe(2);
  });

  test('an error that is not a StoreError (a bug, an odd network failure) is retried, not dropped', async () => {
    const r = rig({ batchSize: 2, retry: { initialMs: 100, jitter: 0 } });
    r.backend.script = [new TypeError('socket hang up')];
    r.w.add(range(0, 2));
    await settle();
    expect(r.w.stats().lastError).toBe('socket hang up');
    await r.clock.advance(100);
    expect(r.backend.lines()).toEqual(range(0, 2));
  });

  test('a backend whose write() throws synchronously is treated like a rejected promise', async () => {
    const r = rig({ batchSize: 1, retry: { initialMs: 100, jitter: 0 } });
    const write = r.backend.write.bind(r.backend);
    let first = true;
    r.backend.write = (b: Batch): Promise<void> => {
      if (first) {
        first = false;
        throw unavailable();
      }
      return write(b);
    };
    r.w.add([L(0)]);
    await r.clock.advance(100);
    expect(r.backend.lines()).toEqual([L(0)]);
    expect(r.w.stats().retries).toBe(1);
  });
});

describe('backoff', () => {
  test('grows by factor up to maxMs, then resets after a success', async () => {
    const r = rig({ batchSize: 1, retry: { initialMs: 100, factor: 2, maxMs: 1000, jitter: 0 } });
    r.backend.script = Array.from({ length: 6 }, () => unavailable());
    r.w.add([L(0)]);
    await r.clock.advance(10_000);
    const at = r.backend.calls.map((c) => c.at);
    expect(at).toEqual([0, 100, 300, 700, 1500, 2500, 3500]);
    expect(r.backend.lines()).toEqual([L(0)]);
    // A new failure after the success starts from initialMs again.
    r.backend.script = [unavailable()];
    r.w.add([L(1)]);
    await r.clock.advance(10_000);
    expect(r.backend.calls.slice(7).map((c) => c.at)).toEqual([10_000, 10_100]);
  });

  test('Retry-After is honoured when longer than the backoff', async () => {
    const r = rig({ batchSize: 1, retry: { initialMs: 100, jitter: 0 } });
    r.backend.script = [new StoreError('HTTP 429', { retryable: true, status: 429, retryAfterMs: 7000 })];
    r.w.add([L(0)]);
    await r.clock.advance(10);
    expect(r.w.stats()).toMatchObject({ state: 'retrying', retryAt: 7000 });
    await r.clock.advance(6989);
    expect(r.backend.calls).toHaveLength(1);
    await r.clock.advance(1);
    expect(r.backend.calls.map((c) => c.at)).toEqual([0, 7000]);
    expect(r.w.stats().state).toBe('ok');
    expect(r.w.stats().retryAt).toBeUndefined();
  });

  test('the backoff wins when it is longer than Retry-After', async () => {
    const r = rig({ batchSize: 1, retry: { initialMs: 2000, jitter: 0 } });
    r.backend.script = [unavailable(50)];
    r.w.add([L(0)]);
    await r.clock.advance(5000);
    expect(r.backend.calls.map((c) => c.at)).toEqual([0, 2000]);
  });

  test('jitter scales the delay into [1 - jitter, 1] of the exponential base; 1 is full jitter', () => {
    const backend = new ScriptedBackend(new ManualClock());
    const at = (jitter: number, rnd: number, attempt: number, retryAfter?: number): number =>
      new BatchWriter({ backend, random: () => rnd, retry: { initialMs: 500, maxMs: 30_000, factor: 2, jitter } }).backoffDelay(retryAfter, attempt);
    expect(at(0.2, 0, 1)).toBe(500);
    expect(at(0.2, 0.999999, 1)).toBe(400);
    expect(at(0.2, 0.5, 3)).toBe(1800);
    expect(at(0.2, 0, 20)).toBe(30_000);
    expect(at(0.2, 0, 5000)).toBe(30_000); // no overflow after many attempts
    expect(at(1, 0.5, 2)).toBe(500);
    expect(at(0.2, 0.5, 1, 9000)).toBe(9000);
    const w = new BatchWriter({ backend, random: mulberry(3) });
    for (let i = 0; i < 200; i++) {
      const d = w.backoffDelay(undefined, 4);
      expect(d).toBeGreaterThanOrEqual(3200);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });
});

describe('server rejects', () => {
  test.each([400, 422])('HTTP %i: the lines go to onReject with the server message, not retried; the writer moves on', async (code) => {
    const r = rig({ batchSize: 3 });
    const msg = 'unable to parse \'m,dev=d0 v=1000 100000\': invalid field format';
    r.backend.script = [status(code, msg)];
    r.w.add(range(0, 6));
    await settle();
    expect(r.backend.calls).toHaveLength(2);
    expect(r.backend.lines()).toEqual(range(3, 3));
    expect(r.rejects).toHaveLength(1);
    expect(r.rejects[0].lines).toEqual(range(0, 3));
    expect(r.rejects[0].error).toMatchObject({ name: 'WriteRejectedError', code: 'server_rejected', status: code, serverMessage: msg });
    expect(r.rejects[0].error.message).toBe(`scripted backend rejected 3 lines (HTTP ${code}): ${msg}`);
    expect(r.w.stats()).toMatchObject({ rejected: 3, written: 3, retries: 0, state: 'ok', lastError: `HTTP ${code}: ${msg}` });
  });

  test('a rejected batch that was spooled is acked (removed from the spool)', async () => {
    const r = rig({ batchSize: 2, retry: { initialMs: 100, jitter: 0 } });
    r.backend.script = [unavailable(), status(400, 'bad')];
    r.w.add(range(0, 4));
    await r.clock.advance(1000);
    expect(r.rejects.map((x) => x.lines)).toEqual([range(0, 2)]);
    expect(r.backend.lines()).toEqual(range(2, 2));
    expect(r.w.stats()).toMatchObject({ spooledBatches: 0, state: 'ok' });
  });

  test('413: the batch is split in halves (by lines, quoted newlines kept) down to what the server takes', async () => {
    const r = rig({ batchSize: 7 });
    r.backend.fail = (b) => (b.count > 2 ? status(413, 'request entity too large') : undefined);
    const lines = range(0, 7);
    lines[4] = 'm,dev=d1 note="two\nlines, \\"quoted\\"" 100004';
    r.w.add(lines);
    await r.clock.advance(10);
    expect(r.backend.counts()).toEqual([7, 4, 2, 2, 3, 2, 1]);
    expect(r.backend.lines()).toEqual(lines);
    expect(r.rejects).toEqual([]);
    expect(r.w.stats()).toMatchObject({ written: 7, rejected: 0, retries: 0, state: 'ok' });
  });

  test('413 on a single line: that line is rejected, the rest written', async () => {
    const r = rig({ batchSize: 4 });
    const huge = `m,dev=d0 blob="${'x'.repeat(200)}" 100001`;
    r.backend.fail = (b) => (b.lines.includes('blob=') ? status(413, 'too large') : undefined);
    r.w.add([L(0), huge, L(2), L(3)]);
    await r.clock.advance(10);
    expect(r.backend.lines()).toEqual([L(0), L(2), L(3)]);
    expect(r.rejects).toHaveLength(1);
    expect(r.rejects[0].lines).toEqual([huge]);
    expect(r.rejects[0].error).toMatchObject({ code: 'server_rejected', status: 413 });
  });

  test('a split batch that then hits an outage is kept whole in the spool and finished in order', async () => {
    const r = rig({ batchSize: 8, retry: { initialMs: 100, jitter: 0 } });
    let down = false;
    r.backend.fail = (b) => (down ? unavailable() : b.count > 4 ? status(413, 'too large') : undefined);
    r.backend.script = [status(413, 'too large'), undefined, unavailable()];
    r.w.add(range(0, 8));
    await settle();
    // First half written, second half failed with 503: the whole batch is spooled (dup-safe), the half is retried.
    expect(r.backend.counts()).toEqual([8, 4, 4]);
    expect(r.w.stats()).toMatchObject({ spooledBatches: 1, state: 'retrying' });
    down = true;
    await r.clock.advance(150);
    down = false;
    await r.clock.advance(1000);
    expect(r.backend.lines()).toEqual(range(0, 8));
    expect(r.w.stats()).toMatchObject({ spooledBatches: 0, written: 8 });
  });
});

describe('spool bound', () => {
  const batchBytes = encodeSpoolFile({ lines: range(0, 10).join('\n'), count: 10 }).length;

  test("'reject-new': when the spool is full the newest batches go to onReject; the older ones are kept and written", async () => {
    const r = rig({ batchSize: 10, maxMemoryBatches: 1, spoolOpts: { maxBytes: batchBytes * 3, policy: 'reject-new' } });
    r.backend.fail = () => unavailable();
    r.w.add(range(0, 100));
    await settle();
    expect(r.w.stats()).toMatchObject({ spooledBatches: 3, memoryBatches: 1, rejected: 60, state: 'retrying' });
    expect(r.rejects.map((x) => x.lines)).toEqual([5, 6, 7, 8, 9, 10].map((b) => range((b - 1) * 10, 10)));
    for (const x of r.rejects) {
      expect(x.error.code).toBe('spool_full');
      expect(x.error.message).toMatch(/^spool full \(\d+ of \d+ bytes used, policy reject-new\)/);
    }
    r.backend.fail = () => undefined;
    await drain(r);
    expect(r.backend.lines()).toEqual(range(0, 40));
    expect(r.w.stats()).toMatchObject({ written: 40, rejected: 60, dropped: 0 });
  });

  test("'drop-oldest': the spool drops its oldest batches (never the one being sent) and onDrop reports them", async () => {
    const r = rig({ batchSize: 10, maxMemoryBatches: 1, spoolOpts: { maxBytes: batchBytes * 3, policy: 'drop-oldest' } });
    r.backend.fail = () => unavailable();
    r.w.add(range(0, 100));
    await settle();
    expect(r.drops.map((d) => d.count)).toEqual([10, 10, 10, 10, 10, 10]);
    expect(r.drops[0].message).toMatch(/spool full .*drop-oldest.*10 points/);
    expect(r.w.stats()).toMatchObject({ spooledBatches: 3, memoryBatches: 1, dropped: 60, rejected: 0 });
    r.backend.fail = () => undefined;
    await drain(r);
    // The batch in flight when the outage began, then the newest ones, in order.
    expect(r.backend.lines()).toEqual([...range(0, 10), ...range(70, 30)]);
    expect(r.w.stats()).toMatchObject({ written: 40, dropped: 60 });
  });

  test("no spool, 'reject-new': past maxMemoryBatches the newest batch goes to onReject", async () => {
    const r = rig({ spool: false, batchSize: 10, maxMemoryBatches: 2 });
    r.backend.fail = () => unavailable();
    r.w.add(range(0, 50));
    await settle();
    expect(r.rejects.map((x) => [x.error.code, x.lines[0]])).toEqual([2, 3, 4].map((b) => ['memory_full', L(b * 10)]));
    r.backend.fail = () => undefined;
    await drain(r);
    expect(r.backend.lines()).toEqual(range(0, 20));
  });

  test("no spool, 'drop-oldest': the oldest waiting batch (not the one being sent) is dropped", async () => {
    const r = rig({ spool: false, overflow: 'drop-oldest', batchSize: 10, maxMemoryBatches: 2 });
    r.backend.fail = () => unavailable();
    r.w.add(range(0, 50));
    await settle();
    expect(r.drops.map((d) => d.count)).toEqual([10, 10, 10]);
    r.backend.fail = () => undefined;
    await drain(r);
    expect(r.backend.lines()).toEqual([...range(0, 10), ...range(40, 10)]);
    expect(r.w.stats()).toMatchObject({ written: 20, dropped: 30 });
  });
});

describe('restart and crash recovery', () => {
  test('a new writer on the same spool dir replays the spooled batches in order, before new data', async () => {
    const r1 = rig({ batchSize: 10, maxMemoryBatches: 1 });
    r1.backend.fail = () => unavailable();
    r1.w.add(range(0, 50));
    await settle();
    expect(r1.w.stats()).toMatchObject({ spooledBatches: 4, memoryBatches: 1 });
    // Crash: writer 1 is abandoned as it is (its memory batch is lost, as a crash loses memory).

    const r2 = rig({ batchSize: 10, spool: new DiskSpool(dir, { fsync: false }) });
    r2.w.add(range(100, 10));
    await drain(r2);
    expect(r2.backend.lines()).toEqual([...range(0, 40), ...range(100, 10)]);
    expect(r2.w.stats()).toMatchObject({ written: 50, spooledBatches: 0 });
  });

  test('replay after a crash: tmp leftovers removed, a corrupt batch moved aside and reported, the rest in order', async () => {
    const r1 = rig({ batchSize: 10, maxMemoryBatches: 1 });
    r1.backend.fail = () => unavailable();
    r1.w.add(range(0, 50));
    await settle();
    // The crash hit mid-append of one file and damaged another.
    fs.writeFileSync(path.join(dir, `${spoolFileName(9)}.tmp`), '#thingwire-spool v1 cou');
    const victim = path.join(dir, spoolFileName(3));
    fs.truncateSync(victim, fs.statSync(victim).size - 20);

    const spool = new DiskSpool(dir, { fsync: false });
    expect(spool.recovered.tmpRemoved).toEqual([`${spoolFileName(9)}.tmp`]);
    expect(spool.recovered.corrupt.map((c) => c.file)).toEqual([spoolFileName(3)]);
    const r2 = rig({ batchSize: 10, spool });
    await drain(r2);
    expect(r2.backend.lines()).toEqual([...range(0, 20), ...range(30, 10)]);
    expect(r2.w.stats().corrupt).toBe(1);
    expect(fs.readdirSync(path.join(dir, 'corrupt'))).toEqual([spoolFileName(3)]);
  });

  test('a restart during an outage keeps retrying the replay and keeps FIFO', async () => {
    const r1 = rig({ batchSize: 10, maxMemoryBatches: 1 });
    r1.backend.fail = () => unavailable();
    r1.w.add(range(0, 30));
    await settle();
    await r1.w.close(100);
    const r2 = rig({ batchSize: 10, maxMemoryBatches: 1, spool: new DiskSpool(dir, { fsync: false }), retry: { initialMs: 100, jitter: 0 } });
    r2.backend.fail = () => (r2.clock.now() < 5000 ? unavailable() : undefined);
    for (let i = 0; i < 10; i++) {
      r2.w.add(range(30 + i * 10, 10));
      await r2.clock.advance(500);
    }
    await drain(r2);
    expect(r2.backend.lines()).toEqual(range(0, 130));
  });
});

describe('flush()', () => {
  test('resolves complete when everything queued is written', async () => {
    const r = rig({ batchSize: 10 });
    r.w.add(range(0, 15));
    const res = await r.w.flush();
    expect(res.complete).toBe(true);
    expect(res.stats).toMatchObject({ written: 15, bufferedLines: 0, memoryBatches: 0 });
    expect(r.backend.lines()).toEqual(range(0, 15));
  });

  test('waits for what was queued before it, not for what is added after', async () => {
    const r = rig({ batchSize: 10 });
    r.backend.hold = true;
    r.w.add(range(0, 10));
    let done = false;
    const p = r.w.flush().then((x) => {
      done = true;
      return x;
    });
    r.w.add(range(10, 10));
    await settle();
    expect(done).toBe(false);
    r.backend.held[0].resolve();
    await settle();
    expect(done).toBe(true);
    expect((await p).complete).toBe(true);
    expect(r.backend.calls).toHaveLength(2); // the later batch is in flight, not awaited
  });

  test('waits for batches spooled by an earlier run', async () => {
    const r1 = rig({ batchSize: 10, maxMemoryBatches: 1 });
    r1.backend.fail = () => unavailable();
    r1.w.add(range(0, 30));
    await r1.w.close(0);
    const r2 = rig({ batchSize: 10, spool: new DiskSpool(dir, { fsync: false }) });
    const res = await r2.w.flush();
    expect(res.complete).toBe(true);
    expect(r2.backend.lines()).toEqual(range(0, 30));
  });

  test('during an outage it resolves with complete: false and the state, without losing the data', async () => {
    const r = rig({ batchSize: 10, retry: { initialMs: 1000, jitter: 0 } });
    r.backend.script = [unavailable()];
    r.w.add(range(0, 5));
    const res = await r.w.flush();
    expect(res.complete).toBe(false);
    expect(res.stats).toMatchObject({ state: 'retrying', spooledBatches: 1, lastError: 'HTTP 503' });
    // Called again while backing off: resolves at once, does not cut the backoff short.
    const again = await r.w.flush();
    expect(again.complete).toBe(false);
    expect(r.backend.calls).toHaveLength(1);
    await r.clock.advance(1000);
    expect(r.backend.lines()).toEqual(range(0, 5));
    expect((await r.w.flush()).complete).toBe(true);
  });
});

describe('close()', () => {
  test('writes everything when the backend answers, resolves complete, leaves no timer', async () => {
    const r = rig({ batchSize: 10 });
    r.w.add(range(0, 25));
    const res = await r.w.close(5000);
    expect(res).toEqual({ complete: true, spooledBatches: 0, spooledPoints: 0, lostPoints: 0 });
    expect(r.backend.lines()).toEqual(range(0, 25));
    expect(r.clock.pending()).toBe(0);
    expect(r.spool?.size().batches).toBe(0);
  });

  test('spools what it could not send within the timeout (in-flight batch included), leaves no timer, ignores the late answer', async () => {
    const r = rig({ batchSize: 10, maxMemoryBatches: 4 });
    r.backend.hold = true;
    r.w.add(range(0, 25));
    let result: unknown;
    const p = r.w.close(1000).then((x) => (result = x));
    await r.clock.advance(999);
    expect(result).toBeUndefined();
    await r.clock.advance(1);
    await p;
    expect(result).toEqual({ complete: false, spooledBatches: 3, spooledPoints: 25, lostPoints: 0 });
    expect(r.clock.pending()).toBe(0);
    expect(r.spool?.size().batches).toBe(3);
    // The write that was in flight answers after close(): nothing happens.
    r.backend.held[0].resolve();
    await settle();
    expect(r.backend.calls).toHaveLength(1);
    expect(r.spool?.size().batches).toBe(3);
    expect(r.clock.pending()).toBe(0);
    // Next start replays all of it, in order (the first batch twice in total: idempotent writes make that harmless).
    const r2 = rig({ batchSize: 10, spool: new DiskSpool(dir, { fsync: false }) });
    await drain(r2);
    expect(r2.backend.lines()).toEqual(range(0, 25));
  });

  test('an in-flight batch from the spool stays there un-acked', async () => {
    const r1 = rig({ batchSize: 10, maxMemoryBatches: 1 });
    r1.backend.fail = () => unavailable();
    r1.w.add(range(0, 20));
    await r1.w.close(0);
    expect(r1.spool?.size().batches).toBe(2);
    const clock = new ManualClock();
    const backend = new ScriptedBackend(clock);
    backend.hold = true;
    const r2 = rig({ batchSize: 10, clock, backend, spool: new DiskSpool(dir, { fsync: false }) });
    await settle();
    expect(r2.backend.calls).toHaveLength(1);
    const res = await Promise.all([r2.w.close(50), r2.clock.advance(50)]);
    expect(res[0]).toEqual({ complete: false, spooledBatches: 0, spooledPoints: 0, lostPoints: 0 });
    expect(new DiskSpool(dir).size().batches).toBe(2);
  });

  test('cuts a pending backoff short: one immediate attempt', async () => {
    const r = rig({ batchSize: 10, retry: { initialMs: 10_000, jitter: 0 } });
    r.backend.script = [unavailable()];
    r.w.add(range(0, 10));
    await settle();
    expect(r.w.stats().state).toBe('retrying');
    const res = await r.w.close(1000);
    expect(res.complete).toBe(true);
    expect(r.backend.calls.map((c) => c.at)).toEqual([0, 0]);
    expect(r.spool?.size().batches).toBe(0);
    expect(r.clock.pending()).toBe(0);
  });

  test('a retryable failure while closing ends it at once: the rest is spooled', async () => {
    const r = rig({ batchSize: 10 });
    r.backend.fail = () => unavailable();
    r.w.add(range(0, 35));
    const res = await r.w.close(60_000);
    expect(r.clock.now()).toBe(0);
    expect(res).toEqual({ complete: false, spooledBatches: 3, spooledPoints: 25, lostPoints: 0 });
    // The first batch was spooled when its write failed.
    expect(r.spool?.size().batches).toBe(4);
    expect(r.clock.pending()).toBe(0);
  });

  test('without a spool, what is not written goes to onReject as closed_unsent', async () => {
    const r = rig({ spool: false, batchSize: 10 });
    r.backend.fail = () => unavailable();
    r.w.add(range(0, 15));
    const res = await r.w.close(100);
    expect(res).toEqual({ complete: false, spooledBatches: 0, spooledPoints: 0, lostPoints: 15 });
    expect(r.rejects.map((x) => [x.error.code, x.lines.length])).toEqual([
      ['closed_unsent', 10],
      ['closed_unsent', 5],
    ]);
    expect(r.w.stats().rejected).toBe(15);
  });

  test('is idempotent; add() after close throws; flush() after close resolves', async () => {
    const r = rig({ batchSize: 10 });
    r.w.add(range(0, 3));
    const a = r.w.close(100);
    expect(r.w.close(100)).toBe(a);
    await a;
    expect(() => r.w.add([L(9)])).toThrow(/closed/);
    expect((await r.w.flush()).complete).toBe(true);
    expect(r.backend.lines()).toEqual(range(0, 3));
    expect(r.clock.pending()).toBe(0);
  });
});

describe('stats', () => {
  test('onStats is called when the stats change, and only then', async () => {
    const r = rig({ batchSize: 10 });
    r.w.add([L(0)]);
    const n = r.stats.length;
    expect(r.stats[n - 1]).toMatchObject({ bufferedLines: 1, state: 'ok' });
    r.w.add([]);
    r.w.add(['']);
    expect(r.stats.length).toBe(n);
    await r.clock.advance(1000);
    expect(r.stats[r.stats.length - 1]).toMatchObject({ bufferedLines: 0, written: 1, inFlight: 0 });
  });

  test('writeDurations(): every write the backend answered, success or failure, by how long it took', async () => {
    const r = rig({ batchSize: 2 });
    expect(r.w.writeDurations()).toEqual({ le: WRITE_SECONDS_BUCKETS, cumulative: WRITE_SECONDS_BUCKETS.map(() => 0), sum: 0, count: 0 });
    r.backend.hold = true;
    r.w.add(range(0, 2)); // a full batch: its write starts at once, at t = 0
    await r.clock.advance(30);
    r.backend.held[0].resolve();
    await settle();
    r.w.add(range(2, 2)); // starts at t = 30
    await r.clock.advance(2000);
    r.backend.held[1].resolve();
    await settle();
    // A write still in flight is not counted yet.
    r.w.add(range(4, 2));
    await r.clock.advance(20_000);
    expect(r.w.writeDurations().count).toBe(2);
    r.backend.held[2].reject(unavailable());
    await settle();
    const d = r.w.writeDurations();
    expect(d.count).toBe(3);
    expect(d.sum).toBeCloseTo(0.03 + 2 + 20, 9);
    // 0.03 s: le 0.05; 2 s: le 2.5; 20 s: past the last bound (only in +Inf, which is count).
    expect(Object.fromEntries(d.le.map((le, i) => [le, d.cumulative[i]]))).toEqual({ 0.01: 0, 0.025: 0, 0.05: 1, 0.1: 1, 0.25: 1, 0.5: 1, 1: 1, 2.5: 2, 5: 2, 10: 2 });
    expect(r.backend.calls.map((c) => c.at)).toEqual([0, 30, 2030]);
  });

  test('classify(): 413 splits; retryable flag or 401/403/404/408/429/5xx retry; other 4xx reject', () => {
    expect(classify(status(413))).toBe('split');
    expect(classify(status(400))).toBe('reject');
    expect(classify(status(422))).toBe('reject');
    expect(classify(status(400, 'x', true))).toBe('retry');
    expect(classify(status(404))).toBe('retry');
    expect(classify(status(504))).toBe('retry');
    expect(classify(new Error('x'))).toBe('retry');
    expect(classify(new StoreError('refused', { retryable: true }))).toBe('retry');
  });
});

/** Seeded [0, 1) random, so jittered runs are reproducible. */
const mulberry = mulberry32;

describe('add(lines, onSettled): told when the lines are durable, refused or lost', () => {
  type Outcome = 'durable' | 'rejected' | 'lost';
  const track = (): { seen: Array<[string, Outcome]>; cb: (name: string) => (o: Outcome) => void } => {
    const seen: Array<[string, Outcome]> = [];
    return { seen, cb: (name) => (o) => seen.push([name, o]) };
  };

  test('durable once the batch holding the lines is written, not before; in order', async () => {
    const r = rig({ batchSize: 4, flushIntervalMs: 100 });
    r.backend.hold = true;
    const t = track();
    r.w.add(range(0, 3), t.cb('a'));
    r.w.add(range(3, 3), t.cb('b')); // spans the first batch (cut at 4) and the second
    r.w.add(range(6, 1), t.cb('c'));
    await settle();
    expect(t.seen).toEqual([]);
    expect(r.backend.held).toHaveLength(1);
    r.backend.held[0].resolve();
    await settle();
    expect(t.seen).toEqual([['a', 'durable']]); // b's last line is still buffered
    await r.clock.advance(100); // the flush timer cuts the second batch
    expect(t.seen).toEqual([['a', 'durable']]);
    r.backend.held[1].resolve();
    await settle();
    expect(t.seen).toEqual([
      ['a', 'durable'],
      ['b', 'durable'],
      ['c', 'durable'],
    ]);
  });

  test('durable when a failing write puts the batch in the (fsynced) spool, before the store is back', async () => {
    const r = rig({ batchSize: 2, retry: { initialMs: 1000, jitter: 0 } });
    r.backend.fail = () => unavailable();
    const t = track();
    r.w.add(range(0, 2), t.cb('a'));
    await settle();
    expect(r.w.stats()).toMatchObject({ spooledBatches: 1, state: 'retrying' });
    expect(t.seen).toEqual([['a', 'durable']]);
    expect(r.backend.accepted).toEqual([]);
  });

  test('a memory batch that spills to the spool behind an outage is durable; one the full spool refuses is lost', async () => {
    const batchBytes = encodeSpoolFile({ lines: range(0, 10).join('\n'), count: 10 }).length;
    const r = rig({ batchSize: 10, maxMemoryBatches: 1, spoolOpts: { maxBytes: batchBytes * 2, policy: 'reject-new' } });
    r.backend.fail = () => unavailable();
    const t = track();
    for (let b = 0; b < 5; b++) r.w.add(range(b * 10, 10), t.cb(`b${b}`));
    await settle();
    // b0 in the spool (failed head), b1 spilled; b2 waits in memory; b3, b4 refused by the full spool.
    expect(t.seen).toEqual([
      ['b0', 'durable'],
      ['b1', 'durable'],
    ]);
    r.backend.fail = () => undefined;
    await drain(r);
    expect(t.seen.slice(2).sort()).toEqual([
      ['b2', 'durable'],
      ['b3', 'lost'],
      ['b4', 'lost'],
    ]);
  });

  test('lines the server refuses (400) are "rejected"; a later good batch is still durable', async () => {
    const r = rig({ batchSize: 2 });
    r.backend.script = [status(400, 'bad line')];
    const t = track();
    r.w.add(range(0, 2), t.cb('bad'));
    r.w.add(range(2, 2), t.cb('good'));
    await settle();
    await settle();
    expect(t.seen).toEqual([
      ['bad', 'rejected'],
      ['good', 'durable'],
    ]);
  });

  test('close() without a spool: what is not written in time is lost; with a spool it is durable', async () => {
    const a = rig({ spool: false, batchSize: 10 });
    a.backend.hold = true;
    const ta = track();
    a.w.add(range(0, 3), ta.cb('x'));
    const closedA = a.w.close(0);
    await a.clock.advance(1);
    await closedA;
    expect(ta.seen).toEqual([['x', 'lost']]);

    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir);
    const b = rig({ batchSize: 10 });
    b.backend.hold = true;
    const tb = track();
    b.w.add(range(0, 3), tb.cb('y'));
    const closedB = b.w.close(0);
    await b.clock.advance(1);
    await closedB;
    expect(tb.seen).toEqual([['y', 'durable']]);
    expect(b.spool?.size().batches).toBe(1);
  });

  test('only empty lines: durable at once (asynchronously)', async () => {
    const r = rig();
    const t = track();
    r.w.add(['', ''], t.cb('e'));
    expect(t.seen).toEqual([]);
    await settle();
    expect(t.seen).toEqual([['e', 'durable']]);
  });
});

describe('points (addPoints, for the embedded store)', () => {
  /** The point of line L(i). */
  const P = (i: number): Point => ({ measurement: 'm', tags: { dev: `d${i % 3}` }, fields: { v: 1000 + i }, ts: 100_000 + i });
  const points = (from: number, n: number): Point[] => Array.from({ length: n }, (_, k) => P(from + k));

  type Outcome = Parameters<NonNullable<Parameters<BatchWriter['add']>[1]>>[0];
  const track = (): { seen: Array<[string, Outcome]>; cb: (name: string) => (o: Outcome) => void } => {
    const seen: Array<[string, Outcome]> = [];
    return { seen, cb: (name) => (o) => seen.push([name, o]) };
  };

  /** A backend that reads only the points of a batch of points (as the embedded store does). */
  class PointsBackend extends ScriptedBackend {
    override write(sent: Batch): Promise<void> {
      this.sent.push(sent);
      const batch: Batch = sent.points !== undefined ? ({ count: sent.count, points: sent.points } as unknown as Batch) : { lines: sent.lines, count: sent.count };
      this.calls.push({ at: 0, batch });
      this.accepted.push(batch);
      return Promise.resolve();
    }
  }

  /** Points whose measurement counts its reads: encodePoint reads it once a point. */
  function counted(from: number, n: number): { points: Point[]; reads: () => number } {
    let reads = 0;
    const out = points(from, n).map((p) => ({
      ...p,
      get measurement() {
        reads++;
        return 'm';
      },
    }));
    return { points: out, reads: () => reads };
  }

  test('travel as batches of points, in order, the caller\'s objects; a batch holding a line given to add() has lines only', async () => {
    const r = rig({ batchSize: 4, flushIntervalMs: 1000 });
    const first = points(0, 3);
    r.w.addPoints(first);
    r.w.addPoints(points(3, 3)); // cuts [0..3], buffers 4, 5
    r.w.add(range(6, 1)); // a line: the batch [4..7] is of lines
    r.w.addPoints(points(7, 3)); // cuts [4..7], buffers 8, 9
    r.w.addPoints([P(10)]);
    await drain(r);
    const sent = r.backend.sent;
    expect(sent.map((b) => b.count)).toEqual([4, 4, 3]);
    expect(sent.map((b) => b.points)).toEqual([points(0, 4), undefined, points(8, 3)]);
    expect(sent[0].points![2]).toBe(first[2]);
    // The lines, when read, are the points' lines.
    expect(sent.map((b) => b.lineList)).toEqual([range(0, 4), range(4, 4), range(8, 3)]);
    expect(r.backend.lines()).toEqual(range(0, 11));
  });

  test('their lines are made only when something reads them', async () => {
    const clock = new ManualClock();
    const r = rig({ batchSize: 4, flushIntervalMs: 1000, clock, backend: new PointsBackend(clock) });
    const c = counted(0, 8);
    const t = track();
    r.w.addPoints(c.points, t.cb('a'));
    await drain(r);
    expect(t.seen).toEqual([['a', 'durable']]);
    expect(r.backend.sent.map((b) => b.count)).toEqual([4, 4]);
    expect(c.reads()).toBe(0);
    expect(r.backend.sent[1].lines).toBe(range(4, 4).join('\n'));
    expect(c.reads()).toBe(4);
  });

  test('spilled to the spool and refused by the server as lines; a 413 split keeps each half a batch of points', async () => {
    // Refused (400): the lines go to onReject, made from the points.
    const r = rig({ batchSize: 4, flushIntervalMs: 1000 });
    r.backend.script = [status(400, 'bad')];
    const t = track();
    r.w.addPoints(points(0, 4), t.cb('x'));
    await drain(r);
    expect(t.seen).toEqual([['x', 'rejected']]);
    expect(r.rejects.map((x) => x.lines)).toEqual([range(0, 4)]);

    // Split (413) down to two points a batch.
    const s = rig({ batchSize: 4, flushIntervalMs: 1000 });
    s.backend.fail = (b) => (b.count > 2 ? status(413, 'request entity too large') : undefined);
    s.w.addPoints(points(0, 4));
    await drain(s);
    const ok = s.backend.sent.filter((b) => b.count <= 2);
    expect(ok.map((b) => b.points)).toEqual([points(0, 2), points(2, 2)]);
    expect(s.backend.lines()).toEqual(range(0, 4));

    // The store away: batches past the memory bound go to the spool as their lines, and come back as lines.
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir);
    const u = rig({ batchSize: 2, maxMemoryBatches: 1, flushIntervalMs: 1000 });
    u.backend.hold = true;
    u.w.addPoints(points(0, 6));
    await settle();
    expect(u.spool!.size().batches).toBeGreaterThan(0);
    u.backend.hold = false;
    for (const h of u.backend.held.splice(0)) h.resolve();
    await drain(u);
    expect(u.backend.lines()).toEqual(range(0, 6));
    const fromSpool = u.backend.sent.filter((b) => b.points === undefined);
    expect(fromSpool.length).toBeGreaterThan(0);
    expect(fromSpool.flatMap((b) => splitLines(b.lines))).toEqual(range(2, 2 * fromSpool.length));
  });
});

describe('group commit (maxBatchSize)', () => {
  type Outcome = 'durable' | 'rejected' | 'lost';
  const track = (): { seen: Array<[string, Outcome]>; cb: (name: string) => (o: Outcome) => void } => {
    const seen: Array<[string, Outcome]> = [];
    return { seen, cb: (name) => (o) => seen.push([name, o]) };
  };
  /** batchSize 2, maxBatchSize 6: A (2) in flight, B (6) grown behind it, then C, D, E (2 each) queued. */
  const queued = (cfg: RigConfig = {}): { r: Rig; t: ReturnType<typeof track> } => {
    const r = rig({ batchSize: 2, maxBatchSize: 6, maxMemoryBatches: 8, spool: false, ...cfg });
    r.backend.hold = true;
    const t = track();
    r.w.add(range(0, 2), t.cb('A'));
    r.w.add(range(2, 6), t.cb('B'));
    r.w.add(range(8, 2), t.cb('C'));
    r.w.add(range(10, 2), t.cb('D'));
    r.w.add(range(12, 2), t.cb('E'));
    return { r, t };
  };

  test('defaults to batchSize (no merging) and is never below it', () => {
    expect(rig().w.options.maxBatchSize).toBe(5000);
    expect(rig({ batchSize: 100, maxBatchSize: 10 }).w.options.maxBatchSize).toBe(100);
    expect(rig({ batchSize: 100, maxBatchSize: 400 }).w.options.maxBatchSize).toBe(400);
  });

  test('while a write is in flight the buffer grows to maxBatchSize; the batches queued behind are then sent as one write', async () => {
    const { r, t } = queued();
    await settle();
    expect(r.backend.counts()).toEqual([2]);
    expect(r.w.stats()).toMatchObject({ memoryBatches: 5, bufferedLines: 0 }); // the one in flight included
    r.backend.held[0].resolve();
    await settle();
    expect(r.backend.counts()).toEqual([2, 6]); // B: grown to maxBatchSize while A was written
    expect(t.seen).toEqual([['A', 'durable']]);
    r.backend.held[1].resolve();
    await settle();
    expect(r.backend.counts()).toEqual([2, 6, 6]); // C, D and E in one write
    expect(t.seen).toEqual([
      ['A', 'durable'],
      ['B', 'durable'],
    ]);
    r.backend.held[2].resolve();
    await settle();
    expect(t.seen.map(([n]) => n)).toEqual(['A', 'B', 'C', 'D', 'E']);
    expect(t.seen.every(([, o]) => o === 'durable')).toBe(true);
    expect(r.backend.lines()).toEqual(range(0, 14));
    expect(r.w.stats()).toMatchObject({ memoryBatches: 0, inFlight: 0, written: 14 });
  });

  test('tells the backend when it is catching up (WriteHints.behind): batches behind the write, merged or grown', async () => {
    const { r } = queued();
    await settle();
    r.backend.held[0].resolve(); // A was sent as it was added, before anything queued behind it
    await settle();
    r.backend.held[1].resolve(); // B: grown past batchSize while A was written; C, D, E behind it
    await settle();
    r.backend.held[2].resolve(); // C+D+E merged, nothing behind
    await settle();
    expect(r.backend.counts()).toEqual([2, 6, 6]);
    expect(r.backend.calls.map((c) => c.behind)).toEqual([false, true, true]);
    // Keeping up: a lone batch, nothing queued, is not behind.
    r.backend.hold = false;
    r.w.add(range(20, 2));
    await settle();
    r.w.add(range(22, 1));
    await r.clock.advance(1000);
    expect(r.backend.counts()).toEqual([2, 6, 6, 2, 1]);
    expect(r.backend.calls.slice(3).map((c) => c.behind)).toEqual([false, false]);
  });

  test('a spool to drain is catching up too, down to its last batch', async () => {
    const r = rig({ batchSize: 2, maxMemoryBatches: 1, retry: { initialMs: 1000, jitter: 0 } });
    r.backend.fail = () => unavailable();
    r.w.add(range(0, 2));
    r.w.add(range(2, 2));
    r.w.add(range(4, 2));
    await r.clock.advance(10);
    expect(r.w.stats().spooledBatches).toBeGreaterThan(0);
    r.backend.fail = () => undefined;
    await drain(r);
    expect(r.backend.lines()).toEqual(range(0, 6));
    const ok = r.backend.calls.filter((c) => c.failed !== true);
    expect(ok.map((c) => c.batch.count)).toEqual([2, 2, 2]);
    expect(ok.map((c) => c.behind)).toEqual([true, true, false]);
  });

  test('a buffer that grew past batchSize is cut as soon as the write in flight returns, not at the flush timer', async () => {
    const r = rig({ batchSize: 2, maxBatchSize: 6, flushIntervalMs: 1000 });
    r.backend.hold = true;
    r.w.add(range(0, 2));
    r.w.add(range(2, 3)); // 3 lines: past batchSize, below maxBatchSize, so buffered
    await settle();
    expect(r.w.stats()).toMatchObject({ bufferedLines: 3, memoryBatches: 1 });
    r.backend.held[0].resolve();
    await settle();
    expect(r.backend.counts()).toEqual([2, 3]);
    expect(r.clock.now()).toBe(0);
  });

  test('a merged write the server refuses (400) is taken apart: only the batch with the bad line is rejected', async () => {
    const { r, t } = queued();
    r.backend.held[0].resolve();
    await settle();
    r.backend.held[1].resolve();
    await settle();
    expect(r.backend.counts()).toEqual([2, 6, 6]);
    r.backend.held[2].reject(status(400, 'bad line in D'));
    await settle();
    // C, D and E are sent on their own again, in order.
    expect(r.backend.counts()).toEqual([2, 6, 6, 2]);
    r.backend.held[3].resolve();
    await settle();
    r.backend.held[4].reject(status(400, 'bad line in D'));
    await settle();
    r.backend.held[5].resolve();
    await settle();
    expect(r.backend.counts()).toEqual([2, 6, 6, 2, 2, 2]);
    expect(t.seen).toEqual([
      ['A', 'durable'],
      ['B', 'durable'],
      ['C', 'durable'],
      ['D', 'rejected'],
      ['E', 'durable'],
    ]);
    expect(r.rejects.map((x) => x.lines)).toEqual([range(10, 2)]);
    expect(r.backend.lines()).toEqual([...range(0, 10), ...range(12, 2)]);
  });

  test('a merged write that fails (503) is kept whole in the spool, written once the store is back, every add() durable', async () => {
    const { r, t } = queued({ spool: undefined, retry: { initialMs: 1000, jitter: 0 } });
    r.backend.held[0].resolve();
    await settle();
    r.backend.held[1].resolve();
    await settle();
    r.backend.held[2].reject(unavailable());
    await settle();
    expect(r.w.stats()).toMatchObject({ spooledBatches: 1, memoryBatches: 0, state: 'retrying' });
    // In the (fsynced) spool: durable, as for a batch that was never merged.
    expect(t.seen.map(([n, o]) => `${n}:${o}`)).toEqual(['A:durable', 'B:durable', 'C:durable', 'D:durable', 'E:durable']);
    r.backend.hold = false;
    await drain(r);
    expect(r.backend.counts()).toEqual([2, 6, 6, 6]);
    expect(r.backend.lines()).toEqual(range(0, 14));
    expect(r.rejects).toEqual([]);
  });

  test('batches of points and of lines are not merged together', async () => {
    const r = rig({ batchSize: 2, maxBatchSize: 8, maxMemoryBatches: 8, spool: false });
    r.backend.hold = true;
    const pt = (i: number): Point => ({ measurement: 'm', tags: { dev: `d${i % 3}` }, fields: { v: 1000 + i }, ts: 100_000 + i });
    r.w.add(range(0, 2));
    r.w.add(range(2, 8)); // grows to 8 behind the first write
    r.w.addPoints([pt(10), pt(11)]);
    r.w.add(range(12, 2));
    r.w.addPoints([pt(14), pt(15)]);
    r.w.addPoints([pt(16), pt(17)]);
    for (let i = 0; i < 5; i++) {
      r.backend.held[i]?.resolve();
      await settle();
    }
    expect(r.backend.counts()).toEqual([2, 8, 2, 2, 4]);
    expect(r.backend.sent.map((b) => (b.points !== undefined ? 'points' : 'lines'))).toEqual(['lines', 'lines', 'points', 'lines', 'points']);
    expect(r.backend.lines()).toEqual([...range(0, 10), ...[10, 11].map((i) => `m,dev=d${i % 3} v=${1000 + i} ${100_000 + i}`), ...range(12, 2), ...[14, 15, 16, 17].map((i) => `m,dev=d${i % 3} v=${1000 + i} ${100_000 + i}`)]);
  });
});
