/**
 * Line protocol: escaping by position, value types, refusal of what cannot be
 * escaped, and the parser giving back exactly what was encoded.
 */
import { ThingwireError } from '../../nodes/lib/errors';
import { checkBatch, checkPoint, encodeBatch, encodePoint, escapeKey, escapeMeasurement, escapeString, flatten, msString, parseLine, splitLines } from '../../nodes/lib/line-protocol';
import type { Point } from '../../nodes/lib/store/types';

const TS = 1_764_000_000_123;

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ThingwireError);
    return (e as ThingwireError).code;
  }
  throw new Error('expected a ThingwireError');
}

describe('encoding', () => {
  test('a plain point: tags sorted, floats, integers, booleans, strings, ms time', () => {
    const p: Point = { measurement: 'telemetry', tags: { site: 'a', device: 'd1' }, fields: { t: 21.5, n: 42n, ok: true, s: 'hi' }, ts: TS };
    expect(encodePoint(p)).toBe(`telemetry,device=d1,site=a t=21.5,n=42i,ok=true,s="hi" ${TS}`);
  });

  test('tags in the order sort() gives, for 0 to 40 keys of any kind, one point after another', () => {
    const names = ['device', 'Device', 'metric', 'level', 'site', '10', '2', 'a b', 'é', '🌞', 'z', 'Z', '_', 'a,b', 'ﾃｽﾄ', 'aa', 'a'];
    let seed = 7;
    const next = (): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    for (let round = 0; round < 300; round++) {
      const count = round % 41;
      const tags: Record<string, string> = {};
      for (let i = 0; i < count; i++) tags[`${names[Math.floor(next() * names.length)]}${i % 3 === 0 ? '' : i}`] = `v${i}`;
      const expected = Object.keys(tags)
        .sort()
        .map((k) => `,${escapeKey(k, 'tag name')}=${tags[k]}`)
        .join('');
      expect(encodePoint({ measurement: 'm', tags, fields: { f: 1 }, ts: 1 })).toBe(`m${expected} f=1 1`);
    }
  });

  test('whole-number floats stay floats; negative and exponent forms are kept', () => {
    expect(encodePoint({ measurement: 'm', tags: {}, fields: { a: 21, b: -0.5, c: 1e21, d: -3n }, ts: TS })).toBe(`m a=21,b=-0.5,c=1e+21,d=-3i ${TS}`);
  });

  test.each([
    ['measurement with comma and space', { measurement: 'my m,x', tags: {}, fields: { f: 1 }, ts: 1 }, 'my\\ m\\,x f=1 1'],
    ['measurement keeps = unescaped', { measurement: 'a=b', tags: {}, fields: { f: 1 }, ts: 1 }, 'a=b f=1 1'],
    ['tag key and value with comma, equals, space', { measurement: 'm', tags: { 'k,=k ': 'v,=v ' }, fields: { f: 1 }, ts: 1 }, 'm,k\\,\\=k\\ =v\\,\\=v\\  f=1 1'],
    ['field key with comma, equals, space', { measurement: 'm', tags: {}, fields: { 'f,= f': 1 }, ts: 1 }, 'm f\\,\\=\\ f=1 1'],
    ['string with quotes and backslashes', { measurement: 'm', tags: {}, fields: { s: 'a"b\\c' }, ts: 1 }, 'm s="a\\"b\\\\c" 1'],
    ['string with a newline kept raw', { measurement: 'm', tags: {}, fields: { s: 'a\nb' }, ts: 1 }, 'm s="a\nb" 1'],
    ['unicode everywhere', { measurement: 'température', tags: { lieu: 'Málaga 🌞' }, fields: { 'ﾃｽﾄ': 'ü' }, ts: 1 }, 'température,lieu=Málaga\\ 🌞 ﾃｽﾄ="ü" 1'],
    ['empty tag values left out', { measurement: 'm', tags: { a: '', b: 'x' }, fields: { f: 1 }, ts: 1 }, 'm,b=x f=1 1'],
  ] as Array<[string, Point, string]>)('%s', (_name, p, line) => {
    expect(encodePoint(p)).toBe(line);
    expect(parseLine(line)).toEqual({ ...p, tags: Object.fromEntries(Object.entries(p.tags).filter(([, v]) => v !== '')) });
  });

  test.each([
    ['newline in a measurement', { measurement: 'a\nb', tags: {}, fields: { f: 1 }, ts: 1 }, 'invalid_value'],
    ['newline in a tag value', { measurement: 'm', tags: { t: 'a\nb' }, fields: { f: 1 }, ts: 1 }, 'invalid_value'],
    ['tab in a tag key', { measurement: 'm', tags: { 'a\tb': 'x' }, fields: { f: 1 }, ts: 1 }, 'invalid_value'],
    ['carriage return in a field key', { measurement: 'm', tags: {}, fields: { 'a\rb': 1 }, ts: 1 }, 'invalid_value'],
    ['NaN', { measurement: 'm', tags: {}, fields: { f: NaN }, ts: 1 }, 'invalid_value'],
    ['Infinity', { measurement: 'm', tags: {}, fields: { f: Infinity }, ts: 1 }, 'invalid_value'],
    ['no fields', { measurement: 'm', tags: {}, fields: {}, ts: 1 }, 'no_metrics'],
    ['empty measurement', { measurement: '', tags: {}, fields: { f: 1 }, ts: 1 }, 'invalid_value'],
    ['no time', { measurement: 'm', tags: {}, fields: { f: 1 }, ts: NaN }, 'invalid_ts'],
  ] as Array<[string, Point, string]>)('refuses %s', (_name, p, c) => {
    expect(code(() => encodePoint(p))).toBe(c);
    expect(code(() => checkPoint(p))).toBe(c);
  });

  test('escape helpers leave plain names alone (the fast path) and escape the rest', () => {
    expect(escapeMeasurement('plain')).toBe('plain');
    expect(escapeKey('plain')).toBe('plain');
    expect(escapeString('plain')).toBe('"plain"');
    expect(escapeMeasurement('a b')).toBe('a\\ b');
    expect(escapeKey('a=b')).toBe('a\\=b');
  });

  test('encodeBatch keeps good points and reports bad ones by index', () => {
    const r = encodeBatch([
      { measurement: 'm', tags: {}, fields: { f: 1 }, ts: 1 },
      { measurement: 'm', tags: {}, fields: { f: NaN }, ts: 2 },
      { measurement: 'm', tags: {}, fields: { f: 3 }, ts: 3 },
    ]);
    expect(r.lines).toEqual(['m f=1 1', 'm f=3 3']);
    expect(r.rejects.map((x) => [x.index, x.error.code])).toEqual([[1, 'invalid_value']]);
  });
});

