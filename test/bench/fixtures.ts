/**
 * Deterministic telemetry fixtures for the benches: the same seed gives the
 * same data on every run, so runs compare. Arrays have a power-of-two length
 * so cases cycle through them with `i & (length - 1)`.
 */
import { mulberry32 } from '../../runtime/sim-model';

/** mulberry32, the simulator's seeded PRNG in [0, 1). */
export const rng = (seed: number): (() => number) => mulberry32(seed);

export const FIXTURE_COUNT = 1024;
export const BATCH_SIZE = 100;

/** 2026-01-01T00:00:00Z: event times are spread over the following day. */
const T0 = Date.UTC(2026, 0, 1);

const round2 = (v: number): number => Math.round(v * 100) / 100;

export interface TelemetryValues {
  device: string;
  ts: number;
  temperature: number;
  humidity: number;
  vibration: number;
}

/** Varied, plausible values for `count` messages from 64 devices. */
export function telemetryValues(count = FIXTURE_COUNT, seed = 1): TelemetryValues[] {
  const r = rng(seed);
  const out: TelemetryValues[] = [];
  for (let i = 0; i < count; i++) {
    out.push({
      device: `sensor-${String(Math.floor(r() * 64)).padStart(3, '0')}`,
      ts: T0 + Math.floor(r() * 86_400_000),
      temperature: round2(-10 + r() * 60),
      humidity: round2(r() * 100),
      vibration: round2(r() * 20),
    });
  }
  return out;
}

/** Canonical Thingwire readings: `{ device, ts, metrics }`. */
export function canonicalReadings(count = FIXTURE_COUNT, seed = 1): Array<Record<string, unknown>> {
  return telemetryValues(count, seed).map((v) => ({
    device: v.device,
    ts: v.ts,
    metrics: { temperature: v.temperature, humidity: v.humidity, vibration: v.vibration },
  }));
}

/** What a simple device publishes on `devices/{device}/telemetry`: three metrics and ts, no device. */
export function flatPayloads(count = FIXTURE_COUNT, seed = 1): Array<Record<string, unknown>> {
  return telemetryValues(count, seed).map((v) => ({
    ts: v.ts,
    temperature: v.temperature,
    humidity: v.humidity,
    vibration: v.vibration,
  }));
}

export function topicFor(device: string): string {
  return `devices/${device}/telemetry`;
}

/** Splits `items` into consecutive full batches of `size`; a shorter tail is left out. */
export function batches<T>(items: readonly T[], size = BATCH_SIZE): T[][] {
  const out: T[][] = [];
  for (let i = 0; i + size <= items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A realistic telemetry schema: device, ts and three bounded metrics, all required; optional string tags. */
export const TELEMETRY_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Environmental sensor reading',
  type: 'object',
  required: ['device', 'ts', 'metrics'],
  properties: {
    device: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' },
    ts: { type: 'integer', minimum: 946684800000, maximum: 4102444800000 },
    metrics: {
      type: 'object',
      required: ['temperature', 'humidity', 'vibration'],
      properties: {
        temperature: { type: 'number', minimum: -40, maximum: 125, unit: 'degC' },
        humidity: { type: 'number', minimum: 0, maximum: 100, unit: '%' },
        vibration: { type: 'number', minimum: 0, maximum: 50, unit: 'mm/s' },
      },
    },
    tags: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

/**
 * Readings that fail TELEMETRY_SCHEMA in the ways devices get it wrong:
 * out of range, missing metric, wrong type, bad device id, ts as a string.
 */
export function invalidReadings(count = FIXTURE_COUNT, seed = 2): Array<Record<string, unknown>> {
  const base = canonicalReadings(count, seed);
  return base.map((o, i) => {
    const m = { ...(o.metrics as Record<string, unknown>) };
    switch (i % 5) {
      case 0:
        m.temperature = 150 + (i % 50);
        return { ...o, metrics: m };
      case 1:
        delete m.humidity;
        return { ...o, metrics: m };
      case 2:
        m.vibration = String(m.vibration);
        return { ...o, metrics: m };
      case 3:
        return { ...o, device: `-bad id ${i}` };
      default:
        return { ...o, ts: new Date(o.ts as number).toISOString() };
    }
  });
}
