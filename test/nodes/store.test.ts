/**
 * thingwire-store in a real Node-RED runtime (node-red-node-test-helper), with the real embedded
 * DuckDB backend in a temp data dir: which backend each setting picks, what a misconfigured store
 * does to the write and query nodes that use it, credentials, the store registry, and close()
 * flushing what is buffered.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import queryNode from '../../nodes/query/query';
import storeNode from '../../nodes/store/store';
import writeNode from '../../nodes/write/write';
import type { StoreNode } from '../../nodes/store/config';
import { STORE_ENV_VARS } from '../../nodes/lib/store/env';
import { listStores } from '../../nodes/lib/store/registry';
import { startFakeHttp, type FakeHttp } from '../support/tsdb';
import { freePort } from '../support/services';
import {
  TAB,
  errorCalls,
  eventually,
  getNode,
  helper,
  positioned,
  record,
  request,
  setDataDir,
  settle,
  statusCalls,
  storeHelper,
  until,
  useHelper,
  useTempDirs,
  withCatalogue,
  type FlowNodeConfig,
  type NodeMsg,
} from './harness';

useHelper();
const tempDir = useTempDirs('store-nodes');

const NODES = [withCatalogue(storeNode), withCatalogue(writeNode), withCatalogue(queryNode)];

// The env backend reads process.env: keep the runner's INFLUX_* out of these tests.
const savedEnv: Record<string, string | undefined> = {};
beforeAll(() => {
  for (const k of Object.keys(STORE_ENV_VARS)) {
    savedEnv[k] = process.env[k];
    delete process.env[k];
  }
});
afterEach(() => {
  for (const k of Object.keys(STORE_ENV_VARS)) delete process.env[k];
});
afterAll(() => {
  for (const [k, v] of Object.entries(savedEnv)) if (v !== undefined) process.env[k] = v;
});

const T0 = Math.floor((Date.now() - 30 * 60_000) / 60_000) * 60_000;

function reading(device: string, ts: number, metrics: Record<string, number | string | boolean>): Record<string, unknown> {
  return { device, ts, metrics };
}

/** A store (config node, id `store1`), a write node `w1` and a query node `q1` using it, with their outputs, Catch and Complete nodes. */
function flow(store: Partial<FlowNodeConfig>, opts: { write?: Partial<FlowNodeConfig>; query?: Partial<FlowNodeConfig> } = {}): FlowNodeConfig[] {
  return positioned([
    TAB,
    { id: 'store1', type: 'thingwire-store', name: 'store', v: 1, backend: 'embedded', flushInterval: 50, ...store },
    { id: 'w1', type: 'thingwire-write', z: 'tab1', v: 1, store: 'store1', wires: [['ok'], ['bad']], ...opts.write },
    { id: 'q1', type: 'thingwire-query', z: 'tab1', v: 1, store: 'store1', fields: 'temperature', start: '-1h', wires: [['qok'], ['qbad']], ...opts.query },
    { id: 'ok', type: 'helper', z: 'tab1' },
    { id: 'bad', type: 'helper', z: 'tab1' },
    { id: 'qok', type: 'helper', z: 'tab1' },
    { id: 'qbad', type: 'helper', z: 'tab1' },
    // The helper registers a core node type once per node of that type in the flow: one of each.
    { id: 'complete', type: 'complete', z: 'tab1', scope: ['w1', 'q1'], uncaught: false, wires: [['completes']] },
    { id: 'completes', type: 'helper', z: 'tab1' },
    { id: 'catch', type: 'catch', z: 'tab1', scope: ['w1', 'q1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab1' },
  ]);
}

interface Outputs {
  ok: NodeMsg[];
  bad: NodeMsg[];
  qok: NodeMsg[];
  qbad: NodeMsg[];
  completes: NodeMsg[];
  caught: NodeMsg[];
}

/** The caught messages that node `id` ended with done(err). */
function caughtFrom(out: Outputs, id: string): NodeMsg[] {
  return out.caught.filter((m) => (m.error as { source?: { id?: string } }).source?.id === id);
}

async function start(store: Partial<FlowNodeConfig>, opts: { write?: Partial<FlowNodeConfig>; query?: Partial<FlowNodeConfig>; credentials?: object } = {}): Promise<Outputs> {
  await helper.load(NODES, flow(store, opts), opts.credentials);
  return {
    ok: record('ok'),
    bad: record('bad'),
    qok: record('qok'),
    qbad: record('qbad'),
    completes: record('completes'),
    caught: record('caught'),
  };
}

function storeOf(id = 'store1'): StoreNode {
  return getNode(id) as unknown as StoreNode;
}

type Series = { device: string; field: string; points: Array<[number, unknown]> };

/** Queries through q1 until the answer holds `want` points in all (fails after the timeout). */
async function readBack(out: Outputs, payload: Record<string, unknown>, want: number): Promise<Series[]> {
  return eventually(`${want} points from the store`, async () => {
    const r = await request('q1', { payload }, [out.qok, out.qbad]);
    if (r.output !== 0) throw new Error(`query failed: ${JSON.stringify(r.msg.error)}`);
    const series = (r.msg.payload as { series: Series[] }).series;
    return series.reduce((n, s) => n + s.points.length, 0) >= want ? series : undefined;
  });
}

describe('backend selection', () => {
  test('embedded: a DuckDB file in <thingwireDataDir>/store, written and read back', async () => {
    const dir = tempDir();
    setDataDir(dir);
    const out = await start({ backend: 'embedded' });
    const store = storeOf();
    const file = path.join(dir, 'store', 'thingwire.duckdb');
    expect(store.storeError).toBeUndefined();
    expect(store.service?.backend.kind).toBe('embedded');
    expect(store.service?.description).toBe(`embedded (DuckDB) ${file}`);
    // A spool there too: used only when a burst outruns the file (then nothing is refused for memory_full).
    expect(store.service?.spool.size()).toEqual({ batches: 0, bytes: 0 });
    expect(errorCalls(getNode('store1'))).toEqual([]);

    await request('w1', { payload: reading('d1', T0, { temperature: 21.5 }) }, [out.ok, out.bad]);
    const series = await readBack(out, { start: T0, end: T0 + 1 }, 1);
    expect(series).toEqual([{ device: 'd1', field: 'temperature', points: [[T0, 21.5]] }]);
    expect(fs.existsSync(file)).toBe(true);
  });

  test('embedded with a file set in the dialog', async () => {
    const dir = tempDir();
    setDataDir(dir);
    const file = path.join(dir, 'elsewhere', 'mine.duckdb');
    const out = await start({ backend: 'embedded', embeddedFile: file });
    expect(storeOf().service?.description).toBe(`embedded (DuckDB) ${file}`);
    await request('w1', { payload: reading('d1', T0, { temperature: 1 }) }, [out.ok, out.bad]);
    await readBack(out, { start: T0, end: T0 + 1 }, 1);
    expect(fs.existsSync(file)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'store'))).toBe(false);
  });

  test('env without INFLUX_URL in process.env: the embedded store', async () => {
    const dir = tempDir();
    setDataDir(dir);
    expect(process.env.INFLUX_URL).toBeUndefined();
    const out = await start({ backend: 'env' });
    expect(storeOf().service?.backend.kind).toBe('embedded');
    expect(storeOf().service?.description).toBe(`embedded (DuckDB) ${path.join(dir, 'store', 'thingwire.duckdb')}`);
    await request('w1', { payload: reading('d1', T0, { temperature: 2 }) }, [out.ok, out.bad]);
    await readBack(out, { start: T0, end: T0 + 1 }, 1);
  });

  test('no backend in the config is the same as env', async () => {
    setDataDir(tempDir());
    await start({ backend: undefined });
    expect(storeOf().service?.backend.kind).toBe('embedded');
  });

  test('env with INFLUX_URL and INFLUX_VERSION=1: InfluxDB 1.x, spooled under <thingwireDataDir>/spool/<id>', async () => {
    const dir = tempDir();
    setDataDir(dir);
    process.env.INFLUX_URL = 'http://127.0.0.1:1/';
    process.env.INFLUX_VERSION = '1';
    process.env.INFLUX_DB = 'tw';
    await start({ backend: 'env' });
    const s = storeOf().service;
    expect(s?.backend.kind).toBe('influxdb-v1');
    expect(s?.description).toBe('InfluxDB 1.x http://127.0.0.1:1 db=tw');
    expect(fs.existsSync(path.join(dir, 'spool', 'store1'))).toBe(true);
  });

  test('env with stray INFLUX_* but no INFLUX_URL is a config error', async () => {
    setDataDir(tempDir());
    process.env.INFLUX_DB = 'tw';
    await start({ backend: 'env' });
    const store = storeOf();
    expect(store.service).toBeUndefined();
    expect(store.storeError).toBe('INFLUX_DB set but INFLUX_URL is not: set INFLUX_URL to use InfluxDB, or unset them for the embedded store');
    expect(errorCalls(getNode('store1')).map((c) => c.args[0])).toEqual([`thingwire-store is misconfigured: ${store.storeError}`]);
  });

  test('a running store is in the process registry, and leaves it on close', async () => {
    setDataDir(tempDir());
    await start({ backend: 'embedded' });
    expect(listStores().map((s) => s.id)).toContain('store1');
    const entry = listStores().find((s) => s.id === 'store1')!;
    expect(entry.description).toBe(storeOf().service?.description);
    expect(await entry.health()).toMatchObject({ ok: true });
    await helper.unload();
    expect(listStores().map((s) => s.id)).not.toContain('store1');
  });
});