describe('checking without encoding (checkPoint, checkBatch)', () => {
  /** What a call did: nothing thrown, or the error's class, code and message. */
  function outcome(fn: () => unknown): string {
    try {
      fn();
      return 'ok';
    } catch (e) {
      return `${(e as Error).constructor.name} ${(e as ThingwireError).code} ${(e as Error).message}`;
    }
  }

  test('refuses exactly what encodePoint refuses, with the same error, on 5,000 random points good and bad', () => {
    let seed = 11;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)];
    // Mostly good names, now and then one line protocol cannot carry (control characters, a trailing backslash,
    // empty), and values of every kind JavaScript has.
    const names = ['device', 'temperature', 'a b', 'k,=v', 'é🌞', 'back\\slash', '__proto__', '', 'new\nline', 'tab\t', 'ends\\', 'nul\u0000', 'del\u007f'];
    const goodNames = names.slice(0, 7);
    const name = (): string => (rnd(4) === 0 ? pick(names) : pick(goodNames));
    const values: unknown[] = [21.5, -0, 0, 1e21, 7n, -3n, true, false, 'text', 'a"b\\c\n', '', NaN, Infinity, -Infinity, undefined, null, {}, [], Symbol('s'), () => 1];
    const goodValues = values.slice(0, 11);
    const tsValues = [TS, TS + 0.75, 0, -1, NaN, Infinity, 2 ** 60];
    let bad = 0;
    for (let i = 0; i < 5000; i++) {
      const tags: Record<string, unknown> = {};
      for (let k = rnd(4); k > 0; k--) tags[name()] = rnd(6) === 0 ? pick(['', undefined, 'v\n', 'v\\', 5]) : name() || 'v';
      const fields: Record<string, unknown> = {};
      for (let k = rnd(5); k > 0; k--) fields[name()] = rnd(5) === 0 ? pick(values) : pick(goodValues);
      const p = { measurement: rnd(8) === 0 ? pick(names) : 'm', tags, fields, ts: rnd(10) === 0 ? pick(tsValues) : TS + i } as unknown as Point;
      const encoded = outcome(() => encodePoint(p));
      expect([i, outcome(() => checkPoint(p))]).toEqual([i, encoded]);
      if (encoded !== 'ok') bad++;
    }
    // Both kinds were met plenty of times.
    expect(bad).toBeGreaterThan(1000);
    expect(bad).toBeLessThan(4000);
  });

  test('checkBatch keeps good points (the same array when none is refused) and reports bad ones by index', () => {
    const good: Point[] = [
      { measurement: 'm', tags: {}, fields: { f: 1 }, ts: 1 },
      { measurement: 'm', tags: { d: 'x' }, fields: { f: 2 }, ts: 2 },
    ];
    const all = checkBatch(good);
    expect(all.points).toBe(good);
    expect(all.rejects).toEqual([]);
    const mixed: Point[] = [
      { measurement: 'm', tags: {}, fields: { f: NaN }, ts: 0 },
      good[0],
      { measurement: 'm', tags: {}, fields: {}, ts: 1 },
      good[1],
    ];
    const r = checkBatch(mixed);
    expect(r.points).toEqual(good);
    expect(r.points[0]).toBe(good[0]);
    expect(r.rejects.map((x) => [x.index, x.error.code])).toEqual([
      [0, 'invalid_value'],
      [2, 'no_metrics'],
    ]);
    // The same answer as encodeBatch.
    const e = encodeBatch(mixed);
    expect(e.rejects.map((x) => [x.index, x.error.message])).toEqual(r.rejects.map((x) => [x.index, x.error.message]));
    expect(e.lines).toEqual(r.points.map(encodePoint));
  });
});

