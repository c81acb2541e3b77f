// Generates flows/api.json, the HTTP API flow, from the function bodies and the OpenAPI document kept here, so
// they can be read and edited as code: `npm run flows:api` writes it, `npm run flows:api -- --check` (run by the
// tests) fails when the committed flow differs from what this script makes. Edit here, not in api.json (or, after
// editing the flow in the editor, bring the change back here).
const fs = require('fs');
const path = require('path');
const ROOT = path.resolve(__dirname, '..', '..', '..');
const starter = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows/starter.json'), 'utf8'));
const store = starter.find((n) => n.id === 'tw.store');
const Z = 'tw.http.tab';
const nodes = [];
const add = (n) => (nodes.push(n), n);
const fn = (id, name, func, outputs, x, y, wires) =>
  add({ id, type: 'function', z: Z, name, func: func.trim(), outputs, timeout: 0, noerr: 0, initialize: '', finalize: '', libs: [], x, y, wires });
const OUT = 'tw.http.finish';

// ---- shared snippets --------------------------------------------------------------------------
const FAIL = `
const fail = (status, code, message, details) => {
    msg.statusCode = status;
    msg.payload = { error: details === undefined ? { code, message } : { code, message, details } };
    return msg;
};`;
const KEY = `
// Admin API key: THINGWIRE_API_KEY, from "Authorization: Bearer <key>" or "X-API-Key: <key>".
// Constant time without node:crypto (not available in function nodes here): the loop runs over the
// candidate's length (which the client knows anyway), capped at 1024, with no early exit, and indexes the
// key modulo its length, so neither the key's length nor how much of a prefix matches shows in the timing.
// With readOnly (GET routes), the read-scope key THINGWIRE_API_READ_KEY is accepted too; it can change nothing.
function sameKey(given, key) {
    const n = Math.min(given.length, 1024);
    let diff = given.length === key.length ? 0 : 1;
    for (let i = 0; i < n; i++) diff |= given.charCodeAt(i) ^ key.charCodeAt(i % key.length);
    return diff === 0;
}
function checkKey(queryKey, readOnly) {
    const key = env.get('THINGWIRE_API_KEY');
    if (typeof key !== 'string' || key === '') return [503, 'not_configured', 'the management API is off: set THINGWIRE_API_KEY (an admin API key of at least 16 characters) and restart Thingwire'];
    if (key.length < 16) return [503, 'not_configured', 'THINGWIRE_API_KEY is too short: use at least 16 characters (e.g. openssl rand -base64 32) and restart Thingwire'];
    const readKey = env.get('THINGWIRE_API_READ_KEY');
    const h = (msg.req && msg.req.headers) || {};
    let given;
    const m = typeof h.authorization === 'string' ? /^\\s*Bearer\\s+(\\S+)\\s*$/i.exec(h.authorization) : null;
    if (m) given = m[1];
    else if (typeof h['x-api-key'] === 'string' && h['x-api-key'] !== '') given = h['x-api-key'];
    else if (queryKey && msg.req.query && typeof msg.req.query.api_key === 'string' && msg.req.query.api_key !== '') given = msg.req.query.api_key;
    if (given === undefined) return [401, 'unauthorized', 'an API key is required: send "Authorization: Bearer <key>" or "X-API-Key: <key>"'];
    if (sameKey(given, key)) return null;
    if (typeof readKey === 'string' && readKey.length >= 16 && sameKey(given, readKey)) {
        return readOnly ? null : [403, 'forbidden', 'the read-only API key (THINGWIRE_API_READ_KEY) cannot change anything: use the admin key'];
    }
    return [401, 'unauthorized', 'wrong API key'];
}`;
const HOSTILE = `
// A "__proto__" key anywhere in the body is refused (it is never legitimate here); the walk is bounded.
function hostileKey(v) {
    const stack = [[v, 0]];
    let seen = 0;
    while (stack.length > 0) {
        const [x, depth] = stack.pop();
        if (x === null || typeof x !== 'object') continue;
        if (++seen > 100000 || depth > 32) return 'the body is nested too deeply or has too many values';
        for (const k of Object.keys(x)) {
            if (k === '__proto__') return 'the key "__proto__" is not allowed';
            stack.push([x[k], depth + 1]);
        }
    }
    return null;
}`;
const ID_RE = `const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
const preview = (v) => JSON.stringify(String(v).slice(0, 40) + (String(v).length > 40 ? '...' : ''));`;

// ---- tab, config nodes, comments ---------------------------------------------------------------
add({
  id: Z,
  type: 'tab',
  label: 'Thingwire: HTTP API',
  disabled: false,
  info:
    'The HTTP API under /api/v1: devices and streams (management, with the admin API key THINGWIRE_API_KEY sent as "Authorization: Bearer <key>" or "X-API-Key"), and stream entries (written with a device token, read with the admin key). Every answer is JSON; errors are { error: { code, message, details? } } with status 400, 401, 403, 404, 409, 413, 429 or 503.\n\nWithout THINGWIRE_API_KEY the management and read endpoints answer 503: set it to turn them on.\n\nWrites (entries, ThingSpeak /update and bulk_update.json) are rate limited per device: THINGWIRE_API_RATE entries per second (default 50, bursts of twice that; 0 or off: no limit), 429 with Retry-After beyond it.\n\nThe OpenAPI 3.1 document is at /api/v1/openapi.json, a page for it at /api/v1/docs.',
  env: [],
});
add({ id: 'tw.http.registry', type: 'thingwire-registry', name: 'Thingwire devices', v: 1, file: '', defaultLivenessTimeout: '5m' });
add(store);

const routes = [
  ['devices.list', 'GET /api/v1/devices', '/api/v1/devices', 'get'],
  ['devices.create', 'POST /api/v1/devices', '/api/v1/devices', 'post'],
  ['devices.get', 'GET /api/v1/devices/:id', '/api/v1/devices/:id', 'get'],
  ['devices.update', 'PATCH /api/v1/devices/:id', '/api/v1/devices/:id', 'patch'],
  ['devices.delete', 'DELETE /api/v1/devices/:id', '/api/v1/devices/:id', 'delete'],
  ['devices.rotate', 'POST /api/v1/devices/:id/token', '/api/v1/devices/:id/token', 'post'],
  ['streams.list', 'GET /api/v1/streams', '/api/v1/streams', 'get'],
  ['streams.create', 'POST /api/v1/streams', '/api/v1/streams', 'post'],
  ['streams.get', 'GET /api/v1/streams/:id', '/api/v1/streams/:id', 'get'],
  ['streams.replace', 'PUT /api/v1/streams/:id', '/api/v1/streams/:id', 'put'],
  ['streams.delete', 'DELETE /api/v1/streams/:id', '/api/v1/streams/:id', 'delete'],
  ['entries.read', 'GET /api/v1/streams/:id/entries', '/api/v1/streams/:id/entries', 'get'],
];

