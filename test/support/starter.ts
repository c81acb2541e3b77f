/**
 * The starter flow's nodes for unit tests that run its Function nodes' code on its own (flows/starter.json as
 * committed): a node by id, a function body compiled with the names it reads (msg, flow, context, node, ...), and a
 * Map-backed context store.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { ROOT } from './services';

export interface StarterNode {
  id: string;
  type: string;
  name?: string;
  func?: string;
  /** A Function node's On Start code. */
  initialize?: string;
  wires?: string[][];
}

let flow: StarterNode[] | undefined;

export function starterNode(id: string): StarterNode {
  flow ??= JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'starter.json'), 'utf8')) as StarterNode[];
  const n = flow.find((x) => x.id === id);
  if (n === undefined) throw new Error(`${id} is not in flows/starter.json`);
  return n;
}

/** A Function node's body as a function of the given parameter names (in the order they are passed). */
export function starterFunction<F>(id: string, ...params: string[]): F {
  const code = starterNode(id).func;
  if (code === undefined) throw new Error(`${id} in flows/starter.json is not a function node`);
  return new Function(...params, code) as F;
}

/**
 * A Function node as Node-RED runs it: its On Start code (when it has one) run once now with the names given
 * (context, flow, node, ...), then its On Message code for each call with msg and the same names.
 */
export function starterNodeFunction<R>(id: string, names: Record<string, unknown>): (msg: unknown) => R {
  const n = starterNode(id);
  if (n.func === undefined) throw new Error(`${id} in flows/starter.json is not a function node`);
  const keys = Object.keys(names);
  const values = keys.map((k) => names[k]);
  if (n.initialize) (new Function(...keys, n.initialize) as (...a: unknown[]) => void)(...values);
  const body = new Function('msg', ...keys, n.func) as (...a: unknown[]) => R;
  return (msg) => body(msg, ...values);
}

/**
 * The same, compiled in a VM context of its own as Node-RED runs each Function node: its built-ins (Map, Array, ...)
 * are not those of another node, so what one node makes and another reads (through the flow context) is checked
 * as it is in the runtime (`instanceof Map` is false there for a Map another node made). Timers and Date are this
 * process's, as in Node-RED (so fake timers work); compile after jest.useFakeTimers().
 */
export function starterFunctionIsolated<F>(id: string, ...params: string[]): F {
  const code = starterNode(id).func;
  if (code === undefined) throw new Error(`${id} in flows/starter.json is not a function node`);
  // What Node-RED's sandbox passes in from the host (10-function.js: console, Buffer, Date, URL, the timers):
  // Date is the host's, so fake timers move its clock too.
  const sandbox = vm.createContext({ console, Buffer, Date, URL, URLSearchParams, setTimeout, clearTimeout, setInterval, clearInterval });
  return vm.runInContext(`(function (${params.join(', ')}) {\n${code}\n})`, sandbox, { filename: `${id}.js` }) as F;
}

/** A context store (flow.get/set, context.get/set) kept in a Map. */
export function mapStore(m = new Map<string, unknown>()): { get: (k: string) => unknown; set: (k: string, v: unknown) => void; map: Map<string, unknown> } {
  return { get: (k) => m.get(k), set: (k, v) => void m.set(k, v), map: m };
}
