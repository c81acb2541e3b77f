/**
 * normalise() benches, plus the baseline they are compared with: plain
 * JSON.parse of the same Buffers, the one cost the MQTT path cannot avoid.
 */
import { DEFAULT_NORMALISE_OPTIONS, normalise, type NormaliseContext, type NormaliseResult } from '../../../nodes/lib/normalise';
import { parsePayload } from '../../../nodes/lib/payload';
import type { BenchCase } from '../harness';
import { BATCH_SIZE, batches, canonicalReadings, flatPayloads, telemetryValues, topicFor } from '../fixtures';

const opts = DEFAULT_NORMALISE_OPTIONS;
export const JSON_PARSE_BASELINE = 'baseline/JSON.parse(Buffer) flat';

let flat: Array<Record<string, unknown>>;
let flatCtx: NormaliseContext[];
let canonical: Array<Record<string, unknown>>;
let canonicalBatches: Array<Array<Record<string, unknown>>>;
let buffers: Buffer[];
const noCtx: NormaliseContext = {};

function expectClean(r: NormaliseResult, what: string, readings = 1): void {
  if (r.rejects.length !== 0 || r.readings.length !== readings) {
    throw new Error(`${what} should normalise cleanly: ${JSON.stringify(r.rejects[0] ?? r)}`);
  }
}

function fixtures(): void {
  if (flat) return;
  const values = telemetryValues();
  flat = flatPayloads();
  flatCtx = values.map((v) => ({ topic: topicFor(v.device) }));
  canonical = canonicalReadings();
  canonicalBatches = batches(canonical, BATCH_SIZE);
  buffers = flat.map((o) => Buffer.from(JSON.stringify(o), 'utf8'));
  for (let i = 0; i < flat.length; i++) {
    expectClean(normalise(flat[i], flatCtx[i], opts), 'flat payload');
    expectClean(normalise(canonical[i], noCtx, opts), 'canonical reading');
    expectClean(normalise(parsePayload(buffers[i]), flatCtx[i], opts), 'flat Buffer');
  }
  for (const b of canonicalBatches) expectClean(normalise(b, noCtx, opts), 'batch', b.length);
  // A running flow also sees bad payloads; let normalise() meet its reject paths before timing.
  const bad: Array<[unknown, NormaliseContext]> = [
    [{ device: '-bad id', ts: 1, metrics: { t: 1 } }, noCtx],
    [{ ts: 1e9, temperature: 1 }, flatCtx[0]],
    [{ ts: flat[0].ts, note: 'no metrics' }, flatCtx[0]],
    [{ device: 'other', temperature: 1 }, flatCtx[0]],
    ['text', noCtx],
  ];
  for (let k = 0; k < 100; k++) {
    for (const [v, ctx] of bad) if (normalise(v, ctx, opts).rejects.length !== 1) throw new Error(`should be rejected: ${JSON.stringify(v)}`);
  }
}

/** Keeps every result alive: reading count plus a few bits of each reading's ts. */
function consume(r: NormaliseResult): number {
  const first = r.readings[0];
  return r.readings.length + r.rejects.length * 1000 + (first === undefined ? 0 : first.ts & 7);
}

export const normaliserCases: BenchCase[] = [
  {
    group: 'baseline',
    name: 'JSON.parse(Buffer) flat',
    setup: fixtures,
    run(n) {
      const data = buffers;
      const mask = data.length - 1;
      let s = 0;
      for (let i = 0; i < n; i++) {
        const o = JSON.parse(data[i & mask].toString('utf8')) as { ts: number };
        s += o.ts & 7;
      }
      return s;
    },
  },
  {
    group: 'normaliser',
    name: 'parsePayload+normalise (Buffer, flat, topic)',
    baseline: JSON_PARSE_BASELINE,
    setup: fixtures,
    run(n) {
      const data = buffers;
      const ctx = flatCtx;
      const mask = data.length - 1;
      let s = 0;
      for (let i = 0; i < n; i++) s += consume(normalise(parsePayload(data[i & mask]), ctx[i & mask], opts));
      return s;
    },
  },
  {
    group: 'normaliser',
    name: 'normalise flat (3 metrics + ts, topic)',
    baseline: JSON_PARSE_BASELINE,
    setup: fixtures,
    run(n) {
      const data = flat;
      const ctx = flatCtx;
      const mask = data.length - 1;
      let s = 0;
      for (let i = 0; i < n; i++) s += consume(normalise(data[i & mask], ctx[i & mask], opts));
      return s;
    },
  },
  {
    group: 'normaliser',
    name: 'normalise canonical reading',
    baseline: JSON_PARSE_BASELINE,
    setup: fixtures,
    run(n) {
      const data = canonical;
      const mask = data.length - 1;
      let s = 0;
      for (let i = 0; i < n; i++) s += consume(normalise(data[i & mask], noCtx, opts));
      return s;
    },
  },
  {
    group: 'normaliser',
    name: `normalise batch of ${BATCH_SIZE} canonical`,
    itemsPerOp: BATCH_SIZE,
    setup: fixtures,
    run(n) {
      const data = canonicalBatches;
      const count = data.length;
      let s = 0;
      for (let i = 0; i < n; i++) s += consume(normalise(data[i % count], noCtx, opts));
      return s;
    },
  },
];