add({
  id: 'tw.http.comment.manage',
  type: 'comment',
  z: Z,
  name: 'Devices and streams (admin API key): /api/v1/devices[/:id[/token]], /api/v1/streams[/:id[/entries]]',
  info:
    'GET /api/v1/devices?offset&limit&type&tag=key=value&enabled&q - a page { items, total, offset, limit }\nPOST /api/v1/devices { id, name?, type?, location?, tags?, metadata?, enabled?, livenessTimeout? } - 201 { device, token } (the only time the token is shown)\nGET | PATCH | DELETE /api/v1/devices/:id\nPOST /api/v1/devices/:id/token - a new token { device, token }; the old one stops working at once\nGET /api/v1/streams?offset&limit&device&deviceType, POST /api/v1/streams { id, name?, description?, schema?, device? | deviceType? }\nGET | PUT | DELETE /api/v1/streams/:id\nGET /api/v1/streams/:id/entries?start&end&limit&fields&bucket&agg - { stream, entries: [{ ts, device, metrics }], count, truncated }',
  x: 420,
  y: 40,
  wires: [],
});

routes.forEach(([key, name, url, method], i) =>
  add({ id: `tw.http.in.${key}`, type: 'http in', z: Z, name, url, method, upload: false, swaggerDoc: '', x: 170, y: 100 + i * 40, wires: [['tw.http.admin']] }),
);

fn(
  'tw.http.admin',
  'admin key, then route to request',
  `
// Every management route (and reading entries) needs the admin API key; the route becomes a request
// for the thingwire-device node in manage mode, which checks every value.
${FAIL}
${KEY}
${HOSTILE}
${ID_RE}
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const denied = checkKey(false, msg.req.method === 'GET');
if (denied) {
    if (denied[0] === 401) msg.headers['www-authenticate'] = 'Bearer realm="thingwire"';
    return [null, fail(denied[0], denied[1], denied[2]), null];
}
const req = msg.req;
const route = req.method + ' ' + (req.route && req.route.path);
const id = req.params ? req.params.id : undefined;
if (id !== undefined && !ID_RE.test(id)) {
    return [null, fail(400, 'invalid', 'id ' + preview(id) + ' is not a valid id: 1 to 128 letters, digits and ._:-, starting with a letter or digit'), null];
}
const needsBody = req.method === 'POST' && route !== 'POST /api/v1/devices/:id/token' || req.method === 'PUT' || req.method === 'PATCH';
const body = msg.payload;
if (needsBody) {
    if (!isObject(body)) return [null, fail(400, 'invalid', 'the body must be a JSON object (Content-Type: application/json)'), null];
    const hostile = hostileKey(body);
    if (hostile) return [null, fail(400, 'invalid', hostile), null];
}
const query = req.query || {};
switch (route) {
    case 'GET /api/v1/devices': msg.payload = { op: 'list', query }; break;
    case 'POST /api/v1/devices': msg.payload = { op: 'create', device: body }; break;
    case 'GET /api/v1/devices/:id': msg.payload = { op: 'get', id }; break;
    case 'PATCH /api/v1/devices/:id': msg.payload = { op: 'update', id, device: body }; break;
    case 'DELETE /api/v1/devices/:id': msg.payload = { op: 'delete', id }; break;
    case 'POST /api/v1/devices/:id/token': msg.payload = { op: 'rotate', id }; break;
    case 'GET /api/v1/streams': msg.payload = { op: 'listStreams', query }; break;
    case 'POST /api/v1/streams': msg.payload = { op: 'createStream', stream: body }; break;
    case 'GET /api/v1/streams/:id': msg.payload = { op: 'getStream', id }; break;
    case 'PUT /api/v1/streams/:id': msg.payload = { op: 'replaceStream', id, stream: body }; break;
    case 'DELETE /api/v1/streams/:id': msg.payload = { op: 'deleteStream', id }; break;
    case 'GET /api/v1/streams/:id/entries':
        // The stream first (404 when it does not exist), then the store.
        msg.api = { stream: id, query };
        msg.payload = { op: 'getStream', id };
        return [null, null, msg];
    default:
        return [null, fail(404, 'not_found', 'no such endpoint: ' + route), null];
}
return [msg, null, null];
`,
  3,
  440,
  300,
  [['tw.http.manage'], [OUT], ['tw.http.read.stream']],
);

const deviceNode = (id, name, mode, x, y, wires, extra = {}) =>
  add({ id, type: 'thingwire-device', z: Z, name, v: 1, registry: 'tw.http.registry', mode, requireToken: true, idFrom: 'msg', tokenFrom: 'msg', topicPrefix: 'devices', provision: false, persist: false, catchRejects: false, ...extra, x, y, wires });

deviceNode('tw.http.manage', 'devices and streams', 'manage', 680, 280, [['tw.http.ok'], ['tw.http.error']]);

fn(
  'tw.http.ok',
  'JSON answer',
  `
// The manage node's result: 200 or 201 with JSON, 204 with no body.
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
if (msg.statusCode === 204) {
    delete msg.headers['content-type'];
    msg.payload = '';
}
return msg;
`,
  1,
  900,
  260,
  [[OUT]],
);

fn(
  'tw.http.error',
  'error answer',
  `
// Any error from the thingwire nodes as { error: { code, message, details? } } with its status.
const STATUS = { invalid: 400, invalid_query: 400, query_too_large: 413, validation_failed: 400, not_found: 404, conflict: 409, forbidden: 403, unauthorized: 401, payload_too_large: 413, store_error: 503, internal: 500 };
const e = msg.error || { code: 'internal', message: 'unknown error' };
const error = { code: e.code, message: e.message };
if (e.details !== undefined) error.details = e.details;
msg.statusCode = typeof msg.statusCode === 'number' && msg.statusCode >= 400 ? msg.statusCode : STATUS[e.code] || 500;
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
msg.payload = { error };
return msg;
`,
  1,
  900,
  320,
  [[OUT]],
);

// ---- reading entries ---------------------------------------------------------------------------
deviceNode('tw.http.read.stream', 'the stream to read', 'manage', 680, 400, [['tw.http.read.query'], ['tw.http.error']]);

