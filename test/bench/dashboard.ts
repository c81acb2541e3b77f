/**
 * The dashboard's Device page, measured (issue 8, Performance; a standalone script, not a registry case):
 *
 *   npm run build && node dist/test/bench/dashboard.js [--devices N] [--seconds N] [--warmup N] [--connections N]
 *                                                      [--minute-days N] [--reps N] [--cold-reps N] [--quick]
 *                                                      [--watched-rate N]
 *
 * Starts the bundled runtime (dist/runtime/main.js, as `npm start` does: embedded broker, shipped flows, the
 * anonymous demo switch on) on a data directory prepared before the first start, and drives the Device page
 * (/dashboard/device) in Debian's headless Chromium (test/support/browser.ts). Two parts, printed as tables and
 * written to test-output/dashboard-bench.json:
 *
 * 1. History: one device (the simulator's first, sim-0001) gets a year of data written straight into the
 *    runtime's embedded store file (DATA_DIR/store/thingwire.duckdb) before the runtime starts, the way the
 *    pipeline stores it: raw readings at 1/s for the last 6 hours (measurement telemetry: temperature,
 *    humidity, vibration from runtime/sim-model.ts) and the window node's rollups of each metric (measurement
 *    rollup, tags device/metric/level, the fields rollupToPoint writes with percentiles on: count, sum, mean,
 *    min, max, stddev, first, last, p50-p99, first_ts, last_ts, window_ms) at 1m for the last --minute-days
 *    days (default 365: every level hot for the whole year, the worst case for the store; the shipped
 *    retention policy would keep 1m rollups hot for 30 days only) and at 1h and 1d for the year. The shipped
 *    retention tab is seeded disabled so that it does not move the year out of the store mid-run.
 *    On the page (opened at range=1h, 1200x900) a range button is clicked in the page and timed until the chart
 *    shows the answer (svg data-level = the level, data-points near min(windows, chart width), status no longer
 *    "loading": "drawn" = the DOM mutation, "frame" = the next animation frame after it): 1 year (1d rollups),
 *    30 days (1h), 24 hours (1m). Cold = the first history query after a runtime restart (DuckDB's buffers empty;
 *    the OS file cache is likely warm): one restart per range and repetition. Warm = --reps clicks of each range in
 *    turn on one page. The backing query alone (GET /api/v1/series?...&level=auto&maxPoints=1000, timed to the
 *    parsed body) is timed the same ways. Also warm clicks while part 2's load runs.
 * 2. Live latency: --devices simulated devices (sim-model readings, {ts, temperature, humidity, vibration} on
 *    devices/{id}/telemetry, QoS 0 as `npm run simulate` publishes) at 1 reading/s each, spread evenly over the
 *    second, from --connections anonymous MQTT clients, for --warmup + --seconds seconds. The page watches
 *    sim-0001 (its 1 hour history is there, so live readings are appended to the chart). In the page, an init
 *    script records the arrival of each "live" socket.io frame (a listener on the WebSocket, before the app's)
 *    and a MutationObserver records each change of the svg's data-live attribute (the reading appended to the
 *    chart, in the DOM) and the next animation frame; times are performance.timeOrigin + performance.now() in
 *    both processes (same machine), and the page-node offset is measured over evaluate() round trips (the one
 *    with the shortest round trip) before and after. Each frame is matched by the reading's ts to the time
 *    its publish was handed to mqtt.js. Reported: p50/p90/p99/max and count for socket arrival, in the DOM and
 *    next frame; the runtime's CPU and RSS, whole-machine CPU, ingest rate (the runtime's own counter) and
 *    rejects, load average, and the median latency of the window's first and last quarter (a backlog grows).
 *    After the window the script waits (up to 60 s, load going on) for the window's last reading to reach the
 *    page. The runtime is started with live-probe.ts, which times every reading of every device from its publish
 *    (its ts) to the Device page's live function: the runtime's part of the latency with 100,000+ samples instead
 *    of the watched device's one a second. The aim (issue 8): p99 < 50 ms; a one-year chart in under 1 s.
 *    --watched-rate N: the watched device publishes N readings a second (default 1, as the others; spread over the
 *    second, on top of the fleet's schedule), so the page's percentiles rest on N x --seconds samples: with 60 of
 *    them the p99 is the slowest one.
 *
 * --page-profile FILE writes a CPU profile of the page's main thread over the live window (sampled every 200 us;
 * Chrome DevTools opens it) to see what the page does between a socket frame and the DOM.
 * --no-live-charts unwires the three function nodes that feed the starter's per-reading ui-charts (the "Live"
 * page's temperature chart, the anomaly band and score charts) in the seeded flows: FlowFuse's ui-chart clones
 * its whole stored history (up to 600 points a series, a series per device) on every message it takes, which
 * dominates the runtime's CPU at a few hundred readings a second. Compare a run with and without it.
 *
 * Every wait is bounded; a watchdog ends the run; the runtime and the browser are stopped and the data
 * directory removed on every exit (signals too). --quick: 200 devices, 15 s, 1m rollups for 30 days, 3 warm
 * repetitions and one cold restart for the 1 year range only (under a minute).
 */
import mqtt from 'mqtt';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Browser, Page } from 'playwright-core';
import type { Reading, Rollup } from '../../nodes/lib/contract';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';
import { DEFAULT_POINT_SCHEMA, readingToPoint, rollupToPoint } from '../../nodes/lib/store/points';
import { defaultEmbeddedFile } from '../../nodes/lib/store/service';
import { loadShippedFlows } from '../../runtime/seed';
import { createFleet, deviceId, reading, type SimFleet, type SimPayload } from '../../runtime/sim-model';
import { launchChromium } from '../support/browser';
import { ROOT, sleep, startRuntime as startBuiltRuntime, tmpDir, waitFor } from '../support/services';
import { cleanupAll, cpuMs, guardProcess, loadavg, machineCpu, onCleanup, pct, rssMB } from './proc';

