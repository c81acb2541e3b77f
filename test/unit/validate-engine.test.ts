/**
 * nodes/validate/engine.ts: JSON Schema 2020-12 through ajv, compile errors as ThingwireErrors,
 * the options, the ad-hoc schema cache (identity, text, LRU bound) and the issue text.
 */
import { ThingwireError } from '../../nodes/lib/errors';
import {
  DEFAULT_VALIDATOR_OPTIONS,
  ValidatorEngine,
  describeIssues,
  issuesToReject,
  type CompiledSchema,
  type ValidationIssue,
  type ValidationResult,
} from '../../nodes/validate/engine';

function thrown(fn: () => unknown): ThingwireError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ThingwireError);
    return e as ThingwireError;
  }
  throw new Error('expected a ThingwireError, nothing was thrown');
}

function issues(r: ValidationResult): ValidationIssue[] {
  if (r.valid) throw new Error('expected the value to be invalid');
  return r.issues;
}

const READING_SCHEMA = {
  type: 'object',
  required: ['device', 'metrics'],
  properties: {
    device: { type: 'string', minLength: 1 },
    metrics: {
      type: 'object',
      properties: { temperature: { type: 'number', minimum: -40, maximum: 125 } },
    },
  },
};

describe('options', () => {
  test('defaults', () => {
    expect(DEFAULT_VALIDATOR_OPTIONS).toEqual({ coerceTypes: false, useDefaults: false, allErrors: true, maxIssues: 20, cacheSize: 100 });
    expect(new ValidatorEngine().options).toEqual(DEFAULT_VALIDATOR_OPTIONS);
    expect(new ValidatorEngine({ maxIssues: 3 }).options).toEqual({ ...DEFAULT_VALIDATOR_OPTIONS, maxIssues: 3 });
  });
});

