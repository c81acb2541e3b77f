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
  lines: string;
  /** Number of lines (points). */
  count: number;
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

/** What every backend does. Implementations: influx-v1.ts, influx-v2.ts, embedded.ts. */
export interface StoreBackend {
  readonly kind: BackendKind;
  /** For status and logs, with no secret in it: e.g. "influxdb-v1 http://127.0.0.1:8086 db=thingwire". */
  readonly description: string;
  /** Writes one batch; resolves when the server accepted it; throws StoreError. */
  write(batch: Batch): Promise<void>;
  query(q: RangeQuery): Promise<QueryResult>;
  health(): Promise<BackendHealth>;
  close(): Promise<void>;
}
