/**
 * The device simulator's model: realistic readings for a fleet of simulated
 * devices. Pure: no I/O, no clock, no Math.random. Event time and the seed are
 * passed in, so the same (seed, device, time) always gives the same reading.
 *
 * Per device (its "profile", drawn once from the seed and its index):
 * - temperature (°C): a daily cycle over 24 h of event time (UTC), a sinusoid
 *   with the device's own base, amplitude and peak hour, plus gaussian noise;
 * - humidity (%): anti-correlated with the temperature cycle, plus noise,
 *   clamped to 0..100;
 * - vibration (mm/s): a healthy base level that drifts upward with days since
 *   the fleet's origin (wear), each device at its own rate and a minority of
 *   devices much faster; plus noise; never negative.
 */

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** Bounds of the starter flow's reading schema; every sample stays inside them. */
export const TEMPERATURE_RANGE = { min: -50, max: 150 } as const;
export const HUMIDITY_RANGE = { min: 0, max: 100 } as const;

/** Share of devices (in expectation) whose vibration degrades fast. */
export const FAST_DEGRADER_SHARE = 0.15;

/** A uniform pseudo-random number generator on [0, 1). */
export type Rng = () => number;

/** The JSON payload a simulated device publishes on `{prefix}/{device}/telemetry`. */
export interface SimPayload {
  /** Event time, integer ms since the epoch. */
  ts: number;
  /** °C, 2 decimals. */
  temperature: number;
  /** %, 1 decimal, 0..100. */
  humidity: number;
  /** mm/s RMS, 3 decimals, >= 0. */
  vibration: number;
}

/** One simulated device's fixed character. */
export interface DeviceProfile {
  /** 0-based position in the fleet. */
  index: number;
  /** Device id, e.g. `sim-001`. */
  id: string;
  /** Mean temperature over a day, °C. */
  tempBase: number;
  /** Half the peak-to-trough swing of the daily cycle, °C. */
  tempAmplitude: number;
  /** Hour of the day (UTC, 0..24) at which the cycle peaks. */
  tempPeakHour: number;
  /** Standard deviation of the temperature noise, °C. */
  tempNoise: number;
  /** Humidity at the daily mean temperature, %. */
  humidityBase: number;
  /** Humidity lost per °C above the daily mean (gained below), %/°C. */
  humidityPerDegree: number;
  /** Standard deviation of the humidity noise, %. */
  humidityNoise: number;
  /** Vibration level at the fleet's origin, mm/s. */
  vibrationBase: number;
  /** Upward drift of the vibration level, mm/s per day. */
  vibrationDriftPerDay: number;
  /** True for the minority of devices that wear out fast. */
  fastDegrader: boolean;
  /** Relative standard deviation of the vibration noise (times the current level). */
  vibrationNoise: number;
}

export interface FleetOptions {
  /** Number of devices, >= 1. */
  count: number;
  /** Any integer; the same seed gives the same fleet and the same readings. */
  seed: number;
  /** Event time (ms epoch) at which the vibration drift starts (the fleet's "installation"). */
  origin: number;
}

export interface SimFleet {
  readonly count: number;
  readonly seed: number;
  readonly origin: number;
  readonly devices: readonly DeviceProfile[];
}

