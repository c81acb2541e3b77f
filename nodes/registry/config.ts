import * as path from 'node:path';
import { thingwireDataDir } from '../lib/state';
import type { Node } from '../lib/red';
import type { RegistryHandle } from '../lib/registry/registry';
import { DEFAULT_LIVENESS_TIMEOUT } from '../lib/registry/registry';
import { REGISTRY_LIMITS } from '../lib/registry/validate';
import { parseDuration } from '../window/config';

/** The saved configuration of a thingwire-registry config node (what the editor dialog writes). */
export interface RegistryConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  /** The registry file: "" = <DATA_DIR>/registry/registry.json; a relative path is taken from DATA_DIR. */
  file?: string;
  /** What a device's liveness timeout 0 means: a duration such as "5m" (default) or a number of ms. */
  defaultLivenessTimeout?: string | number;
}

export interface RegistryCredentials {
  /** Enables provisioning (devices register themselves with this key); empty = off. */
  provisioningKey?: string;
}

export interface RegistryNode extends Node {
  /** The open registry (a handle released on close), undefined when it could not be opened. */
  registry?: RegistryHandle;
  /** Why the registry could not be opened, when it could not. */
  registryError?: string;
  /** ms a device's livenessTimeout 0 stands for (the registry's, which the first opener of the file decided). */
  defaultLivenessTimeout?: number;
}

/** The registry file a config names, absolute. */
export function registryFile(config: RegistryConfig, settings: Record<string, unknown>): string {
  const dataDir = thingwireDataDir(settings);
  const f = typeof config.file === 'string' ? config.file.trim() : '';
  return f === '' ? path.join(dataDir, 'registry', 'registry.json') : path.resolve(dataDir, f);
}

/** The default liveness timeout in ms; throws a RangeError naming the field when it is not a duration in range. */
export function defaultTimeoutOf(config: RegistryConfig): number {
  return parseDuration(config.defaultLivenessTimeout, 'default liveness timeout', DEFAULT_LIVENESS_TIMEOUT, {
    min: REGISTRY_LIMITS.minTimeout,
    max: REGISTRY_LIMITS.maxTimeout,
  });
}

export { thingwireDataDir } from '../lib/state';
