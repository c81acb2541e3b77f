/**
 * The embedded time-series store: a DuckDB file (@duckdb/node-api), the default when no InfluxDB is
 * configured. Line protocol in (parsed with splitLines/parseLine), range queries out, sized for a
 * small box (2 threads, 256 MB by default).
 *
 * Schema (version 1), long and narrow, one table per value type:
 *
 *   series (                    -- one row per measurement + tag set + field (an InfluxDB "series key")
 *     id          INTEGER PRIMARY KEY,
 *     measurement VARCHAR NOT NULL,
 *     device      VARCHAR NOT NULL,          -- value of the `device` tag ('' when the point has none)
 *     tagset      VARCHAR NOT NULL,          -- the other tags, canonical: JSON [[key, value], ...] sorted by key
 *     tags        MAP(VARCHAR, VARCHAR) NOT NULL,  -- the same tags, for `where` filters (tags[$key] = $value)
 *     field       VARCHAR NOT NULL,
 *     UNIQUE (measurement, device, tagset, field))
 *   points_float (sid INTEGER NOT NULL, ts BIGINT NOT NULL, v DOUBLE NOT NULL)   -- 21.5
 *   points_int   (sid INTEGER NOT NULL, ts BIGINT NOT NULL, v BIGINT NOT NULL)   -- 42i
 *   points_bool  (sid INTEGER NOT NULL, ts BIGINT NOT NULL, v BOOLEAN NOT NULL)  -- true
 *   points_str   (sid INTEGER NOT NULL, ts BIGINT NOT NULL, v VARCHAR NOT NULL)  -- "text"
 *   thingwire_meta (key VARCHAR PRIMARY KEY, value VARCHAR)                      -- schema version
 *
 * sid is series.id, ts is ms since the epoch. Why this shape (measured on the 2-core bench box):
 * - one table per value type keeps every points row to three non-null columns: one table with four
 *   nullable value columns (num, int, bool, str) ingested at about half the speed (the NULLs cost in
 *   the appender, in the commit's WAL, and ~2.5x when a query reads them back);
 * - nothing is indexed but the small series table: a primary key on (sid, ts) with INSERT OR REPLACE
 *   was 2-3x slower to ingest and made the file 10x larger (its ART index); zone maps on ts prune a
 *   time range instead. 30M stored values take ~100 MB (about 3 bytes a value).
 * - the appender takes data chunks (2,048 rows, column vectors) inside an explicit transaction.
 *
 * Idempotence, as in InfluxDB: a point with the same series and ts as a stored one replaces it (even
 * with another value type), so at-least-once delivery never double counts; within one batch the last
 * line wins. The backend keeps the series catalogue in memory with each series' newest stored ts
 * (rebuilt from the file when it opens):
 * - a row newer than its series' newest stored ts cannot replace anything: it is appended (the common
 *   case: live telemetry arrives in time order);
 * - the other rows (a retried batch, late or backfilled data) have their (sid, ts) keys appended to a
 *   temporary table and deleted from the points tables first (`DELETE ... USING`, bounded to the
 *   keys' time range so DuckDB's zone maps skip the rest of the table);
 * - duplicates inside one batch are dropped in JS (last wins) before anything is written.
 * Everything of a batch happens in one transaction: a malformed line fails the whole batch before
 * anything is committed (StoreError, retryable false, status 400), and a database error rolls it all
 * back (StoreError, retryable true: the writer keeps the batch and tries again).
 *
 * Queries use bound parameters only: measurement, fields, devices and `where` tags select series
 * ids (`list_contains($2, field)`, `tags[$3] = $4`...), and the points are read through those ids;
 * no value from a query is ever part of the SQL text. As with the InfluxDB backends (GROUP BY
 * "device", fill(none)), the answer holds one Series per device and field, points ascending; series
 * that differ only in other tags are merged (narrow them with `where`). Buckets are aligned to the
 * epoch; empty buckets are left out; `agg` without `bucketMs` aggregates the whole range into one
 * point at `start`; `limit` counts rows (or buckets) per answer series, earliest first; `maxPoints`
 * downsamples numeric series with LTTB (large ones reduced with M4 in the database first: M4_SQL) and
 * keeps the newest points of others. Integers are returned as numbers (exact up to 2^53). Answers are
 * streamed chunk by chunk, one value type at a time, and stop with a 413 past maxAnswerPoints points
 * (THINGWIRE_QUERY_MAX_POINTS, default 5,000,000).
 *
 * A range query reads every series' rows in the time range and keeps the selected ones (no index on
 * sid): about 10 ms per million stored values in range on the bench box.
 *
 * Partition operations (retention tiering): a PartitionSelector (measurement, [start, end), tag
 * equality filters) selects series ids with bound parameters as queries do, and their rows by ts.
 * exportRange streams the rows (all four tables as one UNION ALL, sorted by device, tagset, field,
 * ts) on a connection of its own, so a long export does not hold up queries or writes; countRange
 * and extentOf run on the query connection. deleteRange runs in the write queue (never between the
 * statements of a write batch) in one transaction: with `expect`, it counts first and rolls back
 * when the count differs. Deleting can lower a series' newest stored ts: after the commit, the
 * series whose catalogued newest ts fell inside the range have it read again from the table (a
 * catalogued ts that is too high is always safe: such rows just take the DELETE ... USING path).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  DuckDBDataChunk,
  DuckDBInstance,
  INTEGER,
  LIST,
  VARCHAR,
  listValue,
  type DuckDBAppender,
  type DuckDBConnection,
  type DuckDBResultReader,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { ThingwireError } from '../errors';
import { encodePoint, parseLine, splitLines } from '../line-protocol';
import { CATCH_UP_SLICE_MS, SLICE_MS, TimeSlicer } from '../slice';
import { claimFile, releaseFile } from './open-files';
import { PACKED_BOOL, PACKED_FLOAT, PACKED_INT, PACKED_STR, type PackedPoints } from './thread-wire';
import { answerTooLarge, downsample, m4Buckets, maxAnswerPoints, planQuery, M4_PER_BUCKET, type QueryPlan } from './query-plan';
import {
  StoreError,
  type Aggregate,
  type BackendHealth,
  type Batch,
  type WriteHints,
  type FieldValue,
  type Point,
  type QueryResult,
  type RangeQuery,
  type ExportRow,
  type PartitionSelector,
  type Series,
  type StoreBackend,
  checkSelector,
  type CheckedSelector,
} from './types';

export interface EmbeddedOptions {
  /** The DuckDB file; its directory is created when missing. */
  path: string;
  /** DuckDB worker threads (default 2). */
  threads?: number;
  /** DuckDB memory limit (default "256MB"). */
  memoryLimit?: string;
  /**
   * WAL size that triggers a checkpoint (default: DuckDB's, 16 MB). 64 MB measured no faster to
   * ingest here, and holds more in memory and in the replay after a crash.
   */
  checkpointThreshold?: string;
  /**
   * The most points one query answers over all its series (default: THINGWIRE_QUERY_MAX_POINTS, else
   * MAX_ANSWER_POINTS, 5,000,000); past it the query fails (413).
   */
  maxAnswerPoints?: number;
}

export const SCHEMA_VERSION = '1';
export { DEFAULT_LIMIT } from './query-plan';

const KIND_FLOAT = 0;
const KIND_INT = 1;
const KIND_BOOL = 2;
const KIND_STR = 3;
type Kind = 0 | 1 | 2 | 3;
const KINDS: readonly Kind[] = [KIND_FLOAT, KIND_INT, KIND_BOOL, KIND_STR];
const POINT_TABLES = ['points_float', 'points_int', 'points_bool', 'points_str'] as const;
const VALUE_TYPES: readonly DuckDBType[] = [DOUBLE, BIGINT, BOOLEAN, VARCHAR];
const VALUE_SQL = ['DOUBLE', 'BIGINT', 'BOOLEAN', 'VARCHAR'] as const;
/** Rows storage to start with, and the size past which storage a batch used less than a quarter of is given back. */
const ROWS_MIN = 4096;
const ROWS_KEEP = 1 << 18;

/** Rows per appended data chunk: DuckDB's vector size. */
const CHUNK_ROWS = 2048;
/**
 * Rows an appender holds before a pause in the middle of a batch flushes them. A flush runs an INSERT (parsed,
 * planned, executed) and costs 0.4-1.2 ms however few rows it moves; counted in the runtime at 10,000 batched
 * readings/s, most flushes moved under 4,096 rows. Smaller pauses leave the rows in the appender (nothing else
 * writes through it: writes run one at a time) for the next flush.
 */
const FLUSH_MIN_ROWS = 8192;
/** The same for the catalogue's new series (five columns, three of them text). */
const FLUSH_MIN_SERIES = 2048;
const PREFIX_CACHE_MAX = 100_000;
/** Nodes of PointGroups before it is cleared: a series takes one to three (a measurement, a device, a metric...). */
const POINT_GROUP_NODES_MAX = 250_000;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** Rows handed to an exportRange callback at a time (at most). */
export const EXPORT_CHUNK_ROWS = 10_000;