describe('a misconfigured store', () => {
  test('influxdb-v1 without a URL: an error at deploy, no service', async () => {
    setDataDir(tempDir());
    await start({ backend: 'influxdb-v1', db: 'tw', url: '' });
    const store = storeOf();
    expect(store.service).toBeUndefined();
    expect(store.storeError).toBe('URL is required');
    expect(errorCalls(getNode('store1')).map((c) => c.args[0])).toEqual(['thingwire-store is misconfigured: URL is required']);
  });

  test('influxdb-v1 without URL and database: both problems at once', async () => {
    setDataDir(tempDir());
    await start({ backend: 'influxdb-v1' });
    expect(storeOf().storeError).toBe('URL is required; database is required');
  });

  test('influxdb-v2 without URL and bucket', async () => {
    setDataDir(tempDir());
    await start({ backend: 'influxdb-v2' });
    expect(storeOf().storeError).toBe('URL is required; bucket is required');
  });

  test('an influxdb-v1 URL that is not a URL: the store cannot start', async () => {
    setDataDir(tempDir());
    await start({ backend: 'influxdb-v1', url: 'not a url', db: 'tw' });
    const store = storeOf();
    expect(store.service).toBeUndefined();
    expect(store.storeError).toBeDefined();
    expect(errorCalls(getNode('store1')).map((c) => c.args[0])).toEqual([`thingwire-store could not start: ${store.storeError}`]);
  });

  test('the write node says why, shows "no store", and sends every message to Catch via done(err)', async () => {
    setDataDir(tempDir());
    const out = await start({ backend: 'influxdb-v1', db: 'tw' });
    const w1 = getNode('w1');
    expect(errorCalls(w1).map((c) => c.args[0])).toEqual(['thingwire-write cannot write: URL is required']);
    expect(statusCalls(w1)).toEqual([{ fill: 'red', shape: 'ring', text: 'thingwire-write.status.no-store' }]);

    getNode('w1').receive({ payload: reading('d1', T0, { temperature: 1 }), seq: 1 });
    getNode('w1').receive({ payload: 'junk', seq: 2 });
    await until('two messages caught', () => caughtFrom(out, 'w1').length >= 2);
    await settle();
    expect(caughtFrom(out, 'w1').map((m) => m.seq)).toEqual([1, 2]);
    expect(caughtFrom(out, 'w1').map((m) => (m.error as { message: string }).message)).toEqual(['Error: no working thingwire-store is selected', 'Error: no working thingwire-store is selected']);
    expect((caughtFrom(out, 'w1')[0].error as { source: { id: string } }).source.id).toBe('w1');
    expect(out.ok).toHaveLength(0);
    expect(out.bad).toHaveLength(0);
    expect(out.completes).toHaveLength(0);
  });

  test('the query node shows "no store" and sends every message to Catch', async () => {
    setDataDir(tempDir());
    const out = await start({ backend: 'influxdb-v1', db: 'tw' });
    const q1 = getNode('q1');
    expect(errorCalls(q1).map((c) => c.args[0])).toEqual(['no working thingwire-store is selected']);
    expect(statusCalls(q1)).toEqual([{ fill: 'red', shape: 'ring', text: 'thingwire-query.status.no-store' }]);
    q1.receive({ payload: {} });
    await until('the message caught', () => caughtFrom(out, 'q1').length >= 1);
    await settle();
    expect((caughtFrom(out, 'q1')[0].error as { message: string }).message).toBe('Error: no working thingwire-store is selected');
    expect(out.qok).toHaveLength(0);
    expect(out.qbad).toHaveLength(0);
    expect(out.completes).toHaveLength(0);
  });

  test('a write node with no store selected', async () => {
    setDataDir(tempDir());
    const out = await start({ backend: 'embedded' }, { write: { store: '' } });
    expect(errorCalls(getNode('w1')).map((c) => c.args[0])).toEqual(['thingwire-write cannot write: no working thingwire-store is selected']);
    getNode('w1').receive({ payload: reading('d1', T0, { temperature: 1 }) });
    await until('the message caught', () => caughtFrom(out, 'w1').length >= 1);
    expect(out.ok).toHaveLength(0);
  });
});

