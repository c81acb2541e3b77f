// Puts the dashboard's pages into flows/starter.json from the sources kept in pages/ (one module per page, with
// its Vue components and function bodies as code), so they can be read and edited as code: `npm run flows:dashboard`
// writes it, `npm run flows:dashboard -- --check` (run by the tests) fails when the committed flow differs.
// A page module exports (ctx) => { height, links, taps }: it adds its nodes with ctx.add / ctx.fn (ids
// "tw.d<page>.*", e.g. tw.dp. for the Device page; tw.dev. is the starter's own Devices section and not a page
// module's), placed from ctx.y down; `links` ([link out id, page link in id]) are link outs of the starter flow that
// must also target its link ins; `taps` ([starter node id, output index, page node id]) wire a page node to an
// output of a starter node. Its own nodes may wire into starter nodes directly.
// The generator owns those nodes, the link targets, and ui-template in the ui-base's client constraints (so a
// template's answers go to the asking browser only).
const fs = require('fs');
const path = require('path');
const ROOT = path.resolve(__dirname, '..', '..', '..');
const TARGET = path.join(ROOT, 'flows/starter.json');
const flow = JSON.parse(fs.readFileSync(TARGET, 'utf8'));
const Z = 'tw.starter.tab';
const Y0 = 1880;
const nodes = [];
const add = (n) => (nodes.push(n), n);
const fn = (id, name, func, outputs, x, y, wires, extra = {}) =>
  add({ id, type: 'function', z: Z, name, func: func.trim(), outputs, timeout: 0, noerr: 0, initialize: '', finalize: '', libs: [], x, y, wires, ...extra });

// ---- the pages: every module in pages/ (loaded in name order), each adding its nodes below the last ----
const PAGES_DIR = path.join(__dirname, 'pages');
const links = [];
const taps = [];
const owned = new Set();
let y = Y0;
for (const file of fs.readdirSync(PAGES_DIR).filter((f) => f.endsWith('.js')).sort()) {
  const before = nodes.length;
  const ctx = {
    Z,
    y,
    add,
    fn,
    flow,
    breakpoints: flow.find((n) => n.id === 'tw.ui.page').breakpoints,
    vue: (name) => fs.readFileSync(path.join(PAGES_DIR, name), 'utf8'),
    /** A page's Vue component: a ui-template node in `group` whose format is pages/<vue> (height '0' = as tall as its content). */
    template: (id, { group, name, height, vue, x, y, wires }) =>
      add({ id, type: 'ui-template', z: Z, group, page: '', ui: '', name, order: 1, width: '12', height, head: '', format: fs.readFileSync(path.join(PAGES_DIR, vue), 'utf8'), storeOutMessages: false, passthru: false, resendOnRefresh: false, templateScope: 'local', className: '', x, y, wires }),
  };
  const page = require(path.join(PAGES_DIR, file))(ctx);
  for (const n of nodes.slice(before)) {
    const prefix = /^tw\.d[a-z]+\./.exec(n.id);
    if (!prefix) throw new Error(`pages/${file}: node id ${n.id} must start with tw.d<page>. (e.g. tw.dp.)`);
    owned.add(prefix[0]);
  }
  links.push(...(page.links || []));
  taps.push(...(page.taps || []));
  y += page.height || 300;
}

// ---- put them in the flow -----------------------------------------------------------------------------
const PAGE_ID = /^tw\.d[a-z]+\./;
const out = flow.filter((n) => !PAGE_ID.test(n.id) || n.id.startsWith('tw.dev.'));
const base = out.find((n) => n.id === 'tw.ui.base');
if (!base.acceptsClientConfig.includes('ui-template')) base.acceptsClientConfig = [...base.acceptsClientConfig, 'ui-template'];
const linkTo = (id, target) => {
  const n = out.find((x) => x.id === id);
  if (!n) throw new Error(`flows/starter.json has no node ${id}`);
  if (!n.links.includes(target)) n.links = [...n.links, target];
};
// Links into pages that are gone (a page module removed) are dropped; each page's links are added.
for (const n of out) if (Array.isArray(n.links)) n.links = n.links.filter((id) => !PAGE_ID.test(id) || id.startsWith('tw.dev.') || nodes.some((x) => x.id === id));
for (const [from, to] of links) linkTo(from, to);
// Taps: a page's node also wired to an output of a starter node ([starter node id, output index, page node id]).
for (const n of out) if (Array.isArray(n.wires)) n.wires = n.wires.map((w) => w.filter((id) => !PAGE_ID.test(id) || id.startsWith('tw.dev.') || nodes.some((x) => x.id === id)));
for (const [from, port, to] of taps) {
  const n = out.find((x) => x.id === from);
  if (!n || !Array.isArray(n.wires) || !n.wires[port]) throw new Error(`tap: flows/starter.json has no output ${port} on node ${from}`);
  if (!n.wires[port].includes(to)) n.wires[port] = [...n.wires[port], to];
}
// Config nodes (page, group) go with the other config nodes, before the first node on a tab; the rest at the end.
const firstOnTab = out.findIndex((n) => n.z);
const configs = nodes.filter((n) => !n.z);
const onTab = nodes.filter((n) => n.z);
const result = [...out.slice(0, firstOnTab), ...configs, ...out.slice(firstOnTab), ...onTab];
const text = JSON.stringify(result, null, 2) + '\n';
if (process.argv.includes('--check')) {
  if (fs.readFileSync(TARGET, 'utf8') !== text) {
    process.stderr.write('flows/starter.json differs from what flows/src/dashboard/gen.js makes: run npm run flows:dashboard\n');
    process.exit(1);
  }
} else {
  fs.writeFileSync(TARGET, text);
  console.log('wrote', nodes.length, 'dashboard page nodes into flows/starter.json');
}
