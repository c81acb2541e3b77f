/**
 * InfluxDB line protocol: encoding Points (with millisecond timestamps) and
 * parsing it back (for the embedded store, batch splitting and tests).
 *
 * Escaping, as InfluxDB 1.x/2.x/3.x read it:
 * - measurement: `\` before comma and space;
 * - tag keys, tag values, field keys: `\` before comma, equals sign and space;
 * - string field values: in double quotes, `\` before `"` and `\`; newlines are kept as they are
 *   (InfluxDB accepts them inside quotes);
 * - numbers are floats (`21.5`), bigints integers (`42i`), booleans `true`/`false`.
 * Newlines and other control characters cannot be escaped in measurements, tag keys, tag values or
 * field keys: such a point is refused with invalid_value rather than written wrong. Empty tag values
 * are left out (InfluxDB refuses them).
 */
import { ThingwireError } from './errors';
import type { FieldValue, Point } from './store/types';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const MEASUREMENT_SPECIAL = /[, ]/g;
const KEY_SPECIAL = /[,= ]/g;
const STRING_SPECIAL = /["\\]/g;
const NEEDS_MEASUREMENT_ESCAPE = /[, ]/;
const NEEDS_KEY_ESCAPE = /[,= ]/;
const NEEDS_STRING_ESCAPE = /["\\]/;

function checkNoControl(s: string, what: string): void {
  // A trailing backslash would escape the separator after it: InfluxDB then misreads the line.
  if (s.endsWith('\\')) throw new ThingwireError('invalid_value', `${what} ${JSON.stringify(s.slice(-40))} ends with a backslash, which line protocol cannot carry`);
  if (CONTROL.test(s)) throw new ThingwireError('invalid_value', `${what} ${JSON.stringify(s.slice(0, 40))} contains a control character (such as a newline), which line protocol cannot carry`);
}

/**
 * Escaped names are cached: measurements, tag keys, field keys and tag values repeat on every
 * point, and a Map hit is cheaper than the regex checks. Bounded: cleared when it grows past
 * CACHE_MAX entries (hostile input with endless new names costs a little speed, never memory).
 */
const CACHE_MAX = 10_000;
const measurementCache = new Map<string, string>();
const keyCache = new Map<string, string>();
const tagValueCache = new Map<string, string>();

function remember(cache: Map<string, string>, k: string, v: string): string {
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(k, v);
  return v;
}

export function escapeMeasurement(s: string): string {
  const hit = measurementCache.get(s);
  if (hit !== undefined) return hit;
  checkNoControl(s, 'measurement');
  if (s.length === 0) throw new ThingwireError('invalid_value', 'measurement name is empty');
  return remember(measurementCache, s, NEEDS_MEASUREMENT_ESCAPE.test(s) ? s.replace(MEASUREMENT_SPECIAL, '\\$&') : s);
}

export function escapeKey(s: string, what = 'tag or field name'): string {
  const hit = keyCache.get(s);
  if (hit !== undefined) return hit;
  checkNoControl(s, what);
  if (s.length === 0) throw new ThingwireError('invalid_value', `${what} is empty`);
  return remember(keyCache, s, NEEDS_KEY_ESCAPE.test(s) ? s.replace(KEY_SPECIAL, '\\$&') : s);
}

function escapeTagValue(v: string, k: string): string {
  const hit = tagValueCache.get(v);
  if (hit !== undefined) return hit;
  checkNoControl(v, `tag ${JSON.stringify(k)} value`);
  return remember(tagValueCache, v, NEEDS_KEY_ESCAPE.test(v) ? v.replace(KEY_SPECIAL, '\\$&') : v);
}

export function escapeString(s: string): string {
  return NEEDS_STRING_ESCAPE.test(s) ? `"${s.replace(STRING_SPECIAL, '\\$&')}"` : `"${s}"`;
}

/** Throws what encodeFieldValue would throw for the value, without making its text. */
function checkFieldValue(v: FieldValue, key: string): void {
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) throw new ThingwireError('invalid_value', `field ${JSON.stringify(key)} is ${v}; line protocol has no NaN or infinity`);
      return;
    case 'bigint':
    case 'boolean':
    case 'string':
      return;
    default:
      throw new ThingwireError('invalid_value', `field ${JSON.stringify(key)} has unsupported type ${typeof v}`);
  }
}

