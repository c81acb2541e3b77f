/** The schema set held by a thingwire-schemas config node (no Node-RED here). */
import type { Node } from '../lib/red';

export interface SchemasConfig {
  id: string;
  name?: string;
  /** JSON text: an object mapping key -> JSON Schema. */
  schemas?: string;
  /** Key used when a message's key is missing or not in the set (empty: none). */
  defaultKey?: string;
}

export interface SchemasNode extends Node {
  /** Why the set could not be read, or undefined when it is fine. */
  setError?: string;
  /** The raw schema for a key (falls back to the default key), or undefined. */
  lookup(key: unknown): { key: string; schema: unknown } | undefined;
  keys(): string[];
}

/** Parses the set's JSON text; pure, so it is unit-tested alone. */
export function parseSchemaSet(text: string | undefined): Map<string, unknown> {
  const set = new Map<string, unknown>();
  if (text === undefined || text.trim() === '') return set;
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new Error(`schema set is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new Error('schema set must be a JSON object mapping each key to a schema');
  }
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (v === null || (typeof v !== 'object' && typeof v !== 'boolean') || Array.isArray(v)) {
      throw new Error(`schema for key ${JSON.stringify(k)} must be an object`);
    }
    set.set(k, v);
  }
  return set;
}

