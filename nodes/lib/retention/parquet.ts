/**
 * Warm-tier partition files: one Parquet file per (rule, measurement, UTC day), written, read back and
 * verified through an in-memory DuckDB (@duckdb/node-api), one instance per call (no shared state, nothing
 * to close; an instance costs a few ms next to the seconds a partition takes).
 *
 * Schema (fixed, in this order; exactly one v_* is non-null per row):
 *   measurement VARCHAR, device VARCHAR ('' when no device tag), tags MAP(VARCHAR, VARCHAR) (the other tags),
 *   field VARCHAR, ts BIGINT (ms since epoch), v_float DOUBLE, v_int BIGINT, v_bool BOOLEAN, v_str VARCHAR
 * Rows are sorted by measurement, device, canonical tags (JSON of the sorted [key, value] pairs), field, ts,
 * and compressed with ZSTD.
 *
 * Writing keeps JS memory bounded whatever the partition's size: rows are appended (data chunks of 2,048)
 * to a DuckDB temporary table as the source hands them over (DuckDB spills to a directory beside the target
 * when it runs out of its memory limit), then one `COPY (... ORDER BY ...) TO` writes the file. The file is
 * written as `<file>.tmp-<random>`, fsynced, renamed into place and the directory fsynced, so `file` is
 * either absent, the previous file, or complete.
 *
 * Content checksum (version independent, computed in JS, so the hot export and the Parquet read-back
 * compare without sorting): rowHash = the first 8 bytes (big-endian unsigned 64-bit) of the sha1 of the
 * UTF-8 text
 *   measurement \0 device \0 canonicalTags \0 field \0 ts \0 typeLetter(f|i|b|s) \0 valueText
 * (valueText: String(number) for floats, so -0 is "0"; bigint decimal; "true"/"false"; strings as they
 * are). The partition checksum is the sum of rowHash mod 2^64, as 16 lowercase hex digits: independent of
 * row order. NaN and infinities are never stored: rows holding them are refused.
 *
 * Paths reach DuckDB only as bound parameters (COPY TO $1 and read_parquet($1) both take them).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  DuckDBDataChunk,
  DuckDBInstance,
  DuckDBMapValue,
  LIST,
  MAP,
  VARCHAR,
  listValue,
  mapValue,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { ThingwireError } from '../errors';
import { fsyncDir } from '../state';
import { StoreError, type ExportRow, type FieldValue } from '../store/types';

export type { ExportRow } from '../store/types';

/** What writeParquet wrote: content (rows, time extent, checksum) and the file itself (sha256, size). */
export interface FileStats {
  rows: number;
  /** Smallest and largest ts; both 0 when the file holds no rows. */
  minTs: number;
  maxTs: number;
  /** Content checksum: 16 lowercase hex digits (see the header). */
  checksum: string;
  /** sha256 of the file's bytes, lowercase hex. */
  sha256: string;
  bytes: number;
}

/** The columns of a partition file, in order, with their DuckDB types. */
export const PARQUET_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['measurement', 'VARCHAR'],
  ['device', 'VARCHAR'],
  ['tags', 'MAP(VARCHAR, VARCHAR)'],
  ['field', 'VARCHAR'],
  ['ts', 'BIGINT'],
  ['v_float', 'DOUBLE'],
  ['v_int', 'BIGINT'],
  ['v_bool', 'BOOLEAN'],
  ['v_str', 'VARCHAR'],
];
const COLUMN_LIST = PARQUET_COLUMNS.map(([name]) => name).join(', ');
const STAGE_TYPES: DuckDBType[] = [VARCHAR, VARCHAR, MAP(VARCHAR, VARCHAR), VARCHAR, BIGINT, DOUBLE, BIGINT, BOOLEAN, VARCHAR, VARCHAR];
/** Rows per appended data chunk: DuckDB's vector size. */
const CHUNK_ROWS = 2048;
const MASK64 = (1n << 64n) - 1n;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** DuckDB limits for these short-lived instances: a small box shares its memory with the hot store. */
const DB_CONFIG = { threads: '2', memory_limit: '256MB' };

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** An I/O or database failure as a StoreError: retryable (disk full, out of memory, file busy). */
function ioError(what: string, e: unknown): Error {
  if (e instanceof StoreError || e instanceof ThingwireError) return e;
  return new StoreError(`${what}: ${errorMessage(e)}`, { retryable: true, cause: e });
}