const SCHEMA_SQL = [
  `CREATE TABLE IF NOT EXISTS thingwire_meta (key VARCHAR PRIMARY KEY, value VARCHAR)`,
  `CREATE TABLE IF NOT EXISTS series (
     id INTEGER PRIMARY KEY, measurement VARCHAR NOT NULL, device VARCHAR NOT NULL, tagset VARCHAR NOT NULL,
     tags MAP(VARCHAR, VARCHAR) NOT NULL, field VARCHAR NOT NULL, UNIQUE (measurement, device, tagset, field))`,
  ...KINDS.map((k) => `CREATE TABLE IF NOT EXISTS ${POINT_TABLES[k]} (sid INTEGER NOT NULL, ts BIGINT NOT NULL, v ${VALUE_SQL[k]} NOT NULL)`),
];


/** A series as the writer knows it: committed state plus scratch for the batch being written. */
interface SeriesInfo {
  id: number;
  /** Newest stored ts (-Infinity: none). */
  maxTs: number;
  /** Bit per kind that has stored rows. */
  kinds: number;
  // Scratch, valid while mark === the current batch number.
  mark: number;
  bmax: number;
  bkinds: number;
}

/** Series sharing measurement and tags: one per line prefix. */
interface Group {
  measurement: string;
  device: string;
  tagset: string;
  tags: Array<[string, string]>;
  fields: Map<string, SeriesInfo>;
}

/** What an emptied row points at (so the rows do not keep a series the catalogue dropped). */
const NO_SERIES: SeriesInfo = { id: -1, maxTs: -Infinity, kinds: 0, mark: 0, bmax: 0, bkinds: 0 };

/**
 * The rows of one batch, one per field value, in line order, in columns that keep their storage from batch to
 * batch. A batch is up to 5,000 lines of up to a dozen fields: tens of thousands of rows. Arrays built with push()
 * past about 16,000 elements live in V8's large-object space, and each growth allocates and copies a new one
 * there: push() cost about 90 ns an element instead of 10 (node 20, measured), and filling these columns afresh
 * for every batch was 12 % of the runtime's CPU at 10,000 batched readings/s. Grown by doubling, kept, and
 * written by index, they cost that once.
 */
class Rows {
  sid = new Int32Array(ROWS_MIN);
  ts = new Float64Array(ROWS_MIN);
  kind = new Uint8Array(ROWS_MIN);
  /** ts as the BIGINT column takes it (made once per line, shared by its fields). */
  tsBig: bigint[] = new Array<bigint>(ROWS_MIN);
  val: FieldValue[] = new Array<FieldValue>(ROWS_MIN);
  series: SeriesInfo[] = new Array<SeriesInfo>(ROWS_MIN);
  /** Row indices grouped by kind (see groupByKind). */
  byKind = new Int32Array(ROWS_MIN);
  length = 0;

  /** Empties the rows; drops the values they held, and storage grown far past this batch's need. */
  reset(): void {
    const n = this.length;
    this.length = 0;
    if (this.sid.length > ROWS_KEEP && n < this.sid.length / 4) {
      this.resize(ROWS_MIN);
      return;
    }
    this.tsBig.fill(0n, 0, n);
    this.val.fill(0, 0, n);
    this.series.fill(NO_SERIES, 0, n);
  }

  push(s: SeriesInfo, ts: number, tsBig: bigint, kind: Kind, v: FieldValue): void {
    const n = this.length;
    if (n === this.sid.length) this.resize(n * 2);
    this.sid[n] = s.id;
    this.ts[n] = ts;
    this.tsBig[n] = tsBig;
    this.kind[n] = kind;
    this.val[n] = v;
    this.series[n] = s;
    this.length = n + 1;
  }

  private resize(cap: number): void {
    const n = this.length;
    const grow = <T extends Int32Array | Float64Array | Uint8Array>(a: T, b: T): T => {
      b.set(a.subarray(0, n));
      return b;
    };
    const copy = <T>(a: T[]): T[] => {
      const b = new Array<T>(cap);
      for (let i = 0; i < n; i++) b[i] = a[i];
      return b;
    };
    this.sid = grow(this.sid, new Int32Array(cap));
    this.ts = grow(this.ts, new Float64Array(cap));
    this.kind = grow(this.kind, new Uint8Array(cap));
    this.tsBig = copy(this.tsBig);
    this.val = copy(this.val);
    this.series = copy(this.series);
    this.byKind = new Int32Array(cap);
  }

  /**
   * Fills byKind with the row indices of each kind in turn (in row order within a kind) and returns where
   * each kind's indices start and end: kind k is byKind[start[k]] .. byKind[start[k + 1] - 1].
   */
  groupByKind(): number[] {
    const start = [0, 0, 0, 0, 0];
    for (let i = 0; i < this.length; i++) start[this.kind[i] + 1]++;
    for (let k = 1; k < start.length; k++) start[k] += start[k - 1];
    const at = start.slice(0, 4);
    for (let i = 0; i < this.length; i++) this.byKind[at[this.kind[i]]++] = i;
    return start;
  }

  /** Keeps the last row of each (sid, ts), in order. */
  dedupe(): void {
    const seen = new Map<number, Set<number>>();
    const keep = new Uint8Array(this.length);
    for (let i = this.length - 1; i >= 0; i--) {
      let set = seen.get(this.sid[i]);
      if (set === undefined) seen.set(this.sid[i], (set = new Set()));
      if (set.has(this.ts[i])) continue;
      set.add(this.ts[i]);
      keep[i] = 1;
    }
    let w = 0;
    for (let i = 0; i < this.length; i++) {
      if (!keep[i]) continue;
      this.sid[w] = this.sid[i];
      this.ts[w] = this.ts[i];
      this.tsBig[w] = this.tsBig[i];
      this.kind[w] = this.kind[i];
      this.val[w] = this.val[i];
      this.series[w] = this.series[i];
      w++;
    }
    this.tsBig.fill(0n, w, this.length);
    this.val.fill(0, w, this.length);
    this.series.fill(NO_SERIES, w, this.length);
    this.length = w;
  }
}

interface PointGroupNode {
  group: Group | undefined;
  /** tag key -> tag value -> the node of the tags so far plus that one. */
  next: Map<string, Map<string, PointGroupNode>> | undefined;
}

/**
 * The group of a point's series by its measurement and tags, tags in the point's own order (a point with its
 * tags in another order has another path to the same group), walked without making a key string: a key string a
 * point was 300 bytes of garbage at 10,000 batched readings/s. Tags without a value are skipped, as encodePoint
 * skips them. Bounded: cleared when it holds `max` nodes.
 */
class PointGroups {
  private readonly root = new Map<string, PointGroupNode>();
  private nodes = 0;
  constructor(private readonly max: number) {}

  get(p: Point): Group | undefined {
    let node = this.root.get(p.measurement);
    const tags = p.tags;
    for (const k in tags) {
      if (node === undefined) return undefined;
      const v = tags[k];
      if (v === undefined || v === '') continue;
      node = node.next?.get(k)?.get(v);
    }
    return node?.group;
  }

  set(p: Point, g: Group): void {
    if (this.nodes >= this.max) this.clear();
    let node = this.root.get(p.measurement);
    if (node === undefined) this.root.set(p.measurement, (node = this.node()));
    const tags = p.tags;
    for (const k in tags) {
      const v = tags[k];
      if (v === undefined || v === '') continue;
      node.next ??= new Map();
      let byValue = node.next.get(k);
      if (byValue === undefined) node.next.set(k, (byValue = new Map()));
      let child = byValue.get(v);
      if (child === undefined) byValue.set(v, (child = this.node()));
      node = child;
    }
    node.group = g;
  }

  clear(): void {
    this.root.clear();
    this.nodes = 0;
  }

  private node(): PointGroupNode {
    this.nodes++;
    return { group: undefined, next: undefined };
  }
}

/** A series of a message of packed points (parsePacked): a point without fields or time, and its group once known. */
interface PackedSeries extends Point {
  group: Group | undefined;
}

const EMPTY_FIELDS: Record<string, FieldValue> = Object.freeze({}) as Record<string, FieldValue>;

/** A packed field's value other than a float (those are read from `f`). */
function packedValue(kind: number, payload: number, big: readonly bigint[], strs: readonly string[], i: number): FieldValue {
  switch (kind) {
    case PACKED_INT: {
      const b = big[payload];
      if (b === undefined) throw malformed(i, `packed points: integer ${payload} of ${big.length}`);
      return b;
    }
    case PACKED_BOOL:
      return payload === 1;
    case PACKED_STR: {
      const v = strs[payload];
      if (v === undefined) throw malformed(i, `packed points: string ${payload} of ${strs.length}`);
      return v;
    }
    default:
      throw malformed(i, `packed points: field kind ${kind}`);
  }
}

/** A point's time as stored: whole ms (encodePoint writes it so, parseLine reads that), `now` for NaN; throws past the safe range. */
function storedTs(raw: number, now: number, i: number): number {
  const ts = Math.trunc(raw);
  if (Number.isNaN(ts)) return now;
  if (!Number.isSafeInteger(ts)) throw malformed(i, `timestamp ${ts} is out of range`);
  return ts;
}

/** True when no field name has a backslash (see parseBatch). */
function plainFieldNames(fields: Record<string, FieldValue>): boolean {
  for (const f in fields) if (f.indexOf('\\') !== -1) return false;
  return true;
}

/**
 * End of a line's measurement and tags: its first unescaped space, as parseLine reads it: a backslash
 * escapes the next character only when that is a space, comma or equals sign (before anything else,
 * a backslash is itself: `a\\ b` is `a\` then an escaped space).
 */
