// The dashboard's Device page: one device's latest values, a history chart at the chart's width from the right
// rollup level, the anomaly band, the predicted time to threshold, and live readings pushed to the browsers that
// watch the device. Nodes "tw.dp.*" on the starter tab (see ../gen.js for how pages are put into the flow).

// ---- shared state (flow context, memory): latest reading per device, and who watches which device ----
// The bounds of the latest map, in the functions that share it (On Message and the live function's On Start).
const LATEST_BOUNDS = `const MAX_DEVICES = 10000;
const REORDER_MS = 10000;`;
const STATE = `
// latest: device -> { ts, metrics, moved } (at most MAX_DEVICES, the least recently updated dropped: the map is in
// order of update to within REORDER_MS, an entry moved to its end at most that often, at \`moved\`);
// watchers: socket id -> { device, at } (renewed every 60 s by the page; forgotten after 3 minutes).
${LATEST_BOUNDS}
const MAX_WATCHERS = 1000;
const WATCH_MS = 180000;
let st = flow.get('tw_dp_state');
if (!st) { st = { latest: new Map(), watchers: new Map() }; flow.set('tw_dp_state', st); }`;

const ROUTER = `
// Requests from the Device page (one browser each, msg._client.socketId): the device list, watching a
// device (its latest reading now, live readings from then on), and history for a metric and range.
${STATE}
const socket = msg._client && msg._client.socketId;
const p = msg.payload || {};
const reply = (topic, payload) => ({ topic, payload, _client: msg._client });
if (msg.topic === 'devices') {
    return [reply('devices', [...st.latest.keys()].sort().slice(0, 5000)), null];
}
if (msg.topic === 'watch' && socket && typeof p.device === 'string') {
    if (!st.watchers.has(socket) && st.watchers.size >= MAX_WATCHERS) {
        const now = Date.now();
        for (const [k, w] of st.watchers) if (now - w.at > WATCH_MS) st.watchers.delete(k);
        if (st.watchers.size >= MAX_WATCHERS) { node.warn('device page: ' + MAX_WATCHERS + ' browsers watch already; not adding one'); return null; }
    }
    st.watchers.set(socket, { device: p.device, at: Date.now() });
    node.status({ fill: 'green', shape: 'dot', text: st.watchers.size + ' watching' });
    const l = st.latest.get(p.device);
    // A copy: the live function updates the entry in place, and this answer is sent after a hop.
    return [reply('latest', l ? { device: p.device, ts: l.ts, metrics: Object.assign({}, l.metrics) } : { device: p.device }), null];
}
if (msg.topic === 'unwatch' && socket) {
    st.watchers.delete(socket);
    node.status({ fill: 'green', shape: 'dot', text: st.watchers.size + ' watching' });
    return null;
}
if (msg.topic === 'history') {
    const width = Math.max(50, Math.min(4000, Math.floor(Number(p.width) || 600)));
    const start = Number(p.start); const end = Number(p.end);
    if (typeof p.device !== 'string' || typeof p.metric !== 'string' || !(end > start)) {
        return [reply('history', { req: p.req, device: p.device, error: 'bad history request' }), null];
    }
    // The chart is "width" pixels wide: never more points than that (the store downsamples).
    msg.dp = { req: p.req, device: p.device, metric: p.metric, start, end, width };
    msg.payload = { devices: [p.device], fields: [p.metric], start, end, level: 'auto', maxPoints: width };
    return [null, msg];
}
return null;`;

const LIVE = `
// thingwire: reads msg only (it gets a message shared with other readers, not a copy: remove this line before changing
// anything inside msg; setting msg.payload or another property of msg itself is fine).
// Each valid reading: remembered as its device's latest, and pushed to the browsers watching that device
// (and to no one else: push, not poll, and no broadcast of every reading to every page).
${STATE}
// The loop over the readings is in On Start (made once each time the node starts, kept in its context as "live"):
// Node-RED runs the code here as a new function for every message, which V8 does not optimise, and a loop over a
// batch of readings took ~5x its time (bench group function-node).
const live = context.get('live');
if (typeof live !== 'function') throw new Error('the On Start code of this node has not run: context "live" is not a function');
return [live(st, msg.payload, Date.now())];`;

