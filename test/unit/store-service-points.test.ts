/**
 * The store service hands the writer the points that came with the lines only for the embedded store (the only
 * backend that reads them): for InfluxDB they would only be held in memory until the batch is written.
 */
import * as fs from 'node:fs';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { StoreService } from '../../nodes/lib/store/service';
import type { StoreSettings } from '../../nodes/lib/store/env';
import type { Point } from '../../nodes/lib/store/types';
import { tmpDir } from '../support/services';

const points: Point[] = [{ measurement: 'telemetry', tags: { device: 'd1' }, fields: { v: 1 }, ts: Date.UTC(2026, 0, 1) }];
const lines = points.map(encodePoint);

test.each<[string, boolean, StoreSettings]>([
  ['embedded', true, { backend: 'embedded' }],
  // Nothing listens on port 9: the write is retried and spooled, and the test only looks at what add() got.
  ['influxdb-v1', false, { backend: 'influxdb-v1', url: 'http://127.0.0.1:9', db: 'x' }],
])('%s: the points go to the writer: %s', async (_name, kept, settings) => {
  const dataDir = tmpDir('store-service-points');
  const service = new StoreService({ id: 'points-test', settings, dataDir, flushIntervalMs: 10 });
  const add = jest.spyOn(service.writer, 'add');
  try {
    service.write(lines, undefined, points);
    expect(add).toHaveBeenCalledWith(lines, undefined, kept ? points : undefined);
  } finally {
    await service.close(100);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