fn(
  'tw.http.read.query',
  'entries query from URL',
  `
// GET /api/v1/streams/:id/entries?start&end&limit&fields&bucket&agg: the stream's readings (tag stream=<id>)
// from the store. Fields: ?fields=a,b, else the properties of the stream's schema.
${FAIL}
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const stream = msg.payload;
const q = msg.api.query;
const str = (v) => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v) => (v !== undefined && /^-?\\d{1,16}$/.test(v) ? Number(v) : v);
for (const k of ['start', 'end', 'limit', 'fields', 'bucket', 'agg']) {
    if (q[k] !== undefined && typeof q[k] !== 'string') return [null, fail(400, 'invalid', 'query parameter ' + k + ' must be given once')];
}
let fields = str(q.fields) ? q.fields.split(',').map((f) => f.trim()).filter((f) => f !== '') : [];
if (fields.length === 0 && stream.schema && stream.schema.properties && typeof stream.schema.properties === 'object') {
    fields = Object.keys(stream.schema.properties).filter((k) => k !== 'ts' && k !== 'device' && k !== 'tags' && k !== 'metrics');
}
if (fields.length === 0) return [null, fail(400, 'invalid', 'say which metrics to read: ?fields=a,b (the stream\\'s schema names no properties)')];
if (fields.length > 100) return [null, fail(400, 'invalid', 'at most 100 fields at once')];
let limit = 1000;
if (str(q.limit)) {
    limit = /^\\d{1,6}$/.test(q.limit) ? Number(q.limit) : NaN;
    if (!(limit >= 1 && limit <= 10000)) return [null, fail(400, 'invalid', 'limit must be a whole number from 1 to 10000, got ' + JSON.stringify(String(q.limit).slice(0, 40)))];
}
const bucket = str(q.bucket);
const agg = str(q.agg);
if (agg !== undefined && bucket === undefined) return [null, fail(400, 'invalid', 'agg needs a bucket (e.g. ?bucket=1m&agg=mean)')];
msg.api.limit = limit;
msg.api.streamRecord = stream;
msg.payload = { measurement: 'telemetry', where: { stream: stream.id }, fields, start: num(str(q.start) || '-24h'), maxPoints: 0 };
if (str(q.end)) msg.payload.end = num(q.end);
if (bucket !== undefined) {
    msg.payload.bucket = num(bucket);
    msg.payload.agg = agg || 'mean';
}
return [msg, null];
`,
  2,
  900,
  400,
  [['tw.http.read.store'], [OUT]],
);

add({
  id: 'tw.http.read.store',
  type: 'thingwire-query',
  z: Z,
  name: 'stream entries from the store',
  v: 1,
  store: 'tw.store',
  measurement: 'telemetry',
  fields: '',
  start: '-24h',
  bucket: '',
  agg: 'mean',
  maxPoints: 0,
  catchRejects: false,
  x: 1140,
  y: 400,
  wires: [['tw.http.read.entries'], ['tw.http.error']],
});

fn(
  'tw.http.read.entries',
  'series to entries',
  `
// One entry per device and time with its metrics; the newest \`limit\` entries, in time order.
const byKey = new Map();
for (const s of msg.payload.series) {
    for (const [ts, value] of s.points) {
        if (value === null || value === undefined) continue;
        const k = s.device + '\\n' + ts;
        let e = byKey.get(k);
        if (!e) byKey.set(k, (e = { ts, device: s.device, metrics: {} }));
        e.metrics[s.field] = value;
    }
}
let entries = [...byKey.values()].sort((a, b) => a.ts - b.ts || (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
const truncated = entries.length > msg.api.limit;
if (truncated) entries = entries.slice(entries.length - msg.api.limit);
msg.statusCode = 200;
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
msg.payload = { stream: msg.api.streamRecord.id, entries, count: entries.length, truncated };
return msg;
`,
  1,
  1370,
  400,
  [[OUT]],
);

// ---- writing entries ---------------------------------------------------------------------------
add({
  id: 'tw.http.comment.entries',
  type: 'comment',
  z: Z,
  name: 'POST /api/v1/streams/:id/entries with a device token: one entry or an array of { ts?, ...metrics }',
  info:
    'The device token comes from "Authorization: Bearer <token>", "X-Device-Token" or ?api_key=. The device is the stream\'s owner, else the X-Device-Id header (or ?device=, or the entries\' "device"). Each entry is checked against the stream\'s JSON Schema and stored as a reading of the device with tag stream=<id>. Answers 201 { accepted, rejected: [{ index, code, message, errors? }] } once the accepted entries are stored (written, or in the store\'s disk spool); 400 when no entry is valid (details: the rejected entries), 401 without a valid token, 403 for a disabled device or one that may not write to the stream, 404 for an unknown stream, 413 for more than 10,000 entries or 1 MiB.',
  x: 460,
  y: 600,
  wires: [],
});

add({ id: 'tw.http.in.entries.write', type: 'http in', z: Z, name: 'POST /api/v1/streams/:id/entries', url: '/api/v1/streams/:id/entries', method: 'post', upload: false, swaggerDoc: '', x: 180, y: 660, wires: [['tw.http.write.request']] });

fn(
  'tw.http.write.request',
  'entries request',
  `
// Shape and size of the request; the stream is looked up next.
${FAIL}
${HOSTILE}
${ID_RE}
const MAX_ENTRIES = 10000;
const MAX_BYTES = 1048576;
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const req = msg.req;
const id = req.params.id;
if (!ID_RE.test(id)) return [null, fail(400, 'invalid', 'stream id ' + preview(id) + ' is not a valid id: 1 to 128 letters, digits and ._:-, starting with a letter or digit')];
const length = Number(req.headers['content-length']);
if (length > MAX_BYTES) return [null, fail(413, 'payload_too_large', 'the body is ' + length + ' bytes, over the limit of ' + MAX_BYTES + ' (send fewer entries per request)')];
const body = msg.payload;
const entries = Array.isArray(body) ? body : [body];
if (!Array.isArray(body) && !isObject(body)) return [null, fail(400, 'invalid', 'the body must be a JSON object (one entry) or an array of them (Content-Type: application/json)')];
if (entries.length === 0) return [null, fail(400, 'invalid', 'the array of entries is empty')];
if (entries.length > MAX_ENTRIES) return [null, fail(413, 'payload_too_large', entries.length + ' entries in one request, over the limit of ' + MAX_ENTRIES)];
const hostile = hostileKey(body);
if (hostile) return [null, fail(400, 'invalid', hostile)];
msg.api = { stream: id, entries, batch: Array.isArray(body) };
msg.payload = { op: 'getStream', id };
return [msg, null];
`,
  2,
  430,
  660,
  [['tw.http.write.stream'], [OUT]],
);

deviceNode('tw.http.write.stream', 'the stream to write', 'manage', 660, 660, [['tw.http.write.who'], ['tw.http.error']]);

fn(
  'tw.http.write.who',
  'which device writes',
  `
// The device: the stream's owner, else X-Device-Id, ?device= or the entries' own "device".
${FAIL}
${ID_RE}
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const stream = msg.payload;
msg.api.streamRecord = stream;
const h = msg.req.headers;
const named = new Set();
for (const e of msg.api.entries) if (isObject(e) && e.device !== undefined) named.add(e.device);
// A ThingSpeak write key names its device (msg.api.device): it must be the stream's owner when it has one.
if (msg.api.device !== undefined && stream.device && stream.device !== msg.api.device) {
    return [null, fail(403, 'forbidden', 'the write key is for device ' + JSON.stringify(msg.api.device) + ', but channel ' + JSON.stringify(stream.id) + ' belongs to device ' + JSON.stringify(stream.device))];
}
let device = msg.api.device || stream.device || (typeof h['x-device-id'] === 'string' && h['x-device-id']) || (typeof msg.req.query.device === 'string' && msg.req.query.device) || undefined;
if (device === undefined && named.size > 0) device = [...named][0];
if (device === undefined) return [null, fail(400, 'invalid', 'say which device writes: the X-Device-Id header, ?device=, or "device" in the entries (the stream has no owning device)')];
if (!ID_RE.test(device)) return [null, fail(400, 'invalid', 'device id ' + preview(device) + ' is not a valid device id')];
for (const d of named) {
    if (d !== device) return [null, fail(403, 'forbidden', 'an entry names device ' + preview(d) + ', but the request writes as ' + JSON.stringify(device))];
}
// The auth node sees one element: it accepts or rejects the request whole.
msg.deviceId = device;
msg.payload = { device };
return [msg, null];
`,
  2,
  880,
  660,
  [['tw.http.write.auth'], [OUT]],
);

