/**
 * InfluxV2Backend (@influxdata/influxdb-client, /api/v2/write) against a real VictoriaMetrics, read back
 * through its export API (fields become `measurement_field` series); its InfluxQL query path and /ping
 * fallback against a real influxd 1.x (the same /query endpoint InfluxDB 2.x/3.x offer for v1
 * compatibility); and the client's HTTP errors, Retry-After and "no retry, no buffer" on a scripted server.
 */
import { InfluxDB, setLogger } from '@influxdata/influxdb-client';
import * as zlib from 'node:zlib';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { InfluxV1Backend } from '../../nodes/lib/store/influx-v1';
import { InfluxV2Backend, clientWriteOptions } from '../../nodes/lib/store/influx-v2';
import { StoreError, type Batch, type Point } from '../../nodes/lib/store/types';
import { freePort, sleep, waitFor } from '../support/services';
import { removeDataDir, startFakeHttp, startInfluxV1, startVictoriaMetrics, type FakeHttp, type InfluxV1Service, type VictoriaMetricsService } from '../support/tsdb';

jest.setTimeout(120_000);

function batchOf(points: Point[]): Batch {
  return { lines: points.map(encodePoint).join('\n'), count: points.length };
}

async function storeError(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof StoreError) return e;
    throw new Error(`expected a StoreError, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected a StoreError, but it succeeded');
}

// Recent timestamps: VictoriaMetrics drops samples outside its retention.
const T0 = Math.floor((Date.now() - 600_000) / 1000) * 1000;

describe('InfluxV2Backend with VictoriaMetrics', () => {
  let vm: VictoriaMetricsService;
  let backend: InfluxV2Backend;

  beforeAll(async () => {
    vm = await startVictoriaMetrics();
    backend = new InfluxV2Backend({ url: vm.url, token: 'unused-by-vm', org: 'acme', bucket: 'thingwire', timeoutMs: 10_000 });
  });
  afterAll(async () => {
    await backend?.close();
    await vm?.stop();
    removeDataDir(vm);
  });

  test('health: /health answers OK', async () => {
    expect(await backend.health()).toEqual({ ok: true, detail: 'OK, bucket thingwire' });
    expect(backend.description).toBe(`influxdb-v2 ${vm.url} org=acme bucket=thingwire`);
  });

  test('batches land as measurement_field series with their tags, floats, integers and booleans', async () => {
    await backend.write(
      batchOf([
        { measurement: 'telemetry', tags: { device: 'd1', site: 'hall 1, "north"' }, fields: { temperature: 21.5, count: 3n, on: true }, ts: T0 },
        { measurement: 'telemetry', tags: { device: 'd1', site: 'hall 1, "north"' }, fields: { temperature: 22.25, count: -4n, on: false }, ts: T0 + 1000 },
        { measurement: 'telemetry', tags: { device: 'dev 2 🌡️ ünï' }, fields: { temperature: -1e-3 }, ts: T0 + 2000 },
      ]),
    );
    const got = await vm.exportSeries('{__name__=~"telemetry_.*"}');
    expect(got).toEqual([
      { metric: { __name__: 'telemetry_count', device: 'd1', site: 'hall 1, "north"' }, values: [3, -4], timestamps: [T0, T0 + 1000] },
      { metric: { __name__: 'telemetry_on', device: 'd1', site: 'hall 1, "north"' }, values: [1, 0], timestamps: [T0, T0 + 1000] },
      { metric: { __name__: 'telemetry_temperature', device: 'd1', site: 'hall 1, "north"' }, values: [21.5, 22.25], timestamps: [T0, T0 + 1000] },
      { metric: { __name__: 'telemetry_temperature', device: 'dev 2 🌡️ ünï' }, values: [-0.001], timestamps: [T0 + 2000] },
    ]);
  });

  test('hostile names and values: escaping survives the v2 write path', async () => {
    const device = 'dev "1", \'q\' a=b back\\slash 温度 🔥';
    const tagKey = 'loc ation,"x"=';
    await backend.write(batchOf([{ measurement: 'hostile m,"x"', tags: { device, [tagKey]: 'v =,"🏭"' }, fields: { 'f ,="x"': 1.5, s: 'he said "hi", a=b \\ ok' }, ts: T0 }]));
    const got = await vm.exportSeries('{__name__=~"hostile.*"}');
    // VictoriaMetrics keeps numbers only: a string field is stored as 0.
    expect(got).toEqual([
      { metric: { __name__: 'hostile m,"x"_f ,="x"', device, [tagKey]: 'v =,"🏭"' }, values: [1.5], timestamps: [T0] },
      { metric: { __name__: 'hostile m,"x"_s', device, [tagKey]: 'v =,"🏭"' }, values: [0], timestamps: [T0] },
    ]);
  });

  test('what VictoriaMetrics drops silently (204) that InfluxDB 1.x stores: a newline inside a string field, a backslash before an escaped space', async () => {
    const before = await vm.metric('vm_rows_invalid_total{type="influx"}');
    await backend.write(
      batchOf([
        { measurement: 'vmquirk', tags: { device: 'nl' }, fields: { v: 1, s: 'two\nlines' }, ts: T0 },
        { measurement: 'vmquirk', tags: { device: 'back\\ space' }, fields: { v: 2 }, ts: T0 },
        { measurement: 'vmquirk', tags: { device: 'fine' }, fields: { v: 3 }, ts: T0 },
      ]),
    );
    // VictoriaMetrics splits lines at every newline, quoted or not, and reads `\\` as an escaped backslash
    // (so the space after it ends the tag): those points are refused line by line, the rest is stored.
    expect(await vm.exportSeries('{__name__=~"vmquirk_.*"}')).toEqual([{ metric: { __name__: 'vmquirk_v', device: 'fine' }, values: [3], timestamps: [T0] }]);
    await waitFor('VictoriaMetrics to count the refused lines', async () => (await vm.metric('vm_rows_invalid_total{type="influx"}')) - before === 3);
  });

  test('big batches, gzipped and not, arrive whole', async () => {
    const n = 5000;
    const pts = (m: string): Point[] => Array.from({ length: n }, (_, i) => ({ measurement: m, tags: { device: `d${i % 10}` }, fields: { v: i }, ts: T0 + Math.floor(i / 10) }));
    await backend.write(batchOf(pts('zip_on')));
    const plain = new InfluxV2Backend({ url: vm.url, bucket: 'thingwire', gzip: false });
    await plain.write(batchOf(pts('zip_off')));
    for (const m of ['zip_on_v', 'zip_off_v']) {
      const got = await vm.exportSeries(`{__name__="${m}"}`);
      expect(got).toHaveLength(10);
      expect(got.reduce((a, s) => a + s.values.length, 0)).toBe(n);
      expect(got.find((s) => s.metric.device === 'd7')?.values.slice(0, 3)).toEqual([7, 17, 27]);
    }
  });

  test('malformed lines: VictoriaMetrics answers 204, stores the good lines and drops the bad ones (counted in vm_rows_invalid_total)', async () => {
    const before = await vm.metric('vm_rows_invalid_total{type="influx"}');
    await backend.write({ lines: [`malformed,device=a v=1 ${T0}`, 'garbage', `malformed,device=a v= ${T0 + 1}`, `malformed,device=a v=3 ${T0 + 2}`].join('\n'), count: 4 });
    expect(await vm.exportSeries('{__name__="malformed_v"}')).toEqual([{ metric: { __name__: 'malformed_v', device: 'a' }, values: [1, 3], timestamps: [T0, T0 + 2] }]);
    await waitFor('VictoriaMetrics to count the refused lines', async () => (await vm.metric('vm_rows_invalid_total{type="influx"}')) - before === 2);
  });

  test('an InfluxQL query to VictoriaMetrics is a clear error (it answers /query with its database list)', async () => {
    const err = await storeError(backend.query({ measurement: 'telemetry', fields: ['temperature'], start: T0, end: T0 + 10_000 }));
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/series "databases".*does not seem to run InfluxQL/);
  });

  test('server down: retryable network error; after a restart the same backend writes and earlier data is there', async () => {
    await vm.stop();
    const err = await storeError(backend.write(batchOf([{ measurement: 'down', tags: {}, fields: { v: 1 }, ts: T0 }])));
    expect(err).toMatchObject({ retryable: true, status: undefined });
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(await backend.health()).toEqual({ ok: false, detail: expect.stringMatching(/ECONNREFUSED/) });

    await vm.restart();
    await backend.write(batchOf([{ measurement: 'down', tags: {}, fields: { v: 2 }, ts: T0 + 1 }]));
    expect(await vm.exportSeries('{__name__="down_v"}')).toEqual([{ metric: { __name__: 'down_v' }, values: [2], timestamps: [T0 + 1] }]);
    expect(await vm.exportSeries('{__name__="telemetry_on"}')).toHaveLength(1);
  });
});

describe('InfluxV2Backend InfluxQL and health against influxd 1.x (the v1-compatible /query endpoint)', () => {
  let influx: InfluxV1Service;

  beforeAll(async () => {
    influx = await startInfluxV1();
    await influx.createDatabase('bucket one');
  });
  afterAll(async () => {
    await influx?.stop();
    removeDataDir(influx);
  });

  test('query: the bucket is the database, hostile device ids filter exactly, aggregation works', async () => {
    const devices = ["x' OR '1'='1", 'dev "2" 🌡️', 'plain'];
    await new InfluxV1Backend({ url: influx.url, db: 'bucket one' }).write(
      batchOf(devices.flatMap((device, d) => [0, 1, 2].map((i) => ({ measurement: 'telemetry', tags: { device }, fields: { v: d * 10 + i }, ts: T0 + i * 1000 })))),
    );
    const v2 = new InfluxV2Backend({ url: influx.url, token: 'tok', bucket: 'bucket one' });
    expect((await v2.query({ measurement: 'telemetry', fields: ['v'], devices: [devices[0]], start: T0, end: T0 + 3000 })).series).toEqual([
      { device: devices[0], field: 'v', points: [[T0, 0], [T0 + 1000, 1], [T0 + 2000, 2]] },
    ]);
    // A whole-range aggregate: one point, at the start of the range.
    const agg = await v2.query({ measurement: 'telemetry', fields: ['v'], devices: [devices[1]], start: T0, end: T0 + 3000, agg: 'sum' });
    expect(agg.series).toEqual([{ device: devices[1], field: 'v', points: [[T0, 10 + 11 + 12]] }]);
    const missing = new InfluxV2Backend({ url: influx.url, token: 'tok', bucket: 'no such bucket' });
    expect(await storeError(missing.query({ measurement: 'telemetry', fields: ['v'], start: T0, end: T0 + 1 }))).toMatchObject({ retryable: true, serverMessage: 'database not found: no such bucket' });
  });

  test('health falls back to /ping when /health is missing; a v2 write to InfluxDB 1.6 is 404 (retryable)', async () => {
    const v2 = new InfluxV2Backend({ url: influx.url, token: 'tok', bucket: 'bucket one' });
    expect(await v2.health()).toEqual({ ok: true, detail: expect.stringMatching(/^ping ok \(version 1\.\d+.*\), bucket bucket one$/) });
    const err = await storeError(v2.write(batchOf([{ measurement: 'm', tags: {}, fields: { v: 1 }, ts: T0 }])));
    expect(err).toMatchObject({ retryable: true, status: 404 });
    expect(err.serverMessage).toBe('404 page not found');
  });
});

describe('InfluxV2Backend HTTP details (scripted server)', () => {
  let fake: FakeHttp;
  beforeEach(async () => {
    fake = await startFakeHttp();
  });
  afterEach(() => fake.close());

  const one = batchOf([{ measurement: 'm', tags: { device: 'd' }, fields: { v: 1, s: 'a\nb' }, ts: 1_700_000_000_000 }]);
  const TOKEN = 'sEcReT-t0ken-value';

  test('the write request: /api/v2/write with org, bucket and ms, Token auth, body byte for byte, gzip above ~1 KB', async () => {
    const b = new InfluxV2Backend({ url: `${fake.url}/`, token: TOKEN, org: 'my org', bucket: 'b&ucket' });
    const big = batchOf(Array.from({ length: 100 }, (_, i) => ({ measurement: 'm', tags: { device: 'd' }, fields: { s: `line ${i}\nmore` }, ts: 1_700_000_000_000 + i })));
    await b.write(big);
    await b.write(one);
    const [r1, r2] = fake.requests;
    expect(r1.method).toBe('POST');
    expect(new URL(r1.url, fake.url).pathname).toBe('/api/v2/write');
    expect(Object.fromEntries(new URL(r1.url, fake.url).searchParams)).toEqual({ org: 'my org', bucket: 'b&ucket', precision: 'ms' });
    expect(r1.headers.authorization).toBe(`Token ${TOKEN}`);
    expect(r1.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(r1.raw).toString()).toBe(big.lines);
    expect(r2.headers['content-encoding']).toBeUndefined();
    expect(r2.text).toBe(one.lines);
    expect(b.description).not.toContain(TOKEN);

    await new InfluxV2Backend({ url: fake.url, bucket: 'b', gzip: false }).write(big);
    expect(fake.requests[2].headers['content-encoding']).toBeUndefined();
    expect(fake.requests[2].headers.authorization).toBeUndefined();
    expect(fake.requests[2].text).toBe(big.lines);
  });

  test.each([
    [429, true],
    [500, true],
    [503, true],
    [401, true],
    [403, true],
    [404, true],
    [400, false],
    [413, false],
    [422, false],
  ])('HTTP %i -> retryable %s, sent once, nothing kept', async (status, retryable) => {
    fake.answer({ status, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code: 'x', message: `boom ${status}` }) });
    const b = new InfluxV2Backend({ url: fake.url, token: TOKEN, bucket: 'b' });
    const err = await storeError(b.write(one));
    expect(err).toMatchObject({ retryable, status, serverMessage: `boom ${status}` });
    expect(err.message).not.toContain(TOKEN);
    await sleep(300);
    expect(fake.requests).toHaveLength(1);
  });

  test('Retry-After in seconds and as an HTTP date (the client alone would read neither as ms)', async () => {
    const b = new InfluxV2Backend({ url: fake.url, bucket: 'b' });
    fake.answer({ status: 429, headers: { 'Retry-After': '12', 'Content-Type': 'text/plain' }, body: 'too many' });
    expect(await storeError(b.write(one))).toMatchObject({ retryable: true, retryAfterMs: 12_000, serverMessage: 'too many' });
    fake.answer({ status: 503, headers: { 'Retry-After': new Date(Date.now() + 20_000).toUTCString() } });
    const e = await storeError(b.write(one));
    expect(e.retryAfterMs).toBeGreaterThan(15_000);
    expect(e.retryAfterMs).toBeLessThanOrEqual(20_000);
  });

  test('a server that does not answer in time: retryable timeout, and the request is aborted', async () => {
    fake.answer({ status: 204, delayMs: Infinity });
    const t = Date.now();
    const err = await storeError(new InfluxV2Backend({ url: fake.url, bucket: 'b', timeoutMs: 300 }).write(one));
    expect(err).toMatchObject({ retryable: true });
    expect(err.message).toMatch(/timed out after 300 ms/);
    expect(Date.now() - t).toBeLessThan(5000);
  });

  test('health: /health JSON of InfluxDB 2.x; a failing /health is not ok', async () => {
    fake.answer({ status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'influxdb', message: 'ready for queries and writes', status: 'pass', version: 'v2.7.11' }) });
    expect(await new InfluxV2Backend({ url: fake.url, token: TOKEN, bucket: 'b' }).health()).toEqual({ ok: true, detail: 'influxdb v2.7.11 pass, bucket b' });
    expect(fake.requests[0].headers.authorization).toBe(`Token ${TOKEN}`);
    fake.answer({ status: 401, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code: 'unauthorized', message: 'unauthorized access' }) });
    expect(await new InfluxV2Backend({ url: fake.url, token: TOKEN, bucket: 'b' }).health()).toEqual({ ok: false, detail: '/health answered HTTP 401: unauthorized access' });
  });

  test('the client keeps nothing after a failed flush with our options (and would, with its defaults)', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const ours = new InfluxDB({ url, timeout: 2000 }).getWriteApi('o', 'b', 'ms', clientWriteOptions(true));
    ours.writeRecord(one.lines);
    await expect(ours.flush()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(ours.dispose()).toBe(0);

    const quiet = setLogger({ error: () => undefined, warn: () => undefined });
    try {
      const defaults = new InfluxDB({ url, timeout: 2000 }).getWriteApi('o', 'b', 'ms');
      defaults.writeRecord(one.lines);
      await expect(defaults.flush()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      expect(defaults.dispose()).toBe(1); // held in its retry buffer, to be resent behind our back
    } finally {
      setLogger(quiet);
    }
  });
});
