/**
 * The device firmware's host tests (firmware/tests, Python unittest under CPython with fakes of the
 * MicroPython modules), run from jest so `npm test` covers them; and the firmware's actual MQTT
 * payloads (firmware/tests/emit_payloads.py) fed through the real normaliser, which must accept
 * every one. python3 is required: without it this test fails, it does not skip.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as path from 'node:path';
import { DEFAULT_NORMALISE_OPTIONS, normalise } from '../nodes/lib/normalise';

const ROOT = path.resolve(__dirname, '..');
const DEVICE = 'greenhouse-1';

function python(args: string[]): SpawnSyncReturns<string> {
  const r = spawnSync('python3', args, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    // No __pycache__ directories left in firmware/ (they would be copied to the board by mpremote).
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? 'python3 is not on PATH: the firmware host tests (firmware/tests) need CPython 3.8 or newer; install python3 and run npm test again'
        : `could not run python3 ${args.join(' ')}: ${r.error.message}`,
    );
  }
  return r;
}

describe('device firmware (firmware/)', () => {
  it('passes its host tests: python3 -m unittest discover -s firmware/tests -v', () => {
    const r = python(['-m', 'unittest', 'discover', '-s', 'firmware/tests', '-v']);
    if (r.status !== 0) {
      // unittest reports on stderr; show all of it so the failing case is visible in the jest output.
      throw new Error(`firmware host tests failed (exit ${String(r.status)}${r.signal ? `, signal ${r.signal}` : ''}):\n${r.stdout}\n${r.stderr}`);
    }
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/\nOK\s*$/);
    const ran = /Ran (\d+) tests?/.exec(r.stderr);
    expect(Number(ran?.[1])).toBeGreaterThanOrEqual(40);
  });

  it("publishes telemetry that Thingwire's normaliser accepts whole", () => {
    const r = python(['firmware/tests/emit_payloads.py']);
    if (r.status !== 0) throw new Error(`emit_payloads.py failed (exit ${String(r.status)}):\n${r.stdout}\n${r.stderr}`);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { topic: string; payload: string });
    expect(lines.length).toBeGreaterThanOrEqual(6);
    let batches = 0;
    let singles = 0;
    let total = 0;
    for (const { topic, payload } of lines) {
      expect(topic).toBe(`devices/${DEVICE}/telemetry`);
      const value: unknown = JSON.parse(payload);
      const n = Array.isArray(value) ? value.length : 1;
      if (Array.isArray(value)) batches++;
      else singles++;
      const res = normalise(value, { topic, device: DEVICE }, { ...DEFAULT_NORMALISE_OPTIONS, now: () => 0 });
      expect(res.rejects).toEqual([]);
      expect(res.readings).toHaveLength(n);
      for (const reading of res.readings) {
        expect(reading.device).toBe(DEVICE);
        // Event time from the device (never the arrival time, which is 0 here), within the run.
        expect(reading.ts).toBeGreaterThan(Date.UTC(2025, 0, 1));
        expect(reading.tags).toBeUndefined();
        expect(Object.keys(reading.metrics).sort()).toEqual(['chip_temperature', 'humidity', 'temperature']);
        for (const v of Object.values(reading.metrics)) expect(Number.isFinite(v)).toBe(true);
      }
      total += n;
    }
    expect(singles).toBeGreaterThan(0);
    expect(batches).toBeGreaterThan(0);
    expect(total).toBeGreaterThanOrEqual(40);
  });
});
