/**
 * thingwire-schemas: a config node holding a named set of JSON Schemas, looked
 * up by key (device type, stream id, ...) by thingwire-validate nodes.
 */
import type { NodeAPI } from '../lib/red';

import { parseSchemaSet, type SchemasConfig, type SchemasNode } from './schema-set';
import { installFastClone } from '../lib/clone';

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  function SchemasNodeCtor(this: SchemasNode, config: SchemasConfig): void {
    RED.nodes.createNode(this, config);
    let set = new Map<string, unknown>();
    try {
      set = parseSchemaSet(config.schemas);
    } catch (e) {
      this.setError = (e as Error).message;
      this.error(RED._('thingwire-schemas.errors.invalid', { error: this.setError }));
    }
    const defaultKey = config.defaultKey ?? '';
    this.keys = () => [...set.keys()];
    this.lookup = (key: unknown) => {
      if (typeof key === 'string' && set.has(key)) return { key, schema: set.get(key) };
      if (defaultKey !== '' && set.has(defaultKey)) return { key: defaultKey, schema: set.get(defaultKey) };
      return undefined;
    };
  }
  RED.nodes.registerType('thingwire-schemas', SchemasNodeCtor);
};
