/**
 * Retention tiering survives kill -9 (issue 9, item 3): a child process (test/support/retention-child.ts,
 * built into dist) runs retention over a real DuckDB store file and is killed with SIGKILL at several
 * moments of its work, then started again, until a run finishes; afterwards the store, the manifest and
 * the files must be exactly as after an uninterrupted run: every moved day gone from hot and readable
 * through the tiers as before, restorable to the very same rows, and no file left that the manifest
 * does not name. `npm test` builds dist first.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePoint } from '../../nodes/lib/line-protocol';
import { DAY_MS } from '../../nodes/lib/retention/manifest';
import { parsePolicy } from '../../nodes/lib/retention/policy';
import { Retention } from '../../nodes/lib/retention/run';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';
import type { ExportRow, Point, QueryResult, RangeQuery } from '../../nodes/lib/store/types';
import { ROOT } from '../support/services';

jest.setTimeout(240_000);

const CHILD = path.join(ROOT, 'dist', 'test', 'support', 'retention-child.js');
const NOW = Date.UTC(2026, 10, 20, 9);
const TODAY = Date.UTC(2026, 10, 20);
const MEAS = 'telemetry';
const POLICY = JSON.stringify({ rules: [{ name: 'raw', measurement: MEAS, hotDays: 3, warmDays: 10, coldDays: null }] });
const DAYS = 26;

function points(): Point[] {
  const out: Point[] = [];
  for (let d = 0; d < DAYS; d++) {
    for (let m = 0; m < 24 * 60; m += 10) {
      const ts = TODAY - d * DAY_MS + m * 60_000 + 7;
      for (const device of ['pump-1', 'pump 2', 'fan,3']) {
        out.push({ measurement: MEAS, tags: { device, site: 'north' }, fields: { temperature: 20 + Math.sin(ts / 3.6e6), vibration: (ts % 997) / 100, cycles: BigInt(m), running: m % 20 === 0 }, ts });
      }
    }
  }
  return out;
}

async function rowsOf(b: EmbeddedBackend): Promise<string[]> {
  const rows: ExportRow[] = [];
  await b.exportRange({ measurement: MEAS, start: 0, end: TODAY + DAY_MS }, (r) => {
    rows.push(...r);
  });
  return rows.map((r) => JSON.stringify([r.device, r.tags, r.field, r.ts, typeof r.value, String(r.value)])).sort();
}

const QUERIES: RangeQuery[] = [
  { measurement: MEAS, fields: ['temperature', 'cycles', 'running'], start: TODAY - 30 * DAY_MS, end: TODAY + DAY_MS },
  { measurement: MEAS, fields: ['vibration'], start: TODAY - 30 * DAY_MS, end: TODAY + DAY_MS, bucketMs: DAY_MS, agg: 'max' },
  { measurement: MEAS, fields: ['temperature'], devices: ['pump 2'], start: TODAY - 30 * DAY_MS, end: TODAY + DAY_MS, bucketMs: 3_600_000, agg: 'mean' },
];

async function answers(q: (x: RangeQuery) => Promise<QueryResult>): Promise<QueryResult[]> {
  const out: QueryResult[] = [];
  for (const x of QUERIES) out.push(await q(x));
  return out.map(rounded);
}

/**
 * Numbers to 12 significant digits: a mean is a floating-point sum whose order DuckDB's parallel
 * aggregation does not fix, so the last bits of the same mean can differ between two runs.
 */
function rounded(r: QueryResult): QueryResult {
  return { series: r.series.map((s) => ({ ...s, points: s.points.map(([t, v]) => [t, typeof v === 'number' ? Number(v.toPrecision(12)) : v] as [number, typeof v]) })) };
}

/**
 * Runs the child; kills it with SIGKILL once it has announced `killAtPhase` phases (undefined: lets it
 * finish; the kill lands a moment later, wherever the child has got to). Resolves with its output and exit.
 */
function child(file: string, root: string, killAtPhase?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string; phases: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CHILD, file, root, String(NOW), POLICY], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let phases = 0;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      phases = (out.match(/^phase /gm) ?? []).length;
      if (killAtPhase !== undefined && phases >= killAtPhase) p.kill('SIGKILL');
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, out, err, phases }));
  });
}

describe('retention killed with SIGKILL mid-run', () => {
  let dir: string;
  beforeAll(() => {
    if (!fs.existsSync(CHILD)) throw new Error(`${CHILD} is missing: run npm run build first (npm test does)`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-retkill-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('resumes after every kill and ends with nothing lost, nothing twice, nothing orphaned', async () => {
    const file = path.join(dir, 'hot.duckdb');
    const root = path.join(dir, 'retention');
    let before: QueryResult[];
    let rows: string[];
    {
      const b = await EmbeddedBackend.open({ path: file });
      const pts = points();
      for (let i = 0; i < pts.length; i += 5000) {
        const c = pts.slice(i, i + 5000);
        await b.write({ lines: c.map(encodePoint).join('\n'), count: c.length });
      }
      before = await answers((q) => b.query(q));
      rows = await rowsOf(b);
      await b.close();
    }
    expect(rows.length).toBe(DAYS * 144 * 3 * 4);

    // Kill at different points of the work (counted in announced phases: a move has 6 or 8).
    const kills = [1, 4, 9, 15, 22, 30, 39];
    let killed = 0;
    for (const n of kills) {
      const r = await child(file, root, n);
      if (r.signal === 'SIGKILL') {
        killed++;
        expect(r.phases).toBeGreaterThanOrEqual(n);
      } else {
        expect(r.err).toBe('');
        expect(r.code).toBe(0);
        break; // finished before the kill came
      }
    }
    expect(killed).toBe(kills.length);
    const last = await child(file, root);
    expect(last.err).toBe('');
    expect(last.code).toBe(0);
    expect(last.out).toMatch(/done\n$/);

    const b = await EmbeddedBackend.open({ path: file });
    const r = await Retention.open({ root, backend: b, policy: parsePolicy(POLICY), now: () => NOW });
    try {
      const entries = r.entries();
      expect(entries.filter((e) => e.pending)).toEqual([]);
      expect(entries.map((e) => e.tier).sort()).toEqual([...Array(DAYS - 4).keys()].map((i) => (i < 10 ? 'warm' : 'cold')).sort());
      for (const e of entries) expect(e.file!.rows).toBe(144 * 3 * 4);
      expect(await b.countRange({ measurement: MEAS, start: 0, end: TODAY - 3 * DAY_MS })).toBe(0);
      expect(await answers((q) => r.query(q, (x) => b.query(x)))).toEqual(before);
      // Only the files the manifest names exist.
      const named = new Set(entries.map((e) => e.file!.path));
      const onDisk: string[] = [];
      const walk = (d: string, rel: string): void => {
        if (!fs.existsSync(d)) return;
        for (const x of fs.readdirSync(d, { withFileTypes: true })) {
          if (x.isDirectory()) walk(path.join(d, x.name), `${rel}/${x.name}`);
          else onDisk.push(`${rel}/${x.name}`.slice(1));
        }
      };
      walk(path.join(root, 'warm'), '/warm');
      walk(path.join(root, 'archive', 'cold'), '/cold');
      expect(onDisk.sort()).toEqual([...named].sort());
      const res = await r.restore({ start: 0, end: TODAY });
      expect(res.errors).toEqual([]);
      expect(await rowsOf(b)).toEqual(rows);
    } finally {
      await r.close();
      await b.close();
    }
  });
});