const OUT_FILE = path.join(ROOT, 'test-output', 'dashboard-bench.json');
const SCREENSHOT = path.join(ROOT, 'test-output', 'dashboard-bench-1y.png');
const METRICS = ['temperature', 'humidity', 'vibration'] as const;
const RETENTION_TAB = 'tw.ret.tab';
/** Function nodes that feed a ui-chart of the starter's pages on every reading or score (cut by --no-live-charts). */
const LIVE_CHART_FEEDS = ['tw.starter.tochart', 'tw.an.band', 'tw.an.score'];
const VIEWPORT = { width: 1200, height: 900 };
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Options

interface Args {
  devices: number;
  seconds: number;
  warmup: number;
  connections: number;
  minuteDays: number;
  reps: number;
  coldReps: number;
  noLiveCharts: boolean;
  /** --page-profile FILE: a CPU profile of the page (Chrome DevTools Protocol) over the live window, written to FILE. */
  pageProfile?: string;
  quick: boolean;
  /** Readings a second of the watched device (sim-0001): more samples for the page's percentiles. */
  watchedRate: number;
}

const USAGE =
  'usage: node dist/test/bench/dashboard.js [--devices N] [--seconds N] [--warmup N] [--connections N] [--minute-days N] [--reps N] [--cold-reps N] [--no-live-charts] [--page-profile FILE] [--quick] [--watched-rate N]';

