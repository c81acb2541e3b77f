/**
 * The OpenAPI 3.1 document the API flow serves (GET /api/v1/openapi.json) against the running
 * runtime: every answer the requests below get is validated with ajv (JSON Schema 2020-12) against the
 * document's schema for its path, method, status and content type; the document's paths are exactly
 * the flow's http in nodes; the page at /api/v1/docs renders it without anything from outside. Also the
 * per-device rate limit (THINGWIRE_API_RATE, here 5 entries per second, bursts of 10).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { ROOT, sleep, startRuntime, waitFor, type Runtime } from '../support/services';

jest.setTimeout(60_000);

const API_KEY = 'openapi-admin-key-0123456789abcdef';
const READ_KEY = 'openapi-read-only-key-0123456789';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

interface Answer {
  status: number;
  body: Json;
  text: string;
  headers: Headers;
}

interface Call {
  method?: string;
  key?: string | null;
  headers?: Record<string, string>;
  json?: unknown;
  raw?: string;
  form?: string;
}

/** Over the 5 MB body limit of Node-RED's http in nodes (httpNodeMaxBodySize). */
const BIG = 'x'.repeat(5.5 * 1024 * 1024);

const FLOW = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'api.json'), 'utf8')) as Array<Record<string, Json>>;

/** "/channels/:id/fields/:n.json" -> "/channels/{id}/fields/{n}.json" */
const template = (url: string): string => url.replace(/:(\w+)/g, '{$1}');

