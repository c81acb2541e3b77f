/**
 * thingwire-validate: validates msg.payload (or another property) against a JSON
 * Schema (2020-12). Valid messages leave on output 1; invalid, malformed and
 * oversize ones on output 2 with msg.error and msg.errors.
 * The logic lives in ./engine (no Node-RED); this file only wires it in.
 */
import { ACK_PROPERTY, settleAck } from '../lib/ack';
import type { Reject } from '../lib/contract';
import { ThingwireError } from '../lib/errors';
import { isPlainObject } from '../lib/names';
import { parsePayload, DEFAULT_MAX_BYTES } from '../lib/payload';
import { LazyStatus } from '../lib/lazy-status';
import { configBool, configInt, onInput, rejectError, RejectedError, type Node, type NodeAPI, type NodeMessage, type SendFn } from '../lib/red';
import type { SchemasNode } from '../schemas/schema-set';
import type { SchemaSource, ValidateConfig } from './config';
import { ValidatorEngine, describeIssues, type CompiledSchema, type ValidationIssue } from './engine';
import { installFastClone } from '../lib/clone';

const TYPE = 'thingwire-validate';

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  function ValidateNode(this: Node, config: ValidateConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const property = config.property || 'payload';
    const source: SchemaSource = config.schemaSource === 'msg' || config.schemaSource === 'set' ? config.schemaSource : 'config';
    const keyProperty = config.keyProperty || 'device.type';
    const maxBytes = configInt(config.maxBytes, DEFAULT_MAX_BYTES);
    const eachItem = config.arrays !== 'whole';
    const catchRejects = configBool(config.catchRejects, false);
    const engine = new ValidatorEngine({
      coerceTypes: configBool(config.coerceTypes, false),
      useDefaults: configBool(config.useDefaults, false),
      allErrors: configBool(config.allErrors, true),
    });
    let valid = 0;
    let invalid = 0;
    // Counted per message, shown at most every 500 ms (the text is a catalogue lookup).
    const status = new LazyStatus(node, () => ({ fill: invalid > 0 ? 'yellow' : 'green', shape: 'dot', text: RED._(`${TYPE}.status.counts`, { valid, invalid }) }));

    // Schema from the dialog: compiled once, at deploy. A bad schema is a config error, shown at once.
    let configSchema: CompiledSchema | undefined;
    let configError: string | undefined;
    if (source === 'config') {
      try {
        configSchema = engine.compile(config.schema && config.schema.trim() !== '' ? config.schema : '{}');
      } catch (e) {
        configError = (e as Error).message;
      }
    }
    // Schemas from a set: compiled on first use, once per key.
    const setNode = source === 'set' && config.schemaSet ? (RED.nodes.getNode(config.schemaSet) as SchemasNode | null) : null;
    const setCache = new Map<string, CompiledSchema>();
    if (source === 'set') {
      if (!setNode) configError = RED._(`${TYPE}.errors.no-set`);
      else if (setNode.setError) configError = setNode.setError;
    }

    if (configError !== undefined) {
      node.error(RED._(`${TYPE}.errors.config`, { error: configError }));
      node.status({ fill: 'red', shape: 'ring', text: `${TYPE}.status.config-error` });
    } else {
      node.status({});
    }

    function showCounts(): void {
      status.mark();
    }

    function schemaFor(msg: NodeMessage): CompiledSchema {
      if (configError !== undefined) throw new Error(configError);
      if (source === 'config') return configSchema!;
      if (source === 'msg') {
        if (msg.schema === undefined) throw new ThingwireError('schema_not_found', 'msg.schema is not set');
        return engine.compileCached(msg.schema);
      }
      let key: unknown;
      try {
        key = RED.util.getMessageProperty(msg, keyProperty);
      } catch {
        // msg.device (or another parent) is missing: no key, so the set's default applies.
        key = undefined;
      }
      const found = setNode!.lookup(key);
      if (!found) {
        throw new ThingwireError('schema_not_found', `no schema for key ${JSON.stringify(key ?? null)} (msg.${keyProperty}) in the schema set`);
      }
      let compiled = setCache.get(found.key);
      if (!compiled) {
        compiled = engine.compile(found.schema);
        setCache.set(found.key, compiled);
      }
      return compiled;
    }

    /** `rest`: true when the message's valid part went on (with its MQTT delivery token), false when all failed. */
    function reject(msg: NodeMessage, send: SendFn, rejects: Reject[], errors: ValidationIssue[], payload: unknown, rest = false): void {
      invalid += rejects.length;
      if (rest) delete msg[ACK_PROPERTY];
      else settleAck(msg, 'rejected');
      const first = rejects[0];
      const out = msg;
      RED.util.setMessageProperty(out, property, payload, true);
      out.error = rejectError(TYPE, first);
      out.errors = errors;
      out.rejects = rejects;
      send([null, out]);
      showCounts();
      if (catchRejects) throw new RejectedError(TYPE, first);
    }

    /**
     * A batch of several devices' readings (msg.devices: id -> metadata, as thingwire-device and thingwire-batch
     * send it) with schemas from a set: each reading's schema is looked up as if it came alone, with its own device's
     * metadata as msg.device (a reading of a device not in msg.devices: none, so the set's default key applies).
     */
    function validateByDevice(msg: NodeMessage, devices: Record<string, unknown>, items: unknown[]): { valid: unknown[]; rejects: Reject[] } {
      const view = Object.create(msg) as NodeMessage;
      return engine.validateEach(items, (item) => {
        const id = isPlainObject(item) ? item.device : undefined;
        view.device = typeof id === 'string' && Object.hasOwn(devices, id) ? devices[id] : undefined;
        return schemaFor(view);
      });
    }

    onInput(node, (msg, send) => {
      let value: unknown;
      let compiled: CompiledSchema | undefined;
      try {
        value = parsePayload(RED.util.getMessageProperty(msg, property), maxBytes);
        const perDevice = source === 'set' && configError === undefined && eachItem && Array.isArray(value) && isPlainObject(msg.devices);
        if (!perDevice) compiled = schemaFor(msg);
      } catch (e) {
        if (!(e instanceof ThingwireError)) throw e;
        reject(msg, send, [e.toReject()], [], RED.util.getMessageProperty(msg, property));
        return;
      }

      if (Array.isArray(value) && eachItem) {
        const r = compiled === undefined ? validateByDevice(msg, msg.devices as Record<string, unknown>, value) : engine.validateItems(compiled, value);
        if (r.rejects.length === 0) {
          valid += r.valid.length;
          // r.valid holds the elements as validated (coerced, defaults filled in).
          RED.util.setMessageProperty(msg, property, r.valid, true);
          send([msg, null]);
          showCounts();
        } else {
          // Valid elements go on; the invalid ones leave on output 2 with their indexes.
          valid += r.valid.length;
          const errors: ValidationIssue[] = [];
          for (const rj of r.rejects) {
            // A reading without a schema (schema_not_found, schema_invalid) has no issues of its own.
            for (const issue of (rj.details as ValidationIssue[] | undefined) ?? []) {
              errors.push({ ...issue, instancePath: `/${rj.index}${issue.instancePath}` });
            }
          }
          if (r.valid.length > 0) {
            const ok = RED.util.cloneMessage(msg);
            RED.util.setMessageProperty(ok, property, r.valid, true);
            send([ok, null]);
          }
          const bad = r.rejects.map((rj) => value[rj.index!]);
          reject(msg, send, r.rejects, errors, bad, r.valid.length > 0);
        }
        return;
      }

      const r = engine.validate(compiled!, value);
      if (r.valid) {
        valid++;
        RED.util.setMessageProperty(msg, property, r.value, true);
        send([msg, null]);
        showCounts();
        return;
      }
      reject(msg, send, [{ code: 'validation_failed', message: describeIssues(r.issues), details: r.issues }], r.issues, value);
    });

    node.on('close', (_removed, done) => {
      status.close();
      setCache.clear();
      done();
    });
  }
  RED.nodes.registerType(TYPE, ValidateNode);
};
