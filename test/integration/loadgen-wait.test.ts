/**
 * The load generator's wait for a broker that is not up yet (--wait S, LoadOptions.waitMs): started before mosquitto,
 * it keeps trying and connects once the broker listens; without a wait, or past it, connect() fails with the broker's
 * error. A connection lost during a run without --reconnect fails it at once with the cause; a phase lasts until its
 * last publish was answered. Real mosquitto on a loopback port.
 */
import { LoadGenerator, parseLoadArgs, type LoadOptions } from '../../runtime/loadgen';
import { freePort, startMosquitto, type Mosquitto } from '../support/services';

const base = (port: number): LoadOptions => ({ url: `mqtt://127.0.0.1:${port}`, devices: 2, prefix: 'devices', qos: 1, connections: 2, metrics: 1, padBytes: 0, maxInFlight: 10 });

let broker: Mosquitto | undefined;
afterEach(async () => {
  await broker?.stop();
  broker = undefined;
});

test('with a wait, connect() goes on trying until the broker listens, then publishes', async () => {
  const port = await freePort();
  const told: string[] = [];
  const gen = new LoadGenerator({ ...base(port), waitMs: 20_000, onWait: (l) => told.push(l) });
  const connecting = gen.connect();
  let connected = false;
  void connecting.then(() => (connected = true));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(connected).toBe(false);
  broker = await startMosquitto({ port });
  await connecting;
  try {
    expect(told).toHaveLength(1);
    expect(told[0]).toMatch(/^waiting up to 20 s for the broker: cannot connect to mqtt:\/\/127\.0\.0\.1:\d+ as tw-load-probe-.*ECONNREFUSED/);
    const r = await gen.run({ rate: 20, durationMs: 500, batch: 1, readings: 10 });
    expect(r.readings).toBe(10);
  } finally {
    await gen.close();
  }
}, 30_000);

test('without a wait, or past it, connect() fails with the broker\'s error', async () => {
  const port = await freePort();
  await expect(new LoadGenerator(base(port)).connect()).rejects.toThrow(/ECONNREFUSED/);
  const told: string[] = [];
  const t0 = Date.now();
  await expect(new LoadGenerator({ ...base(port), waitMs: 1200, onWait: (l) => told.push(l) }).connect()).rejects.toThrow(/ECONNREFUSED/);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
  expect(told).toHaveLength(1);
});

test('--wait S on the command line', () => {
  const p = parseLoadArgs(['--wait', '30'], {});
  if (p.help) throw new Error('help');
  expect(p.options.load.waitMs).toBe(30_000);
  const d = parseLoadArgs([], {});
  if (d.help) throw new Error('help');
  expect(d.options.load.waitMs).toBe(0);
  expect(() => parseLoadArgs(['--wait', 'soon'], {})).toThrow(/--wait must be a number/);
});

test('without --reconnect, a lost connection fails the run at once, saying why', async () => {
  const port = await freePort();
  broker = await startMosquitto({ port });
  const gen = new LoadGenerator(base(port));
  await gen.connect();
  try {
    const t0 = Date.now();
    const running = gen.run({ rate: 200, durationMs: 20_000, batch: 1 });
    const failed = running.then(
      () => undefined,
      (e: Error) => e,
    );
    await new Promise((resolve) => setTimeout(resolve, 700));
    await broker.stop();
    broker = undefined;
    const e = await failed;
    expect(e?.message).toMatch(/^load generator: lost the connection tw-load-\S+ to mqtt:\/\/127\.0\.0\.1:\d+.*without --reconnect a lost connection ends the run.*pass --reconnect/);
    // Well before the phase's 20 s (and the 30 s wait for answers after it).
    expect(Date.now() - t0).toBeLessThan(10_000);
  } finally {
    await gen.close();
  }
}, 30_000);

test('close() is not a lost connection: a run after a clean close and connect goes on', async () => {
  const port = await freePort();
  broker = await startMosquitto({ port });
  const gen = new LoadGenerator(base(port));
  await gen.connect();
  expect((await gen.run({ rate: 50, durationMs: 200, batch: 1, readings: 4 })).readings).toBe(4);
  await gen.close();
  await gen.connect();
  try {
    expect((await gen.run({ rate: 50, durationMs: 200, batch: 1, readings: 4 })).readings).toBe(4);
  } finally {
    await gen.close();
  }
}, 30_000);

test('a phase lasts until its last publish is answered: a broker that holds its acknowledgements back lowers the achieved rate', async () => {
  const port = await freePort();
  broker = await startMosquitto({ port });
  const gen = new LoadGenerator({ ...base(port), maxInFlight: 1000 });
  await gen.connect();
  const b = broker;
  try {
    // Stopped 300 ms into a 1 s phase and continued 2 s later: the publishes of the last 700 ms are answered then.
    const pause = setTimeout(() => b.proc.kill('SIGSTOP'), 300);
    const resume = setTimeout(() => b.proc.kill('SIGCONT'), 2300);
    const r = await gen.run({ rate: 200, durationMs: 1000, batch: 1 });
    clearTimeout(pause);
    clearTimeout(resume);
    expect(r.readings).toBeGreaterThanOrEqual(180);
    expect(r.seconds).toBeGreaterThanOrEqual(2.2);
    expect(r.achievedRate).toBeCloseTo(r.readings / r.seconds, 6);
    expect(r.achievedRate).toBeLessThan(100);
    // Answered at once: the phase's own length.
    const q = await gen.run({ rate: 200, durationMs: 1000, batch: 1 });
    expect(q.seconds).toBeGreaterThanOrEqual(1);
    expect(q.seconds).toBeLessThan(1.5);
    expect(q.achievedRate).toBeGreaterThan(150);
  } finally {
    b.proc.kill('SIGCONT');
    await gen.close();
  }
}, 30_000);
