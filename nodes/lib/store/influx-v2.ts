/**
 * InfluxDB 2.x / 3.x backend, and anything else that speaks /api/v2/write (VictoriaMetrics), written
 * through @influxdata/influxdb-client. Queries are InfluxQL on the v1-compatible /query endpoint
 * (`db` = the bucket unless set; InfluxDB 2.x needs a DBRP mapping for it, 3.x answers natively);
 * health is /health, falling back to /ping.
 *
 * We batch, retry and spool ourselves, so the client must neither retry nor buffer. What its source
 * (1.35.0, src/impl/WriteApiImpl.ts, RetryBuffer.ts, node/NodeHttpTransport.ts) does, and what we set:
 * - WriteBuffer.add() sends on its own (errors swallowed) once `batchSize` records or `maxBatchBytes` are
 *   reached: each batch goes in as ONE record (the client joins records with "\n", so the body is our
 *   batch text byte for byte, with no re-splitting around newlines inside string fields), with
 *   batchSize 2 and maxBatchBytes Infinity, so add() never sends; our flush() does.
 * - flushInterval 0: no timer-driven sends.
 * - WriteBuffer.flush() takes the lines out before sending, so a failed flush leaves nothing in it.
 * - On failure sendBatch() would put the lines into the RetryBuffer (retried on a timer, oldest dropped
 *   past maxBufferLines) when retries are left: maxRetries 0 leaves none, and `writeFailed` answers every
 *   failure with a rejection, which short-circuits that path (and the client's console logging) altogether.
 * - One WriteApi per batch, disposed after: nothing is shared between batches, and dispose() reports what
 *   the client still held (always 0 with these options; tested).
 * - The client's `timeout` is a socket idle timeout that does not end the request; a fresh client per
 *   batch carries an AbortSignal.timeout in its transport options, so a hung request is really aborted.
 * - HttpError.retryAfter() reads Retry-After as a bare integer only; we parse the raw header (seconds or
 *   an HTTP date) ourselves. Non-JSON error bodies arrive trimmed to 1000 characters by the client.
 */
import { HttpError, InfluxDB, type WriteOptions } from '@influxdata/influxdb-client';
import { DEFAULT_TIMEOUT_MS, GZIP_THRESHOLD, answerBytes, fetchText, httpError, networkError, serverMessageOf, splitUrl, type Answer } from './influx-v1';
import { maxAnswerPoints } from './query-plan';
import { buildRangeQuery, parseQueryResponse } from './influxql';
import { StoreError, type BackendHealth, type Batch, type QueryResult, type RangeQuery, type StoreBackend } from './types';

export interface InfluxV2Options {
  /** Base URL, e.g. http://127.0.0.1:8086 (no /api/v2 suffix). */
  url: string;
  /** API token (InfluxDB 2.x/3.x); sent as `Authorization: Token ...`. Empty for servers without auth. */
  token?: string;
  /** Organization (2.x); 3.x and VictoriaMetrics ignore it. */
  org?: string;
  bucket: string;
  /** Database name for InfluxQL queries (the DBRP mapping on 2.x); default: the bucket. */
  db?: string;
  /** Retention policy for InfluxQL queries (DBRP mapping on 2.x); default: the mapping's default. */
  rp?: string;
  /** Per request, default 10 s. */
  timeoutMs?: number;
  /** Gzip write bodies above ~1 KB; default true. */
  gzip?: boolean;
}

/** Write options under which the client sends exactly what it is given, once, and keeps nothing. */
export function clientWriteOptions(gzip: boolean): Partial<WriteOptions> {
  return {
    batchSize: 2,
    maxBatchBytes: Infinity,
    flushInterval: 0,
    maxRetries: 0,
    maxBufferLines: 100_000,
    writeFailed: (error: Error) => Promise.reject(error),
    gzipThreshold: gzip ? GZIP_THRESHOLD : undefined,
  };
}

function headerGetter(headers: Record<string, string | string[] | undefined> | undefined): { get(name: string): string | undefined } {
  return {
    get(name: string) {
      const v = headers?.[name.toLowerCase()];
      return Array.isArray(v) ? v.join(', ') : v;
    },
  };
}

export class InfluxV2Backend implements StoreBackend {
  readonly kind = 'influxdb-v2' as const;
  readonly description: string;
  private readonly base: string;
  private readonly token?: string;
  private readonly org: string;
  private readonly bucket: string;
  private readonly db: string;
  private readonly rp?: string;
  private readonly timeoutMs: number;
  private readonly gzip: boolean;

