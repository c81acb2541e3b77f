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
 *
 * Readers share one message. Most copies were made for nodes that only read
 * what they get: the starter's batch of readings goes to the store's write
 * node, the window, anomaly, liveness and alert nodes (behind link nodes) and
 * two Function nodes, and Node-RED deep-copied it six times. A node declares
 * how it uses its input (declareInputUse, below) and an `onSend` hook
 * (shareForReaders) gives each such reader a *shell*: a new top-level object
 * with the sender's property values, so the readers share the payload and
 * anything else below the top. Every other destination (a Function node, a
 * switch, anything not declared, another package's node) gets a deep copy, and
 * so does anything downstream of a reader that the reader passes a shared
 * message on to. Nothing a mutating node can reach is shared, which is what
 * Node-RED's copies guaranteed; the readers promise not to change anything below
 * the top level of a message they got. Link in and link out nodes count as
 * readers (they set `msg._event`, and a return link pops `msg._linkSource`, so a
 * shell has a copy of that array), and so does a Function node whose code starts
 * with the line FUNCTION_READS_ONLY (the starter's chart and count functions).
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
  add(id: string, cb: (payload: never) => void): void;
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

// ---- readers share ------------------------------------------------------------------------

/** Where a node records how it uses the messages it receives (see declareInputUse). */
export const INPUT_USE: unique symbol = Symbol.for('thingwire.inputUse');

/**
 * How a node uses the messages it receives, for the fan-out:
 * - 'reads': it changes nothing below the top level of a message it gets (setting or deleting the message's
 *   own properties is fine: each reader has its own top level), keeps what it keeps without changing it, and
 *   what it sends is either a message it received or objects it made that hold nothing of one;
 * - 'shares': the same, but what it sends may hold objects of the messages it received (a reading's tags kept
 *   in its state and sent with a score), so its messages are treated as shared wherever they go.
 * A node that declares nothing gets a copy of its own, as Node-RED gives it.
 */
export type InputUse = 'reads' | 'shares';

/** Declares how a node uses its input (see InputUse); call it in the node's constructor. */
export function declareInputUse(node: object, use: InputUse): void {
  (node as { [INPUT_USE]?: InputUse })[INPUT_USE] = use;
}

/**
 * The first line of a Function node that only reads its message: the code says so where whoever edits it reads
 * it (the starter's chart, score and count functions have it). Such a Function node counts as 'shares': it gets
 * a shared message, and what it sends is treated as shared.
 */
export const FUNCTION_READS_ONLY = '// thingwire: reads msg only';

/** Function nodes seen, and whether their code starts with FUNCTION_READS_ONLY (a node's code is fixed for its life). */
const functionUse = new WeakMap<object, InputUse | null>();

function functionUseOf(node: object): InputUse | undefined {
  let u = functionUse.get(node);
  if (u === undefined) {
    const code = (node as { func?: unknown }).func;
    u = typeof code === 'string' && code.trimStart().startsWith(FUNCTION_READS_ONLY) ? 'shares' : null;
    functionUse.set(node, u);
  }
  return u ?? undefined;
}

/**
 * How a node uses its input: declared; 'reads' for Node-RED's link nodes; 'shares' for a Function node whose code
 * starts with FUNCTION_READS_ONLY; undefined for anything else.
 */
export function inputUseOf(node: unknown): InputUse | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  const u = (node as { [INPUT_USE]?: unknown })[INPUT_USE];
  if (u === 'reads' || u === 'shares') return u;
  const t = (node as { type?: unknown }).type;
  if (t === 'link in' || t === 'link out') return 'reads';
  return t === 'function' ? functionUseOf(node) : undefined;
}

/** Messages whose contents below the top level other holders share: a copy for anything that may change them. */
const sharedMessages = new WeakSet<object>();

/** Whether readers share this message's contents (a shell made by shareForReaders, or a message passed to a reader as it was). */
export function isShared(msg: object): boolean {
  return sharedMessages.has(msg);
}

/** Messages a 'shares' node sends that hold objects only of messages it got unshared (see markUnshared). */
const unsharedMessages = new WeakSet<object>();

/**
 * Says that a message a 'shares' node sends holds objects only of messages that came to the node unshared (isShared
 * false: each went to it alone, by reference, as Node-RED passes a message on a single wire): the fan-out treats it
 * as those messages were, not as shared. A batch of such messages is the case (../batch).
 */
export function markUnshared(msg: object): void {
  unsharedMessages.add(msg);
}

/** A message's own top level over the same values; undefined for a message that is not a plain object. */
function shellOf(msg: object): object | undefined {
  const proto = Object.getPrototypeOf(msg);
  if (proto !== OBJECT_PROTO && proto !== null) return undefined;
  if (Object.getOwnPropertySymbols(msg).length > 0) return undefined;
  const src = msg as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k in src) if (hasOwn.call(src, k)) out[k] = src[k];
  // A return link pops this array: each shell has its own.
  if (Array.isArray(out._linkSource)) out._linkSource = (out._linkSource as unknown[]).slice();
  sharedMessages.add(out);
  return out;
}

