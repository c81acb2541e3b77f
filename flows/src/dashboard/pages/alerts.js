// The dashboard's Alerts page: the alert node's active list pushed to every open Alerts page (only) as it changes,
// alerts resolved in the last 24 hours, and acknowledging an active alert with a comment (the alert node's
// "ack" control message, answered to the browser that sent it). Nodes "tw.da.*" on the starter tab (see ../gen.js
// for how pages are put into the flow).
//
// Recent (resolved) alerts come from the alert node's state changes (output 1), kept in the flow context's
// "file" store (so they survive a restart where the runtime has one, as Thingwire's does), not from the store's
// "alerts" measurement: those points carry neither the alert id, who acknowledged it and why, nor when the episode
// started, and a store query merges the series of one device (rule and severity tags are not in the answer).

const RECENT = `
// recent: alerts resolved in the last 24 h, newest first (at most MAX_RECENT); open: alert id -> when its
// episode started (pending or firing), to show how long a resolved alert lasted. Both in the "file" context
// store (the runtime's localfilesystem; Node-RED falls back to memory where there is none).
const MAX_RECENT = 500;
const MAX_OPEN = 20000;
const KEEP_MS = 86400e3;
const STORE = 'file';
const trimRecent = (list, now) => list.filter((r) => now - r.resolved < KEEP_MS).slice(0, MAX_RECENT);`;

// The browsers with an Alerts page open (flow context tw_da_watchers, memory: socket id -> { client, at }). A
// page says "load" when it opens, "hello" every 10 s and "bye" when it closes; one silent for WATCH_MS is
// forgotten (a closed tab). The lists are pushed to these browsers only (msg._client): sent without one, a
// dashboard message goes to every page of every browser (a Device page got the 500 KB active list of 1,300
// alerts every second).
const WATCHERS = `
const WATCH_MS = 30000;
const MAX_WATCHERS = 1000;
let watchers = flow.get('tw_da_watchers');
// Not instanceof: each Function node runs in a context of its own, with its own Map (the router makes it).
if (Object.prototype.toString.call(watchers) !== '[object Map]') {
    watchers = new Map();
    flow.set('tw_da_watchers', watchers);
}
const forgetSilent = (now) => { for (const [k, w] of watchers) if (now - w.at > WATCH_MS) watchers.delete(k); };
/** One message per open Alerts page, each addressed to its browser. */
const toWatchers = (topic, payload) => {
    forgetSilent(Date.now());
    return [...watchers.values()].map((w) => ({ topic, payload, _client: w.client }));
};`;

const ROUTER = `
// Requests from the Alerts page (one browser each, msg._client): "load" (the active list from the alert node,
// and the recent resolved alerts), "hello" / "bye" (the page is open / closed) and "ack" (an active alert
// acknowledged with a comment). Output 1: control messages to the alert node (marked tw_da, so only this page's
// answers are picked up); output 2: answers.
${RECENT}
${WATCHERS}
const p = msg.payload || {};
const reply = (topic, payload) => ({ topic, payload, _client: msg._client });
const socket = msg._client && msg._client.socketId;
if (msg.topic === 'hello' || msg.topic === 'load' || msg.topic === 'bye') {
    const now = Date.now();
    forgetSilent(now);
    if (msg.topic === 'bye') {
        if (socket) watchers.delete(socket);
        node.status({ fill: 'green', shape: watchers.size ? 'dot' : 'ring', text: watchers.size + ' open' });
        return null;
    }
    const known = socket ? watchers.has(socket) : false;
    if (socket && (known || watchers.size < MAX_WATCHERS)) watchers.set(socket, { client: msg._client, at: now });
    node.status({ fill: 'green', shape: watchers.size ? 'dot' : 'ring', text: watchers.size + ' open' });
    // A hello from a browser not known (its socket reconnected, or the flows restarted): loaded again.
    if (msg.topic === 'hello' && known) return null;
}
if (msg.topic === 'load' || msg.topic === 'hello') {
    const recent = trimRecent(flow.get('tw_da_recent', STORE) || [], Date.now());
    return [{ action: 'active', payload: {}, tw_da: 'active', _client: msg._client }, reply('recent', recent)];
}
if (msg.topic === 'ack') {
    const fail = (message) => [null, reply('error', { id: p.id, message })];
    if (typeof p.id !== 'string' || p.id === '' || p.id.length > 300) return fail('no alert to acknowledge');
    // Who: the dashboard's signed-in user when there is one (a FlowFuse user plugin), else the name typed on the page.
    const u = msg._client && msg._client.user;
    const signedIn = u && (u.username || u.name || u.email);
    const by = typeof signedIn === 'string' && signedIn !== '' ? signedIn : typeof p.by === 'string' && p.by.trim() !== '' ? p.by.trim() : 'dashboard';
    if (by.length > 128) return fail('the name must be at most 128 characters');
    const comment = typeof p.comment === 'string' ? p.comment.trim() : '';
    if (comment.length > 1024) return fail('the comment must be at most 1024 characters');
    const payload = comment === '' ? { id: p.id, by } : { id: p.id, by, comment };
    return [{ action: 'ack', payload, tw_da: 'ack', _client: msg._client }, null];
}
return null;`;