  constructor(opts: InfluxV2Options) {
    if (!opts.bucket) throw new Error('influxdb-v2: bucket is required');
    this.base = splitUrl(opts.url).base.replace(/\/api\/v2$/, '');
    this.token = opts.token || undefined;
    this.org = opts.org ?? '';
    this.bucket = opts.bucket;
    this.db = opts.db || opts.bucket;
    this.rp = opts.rp || undefined;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.gzip = opts.gzip ?? true;
    this.description = `influxdb-v2 ${this.base}${this.org ? ` org=${this.org}` : ''} bucket=${this.bucket}`;
  }

  async write(batch: Batch): Promise<void> {
    if (batch.count === 0 || batch.lines.length === 0) return;
    const what = `${this.kind} write of ${batch.count} points to ${this.base}`;
    const signal = AbortSignal.timeout(this.timeoutMs);
    const client = new InfluxDB({ url: this.base, token: this.token, timeout: this.timeoutMs, transportOptions: { signal } });
    const api = client.getWriteApi(this.org, this.bucket, 'ms', clientWriteOptions(this.gzip));
    try {
      api.writeRecord(batch.lines);
      await api.flush();
    } catch (e) {
      if (e instanceof HttpError) {
        throw httpError(what, e.statusCode, e.body ?? (e.json ? JSON.stringify(e.json) : undefined), headerGetter(e.headers));
      }
      if (signal.aborted) throw networkError(what, Object.assign(new Error('timed out'), { name: 'TimeoutError' }), this.timeoutMs);
      throw networkError(what, e, this.timeoutMs);
    } finally {
      api.dispose();
    }
  }

  private request(what: string, path: string, init: { method: string; headers?: Record<string, string>; body?: string }, maxBytes?: number): Promise<Answer> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.token) headers.Authorization = `Token ${this.token}`;
    return fetchText(`${this.base}${path}`, { ...init, headers }, this.timeoutMs, `${this.kind} ${what} to ${this.base}`, maxBytes);
  }

  /** InfluxQL through the v1-compatible /query endpoint. */
  async influxql(q: string, maxBytes?: number): Promise<unknown> {
    const params = new URLSearchParams({ db: this.db, epoch: 'ms' });
    if (this.rp) params.set('rp', this.rp);
    const res = await this.request(
      'query',
      `/query?${params}`,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: new URLSearchParams({ q }).toString(),
      },
      maxBytes,
    );
    if (res.status !== 200) throw httpError(`${this.kind} query`, res.status, res.body, res.headers);
    try {
      return JSON.parse(res.body) as unknown;
    } catch {
      throw new StoreError(`${this.kind} query: the answer is not JSON`, { retryable: false, status: res.status, serverMessage: serverMessageOf(res.body) });
    }
  }

  async query(q: RangeQuery): Promise<QueryResult> {
    // The retention policy travels as the rp parameter (DBRP), not in FROM.
    const budget = maxAnswerPoints();
    return parseQueryResponse(await this.influxql(buildRangeQuery(q), answerBytes(budget)), q, budget);
  }

  /** GET /health (InfluxDB 2.x/3.x, VictoriaMetrics); /ping when /health is not there. Never throws. */
  async health(): Promise<BackendHealth> {
    try {
      const res = await this.request('health', '/health', { method: 'GET' });
      if (res.status === 200) {
        let detail = res.body.trim().slice(0, 200) || 'OK';
        try {
          const j = JSON.parse(res.body) as { name?: string; status?: string; version?: string; message?: string };
          if (j.status && j.status !== 'pass') return { ok: false, detail: `${j.name ?? 'server'} ${j.status}: ${j.message ?? ''}`.trim() };
          detail = [j.name ?? 'InfluxDB', j.version, j.status].filter(Boolean).join(' ');
        } catch {
          // plain text ("OK" from VictoriaMetrics and InfluxDB 3)
        }
        return { ok: true, detail: `${detail}, bucket ${this.bucket}` };
      }
      if (res.status !== 404) return { ok: false, detail: `/health answered HTTP ${res.status}${serverMessageOf(res.body) ? `: ${serverMessageOf(res.body)}` : ''}` };
      const ping = await this.request('ping', '/ping', { method: 'GET' });
      if (ping.status === 204 || ping.status === 200) {
        return { ok: true, detail: `ping ok${ping.headers.get('x-influxdb-version') ? ` (version ${ping.headers.get('x-influxdb-version')})` : ''}, bucket ${this.bucket}` };
      }
      return { ok: false, detail: `/ping answered HTTP ${ping.status}` };
    } catch (e) {
      return { ok: false, detail: (e as Error).message };
    }
  }

  async close(): Promise<void> {
    // Every write uses its own client and WriteApi, disposed when the write ends: nothing to close.
  }
}
