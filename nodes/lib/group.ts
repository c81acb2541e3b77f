/**
 * Group messages: the MQTT messages that reach thingwire-mqtt-in together, sent on as ONE Node-RED message to
 * thingwire-normalise (the input's "Group messages" option; the starter turns it on).
 *
 * Node-RED pays a fixed cost for every message on every wire (the message object, its routing, the send / receive /
 * done events it builds for its metrics even when they are off); at the runtime's knee the two hops every single
 * reading took before the starter's first batch (input > normalise > batch) were the largest of them. A group takes
 * those hops once for the messages of one moment: the in-process delivery hands over what arrived within 2 ms at
 * once, and a TCP connection what one turn of the event loop read.
 *
 * The group message:
 *
 *   msg.mqttGroup = true
 *   msg.payload   = [{ topic, payload, qos, retain, mqttAck? }, ...]   // each MQTT message as the input would send it
 *   msg.mqttAck   = [token, ...]                                       // every item's token (absent when none has one)
 *   msg.topic     = the first item's topic
 *
 * msg.mqttAck lists every token, so whatever settles the whole message (a write node, a reject, the input's
 * timeout) settles each; thingwire-normalise settles a refused item's own token and sends on the tokens of the items
 * that gave readings. No Node-RED import.
 */
import { ACK_PROPERTY } from './ack';

export const GROUP_PROPERTY = 'mqttGroup';
/** Items a group holds at most: a fuller one is sent at once (the next group starts). */
export const GROUP_MAX_ITEMS = 1000;

/** One MQTT message in a group, as the input would have sent it alone. */
export interface GroupItem {
  topic: string;
  payload?: unknown;
  qos?: number;
  retain?: boolean;
  mqttAck?: string;
  [key: string]: unknown;
}

export interface GroupMessage {
  topic: string;
  payload: GroupItem[];
  mqttGroup: true;
  mqttAck?: string[];
  [key: string]: unknown;
}

/** True for a group message (see the module comment). */
export function isGroupMessage(msg: { [key: string]: unknown }): msg is GroupMessage {
  return msg[GROUP_PROPERTY] === true && Array.isArray(msg.payload);
}

/** The group message of `items` (at least one). */
export function groupMessage(items: GroupItem[]): GroupMessage {
  const msg: GroupMessage = { topic: items[0].topic, payload: items, mqttGroup: true };
  let tokens: string[] | undefined;
  for (const it of items) {
    const t = it[ACK_PROPERTY];
    if (typeof t === 'string') (tokens ??= []).push(t);
  }
  if (tokens !== undefined) msg[ACK_PROPERTY] = tokens;
  return msg;
}

/**
 * Collects the messages of one moment and emits them as one group: at the end of the current task (`microtask`:
 * the in-process delivery hands over a whole turn's messages synchronously) or of the event loop's turn
 * (`immediate`: a TCP connection's messages of one read), or at once when `maxItems` are held.
 */
export class Grouper {
  private items: GroupItem[] = [];
  private scheduled = false;
  private closed = false;

  constructor(
    private readonly emit: (msg: GroupMessage) => void,
    private readonly when: 'microtask' | 'immediate',
    private readonly maxItems = GROUP_MAX_ITEMS,
  ) {}

  add(item: GroupItem): void {
    if (this.closed) return;
    this.items.push(item);
    if (this.items.length >= this.maxItems) {
      this.flush();
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    if (this.when === 'microtask') queueMicrotask(this.flushSoon);
    else setImmediate(this.flushSoon);
  }

  /** Items held, not yet emitted. */
  get size(): number {
    return this.items.length;
  }

  flush(): void {
    if (this.items.length === 0 || this.closed) return;
    const items = this.items;
    this.items = [];
    this.emit(groupMessage(items));
  }

  /**
   * Drops what is held without emitting it (the node is closing: its messages stay unacknowledged, and the broker
   * delivers them again to the next session) and emits nothing after.
   */
  close(): void {
    this.closed = true;
    this.items = [];
  }

  private readonly flushSoon = (): void => {
    this.scheduled = false;
    this.flush();
  };
}
