/**
 * Thingwire device simulator: a fleet of simulated devices publishing JSON
 * telemetry over MQTT, for demos, load and end-to-end checks.
 *
 *   npm run simulate -- --devices 50 --interval 1000 --duration 60
 *
 * Each device publishes `{ ts, temperature, humidity, vibration }` (see
 * sim-model.ts) to `{prefix}/{device}/telemetry` once per interval, the devices
 * spread evenly across the interval. With THINGWIRE_PROVISIONING_KEY set, each
 * device has its own MQTT connection, user name = its device id and password
 * `provision:<key>`, so the runtime's broker registers it on first contact and
 * lets it publish under its own topics only; without it, one anonymous
 * connection carries every device (the runtime's broker lets that publish only
 * with THINGWIRE_MQTT_ANONYMOUS=1). Exit codes: 0 done or stopped by SIGINT/SIGTERM,
 * 1 broker unreachable or lost, 2 bad arguments.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { createFleet, deviceId, reading, type SimFleet } from './sim-model';

export const DEFAULTS = {
  devices: 10,
  intervalMs: 1000,
  prefix: 'devices',
  qos: 0 as 0 | 1,
  seed: 1,
  mqttPort: 1883,
} as const;

export const LIMITS = {
  maxDevices: 10_000,
  minIntervalMs: 10,
  maxIntervalMs: 86_400_000,
  maxDurationS: 31_536_000,
  maxSeed: 0xffff_ffff,
} as const;

/** Time allowed for the TCP connection and the broker's CONNACK. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** After the first connection, how long the broker may stay unreachable before the simulator gives up. */
export const RECONNECT_GIVE_UP_MS = 30_000;
/** Time allowed for a graceful disconnect (QoS 1 acknowledgements) before the connection is dropped. */
export const END_TIMEOUT_MS = 5_000;
export const SUMMARY_EVERY_MS = 10_000;

export interface SimOptions {
  devices: number;
  /** How often each device publishes, ms. */
  intervalMs: number;
  /** How long to publish, ms; undefined = until SIGINT/SIGTERM. */
  durationMs: number | undefined;
  /** Broker URL, mqtt:// or mqtts://. */
  url: string;
  /** First topic segment: devices publish on `{prefix}/{device}/telemetry`. */
  prefix: string;
  qos: 0 | 1;
  seed: number;
  /** THINGWIRE_PROVISIONING_KEY: one connection per device, logging in with password `provision:<key>`. */
  provisioningKey?: string;
}

export type ParsedArgs = { help: true } | { help: false; options: SimOptions };

