/**
 * The starter flow's nodes for unit tests that run its Function nodes' code on its own (flows/starter.json as
 * committed): a node by id, a function body compiled with the names it reads (msg, flow, context, node, ...), and a
 * Map-backed context store.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './services';

export interface StarterNode {
  id: string;
  type: string;
  name?: string;
  func?: string;
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

/** A context store (flow.get/set, context.get/set) kept in a Map. */
export function mapStore(m = new Map<string, unknown>()): { get: (k: string) => unknown; set: (k: string, v: unknown) => void; map: Map<string, unknown> } {
  return { get: (k) => m.get(k), set: (k, v) => void m.set(k, v), map: m };
}
