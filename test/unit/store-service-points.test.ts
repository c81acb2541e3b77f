/**
 * The store service takes points without their lines (writePoints) only for the embedded store, the one backend
 * that reads points; the write node asks `takesPoints` and gives every other store lines.
 */
import * as fs from 'node:fs';
import { StoreService } from '../../nodes/lib/store/service';
import type { StoreSettings } from '../../nodes/lib/store/env';
import type { Point } from '../../nodes/lib/store/types';
import { tmpDir } from '../support/services';

const T = Date.UTC(2026, 0, 1);
const points: Point[] = [
  { measurement: 'telemetry', tags: { device: 'd1' }, fields: { v: 1 }, ts: T },
  { measurement: 'telemetry', tags: { device: 'd1' }, fields: { v: 2 }, ts: T + 1 },
];

test.each<[string, boolean, StoreSettings]>([
  ['embedded', true, { backend: 'embedded' }],
  ['influxdb-v1', false, { backend: 'influxdb-v1', url: 'http://127.0.0.1:9', db: 'x' }],
])('%s: takes points: %s', async (_name, takes, settings) => {
  const dataDir = tmpDir('store-service-points');
  const service = new StoreService({ id: 'points-test', settings, dataDir, flushIntervalMs: 10 });
  try {
    expect(service.takesPoints).toBe(takes);
    // Room in memory for a burst while the backend answers; the outage bound stays 4 batches.
    expect(service.writer.options).toMatchObject({ maxMemoryBatches: 4, burstMemoryBatches: 256 });
  } finally {
    await service.close(100);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('embedded: points given to writePoints are durable and read back', async () => {
  const dataDir = tmpDir('store-service-points');
  const service = new StoreService({ id: 'points-test', settings: { backend: 'embedded' }, dataDir, flushIntervalMs: 10 });
  try {
    const outcome = await new Promise((resolve) => service.writePoints(points, resolve));
    expect(outcome).toBe('durable');
    const r = await service.query({ measurement: 'telemetry', fields: ['v'], start: T, end: T + 10 });
    expect(r.series).toEqual([{ device: 'd1', field: 'v', points: [[T, 1], [T + 1, 2]] }]);
  } finally {
    await service.close(100);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