/** The part of a Node-RED SendEvent the sharing hook reads and sets. */
export interface RoutedSendEvent extends SendEventLike {
  source?: { node?: unknown };
  destination?: { id?: string };
}

/** Finds the node a send event goes to (Node-RED's flow lookup, as its router does after the hooks). */
export type NodeLookup = (event: RoutedSendEvent) => unknown;

/** The destination as Node-RED's router finds it: the sending node's flow, which asks its parents. */
export function flowLookup(event: RoutedSendEvent): unknown {
  const flow = (event.source?.node as { _flow?: { getNode?: (id: string) => unknown } } | undefined)?._flow;
  const id = event.destination?.id;
  return id !== undefined && flow !== undefined && typeof flow.getNode === 'function' ? flow.getNode(id) : undefined;
}

/**
 * The `onSend` hook (one call per node.send, with all its events): readers get shells of the message, every
 * other destination a deep copy when readers share it (or it was shared already), else Node-RED's flags stand
 * (the first destination gets the message itself, the others copies). A send that goes to one reader passes
 * the message itself, marked shared when it may be.
 */
export function shareForReaders(events: RoutedSendEvent[], lookup: NodeLookup = flowLookup): void {
  const n = events.length;
  if (n === 0) return;
  // A sharing node's messages count as shared, unless it said a message holds nothing shared (markUnshared).
  let sourceShares = inputUseOf(events[0].source?.node) === 'shares';
  if (sourceShares) {
    sourceShares = false;
    for (let i = 0; i < n && !sourceShares; i++) if (!unsharedMessages.has(events[i].msg)) sourceShares = true;
  }
  if (n === 1) {
    const e = events[0];
    const shared = sourceShares || sharedMessages.has(e.msg);
    if (!shared) return;
    if (inputUseOf(lookup(e)) !== undefined) sharedMessages.add(e.msg);
    else e.cloneMessage = true;
    return;
  }
  let readers = 0;
  let anyShared = sourceShares;
  const isReader = new Array<boolean>(n);
  for (let i = 0; i < n; i++) {
    isReader[i] = inputUseOf(lookup(events[i])) !== undefined;
    if (isReader[i]) readers++;
    if (!anyShared && sharedMessages.has(events[i].msg)) anyShared = true;
  }
  if (readers === 0) {
    if (anyShared) for (let i = 0; i < n; i++) events[i].cloneMessage = true;
    return;
  }
  // Messages of one send may hold the same objects (a node sending one payload on two outputs): once a reader
  // gets a message uncopied, every other destination of this send gets a copy.
  for (let i = 0; i < n; i++) {
    const e = events[i];
    if (!isReader[i]) {
      e.cloneMessage = true;
      continue;
    }
    let alone = true;
    for (let j = 0; j < n && alone; j++) if (j !== i && events[j].msg === e.msg) alone = false;
    if (alone) {
      sharedMessages.add(e.msg);
      e.cloneMessage = false;
      continue;
    }
    const s = shellOf(e.msg);
    if (s === undefined) {
      e.cloneMessage = true;
    } else {
      // The sender's message is shared now too: should it send it again, nothing that may change it gets it as it is.
      sharedMessages.add(e.msg);
      e.msg = s;
      e.cloneMessage = false;
    }
  }
}

export const SHARE_HOOK = 'onSend.thingwire-share';

/** The onSend hook as registered: one argument, so Node-RED calls it synchronously. */
function shareHook(events: RoutedSendEvent[]): void {
  shareForReaders(events);
}

/**
 * Registers the hooks unless they are there (every Thingwire node module calls this; the hooks are the
 * runtime's, shared by all of them): the copy (preRoute) and the readers' shells (onSend).
 * `thingwireFastClone: false` in settings.js leaves Node-RED's copies alone, every destination but the first
 * gets lodash's deep copy; runtimes without hooks (before Node-RED 2) keep theirs too. Returns whether the
 * hooks are on.
 */
export function installFastClone(RED: { hooks?: HooksLike; settings?: Record<string, unknown> }): boolean {
  const hooks = RED.hooks;
  if (hooks === undefined || typeof hooks.add !== 'function') return false;
  if (RED.settings?.thingwireFastClone === false) return false;
  const add = (id: string, cb: (payload: never) => void): void => {
    if (typeof hooks.has === 'function' && hooks.has(id)) return;
    try {
      hooks.add(id, cb);
    } catch {
      // already registered (a runtime without has())
    }
  };
  add(FAST_CLONE_HOOK, preRouteCopy);
  add(SHARE_HOOK, shareHook);
  return true;
}
