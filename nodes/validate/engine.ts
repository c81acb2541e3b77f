import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Reject } from '../lib/contract';
import { ThingwireError } from '../lib/errors';

/**
 * The schema validator engine: JSON Schema 2020-12 through ajv, with every
 * schema compiled once and cached. No Node-RED here; the node wraps it.
 */

export interface ValidatorOptions {
  /** Coerce types where the schema asks for them ("21.5" -> 21.5). Modifies the data in place. */
  coerceTypes: boolean;
  /** Fill in `default` values from the schema. Modifies the data in place. */
  useDefaults: boolean;
  /** Collect every error (true) or stop at the first (false). */
  allErrors: boolean;
  /** At most this many issues are reported per message. */
  maxIssues: number;
  /** At most this many distinct ad-hoc schemas (from msg.schema) stay compiled. */
  cacheSize: number;
}

export const DEFAULT_VALIDATOR_OPTIONS: ValidatorOptions = {
  coerceTypes: false,
  useDefaults: false,
  allErrors: true,
  maxIssues: 20,
  cacheSize: 100,
};

/** One reason a value does not match its schema. */
export interface ValidationIssue {
  /** JSON Pointer into the value, e.g. "/metrics/temperature" ("" is the value itself). */
  instancePath: string;
  /** The schema keyword that failed, e.g. "maximum", "required", "type". */
  keyword: string;
  message: string;
  /** Where in the schema, e.g. "#/properties/metrics/properties/temperature/maximum". */
  schemaPath: string;
  params: Record<string, unknown>;
}

/** A compiled schema: validate with `engine.validate(compiled, value)`. */
export interface CompiledSchema {
  readonly fn: ValidateFunction;
}

/** `value` is the validated value: with type coercion on, as coerced (also at the top level). */
export type ValidationResult = { valid: true; value: unknown } | { valid: false; issues: ValidationIssue[] };

export class ValidatorEngine {
  readonly options: ValidatorOptions;
  private readonly ajv: Ajv2020;
  /** Ad-hoc schemas by their JSON text, oldest first (a small LRU). */
  private readonly byText = new Map<string, CompiledSchema>();
  /** Ad-hoc schemas by object identity, so a flow that reuses one object skips even the stringify. */
  private byObject = new WeakMap<object, CompiledSchema>();

  constructor(options: Partial<ValidatorOptions> = {}) {
    this.options = { ...DEFAULT_VALIDATOR_OPTIONS, ...options };
    this.ajv = new Ajv2020({
      allErrors: this.options.allErrors,
      coerceTypes: this.options.coerceTypes,
      useDefaults: this.options.useDefaults,
      // Unknown keywords (e.g. "unit", "description"-like annotations) are ignored as the spec says.
      strict: false,
      allowUnionTypes: true,
      // Compile errors are reported to the caller, never logged to the console.
      logger: false,
    });
    addFormats(this.ajv);
  }

