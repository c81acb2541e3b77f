/**
 * A fast copy of plain-data messages, for Node-RED's fan-out.
 *
 * When a node's output is wired to several nodes, Node-RED gives every
 * destination but the first its own deep copy (RED.util.cloneMessage: lodash
 * cloneDeep, with msg.req and msg.res kept by reference). For a batch of a
 * thousand readings that copy, and the garbage of lodash's bookkeeping (a stack
 * of every object seen, for cycles), was the largest single cost of the
 * pipeline: 13 % of the runtime's CPU, plus much of its 17 % of garbage
 * collection, at 10,000 batched readings/s.
 *
 * cloneMessage() here copies what telemetry messages hold (plain objects,
 * arrays, primitives) with plain loops, and gives up (returns undefined) on
 * anything else: a Buffer, Date, Map, class instance, function, symbol key,
 * msg.req / msg.res, nesting deeper than MAX_DEPTH (which is where a cycle
 * ends up), or objects and arrays of another realm (a Function node's sandbox:
 * lodash keeps their prototype, this copy would not). The caller then uses
 * Node-RED's own copy. For what it copies, the
 * result is what lodash's is (same keys in the same order, same values,
 * objects with a null prototype become plain objects as lodash makes them,
 * array holes become undefined), with one difference: an object reached twice
 * in one message is copied twice (lodash copies it once and keeps both
 * references pointing at the copy). Either way nothing in the copy is shared
 * with the original, which is the point of the copy.
 *
 * installFastClone() registers it as a Node-RED `preRoute` hook: for a send
 * event Node-RED is about to copy, the hook copies it and tells Node-RED not to.
 */

/** Deeper than this and the copy gives up (Node-RED's copy handles cycles). */
export const MAX_DEPTH = 64;

const GIVE_UP: unique symbol = Symbol('not plain data');
type Copy = unknown | typeof GIVE_UP;

const OBJECT_PROTO = Object.prototype;
const ARRAY_PROTO = Array.prototype;
const hasOwn = Object.prototype.hasOwnProperty;

function copyValue(v: unknown, depth: number): Copy {
  if (typeof v !== 'object' || v === null) return typeof v === 'function' ? GIVE_UP : v;
  if (depth >= MAX_DEPTH) return GIVE_UP;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== ARRAY_PROTO) return GIVE_UP;
    const n = v.length;
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      const c = copyValue(v[i], depth + 1);
      if (c === GIVE_UP) return GIVE_UP;
      out[i] = c;
    }
    return out;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== OBJECT_PROTO && proto !== null) return GIVE_UP;
  if (Object.getOwnPropertySymbols(v).length > 0) return GIVE_UP;
  const src = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  // for-in walks the object's own keys in the order Object.keys gives them without building an array of them
  // (the arrays of Object.keys here were 3.6 % of all the runtime allocated at 2,000 single readings/s); inherited
  // enumerable keys (only if someone added one to Object.prototype) are skipped.
  for (const k in src) {
    if (!hasOwn.call(src, k)) continue;
    const c = copyValue(src[k], depth + 1);
    if (c === GIVE_UP) return GIVE_UP;
    out[k] = c;
  }
  return out;
}

/** A deep copy of a plain-data message, or undefined when it holds something else (use Node-RED's copy then). */
export function cloneMessage<T extends object>(msg: T): T | undefined {
  const m = msg as Record<string, unknown>;
  if (m.req !== undefined || m.res !== undefined) return undefined;
  const c = copyValue(msg, 0);
  return c === GIVE_UP ? undefined : (c as T);
}

/** The part of a Node-RED SendEvent the hook reads and sets. */
export interface SendEventLike {
  msg: object;
  cloneMessage?: boolean;
}

export interface HooksLike {
  add(id: string, cb: (event: SendEventLike) => void): void;
  has?(id: string): boolean;
}

export const FAST_CLONE_HOOK = 'preRoute.thingwire-fast-clone';

/** The preRoute hook: copies a send event Node-RED would copy, when it is plain data. */
export function preRouteCopy(event: SendEventLike): void {
  if (!event.cloneMessage) return;
  const c = cloneMessage(event.msg);
  if (c === undefined) return;
  event.msg = c;
  event.cloneMessage = false;
}

/**
 * Registers the hook unless it is there (every Thingwire node module calls this; the hooks are the
 * runtime's, shared by all of them). `thingwireFastClone: false` in settings.js leaves Node-RED's copy
 * alone; runtimes without hooks (before Node-RED 2) keep theirs too. Returns whether the hook is on.
 */
export function installFastClone(RED: { hooks?: HooksLike; settings?: Record<string, unknown> }): boolean {
  const hooks = RED.hooks;
  if (hooks === undefined || typeof hooks.add !== 'function') return false;
  if (RED.settings?.thingwireFastClone === false) return false;
  if (typeof hooks.has === 'function' && hooks.has(FAST_CLONE_HOOK)) return true;
  try {
    hooks.add(FAST_CLONE_HOOK, preRouteCopy);
  } catch {
    // already registered (a runtime without has())
  }
  return true;
}