deviceNode('tw.http.write.auth', 'device token', 'auth', 1100, 660, [['tw.http.write.rate'], ['tw.http.write.denied']]);

fn(
  'tw.http.write.denied',
  'token refused',
  `
// Why the device was not let in, as an HTTP answer. An unknown device and a wrong token look the same.
${FAIL}
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const code = msg.error && msg.error.code;
if (code === 'unauthorized' || code === 'unknown_device') {
    msg.headers['www-authenticate'] = 'Bearer realm="thingwire"';
    return fail(401, 'unauthorized', 'a valid device token is required: "Authorization: Bearer <token>" or "X-Device-Token: <token>"');
}
if (code === 'device_disabled') return fail(403, 'forbidden', msg.error.message);
if (code === 'payload_too_large') return fail(413, 'payload_too_large', msg.error.message);
return fail(400, 'invalid', (msg.error && msg.error.message) || 'rejected');
`,
  1,
  1330,
  720,
  [[OUT]],
);

fn(
  'tw.http.write.rate',
  'rate limit per device',
  `
// A token bucket per device, checked after its token (so nobody can spend another device's budget):
// THINGWIRE_API_RATE entries per second (default 50; 0 or "off": no limit), bursts of twice that. A
// request costs one token per entry; it passes when the bucket holds as many tokens as it costs (or a
// full bucket's worth, for batches bigger than the burst) and may leave the bucket in debt, so big
// batches are never refused for good but the long-run rate holds. 429 with Retry-After otherwise.
// The buckets live in the flow context (memory), at most 100,000, the least recently used dropped first.
${FAIL}
const MAX_BUCKETS = 100000;
let cfg = context.get('rateConfig');
if (cfg === undefined) {
    const raw = env.get('THINGWIRE_API_RATE');
    let rate = 50;
    if (raw !== undefined && raw !== null && String(raw).trim() !== '') {
        const s = String(raw).trim().toLowerCase();
        if (s === '0' || s === 'off') rate = 0;
        else if (/^\\d{1,7}(\\.\\d{1,6})?$/.test(s) && Number(s) > 0) rate = Number(s);
        else node.warn('THINGWIRE_API_RATE=' + JSON.stringify(String(raw).slice(0, 40)) + ' is not a number of entries per second (or 0 / off); using 50');
    }
    cfg = { rate, burst: Math.max(1, 2 * rate) };
    context.set('rateConfig', cfg);
}
if (cfg.rate === 0) return [msg, null];
let buckets = flow.get('apiRateBuckets');
if (!(buckets instanceof Map)) {
    buckets = new Map();
    flow.set('apiRateBuckets', buckets);
}
const id = msg.device.id;
const now = Date.now();
const cost = Math.max(1, msg.api.entries.length);
let b = buckets.get(id);
if (b !== undefined) {
    buckets.delete(id);
    b.tokens = Math.min(cfg.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * cfg.rate);
    b.at = now;
} else {
    b = { tokens: cfg.burst, at: now };
    while (buckets.size >= MAX_BUCKETS) buckets.delete(buckets.keys().next().value);
}
buckets.set(id, b);
const need = Math.min(cost, cfg.burst);
if (b.tokens < need) {
    const retry = Math.max(1, Math.ceil((need - b.tokens) / cfg.rate));
    const m = fail(429, 'rate_limited', 'device ' + JSON.stringify(id) + ' may write ' + cfg.rate + ' entries per second (bursts of ' + cfg.burst + '): retry in ' + retry + ' s', { retryAfter: retry, rate: cfg.rate, burst: cfg.burst });
    m.headers = { 'content-type': 'application/json', 'cache-control': 'no-store', 'retry-after': String(retry) };
    return [null, m];
}
b.tokens -= cost;
return [msg, null];
`,
  2,
  1220,
  600,
  [['tw.http.write.check'], [OUT]],
);

fn(
  'tw.http.write.check',
  'entries to check',
  `
// May this device write to the stream? Then each entry's time and metrics are checked here and its
// values against the stream's JSON Schema by the validate node (the whole batch at once, every error).
${FAIL}
${ID_RE}
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const stream = msg.api.streamRecord;
const device = msg.device;
if (stream.deviceType && device.type !== stream.deviceType) {
    return [null, fail(403, 'forbidden', 'device ' + JSON.stringify(device.id) + ' (type ' + JSON.stringify(device.type) + ') may not write to stream ' + JSON.stringify(stream.id) + ', which takes devices of type ' + JSON.stringify(stream.deviceType))];
}
const MIN_TS = Date.UTC(2000, 0, 1);
const MAX_TS = Date.UTC(2100, 0, 1);
const ISO_RE = /^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:?\\d{2})$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\\u0000-\\u001f\\u007f-\\u009f]/;
const now = Date.now();
const rejected = [];
const flat = [];
const readings = [];
msg.api.entries.forEach((e, index) => {
    const no = (code, message) => rejected.push({ index, code, message });
    if (!isObject(e)) return no('not_an_entry', 'an entry must be an object of metrics, got ' + (e === null ? 'null' : Array.isArray(e) ? 'an array' : typeof e));
    // A Reading { device, ts, metrics, tags? } or a flat entry { ts?, ...metrics }.
    const reading = isObject(e.metrics);
    const values = reading ? e.metrics : e;
    let ts = now;
    if (e.ts !== undefined) {
        if (typeof e.ts === 'number') ts = e.ts;
        else if (typeof e.ts === 'string' && ISO_RE.test(e.ts)) ts = Date.parse(e.ts);
        else return no('invalid_ts', 'ts must be ms since epoch or an ISO 8601 time with a zone, got ' + preview(e.ts));
        if (!Number.isFinite(ts) || ts < MIN_TS || ts >= MAX_TS) return no('ts_out_of_range', 'ts ' + preview(e.ts) + ' is not a time from 2000 to 2100 (ms since epoch)');
        ts = Math.floor(ts);
    }
    const metrics = {};
    const entry = { ts };
    let n = 0;
    for (const k of Object.keys(values)) {
        if (!reading && (k === 'ts' || k === 'device')) continue;
        const v = values[k];
        if (k === '' || k.length > 128 || k.charCodeAt(0) === 95 || CONTROL_RE.test(k) || k.endsWith('\\\\')) return no('invalid_name', 'metric name ' + preview(k) + ' is not allowed (1 to 128 characters, not starting with _, no control characters)');
        if (typeof v === 'number') {
            if (!Number.isFinite(v)) return no('invalid_value', 'metric ' + preview(k) + ' is not a finite number');
        } else if (typeof v === 'string') {
            if (v.length > 4096 || CONTROL_RE.test(v) || v.endsWith('\\\\')) return no('invalid_value', 'metric ' + preview(k) + ' is a string over 4096 characters, with a control character or ending with a backslash');
        } else if (typeof v !== 'boolean') {
            return no('invalid_value', 'metric ' + preview(k) + ' must be a number, a boolean or a string, got ' + (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v));
        }
        metrics[k] = v;
        entry[k] = v;
        n++;
    }
    if (n === 0) return no('no_metrics', 'the entry has no metrics');
    const tags = {};
    if (reading && isObject(e.tags)) {
        for (const k of Object.keys(e.tags)) {
            const t = e.tags[k];
            if (typeof t === 'string' && k !== 'stream' && k !== 'device' && k !== '' && k.length <= 128 && k.charCodeAt(0) !== 95 && !CONTROL_RE.test(k) && !CONTROL_RE.test(t) && !k.endsWith('\\\\') && !t.endsWith('\\\\') && t.length <= 256) tags[k] = t;
        }
    }
    tags.stream = stream.id;
    flat.push(entry);
    readings.push({ index, reading: { device: device.id, ts, metrics, tags } });
});
msg.api.rejected = rejected;
msg.api.readings = readings;
if (readings.length === 0) return [null, fail(400, 'invalid_entry', msg.api.entries.length === 1 ? rejected[0].message : 'no entry is valid', { rejected })];
// The stream's schema describes one entry; it is checked for the batch as { type: array, items: schema }.
// Its $defs move to the root so that "#/$defs/..." references still resolve.
let schema = { type: 'object' };
if (isObject(stream.schema)) {
    const s = Object.assign({}, stream.schema);
    delete s.$schema;
    delete s.$id;
    const root = { type: 'array', items: s };
    if (s.$defs !== undefined) { root.$defs = s.$defs; delete s.$defs; }
    if (s.definitions !== undefined) { root.definitions = s.definitions; delete s.definitions; }
    schema = root;
}
msg.schema = schema;
msg.payload = flat;
return [msg, null];
`,
  2,
  1330,
  640,
  [['tw.http.write.validate'], [OUT]],
);

