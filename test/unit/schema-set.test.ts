/**
 * nodes/schemas/schema-set.ts parseSchemaSet: the JSON text of a thingwire-schemas config node.
 */
import { parseSchemaSet } from '../../nodes/schemas/schema-set';

function errorOf(text: string): Error {
  try {
    parseSchemaSet(text);
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    return e as Error;
  }
  throw new Error('expected parseSchemaSet to throw');
}

describe('parseSchemaSet', () => {
  test.each([undefined, '', '   ', '\n\t'])('%p is an empty set', (text) => {
    const set = parseSchemaSet(text);
    expect(set).toBeInstanceOf(Map);
    expect(set.size).toBe(0);
  });

  test('keys map to their schemas, in order', () => {
    const set = parseSchemaSet('{"pico-w": {"type":"object","required":["temperature"]}, "esp32": {"type":"object"}, "any": true, "none": false}');
    expect([...set.keys()]).toEqual(['pico-w', 'esp32', 'any', 'none']);
    expect(set.get('pico-w')).toEqual({ type: 'object', required: ['temperature'] });
    expect(set.get('esp32')).toEqual({ type: 'object' });
    expect(set.get('any')).toBe(true);
    expect(set.get('none')).toBe(false);
  });

  test('an empty object is an empty set', () => {
    expect(parseSchemaSet('{}').size).toBe(0);
  });

  test('keys with unicode, spaces, dots and an empty key are kept as they are', () => {
    const set = parseSchemaSet('{"capteur température": {}, "a.b": {}, "": {}}');
    expect([...set.keys()]).toEqual(['capteur température', 'a.b', '']);
  });

  test('a "__proto__" key is an ordinary entry and pollutes nothing', () => {
    const set = parseSchemaSet('{"__proto__": {"type":"number"}}');
    expect(set.get('__proto__')).toEqual({ type: 'number' });
    expect(({} as Record<string, unknown>).type).toBeUndefined();
  });

  test('schema contents are not checked here (the validate node compiles them)', () => {
    expect(parseSchemaSet('{"k": {"type":"nope"}}').get('k')).toEqual({ type: 'nope' });
  });

  test('malformed JSON says so, with the parser message and the cause', () => {
    const e = errorOf('{"k": {');
    expect(e.message).toMatch(/^schema set is not valid JSON: /);
    expect(e.cause).toBeInstanceOf(SyntaxError);
  });

  test.each(['[]', '[{"type":"object"}]', 'null', '42', '"text"', 'true'])('%s is not a set (must be an object)', (text) => {
    expect(errorOf(text).message).toBe('schema set must be a JSON object mapping each key to a schema');
  });

  test.each<[string, string]>([
    ['{"a": {}, "b": null}', 'schema for key "b" must be an object'],
    ['{"a": 1}', 'schema for key "a" must be an object'],
    ['{"a": "object"}', 'schema for key "a" must be an object'],
    ['{"a": [{"type":"object"}]}', 'schema for key "a" must be an object'],
    ['{"we\\"ird": 0}', 'schema for key "we\\"ird" must be an object'],
  ])('%s: a value that is not a schema is named by its key', (text, message) => {
    expect(errorOf(text).message).toBe(message);
  });
});