function badRow(row: unknown, why: string): ThingwireError {
  let where = '';
  if (row !== null && typeof row === 'object') {
    const r = row as Partial<ExportRow>;
    where = ` (measurement ${JSON.stringify(r.measurement)}, device ${JSON.stringify(r.device)}, field ${JSON.stringify(r.field)}, ts ${String(r.ts)})`;
  }
  return new ThingwireError('invalid_value', `partition row${where}: ${why}`);
}

/** Canonical text of a tag set: JSON of the [key, value] pairs sorted by key (as the embedded store's tagset). */
export function canonicalTags(tags: Record<string, string>): string {
  const keys = Object.keys(tags);
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(keys.map((k) => [k, tags[k]]));
}

/** Checks a row's shape and value; returns its type letter. */
function checkRow(row: ExportRow): 'f' | 'i' | 'b' | 's' {
  if (row === null || typeof row !== 'object') throw badRow(row, 'not an object');
  if (typeof row.measurement !== 'string') throw badRow(row, 'measurement must be a string');
  if (typeof row.device !== 'string') throw badRow(row, 'device must be a string');
  if (typeof row.field !== 'string') throw badRow(row, 'field must be a string');
  if (row.tags === null || typeof row.tags !== 'object' || Array.isArray(row.tags)) throw badRow(row, 'tags must be an object of strings');
  for (const k of Object.keys(row.tags)) {
    if (typeof row.tags[k] !== 'string') throw badRow(row, `tag ${JSON.stringify(k)} is not a string`);
    if (k === 'device') throw badRow(row, 'the device tag belongs in `device`, not in `tags`');
  }
  if (typeof row.ts !== 'number' || !Number.isSafeInteger(row.ts)) throw badRow(row, 'ts must be an integer number of ms since the epoch');
  const v = row.value;
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) throw badRow(row, `value ${v} cannot be stored (no NaN or infinity)`);
      return 'f';
    case 'bigint':
      if (v < INT64_MIN || v > INT64_MAX) throw badRow(row, `integer ${v} is out of the 64-bit range`);
      return 'i';
    case 'boolean':
      return 'b';
    case 'string':
      return 's';
    default:
      throw badRow(row, `value of type ${v === null ? 'null' : typeof v} cannot be stored`);
  }
}

function rowHashOf(row: ExportRow, letter: string, tagset: string): bigint {
  const text = `${row.measurement}\0${row.device}\0${tagset}\0${row.field}\0${row.ts}\0${letter}\0${String(row.value)}`;
  return createHash('sha1').update(text, 'utf8').digest().readBigUInt64BE(0);
}

/** The row's content hash (see the header); throws ThingwireError for rows that cannot be stored. */
export function rowHash(row: ExportRow): bigint {
  return rowHashOf(row, checkRow(row), canonicalTags(row.tags));
}

/** Order-independent checksum of a set of rows, with their count and time extent. */
export class Checksum {
  private sum = 0n;
  private count = 0;
  private min = Infinity;
  private max = -Infinity;

  add(row: ExportRow): void {
    this.addHashed(row, rowHash(row));
  }

  /** add() for a row whose hash the caller has already computed. */
  addHashed(row: ExportRow, hash: bigint): void {
    this.sum = (this.sum + hash) & MASK64;
    this.count++;
    if (row.ts < this.min) this.min = row.ts;
    if (row.ts > this.max) this.max = row.ts;
  }

  get rows(): number {
    return this.count;
  }

  /** Smallest ts added; 0 when none. */
  get minTs(): number {
    return this.count === 0 ? 0 : this.min;
  }

  /** Largest ts added; 0 when none. */
  get maxTs(): number {
    return this.count === 0 ? 0 : this.max;
  }

