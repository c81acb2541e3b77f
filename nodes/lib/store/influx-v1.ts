/**
 * InfluxDB 1.x backend: line protocol to /write (ms precision, gzip above ~1 KB), InfluxQL to /query,
 * /ping for health. Plain fetch (Node 20) with a timeout on every request.
 *
 * Errors become StoreError: network errors, timeouts, 408, 429, 5xx, 401, 403 and 404 (database or
 * retention policy missing: the operator can fix it, so the data is kept) are retryable; 400 (bad line,
 * field type conflict, "partial write"), 413, 422 and other 4xx are not. The server's message (JSON
 * `error`/`message`, the X-Influxdb-Error header, or the raw body) is trimmed to 500 characters.
 * No password or token ever goes into a message or the description.
 *
 * Also exports the HTTP error helpers the 2.x/3.x backend shares (httpError, networkError, parseRetryAfter).
 *
 * Partition operations (retention tiering), all InfluxQL with quoted identifiers and string literals:
 * - countRange: `SELECT count(*)` (one count per field, summed); extentOf adds the first and last row;
 * - exportRange: `SELECT * ... GROUP BY *` over time windows whose `count(*)` is at most
 *   EXPORT_CHUNK_ROWS (a window is narrowed until it is, down to 1 ms), so neither side holds more
 *   than one window. `SHOW FIELD KEYS` says which fields are integers: they come back as bigint,
 *   exactly (the answer's JSON numbers of 16 digits or more are read as text, not as doubles).
 *   GROUP BY * lists every tag key of the measurement on every series, '' where a series lacks it:
 *   those are left out (line protocol cannot store an empty tag value).
 * - deleteRange: counts, then `DELETE FROM "m" WHERE <tags> AND time >= .. AND time < ..`. Not one
 *   transaction: a value written in the range between the count and the delete is deleted uncounted.
 *   InfluxQL's DELETE takes no retention policy: it deletes from every retention policy of the
 *   database, also when this backend reads and writes one named `rp`.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { ThingwireError } from '../errors';
import { buildRangeQuery, parseQueryResponse, quoteIdent, quoteString } from './influxql';
import { maxAnswerPoints } from './query-plan';
import {
  StoreError,
  checkSelector,
  type BackendHealth,
  type Batch,
  type CheckedSelector,
  type ExportRow,
  type FieldValue,
  type PartitionSelector,
  type QueryResult,
  type RangeQuery,
  type StoreBackend,
} from './types';

const gzip = promisify(zlib.gzip);

/** Bodies above this many bytes are gzipped when gzip is on (the InfluxDB client's own default). */
export const GZIP_THRESHOLD = 1000;
export const DEFAULT_TIMEOUT_MS = 10_000;
const MESSAGE_MAX = 500;
/** Most values an export reads in one SELECT (and hands to onRows at a time). */
export const EXPORT_CHUNK_ROWS = 10_000;

// ---------------------------------------------------------------------------------------------
// Shared HTTP helpers

/** Whether a failed HTTP status is worth retrying with the same data. */
export function isRetryableStatus(status: number): boolean {
  return status === 401 || status === 403 || status === 404 || status === 408 || status === 429 || status >= 500;
}

/** Retry-After (delay in seconds, or an HTTP date) as ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, at - now);
}

/** The server's message from an error body: `error` or `message` of a JSON body, else the text; trimmed. */
export function serverMessageOf(body: string | undefined, headerError?: string | null): string | undefined {
  let text = (body ?? '').trim();
  if (text.startsWith('{')) {
    try {
      const j = JSON.parse(text) as { error?: unknown; message?: unknown };
      if (typeof j.error === 'string' && j.error !== '') text = j.error;
      else if (typeof j.message === 'string' && j.message !== '') text = j.message;
    } catch {
      // not JSON after all: keep the text
    }
  }
  if (text === '' && headerError) text = headerError.trim();
  if (text === '') return undefined;
  return text.length > MESSAGE_MAX ? `${text.slice(0, MESSAGE_MAX)}...` : text;
}

