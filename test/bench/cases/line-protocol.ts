/**
 * Line-protocol encoding of points mapped from readings: issue 3 asks for at
 * least 1,000,000 points/s on one core. Also the mapping Reading -> Point, and
 * parsing (what the embedded store does on every write).
 */
import type { Reading } from '../../../nodes/lib/contract';
import { encodePoint, parseLine } from '../../../nodes/lib/line-protocol';
import { DEFAULT_POINT_SCHEMA, readingToPoint } from '../../../nodes/lib/store/points';
import type { Point } from '../../../nodes/lib/store/types';
import type { BenchCase } from '../harness';
import { canonicalReadings } from '../fixtures';

let readings: Reading[];
let points: Point[];
let lines: string[];

function fixtures(): void {
  if (points) return;
  readings = canonicalReadings() as unknown as Reading[];
  points = readings.map((r) => readingToPoint(r, undefined, DEFAULT_POINT_SCHEMA));
  lines = points.map(encodePoint);
  // A few hostile names so the escaping paths are warm and measured in the mix.
  for (let i = 0; i < points.length; i += 16) {
    points[i] = { ...points[i], tags: { ...points[i].tags, site: 'Málaga, bay 3' }, fields: { ...points[i].fields, note: 'say "hi"' } };
  }
  for (const p of points) if (encodePoint(p).length === 0) throw new Error('empty line');
}

export const lineProtocolCases: BenchCase[] = [
  {
    group: 'line-protocol',
    name: 'encodePoint (3 fields, device tag)',
    target: { min: 1_000_000, per: 'op', unit: 'points' },
    setup: fixtures,
    run(n) {
      let len = 0;
      for (let i = 0; i < n; i++) len += encodePoint(points[i % points.length]).length;
      return len;
    },
  },
  {
    group: 'line-protocol',
    name: 'readingToPoint + encodePoint',
    setup: fixtures,
    run(n) {
      let len = 0;
      for (let i = 0; i < n; i++) len += encodePoint(readingToPoint(readings[i % readings.length], undefined, DEFAULT_POINT_SCHEMA)).length;
      return len;
    },
  },
  {
    group: 'line-protocol',
    name: 'parseLine',
    setup: fixtures,
    run(n) {
      let k = 0;
      for (let i = 0; i < n; i++) k += parseLine(lines[i % lines.length]).ts & 1;
      return k;
    },
  },
];