/** 32-bit integer hash of a list of numbers (integers; larger values are split into 32-bit halves). */
export function hashSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    const lo = p >>> 0;
    const hi = Math.floor(p / 0x1_0000_0000) >>> 0;
    for (const word of [lo, hi]) {
      h = Math.imul(h ^ word, 0x01000193);
      h ^= h >>> 15;
      h = Math.imul(h, 0x2c1b3c6d);
      h ^= h >>> 12;
    }
  }
  // Final avalanche (murmur3 fmix32).
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: a small, fast, well-distributed seeded PRNG on [0, 1). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal sample (Box-Muller) from a uniform generator. */
export function gaussian(rng: Rng): number {
  let u = rng();
  while (u <= Number.EPSILON) u = rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Digits of the device number in ids: the width of the count, at least 3 (`sim-001`, ..., `sim-1000` for 1000+). */
export function idWidth(count: number): number {
  return Math.max(3, String(Math.max(1, Math.floor(count))).length);
}

/** Id of the device at 0-based `index` in a fleet of `count`: `sim-001` is index 0. */
export function deviceId(index: number, count: number): string {
  return `sim-${String(index + 1).padStart(idWidth(count), '0')}`;
}

function between(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** Draws one device's profile from `rng`. */
export function deviceProfile(index: number, count: number, rng: Rng): DeviceProfile {
  const fastDegrader = rng() < FAST_DEGRADER_SHARE;
  return {
    index,
    id: deviceId(index, count),
    tempBase: between(rng, 16, 28),
    tempAmplitude: between(rng, 1.5, 7),
    tempPeakHour: between(rng, 12, 17),
    tempNoise: between(rng, 0.1, 0.35),
    humidityBase: between(rng, 35, 65),
    humidityPerDegree: between(rng, 1.5, 3.5),
    humidityNoise: between(rng, 0.5, 1.5),
    vibrationBase: between(rng, 0.8, 2.5),
    vibrationDriftPerDay: fastDegrader ? between(rng, 0.15, 0.5) : between(rng, 0.003, 0.03),
    fastDegrader,
    vibrationNoise: between(rng, 0.03, 0.08),
  };
}

/**
 * The fleet for a seed. Each device's profile depends only on the seed and its
 * index (not on the count), so device 3 is the same device in a fleet of 5 or 500.
 */
export function createFleet(opts: FleetOptions): SimFleet {
  const { count, seed, origin } = opts;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be an integer >= 1, got ${count}`);
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  if (!Number.isFinite(origin)) throw new RangeError(`origin must be a finite ms epoch, got ${origin}`);
  const devices: DeviceProfile[] = [];
  for (let i = 0; i < count; i++) devices.push(deviceProfile(i, count, mulberry32(hashSeed(seed, i, 0x5eed))));
  return { count, seed, origin, devices };
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/** Hour of the day (UTC, 0 <= h < 24) of an event time. */
export function hourOfDay(t: number): number {
  return (((t % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS;
}

/** The noiseless daily temperature cycle of a device at event time t. */
export function temperatureCycle(p: DeviceProfile, t: number): number {
  return p.tempBase + p.tempAmplitude * Math.cos((2 * Math.PI * (hourOfDay(t) - p.tempPeakHour)) / 24);
}

/** The noiseless vibration level of a device at event time t (origin = when drift starts). */
export function vibrationLevel(p: DeviceProfile, t: number, origin: number): number {
  const days = Math.max(0, (t - origin) / DAY_MS);
  return p.vibrationBase + p.vibrationDriftPerDay * days;
}

/** One reading of a device at event time t, with noise drawn from `rng`. */
export function sample(p: DeviceProfile, t: number, origin: number, rng: Rng): SimPayload {
  const ts = Math.floor(t);
  const cycle = temperatureCycle(p, ts);
  const temperature = clamp(cycle + p.tempNoise * gaussian(rng), TEMPERATURE_RANGE.min, TEMPERATURE_RANGE.max);
  const humidity = clamp(
    p.humidityBase - p.humidityPerDegree * (cycle - p.tempBase) + p.humidityNoise * gaussian(rng),
    HUMIDITY_RANGE.min,
    HUMIDITY_RANGE.max,
  );
  const level = vibrationLevel(p, ts, origin);
  const vibration = Math.max(0, level * (1 + p.vibrationNoise * gaussian(rng)));
  return {
    ts,
    temperature: round(temperature, 2),
    humidity: round(humidity, 1),
    // Math.max again: rounding never yields -0 or a negative.
    vibration: Math.max(0, round(vibration, 3)),
  };
}

/**
 * The reading of device `index` at event time t. The noise is seeded from
 * (seed, index, t), so the result does not depend on what was asked before.
 */
export function reading(fleet: SimFleet, index: number, t: number): SimPayload {
  const p = fleet.devices[index];
  if (p === undefined) throw new RangeError(`device index ${index} is outside 0..${fleet.count - 1}`);
  const ts = Math.floor(t);
  return sample(p, ts, fleet.origin, mulberry32(hashSeed(fleet.seed, index, ts)));
}
