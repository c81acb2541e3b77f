/**
 * Time-series servers for tests: InfluxDB 1.x (Debian `influxdb`) and VictoriaMetrics (Debian
 * `victoria-metrics`) on free loopback ports with their data in temp dirs, stopped and removed after;
 * plus raw readers that do not go through our backends (InfluxQL /query, VictoriaMetrics export) and a
 * scripted fake HTTP server for answers the real servers do not give on demand (429, 503, 413, ...).
 * A missing binary fails the test with the apt-get command; nothing is skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { freePort, portTaken, requireBinary, tmpDir, type Service } from './services';

function track(proc: ChildProcess): () => string {
  let out = '';
  const add = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  proc.stdout?.on('data', add);
  proc.stderr?.on('data', add);
  return () => out;
}

function stopProc(proc: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

/** Waits for an HTTP status on a path, failing early (with the server's output) if the process died. */
async function waitForHttp(url: string, status: number, proc: ChildProcess, output: () => string, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    // A process that exited will not answer: say so now, with its output (waitFor would retry until the deadline).
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode}):\n${output().slice(-3000)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === status) return;
      last = new Error(`answered ${res.status}`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} to answer ${status} on ${url}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts a server on a port of freePort(): `use(port)` sets it up on that port (its URL, config or arguments), then
 * `start()` runs it. A port taken between freePort() and the server's bind (its output says so) is given up for
 * another, three tries in all. Returns the port that worked (restart() keeps it).
 */
async function startOnFreePort(use: (port: number) => Promise<void>, start: () => Promise<void>, output: () => string, stop: () => Promise<void>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    await use(port);
    try {
      await start();
      return port;
    } catch (e) {
      if (attempt >= 3 || !portTaken(output())) throw e;
      await stop();
    }
  }
}