/** StoreError for an HTTP answer that is not a success. `what` names the operation, e.g. "influxdb-v1 write". */
export function httpError(what: string, status: number, body: string | undefined, headers: { get(name: string): string | null | undefined }): StoreError {
  const serverMessage = serverMessageOf(body, headers.get('x-influxdb-error'));
  const retryAfterMs = parseRetryAfter(headers.get('retry-after'));
  const retryable = isRetryableStatus(status);
  return new StoreError(`${what} failed: HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}`, { retryable, status, retryAfterMs, serverMessage });
}

/** Node's error code behind a failed request (fetch wraps it in `cause`), e.g. ECONNREFUSED. */
function errorCode(e: unknown): string | undefined {
  for (let cur = e, depth = 0; cur && typeof cur === 'object' && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    const errors = (cur as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0) return errorCode(errors[0]);
  }
  return undefined;
}

/** StoreError (retryable) for a request that got no HTTP answer: refused, reset, unreachable, timed out. */
export function networkError(what: string, e: unknown, timeoutMs?: number): StoreError {
  const name = (e as { name?: string } | null)?.name;
  if (name === 'TimeoutError' || name === 'RequestTimedOutError') {
    return new StoreError(`${what} timed out${timeoutMs !== undefined ? ` after ${timeoutMs} ms` : ''}`, { retryable: true, cause: e });
  }
  const code = errorCode(e);
  const detail = code ?? ((e as Error | null)?.message || String(e));
  return new StoreError(`${what} failed: ${detail}`, { retryable: true, cause: e });
}

/** A URL without credentials in it, and the credentials that were there (fetch refuses URLs holding them). */
export function splitUrl(raw: string): { base: string; username?: string; password?: string } {
  const u = new URL(raw);
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  u.username = '';
  u.password = '';
  u.search = '';
  u.hash = '';
  return { base: u.toString().replace(/\/+$/, ''), username, password };
}

/** An HTTP answer read to the end. */
export interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

/**
 * One request with a deadline (AbortSignal.timeout covers connect, send and reading the answer). With `maxBytes`,
 * an answer longer than that is not read to its end: StoreError 413 (a range query's answer past the runtime's
 * budget, see answerBytes).
 */
export async function fetchText(
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: Buffer | string },
  timeoutMs: number,
  what: string,
  maxBytes?: number,
): Promise<Answer> {
  let res: Response;
  try {
    res = await fetch(url, { method: init.method, headers: init.headers, body: init.body, signal: AbortSignal.timeout(timeoutMs) });
    if (maxBytes === undefined || res.body === null) return { status: res.status, headers: res.headers, body: await res.text() };
  } catch (e) {
    throw networkError(what, e, timeoutMs);
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > maxBytes) {
        await reader.cancel().catch(() => undefined);
        const size = maxBytes >= 1e6 ? `${Math.round(maxBytes / 1e6).toLocaleString('en-US')} MB` : `${Math.round(maxBytes / 1e3)} kB`;
        throw new StoreError(`${what}: the answer is over ${size}; narrow the range, the devices or the fields, or ask for maxPoints or buckets`, {
          retryable: false,
          status: 413,
        });
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw networkError(what, e, timeoutMs);
  }
  return { status: res.status, headers: res.headers, body: Buffer.concat(chunks, bytes).toString('utf8') };
}

/**
 * The most bytes of a range query's answer read from InfluxDB for a budget of `points`: ~64 bytes a point (an
 * InfluxQL row with ms times is ~25), so the point count (parseQueryResponse) is what stops an answer that fits.
 */
export function answerBytes(points: number): number {
  return points * 64;
}

// ---------------------------------------------------------------------------------------------
// The backend

export interface InfluxV1Options {
  /** Base URL, e.g. http://127.0.0.1:8086 (a path prefix is kept; credentials in it are moved to Basic auth). */
  url: string;
  db: string;
  /** Retention policy to write to and read from; default: the database's default. */
  rp?: string;
  username?: string;
  password?: string;
  /** Per request, default 10 s. */
  timeoutMs?: number;
  /** Gzip write bodies above GZIP_THRESHOLD bytes; default true. */
  gzip?: boolean;
}


export class InfluxV1Backend implements StoreBackend {
  readonly kind = 'influxdb-v1' as const;
  readonly description: string;
  private readonly base: string;
  private readonly db: string;
  private readonly rp?: string;
  private readonly auth?: string;
  private readonly timeoutMs: number;
  private readonly gzip: boolean;