  /** The sum of the row hashes mod 2^64 as 16 lowercase hex digits. */
  hex(): string {
    return this.sum.toString(16).padStart(16, '0');
  }
}

/**
 * Runs fn on a connection to a fresh in-memory DuckDB (2 threads, 256 MB; sorts past that spill to
 * `tempDir`, which the caller removes), closed afterwards.
 */
export async function withDb<T>(tempDir: string | undefined, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
  const config: Record<string, string> = { ...DB_CONFIG };
  if (tempDir !== undefined) config.temp_directory = tempDir;
  const instance = await DuckDBInstance.create(':memory:', config);
  let conn: DuckDBConnection | undefined;
  try {
    conn = await instance.connect();
    return await fn(conn);
  } finally {
    try {
      conn?.closeSync();
    } catch {
      // closing anyway
    }
    instance.closeSync();
  }
}

/** sha256 and size of a file, read in a stream. */
export async function fileSha256(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const buf of fs.createReadStream(file)) {
    hash.update(buf as Buffer);
    bytes += (buf as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}


function checkPath(file: unknown, what: string): string {
  if (typeof file !== 'string' || file === '') throw new ThingwireError('invalid_value', `${what} must be a non-empty file path`);
  if (file.includes('\0')) throw new ThingwireError('invalid_value', `${what} ${JSON.stringify(file)} contains a NUL character`);
  return file;
}

/**
 * Writes a partition file. `fill` hands the rows over in as many calls to `sink` as it likes (any order:
 * the file is sorted); rows are checked (NaN, infinities, integers past 64 bits, a `device` key in tags are
 * refused with a ThingwireError and nothing is written). The file appears complete at `file` or not at all;
 * a previous file there is replaced. `compressionLevel`: ZSTD level 1..22 (default DuckDB's, 3; the cold
 * tier uses 22).
 */
export async function writeParquet(
  file: string,
  fill: (sink: (rows: ExportRow[]) => Promise<void>) => Promise<void>,
  opts: { compressionLevel?: number } = {},
): Promise<FileStats> {
  checkPath(file, 'partition file');
  const level = opts.compressionLevel;
  if (level !== undefined && !(Number.isInteger(level) && level >= 1 && level <= 22)) {
    throw new ThingwireError('invalid_value', `compressionLevel must be an integer from 1 to 22, not ${String(level)}`);
  }
  const target = path.resolve(file);
  const dir = path.dirname(target);
  const suffix = randomBytes(6).toString('hex');
  const tmp = `${target}.tmp-${suffix}`;
  const spill = `${target}.tmp-${suffix}.spill`;
  const sum = new Checksum();
  /** A failure of fill is the caller's: it is passed on as it is. */
  let fillError: { e: unknown } | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true });
    await withDb(spill, async (conn) => {
      await conn.run(
        `CREATE TEMP TABLE stage (measurement VARCHAR, device VARCHAR, tags MAP(VARCHAR, VARCHAR), field VARCHAR, ts BIGINT,
           v_float DOUBLE, v_int BIGINT, v_bool BOOLEAN, v_str VARCHAR, tagset VARCHAR)`,
      );
      const appender = await conn.createAppender('stage', 'main', 'temp');
      const chunk = DuckDBDataChunk.create(STAGE_TYPES);
      let closed = false;
      const sink = (rows: ExportRow[]): Promise<void> => {
        try {
          if (closed) throw new ThingwireError('invalid_value', `rows handed to ${file} after its fill function returned`);
          if (!Array.isArray(rows)) throw new ThingwireError('invalid_value', 'sink takes an array of rows');
          for (let o = 0; o < rows.length; o += CHUNK_ROWS) appendChunk(chunk, rows, o, Math.min(CHUNK_ROWS, rows.length - o), sum, (c) => appender.appendDataChunk(c));
          return Promise.resolve();
        } catch (e) {
          return Promise.reject(e instanceof Error ? e : new Error(String(e)));
        }
      };
      try {
        await fill(sink);
      } catch (e) {
        fillError = { e };
        throw e;
      } finally {
        closed = true;
      }
      appender.flushSync();
      appender.closeSync();
      const options = `FORMAT parquet, COMPRESSION zstd${level !== undefined ? `, COMPRESSION_LEVEL ${level}` : ''}`;
      await conn.run(`COPY (SELECT ${COLUMN_LIST} FROM stage ORDER BY measurement, device, tagset, field, ts) TO $1 (${options})`, [tmp], [VARCHAR]);
    });
    fsyncFile(tmp);
    const { sha256, bytes } = await fileSha256(tmp);
    fs.renameSync(tmp, target);
    fsyncDir(dir);
    return { rows: sum.rows, minTs: sum.minTs, maxTs: sum.maxTs, checksum: sum.hex(), sha256, bytes };
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if (fillError !== undefined) throw fillError.e;
    throw ioError(`cannot write ${file}`, e);
  } finally {
    fs.rmSync(spill, { recursive: true, force: true });
  }
}