add({
  id: 'tw.http.write.validate',
  type: 'thingwire-validate',
  z: Z,
  name: 'stream schema',
  v: 1,
  property: 'payload',
  schemaSource: 'msg',
  schema: '',
  schemaSet: '',
  keyProperty: 'device.type',
  arrays: 'whole',
  coerceTypes: false,
  useDefaults: false,
  allErrors: true,
  maxBytes: 8388608,
  catchRejects: false,
  x: 1550,
  y: 640,
  wires: [['tw.http.write.readings'], ['tw.http.write.invalid']],
});

fn(
  'tw.http.write.invalid',
  'schema rejects',
  `
// The entries the schema refused (errors are grouped by the entry index their path starts with); the
// others are still stored. When none is left, the answer is a 400 with every error.
${FAIL}
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const e = msg.error || {};
if (e.code !== 'validation_failed') {
    const status = e.code === 'payload_too_large' ? 413 : e.code === 'malformed_json' ? 400 : 500;
    return [null, fail(status, e.code || 'internal', 'the stream\\'s schema could not be applied: ' + (e.message || 'unknown error'))];
}
const byEntry = new Map();
for (const err of msg.errors || []) {
    const m = /^\\/(\\d+)(\\/.*)?$/.exec(err.instancePath || '');
    if (!m) continue;
    const i = Number(m[1]);
    if (!byEntry.has(i)) byEntry.set(i, []);
    const list = byEntry.get(i);
    if (list.length < 20) list.push({ path: m[2] || '', keyword: err.keyword, message: err.message, params: err.params });
}
const keep = [];
msg.api.readings.forEach((r, i) => {
    const errors = byEntry.get(i);
    if (errors) msg.api.rejected.push({ index: r.index, code: 'validation_failed', message: 'the entry does not match the stream\\'s schema: ' + errors.map((x) => (x.path || '(entry)') + ' ' + x.message).join('; '), errors });
    else keep.push(r);
});
msg.api.rejected.sort((a, b) => a.index - b.index);
msg.api.readings = keep;
if (keep.length === 0) {
    const only = msg.api.entries.length === 1;
    return [null, fail(400, 'validation_failed', only ? msg.api.rejected[0].message : 'no entry matches the stream\\'s schema', { rejected: msg.api.rejected })];
}
return [msg, null];
`,
  2,
  1760,
  700,
  [['tw.http.write.readings'], [OUT]],
);

fn(
  'tw.http.write.readings',
  'entries to readings',
  `
// The accepted entries as readings of the device, tagged with the stream.
msg.payload = msg.api.readings.map((r) => r.reading);
delete msg.schema;
delete msg.errors;
delete msg.error;
return msg;
`,
  1,
  1790,
  620,
  [['tw.http.write.store', 'tw.http.write.pipeline']],
);

fn(
  'tw.http.write.pipeline',
  'to the pipeline',
  `
// The same readings into the starter flow's pipeline (rollups, anomaly scores, alerts, liveness, the dashboard),
// as readings that came over MQTT go: a new message, without the HTTP request and response.
return { topic: 'http', payload: msg.payload };
`,
  1,
  2000,
  560,
  [['tw.http.topipeline']],
);
add({ id: 'tw.http.topipeline', type: 'link out', z: Z, name: 'readings to the pipeline', mode: 'link', links: ['tw.starter.fromhttp'], x: 2175, y: 560, wires: [] });

add({
  id: 'tw.http.write.store',
  type: 'thingwire-write',
  z: Z,
  name: 'store entries',
  v: 1,
  store: 'tw.store',
  readingMeasurement: 'telemetry',
  rollupMeasurement: 'rollup',
  alertMeasurement: 'alerts',
  deviceTags: '',
  intFields: '',
  catchRejects: false,
  // 201 only once the entries are written or in the store's disk spool: a device may forget what was answered 201.
  passOn: 'durable',
  x: 2000,
  y: 620,
  wires: [['tw.http.write.created'], ['tw.http.write.failed']],
});

fn(
  'tw.http.write.created',
  '201 accepted',
  `
msg.statusCode = 201;
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
msg.payload = { accepted: msg.api.readings.length, rejected: msg.api.rejected };
return msg;
`,
  1,
  2200,
  600,
  [[OUT]],
);

fn(
  'tw.http.write.failed',
  'store refused all',
  `
// The store did not keep the entries (the write node passes on only once they are durable): the device keeps them
// and sends them again.
if (msg.error && (msg.error.code === 'store_unavailable' || msg.error.code === 'store_rejected')) {
    const busy = msg.error.code === 'store_unavailable';
    msg.statusCode = busy ? 503 : 500;
    msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
    if (busy) msg.headers['retry-after'] = '10';
    msg.payload = { error: { code: busy ? 'store_error' : 'internal', message: msg.error.message } };
    return msg;
}
// The write node refuses what this flow already checked, so this is a safety net: it answers only when
// nothing of the request was queued (otherwise "201 accepted" answers once the rest is stored).
if (!Array.isArray(msg.rejects) || msg.rejects.length < msg.api.readings.length) {
    node.warn('store refused ' + (msg.rejects ? msg.rejects.length : 0) + ' entries of stream ' + msg.api.stream + ': ' + (msg.error && msg.error.message));
    return null;
}
msg.statusCode = 400;
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
msg.payload = { error: { code: (msg.error && msg.error.code) || 'invalid_entry', message: (msg.error && msg.error.message) || 'the store refused the entries', details: { rejects: msg.rejects } } };
return msg;
`,
  1,
  2210,
  660,
  [[OUT]],
);

