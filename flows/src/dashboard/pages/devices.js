// The dashboard's Devices page: every device the flow knows (registered in the registry, or unregistered but sending
// data) in a searchable, sortable, paged table with its status, last reading and latest values; a row opens the
// device's own page. Filtering, sorting and paging run in the flow, so a browser gets one page of rows (at most
// 100) however many devices there are. Nodes "tw.dl.*" on the starter tab (see ../gen.js).

// ---- a device's status (the Overview page counts with it too: see module.exports at the end) ----
const DEVICE_STATUS = `
// A device's status from what the flow knows about it: r, its registry record (undefined: unregistered); lv, the
// liveness node's last event for it (registered, enabled devices only); l, its latest reading (the Device page's
// flow state). Statuses: online, offline, never (registered, no data seen yet), disabled. The liveness event
// decides for registered devices; without one (the flow restarted, no change since) the age of the latest
// reading against the device's timeout does, as it does for unregistered devices (the registry's default).
const DEFAULT_TIMEOUT_MS = 300000;
const STATUS_RANK = { offline: 0, never: 1, online: 2, disabled: 3 };
function deviceStatus(r, lv, l, now) {
    const seen = Math.max((lv && lv.lastSeen) || 0, (l && l.ts) || 0, (r && r.lastSeen) || 0) || null;
    let status;
    if (r && !r.enabled) status = 'disabled';
    else if (r && lv) status = lv.state === 'online' ? 'online' : (lv.reason === 'never-seen' && !seen ? 'never' : 'offline');
    else if (seen === null) status = r ? 'never' : 'offline';
    else status = now - seen <= ((r && r.livenessTimeout) || DEFAULT_TIMEOUT_MS) ? 'online' : 'offline';
    return { status, seen };
}`;

// ---- state (flow context, memory) ----
const STATE = `
// tw_dl_state: reg, the registry's devices (id -> { name, type, tags, enabled, livenessTimeout, lastSeen }, reloaded
// at most every REGISTRY_MS while the page is used); loading, a reload in progress; live, the liveness node's last
// event per device; waiting, browsers asking before the first registry load.
const REGISTRY_MS = 10000;
const MAX_DEVICES = 10000;
let st = flow.get('tw_dl_state');
if (!st) { st = { reg: null, regAt: 0, regTotal: 0, regError: '', loading: null, live: new Map(), waiting: new Map() }; flow.set('tw_dl_state', st); }`;