/** Fills the chunk with rows[o, o + n), adds them to the checksum and appends the chunk. */
function appendChunk(chunk: DuckDBDataChunk, rows: ExportRow[], o: number, n: number, sum: Checksum, append: (c: DuckDBDataChunk) => void): void {
  chunk.reset();
  chunk.rowCount = n;
  const vecs = STAGE_TYPES.map((_, i) => chunk.getColumnVector(i));
  const [vm, vd, vtags, vf, vts, vfl, vi, vb, vs, vset] = vecs;
  for (let j = 0; j < n; j++) {
    const row = rows[o + j];
    const letter = checkRow(row);
    const keys = Object.keys(row.tags);
    keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const tagset = JSON.stringify(keys.map((k) => [k, row.tags[k]]));
    sum.addHashed(row, rowHashOf(row, letter, tagset));
    vm.setItem(j, row.measurement);
    vd.setItem(j, row.device);
    vtags.setItem(j, mapValue(keys.map((key) => ({ key, value: row.tags[key] }))));
    vf.setItem(j, row.field);
    vts.setItem(j, BigInt(row.ts));
    vfl.setItem(j, letter === 'f' ? (row.value as number) : null);
    vi.setItem(j, letter === 'i' ? (row.value as bigint) : null);
    vb.setItem(j, letter === 'b' ? (row.value as boolean) : null);
    vs.setItem(j, letter === 's' ? (row.value as string) : null);
    vset.setItem(j, tagset);
  }
  for (const v of vecs) v.flush();
  append(chunk);
}

