/**
 * Real services for tests: free loopback ports, mosquitto, and the Thingwire
 * runtime itself, started as child processes and stopped after. A missing
 * binary fails the test with the command that installs it; nothing is skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { RUNTIME_NODE_FLAGS } from '../../runtime/node-flags';

/** The repository root, from test/support/ or from its compiled copy in dist/test/support/. */
export const ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..');
export const OUTPUT_DIR = path.join(ROOT, 'test-output');

/** Fails (never skips) when a binary the test needs is missing. */
export function requireBinary(bin: string, debianPackage: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  const found = r.stdout.trim();
  if (r.status !== 0 || found === '') {
    throw new Error(`${bin} is not installed; this test needs it: apt-get install -y ${debianPackage} (bash .ci/run installs it)`);
  }
  return found;
}

/**
 * Ports for the test servers: below Linux's default ephemeral range (32768-60999), from which the kernel also picks
 * the source port of every outgoing connection the tests open. A port the kernel handed out with listen(0) lies in that
 * range, and between being closed here and bound by the server it was given to, an outgoing connection could take it:
 * influxd once failed to start with "bind: address already in use" in CI (2026-12-05).
 */
const PORT_RANGE = { from: 20_000, to: 32_000 };

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => {
      const got = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(got));
    });
  });
}

/** A port that was free a moment ago on 127.0.0.1 (a random one of PORT_RANGE; the kernel's choice after 50 tries). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await tryListen(PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from)));
    if (p !== undefined) return p;
  }
  const p = await tryListen(0);
  if (p === undefined) throw new Error('no free port on 127.0.0.1');
  return p;
}

/** Whether a server's output says its port was taken (it is then started again on other ports). */
export function portTaken(output: string): boolean {
  return /address already in use|EADDRINUSE/i.test(output);
}

/**
 * A new temp dir. Under jest it is made in the run's own directory (TW_TEST_TMPDIR, see global-setup.js), which
 * is removed when the run ends: the runtimes' data dirs alone were ~400 MB a run, left in /tmp. The benchmark scripts
 * remove theirs themselves.
 */
export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(process.env.TW_TEST_TMPDIR ?? os.tmpdir(), `thingwire-${prefix}-`));
}

/** Waits until something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a truthy value, or fails with `what`. */
type Falsy = undefined | null | false | 0 | '';
export async function waitFor<T>(what: string, fn: () => T | Falsy | Promise<T | Falsy>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

export interface Service {
  port: number;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function track(proc: ChildProcess): { output: () => string } {
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { output: () => out };
}

function stopProc(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    proc.kill(signal);
  });
}

export interface MosquittoOptions {
  /** Keep sessions and queued messages on disk (in `dir`) across a restart; saved on stop and every 5 s. */
  persistence?: boolean;
  /** Reuse a directory (and its persistence file); a fresh temp dir by default. */
  dir?: string;
  /** Reuse a port (a restart); a free one by default. */
  port?: number;
  /**
   * Settings at-least-once ingest needs (see the README's reliability section): no cap on QoS 1
   * messages queued for a client while it is away or slow (mosquitto's default drops past 1,000),
   * and 3.1.1 clients may have this many unacknowledged messages (default 20). Default true.
   */
  forIngest?: boolean;
}

export interface Mosquitto extends Service {
  dir: string;
  /** SIGTERM (persistence saved) or SIGKILL, then start again on the same port and dir. */
  restart(signal?: NodeJS.Signals): Promise<Mosquitto>;
}