export function encodeFieldValue(v: FieldValue, key: string): string {
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) throw new ThingwireError('invalid_value', `field ${JSON.stringify(key)} is ${v}; line protocol has no NaN or infinity`);
      return String(v);
    case 'bigint':
      return `${v}i`;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return escapeString(v);
    default:
      throw new ThingwireError('invalid_value', `field ${JSON.stringify(key)} has unsupported type ${typeof v}`);
  }
}

/**
 * The tag keys of the point being encoded, sorted, in an array kept between calls: Object.keys and sort() each
 * allocated an array a point (sort() a working copy), 4 % of all the runtime allocated at 2,000 readings/s.
 * encodePoint calls nothing that could call it back, so one array serves.
 */
const tagKeys: string[] = [];
const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The object's own enumerable keys, sorted as sort() does (by UTF-16 code units), in `tagKeys`, its length set to
 * their number (so the keys of an earlier point with more tags are not held).
 */
function sortedTagKeys(o: Record<string, unknown>): readonly string[] {
  const keys = tagKeys;
  let n = 0;
  for (const k in o) if (hasOwn.call(o, k)) keys[n++] = k;
  keys.length = n;
  if (n > 32) return keys.sort(); // not what points have: no quadratic insertion sort
  for (let i = 1; i < n; i++) {
    const k = keys[i];
    let j = i - 1;
    while (j >= 0 && keys[j] > k) {
      keys[j + 1] = keys[j];
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/** Encodes one point as a line (no trailing newline), tags sorted by key, time in ms. */
export function encodePoint(p: Point): string {
  let line = escapeMeasurement(p.measurement);
  for (const k of sortedTagKeys(p.tags)) {
    const v = p.tags[k];
    if (v === undefined || v === '') continue;
    line += `,${escapeKey(k, 'tag name')}=${escapeTagValue(v, k)}`;
  }
  let sep = ' ';
  for (const k in p.fields) {
    const v = p.fields[k];
    if (v === undefined || v === null) continue;
    line += `${sep}${escapeKey(k, 'field name')}=${encodeFieldValue(v, k)}`;
    sep = ',';
  }
  if (sep === ' ') throw new ThingwireError('no_metrics', `point for ${JSON.stringify(p.measurement)} has no fields`);
  if (!Number.isFinite(p.ts)) throw new ThingwireError('invalid_ts', `point timestamp ${p.ts} is not a number`);
  return flatten(`${line} ${msString(p.ts)}`);
}

/**
 * Throws exactly what encodePoint would throw for the point (the same checks in the same order), without making
 * its line: the embedded store takes checked points as they are and makes a line only when one is needed (the
 * spool, a refused batch). The escaped names are looked up in (and added to) the same caches, so checking a point
 * of known names costs a few Map lookups. test/unit/line-protocol.test.ts holds the two to the same answers.
 */
export function checkPoint(p: Point): void {
  checkSeries(p);
  checkFieldsAndTime(p);
}

/** checkPoint's measurement and tags part. */
function checkSeries(p: Point): void {
  escapeMeasurement(p.measurement);
  const tags = p.tags;
  for (const k of sortedTagKeys(tags)) {
    const v = tags[k];
    if (v === undefined || v === '') continue;
    escapeKey(k, 'tag name');
    escapeTagValue(v, k);
  }
}

/** checkPoint's fields and timestamp part. */
function checkFieldsAndTime(p: Point): void {
  let any = false;
  for (const k in p.fields) {
    const v = p.fields[k];
    if (v === undefined || v === null) continue;
    escapeKey(k, 'field name');
    checkFieldValue(v, k);
    any = true;
  }
  if (!any) throw new ThingwireError('no_metrics', `point for ${JSON.stringify(p.measurement)} has no fields`);
  if (!Number.isFinite(p.ts)) throw new ThingwireError('invalid_ts', `point timestamp ${p.ts} is not a number`);
}

/**
 * The same string as one flat sequence of characters. V8 keeps `a + b` of longer strings as a rope (a
 * ConsString node over both halves), so a line built piece by piece is a tree of dozens of heap objects: a
 * 400-character rollup line took 2.3 KB of heap instead of 450 bytes. The writer keeps lines for up to its
 * flush interval, so every young-generation GC in that time copied each node of each rope: at 2,000 readings/s
 * flat lines cut the runtime's time in scavenges of 3 ms or more by a third. Reading a character
 * flattens a rope in place (and the comparison keeps an optimising compiler from dropping the read).
 */
export function flatten(s: string): string {
  return s.length === 0 || s.charCodeAt(0) >= 0 ? s : s;
}

const PAD = ['', '0', '00', '000', '0000', '00000'];

/**
 * An epoch-ms integer as text. Numbers past 2^31 take V8's slow double-to-string path (about
 * 200 ns); two small integers joined take about 25 ns. Same output as String(Math.trunc(ts)).
 */
export function msString(ts: number): string {
  const t = Math.trunc(ts);
  if (t >= 1e6 && t < 1e15) {
    const hi = Math.floor(t / 1e6);
    const lo = `${t - hi * 1e6}`;
    return `${hi}${PAD[6 - lo.length]}${lo}`;
  }
  return `${t}`;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * Splits line protocol text into lines, keeping newlines that sit inside quoted string field values.
 * Blank lines and `#` comments are skipped.
 */
export function splitLines(text: string): string[] {
  const out: string[] = [];
  if (text.indexOf('"') < 0) {
    // Fast path: no string fields, so every newline ends a line.
    for (const l of text.split('\n')) if (l.length > 0 && l[0] !== '#') out.push(l);
    return out;
  }
  let start = 0;
  let inQuote = false;
  let fieldSection = false;
  // Index of the last unescaped "=": a quote opens a string only right after one (field names may hold quotes).
  let eqAt = -2;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 92 /* \ */) {
      i++;
      continue;
    }
    if (inQuote) {
      if (c === 34 /* " */) inQuote = false;
      continue;
    }
    if (c === 32 /* space */) fieldSection = true;
    else if (c === 61 /* = */) eqAt = i;
    else if (c === 34 /* " */ && fieldSection && eqAt === i - 1) inQuote = true;
    else if (c === 10 /* \n */) {
      const l = text.slice(start, i);
      if (l.length > 0 && l[0] !== '#') out.push(l);
      start = i + 1;
      fieldSection = false;
    }
  }
  const last = text.slice(start);
  if (last.length > 0 && last[0] !== '#') out.push(last);
  return out;
}

/**
 * Sets o[k] as plain data. A key named __proto__ would otherwise set the prototype; it is
 * defined as an own property instead. (Null-prototype objects would do it too, but V8 keeps
 * them in slow dictionary mode: parseLine was three times slower with them.)
 */
function setData<T>(o: Record<string, T>, k: string, v: T): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

const SP = 1;
const CM = 2;
const EQ = 4;
/** The bit of space, comma or equals sign; 0 for any other character. */
function bit(c: number): number {
  return c === 32 ? SP : c === 44 ? CM : c === 61 ? EQ : 0;
}

/** Parses one line (ms timestamps) back into a Point; throws ThingwireError on malformed input. */
export function parseLine(line: string): Point {
  let i = 0;
  const n = line.length;
  const fail = (why: string): never => {
    throw new ThingwireError('not_a_reading', `line protocol: ${why} in ${JSON.stringify(line.slice(0, 80))}`);
  };

  // Reads up to (not including) one of the stop characters. A backslash escapes only the
  // characters that need it there (as InfluxDB reads it); before anything else it is literal.
  // Stop and escapable sets as bit masks over the three characters involved: space, comma, equals.
  const readToken = (stops: number, escapable: number): string => {
    let s = '';
    let from = i;
    while (i < n) {
      const c = line.charCodeAt(i);
      if (c === 92 /* \\ */ && i + 1 < n && (bit(line.charCodeAt(i + 1)) & escapable) !== 0) {
        s += line.slice(from, i);
        s += line[i + 1];
        i += 2;
        from = i;
        continue;
      }
      if ((bit(c) & stops) !== 0) break;
      i++;
    }
    return s === '' ? line.slice(from, i) : s + line.slice(from, i);
  };

  const measurement = readToken(SP | CM, SP | CM);
  if (measurement === '') fail('no measurement');
  const tags: Record<string, string> = {};
  while (line[i] === ',') {
    i++;
    const k = readToken(SP | CM | EQ, SP | CM | EQ);
    if (line[i] !== '=') fail('tag without "="');
    i++;
    setData(tags, k, readToken(SP | CM, SP | CM | EQ));
  }
  if (line[i] !== ' ') fail('no fields');
  i++;
  const fields: Record<string, FieldValue> = {};
  for (;;) {
    const k = readToken(SP | CM | EQ, SP | CM | EQ);
    if (line[i] !== '=') fail('field without "="');
    i++;
    if (line[i] === '"') {
      i++;
      let s = '';
      let from = i;
      while (i < n && line[i] !== '"') {
        if (line[i] === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          s += line.slice(from, i) + line[i + 1];
          i += 2;
          from = i;
        } else i++;
      }
      if (i >= n) fail('unterminated string');
      setData(fields, k, s + line.slice(from, i));
      i++;
    } else {
      const start = i;
      while (i < n && line[i] !== ',' && line[i] !== ' ') i++;
      const raw = line.slice(start, i);
      if (raw === '') fail(`field ${JSON.stringify(k)} without a value`);
      const last = raw[raw.length - 1];
      if (last === 'i' && /^-?\d+i$/.test(raw)) setData(fields, k, BigInt(raw.slice(0, -1)));
      else if (raw === 't' || raw === 'T' || raw === 'true' || raw === 'True' || raw === 'TRUE') setData(fields, k, true);
      else if (raw === 'f' || raw === 'F' || raw === 'false' || raw === 'False' || raw === 'FALSE') setData(fields, k, false);
      else {
        const num = Number(raw);
        if (!Number.isFinite(num)) fail(`field ${JSON.stringify(k)} has a bad value ${JSON.stringify(raw)}`);
        setData(fields, k, num);
      }
    }
    if (line[i] === ',') {
      i++;
      continue;
    }
    break;
  }
  let ts = NaN;
  if (line[i] === ' ') {
    i++;
    ts = Number(line.slice(i).trim());
    if (!Number.isInteger(ts)) fail('bad timestamp');
  } else if (i < n) fail('unexpected characters after the fields');
  return { measurement, tags, fields, ts };
}

/** Encodes points into one batch text; points that cannot be encoded are returned as rejects. */
/**
 * Checks points as encodeBatch would encode them (checkPoint): the points it would encode (the same array when
 * none is refused) and the refused ones with their index in `points`.
 */
export function checkBatch(points: readonly Point[]): { points: readonly Point[]; rejects: Array<{ index: number; error: ThingwireError }> } {
  let good: Point[] | undefined;
  const rejects: Array<{ index: number; error: ThingwireError }> = [];
  // The points of a batch of readings share their device's tags object (readingToPoint): a series checked once is
  // not checked again for the points after it (its sorted tag keys and their lookups were ~2 % of the main thread
  // at 190,000 readings/s).
  let okTags: Point['tags'] | null = null;
  let okMeasurement = '';
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    try {
      if (p.tags !== okTags || p.measurement !== okMeasurement) {
        checkSeries(p);
        okTags = p.tags;
        okMeasurement = p.measurement;
      }
      checkFieldsAndTime(p);
      good?.push(p);
    } catch (e) {
      if (!(e instanceof ThingwireError)) throw e;
      rejects.push({ index: i, error: e });
      good ??= points.slice(0, i);
    }
  }
  return { points: good ?? points, rejects };
}

export function encodeBatch(points: readonly Point[]): { lines: string[]; rejects: Array<{ index: number; error: ThingwireError }> } {
  const lines: string[] = [];
  const rejects: Array<{ index: number; error: ThingwireError }> = [];
  for (let i = 0; i < points.length; i++) {
    try {
      lines.push(encodePoint(points[i]));
    } catch (e) {
      if (e instanceof ThingwireError) rejects.push({ index: i, error: e });
      else throw e;
    }
  }
  return { lines, rejects };
}