  constructor(opts: InfluxV1Options) {
    if (!opts.db) throw new Error('influxdb-v1: db is required');
    const { base, username, password } = splitUrl(opts.url);
    this.base = base;
    this.db = opts.db;
    this.rp = opts.rp || undefined;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.gzip = opts.gzip ?? true;
    const user = opts.username || username;
    if (user) this.auth = `Basic ${Buffer.from(`${user}:${opts.password ?? password ?? ''}`).toString('base64')}`;
    this.description = `influxdb-v1 ${base} db=${this.db}${this.rp ? ` rp=${this.rp}` : ''}${user ? ` user=${user}` : ''}`;
  }

  private request(what: string, path: string, init: { method: string; headers?: Record<string, string>; body?: Buffer | string }, maxBytes?: number): Promise<Answer> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.auth) headers.Authorization = this.auth;
    return fetchText(`${this.base}${path}`, { ...init, headers }, this.timeoutMs, `${this.kind} ${what} to ${this.base}`, maxBytes);
  }

  async write(batch: Batch): Promise<void> {
    if (batch.count === 0 || batch.lines.length === 0) return;
    const params = new URLSearchParams({ db: this.db, precision: 'ms' });
    if (this.rp) params.set('rp', this.rp);
    let body: Buffer = Buffer.from(batch.lines, 'utf8');
    const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
    if (this.gzip && body.length > GZIP_THRESHOLD) {
      body = await gzip(body);
      headers['Content-Encoding'] = 'gzip';
    }
    const res = await this.request('write', `/write?${params}`, { method: 'POST', headers, body });
    if (res.status !== 204 && res.status !== 200) throw httpError(`${this.kind} write of ${batch.count} points`, res.status, res.body, res.headers);
  }

  /** Runs InfluxQL against the database (POSTed as a form: no user value in a URL or an access log). */
  async influxql(q: string, what = 'query', maxBytes?: number): Promise<unknown> {
    return this.influxqlWith(q, what, (text) => JSON.parse(text) as unknown, maxBytes);
  }

  private async influxqlWith(q: string, what: string, parse: (text: string) => unknown, maxBytes?: number): Promise<unknown> {
    const params = new URLSearchParams({ db: this.db, epoch: 'ms' });
    const res = await this.request(
      what,
      `/query?${params}`,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ q }).toString(),
      },
      maxBytes,
    );
    if (res.status !== 200) throw httpError(`${this.kind} ${what}`, res.status, res.body, res.headers);
    try {
      return parse(res.body);
    } catch {
      throw new StoreError(`${this.kind} ${what}: the answer is not JSON`, { retryable: false, status: res.status, serverMessage: serverMessageOf(res.body) });
    }
  }

  /** InfluxQL statements; their results, or StoreError for an error in the answer. */
  private async statements(q: string, what: string, exact = false): Promise<StatementResult[]> {
    const body = (await this.influxqlWith(q, what, exact ? parseExact : (text) => JSON.parse(text) as unknown)) as { error?: unknown; results?: StatementResult[] } | null;
    if (body === null || typeof body !== 'object') throw new StoreError(`${this.kind} ${what}: the answer is not a JSON object`, { retryable: false });
    const errors = [body.error, ...(body.results ?? []).map((r) => r.error)].filter((e): e is string => typeof e === 'string');
    if (errors.length > 0) {
      const message = errors[0].slice(0, MESSAGE_MAX);
      const missing = /not found/i.test(message);
      throw new StoreError(`${this.kind} ${what} failed: ${message}`, { retryable: missing, status: missing ? 404 : 400, serverMessage: message });
    }
    return body.results ?? [];
  }

  // ---- partition operations (retention) ----------------------------------------------------

  /** `"m"` or `"rp"."m"`, and the selection's WHERE (tags and time), every name and value quoted. */
  private partition(sel: PartitionSelector, who: string): { s: CheckedSelector; from: string; where: (start: number, end: number) => string } {
    const s = checkSelector(sel, `${this.kind} ${who}`);
    try {
      const measurement = quoteIdent(s.measurement, 'measurement');
      const from = this.rp ? `${quoteIdent(this.rp, 'retention policy')}.${measurement}` : measurement;
      const tags = s.where.map(([k, v]) => `${quoteIdent(k, 'tag name')} = ${quoteString(v, `tag ${JSON.stringify(k)} value`)}`);
      return { s, from, where: (start, end) => [...tags, `time >= ${start}ms`, `time < ${end}ms`].join(' AND ') };
    } catch (e) {
      if (e instanceof ThingwireError) throw new StoreError(`${this.kind} ${who}: ${e.message}`, { retryable: false, status: 400, cause: e });
      throw e;
    }
  }

  private async count(from: string, where: string, what: string): Promise<number> {
    const [r] = await this.statements(`SELECT count(*) FROM ${from} WHERE ${where}`, what);
    return sumCounts(r);
  }

  /** How many values the selection holds (`SELECT count(*)`: one count per field, summed). */
  async countRange(sel: PartitionSelector): Promise<number> {
    const { s, from, where } = this.partition(sel, 'count');
    return this.count(from, where(s.start, s.end), 'count');
  }

  /** The selection's oldest and newest ts and its count; null when it holds nothing. */
  async extentOf(sel: PartitionSelector): Promise<{ min: number; max: number; count: number } | null> {
    const { s, from, where } = this.partition(sel, 'extent');
    const w = where(s.start, s.end);
    const [c, first, last] = await this.statements(
      `SELECT count(*) FROM ${from} WHERE ${w}; SELECT * FROM ${from} WHERE ${w} ORDER BY time ASC LIMIT 1; SELECT * FROM ${from} WHERE ${w} ORDER BY time DESC LIMIT 1`,
      'extent',
    );
    const count = sumCounts(c);
    const min = firstTime(first);
    const max = firstTime(last);
    if (count === 0 || min === undefined || max === undefined) return null;
    return { min, max, count };
  }

  /**
   * Streams the selection to `onRows`, one time window at a time (each at most EXPORT_CHUNK_ROWS
   * values unless more than that share one millisecond), each call waited for; resolves with the total.
   */
  async exportRange(sel: PartitionSelector, onRows: (rows: ExportRow[]) => void | Promise<void>): Promise<number> {
    const { s, from, where } = this.partition(sel, 'export');
    const extent = await this.extentOf(sel);
    if (extent === null) return 0;
    let types = await this.fieldTypes(from);
    const stop = extent.max + 1;
    let t = extent.min;
    let width = Math.max(1, Math.floor(((stop - t) * EXPORT_CHUNK_ROWS) / extent.count));
    let total = 0;
    while (t < stop) {
      let w = Math.min(width, stop - t);
      let n = await this.count(from, where(t, t + w), 'export count');
      while (n > EXPORT_CHUNK_ROWS && w > 1) {
        w = Math.max(1, Math.min(Math.floor(w / 2), Math.floor((w * EXPORT_CHUNK_ROWS) / n)));
        n = await this.count(from, where(t, t + w), 'export count');
      }
      if (n > 0) {
        const results = await this.statements(`SELECT * FROM ${from} WHERE ${where(t, t + w)} GROUP BY *`, 'export', true);
        let rows: ExportRow[];
        try {
          rows = exportRows(results[0], s.measurement, types);
        } catch (e) {
          if (!(e instanceof UnknownField)) throw e;
          // A field written since SHOW FIELD KEYS was read.
          types = await this.fieldTypes(from);
          rows = exportRows(results[0], s.measurement, types);
        }
        for (let o = 0; o < rows.length; o += EXPORT_CHUNK_ROWS) {
          const part = rows.length <= EXPORT_CHUNK_ROWS ? rows : rows.slice(o, o + EXPORT_CHUNK_ROWS);
          total += part.length;
          await onRows(part);
        }
      }
      t += w;
      width = n === 0 ? w * 4 : Math.max(1, Math.floor((w * Math.min(4 * n, EXPORT_CHUNK_ROWS)) / n));
    }
    return total;
  }

  /**
   * Deletes the selection: counts it, then `DELETE FROM "m" WHERE <tags> AND time ...`; resolves with the
   * count. With `expect`, a count other than `expect` deletes nothing and throws StoreError (retryable false).
   * A write into the range between the count and the delete is deleted too (not one transaction).
   */
  async deleteRange(sel: PartitionSelector, expect?: number): Promise<number> {
    const { s, from, where } = this.partition(sel, 'delete');
    if (expect !== undefined && !(Number.isSafeInteger(expect) && expect >= 0)) {
      throw new StoreError(`${this.kind} delete: expect must be a count (a whole number >= 0), not ${String(expect)}`, { retryable: false, status: 400 });
    }
    const w = where(s.start, s.end);
    const n = await this.count(from, w, 'delete count');
    if (expect !== undefined && n !== expect) {
      const filter = s.where.length > 0 ? ` where ${JSON.stringify(Object.fromEntries(s.where))}` : '';
      throw new StoreError(
        `${this.kind} delete: counts differ, nothing deleted: expected ${expect} values but the selection holds ${n} ` +
          `(measurement ${JSON.stringify(s.measurement)}${filter}, [${s.start}, ${s.end}))`,
        { retryable: false, status: 409 },
      );
    }
    if (n === 0) return 0;
    // DELETE takes no retention policy (see the header): the measurement alone.
    await this.statements(`DELETE FROM ${quoteIdent(s.measurement, 'measurement')} WHERE ${w}`, 'delete');
    return n;
  }

  /** Field name -> its types (a field can have another type in another shard). */
  private async fieldTypes(from: string): Promise<Map<string, Set<string>>> {
    const [r] = await this.statements(`SHOW FIELD KEYS FROM ${from}`, 'export field keys');
    const types = new Map<string, Set<string>>();
    for (const series of r?.series ?? []) {
      for (const [key, type] of series.values ?? []) {
        if (typeof key !== 'string' || typeof type !== 'string') continue;
        let set = types.get(key);
        if (!set) types.set(key, (set = new Set()));
        set.add(type);
      }
    }
    return types;
  }

  async query(q: RangeQuery): Promise<QueryResult> {
    const text = buildRangeQuery(q, { rp: this.rp });
    const budget = maxAnswerPoints();
    return parseQueryResponse(await this.influxql(text, 'query', answerBytes(budget)), q, budget);
  }

  /** CREATE DATABASE (idempotent in InfluxDB 1.x); needs an admin user when auth is on. */
  async createDatabase(): Promise<void> {
    const body = (await this.influxql(`CREATE DATABASE ${quoteIdent(this.db, 'database name')}`, 'create database')) as {
      results?: Array<{ error?: string }>;
    };
    const err = body?.results?.find((r) => typeof r.error === 'string')?.error;
    if (err) throw new StoreError(`${this.kind} create database failed: ${err.slice(0, 500)}`, { retryable: false, serverMessage: err.slice(0, 500) });
  }

  /** /ping (204, version header), then SHOW RETENTION POLICIES: does the database (and the rp) exist? Never throws. */
  async health(): Promise<BackendHealth> {
    let version: string;
    try {
      const res = await this.request('ping', '/ping', { method: 'GET' });
      if (res.status !== 204 && res.status !== 200) return { ok: false, detail: `ping answered HTTP ${res.status}${res.body ? `: ${serverMessageOf(res.body)}` : ''}` };
      version = `InfluxDB ${res.headers.get('x-influxdb-version') ?? 'unknown version'}${res.headers.get('x-influxdb-build') ? ` (${res.headers.get('x-influxdb-build')})` : ''}`;
    } catch (e) {
      return { ok: false, detail: (e as Error).message };
    }
    try {
      const body = (await this.influxql(`SHOW RETENTION POLICIES ON ${quoteIdent(this.db, 'database name')}`, 'health query')) as {
        results?: Array<{ error?: string; series?: Array<{ values?: unknown[][] }> }>;
      };
      const err = body?.results?.find((r) => typeof r.error === 'string')?.error;
      if (err) return { ok: false, detail: `${version}: ${err}` };
      const rps = (body?.results?.[0]?.series?.[0]?.values ?? []).map((v) => v[0]);
      if (this.rp && !rps.includes(this.rp)) return { ok: false, detail: `${version}: retention policy ${this.rp} not found on db ${this.db}` };
    } catch (e) {
      return { ok: false, detail: `${version}: ${(e as Error).message}` };
    }
    return { ok: true, detail: `${version}, db ${this.db} ready` };
  }

  async close(): Promise<void> {
    // Nothing held open: fetch keeps no per-backend state.
  }
}