describe('checkBatch with points that share a tags object (as a batch of readings does)', () => {
  test('refuses what encodeBatch refuses, point by point: a series is skipped only after it passed', () => {
    const okTags = { device: 'd1', site: 'a b' };
    const badTags = { device: 'd2', site: 'new\nline' };
    const later = { device: 'd3' };
    const pts: Point[] = [];
    for (let i = 0; i < 30; i++) {
      const tags = i < 10 ? okTags : i < 20 ? badTags : later;
      // Every 7th point has a bad field: refused alone, the series still counts as checked for the next.
      pts.push({ measurement: i === 25 ? '' : 'm', tags, fields: i % 7 === 3 ? { f: NaN } : { f: i }, ts: TS + i });
    }
    const r = checkBatch(pts);
    const e = encodeBatch(pts);
    expect(r.rejects.map((x) => [x.index, x.error.message])).toEqual(e.rejects.map((x) => [x.index, x.error.message]));
    expect(r.rejects.map((x) => x.index)).toEqual([3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 24, 25]);
    expect(e.lines).toEqual(r.points.map(encodePoint));
  });
});

describe('splitting and parsing', () => {
  test('newlines inside quoted strings do not split lines; blank lines and comments are skipped', () => {
    const text = ['# comment', 'm s="a\nb",x=1 1', '', 'm,t=q"q s="c\\"\nd" 2', 'm f\\"k="x\ny" 3', 'm f=4 4'].join('\n');
    const lines = splitLines(text);
    expect(lines).toEqual(['m s="a\nb",x=1 1', 'm,t=q"q s="c\\"\nd" 2', 'm f\\"k="x\ny" 3', 'm f=4 4']);
    expect(parseLine(lines[1])).toEqual({ measurement: 'm', tags: { t: 'q"q' }, fields: { s: 'c"\nd' }, ts: 2 });
    // In a field name a backslash before a quote is literal (only , = and space are escaped there).
    expect(parseLine(lines[2]).fields).toEqual({ 'f\\"k': 'x\ny' });
  });

  test('a field name holding =" does not open a string', () => {
    const line = encodePoint({ measurement: 'm', tags: {}, fields: { 'a="': 1, s: 'x\ny' }, ts: 5 });
    expect(splitLines(`${line}\n${line}`)).toEqual([line, line]);
    expect(parseLine(line).fields).toEqual({ 'a="': 1, s: 'x\ny' });
  });

  test('booleans in every spelling InfluxDB accepts, integers as bigint', () => {
    expect(parseLine('m a=t,b=TRUE,c=False,d=f,e=-12i,g=1.5e3 9').fields).toEqual({ a: true, b: true, c: false, d: false, e: -12n, g: 1500 });
  });

  test.each(['', 'm', 'm f', 'm f=', 'm,t f=1', 'm f="open 1', 'm f=abc 1', 'm f=1 notatime', 'm f=1 1 extra'])('malformed line %j is refused', (line) => {
    expect(code(() => parseLine(line))).toBe('not_a_reading');
  });

  test('a random round trip: whatever is encoded parses back equal', () => {
    const alphabet = ['a', 'Z', '0', ' ', ',', '=', '"', '\\', 'é', '🌞', '\n', "'", '-', '_'];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const word = (allowNewline: boolean): string => {
      let s = alphabet[rnd(3)];
      for (let i = rnd(8); i > 0; i--) {
        const c = alphabet[rnd(alphabet.length)];
        s += c === '\n' && !allowNewline ? '_' : c;
      }
      return s;
    };
    const points: Point[] = [];
    for (let i = 0; i < 500; i++) {
      points.push({
        measurement: word(false),
        tags: { [word(false)]: word(false) },
        fields: { [word(false)]: [1.25, 7n, true, word(true)][rnd(4)] },
        ts: TS + i,
      });
    }
    const { lines, rejects } = encodeBatch(points);
    expect(rejects).toEqual([]);
    const back = splitLines(lines.join('\n')).map(parseLine);
    expect(back).toEqual(points);
  });
});

