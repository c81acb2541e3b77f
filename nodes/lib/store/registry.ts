/**
 * Stores that are running in this process, so the runtime's health endpoint
 * (and later the metrics endpoint) can report on them without reaching into
 * Node-RED. A thingwire-store config node registers on start and leaves on close.
 */
import type { BackendHealth } from './types';

export interface RegisteredStore {
  id: string;
  /** e.g. "embedded (DuckDB) /data/thingwire.duckdb"; never a secret. */
  description: string;
  /** Writer figures: queued, spooled, written, rejected, state... */
  stats(): Record<string, unknown>;
  health(): Promise<BackendHealth>;
}

const stores = new Map<string, RegisteredStore>();

export function registerStore(s: RegisteredStore): () => void {
  stores.set(s.id, s);
  return () => {
    if (stores.get(s.id) === s) stores.delete(s.id);
  };
}

export function listStores(): RegisteredStore[] {
  return [...stores.values()];
}
