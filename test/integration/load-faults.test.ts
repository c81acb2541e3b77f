/**
 * Hostile traffic mixed into a bounded load (issue 11, item 4, the short form for CI): the built runtime
 * (shipped flows, embedded broker and store, anonymous demo switch on) takes 200 load devices at 400
 * readings/s for 5 s over QoS 1 (2,000 numbered readings) from runtime/loadgen.ts, with about 2,000
 * malformed or hostile messages of every kind in HOSTILE_KINDS spread over the same 5 s on their own
 * connection. Afterwards the runtime is up (health 200), every valid reading is in the store exactly once
 * (the checker reads seq of every load device back through GET /api/v1/series: none missing, duplicated
 * or unexpected), no hostile device has a reading stored, and thingwire_rejects_total grew by exactly the
 * rejects the generator sent, per node type and code (no other reject appeared).
 *
 * The full form (100,000 hostile messages) is the load generator's command line against a running runtime:
 *   node dist/runtime/loadgen.js --devices 200 --rate 400 --duration 60 --qos 1 --hostile 100000 --check http://127.0.0.1:1880
 */
import {
  HOSTILE_KINDS,
  LoadGenerator,
  diffCounts,
  expectedRejects,
  fetchMetric,
  hostileDeviceId,
  readSeqsViaApi,
  rejectsByCode,
} from '../../runtime/loadgen';
import { startRuntime, waitFor, type Runtime } from '../support/services';
import { waitForEveryReading } from '../support/stored';

jest.setTimeout(120_000);

const DEVICES = 200;
const RATE = 400;
const SECONDS = 5;
const HOSTILE = 2000;

let rt: Runtime | undefined;

afterAll(async () => {
  await rt?.stop();
});

test('valid readings are all stored and every hostile message is rejected with its reason counted', async () => {
  rt = await startRuntime();
  const runtime = rt;
  const gen = new LoadGenerator({ url: `mqtt://127.0.0.1:${runtime.mqttPort}`, devices: DEVICES, prefix: 'devices', qos: 1, connections: 4, metrics: 3, padBytes: 0, maxInFlight: 500 });
  await gen.connect(true);
  const before = rejectsByCode(await fetchMetric(runtime.url, 'thingwire_rejects_total'));
  const start = Date.now();
  let phase;
  try {
    // Exactly RATE x SECONDS readings, however long a busy machine takes to publish them.
    phase = await gen.run({ rate: RATE, durationMs: SECONDS * 1000, batch: 1, hostile: HOSTILE, readings: RATE * SECONDS });
  } finally {
    await gen.close();
  }
  // The load was published as asked (the broker acknowledged every QoS 1 publish).
  expect(phase.failed).toBe(0);
  expect(phase.hostileFailed).toBe(0);
  expect(phase.readings).toBe(RATE * SECONDS);
  expect(Object.values(phase.hostile).reduce((s, n) => s + n, 0)).toBe(HOSTILE);
  // Every kind was sent at least once.
  expect(Object.keys(phase.hostile).sort()).toEqual(HOSTILE_KINDS.map((k) => k.name).sort());

  // The rejects counted by the runtime match what was sent, code by code.
  const want = expectedRejects(gen.hostileSent);
  const got = await waitFor(
    'the runtime to count every reject',
    async () => {
      const d = diffCounts(before, rejectsByCode(await fetchMetric(runtime.url, 'thingwire_rejects_total')));
      return [...want].every(([k, n]) => (d.get(k) ?? 0) >= n) ? d : undefined;
    },
    30_000,
    500,
  );
  expect(Object.fromEntries([...got].sort())).toEqual(Object.fromEntries([...want].sort()));

  // Every valid reading reached the store, exactly once; nothing of a hostile device did.
  const report = await waitForEveryReading(runtime.url, gen, start, 30_000);
  expect(report).toMatchObject({ devices: DEVICES, expected: phase.readings, storedDistinct: phase.readings, missing: 0, duplicates: 0, unexpected: 0 });
  const hostileIds = Array.from({ length: 1000 }, (_, i) => hostileDeviceId(i));
  const stray = await readSeqsViaApi(runtime.url, hostileIds, start - 60_000, Date.now() + 60_000, { field: 'temperature' });
  expect(stray).toEqual([]);

  // Still up.
  const health = await fetch(`${runtime.url}/api/v1/health`);
  expect(health.status).toBe(200);
  expect(runtime.proc.exitCode).toBeNull();
});