describe('credentials', () => {
  let fake: FakeHttp;
  beforeEach(async () => {
    fake = await startFakeHttp();
  });
  afterEach(async () => {
    await fake.close();
  });

  test('username, password and token are declared as credentials (password and token as secrets)', async () => {
    setDataDir(tempDir());
    await start({ backend: 'embedded' });
    expect(storeHelper.credentials.getDefinition('thingwire-store')).toEqual({
      username: { type: 'text' },
      password: { type: 'password' },
      token: { type: 'password' },
    });
    // Without stored credentials the node still gets an (empty) credentials object.
    expect(storeOf().credentials).toEqual({});
  });

  test('influxdb-v1: user and password from the credentials are sent as Basic auth, and never shown', async () => {
    setDataDir(tempDir());
    const out = await start({ backend: 'influxdb-v1', url: fake.url, db: 'tw' }, { credentials: { store1: { username: 'writer', password: 's3cret pässword' } } });
    expect(storeOf().credentials).toEqual({ username: 'writer', password: 's3cret pässword' });
    expect(storeOf().service?.description).toBe(`InfluxDB 1.x ${fake.url} db=tw`);
    await request('w1', { payload: reading('d1', T0, { temperature: 1 }) }, [out.ok, out.bad]);
    await until('a write request', () => fake.requests.some((r) => r.url.startsWith('/write')));
    const w = fake.requests.find((r) => r.url.startsWith('/write'))!;
    expect(w.headers.authorization).toBe(`Basic ${Buffer.from('writer:s3cret pässword').toString('base64')}`);
    expect(w.url).toBe('/write?db=tw&precision=ms');
    expect(w.text).toBe(`telemetry,device=d1 temperature=1 ${T0}`);
    for (const c of [...errorCalls(getNode('store1')), ...errorCalls(getNode('w1'))]) expect(String(c.args[0])).not.toContain('s3cret');
  });

  test('influxdb-v1: a password in the flow JSON (not in the credentials) is not used', async () => {
    setDataDir(tempDir());
    const out = await start({ backend: 'influxdb-v1', url: fake.url, db: 'tw', username: 'writer', password: 'in-the-flow' });
    await request('w1', { payload: reading('d1', T0, { temperature: 1 }) }, [out.ok, out.bad]);
    await until('a write request', () => fake.requests.some((r) => r.url.startsWith('/write')));
    expect(fake.requests.find((r) => r.url.startsWith('/write'))!.headers.authorization).toBeUndefined();
  });

  test('influxdb-v2: the token from the credentials is sent as "Token ..."', async () => {
    setDataDir(tempDir());
    const out = await start({ backend: 'influxdb-v2', url: fake.url, org: 'acme', bucket: 'tw', version: '2' }, { credentials: { store1: { token: 'tok-123' } } });
    expect(storeOf().service?.description).toBe(`InfluxDB 2.x ${fake.url} bucket=tw org=acme`);
    await request('w1', { payload: reading('d1', T0, { temperature: 1 }) }, [out.ok, out.bad]);
    await until('a write request', () => fake.requests.some((r) => r.url.startsWith('/api/v2/write')));
    const w = fake.requests.find((r) => r.url.startsWith('/api/v2/write'))!;
    expect(w.headers.authorization).toBe('Token tok-123');
    expect(w.url).toContain('bucket=tw');
    expect(w.url).toContain('org=acme');
    expect(w.text).toBe(`telemetry,device=d1 temperature=1 ${T0}`);
  });
});