const ACTIVE = `
// The alert node's second output: its active list (topic "active", sent when it changes) goes to every open
// Alerts page (and to no one when none is); answers to this page's control messages (tw_da) go back to the
// browser that asked. Answers to others (the HTTP API, the Live page's table) are not for this page.
${WATCHERS}
if (msg.action === undefined) {
    if (msg.topic !== 'active' || !Array.isArray(msg.payload)) return null;
    node.status({ fill: msg.payload.length ? 'red' : 'green', shape: 'dot', text: msg.payload.length + ' active' });
    return [toWatchers('active', msg.payload)];
}
if (!msg.tw_da || !msg._client) return null;
if (msg.tw_da === 'active') return { topic: 'active', payload: Array.isArray(msg.payload) ? msg.payload : [], _client: msg._client };
if (msg.tw_da === 'ack') return { topic: 'acked', payload: msg.payload, _client: msg._client };
return null;`;

const CHANGES = `
// The alert node's state changes (output 1): an episode's start is remembered by its id; a resolved alert joins
// the recent list (with who acknowledged it, if anyone), which goes to every open Alerts page.
${RECENT}
${WATCHERS}
const e = msg.payload;
if (!e || typeof e !== 'object' || typeof e.id !== 'string' || e.id === '') return null;
const open = flow.get('tw_da_open', STORE) || {};
// How many ids open holds, kept beside it: counting the keys on every event cost ~1 ms at the cap.
let n = flow.get('tw_da_open_n', STORE);
if (typeof n !== 'number') n = Object.keys(open).length;
if (e.state === 'pending' || e.state === 'firing') {
    if (open[e.id] === undefined) {
        open[e.id] = e.since;
        n++;
        // Over the cap (episodes that never ended here): the oldest go.
        if (n > MAX_OPEN) for (const id in open) { delete open[id]; if (--n <= MAX_OPEN) break; }
        flow.set('tw_da_open', open, STORE);
        flow.set('tw_da_open_n', n, STORE);
    }
    return null;
}
// A pending alert that stopped holding before it fired ends its episode with state "ok": nothing to list.
const ended = open[e.id] !== undefined;
if (e.state === 'ok') {
    if (ended) {
        delete open[e.id];
        flow.set('tw_da_open', open, STORE);
        flow.set('tw_da_open_n', n - 1, STORE);
    }
    return null;
}
if (e.state !== 'resolved') return null;
const now = Date.now();
const r = { id: e.id, device: e.device, rule: e.rule, severity: e.severity, resolved: typeof e.at === 'number' ? e.at : e.since, reason: e.reason };
if (open[e.id] !== undefined) r.started = open[e.id];
if (e.metric !== undefined) r.metric = e.metric;
if (e.value !== undefined) r.value = e.value;
if (e.message !== undefined) r.message = e.message;
if (e.ack) r.ack = e.ack;
if (ended) {
    delete open[e.id];
    flow.set('tw_da_open', open, STORE);
    flow.set('tw_da_open_n', n - 1, STORE);
}
const recent = trimRecent([r].concat((flow.get('tw_da_recent', STORE) || []).filter((x) => x.id !== e.id)), now);
flow.set('tw_da_recent', recent, STORE);
return [toWatchers('recent', recent)];`;