const LIVE_START = `
// The per-reading work of On Message, made once each time this node starts (see there). st: the Device page's state
// (flow context tw_dp_state); returns the messages for the browsers watching the readings' devices.
${LATEST_BOUNDS}
context.set('live', function live(st, payload, now) {
    const readings = Array.isArray(payload) ? payload : [payload];
    const out = [];
    const latest = st.latest;
    const watched = st.watchers.size > 0;
    // Index loops, not for...of: for...of over an array in a Function node's VM context takes V8's generic path
    // (~10x the time an item, and an iterator result of garbage each; bench group function-node).
    for (let i = 0; i < readings.length; i++) {
        const r = readings[i];
        if (!r || typeof r.device !== 'string' || typeof r.ts !== 'number' || !r.metrics) continue;
        let e = latest.get(r.device);
        if (e === undefined) {
            e = { ts: r.ts, metrics: {}, moved: now };
            latest.set(r.device, e);
            if (latest.size > MAX_DEVICES) latest.delete(latest.keys().next().value);
        } else if (e.ts > r.ts) {
            continue; // a late reading is history, not "latest"
        } else if (now - e.moved >= REORDER_MS) {
            // To the map's end, at most every REORDER_MS: on every reading this was 40 % of this node's time.
            latest.delete(r.device);
            latest.set(r.device, e);
            e.moved = now;
        }
        // Updated in place: a new entry a reading lived about a second, long enough for the collector to copy it.
        e.ts = r.ts;
        const m = r.metrics;
        for (const k in m) e.metrics[k] = m[k];
        if (!watched) continue;
        for (const [socketId, w] of st.watchers) {
            if (w.device === r.device) out.push({ topic: 'live', payload: { device: r.device, ts: r.ts, metrics: m }, _client: { socketId } });
        }
    }
    return out;
});`;

const SCORES = `
// thingwire: reads msg only (it gets a message shared with other readers, not a copy: remove this line before changing
// anything inside msg; setting msg.payload or another property of msg itself is fine).
// Anomaly scores (with the maintenance estimate when there is one) for the watched devices: the page draws
// the expected band and the predicted time to the threshold. Alert events on the same link are ignored.
${STATE}
if (st.watchers.size === 0) return null;
const items = Array.isArray(msg.payload) ? msg.payload : [msg.payload];
const out = [];
for (let i = 0; i < items.length; i++) { // an index loop: see the live function
    const s = items[i];
    if (!s || typeof s.device !== 'string' || typeof s.metric !== 'string' || typeof s.score !== 'number') continue;
    for (const [socketId, w] of st.watchers) {
        if (w.device === s.device) out.push({ topic: 'score', payload: s, _client: { socketId } });
    }
}
return [out];`;

const BAND = `
// Values in: keep them, then ask for the anomaly node's expected band over the same range, in as many
// buckets as the chart has pixels.
const d = msg.dp;
const s = (msg.payload && msg.payload.series || [])[0];
d.points = s ? s.points.filter((p) => typeof p[1] === 'number') : [];
d.level = msg.level || (s && s.tags && s.tags.level) || 'raw'; // the level the query node read, with or without data
const bucket = Math.max(1000, Math.ceil((d.end - d.start) / d.width));
msg.payload = { measurement: 'anomaly', devices: [d.device], where: { metric: d.metric }, fields: ['lower', 'expected', 'upper'], start: d.start, end: d.end, bucket, agg: 'mean', level: 'raw' };
return msg;`;

const REPLY = `
// Values and band back to the page that asked (its req number lets it ignore answers it no longer wants).
const d = msg.dp;
const by = {};
for (const s of (msg.payload && msg.payload.series) || []) by[s.field] = new Map(s.points);
const band = [];
if (by.lower && by.expected && by.upper) {
    for (const [ts, lo] of by.lower) {
        const e = by.expected.get(ts); const up = by.upper.get(ts);
        if (typeof lo === 'number' && typeof e === 'number' && typeof up === 'number') band.push([ts, lo, e, up]);
    }
    band.sort((a, b) => a[0] - b[0]);
}
node.status({ text: d.device + ' ' + d.metric + ': ' + d.points.length + ' points (' + d.level + ')' });
return { topic: 'history', payload: { req: d.req, device: d.device, metric: d.metric, level: d.level, points: d.points, band }, _client: msg._client };`;

const FAILED = `
// A query failed (bad request or store down): the page shows why instead of waiting.
const d = msg.dp || {};
return { topic: 'history', payload: { req: d.req, device: d.device, metric: d.metric, level: '', points: d.points || [], band: [], error: msg.error && msg.error.message }, _client: msg._client };`;

