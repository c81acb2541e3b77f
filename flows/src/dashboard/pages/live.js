// The Live page's tables and texts only while someone looks at them. The dashboard sends a widget's messages to
// every connected browser, whatever page it shows: at 2,000 devices a Device page received the Live page's alert
// table (1,300 rows, about once a second) and latest-values table (2,000 rows every 5 s) that it never draws,
// ~230 KB/s of socket frames to parse. Each of those widgets now gets its messages through a gate that passes
// them while a browser has the Live page open (a hidden template on the page says hello every 10 s and bye when it
// closes), at most once a second, the latest winning; while none is open the last message waits in the gate and
// goes out when a Live page opens. The Live page's charts are not gated (they append points: holding only the
// last would leave gaps) and are small. Nodes "tw.dlive.*" on the starter tab (../gen.js); the Live page's own
// widgets and their producers are the starter's.

// Which widgets are gated: the gate's id and name, the producers' outputs that feed it (from: [node, output]) and
// the widget (to). A producer's wire to the widget goes through the gate instead; the gate sits where the widget
// was and the widget moved GATE_DX right of it.
const GATED = [
  { id: 'tw.dlive.alerts', name: 'alert table', from: [['tw.al.answer', 0]], to: 'tw.al.table' },
  { id: 'tw.dlive.latest', name: 'latest values table', from: [['tw.starter.latest', 0]], to: 'tw.starter.table' },
  { id: 'tw.dlive.rejects', name: 'rejects text', from: [['tw.starter.rejects', 0], ['tw.starter.rejinit', 0]], to: 'tw.starter.rejtext' },
  { id: 'tw.dlive.events', name: 'anomaly events table', from: [['tw.an.events', 0]], to: 'tw.an.eventtable' },
  { id: 'tw.dlive.devices', name: 'liveness table', from: [['tw.dev.events', 0]], to: 'tw.dev.table' },
];

// tw_live_viewers (flow context, memory): socket id -> when it last said hello. A browser silent for WATCH_MS
// (a closed tab, a lost connection) no longer counts.
const OPEN = `
const WATCH_MS = 30000;
// Not instanceof: each Function node runs in a context of its own, with its own Map.
const isMap = (m) => Object.prototype.toString.call(m) === '[object Map]';
/** True while a browser that said hello within WATCH_MS has the Live page open. */
function liveOpen(now) {
    const viewers = flow.get('tw_live_viewers');
    if (!isMap(viewers)) return false;
    for (const at of viewers.values()) if (now - at <= WATCH_MS) return true;
    return false;
}`;

const VIEWERS = `
// The Live page's hidden template says hello when it opens and every 10 s, bye when it closes (msg._client: which
// browser). A browser new to the list (a page opened, or its socket reconnected) makes every gate send what
// waits: output 1 goes to all of them.
${OPEN}
const MAX_VIEWERS = 1000;
let viewers = flow.get('tw_live_viewers');
if (!isMap(viewers)) {
    viewers = new Map();
    flow.set('tw_live_viewers', viewers);
}
const now = Date.now();
for (const [k, at] of viewers) if (now - at > WATCH_MS) viewers.delete(k);
const socket = msg._client && msg._client.socketId;
let out = null;
if (socket && msg.topic === 'hello') {
    const fresh = !viewers.has(socket);
    if (!fresh || viewers.size < MAX_VIEWERS) viewers.set(socket, now);
    if (fresh) out = { tw_live: 'open' };
} else if (socket && msg.topic === 'bye') {
    viewers.delete(socket);
}
node.status({ fill: 'green', shape: viewers.size ? 'dot' : 'ring', text: viewers.size + ' on the Live page' });
return out;`;

const GATE = `
// One Live page widget's feed (each message is the widget's whole content): passed while a browser has the Live
// page open, at most once every EVERY_MS, the latest winning; while none is open the last one waits here and goes
// when one opens ({ tw_live: 'open' } from "live page: viewers").
${OPEN}
const EVERY_MS = 1000;
const now = Date.now();
function takeHeld() {
    const held = context.get('held');
    if (!held) return null;
    context.set('held', null);
    context.set('sentAt', Date.now());
    node.status({});
    return held;
}
if (msg.tw_live === 'open') return takeHeld();
context.set('held', msg);
if (!liveOpen(now)) {
    node.status({ fill: 'grey', shape: 'ring', text: 'no Live page open: the latest waits' });
    return null;
}
// A send is due (dueAt: a time, not a flag, so a timer lost to a redeploy does not hold the widget for good).
if ((context.get('dueAt') || 0) > now) return null;
const wait = (context.get('sentAt') || 0) + EVERY_MS - now;
if (wait <= 0) return takeHeld();
context.set('dueAt', now + wait);
setTimeout(() => {
    context.set('dueAt', 0);
    if (!liveOpen(Date.now())) return;
    const m = takeHeld();
    if (m) node.send(m);
}, wait);
return null;`;

module.exports = function livePage(ctx) {
  const { Z, add, fn, flow, template } = ctx;
  const Y0 = ctx.y;
  add({
    id: 'tw.dlive.comment',
    type: 'comment',
    z: Z,
    name: 'Live page: its tables and texts go out only while a browser has the page open, at most once a second',
    info: 'The dashboard sends a widget\'s messages to every connected browser, whatever page it shows, so the Live page\'s tables (1,300 alerts, 2,000 devices) went to every Device, Alerts or Overview page too. A hidden template on the Live page (flows/src/dashboard/pages/live.vue) says hello every 10 s and bye when it closes; "live page: viewers" keeps which browsers have it open (30 s without a hello: gone). Each gate (one per table or text, where the widget was; the widget is right of it) passes its feed while one is open, at most once a second with the latest winning, and keeps the last message while none is, sent when a Live page opens. The charts are not gated: they append points.',
    x: 500,
    y: Y0 - 40,
    wires: [],
  });
  const beacon = template('tw.dlive.beacon', { group: 'tw.ui.g.rejects', name: 'live page: here', height: '0', vue: 'live.vue', x: 140, y: Y0 + 40, wires: [['tw.dlive.viewers']] });
  // After the rejects text in its group, as wide as the group (it draws nothing).
  Object.assign(beacon, { order: 2, width: '0' });
  const gates = GATED.map((g) => g.id);
  fn('tw.dlive.viewers', 'live page: viewers', VIEWERS, 1, 380, Y0 + 40, [gates]);
  for (const g of GATED) {
    const widget = flow.find((n) => n.id === g.to);
    if (!widget) throw new Error(`pages/live.js: flows/starter.json has no widget ${g.to}`);
    // Where the widget was (it sits GATE_DX to the right of its gate).
    fn(g.id, `live page: ${g.name}`, GATE, 1, widget.x - GATE_DX, widget.y, [[g.to]]);
  }
  return {
    height: 120,
    taps: GATED.flatMap((g) => g.from.map(([from, port]) => [from, port, g.id])),
  };
};

/** How far right of its gate a gated widget sits. */
const GATE_DX = 220;
module.exports.GATED = GATED;
module.exports.GATE_DX = GATE_DX;