function parseArgs(argv: string[]): Args {
  const a: Args = { devices: 1000, seconds: 60, warmup: 5, connections: 4, minuteDays: 365, reps: 5, coldReps: 5, noLiveCharts: false, quick: false, watchedRate: 1 };
  const num = (v: string | undefined, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      console.error(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  const explicit = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--devices') a.devices = num(argv[++i], arg, 1, 100_000);
    else if (arg === '--seconds') a.seconds = num(argv[++i], arg, 1, 3600);
    else if (arg === '--warmup') a.warmup = num(argv[++i], arg, 0, 600);
    else if (arg === '--connections') a.connections = num(argv[++i], arg, 1, 100);
    else if (arg === '--watched-rate') a.watchedRate = num(argv[++i], arg, 1, 100);
    else if (arg === '--minute-days') a.minuteDays = num(argv[++i], arg, 1, 365);
    else if (arg === '--reps') a.reps = num(argv[++i], arg, 1, 50);
    else if (arg === '--cold-reps') a.coldReps = num(argv[++i], arg, 0, 20);
    else if (arg === '--no-live-charts') a.noLiveCharts = true;
    else if (arg === '--page-profile') {
      a.pageProfile = argv[++i];
      if (!a.pageProfile) {
        console.error(`--page-profile needs a file name\n${USAGE}`);
        process.exit(2);
      }
    }
    else if (arg === '--quick') a.quick = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
      process.exit(2);
    }
    if (arg !== '--quick') explicit.add(arg);
  }
  if (a.quick) {
    if (!explicit.has('--devices')) a.devices = 200;
    if (!explicit.has('--seconds')) a.seconds = 15;
    if (!explicit.has('--warmup')) a.warmup = 3;
    if (!explicit.has('--minute-days')) a.minuteDays = 30;
    if (!explicit.has('--reps')) a.reps = 3;
    if (!explicit.has('--cold-reps')) a.coldReps = 1;
  }
  return a;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The clock both processes share: wall time at the process's time origin plus the monotonic clock. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

// ---------------------------------------------------------------------------------------------
// The runtime

interface Runtime {
  pid: number;
  url: string;
  mqttPort: number;
  /** The live probe's file (live-probe.ts), when the runtime was started with it. */
  probeFile?: string;
  startMs: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * The built runtime on free ports (test/support/services.ts, anonymous demo switch on) on the given data directory
 * (kept when it stops), killed on an early exit; startMs = until its flows run.
 */
async function startRuntime(dataDir: string, probe = false): Promise<Runtime> {
  const t0 = performance.now();
  const probeFile = probe ? path.join(dataDir, 'live-probe.json') : undefined;
  const rt = probeFile
    ? await startBuiltRuntime({ THINGWIRE_LOG_LEVEL: 'warn', TW_LIVE_PROBE_FILE: probeFile }, dataDir, ['-r', path.join(__dirname, 'live-probe.js')])
    : await startBuiltRuntime({ THINGWIRE_LOG_LEVEL: 'warn' }, dataDir);
  const kill = (): void => void rt.proc.kill('SIGKILL');
  const forget = onCleanup(kill);
  return {
    pid: rt.proc.pid ?? 0,
    url: rt.url,
    mqttPort: rt.mqttPort,
    probeFile,
    startMs: performance.now() - t0,
    output: rt.output,
    stop: async () => {
      forget();
      await rt.stop();
    },
  };
}

/** Sums the samples of one metric (optionally with a label filter) in the runtime's Prometheus text. */
async function promSum(url: string, name: string, labelPart = ''): Promise<number> {
  const text = await (await fetch(`${url}/api/v1/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (labelPart && !line.includes(labelPart)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// The data directory: flows seeded with the retention tab disabled, and a year of one device in the store

/**
 * The shipped flows as the runtime would seed them, with the retention tab disabled; with noLiveCharts, the
 * function nodes that feed the starter's per-reading ui-charts (Live temperature, anomaly band and score) are
 * left unwired (the dashboard's ui-chart clones its whole stored history on every message it takes).
 */
function seedFlows(dataDir: string, noLiveCharts: boolean): void {
  const flows = loadShippedFlows(path.join(ROOT, 'flows'));
  const tab = flows.find((n) => n.id === RETENTION_TAB);
  if (!tab) throw new Error(`the shipped flows have no tab ${RETENTION_TAB} (the retention flow); update this bench`);
  tab.disabled = true;
  if (noLiveCharts) {
    for (const id of LIVE_CHART_FEEDS) {
      const n = flows.find((x) => x.id === id);
      if (!n) throw new Error(`the shipped flows have no node ${id}; update this bench's --no-live-charts`);
      n.wires = [[]];
    }
  }
  const file = path.join(dataDir, 'node-red', 'flows.json'); // settings.ts: userDir DATA_DIR/node-red, flowFile flows.json
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(flows, null, 2));
}

/** Spread of a metric within one window (for min/max/percentiles around the model's value). */
const SPREAD: Record<(typeof METRICS)[number], number> = { temperature: 0.4, humidity: 1.5, vibration: 0.05 };

function rollupOf(device: string, metric: (typeof METRICS)[number], level: string, start: number, size: number, v: number, perSecond: number): Rollup {
  const d = SPREAD[metric];
  const count = Math.round((size / 1000) * perSecond);
  return {
    device,
    metric,
    level,
    window: { start, end: start + size, size },
    count,
    sum: v * count,
    mean: v,
    min: v - d,
    max: v + d,
    stddev: d / 2,
    first: v - d / 3,
    last: v + d / 3,
    p50: v,
    p90: v + 0.6 * d,
    p95: v + 0.8 * d,
    p99: v + 0.95 * d,
    firstTs: start,
    lastTs: start + size - 1000,
  };
}

interface HistoryWritten {
  device: string;
  lines: number;
  values: number;
  seconds: number;
  fileMB: number;
  rawFrom: number;
  upTo: number;
}

/** Writes the history of `device` (fleet index 0) into the store file the runtime will open. */
async function writeHistory(dataDir: string, fleet: SimFleet, device: string, minuteDays: number): Promise<HistoryWritten> {
  const t0 = performance.now();
  const file = defaultEmbeddedFile(dataDir);
  const store = await EmbeddedBackend.open({ path: file });
  const now = Date.now();
  let lines: string[] = [];
  let total = 0;
  let values = 0;
  const flush = async (force: boolean): Promise<void> => {
    if (lines.length === 0 || (!force && lines.length < 20_000)) return;
    await store.write({ lines: lines.join('\n'), count: lines.length });
    total += lines.length;
    lines = [];
  };
  const add = async (p: ReturnType<typeof readingToPoint>): Promise<void> => {
    values += Object.keys(p.fields).length;
    lines.push(encodePoint(p));
    await flush(false);
  };
  // Raw readings at 1/s for the last 6 hours.
  const rawFrom = now - 6 * HOUR;
  for (let t = rawFrom; t < now; t += 1000) {
    const s: SimPayload = reading(fleet, 0, t);
    const r: Reading = { device, ts: s.ts, metrics: { temperature: s.temperature, humidity: s.humidity, vibration: s.vibration } };
    await add(readingToPoint(r, undefined, DEFAULT_POINT_SCHEMA));
  }
  // Complete windows only, as the window node closes them: 1m for minuteDays, 1h and 1d for the year.
  const levels: Array<[string, number, number]> = [
    ['1m', MIN, minuteDays * DAY],
    ['1h', HOUR, 365 * DAY],
    ['1d', DAY, 365 * DAY],
  ];
  for (const [level, size, span] of levels) {
    const last = Math.floor(now / size) * size - size;
    for (let start = Math.floor((now - span) / size) * size; start <= last; start += size) {
      const s = reading(fleet, 0, start + size / 2);
      for (const m of METRICS) await add(rollupToPoint(rollupOf(device, m, level, start, size, s[m], 1), undefined, DEFAULT_POINT_SCHEMA));
    }
  }
  await flush(true);
  await store.close();
  return { device, lines: total, values, seconds: (performance.now() - t0) / 1000, fileMB: fs.statSync(file).size / 1e6, rawFrom, upTo: now };
}

// ---------------------------------------------------------------------------------------------
// The page

/**
 * Runs in the page before the dashboard's scripts (addInitScript): records "live" socket.io frames as they
 * arrive (a WebSocket listener registered before socket.io sets onmessage), changes of the chart's data-live
 * attribute (and the next animation frame after each), and times a range click until the chart shows it.
 * A string, not a function: this project compiles without the DOM typings.
 */
const PAGE_SCRIPT = `(() => {
  const B = window.__twb = { frames: [], muts: [], long: [], traffic: [], now: () => performance.timeOrigin + performance.now() };
  // The page's own load: its main-thread tasks over 50 ms, and every socket frame's arrival and size.
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) B.long.push([performance.timeOrigin + e.startTime, e.duration]); }).observe({ type: 'longtask', buffered: true });
  } catch (e) { /* no long task API */ }
  const Native = window.WebSocket;
  class Hooked extends Native {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (ev) => {
        const d = ev.data;
        // socket.io event frames are 42["name",...]: the name says which widget (msg-input:<node id>) or event.
        const name = typeof d === 'string' && d.startsWith('42["') ? d.slice(4, Math.max(4, d.indexOf('"', 4))) : '(other)';
        B.traffic.push([B.now(), typeof d === 'string' ? d.length : (d.byteLength || d.size || 0), name]);
        if (typeof d !== 'string' || d.indexOf('"live"') < 0) return;
        const at = B.now();
        try {
          const j = JSON.parse(d.slice(d.indexOf('[')));
          const m = j && j[1];
          if (m && m.topic === 'live' && m.payload) B.frames.push([m.payload.ts, at]);
        } catch (e) { /* not a socket.io event */ }
      });
    }
  }
  window.WebSocket = Hooked;
  const start = () => {
    new MutationObserver((list) => {
      const at = B.now();
      for (const r of list) {
        if (r.attributeName !== 'data-live') continue;
        const rec = { live: Number(r.target.getAttribute('data-live')), at, n: B.frames.length, raf: null };
        B.muts.push(rec);
        requestAnimationFrame(() => { rec.raf = B.now(); });
      }
    }).observe(document.documentElement, { subtree: true, attributes: true, attributeFilter: ['data-live'] });
  };
  if (document.documentElement) start(); else document.addEventListener('DOMContentLoaded', start);
  B.timeRange = (label, level, windows, timeoutMs) => new Promise((resolve) => {
    const svg = document.querySelector('.tw-dev-chart');
    const status = document.querySelector('.tw-dev-level');
    const btn = [...document.querySelectorAll('.tw-dev-ranges button')].find((b) => b.textContent.trim() === label);
    if (!svg || !btn) return resolve({ error: 'no chart or no button ' + label });
    const minPoints = Math.floor(0.9 * Math.min(windows, Number(svg.getAttribute('data-width')) || windows));
    let done = false;
    let t0 = 0;
    const check = () => {
      if (done) return;
      const st = status ? status.textContent : '';
      const pts = Number(svg.getAttribute('data-points'));
      if (st.indexOf('loading') < 0 && svg.getAttribute('data-level') === level && pts >= minPoints) {
        done = true;
        const drawn = B.now() - t0;
        obs.disconnect();
        clearTimeout(to);
        requestAnimationFrame(() => resolve({ drawn, frame: B.now() - t0, points: pts, status: st }));
      }
    };
    const obs = new MutationObserver(check);
    obs.observe(document.querySelector('.tw-dev') || document.body, { subtree: true, attributes: true, characterData: true, childList: true });
    const to = setTimeout(() => {
      done = true;
      obs.disconnect();
      resolve({ error: 'timed out after ' + timeoutMs + ' ms', status: status && status.textContent, level: svg.getAttribute('data-level'), points: svg.getAttribute('data-points'), minPoints });
    }, timeoutMs);
    t0 = B.now();
    btn.click();
  });
})();`;

interface RangeSpec {
  id: string;
  label: string;
  level: string;
  windows: number;
  api: string;
}

const RANGES: RangeSpec[] = [
  { id: '1y', label: '1 year', level: '1d', windows: 365, api: '-365d' },
  { id: '30d', label: '30 days', level: '1h', windows: 720, api: '-30d' },
  { id: '24h', label: '24 hours', level: '1m', windows: 1440, api: '-24h' },
];

/** Opens the Device page for `device` at range=1h and waits until its hour of history is on the chart. */
async function openDevicePage(browser: Browser, url: string, device: string): Promise<{ page: Page; loadMs: number }> {
  const page = await browser.newPage({ viewport: VIEWPORT });
  await page.addInitScript(PAGE_SCRIPT);
  const t0 = performance.now();
  await page.goto(`${url}/dashboard/device?device=${encodeURIComponent(device)}&metric=temperature&range=1h`, { timeout: 30_000 });
  const chart = page.locator('.tw-dev-chart');
  try {
    await chart.waitFor({ timeout: 30_000 });
    await waitFor(
      'the hour of history on the chart',
      async () => (await chart.getAttribute('data-level', { timeout: 5000 })) === 'raw' && Number(await chart.getAttribute('data-points', { timeout: 5000 })) > 0,
      30_000,
      20,
    );
  } catch (e) {
    const shot = path.join(ROOT, 'test-output', 'dashboard-bench-failed.png');
    await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
    throw new Error(`the Device page did not show its history (see ${path.relative(ROOT, shot)}): ${(e as Error).message}`, { cause: e });
  }
  return { page, loadMs: performance.now() - t0 };
}

interface ClickTime {
  drawn: number;
  frame: number;
  points: number;
  status: string;
}

async function timeRange(page: Page, r: RangeSpec): Promise<ClickTime> {
  const res = (await page.evaluate(
    `window.__twb.timeRange(${JSON.stringify(r.label)}, ${JSON.stringify(r.level)}, ${r.windows}, 20000)`,
  )) as Partial<ClickTime> & { error?: string };
  if (res.error || typeof res.drawn !== 'number') throw new Error(`the ${r.label} chart did not show the history: ${JSON.stringify(res)}`);
  return res as ClickTime;
}

interface ApiTime {
  ms: number;
  points: number;
  bytes: number;
}

async function timeApi(url: string, device: string, r: RangeSpec): Promise<ApiTime> {
  const q = `${url}/api/v1/series?devices=${encodeURIComponent(device)}&fields=temperature&start=${r.api}&level=auto&maxPoints=1000`;
  const t0 = performance.now();
  const res = await fetch(q, { signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${q} answered ${res.status}: ${text.slice(0, 500)}`);
  const body = JSON.parse(text) as { series?: Array<{ points: unknown[] }> };
  const ms = performance.now() - t0;
  const points = body.series?.[0]?.points.length ?? 0;
  if (points < Math.min(r.windows, 1000) * 0.9) throw new Error(`GET ${q}: ${points} points, expected about ${Math.min(r.windows, 1000)}`);
  return { ms, points, bytes: text.length };
}

/** Page clock minus node clock (ms), from the evaluate() round trip that was shortest. */
async function clockOffset(page: Page): Promise<{ offset: number; rtt: number }> {
  let best = { offset: 0, rtt: Infinity };
  for (let i = 0; i < 20; i++) {
    const a = nowMs();
    const p = Number(await page.evaluate('window.__twb.now()'));
    const b = nowMs();
    if (b - a < best.rtt) best = { offset: p - (a + b) / 2, rtt: b - a };
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Statistics

function median(xs: number[]): number {
  return pct([...xs].sort((a, b) => a - b), 50);
}

interface Dist {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** A snapshot of the live probe's file (live-probe.ts): counts of readings by ms from publish to the live function. */
interface ProbeSnapshot {
  at: number;
  count: number;
  bins: Array<[number, number]>;
}

/** The runtime's part of publish -> page, over every reading between two probe snapshots. */
interface ProbeResult {
  count: number;
  seconds: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

function readProbe(file: string | undefined): ProbeSnapshot | undefined {
  if (!file) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as ProbeSnapshot;
  } catch {
    return undefined; // not written yet
  }
}

function probeDist(a: ProbeSnapshot, b: ProbeSnapshot): ProbeResult {
  const before = new Map(a.bins);
  const bins = b.bins.map(([ms, n]): [number, number] => [ms, n - (before.get(ms) ?? 0)]).filter(([, n]) => n > 0);
  const count = bins.reduce((s, [, n]) => s + n, 0);
  const at = (q: number): number => {
    const want = Math.ceil(q * count);
    let seen = 0;
    for (const [ms, n] of bins) {
      seen += n;
      if (seen >= want) return ms;
    }
    return NaN;
  };
  return { count, seconds: (b.at - a.at) / 1000, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: bins.length ? bins[bins.length - 1][0] : NaN };
}

function dist(xs: number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  return { count: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s[s.length - 1] ?? NaN };
}

const f1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : '-');
const pad = (s: string, n: number): string => s.padStart(n);

// ---------------------------------------------------------------------------------------------
// Part 1: history

interface HistoryResult {
  cold: Record<string, { page: ClickTime[]; api: ApiTime[] }>;
  warm: Record<string, { page: ClickTime[]; api: ApiTime[] }>;
  underLoad: Record<string, ClickTime[]>;
  underLoadError?: string;
  runtimeStartMs: number[];
  pageLoadMs: number[];
}

async function coldRuns(args: Args, browser: Browser, dataDir: string, device: string, h: HistoryResult): Promise<void> {
  const ranges = args.quick ? RANGES.slice(0, 1) : RANGES;
  for (let rep = 0; rep < args.coldReps; rep++) {
    for (const r of ranges) {
      for (const kind of ['page', 'api'] as const) {
        const rt = await startRuntime(dataDir);
        h.runtimeStartMs.push(rt.startMs);
        try {
          if (kind === 'page') {
            const { page, loadMs } = await openDevicePage(browser, rt.url, device);
            h.pageLoadMs.push(loadMs);
            h.cold[r.id].page.push(await timeRange(page, r));
            await page.close();
          } else {
            // The same small raw query the page makes first opens the store; then the range, cold.
            // (Polled: the flows' HTTP routes may come a moment after the ready line.)
            const small = `${rt.url}/api/v1/series?devices=${encodeURIComponent(device)}&fields=temperature&start=-1h&maxPoints=1000`;
            await waitFor('the API to answer', async () => (await fetch(small, { signal: AbortSignal.timeout(20_000) })).ok, 30_000, 50);
            h.cold[r.id].api.push(await timeApi(rt.url, device, r));
          }
        } finally {
          await rt.stop();
        }
      }
    }
  }
}

async function warmRuns(args: Args, page: Page, url: string, device: string, h: HistoryResult): Promise<void> {
  for (let rep = 0; rep < args.reps; rep++) {
    for (const r of RANGES) h.warm[r.id].page.push(await timeRange(page, r));
  }
  for (let rep = 0; rep < args.reps; rep++) {
    for (const r of RANGES) h.warm[r.id].api.push(await timeApi(url, device, r));
  }
  // The picture: the year, once more (not counted).
  await timeRange(page, RANGES[0]);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
}

// ---------------------------------------------------------------------------------------------
// Part 2: live latency under load

interface LoadResult {
  devices: number;
  connections: number;
  seconds: number;
  achievedRate: number;
  ingestRate: number;
  rejects: number;
  runtimeCpuPct: number;
  runtimeRssMB: { start: number; max: number; end: number };
  machineCpuPct: number;
  benchCpuPct: number;
  loadavgStart: number[];
  loadavgEnd: number[];
  clock: { startOffset: number; endOffset: number; rtt: number };
  published: number;
  framesArrived: number;
  shown: number;
  countMismatches: number;
  /** Whether the last reading of the window reached the page within 60 s after the window. */
  drained: boolean;
  socket: Dist;
  dom: Dist;
  frame: Dist;
  /** Median DOM latency of the first and of the last quarter of the window (a growing backlog shows here). */
  trend: { firstQuarter: number; lastQuarter: number };
  /** Every sample as [ms from the window's start to its publish, DOM latency ms]: when a stall happened. */
  timeline: Array<[number, number]>;
  /** The browser's side in the window: main-thread tasks over 50 ms, socket frames and KB a second (every widget's messages reach every page), and how many samples over 50 ms overlapped a long task. */
  page: {
    longTasks: number;
    longTaskMs: number;
    longestTaskMs: number;
    framesPerSecond: number;
    kbPerSecond: number;
    slowSamples: number;
    slowWithLongTask: number;
    /** The socket's frames by socket.io event (msg-input:<widget id> and the like), most KB first. */
    byEvent: Array<{ event: string; framesPerSecond: number; kbPerSecond: number }>;
  };
  /** publish -> the Device page's live function in the runtime, every reading of every device in the window (live-probe.ts). */
  probe?: ProbeResult;
  /** Wall-clock time of the window's start (ISO), to line the timeline up with the minute (rollups) and the runtime's timers. */
  windowStart: string;
  /** When the runtime of the live part was started (its nodes' periodic saves count from about then). */
  runtimeStartedAt?: string;
}

/** Frames a second and KB a second per socket.io event name, most KB first. */
function byEvent(traffic: Array<[number, number, string]>, seconds: number): Array<{ event: string; framesPerSecond: number; kbPerSecond: number }> {
  const sum = new Map<string, { n: number; bytes: number }>();
  for (const [, bytes, name] of traffic) {
    const s = sum.get(name) ?? { n: 0, bytes: 0 };
    s.n++;
    s.bytes += bytes;
    sum.set(name, s);
  }
  return [...sum]
    .map(([event, s]) => ({ event, framesPerSecond: s.n / seconds, kbPerSecond: s.bytes / 1024 / seconds }))
    .sort((a, b) => b.kbPerSecond - a.kbPerSecond);
}

async function liveLoad(args: Args, page: Page, rt: Runtime, fleet: SimFleet, h: HistoryResult): Promise<LoadResult> {
  const url = `mqtt://127.0.0.1:${rt.mqttPort}`;
  const clients: mqtt.MqttClient[] = [];
  try {
    for (let c = 0; c < args.connections; c++) {
      clients.push(await mqtt.connectAsync(url, { clientId: `bench-dash-${process.pid}-${c}`, reconnectPeriod: 0, connectTimeout: 10_000 }));
    }
    const ids = Array.from({ length: args.devices }, (_, i) => deviceId(i, args.devices));
    const topics = ids.map((id) => `devices/${id}/telemetry`);
    const pubAt = new Map<number, number>(); // ts of the watched device's reading -> when it was handed to mqtt.js
    const clock0 = await clockOffset(page);

    // Paced publishing: a 1 ms timer sends what the schedule says is due (no busy loop: the machine has 2 cores).
    let k = 0;
    let kw = 0;
    let stop = false;
    const t0 = nowMs();
    const loop = new Promise<void>((resolve) => {
      const step = (): void => {
        if (stop) return resolve();
        const due = Math.floor(((nowMs() - t0) / 1000) * args.devices) + 1;
        while (k < due) {
          const i = k % args.devices;
          const at = nowMs();
          const s = reading(fleet, i, Date.now());
          // The watched device's readings are told apart by ts: one already published in this ms is left out.
          if (i !== 0 || !pubAt.has(s.ts)) {
            if (i === 0) pubAt.set(s.ts, at);
            clients[i % clients.length].publish(topics[i], JSON.stringify(s), { qos: 0 });
          }
          k++;
        }
        // --watched-rate: the watched device's readings past the fleet's one a second, spread over the second.
        const dueW = Math.floor(((nowMs() - t0) / 1000) * (args.watchedRate - 1));
        while (kw < dueW) {
          const at = nowMs();
          const s = reading(fleet, 0, Date.now());
          // One a ms at most (a late tick would send several at once): the rest on the next ticks.
          if (pubAt.has(s.ts)) break;
          pubAt.set(s.ts, at);
          clients[0].publish(topics[0], JSON.stringify(s), { qos: 0 });
          kw++;
        }
        setTimeout(step, 1);
      };
      step();
    });

    await sleep(args.warmup * 1000);
    // --page-profile: the page's main thread sampled over the window (every 200 us).
    const cdp = args.pageProfile ? await page.context().newCDPSession(page) : undefined;
    if (cdp) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
      await cdp.send('Profiler.start');
    }
    const wStart = nowMs();
    const probe0 = readProbe(rt.probeFile);
    const kStart = k;
    const kwStart = kw;
    const cpu0 = cpuMs(rt.pid);
    const bench0 = process.cpuUsage();
    const m0 = machineCpu();
    const in0 = await promSum(rt.url, 'thingwire_node_messages_received_total', 'type="thingwire-normalise"');
    const rej0 = await promSum(rt.url, 'thingwire_rejects_total');
    const rss = { start: rssMB(rt.pid), max: 0, end: 0 };
    const loadavgStart = os.loadavg();
    const deadline = wStart + args.seconds * 1000;
    while (nowMs() < deadline) {
      rss.max = Math.max(rss.max, rssMB(rt.pid));
      await sleep(Math.min(1000, Math.max(0, deadline - nowMs())));
    }
    const wEnd = nowMs();
    const elapsed = (wEnd - wStart) / 1000;
    if (cdp && args.pageProfile) {
      const { profile } = await cdp.send('Profiler.stop');
      fs.writeFileSync(args.pageProfile, JSON.stringify(profile));
      await cdp.detach();
      log(`  the page's CPU profile over the window: ${args.pageProfile} (open it in Chrome DevTools, Performance)`);
    }
    const published = k - kStart + (kw - kwStart);
    const runtimeCpuPct = (cpuMs(rt.pid) - cpu0) / 10 / elapsed;
    const b = process.cpuUsage(bench0);
    const m1 = machineCpu();
    rss.end = rssMB(rt.pid);
    rss.max = Math.max(rss.max, rss.end);
    const loadavgEnd = os.loadavg();
    const in1 = await promSum(rt.url, 'thingwire_node_messages_received_total', 'type="thingwire-normalise"');
    const rej1 = await promSum(rt.url, 'thingwire_rejects_total');
    // The probe writes once a second: its first snapshot after the window closes it (up to a second more of load).
    const probe1 = probe0 ? await waitFor('the live probe to write after the window', () => { const p = readProbe(rt.probeFile); return p && p.at >= wEnd ? p : undefined; }, 5000) : undefined;
    // The last reading of the window reaches the page (the load goes on: a backlog drains in its own time).
    let lastTs = 0;
    for (const [ts, at] of pubAt) if (at <= wEnd && ts > lastTs) lastTs = ts;
    const drained = await waitFor(
      'the last reading of the window on the page',
      async () => Number(await page.evaluate('(() => { const f = window.__twb.frames; return f.length ? f[f.length - 1][0] : 0 })()')) >= lastTs,
      60_000,
      100,
    ).then(
      () => true,
      () => false,
    );
    await sleep(200);

    const rec = (await page.evaluate('({ frames: window.__twb.frames, muts: window.__twb.muts, long: window.__twb.long, traffic: window.__twb.traffic })')) as {
      frames: Array<[number, number]>;
      muts: Array<{ live: number; at: number; n: number; raf: number | null }>;
      long: Array<[number, number]>;
      traffic: Array<[number, number, string]>;
    };
    const clock1 = await clockOffset(page);

    // History clicks while the load goes on (the latency figures above are taken before them).
    try {
      for (let rep = 0; rep < Math.min(args.reps, 3); rep++) {
        for (const r of RANGES) h.underLoad[r.id].push(await timeRange(page, r));
      }
    } catch (e) {
      h.underLoadError = (e as Error).message;
      log(`  history under load: ${h.underLoadError}`);
    }
    stop = true;
    await loop;

    // Match: each data-live change shows the frames that arrived since the previous one.
    const off = clock0.offset;
    const socket: number[] = [];
    const dom: number[] = [];
    const frame: number[] = [];
    const timeline: Array<[number, number]> = [];
    let prevN = 0;
    let prevLive = 0;
    let mismatches = 0;
    for (const m of rec.muts) {
      if (m.live > prevLive) {
        if (m.live - prevLive !== m.n - prevN) mismatches++;
        for (let j = prevN; j < m.n; j++) {
          const [ts, arrived] = rec.frames[j];
          const sent = pubAt.get(ts);
          if (sent === undefined || sent < wStart || sent > wEnd) continue;
          socket.push(arrived - off - sent);
          dom.push(m.at - off - sent);
          timeline.push([Math.round(sent - wStart), Math.round((m.at - off - sent) * 10) / 10]);
          if (m.raf !== null) frame.push(m.raf - off - sent);
        }
      }
      prevN = m.n;
      prevLive = m.live;
    }
    const framesArrived = rec.frames.filter(([ts]) => {
      const sent = pubAt.get(ts);
      return sent !== undefined && sent >= wStart && sent <= wEnd;
    }).length;
    // The page's side: its long tasks and what the socket brought in the window (page clock -> this clock: - off).
    const inWindow = (t: number): boolean => t - off >= wStart && t - off <= wEnd;
    const longTasks = rec.long.filter(([t]) => inWindow(t)).map(([, d]) => d);
    const traffic = rec.traffic.filter(([t]) => inWindow(t));
    const slowWithLongTask = timeline.filter(([at, ms]) => {
      if (ms < 50) return false;
      const sent = wStart + at;
      return rec.long.some(([t, d]) => t - off < sent + ms && t - off + d > sent);
    }).length;
    const pageSide = {
      longTasks: longTasks.length,
      longTaskMs: longTasks.reduce((a, b) => a + b, 0),
      longestTaskMs: longTasks.length ? Math.max(...longTasks) : 0,
      framesPerSecond: traffic.length / elapsed,
      kbPerSecond: traffic.reduce((a, [, n]) => a + n, 0) / 1024 / elapsed,
      slowSamples: timeline.filter(([, ms]) => ms >= 50).length,
      slowWithLongTask,
      byEvent: byEvent(traffic, elapsed),
    };
    const q = Math.max(1, Math.floor(dom.length / 4));
    const trend = { firstQuarter: median(dom.slice(0, q)), lastQuarter: median(dom.slice(-q)) };
    const watchedSent = [...pubAt.values()].filter((t) => t >= wStart && t <= wEnd).length;
    return {
      devices: args.devices,
      connections: args.connections,
      seconds: elapsed,
      achievedRate: published / elapsed,
      ingestRate: (in1 - in0) / elapsed,
      rejects: rej1 - rej0,
      runtimeCpuPct,
      runtimeRssMB: rss,
      machineCpuPct: ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100,
      benchCpuPct: (b.user + b.system) / 1000 / 10 / elapsed,
      loadavgStart,
      loadavgEnd,
      clock: { startOffset: clock0.offset, endOffset: clock1.offset, rtt: clock0.rtt },
      published: watchedSent,
      framesArrived,
      shown: dom.length,
      countMismatches: mismatches,
      drained,
      socket: dist(socket),
      dom: dist(dom),
      frame: dist(frame),
      trend,
      timeline,
      page: pageSide,
      probe: probe0 && probe1 ? probeDist(probe0, probe1) : undefined,
      windowStart: new Date(wStart).toISOString(),
    };
  } finally {
    await Promise.all(clients.map((c) => c.endAsync().catch(() => undefined)));
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  guardProcess('dashboard bench', (args.quick ? 2 : 15) * 60_000);
  const started = performance.now();
  const cpus = os.cpus();
  log(`dashboard bench${args.quick ? ' (quick)' : ''}${args.noLiveCharts ? ', the starter\'s per-reading charts unwired' : ''}: node ${process.version}, ${cpus.length} cpu(s) ${cpus[0]?.model ?? ''}, load average ${loadavg()}`);

  fs.mkdirSync(path.dirname(OUT_FILE), { recursive: true });
  const dataDir = tmpDir('dashboard-bench');
  onCleanup(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const fleet = createFleet({ count: args.devices, seed: 1, origin: Date.now() - 365 * DAY });
  const device = deviceId(0, args.devices);
  seedFlows(dataDir, args.noLiveCharts);
  log(`writing the history of ${device} into ${path.basename(defaultEmbeddedFile(dataDir))} (1m rollups for ${args.minuteDays} d, 1h and 1d for 365 d, raw 6 h at 1/s)`);
  const written = await writeHistory(dataDir, fleet, device, args.minuteDays);
  log(`  ${written.lines.toLocaleString('en')} points, ${written.values.toLocaleString('en')} values in ${written.seconds.toFixed(1)} s; file ${written.fileMB.toFixed(0)} MB`);

  const browser = await launchChromium();
  onCleanup(() => void browser.close().catch(() => undefined));
  const h: HistoryResult = { cold: {}, warm: {}, underLoad: {}, runtimeStartMs: [], pageLoadMs: [] };
  for (const r of RANGES) {
    h.cold[r.id] = { page: [], api: [] };
    h.warm[r.id] = { page: [], api: [] };
    h.underLoad[r.id] = [];
  }
  let load: LoadResult | undefined;
  try {
    log(`history, cold: one runtime restart per range and repetition (${args.coldReps}x)`);
    await coldRuns(args, browser, dataDir, device, h);

    const runtimeReadyAt = new Date().toISOString();
    const rt = await startRuntime(dataDir, true);
    h.runtimeStartMs.push(rt.startMs);
    try {
      log(`history, warm: ${args.reps}x each range on one page, then the API`);
      const first = await openDevicePage(browser, rt.url, device);
      h.pageLoadMs.push(first.loadMs);
      await warmRuns(args, first.page, rt.url, device, h);
      await first.page.close();

      log(`live latency: ${args.devices} devices at 1/s over ${args.connections} connections, ${args.warmup} s warm-up + ${args.seconds} s, page watching ${device}`);
      const { page } = await openDevicePage(browser, rt.url, device);
      load = { ...(await liveLoad(args, page, rt, fleet, h)), runtimeStartedAt: runtimeReadyAt };
      await page.close();
      if (load.shown < load.published * 0.9) {
        console.error(`only ${load.shown} of ${load.published} readings of ${device} were shown on the page${load.drained ? '' : ' (the last one had not arrived 60 s after the window)'}; runtime output:\n${rt.output().slice(-1500)}`);
        process.exitCode = 1;
      }
    } finally {
      await rt.stop();
    }
  } finally {
    await browser.close().catch(() => undefined);
  }
  const seconds = (performance.now() - started) / 1000;

  // ---- report ----
  log('');
  log(`History of ${device} from the embedded store (${written.values.toLocaleString('en')} values; 1m rollups ${args.minuteDays} d, 1h/1d 365 d), ms, median (min-max) of n`);
  log(`  click -> drawn = range button clicked in the page until the chart's DOM shows the answer; +frame = until the next animation frame`);
  log(`  ${'range'.padEnd(9)} ${'level'.padEnd(5)} ${'points'.padStart(6)} | ${'cold drawn'.padStart(18)} ${'cold +frame'.padStart(11)} | ${'warm drawn'.padStart(18)} ${'+frame'.padStart(7)} | ${'under load'.padStart(18)} | ${'API cold'.padStart(9)} ${'API warm'.padStart(18)}`);
  const mm = (xs: number[]): string => (xs.length ? `${f1(median(xs))} (${f1(Math.min(...xs))}-${f1(Math.max(...xs))}) ${xs.length}` : '-');
  for (const r of RANGES) {
    const c = h.cold[r.id];
    const w = h.warm[r.id];
    const u = h.underLoad[r.id];
    const pts = w.page[0]?.points ?? c.page[0]?.points ?? NaN;
    log(
      `  ${r.label.padEnd(9)} ${r.level.padEnd(5)} ${pad(String(pts), 6)} | ${pad(mm(c.page.map((x) => x.drawn)), 18)} ${pad(c.page.length ? f1(median(c.page.map((x) => x.frame))) : '-', 11)} | ` +
        `${pad(mm(w.page.map((x) => x.drawn)), 18)} ${pad(f1(median(w.page.map((x) => x.frame))), 7)} | ${pad(mm(u.map((x) => x.drawn)), 18)} | ` +
        `${pad(c.api.length ? f1(median(c.api.map((x) => x.ms))) : '-', 9)} ${pad(mm(w.api.map((x) => x.ms)), 18)}`,
    );
  }
  const y1 = [...h.cold['1y'].page, ...h.warm['1y'].page].map((x) => x.frame);
  log(`  target one year < 1000 ms: ${y1.length && Math.max(...y1) < 1000 ? 'met' : 'NOT met'} (slowest 1 year click ${f1(Math.max(...y1))} ms); runtime start ${f1(median(h.runtimeStartMs))} ms, page load ${f1(median(h.pageLoadMs))} ms (medians)`);
  if (load) {
    const l = load;
    log('');
    log(`Live latency, publish -> page: ${l.devices} devices at 1/s (${f1(l.achievedRate)}/s sent, the runtime took in ${f1(l.ingestRate)}/s, ${l.rejects} rejects) over ${f1(l.seconds)} s`);
    log(`  runtime CPU ${f1(l.runtimeCpuPct)}% of one core, RSS ${f1(l.runtimeRssMB.start)} -> max ${f1(l.runtimeRssMB.max)} MB; machine CPU ${f1(l.machineCpuPct)}% of ${cpus.length} cores (runtime, Chromium, this script ${f1(l.benchCpuPct)}%, others)`);
    log(`  load average ${l.loadavgStart.map((x) => x.toFixed(2)).join(' ')} at start, ${l.loadavgEnd.map((x) => x.toFixed(2)).join(' ')} at end; page clock offset ${l.clock.startOffset.toFixed(2)} -> ${l.clock.endOffset.toFixed(2)} ms (round trip ${l.clock.rtt.toFixed(2)} ms)`);
    log(`  ${device}: ${l.published} readings published in the window, ${l.framesArrived} arrived at the page, ${l.shown} shown on the chart${l.countMismatches ? `, ${l.countMismatches} data-live steps not matching the frames` : ''}`);
    log(`  ${'ms'.padEnd(28)} ${'count'.padStart(6)} ${'p50'.padStart(7)} ${'p90'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(7)}`);
    for (const [name, d] of [
      ['socket frame at the page', l.socket],
      ['in the DOM (data-live)', l.dom],
      ['next animation frame', l.frame],
    ] as const) {
      log(`  ${name.padEnd(28)} ${pad(String(d.count), 6)} ${pad(f1(d.p50), 7)} ${pad(f1(d.p90), 7)} ${pad(f1(d.p99), 7)} ${pad(f1(d.max), 7)}`);
    }
    if (l.probe) {
      const p = l.probe;
      log(`  every reading of every device, publish -> the runtime's live function (the page adds the socket frame and drawing): ${p.count} readings over ${f1(p.seconds)} s: p50 ${p.p50}, p90 ${p.p90}, p99 ${p.p99}, p99.9 ${p.p999}, max ${p.max} ms (1 ms steps)`);
    }
    log(`  median in the DOM: ${f1(l.trend.firstQuarter)} ms in the first quarter of the window, ${f1(l.trend.lastQuarter)} ms in the last`);
    const slowest = [...l.timeline].sort((a, b) => b[1] - a[1]).slice(0, 3);
    log(`  slowest in the DOM: ${slowest.map(([at, ms]) => `${f1(ms)} ms (published ${f1(at / 1000)} s into the window)`).join(', ')}`);
    const pg = l.page;
    log(`  the page: ${pg.longTasks} main-thread tasks over 50 ms (${f1(pg.longTaskMs)} ms in all, longest ${f1(pg.longestTaskMs)} ms); socket ${f1(pg.framesPerSecond)} frames/s, ${f1(pg.kbPerSecond)} KB/s; ${pg.slowWithLongTask} of the ${pg.slowSamples} samples over 50 ms overlapped a long task`);
    log(`  the socket by event (KB/s, frames/s): ${pg.byEvent.slice(0, 8).map((e) => `${e.event} ${f1(e.kbPerSecond)} / ${f1(e.framesPerSecond)}`).join('; ')}`);
    log(`  the window started at ${l.windowStart} (runtime started ${l.runtimeStartedAt ?? '?'}; rollups close at each full minute, state saves every 60 s from the start)`);
    log(`  target p99 < 50 ms (in the DOM): ${l.dom.p99 < 50 ? 'met' : 'NOT met'}${l.dom.count < 100 ? ` (p99 of ${l.dom.count} samples is about the largest)` : ''}`);
  }
  log('');
  log(`machine: ${cpus.length} cpu(s); load average at end ${loadavg()}; ${seconds.toFixed(0)} s in all`);
  const result = { at: new Date().toISOString(), args, machine: { cpus: cpus.length, model: cpus[0]?.model ?? '', node: process.version, loadavgEnd: os.loadavg() }, seconds, written, history: h, load: load ?? null };
  fs.mkdirSync(path.dirname(OUT_FILE), { recursive: true });
  fs.writeFileSync(OUT_FILE, `${JSON.stringify(result, null, 2)}\n`);
  log(`written ${path.relative(ROOT, OUT_FILE)} and ${path.relative(ROOT, SCREENSHOT)}`);
}

main().then(
  () => {
    cleanupAll();
    process.exit(process.exitCode ?? 0);
  },
  (e: unknown) => {
    console.error(`dashboard bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    cleanupAll();
    process.exit(1);
  },
);