describe('compile', () => {
  const engine = new ValidatorEngine();

  test('an object schema validates', () => {
    const c = engine.compile(READING_SCHEMA);
    expect(engine.validate(c, { device: 'd1', metrics: { temperature: 21 } }).valid).toBe(true);
    const r = issues(engine.validate(c, { device: 'd1', metrics: { temperature: 200 } }));
    expect(r).toEqual([
      {
        instancePath: '/metrics/temperature',
        keyword: 'maximum',
        message: 'must be <= 125',
        schemaPath: '#/properties/metrics/properties/temperature/maximum',
        params: { comparison: '<=', limit: 125 },
      },
    ]);
  });

  test('JSON text is parsed', () => {
    const c = engine.compile('{"type":"integer"}');
    expect(engine.validate(c, 3).valid).toBe(true);
    expect(engine.validate(c, 3.5).valid).toBe(false);
  });

  test('true accepts everything and false nothing (as values and as text)', () => {
    for (const s of [true, 'true']) expect(engine.validate(engine.compile(s), { any: 1 }).valid).toBe(true);
    for (const s of [false, 'false']) {
      const r = engine.validate(engine.compile(s), {});
      expect(r.valid).toBe(false);
    }
  });

  test('an empty object accepts everything', () => {
    const c = engine.compile({});
    for (const v of [null, 1, 'x', [], {}]) expect(engine.validate(c, v).valid).toBe(true);
  });

  test.each(['{"type":', '', 'not json', "{'type':'object'}"])('bad JSON text %p is schema_invalid', (text) => {
    const e = thrown(() => engine.compile(text));
    expect(e.code).toBe('schema_invalid');
    expect(e.message).toMatch(/^schema is not valid JSON: /);
  });

  test.each<[unknown]>([[null], [undefined], [42], [[{ type: 'object' }]], ['"object"'], ['[]'], ['null'], ['3']])('a non-object %p is schema_invalid', (s) => {
    const e = thrown(() => engine.compile(s));
    expect(e.code).toBe('schema_invalid');
    expect(e.message).toBe('schema must be a JSON object (or true/false)');
  });

  test.each<[string, unknown, RegExp]>([
    ['an unknown type', { type: 'nope' }, /^schema does not compile: schema is invalid: data\/type must be equal to one of the allowed values/],
    ['a negative minLength', { type: 'string', minLength: -1 }, /^schema does not compile: schema is invalid: data\/minLength must be >= 0/],
    ['required not an array', { required: 'device' }, /^schema does not compile: schema is invalid: data\/required must be array/],
    ['a dangling $ref', { $ref: '#/$defs/missing' }, /^schema does not compile: can't resolve reference #\/\$defs\/missing/],
    ['a bad regex', { type: 'string', pattern: '(' }, /^schema does not compile: /],
  ])('%s is schema_invalid with ajv\'s message', (_label, schema, message) => {
    const e = thrown(() => engine.compile(schema));
    expect(e.code).toBe('schema_invalid');
    expect(e.message).toMatch(message);
  });

  test('an unknown format is ignored (strict: false), like other unknown keywords', () => {
    const c = engine.compile({ type: 'string', format: 'no-such-format' });
    expect(engine.validate(c, 'anything').valid).toBe(true);
    expect(engine.validate(c, 1).valid).toBe(false);
  });

  test('unknown keywords (annotations) are ignored', () => {
    const c = engine.compile({ type: 'number', unit: '°C', 'x-sensor': 'bme280' });
    expect(engine.validate(c, 1).valid).toBe(true);
    expect(engine.validate(c, '1').valid).toBe(false);
  });

  test('union types are allowed', () => {
    const c = engine.compile({ type: ['number', 'boolean'] });
    expect([1, true, 'x'].map((v) => engine.validate(c, v).valid)).toEqual([true, true, false]);
  });

  test('ajv never logs to the console', () => {
    const spies = (['log', 'warn', 'error'] as const).map((m) => jest.spyOn(console, m).mockImplementation(() => undefined));
    try {
      const e = new ValidatorEngine();
      e.compile({ type: 'object', unknownKeyword: 1, properties: { a: { type: 'string', minimum: 1 } } });
      expect(() => e.compile({ type: 'nope' })).toThrow(ThingwireError);
      for (const s of spies) expect(s).not.toHaveBeenCalled();
    } finally {
      for (const s of spies) s.mockRestore();
    }
  });
});

describe('JSON Schema 2020-12', () => {
  const engine = new ValidatorEngine();

  test('prefixItems and items', () => {
    const c = engine.compile({ type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }], items: false });
    expect(engine.validate(c, ['d1', 21.5]).valid).toBe(true);
    expect(issues(engine.validate(c, [21.5, 'd1'])).map((i) => [i.instancePath, i.keyword])).toEqual([
      ['/0', 'type'],
      ['/1', 'type'],
    ]);
    expect(issues(engine.validate(c, ['d1', 21.5, 'extra']))[0].keyword).toBe('items');
  });

  test('$defs and $ref', () => {
    const c = engine.compile({
      $defs: { celsius: { type: 'number', minimum: -273.15 } },
      type: 'object',
      properties: { inside: { $ref: '#/$defs/celsius' }, outside: { $ref: '#/$defs/celsius' } },
    });
    expect(engine.validate(c, { inside: 20, outside: -5 }).valid).toBe(true);
    const r = issues(engine.validate(c, { inside: 20, outside: -300 }));
    expect(r.map((i) => [i.instancePath, i.keyword])).toEqual([['/outside', 'minimum']]);
  });

  test('unevaluatedProperties sees through allOf', () => {
    const c = engine.compile({
      allOf: [{ properties: { device: { type: 'string' } } }, { properties: { ts: { type: 'number' } } }],
      unevaluatedProperties: false,
    });
    expect(engine.validate(c, { device: 'd1', ts: 1 }).valid).toBe(true);
    const r = issues(engine.validate(c, { device: 'd1', ts: 1, extra: true }));
    expect(r).toHaveLength(1);
    expect(r[0].keyword).toBe('unevaluatedProperties');
    expect(r[0].params).toEqual({ unevaluatedProperty: 'extra' });
  });

  test('dependentRequired and const', () => {
    const c = engine.compile({ dependentRequired: { lat: ['lon'] }, properties: { v: { const: 1 } } });
    expect(engine.validate(c, { lat: 1, lon: 2, v: 1 }).valid).toBe(true);
    expect(issues(engine.validate(c, { lat: 1 }))[0].keyword).toBe('dependentRequired');
    expect(issues(engine.validate(c, { v: 2 }))[0].keyword).toBe('const');
  });

  test.each<[string, string[], string[]]>([
    ['date-time', ['2026-11-24T10:00:00Z', '2026-11-24T10:00:00.5+01:00'], ['2026-11-24', '2026-11-24T10:00:00', 'yesterday', '2026-13-01T00:00:00Z']],
    ['email', ['ops@example.com', 'a.b+c@sub.example.org'], ['ops', 'ops@', '@example.com', 'a b@example.com']],
    ['uuid', ['123e4567-e89b-12d3-a456-426614174000', 'urn:uuid:123e4567-e89b-12d3-a456-426614174000'], ['123e4567', '123e4567-e89b-12d3-a456-42661417400g']],
  ])('format %s', (format, good, bad) => {
    const c = engine.compile({ type: 'string', format });
    for (const v of good) expect([v, engine.validate(c, v).valid]).toEqual([v, true]);
    for (const v of bad) {
      const r = issues(engine.validate(c, v));
      expect([v, r[0].keyword, r[0].params]).toEqual([v, 'format', { format }]);
    }
  });
});