describe('OpenAPI document /api/v1/openapi.json', () => {
  let rt: Runtime;
  let off: Runtime;
  let doc: Json;
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  const validators = new Map<string, ValidateFunction>();
  /** "METHOD template status" of every answer validated. */
  const covered = new Set<string>();

  /** Rewrites "#/components/schemas/X" to "#/$defs/X" so one schema carries every component. */
  const rewrite = (v: Json): Json =>
    Array.isArray(v)
      ? v.map(rewrite)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' ? x.replace('#/components/schemas/', '#/$defs/') : rewrite(x)]))
        : v;
  const validator = (key: string, schema: Json): ValidateFunction => {
    let v = validators.get(key);
    if (!v) {
      v = ajv.compile({ ...rewrite(schema), $defs: rewrite(doc.components.schemas) });
      validators.set(key, v);
    }
    return v;
  };
  const resolve = (x: Json): Json => {
    if (x && typeof x.$ref === 'string') {
      const parts = (x.$ref as string).replace(/^#\//, '').split('/');
      let v = doc;
      for (const p of parts) v = v?.[p];
      if (v === undefined) throw new Error(`unresolved $ref ${x.$ref}`);
      return v;
    }
    return x;
  };
  const pathTemplates = (): Array<[string, RegExp]> =>
    Object.keys(doc.paths).map((t) => [t, new RegExp(`^${t.replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '[^/]+')}$`)]);

  /** Checks an answer against the document: the status is documented, the content type and body match, required headers are there. */
  function conform(method: string, url: string, a: Answer): void {
    const pathname = new URL(url).pathname;
    const matches = pathTemplates().filter(([, re]) => re.test(pathname));
    // The most specific template: the one with the fewest parameters.
    matches.sort((x, y) => (x[0].match(/\{/g)?.length ?? 0) - (y[0].match(/\{/g)?.length ?? 0));
    const tpl = matches[0]?.[0];
    const where = `${method} ${pathname} -> ${a.status}`;
    expect([where, tpl !== undefined]).toEqual([where, true]);
    const op = doc.paths[tpl!][method.toLowerCase()];
    expect([where, op !== undefined]).toEqual([where, true]);
    const response = op.responses[String(a.status)] ? resolve(op.responses[String(a.status)]) : undefined;
    expect([where, 'documented', response !== undefined]).toEqual([where, 'documented', true]);
    covered.add(`${method} ${tpl} ${a.status}`);
    for (const [name, h] of Object.entries<Json>(response.headers ?? {})) {
      if (h.required) expect([where, name, a.headers.get(name) !== null]).toEqual([where, name, true]);
    }
    if (!response.content) {
      expect([where, a.text]).toEqual([where, '']);
      return;
    }
    const type = (a.headers.get('content-type') ?? '').split(';')[0].trim();
    const media = response.content[type];
    expect([where, type, media !== undefined]).toEqual([where, type, true]);
    const validate = validator(`${method} ${tpl} ${a.status} ${type}`, media.schema);
    const ok = validate(type === 'application/json' ? a.body : a.text);
    expect([where, ok ? null : validate.errors]).toEqual([where, null]);
  }

  async function call(base: string, p: string, c: Call = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...c.headers };
    if (c.key !== null) headers.authorization ??= `Bearer ${c.key ?? API_KEY}`;
    let body: string | undefined;
    if (c.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = c.form;
    } else if (c.json !== undefined || c.raw !== undefined) {
      headers['content-type'] = 'application/json';
      body = c.raw ?? JSON.stringify(c.json);
    }
    const method = c.method ?? (body === undefined ? 'GET' : 'POST');
    const url = `${base}${p}`;
    const res = await fetch(url, { method, headers, body });
    const text = await res.text();
    const a: Answer = { status: res.status, text, body: (res.headers.get('content-type') ?? '').includes('application/json') && text !== '' ? JSON.parse(text) : text, headers: res.headers };
    conform(method, url, a);
    return a;
  }
  const api = (p: string, c?: Call): Promise<Answer> => call(rt.url, p, c);
  const write = (stream: string, token: string | null, json: unknown, headers: Record<string, string> = {}): Promise<Answer> =>
    api(`/api/v1/streams/${stream}/entries`, { key: null, json, headers: token === null ? headers : { authorization: `Bearer ${token}`, ...headers } });
  const device = async (id: string, extra: Record<string, unknown> = {}): Promise<string> => {
    const r = await api('/api/v1/devices', { json: { id, ...extra } });
    expect(r.status).toBe(201);
    return r.body.token as string;
  };

  beforeAll(async () => {
    [rt, off] = await Promise.all([startRuntime({ THINGWIRE_API_KEY: API_KEY, THINGWIRE_API_READ_KEY: READ_KEY, THINGWIRE_API_RATE: '5' }), startRuntime({})]);
    const r = await waitFor('the document', async () => {
      const res = await fetch(`${rt.url}/api/v1/openapi.json`);
      return res.status === 200 ? res : undefined;
    });
    doc = await r.json();
  });
  afterAll(async () => {
    await Promise.all([rt?.stop(), off?.stop()]);
  });

  test('is OpenAPI 3.1 whose schemas compile (strict JSON Schema 2020-12) and whose references resolve', async () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    // Served as the flow holds it.
    const node = FLOW.find((n) => n.id === 'tw.http.openapi')!;
    expect(doc).toEqual(JSON.parse(node.rules[0].to as string));
    const answer = await api('/api/v1/openapi.json', { key: null });
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    for (const [name, s] of Object.entries(doc.components.schemas)) validator(`schema ${name}`, s);
    const refs: string[] = [];
    const walk = (v: Json): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref') refs.push(x as string);
          else walk(x);
        }
      }
    };
    walk(doc);
    for (const r of refs) expect(() => resolve({ $ref: r })).not.toThrow();
    const ids: string[] = [];
    for (const [tpl, item] of Object.entries<Json>(doc.paths)) {
      const params = [...tpl.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      for (const m of METHODS) {
        const op = item[m];
        if (!op) continue;
        ids.push(op.operationId);
        expect([tpl, m, Object.keys(op.responses).length > 0]).toEqual([tpl, m, true]);
        const declared = [...(item.parameters ?? []), ...(op.parameters ?? [])].map(resolve).filter((p: Json) => p.in === 'path').map((p: Json) => p.name).sort();
        expect([tpl, m, declared]).toEqual([tpl, m, params]);
        for (const sec of op.security ?? []) for (const k of Object.keys(sec)) expect(doc.components.securitySchemes[k]).toBeDefined();
        if (op.requestBody) for (const media of Object.values<Json>(resolve(op.requestBody).content)) validator(`${m} ${tpl} body`, media.schema);
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(
      ['adminApiKey', 'adminBearer', 'adminQueryKey', 'deviceBearer', 'deviceQueryToken', 'deviceToken', 'thingspeakApiKey', 'thingspeakHeader'].sort(),
    );
  });

  test('describes exactly the routes the flow serves (plus the runtime\'s health)', async () => {
    const served = FLOW.filter((n) => n.type === 'http in').map((n) => `${(n.method as string).toUpperCase()} ${template(n.url as string)}`);
    const documented: string[] = [];
    const runtime: string[] = [];
    for (const [tpl, item] of Object.entries<Json>(doc.paths)) {
      for (const m of METHODS) if (item[m]) (item['x-thingwire-served-by'] === 'runtime' ? runtime : documented).push(`${m.toUpperCase()} ${tpl}`);
    }
    expect(new Set(served).size).toBe(served.length);
    expect(documented.sort()).toEqual(served.sort());
    expect(runtime).toEqual(['GET /api/v1/health']);
    const health = await api('/api/v1/health', { key: null });
    expect([200, 503]).toContain(health.status);
  });

  test('the docs page is self-contained and renders every operation and schema', async () => {
    const page = await api('/api/v1/docs', { key: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'.*connect-src 'self'/);
    // Nothing from elsewhere: no external URL, no src attribute, no stylesheet link.
    expect(page.text).not.toMatch(/https?:\/\//);
    expect(page.text).not.toMatch(/\ssrc=|<link\b|@import/);
    const script = /<script>([\s\S]*)<\/script>/.exec(page.text)![1];
    // Run the page's script with a stand-in document and fetch, as a browser would.
    const app = { innerHTML: '' };
    const sandbox: Record<string, unknown> = {
      document: { getElementById: (id: string) => (id === 'app' ? app : null) },
      fetch: async (url: string) => {
        expect(url).toBe('openapi.json');
        return { ok: true, status: 200, json: async () => doc };
      },
    };
    sandbox.window = sandbox;
    vm.runInNewContext(script, sandbox);
    await (sandbox.openApiLoaded as Promise<void>);
    const html = app.innerHTML;
    for (const [tpl, item] of Object.entries<Json>(doc.paths)) {
      expect(html).toContain(`<code>${tpl}</code>`);
      for (const m of METHODS) if (item[m]) expect(html).toContain(`id="op-${item[m].operationId}"`);
    }
    for (const name of Object.keys(doc.components.schemas)) expect(html).toContain(`id="components-schemas-${name}"`);
    for (const name of Object.keys(doc.components.securitySchemes)) expect(html).toContain(`id="securitySchemes-${name}"`);
    // Text from the document is escaped.
    const hostile = (sandbox.renderOpenApi as (d: Json) => string)({ openapi: '3.1.0', info: { title: '<img onerror=x>' }, paths: { '/<b>': { get: { operationId: '"x', summary: '<script>', responses: {} } } } });
    expect(hostile).not.toMatch(/<img|<script|<code>\/<b>/);
    expect(hostile).toContain('<code>/&lt;b&gt;</code>');
    // A failed load says so.
    const app2 = { innerHTML: '' };
    const failing: Record<string, unknown> = { document: { getElementById: () => app2 }, fetch: async () => ({ ok: false, status: 503, json: async () => ({}) }) };
    failing.window = failing;
    vm.runInNewContext(script, failing);
    await (failing.openApiLoaded as Promise<void>);
    expect(app2.innerHTML).toMatch(/Could not load openapi\.json: HTTP 503/);
  });

  test('devices and streams: every answer matches the document', async () => {
    expect((await call(off.url, '/api/v1/devices')).status).toBe(503);
    expect((await call(off.url, '/api/v1/streams', { json: { id: 'x' } })).status).toBe(503);
    expect((await call(off.url, '/api/v1/streams/x/entries')).status).toBe(503);
    expect((await api('/api/v1/devices', { key: null })).status).toBe(401);
    expect((await api('/api/v1/devices', { key: 'wrong-key-wrong-key' })).status).toBe(401);
    expect((await api('/api/v1/devices?limit=abc')).status).toBe(400);

    await device('oa-1', { name: 'One', type: 'dht22', tags: { site: 'lab' }, location: { name: 'bench', lat: 1, lon: 2 }, metadata: { fw: '1.2' } });
    expect((await api('/api/v1/devices', { json: { id: 'oa-1' } })).status).toBe(409);
    expect((await api('/api/v1/devices', { json: { id: '../x' } })).status).toBe(400);
    expect((await api('/api/v1/devices', { raw: '{"id": ' })).status).toBe(400);
    expect((await api('/api/v1/devices', { json: { id: 'big', metadata: { blob: BIG } } })).status).toBe(413);
    expect((await api('/api/v1/devices?type=dht22&limit=5')).body.items).toHaveLength(1);
    expect((await api('/api/v1/devices/oa-1')).status).toBe(200);
    expect((await api('/api/v1/devices/nobody')).status).toBe(404);
    expect((await api(`/api/v1/devices/${'a'.repeat(200)}`)).status).toBe(400);
    expect((await api('/api/v1/devices/oa-1', { method: 'PATCH', json: { name: 'Uno', enabled: true } })).status).toBe(200);
    expect((await api('/api/v1/devices/nobody', { method: 'PATCH', json: { name: 'x' } })).status).toBe(404);
    expect((await api('/api/v1/devices/oa-1', { method: 'PATCH', json: { enabled: 'yes' } })).status).toBe(400);
    expect((await api('/api/v1/devices/oa-1', { method: 'PATCH', raw: `{"metadata":{"b":"${BIG}"}}` })).status).toBe(413);
    expect((await api('/api/v1/devices/oa-1/token', { method: 'POST' })).status).toBe(200);
    expect((await api('/api/v1/devices/nobody/token', { method: 'POST' })).status).toBe(404);
    expect((await api(`/api/v1/devices/${'b'.repeat(200)}/token`, { method: 'POST' })).status).toBe(400);
    expect((await api('/api/v1/devices/oa-1/token', { method: 'POST', key: null })).status).toBe(401);
    await device('oa-gone');
    expect((await api('/api/v1/devices/oa-gone', { method: 'DELETE' })).status).toBe(204);
    expect((await api('/api/v1/devices/oa-gone', { method: 'DELETE' })).status).toBe(404);
    expect((await api(`/api/v1/devices/${'c'.repeat(200)}`, { method: 'DELETE' })).status).toBe(400);
    for (const [m, p] of [
      ['GET', '/api/v1/devices/oa-1'],
      ['PATCH', '/api/v1/devices/oa-1'],
      ['DELETE', '/api/v1/devices/oa-1'],
      ['POST', '/api/v1/devices/oa-1/token'],
      ['GET', '/api/v1/streams'],
      ['GET', '/api/v1/streams/s'],
      ['PUT', '/api/v1/streams/s'],
      ['DELETE', '/api/v1/streams/s'],
      ['POST', '/api/v1/devices'],
      ['POST', '/api/v1/streams'],
    ]) {
      const json = m === 'PATCH' || m === 'PUT' || m === 'POST' ? {} : undefined;
      expect((await call(off.url, p, { method: m, json })).status).toBe(503);
      expect((await api(p, { method: m, json, key: null })).status).toBe(401);
      // The read-only key reads; it changes nothing (403).
      const read = await api(p, { method: m, json, key: READ_KEY });
      if (m === 'GET') expect(read.status).not.toBe(401);
      else expect(read.status).toBe(403);
    }

    const schema = { type: 'object', properties: { temperature: { type: 'number', maximum: 100 } }, required: ['temperature'] };
    expect((await api('/api/v1/streams', { json: { id: 'oa-s', name: 'S', device: 'oa-1', schema } })).status).toBe(201);
    expect((await api('/api/v1/streams', { json: { id: 'oa-s' } })).status).toBe(409);
    expect((await api('/api/v1/streams', { json: { id: 'oa-bad', schema: 'nope' } })).status).toBe(400);
    expect((await api('/api/v1/streams', { json: { id: 'big', description: BIG } })).status).toBe(413);
    expect((await api('/api/v1/streams?device=oa-1')).body.total).toBe(1);
    expect((await api('/api/v1/streams?offset=-1')).status).toBe(400);
    expect((await api('/api/v1/streams/oa-s')).status).toBe(200);
    expect((await api('/api/v1/streams/nope')).status).toBe(404);
    expect((await api(`/api/v1/streams/${'s'.repeat(200)}`)).status).toBe(400);
    expect((await api('/api/v1/streams/oa-s', { method: 'PUT', json: { name: 'S2', device: 'oa-1', schema } })).status).toBe(200);
    expect((await api('/api/v1/streams/nope', { method: 'PUT', json: { name: 'x' } })).status).toBe(404);
    expect((await api('/api/v1/streams/oa-s', { method: 'PUT', json: { id: 'other' } })).status).toBe(400);
    expect((await api('/api/v1/streams/oa-s', { method: 'PUT', raw: `{"description":"${BIG}"}` })).status).toBe(413);
    expect((await api('/api/v1/streams', { json: { id: 'oa-tmp' } })).status).toBe(201);
    expect((await api('/api/v1/streams/oa-tmp', { method: 'DELETE' })).status).toBe(204);
    expect((await api('/api/v1/streams/oa-tmp', { method: 'DELETE' })).status).toBe(404);
    expect((await api(`/api/v1/streams/${'t'.repeat(200)}`, { method: 'DELETE' })).status).toBe(400);
  });

  test('entries: every answer (201, 400, 401, 403, 404, 413) matches the document', async () => {
    const token = await device('oa-w', { type: 'probe' });
    const schema = { type: 'object', properties: { temperature: { type: 'number', maximum: 100 } }, required: ['temperature'] };
    expect((await api('/api/v1/streams', { json: { id: 'oa-e', device: 'oa-w', schema } })).status).toBe(201);
    expect((await api('/api/v1/streams', { json: { id: 'oa-pumps', deviceType: 'pump' } })).status).toBe(201);
    const t0 = Date.now() - 60_000;
    const ok = await write('oa-e', token, [{ ts: t0, temperature: 20 }, { ts: t0 + 1000, temperature: 500 }, { ts: 'soon', temperature: 1 }]);
    expect(ok.status).toBe(201);
    expect(ok.body.rejected).toHaveLength(2);
    expect((await write('oa-e', token, { temperature: 'hot' })).status).toBe(400);
    expect((await write('oa-e', token, [])).status).toBe(400);
    expect((await write('oa-e', 'wrong', { temperature: 1 })).status).toBe(401);
    expect((await write('oa-e', null, { temperature: 1 }, { 'x-device-token': token, 'x-device-id': 'oa-w' })).status).toBe(201);
    expect((await write('oa-pumps', token, { temperature: 1 }, { 'x-device-id': 'oa-w' })).status).toBe(403);
    expect((await write('nope', token, { temperature: 1 })).status).toBe(404);
    expect((await write('oa-e', token, Array.from({ length: 10_001 }, () => ({ temperature: 1 })))).status).toBe(413);
    const read = await waitFor('the entries', async () => {
      const r = await api(`/api/v1/streams/oa-e/entries?start=${t0 - 1}`);
      return r.body.count >= 1 ? r : undefined;
    });
    expect(read.body.entries[0]).toEqual({ ts: t0, device: 'oa-w', metrics: { temperature: 20 } });
    expect((await api(`/api/v1/streams/oa-e/entries?start=${t0 - 1}&bucket=1h&agg=max`)).status).toBe(200);
    expect((await api('/api/v1/streams/oa-e/entries?limit=0')).status).toBe(400);
    expect((await api('/api/v1/streams/nope/entries')).status).toBe(404);
    expect((await api('/api/v1/streams/oa-e/entries', { key: null })).status).toBe(401);
  });

  test('rate limit: beyond THINGWIRE_API_RATE per device a 429 with Retry-After; batches may overdraw; other devices unaffected', async () => {
    const token = await device('rl-1');
    const other = await device('rl-2');
    expect((await api('/api/v1/streams', { json: { id: 'rl', device: 'rl-1' } })).status).toBe(201);
    expect((await api('/api/v1/streams', { json: { id: 'rl-b', device: 'rl-2' } })).status).toBe(201);
    // Requests with a wrong token do not spend the device's budget.
    for (let i = 0; i < 20; i++) expect((await write('rl', 'wrong-token', { v: i })).status).toBe(401);
    // A full bucket holds 10: a batch of 10 passes, the next entry is refused. (A 201 comes once the entries are
    // stored, up to the store's 1 s flush later, while the bucket refills: so the next request goes in meanwhile.)
    const full = write('rl', token, Array.from({ length: 10 }, (_, i) => ({ v: i })));
    await sleep(100);
    const refused = await write('rl', token, { v: 1 });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.body.error.details).toMatchObject({ rate: 5, burst: 10 });
    // ThingSpeak writes count too: /update answers 429 with "0", bulk_update a JSON 429.
    const update = await call(rt.url, `/update?api_key=${encodeURIComponent(`rl-1.${token}`)}&field1=1`, { key: null });
    expect([update.status, update.text]).toEqual([429, '0']);
    expect(Number(update.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const form = await call(rt.url, '/update', { key: null, form: `api_key=${encodeURIComponent(`rl-1.${token}`)}&field1=1` });
    expect([form.status, form.text]).toEqual([429, '0']);
    const bulk = await call(rt.url, '/channels/rl/bulk_update.json', { key: null, json: { write_api_key: `rl-1.${token}`, updates: [{ delta_t: 0, field1: 1 }] } });
    expect(bulk.status).toBe(429);
    expect((await full).status).toBe(201);
    // Another device has its own bucket.
    expect((await write('rl-b', other, { v: 1 })).status).toBe(201);
    // The bucket refills at 5 per second: after the wait it answers, the device writes again.
    await sleep(Number(refused.headers.get('retry-after')) * 1000);
    expect((await write('rl', token, { v: 2 })).status).toBe(201);
    // A batch bigger than the burst passes from a full bucket and leaves it in debt: 25 entries at 5/s.
    await sleep(2100);
    const big = write('rl', token, Array.from({ length: 25 }, (_, i) => ({ v: i })));
    await sleep(100);
    const debt = await write('rl', token, { v: 3 });
    expect((await big).status).toBe(201);
    expect(debt.status).toBe(429);
    expect(Number(debt.headers.get('retry-after'))).toBeGreaterThanOrEqual(3);
  });

  test('ThingSpeak endpoints: every answer matches the document', async () => {
    const token = await device('oa-ts');
    const key = `oa-ts.${token}`;
    expect((await api('/api/v1/streams', { json: { id: 'oa-ch', name: 'Channel', device: 'oa-ts', schema: { type: 'object', properties: { field1: { type: 'number', maximum: 100 } } } } })).status).toBe(201);
    const ts = (p: string, c: Call = {}): Promise<Answer> => call(rt.url, p, { key: null, ...c });
    expect((await ts(`/update?api_key=${encodeURIComponent(key)}&field1=5&created_at=2026-11-30%2010:00:00`)).text).toBe('1');
    expect((await ts(`/update?api_key=${encodeURIComponent(key)}&field1=500`)).text).toBe('0');
    expect((await ts('/update', { form: `api_key=${encodeURIComponent(key)}&field1=6&created_at=2026-11-30T10:01:00Z` })).text).toBe('2');
    expect((await ts('/update', { raw: '{"api_key": ' })).status).toBe(400);
    expect((await ts('/update', { json: { api_key: key, pad: BIG } })).status).toBe(413);
    const bulk = await ts('/channels/oa-ch/bulk_update.json', { json: { write_api_key: key, updates: [{ created_at: '2026-11-30 10:02:00', field1: 7 }, { delta_t: 60, field1: '8' }, { delta_t: 'x', field1: 9 }] } });
    expect(bulk.status).toBe(202);
    expect(bulk.body).toMatchObject({ success: true, accepted: 2 });
    expect((await ts('/channels/oa-ch/bulk_update.json', { json: { write_api_key: key, updates: [] } })).status).toBe(400);
    expect((await ts('/channels/oa-ch/bulk_update.json', { json: { write_api_key: 'oa-ts.wrong', updates: [{ field1: 1, delta_t: 0 }] } })).status).toBe(401);
    expect((await ts('/channels/oa-pumps/bulk_update.json', { json: { write_api_key: key, updates: [{ field1: 1, delta_t: 0 }] } })).status).toBe(403);
    expect((await ts('/channels/nope/bulk_update.json', { json: { write_api_key: key, updates: [{ field1: 1, delta_t: 0 }] } })).status).toBe(404);
    expect((await ts('/channels/oa-ch/bulk_update.json', { json: { write_api_key: key, updates: Array.from({ length: 10_001 }, () => ({})) } })).status).toBe(413);
    const range = 'start=2026-11-30%2000:00:00&end=2026-12-01%2000:00:00';
    const feeds = await waitFor('the feeds', async () => {
      const r = await ts(`/channels/oa-ch/feeds.json?${range}`, { key: API_KEY });
      return r.body.feeds?.length === 4 ? r : undefined;
    });
    expect(feeds.body.feeds.map((f: Json) => [f.created_at, f.field1])).toEqual([
      ['2026-11-30T10:00:00Z', '5'],
      ['2026-11-30T10:01:00Z', '6'],
      ['2026-11-30T10:02:00Z', '7'],
      ['2026-11-30T10:03:00Z', '8'],
    ]);
    expect((await ts(`/channels/oa-ch/fields/1.json?${range}&api_key=${API_KEY}`)).body.feeds).toHaveLength(4);
    expect((await ts(`/channels/oa-ch/fields/9.json?api_key=${API_KEY}`)).status).toBe(400);
    expect((await ts('/channels/oa-ch/fields/1.json')).status).toBe(401);
    expect((await ts(`/channels/nope/fields/1.json?api_key=${API_KEY}`)).status).toBe(404);
    expect((await call(off.url, '/channels/oa-ch/fields/1.json', { key: null })).status).toBe(503);
    expect((await ts(`/channels/oa-ch/feeds/last.json?start=2026-11-30%2000:00:00&api_key=${API_KEY}`)).body).toMatchObject({ created_at: '2026-11-30T10:03:00Z', field1: '8' });
    expect((await ts(`/channels/oa-e/feeds/last.json?api_key=${API_KEY}`)).body).toBe(-1);
    expect((await ts('/channels/oa-ch/feeds/last.json')).status).toBe(401);
    expect((await ts(`/channels/nope/feeds/last.json?api_key=${API_KEY}`)).status).toBe(404);
    expect((await ts(`/channels/${'n'.repeat(200)}/feeds/last.json?api_key=${API_KEY}`)).status).toBe(400);
    expect((await call(off.url, '/channels/oa-ch/feeds/last.json', { key: null })).status).toBe(503);
    expect((await ts('/channels/oa-ch/feeds.json')).status).toBe(401);
    expect((await ts(`/channels/nope/feeds.json?api_key=${API_KEY}`)).status).toBe(404);
    expect((await ts(`/channels/oa-ch/feeds.json?results=0&api_key=${API_KEY}`)).status).toBe(400);
    expect((await call(off.url, '/channels/oa-ch/feeds.json', { key: null })).status).toBe(503);
  });

  test('every documented status was met (except those that need a broken runtime)', () => {
    const documented: string[] = [];
    for (const [tpl, item] of Object.entries<Json>(doc.paths)) {
      for (const m of METHODS) for (const status of Object.keys(item[m]?.responses ?? {})) documented.push(`${m.toUpperCase()} ${tpl} ${status}`);
    }
    const missed = documented.filter((d) => !covered.has(d)).sort();
    // 503 of entries: the store's spool full, which these tests do not bring about (the write node's own tests do).
    expect(missed).toEqual(['GET /api/v1/health 503', 'POST /api/v1/streams/{id}/entries 503']);
  });

  test('the runtime logged no error or warning', () => {
    const lines = rt.output().split('\n').filter((l) => /\[(error|warn)\]/.test(l) && !/Projects disabled|Encrypted credentials not found/.test(l));
    expect(lines).toEqual([]);
  });
});
