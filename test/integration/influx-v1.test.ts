/**
 * InfluxV1Backend against a real influxd 1.x on loopback: hostile names and values written and read
 * back exactly, field types, bucket aggregation, device filters and injection attempts, and what the
 * server answers when things go wrong (type conflict, bad line, missing database or retention policy,
 * wrong password, server down). Answers the real server does not give on demand (429, 503, 413, slow)
 * come from a scripted fake server.
 */
import * as zlib from 'node:zlib';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { InfluxV1Backend, parseRetryAfter } from '../../nodes/lib/store/influx-v1';
import { StoreError, type Batch, type Point, type RangeQuery } from '../../nodes/lib/store/types';
import { freePort } from '../support/services';
import { removeDataDir, startFakeHttp, startInfluxV1, type FakeHttp, type InfluxV1Service } from '../support/tsdb';

jest.setTimeout(120_000);

const DB = 'thingwire';

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

// Recent, whole-minute-aligned base time so buckets are predictable.
const T0 = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;

describe('InfluxV1Backend with influxd 1.x', () => {
  let influx: InfluxV1Service;
  let backend: InfluxV1Backend;

  beforeAll(async () => {
    influx = await startInfluxV1();
    backend = new InfluxV1Backend({ url: influx.url, db: DB, timeoutMs: 10_000 });
    await backend.createDatabase();
  });
  afterAll(async () => {
    await backend?.close();
    await influx?.stop();
    removeDataDir(influx);
  });

  test('health reports the version and whether the database exists; createDatabase is idempotent', async () => {
    const h = await backend.health();
    expect(h).toEqual({ ok: true, detail: expect.stringMatching(/^InfluxDB 1\.\d+\.\d+.*db thingwire ready$/) });
    await backend.createDatabase();
    expect(await influx.databases()).toContain(DB);

    const missing = new InfluxV1Backend({ url: influx.url, db: 'not_there', timeoutMs: 5000 });
    expect(await missing.health()).toEqual({ ok: false, detail: expect.stringContaining('database not found: not_there') });
    expect(missing.description).toBe(`influxdb-v1 ${influx.url} db=not_there`);
    const norp = new InfluxV1Backend({ url: influx.url, db: DB, rp: 'nope', timeoutMs: 5000 });
    expect(await norp.health()).toEqual({ ok: false, detail: expect.stringContaining('retention policy nope not found on db thingwire') });
  });

  test('hostile measurement, tag and field names and string values round-trip exactly', async () => {
    const measurement = 'tele metry,"q" \'s\' a=b \\x ünï 🌡️';
    const device = 'dev "1", \'quoted\' a=b \\ back 温度 🔥';
    const fields = {
      'temp °C, "x"=y \\z': 21.5,
      count: 42n,
      negative: -7n,
      whole_float: 42,
      tiny: 1e-7,
      big_int: 9_007_199_254_740_991n,
      on: true,
      off: false,
      text: 'he said "hi", a=b \\ back\\slash\nnew line 😀 ünï',
      empty: '',
      trailing_backslash: 'ends with \\',
    };
    const ts = T0 + 1234;
    await backend.write(batchOf([{ measurement, tags: { device, 'loc ation,"x"': 'hall =1 \\ 🏭' }, fields, ts }]));

    const r = await backend.query({ measurement, fields: Object.keys(fields), devices: [device], start: T0, end: T0 + 60_000 });
    expect(r.series).toEqual(
      Object.entries(fields).map(([field, v]) => ({ device, field, points: [[ts, typeof v === 'bigint' ? Number(v) : v]] })),
    );

    // Types as stored: bigints are integers, numbers floats, booleans and strings as such.
    const keys = await influx.query(`SHOW FIELD KEYS FROM "${measurement.replace(/[\\"]/g, '\\$&')}"`, DB);
    const types = Object.fromEntries((keys.results[0].series?.[0].values ?? []).map(([k, t]) => [k, t]));
    expect(types).toEqual({
      'temp °C, "x"=y \\z': 'float',
      count: 'integer',
      negative: 'integer',
      whole_float: 'float',
      tiny: 'float',
      big_int: 'integer',
      on: 'boolean',
      off: 'boolean',
      text: 'string',
      empty: 'string',
      trailing_backslash: 'string',
    });
    // The tag as stored, read without our backend.
    const tagValues = await influx.query(`SHOW TAG VALUES FROM "${measurement.replace(/[\\"]/g, '\\$&')}" WITH KEY = "loc ation,\\"x\\""`, DB);
    expect(tagValues.results[0].series?.[0].values).toEqual([['loc ation,"x"', 'hall =1 \\ 🏭']]);
  });

  test('device filter with hostile ids returns exactly that device', async () => {
    const devices = ['plain', 'dev "1"', "dev '2'", 'dev\\3', 'dev 4 🌡️', "x' OR '1'='1", 'x" OR "1"="1', 'a,b=c d'];
    const points = devices.map((device, i) => ({ measurement: 'filter', tags: { device }, fields: { v: i }, ts: T0 + i }));
    await backend.write(batchOf(points));
    for (const [i, device] of devices.entries()) {
      const r = await backend.query({ measurement: 'filter', fields: ['v'], devices: [device], start: T0, end: T0 + 60_000 });
      expect(r.series).toEqual([{ device, field: 'v', points: [[T0 + i, i]] }]);
    }
    const two = await backend.query({ measurement: 'filter', fields: ['v'], devices: ["dev '2'", 'dev\\3'], start: T0, end: T0 + 60_000 });
    expect(two.series.map((s) => s.device).sort()).toEqual(["dev '2'", 'dev\\3']);
    const all = await backend.query({ measurement: 'filter', fields: ['v'], start: T0, end: T0 + 60_000 });
    expect(all.series.map((s) => s.device).sort()).toEqual([...devices].sort());
    const tagged = await backend.query({ measurement: 'filter', fields: ['v'], where: { device: 'dev 4 🌡️' }, start: T0, end: T0 + 60_000 });
    expect(tagged.series.map((s) => s.device)).toEqual(['dev 4 🌡️']);
  });

  test('injection attempts return nothing and the database is still there', async () => {
    await backend.write(batchOf([{ measurement: 'victim', tags: { device: 'd' }, fields: { v: 1 }, ts: T0 }]));
    const attempts: RangeQuery[] = [
      { measurement: 'victim', fields: ['v'], devices: [`'; DROP DATABASE "${DB}"; --`], start: T0, end: T0 + 1000 },
      { measurement: 'victim', fields: ['v'], devices: [`d' OR '1'='1`], start: T0, end: T0 + 1000 },
      { measurement: `victim"; DROP DATABASE "${DB}"; --`, fields: ['v'], start: T0, end: T0 + 1000 },
      { measurement: 'victim', fields: [`v" FROM "victim"; DROP DATABASE "${DB}"; --`], start: T0, end: T0 + 1000 },
      { measurement: 'victim', fields: ['v'], where: { [`device" = 'd' OR "x`]: 'y' }, start: T0, end: T0 + 1000 },
      { measurement: 'victim', fields: ['v'], where: { device: `d'\nDROP DATABASE "${DB}"` }, start: T0, end: T0 + 1000 },
    ];
    for (const q of attempts) {
      expect(await backend.query(q)).toEqual({ series: [] });
    }
    expect(await influx.databases()).toContain(DB);
    expect((await backend.query({ measurement: 'victim', fields: ['v'], devices: ['d'], start: T0, end: T0 + 1000 })).series).toHaveLength(1);
  });

  test('bucket aggregation: mean/min/max/sum/count/last per epoch-aligned bucket, empty buckets left out', async () => {
    // Minute 0: 1..6, minute 1: nothing, minute 2: 10, 20, 30 (every 10 s).
    const pts: Point[] = [];
    for (let i = 0; i < 6; i++) pts.push({ measurement: 'agg', tags: { device: 'a' }, fields: { v: i + 1 }, ts: T0 + i * 10_000 });
    for (let i = 0; i < 3; i++) pts.push({ measurement: 'agg', tags: { device: 'a' }, fields: { v: (i + 1) * 10 }, ts: T0 + 120_000 + i * 10_000 });
    pts.push({ measurement: 'agg', tags: { device: 'b' }, fields: { v: 100 }, ts: T0 + 5_000 });
    await backend.write(batchOf(pts));
    const q = (agg: RangeQuery['agg']): Promise<unknown> =>
      backend.query({ measurement: 'agg', fields: ['v'], devices: ['a'], start: T0, end: T0 + 180_000, bucketMs: 60_000, agg }).then((r) => r.series);
    const expected = (a: number, b: number) => [{ device: 'a', field: 'v', points: [[T0, a], [T0 + 120_000, b]] }];
    expect(await q('mean')).toEqual(expected(3.5, 20));
    expect(await q('min')).toEqual(expected(1, 10));
    expect(await q('max')).toEqual(expected(6, 30));
    expect(await q('sum')).toEqual(expected(21, 60));
    expect(await q('count')).toEqual(expected(6, 3));
    expect(await q('last')).toEqual(expected(6, 30));
    const both = await backend.query({ measurement: 'agg', fields: ['v'], start: T0, end: T0 + 180_000, bucketMs: 60_000, agg: 'max' });
    expect(both.series).toEqual([...expected(6, 30), { device: 'b', field: 'v', points: [[T0, 100]] }]);
  });

  test('limit caps rows per series; maxPoints downsamples each series', async () => {
    const pts: Point[] = [];
    for (let i = 0; i < 1000; i++) {
      pts.push({ measurement: 'many', tags: { device: 'a' }, fields: { v: Math.sin(i / 30) }, ts: T0 + i * 100 });
      pts.push({ measurement: 'many', tags: { device: 'b' }, fields: { v: i }, ts: T0 + i * 100 });
    }
    await backend.write(batchOf(pts));
    const base = { measurement: 'many', fields: ['v'], start: T0, end: T0 + 100_000 };
    const limited = await backend.query({ ...base, limit: 10 });
    expect(limited.series.map((s) => [s.device, s.points.length])).toEqual([
      ['a', 10],
      ['b', 10],
    ]);
    const down = await backend.query({ ...base, maxPoints: 100 });
    for (const s of down.series) {
      expect(s.points).toHaveLength(100);
      expect(s.points[0][0]).toBe(T0);
      expect(s.points[99][0]).toBe(T0 + 99_900);
    }
  });

  test('an answer past THINGWIRE_QUERY_MAX_POINTS is not read to its end: StoreError 413; within it the query answers', async () => {
    const pts: Point[] = [];
    for (let i = 0; i < 3000; i++) pts.push({ measurement: 'budget', tags: { device: 'a' }, fields: { v: i }, ts: T0 + i * 10 });
    await backend.write(batchOf(pts));
    const q = { measurement: 'budget', fields: ['v'], start: T0, end: T0 + 100_000 };
    expect((await backend.query(q)).series[0].points).toHaveLength(3000);
    process.env.THINGWIRE_QUERY_MAX_POINTS = '1000';
    try {
      let err: unknown;
      await backend.query(q).catch((e: unknown) => (err = e));
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).status).toBe(413);
      expect((err as StoreError).retryable).toBe(false);
      // 3,000 rows are ~60 kB of JSON, under 64 bytes a point: the point count stops it.
      expect((err as StoreError).message).toBe('influxdb query: the answer has more than 1,000 points; narrow the range, the devices or the fields, or ask for maxPoints or buckets');
      // The byte cap stops a longer answer before it is read whole.
      err = undefined;
      await backend.influxql(`SELECT v FROM budget WHERE time >= ${T0}ms`, 'query', 10_000).catch((e: unknown) => (err = e));
      expect((err as StoreError).status).toBe(413);
      expect((err as StoreError).message).toMatch(/^influxdb-v1 query to http:\/\/127\.0\.0\.1:\d+: the answer is over 10 kB; narrow the range/);
      // maxPoints downsamples what was read (InfluxQL has no M4): buckets are what make an InfluxDB answer smaller.
      expect((await backend.query({ ...q, maxPoints: 500 }).catch((e: StoreError) => e)) as StoreError).toMatchObject({ status: 413 });
      expect((await backend.query({ ...q, bucketMs: 1000, agg: 'max' })).series[0].points).toHaveLength(30);
    } finally {
      delete process.env.THINGWIRE_QUERY_MAX_POINTS;
    }
  });

  test('gzip on and off both land (bodies above and below the threshold)', async () => {
    const big = (m: string, n: number): Point[] => Array.from({ length: n }, (_, i) => ({ measurement: m, tags: { device: 'g' }, fields: { v: i, s: 'x'.repeat(20) }, ts: T0 + i }));
    const zipped = new InfluxV1Backend({ url: influx.url, db: DB, timeoutMs: 10_000, gzip: true });
    const plain = new InfluxV1Backend({ url: influx.url, db: DB, timeoutMs: 10_000, gzip: false });
    await zipped.write(batchOf(big('gz_on', 500)));
    await zipped.write(batchOf(big('gz_small', 2)));
    await plain.write(batchOf(big('gz_off', 500)));
    for (const [m, n] of [
      ['gz_on', 500],
      ['gz_small', 2],
      ['gz_off', 500],
    ] as const) {
      const r = await backend.query({ measurement: m, fields: ['v'], start: T0, end: T0 + 1000 });
      expect(r.series[0].points).toHaveLength(n);
      expect(r.series[0].points[n - 1]).toEqual([T0 + n - 1, n - 1]);
    }
  });

  test('field type conflict: 400, not retryable, with the server message; the other lines of the batch are kept ("partial write")', async () => {
    await backend.write(batchOf([{ measurement: 'conflict', tags: { device: 'd' }, fields: { v: 1.5 }, ts: T0 }]));
    const err = await storeError(
      backend.write(
        batchOf([
          { measurement: 'conflict', tags: { device: 'd' }, fields: { v: 'a string' }, ts: T0 + 1 },
          { measurement: 'conflict', tags: { device: 'd' }, fields: { v: 2.5 }, ts: T0 + 2 },
        ]),
      ),
    );
    expect(err).toMatchObject({ retryable: false, status: 400 });
    expect(err.serverMessage).toMatch(/^partial write: field type conflict: input field "v" on measurement "conflict" is type string, already exists as type float dropped=1$/);
    expect(err.message).toContain('HTTP 400');
    const r = await backend.query({ measurement: 'conflict', fields: ['v'], start: T0, end: T0 + 1000 });
    expect(r.series[0].points).toEqual([
      [T0, 1.5],
      [T0 + 2, 2.5],
    ]);
  });

  test('a malformed line: 400 "unable to parse", not retryable', async () => {
    const err = await storeError(backend.write({ lines: `bad v= ${T0}`, count: 1 }));
    expect(err).toMatchObject({ retryable: false, status: 400 });
    expect(err.serverMessage).toBe(`unable to parse 'bad v= ${T0}': missing field value`);
  });

  test('a missing database: 404 "database not found", retryable; a missing retention policy: 500, retryable', async () => {
    const nodb = new InfluxV1Backend({ url: influx.url, db: 'nope', timeoutMs: 5000 });
    const e1 = await storeError(nodb.write(batchOf([{ measurement: 'm', tags: {}, fields: { v: 1 }, ts: T0 }])));
    expect(e1).toMatchObject({ retryable: true, status: 404, serverMessage: 'database not found: "nope"' });
    // Queries on a missing database: 200 with the error inside the answer.
    const e2 = await storeError(nodb.query({ measurement: 'm', fields: ['v'], start: T0, end: T0 + 1 }));
    expect(e2).toMatchObject({ retryable: true, serverMessage: 'database not found: nope' });

    const norp = new InfluxV1Backend({ url: influx.url, db: DB, rp: 'nope', timeoutMs: 5000 });
    const e3 = await storeError(norp.write(batchOf([{ measurement: 'm', tags: {}, fields: { v: 1 }, ts: T0 }])));
    expect(e3).toMatchObject({ retryable: true, status: 500, serverMessage: 'retention policy not found: nope' });
  });

  test('a retention policy is written to and read from', async () => {
    await influx.query(`CREATE RETENTION POLICY "short \\"rp" ON "${DB}" DURATION 2d REPLICATION 1`, DB);
    const rp = new InfluxV1Backend({ url: influx.url, db: DB, rp: 'short "rp', timeoutMs: 5000 });
    await rp.write(batchOf([{ measurement: 'in_rp', tags: { device: 'd' }, fields: { v: 7 }, ts: T0 }]));
    expect((await rp.query({ measurement: 'in_rp', fields: ['v'], start: T0, end: T0 + 1 })).series).toEqual([{ device: 'd', field: 'v', points: [[T0, 7]] }]);
    // Not in the default retention policy.
    expect((await backend.query({ measurement: 'in_rp', fields: ['v'], start: T0, end: T0 + 1 })).series).toEqual([]);
  });

  test('server stopped: retryable network error (ECONNREFUSED); after a restart the same backend writes again', async () => {
    await influx.stop();
    const err = await storeError(backend.write(batchOf([{ measurement: 'down', tags: {}, fields: { v: 1 }, ts: T0 }])));
    expect(err).toMatchObject({ retryable: true, status: undefined });
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(await backend.health()).toEqual({ ok: false, detail: expect.stringMatching(/ECONNREFUSED/) });
    const qerr = await storeError(backend.query({ measurement: 'down', fields: ['v'], start: T0, end: T0 + 1 }));
    expect(qerr.retryable).toBe(true);

    await influx.restart();
    await backend.write(batchOf([{ measurement: 'down', tags: {}, fields: { v: 1 }, ts: T0 }]));
    expect((await backend.query({ measurement: 'down', fields: ['v'], start: T0, end: T0 + 1 })).series).toHaveLength(1);
    // Data written before the restart is still there.
    expect((await backend.query({ measurement: 'victim', fields: ['v'], start: T0, end: T0 + 1 })).series).toHaveLength(1);
  });
});

