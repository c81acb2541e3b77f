/**
 * Which devices a message carries data from, for liveness: leniently, since the liveness mode
 * never rejects (a message without a usable id just passes on). Pure: no Node-RED.
 */
import { isValidDeviceId } from '../lib/names';
import { parseDeviceTopic } from '../lib/normalise';
import type { IdSource } from './config';

/** Most distinct ids taken from one message, and most elements of a batch looked at. */
export const MAX_IDS = 10_000;
export const MAX_SCAN = 100_000;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The device ids of a message, distinct, in order: msg.device.id (or the keys of msg.devices) when
 * an authenticating thingwire-device node set them; otherwise from where `idFrom` says: the
 * payload's Reading.device (each element of an array), the devices/{id}/... topic, or msg.deviceId.
 * Invalid ids are skipped.
 */
export function deviceIdsOf(msg: Record<string, unknown>, idFrom: IdSource, topicPrefix: string): string[] {
  const d = msg.device;
  if (isObject(d) && isValidDeviceId(d.id)) return [d.id];
  if (isObject(msg.devices)) {
    const ids = Object.keys(msg.devices).filter(isValidDeviceId);
    if (ids.length > 0) return ids.slice(0, MAX_IDS);
  }
  switch (idFrom) {
    case 'topic': {
      const t = parseDeviceTopic(typeof msg.topic === 'string' ? msg.topic : undefined, topicPrefix);
      return t !== undefined && isValidDeviceId(t.device) ? [t.device] : [];
    }
    case 'msg':
      return isValidDeviceId(msg.deviceId) ? [msg.deviceId] : [];
    case 'payload': {
      const p = msg.payload;
      if (isObject(p)) return isValidDeviceId(p.device) ? [p.device] : [];
      if (!Array.isArray(p)) return [];
      const seen = new Set<string>();
      const n = Math.min(p.length, MAX_SCAN);
      for (let i = 0; i < n; i++) {
        const item: unknown = p[i];
        if (isObject(item) && isValidDeviceId(item.device)) {
          seen.add(item.device);
          if (seen.size >= MAX_IDS) break;
        }
      }
      return [...seen];
    }
  }
}
