// The dashboard's Overview page (the first page): devices online / offline / registered, valid readings and rejects
// per second, active alerts by severity, and the store's health and spool backlog. The flow counts (a counter per
// reading and per reject, no message per reading to the page) and pushes one small summary every 2 s to the
// browsers that have the page open (and to no one when none has). Nodes "tw.do.*" on the starter tab (../gen.js).
const { DEVICE_STATUS, registryHandler, livenessHandler } = require('./devices.js');

// ---- state (flow context, memory) ----
const STATE = `
// tw_do_state: counters (valid readings, rejects) and the rates sampled from them every 2 s (hist: the last
// HIST samples [t, in/s, rejects/s]); the alert node's active list in brief; the liveness node's last event per
// device (live) and the registry's devices (reg, reloaded at most every REGISTRY_MS while a page is open), for the
// device counts; watchers: browsers with the page open (socket id -> { client, at }, renewed every 10 s).
const REGISTRY_MS = 10000;
const MAX_DEVICES = 10000;
const HIST = 60;
let st = flow.get('tw_do_state');
if (!st) {
    st = { readings: 0, rejects: 0, prev: { at: Date.now(), readings: 0, rejects: 0 }, hist: [], alerts: null, live: new Map(),
        reg: null, regAt: 0, regTotal: 0, regError: '', loading: null, watchers: new Map() };
    flow.set('tw_do_state', st);
}`;

const READINGS = `
// thingwire: reads msg only (it gets a message shared with other readers, not a copy: remove this line before changing
// anything inside msg; setting msg.payload or another property of msg itself is fine).
// Valid readings (one message may carry a batch): counted, nothing else. The rate is sampled every 2 s.
${STATE}
st.readings += Array.isArray(msg.payload) ? msg.payload.length : 1;
return null;`;

const REJECTS = `
// Every reject the starter's "count rejects by reason" node sees (its second output: the rejected message, with
// msg.rejects when several were rejected at once): counted.
${STATE}
st.rejects += Array.isArray(msg.rejects) && msg.rejects.length > 0 ? msg.rejects.length : 1;
return null;`;

const ALERTS = `
// thingwire: reads msg only (it gets a message shared with other readers, not a copy: remove this line before changing
// anything inside msg; setting msg.payload or another property of msg itself is fine).
// The alert node's active list (output 2, msg.topic 'active', sent when it changes): kept in brief for the page.
// Replies to control messages on the same output (msg.action set) are not the list.
${STATE}
if (msg.topic !== 'active' || (msg.action !== undefined && msg.action !== null) || !Array.isArray(msg.payload)) return null;
const firing = {};
const pending = {};
let acknowledged = 0;
for (const a of msg.payload) {
    const by = a.state === 'firing' ? firing : pending;
    by[a.severity] = (by[a.severity] || 0) + 1;
    if (a.acknowledged) acknowledged++;
}
st.alerts = {
    firing, pending, acknowledged, total: msg.payload.length,
    // The first few (the engine lists firing before pending, most severe first).
    top: msg.payload.slice(0, 5).map((a) => ({ id: a.id, severity: a.severity, device: a.device, rule: a.rule, metric: a.metric, state: a.state, since: a.since, value: a.value, acknowledged: a.acknowledged })),
};
return null;`;