// ---- ThingSpeak-compatible endpoints -----------------------------------------------------------
const FINISH = `
// Every answer passes here. ThingSpeak clients get ThingSpeak's shapes: /update answers the new entry's
// id as text ("0" when the update failed, with status 200, as ThingSpeak does; 429 stays a 429 with
// Retry-After and "0"); feeds.json and fields/:n.json answer { channel, feeds }, feeds/last.json the
// newest feed or -1; bulk_update.json answers 202 { success: true }. Everything else leaves as it came.
const ts = msg.api && msg.api.thingspeak;
if (!ts) return msg;
// ThingSpeak numbers the entries of a channel 1, 2, 3...: one counter per stream, kept in the file context.
const nextIds = (n) => {
    const ids = flow.get('thingspeakEntryIds', 'file') || {};
    const last = (Number(ids[msg.api.stream]) || 0) + n;
    ids[msg.api.stream] = last;
    flow.set('thingspeakEntryIds', ids, 'file');
    return last;
};
if (ts === 'update') {
    let id = 0;
    if (msg.statusCode === 201 && msg.payload && msg.payload.accepted > 0) id = nextIds(1);
    const retry = msg.statusCode === 429 && msg.headers && msg.headers['retry-after'];
    msg.statusCode = retry ? 429 : 200;
    msg.headers = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };
    if (retry) msg.headers['retry-after'] = retry;
    msg.payload = String(id);
    return msg;
}
if (ts === 'bulk') {
    if (msg.statusCode === 201 && msg.payload && msg.payload.accepted > 0) {
        nextIds(msg.payload.accepted);
        msg.statusCode = 202;
        msg.payload = { success: true, accepted: msg.payload.accepted, rejected: msg.payload.rejected };
    }
    return msg;
}
if ((ts === 'feeds' || ts === 'field' || ts === 'last') && msg.statusCode === 200 && msg.payload && Array.isArray(msg.payload.entries)) {
    const s = msg.api.streamRecord;
    const iso = (ms) => new Date(ms).toISOString().replace(/\\.\\d{3}Z$/, 'Z');
    const channel = { id: s.id, name: s.name, description: s.description, created_at: iso(s.createdAt), updated_at: iso(s.updatedAt), last_entry_id: null };
    for (let i = 1; i <= 8; i++) channel['field' + i] = 'field' + i;
    const feeds = msg.payload.entries.map((e, i) => {
        const f = { created_at: iso(e.ts), entry_id: i + 1 };
        for (let n = 1; n <= 8; n++) {
            const k = 'field' + n;
            if (ts === 'field' && k !== msg.api.field) continue;
            const v = e.metrics[k];
            f[k] = v === undefined ? null : String(v);
        }
        return f;
    });
    if (ts === 'last') {
        // The newest feed, numbered by the channel's /update counter when it has one; -1 when there is none.
        const ids = flow.get('thingspeakEntryIds', 'file') || {};
        const last = feeds[feeds.length - 1];
        if (last) last.entry_id = Number(ids[s.id]) || null;
        msg.payload = last || -1;
    } else {
        msg.payload = { channel, feeds };
    }
}
return msg;
`;

add({
  id: 'tw.http.comment.thingspeak',
  type: 'comment',
  z: Z,
  name: 'ThingSpeak-compatible: /update, /channels/:id/bulk_update.json, feeds.json, fields/:n.json, feeds/last.json',
  info:
    'Existing ThingSpeak firmware and clients work unchanged once pointed at Thingwire, with the write API key set to "<device id>.<device token>". /update (GET or POST, form, query or JSON) writes field1..field8 (numbers when numeric), status, lat, long and elevation as metrics of the device to the first stream it owns, at created_at (ISO 8601 or "YYYY-MM-DD HH:MM:SS", UTC) or now, checked against the stream\'s schema like any entry. It answers the entry id (1, 2, 3... per stream) or "0" when the update failed.\n/channels/:id/feeds.json?results&start&end (channel = stream) answers { channel, feeds: [{ created_at, entry_id, field1..field8 }] } from the newest `results` (default 100, up to 10000) entries; it needs the admin API key, also accepted as ?api_key=.\n/channels/:id/fields/:n.json (n = 1..8) answers the same with only that field; /channels/:id/feeds/last.json the newest feed of the last 30 days (or since ?start), or -1.\nPOST /channels/:id/bulk_update.json { write_api_key: "<device>.<token>", updates: [{ created_at | delta_t, field1..8, latitude, longitude, elevation, status }] } stores the updates as entries of the channel (the device must own it) and answers 202 { success: true, accepted, rejected }.\nNo rate limit beyond THINGWIRE_API_RATE (per device, as for every write; /update answers 429 with Retry-After and "0").',
  x: 480,
  y: 940,
  wires: [],
});

add({ id: 'tw.http.in.ts.update.get', type: 'http in', z: Z, name: 'GET /update', url: '/update', method: 'get', upload: false, swaggerDoc: '', x: 140, y: 1000, wires: [['tw.http.ts.update']] });
add({ id: 'tw.http.in.ts.update.post', type: 'http in', z: Z, name: 'POST /update', url: '/update', method: 'post', upload: false, swaggerDoc: '', x: 140, y: 1040, wires: [['tw.http.ts.update']] });

fn(
  'tw.http.ts.update',
  'ThingSpeak update to entry',
  `
// api_key = "<device id>.<device token>" (tokens never contain a dot), from the body, the query or the
// X-THINGSPEAKAPIKEY header; field1..field8, status, lat, long, elevation and created_at become one entry.
${FAIL}
${HOSTILE}
${ID_RE}
msg.api = { thingspeak: 'update' };
const body = msg.req.method === 'POST' && isObject(msg.payload) ? msg.payload : {};
const hostile = hostileKey(body);
if (hostile) return [null, fail(400, 'invalid', hostile)];
const query = msg.req.query || {};
const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
const param = (k) => {
    const v = own(body, k) !== undefined ? own(body, k) : own(query, k);
    return typeof v === 'number' || typeof v === 'boolean' ? String(v) : typeof v === 'string' ? v : undefined;
};
const key = param('api_key') || (typeof msg.req.headers['x-thingspeakapikey'] === 'string' ? msg.req.headers['x-thingspeakapikey'] : undefined);
const dot = typeof key === 'string' ? key.lastIndexOf('.') : -1;
if (dot <= 0 || dot === key.length - 1) return [null, fail(401, 'unauthorized', 'api_key must be "<device id>.<device token>"')];
const device = key.slice(0, dot);
if (!ID_RE.test(device)) return [null, fail(401, 'unauthorized', 'api_key must be "<device id>.<device token>"')];
const NUM_RE = /^\\s*[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?\\s*$/;
const entry = {};
for (const k of ['field1', 'field2', 'field3', 'field4', 'field5', 'field6', 'field7', 'field8', 'lat', 'long', 'elevation', 'status']) {
    const v = param(k);
    if (v === undefined || v === '') continue;
    entry[k] = k !== 'status' && NUM_RE.test(v) ? Number(v) : v;
}
const created = param('created_at');
if (created !== undefined && created !== '') {
    // ThingSpeak also takes "YYYY-MM-DD HH:MM:SS" (UTC without a zone).
    let iso = created.trim().replace(' ', 'T');
    if (/^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?$/.test(iso)) iso += 'Z';
    entry.ts = /^\\d{4}-\\d{2}-\\d{2}$/.test(iso) ? iso + 'T00:00:00Z' : iso;
}
msg.api.device = device;
msg.api.entries = [entry];
msg.api.batch = false;
msg.token = key.slice(dot + 1);
msg.payload = { op: 'listStreams', query: { device, limit: 1 } };
return [msg, null];
`,
  2,
  380,
  1020,
  [['tw.http.ts.streams'], [OUT]],
);

