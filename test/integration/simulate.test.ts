/**
 * The built device simulator (dist/runtime/simulate.js) against a real
 * mosquitto: what it publishes, how it ends, and how it fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { DEFAULT_NORMALISE_OPTIONS, normalise } from '../../nodes/lib/normalise';
import { freePort, ROOT, startMosquitto, waitFor, type Service } from '../support/services';

const SIM = path.join(ROOT, 'dist', 'runtime', 'simulate.js');

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Sim {
  proc: ChildProcess;
  stdout(): string;
  exited: Promise<Exit>;
}

/** Starts the built simulator with a clean environment (no MQTT_URL / MQTT_PORT from the caller's shell). */
function startSim(args: string[], env: Record<string, string> = {}): Sim {
  const base = { ...process.env };
  delete base.MQTT_URL;
  delete base.MQTT_PORT;
  const proc = spawn(process.execPath, [SIM, ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<Exit>((resolve) => {
    proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { proc, stdout: () => stdout, exited };
}

/** The counts of the simulator's last summary line with `label`. */
function summary(stdout: string, label: string): { published: number; errors: number; dropped: number } {
  const re = new RegExp(`^\\[simulate\\] ${label}: [\\d.]+s published=(\\d+) errors=(\\d+) dropped=(\\d+) rate=[\\d.]+/s$`, 'm');
  const m = re.exec(stdout);
  if (!m) throw new Error(`no "${label}:" summary line in the simulator's output:\n${stdout}`);
  return { published: Number(m[1]), errors: Number(m[2]), dropped: Number(m[3]) };
}

interface Received {
  topic: string;
  raw: string;
}

async function subscriber(port: number, topic: string, qos: 0 | 1): Promise<{ client: MqttClient; messages: Received[] }> {
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `sim-test-${process.pid}-${Date.now()}`, reconnectPeriod: 0 });
  const messages: Received[] = [];
  client.on('message', (t, payload) => messages.push({ topic: t, raw: payload.toString('utf8') }));
  await client.subscribeAsync(topic, { qos });
  return { client, messages };
}

/** Every message must be JSON the normaliser turns into one reading of the topic's device, with no rejects. */
function checkPayloads(messages: Received[], prefix: string, from: number, to: number): Map<string, number> {
  const perDevice = new Map<string, number>();
  const topicRe = new RegExp(`^${prefix}/(sim-\\d{3})/telemetry$`);
  for (const m of messages) {
    const tm = topicRe.exec(m.topic);
    expect(tm).not.toBeNull();
    const device = (tm as RegExpExecArray)[1];
    const payload = JSON.parse(m.raw) as Record<string, unknown>;
    expect(Object.keys(payload).sort()).toEqual(['humidity', 'temperature', 'ts', 'vibration']);
    const r = normalise(payload, { topic: m.topic }, { ...DEFAULT_NORMALISE_OPTIONS, topicPrefix: prefix });
    expect(r.rejects).toEqual([]);
    expect(r.readings).toHaveLength(1);
    const reading = r.readings[0];
    expect(reading.device).toBe(device);
    expect(Number.isInteger(reading.ts)).toBe(true);
    expect(reading.ts).toBeGreaterThanOrEqual(from);
    expect(reading.ts).toBeLessThanOrEqual(to);
    const { temperature, humidity, vibration } = reading.metrics as Record<string, number>;
    expect(temperature).toBeGreaterThanOrEqual(-50);
    expect(temperature).toBeLessThanOrEqual(150);
    expect(humidity).toBeGreaterThanOrEqual(0);
    expect(humidity).toBeLessThanOrEqual(100);
    expect(vibration).toBeGreaterThanOrEqual(0);
    perDevice.set(device, (perDevice.get(device) ?? 0) + 1);
  }
  return perDevice;
}

describe('device simulator against mosquitto', () => {
  let broker: Service;

  beforeAll(async () => {
    if (!fs.existsSync(SIM)) throw new Error(`${SIM} is missing: run npm run build first (npm test does)`);
    broker = await startMosquitto();
  });

  afterAll(async () => {
    await broker?.stop();
  });

  it('publishes every device for --duration, all normalisable, and exits 0', async () => {
    const { client, messages } = await subscriber(broker.port, 'devices/+/telemetry', 1);
    try {
      const from = Date.now();
      const sim = startSim(['--url', `mqtt://127.0.0.1:${broker.port}`, '--devices', '5', '--interval', '200', '--duration', '2']);
      const exit = await sim.exited;
      const to = Date.now();
      expect(exit.stderr).toBe('');
      expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
      expect(exit.stdout).toMatch(/^\[simulate\] connected to mqtt:\/\/127\.0\.0\.1:\d+ as thingwire-sim-\d+: 5 devices \(sim-001\.\.sim-005\) every 200 ms/m);

      const s = summary(exit.stdout, 'done');
      // 2 s x 5 devices / 200 ms = 50 slots; each is published, failed or (on a stalled machine) dropped.
      expect(s.published + s.errors + s.dropped).toBe(50);
      expect(s.errors).toBe(0);
      expect(s.published).toBeGreaterThanOrEqual(25);

      // Everything the simulator published arrives (loopback, QoS 0 to a QoS 1 subscription).
      await waitFor(`${s.published} messages (have ${messages.length})`, () => messages.length >= s.published, 5000);
      expect(messages).toHaveLength(s.published);

      const perDevice = checkPayloads(messages, 'devices', from, to);
      expect([...perDevice.keys()].sort()).toEqual(['sim-001', 'sim-002', 'sim-003', 'sim-004', 'sim-005']);
      for (const n of perDevice.values()) expect(n).toBeGreaterThanOrEqual(1);
    } finally {
      await client.endAsync();
    }
  });

  it('runs until SIGTERM with the broker from MQTT_PORT, --qos 1 and --prefix, and exits 0 with a summary', async () => {
    const { client, messages } = await subscriber(broker.port, 'plant7/+/telemetry', 1);
    try {
      const from = Date.now();
      const sim = startSim(['--devices', '3', '--interval', '100', '--qos', '1', '--prefix', 'plant7', '--seed', '7'], {
        MQTT_PORT: String(broker.port),
      });
      await waitFor('the simulator to publish 15 messages', () => {
        if (sim.proc.exitCode !== null) throw new Error(`simulator exited early:\n${sim.stdout()}`);
        return messages.length >= 15;
      }, 15_000);
      sim.proc.kill('SIGTERM');
      const exit = await sim.exited;
      const to = Date.now();
      expect(exit.stderr).toBe('');
      expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
      expect(exit.stdout).toContain(`connected to mqtt://127.0.0.1:${broker.port} as thingwire-sim-`);
      expect(exit.stdout).toContain('qos 1, seed 7, until stopped');
      expect(exit.stdout).toContain('[simulate] SIGTERM received: stopping');

      const s = summary(exit.stdout, 'stopped');
      expect(s.errors).toBe(0);
      expect(s.published).toBeGreaterThanOrEqual(15);
      // QoS 1: every publish the broker acknowledged reaches the QoS 1 subscriber.
      await waitFor(`${s.published} messages (have ${messages.length})`, () => messages.length >= s.published, 5000);
      expect(messages).toHaveLength(s.published);

      const perDevice = checkPayloads(messages, 'plant7', from, to);
      expect([...perDevice.keys()].sort()).toEqual(['sim-001', 'sim-002', 'sim-003']);
    } finally {
      await client.endAsync();
    }
  });

  it('exits 1 with a clear message when nothing listens at the broker address', async () => {
    const port = await freePort();
    const exit = await startSim(['--url', `mqtt://127.0.0.1:${port}`, '--duration', '1']).exited;
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 1, signal: null });
    expect(exit.stderr).toMatch(new RegExp(`^\\[simulate\\] cannot connect to mqtt://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
    expect(exit.stdout).toBe('');
  });

  it('exits 1 after the connect timeout when the address accepts TCP but no broker answers', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => undefined));
    const sockets: net.Socket[] = [];
    silent.on('connection', (s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const exit = await startSim(['--url', `mqtt://127.0.0.1:${port}`]).exited;
      expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 1, signal: null });
      expect(exit.stderr).toBe(`[simulate] cannot connect to mqtt://127.0.0.1:${port}: no answer from a broker within 5 s (is a broker running there?)\n`);
      // One attempt, no retrying.
      expect(sockets).toHaveLength(1);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('exits 2 naming the flag for an unknown flag or a bad value', async () => {
    const unknown = await startSim(['--devices', '5', '--frobnicate']).exited;
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('[simulate] unknown flag --frobnicate');
    expect(unknown.stdout).toBe('');

    const bad = await startSim(['--interval', 'fast']).exited;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('[simulate] --interval must be an interval in ms (an integer 10..86400000), got "fast"');

    const env = await startSim([], { MQTT_PORT: 'nope' }).exited;
    expect(env.code).toBe(2);
    expect(env.stderr).toContain('MQTT_PORT (environment) must be a port number');
  });

  it('prints usage for --help and exits 0', async () => {
    const exit = await startSim(['--help']).exited;
    expect(exit.code).toBe(0);
    expect(exit.stdout).toContain('Usage: npm run simulate -- [options]');
    for (const flag of ['--devices', '--interval', '--duration', '--url', '--prefix', '--qos', '--seed', '--help']) {
      expect(exit.stdout).toContain(flag);
    }
    // How devices log in to the runtime's broker.
    expect(exit.stdout).toContain('THINGWIRE_PROVISIONING_KEY');
    expect(exit.stdout).toContain('password provision:<key>');
  });
});
