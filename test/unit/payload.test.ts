/**
 * nodes/lib/payload.ts: Buffers and strings are size-checked, then parsed as JSON;
 * anything already parsed passes through untouched.
 */
import { ThingwireError } from '../../nodes/lib/errors';
import { DEFAULT_MAX_BYTES, parsePayload } from '../../nodes/lib/payload';

function thrown(fn: () => unknown): ThingwireError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ThingwireError);
    return e as ThingwireError;
  }
  throw new Error('expected a ThingwireError, nothing was thrown');
}

/** A JSON string literal whose UTF-8 encoding is exactly `bytes` long, made of `ch` plus ASCII padding. */
function jsonOfBytes(bytes: number, ch: string): string {
  const chBytes = Buffer.byteLength(ch, 'utf8');
  const n = Math.floor((bytes - 2) / chBytes);
  const s = `"${ch.repeat(n)}${'a'.repeat(bytes - 2 - n * chBytes)}"`;
  expect(Buffer.byteLength(s, 'utf8')).toBe(bytes);
  return s;
}

describe('parsePayload', () => {
  test('the default limit is 256 KiB', () => {
    expect(DEFAULT_MAX_BYTES).toBe(262144);
  });

  test('a JSON Buffer is parsed', () => {
    expect(parsePayload(Buffer.from('{"temperature":21.5,"ok":true}'))).toEqual({ temperature: 21.5, ok: true });
  });

  test('a JSON string is parsed', () => {
    expect(parsePayload('[1,{"a":null}]')).toEqual([1, { a: null }]);
  });

  test.each<[string, unknown]>([
    ['21.5', 21.5],
    ['true', true],
    ['null', null],
    ['"text"', 'text'],
    [' \n {"a":1} \t', { a: 1 }],
  ])('JSON text %p gives %p', (text, value) => {
    expect(parsePayload(text)).toEqual(value);
    expect(parsePayload(Buffer.from(text))).toEqual(value);
  });

  test('UTF-8 in a Buffer is decoded', () => {
    expect(parsePayload(Buffer.from('{"température":"été ☀"}', 'utf8'))).toEqual({ température: 'été ☀' });
  });

  test('already-parsed values are returned as they are (same object)', () => {
    const o = { a: 1 };
    const a = [o];
    expect(parsePayload(o)).toBe(o);
    expect(parsePayload(a)).toBe(a);
    expect(parsePayload(42)).toBe(42);
    expect(parsePayload(false)).toBe(false);
    expect(parsePayload(null)).toBeNull();
    expect(parsePayload(undefined)).toBeUndefined();
  });

  test('already-parsed objects are not size-checked (only raw text is)', () => {
    const big = { s: 'x'.repeat(100) };
    expect(parsePayload(big, 10)).toBe(big);
  });

  describe('malformed JSON', () => {
    test.each(['{"a":', 'on', "{'a':1}", '{"a":1,}', '', 'NaN', '01'])('%p is malformed_json', (text) => {
      const e = thrown(() => parsePayload(text));
      expect(e.code).toBe('malformed_json');
      expect(e.message).toMatch(/^payload is not valid JSON \(/);
      expect(e.message).toContain(JSON.stringify(text));
      expect(thrown(() => parsePayload(Buffer.from(text))).code).toBe('malformed_json');
    });

    test('the message previews at most 40 characters', () => {
      const text = `{"a": ${'9'.repeat(100)} oops`;
      const e = thrown(() => parsePayload(text));
      expect(e.code).toBe('malformed_json');
      expect(e.message).toContain(JSON.stringify(`${text.slice(0, 40)}...`));
      expect(e.message).not.toContain(text.slice(0, 41));
    });

    test('a UTF-8 byte order mark is not JSON', () => {
      expect(thrown(() => parsePayload(Buffer.from('\ufeff{"a":1}', 'utf8'))).code).toBe('malformed_json');
    });
  });

  describe('size limit, checked before parsing', () => {
    test('a Buffer at the limit is parsed; one byte over is payload_too_large with details', () => {
      const text = jsonOfBytes(100, 'a');
      expect(parsePayload(Buffer.from(text), 100)).toBe('a'.repeat(98));
      const e = thrown(() => parsePayload(Buffer.from(`${text} `), 100));
      expect(e.code).toBe('payload_too_large');
      expect(e.details).toEqual({ bytes: 101, maxBytes: 100 });
      expect(e.message).toBe('payload is at least 101 bytes, over the limit of 100 bytes');
    });

    test('an oversize payload is rejected even when it is not JSON (the size comes first)', () => {
      const junk = '{'.repeat(200);
      expect(thrown(() => parsePayload(junk, 100)).code).toBe('payload_too_large');
      expect(thrown(() => parsePayload(Buffer.from(junk), 100)).code).toBe('payload_too_large');
      // The same junk under the limit is malformed, which shows the order.
      expect(thrown(() => parsePayload(junk, 1000)).code).toBe('malformed_json');
    });

    test('JSON.parse is never called for an oversize payload', () => {
      const spy = jest.spyOn(JSON, 'parse');
      try {
        expect(() => parsePayload('"x"'.padEnd(5000, ' '), 4096)).toThrow(ThingwireError);
        expect(() => parsePayload(Buffer.alloc(5000, 0x20), 4096)).toThrow(ThingwireError);
        expect(spy).not.toHaveBeenCalled();
      } finally {
        spy.mockRestore();
      }
    });

    test('an ASCII string at the limit is parsed; one character over is rejected', () => {
      const text = jsonOfBytes(1000, 'a');
      expect(parsePayload(text, 1000)).toHaveLength(998);
      const e = thrown(() => parsePayload(`${text} `, 1000));
      expect(e.code).toBe('payload_too_large');
      expect(e.details).toEqual({ bytes: 1001, maxBytes: 1000 });
    });

    test.each([
      ['é (2 bytes)', 'é'],
      ['€ (3 bytes)', '€'],
      ['😀 (4 bytes, a surrogate pair)', '😀'],
    ])('a string of %s counts UTF-8 bytes: exactly at the limit passes, one byte over fails', (_label, ch) => {
      const limit = 999;
      const atLimit = jsonOfBytes(limit, ch);
      // Fewer characters than bytes: a check on .length alone would let the over-limit one through.
      expect(atLimit.length).toBeLessThan(limit);
      expect(parsePayload(atLimit, limit)).toBe(JSON.parse(atLimit));
      const over = `${atLimit} `;
      const e = thrown(() => parsePayload(over, limit));
      expect(e.code).toBe('payload_too_large');
      expect(e.details).toEqual({ bytes: limit + 1, maxBytes: limit });
      // The same bytes as a Buffer agree.
      expect(parsePayload(Buffer.from(atLimit, 'utf8'), limit)).toBe(JSON.parse(atLimit));
      expect(thrown(() => parsePayload(Buffer.from(over, 'utf8'), limit)).code).toBe('payload_too_large');
    });

    test('a string of 3-byte characters well over the limit is rejected though its length is under it', () => {
      const s = `"${'€'.repeat(400)}"`; // 402 characters, 1202 bytes
      const e = thrown(() => parsePayload(s, 1000));
      expect(e.code).toBe('payload_too_large');
      expect(e.details).toEqual({ bytes: 1202, maxBytes: 1000 });
    });

    test('a string longer than the limit in characters is rejected without counting bytes', () => {
      const spy = jest.spyOn(Buffer, 'byteLength');
      try {
        const e = thrown(() => parsePayload('x'.repeat(2000), 1000));
        expect(e.code).toBe('payload_too_large');
        expect(e.details).toEqual({ bytes: 2000, maxBytes: 1000 });
        expect(spy).not.toHaveBeenCalled();
      } finally {
        spy.mockRestore();
      }
    });

    test('the default limit applies when none is given', () => {
      const ok = jsonOfBytes(DEFAULT_MAX_BYTES, 'a');
      expect(parsePayload(ok)).toHaveLength(DEFAULT_MAX_BYTES - 2);
      expect(thrown(() => parsePayload(`${ok} `)).code).toBe('payload_too_large');
      expect(thrown(() => parsePayload(Buffer.from(`${ok} `))).code).toBe('payload_too_large');
    });
  });
});
