import type { StoreService } from '../lib/store/service';
import type { Node } from '../lib/red';

/** The saved configuration of a thingwire-store config node (what the editor dialog writes). */
export interface StoreConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  /** 'env': INFLUX_* from the environment, else embedded (the default). */
  backend?: 'env' | 'embedded' | 'influxdb-v1' | 'influxdb-v2';
  url?: string;
  db?: string;
  rp?: string;
  org?: string;
  bucket?: string;
  /** 2 or 3, for influxdb-v2. */
  version?: string;
  createDb?: boolean | string;
  embeddedFile?: string;
  batchSize?: number | string;
  flushInterval?: number | string;
  spoolMaxMB?: number | string;
  spoolPolicy?: 'reject-new' | 'drop-oldest';
}

export interface StoreCredentials {
  username?: string;
  password?: string;
  token?: string;
}

export interface StoreNode extends Node {
  service?: StoreService;
  /** Why the store could not start, when it could not. */
  storeError?: string;
}

export { thingwireDataDir } from '../lib/state';