/** A MAP value read back as a plain object (own properties, even for keys such as "__proto__"). */
export function tagsOf(v: DuckDBValue): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(v instanceof DuckDBMapValue)) return out;
  for (const { key, value } of v.entries) {
    Object.defineProperty(out, String(key), { value: String(value), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function rowFrom(cols: DuckDBValue[][], i: number, file: string): ExportRow {
  const vf = cols[5][i];
  const vi = cols[6][i];
  const vb = cols[7][i];
  const vs = cols[8][i];
  let value: FieldValue | undefined;
  let count = 0;
  for (const v of [vf, vi, vb, vs]) {
    if (v === null) continue;
    value = v as FieldValue;
    count++;
  }
  if (count !== 1) throw new StoreError(`${file}: a row holds ${count} values (a partition file holds exactly one per row)`, { retryable: false });
  return {
    measurement: cols[0][i] as string,
    device: cols[1][i] as string,
    tags: tagsOf(cols[2][i]),
    field: cols[3][i] as string,
    ts: Number(cols[4][i] as bigint),
    value: value as FieldValue,
  };
}

/**
 * Streams the rows of partition files (in file order, a chunk of up to 2,048 rows per call) and returns
 * how many there were. `range` keeps the rows with start <= ts < end.
 */
export async function readParquet(files: string[], onRows: (rows: ExportRow[]) => void | Promise<void>, range?: { start: number; end: number }): Promise<number> {
  if (!Array.isArray(files)) throw new ThingwireError('invalid_value', 'files must be an array of paths');
  if (files.length === 0) return 0;
  files.forEach((f, i) => checkPath(f, `files[${i}]`));
  const label = files.length === 1 ? files[0] : `${files.length} partition files`;
  const params: DuckDBValue[] = [listValue(files)];
  const types: DuckDBType[] = [LIST(VARCHAR)];
  let sql = `SELECT ${COLUMN_LIST} FROM read_parquet($1)`;
  if (range !== undefined) {
    if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end)) throw new ThingwireError('invalid_value', 'range start and end must be integer ms since the epoch');
    params.push(BigInt(range.start), BigInt(range.end));
    types.push(BIGINT, BIGINT);
    sql += ' WHERE ts >= $2 AND ts < $3';
  }
  /** A failure of onRows is the caller's: it is passed on as it is. */
  let callerError: { e: unknown } | undefined;
  try {
    return await withDb(undefined, async (conn) => {
      const result = await conn.stream(sql, params, types);
      let total = 0;
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) return total;
        const cols: DuckDBValue[][] = [];
        for (let c = 0; c < chunk.columnCount; c++) cols.push(chunk.getColumnValues(c));
        const rows: ExportRow[] = new Array<ExportRow>(chunk.rowCount);
        for (let i = 0; i < chunk.rowCount; i++) rows[i] = rowFrom(cols, i, label);
        total += rows.length;
        try {
          await onRows(rows);
        } catch (e) {
          callerError = { e };
          throw e;
        }
      }
    });
  } catch (e) {
    if (callerError !== undefined) throw callerError.e;
    throw ioError(`cannot read ${label}`, e);
  }
}

/**
 * Re-reads a partition file and compares it with what was recorded when it was written: the bytes
 * (sha256), the schema, and the content (row count, time extent, checksum). Never throws for a bad or
 * missing file: every difference is a line in `problems`.
 */
export async function verifyParquet(
  file: string,
  expected: Pick<FileStats, 'rows' | 'checksum' | 'sha256' | 'minTs' | 'maxTs'>,
): Promise<{ ok: boolean; problems: string[] }> {
  const problems: string[] = [];
  try {
    const { sha256 } = await fileSha256(file);
    if (sha256 !== expected.sha256) problems.push(`sha256 of the file is ${sha256}, expected ${expected.sha256}`);
  } catch (e) {
    problems.push(`cannot read the file: ${errorMessage(e)}`);
    return { ok: false, problems };
  }
  try {
    const described = await withDb(undefined, async (conn) => {
      const r = await conn.runAndReadAll('DESCRIBE SELECT * FROM read_parquet($1)', [file], [VARCHAR]);
      return r.getRows().map((row) => `${String(row[0])} ${String(row[1])}`);
    });
    const want = PARQUET_COLUMNS.map(([n, t]) => `${n} ${t}`);
    if (described.join(', ') !== want.join(', ')) problems.push(`schema is (${described.join(', ')}), expected (${want.join(', ')})`);
  } catch (e) {
    problems.push(`not a readable Parquet file: ${errorMessage(e)}`);
    return { ok: false, problems };
  }
  if (problems.some((p) => p.startsWith('schema'))) return { ok: false, problems };
  const sum = new Checksum();
  try {
    await readParquet([file], (rows) => {
      for (const r of rows) sum.add(r);
    });
  } catch (e) {
    problems.push(`cannot read the rows: ${errorMessage(e)}`);
    return { ok: false, problems };
  }
  if (sum.rows !== expected.rows) problems.push(`holds ${sum.rows} rows, expected ${expected.rows}`);
  if (sum.hex() !== expected.checksum) problems.push(`content checksum is ${sum.hex()}, expected ${expected.checksum}`);
  if (sum.minTs !== expected.minTs || sum.maxTs !== expected.maxTs) {
    problems.push(`time extent is ${sum.minTs}..${sum.maxTs}, expected ${expected.minTs}..${expected.maxTs}`);
  }
  return { ok: problems.length === 0, problems };
}