function seriesPrefixEnd(line: string): number {
  const n = line.length;
  for (let i = 0; i < n; i++) {
    const c = line.charCodeAt(i);
    if (c === 92 /* \ */) {
      const next = line.charCodeAt(i + 1);
      if (next === 32 || next === 44 || next === 61) i++;
    } else if (c === 32 /* space */) return i;
  }
  return n;
}

function malformed(lineIndex: number, why: string, cause?: unknown): StoreError {
  return new StoreError(`line ${lineIndex + 1}: ${why}`, { retryable: false, status: 400, cause });
}

function badQuery(why: string): StoreError {
  return new StoreError(`embedded store query: ${why}`, { retryable: false, status: 400 });
}

/** The first `count` columns of a result; DuckDB answers no column arrays at all for zero rows. */
function columnsOf(reader: DuckDBResultReader, count: number): DuckDBValue[][] {
  const cols = reader.getColumns();
  const out: DuckDBValue[][] = [];
  for (let i = 0; i < count; i++) out.push(cols[i] ?? []);
  return out;
}

/** Streams a query's answer chunk by chunk (DuckDB never holds it all), each as its columns. */
async function readChunks(conn: DuckDBConnection, sql: string, params: DuckDBValue[], types: DuckDBType[], onChunk: (cols: DuckDBValue[][]) => void): Promise<void> {
  const result = await conn.stream(sql, params, types);
  for (;;) {
    const chunk = await result.fetchChunk();
    if (!chunk || chunk.rowCount === 0) return;
    const cols: DuckDBValue[][] = [];
    for (let i = 0; i < chunk.columnCount; i++) cols.push(chunk.getColumnValues(i));
    onChunk(cols);
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A database failure as a StoreError: retryable (disk full, out of memory...) unless the data itself is refused. */
function dbError(what: string, e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  const msg = errorMessage(e);
  const dataError = /^(Constraint|Conversion|Invalid Input) Error/i.test(msg);
  return new StoreError(`embedded store ${what} failed: ${msg}`, { retryable: !dataError, status: dataError ? 400 : 500, serverMessage: msg, cause: e });
}

/** Sorted [key, value] pairs of the tags other than `device`; throws on empty keys or values. */
function canonicalTags(tags: Record<string, string>, lineIndex: number): { device: string; tags: Array<[string, string]> } {
  let device = '';
  const out: Array<[string, string]> = [];
  for (const k of Object.keys(tags)) {
    const v = tags[k];
    if (k === '') throw malformed(lineIndex, 'empty tag name');
    if (v === '') throw malformed(lineIndex, `tag ${JSON.stringify(k)} has an empty value`);
    if (k === 'device') device = v;
    else out.push([k, v]);
  }
  out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { device, tags: out };
}

function groupKey(measurement: string, device: string, tagset: string): string {
  return JSON.stringify([measurement, device, tagset]);
}

type Value = number | boolean | string | null;

/*
 * Query SQL. $1/$2 map the selected series ids to answer series (gid: one per device + field),
 * $3/$4 are start/end, $5 the bucket size in ms. Every statement reads one kind of value, so its
 * columns have no NULLs (reading a column with NULLs costs ~2.5x in the node API), and sorts by
 * (gid, time): the caller merges the kinds per series and stops each series at `limit` rows. No
 * window function (a QUALIFY row_number() <= limit ran out of a 256 MB memory limit on 1M rows);
 * ORDER BY spills to disk when it has to.
 */
const MAP_CTE = 'm AS (SELECT unnest($1::INTEGER[]) AS sid, unnest($2::INTEGER[]) AS gid)';
const IN_RANGE = 'p.ts >= $3 AND p.ts < $4';
/** Epoch-aligned bucket start, floored for negative times too. */
const BUCKET = '(p.ts - ((p.ts % $5) + $5) % $5)';

/** Raw points of one kind: gid, t, v. */
function rawSql(kind: Kind): string {
  const v = kind === KIND_INT ? 'p.v::DOUBLE' : 'p.v';
  return `WITH ${MAP_CTE} SELECT m.gid, p.ts::DOUBLE AS t, ${v} AS v FROM ${POINT_TABLES[kind]} p JOIN m USING (sid) WHERE ${IN_RANGE} ORDER BY m.gid, p.ts`;
}

/**
 * Raw numbers (floats and integers) with the M4 reduction (see M4_PER_BUCKET in ./query-plan): gid, t, v, kind.
 * $5 = the count above which a series is reduced, $6 = its slices, $7 = gids that also have non-numeric values
 * in the range (read raw: downsample keeps the newest points of a mixed series). Series read raw come with
 * their kind (0 float, 1 integer; equal times float first, as mergeKinds orders them); reduced ones as floats
 * (kind 0), ordered by time, then value. The range is scanned three times (the counts, the slices of the large
 * series, the rows of the others), none of them materialised: cheaper than holding the range (measured in
 * docs/benchmark-log.md, 2026-12-05 from 12:17, with the variants not kept).
 */
const M4_SQL = `WITH ${MAP_CTE},
  r AS NOT MATERIALIZED (
    SELECT m.gid, p.ts, p.v AS v, 0 AS kind FROM points_float p JOIN m USING (sid) WHERE ${IN_RANGE}
    UNION ALL SELECT m.gid, p.ts, p.v::DOUBLE AS v, 1 AS kind FROM points_int p JOIN m USING (sid) WHERE ${IN_RANGE}),
  big AS (SELECT gid, min(ts) AS lo, max(ts) AS hi FROM r GROUP BY gid HAVING count(*) > $5 AND NOT list_contains($7::INTEGER[], gid)),
  a AS (SELECT r.gid, min({'t': r.ts, 'v': r.v}) AS f, max({'t': r.ts, 'v': r.v}) AS l, min({'v': r.v, 't': r.ts}) AS lo, max({'v': r.v, 'n': -r.ts}) AS hi
    FROM r JOIN big USING (gid) GROUP BY r.gid, (r.ts - big.lo) * $6 // (big.hi - big.lo + 1))
  SELECT r.gid, r.ts::DOUBLE AS t, r.v, r.kind FROM r ANTI JOIN big USING (gid)
  UNION ALL SELECT DISTINCT gid, t::DOUBLE AS t, v, 0 AS kind FROM (
    SELECT gid, f.t AS t, f.v AS v FROM a UNION ALL SELECT gid, l.t, l.v FROM a UNION ALL SELECT gid, lo.t, lo.v FROM a UNION ALL SELECT gid, -hi.n, hi.v FROM a)
  ORDER BY 1, 2, 4, 3`;

/**
 * One aggregate per series and bucket (or per series over the whole range, at $3, without
 * bucketMs): gid, t, v. mean/min/max/sum read the numbers (floats and integers); count counts
 * values of every type. `last` is done per kind (lastSql) and merged by time.
 */
function aggSql(agg: Exclude<Aggregate, 'last'>, bucketed: boolean): string {
  const kinds = agg === 'count' ? KINDS : [KIND_FLOAT, KIND_INT];
  const value = agg === 'count' ? 'NULL::DOUBLE AS v' : 'p.v::DOUBLE AS v';
  const union = kinds.map((k) => `SELECT p.sid, p.ts, ${value} FROM ${POINT_TABLES[k]} p WHERE ${IN_RANGE}`).join(' UNION ALL ');
  const fn = { mean: 'avg(v)', min: 'min(v)', max: 'max(v)', sum: 'sum(v)', count: 'count(*)::DOUBLE' }[agg];
  const t = bucketed ? BUCKET : '$3';
  return `WITH ${MAP_CTE}, p AS (${union})
    SELECT m.gid, ${t}::DOUBLE AS t, ${fn} AS v FROM p JOIN m USING (sid) GROUP BY ALL ORDER BY 1, 2`;
}

/** The last value of one kind per series and bucket, with its time (lt) to merge the kinds by. */
function lastSql(kind: Kind, bucketed: boolean): string {
  const v = kind === KIND_INT ? 'p.v::DOUBLE' : 'p.v';
  const t = bucketed ? BUCKET : '$3';
  return `WITH ${MAP_CTE}
    SELECT m.gid, ${t}::DOUBLE AS t, arg_max(${v}, p.ts) AS v, max(p.ts)::DOUBLE AS lt FROM ${POINT_TABLES[kind]} p JOIN m USING (sid)
    WHERE ${IN_RANGE} GROUP BY ALL ORDER BY 1, 2`;
}

type Point2 = [number, Value];

/**
 * Merges per-kind lists (each ascending) into one ascending list of at most `limit` points; a tie
 * keeps the earlier kind first. A series almost always has one kind: then this is that list.
 */
function mergeKinds(lists: Point2[][], limit: number): Point2[] {
  const nonEmpty = lists.filter((l) => l.length > 0);
  if (nonEmpty.length === 0) return [];
  if (nonEmpty.length === 1) return nonEmpty[0].length > limit ? nonEmpty[0].slice(0, limit) : nonEmpty[0];
  const all = nonEmpty.flat();
  all.sort((x, y) => x[0] - y[0]);
  return all.length > limit ? all.slice(0, limit) : all;
}

/** A chunk per value kind, reused for every batch: (sid INTEGER, ts BIGINT, v <kind>). */
interface KindSink {
  chunk: DuckDBDataChunk;
  appender: DuckDBAppender;
}

export class EmbeddedBackend implements StoreBackend {
  readonly kind = 'embedded' as const;
  readonly description: string;
  readonly path: string;
  private readonly threads: number;
  private readonly memoryLimit: string;
  private readonly checkpointThreshold?: string;
  private readonly maxAnswerPoints: number;

  private instance?: DuckDBInstance;
  private writeConn?: DuckDBConnection;
  private readConn?: DuckDBConnection;
  /** Exports stream on their own connection (opened on first use): a long export holds up neither queries nor writes. */
  private exportConn?: DuckDBConnection;
  private opening?: Promise<void>;
  private closing?: Promise<void>;
  private closed = false;
  private ownsFile = false;

  /** Writes run one at a time, and so do queries (on their own connection). */
  private writeChain: Promise<unknown> = Promise.resolve();
  private readChain: Promise<unknown> = Promise.resolve();
  private exportChain: Promise<unknown> = Promise.resolve();
  private readonly inFlight = new Set<Promise<unknown>>();

  // Series catalogue (committed, plus the pending series of the batch being written).
  private readonly groups = new Map<string, Group>();
  private readonly prefixCache = new Map<string, Group>();
  /** The group of a point's series (batches of points, see parseBatch). */
  private readonly pointGroups = new PointGroups(POINT_GROUP_NODES_MAX);
  private nextId = 1;
  private pendingGroups: string[] = [];
  private pendingSeries: Array<{ group: Group; field: string; info: SeriesInfo }> = [];
  private batchNo = 0;
  private readonly rows = new Rows();

  private sinks?: KindSink[];
  private seriesAppender?: DuckDBAppender;
  private keysAppender?: DuckDBAppender;
  private keysChunk?: DuckDBDataChunk;

  constructor(opts: EmbeddedOptions) {
    if (!opts || typeof opts.path !== 'string' || opts.path === '') throw new Error('embedded store: path is required');
    this.path = opts.path === ':memory:' ? opts.path : path.resolve(opts.path);
    this.threads = Math.max(1, Math.trunc(opts.threads ?? 2));
    this.memoryLimit = opts.memoryLimit ?? '256MB';
    this.checkpointThreshold = opts.checkpointThreshold;
    this.maxAnswerPoints = opts.maxAnswerPoints ?? maxAnswerPoints();
    if (!(Number.isSafeInteger(this.maxAnswerPoints) && this.maxAnswerPoints > 0)) throw new Error(`embedded store: maxAnswerPoints must be a positive whole number, got ${this.maxAnswerPoints}`);
    this.description = `embedded (DuckDB) ${this.path}`;
  }

  /** Creates the backend and opens its file (the other methods also open it on first use). */
  static async open(opts: EmbeddedOptions): Promise<EmbeddedBackend> {
    const b = new EmbeddedBackend(opts);
    await b.ready();
    return b;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  private ready(): Promise<void> {
    // Operations queued before close() still find the connection open: close() waits for them.
    if (this.writeConn) return Promise.resolve();
    if (this.closed) return Promise.reject(new StoreError(`${this.description} is closed`, { retryable: true }));
    this.opening ??= this.doOpen().catch((e: unknown) => {
      this.opening = undefined;
      throw e instanceof StoreError ? e : new StoreError(`cannot open ${this.description}: ${errorMessage(e)}`, { retryable: true, cause: e });
    });
    return this.opening;
  }

  private async doOpen(): Promise<void> {
    if (this.path !== ':memory:') {
      claimFile(this.path);
      this.ownsFile = true;
    }
    try {
      if (this.path !== ':memory:') fs.mkdirSync(path.dirname(this.path), { recursive: true });
      const config: Record<string, string> = {
        threads: String(this.threads),
        memory_limit: this.memoryLimit,
        // Every query that needs an order says so: this lets DuckDB use less memory.
        preserve_insertion_order: 'false',
      };
      if (this.checkpointThreshold) config.checkpoint_threshold = this.checkpointThreshold;
      const instance = await DuckDBInstance.create(this.path, config);
      this.instance = instance;
      const w = await instance.connect();
      const r = await instance.connect();
      for (const sql of SCHEMA_SQL) await w.run(sql);
      const meta = await w.runAndReadAll(`SELECT value FROM thingwire_meta WHERE key = 'schema'`);
      const version = columnsOf(meta, 1)[0][0];
      if (version === undefined) await w.run(`INSERT INTO thingwire_meta VALUES ('schema', $1)`, [SCHEMA_VERSION], [VARCHAR]);
      else if (version !== SCHEMA_VERSION) {
        throw new StoreError(`${this.path} has schema version ${String(version)}; this Thingwire reads version ${SCHEMA_VERSION}`, { retryable: false });
      }
      await w.run(`CREATE TEMP TABLE IF NOT EXISTS replace_keys (sid INTEGER NOT NULL, ts BIGINT NOT NULL)`);
      await w.run(`CREATE TEMP TABLE IF NOT EXISTS new_series (id INTEGER, measurement VARCHAR, device VARCHAR, tagset VARCHAR, field VARCHAR)`);
      // An appender's flush runs an INSERT on this connection and waits for it. Without insertion order the
      // INSERT is split over DuckDB's threads, and the event loop waits for their hand-offs: 2-2.5x the time
      // (a scratch benchmark, one core busy elsewhere as in the runtime: 159-186 against 77-95 ns a row for
      // 40,000 rows a flush, 252-259 against 150 for 5,000). The setting is this connection's alone.
      await w.run('SET preserve_insertion_order = true');
      await this.loadCatalogue(w);
      this.writeConn = w;
      this.readConn = r;
    } catch (e) {
      this.releaseDb();
      throw e;
    }
  }

  private async loadCatalogue(conn: DuckDBConnection): Promise<void> {
    this.groups.clear();
    this.prefixCache.clear();
    this.pointGroups.clear();
    const byId = new Map<number, SeriesInfo>();
    const r = await conn.runAndReadAll(`SELECT id, measurement, device, tagset, field FROM series`);
    const [ids, ms, devs, tagsets, fields] = columnsOf(r, 5) as [number[], string[], string[], string[], string[]];
    let maxId = 0;
    for (let i = 0; i < ids.length; i++) {
      const key = groupKey(ms[i], devs[i], tagsets[i]);
      let g = this.groups.get(key);
      if (!g) {
        g = { measurement: ms[i], device: devs[i], tagset: tagsets[i], tags: JSON.parse(tagsets[i]) as Array<[string, string]>, fields: new Map() };
        this.groups.set(key, g);
      }
      const info: SeriesInfo = { id: ids[i], maxTs: -Infinity, kinds: 0, mark: 0, bmax: 0, bkinds: 0 };
      g.fields.set(fields[i], info);
      byId.set(ids[i], info);
      if (ids[i] > maxId) maxId = ids[i];
    }
    this.nextId = maxId + 1;
    for (const k of KINDS) {
      const m = await conn.runAndReadAll(`SELECT sid, max(ts)::DOUBLE FROM ${POINT_TABLES[k]} GROUP BY sid`);
      const [sids, maxes] = columnsOf(m, 2) as [number[], number[]];
      for (let i = 0; i < sids.length; i++) {
        const s = byId.get(sids[i]);
        if (!s) continue;
        s.kinds |= 1 << k;
        if (maxes[i] > s.maxTs) s.maxTs = maxes[i];
      }
    }
  }

  private async sinksFor(conn: DuckDBConnection): Promise<KindSink[]> {
    if (!this.sinks) {
      const sinks: KindSink[] = [];
      for (const k of KINDS) {
        sinks.push({ chunk: DuckDBDataChunk.create([INTEGER, BIGINT, VALUE_TYPES[k]]), appender: await conn.createAppender(POINT_TABLES[k]) });
      }
      this.sinks = sinks;
    }
    return this.sinks;
  }

  /** Appenders can be left unusable by a failed flush: drop them all after any failure. */
  private dropAppenders(): void {
    const all: Array<DuckDBAppender | undefined> = [...(this.sinks ?? []).map((s) => s.appender), this.seriesAppender, this.keysAppender];
    for (const a of all) {
      if (!a) continue;
      try {
        a.clear();
      } catch {
        // already unusable
      }
      try {
        a.closeSync();
      } catch {
        // already unusable
      }
    }
    this.sinks = undefined;
    this.seriesAppender = undefined;
    this.keysAppender = undefined;
  }

  private releaseDb(): void {
    this.dropAppenders();
    for (const c of [this.writeConn, this.readConn, this.exportConn]) {
      try {
        c?.closeSync();
      } catch {
        // closing anyway
      }
    }
    this.writeConn = undefined;
    this.readConn = undefined;
    this.exportConn = undefined;
    try {
      this.instance?.closeSync();
    } catch {
      // closing anyway
    }
    this.instance = undefined;
    if (this.ownsFile) releaseFile(this.path);
    this.ownsFile = false;
  }

  /** Runs fn after the previous operation of the same chain; tracked so close() can wait for it. */
  private run<T>(chain: 'write' | 'read' | 'export', fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError(`${this.description} is closed`, { retryable: true }));
    const prev = chain === 'write' ? this.writeChain : chain === 'read' ? this.readChain : this.exportChain;
    const p = prev.then(fn, fn);
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    if (chain === 'write') this.writeChain = settled;
    else if (chain === 'read') this.readChain = settled;
    else this.exportChain = settled;
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return p;
  }

  /** Finishes the operations in flight, checkpoints, and closes the file. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await this.opening?.catch(() => undefined);
      await Promise.all([...this.inFlight]);
      if (this.writeConn) {
        try {
          await this.writeConn.run('CHECKPOINT');
        } catch {
          // DuckDB checkpoints on close as well
        }
      }
      this.releaseDb();
    })();
    return this.closing;
  }

  async health(): Promise<BackendHealth> {
    try {
      return await this.run('read', async () => {
        await this.ready();
        await this.readConn!.run('SELECT 1');
        return { ok: true, detail: this.description };
      });
    } catch (e) {
      return { ok: false, detail: `${this.description}: ${errorMessage(e)}` };
    }
  }

  // ---- write -------------------------------------------------------------------------------

  write(batch: Batch, hints?: WriteHints): Promise<void> {
    return this.run('write', () => this.writeBatch(batch, hints?.behind === true));
  }

  /**
   * Writes points packed by thread-wire.ts (the store's worker thread), in one or more parts, as write() writes the
   * batch of those points: one transaction, a point's index in errors counted over all the parts.
   */
  writePacked(parts: readonly PackedPoints[], hints?: WriteHints): Promise<void> {
    let n = 0;
    for (const p of parts) n += p.n;
    return this.run('write', () => this.writeBatch({ lines: '', count: n }, hints?.behind === true, parts));
  }

  private async writeBatch(batch: Batch, behind: boolean, packed?: readonly PackedPoints[]): Promise<void> {
    await this.ready();
    // A batch of points is read from its points: its lines are not made (see Batch.points).
    const points = packed !== undefined ? undefined : batch.points;
    const lines = packed !== undefined || points !== undefined ? undefined : (batch.lineList ?? (typeof batch.lines === 'string' && batch.lines.length > 0 ? splitLines(batch.lines) : []));
    if ((packed !== undefined ? batch.count : (points ?? lines!).length) === 0) return;
    const conn = this.writeConn!;
    const rows = this.rows;
    // Parsing and appending run in slices of a few ms (../slice): a 5,000-line batch in one go held the event
    // loop for 20-30 ms, and everything else in the runtime (readings on their way to a dashboard) waited. Longer
    // slices while the writer catches up: the store is then what everything waits for (CATCH_UP_SLICE_MS).
    const slicer = new TimeSlicer(behind ? CATCH_UP_SLICE_MS : SLICE_MS);
    // DuckDB starts the transaction on its own thread while this one parses the lines.
    const begun = conn.run('BEGIN TRANSACTION').then(
      () => undefined,
      (e: unknown) => e,
    );
    try {
      let touched: SeriesInfo[];
      try {
        const parsed = packed !== undefined ? await this.parsePacked(packed, rows, slicer) : await this.parseBatch(lines, points, rows, slicer);
        touched = parsed.touched;
        if (parsed.needDedupe) rows.dedupe();
      } catch (e) {
        throw e instanceof StoreError ? e : malformed(-1, errorMessage(e), e);
      }
      const beginError = await begun;
      if (beginError !== undefined) throw dbError('write', beginError);
      await this.store(conn, rows, slicer);
      // Committed: the catalogue may now count on it.
      for (const s of touched) {
        if (s.bmax > s.maxTs) s.maxTs = s.bmax;
        s.kinds |= s.bkinds;
      }
      this.pendingGroups = [];
      this.pendingSeries = [];
    } catch (e) {
      if ((await begun) === undefined) {
        try {
          await conn.run('ROLLBACK');
        } catch {
          // a failed COMMIT has rolled back already
        }
      }
      this.forgetPending();
      throw e;
    } finally {
      rows.reset();
    }
  }

  /**
   * Turns every line, or every point, into rows; throws a non-retryable StoreError on the first malformed one.
   * A point is stored as its line would be: the first point of a series is encoded and its line parsed whole (so
   * the series is named as the line names it), and so is a point with a backslash in a field name (which
   * parseLine reads differently, see the store's tests); every other point gives its fields and time as they are
   * (encodePoint writes them so that parseLine reads them back exactly).
   */
  private async parseBatch(lines: readonly string[] | undefined, points: readonly Point[] | undefined, rows: Rows, slicer: TimeSlicer): Promise<{ touched: SeriesInfo[]; needDedupe: boolean }> {
    const now = Date.now();
    const batchNo = ++this.batchNo;
    const touched: SeriesInfo[] = [];
    let needDedupe = false;
    const n = points !== undefined ? points.length : lines!.length;
    // The group of the point before, by its tags object: the points of a batch of readings share one (readingToPoint).
    let lastTags: Record<string, string> | undefined;
    let lastMeasurement = '';
    let lastGroup: Group | undefined;
    for (let i = 0; i < n; i++) {
      if ((i & 63) === 63 && slicer.due()) await slicer.pause();
      let g: Group | undefined;
      let p: Point;
      if (points !== undefined) {
        p = points[i];
        g = p.tags === lastTags && p.measurement === lastMeasurement ? lastGroup : this.pointGroups.get(p);
        if (g === undefined || !plainFieldNames(p.fields)) {
          p = this.asLineReads(p, i);
          if (g === undefined) {
            g = this.groupFor(p.measurement, p.tags, i);
            this.pointGroups.set(points[i], g);
          }
        }
        lastTags = points[i].tags;
        lastMeasurement = points[i].measurement;
        lastGroup = g;
      } else {
        // Lines of a known series (same measurement and tags text up to the first unescaped space) only
        // need their fields and time parsed: parseLine reads "_<rest>" exactly as it reads the rest of the
        // line. The first line of a prefix, and any line that fails, is parsed whole.
        const line = lines![i];
        const sp = seriesPrefixEnd(line);
        const prefix = line.slice(0, sp);
        g = this.prefixCache.get(prefix);
        try {
          p = parseLine(g === undefined || sp === line.length ? line : `_${line.slice(sp)}`);
        } catch (e) {
          throw this.lineError(line, i, e);
        }
        if (g === undefined) {
          g = this.groupFor(p.measurement, p.tags, i);
          if (this.prefixCache.size >= PREFIX_CACHE_MAX) this.prefixCache.clear();
          this.prefixCache.set(prefix, g);
        }
      }
      // encodePoint writes the time truncated to whole ms; parseLine reads that.
      const ts = storedTs(p.ts, now, i);
      const tsBig = BigInt(ts);
      for (const f in p.fields) {
        const v = p.fields[f];
        // encodePoint leaves out fields without a value.
        if (v === undefined || v === null) continue;
        if (this.addField(rows, g, f, v, ts, tsBig, i, batchNo, touched)) needDedupe = true;
      }
    }
    return { touched, needDedupe };
  }

  /**
   * One field value of a point into the rows (its series made when new); true when the batch holds an earlier row of
   * that series at or after `ts` (the rows then need deduplicating). `touched` collects the series the batch writes.
   */
  private addField(rows: Rows, g: Group, f: string, v: FieldValue, ts: number, tsBig: bigint, i: number, batchNo: number, touched: SeriesInfo[]): boolean {
    let kind: Kind;
    switch (typeof v) {
      case 'number':
        // encodePoint writes -0 as 0.
        if (v === 0) v = 0;
        kind = KIND_FLOAT;
        break;
      case 'bigint':
        if (v < INT64_MIN || v > INT64_MAX) throw malformed(i, `integer field ${JSON.stringify(f)} is out of the 64-bit range`);
        kind = KIND_INT;
        break;
      case 'boolean':
        kind = KIND_BOOL;
        break;
      default:
        kind = KIND_STR;
    }
    let s = g.fields.get(f);
    if (s === undefined) {
      if (f === '') throw malformed(i, 'empty field name');
      s = this.newSeries(g, f);
    }
    let dup = false;
    if (s.mark !== batchNo) {
      s.mark = batchNo;
      s.bmax = ts;
      s.bkinds = 1 << kind;
      touched.push(s);
    } else {
      if (ts <= s.bmax) dup = true;
      else s.bmax = ts;
      s.bkinds |= 1 << kind;
    }
    rows.push(s, ts, tsBig, kind, v);
    return dup;
  }

  /**
   * parseBatch for points packed by thread-wire.ts (the store in its worker thread: embedded-thread.ts), read from
   * the typed arrays without making the points again. A point of a series not yet known in this process, or with a
   * backslash in a field name, is made and read as parseBatch reads a point (encoded, its line parsed), so both
   * store the same rows.
   */
  private async parsePacked(parts: readonly PackedPoints[], rows: Rows, slicer: TimeSlicer): Promise<{ touched: SeriesInfo[]; needDedupe: boolean }> {
    const now = Date.now();
    const batchNo = ++this.batchNo;
    const touched: SeriesInfo[] = [];
    let needDedupe = false;
    let offset = 0;
    for (const p of parts) {
      if (await this.parsePart(p, offset, rows, slicer, now, batchNo, touched)) needDedupe = true;
      offset += p.n;
    }
    return { touched, needDedupe };
  }

  /** One part of parsePacked; its points are offset.. of the batch. True when the rows need deduplicating. */
  private async parsePart(p: PackedPoints, offset: number, rows: Rows, slicer: TimeSlicer, now: number, batchNo: number, touched: SeriesInfo[]): Promise<boolean> {
    let needDedupe = false;
    const { u, f, strs } = p;
    const big = p.big ?? [];
    const str = (k: number): string => {
      const v = strs[k];
      if (v === undefined) throw malformed(-1, `packed points: string ${k} of ${strs.length}`);
      return v;
    };
    /** Per string: 0 not looked at, 1 a field name without a backslash, 2 with one. */
    const plain = new Uint8Array(strs.length);
    const series: PackedSeries[] = [];
    let iu = 0;
    let jf = 0;
    for (let j = 0; j < p.n; j++) {
      if ((j & 63) === 63 && slicer.due()) await slicer.pause();
      const i = offset + j;
      const sn = u[iu++];
      let se = series[sn];
      if (se === undefined) {
        if (sn !== series.length) throw malformed(i, `packed points: series ${sn} before ${series.length}`);
        const measurement = str(u[iu++]);
        const nt = u[iu++];
        const tags: Record<string, string> = {};
        for (let t = 0; t < nt; t++) {
          const k = str(u[iu++]);
          tags[k] = str(u[iu++]);
        }
        se = { measurement, tags, fields: EMPTY_FIELDS, ts: 0, group: undefined };
        se.group = this.pointGroups.get(se);
        series.push(se);
      }
      const rawTs = f[jf++];
      const nfields = u[iu++];
      let g = se.group;
      let fast = g !== undefined;
      for (let k = 0, o = iu; fast && k < nfields; k++, o += 3) {
        const ni = u[o];
        let pl = plain[ni];
        if (pl === 0) plain[ni] = pl = str(ni).indexOf('\\') === -1 ? 1 : 2;
        if (pl === 2) fast = false;
      }
      if (fast) {
        const ts = storedTs(rawTs, now, i);
        const tsBig = BigInt(ts);
        for (let k = 0; k < nfields; k++) {
          const name = strs[u[iu++]];
          const kind = u[iu++];
          const payload = u[iu++];
          const v = kind === PACKED_FLOAT ? f[jf++] : packedValue(kind, payload, big, strs, i);
          if (this.addField(rows, g!, name, v, ts, tsBig, i, batchNo, touched)) needDedupe = true;
        }
        continue;
      }
      // Made and read as a point of a batch of points is (parseBatch).
      const fields: Record<string, FieldValue> = {};
      for (let k = 0; k < nfields; k++) {
        const name = str(u[iu++]);
        const kind = u[iu++];
        const payload = u[iu++];
        fields[name] = kind === PACKED_FLOAT ? f[jf++] : packedValue(kind, payload, big, strs, i);
      }
      const point: Point = { measurement: se.measurement, tags: se.tags, fields, ts: rawTs };
      const parsed = this.asLineReads(point, i);
      if (g === undefined) {
        g = this.groupFor(parsed.measurement, parsed.tags, i);
        this.pointGroups.set(point, g);
        se.group = g;
      }
      const ts = storedTs(parsed.ts, now, i);
      const tsBig = BigInt(ts);
      for (const name in parsed.fields) {
        const v = parsed.fields[name];
        if (v === undefined || v === null) continue;
        if (this.addField(rows, g, name, v, ts, tsBig, i, batchNo, touched)) needDedupe = true;
      }
    }
    if (iu !== p.nu || jf !== p.nf) throw malformed(-1, `packed points: read ${iu} of ${p.nu} words and ${jf} of ${p.nf} numbers`);
    return needDedupe;
  }

  /** A point as its line reads back (encoded, then parsed): how the store names a series and its fields. */
  private asLineReads(p: Point, i: number): Point {
    let line: string;
    try {
      line = encodePoint(p);
    } catch (e) {
      throw malformed(i, errorMessage(e), e);
    }
    try {
      return parseLine(line);
    } catch (e) {
      throw this.lineError(line, i, e);
    }
  }

  /** The error for a line parseLine refused, with parseLine's message for the whole line. */
  private lineError(line: string, index: number, e: unknown): StoreError {
    try {
      parseLine(line);
    } catch (whole) {
      e = whole;
    }
    return malformed(index, e instanceof ThingwireError ? e.message : errorMessage(e), e);
  }

  private groupFor(measurement: string, rawTags: Record<string, string>, lineIndex: number): Group {
    const { device, tags } = canonicalTags(rawTags, lineIndex);
    const tagset = JSON.stringify(tags);
    const key = groupKey(measurement, device, tagset);
    let g = this.groups.get(key);
    if (!g) {
      g = { measurement, device, tagset, tags, fields: new Map() };
      this.groups.set(key, g);
      this.pendingGroups.push(key);
    }
    return g;
  }

  private newSeries(g: Group, field: string): SeriesInfo {
    const info: SeriesInfo = { id: this.nextId++, maxTs: -Infinity, kinds: 0, mark: 0, bmax: 0, bkinds: 0 };
    g.fields.set(field, info);
    this.pendingSeries.push({ group: g, field, info });
    return info;
  }

  /** Undoes the catalogue entries of a batch that was not committed. */
  private forgetPending(): void {
    if (this.pendingSeries.length === 0 && this.pendingGroups.length === 0) return;
    for (const { group, field } of this.pendingSeries) group.fields.delete(field);
    for (const key of this.pendingGroups) this.groups.delete(key);
    if (this.pendingSeries.length > 0) this.nextId = this.pendingSeries[0].info.id;
    this.pendingSeries = [];
    this.pendingGroups = [];
    this.prefixCache.clear();
    this.pointGroups.clear();
  }

  /** Writes the rows in the open transaction and commits: new series, deletes of the rows they replace, appends. */
  private async store(conn: DuckDBConnection, rows: Rows, slicer: TimeSlicer): Promise<void> {
    // Rows that may replace stored ones: not newer than their series' newest stored ts.
    let nReplace = 0;
    let lo = Infinity;
    let hi = -Infinity;
    let replaceKinds = 0;
    for (let i = 0; i < rows.length; i++) {
      const s = rows.series[i];
      const ts = rows.ts[i];
      if (ts <= s.maxTs) {
        nReplace++;
        if (ts < lo) lo = ts;
        if (ts > hi) hi = ts;
        replaceKinds |= s.kinds;
      }
    }
    const replace = new Int32Array(nReplace);
    for (let i = 0, r = 0; r < nReplace; i++) if (rows.ts[i] <= rows.series[i].maxTs) replace[r++] = i;
    const kindStart = rows.groupByKind();

    try {
      if (this.pendingSeries.length > 0) await this.appendSeries(conn, slicer);
      if (nReplace > 0) {
        await this.appendKeys(conn, rows, replace);
        for (const k of KINDS) {
          if ((replaceKinds & (1 << k)) === 0) continue;
          await conn.run(
            `DELETE FROM ${POINT_TABLES[k]} AS p USING replace_keys AS r WHERE p.sid = r.sid AND p.ts = r.ts AND p.ts BETWEEN $1 AND $2`,
            [BigInt(lo), BigInt(hi)],
            [BIGINT, BIGINT],
          );
        }
        await conn.run('DELETE FROM replace_keys');
      }
      const sinks = await this.sinksFor(conn);
      for (const k of KINDS) {
        if (kindStart[k + 1] > kindStart[k]) await this.appendPoints(sinks[k], rows, rows.byKind.subarray(kindStart[k], kindStart[k + 1]), k, slicer);
      }
      await conn.run('COMMIT');
    } catch (e) {
      // The caller rolls the transaction back.
      this.dropAppenders();
      throw dbError('write', e);
    }
  }

  /**
   * New series rows: the plain columns through an appender into a temporary table, then one INSERT that
   * builds the `tags` map from the tagset JSON on DuckDB's thread. Appending the map from JavaScript
   * (appendMap) cost about 13 us a series on the event loop: the first 1m rollups of 2,000 devices create
   * about 100,000 series at once, and held the runtime for over a second.
   */
  private async appendSeries(conn: DuckDBConnection, slicer: TimeSlicer): Promise<void> {
    this.seriesAppender ??= await conn.createAppender('new_series', 'main', 'temp');
    const a = this.seriesAppender;
    let held = 0;
    for (let i = 0; i < this.pendingSeries.length; i++) {
      if ((i & 63) === 63 && slicer.due()) {
        // A flush moves what the appender holds into the table, on this thread: one at the end took ~40 ms
        // for 85,000 series.
        if (held >= FLUSH_MIN_SERIES) {
          a.flushSync();
          held = 0;
        }
        await slicer.pause();
      }
      held++;
      const { group, field, info } = this.pendingSeries[i];
      a.appendInteger(info.id);
      a.appendVarchar(group.measurement);
      a.appendVarchar(group.device);
      a.appendVarchar(group.tagset);
      a.appendVarchar(field);
      a.endRow();
    }
    a.flushSync();
    await conn.run(
      `INSERT INTO series SELECT id, measurement, device, tagset,
         map_from_entries(list_transform(json_transform(tagset, '[["VARCHAR"]]'), x -> {'key': x[1], 'value': x[2]})), field
       FROM temp.new_series`,
    );
    await conn.run('DELETE FROM temp.new_series');
  }

  private async appendKeys(conn: DuckDBConnection, rows: Rows, idx: Int32Array): Promise<void> {
    this.keysAppender ??= await conn.createAppender('replace_keys', 'main', 'temp');
    this.keysChunk ??= DuckDBDataChunk.create([INTEGER, BIGINT]);
    const chunk = this.keysChunk;
    for (let o = 0; o < idx.length; o += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, idx.length - o);
      chunk.reset();
      chunk.rowCount = n;
      const vs = chunk.getColumnVector(0);
      const vt = chunk.getColumnVector(1);
      for (let j = 0; j < n; j++) {
        const i = idx[o + j];
        vs.setItem(j, rows.sid[i]);
        vt.setItem(j, rows.tsBig[i]);
      }
      vs.flush();
      vt.flush();
      this.keysAppender.appendDataChunk(chunk);
    }
    this.keysAppender.flushSync();
  }

  private async appendPoints(sink: KindSink, rows: Rows, idx: Int32Array, kind: Kind, slicer: TimeSlicer): Promise<void> {
    const { chunk, appender } = sink;
    const { sid, tsBig, val } = rows;
    let held = 0;
    for (let o = 0; o < idx.length; o += CHUNK_ROWS) {
      if (o > 0 && slicer.due()) {
        if (held >= FLUSH_MIN_ROWS) {
          appender.flushSync();
          held = 0;
        }
        await slicer.pause();
      }
      const n = Math.min(CHUNK_ROWS, idx.length - o);
      chunk.reset();
      chunk.rowCount = n;
      const vs = chunk.getColumnVector(0);
      const vt = chunk.getColumnVector(1);
      const vv = chunk.getColumnVector(2);
      for (let j = 0; j < n; j++) {
        const i = idx[o + j];
        vs.setItem(j, sid[i]);
        vt.setItem(j, tsBig[i]);
      }
      if (kind === KIND_FLOAT) for (let j = 0; j < n; j++) vv.setItem(j, val[idx[o + j]] as number);
      else for (let j = 0; j < n; j++) vv.setItem(j, val[idx[o + j]] as DuckDBValue);
      vs.flush();
      vt.flush();
      vv.flush();
      appender.appendDataChunk(chunk);
      held += n;
    }
    appender.flushSync();
  }

  // ---- query -------------------------------------------------------------------------------

  query(q: RangeQuery): Promise<QueryResult> {
    let plan: QueryPlan;
    try {
      plan = planQuery(q, 'embedded store query');
    } catch (e) {
      return Promise.reject(e instanceof StoreError ? e : badQuery(errorMessage(e)));
    }
    return this.run('read', () => this.runQuery(plan));
  }

  private async runQuery(plan: QueryPlan): Promise<QueryResult> {
    await this.ready();
    const conn = this.readConn!;
    // One snapshot for the series lookup and the point reads: as separate statements, a batch committed between
    // them showed its rows for series found earlier but not for the series it created (a point's new field
    // missing from the answer while its other fields were there).
    try {
      await conn.run('BEGIN TRANSACTION');
    } catch (e) {
      throw dbError('query', e);
    }
    try {
      return await this.readQuery(conn, plan);
    } finally {
      try {
        await conn.run('COMMIT');
      } catch {
        // A read-only transaction that fails to commit has nothing to undo; the next query begins a new one.
        await conn.run('ROLLBACK').catch(() => undefined);
      }
    }
  }

  private async readQuery(conn: DuckDBConnection, plan: QueryPlan): Promise<QueryResult> {
    try {
      // 1. The series: every user value is a bound parameter.
      const sparams: DuckDBValue[] = [plan.measurement, listValue(plan.fields)];
      const stypes: DuckDBType[] = [VARCHAR, LIST(VARCHAR)];
      let sql = `SELECT id, device, field FROM series WHERE measurement = $1 AND list_contains($2, field)`;
      if (plan.devices.length > 0) {
        sparams.push(listValue(plan.devices));
        stypes.push(LIST(VARCHAR));
        sql += ` AND list_contains($${sparams.length}, device)`;
      }
      for (const [k, v] of plan.where) {
        if (k === 'device') {
          sparams.push(v);
          stypes.push(VARCHAR);
          sql += ` AND device = $${sparams.length}`;
        } else {
          sparams.push(k, v);
          stypes.push(VARCHAR, VARCHAR);
          sql += ` AND tags[$${sparams.length - 1}] = $${sparams.length}`;
        }
      }
      sql += ' ORDER BY device, field, id';
      const sres = await conn.runAndReadAll(sql, sparams, stypes);
      const [ids, devices, fields] = columnsOf(sres, 3) as [number[], string[], string[]];
      if (ids.length === 0) return { series: [] };

      // One answer series per device + field.
      const series: Series[] = [];
      const gids: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        const last = series[series.length - 1];
        if (!last || last.device !== devices[i] || last.field !== fields[i]) series.push({ device: devices[i], field: fields[i], points: [] });
        gids.push(series.length - 1);
      }

      // 2. Their points, one kind of value at a time.
      const base: DuckDBValue[] = [listValue(ids), listValue(gids), BigInt(plan.start), BigInt(plan.end)];
      const baseTypes: DuckDBType[] = [LIST(INTEGER), LIST(INTEGER), BIGINT, BIGINT];
      const bucketed = plan.bucketMs !== undefined;
      const params = bucketed ? [...base, BigInt(plan.bucketMs!)] : base;
      const types = bucketed ? [...baseTypes, BIGINT] : baseTypes;
      const limit = plan.limit;
      // Points read so far, over every series and kind: past the answer's budget the query stops reading.
      let total = 0;
      const count = (rows: number): void => {
        total += rows;
        if (total > this.maxAnswerPoints) throw answerTooLarge('embedded store query', this.maxAnswerPoints);
      };
      const perKind: Point2[][][] = []; // [kind][gid] -> points
      const collect = async (sql: string, extra?: { params: DuckDBValue[]; types: DuckDBType[] }): Promise<Point2[][]> => {
        const lists: Point2[][] = series.map(() => []);
        await readChunks(conn, sql, extra ? [...params, ...extra.params] : params, extra ? [...types, ...extra.types] : types, (cols) => {
          const [g, t, v] = cols as [number[], number[], Value[]];
          for (let i = 0; i < g.length; i++) {
            const list = lists[g[i]];
            if (list.length < limit && v[i] !== null) list.push([t[i], v[i]]);
          }
          count(g.length);
        });
        return lists;
      };
      const m4 = m4Buckets(plan);
      if (m4 !== undefined) {
        // Non-numeric values first: a series that has them is not reduced.
        const other = [await collect(rawSql(KIND_BOOL)), await collect(rawSql(KIND_STR))];
        const mixed: number[] = [];
        for (let gi = 0; gi < series.length; gi++) if (other[0][gi].length > 0 || other[1][gi].length > 0) mixed.push(gi);
        const numbers = await collect(M4_SQL, { params: [BigInt(M4_PER_BUCKET * m4), BigInt(m4), listValue(mixed)], types: [BIGINT, BIGINT, LIST(INTEGER)] });
        perKind.push(numbers, ...other);
      } else if (plan.agg === undefined) {
        for (const k of KINDS) perKind.push(await collect(rawSql(k)));
      } else if (plan.agg !== 'last') {
        perKind.push(await collect(aggSql(plan.agg, bucketed)));
      } else {
        // Per kind: the last value of each bucket and its time; the latest of the kinds wins.
        const byBucket: Array<Map<number, [number, Value]>> = series.map(() => new Map());
        for (const k of KINDS) {
          await readChunks(conn, lastSql(k, bucketed), params, types, (cols) => {
            const [g, t, v, lt] = cols as [number[], number[], Value[], number[]];
            count(g.length);
            for (let i = 0; i < g.length; i++) {
              const m = byBucket[g[i]];
              const prev = m.get(t[i]);
              if (v[i] !== null && (prev === undefined || lt[i] > prev[0])) m.set(t[i], [lt[i], v[i]]);
            }
          });
        }
        perKind.push(
          byBucket.map((m) => {
            const pts: Point2[] = [...m.entries()].map(([t, [, v]]) => [t, v]);
            pts.sort((x, y) => x[0] - y[0]);
            return pts;
          }),
        );
      }
      for (let gi = 0; gi < series.length; gi++) series[gi].points = mergeKinds(perKind.map((lists) => lists[gi]), limit);
      const out = series.filter((x) => x.points.length > 0);
      if (plan.maxPoints !== undefined) for (const x of out) x.points = downsample(x.points, plan.maxPoints);
      return { series: out };
    } catch (e) {
      throw dbError('query', e);
    }
  }

  // ---- partition operations (retention) ----------------------------------------------------

  /**
   * Streams the selection's values to `onRows` in chunks of at most EXPORT_CHUNK_ROWS, sorted by
   * device, tagset, field, ts, each waited for before the next is read; resolves with the total.
   * Rows of one series share their `tags` object: treat it as read-only.
   */
  exportRange(sel: PartitionSelector, onRows: (rows: ExportRow[]) => void | Promise<void>): Promise<number> {
    let s: CheckedSelector;
    try {
      s = checkSelector(sel, 'embedded store export');
    } catch (e) {
      return Promise.reject(e);
    }
    return this.run('export', async () => {
      await this.ready();
      let conn: DuckDBConnection;
      try {
        this.exportConn ??= await this.instance!.connect();
        conn = this.exportConn;
      } catch (e) {
        throw dbError('export', e);
      }
      const { range, params, types } = selection(s);
      const nulls = ['NULL::DOUBLE', 'NULL::BIGINT', 'NULL::BOOLEAN', 'NULL::VARCHAR'];
      const parts = KINDS.map((k) => {
        const vs = KINDS.map((j) => (j === k ? 'v' : nulls[j]));
        return `SELECT sid, ts, ${k} AS k, ${vs[0]} AS vf, ${vs[1]} AS vi, ${vs[2]} AS vb, ${vs[3]} AS vs FROM ${POINT_TABLES[k]} WHERE ${range}`;
      });
      const sql =
        `SELECT s.device, s.tagset, s.field, p.ts, p.k, p.vf, p.vi, p.vb, p.vs FROM (${parts.join(' UNION ALL ')}) AS p ` +
        'JOIN series AS s ON s.id = p.sid ORDER BY s.device, s.tagset, s.field, p.ts';
      const tagsOf = new Map<string, Record<string, string>>();
      let total = 0;
      let buf: ExportRow[] = [];
      const emit = async (): Promise<void> => {
        const rows = buf;
        buf = [];
        total += rows.length;
        await onRows(rows);
      };
      let result;
      try {
        result = await conn.stream(sql, params, types);
      } catch (e) {
        throw dbError('export', e);
      }
      for (;;) {
        let chunk;
        try {
          chunk = await result.fetchChunk();
        } catch (e) {
          throw dbError('export', e);
        }
        if (!chunk || chunk.rowCount === 0) break;
        if (buf.length + chunk.rowCount > EXPORT_CHUNK_ROWS && buf.length > 0) await emit();
        const [dev, tagset, field, ts, kind, vf, vi, vb, vs] = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((c) => chunk.getColumnValues(c)) as [
          string[],
          string[],
          string[],
          bigint[],
          number[],
          number[],
          bigint[],
          boolean[],
          string[],
        ];
        for (let i = 0; i < dev.length; i++) {
          let tags = tagsOf.get(tagset[i]);
          if (tags === undefined) {
            tags = Object.fromEntries(JSON.parse(tagset[i]) as Array<[string, string]>);
            tagsOf.set(tagset[i], tags);
          }
          const k = kind[i];
          const value: FieldValue = k === KIND_FLOAT ? vf[i] : k === KIND_INT ? vi[i] : k === KIND_BOOL ? vb[i] : vs[i];
          buf.push({ measurement: s.measurement, device: dev[i], tags, field: field[i], ts: Number(ts[i]), value });
        }
      }
      if (buf.length > 0) await emit();
      return total;
    });
  }

  /** How many values the selection holds. */
  countRange(sel: PartitionSelector): Promise<number> {
    let s: CheckedSelector;
    try {
      s = checkSelector(sel, 'embedded store count');
    } catch (e) {
      return Promise.reject(e);
    }
    return this.run('read', async () => {
      await this.ready();
      try {
        return await countIn(this.readConn!, s);
      } catch (e) {
        throw dbError('count', e);
      }
    });
  }

  /** The selection's oldest and newest ts and its count; null when it holds nothing. */
  extentOf(sel: PartitionSelector): Promise<{ min: number; max: number; count: number } | null> {
    let s: CheckedSelector;
    try {
      s = checkSelector(sel, 'embedded store extent');
    } catch (e) {
      return Promise.reject(e);
    }
    return this.run('read', async () => {
      await this.ready();
      const { range, params, types } = selection(s);
      const sql = `SELECT min(ts), max(ts), count(*) FROM (${KINDS.map((k) => `SELECT ts FROM ${POINT_TABLES[k]} WHERE ${range}`).join(' UNION ALL ')})`;
      try {
        const r = await this.readConn!.runAndReadAll(sql, params, types);
        const [min, max, count] = columnsOf(r, 3).map((c) => c[0]) as [bigint | null, bigint | null, bigint];
        if (min === null || max === null || count === 0n) return null;
        return { min: Number(min), max: Number(max), count: Number(count) };
      } catch (e) {
        throw dbError('extent', e);
      }
    });
  }

  /**
   * Deletes the selection in one transaction, queued with the writes; resolves with how many values
   * it deleted. With `expect`: counts first, and when the count is not `expect` rolls back and throws
   * StoreError (retryable false) naming both counts.
   */
  deleteRange(sel: PartitionSelector, expect?: number): Promise<number> {
    let s: CheckedSelector;
    try {
      s = checkSelector(sel, 'embedded store delete');
      if (expect !== undefined && !(Number.isSafeInteger(expect) && expect >= 0)) {
        throw new StoreError(`embedded store delete: expect must be a count (a whole number >= 0), not ${String(expect)}`, { retryable: false, status: 400 });
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.run('write', async () => {
      await this.ready();
      const conn = this.writeConn!;
      const { range, params, types } = selection(s);
      try {
        await conn.run('BEGIN TRANSACTION');
      } catch (e) {
        throw dbError('delete', e);
      }
      let deleted = 0;
      try {
        if (expect !== undefined) {
          const n = await countIn(conn, s);
          if (n !== expect) throw countsDiffer(s, expect, n, 'holds');
        }
        for (const k of KINDS) deleted += (await conn.run(`DELETE FROM ${POINT_TABLES[k]} WHERE ${range}`, params, types)).rowsChanged;
        if (expect !== undefined && deleted !== expect) throw countsDiffer(s, expect, deleted, 'deleted');
        await conn.run('COMMIT');
      } catch (e) {
        try {
          await conn.run('ROLLBACK');
        } catch {
          // a failed COMMIT has rolled back already
        }
        throw dbError('delete', e);
      }
      await this.refreshNewest(conn, s);
      return deleted;
    });
  }

  /**
   * After a committed delete: the series of the selection whose catalogued newest ts fell inside
   * the deleted range get their newest ts (and kinds) read from the tables again. A failure leaves
   * the catalogue as it was, which is safe (too high only costs a DELETE ... USING on the next write).
   */
  private async refreshNewest(conn: DuckDBConnection, s: CheckedSelector): Promise<void> {
    const stale = new Map<number, SeriesInfo>();
    for (const g of this.groups.values()) {
      if (!groupMatches(g, s)) continue;
      for (const info of g.fields.values()) if (info.maxTs >= s.start && info.maxTs < s.end) stale.set(info.id, info);
    }
    if (stale.size === 0) return;
    // Nothing at or after `start` is left in these series (their newest was before `end`).
    const newest = new Map<number, { maxTs: number; kinds: number }>();
    try {
      for (const k of KINDS) {
        const r = await conn.runAndReadAll(
          `SELECT sid, max(ts)::DOUBLE FROM ${POINT_TABLES[k]} WHERE list_contains($1, sid) AND ts < $2 GROUP BY sid`,
          [listValue([...stale.keys()]), BigInt(s.start)],
          [LIST(INTEGER), BIGINT],
        );
        const [sids, maxes] = columnsOf(r, 2) as [number[], number[]];
        for (let i = 0; i < sids.length; i++) {
          const cur = newest.get(sids[i]) ?? { maxTs: -Infinity, kinds: 0 };
          cur.kinds |= 1 << k;
          if (maxes[i] > cur.maxTs) cur.maxTs = maxes[i];
          newest.set(sids[i], cur);
        }
      }
    } catch {
      return;
    }
    for (const [id, info] of stale) {
      const n = newest.get(id);
      info.maxTs = n?.maxTs ?? -Infinity;
      info.kinds = n?.kinds ?? 0;
    }
  }
}

/**
 * Bound SQL for a partition selection: `range` is a condition on a points table (sid, ts) with
 * $1 measurement, $2 start, $3 end, then the `where` tags; no value is ever part of the SQL text.
 */
function selection(s: CheckedSelector): { range: string; params: DuckDBValue[]; types: DuckDBType[] } {
  const params: DuckDBValue[] = [s.measurement, BigInt(s.start), BigInt(s.end)];
  const types: DuckDBType[] = [VARCHAR, BIGINT, BIGINT];
  let series = 'SELECT id FROM series WHERE measurement = $1';
  for (const [k, v] of s.where) {
    if (k === 'device') {
      params.push(v);
      types.push(VARCHAR);
      series += ` AND device = $${params.length}`;
    } else {
      params.push(k, v);
      types.push(VARCHAR, VARCHAR);
      series += ` AND tags[$${params.length - 1}] = $${params.length}`;
    }
  }
  return { range: `ts >= $2 AND ts < $3 AND sid IN (${series})`, params, types };
}

/** Values in the selection, on the given connection (inside its transaction, if one is open). */
async function countIn(conn: DuckDBConnection, s: CheckedSelector): Promise<number> {
  const { range, params, types } = selection(s);
  const sql = `SELECT ${KINDS.map((k) => `(SELECT count(*) FROM ${POINT_TABLES[k]} WHERE ${range})`).join(' + ')}`;
  const r = await conn.runAndReadAll(sql, params, types);
  return Number(columnsOf(r, 1)[0][0] as bigint);
}

/** Whether a catalogue group is in the selection (the same test as selection()'s SQL). */
function groupMatches(g: Group, s: CheckedSelector): boolean {
  if (g.measurement !== s.measurement) return false;
  for (const [k, v] of s.where) {
    if (k === 'device' ? g.device !== v : !g.tags.some(([tk, tv]) => tk === k && tv === v)) return false;
  }
  return true;
}

function countsDiffer(s: CheckedSelector, expect: number, actual: number, what: 'holds' | 'deleted'): StoreError {
  const where = s.where.length > 0 ? ` where ${JSON.stringify(Object.fromEntries(s.where))}` : '';
  return new StoreError(
    `embedded store delete: counts differ, nothing deleted: expected ${expect} values but the selection ${what} ${actual} ` +
      `(measurement ${JSON.stringify(s.measurement)}${where}, [${s.start}, ${s.end}))`,
    { retryable: false, status: 409 },
  );
}

