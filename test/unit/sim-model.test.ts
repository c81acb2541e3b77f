import { DEFAULT_NORMALISE_OPTIONS, normalise } from '../../nodes/lib/normalise';
import { isValidDeviceId } from '../../nodes/lib/names';
import {
  DAY_MS,
  FAST_DEGRADER_SHARE,
  HOUR_MS,
  createFleet,
  deviceId,
  gaussian,
  hashSeed,
  hourOfDay,
  mulberry32,
  reading,
  sample,
  vibrationLevel,
  type DeviceProfile,
  type SimPayload,
} from '../../runtime/sim-model';
import { DEFAULTS, LIMITS, parseArgs, redactUrl, slotTime, slotsIn, summaryLine, UsageError, type SimOptions } from '../../runtime/simulate';

const ORIGIN = Date.UTC(2026, 0, 5); // a midnight UTC
const SEED = 20260105;

function decimals(x: number): number {
  const s = String(x);
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function correlation(xs: number[], ys: number[]): number {
  const mx = mean(xs);
  const my = mean(ys);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

describe('sim-model: PRNG', () => {
  it('mulberry32 repeats for a seed, differs across seeds, and stays in [0, 1)', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    const c = mulberry32(8);
    const xa = Array.from({ length: 1000 }, () => a());
    const xb = Array.from({ length: 1000 }, () => b());
    const xc = Array.from({ length: 1000 }, () => c());
    expect(xa).toEqual(xb);
    expect(xa).not.toEqual(xc);
    for (const x of xa) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
    expect(mean(xa)).toBeGreaterThan(0.45);
    expect(mean(xa)).toBeLessThan(0.55);
  });

  it('gaussian has mean about 0 and standard deviation about 1', () => {
    const rng = mulberry32(123);
    const xs = Array.from({ length: 20_000 }, () => gaussian(rng));
    const m = mean(xs);
    const sd = Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
    expect(Math.abs(m)).toBeLessThan(0.03);
    expect(sd).toBeGreaterThan(0.97);
    expect(sd).toBeLessThan(1.03);
  });

  it('hashSeed separates nearby inputs, including timestamps past 32 bits', () => {
    const t = ORIGIN;
    const hs = new Set([hashSeed(1, 0, t), hashSeed(1, 0, t + 1), hashSeed(1, 1, t), hashSeed(2, 0, t), hashSeed(1, 0, t + 2 ** 32)]);
    expect(hs.size).toBe(5);
    expect(hashSeed(1, 0, t)).toBe(hashSeed(1, 0, t));
  });
});

describe('sim-model: device ids', () => {
  it('pads to the width of the count, at least three digits, 1-based', () => {
    expect(deviceId(0, 5)).toBe('sim-001');
    expect(deviceId(0, 50)).toBe('sim-001');
    expect(deviceId(49, 50)).toBe('sim-050');
    expect(deviceId(998, 999)).toBe('sim-999');
    expect(deviceId(0, 1000)).toBe('sim-0001');
    expect(deviceId(999, 1000)).toBe('sim-1000');
    expect(deviceId(41, 10_000)).toBe('sim-00042');
  });

  it('gives every device of a fleet a unique id that the normaliser accepts', () => {
    const fleet = createFleet({ count: 1000, seed: SEED, origin: ORIGIN });
    const ids = fleet.devices.map((d) => d.id);
    expect(new Set(ids).size).toBe(1000);
    expect(ids[0]).toBe('sim-0001');
    expect(ids[999]).toBe('sim-1000');
    for (const id of ids) expect(isValidDeviceId(id)).toBe(true);
  });
});

describe('sim-model: determinism', () => {
  it('gives the same fleet and the same readings for the same seed', () => {
    const a = createFleet({ count: 20, seed: SEED, origin: ORIGIN });
    const b = createFleet({ count: 20, seed: SEED, origin: ORIGIN });
    expect(a.devices).toEqual(b.devices);
    for (let i = 0; i < 20; i++) {
      for (let k = 0; k < 50; k++) {
        const t = ORIGIN + k * 617_000 + i;
        expect(reading(a, i, t)).toEqual(reading(b, i, t));
      }
    }
  });

  it('does not depend on the order readings are asked in', () => {
    const fleet = createFleet({ count: 3, seed: SEED, origin: ORIGIN });
    const t = ORIGIN + 5 * HOUR_MS;
    const first = reading(fleet, 1, t);
    for (let k = 0; k < 100; k++) reading(fleet, k % 3, ORIGIN + k * 1000);
    expect(reading(fleet, 1, t)).toEqual(first);
  });

  it('gives different devices and readings for a different seed', () => {
    const a = createFleet({ count: 5, seed: 1, origin: ORIGIN });
    const b = createFleet({ count: 5, seed: 2, origin: ORIGIN });
    expect(a.devices[0].tempBase).not.toBe(b.devices[0].tempBase);
    expect(reading(a, 0, ORIGIN)).not.toEqual(reading(b, 0, ORIGIN));
  });

  it('keeps a device the same whatever the fleet size', () => {
    const small = createFleet({ count: 5, seed: SEED, origin: ORIGIN });
    const large = createFleet({ count: 500, seed: SEED, origin: ORIGIN });
    expect(large.devices[3]).toEqual(small.devices[3]);
    expect(reading(large, 3, ORIGIN + 12_345)).toEqual(reading(small, 3, ORIGIN + 12_345));
  });

  it('rejects a bad fleet size and a bad device index', () => {
    expect(() => createFleet({ count: 0, seed: 1, origin: ORIGIN })).toThrow(/count must be an integer >= 1/);
    expect(() => createFleet({ count: 1.5, seed: 1, origin: ORIGIN })).toThrow(/count/);
    expect(() => createFleet({ count: 1, seed: NaN, origin: ORIGIN })).toThrow(/seed/);
    const fleet = createFleet({ count: 2, seed: 1, origin: ORIGIN });
    expect(() => reading(fleet, 2, ORIGIN)).toThrow(/outside 0..1/);
  });
});

describe('sim-model: ranges', () => {
  const fleet = createFleet({ count: 200, seed: SEED, origin: ORIGIN });
  const samples: Array<{ p: SimPayload; t: number; i: number }> = [];
  for (let i = 0; i < fleet.count; i++) {
    // 60 days, at times that walk through every hour of the day; some before the origin.
    for (let k = 0; k < 150; k++) {
      const t = ORIGIN - 2 * DAY_MS + k * 9.7 * HOUR_MS + i * 1_013;
      samples.push({ p: reading(fleet, i, t), t, i });
    }
  }

  it('keeps every value inside the starter flow schema, with sensible decimals', () => {
    expect(samples.length).toBe(30_000);
    // One assertion over all samples (30 000 x a dozen expect() calls is slow): list what breaks a rule.
    const broken: string[] = [];
    for (const { p, t, i } of samples) {
      const problems = [
        Object.keys(p).sort().join() !== 'humidity,temperature,ts,vibration' && 'keys',
        !(Number.isInteger(p.ts) && p.ts === Math.floor(t)) && 'ts',
        !(p.temperature >= -50 && p.temperature <= 150) && 'temperature range',
        !(p.humidity >= 0 && p.humidity <= 100) && 'humidity range',
        !(p.vibration >= 0 && Number.isFinite(p.vibration)) && 'vibration range',
        decimals(p.temperature) > 2 && 'temperature decimals',
        decimals(p.humidity) > 1 && 'humidity decimals',
        decimals(p.vibration) > 3 && 'vibration decimals',
      ].filter(Boolean);
      if (problems.length > 0) broken.push(`device ${i} t=${t}: ${problems.join(', ')} in ${JSON.stringify(p)}`);
    }
    expect(broken).toEqual([]);
  });

  it('produces realistic values: room-ish temperatures, mid humidity, a few mm/s of vibration', () => {
    const temps = samples.map((s) => s.p.temperature);
    const hums = samples.map((s) => s.p.humidity);
    expect(Math.min(...temps)).toBeGreaterThan(0);
    expect(Math.max(...temps)).toBeLessThan(45);
    expect(mean(temps)).toBeGreaterThan(18);
    expect(mean(temps)).toBeLessThan(26);
    expect(mean(hums)).toBeGreaterThan(40);
    expect(mean(hums)).toBeLessThan(60);
    const firstDayVib = samples.filter((s) => s.t < ORIGIN + DAY_MS).map((s) => s.p.vibration);
    expect(mean(firstDayVib)).toBeGreaterThan(0.8);
    expect(mean(firstDayVib)).toBeLessThan(2.5);
  });

  it('passes the normaliser as a devices/{id}/telemetry payload, without rejects', () => {
    for (const { p, i } of samples.slice(0, 2000)) {
      const id = fleet.devices[i].id;
      const r = normalise(JSON.parse(JSON.stringify(p)), { topic: `devices/${id}/telemetry` }, DEFAULT_NORMALISE_OPTIONS);
      expect(r.rejects).toEqual([]);
      expect(r.readings).toEqual([
        { device: id, ts: p.ts, metrics: { temperature: p.temperature, humidity: p.humidity, vibration: p.vibration } },
      ]);
    }
  });

  it('clamps even a pathological profile to the schema bounds', () => {
    const hot: DeviceProfile = {
      ...fleet.devices[0],
      tempBase: 140,
      tempAmplitude: 30,
      tempNoise: 20,
      humidityBase: 95,
      humidityPerDegree: 20,
      humidityNoise: 30,
      vibrationBase: 0.01,
      vibrationDriftPerDay: 0,
      vibrationNoise: 5,
    };
    const rng = mulberry32(9);
    let sawTempClamp = false;
    let sawHumClamp = false;
    let sawVibZero = false;
    for (let k = 0; k < 2000; k++) {
      const p = sample(hot, ORIGIN + k * 600_000, ORIGIN, rng);
      expect(p.temperature).toBeLessThanOrEqual(150);
      expect(p.temperature).toBeGreaterThanOrEqual(-50);
      expect(p.humidity).toBeGreaterThanOrEqual(0);
      expect(p.humidity).toBeLessThanOrEqual(100);
      expect(p.vibration).toBeGreaterThanOrEqual(0);
      expect(Object.is(p.vibration, -0)).toBe(false);
      sawTempClamp ||= p.temperature === 150;
      sawHumClamp ||= p.humidity === 0 || p.humidity === 100;
      sawVibZero ||= p.vibration === 0;
    }
    expect(sawTempClamp).toBe(true);
    expect(sawHumClamp).toBe(true);
    expect(sawVibZero).toBe(true);
  });
});

describe('sim-model: behaviour over time', () => {
  const fleet = createFleet({ count: 40, seed: SEED, origin: ORIGIN });

  it('shows the daily cycle: warmer at the peak hour than 12 h later, for every device', () => {
    for (const d of fleet.devices) {
      const atPeak: number[] = [];
      const atTrough: number[] = [];
      for (let day = 0; day < 30; day++) {
        const peak = ORIGIN + day * DAY_MS + Math.round(d.tempPeakHour * HOUR_MS);
        atPeak.push(reading(fleet, d.index, peak).temperature);
        atTrough.push(reading(fleet, d.index, peak + 12 * HOUR_MS).temperature);
      }
      expect(hourOfDay(ORIGIN + Math.round(d.tempPeakHour * HOUR_MS))).toBeCloseTo(d.tempPeakHour, 3);
      // The cycle swings 2 x amplitude (>= 3 °C); the noise is a few tenths.
      expect(mean(atPeak) - mean(atTrough)).toBeGreaterThan(d.tempAmplitude);
      expect(mean(atPeak) - mean(atTrough)).toBeLessThan(3 * d.tempAmplitude);
    }
  });

  it('peaks in the afternoon (UTC) across the fleet', () => {
    const byHour = Array.from({ length: 24 }, (_, h) => {
      const xs: number[] = [];
      for (const d of fleet.devices) for (let day = 0; day < 10; day++) xs.push(reading(fleet, d.index, ORIGIN + day * DAY_MS + h * HOUR_MS).temperature);
      return mean(xs);
    });
    const warmest = byHour.indexOf(Math.max(...byHour));
    const coldest = byHour.indexOf(Math.min(...byHour));
    expect(warmest).toBeGreaterThanOrEqual(12);
    expect(warmest).toBeLessThanOrEqual(17);
    expect(coldest === 0 || coldest >= 23 || coldest <= 5).toBe(true);
  });

  it('moves humidity against temperature', () => {
    for (const d of fleet.devices.slice(0, 10)) {
      const t: number[] = [];
      const h: number[] = [];
      for (let k = 0; k < 288; k++) {
        const p = reading(fleet, d.index, ORIGIN + k * 5 * 60_000);
        t.push(p.temperature);
        h.push(p.humidity);
      }
      expect(correlation(t, h)).toBeLessThan(-0.7);
    }
  });

  it('drifts vibration upward over days, each device at its own rate', () => {
    const perDay = (i: number, day: number): number => {
      const xs: number[] = [];
      for (let k = 0; k < 96; k++) xs.push(reading(fleet, i, ORIGIN + day * DAY_MS + k * 15 * 60_000).vibration);
      return mean(xs);
    };
    const rates = new Set<number>();
    for (const d of fleet.devices) {
      const day0 = perDay(d.index, 0);
      const day30 = perDay(d.index, 30);
      const day60 = perDay(d.index, 60);
      expect(day30).toBeGreaterThan(day0);
      expect(day60).toBeGreaterThan(day30);
      // The measured drift follows the device's own rate (noise averages out over a day).
      expect((day60 - day0) / 60).toBeCloseTo(d.vibrationDriftPerDay, 1);
      rates.add(d.vibrationDriftPerDay);
    }
    expect(rates.size).toBe(fleet.count);
  });

  it('has vibration at its base before and at the origin (no negative wear)', () => {
    const d = fleet.devices[0];
    expect(vibrationLevel(d, ORIGIN - 10 * DAY_MS, ORIGIN)).toBe(d.vibrationBase);
    expect(vibrationLevel(d, ORIGIN, ORIGIN)).toBe(d.vibrationBase);
    expect(vibrationLevel(d, ORIGIN + 10 * DAY_MS, ORIGIN)).toBeCloseTo(d.vibrationBase + 10 * d.vibrationDriftPerDay, 9);
  });

  it('makes a minority of devices degrade much faster than the rest', () => {
    const big = createFleet({ count: 1000, seed: SEED, origin: ORIGIN });
    const fast = big.devices.filter((d) => d.fastDegrader);
    const slow = big.devices.filter((d) => !d.fastDegrader);
    const share = fast.length / big.count;
    expect(share).toBeGreaterThan(FAST_DEGRADER_SHARE / 2);
    expect(share).toBeLessThan(0.3);
    const slowest = Math.min(...fast.map((d) => d.vibrationDriftPerDay));
    const fastestSlow = Math.max(...slow.map((d) => d.vibrationDriftPerDay));
    expect(slowest).toBeGreaterThan(3 * fastestSlow);
    // After 30 days a fast degrader is clearly above every slow device's level.
    const fastAt30 = vibrationLevel(fast[0], ORIGIN + 30 * DAY_MS, ORIGIN);
    expect(fastAt30).toBeGreaterThan(Math.max(...slow.map((d) => vibrationLevel(d, ORIGIN + 30 * DAY_MS, ORIGIN))));
  });
});

describe('simulate: argument parser', () => {
  const run = (argv: string[], env: NodeJS.ProcessEnv = {}): SimOptions => {
    const r = parseArgs(argv, env);
    if (r.help) throw new Error('expected options, got help');
    return r.options;
  };
  const usage = (argv: string[], env: NodeJS.ProcessEnv = {}): string => {
    try {
      parseArgs(argv, env);
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      return (e as Error).message;
    }
    throw new Error(`expected a UsageError for ${JSON.stringify(argv)}`);
  };

  it('has defaults', () => {
    expect(run([])).toEqual({
      devices: 10,
      intervalMs: 1000,
      durationMs: undefined,
      url: 'mqtt://127.0.0.1:1883',
      prefix: 'devices',
      qos: 0,
      seed: 1,
    });
    expect(DEFAULTS.devices).toBe(10);
  });

  it('takes the broker from MQTT_URL, else MQTT_PORT', () => {
    expect(run([], { MQTT_PORT: '1999' }).url).toBe('mqtt://127.0.0.1:1999');
    expect(run([], { MQTT_URL: 'mqtt://broker.local:1884', MQTT_PORT: '1999' }).url).toBe('mqtt://broker.local:1884');
    expect(run([], { MQTT_URL: '', MQTT_PORT: '' }).url).toBe('mqtt://127.0.0.1:1883');
    // --url wins over the environment, and a bad environment is not read when --url is given.
    expect(run(['--url', 'mqtt://10.0.0.2:1885'], { MQTT_URL: 'mqtt://broker.local:1884' }).url).toBe('mqtt://10.0.0.2:1885');
    expect(run(['--url', 'mqtt://10.0.0.2:1885'], { MQTT_PORT: 'x' }).url).toBe('mqtt://10.0.0.2:1885');
  });

  it('rejects a bad MQTT_URL or MQTT_PORT, naming the variable', () => {
    expect(usage([], { MQTT_PORT: 'abc' })).toMatch(/^MQTT_PORT \(environment\) must be a port number .*"abc"/);
    expect(usage([], { MQTT_PORT: '70000' })).toMatch(/^MQTT_PORT \(environment\) must be a port number \(an integer 1..65535\), got 70000/);
    expect(usage([], { MQTT_PORT: '0' })).toMatch(/^MQTT_PORT/);
    expect(usage([], { MQTT_URL: 'http://x:1' })).toMatch(/^MQTT_URL \(environment\) must use mqtt:\/\/ or mqtts:\/\//);
    expect(usage([], { MQTT_URL: 'not a url' })).toMatch(/^MQTT_URL \(environment\) must be a broker URL/);
  });

  it('reads every flag, as --flag value and as --flag=value', () => {
    const o = run(['--devices', '50', '--interval', '250', '--duration', '60', '--url', 'mqtt://h:1', '--prefix', 'plant7', '--qos', '1', '--seed', '42']);
    expect(o).toEqual({ devices: 50, intervalMs: 250, durationMs: 60_000, url: 'mqtt://h:1', prefix: 'plant7', qos: 1, seed: 42 });
    const e = run(['--devices=3', '--interval=10', '--duration=1.5', '--url=mqtts://h:8883', '--prefix=x', '--qos=0', '--seed=0']);
    expect(e).toEqual({ devices: 3, intervalMs: 10, durationMs: 1500, url: 'mqtts://h:8883', prefix: 'x', qos: 0, seed: 0 });
  });

  it('treats --duration 0 as until stopped, and accepts the limits', () => {
    expect(run(['--duration', '0']).durationMs).toBeUndefined();
    expect(run(['--duration', '0.0004']).durationMs).toBe(1);
    expect(run(['--devices', String(LIMITS.maxDevices)]).devices).toBe(LIMITS.maxDevices);
    expect(run(['--interval', String(LIMITS.maxIntervalMs)]).intervalMs).toBe(LIMITS.maxIntervalMs);
    expect(run(['--seed', String(LIMITS.maxSeed)]).seed).toBe(4294967295);
    expect(run(['--duration', String(LIMITS.maxDurationS)]).durationMs).toBe(LIMITS.maxDurationS * 1000);
    expect(run(['--url', 'mqtt://[::1]:1883']).url).toBe('mqtt://[::1]:1883');
    expect(run(['--url', 'mqtt://h']).url).toBe('mqtt://h');
  });

  it('gives help for --help and -h, whatever else is there', () => {
    expect(parseArgs(['--help'], {})).toEqual({ help: true });
    expect(parseArgs(['-h'], {})).toEqual({ help: true });
    expect(parseArgs(['--devices', '5', '--help'], {})).toEqual({ help: true });
  });

  it.each([
    [['--devices', '0'], /^--devices must be a number of devices \(an integer 1\.\.10000\), got 0$/],
    [['--devices', '10001'], /^--devices .*got 10001$/],
    [['--devices', 'ten'], /^--devices .*got "ten"$/],
    [['--devices', '2.5'], /^--devices .*got "2\.5"$/],
    [['--devices', '-3'], /^--devices .*got "-3"$/],
    [['--interval', '9'], /^--interval must be an interval in ms \(an integer 10\.\.86400000\), got 9$/],
    [['--interval', '1e3'], /^--interval .*got "1e3"$/],
    [['--duration', '-1'], /^--duration must be a number of seconds >= 0 \(0 = until stopped\), got "-1"$/],
    [['--duration', '1m'], /^--duration .*got "1m"$/],
    [['--duration', '99999999'], /^--duration must be at most 31536000 s/],
    [['--url', 'http://h:1'], /^--url must use mqtt:\/\/ or mqtts:\/\/, got "http:\/\/h:1"$/],
    [['--url', 'h:1883'], /^--url must use mqtt:\/\/ or mqtts:\/\//],
    [['--url', 'mqtt://'], /^--url (has no host|must be a broker URL)/],
    [['--url', 'mqtt://h:99999'], /^--url must be a broker URL/],
    [['--url', 'mqtt://h:0'], /^--url has port 0/],
    [['--url', 'mqtt://h:1/path'], /^--url must be just mqtt:\/\/host:port/],
    [['--url', 'localhost'], /^--url must be a broker URL/],
    [['--prefix', 'a/b'], /^--prefix must be one topic segment/],
    [['--prefix', 'dev+'], /^--prefix must be one topic segment/],
    [['--prefix', '#'], /^--prefix must be one topic segment/],
    [['--prefix', 'x'.repeat(129)], /^--prefix must be one topic segment/],
    [['--qos', '2'], /^--qos must be 0 or 1, got "2"$/],
    [['--qos', 'one'], /^--qos must be 0 or 1, got "one"$/],
    [['--seed', '-1'], /^--seed must be a seed \(an integer 0\.\.4294967295\), got "-1"$/],
    [['--seed', '4294967296'], /^--seed .*got 4294967296$/],
    [['--seed', 'abc'], /^--seed .*got "abc"$/],
    [['--frobnicate'], /^unknown flag --frobnicate \(known: --devices, --interval/],
    [['--frobnicate=1'], /^unknown flag --frobnicate /],
    [['-d', '5'], /^unknown flag -d /],
    [['50'], /^unexpected argument "50"/],
    [['--devices'], /^--devices needs a value$/],
    [['--devices', '--interval', '5'], /^--devices needs a value$/],
    [['--devices='], /^--devices needs a value$/],
    [['--interval', ''], /^--interval needs a value$/],
    [['--devices', '5', '--devices', '6'], /^--devices is given more than once$/],
  ])('rejects %j', (argv, message) => {
    expect(usage(argv)).toMatch(message);
  });
});

describe('simulate: schedule and output', () => {
  it('spreads the devices evenly across the interval', () => {
    const offsets = Array.from({ length: 5 }, (_, n) => slotTime(n, 5, 200));
    expect(offsets).toEqual([0, 40, 80, 120, 160]);
    // The next round starts one interval later.
    expect(slotTime(5, 5, 200)).toBe(200);
    expect(slotTime(7, 5, 200)).toBe(280);
    expect(slotTime(3, 3, 1000)).toBe(1000);
  });

  it('counts the publishes of a full run', () => {
    expect(slotsIn(2000, 5, 200)).toBe(50);
    expect(slotsIn(60_000, 50, 1000)).toBe(3000);
    expect(slotsIn(1, 5, 200)).toBe(1);
    expect(slotsIn(250, 1, 200)).toBe(2);
  });

  it('formats a summary line with counts and rate', () => {
    expect(summaryLine('done:', 2000, { published: 50, errors: 1, dropped: 2 })).toBe(
      '[simulate] done: 2.0s published=50 errors=1 dropped=2 rate=25.0/s',
    );
    expect(summaryLine('running', 0, { published: 0, errors: 0, dropped: 0 })).toMatch(/rate=0\.0\/s$/);
  });

  it('hides a password in the broker URL', () => {
    expect(redactUrl('mqtt://user:secret@h:1883')).toBe('mqtt://user:***@h:1883');
    expect(redactUrl('mqtt://h:1883')).toBe('mqtt://h:1883');
  });
});