/** mosquitto on a loopback port, anonymous; no persistence unless asked. */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const bin = requireBinary('mosquitto', 'mosquitto');
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? tmpDir('mosquitto');
  const conf = path.join(dir, 'mosquitto.conf');
  const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true'];
  if (opts.persistence) {
    lines.push('persistence true', `persistence_location ${dir}/`, 'autosave_interval 5');
    // Started as root, mosquitto drops to its own user: it must be able to write its database here.
    fs.chmodSync(dir, 0o777);
  }
  else lines.push('persistence false');
  if (opts.forIngest ?? true) lines.push('max_queued_messages 0', 'max_queued_bytes 0', 'max_inflight_messages 10000');
  fs.writeFileSync(conf, lines.join('\n') + '\n');
  const proc = spawn(bin, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const t = track(proc);
  await waitForPort(port);
  const self: Mosquitto = {
    port,
    proc,
    dir,
    output: t.output,
    stop: () => stopProc(proc),
    restart: async (signal = 'SIGTERM') => {
      await stopProc(proc, signal);
      return startMosquitto({ ...opts, dir, port });
    },
  };
  return self;
}

export interface Runtime extends Service {
  url: string;
  mqttPort: number;
  dataDir: string;
}

/** env without one variable (the runtime refuses THINGWIRE_* names it does not know). */
function withoutKey(env: NodeJS.ProcessEnv, key: string): NodeJS.ProcessEnv {
  const out = { ...env };
  delete out[key];
  return out;
}

/**
 * Starts the built runtime (dist/runtime/main.js; `npm test` builds first) on
 * free ports and resolves when it has printed its ready line and its flows run. THINGWIRE_MQTT_ANONYMOUS=1
 * by default (most tests publish as arbitrary devices and are about other things);
 * pass THINGWIRE_MQTT_ANONYMOUS: '0' to test the broker's device authentication. `waitForFlows: false`: resolves
 * at the ready line (the broker listens; the flows may not have started yet).
 */
export async function startRuntime(env: Record<string, string> = {}, dataDir = tmpDir('runtime'), extraNodeArgs: string[] = [], opts: { waitForFlows?: boolean } = {}): Promise<Runtime> {
  const main = path.join(ROOT, 'dist', 'runtime', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run npm run build first (npm test does)`);
  // THINGWIRE_RUNTIME_NODE_ARGS: extra node options for the runtime only (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p",
  // which NODE_OPTIONS refuses), so any test or bench script can profile the runtime it starts.
  const nodeArgs = [...extraNodeArgs, ...(process.env.THINGWIRE_RUNTIME_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '')];
  const proc = spawn(process.execPath, [...RUNTIME_NODE_FLAGS, ...nodeArgs, main], {
    cwd: ROOT,
    env: { ...withoutKey(process.env, 'THINGWIRE_RUNTIME_NODE_ARGS'), PORT: '0', MQTT_PORT: '0', DATA_DIR: dataDir, THINGWIRE_LOG_LEVEL: 'warn', THINGWIRE_MQTT_ANONYMOUS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const t = track(proc);
  const ready = await waitFor(
    'the runtime to print its ready line',
    () => {
      if (proc.exitCode !== null) throw new Error(`runtime exited with ${proc.exitCode}:\n${t.output()}`);
      return /\[thingwire\] ready editor=(\S+)\/ .* mqtt=mqtt:\/\/[^:]+:(\d+)/.exec(t.output());
    },
    30_000,
  );
  if (!ready) throw new Error("unreachable");
  const url = ready[1];
  const self = { port: Number(new URL(url).port), url, mqttPort: Number(ready[2]), dataDir, proc, output: t.output, stop: () => stopProc(proc) };
  if (opts.waitForFlows === false) return self;
  // The ready line comes before Node-RED has started the flows: until then their HTTP routes answer Express's 404
  // and their MQTT subscriptions are not there. Wait for health to say the flows run.
  await waitFor(
    'the runtime to start its flows',
    async () => {
      if (proc.exitCode !== null) throw new Error(`runtime exited with ${proc.exitCode}:\n${t.output()}`);
      const res = await fetch(`${url}/api/v1/health`).catch(() => undefined);
      if (!res) return undefined;
      const body = (await res.json().catch(() => ({}))) as { components?: { flows?: { state?: string } } };
      return body.components?.flows?.state === 'up' ? true : undefined;
    },
    30_000,
  );
  return self;
}
