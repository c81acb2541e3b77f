/**
 * The HTTP API under /api/v1 (flows/api.json) against the real runtime: devices and streams managed
 * with the admin API key, entries written with a device token and read back from the embedded
 * store, and hostile or unauthenticated requests answered with a clear 4xx that stores nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, startRuntime, waitFor, type Runtime } from '../support/services';

jest.setTimeout(60_000);

const API_KEY = 'test-admin-key-0123456789abcdef';

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Headers;
}

interface Call {
  method?: string;
  key?: string | null;
  headers?: Record<string, string>;
  json?: unknown;
  raw?: string;
}

describe('HTTP API /api/v1', () => {
  let rt: Runtime;
  let off: Runtime;

  async function call(base: string, path: string, c: Call = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...c.headers };
    if (c.key !== null) headers.authorization ??= `Bearer ${c.key ?? API_KEY}`;
    let body: string | undefined;
    if (c.json !== undefined || c.raw !== undefined) {
      headers['content-type'] = 'application/json';
      body = c.raw ?? JSON.stringify(c.json);
    }
    const res = await fetch(`${base}/api/v1${path}`, { method: c.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('application/json') && text !== '') parsed = JSON.parse(text);
    return { status: res.status, body: parsed, headers: res.headers };
  }
  const api = (path: string, c?: Call): Promise<Answer> => call(rt.url, path, c);
  /** A device writes entries with its token (no admin key). */
  const post = (stream: string, token: string | null, json: unknown, headers: Record<string, string> = {}): Promise<Answer> =>
    api(`/streams/${stream}/entries`, { key: null, json, headers: token === null ? headers : { authorization: `Bearer ${token}`, ...headers } });

  const entries = async (stream: string, query = 'start=-30d'): Promise<Answer> => api(`/streams/${stream}/entries?${query}`);

  /**
   * The stream's entry count once everything posted so far is in the store: writes are queued and
   * flushed in order, so when a marker entry posted now is readable, anything posted before is too.
   */
  let marker = Date.now() - 3_600_000;
  const markers = new Map<string, number>();
  const settledCount = async (stream: string, token: string): Promise<number> => {
    const ts = ++marker;
    markers.set(stream, (markers.get(stream) ?? 0) + 1);
    expect((await post(stream, token, { ts, temperature: 0 })).status).toBe(201);
    const r = await waitFor('the marker entry', async () => {
      const a = await entries(stream);
      return a.status === 200 && a.body.entries.some((e: { ts: number }) => e.ts === ts) ? a : undefined;
    });
    return (r.body.count as number) - markers.get(stream)!;
  };

  beforeAll(async () => {
    [rt, off] = await Promise.all([startRuntime({ THINGWIRE_API_KEY: API_KEY }), startRuntime({})]);
    await waitFor('flows to start', () => rt.output().includes('Started flows') || api('/devices').then((r) => r.status === 200), 15_000);
  });
  afterAll(async () => {
    await Promise.all([rt?.stop(), off?.stop()]);
  });

  test('without THINGWIRE_API_KEY the management endpoints answer 503 and say how to turn them on', async () => {
    for (const [method, path] of [
      ['GET', '/devices'],
      ['POST', '/devices'],
      ['GET', '/streams/s/entries'],
    ]) {
      const r = await call(off.url, path, { method, json: method === 'POST' ? { id: 'x' } : undefined });
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('not_configured');
      expect(r.body.error.message).toMatch(/set THINGWIRE_API_KEY/);
    }
  });

  test('a missing or wrong API key is a 401; Bearer and X-API-Key both work', async () => {
    const none = await api('/devices', { key: null });
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('unauthorized');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    for (const wrong of ['nope', API_KEY.slice(0, -1), `${API_KEY}x`, API_KEY.toUpperCase(), 'x'.repeat(5000)]) {
      const r = await api('/devices', { key: wrong });
      expect(r.status).toBe(401);
      expect(r.body.error.message).toBe('wrong API key');
    }
    expect((await api('/devices', { key: null, headers: { 'x-api-key': 'wrong-wrong-wrong' } })).status).toBe(401);
    expect((await api('/devices', { key: null, headers: { 'x-api-key': API_KEY } })).status).toBe(200);
    expect((await api('/streams')).status).toBe(200);
  });

  describe('a registered device writing to its stream', () => {
    let token: string;

    beforeAll(async () => {
      const d = await api('/devices', { json: { id: 'kitchen-1', name: 'Kitchen', type: 'dht22', tags: { site: 'home' } } });
      expect(d.status).toBe(201);
      expect(d.body.device).toMatchObject({ id: 'kitchen-1', name: 'Kitchen', type: 'dht22', enabled: true, hasToken: true });
      expect(d.body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      token = d.body.token as string;
      const s = await api('/streams', {
        json: {
          id: 'kitchen',
          name: 'Kitchen climate',
          device: 'kitchen-1',
          schema: {
            $schema: 'https://json-schema.org/draft/2020-12/schema',
            type: 'object',
            $defs: { celsius: { type: 'number', minimum: -50, maximum: 150 } },
            properties: { temperature: { $ref: '#/$defs/celsius' }, humidity: { type: 'number', minimum: 0, maximum: 100 } },
            required: ['temperature'],
          },
        },
      });
      expect(s.status).toBe(201);
      expect(s.body).toMatchObject({ id: 'kitchen', device: 'kitchen-1', deviceType: null });
    });

    test('entries go through the same pipeline as MQTT readings: the window node rolls them up', async () => {
      // Three minutes of readings an hour ago: the window node closes the first minutes on their event time.
      const t0 = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
      const batch = Array.from({ length: 19 }, (_, i) => ({ ts: t0 + i * 10_000, temperature: 20 + i / 10 }));
      expect((await post('kitchen', token, batch)).body).toEqual({ accepted: 19, rejected: [] });
      const rolled = await waitFor('the 1m rollups of the HTTP entries', async () => {
        const r = await api(`/series?devices=kitchen-1&fields=temperature&start=${t0}&end=${t0 + 180_000}&level=1m`);
        return r.status === 200 && (r.body.series[0]?.points.length ?? 0) >= 2 ? r : undefined;
      }, 15_000, 250);
      // The first minute's mean: readings 0..5 (20.0 .. 20.5).
      expect(rolled.body.series[0].points[0][0]).toBe(t0);
      expect(rolled.body.series[0].points[0][1]).toBeCloseTo(20.25, 9);
    });

    test('the token is shown once: reading the device never returns it', async () => {
      const r = await api('/devices/kitchen-1');
      expect(r.status).toBe(200);
      expect(r.body.id).toBe('kitchen-1');
      expect(JSON.stringify(r.body)).not.toContain(token);
      expect(r.headers.get('cache-control')).toBe('no-store');
    });

    test('good entries are stored and read back; invalid ones are listed with the schema errors', async () => {
      const t0 = Date.now() - 60_000;
      const one = await post('kitchen', token, { ts: t0, temperature: 21.5, humidity: 40 });
      expect(one.status).toBe(201);
      expect(one.body).toEqual({ accepted: 1, rejected: [] });

      const batch = await post('kitchen', token, [
        { ts: new Date(t0 + 1000).toISOString(), temperature: 22 },
        { ts: t0 + 2000, temperature: 'hot' },
        { ts: t0 + 3000, temperature: 999 },
        { ts: t0 + 4000, device: 'kitchen-1', metrics: { temperature: 23, humidity: 41 } },
        { ts: 'yesterday', temperature: 1 },
        'not an object',
      ]);
      expect(batch.status).toBe(201);
      expect(batch.body.accepted).toBe(2);
      expect(batch.body.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
        [1, 'validation_failed'],
        [2, 'validation_failed'],
        [4, 'invalid_ts'],
        [5, 'not_an_entry'],
      ]);
      expect(batch.body.rejected[0].errors[0]).toMatchObject({ path: '/temperature', keyword: 'type' });
      expect(batch.body.rejected[1].errors[0]).toMatchObject({ path: '/temperature', keyword: 'maximum' });

      // 201 means stored (the write node passes on when durable): read at once, not polled.
      const read = await entries('kitchen', `start=${t0 - 1}&end=${t0 + 10_000}`);
      expect(read.status).toBe(200);
      expect(read.body.entries).toEqual([
        { ts: t0, device: 'kitchen-1', metrics: { temperature: 21.5, humidity: 40 } },
        { ts: t0 + 1000, device: 'kitchen-1', metrics: { temperature: 22 } },
        { ts: t0 + 4000, device: 'kitchen-1', metrics: { temperature: 23, humidity: 41 } },
      ]);
      // limit keeps the newest entries; a bucket aggregates.
      const last = await entries('kitchen', `start=${t0 - 1}&end=${t0 + 10_000}&limit=1`);
      expect(last.body).toMatchObject({ count: 1, truncated: true, entries: [{ ts: t0 + 4000 }] });
      const agg = await entries('kitchen', `start=${t0 - 1}&end=${t0 + 10_000}&bucket=1h&agg=max&fields=temperature`);
      expect(agg.status).toBe(200);
      const maxes = agg.body.entries.map((e: { metrics: { temperature: number } }) => e.metrics.temperature);
      expect(Math.max(...maxes)).toBe(23);
      const bad = await entries('kitchen', 'limit=0');
      expect(bad.status).toBe(400);
      expect((await entries('kitchen', 'start=yesterday')).status).toBe(400);
    });

    test('a schema-invalid entry alone is a 400 with the details, and nothing is stored', async () => {
      const before = await settledCount('kitchen', token);
      const r = await post('kitchen', token, { temperature: 'warm' });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('validation_failed');
      expect(r.body.error.message).toMatch(/temperature must be number/);
      expect(r.body.error.details.rejected[0].errors[0]).toMatchObject({ path: '/temperature', keyword: 'type' });
      const missing = await post('kitchen', token, [{ humidity: 3 }, { humidity: 4 }]);
      expect(missing.status).toBe(400);
      expect(missing.body.error.details.rejected).toHaveLength(2);
      expect(await settledCount('kitchen', token)).toBe(before);
    });

    test('wrong, missing or foreign tokens are a 401; an unknown stream is a 404; too much is a 413', async () => {
      const before = await settledCount('kitchen', token);
      expect((await post('kitchen', 'wrong-token', { temperature: 1 })).status).toBe(401);
      const none = await post('kitchen', null, { temperature: 1 });
      expect(none.status).toBe(401);
      expect(none.body.error.code).toBe('unauthorized');
      // The admin key is not a device token.
      expect((await post('kitchen', API_KEY, { temperature: 1 })).status).toBe(401);
      expect((await post('kitchen', null, { temperature: 1 }, { 'x-device-token': 'x'.repeat(300) })).status).toBe(401);
      const unknown = await post('no-such-stream', token, { temperature: 1 });
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('not_found');
      const many = await post('kitchen', token, Array.from({ length: 10_001 }, () => ({ temperature: 1 })));
      expect(many.status).toBe(413);
      expect(many.body.error.code).toBe('payload_too_large');
      const huge = await post('kitchen', token, [{ temperature: 1, note: 'x'.repeat(2 * 1024 * 1024) }]);
      expect(huge.status).toBe(413);
      // An entry naming another device, through the X-Device-Token header.
      const other = await post('kitchen', null, { device: 'someone-else', temperature: 1 }, { 'x-device-token': token });
      expect(other.status).toBe(403);
      expect(await settledCount('kitchen', token)).toBe(before);
    });

    test('hostile input is a 4xx and stores nothing', async () => {
      const devices = (await api('/devices')).body.total as number;
      const before = await settledCount('kitchen', token);
      const hostile: Array<[string, Call]> = [
        ['/devices', { raw: '{"id":"evil-1","__proto__":{"enabled":false}}' }],
        ['/devices', { raw: '{"id":"evil-2","metadata":{"a":{"__proto__":{"x":1}}}}' }],
        ['/devices', { raw: '{"id": "evil-3", ' }],
        ['/devices', { json: { id: 'x'.repeat(5000) } }],
        ['/devices', { json: { id: '../../etc/passwd' } }],
        ['/devices', { json: [{ id: 'evil-4' }] }],
        ['/devices', { raw: '"evil-5"' }],
        ['/devices', { json: { id: 'evil-6', enabled: 'yes', tags: { a: 1 } } }],
        [`/devices/${'a'.repeat(5000)}`, { method: 'GET' }],
        [`/devices/${encodeURIComponent('bad id')}`, { method: 'PATCH', json: { name: 'x' } }],
        ['/devices/kitchen-1', { method: 'PATCH', json: { id: 'other' } }],
        ['/devices?limit=abc', { method: 'GET' }],
        ['/devices?offset=-1', { method: 'GET' }],
        ['/streams', { json: { id: 'evil-s', schema: 'not a schema' } }],
        [`/streams/${'s'.repeat(5000)}/entries`, { method: 'GET' }],
      ];
      for (const [path, c] of hostile) {
        const r = await api(path, c);
        expect([path, r.status >= 400 && r.status < 500]).toEqual([path, true]);
      }
      // A body the parser cannot read is refused before any flow runs, in the API's JSON shape, without a stack trace.
      const broken = await api('/devices', { raw: '{"id": "evil-3", ' });
      expect(broken.status).toBe(400);
      expect(broken.body.error.code).toBe('malformed_json');
      expect(JSON.stringify(broken.body)).not.toMatch(/node_modules|at .*\.js/);
      const entryAttacks: Array<[string, string]> = [
        ['kitchen', '{"__proto__":{"temperature":1},"temperature":2}'],
        ['kitchen', '{"temperature":1,"constructor":{"prototype":{"__proto__":1}}}'],
        ['kitchen', '[{"temperature":1}'],
        ['kitchen', '{"_private":1}'],
        ['kitchen', '{"temperature":1e400}'],
        ['kitchen', '{"temperature":null}'],
        ['kitchen', '{"temperature":{"nested":1}}'],
        ['kitchen', '[]'],
        [encodeURIComponent('k'.repeat(5000)), '{"temperature":1}'],
      ];
      for (const [stream, raw] of entryAttacks) {
        const r = await api(`/streams/${stream}/entries`, { key: null, raw, headers: { authorization: `Bearer ${token}` } });
        expect([raw, r.status >= 400 && r.status < 500]).toEqual([raw, true]);
      }
      expect((await api('/devices')).body.total).toBe(devices);
      expect((await api('/devices?q=evil')).body.total).toBe(0);
      expect((await api('/streams/evil-s')).status).toBe(404);
      expect(await settledCount('kitchen', token)).toBe(before);
    });

    test('rotating the token: the old one fails at once, the new one works', async () => {
      const r = await api('/devices/kitchen-1/token', { method: 'POST' });
      expect(r.status).toBe(200);
      expect(r.body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(r.body.token).not.toBe(token);
      expect((await post('kitchen', token, { temperature: 1 })).status).toBe(401);
      expect((await post('kitchen', r.body.token as string, { temperature: 1 })).status).toBe(201);
      token = r.body.token as string;
      expect((await api('/devices/nobody/token', { method: 'POST' })).status).toBe(404);
    });

    test('a disabled device is a 403; a stream for another device type refuses it', async () => {
      expect((await api('/devices/kitchen-1', { method: 'PATCH', json: { enabled: false } })).body.enabled).toBe(false);
      const r = await post('kitchen', token, { temperature: 1 });
      expect(r.status).toBe(403);
      expect((await api('/devices/kitchen-1', { method: 'PATCH', json: { enabled: true } })).body.enabled).toBe(true);

      expect((await api('/streams', { json: { id: 'pumps', deviceType: 'pump' } })).status).toBe(201);
      const foreign = await post('pumps', token, { temperature: 1 }, { 'x-device-id': 'kitchen-1' });
      expect(foreign.status).toBe(403);
      expect(foreign.body.error.code).toBe('forbidden');
      // No owner and no device named: the API asks which device writes.
      const anon = await post('pumps', token, { temperature: 1 });
      expect(anon.status).toBe(400);
      expect(anon.body.error.message).toMatch(/X-Device-Id/);
    });
  });

  test('devices: paging and filters, update, delete, conflicts', async () => {
    for (let i = 0; i < 7; i++) {
      const r = await api('/devices', { json: { id: `pump-${i}`, name: `Pump ${i}`, type: i < 4 ? 'pump' : 'valve', tags: { site: i % 2 === 0 ? 'north' : 'south' }, enabled: i !== 6 } });
      expect(r.status).toBe(201);
    }
    expect((await api('/devices', { json: { id: 'pump-0' } })).status).toBe(409);
    const page1 = await api('/devices?type=pump&limit=3');
    expect(page1.body).toMatchObject({ total: 4, offset: 0, limit: 3 });
    expect(page1.body.items).toHaveLength(3);
    const page2 = await api('/devices?type=pump&limit=3&offset=3');
    expect(page2.body.items).toHaveLength(1);
    const ids = [...page1.body.items, ...page2.body.items].map((d: { id: string }) => d.id).sort();
    expect(ids).toEqual(['pump-0', 'pump-1', 'pump-2', 'pump-3']);
    expect((await api('/devices?tag=site%3Dnorth&type=valve')).body.items.map((d: { id: string }) => d.id)).toEqual(['pump-4', 'pump-6']);
    expect((await api('/devices?enabled=false')).body.items.map((d: { id: string }) => d.id)).toEqual(['pump-6']);
    expect((await api('/devices?q=PUMP%205')).body.items.map((d: { id: string }) => d.id)).toEqual(['pump-5']);

    const patched = await api('/devices/pump-1', { method: 'PATCH', json: { name: 'Main pump', location: { name: 'cellar', lat: 40.4, lon: -3.7 } } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id: 'pump-1', name: 'Main pump', location: { name: 'cellar' }, type: 'pump' });
    expect((await api('/devices/nobody', { method: 'PATCH', json: { name: 'x' } })).status).toBe(404);

    const del = await api('/devices/pump-1', { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect(del.body).toBe('');
    expect((await api('/devices/pump-1')).status).toBe(404);
    expect((await api('/devices/pump-1', { method: 'DELETE' })).status).toBe(404);
  });

  test('streams: list, replace, delete', async () => {
    const created = await api('/streams', { json: { id: 'tank', name: 'Tank', deviceType: 'valve', schema: { type: 'object', properties: { level: { type: 'number' } } } } });
    expect(created.status).toBe(201);
    expect((await api('/streams', { json: { id: 'tank' } })).status).toBe(409);
    const list = await api('/streams?deviceType=valve');
    expect(list.body.items.map((s: { id: string }) => s.id)).toEqual(['tank']);
    const put = await api('/streams/tank', { method: 'PUT', json: { name: 'Water tank', device: 'pump-4' } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ id: 'tank', name: 'Water tank', device: 'pump-4', deviceType: null, schema: null, description: '' });
    expect((await api('/streams/tank', { method: 'PUT', json: { id: 'other' } })).status).toBe(400);
    expect((await api('/streams/tank', { method: 'DELETE' })).status).toBe(204);
    expect((await api('/streams/tank')).status).toBe(404);
    const gone = await api('/streams/tank/entries');
    expect(gone.status).toBe(404);
  });

  test('ThingSpeak: /update with api_key=<device>.<token> answers entry ids, "0" on failure; feeds.json reads the channel', async () => {
    const d = await api('/devices', { json: { id: 'esp-7' } });
    expect(d.status).toBe(201);
    const key = `esp-7.${d.body.token as string}`;
    expect((await api('/streams', { json: { id: 'ch-7', name: 'Garden', device: 'esp-7', schema: { type: 'object', properties: { field1: { type: 'number', maximum: 100 } } } } })).status).toBe(201);
    const update = async (init: { query?: string; form?: string; json?: unknown; raw?: string }): Promise<Answer> => {
      const url = `${rt.url}/update${init.query ? `?${init.query}` : ''}`;
      const res =
        init.form !== undefined
          ? await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: init.form })
          : init.json !== undefined || init.raw !== undefined
            ? await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: init.raw ?? JSON.stringify(init.json) })
            : await fetch(url);
      return { status: res.status, body: await res.text(), headers: res.headers };
    };
    const first = await update({ query: `api_key=${encodeURIComponent(key)}&field1=21.5&field2=40&status=ok&created_at=2026-11-30%2010:00:00` });
    expect([first.status, first.body]).toEqual([200, '1']);
    expect(first.headers.get('content-type')).toMatch(/^text\/plain/);
    expect((await update({ form: `api_key=${encodeURIComponent(key)}&field1=22&field3=abc&created_at=2026-11-30T10:01:00Z` })).body).toBe('2');
    expect((await update({ json: { api_key: key, field1: 23, created_at: '2026-11-30T10:02:00Z' } })).body).toBe('3');
    for (const bad of [
      { query: `api_key=esp-7.wrong&field1=1` },
      { query: 'api_key=esp-7&field1=1' },
      { query: 'field1=1' },
      { query: `api_key=${encodeURIComponent(key)}` },
      { query: `api_key=${encodeURIComponent(key)}&field1=500` },
      { query: `api_key=${encodeURIComponent(key)}&field1=1&created_at=not-a-date` },
      { raw: `{"api_key":${JSON.stringify(key)},"field1":1,"__proto__":{"x":1}}` },
    ]) {
      const r = await update(bad);
      expect([JSON.stringify(bad).slice(0, 60), r.status, r.body]).toEqual([JSON.stringify(bad).slice(0, 60), 200, '0']);
    }
    const feeds = await waitFor('the feed', async () => {
      const res = await fetch(`${rt.url}/channels/ch-7/feeds.json?start=2026-11-30%2000:00:00&end=2026-12-01%2000:00:00`, { headers: { 'x-api-key': API_KEY } });
      const body = (await res.json()) as { channel: unknown; feeds: unknown[] };
      return res.status === 200 && body.feeds.length === 3 ? { body } : undefined;
    });
    expect(feeds.body.channel).toMatchObject({ id: 'ch-7', name: 'Garden', field1: 'field1' });
    expect(feeds.body.feeds[0]).toMatchObject({ created_at: '2026-11-30T10:00:00Z', entry_id: 1, field1: '21.5', field2: '40', field3: null });
    expect(feeds.body.feeds[1]).toMatchObject({ created_at: '2026-11-30T10:01:00Z', field1: '22', field3: 'abc' });
    const last = await fetch(`${rt.url}/channels/ch-7/feeds.json?api_key=${API_KEY}&results=1&start=2026-11-30%2000:00:00`);
    expect(((await last.json()) as { feeds: Array<{ field1: string }> }).feeds.map((f) => f.field1)).toEqual(['23']);
    expect((await fetch(`${rt.url}/channels/ch-7/feeds.json`)).status).toBe(401);
    expect((await fetch(`${rt.url}/channels/nope/feeds.json?api_key=${API_KEY}`)).status).toBe(404);
  });

  test('ThingSpeak: bulk_update.json (created_at, epoch, delta_t), fields/:n.json and feeds/last.json', async () => {
    const d = await api('/devices', { json: { id: 'esp-9' } });
    expect(d.status).toBe(201);
    const key = `esp-9.${d.body.token as string}`;
    expect((await api('/streams', { json: { id: 'ch-9', name: 'Bulk', device: 'esp-9' } })).status).toBe(201);
    const bulk = async (channel: string, json: unknown): Promise<Answer> => {
      const res = await fetch(`${rt.url}/channels/${channel}/bulk_update.json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof json === 'string' ? json : JSON.stringify(json) });
      return { status: res.status, body: await res.json(), headers: res.headers };
    };
    const t = Date.UTC(2026, 10, 29, 12, 0, 0);
    const ok = await bulk('ch-9', {
      write_api_key: key,
      updates: [
        { delta_t: 30, field1: 1 }, // nothing to count from: refused
        { created_at: '2026-11-29 12:00:00', field1: '2', field2: 'x', latitude: '40.5', longitude: -3.5, status: 'ok' },
        { delta_t: 15, field1: 3 },
        { created_at: t / 1000 + 60, field1: 4 },
        { created_at: 'yesterday', field1: 5 },
        { field1: 6 },
      ],
    });
    expect(ok.status).toBe(202);
    expect(ok.body).toMatchObject({ success: true, accepted: 3 });
    expect(ok.body.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [0, 'invalid_ts'],
      [4, 'invalid_ts'],
      [5, 'invalid_ts'],
    ]);
    const read = await waitFor('the bulk entries', async () => {
      const r = await entries('ch-9', `start=${t - 60_000}&end=${t + 120_000}&fields=field1,field2,lat,long,status`);
      return r.body.count === 3 ? r : undefined;
    });
    expect(read.body.entries.map((e: { ts: number; metrics: unknown }) => [e.ts - t, e.metrics])).toEqual([
      [0, { field1: 2, field2: 'x', lat: 40.5, long: -3.5, status: 'ok' }],
      [15_000, { field1: 3 }],
      [60_000, { field1: 4 }],
    ]);
    // Only delta_t: the last update is now.
    const before = Date.now();
    expect((await bulk('ch-9', { write_api_key: key, updates: [{ delta_t: 0, field3: 1 }, { delta_t: 10, field3: 2 }] })).status).toBe(202);
    const recent = await waitFor('the relative entries', async () => {
      const r = await entries('ch-9', `start=${before - 60_000}&fields=field3`);
      return r.body.count === 2 ? r : undefined;
    });
    const [a, b] = recent.body.entries as Array<{ ts: number }>;
    expect(b.ts - a.ts).toBe(10_000);
    expect(b.ts).toBeGreaterThanOrEqual(before - 1000);
    // Refused whole: wrong key, another device's channel, hostile or malformed bodies; nothing stored.
    expect((await bulk('ch-9', { write_api_key: 'esp-9.wrong', updates: [{ delta_t: 0, field1: 9 }] })).status).toBe(401);
    expect((await bulk('ch-9', { updates: [{ delta_t: 0, field1: 9 }] })).status).toBe(401);
    expect((await bulk('ch-7', { write_api_key: key, updates: [{ delta_t: 0, field1: 9 }] })).status).toBe(403);
    expect((await bulk('ch-9', `{"write_api_key":${JSON.stringify(key)},"updates":[{"delta_t":0,"field1":9,"__proto__":{"x":1}}]}`)).status).toBe(400);
    expect((await bulk('ch-9', { write_api_key: key, updates: 'many' })).status).toBe(400);
    expect((await bulk('ch-9', { write_api_key: key, updates: [1, null, []] })).status).toBe(400);
    expect((await entries('ch-9', `start=${t - 60_000}&end=${t + 120_000}&fields=field1`)).body.count).toBe(3);

    const get = async (p: string): Promise<Answer> => {
      const res = await fetch(`${rt.url}${p}${p.includes('?') ? '&' : '?'}api_key=${API_KEY}`);
      return { status: res.status, body: await res.json(), headers: res.headers };
    };
    const field = await get(`/channels/ch-9/fields/2.json?start=2026-11-29%2011:00:00&end=2026-11-29%2013:00:00`);
    expect(field.status).toBe(200);
    expect(field.body.feeds).toEqual([{ created_at: '2026-11-29T12:00:00Z', entry_id: 1, field2: 'x' }]);
    expect((await get('/channels/ch-9/fields/0.json')).status).toBe(400);
    // feeds/last.json: the newest entry, numbered by the channel's counter (3 + 2 bulk updates so far).
    const last = await get('/channels/ch-9/feeds/last.json');
    expect(last.body).toMatchObject({ entry_id: 5, field3: '2', field1: null });
    expect((await get('/channels/pumps/feeds/last.json')).body).toBe(-1);
  });

  test('fuzz: 400 seeded random bodies and paths never get a 5xx, and the API keeps answering', async () => {
    let seed = 20261201;
    const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const atoms: unknown[] = [null, true, 0, -1, 1e308, 'x', '', '\u0000', '__proto__', 'dev-1', 'a'.repeat(300), [], {}];
    const keys = ['id', 'name', 'type', 'tags', 'metadata', 'enabled', 'livenessTimeout', 'schema', 'device', 'deviceType', 'ts', 'temperature', 'constructor', 'location'];
    const value = (depth: number): unknown => {
      const r = rnd();
      if (depth > 2 || r < 0.5) return pick(atoms);
      if (r < 0.75) return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 4); i > 0; i--) o[pick(keys)] = value(depth + 1);
      return o;
    };
    const paths = ['/devices', '/streams', '/devices/fuzz-1', '/streams/kitchen/entries', '/streams/fuzz-s', `/devices/${encodeURIComponent('a b')}`, '/devices/x/token'];
    const methods = ['POST', 'PATCH', 'PUT', 'GET', 'DELETE'];
    const statuses = new Map<number, number>();
    for (let i = 0; i < 400; i++) {
      const p = pick(paths);
      const m = pick(methods);
      const raw = rnd() < 0.1 ? JSON.stringify(value(0)).slice(0, Math.floor(rnd() * 20)) : JSON.stringify(value(0));
      const r = await api(p, { method: m, raw: m === 'GET' || m === 'DELETE' ? undefined : raw, key: rnd() < 0.8 ? undefined : null });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      expect([m, p, raw, r.status < 500]).toEqual([m, p, raw, true]);
    }
    // Both refusals and successes were exercised.
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
    expect((await api('/devices?limit=1')).status).toBe(200);
  });

  test('the API flow shares the starter flow\'s store config node unchanged (the seed merges them by id)', () => {
    const read = (f: string) => JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', f), 'utf8')) as Array<{ id: string }>;
    const store = (f: string) => read(f).find((n) => n.id === 'tw.store');
    expect(store('api.json')).toEqual(store('starter.json'));
  });

  test('the runtime logged no error or warning from the API flow', () => {
    const lines = rt.output().split('\n').filter((l) => /\[(error|warn)\]/.test(l) && !/Projects disabled|Encrypted credentials not found/.test(l));
    expect(lines).toEqual([]);
  });
});