describe('InfluxV1Backend with authentication (influxd auth-enabled)', () => {
  let influx: InfluxV1Service;
  const admin = { username: 'admin', password: 's3cr3t-pa55' };

  beforeAll(async () => {
    influx = await startInfluxV1({ admin });
  });
  afterAll(async () => {
    await influx?.stop();
    removeDataDir(influx);
  });

  test('Basic auth writes and reads; a wrong password is 401, retryable, and no password appears anywhere', async () => {
    const ok = new InfluxV1Backend({ url: influx.url, db: 'authdb', ...admin, timeoutMs: 5000 });
    await ok.createDatabase();
    await ok.write(batchOf([{ measurement: 'm', tags: { device: 'd' }, fields: { v: 1 }, ts: T0 }]));
    expect((await ok.query({ measurement: 'm', fields: ['v'], start: T0, end: T0 + 1 })).series).toHaveLength(1);
    expect((await ok.health()).ok).toBe(true);
    expect(ok.description).toBe(`influxdb-v1 ${influx.url} db=authdb user=admin`);

    const wrong = new InfluxV1Backend({ url: influx.url, db: 'authdb', username: 'admin', password: 'WRONG-pw-123', timeoutMs: 5000 });
    const err = await storeError(wrong.write(batchOf([{ measurement: 'm', tags: {}, fields: { v: 1 }, ts: T0 }])));
    expect(err).toMatchObject({ retryable: true, status: 401, serverMessage: 'authorization failed' });
    const h = await wrong.health();
    expect(h.ok).toBe(false);
    const anon = new InfluxV1Backend({ url: influx.url, db: 'authdb', timeoutMs: 5000 });
    expect(await storeError(anon.write(batchOf([{ measurement: 'm', tags: {}, fields: { v: 1 }, ts: T0 }])))).toMatchObject({ retryable: true, status: 401 });

    // Credentials in the URL are moved into the Authorization header and out of the description.
    const inUrl = new InfluxV1Backend({ url: influx.url.replace('http://', `http://admin:${admin.password}@`), db: 'authdb', timeoutMs: 5000 });
    await inUrl.write(batchOf([{ measurement: 'm', tags: { device: 'd' }, fields: { v: 2 }, ts: T0 + 1 }]));
    for (const text of [err.message, String(err.serverMessage), h.detail, wrong.description, inUrl.description, JSON.stringify(err)]) {
      expect(text).not.toContain('WRONG-pw-123');
      expect(text).not.toContain(admin.password);
    }
  });
});

