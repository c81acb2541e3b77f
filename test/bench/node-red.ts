/**
 * An embedded Node-RED 4 runtime for benches: started in this process (or worker thread) with a
 * given flow, no HTTP server and no editor, the Thingwire package and the other node modules of
 * this checkout's node_modules loaded (node-red-contrib-aggregator among them; the dashboard is
 * left out), plus the bench's own source and sink nodes (flow-nodes.ts). Stock settings
 * otherwise: asynchronous message delivery, as every Node-RED install has it.
 *
 * Node-RED is a singleton per JavaScript realm and cannot be started again once stopped, so one
 * runtime per process or worker: put every node the bench needs in the one flow.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchNode, type BenchNode } from './flow-nodes';
import { ROOT } from '../support/services';


export interface FlowNode {
  id: string;
  type: string;
  z?: string;
  wires?: string[][];
  [key: string]: unknown;
}

/** The part of a running node the benches touch. */
export interface RuntimeNode {
  id: string;
  type: string;
}

interface NodeRedModule {
  init(settings: object): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  nodes: { getNode(id: string): RuntimeNode | null };
}

export interface EmbeddedNodeRed {
  userDir: string;
  /** A node of the running flow (throws when the flow has none with that id). */
  node(id: string): RuntimeNode;
  /** A bench source/sink node of the running flow (see flow-nodes.ts). */
  bench(id: string): BenchNode;
  /** Stops the flows and the runtime and removes the user directory. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** The flow: a tab is added when no node is a tab; nodes get an x/y when missing. */
  flow: FlowNode[];
  /** Extra settings (merged over the defaults below). */
  settings?: Record<string, unknown>;
  /**
   * Node files this package builds, by node set name (e.g. { 'thingwire-window':
   * 'dist/nodes/window/window.js' }, relative to the repository root), loaded through the bench
   * module when package.json does not register them (yet): with their own folder, so their
   * message catalogues are found.
   */
  packageNodes?: Record<string, string>;
  /**
   * The user directory, empty, owned (and removed) by the caller: a worker thread that is
   * terminated with its process gets no 'exit' event to clean up after itself. Default: a
   * temporary directory removed by stop() or when the process exits.
   */
  userDir?: string;
  /** How long to wait for every node of the flow to exist. Default 30 s. */
  timeoutMs?: number;
}

let started = false;

/** The node sets package.json registers. */
function registeredNodes(): Record<string, string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { 'node-red'?: { nodes?: Record<string, string> } };
  return pkg['node-red']?.nodes ?? {};
}

/**
 * Writes a throwaway Node-RED module that loads the compiled bench nodes (flow-nodes.js) and the
 * package nodes package.json does not register (each through a link to its folder).
 */
function benchModule(dir: string, packageNodes: Record<string, string>): string {
  const mod = path.join(dir, 'thingwire-bench-nodes');
  fs.mkdirSync(mod);
  // One node set for the bench types (one file registers them all).
  const nodes: Record<string, string> = { 'tw-bench': 'bench.js' };
  const registered = registeredNodes();
  for (const [name, file] of Object.entries(packageNodes)) {
    if (name in registered) continue;
    const abs = path.join(ROOT, file);
    if (!fs.existsSync(abs)) throw new Error(`${abs} is missing: npm run build`);
    fs.symlinkSync(path.dirname(abs), path.join(mod, name), 'dir');
    nodes[name] = `${name}/${path.basename(abs)}`;
  }
  fs.writeFileSync(path.join(mod, 'package.json'), JSON.stringify({ name: 'thingwire-bench-nodes', version: '1.0.0', 'node-red': { nodes } }));
  // require() of this module's compiled sibling: the same file the worker already loaded, so the same registry.
  const target = path.join(__dirname, `flow-nodes${path.extname(__filename)}`);
  fs.writeFileSync(path.join(mod, 'bench.js'), `module.exports = require(${JSON.stringify(target)}).registerBenchNodes;\n`);
  fs.writeFileSync(path.join(mod, 'bench.html'), '');
  return mod;
}

export async function startNodeRed(opts: StartOptions): Promise<EmbeddedNodeRed> {
  if (started) throw new Error('Node-RED can be started once per process (or worker thread)');
  started = true;
  const owned = opts.userDir === undefined;
  const userDir = opts.userDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-bench-nr-'));
  const cleanup = (): void => {
    if (owned) fs.rmSync(userDir, { recursive: true, force: true });
  };
  if (owned) process.once('exit', cleanup);

  let flow = opts.flow;
  if (!flow.some((n) => n.type === 'tab')) {
    const z = 'bench-tab';
    flow = [{ id: z, type: 'tab', label: 'bench' }, ...flow.map((n) => ({ z, ...n }))];
  }
  flow = flow.map((n, i) => (n.type !== 'tab' && n.x === undefined ? { x: 100, y: 40 * (i + 1), ...n } : n));
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow));

  const settings = {
    userDir,
    flowFile: 'flows.json',
    credentialSecret: 'thingwire-bench',
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    // This package (as a module, from package.json) and the bench nodes; node_modules is scanned anyway.
    nodesDir: [ROOT, benchModule(userDir, opts.packageNodes ?? {})],
    nodesExcludes: ['node-red-dashboard'],
    thingwireDataDir: path.join(userDir, 'thingwire'),
    logging: { console: { level: 'error', metrics: false, audit: false } },
    telemetry: { enabled: false },
    externalModules: { autoInstall: false },
    ...opts.settings,
  };

  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const RED = require('node-red') as NodeRedModule;
  RED.init(settings);
  await RED.start();

  // RED.start() resolves once the flows are started; wait for every node anyway (and fail clearly on a missing type).
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  const ids = flow.filter((n) => n.type !== 'tab').map((n) => n.id);
  for (;;) {
    const missing = ids.filter((id) => !RED.nodes.getNode(id));
    if (missing.length === 0) break;
    if (Date.now() > deadline) {
      await RED.stop().catch(() => undefined);
      cleanup();
      const types = [...new Set(flow.filter((n) => missing.includes(n.id)).map((n) => n.type))];
      throw new Error(`Node-RED did not start nodes ${missing.join(', ')} (types ${types.join(', ')}: built? npm run build)`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }

  let stopping: Promise<void> | undefined;
  return {
    userDir,
    node(id) {
      const n = RED.nodes.getNode(id);
      if (!n) throw new Error(`node ${id} is not in the running flow`);
      return n;
    },
    bench: (id) => benchNode(id),
    stop() {
      stopping ??= RED.stop().finally(cleanup);
      return stopping;
    },
  };
}
