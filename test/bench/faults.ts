/**
 * The long forms of issue 11's fault tests (the short ones run in `npm test`: test/integration/ingest-faults,
 * store-faults, load-faults). A standalone script:
 *
 *   npm run build && node dist/test/bench/faults.js [--store-down S] [--kill N] [--broker-restart N] [--soak S]
 *                                                   [--rate R] [--devices N] [--embedded]
 *
 * Every scenario runs the built runtime with the shipped flows against an external mosquitto (persistence on,
 * no queue cap: the README's settings), or with --embedded against its own embedded broker (the default runtime:
 * a --kill then kills the broker too, and its publish log must bring back what it had acknowledged; not with
 * --broker-restart), so its ingest is the starter's at-least-once thingwire-mqtt-in, and a
 * load generator publishing numbered QoS 1 readings (--devices, default 200, at --rate readings/s, default 500).
 * At the end every reading is looked for in the store through GET /api/v1/series (missing / duplicated /
 * unexpected, per device), and the runtime's memory (RSS, from /proc) is reported as sampled every 5 s.
 *
 * --store-down S   the store is InfluxDB 1.x (influxd on loopback); it is stopped 30 s into the load for S seconds
 *                  (default 300), then started again; the load runs on for 60 s after. Reported: RSS before, at
 *                  the end of the outage and after; the store's spool; readings lost (must be 0).
 * --kill N         the runtime is SIGKILLed N times under load (every 20 s) and started again on the same DATA_DIR;
 *                  besides the readings, the window node's 1m rollup counts are checked against them (as for
 *                  --broker-restart).
 * --broker-restart N   mosquitto is stopped (2 s down) and started again on its persistence N times (every 20 s).
 * --soak S         S seconds (default 3600) at the rate, embedded store; RSS and the V8 heap (used, from
 *                  /api/v1/metrics) every 5 s; the growth is the slope of a least-squares line through the samples
 *                  after --warmup seconds (default 600, at most half the run), in MB per hour, for every sample
 *                  and for the lowest sample of each 5 minutes (the floor after garbage collection). The target is
 *                  under 1 MB/h. The starter's window node keeps every closed window for its 1 h correction horizon,
 *                  so its state fills for the first hour of a run: `--soak 7200 --warmup 3600` measures the second.
 *                  Heap in use sampled this way includes garbage the collector has not reached yet (it moves by tens
 *                  of MB); for the live heap, --heap-snapshots 3900,5700 has the runtime write V8 heap snapshots
 *                  (each after a full collection) at those seconds, to compare with dist/test/bench/heap-diff.js.
 *
 * Results are printed and written to test-output/faults-<scenario>.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoadGenerator, checkRollupCounts, expectedOf, failedOf, readSeqsViaApi, reportLine, tally, type CheckReport, type PhaseResult, type RollupCheck } from '../../runtime/loadgen';
import { ROOT, sleep, startMosquitto, startRuntime, tmpDir, waitFor, type Mosquitto, type Runtime } from '../support/services';
import { startInfluxV1, type InfluxV1Service } from '../support/tsdb';
import { guardProcess, onCleanup, rssMB } from './proc';

interface Args {
  warmup: number;
  storeDown?: number;
  kill?: number;
  brokerRestart?: number;
  soak?: number;
  /** Seconds into the soak at which the runtime writes a V8 heap snapshot. */
  heapSnapshots?: number[];
  rate: number;
  devices: number;
  /** The runtime's embedded broker instead of mosquitto. */
  embedded: boolean;
}

const USAGE = 'usage: node dist/test/bench/faults.js [--store-down S] [--kill N] [--broker-restart N] [--soak S] [--warmup S] [--heap-snapshots S,S,...] [--rate R] [--devices N] [--embedded]';