/** A bad command line or environment; the message names the flag (or variable). Exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `Thingwire device simulator: simulated devices publish JSON telemetry over MQTT.

Usage: npm run simulate -- [options]
       node dist/runtime/simulate.js [options]

Options:
  --devices N       number of devices, 1..${LIMITS.maxDevices} (default ${DEFAULTS.devices}); ids sim-001, sim-002, ...
  --interval MS     how often each device publishes, ${LIMITS.minIntervalMs}..${LIMITS.maxIntervalMs} ms (default ${DEFAULTS.intervalMs});
                    the devices are spread evenly across the interval
  --duration S      seconds to publish, then exit 0 (default and 0: until SIGINT/SIGTERM)
  --url URL         broker, mqtt://host:port or mqtts://host:port
                    (default: $MQTT_URL, else mqtt://127.0.0.1:$MQTT_PORT, MQTT_PORT default ${DEFAULTS.mqttPort})
  --prefix P        first topic segment (default ${DEFAULTS.prefix}): topics are P/{device}/telemetry
  --qos 0|1         MQTT QoS of the publishes (default ${DEFAULTS.qos})
  --seed N          integer 0..${LIMITS.maxSeed} (default ${DEFAULTS.seed}); the same seed gives the same devices
  --help, -h        this text

Environment:
  THINGWIRE_PROVISIONING_KEY   (default: the key npm start keeps in $DATA_DIR/provisioning-key, DATA_DIR
                    default ./data) when there is one, each device connects on its own with user name = its device id
                    and password provision:<key>: the runtime's broker (started with the same key)
                    registers unknown devices and lets each publish under devices/{its id}/ only
                    (use the default --prefix). When not set, one anonymous connection carries every
                    device: the runtime's broker accepts that only with THINGWIRE_MQTT_ANONYMOUS=1.
  MQTT_URL, MQTT_PORT   the default broker (see --url)

Payload: {"ts": <ms epoch>, "temperature": <°C>, "humidity": <%>, "vibration": <mm/s>}
A summary line is printed every ${SUMMARY_EVERY_MS / 1000} s and at the end.
Exit codes: 0 done or stopped, 1 broker unreachable, 2 bad arguments.
`;

const FLAGS = ['--devices', '--interval', '--duration', '--url', '--prefix', '--qos', '--seed'] as const;
type Flag = (typeof FLAGS)[number];

function parseInteger(flag: string, raw: string, min: number, max: number, what: string): number {
  if (!/^\d+$/.test(raw)) throw new UsageError(`${flag} must be ${what} (an integer ${min}..${max}), got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`${flag} must be ${what} (an integer ${min}..${max}), got ${raw}`);
  return n;
}

/** Checks a broker URL; `source` names where it came from (a flag or an environment variable) for the message. */
export function parseBrokerUrl(raw: string, source: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`${source} must be a broker URL like mqtt://host:1883, got ${JSON.stringify(raw)}`);
  }
  if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:') {
    throw new UsageError(`${source} must use mqtt:// or mqtts://, got ${JSON.stringify(raw)}`);
  }
  if (!u.hostname) throw new UsageError(`${source} has no host: ${JSON.stringify(raw)}`);
  if (u.port === '0') throw new UsageError(`${source} has port 0; give the broker's port (1..65535)`);
  if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '') {
    throw new UsageError(`${source} must be just mqtt://host:port (no path, query or fragment), got ${JSON.stringify(raw)}`);
  }
  return raw;
}

/** The default broker URL from the environment: MQTT_URL, else mqtt://127.0.0.1:$MQTT_PORT (default 1883). */
export function defaultBrokerUrl(env: NodeJS.ProcessEnv): string {
  if (env.MQTT_URL !== undefined && env.MQTT_URL.trim() !== '') return parseBrokerUrl(env.MQTT_URL.trim(), 'MQTT_URL (environment)');
  let port: number = DEFAULTS.mqttPort;
  if (env.MQTT_PORT !== undefined && env.MQTT_PORT.trim() !== '') {
    port = parseInteger('MQTT_PORT (environment)', env.MQTT_PORT.trim(), 1, 65535, 'a port number');
  }
  return `mqtt://127.0.0.1:${port}`;
}