// ---------------------------------------------------------------------------------------------
// Reading partition answers

interface StatementResult {
  statement_id?: number;
  error?: string;
  series?: Array<{ name?: string; tags?: Record<string, string>; columns?: string[]; values?: unknown[][] }>;
}

/** JSON strings, or integer-looking numbers of 16 digits or more (beyond 2^53 a double loses digits). */
const LONG_NUMBER = /"(?:[^"\\]|\\.)*"|(?<![\w.+-])-?\d{16,}(?![\w.])/g;

/**
 * JSON.parse, except that numbers of 16 digits or more become the string NUL + digits, read back
 * exactly by toValue for integer and float fields (a string field's value is never taken for one).
 */
function parseExact(text: string): unknown {
  if (!/\d{16}/.test(text)) return JSON.parse(text) as unknown;
  return JSON.parse(text.replace(LONG_NUMBER, (m) => (m.charCodeAt(0) === 34 ? m : `"\\u0000${m}"`))) as unknown;
}

/** Sum of the count_* columns of a `SELECT count(*)` answer (no series: 0). */
function sumCounts(r: StatementResult | undefined): number {
  let n = 0;
  for (const series of r?.series ?? []) {
    const columns = series.columns ?? [];
    for (const row of series.values ?? []) {
      for (let c = 0; c < columns.length; c++) {
        if (columns[c] === 'time') continue;
        const v = row[c];
        if (typeof v === 'number') n += v;
      }
    }
  }
  return n;
}

