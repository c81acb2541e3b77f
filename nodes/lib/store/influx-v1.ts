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
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { buildRangeQuery, parseQueryResponse, quoteIdent } from './influxql';
import { StoreError, type BackendHealth, type Batch, type QueryResult, type RangeQuery, type StoreBackend } from './types';

const gzip = promisify(zlib.gzip);

/** Bodies above this many bytes are gzipped when gzip is on (the InfluxDB client's own default). */
export const GZIP_THRESHOLD = 1000;
export const DEFAULT_TIMEOUT_MS = 10_000;
const MESSAGE_MAX = 500;

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

/** One request with a deadline (AbortSignal.timeout covers connect, send and reading the answer). */
export async function fetchText(url: string, init: { method: string; headers?: Record<string, string>; body?: Buffer | string }, timeoutMs: number, what: string): Promise<Answer> {
  try {
    const res = await fetch(url, { method: init.method, headers: init.headers, body: init.body, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, headers: res.headers, body: await res.text() };
  } catch (e) {
    throw networkError(what, e, timeoutMs);
  }
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

  private request(what: string, path: string, init: { method: string; headers?: Record<string, string>; body?: Buffer | string }): Promise<Answer> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.auth) headers.Authorization = this.auth;
    return fetchText(`${this.base}${path}`, { ...init, headers }, this.timeoutMs, `${this.kind} ${what} to ${this.base}`);
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
  async influxql(q: string, what = 'query'): Promise<unknown> {
    const params = new URLSearchParams({ db: this.db, epoch: 'ms' });
    const res = await this.request(what, `/query?${params}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ q }).toString(),
    });
    if (res.status !== 200) throw httpError(`${this.kind} ${what}`, res.status, res.body, res.headers);
    try {
      return JSON.parse(res.body) as unknown;
    } catch {
      throw new StoreError(`${this.kind} ${what}: the answer is not JSON`, { retryable: false, status: res.status, serverMessage: serverMessageOf(res.body) });
    }
  }

  async query(q: RangeQuery): Promise<QueryResult> {
    const text = buildRangeQuery(q, { rp: this.rp });
    return parseQueryResponse(await this.influxql(text), q);
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