describe('coerceTypes and useDefaults change the data', () => {
  test('coerceTypes: strings become numbers and booleans in place', () => {
    const engine = new ValidatorEngine({ coerceTypes: true });
    const c = engine.compile({ type: 'object', properties: { t: { type: 'number' }, on: { type: 'boolean' }, n: { type: 'integer' } } });
    const data = { t: '21.5', on: 'true', n: '7' };
    expect(engine.validate(c, data).valid).toBe(true);
    expect(data).toEqual({ t: 21.5, on: true, n: 7 });
  });

  test('coerceTypes: a string that is not a number stays invalid', () => {
    const engine = new ValidatorEngine({ coerceTypes: true });
    const c = engine.compile({ type: 'object', properties: { t: { type: 'number' } } });
    const data = { t: 'warm' };
    expect(issues(engine.validate(c, data))[0].keyword).toBe('type');
    expect(data).toEqual({ t: 'warm' });
  });

  test('without coerceTypes, "21.5" is a type error and the data is untouched', () => {
    const engine = new ValidatorEngine();
    const c = engine.compile({ type: 'object', properties: { t: { type: 'number' } } });
    const data = { t: '21.5' };
    const r = issues(engine.validate(c, data));
    expect(r.map((i) => [i.instancePath, i.keyword, i.message])).toEqual([['/t', 'type', 'must be number']]);
    expect(data).toEqual({ t: '21.5' });
  });

  test('coerceTypes inside arrays', () => {
    const engine = new ValidatorEngine({ coerceTypes: true });
    const c = engine.compile({ type: 'array', items: { type: 'number' } });
    const data = ['1', '2.5'];
    expect(engine.validate(c, data).valid).toBe(true);
    expect(data).toEqual([1, 2.5]);
  });

  // Regression, fixed: ajv can only coerce a value it can write back into its parent; a scalar validated at the
  // root (each element in validateItems) is coerced in a local variable and then dropped, so the
  // "valid" elements keep their strings although the schema says number.
  test('coerceTypes on scalar array elements: validateItems gives back the coerced values', () => {
    const engine = new ValidatorEngine({ coerceTypes: true });
    const c = engine.compile({ type: 'number' });
    const items: unknown[] = ['1', '2.5', 'x'];
    const r = engine.validateItems(c, items);
    expect(r.rejects.map((x) => x.index)).toEqual([2]);
    expect(r.valid).toEqual([1, 2.5]);
  });

  test('useDefaults fills in missing properties', () => {
    const engine = new ValidatorEngine({ useDefaults: true });
    const c = engine.compile({ type: 'object', properties: { unit: { type: 'string', default: 'C' }, site: { default: 'north' } } });
    const data: Record<string, unknown> = { site: 'south' };
    expect(engine.validate(c, data).valid).toBe(true);
    expect(data).toEqual({ site: 'south', unit: 'C' });
  });

  test('without useDefaults nothing is added', () => {
    const engine = new ValidatorEngine();
    const c = engine.compile({ type: 'object', properties: { unit: { type: 'string', default: 'C' } } });
    const data = {};
    expect(engine.validate(c, data).valid).toBe(true);
    expect(data).toEqual({});
  });

  test('defaults and coercion together, in nested objects', () => {
    const engine = new ValidatorEngine({ useDefaults: true, coerceTypes: true });
    const c = engine.compile({
      type: 'object',
      properties: { metrics: { type: 'object', properties: { t: { type: 'number' }, n: { type: 'integer', default: 0 } } } },
    });
    const data = { metrics: { t: '3' } };
    expect(engine.validate(c, data).valid).toBe(true);
    expect(data).toEqual({ metrics: { t: 3, n: 0 } });
  });
});