deviceNode('tw.http.ts.streams', "the device's stream", 'manage', 620, 1020, [['tw.http.ts.channel'], ['tw.http.error']]);

fn(
  'tw.http.ts.channel',
  'ThingSpeak channel',
  `
// The channel is the first stream the device owns; then the entry goes the way of any other.
${FAIL}
const s = msg.payload && msg.payload.items && msg.payload.items[0];
if (!s) return [null, fail(404, 'not_found', 'device ' + JSON.stringify(msg.api.device) + ' owns no stream to write to')];
msg.api.stream = s.id;
msg.payload = s;
return [msg, null];
`,
  2,
  840,
  1020,
  [['tw.http.write.who'], [OUT]],
);

add({ id: 'tw.http.in.ts.feeds', type: 'http in', z: Z, name: 'GET /channels/:id/feeds.json', url: '/channels/:id/feeds.json', method: 'get', upload: false, swaggerDoc: '', x: 170, y: 1120, wires: [['tw.http.ts.feeds']] });
add({ id: 'tw.http.in.ts.field', type: 'http in', z: Z, name: 'GET /channels/:id/fields/:n.json', url: '/channels/:id/fields/:n.json', method: 'get', upload: false, swaggerDoc: '', x: 180, y: 1160, wires: [['tw.http.ts.feeds']] });
add({ id: 'tw.http.in.ts.last', type: 'http in', z: Z, name: 'GET /channels/:id/feeds/last.json', url: '/channels/:id/feeds/last.json', method: 'get', upload: false, swaggerDoc: '', x: 180, y: 1200, wires: [['tw.http.ts.feeds']] });

fn(
  'tw.http.ts.feeds',
  'ThingSpeak feeds request',
  `
// feeds.json and fields/:n.json: ?results (default 100), ?start, ?end ("YYYY-MM-DD HH:MM:SS" is UTC);
// feeds/last.json: the newest entry since ?start (default 30 days ago). The admin key may come as ?api_key=.
${FAIL}
${KEY}
${ID_RE}
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const denied = checkKey(true, true);
if (denied) return [null, fail(denied[0], denied[1], denied[2])];
const id = msg.req.params.id;
if (!ID_RE.test(id)) return [null, fail(400, 'invalid', 'channel id ' + preview(id) + ' is not a valid stream id')];
const q = msg.req.query || {};
const time = (v) => {
    if (typeof v !== 'string' || v === '') return undefined;
    const iso = v.trim().replace(' ', 'T');
    return /^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2})?$/.test(iso) ? iso + 'Z' : v;
};
const path = msg.req.route && msg.req.route.path;
let kind = 'feeds';
let fields = 'field1,field2,field3,field4,field5,field6,field7,field8';
if (path === '/channels/:id/fields/:n.json') {
    const n = msg.req.params.n;
    if (!/^[1-8]$/.test(n)) return [null, fail(400, 'invalid', 'field number ' + preview(n) + ' must be 1 to 8')];
    kind = 'field';
    fields = 'field' + n;
} else if (path === '/channels/:id/feeds/last.json') {
    kind = 'last';
}
const results = kind === 'last' ? '1' : typeof q.results === 'string' && q.results !== '' ? q.results : '100';
const query = { fields, limit: results, start: time(q.start) || '-30d' };
if (kind !== 'last' && time(q.end)) query.end = time(q.end);
msg.api = { thingspeak: kind, stream: id, field: kind === 'field' ? fields : undefined, query };
msg.payload = { op: 'getStream', id };
return [msg, null];
`,
  2,
  420,
  1120,
  [['tw.http.read.stream'], [OUT]],
);

add({ id: 'tw.http.in.ts.bulk', type: 'http in', z: Z, name: 'POST /channels/:id/bulk_update.json', url: '/channels/:id/bulk_update.json', method: 'post', upload: false, swaggerDoc: '', x: 190, y: 1260, wires: [['tw.http.ts.bulk']] });