  /**
   * Compiles a schema (object or JSON text). Throws ThingwireError('schema_invalid')
   * with ajv's message when the schema is not a valid JSON Schema.
   */
  compile(schema: unknown): CompiledSchema {
    let obj: unknown = schema;
    if (typeof schema === 'string') {
      try {
        obj = JSON.parse(schema);
      } catch (e) {
        throw new ThingwireError('schema_invalid', `schema is not valid JSON: ${(e as Error).message}`);
      }
    }
    if (typeof obj === 'boolean') obj = obj ? {} : { not: {} };
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new ThingwireError('schema_invalid', 'schema must be a JSON object (or true/false)');
    }
    try {
      // A schema with an $id replaces any earlier schema of that $id (ajv registers the $id before
      // compiling, so a failed compile must not leave it behind either).
      this.ajv.removeSchema(obj as object);
      return { fn: this.ajv.compile(obj as object) };
    } catch (e) {
      try {
        this.ajv.removeSchema(obj as object);
      } catch {
        // nothing was registered
      }
      throw new ThingwireError('schema_invalid', `schema does not compile: ${(e as Error).message}`);
    }
  }

  /**
   * Compiles an ad-hoc schema (from a message) through a bounded cache, so the
   * same schema sent with every message is compiled once.
   */
  compileCached(schema: unknown): CompiledSchema {
    const isObj = schema !== null && typeof schema === 'object';
    if (isObj) {
      const hit = this.byObject.get(schema);
      if (hit) return hit;
    }
    const text = typeof schema === 'string' ? schema : JSON.stringify(schema);
    if (text === undefined) throw new ThingwireError('schema_invalid', 'schema must be a JSON object');
    let compiled = this.byText.get(text);
    if (compiled) {
      // Refresh its place in the LRU.
      this.byText.delete(text);
      this.byText.set(text, compiled);
    } else {
      compiled = this.compile(typeof schema === 'string' ? schema : JSON.parse(text));
      this.byText.set(text, compiled);
      if (this.byText.size > this.options.cacheSize) {
        const oldest = this.byText.keys().next().value as string;
        const evicted = this.byText.get(oldest)!;
        this.byText.delete(oldest);
        // Let ajv forget it too, so memory stays bounded.
        this.ajv.removeSchema(evicted.fn.schema as object);
        this.byObject = new WeakMap();
      }
    }
    if (isObj) this.byObject.set(schema, compiled);
    return compiled;
  }

  /** Number of ad-hoc schemas currently cached. */
  get cachedSchemas(): number {
    return this.byText.size;
  }

  validate(compiled: CompiledSchema, value: unknown): ValidationResult {
    if (this.options.coerceTypes) {
      // ajv coerces by writing into the parent; give a top-level value a parent so it is coerced too.
      const box = [value];
      if (compiled.fn(value, { instancePath: '', parentData: box, parentDataProperty: 0, rootData: box, dynamicAnchors: {} })) return { valid: true, value: box[0] };
    } else if (compiled.fn(value)) return { valid: true, value };
    return { valid: false, issues: this.toIssues(compiled.fn.errors) };
  }

  /** Validates an array element by element: the valid ones, and a reject for each invalid one. */
  validateItems(compiled: CompiledSchema, items: readonly unknown[]): { valid: unknown[]; rejects: Reject[] } {
    return this.validateEach(items, () => compiled);
  }

  /**
   * Validates an array element by element, each against the schema `schemaOf` gives for it (a batch of several
   * devices' readings, each device's type with its own schema). When schemaOf throws a ThingwireError (no schema
   * for that element, or one that does not compile), that element is rejected with it; the others go on.
   */
  validateEach(items: readonly unknown[], schemaOf: (item: unknown, index: number) => CompiledSchema): { valid: unknown[]; rejects: Reject[] } {
    const valid: unknown[] = [];
    const rejects: Reject[] = [];
    for (let i = 0; i < items.length; i++) {
      let compiled: CompiledSchema;
      try {
        compiled = schemaOf(items[i], i);
      } catch (e) {
        if (!(e instanceof ThingwireError)) throw e;
        rejects.push(e.toReject(i));
        continue;
      }
      const r = this.validate(compiled, items[i]);
      if (r.valid) valid.push(r.value);
      else rejects.push(issuesToReject(r.issues, i));
    }
    return { valid, rejects };
  }

  private toIssues(errors: ErrorObject[] | null | undefined): ValidationIssue[] {
    const list = errors ?? [];
    const n = Math.min(list.length, this.options.maxIssues);
    const out: ValidationIssue[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const e = list[i];
      out[i] = {
        instancePath: e.instancePath,
        keyword: e.keyword,
        message: e.message ?? e.keyword,
        schemaPath: e.schemaPath,
        params: e.params as Record<string, unknown>,
      };
    }
    return out;
  }
}

/** One line a person can read: `/metrics/temperature must be <= 125 (maximum)`. */
export function describeIssues(issues: readonly ValidationIssue[]): string {
  if (issues.length === 0) return 'value does not match the schema';
  const first = issues[0];
  const where = first.instancePath === '' ? 'value' : first.instancePath;
  const more = issues.length > 1 ? ` (+${issues.length - 1} more)` : '';
  return `${where} ${first.message} (${first.keyword})${more}`;
}

export function issuesToReject(issues: ValidationIssue[], index?: number): Reject {
  const r: Reject = { code: 'validation_failed', message: describeIssues(issues), details: issues };
  if (index !== undefined) r.index = index;
  return r;
}