module.exports = function devicePage(ctx) {
  const { Z, add, fn, template } = ctx;
  const Y0 = ctx.y;
  // ---- the page -----------------------------------------------------------------------------------------
  add({
    id: 'tw.dp.page',
    type: 'ui-page',
    name: 'Device',
    ui: 'tw.ui.base',
    path: '/device',
    icon: 'chip',
    layout: 'grid',
    theme: 'tw.ui.theme',
    breakpoints: ctx.breakpoints,
    order: 2,
    className: '',
    visible: 'true',
    disabled: 'false',
  });
  add({ id: 'tw.dp.group', type: 'ui-group', name: 'Device', page: 'tw.dp.page', width: '12', height: '1', order: 1, showTitle: false, className: '', visible: 'true', disabled: 'false', groupType: 'default' });
  add({
    id: 'tw.dp.comment',
    type: 'comment',
    z: Z,
    name: 'Device page: history at the chart\'s width from the right rollup level, then live readings pushed to the browsers that watch the device',
    info: 'The ui-template (flows/src/dashboard/device.vue, put here by flows/src/dashboard/gen.js) asks for the device list, watches one device and asks for history with its chart width in pixels. The query node reads raw readings up to 6 hours and 1m/1h/1d rollups beyond, downsampled on the server to at most that many points. Live readings are wired straight from the reading schema validator (one reading a message, before the 50 ms batch and the work done on each batch) and from the HTTP API\'s link in; anomaly scores come through a link node; both go only to the browsers watching that device.',
    x: 460,
    y: Y0 - 40,
    wires: [],
  });
  template('tw.dp.template', { group: 'tw.dp.group', name: 'device view', height: '8', vue: 'device.vue', x: 140, y: Y0 + 40, wires: [['tw.dp.router']] });
  fn('tw.dp.router', 'device page: requests', ROUTER, 2, 360, Y0 + 40, [['tw.dp.template'], ['tw.dp.values']]);
  add({ id: 'tw.dp.values', type: 'thingwire-query', z: Z, name: 'history at chart width', v: 1, store: 'tw.store', measurement: 'telemetry', fields: '', start: '-24h', bucket: '', agg: 'mean', maxPoints: 1000, level: 'auto', levels: '1m,1h,1d', catchRejects: false, x: 600, y: Y0 + 80, wires: [['tw.dp.band'], ['tw.dp.failed']] });
  fn('tw.dp.band', 'device page: band request', BAND, 1, 830, Y0 + 80, [['tw.dp.bandq']]);
  add({ id: 'tw.dp.bandq', type: 'thingwire-query', z: Z, name: 'expected band', v: 1, store: 'tw.store', measurement: 'anomaly', fields: 'lower,expected,upper', start: '-24h', bucket: '', agg: 'mean', maxPoints: 0, level: 'raw', levels: '1m,1h,1d', catchRejects: false, x: 1040, y: Y0 + 80, wires: [['tw.dp.reply'], ['tw.dp.failed']] });
  fn('tw.dp.reply', 'device page: history reply', REPLY, 1, 1260, Y0 + 80, [['tw.dp.template']]);
  fn('tw.dp.failed', 'device page: history failed', FAILED, 1, 1040, Y0 + 140, [['tw.dp.template']]);
  fn('tw.dp.live', 'device page: live readings', LIVE, 1, 420, Y0 + 200, [['tw.dp.template']], { initialize: LIVE_START.trim() });
  add({ id: 'tw.dp.scorein', type: 'link in', z: Z, name: 'scores to the device page', links: ['tw.al.fromanomaly'], x: 175, y: Y0 + 260, wires: [['tw.dp.scores']] });
  fn('tw.dp.scores', 'device page: scores', SCORES, 1, 420, Y0 + 260, [['tw.dp.template']]);


  return {
    height: 320,
    links: [['tw.al.fromanomaly', 'tw.dp.scorein']],
    // Live readings skip the 50 ms batch and the work done on each batch (rollups, scoring, alerts, the store):
    // each valid reading goes to this function as it leaves the validator (and each HTTP batch as it arrives),
    // so a watched device's reading reaches its page in milliseconds, not after the batch's cascade.
    taps: [
      ['tw.starter.validate', 0, 'tw.dp.live'],
      ['tw.starter.fromhttp', 0, 'tw.dp.live'],
    ],
  };
};
