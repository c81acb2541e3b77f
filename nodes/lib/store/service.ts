/**
 * A running store: the backend chosen by the settings, the batch writer and
 * its disk spool, and the listeners the Node-RED nodes attach. The
 * thingwire-store config node owns one; write and query nodes use it. No
 * Node-RED here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskSpool, type SpoolPolicy } from './spool';
import { describeStoreSettings, type StoreSettings } from './env';
import { InfluxV1Backend } from './influx-v1';
import { EmbeddedThreadBackend } from './embedded-remote';
import { InfluxV2Backend } from './influx-v2';
import { registerStore } from './registry';
import { StoreError, type Batch, type WriteHints, type BackendHealth, type ExportRow, type PartitionSelector, type Point, type QueryResult, type RangeQuery, type StoreBackend } from './types';
import { BatchWriter, DEFAULT_WRITER_OPTIONS, type SettleOutcome, type WriteRejectedError, type WriterStats } from './writer';

export interface StoreServiceOptions {
  /** The config node's id: names the spool directory and the registry entry. */
  id: string;
  settings: StoreSettings;
  /** Thingwire's data directory (DATA_DIR in the bundled runtime). */
  dataDir: string;
  /** The embedded store's DuckDB file; default <dataDir>/store/thingwire.duckdb. */
  embeddedFile?: string;
  batchSize?: number;
  flushIntervalMs?: number;
  spoolMaxBytes?: number;
  spoolPolicy?: SpoolPolicy;
  /** Create the InfluxDB 1.x database when it is missing. */
  createDatabase?: boolean;
}

export interface StoreListener {
  onReject?(lines: string[], error: WriteRejectedError): void;
  onDrop?(count: number, message: string): void;
  onStats?(stats: WriterStats): void;
  /** A spool file that could not be read was moved aside (never deleted). */
  onCorrupt?(message: string): void;
}

/**
 * Opens the embedded DuckDB backend lazily (it is an async open), so the service is usable at once.
 * The partition operations (optional on StoreBackend) are forwarded; both backends opened this way
 * (embedded, InfluxDB 1.x) have them. Should the opened one lack one, the call fails with a StoreError.
 */
class LazyBackend implements StoreBackend {
  readonly kind: StoreBackend['kind'];
  readonly description: string;
  private backend?: StoreBackend;
  private opening?: Promise<StoreBackend>;
  private openError?: Error;
  private closed = false;

  constructor(
    kind: StoreBackend['kind'],
    description: string,
    private readonly open: () => Promise<StoreBackend>,
  ) {
    this.kind = kind;
    this.description = description;
  }

  private async partitionOps<K extends 'exportRange' | 'countRange' | 'extentOf' | 'deleteRange'>(what: K): Promise<Required<Pick<StoreBackend, K>>> {
    const b = await this.get();
    if (typeof b[what] !== 'function') throw new StoreError(`${this.description} has no ${what} (partition operations)`, { retryable: false });
    return b as unknown as Required<Pick<StoreBackend, K>>;
  }
  async exportRange(sel: PartitionSelector, onRows: (rows: ExportRow[]) => void | Promise<void>): Promise<number> {
    return (await this.partitionOps('exportRange')).exportRange(sel, onRows);
  }
  async countRange(sel: PartitionSelector): Promise<number> {
    return (await this.partitionOps('countRange')).countRange(sel);
  }
  async extentOf(sel: PartitionSelector): Promise<{ min: number; max: number; count: number } | null> {
    return (await this.partitionOps('extentOf')).extentOf(sel);
  }
  async deleteRange(sel: PartitionSelector, expect?: number): Promise<number> {
    return (await this.partitionOps('deleteRange')).deleteRange(sel, expect);
  }

  private get(): Promise<StoreBackend> {
    if (this.closed) return Promise.reject(new StoreError(`${this.description} is closed`, { retryable: true }));
    if (this.backend) return Promise.resolve(this.backend);
    this.opening ??= this.open().then(
      (b) => {
        this.backend = b;
        this.openError = undefined;
        return b;
      },
      (e: Error) => {
        // Let a later call try again (the file may have been locked by a closing instance).
        this.opening = undefined;
        this.openError = e;
        throw new StoreError(`cannot open ${this.description}: ${e.message}`, { retryable: true, cause: e });
      },
    );
    return this.opening;
  }

  async write(batch: Batch, hints?: WriteHints): Promise<void> {
    return (await this.get()).write(batch, hints);
  }
  async query(q: RangeQuery): Promise<QueryResult> {
    return (await this.get()).query(q);
  }
  async health(): Promise<BackendHealth> {
    try {
      return await (await this.get()).health();
    } catch (e) {
      return { ok: false, detail: this.openError?.message ?? (e as Error).message };
    }
  }
  async close(): Promise<void> {
    this.closed = true;
    const b = this.backend ?? (this.opening ? await this.opening.catch(() => undefined) : undefined);
    this.backend = undefined;
    this.opening = undefined;
    await b?.close();
  }
}