/**
 * Parses the simulator's arguments (without `node` and the script). Accepts
 * `--flag value` and `--flag=value`; throws a UsageError naming the flag on
 * anything unknown, repeated, missing or out of range.
 */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParsedArgs {
  const given = new Map<Flag, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return { help: true };
    if (!arg.startsWith('-')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)} (options are flags like --devices 10; see --help)`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    if (!(FLAGS as readonly string[]).includes(name)) {
      throw new UsageError(`unknown flag ${name} (known: ${FLAGS.join(', ')}, --help)`);
    }
    const flag = name as Flag;
    if (given.has(flag)) throw new UsageError(`${flag} is given more than once`);
    let value: string;
    if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`${flag} needs a value`);
      value = next;
      i++;
    }
    if (value.trim() === '') throw new UsageError(`${flag} needs a value`);
    given.set(flag, value.trim());
  }

  const devices = given.has('--devices')
    ? parseInteger('--devices', given.get('--devices') as string, 1, LIMITS.maxDevices, 'a number of devices')
    : DEFAULTS.devices;
  const intervalMs = given.has('--interval')
    ? parseInteger('--interval', given.get('--interval') as string, LIMITS.minIntervalMs, LIMITS.maxIntervalMs, 'an interval in ms')
    : DEFAULTS.intervalMs;

  let durationMs: number | undefined;
  const d = given.get('--duration');
  if (d !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(d)) {
      throw new UsageError(`--duration must be a number of seconds >= 0 (0 = until stopped), got ${JSON.stringify(d)}`);
    }
    const s = Number(d);
    if (s > LIMITS.maxDurationS) throw new UsageError(`--duration must be at most ${LIMITS.maxDurationS} s (a year; 0 = until stopped), got ${d}`);
    durationMs = s === 0 ? undefined : Math.max(1, Math.round(s * 1000));
  }

  const u = given.get('--url');
  const url = u !== undefined ? parseBrokerUrl(u, '--url') : defaultBrokerUrl(env);

  const prefix = given.get('--prefix') ?? DEFAULTS.prefix;
  // One topic segment: the normaliser reads {prefix}/{device}/{leaf}.
  // eslint-disable-next-line no-control-regex
  if (prefix.length > 128 || /[/+#\u0000-\u001f\u007f]/.test(prefix)) {
    throw new UsageError(`--prefix must be one topic segment (no /, +, # or control characters, at most 128 characters), got ${JSON.stringify(prefix)}`);
  }

  let qos: 0 | 1 = DEFAULTS.qos;
  const q = given.get('--qos');
  if (q !== undefined) {
    if (q !== '0' && q !== '1') throw new UsageError(`--qos must be 0 or 1, got ${JSON.stringify(q)}`);
    qos = q === '1' ? 1 : 0;
  }

  const seed = given.has('--seed') ? parseInteger('--seed', given.get('--seed') as string, 0, LIMITS.maxSeed, 'a seed') : DEFAULTS.seed;

  let provisioningKey: string | undefined;
  const pk = env.THINGWIRE_PROVISIONING_KEY;
  if (pk !== undefined && pk !== '') {
    if (/\s/.test(pk)) throw new UsageError('THINGWIRE_PROVISIONING_KEY (environment) must not contain spaces');
    provisioningKey = pk;
    if (prefix !== DEFAULTS.prefix) {
      throw new UsageError(`--prefix must be ${DEFAULTS.prefix} when THINGWIRE_PROVISIONING_KEY is set: the broker lets a device publish under ${DEFAULTS.prefix}/{its id}/ only`);
    }
  }

  return { help: false, options: { devices, intervalMs, durationMs, url, prefix, qos, seed, ...(provisioningKey ? { provisioningKey } : {}) } };
}

/** When, after the start, publish slot n is due: slot n is device n % devices in round floor(n / devices). */
export function slotTime(n: number, devices: number, intervalMs: number): number {
  return (n * intervalMs) / devices;
}

/** How many slots fall in [0, durationMs): what a full run of that length publishes. */
export function slotsIn(durationMs: number, devices: number, intervalMs: number): number {
  return Math.ceil((durationMs * devices) / intervalMs);
}

/** The URL with any password hidden, for log lines. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

export interface Stats {
  published: number;
  errors: number;
  /** Slots not published: broker disconnected, too many unacknowledged publishes, or the process fell behind. */
  dropped: number;
}