const ROUTER = `
// Requests from the Devices page (msg._client: one browser): { q, status, sort, dir, offset, limit }. Answers one
// page of rows filtered and sorted here, with the counts per status; reloads the registry's list when it is
// older than REGISTRY_MS (output 2, to the manage node). msg.topic 'registry': the list was (re)loaded.
${STATE}
${DEVICE_STATUS}
const now = Date.now();
const SORTS = ['id', 'name', 'type', 'status', 'seen'];
function answer(q, client) {
    const latest = (flow.get('tw_dp_state') || {}).latest || new Map();
    const reg = st.reg || new Map();
    const words = String(q.q || '').toLowerCase().split(/\\s+/).filter(Boolean).slice(0, 8);
    const want = ['online', 'offline', 'never', 'disabled', 'unregistered'].includes(q.status) ? q.status : '';
    const counts = { all: 0, online: 0, offline: 0, never: 0, disabled: 0, unregistered: 0 };
    const rows = [];
    const ids = new Set(reg.keys());
    for (const id of latest.keys()) ids.add(id);
    for (const id of ids) {
        const r = reg.get(id);
        const l = latest.get(id);
        const s = deviceStatus(r, st.live.get(id), l, now);
        counts.all++;
        counts[s.status]++;
        if (!r) counts.unregistered++;
        if (want === 'unregistered' ? r : want && s.status !== want) continue;
        if (words.length) {
            let hay = id;
            if (r) {
                hay += ' ' + r.name + ' ' + r.type;
                for (const k in r.tags) hay += ' ' + k + '=' + r.tags[k];
            }
            hay = hay.toLowerCase();
            if (!words.every((w) => hay.includes(w))) continue;
        }
        rows.push({ id, r, l, s });
    }
    const sort = SORTS.includes(q.sort) ? q.sort : 'id';
    const dir = q.dir === 'desc' ? -1 : 1;
    const key = {
        id: (x) => x.id,
        name: (x) => (x.r && x.r.name) || '',
        type: (x) => (x.r && x.r.type) || '',
        status: (x) => STATUS_RANK[x.s.status],
        seen: (x) => x.s.seen || 0,
    }[sort];
    rows.sort((a, b) => {
        const ka = key(a); const kb = key(b);
        const c = typeof ka === 'number' ? ka - kb : ka < kb ? -1 : ka > kb ? 1 : 0;
        return c !== 0 ? c * dir : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    });
    const limit = Math.max(1, Math.min(200, Math.floor(Number(q.limit)) || 100));
    // The page holding the asked offset (the last one when the list got shorter).
    let offset = Math.max(0, Math.min(Math.floor(Number(q.offset)) || 0, Math.max(0, rows.length - 1)));
    offset -= offset % limit;
    const page = rows.slice(offset, offset + limit).map((x) => {
        const metrics = {};
        const names = x.l ? Object.keys(x.l.metrics) : [];
        for (const m of names.slice(0, 6)) metrics[m] = x.l.metrics[m];
        return {
            id: x.id, registered: !!x.r, name: x.r ? x.r.name : '', type: x.r ? x.r.type : '', tags: x.r ? x.r.tags : {},
            status: x.s.status, seen: x.s.seen, metrics, more: Math.max(0, names.length - 6),
        };
    });
    return { topic: 'devices', payload: { req: q.req, now, counts, matched: rows.length, offset, limit, rows: page, registryError: st.regError }, _client: client };
}
if (msg.topic === 'registry') {
    const out = [];
    for (const w of st.waiting.values()) out.push(answer(w.q, w.client));
    st.waiting.clear();
    return [out, null];
}
if (msg.topic !== 'list' || !msg._client) return null;
const q = msg.payload || {};
let reload = null;
if (st.loading && now - st.loading.at > 15000) st.loading = null; // an answer lost: ask again
if (!st.loading && (st.reg === null || now - st.regAt > REGISTRY_MS)) {
    st.loading = { map: new Map(), at: now };
    reload = { topic: 'registry', payload: { op: 'list', query: { offset: 0, limit: 1000 } } };
}
if (st.reg === null) {
    // The first request after a start: answered once the registry's list is here (registered names and types).
    if (st.waiting.size < 1000) st.waiting.set(msg._client.socketId || String(st.waiting.size), { q, client: msg._client });
    return [null, reload];
}
return [answer(q, msg._client), reload];`;

// (A function of the page's state snippet: the Overview page uses it too, with its own state.)
const registryHandler = (STATE) => `
// The manage node's answers to { op: 'list' } (1,000 devices a page): collected page by page (output 2 asks for
// the next one), then they replace the registry map and the router answers whoever waits (output 1).
${STATE}
const L = st.loading;
if (!L) return null;
const p = msg.payload;
if (msg.statusCode !== 200 || !p || !Array.isArray(p.items)) {
    st.loading = null;
    st.regError = 'device registry: ' + ((msg.error && msg.error.message) || 'list failed');
    if (st.reg === null) st.reg = new Map();
    st.regAt = Date.now();
    node.status({ fill: 'red', shape: 'ring', text: st.regError });
    return [{ topic: 'registry' }, null];
}
for (const d of p.items) {
    L.map.set(d.id, { name: d.name || '', type: d.type || '', tags: d.tags || {}, enabled: d.enabled !== false, livenessTimeout: d.livenessTimeout || 0, lastSeen: d.lastSeen || null });
}
const next = p.offset + p.items.length;
if (p.items.length > 0 && next < p.total && L.map.size < MAX_DEVICES) {
    return [null, { topic: 'registry', payload: { op: 'list', query: { offset: next, limit: 1000 } } }];
}
st.reg = L.map;
st.regAt = Date.now();
st.regTotal = p.total;
st.regError = '';
st.loading = null;
node.status({ fill: 'green', shape: 'dot', text: st.reg.size + ' registered' });
return [{ topic: 'registry' }, null];`;

