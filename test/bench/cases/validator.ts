/**
 * ValidatorEngine benches. The issue's target: at least 1,000,000 validations/s
 * on one core for valid telemetry against a realistic schema.
 */
import { ValidatorEngine, type CompiledSchema } from '../../../nodes/validate/engine';
import type { BenchCase, Target } from '../harness';
import { BATCH_SIZE, batches, canonicalReadings, invalidReadings, TELEMETRY_SCHEMA } from '../fixtures';

export const SCHEMA_PARSE_BASELINE = 'baseline/JSON.parse(schema text)';
export const VALIDATIONS_TARGET: Target = { min: 1_000_000, per: 'item', unit: 'validations' };

let engine: ValidatorEngine;
let compiled: CompiledSchema;
let valid: Array<Record<string, unknown>>;
let invalid: Array<Record<string, unknown>>;
let validBatches: Array<Array<Record<string, unknown>>>;

/** A second schema, so validate() sees more than one compiled function, as it does in a running flow. */
const OTHER_SCHEMA = {
  type: 'object',
  required: ['device', 'metrics'],
  properties: { device: { type: 'string' }, metrics: { type: 'object', additionalProperties: { type: ['number', 'boolean', 'string'] } } },
};

/**
 * Shared fixtures, and one JIT state for every validator case whatever the
 * order or --filter: ValidatorEngine.validate() calls `compiled.fn`, and V8
 * inlines that ajv function only while the call site sees one function and
 * valid data. That measures about twice as fast as a flow with several
 * schemas and some invalid messages, so before any timing every compiled
 * function here sees valid and invalid values (the realistic, conservative state).
 */
function fixtures(): void {
  if (engine) return;
  engine = new ValidatorEngine();
  compiled = engine.compile(TELEMETRY_SCHEMA);
  const cached = engine.compileCached(TELEMETRY_SCHEMA);
  const other = engine.compile(OTHER_SCHEMA);
  valid = canonicalReadings();
  invalid = invalidReadings();
  validBatches = batches(valid, BATCH_SIZE);
  // The benches must measure the path they name.
  for (const c of [compiled, cached]) {
    for (const v of valid) if (!engine.validate(c, v).valid) throw new Error(`fixture should be valid: ${JSON.stringify(v)}`);
    for (const v of invalid) if (engine.validate(c, v).valid) throw new Error(`fixture should be invalid: ${JSON.stringify(v)}`);
  }
  for (const v of valid) engine.validate(other, v);
  for (const v of invalid) engine.validate(other, v);
}

export const validatorCases: BenchCase[] = [
  {
    group: 'validator',
    name: 'validate valid (varied)',
    target: VALIDATIONS_TARGET,
    setup: fixtures,
    run(n) {
      const data = valid;
      const mask = data.length - 1;
      let ok = 0;
      for (let i = 0; i < n; i++) if (engine.validate(compiled, data[i & mask]).valid) ok++;
      return ok;
    },
  },
  {
    group: 'validator',
    name: 'validate invalid (varied)',
    setup: fixtures,
    run(n) {
      const data = invalid;
      const mask = data.length - 1;
      let issues = 0;
      for (let i = 0; i < n; i++) {
        const r = engine.validate(compiled, data[i & mask]);
        if (!r.valid) issues += r.issues.length;
      }
      return issues;
    },
  },
  {
    group: 'validator',
    name: 'compileCached+validate (same schema object)',
    target: VALIDATIONS_TARGET,
    setup: fixtures,
    run(n) {
      const data = valid;
      const mask = data.length - 1;
      const schema: unknown = TELEMETRY_SCHEMA;
      let ok = 0;
      for (let i = 0; i < n; i++) if (engine.validate(engine.compileCached(schema), data[i & mask]).valid) ok++;
      return ok;
    },
  },
  {
    group: 'baseline',
    name: 'JSON.parse(schema text)',
    run(n) {
      const text = JSON.stringify(TELEMETRY_SCHEMA);
      let s = 0;
      for (let i = 0; i < n; i++) s += (JSON.parse(text) as { required: unknown[] }).required.length;
      return s;
    },
  },
  {
    // Diagnostic: msg.schema parsed from JSON arrives as a new object with every
    // message, so the identity cache misses and the text key is rebuilt each time.
    group: 'validator',
    name: 'JSON.parse(schema)+compileCached+validate',
    baseline: SCHEMA_PARSE_BASELINE,
    setup: fixtures,
    run(n) {
      const data = valid;
      const mask = data.length - 1;
      const text = JSON.stringify(TELEMETRY_SCHEMA);
      let ok = 0;
      for (let i = 0; i < n; i++) {
        const schema: unknown = JSON.parse(text);
        if (engine.validate(engine.compileCached(schema), data[i & mask]).valid) ok++;
      }
      return ok;
    },
  },
  {
    group: 'validator',
    name: `validateItems (batch of ${BATCH_SIZE})`,
    itemsPerOp: BATCH_SIZE,
    target: VALIDATIONS_TARGET,
    setup: fixtures,
    run(n) {
      const data = validBatches;
      const count = data.length;
      let ok = 0;
      for (let i = 0; i < n; i++) {
        const r = engine.validateItems(compiled, data[i % count]);
        ok += r.valid.length + r.rejects.length * 1000;
      }
      return ok;
    },
  },
];
