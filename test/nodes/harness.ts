/**
 * Shared set-up for the Node-RED node tests: node-red-node-test-helper, typed; the nodes'
 * message catalogues (the helper's RED._ returns the key as it is); and small waiting helpers.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface NodeMsg {
  _msgid?: string;
  payload?: unknown;
  topic?: string;
  [key: string]: unknown;
}

/** A sinon spy call, as the helper records them for Node.prototype methods. */
export interface SpyCall {
  thisValue: unknown;
  args: unknown[];
}

/** The part of a running Node-RED node the tests touch. */
export interface TestNode {
  id: string;
  type: string;
  receive(msg: NodeMsg): void;
  on(event: 'input', cb: (msg: NodeMsg) => void): void;
  on(event: string, cb: (...args: unknown[]) => void): void;
  status: ((s: object) => void) & { getCalls(): SpyCall[] };
  error: ((e: unknown, msg?: NodeMsg) => void) & { getCalls(): SpyCall[] };
}

export interface FlowNodeConfig {
  id: string;
  type: string;
  z?: string;
  wires?: string[][];
  [key: string]: unknown;
}

/** A node module's export: `function (RED)`. */
export type RegisterFn = (RED: never) => void;

interface NodeTestHelper {
  init(runtimePath: string, settings?: object): void;
  load(nodes: RegisterFn | RegisterFn[], flow: FlowNodeConfig[], credentials?: object): Promise<void>;
  unload(): Promise<void>;
  startServer(): Promise<void>;
  stopServer(): Promise<void>;
  getNode(id: string): TestNode | null;
}

// The helper has no types and is a CommonJS module.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const helper = require('node-red-node-test-helper') as NodeTestHelper;
helper.init(require.resolve('node-red'));

/** Installs the standard hooks: a server per test, flows unloaded and server stopped after. */
export function useHelper(): void {
  beforeEach(() => helper.startServer());
  afterEach(async () => {
    await helper.unload();
    await helper.stopServer();
  });
}

export function getNode(id: string): TestNode {
  const n = helper.getNode(id);
  if (!n) throw new Error(`node ${id} is not in the flow`);
  return n;
}

// ---- message catalogues ------------------------------------------------------------------

const NODES_DIR = path.resolve(__dirname, '..', '..', 'nodes');

function loadCatalogue(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const dir of fs.readdirSync(NODES_DIR)) {
    const locales = path.join(NODES_DIR, dir, 'locales', 'en-US');
    if (!fs.existsSync(locales)) continue;
    for (const f of fs.readdirSync(locales).filter((x) => x.endsWith('.json'))) {
      Object.assign(out, JSON.parse(fs.readFileSync(path.join(locales, f), 'utf8')) as Record<string, unknown>);
    }
  }
  return out;
}

const CATALOGUE = loadCatalogue();

/** Looks a key up in the en-US catalogues and fills in `__name__` like Node-RED's i18n does; unknown keys come back as they are. */
export function translate(key: string, subs?: Record<string, unknown>): string {
  let v: unknown = CATALOGUE;
  for (const part of key.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  if (typeof v !== 'string') return key;
  return v.replace(/__([A-Za-z0-9_-]+)__/g, (m, name: string) => (subs && name in subs ? String(subs[name]) : m));
}

/** Wraps a node module so that its RED._ reads the real catalogues. */
export function withCatalogue<T>(register: (RED: T) => void): (RED: T) => void {
  return (RED: T) => {
    (RED as unknown as { _: typeof translate })._ = translate;
    register(RED);
  };
}

// ---- flows and waiting --------------------------------------------------------------------

export const TAB: FlowNodeConfig = { id: 'tab1', type: 'tab', label: 'test' };

/**
 * Gives every node on the tab a position: Node-RED treats a node with `z` but without x/y as a
 * config node of that tab (helper nodes included), and a Complete/Catch/Status node whose id
 * equals its type would then look like it depends on itself.
 */
export function positioned(nodes: FlowNodeConfig[]): FlowNodeConfig[] {
  return nodes.map((n, i) => (n.z !== undefined && n.x === undefined ? { x: 100, y: 40 * (i + 1), ...n } : n));
}

/** Records every message a (helper) node receives. */
export function record(id: string): NodeMsg[] {
  const msgs: NodeMsg[] = [];
  getNode(id).on('input', (msg: NodeMsg) => {
    msgs.push(msg);
  });
  return msgs;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `cond` holds; fails with `what` when it does not within `timeoutMs`. */
export async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Lets queued deliveries happen, so that "nothing more arrived" can be checked. */
export function settle(): Promise<void> {
  return sleep(100);
}

/** The status objects a node set, in order (from the helper's spy on Node.prototype.status). */
export function statusCalls(node: TestNode): Array<{ fill?: string; shape?: string; text?: string }> {
  return node.status
    .getCalls()
    .filter((c) => c.thisValue === node)
    .map((c) => c.args[0] as { fill?: string; shape?: string; text?: string });
}

/** The errors a node reported with node.error (first argument of each call). */
export function errorCalls(node: TestNode): SpyCall[] {
  return node.error.getCalls().filter((c) => c.thisValue === node);
}

// ---- settings, data directories and request/answer (store, write and query nodes) --------

/** The parts of the helper the store tests use beyond the ones above (the helper has no types). */
export interface StoreTestHelper {
  /** Merges into the runtime settings the next helper.load gives the nodes (RED.settings). */
  settings(userSettings?: Record<string, unknown>): Record<string, unknown>;
  /** Node-RED's credentials module: the definitions node types registered. */
  credentials: { getDefinition(type: string): Record<string, { type: string }> | undefined };
}

export const storeHelper = helper as unknown as StoreTestHelper;

/**
 * Fresh temp dirs for one test file: each call makes a new one under a root that is removed after
 * the file's last test (after every afterEach, so after the flows that used them are unloaded).
 */
export function useTempDirs(prefix: string): () => string {
  let root: string | undefined;
  let n = 0;
  afterAll(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });
  return () => {
    root ??= fs.mkdtempSync(path.join(os.tmpdir(), `thingwire-${prefix}-`));
    const dir = path.join(root, String(++n));
    fs.mkdirSync(dir);
    return dir;
  };
}

/** Points the thingwire-store nodes of the next helper.load at `dir` (settings.thingwireDataDir). */
export function setDataDir(dir: string): void {
  storeHelper.settings({ thingwireDataDir: dir });
}

/** Polls an async check until it returns something other than undefined; fails with `what` (and the last error) after `timeoutMs`. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

let requestNo = 0;

/**
 * Sends `msg` to node `id` with a fresh _msgid and resolves with the first message with that
 * _msgid in any of `outputs` (recorded with record()), with the index of the output it came from.
 */
export async function request(id: string, msg: NodeMsg, outputs: NodeMsg[][], timeoutMs = 10_000): Promise<{ output: number; msg: NodeMsg }> {
  const msgid = `req-${process.pid}-${++requestNo}`;
  getNode(id).receive({ ...msg, _msgid: msgid });
  let found: { output: number; msg: NodeMsg } | undefined;
  await until(
    `an answer to ${msgid} from ${id}`,
    () => {
      for (let i = 0; i < outputs.length && !found; i++) {
        const m = outputs[i].find((x) => x._msgid === msgid);
        if (m) found = { output: i, msg: m };
      }
      return found !== undefined;
    },
    timeoutMs,
  );
  return found!;
}
