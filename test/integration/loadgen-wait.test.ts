/**
 * The load generator's wait for a broker that is not up yet (--wait S, LoadOptions.waitMs): started before mosquitto,
 * it keeps trying and connects once the broker listens; without a wait, or past it, connect() fails with the broker's
 * error. Real mosquitto on a loopback port.
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