const STATS = `
// Ticks (every 2 s: the rates are sampled), hello/bye from Overview pages (msg._client), and 'registry' when the
// registry's list was (re)loaded. With a page open: the summary to each open page (output 1; with its _client, so
// to that browser only), the registry's list asked for when it is older than REGISTRY_MS (output 2), and the
// runtime's health report (the store's state and spool) from global.get('thingwireHealth') when the runtime
// provides it (runtime/main.ts).
${STATE}
${DEVICE_STATUS}
const now = Date.now();
const WATCH_MS = 30000;
const socket = msg._client && msg._client.socketId;
if (msg.topic === 'tick') {
    const dt = (now - st.prev.at) / 1000;
    if (dt >= 0.5) {
        const round = (x) => Math.round(x * 100) / 100;
        st.hist.push([now, round((st.readings - st.prev.readings) / dt), round((st.rejects - st.prev.rejects) / dt)]);
        if (st.hist.length > HIST) st.hist.shift();
        st.prev = { at: now, readings: st.readings, rejects: st.rejects };
    }
} else if (msg.topic === 'hello' && socket) {
    if (st.watchers.has(socket) || st.watchers.size < 1000) st.watchers.set(socket, { client: msg._client, at: now });
} else if (msg.topic === 'bye' && socket) {
    st.watchers.delete(socket);
} else if (msg.topic !== 'registry') {
    return null;
}
for (const [k, w] of st.watchers) if (now - w.at > WATCH_MS) st.watchers.delete(k);
node.status({ fill: 'green', shape: st.watchers.size ? 'dot' : 'ring', text: st.watchers.size + ' open' });
if (st.watchers.size === 0 || msg.topic === 'bye') return null;
const targets = msg.topic === 'hello' ? [st.watchers.get(socket)] : [...st.watchers.values()];

if (st.loading && now - st.loading.at > 15000) st.loading = null; // an answer lost: ask again
if (!st.loading && (st.reg === null || now - st.regAt > REGISTRY_MS)) {
    st.loading = { map: new Map(), at: now };
    node.send([null, { topic: 'registry', payload: { op: 'list', query: { offset: 0, limit: 1000 } } }]);
}

// Devices: registered ones by status; unregistered ones that send data.
const latest = (flow.get('tw_dp_state') || {}).latest || new Map();
const reg = st.reg || new Map();
const devices = { registered: reg.size, online: 0, offline: 0, never: 0, disabled: 0, unregistered: 0, unregisteredOnline: 0 };
for (const [id, r] of reg) devices[deviceStatus(r, st.live.get(id), latest.get(id), now).status]++;
for (const [id, l] of latest) {
    if (reg.has(id)) continue;
    devices.unregistered++;
    if (deviceStatus(undefined, undefined, l, now).status === 'online') devices.unregisteredOnline++;
}
const last = st.hist[st.hist.length - 1];
const rejectReasons = Object.entries(flow.get('rejects') || {}).sort((a, b) => b[1] - a[1]).slice(0, 4);
const base = {
    now, devices, registryLoaded: st.reg !== null, registryError: st.regError,
    rates: { in: last ? last[1] : 0, rejects: last ? last[2] : 0 }, hist: st.hist.map((h) => [h[1], h[2]]),
    totals: { readings: st.readings, rejects: st.rejects }, rejectReasons, alerts: st.alerts,
};
function deliver(health) {
    const payload = Object.assign({ health }, base);
    node.send([targets.map((w) => ({ topic: 'stats', payload, _client: w.client })), null]);
}
function brief(h) {
    const c = h.components || {};
    const stores = ((c.store && c.store.stores) || []).map((s) => ({
        description: s.description, ok: s.ok, detail: s.detail, state: s.state, queuedLines: s.queuedLines || 0,
        spooledBatches: s.spooledBatches || 0, spooledBytes: s.spooledBytes || 0, written: s.written || 0, rejected: s.rejected || 0, dropped: s.dropped || 0,
    }));
    return {
        status: h.status, uptime: h.uptimeSeconds,
        store: c.store ? { state: c.store.state, detail: c.store.detail, stores } : null,
        broker: c.broker ? { state: c.broker.state, detail: c.broker.detail, clients: c.broker.clients } : null,
        flows: c.flows ? { state: c.flows.state } : null,
    };
}
const report = global.get('thingwireHealth');
if (typeof report !== 'function') {
    deliver({ error: 'the store\\'s health is reported by the Thingwire runtime (npm start) only' });
    return null;
}
let timer;
Promise.race([report(), new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('no health report within 1.5 s')), 1500); })])
    .then((h) => deliver(brief(h)), (e) => deliver({ error: e.message }))
    .finally(() => clearTimeout(timer));
return null;`;

