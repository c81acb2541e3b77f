// The dashboard's Registry page: add a device (its token shown once, to the browser that added it), add a stream
// with its JSON Schema, and list both (paged). Every request goes to a thingwire-device node in manage mode on the
// starter's registry (tw.http.registry); its answers, errors included (400 bad schema, 409 duplicate id...), go
// back to the browser that asked only. Nodes "tw.dr.*" on the starter tab (see ../gen.js).

const ROUTER = `
// Requests from the Registry page (one browser each, msg._client) to manage requests { op, ... } for the device
// node; a client mistake caught here (a schema that is not an object) is answered at once (output 2). msg.tw_dr says
// which answer the page waits for.
const p = msg.payload || {};
const client = msg._client;
const ask = (kind, payload) => ({ payload, tw_dr: kind, _client: client });
const fail = (kind, message) => [null, { topic: 'error', payload: { kind, statusCode: 400, code: 'invalid', message }, _client: client }];
const PAGE = 200;
const paging = (q) => ({ offset: Math.max(0, Math.floor(Number(q && q.offset) || 0)), limit: PAGE });
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
if (msg.topic === 'devices') {
    const query = paging(p);
    if (typeof p.q === 'string' && p.q.trim() !== '') query.q = p.q.trim().slice(0, 128);
    return [ask('devices', { op: 'list', query }), null];
}
if (msg.topic === 'streams') return [ask('streams', { op: 'listStreams', query: paging(p) }), null];
if (msg.topic === 'addDevice') {
    if (!isObject(p.device)) return fail('addDevice', 'no device to add');
    const d = p.device;
    const device = { id: typeof d.id === 'string' ? d.id.trim() : d.id };
    if (typeof d.name === 'string' && d.name.trim() !== '') device.name = d.name.trim();
    if (typeof d.type === 'string' && d.type.trim() !== '') device.type = d.type.trim();
    if (d.tags !== undefined) device.tags = d.tags;
    return [ask('addDevice', { op: 'create', device }), null];
}
if (msg.topic === 'addStream') {
    if (!isObject(p.stream)) return fail('addStream', 'no stream to add');
    const s = p.stream;
    const stream = { id: typeof s.id === 'string' ? s.id.trim() : s.id };
    if (typeof s.name === 'string' && s.name.trim() !== '') stream.name = s.name.trim();
    if (typeof s.device === 'string' && s.device.trim() !== '') stream.device = s.device.trim();
    // The schema as the page parsed it, passed on untouched: an object made here (JSON.parse in this sandbox) has
    // another realm's Object prototype, which the registry does not take for a plain object.
    if (s.schema !== undefined && s.schema !== null) {
        if (!isObject(s.schema)) return fail('addStream', 'the schema must be a JSON object');
        stream.schema = s.schema;
    }
    return [ask('addStream', { op: 'createStream', stream }), null];
}
return null;`;

const REPLY = `
// The manage node's answer (both outputs) to the browser that asked. A new device's token is in this one message
// only: the template shows it once and keeps it nowhere (not stored for a page reload).
const kind = msg.tw_dr;
if (!kind || !msg._client) return null;
const reply = (topic, payload) => ({ topic, payload, _client: msg._client });
if (msg.error) {
    const e = msg.error;
    const out = { kind, statusCode: msg.statusCode, code: e.code, message: e.message };
    if (e.details !== undefined) out.details = e.details;
    return reply('error', out);
}
if (kind === 'devices') return reply('devices', msg.payload);
if (kind === 'streams') return reply('streams', msg.payload);
if (kind === 'addDevice') {
    node.status({ fill: 'green', shape: 'dot', text: 'added device ' + msg.payload.device.id });
    return reply('deviceAdded', msg.payload);
}
if (kind === 'addStream') {
    node.status({ fill: 'green', shape: 'dot', text: 'added stream ' + msg.payload.id });
    return reply('streamAdded', msg.payload);
}
return null;`;

module.exports = function registryPage(ctx) {
  const { Z, add, fn, template } = ctx;
  const Y0 = ctx.y;
  add({
    id: 'tw.dr.page',
    type: 'ui-page',
    name: 'Registry',
    ui: 'tw.ui.base',
    path: '/admin',
    icon: 'database-cog',
    layout: 'grid',
    theme: 'tw.ui.theme',
    breakpoints: ctx.breakpoints,
    order: 6,
    className: '',
    visible: 'true',
    disabled: 'false',
  });
  add({ id: 'tw.dr.group', type: 'ui-group', name: 'Registry', page: 'tw.dr.page', width: '12', height: '1', order: 1, showTitle: false, className: '', visible: 'true', disabled: 'false', groupType: 'default' });
  add({
    id: 'tw.dr.comment',
    type: 'comment',
    z: Z,
    name: 'Registry page: add devices (token shown once) and streams with a JSON Schema; lists of both, answers to the asking browser only',
    info: 'The ui-template (flows/src/dashboard/pages/admin.vue, put here by flows/src/dashboard/gen.js) sends requests that become manage requests { op, ... } for the thingwire-device node in manage mode on the "Thingwire devices" registry: create (answered with the device and its token, shown once on the page and kept nowhere), createStream (its JSON Schema compiled by the registry: an error is a 400), list and listStreams (200 at a time). Errors (400 invalid, 409 duplicate id) are shown on the page. The dashboard has no login of its own: put it behind one (a reverse proxy or a dashboard auth plugin) before exposing this page.',
    x: 480,
    y: Y0 - 40,
    wires: [],
  });
  template('tw.dr.template', { group: 'tw.dr.group', name: 'registry view', height: '0', vue: 'admin.vue', x: 140, y: Y0 + 40, wires: [['tw.dr.router']] });
  fn('tw.dr.router', 'registry page: requests', ROUTER, 2, 370, Y0 + 40, [['tw.dr.manage'], ['tw.dr.template']]);
  add({ id: 'tw.dr.manage', type: 'thingwire-device', z: Z, name: 'manage devices and streams', v: 1, registry: 'tw.http.registry', mode: 'manage', requireToken: true, idFrom: 'msg', tokenFrom: 'msg', topicPrefix: 'devices', provision: false, persist: false, catchRejects: false, x: 610, y: Y0 + 40, wires: [['tw.dr.reply'], ['tw.dr.reply']] });
  fn('tw.dr.reply', 'registry page: answers', REPLY, 1, 850, Y0 + 40, [['tw.dr.template']]);

  return { height: 160 };
};
