/**
 * How a batch of points travels to the embedded store's worker thread (embedded-remote.ts sends, embedded-thread.ts
 * receives). Pure functions, no worker here: tested alone (test/unit/store-thread-wire.test.ts).
 *
 * Why packed: a structured clone copies every point object, its tags object and its fields one property at a time on
 * the sending thread, which is the thread the store was moved off. Packed, the strings of a batch are sent once each
 * (`strs`), numbers go in typed arrays that are transferred (not copied), and the worker makes the points again.
 *
 * Layout, per point in order, in `u` (u32):
 *   series      the point's series number in this message; when it is a new one (the next number), it is followed
 *               by measurement (an index into strs), tag count, then key and value of each tag (indexes into strs);
 *   fields      the number of fields, then per field its name (index into strs), its kind and a payload:
 *               kind 0 float (payload 0, the value is the next f64), 1 integer (payload: index into `big`),
 *               2 boolean (payload 0 or 1), 3 string (payload: index into strs).
 * and in `f` (f64): the point's ts, then its float fields' values in order.
 * Points sharing one tags object and measurement (readingToPoint gives a batch's points of one device one tags
 * object) share one series number, wherever they are in the message, and the worker gives them one tags object again
 * (as the embedded store likes).
 * Fields without a value (undefined, null) are left out, as encodePoint leaves them out.
 */
import type { Point } from './types';

export interface PackedPoints {
  /** Points in the message. */
  n: number;
  strs: string[];
  /** u32 words used in `u`, f64 values used in `f`. */
  nu: number;
  nf: number;
  u: Uint32Array;
  f: Float64Array;
  /** Integer field values (bigint), when there are any. */
  big?: bigint[];
}

/** A field's kind in `u` (see the layout above). */
export const PACKED_FLOAT = 0;
export const PACKED_INT = 1;
export const PACKED_BOOL = 2;
export const PACKED_STR = 3;

/**
 * Packs points[from..to) for the worker (all of them by default); the arrays' buffers are the ones to transfer. A
 * message is whole on its own (its strings and series numbers start afresh), so a batch may go as several.
 */
export function packPoints(all: readonly Point[], from = 0, to = all.length): PackedPoints {
  const points = from === 0 && to === all.length ? all : all.slice(from, to);
  const n = points.length;
  const strs: string[] = [];
  const ids = new Map<string, number>();
  const str = (s: string): number => {
    let i = ids.get(s);
    if (i === undefined) {
      i = strs.length;
      strs.push(s);
      ids.set(s, i);
    }
    return i;
  };
  // Sized for points like the first (one series each, its field count): a batch's points are mostly alike, and
  // growing (a copy) cost more than packing when the guess was short.
  let k0 = 0;
  if (n > 0) for (const _ in points[0].fields) k0++;
  let u: Uint32Array = new Uint32Array(64 + n * (2 + 3 * k0));
  let f: Float64Array = new Float64Array(16 + n * (1 + k0));
  let nu = 0;
  let nf = 0;
  let big: bigint[] | undefined;
  let series = 0;
  let lastTags: Record<string, string> | undefined;
  let lastMeasurement = '';
  let lastSeries = 0;
  /** The series of each tags object (the last one made with it) and each series' measurement. */
  const byTags = new Map<Record<string, string>, number>();
  const measurements: string[] = [];
  // The field names' string numbers by position in the point before: a batch's points mostly have the same names in
  // the same order (and, from JSON.parse, the same string objects), so a comparison usually stands in for str()'s
  // Map lookup.
  const nameAt: string[] = [];
  const nameId: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = points[i];
    const tags = p.tags;
    if (nu + 4 > u.length) u = growU(u, nu + 4);
    if (nf + 1 > f.length) f = growF(f, nf + 1);
    let known = tags === lastTags && p.measurement === lastMeasurement && i > 0;
    if (!known) {
      // A tags object met before in this message (points of devices interleaved), under the same measurement.
      const sn = byTags.get(tags);
      known = sn !== undefined && measurements[sn] === p.measurement;
      lastSeries = known ? sn! : series;
      lastTags = tags;
      lastMeasurement = p.measurement;
    }
    if (known) u[nu++] = lastSeries;
    else {
      series++;
      byTags.set(tags, lastSeries);
      measurements.push(p.measurement);
      u[nu++] = lastSeries;
      u[nu++] = str(p.measurement);
      const at = nu++;
      let nt = 0;
      for (const k in tags) {
        if (nu + 2 > u.length) u = growU(u, nu + 2);
        u[nu++] = str(k);
        u[nu++] = str(tags[k]);
        nt++;
      }
      u[at] = nt;
    }
    f[nf++] = p.ts;
    if (nu + 1 > u.length) u = growU(u, nu + 1);
    const at = nu++;
    let nfields = 0;
    const fields = p.fields;
    for (const k in fields) {
      const v = fields[k];
      if (v === undefined || v === null) continue;
      if (nu + 3 > u.length) u = growU(u, nu + 3);
      if (nf + 1 > f.length) f = growF(f, nf + 1);
      if (nameAt[nfields] === k) u[nu++] = nameId[nfields];
      else {
        const id = str(k);
        nameAt[nfields] = k;
        nameId[nfields] = id;
        u[nu++] = id;
      }
      nfields++;
      switch (typeof v) {
        case 'number':
          u[nu++] = PACKED_FLOAT;
          u[nu++] = 0;
          f[nf++] = v;
          break;
        case 'bigint':
          big ??= [];
          u[nu++] = PACKED_INT;
          u[nu++] = big.length;
          big.push(v);
          break;
        case 'boolean':
          u[nu++] = PACKED_BOOL;
          u[nu++] = v ? 1 : 0;
          break;
        default:
          u[nu++] = PACKED_STR;
          u[nu++] = str(String(v));
      }
    }
    u[at] = nfields;
  }
  const out: PackedPoints = { n, strs, nu, nf, u, f };
  if (big !== undefined) out.big = big;
  return out;
}

function capFor(have: number, need: number): number {
  let cap = have * 2;
  while (cap < need) cap *= 2;
  return cap;
}

function growU(a: Uint32Array, need: number): Uint32Array {
  const b = new Uint32Array(capFor(a.length, need));
  b.set(a);
  return b;
}

function growF(a: Float64Array, need: number): Float64Array {
  const b = new Float64Array(capFor(a.length, need));
  b.set(a);
  return b;
}