describe('flatten', () => {
  test('returns the same text for ropes, flat and empty strings', () => {
    let rope = 'rollup,device=d1';
    for (let i = 0; i < 30; i++) rope += `,f${i}=${i * 1.5}`;
    const copy = rope.split('').join('');
    expect(flatten(rope)).toBe(copy);
    expect(flatten(copy)).toBe(copy);
    expect(flatten('')).toBe('');
    expect(flatten('é"\\n')).toBe('é"\\n');
  });
});

describe('msString', () => {
  test.each([0, 5, 999_999, 1_000_000, 1_000_001, 1_764_000_000_000, 1_764_000_000_001, 1_764_000_123_456, 4_102_444_799_999, 1e15, -5, -1_764_000_000_000])('%d as text equals String()', (n) => {
    expect(msString(n)).toBe(String(n));
  });

  test('many random epoch values', () => {
    for (let i = 0; i < 20_000; i++) {
      const n = Math.floor(Math.random() * 4e12);
      expect(msString(n)).toBe(String(n));
    }
  });
});

describe('trailing backslashes', () => {
  test.each([
    ['measurement', { measurement: 'm\\', tags: {}, fields: { f: 1 }, ts: 1 }],
    ['tag key', { measurement: 'm', tags: { 'k\\': 'v' }, fields: { f: 1 }, ts: 1 }],
    ['tag value', { measurement: 'm', tags: { k: 'v\\' }, fields: { f: 1 }, ts: 1 }],
    ['field key', { measurement: 'm', tags: {}, fields: { 'f\\': 1 }, ts: 1 }],
  ] as Array<[string, Point]>)('a %s ending in a backslash is refused (InfluxDB would misread the line)', (_n, p) => {
    expect(code(() => encodePoint(p))).toBe('invalid_value');
  });

  test('a string value ending in a backslash is fine', () => {
    const line = encodePoint({ measurement: 'm', tags: {}, fields: { s: 'a\\' }, ts: 1 });
    expect(parseLine(line).fields.s).toBe('a\\');
  });
});

describe('backslashes and __proto__ in names', () => {
  test('a backslash before an ordinary character is literal and survives the round trip', () => {
    const p: Point = { measurement: 'm\\x', tags: { 'k\\y': 'back\\slash' }, fields: { 'f\\z': 'v\\w' }, ts: 1 };
    expect(parseLine(encodePoint(p))).toEqual(p);
  });

  test('tags and fields named __proto__ are kept as data', () => {
    const back = parseLine('m,__proto__=t __proto__=1 1');
    expect(Object.keys(back.tags)).toEqual(['__proto__']);
    expect(back.tags.__proto__).toBe('t');
    expect(Object.keys(back.fields)).toEqual(['__proto__']);
  });
});