describe('InfluxV1Backend HTTP details (scripted server)', () => {
  let fake: FakeHttp;
  beforeEach(async () => {
    fake = await startFakeHttp();
  });
  afterEach(() => fake.close());

  const one = batchOf([{ measurement: 'm', tags: { device: 'd' }, fields: { v: 1 }, ts: 1_700_000_000_000 }]);

  test('the write request: path, precision, rp, Basic auth, gzip only above ~1 KB', async () => {
    const b = new InfluxV1Backend({ url: `${fake.url}/prefix/`, db: 'my db', rp: 'r&p', username: 'u', password: 'p:w', timeoutMs: 5000 });
    const big = batchOf(Array.from({ length: 100 }, (_, i) => ({ measurement: 'm', tags: { device: 'd' }, fields: { v: i }, ts: 1_700_000_000_000 + i })));
    await b.write(big);
    await b.write(one);
    const [r1, r2] = fake.requests;
    expect(r1.method).toBe('POST');
    expect(new URL(r1.url, fake.url).pathname).toBe('/prefix/write');
    expect(Object.fromEntries(new URL(r1.url, fake.url).searchParams)).toEqual({ db: 'my db', rp: 'r&p', precision: 'ms' });
    expect(r1.headers.authorization).toBe(`Basic ${Buffer.from('u:p:w').toString('base64')}`);
    expect(r1.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(r1.raw).toString()).toBe(big.lines);
    expect(r2.headers['content-encoding']).toBeUndefined();
    expect(r2.text).toBe(one.lines);

    const off = new InfluxV1Backend({ url: fake.url, db: 'x', gzip: false });
    await off.write(big);
    expect(fake.requests[2].headers['content-encoding']).toBeUndefined();
    expect(fake.requests[2].text).toBe(big.lines);
    expect(fake.requests[2].headers.authorization).toBeUndefined();
  });

  test('an empty batch sends nothing', async () => {
    await new InfluxV1Backend({ url: fake.url, db: 'x' }).write({ lines: '', count: 0 });
    expect(fake.requests).toHaveLength(0);
  });

  test.each([
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [401, true],
    [403, true],
    [404, true],
    [408, true],
    [400, false],
    [413, false],
    [422, false],
    [418, false],
  ])('HTTP %i -> retryable %s', async (status, retryable) => {
    fake.answer({ status, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ error: `boom ${status}` }) });
    const err = await storeError(new InfluxV1Backend({ url: fake.url, db: 'x', password: 'hunter2', username: 'u' }).write(one));
    expect(err).toMatchObject({ retryable, status, serverMessage: `boom ${status}` });
    expect(err.message).not.toContain('hunter2');
  });

  test('Retry-After in seconds or as an HTTP date; long bodies trimmed; the error header when the body is empty', async () => {
    const b = new InfluxV1Backend({ url: fake.url, db: 'x' });
    fake.answer({ status: 429, headers: { 'Retry-After': '7' }, body: 'slow down' });
    expect(await storeError(b.write(one))).toMatchObject({ retryable: true, retryAfterMs: 7000, serverMessage: 'slow down' });

    const at = new Date(Date.now() + 30_000).toUTCString();
    fake.answer({ status: 503, headers: { 'Retry-After': at }, body: '' });
    const e = await storeError(b.write(one));
    expect(e.retryAfterMs).toBeGreaterThan(25_000);
    expect(e.retryAfterMs).toBeLessThanOrEqual(30_000);

    fake.answer({ status: 400, body: 'x'.repeat(5000) });
    const long = await storeError(b.write(one));
    expect(long.serverMessage).toHaveLength(503);

    fake.answer({ status: 400, headers: { 'X-Influxdb-Error': 'from the header' } });
    expect(await storeError(b.write(one))).toMatchObject({ serverMessage: 'from the header' });

    expect(parseRetryAfter('1.5')).toBe(1500);
    expect(parseRetryAfter('garbage')).toBeUndefined();
    expect(parseRetryAfter(new Date(0).toUTCString())).toBe(0);
  });

  test('a server that does not answer in time: retryable timeout', async () => {
    fake.answer({ status: 204, delayMs: Infinity });
    const t = Date.now();
    const err = await storeError(new InfluxV1Backend({ url: fake.url, db: 'x', timeoutMs: 300 }).write(one));
    expect(err).toMatchObject({ retryable: true });
    expect(err.message).toMatch(/timed out after 300 ms/);
    expect(Date.now() - t).toBeLessThan(5000);
  });

  test('nothing listening: retryable ECONNREFUSED', async () => {
    const port = await freePort();
    const err = await storeError(new InfluxV1Backend({ url: `http://127.0.0.1:${port}`, db: 'x' }).write(one));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});
