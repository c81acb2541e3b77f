/**
 * The load generator's message making (runtime/loadgen.ts): a message of 100 readings of the three simulator
 * metrics, as the bytes mqtt.js sends. The text way (readingJson per reading, joined, then encoded, as the generator
 * did until 2026-12-06) is the baseline of the encoder that writes the bytes itself (ReadingEncoder). The
 * generator shares the benchmark machine's cores with the runtime under test, so what it spends a reading is taken
 * from the runtime's figures.
 */
import { metricNames, ReadingEncoder, readingJson } from '../../../runtime/loadgen';
import type { BenchCase } from '../harness';

const BATCH = 100;
const T0 = Date.UTC(2026, 11, 6);
const NAMES = metricNames(3);

const ts = new Float64Array(BATCH);
let seq = 0;

/** The next message's times: one device's readings 1 ms apart. */
function nextTimes(): void {
  const t = T0 + seq;
  for (let j = 0; j < BATCH; j++) ts[j] = t + j;
}

export const loadgenCases: BenchCase[] = [
  {
    group: 'loadgen',
    name: 'message of 100 readings as text, then bytes',
    itemsPerOp: BATCH,
    setup() {
      const enc = new ReadingEncoder(NAMES, '');
      nextTimes();
      const parts = Array.from(ts, (t, j) => readingJson(t, seq + j, NAMES, ''));
      if (!enc.encode(ts, seq, BATCH, false).equals(Buffer.from(`[${parts.join(',')}]`))) throw new Error('loadgen bench: the encoder and the text differ');
    },
    run(n) {
      let bytes = 0;
      const parts = new Array<string>(BATCH);
      for (let i = 0; i < n; i++) {
        nextTimes();
        for (let j = 0; j < BATCH; j++) parts[j] = readingJson(ts[j], seq + j, NAMES, '');
        bytes += Buffer.from(`[${parts.join(',')}]`).length;
        seq += BATCH;
      }
      return bytes;
    },
  },
  {
    group: 'loadgen',
    name: 'message of 100 readings, ReadingEncoder',
    itemsPerOp: BATCH,
    baseline: 'loadgen/message of 100 readings as text, then bytes',
    run(n) {
      const enc = new ReadingEncoder(NAMES, '');
      let bytes = 0;
      for (let i = 0; i < n; i++) {
        nextTimes();
        bytes += enc.encode(ts, seq, BATCH, false).length;
        seq += BATCH;
      }
      return bytes;
    },
  },
];