fn(
  'tw.http.ts.bulk',
  'ThingSpeak bulk update to entries',
  `
// { write_api_key: "<device id>.<device token>", updates: [{ created_at | delta_t, field1..8, latitude,
// longitude, elevation, status }] } to entries of the channel (stream :id), which the key's device must
// own (or be of its device type). created_at: ISO 8601, "YYYY-MM-DD HH:MM:SS" (UTC) or epoch seconds;
// delta_t: seconds after the previous update (when no update has created_at, the last one is now).
// Updates with a bad time are rejected one by one like any invalid entry.
${FAIL}
${HOSTILE}
${ID_RE}
const MAX_ENTRIES = 10000;
const MAX_BYTES = 1048576;
msg.headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const id = msg.req.params.id;
if (!ID_RE.test(id)) return [null, fail(400, 'invalid', 'channel id ' + preview(id) + ' is not a valid stream id')];
const length = Number(msg.req.headers['content-length']);
if (length > MAX_BYTES) return [null, fail(413, 'payload_too_large', 'the body is ' + length + ' bytes, over the limit of ' + MAX_BYTES + ' (send fewer updates per request)')];
const body = msg.payload;
if (!isObject(body)) return [null, fail(400, 'invalid', 'the body must be a JSON object { write_api_key, updates: [...] } (Content-Type: application/json)')];
const hostile = hostileKey(body);
if (hostile) return [null, fail(400, 'invalid', hostile)];
const key = typeof body.write_api_key === 'string' ? body.write_api_key : typeof msg.req.headers['x-thingspeakapikey'] === 'string' ? msg.req.headers['x-thingspeakapikey'] : undefined;
const dot = typeof key === 'string' ? key.lastIndexOf('.') : -1;
if (dot <= 0 || dot === key.length - 1 || !ID_RE.test(key.slice(0, dot))) {
    msg.headers['www-authenticate'] = 'Bearer realm="thingwire"';
    return [null, fail(401, 'unauthorized', 'write_api_key must be "<device id>.<device token>"')];
}
const updates = body.updates;
if (!Array.isArray(updates) || updates.length === 0) return [null, fail(400, 'invalid', 'updates must be a non-empty array of { created_at | delta_t, field1..field8, ... }')];
if (updates.length > MAX_ENTRIES) return [null, fail(413, 'payload_too_large', updates.length + ' updates in one request, over the limit of ' + MAX_ENTRIES)];
const NUM_RE = /^\\s*[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?\\s*$/;
const value = (v) => (typeof v === 'string' && NUM_RE.test(v) ? Number(v) : v);
const timeOf = (v) => {
    if (typeof v === 'number') return Number.isFinite(v) ? v * 1000 : undefined;
    if (typeof v !== 'string' || v.trim() === '') return undefined;
    const t = v.trim();
    if (/^\\d{9,11}(\\.\\d+)?$/.test(t)) return Number(t) * 1000;
    let iso = t.replace(' ', 'T');
    if (/^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?$/.test(iso)) iso += 'Z';
    if (!/^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:?\\d{2})$/.test(iso)) return undefined;
    const ms = Date.parse(iso);
    return Number.isFinite(ms) ? ms : undefined;
};
const deltaOf = (v) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && NUM_RE.test(v) ? Number(v) : NaN;
    return Number.isFinite(n) && n >= 0 && n <= 3153600000 ? n * 1000 : undefined;
};
// Times: created_at where given; delta_t is the time after the previous update. When no update has
// created_at, the last one is now and the others count back from it; otherwise a delta_t before the
// first created_at has nothing to count from and is rejected.
const times = new Array(updates.length);
const bad = new Array(updates.length);
const absolute = updates.some((u) => isObject(u) && u.created_at !== undefined);
let prev;
for (let i = 0; i < updates.length; i++) {
    const u = updates[i];
    if (!isObject(u)) continue;
    if (u.created_at !== undefined) {
        const t = timeOf(u.created_at);
        if (t === undefined) bad[i] = u.created_at;
        else times[i] = prev = t;
    } else if (u.delta_t !== undefined) {
        const d = deltaOf(u.delta_t);
        if (d === undefined) bad[i] = u.delta_t;
        else if (prev !== undefined) times[i] = prev = prev + d;
        else if (absolute) bad[i] = 'delta_t before any created_at';
    } else {
        bad[i] = 'neither created_at nor delta_t';
    }
}
if (!absolute) {
    let t = Date.now();
    let after;
    for (let i = updates.length - 1; i >= 0; i--) {
        if (!isObject(updates[i]) || bad[i] !== undefined) continue;
        if (after !== undefined) t -= deltaOf(updates[after].delta_t);
        times[i] = t;
        after = i;
    }
}
const entries = updates.map((u, i) => {
    if (!isObject(u)) return u;
    const e = { ts: bad[i] !== undefined ? String(bad[i]).slice(0, 60) : Math.round(times[i]) };
    for (const k of ['field1', 'field2', 'field3', 'field4', 'field5', 'field6', 'field7', 'field8', 'elevation', 'status']) {
        if (u[k] !== undefined && u[k] !== null && u[k] !== '') e[k] = k === 'status' ? u[k] : value(u[k]);
    }
    if (u.latitude !== undefined && u.latitude !== null && u.latitude !== '') e.lat = value(u.latitude);
    if (u.longitude !== undefined && u.longitude !== null && u.longitude !== '') e.long = value(u.longitude);
    return e;
});
msg.api = { thingspeak: 'bulk', stream: id, device: key.slice(0, dot), entries, batch: true };
msg.token = key.slice(dot + 1);
msg.payload = { op: 'getStream', id };
return [msg, null];
`,
  2,
  460,
  1260,
  [['tw.http.write.stream'], [OUT]],
);

// ---- the OpenAPI document and its page ---------------------------------------------------------
const OPENAPI = require('./openapi.js');
const DOCS_HTML = fs.readFileSync(path.join(__dirname, 'docs.html'), 'utf8');
add({
  id: 'tw.http.comment.openapi',
  type: 'comment',
  z: Z,
  name: 'GET /api/v1/openapi.json (OpenAPI 3.1) and GET /api/v1/docs (a page that renders it), no key needed',
  info: 'The document describes every endpoint of this tab (and /api/v1/health, served by the runtime). test/integration/openapi.test.ts validates real answers against its schemas and checks that its paths are exactly the http in nodes here: change both together. The page is self-contained (no CDN).',
  x: 470,
  y: 1340,
  wires: [],
});
add({ id: 'tw.http.in.openapi', type: 'http in', z: Z, name: 'GET /api/v1/openapi.json', url: '/api/v1/openapi.json', method: 'get', upload: false, swaggerDoc: '', x: 170, y: 1380, wires: [['tw.http.openapi']] });
add({ id: 'tw.http.in.docs', type: 'http in', z: Z, name: 'GET /api/v1/docs', url: '/api/v1/docs', method: 'get', upload: false, swaggerDoc: '', x: 150, y: 1420, wires: [['tw.http.docs']] });
const change = (id, name, rules, x, y) =>
  add({ id, type: 'change', z: Z, name, rules: rules.map(([p, to, tot]) => ({ t: 'set', p, pt: 'msg', to, tot })), action: '', property: '', from: '', to: '', reg: false, x, y, wires: [['tw.http.out']] });
change(
  'tw.http.openapi',
  'OpenAPI document',
  [
    ['payload', JSON.stringify(OPENAPI), 'json'],
    ['headers', JSON.stringify({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache', 'access-control-allow-origin': '*' }), 'json'],
    ['statusCode', '200', 'num'],
  ],
  420,
  1380,
);
change(
  'tw.http.docs',
  'API docs page',
  [
    ['payload', DOCS_HTML, 'str'],
    [
      'headers',
      JSON.stringify({
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-cache',
        'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        'x-content-type-options': 'nosniff',
      }),
      'json',
    ],
    ['statusCode', '200', 'num'],
  ],
  400,
  1420,
);

fn('tw.http.finish', 'ThingSpeak answer shapes', FINISH, 1, 2420, 400, [['tw.http.out']]);
add({ id: 'tw.http.out', type: 'http response', z: Z, name: 'answer', statusCode: '', headers: {}, x: 2620, y: 400, wires: [] });

add({ id: 'tw.http.catch', type: 'catch', z: Z, name: 'API errors', scope: null, uncaught: false, x: 140, y: 840, wires: [['tw.http.errdebug']] });
add({ id: 'tw.http.errdebug', type: 'debug', z: Z, name: 'API node errors', active: true, tosidebar: true, console: true, tostatus: false, complete: 'error', targetType: 'msg', statusVal: '', statusType: 'auto', x: 330, y: 840, wires: [] });

const text = JSON.stringify(nodes, null, 2) + '\n';
const target = path.join(ROOT, 'flows/api.json');
if (process.argv.includes('--check')) {
  if (fs.readFileSync(target, 'utf8') !== text) {
    process.stderr.write('flows/api.json differs from what flows/src/api/gen.js makes: run npm run flows:api\n');
    process.exit(1);
  }
} else {
  fs.writeFileSync(target, text);
  console.log('wrote', nodes.length, 'nodes to flows/api.json');
}