module.exports = function overviewPage(ctx) {
  const { Z, add, fn, template } = ctx;
  const Y0 = ctx.y;
  add({
    id: 'tw.do.page',
    type: 'ui-page',
    name: 'Overview',
    ui: 'tw.ui.base',
    path: '/overview',
    icon: 'view-dashboard',
    layout: 'grid',
    theme: 'tw.ui.theme',
    breakpoints: ctx.breakpoints,
    // The first page (the dashboard opens on it): lower than every other page's order.
    order: 0,
    className: '',
    visible: 'true',
    disabled: 'false',
  });
  add({ id: 'tw.do.group', type: 'ui-group', name: 'Overview', page: 'tw.do.page', width: '12', height: '1', order: 1, showTitle: false, className: '', visible: 'true', disabled: 'false', groupType: 'default' });
  add({
    id: 'tw.do.comment',
    type: 'comment',
    z: Z,
    name: 'Overview page: devices online/offline, readings and rejects per second, active alerts by severity, store health; pushed every 2 s to open pages only',
    info: 'Counters only on the hot path: valid readings (link from "valid readings") and rejects (a tap on "count rejects by reason") add to numbers in flow context; the tick samples rates every 2 s. The alert node\'s active list and the liveness node\'s events are tapped. While an Overview page is open (it says hello every 10 s) the summary goes to it every 2 s, with the store\'s health from the runtime (global thingwireHealth, see runtime/main.ts).',
    x: 540,
    y: Y0 - 40,
    wires: [],
  });
  template('tw.do.template', { group: 'tw.do.group', name: 'overview', height: '0', vue: 'overview.vue', x: 130, y: Y0 + 40, wires: [['tw.do.stats']] });
  add({ id: 'tw.do.tick', type: 'inject', z: Z, name: 'every 2 s', props: [{ p: 'topic', vt: 'str' }], repeat: '2', crontab: '', once: true, onceDelay: '1', topic: 'tick', x: 130, y: Y0 + 100, wires: [['tw.do.stats']] });
  fn('tw.do.stats', 'overview: summary to open pages', STATS, 2, 370, Y0 + 60, [['tw.do.template'], ['tw.do.manage']]);
  add({ id: 'tw.do.manage', type: 'thingwire-device', z: Z, name: 'list registered devices', v: 1, registry: 'tw.http.registry', mode: 'manage', requireToken: false, idFrom: 'payload', tokenFrom: 'msg', topicPrefix: 'devices', provision: false, persist: false, catchRejects: false, x: 620, y: Y0 + 100, wires: [['tw.do.registry'], ['tw.do.registry']] });
  fn('tw.do.registry', 'overview: registry list', registryHandler(STATE), 2, 860, Y0 + 100, [['tw.do.stats'], ['tw.do.manage']]);
  add({ id: 'tw.do.readin', type: 'link in', z: Z, name: 'valid readings to the overview', links: ['tw.starter.linkout'], x: 175, y: Y0 + 160, wires: [['tw.do.readings']] });
  fn('tw.do.readings', 'overview: count readings', READINGS, 0, 400, Y0 + 160, []);
  fn('tw.do.rejects', 'overview: count rejects', REJECTS, 0, 400, Y0 + 200, []);
  fn('tw.do.alerts', 'overview: active alerts', ALERTS, 0, 400, Y0 + 240, []);
  fn('tw.do.liveness', 'overview: liveness events', livenessHandler(STATE), 0, 400, Y0 + 280, []);
  return {
    height: 360,
    links: [['tw.starter.linkout', 'tw.do.readin']],
    taps: [
      ['tw.starter.rejects', 1, 'tw.do.rejects'],
      ['tw.al.alert', 1, 'tw.do.alerts'],
      ['tw.dev.liveness', 1, 'tw.do.liveness'],
    ],
  };
};
