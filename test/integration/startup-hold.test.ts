/**
 * Devices that publish while the runtime starts lose nothing. On a first start the embedded broker listens a few
 * seconds before the flows' MQTT input subscribes, and there is no session of the input yet to queue for: a QoS 1
 * publish then had no subscriber, was acknowledged and dropped. The broker now holds such publishes back (refuses
 * them: the publisher keeps each and sends it again after reconnecting) until a subscription matches.
 * Here: load devices connect and publish numbered readings at QoS 1 right at the runtime's ready line, before its
 * flows run; every reading must reach the store, and the runtime must say it held publishes back (so the test ran
 * inside the window it is about). The flows' input connects over TCP here (THINGWIRE_MQTT_IN_PROCESS=0): in process
 * it attaches as the flows start, so the window is too short to test (the second test: all stored either way).
 */
import { LoadGenerator } from '../../runtime/loadgen';
import { startRuntime, type Runtime } from '../support/services';
import { waitForEveryReading } from '../support/stored';

jest.setTimeout(120_000);

let rt: Runtime | undefined;

afterEach(async () => {
  await rt?.stop();
  rt = undefined;
});

/** 20 devices publish 300 numbered readings at QoS 1 over 3 s from the runtime's ready line on. */
async function publishAtStart(runtime: Runtime): Promise<{ gen: LoadGenerator; start: number }> {
  const gen = new LoadGenerator({ url: `mqtt://127.0.0.1:${runtime.mqttPort}`, devices: 20, prefix: 'devices', qos: 1, connections: 2, metrics: 3, padBytes: 0, maxInFlight: 200, reconnect: true });
  const start = Date.now();
  await gen.connect();
  let phase;
  try {
    phase = await gen.run({ rate: 100, durationMs: 3000, batch: 1, readings: 300 });
  } finally {
    await gen.close();
  }
  expect(phase.readings).toBe(300);
  expect(phase.failed).toBe(0);
  return { gen, start };
}

/** Starts of the runtime the first test may need before its publishes reach the broker ahead of the flows' subscription. */
const HOLD_ATTEMPTS = 3;

test('readings published before the flows subscribe are held back, sent again and all stored', async () => {
  for (let attempt = 1; ; attempt++) {
    rt = await startRuntime({ THINGWIRE_MQTT_IN_PROCESS: '0' }, undefined, [], { waitForFlows: false });
    const runtime = rt;
    const { gen, start } = await publishAtStart(runtime);
    const heldBack = /mqtt: holding publishes back until the flows subscribe/.test(runtime.output());

    // Every start, whether or not it fell inside the window: nothing lost.
    const report = await waitForEveryReading(runtime.url, gen, start, 60_000, () => runtime.output().slice(-3000));
    expect(report).toMatchObject({ devices: 20, expected: 300, storedDistinct: 300, missing: 0, unexpected: 0 });
    if (heldBack) {
      expect(runtime.output()).toMatch(/publishes were refused while the flows started \(their publishers send them again\); the flows subscribe now/);
      return;
    }
    // The flows subscribed before the first publish reached the broker (seen once in CI, 2026-12-04, on a busy
    // machine): this start did not exercise the hold, so the test starts the runtime again on a fresh data directory.
    if (attempt >= HOLD_ATTEMPTS) {
      throw new Error(`in ${attempt} starts the flows subscribed before the first publish arrived: the hold was never exercised\n${runtime.output().slice(-3000)}`);
    }
    await runtime.stop();
    rt = undefined;
  }
}, 300_000);

test('in process: readings published as the runtime starts are all stored, none twice', async () => {
  rt = await startRuntime({}, undefined, [], { waitForFlows: false });
  const runtime = rt;
  const { gen, start } = await publishAtStart(runtime);
  const report = await waitForEveryReading(runtime.url, gen, start, 60_000, () => runtime.output().slice(-3000));
  expect(report).toMatchObject({ devices: 20, expected: 300, storedDistinct: 300, missing: 0, duplicates: 0, unexpected: 0 });
});