const REFUSED = `
// The alert node refused one of this page's acknowledgements (the alert resolved meanwhile, a bad comment...):
// the browser that asked is told why.
if (!msg.tw_da || !msg._client) return null;
const e = msg.error || {};
return { topic: 'error', payload: { id: msg.payload && msg.payload.id, code: e.code || 'invalid', message: e.message || 'refused' }, _client: msg._client };`;

module.exports = function alertsPage(ctx) {
  const { Z, add, fn, template } = ctx;
  const Y0 = ctx.y;
  add({
    id: 'tw.da.page',
    type: 'ui-page',
    name: 'Alerts',
    ui: 'tw.ui.base',
    path: '/alerts',
    icon: 'bell-alert',
    layout: 'grid',
    theme: 'tw.ui.theme',
    breakpoints: ctx.breakpoints,
    order: 5,
    className: '',
    visible: 'true',
    disabled: 'false',
  });
  add({ id: 'tw.da.group', type: 'ui-group', name: 'Alerts', page: 'tw.da.page', width: '12', height: '1', order: 1, showTitle: false, className: '', visible: 'true', disabled: 'false', groupType: 'default' });
  add({
    id: 'tw.da.comment',
    type: 'comment',
    z: Z,
    name: 'Alerts page: active alerts pushed as they change, alerts resolved in the last 24 h, acknowledge with a comment',
    info: 'The ui-template (flows/src/dashboard/pages/alerts.vue, put here by flows/src/dashboard/gen.js) asks for the active list when it opens (an "active" control message to the alert node, answered to that browser only) and for the recent resolved alerts. The alert node\'s active list (its output 2) goes to every open Alerts page when it changes, addressed to each (a page says hello every 10 s and is forgotten 30 s after its last; a dashboard message without msg._client would reach every page of every browser). An acknowledgement is the alert node\'s "ack" control message { id, by, comment }; a refused one comes back through the Catch node. Resolved alerts are taken from the alert node\'s state changes (output 1) and kept 24 h in the "file" context store: the store\'s alerts measurement has no alert id nor who acknowledged it and why.',
    x: 480,
    y: Y0 - 40,
    wires: [],
  });
  template('tw.da.template', { group: 'tw.da.group', name: 'alerts view', height: '0', vue: 'alerts.vue', x: 140, y: Y0 + 40, wires: [['tw.da.router']] });
  fn('tw.da.router', 'alerts page: requests', ROUTER, 2, 370, Y0 + 40, [['tw.al.alert'], ['tw.da.template']]);
  fn('tw.da.active', 'alerts page: active list and answers', ACTIVE, 1, 420, Y0 + 100, [['tw.da.template']]);
  fn('tw.da.changes', 'alerts page: resolved alerts', CHANGES, 1, 400, Y0 + 160, [['tw.da.template']]);
  add({ id: 'tw.da.catch', type: 'catch', z: Z, name: 'refused acknowledgements', scope: ['tw.al.alert'], uncaught: false, x: 150, y: Y0 + 220, wires: [['tw.da.refused']] });
  fn('tw.da.refused', 'alerts page: refused', REFUSED, 1, 400, Y0 + 220, [['tw.da.template']]);

  return {
    height: 300,
    taps: [
      ['tw.al.alert', 1, 'tw.da.active'],
      ['tw.al.alert', 0, 'tw.da.changes'],
    ],
  };
};