describe('allErrors and maxIssues', () => {
  const schema = { type: 'object', required: ['a', 'b', 'c'], properties: { x: { type: 'number' } } };

  test('allErrors (default) reports every error', () => {
    const engine = new ValidatorEngine();
    const r = issues(engine.validate(engine.compile(schema), { x: 'no' }));
    expect(r.map((i) => `${i.instancePath}:${i.keyword}`).sort()).toEqual(['/x:type', ':required', ':required', ':required']);
  });

  test('allErrors off stops at the first', () => {
    const engine = new ValidatorEngine({ allErrors: false });
    const r = issues(engine.validate(engine.compile(schema), { x: 'no' }));
    expect(r).toHaveLength(1);
  });

  test('maxIssues caps the list', () => {
    const engine = new ValidatorEngine({ maxIssues: 2 });
    const c = engine.compile({ type: 'array', items: { type: 'number' } });
    const r = issues(engine.validate(c, ['a', 'b', 'c', 'd', 'e']));
    expect(r.map((i) => i.instancePath)).toEqual(['/0', '/1']);
  });

  test('the default cap is 20', () => {
    const engine = new ValidatorEngine();
    const c = engine.compile({ type: 'array', items: { type: 'number' } });
    expect(issues(engine.validate(c, new Array(50).fill('x')))).toHaveLength(20);
  });

  test('the result of a later validation does not change an earlier one', () => {
    const engine = new ValidatorEngine();
    const c = engine.compile({ type: 'number' });
    const first = issues(engine.validate(c, 'a'));
    engine.validate(c, 1);
    engine.validate(c, {});
    expect(first.map((i) => i.message)).toEqual(['must be number']);
  });
});

describe('compileCached', () => {
  test('the same object is compiled once', () => {
    const engine = new ValidatorEngine();
    const spy = jest.spyOn(engine, 'compile');
    const schema = { type: 'number' };
    const a = engine.compileCached(schema);
    const b = engine.compileCached(schema);
    expect(b).toBe(a);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(engine.cachedSchemas).toBe(1);
  });

  test('equal schemas (a new object each message, as after JSON.parse) share one compile', () => {
    const engine = new ValidatorEngine();
    const spy = jest.spyOn(engine, 'compile');
    const text = '{"type":"object","required":["device"]}';
    const a = engine.compileCached(JSON.parse(text));
    const b = engine.compileCached(JSON.parse(text));
    expect(b).toBe(a);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(engine.validate(b, {}).valid).toBe(false);
    expect(engine.validate(b, { device: 'd' }).valid).toBe(true);
  });

  test('equal JSON text shares one compile', () => {
    const engine = new ValidatorEngine();
    const spy = jest.spyOn(engine, 'compile');
    const a = engine.compileCached('{"type":"string"}');
    const b = engine.compileCached('{"type":"string"}');
    expect(b).toBe(a);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(engine.validate(a, 'x').valid).toBe(true);
  });

  test('different schemas are different entries', () => {
    const engine = new ValidatorEngine();
    const a = engine.compileCached({ type: 'string' });
    const b = engine.compileCached({ type: 'number' });
    expect(b).not.toBe(a);
    expect(engine.cachedSchemas).toBe(2);
    expect(engine.validate(a, 1).valid).toBe(false);
    expect(engine.validate(b, 1).valid).toBe(true);
  });

  test('invalid schemas throw schema_invalid and are not cached', () => {
    const engine = new ValidatorEngine();
    expect(thrown(() => engine.compileCached({ type: 'nope' })).code).toBe('schema_invalid');
    expect(thrown(() => engine.compileCached('{oops')).code).toBe('schema_invalid');
    expect(thrown(() => engine.compileCached(undefined)).code).toBe('schema_invalid');
    expect(thrown(() => engine.compileCached(() => 1)).code).toBe('schema_invalid');
    expect(thrown(() => engine.compileCached(null)).code).toBe('schema_invalid');
    expect(thrown(() => engine.compileCached(7)).code).toBe('schema_invalid');
    expect(engine.cachedSchemas).toBe(0);
  });

  test('the cache holds at most cacheSize schemas, dropping the least recently used', () => {
    const engine = new ValidatorEngine({ cacheSize: 3 });
    const spy = jest.spyOn(engine, 'compile');
    const s = (n: number): object => ({ type: 'number', maximum: n });
    engine.compileCached(s(1));
    engine.compileCached(s(2));
    engine.compileCached(s(3));
    expect(engine.cachedSchemas).toBe(3);
    engine.compileCached(s(1)); // used again: now the most recent
    expect(spy).toHaveBeenCalledTimes(3);
    engine.compileCached(s(4)); // evicts 2, the least recently used
    expect(engine.cachedSchemas).toBe(3);
    expect(spy).toHaveBeenCalledTimes(4);
    engine.compileCached(s(1));
    engine.compileCached(s(3));
    engine.compileCached(s(4));
    expect(spy).toHaveBeenCalledTimes(4);
    engine.compileCached(s(2)); // was evicted: compiled again
    expect(spy).toHaveBeenCalledTimes(5);
    expect(engine.cachedSchemas).toBe(3);
  });

  test('a cache of one keeps only the last schema, and a long run stays bounded', () => {
    const engine = new ValidatorEngine({ cacheSize: 1 });
    for (let i = 0; i < 300; i++) engine.compileCached({ type: 'number', maximum: i });
    expect(engine.cachedSchemas).toBe(1);
  });

  test('an evicted schema still works when sent again (and when its old compiled form is still held)', () => {
    const engine = new ValidatorEngine({ cacheSize: 1 });
    const schema = { $id: 'https://example.com/t.json', type: 'number', maximum: 10 };
    const first = engine.compileCached(schema);
    engine.compileCached({ type: 'string' }); // evicts the first
    expect(engine.validate(first, 5).valid).toBe(true);
    expect(engine.validate(first, 11).valid).toBe(false);
    const again = engine.compileCached(schema);
    expect(again).not.toBe(first);
    expect(engine.validate(again, 5).valid).toBe(true);
    expect(engine.validate(again, 11).valid).toBe(false);
    expect(engine.validate(again, 'x').valid).toBe(false);
  });

  test('an evicted object is looked up by identity no more (it is recompiled)', () => {
    const engine = new ValidatorEngine({ cacheSize: 1 });
    const spy = jest.spyOn(engine, 'compile');
    const a = { type: 'number' };
    engine.compileCached(a);
    engine.compileCached({ type: 'string' });
    engine.compileCached(a);
    expect(spy).toHaveBeenCalledTimes(3);
  });

  test('a schema referring to a cached $id works, also after that $id is evicted', () => {
    const engine = new ValidatorEngine({ cacheSize: 1 });
    engine.compileCached({ $id: 'https://example.com/base.json', type: 'integer' });
    const user = engine.compileCached({ $ref: 'https://example.com/base.json' });
    expect(engine.validate(user, 1).valid).toBe(true);
    expect(engine.validate(user, 'x').valid).toBe(false);
    const base = engine.compileCached({ $id: 'https://example.com/base.json', type: 'integer' });
    expect(engine.validate(base, 2).valid).toBe(true);
  });
});