export function defaultEmbeddedFile(dataDir: string): string {
  return path.join(dataDir, 'store', 'thingwire.duckdb');
}

/**
 * Whether the embedded store runs in a worker thread of its own (embedded-remote.ts): THINGWIRE_STORE_THREAD
 * `worker` (the default) or `main` (the store on the event loop, as before 2026-12-06). Anything else is refused.
 */
export function embeddedThread(env: NodeJS.ProcessEnv): boolean {
  const v = (env.THINGWIRE_STORE_THREAD ?? '').trim();
  if (v === '' || v === 'worker') return true;
  if (v === 'main') return false;
  throw new Error(`THINGWIRE_STORE_THREAD=${JSON.stringify(v)} must be worker or main`);
}

export function createBackend(settings: StoreSettings, dataDir: string, embeddedFile?: string, createDatabase = false): StoreBackend {
  switch (settings.backend) {
    case 'influxdb-v1': {
      const b = new InfluxV1Backend({ url: settings.url, db: settings.db, rp: settings.rp, username: settings.username, password: settings.password });
      if (!createDatabase) return b;
      let created = false;
      // Create the database on first use; a failure here is retried with the write.
      return new LazyBackend(b.kind, b.description, async () => {
        if (!created) {
          await b.createDatabase();
          created = true;
        }
        return b;
      });
    }
    case 'influxdb-v2':
      return new InfluxV2Backend({ url: settings.url, token: settings.token, org: settings.org, bucket: settings.bucket });
    case 'embedded': {
      const file = embeddedFile || defaultEmbeddedFile(dataDir);
      const thread = embeddedThread(process.env);
      return new LazyBackend('embedded', `embedded (DuckDB) ${path.resolve(file)}`, async () => {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        if (thread) return EmbeddedThreadBackend.open({ path: file });
        // Loaded on demand: installs that only talk to InfluxDB never load DuckDB's native binding.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { EmbeddedBackend } = require('./embedded') as typeof import('./embedded');
        return EmbeddedBackend.open({ path: file });
      });
    }
  }
}

/** What reads across the retention tiers: the query over the tiers' files merged with `hot`'s answer. */
export interface TierReader {
  query(q: RangeQuery, hot: (q: RangeQuery) => Promise<QueryResult>): Promise<QueryResult>;
}

/**
 * Batches a store's writer keeps in memory while its backend answers (4 while it fails: then the rest goes to the
 * disk spool). A spilled batch costs more than writing it (its lines made, fsynced, read back and parsed), so a
 * store that spills while it is merely busy falls further behind and never catches up: at 20,000 batched readings/s
 * the runtime's first seconds (a thousand devices' new series) queued 11 to over 16 batches; with room for 4 (or
 * 16, in one run of two) it spilled and stayed saturated (event loop 95 %), with 64 it caught up and ran at 47 %.
 * On a busier day 64 spilled at 28,000/s and 40,000/s (event loop 99-100 %, 636-1,370 batches spooled, a tenth of
 * the lines written) where 256 did not (74 % and 88-90 %, everything written): the MQTT input's in-flight bound
 * (16 MB, ~150 batches of points for 100-reading messages) then holds the broker back before the room runs out,
 * which is the backpressure wanted. A batch of 5,000 score points holds ~1.7 MB (330 bytes a point, measured):
 * ~435 MB at most.
 */
const BURST_MEMORY_BATCHES = 256;

/**
 * How far a write to the embedded store may grow past batchSize when writes fall behind (group commit: see
 * BatchWriterOptions.maxBatchSize). Every write pays a fixed ~0.5 ms for each table's appender flush and a commit,
 * on the event loop, however few its rows. Runtime alone fed 34,000 readings/s (1,000 devices, QoS 1), three
 * alternated pairs: 30,866 / 29,466 / 30,333 readings/s taken in with, 27,333 / 29,443 / 29,466 without; 100
 * readings a message at 120,000/s asked, four pairs: 216-261k lines/s stored with, 131-253k without (median 256k
 * and 236k). InfluxDB keeps batchSize (its writes are HTTP requests the server spreads over its own cores).
 * 8 since 2026-12-05 (40,000 lines a write at the starter's 5,000): batched at the limit the store's write loop is
 * busy all the time and the main thread idles during each COMMIT (every delivery in flight already processed and
 * waiting for the store), so fewer, larger commits idle less. Runtime alone, 100 readings a message, 200,000/s asked,
 * acknowledged readings/s over 20-30 s, alternated: 132k / 128k / 113k / 127k / 123k with 8 against 119k / 110k /
 * 114k / 110k with 4 (one pair of five disturbed by a test run, left out); 16 measured the same as 8 (120k / 120k /
 * 133k against 117k / 120k / 127k).
 */
const EMBEDDED_MAX_BATCH_FACTOR = 8;

/** Spool directory names come from node ids: keep them to safe characters. */
function safeDirName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_') || 'store';
}