/** The time of the first row of a `SELECT * ... LIMIT 1` answer. */
function firstTime(r: StatementResult | undefined): number | undefined {
  const series = r?.series?.[0];
  const at = series?.columns?.indexOf('time') ?? -1;
  const t = at >= 0 ? series?.values?.[0]?.[at] : undefined;
  return typeof t === 'number' ? t : undefined;
}

class UnknownField extends Error {}

/** A value of the answer as its field's stored type: integers as bigint, exactly. */
function toValue(v: unknown, types: Set<string>, field: string): FieldValue {
  if (typeof v === 'boolean') return v;
  const numeric = types.has('integer') || types.has('float');
  if (typeof v === 'string') {
    // A long number read as text (parseExact); a string field's value otherwise.
    if (numeric && v.charCodeAt(0) === 0 && /^-?\d+$/.test(v.slice(1))) return types.has('float') ? Number(v.slice(1)) : BigInt(v.slice(1));
    return v;
  }
  if (typeof v === 'number') return types.has('integer') && !types.has('float') ? BigInt(v) : v;
  throw new StoreError(`influxdb-v1 export: field ${JSON.stringify(field)} has a value of type ${v === null ? 'null' : typeof v}`, { retryable: false });
}

/** The values of a `SELECT * ... GROUP BY *` answer as export rows (tags '' are tags the series lacks). */
function exportRows(r: StatementResult | undefined, measurement: string, types: Map<string, Set<string>>): ExportRow[] {
  const out: ExportRow[] = [];
  for (const series of r?.series ?? []) {
    if (series.name !== measurement) {
      throw new StoreError(`influxdb-v1 export: the answer holds series ${JSON.stringify(series.name)} instead of measurement ${JSON.stringify(measurement)}`, { retryable: false });
    }
    let device = '';
    const tags: Record<string, string> = {};
    for (const [k, v] of Object.entries(series.tags ?? {})) {
      if (v === '') continue;
      if (k === 'device') device = v;
      else Object.defineProperty(tags, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    const columns = series.columns ?? [];
    const timeAt = columns.indexOf('time');
    if (timeAt < 0) throw new StoreError('influxdb-v1 export: the answer has no time column', { retryable: false });
    const fieldTypes = columns.map((c, i) => {
      if (i === timeAt) return undefined;
      const t = types.get(c);
      if (t === undefined) throw new UnknownField(c);
      return t;
    });
    for (const row of series.values ?? []) {
      const ts = row[timeAt];
      if (typeof ts !== 'number') throw new StoreError(`influxdb-v1 export: a row without a usable time (${JSON.stringify(ts)})`, { retryable: false });
      for (let c = 0; c < columns.length; c++) {
        const v = row[c];
        if (c === timeAt || v === null || v === undefined) continue;
        out.push({ measurement, device, tags, field: columns[c], ts, value: toValue(v, fieldTypes[c]!, columns[c]) });
      }
    }
  }
  return out;
}