describe('schemas with an $id', () => {
  const ID = 'https://example.com/schemas/reading.json';

  test('compiling the same $id again replaces the schema', () => {
    const engine = new ValidatorEngine();
    const a = engine.compile({ $id: ID, type: 'object' });
    const b = engine.compile({ $id: ID, type: 'number' });
    expect(engine.validate(a, {}).valid).toBe(true);
    expect(engine.validate(b, {}).valid).toBe(false);
    expect(engine.validate(b, 1).valid).toBe(true);
  });

  test('the same $id twice through the cache, with different content', () => {
    const engine = new ValidatorEngine();
    const a = engine.compileCached({ $id: ID, type: 'object' });
    const b = engine.compileCached({ $id: ID, type: 'number' });
    expect(engine.validate(b, 1).valid).toBe(true);
    // The first is still cached by its text and still validates as it did.
    expect(engine.compileCached({ $id: ID, type: 'object' })).toBe(a);
    expect(engine.validate(a, {}).valid).toBe(true);
  });

  test('a $ref to a replaced $id sees the new schema', () => {
    const engine = new ValidatorEngine();
    engine.compile({ $id: ID, type: 'object' });
    engine.compile({ $id: ID, type: 'number' });
    const user = engine.compile({ $ref: ID });
    expect(engine.validate(user, 1).valid).toBe(true);
    expect(engine.validate(user, {}).valid).toBe(false);
  });

  // Regression, fixed: ajv registers a schema's $id before it compiles it. When that compile fails, the broken
  // schema stays registered; the next compile of that $id calls ajv.getSchema(id) outside the
  // try/catch, which compiles the broken schema again and throws ajv's raw Error. The engine is
  // stuck: the corrected schema can never be compiled, and the error is not a ThingwireError.
  test.each<[string, object]>([
    ['an invalid keyword value', { $id: ID, type: 'nope' }],
    ['a dangling $ref', { $id: ID, $ref: '#/$defs/missing' }],
  ])('after a schema with an $id fails (%s), the corrected schema of that $id compiles', (_label, broken) => {
    const engine = new ValidatorEngine();
    expect(thrown(() => engine.compile(broken)).code).toBe('schema_invalid');
    const fixed = engine.compile({ $id: ID, type: 'object' });
    expect(engine.validate(fixed, {}).valid).toBe(true);
    expect(engine.validate(fixed, 1).valid).toBe(false);
  });

  test('the same broken schema with an $id sent twice is schema_invalid both times', () => {
    const engine = new ValidatorEngine();
    expect(thrown(() => engine.compileCached({ $id: ID, $ref: '#/nowhere' })).code).toBe('schema_invalid');
    expect(thrown(() => engine.compileCached({ $id: ID, $ref: '#/nowhere' })).code).toBe('schema_invalid');
  });

  // Regression, fixed (was: same line): an $id ajv cannot resolve throws from getSchema(), outside the try/catch.
  test('an $id ajv cannot resolve (urn without a namespace) is schema_invalid', () => {
    const engine = new ValidatorEngine();
    expect(thrown(() => engine.compile({ $id: 'urn:x', type: 'number' })).code).toBe('schema_invalid');
  });

  test('a urn $id with a namespace is fine', () => {
    const engine = new ValidatorEngine();
    const c = engine.compile({ $id: 'urn:thingwire:reading', type: 'number' });
    expect(engine.validate(c, 1).valid).toBe(true);
  });
});