export class StoreService {
  readonly id: string;
  readonly description: string;
  readonly backend: StoreBackend;
  readonly writer: BatchWriter;
  readonly spool: DiskSpool;
  private readonly listeners = new Set<StoreListener>();
  private readonly unregister: () => void;
  /** Reads across retention tiers, when a thingwire-retention node manages this store. */
  private tiers?: TierReader;
  private closed?: Promise<void>;

  constructor(opts: StoreServiceOptions) {
    this.id = opts.id;
    this.backend = createBackend(opts.settings, opts.dataDir, opts.embeddedFile, opts.createDatabase);
    this.description = opts.settings.backend === 'embedded' ? this.backend.description : describeStoreSettings(opts.settings);
    // Every store has a spool, the embedded one too: it is touched only when memory holds more batches than
    // allowed (a burst faster than the store, or an outage); without it the embedded store's writer refused the
    // newest batch (memory_full), data lost under a burst that a disk spool keeps.
    this.spool = new DiskSpool(path.join(opts.dataDir, 'spool', safeDirName(opts.id)), {
      maxBytes: opts.spoolMaxBytes,
      policy: opts.spoolPolicy ?? 'reject-new',
      onCorrupt: (c) => {
        const message = `spool file ${c.file} is unreadable (${c.reason}); moved to ${c.movedTo ?? '(gone)'}`;
        for (const l of this.listeners) l.onCorrupt?.(message);
      },
    });
    this.writer = new BatchWriter({
      backend: this.backend,
      spool: this.spool,
      batchSize: opts.batchSize,
      maxBatchSize: this.backend.kind === 'embedded' ? EMBEDDED_MAX_BATCH_FACTOR * (opts.batchSize ?? DEFAULT_WRITER_OPTIONS.batchSize) : undefined,
      flushIntervalMs: opts.flushIntervalMs,
      burstMemoryBatches: BURST_MEMORY_BATCHES,
      overflow: opts.spoolPolicy ?? 'reject-new',
      onReject: (lines, err) => {
        for (const l of this.listeners) l.onReject?.(lines, err);
      },
      onDrop: (count, message) => {
        for (const l of this.listeners) l.onDrop?.(count, message);
      },
      onStats: (stats) => {
        for (const l of this.listeners) l.onStats?.(stats);
      },
    });
    this.unregister = registerStore({
      id: this.id,
      description: this.description,
      stats: () => {
        const s = this.writer.stats();
        return {
          state: s.state,
          queuedLines: s.bufferedLines,
          memoryBatches: s.memoryBatches,
          spooledBatches: s.spooledBatches,
          spooledBytes: s.spooledBytes,
          written: s.written,
          rejected: s.rejected,
          dropped: s.dropped,
          writeSeconds: this.writer.writeDurations(),
        };
      },
      health: () => this.backend.health(),
    });
  }

  /** Adds a listener; returns the function that removes it. */
  listen(l: StoreListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** True when `l` is the first listener: the one that reports events that belong to no message. */
  isPrimary(l: StoreListener): boolean {
    return this.listeners.values().next().value === l;
  }

  /**
   * True when the backend reads points (the embedded store): writePoints() then saves making lines that only the
   * spool or a refusal would read.
   */
  get takesPoints(): boolean {
    return this.backend.kind === 'embedded';
  }

  /** Queues lines; onSettled (optional) is told when they are durable, refused or lost (BatchWriter.add). */
  write(lines: readonly string[], onSettled?: (outcome: SettleOutcome) => void): void {
    this.writer.add(lines, onSettled);
  }

  /** Queues points that checkPoint accepted, not to be changed afterwards, as write() queues lines (BatchWriter.addPoints). */
  writePoints(points: readonly Point[], onSettled?: (outcome: SettleOutcome) => void): void {
    this.writer.addPoints(points, onSettled);
  }

  /** Reads the hot store, and the warm and cold tiers when a retention manager is attached. */
  query(q: RangeQuery): Promise<QueryResult> {
    const t = this.tiers;
    return t ? t.query(q, (hq) => this.backend.query(hq)) : this.backend.query(q);
  }

  /**
   * Attaches the reader of the retention tiers (one at a time: a second is refused); returns the
   * function that detaches it.
   */
  attachTiers(reader: TierReader): () => void {
    if (this.tiers !== undefined && this.tiers !== reader) throw new StoreError(`${this.description} already has a retention manager: one per store`, { retryable: false });
    this.tiers = reader;
    return () => {
      if (this.tiers === reader) this.tiers = undefined;
    };
  }

  stats(): WriterStats {
    return this.writer.stats();
  }

  /** Flushes within the timeout, spools the rest, closes the backend. Idempotent. */
  close(timeoutMs = 10_000): Promise<void> {
    this.closed ??= (async () => {
      this.unregister();
      await this.writer.close(timeoutMs);
      this.listeners.clear();
      await this.backend.close();
    })();
    return this.closed;
  }
}
