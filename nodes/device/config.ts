/**
 * The saved configuration of a thingwire-device node (what the editor dialog writes), the settings
 * the wrapper derives from it, and the part of the thingwire-registry config node it uses.
 * No Node-RED here.
 */
import { configBool } from '../lib/red';
import type { DeviceRegistry } from '../lib/registry/types';

export type DeviceMode = 'auth' | 'liveness' | 'manage';
/** Where the device id comes from: Reading.device in the payload, a devices/{id}/... topic, or msg.deviceId. */
export type IdSource = 'payload' | 'topic' | 'msg';
/** Where the token comes from: msg.token, else the HTTP request in msg.req (headers, ?api_key=). */
export type TokenSource = 'msg';
/** What authenticate does with a device that is not registered: reject it (unknown_device), or pass its data on without msg.device. */
export type UnknownDevices = 'reject' | 'pass';

export interface DeviceConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  /** The thingwire-registry config node's id. */
  registry?: string;
  mode?: string;
  requireToken?: boolean | string;
  idFrom?: string;
  tokenFrom?: string;
  /** First topic segment of device topics (idFrom 'topic'): `{prefix}/{id}/...`. */
  topicPrefix?: string;
  provision?: boolean | string;
  /** Mode auth: 'reject' (default) or 'pass' devices that are not registered. */
  unknown?: string;
  persist?: boolean | string;
  catchRejects?: boolean | string;
}

export interface DeviceSettings {
  mode: DeviceMode;
  requireToken: boolean;
  idFrom: IdSource;
  tokenFrom: TokenSource;
  topicPrefix: string;
  provision: boolean;
  unknown: UnknownDevices;
  persist: boolean;
  catchRejects: boolean;
}

/** The dialog's defaults (device.html uses the same values). */
export const DEVICE_DEFAULTS: DeviceSettings = {
  mode: 'auth',
  requireToken: true,
  idFrom: 'payload',
  tokenFrom: 'msg',
  topicPrefix: 'devices',
  provision: false,
  unknown: 'reject',
  persist: true,
  catchRejects: false,
};

/** Reads the dialog's values; anything missing or unknown takes its default. */
export function deviceSettings(config: DeviceConfig): DeviceSettings {
  const d = DEVICE_DEFAULTS;
  const prefix = typeof config.topicPrefix === 'string' ? config.topicPrefix.trim().replace(/^\/+|\/+$/g, '') : '';
  return {
    mode: config.mode === 'liveness' || config.mode === 'manage' ? config.mode : d.mode,
    requireToken: configBool(config.requireToken, d.requireToken),
    idFrom: config.idFrom === 'topic' || config.idFrom === 'msg' ? config.idFrom : d.idFrom,
    tokenFrom: d.tokenFrom,
    topicPrefix: prefix === '' ? d.topicPrefix : prefix,
    provision: configBool(config.provision, d.provision),
    unknown: config.unknown === 'pass' ? 'pass' : d.unknown,
    persist: configBool(config.persist, d.persist),
    catchRejects: configBool(config.catchRejects, d.catchRejects),
  };
}

/**
 * What this node needs of a thingwire-registry config node instance (nodes/registry): the open
 * registry, or why it could not be opened, and its default liveness timeout (ms) when it exposes one.
 */
export interface RegistryNodeLike {
  registry?: DeviceRegistry;
  registryError?: string;
  defaultLivenessTimeout?: number;
}
