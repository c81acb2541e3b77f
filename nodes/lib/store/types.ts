/**
 * The time-series store's shared types: points (what is written), batches of
 * line protocol (what travels and what is spooled), queries and their results,
 * and the interface every backend implements (InfluxDB 1.x, 2.x/3.x, embedded
 * DuckDB). No Node-RED here.
 */

/** A field value: numbers are floats, bigints are integers (written `42i`), plus booleans and strings. */
export type FieldValue = number | bigint | boolean | string;

/** One point: a measurement, its series tags, its fields, and its time in ms since the epoch. */
export interface Point {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Event time, ms since epoch. Written with millisecond precision. */
  ts: number;
}

export type BackendKind = 'influxdb-v1' | 'influxdb-v2' | 'embedded';

/** A batch as it travels and is spooled: newline-separated line protocol, ms precision. */
export interface Batch {
  /** Line protocol, one point per line, no trailing newline. */
  readonly lines: string;
  /** Number of lines (points). */
  readonly count: number;
  /**
   * The same lines one by one, when the batch still has them (a batch the writer cut from what it was given;
   * not one read back from the spool): the embedded store reads them instead of splitting `lines`.
   */
  readonly lineList?: readonly string[];
  /**
   * The points of the batch, one per line, when it was made of points (BatchWriter.addPoints): the lines are
   * encodePoint of them, made when `lines` or `lineList` is first read (for the spool, InfluxDB, a refusal). The
   * embedded store reads the points and not the lines. Every point passed checkPoint (so it has a line) and does
   * not change afterwards.
   */
  readonly points?: readonly Point[];
}

/** How a write failed: whether trying again can help, and when. */
export class StoreError extends Error {
  /** True for network errors, timeouts, 429, 5xx, 401/403 (fixable by reconfiguring): keep the data and retry. */
  readonly retryable: boolean;
  readonly status?: number;
  /** Server's Retry-After, in ms, when it sent one. */
  readonly retryAfterMs?: number;
  /** The server's own message (body), trimmed. */
  readonly serverMessage?: string;

  constructor(message: string, opts: { retryable: boolean; status?: number; retryAfterMs?: number; serverMessage?: string; cause?: unknown }) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'StoreError';
    this.retryable = opts.retryable;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
    this.serverMessage = opts.serverMessage;
  }
}

export type Aggregate = 'mean' | 'min' | 'max' | 'sum' | 'count' | 'last';
export const AGGREGATES: readonly Aggregate[] = ['mean', 'min', 'max', 'sum', 'count', 'last'];

/** A range query. Every string in it may come from a user or a device: backends must pass them safely. */
export interface RangeQuery {
  /** Measurement to read (default "telemetry"). */
  measurement: string;
  /** Field names to read (metrics for readings; e.g. "mean" for rollups). At least one. */
  fields: string[];
  /** Only these devices (tag `device`); empty or missing: all. */
  devices?: string[];
  /** Extra tag equality filters, e.g. { level: "1h", metric: "temperature" }. */
  where?: Record<string, string>;
  /** Range [start, end) in ms since epoch. */
  start: number;
  end: number;
  /** Aggregate into buckets of this many ms (aligned to the epoch), with `agg`. */
  bucketMs?: number;
  agg?: Aggregate;
  /** At most this many points per series: downsampled on the server side with largest-triangle-three-buckets. */
  maxPoints?: number;
  /** Safety cap on raw rows read per series (default 100,000). */
  limit?: number;
}

/** One series of a query result: a device and field, its points in time order. */
export interface Series {
  device: string;
  field: string;
  /** Tags (other than device) that identify the series, when the query grouped by them. */
  tags?: Record<string, string>;
  /** [ts ms, value]; value null for an empty bucket. */
  points: Array<[number, number | boolean | string | null]>;
}

export interface QueryResult {
  series: Series[];
}

export interface BackendHealth {
  ok: boolean;
  detail: string;
}

/**
 * One stored value, as a retention partition holds it (the Parquet row model): the series key split
 * into measurement, device ('' when the point had no device tag), the other tags and the field.
 * (measurement, device, tags, field, ts) is the store's idempotent key.
 */
