/**
 * thread-wire.ts: points packed for the embedded store's worker thread come back as the same points (unpackPoints, the
 * reference decoder in test/support; the store's own reader is tested against the same messages in embedded-thread.test.ts),
 * strings sent once a message, a series' points sharing one tags object, and a message that is not one refused.
 */
import { packPoints } from '../../nodes/lib/store/thread-wire';
import { unpackPoints } from '../support/thread-wire-decode';
import type { FieldValue, Point } from '../../nodes/lib/store/types';

const T0 = Date.UTC(2026, 0, 1);

/** A point as the store reads it: fields without a value left out. */
function stored(p: Point): Point {
  const fields: Record<string, FieldValue> = {};
  for (const k in p.fields) if (p.fields[k] !== undefined && p.fields[k] !== null) fields[k] = p.fields[k];
  return { measurement: p.measurement, tags: { ...p.tags }, fields, ts: p.ts };
}

describe('packPoints / unpackPoints', () => {
  test('every value kind, hostile names and values, fields without a value, fractional and negative times', () => {
    const points: Point[] = [
      { measurement: 'telemetry', tags: { device: 'd1' }, fields: { t: 21.5, n: 42n, ok: true, s: 'text "q" \\ ,= \n', neg: -0, big: 2n ** 63n - 1n, small: -(2n ** 63n) }, ts: T0 + 0.75 },
      { measurement: "m '; DROP TABLE series; --", tags: { 'k ,=': 'v ,= 🔥', device: 'ünï 温度' }, fields: { 'f\\x': 1e308, off: false, gone: undefined as unknown as FieldValue, nul: null as unknown as FieldValue }, ts: -1 },
      { measurement: '', tags: {}, fields: { x: Number.MIN_VALUE, y: NaN, z: -Infinity }, ts: Number.MAX_SAFE_INTEGER },
    ];
    const p = packPoints(points);
    const back = unpackPoints(p);
    expect(back).toHaveLength(3);
    back.forEach((b, i) => expect(b).toEqual(stored(points[i])));
    expect(Object.is(back[0].fields.neg, -0)).toBe(true);
    expect(Object.is(back[2].fields.y, NaN)).toBe(true);
    expect(p.big).toEqual([42n, 2n ** 63n - 1n, -(2n ** 63n)]);
  });

  test('a string is sent once a message, and the points of one tags object share one tags object again', () => {
    const a = { device: 'load-00001', site: 'hall' };
    const b = { device: 'load-00002', site: 'hall' };
    const points: Point[] = [];
    for (let i = 0; i < 50; i++) {
      points.push({ measurement: 'telemetry', tags: a, fields: { seq: i, temperature: 20 + i / 10 }, ts: T0 + i });
      points.push({ measurement: 'telemetry', tags: b, fields: { seq: i, temperature: 30 + i / 10 }, ts: T0 + i });
    }
    // A run of one tags object, then the same object under another measurement: another series.
    points.push({ measurement: 'other', tags: a, fields: { seq: 0 }, ts: T0 });
    const p = packPoints(points);
    expect([...p.strs].sort()).toEqual(['device', 'hall', 'load-00001', 'load-00002', 'other', 'seq', 'site', 'telemetry', 'temperature'].sort());
    const back = unpackPoints(p);
    expect(back.map(stored)).toEqual(points.map(stored));
    expect(back[0].tags).toBe(back[2].tags);
    expect(back[1].tags).toBe(back[3].tags);
    expect(back[0].tags).not.toBe(back[1].tags);
    expect(back[100].tags).not.toBe(back[0].tags);
    expect(back[100].tags).toEqual(back[0].tags);
  });

  test('grows past its first guess of the room a message needs (many tags, many fields)', () => {
    const tags: Record<string, string> = {};
    const fields: Record<string, FieldValue> = {};
    for (let i = 0; i < 300; i++) {
      tags[`tag${i}`] = `value ${i}`;
      fields[`field${i}`] = i % 4 === 0 ? i : i % 4 === 1 ? BigInt(i) : i % 4 === 2 ? i % 8 === 2 : `s${i}`;
    }
    const points: Point[] = [{ measurement: 'wide', tags, fields, ts: T0 }, { measurement: 'wide', tags: { ...tags, device: 'x' }, fields, ts: T0 + 1 }];
    const p = packPoints(points);
    expect(p.nu).toBeGreaterThan(64);
    expect(unpackPoints(p)).toEqual(points.map(stored));
  });

  test('field names that change from point to point: other order, other names, a field without a value before others', () => {
    const tags = { device: 'd1' };
    const points: Point[] = [
      { measurement: 'm', tags, fields: { a: 1, b: 2, c: 3 }, ts: T0 },
      { measurement: 'm', tags, fields: { b: 4, a: 5, c: 6 }, ts: T0 + 1 },
      { measurement: 'm', tags, fields: { a: undefined as unknown as FieldValue, b: 7, c: 8 }, ts: T0 + 2 },
      { measurement: 'm', tags, fields: { a: 9, d: 10 }, ts: T0 + 3 },
      // The same names as texts made anew (other string objects with the same characters).
      { measurement: 'm', tags, fields: { [['a'].join('')]: 11, [String.fromCharCode(98)]: 12 }, ts: T0 + 4 },
      { measurement: 'm', tags, fields: {}, ts: T0 + 5 },
      { measurement: 'm', tags, fields: { c: 13, a: 14, b: 15, d: 16 }, ts: T0 + 6 },
    ];
    const p = packPoints(points);
    expect(unpackPoints(p)).toEqual(points.map(stored));
    expect([...p.strs].sort()).toEqual(['a', 'b', 'c', 'd', 'd1', 'device', 'm']);
  });

  test('an empty batch', () => {
    const p = packPoints([]);
    expect(p.n).toBe(0);
    expect(unpackPoints(p)).toEqual([]);
  });

  test('refuses a message that is not one', () => {
    const points: Point[] = [{ measurement: 'm', tags: { device: 'd' }, fields: { v: 1, s: 'x' }, ts: T0 }];
    const good = packPoints(points);
    expect(() => unpackPoints({ ...good, strs: good.strs.slice(0, 1) })).toThrow(/string \d+ of 1/);
    expect(() => unpackPoints({ ...good, nu: good.nu + 1 })).toThrow(/read \d+ of \d+ words/);
    const u = good.u.slice();
    u[0] = 5;
    expect(() => unpackPoints({ ...good, u })).toThrow('names series 5 before 0');
    const kinds = good.u.slice();
    // The first field's kind: series (1), measurement, tag count, key, value, field count, name, kind.
    kinds[7] = 9;
    expect(() => unpackPoints({ ...good, u: kinds })).toThrow('field kind 9');
  });
});
