/**
 * The reference decoder of thread-wire.ts's layout, for tests: the points a packed message holds, a series' points
 * sharing one tags object. The store itself reads the arrays without making the points (EmbeddedBackend.parsePacked).
 */
import { PACKED_BOOL, PACKED_FLOAT, PACKED_INT, PACKED_STR, type PackedPoints } from '../../nodes/lib/store/thread-wire';
import type { FieldValue, Point } from '../../nodes/lib/store/types';

/** The points packPoints packed (a series' points share one tags object). Throws on a message that is not one. */
export function unpackPoints(p: PackedPoints): Point[] {
  const { u, f, strs } = p;
  const big = p.big ?? [];
  const s = (i: number): string => {
    const v = strs[i];
    if (v === undefined) throw new Error(`packed points: string ${i} of ${strs.length}`);
    return v;
  };
  const series: Array<{ measurement: string; tags: Record<string, string> }> = [];
  const out: Point[] = new Array<Point>(p.n);
  let iu = 0;
  let jf = 0;
  for (let i = 0; i < p.n; i++) {
    const sn = u[iu++];
    let se = series[sn];
    if (se === undefined) {
      if (sn !== series.length) throw new Error(`packed points: point ${i} names series ${sn} before ${series.length}`);
      const measurement = s(u[iu++]);
      const nt = u[iu++];
      const tags: Record<string, string> = {};
      for (let t = 0; t < nt; t++) {
        const k = s(u[iu++]);
        tags[k] = s(u[iu++]);
      }
      se = { measurement, tags };
      series.push(se);
    }
    const ts = f[jf++];
    const nfields = u[iu++];
    const fields: Record<string, FieldValue> = {};
    for (let k = 0; k < nfields; k++) {
      const name = s(u[iu++]);
      const kind = u[iu++];
      const payload = u[iu++];
      switch (kind) {
        case PACKED_FLOAT:
          fields[name] = f[jf++];
          break;
        case PACKED_INT: {
          const b = big[payload];
          if (b === undefined) throw new Error(`packed points: integer ${payload} of ${big.length}`);
          fields[name] = b;
          break;
        }
        case PACKED_BOOL:
          fields[name] = payload === 1;
          break;
        case PACKED_STR:
          fields[name] = s(payload);
          break;
        default:
          throw new Error(`packed points: field kind ${kind}`);
      }
    }
    out[i] = { measurement: se.measurement, tags: se.tags, fields, ts };
  }
  if (iu !== p.nu || jf !== p.nf) throw new Error(`packed points: read ${iu} of ${p.nu} words and ${jf} of ${p.nf} numbers`);
  return out;
}