function parseArgs(argv: string[]): Args {
  const a: Args = { rate: 500, devices: 200, warmup: 600, embedded: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const num = (dflt?: number): number => {
      const v = argv[i + 1];
      if (v !== undefined && /^\d+$/.test(v)) {
        i++;
        return Number(v);
      }
      if (dflt === undefined) throw new Error(`${k} needs a number\n${USAGE}`);
      return dflt;
    };
    if (k === '--store-down') a.storeDown = num(300);
    else if (k === '--kill') a.kill = num(3);
    else if (k === '--broker-restart') a.brokerRestart = num(3);
    else if (k === '--soak') a.soak = num(3600);
    else if (k === '--warmup') a.warmup = num();
    else if (k === '--heap-snapshots') {
      const v = argv[++i] ?? '';
      if (!/^\d+(,\d+)*$/.test(v)) throw new Error(`--heap-snapshots needs seconds into the soak, such as 2700,3900,5700\n${USAGE}`);
      a.heapSnapshots = v.split(',').map(Number).sort((x, y) => x - y);
    }
    else if (k === '--rate') a.rate = num();
    else if (k === '--devices') a.devices = num();
    else if (k === '--embedded') a.embedded = true;
    else if (k === '--help' || k === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${k}\n${USAGE}`);
  }
  if (a.storeDown === undefined && a.kill === undefined && a.brokerRestart === undefined && a.soak === undefined) throw new Error(`choose a scenario\n${USAGE}`);
  if (a.embedded && a.brokerRestart !== undefined) throw new Error(`--broker-restart restarts mosquitto: not with --embedded\n${USAGE}`);
  if (a.heapSnapshots !== undefined && (a.soak === undefined || a.heapSnapshots.some((t) => t >= a.soak!))) throw new Error(`--heap-snapshots are times within --soak\n${USAGE}`);
  return a;
}

/** RSS samples of the runtime process(es) every 5 s, and its V8 heap in use: [seconds since start, MB]. */
class Sampler {
  readonly samples: Array<[number, number]> = [];
  readonly heap: Array<[number, number]> = [];
  private readonly t0 = Date.now();
  private timer: NodeJS.Timeout;
  constructor(
    private readonly pid: () => number | undefined,
    private readonly url: () => string,
  ) {
    this.timer = setInterval(() => this.take(), 5000);
    this.take();
  }
  take(): number {
    const p = this.pid();
    const mb = p === undefined ? NaN : rssMB(p);
    const t = (Date.now() - this.t0) / 1000;
    if (Number.isFinite(mb)) this.samples.push([t, mb]);
    fetch(`${this.url()}/api/v1/metrics`, { signal: AbortSignal.timeout(4000) })
      .then((r) => r.text())
      .then((m) => {
        const h = /^thingwire_nodejs_heap_size_used_bytes (\S+)$/m.exec(m);
        if (h) this.heap.push([t, Number(h[1]) / 1e6]);
      })
      .catch(() => undefined);
    return mb;
  }
  stop(): void {
    clearInterval(this.timer);
  }
  max(fromS = 0, toS = Infinity): number {
    return Math.max(...this.samples.filter(([t]) => t >= fromS && t <= toS).map(([, m]) => m));
  }
}

/** Least-squares slope of MB over seconds, as MB per hour. */
function slopePerHour(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return (num / den) * 3600;
}

async function ingestReady(rt: Runtime, gen: LoadGenerator): Promise<void> {
  // The runtime's session must exist before the load starts (QoS 1 messages are queued for a known session only).
  const probe = gen.deviceIds()[0];
  await waitFor(
    'the ingest to take a first reading',
    async () => {
      await gen.run({ rate: 50, durationMs: 200, batch: 1 });
      return (await readSeqsViaApi(rt.url, [probe], Date.now() - 600_000, Date.now() + 60_000)).length > 0;
    },
    60_000,
    500,
  );
}

async function check(rt: Runtime, gen: LoadGenerator, start: number, timeoutMs: number): Promise<CheckReport> {
  const expected = expectedOf(gen);
  let report: CheckReport | undefined;
  await waitFor(
    'every reading in the store',
    async () => {
      report = tally(expected, await readSeqsViaApi(rt.url, [...expected.keys()], start - 600_000, Date.now() + 60_000), failedOf(gen));
      return report.missing === 0;
    },
    timeoutMs,
    2000,
  ).catch(() => undefined);
  return report as CheckReport;
}

/**
 * The window node's 1m rollups against what was published: a reading per device two minutes ahead closes the load's
 * windows; then the stored counts of seq per device must be each device's readings (none lost to a crash, no
 * redelivery counted twice).
 */
async function checkRollups(ctx: Ctx, gen: LoadGenerator, start: number, timeoutMs: number): Promise<RollupCheck> {
  const failed = failedOf(gen);
  const expected = new Map([...expectedOf(gen)].map(([d, last]) => [d, last - (failed.get(d)?.length ?? 0)] as [string, number]));
  return checkRollupCounts(ctx.mqttUrl, ctx.rt.url, expected, start, { timeoutMs, everyMs: 2000, settleMs: 2000 });
}

function save(name: string, result: object): void {
  const file = path.join(ROOT, 'test-output', `faults-${name}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(result, null, 2));
  console.log(`written ${path.relative(ROOT, file)}`);
}

async function scenario(name: string, args: Args, opts: { influx?: boolean; seconds: number; rollups?: boolean; during: (ctx: Ctx) => Promise<void> }): Promise<void> {
  const broker = args.embedded ? undefined : await startMosquitto({ persistence: true });
  const influx = opts.influx ? await startInfluxV1() : undefined;
  const env: Record<string, string> = broker ? { MQTT_URL: `mqtt://127.0.0.1:${broker.port}` } : {};
  if (influx) Object.assign(env, { INFLUX_URL: influx.url, INFLUX_VERSION: '1', INFLUX_DB: 'thingwire' });
  const dataDir = tmpDir(`faults-${name}`);
  const rt = await startRuntime(env, dataDir);
  // The embedded broker comes back on the same port after a restart.
  if (!broker) env.MQTT_PORT = String(rt.mqttPort);
  const mqttUrl = `mqtt://127.0.0.1:${broker ? broker.port : rt.mqttPort}`;
  const ctx: Ctx = { broker, influx, env, dataDir, rt, mqttUrl, log: (s) => console.log(`  [${((Date.now() - t0) / 1000).toFixed(0)} s] ${s}`) };
  // Killed on an early exit (an exception, Ctrl-C, the watchdog); stopped the normal way at the end.
  const forget = onCleanup(() => {
    for (const p of [ctx.rt.proc, ctx.broker?.proc, ctx.influx?.proc]) p?.kill('SIGKILL');
  });
  const sampler = new Sampler(
    () => ctx.rt.proc.pid,
    () => ctx.rt.url,
  );
  const gen = new LoadGenerator({ url: mqttUrl, devices: args.devices, prefix: 'devices', qos: 1, connections: 4, metrics: 3, padBytes: 0, maxInFlight: 2000, reconnect: true });
  await gen.connect();
  await ingestReady(ctx.rt, gen);
  const t0 = Date.now();
  console.log(`${name}: ${args.devices} devices, ${args.rate} readings/s for ${opts.seconds} s, QoS 1, ${broker ? 'external mosquitto with persistence' : "the runtime's embedded broker"}${influx ? ', InfluxDB 1.x store' : ', embedded store'}`);
  let lastReport = Date.now();
  const phase: Promise<PhaseResult> = gen.run({
    rate: args.rate,
    durationMs: opts.seconds * 1000,
    batch: 1,
    onProgress: (p) => {
      if (Date.now() - lastReport >= 60_000) {
        lastReport = Date.now();
        ctx.log(`${p.readings} readings published, runtime RSS ${sampler.take().toFixed(0)} MB`);
      }
    },
  });
  await opts.during(ctx);
  const res = await phase;
  await gen.close();
  ctx.log(`load done: ${res.readings} readings published (${res.failed} failed); checking the store...`);
  const report = await check(ctx.rt, gen, t0, 600_000);
  sampler.stop();
  console.log(`  ${reportLine(report).slice(0, 400)}`);
  const rss = sampler.samples;
  const result: Record<string, unknown> = { scenario: name, args, published: res.readings, failed: res.failed, check: { ...report, perDevice: undefined }, rss };
  let rollupsOk = true;
  if (opts.rollups) {
    const r = await checkRollups(ctx, gen, t0, 120_000);
    rollupsOk = r.mismatched.length === 0 && r.counted === r.published;
    console.log(`  rollups (1m counts of seq): ${r.devices} devices, ${r.counted} readings counted of ${r.published}, ${r.mismatched.length} devices off${r.mismatched.length > 0 ? ` (first: ${r.mismatched.slice(0, 5).map(([d, e, c]) => `${d} ${c}/${e}`).join(', ')})` : ''}`);
    result.rollups = { ...r, mismatched: r.mismatched.slice(0, 100) };
  }
  if (name === 'soak') {
    const warm = Math.min(args.warmup, opts.seconds / 2);
    const after = (pts: Array<[number, number]>): Array<[number, number]> => pts.filter(([t]) => t >= warm && t <= opts.seconds);
    const floors = (pts: Array<[number, number]>): Array<[number, number]> => {
      const by = new Map<number, [number, number]>();
      for (const p of pts) {
        const k = Math.floor(p[0] / 300);
        const cur = by.get(k);
        if (cur === undefined || p[1] < cur[1]) by.set(k, p);
      }
      return [...by.values()];
    };
    const r = after(rss);
    const h = after(sampler.heap);
    result.warmupS = warm;
    result.heap = sampler.heap;
    result.growthMBPerHour = { rss: slopePerHour(r), rssFloor: slopePerHour(floors(r)), heap: slopePerHour(h), heapFloor: slopePerHour(floors(h)) };
    const g = result.growthMBPerHour as Record<string, number>;
    console.log(`  after ${warm} s: RSS ${r[0]?.[1].toFixed(0)} -> ${r[r.length - 1]?.[1].toFixed(0)} MB, heap ${h[0]?.[1].toFixed(0)} -> ${h[h.length - 1]?.[1].toFixed(0)} MB`);
    console.log(`  growth (least squares, MB/h; target < 1): RSS ${g.rss.toFixed(1)} (5-min floors ${g.rssFloor.toFixed(1)}), heap ${g.heap.toFixed(1)} (floors ${g.heapFloor.toFixed(1)})`);
  } else {
    console.log(`  RSS max ${sampler.max().toFixed(0)} MB (samples every 5 s)`);
  }
  Object.assign(result, ctx.extra ?? {});
  save(name, result);
  await ctx.rt.stop();
  await influx?.stop();
  await ctx.broker?.stop();
  forget();
  if (report.missing !== 0 || !rollupsOk) process.exitCode = 1;
}

interface Ctx {
  /** mosquitto; undefined with --embedded. */
  broker: Mosquitto | undefined;
  influx?: InfluxV1Service;
  env: Record<string, string>;
  dataDir: string;
  rt: Runtime;
  mqttUrl: string;
  log: (s: string) => void;
  extra?: Record<string, unknown>;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // The long loads, plus an hour for the short scenarios, start-ups and checking the store.
  guardProcess('faults', ((args.soak ?? 0) + (args.storeDown ?? 0) + 3600) * 1000);
  if (args.storeDown !== undefined) {
    const down = args.storeDown;
    await scenario('store-down', args, {
      influx: true,
      seconds: 30 + down + 60,
      during: async (ctx) => {
        await sleep(30_000);
        const before = rssMB(ctx.rt.proc.pid as number);
        await ctx.influx?.stop();
        ctx.log(`influxd stopped (RSS ${before.toFixed(0)} MB)`);
        let maxSpool = 0;
        const end = Date.now() + down * 1000;
        while (Date.now() < end) {
          await sleep(5000);
          const m = await fetch(`${ctx.rt.url}/api/v1/metrics`).then((r) => r.text());
          const spool = /thingwire_store_spooled_bytes\{store="tw.store"\} (\d+)/.exec(m);
          if (spool) maxSpool = Math.max(maxSpool, Number(spool[1]));
        }
        const during = rssMB(ctx.rt.proc.pid as number);
        await ctx.influx?.restart();
        ctx.log(`influxd started again (RSS ${during.toFixed(0)} MB, spool peaked at ${(maxSpool / 1e6).toFixed(1)} MB)`);
        ctx.extra = { rssBeforeOutageMB: before, rssEndOfOutageMB: during, spoolPeakBytes: maxSpool };
      },
    });
  }
  if (args.kill !== undefined) {
    const n = args.kill;
    await scenario('kill', args, {
      seconds: 20 * (n + 1),
      rollups: true,
      during: async (ctx) => {
        for (let i = 0; i < n; i++) {
          await sleep(20_000);
          const p = ctx.rt.proc;
          const exited = new Promise((r) => p.once('exit', r));
          p.kill('SIGKILL');
          await exited;
          ctx.log(`runtime SIGKILLed (${i + 1}/${n})`);
          ctx.rt = await startRuntime(ctx.env, ctx.dataDir);
          ctx.log('runtime started again');
        }
      },
    });
  }
  if (args.brokerRestart !== undefined) {
    const n = args.brokerRestart;
    await scenario('broker-restart', args, {
      seconds: 20 * (n + 1),
      rollups: true,
      during: async (ctx) => {
        for (let i = 0; i < n; i++) {
          await sleep(20_000);
          if (!ctx.broker) throw new Error('--broker-restart needs mosquitto');
          const { dir, port } = ctx.broker;
          await ctx.broker.stop();
          await sleep(2000);
          ctx.broker = await startMosquitto({ persistence: true, dir, port });
          ctx.log(`mosquitto restarted (${i + 1}/${n})`);
        }
      },
    });
  }
  if (args.soak !== undefined) {
    const s = args.soak;
    const times = args.heapSnapshots ?? [];
    let snapDir: string | undefined;
    if (times.length > 0) {
      // The runtime writes a snapshot (after a full GC) on SIGUSR2; they are ~150 MB each and kept for
      // dist/test/bench/heap-diff.js, so they go to a directory of their own that is not removed.
      snapDir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-heap-'));
      process.env.THINGWIRE_RUNTIME_NODE_ARGS = `${process.env.THINGWIRE_RUNTIME_NODE_ARGS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapDir}`.trim();
    }
    await scenario('soak', args, {
      seconds: s,
      during: async (ctx) => {
        const start = Date.now();
        for (const t of times) {
          await sleep(Math.max(0, start + t * 1000 - Date.now()));
          ctx.rt.proc.kill('SIGUSR2');
          ctx.log(`heap snapshot asked for (${t} s into the soak), written to ${snapDir}`);
        }
      },
    });
    if (snapDir !== undefined) console.log(`heap snapshots: ${fs.readdirSync(snapDir).map((f) => path.join(snapDir!, f)).join(' ')}\ncompare two with: node dist/test/bench/heap-diff.js A.heapsnapshot B.heapsnapshot`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