describe('validateItems', () => {
  const engine = new ValidatorEngine();
  const c: CompiledSchema = engine.compile({ type: 'object', required: ['device'], properties: { t: { type: 'number' } } });

  test('valid items in order, a reject per invalid item with its index', () => {
    const items = [{ device: 'a', t: 1 }, { t: 2 }, { device: 'c', t: 'x' }, { device: 'd' }];
    const r = engine.validateItems(c, items);
    expect(r.valid).toEqual([items[0], items[3]]);
    expect(r.valid[0]).toBe(items[0]);
    expect(r.rejects.map((x) => [x.index, x.code])).toEqual([
      [1, 'validation_failed'],
      [2, 'validation_failed'],
    ]);
    expect(r.rejects[0].message).toBe("value must have required property 'device' (required)");
    expect(r.rejects[1].message).toBe('/t must be number (type)');
    expect((r.rejects[1].details as ValidationIssue[])[0]).toMatchObject({ instancePath: '/t', keyword: 'type' });
  });

  test('all valid and empty', () => {
    expect(engine.validateItems(c, [{ device: 'a' }])).toEqual({ valid: [{ device: 'a' }], rejects: [] });
    expect(engine.validateItems(c, [])).toEqual({ valid: [], rejects: [] });
  });

  test('index 0 is kept on the reject', () => {
    const r = engine.validateItems(c, [{}]);
    expect(r.rejects[0].index).toBe(0);
  });
});

describe('describeIssues and issuesToReject', () => {
  const issue = (instancePath: string, keyword: string, message: string): ValidationIssue => ({ instancePath, keyword, message, schemaPath: '#', params: {} });

  test('one issue: where, message, keyword', () => {
    expect(describeIssues([issue('/metrics/temperature', 'maximum', 'must be <= 125')])).toBe('/metrics/temperature must be <= 125 (maximum)');
  });

  test('the root is called "value"', () => {
    expect(describeIssues([issue('', 'type', 'must be object')])).toBe('value must be object (type)');
  });

  test('more issues are counted', () => {
    expect(describeIssues([issue('/a', 'type', 'must be number'), issue('/b', 'type', 'x'), issue('/c', 'type', 'y')])).toBe('/a must be number (type) (+2 more)');
  });

  test('no issues', () => {
    expect(describeIssues([])).toBe('value does not match the schema');
  });

  test('issuesToReject', () => {
    const list = [issue('/a', 'type', 'must be number')];
    expect(issuesToReject(list)).toEqual({ code: 'validation_failed', message: '/a must be number (type)', details: list });
    expect(issuesToReject(list, 3)).toEqual({ code: 'validation_failed', message: '/a must be number (type)', details: list, index: 3 });
    expect(issuesToReject(list)).not.toHaveProperty('index');
  });

  test('a false schema (compiled as {not: {}}) gives a message for the value itself', () => {
    const engine = new ValidatorEngine();
    const r = issues(engine.validate(engine.compile(false), 1));
    expect(describeIssues(r)).toBe('value must NOT be valid (not)');
  });
});