/** One summary line: counts and the mean rate since the start. */
export function summaryLine(label: string, elapsedMs: number, s: Stats): string {
  const secs = elapsedMs / 1000;
  const rate = secs > 0 ? s.published / secs : 0;
  return `[simulate] ${label} ${secs.toFixed(1)}s published=${s.published} errors=${s.errors} dropped=${s.dropped} rate=${rate.toFixed(1)}/s`;
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function err(line: string): void {
  process.stderr.write(`[simulate] ${line}\n`);
}

/** setTimeout without Node's 2^31-1 ms limit. */
function longTimeout(fn: () => void, ms: number): { clear(): void } {
  const MAX = 2 ** 31 - 1;
  let t: NodeJS.Timeout;
  const arm = (left: number): void => {
    t = setTimeout(() => (left > MAX ? arm(left - MAX) : fn()), Math.min(left, MAX));
  };
  arm(ms);
  return { clear: () => clearTimeout(t) };
}

/** Connects once; rejects with a clear message when there is no broker or it refuses. */
export function connectOnce(url: string, clientId: string, timeoutMs = CONNECT_TIMEOUT_MS, login?: { username: string; password: string }): Promise<MqttClient> {
  const opts: IClientOptions = {
    clientId,
    ...(login ? { username: login.username, password: login.password } : {}),
    clean: true,
    connectTimeout: timeoutMs,
    // No retrying until the first connection stands; the caller turns reconnects on.
    reconnectPeriod: 0,
    // Publishes while disconnected fail at once instead of piling up in memory.
    queueQoSZero: false,
    keepalive: 30,
  };
  const shown = redactUrl(url);
  return new Promise((resolve, reject) => {
    let client: MqttClient;
    try {
      client = connect(url, opts);
    } catch (e) {
      reject(new Error(`cannot connect to ${shown}: ${(e as Error).message}`));
      return;
    }
    let lastError: Error | undefined;
    let settled = false;
    // Only our own listeners are removed: mqtt.js keeps internal ones on the same events.
    const detach = (): void => {
      clearTimeout(guard);
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      detach();
      client.on('error', () => undefined); // late errors of a client being dropped
      client.end(true);
      reject(new Error(`cannot connect to ${shown}: ${why}`));
    };
    const onConnect = (): void => {
      if (settled) return;
      settled = true;
      detach();
      resolve(client);
    };
    const onError = (e: Error & { code?: string | number }): void => {
      lastError = e;
      if (e.message === 'connack timeout') fail(`no answer from a broker within ${timeoutMs / 1000} s (is a broker running there?)`);
      else fail(`${e.message}${e.code !== undefined && !e.message.includes(String(e.code)) ? ` (${e.code})` : ''}`);
    };
    const onClose = (): void => fail(lastError ? lastError.message : 'the connection was closed before the broker accepted it');
    // A safety net in case the client neither connects nor reports an error.
    const guard = setTimeout(() => fail(`no answer within ${timeoutMs / 1000} s (is a broker running there?)`), timeoutMs + 1000);
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}

/** Ends the client gracefully (waiting for QoS 1 acknowledgements), or drops the connection after timeoutMs. */
function endClient(client: MqttClient, timeoutMs = END_TIMEOUT_MS): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      client.end(true, () => resolve());
    }, timeoutMs);
    client.end(false, () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** How many device connections are opened at once (provisioning costs the broker a token hash each). */
export const CONNECT_CONCURRENCY = 20;

/** Connects one client per device (user name = device id, password provision:<key>); all or nothing. */
async function connectDevices(url: string, ids: string[], key: string): Promise<MqttClient[]> {
  const clients: MqttClient[] = new Array<MqttClient>(ids.length);
  let next = 0;
  let failed: Error | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < ids.length) {
      const i = next++;
      try {
        clients[i] = await connectOnce(url, `thingwire-sim-${process.pid}-${ids[i]}`, CONNECT_TIMEOUT_MS, { username: ids[i], password: `provision:${key}` });
      } catch (e) {
        failed ??= new Error(`${ids[i]}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, ids.length) }, worker));
  if (failed) {
    for (const c of clients) c?.end(true);
    throw failed;
  }
  return clients;
}

/** Runs the simulator until the duration ends or a signal arrives; resolves with the exit code. */
export async function run(opts: SimOptions): Promise<number> {
  const clientId = `thingwire-sim-${process.pid}`;
  const shownUrl = redactUrl(opts.url);

  // Signals: the first stops cleanly (exit 0), a second exits at once (1).
  let signals = 0;
  const control: { stop?: () => void } = {};
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      err(`${sig} again: exiting now`);
      process.exit(1);
    }
    out(`[simulate] ${sig} received: stopping`);
    if (control.stop) control.stop();
    else process.exit(0); // still connecting: nothing published, nothing to flush
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const unhook = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };

  const fleet: SimFleet = createFleet({ count: opts.devices, seed: opts.seed, origin: Date.now() });
  let clients: MqttClient[];
  try {
    clients = opts.provisioningKey
      ? await connectDevices(opts.url, fleet.devices.map((p) => p.id), opts.provisioningKey)
      : [await connectOnce(opts.url, clientId)];
  } catch (e) {
    unhook();
    err((e as Error).message);
    return 1;
  }
  for (const c of clients) c.options.reconnectPeriod = 1000;
  const clientOf = (i: number): MqttClient => (clients.length === 1 ? clients[0] : clients[i]);
  const topics = fleet.devices.map((p) => `${opts.prefix}/${p.id}/telemetry`);
  const stats: Stats = { published: 0, errors: 0, dropped: 0 };
  const maxPending = Math.max(1000, 2 * opts.devices);
  let pending = 0;
  let lastError = '';

  const start = Date.now();
  const deadline = opts.durationMs === undefined ? undefined : start + opts.durationMs;
  let next = 0;
  let tickTimer: NodeJS.Timeout | undefined;
  let stopping = false;
  /** Clients without a connection, and since when. */
  const offline = new Map<MqttClient, number>();
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));

  const last = deviceId(opts.devices - 1, opts.devices);
  const as = opts.provisioningKey ? 'one connection per device (user = device id, password provision:<key>)' : clientId;
  out(
    `[simulate] connected to ${shownUrl} as ${as}: ${opts.devices} device${opts.devices === 1 ? '' : 's'} ` +
      `(${deviceId(0, opts.devices)}${opts.devices > 1 ? `..${last}` : ''}) every ${opts.intervalMs} ms on ` +
      `${opts.prefix}/{device}/telemetry, qos ${opts.qos}, seed ${opts.seed}, ` +
      `${opts.durationMs === undefined ? 'until stopped' : `for ${opts.durationMs / 1000} s`}`,
  );

  const publishSlot = (n: number): void => {
    const i = n % opts.devices;
    const client = clientOf(i);
    if (!client.connected || pending >= maxPending) {
      stats.dropped++;
      return;
    }
    const payload = reading(fleet, i, Date.now());
    pending++;
    client.publish(topics[i], JSON.stringify(payload), { qos: opts.qos }, (e) => {
      pending--;
      if (e) {
        stats.errors++;
        if (e.message !== lastError) {
          lastError = e.message;
          err(`publish failed: ${e.message}`);
        }
      } else {
        stats.published++;
      }
    });
  };

  const at = (n: number): number => start + slotTime(n, opts.devices, opts.intervalMs);

  const tick = (): void => {
    tickTimer = undefined;
    if (stopping) return;
    const now = Date.now();
    // Fell behind by more than an interval (a stalled machine, a suspended laptop): skip, do not burst.
    if (now - at(next) > opts.intervalMs) {
      let target = Math.floor(((now - start) * opts.devices) / opts.intervalMs);
      if (deadline !== undefined) target = Math.min(target, slotsIn(deadline - start, opts.devices, opts.intervalMs));
      stats.dropped += target - next;
      next = target;
    }
    // At most one round per tick, so the socket and the timers get their turn.
    for (let budget = opts.devices; budget > 0 && at(next) <= now && (deadline === undefined || at(next) < deadline); budget--) {
      publishSlot(next);
      next++;
    }
    if (deadline !== undefined && at(next) >= deadline) return; // the end timer finishes the run
    tickTimer = setTimeout(tick, Math.max(0, at(next) - Date.now()));
  };

  const summary = setInterval(() => out(summaryLine('running', Date.now() - start, stats)), SUMMARY_EVERY_MS);

  const shutdown = (code: number, why: string): void => {
    if (stopping) return;
    stopping = true;
    if (tickTimer) clearTimeout(tickTimer);
    clearInterval(summary);
    endTimer?.clear();
    clearInterval(watchdog);
    const elapsed = Math.min(Date.now(), deadline ?? Infinity) - start;
    // Slots of the run the scheduler did not reach (a stalled machine) were not published either.
    if (why === 'done' && deadline !== undefined) stats.dropped += Math.max(0, slotsIn(deadline - start, opts.devices, opts.intervalMs) - next);
    void Promise.all(clients.map((c) => endClient(c))).then(() => {
      // Publishes still unanswered when the connection closed never reached the broker.
      stats.errors += pending;
      pending = 0;
      out(summaryLine(`${why}:`, elapsed, stats));
      resolveExit(code);
    });
  };

  const endTimer = deadline === undefined ? undefined : longTimeout(() => shutdown(0, 'done'), deadline - start);

  for (const client of clients) {
    client.on('error', (e) => {
      if (e.message !== lastError) {
        lastError = e.message;
        err(`broker error: ${e.message}`);
      }
    });
    client.on('offline', () => {
      if (stopping || offline.has(client)) return;
      offline.set(client, Date.now());
      // One line for the first connection lost, not one per device.
      if (offline.size === 1) err(`lost the connection to ${shownUrl}; reconnecting (giving up after ${RECONNECT_GIVE_UP_MS / 1000} s)`);
    });
    client.on('connect', () => {
      const since = offline.get(client);
      if (since === undefined) return;
      offline.delete(client);
      if (offline.size === 0) {
        out(`[simulate] reconnected to ${shownUrl} after ${((Date.now() - since) / 1000).toFixed(1)} s`);
        lastError = '';
      }
    });
  }
  const oldestOffline = (): number | undefined => {
    let oldest: number | undefined;
    for (const t of offline.values()) if (oldest === undefined || t < oldest) oldest = t;
    return oldest;
  };
  const watchdog = setInterval(() => {
    const disconnectedSince = oldestOffline();
    if (disconnectedSince !== undefined && Date.now() - disconnectedSince > RECONNECT_GIVE_UP_MS) {
      err(`${shownUrl} has been unreachable for ${RECONNECT_GIVE_UP_MS / 1000} s; giving up`);
      shutdown(1, 'failed');
    }
  }, 1000);

  control.stop = () => shutdown(0, 'stopped');

  tick();
  const code = await exited;
  unhook();
  return code;
}

/**
 * The environment with THINGWIRE_PROVISIONING_KEY taken from the runtime's DATA_DIR/provisioning-key (the key
 * `npm start` generates) when it is not set, so `npm start` and `npm run simulate` work together as they are.
 */
export function withDataDirKey(env: NodeJS.ProcessEnv, cwd = process.cwd()): NodeJS.ProcessEnv {
  if (env.THINGWIRE_PROVISIONING_KEY !== undefined && env.THINGWIRE_PROVISIONING_KEY !== '') return env;
  const dir = path.resolve(cwd, env.DATA_DIR && env.DATA_DIR.trim() !== '' ? env.DATA_DIR : 'data');
  try {
    const key = fs.readFileSync(path.join(dir, 'provisioning-key'), 'utf8').trim();
    return key === '' ? env : { ...env, THINGWIRE_PROVISIONING_KEY: key };
  } catch {
    return env;
  }
}

async function main(): Promise<void> {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(process.argv.slice(2), withDataDirKey(process.env));
  } catch (e) {
    if (e instanceof UsageError) {
      err(`${e.message}`);
      process.stderr.write('Run with --help for usage.\n');
      process.exit(2);
    }
    throw e;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return;
  }
  const code = await run(parsed.options);
  process.exit(code);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    err(`crashed: ${(e as Error)?.stack ?? String(e)}`);
    process.exit(1);
  });
}