const livenessHandler = (STATE) => `
// The liveness node's events (one per change: { device, state, since, lastSeen, reason }): the last one per device.
${STATE}
const e = msg.payload;
if (!e || typeof e.device !== 'string' || (e.state !== 'online' && e.state !== 'offline')) return null;
st.live.delete(e.device);
st.live.set(e.device, { state: e.state, reason: e.reason, since: e.since, lastSeen: e.lastSeen });
if (st.live.size > MAX_DEVICES) st.live.delete(st.live.keys().next().value);
return null;`;

function devicesPage(ctx) {
  const { Z, add, fn, template } = ctx;
  const Y0 = ctx.y;
  add({
    id: 'tw.dl.page',
    type: 'ui-page',
    name: 'Devices',
    ui: 'tw.ui.base',
    path: '/devices',
    icon: 'format-list-bulleted',
    layout: 'grid',
    theme: 'tw.ui.theme',
    breakpoints: ctx.breakpoints,
    order: 3,
    className: '',
    visible: 'true',
    disabled: 'false',
  });
  add({ id: 'tw.dl.group', type: 'ui-group', name: 'Devices', page: 'tw.dl.page', width: '12', height: '1', order: 1, showTitle: false, className: '', visible: 'true', disabled: 'false', groupType: 'default' });
  add({
    id: 'tw.dl.comment',
    type: 'comment',
    z: Z,
    name: 'Devices page: registered and unregistered devices with status, last reading and latest values; filtered, sorted and paged here',
    info: 'The ui-template (flows/src/dashboard/pages/devices.vue, put here by flows/src/dashboard/gen.js) asks every 3 s for one page of rows with its search text, status filter and sort. The router joins the registry\'s devices (a thingwire-device node in manage mode, op list, reloaded at most every 10 s while the page is used), the liveness node\'s events and the Device page\'s latest readings (flow tw_dp_state, read only), and answers that browser alone.',
    x: 520,
    y: Y0 - 40,
    wires: [],
  });
  template('tw.dl.template', { group: 'tw.dl.group', name: 'devices table', height: '0', vue: 'devices.vue', x: 140, y: Y0 + 40, wires: [['tw.dl.router']] });
  fn('tw.dl.router', 'devices page: rows', ROUTER, 2, 360, Y0 + 40, [['tw.dl.template'], ['tw.dl.manage']]);
  add({ id: 'tw.dl.manage', type: 'thingwire-device', z: Z, name: 'list registered devices', v: 1, registry: 'tw.http.registry', mode: 'manage', requireToken: false, idFrom: 'payload', tokenFrom: 'msg', topicPrefix: 'devices', provision: false, persist: false, catchRejects: false, x: 600, y: Y0 + 100, wires: [['tw.dl.registry'], ['tw.dl.registry']] });
  fn('tw.dl.registry', 'devices page: registry list', registryHandler(STATE), 2, 840, Y0 + 100, [['tw.dl.router'], ['tw.dl.manage']]);
  fn('tw.dl.liveness', 'devices page: liveness events', livenessHandler(STATE), 0, 640, Y0 + 160, []);
  return {
    height: 240,
    taps: [['tw.dev.liveness', 1, 'tw.dl.liveness']],
  };
}

module.exports = devicesPage;
// Shared with the Overview page (pages/overview.js), which counts devices the same way.
module.exports.DEVICE_STATUS = DEVICE_STATUS;
module.exports.registryHandler = registryHandler;
module.exports.livenessHandler = livenessHandler;