export interface ExportRow {
  measurement: string;
  device: string;
  /** Tags other than `device`. */
  tags: Record<string, string>;
  field: string;
  /** ms since the epoch. */
  ts: number;
  /** number = float, bigint = integer, boolean, string. */
  value: FieldValue;
}

/** What a partition operation works on: one measurement, a time range, tag equality filters. */
export interface PartitionSelector {
  measurement: string;
  /** [start, end) in ms since the epoch. */
  start: number;
  end: number;
  /** Tag equality filters, e.g. { level: '1m' }; a `device` key filters the device tag ('' = no device tag). */
  where?: Record<string, string>;
}

/** What the writer tells a backend about a write (BatchWriter; a backend may ignore it). */
export interface WriteHints {
  /**
   * Other batches wait behind this one (merged batches, more in memory or in the spool): the writer is catching
   * up, the store is the bottleneck, and finishing the write sooner matters more than the event loop's other work
   * (the embedded store then parses and appends in longer slices: see CATCH_UP_SLICE_MS in ../slice).
   */
  behind: boolean;
}

/** What every backend does. Implementations: influx-v1.ts, influx-v2.ts, embedded.ts. */
export interface StoreBackend {
  readonly kind: BackendKind;
  /** For status and logs, with no secret in it: e.g. "influxdb-v1 http://127.0.0.1:8086 db=thingwire". */
  readonly description: string;
  /** Writes one batch; resolves when the server accepted it; throws StoreError. */
  write(batch: Batch, hints?: WriteHints): Promise<void>;
  query(q: RangeQuery): Promise<QueryResult>;
  health(): Promise<BackendHealth>;
  close(): Promise<void>;

  // Partition operations for retention tiering (embedded and InfluxDB 1.x; absent on 2.x/3.x).
  /** Streams every stored value in the selection in chunks (at most about 10,000 rows a call); resolves with the total. */
  exportRange?(sel: PartitionSelector, onRows: (rows: ExportRow[]) => void | Promise<void>): Promise<number>;
  /** How many values the selection holds. */
  countRange?(sel: PartitionSelector): Promise<number>;
  /** The selection's oldest and newest ts and its count; null when it is empty. */
  extentOf?(sel: PartitionSelector): Promise<{ min: number; max: number; count: number } | null>;
  /**
   * Deletes the selection; resolves with how many values were deleted. With `expect`, a count other
   * than `expect` deletes nothing and throws StoreError (retryable false). The embedded store counts
   * and deletes in one transaction; InfluxDB 1.x counts first, then deletes (a write in between races).
   */
  deleteRange?(sel: PartitionSelector, expect?: number): Promise<number>;
}

/** A PartitionSelector checked: where as sorted [key, value] pairs. */
export interface CheckedSelector {
  measurement: string;
  start: number;
  end: number;
  where: Array<[string, string]>;
}

/** Checks a PartitionSelector; throws StoreError (retryable false, status 400) naming what is wrong. `who` prefixes the message. */
export function checkSelector(sel: PartitionSelector, who: string): CheckedSelector {
  const bad = (why: string): StoreError => new StoreError(`${who}: ${why}`, { retryable: false, status: 400 });
  if (sel === null || typeof sel !== 'object') throw bad('no partition selector');
  if (typeof sel.measurement !== 'string' || sel.measurement === '') throw bad('the selector needs a measurement (a non-empty string)');
  for (const [what, v] of [['start', sel.start], ['end', sel.end]] as const) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(`${what} must be a whole number of ms since the epoch, not ${String(v)}`);
  }
  if (!(sel.end > sel.start)) throw bad(`empty time range: end (${sel.end}) must be after start (${sel.start})`);
  const where: Array<[string, string]> = [];
  if (sel.where !== undefined && sel.where !== null) {
    if (typeof sel.where !== 'object' || Array.isArray(sel.where)) throw bad('where must be an object of tag: value');
    for (const k of Object.keys(sel.where).sort()) {
      const v = sel.where[k];
      if (k === '') throw bad('where has an empty tag name');
      if (typeof v !== 'string') throw bad(`where tag ${JSON.stringify(k)} must be a string, not ${v === null ? 'null' : typeof v}`);
      where.push([k, v]);
    }
  }
  return { measurement: sel.measurement, start: sel.start, end: sel.end, where };
}