describe('close', () => {
  test('unloading the flow flushes the points still buffered (long flush interval); a new store reads them', async () => {
    const dir = tempDir();
    setDataDir(dir);
    let out = await start({ backend: 'embedded', flushInterval: 60_000, batchSize: 5000 });
    for (let i = 0; i < 5; i++) await request('w1', { payload: reading('d1', T0 + i * 1000, { temperature: 20 + i }) }, [out.ok, out.bad]);
    const stats = storeOf().service!.stats();
    expect(stats.bufferedLines).toBe(5);
    expect(stats.written).toBe(0);
    await helper.unload();

    out = await start({ backend: 'embedded', flushInterval: 60_000 });
    const r = await request('q1', { payload: { start: T0, end: T0 + 60_000 } }, [out.qok, out.qbad]);
    expect(r.output).toBe(0);
    expect((r.msg.payload as { series: Series[] }).series).toEqual([
      {
        device: 'd1',
        field: 'temperature',
        points: [0, 1, 2, 3, 4].map((i) => [T0 + i * 1000, 20 + i]),
      },
    ]);
  });

  test('an influxdb store that cannot be reached closes at once, keeping its data in the spool', async () => {
    const dir = tempDir();
    setDataDir(dir);
    const port = await freePort();
    const out = await start({ backend: 'influxdb-v1', url: `http://127.0.0.1:${port}`, db: 'tw', flushInterval: 60_000 });
    await request('w1', { payload: [reading('d1', T0, { temperature: 1 }), reading('d1', T0 + 1, { temperature: 2 })] }, [out.ok, out.bad]);
    await helper.unload();
    const spool = path.join(dir, 'spool', 'store1');
    const files = fs.readdirSync(spool).filter((f) => f.endsWith('.lp'));
    expect(files).toHaveLength(1);
    const text = fs.readFileSync(path.join(spool, files[0]), 'utf8');
    expect(text.split('\n').slice(1)).toEqual([`telemetry,device=d1 temperature=1 ${T0}`, `telemetry,device=d1 temperature=2 ${T0 + 1}`]);
  });

  test('a store with no users closes cleanly too', async () => {
    setDataDir(tempDir());
    await helper.load(NODES, positioned([TAB, { id: 'store1', type: 'thingwire-store', backend: 'embedded' }]));
    const store = storeOf();
    const service = store.service!;
    const error = jest.spyOn(getNode('store1'), 'error');
    await helper.unload();
    expect(error).not.toHaveBeenCalled();
    expect(store.service).toBeUndefined();
    // Closed: it takes no more lines.
    expect(() => service.write(['telemetry,device=d1 t=1 1'])).toThrow('BatchWriter is closed');
  });
});

describe('status of the write node', () => {
  test('grey with the store description at deploy, then green with the written count', async () => {
    setDataDir(tempDir());
    const out = await start({ backend: 'embedded' });
    const w1 = getNode('w1');
    expect(statusCalls(w1)[0]).toEqual({ fill: 'grey', shape: 'dot', text: storeOf().service?.description });
    await request('w1', { payload: [reading('d1', T0, { temperature: 1 }), reading('d1', T0 + 1, { temperature: 2 })] }, [out.ok, out.bad]);
    await readBack(out, { start: T0, end: T0 + 2 }, 2);
    await eventually('the written count in the status', () => (statusCalls(w1).some((s) => s.text === 'written 2, buffered 0') ? true : undefined), 5000);
    expect(statusCalls(w1).find((s) => s.text === 'written 2, buffered 0')).toEqual({ fill: 'green', shape: 'dot', text: 'written 2, buffered 0' });
  });
});