export interface TsdbService extends Service {
  url: string;
  dataDir: string;
  /** Starts it again on the same port with the same data (after stop()). */
  restart(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// InfluxDB 1.x

export interface InfluxV1Service extends TsdbService {
  /** Raw InfluxQL (POST /query, epoch=ms), the parsed JSON answer; throws on a non-200 status. */
  query(q: string, db?: string): Promise<InfluxQueryAnswer>;
  createDatabase(db: string): Promise<void>;
  databases(): Promise<string[]>;
}

export interface InfluxQueryAnswer {
  results: Array<{ statement_id: number; error?: string; series?: Array<{ name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }> }>;
}

export interface InfluxV1StartOptions {
  /** Turns on [http] auth-enabled and creates this admin user. */
  admin?: { username: string; password: string };
}

/** influxd 1.x with a config file pointing everything at a temp dir and loopback ports. */
export async function startInfluxV1(opts: InfluxV1StartOptions = {}): Promise<InfluxV1Service> {
  const bin = requireBinary('influxd', 'influxdb');
  const dir = tmpDir('influxd');
  const conf = path.join(dir, 'influxdb.conf');
  const writeConf = (port: number, rpcPort: number): void => fs.writeFileSync(
    conf,
    [
      'reporting-disabled = true',
      `bind-address = "127.0.0.1:${rpcPort}"`,
      '[meta]',
      `  dir = "${path.join(dir, 'meta')}"`,
      '[data]',
      `  dir = "${path.join(dir, 'data')}"`,
      `  wal-dir = "${path.join(dir, 'wal')}"`,
      '  query-log-enabled = false',
      '[http]',
      `  bind-address = "127.0.0.1:${port}"`,
      '  log-enabled = false',
      `  auth-enabled = ${opts.admin ? 'true' : 'false'}`,
      '[monitor]',
      '  store-enabled = false',
      '[continuous_queries]',
      '  enabled = false',
      '[subscriber]',
      '  enabled = false',
      '[logging]',
      '  level = "warn"',
      '',
    ].join('\n'),
  );
  let url = '';
  let proc!: ChildProcess;
  let output: () => string = () => '';
  const start = async (): Promise<void> => {
    proc = spawn(bin, ['-config', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    output = track(proc);
    await waitForHttp(`${url}/ping`, 204, proc, output, 'influxd');
  };
  const port = await startOnFreePort(
    async (p) => {
      url = `http://127.0.0.1:${p}`;
      writeConf(p, await freePort());
    },
    start,
    () => output(),
    () => stopProc(proc),
  );

  const auth: Record<string, string> = opts.admin ? { Authorization: `Basic ${Buffer.from(`${opts.admin.username}:${opts.admin.password}`).toString('base64')}` } : {};
  const query = async (q: string, db?: string): Promise<InfluxQueryAnswer> => {
    const params = new URLSearchParams({ epoch: 'ms' });
    if (db) params.set('db', db);
    const res = await fetch(`${url}/query?${params}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...auth },
      body: new URLSearchParams({ q }).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`influxd /query answered ${res.status}: ${text}`);
    return JSON.parse(text) as InfluxQueryAnswer;
  };
  if (opts.admin) {
    // With auth on and no user yet, influxd lets exactly one thing through: creating the first admin. It can answer
    // 200 with an error in the body (statement errors are not HTTP errors), and a loaded machine has seen the user
    // missing right after: retry until an authenticated SHOW USERS lists it.
    const admin = opts.admin;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await fetch(`${url}/query`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ q: `CREATE USER "${admin.username}" WITH PASSWORD '${admin.password}' WITH ALL PRIVILEGES` }).toString(),
      });
      const text = await res.text();
      let listed: boolean;
      try {
        listed = JSON.stringify(await query('SHOW USERS')).includes(`"${admin.username}"`);
      } catch {
        listed = false;
      }
      if (listed) break;
      if (Date.now() > deadline) throw new Error(`creating the influxd admin failed: ${res.status} ${text}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const stop = async (): Promise<void> => {
    await stopProc(proc);
  };
  return {
    port,
    url,
    dataDir: dir,
    get proc() {
      return proc;
    },
    output: () => output(),
    stop,
    restart: start,
    query,
    async createDatabase(db: string) {
      const r = await query(`CREATE DATABASE "${db.replace(/[\\"]/g, '\\$&')}"`);
      if (r.results[0]?.error) throw new Error(r.results[0].error);
    },
    async databases() {
      const r = await query('SHOW DATABASES');
      return (r.results[0]?.series?.[0]?.values ?? []).map((v) => String(v[0]));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// VictoriaMetrics

/** One line of /api/v1/export: a series (labels) with its samples. */
export interface ExportedSeries {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

export interface VictoriaMetricsService extends TsdbService {
  /** /internal/force_flush: makes what was just written searchable at once. */
  flush(): Promise<void>;
  /** Flushes, then reads /api/v1/export for a series selector (default: every series), sorted by name and labels. */
  exportSeries(match?: string): Promise<ExportedSeries[]>;
  /** The value of one line of /metrics, e.g. `vm_rows_invalid_total{type="influx"}`; 0 when absent. */
  metric(line: string): Promise<number>;
}

/** victoria-metrics on a free loopback port, data in a temp dir, quiet, newest data queryable after 1 s. */
export async function startVictoriaMetrics(): Promise<VictoriaMetricsService> {
  const bin = requireBinary('victoria-metrics', 'victoria-metrics');
  const dir = tmpDir('victoria');
  let url = '';
  const args = [
    '', // -httpListenAddr, set by startOnFreePort's use() below
    `-storageDataPath=${path.join(dir, 'data')}`,
    '-search.latencyOffset=1s',
    '-retentionPeriod=1y',
    '-loggerLevel=ERROR',
    '-loggerOutput=stderr',
    '-memory.allowedPercent=20',
    '-search.disableCache',
    // One sample per series and timestamp, as InfluxDB keeps: a retried batch must not count twice.
    '-dedup.minScrapeInterval=1ms',
  ];
  let proc!: ChildProcess;
  let output: () => string = () => '';
  const start = async (): Promise<void> => {
    proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    output = track(proc);
    await waitForHttp(`${url}/health`, 200, proc, output, 'victoria-metrics');
  };
  const port = await startOnFreePort(
    async (p) => {
      url = `http://127.0.0.1:${p}`;
      args[0] = `-httpListenAddr=127.0.0.1:${p}`;
    },
    start,
    () => output(),
    () => stopProc(proc),
  );
  const flush = async (): Promise<void> => {
    const res = await fetch(`${url}/internal/force_flush`, { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`force_flush answered ${res.status}`);
  };
  return {
    port,
    url,
    dataDir: dir,
    get proc() {
      return proc;
    },
    output: () => output(),
    stop: () => stopProc(proc),
    restart: start,
    flush,
    async exportSeries(match = '{__name__!=""}') {
      await flush();
      const res = await fetch(`${url}/api/v1/export?${new URLSearchParams({ 'match[]': match })}`, { signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`export answered ${res.status}: ${text}`);
      const out = text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as ExportedSeries);
      const key = (s: ExportedSeries): string => JSON.stringify(Object.entries(s.metric).sort());
      return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    },
    async metric(line: string) {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      const found = text.split('\n').find((l) => l.startsWith(`${line} `));
      return found ? Number(found.slice(line.length + 1)) : 0;
    },
  };
}

/** Removes a service's temp dir (after stop()). */
export function removeDataDir(s: { dataDir: string } | undefined): void {
  if (s) fs.rmSync(s.dataDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// A scripted HTTP server

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The body as sent (still gzipped when it was). */
  raw: Buffer;
  /** The body, gunzipped when Content-Encoding said gzip. */
  text: string;
}

export interface FakeAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering (0: at once). Never answer: Infinity. */
  delayMs?: number;
}

export interface FakeHttp {
  url: string;
  requests: RecordedRequest[];
  /** What the next requests get; the last answer repeats. */
  answer(...answers: FakeAnswer[]): void;
  close(): Promise<void>;
}

/** A loopback HTTP server that records every request and answers what the test scripted (default 204). */
export async function startFakeHttp(): Promise<FakeHttp> {
  let queue: FakeAnswer[] = [{ status: 204 }];
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const text = req.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(raw).toString('utf8') : raw.toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, raw, text });
      const a = queue.length > 1 ? queue.shift()! : queue[0];
      const send = (): void => {
        res.writeHead(a.status, a.headers);
        res.end(a.body ?? '');
      };
      if (a.delayMs === Infinity) return;
      if (a.delayMs) setTimeout(send, a.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    answer(...answers: FakeAnswer[]) {
      queue = answers;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
