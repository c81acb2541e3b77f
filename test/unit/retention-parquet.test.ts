/**
 * Warm-tier partition files (nodes/lib/retention/parquet.ts) against a real in-memory DuckDB: the content
 * checksum as the retention design defines it, what goes into a Parquet file comes back out the same
 * (every value type, 64-bit extremes, hostile strings and paths), and verification catches damage.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { ThingwireError } from '../../nodes/lib/errors';
import { Checksum, readParquet, rowHash, verifyParquet, writeParquet, type ExportRow, type FileStats } from '../../nodes/lib/retention/parquet';

const T0 = Date.UTC(2026, 2, 1);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const HOSTILE = ['', "it's", 'say "hi"', 'back\\slash', 'tab\there', 'new\nline', 'nul\0byte', 'ünïcödé', '温度', '🌡️ emoji', "'); DROP TABLE x; --", '__proto__', ' '];

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "thingwire-parquet-'q\"-"));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function row(partial: Partial<ExportRow> & Pick<ExportRow, 'value'>): ExportRow {
  return { measurement: 'telemetry', device: 'dev-1', tags: {}, field: 'temp', ts: T0, ...partial };
}

function tagsOf(pairs: Array<[string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of pairs) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

/** Rows of every type and many hostile names, each key distinct. */
function sampleRows(): ExportRow[] {
  const rows: ExportRow[] = [];
  let ts = T0;
  const values: ExportRow['value'][] = [21.5, -0.001, 1e308, -1e-308, 0, 42n, INT64_MIN, INT64_MAX, 0n, -1n, true, false, '', 'text', ...HOSTILE];
  values.forEach((value, i) => rows.push(row({ device: `dev-${i % 3}`, field: `f${i % 4}`, ts: ts++, value })));
  HOSTILE.forEach((h, i) => {
    rows.push(row({ measurement: h === '' ? 'm' : h, device: h, field: h === '' ? 'f' : h, tags: h === '' ? {} : tagsOf([[h, h]]), ts: T0 + 1000 + i, value: h }));
    rows.push(row({ tags: tagsOf([['level', '1m'], ['metric', h === '' ? 'x' : h]]), field: 'mean', ts: T0 + 2000 + i, value: i + 0.25 }));
  });
  rows.push(row({ ts: -86_400_000, value: 1.5 })); // before the epoch
  rows.push(row({ ts: 2 ** 52, value: 2.5 }));
  return rows;
}

/** Orders rows as the design says the file holds them: measurement, device, canonical tags, field, ts (bytes). */
function sortedAsFile(rows: ExportRow[]): ExportRow[] {
  const canon = (t: Record<string, string>): string => JSON.stringify(Object.keys(t).sort().map((k) => [k, t[k]]));
  const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');
  return [...rows].sort(
    (a, b) =>
      Buffer.compare(bytes(a.measurement), bytes(b.measurement)) ||
      Buffer.compare(bytes(a.device), bytes(b.device)) ||
      Buffer.compare(bytes(canon(a.tags)), bytes(canon(b.tags))) ||
      Buffer.compare(bytes(a.field), bytes(b.field)) ||
      a.ts - b.ts,
  );
}

async function readAll(files: string[], range?: { start: number; end: number }): Promise<{ rows: ExportRow[]; chunks: number[]; total: number }> {
  const rows: ExportRow[] = [];
  const chunks: number[] = [];
  const total = await readParquet(
    files,
    (chunk) => {
      chunks.push(chunk.length);
      rows.push(...chunk);
    },
    range,
  );
  return { rows, chunks, total };
}

function write(file: string, rows: ExportRow[], opts?: { compressionLevel?: number }): Promise<FileStats> {
  return writeParquet(file, (sink) => sink(rows), opts);
}

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.includes('.tmp-'));
}

describe('rowHash and Checksum', () => {
  test('rowHash is the first 8 bytes of the sha1 of the canonical text', () => {
    const r = row({ tags: { z: '1', a: '2' }, value: 42n });
    const text = ['telemetry', 'dev-1', '[["a","2"],["z","1"]]', 'temp', String(T0), 'i', '42'].join('\0');
    const want = createHash('sha1').update(text, 'utf8').digest().readBigUInt64BE(0);
    expect(rowHash(r)).toBe(want);
    const f = row({ value: -0 });
    expect(rowHash(f)).toBe(createHash('sha1').update(['telemetry', 'dev-1', '[]', 'temp', String(T0), 'f', '0'].join('\0'), 'utf8').digest().readBigUInt64BE(0));
  });

  test('the checksum is the sum of the row hashes mod 2^64, 16 hex digits, independent of order', () => {
    const rows = sampleRows();
    const a = new Checksum();
    for (const r of rows) a.add(r);
    const b = new Checksum();
    for (const r of [...rows].reverse()) b.add(r);
    expect(a.hex()).toBe(b.hex());
    expect(a.hex()).toMatch(/^[0-9a-f]{16}$/);
    const sum = rows.reduce((s, r) => s + rowHash(r), 0n) % 2n ** 64n;
    expect(a.hex()).toBe(sum.toString(16).padStart(16, '0'));
    expect(a.rows).toBe(rows.length);
    expect(a.minTs).toBe(-86_400_000);
    expect(a.maxTs).toBe(2 ** 52);
    const empty = new Checksum();
    expect(empty.hex()).toBe('0000000000000000');
    expect([empty.rows, empty.minTs, empty.maxTs]).toEqual([0, 0, 0]);
  });

  test('the value type, every key part and the value change the hash; tag order and -0 do not', () => {
    const base = row({ value: 1 });
    const variants: ExportRow[] = [
      row({ value: 1n }),
      row({ value: '1' }),
      row({ value: true }),
      row({ value: 'true' }),
      row({ value: 1.5 }),
      row({ value: 1, ts: T0 + 1 }),
      row({ value: 1, field: 'temp2' }),
      row({ value: 1, device: '' }),
      row({ value: 1, measurement: 'other' }),
      row({ value: 1, tags: { level: '1m' } }),
    ];
    const hashes = new Set([base, ...variants].map(rowHash));
    expect(hashes.size).toBe(variants.length + 1);
    expect(rowHash(row({ value: 0 }))).toBe(rowHash(row({ value: -0 })));
    expect(rowHash(row({ value: 1, tags: { a: '1', b: '2' } }))).toBe(rowHash(row({ value: 1, tags: { b: '2', a: '1' } })));
  });

  test('hostile strings hash without error, each differently', () => {
    const hashes = HOSTILE.map((h) => rowHash(row({ measurement: h, device: h, field: h, tags: tagsOf([[`k${h}`, h]]), value: h })));
    expect(new Set(hashes).size).toBe(HOSTILE.length);
  });

  test.each([
    ['NaN', row({ value: NaN }), /NaN/],
    ['Infinity', row({ value: Infinity }), /Infinity/],
    ['-Infinity', row({ value: -Infinity }), /Infinity/],
    ['an integer past 64 bits', row({ value: INT64_MAX + 1n }), /64-bit/],
    ['a device key in tags', row({ value: 1, tags: { device: 'd' } }), /device/],
    ['a fractional ts', row({ value: 1, ts: 1.5 }), /ts/],
  ])('refuses %s', (_what, r, message) => {
    expect(() => rowHash(r)).toThrow(ThingwireError);
    expect(() => rowHash(r)).toThrow(message);
  });
});

describe('writeParquet and readParquet', () => {
  test('every type, 64-bit extremes and hostile strings come back the same, sorted, through a path with quotes', async () => {
    const file = path.join(tmp, "day 'one' \"x\".parquet");
    const rows = sampleRows();
    const shuffled = [...rows].reverse();
    const stats = await write(file, shuffled);
    const sum = new Checksum();
    for (const r of rows) sum.add(r);
    const bytes = fs.readFileSync(file);
    expect(stats).toEqual({
      rows: rows.length,
      minTs: -86_400_000,
      maxTs: 2 ** 52,
      checksum: sum.hex(),
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: bytes.length,
    });
    const back = await readAll([file]);
    expect(back.total).toBe(rows.length);
    expect(back.rows).toEqual(sortedAsFile(rows));
    // Integers stay bigints, floats numbers (toEqual would not tell 1n from 1).
    expect(back.rows.filter((r) => typeof r.value === 'bigint').map((r) => r.value)).toEqual(expect.arrayContaining([INT64_MIN, INT64_MAX, 42n, 0n, -1n]));
    expect(back.rows.filter((r) => typeof r.value === 'bigint')).toHaveLength(5);
    const proto = back.rows.find((r) => r.measurement === '__proto__')!;
    expect(Object.keys(proto.tags)).toEqual(['__proto__']);
    expect(leftovers(tmp)).toEqual([]);
  });

  test('the file has the design schema, in order, ZSTD-compressed at the level asked for', async () => {
    const file = path.join(tmp, 'schema.parquet');
    await write(file, sampleRows(), { compressionLevel: 22 });
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      const d = await conn.runAndReadAll('DESCRIBE SELECT * FROM read_parquet($1)', [file]);
      expect(d.getRows().map((r) => [r[0], r[1]])).toEqual([
        ['measurement', 'VARCHAR'],
        ['device', 'VARCHAR'],
        ['tags', 'MAP(VARCHAR, VARCHAR)'],
        ['field', 'VARCHAR'],
        ['ts', 'BIGINT'],
        ['v_float', 'DOUBLE'],
        ['v_int', 'BIGINT'],
        ['v_bool', 'BOOLEAN'],
        ['v_str', 'VARCHAR'],
      ]);
      const m = await conn.runAndReadAll('SELECT DISTINCT compression FROM parquet_metadata($1)', [file]);
      expect(m.getRows()).toEqual([['ZSTD']]);
      const one = await conn.runAndReadAll(
        'SELECT count(*) FROM read_parquet($1) WHERE (v_float IS NOT NULL)::INT + (v_int IS NOT NULL)::INT + (v_bool IS NOT NULL)::INT + (v_str IS NOT NULL)::INT <> 1',
        [file],
      );
      expect(one.getRows()).toEqual([[0n]]);
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });

  test('rows handed over in many calls are all written; reads come in chunks; several files read in order', async () => {
    const a = path.join(tmp, 'many-a.parquet');
    const b = path.join(tmp, 'many-b.parquet');
    const make = (from: number, n: number): ExportRow[] => Array.from({ length: n }, (_, i) => row({ device: `d${(from + i) % 7}`, ts: T0 + from + i, value: from + i }));
    const statsA = await writeParquet(a, async (sink) => {
      await sink(make(0, 3000));
      await sink([]);
      await sink(make(3000, 2500));
      await sink(make(5500, 1));
    });
    expect(statsA.rows).toBe(5501);
    const statsB = await write(b, make(10_000, 10));
    const back = await readAll([a, b]);
    expect(back.total).toBe(5511);
    expect(back.chunks.every((n) => n > 0 && n <= 2048)).toBe(true);
    expect(back.chunks.length).toBeGreaterThan(2);
    const sum = new Checksum();
    for (const r of back.rows) sum.add(r);
    const sumA = new Checksum();
    for (const r of back.rows.slice(0, 5501)) sumA.add(r);
    expect(sumA.hex()).toBe(statsA.checksum);
    expect(back.rows.slice(5501)).toEqual(sortedAsFile(make(10_000, 10)));
    expect(statsB.rows).toBe(10);
    expect(sum.rows).toBe(5511);
  });

  test('range keeps start <= ts < end', async () => {
    const file = path.join(tmp, 'range.parquet');
    await write(file, Array.from({ length: 100 }, (_, i) => row({ ts: T0 + i * 1000, value: BigInt(i) })));
    const back = await readAll([file], { start: T0 + 10_000, end: T0 + 20_000 });
    expect(back.total).toBe(10);
    expect(back.rows.map((r) => r.value)).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(10 + i)));
    expect((await readAll([file], { start: T0 + 1_000_000, end: T0 + 2_000_000 })).total).toBe(0);
  });

  test('an empty partition writes a readable empty file', async () => {
    const file = path.join(tmp, 'empty.parquet');
    const stats = await writeParquet(file, async () => undefined);
    expect(stats).toMatchObject({ rows: 0, minTs: 0, maxTs: 0, checksum: '0000000000000000' });
    expect((await readAll([file])).total).toBe(0);
    expect(await verifyParquet(file, stats)).toEqual({ ok: true, problems: [] });
  });

  test('a bad row fails the write and leaves neither the file nor a temporary file; a previous file stays', async () => {
    const dir = path.join(tmp, 'bad');
    const file = path.join(dir, 'p.parquet');
    const first = await write(file, [row({ value: 1 })]);
    await expect(write(file, [row({ value: 2 }), row({ value: NaN, ts: T0 + 1 })])).rejects.toThrow(ThingwireError);
    expect(fs.readdirSync(dir)).toEqual(['p.parquet']);
    expect((await verifyParquet(file, first)).ok).toBe(true);
    const boom = new Error('export failed');
    await expect(writeParquet(file, () => Promise.reject(boom))).rejects.toBe(boom);
    expect(fs.readdirSync(dir)).toEqual(['p.parquet']);
  });

  test('writing over a file replaces it', async () => {
    const file = path.join(tmp, 'replace.parquet');
    await write(file, [row({ value: 1 }), row({ value: 2, ts: T0 + 1 })]);
    const second = await write(file, [row({ value: 'x' })]);
    expect((await readAll([file])).rows).toEqual([row({ value: 'x' })]);
    expect(second.rows).toBe(1);
  });

  test('refuses a bad compression level', async () => {
    await expect(write(path.join(tmp, 'lvl.parquet'), [row({ value: 1 })], { compressionLevel: 23 })).rejects.toThrow(/compressionLevel/);
  });
});

describe('verifyParquet', () => {
  let file: string;
  let stats: FileStats;
  beforeAll(async () => {
    file = path.join(tmp, 'verify.parquet');
    stats = await write(file, sampleRows());
  });

  test('a good file verifies', async () => {
    expect(await verifyParquet(file, stats)).toEqual({ ok: true, problems: [] });
  });

  test('a wrong expected checksum, row count or extent is reported', async () => {
    const wrong = { ...stats, checksum: (BigInt(`0x${stats.checksum}`) ^ 1n).toString(16).padStart(16, '0'), rows: stats.rows + 1, maxTs: stats.maxTs + 1 };
    const r = await verifyParquet(file, wrong);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      `holds ${stats.rows} rows, expected ${stats.rows + 1}`,
      `content checksum is ${stats.checksum}, expected ${wrong.checksum}`,
      `time extent is ${stats.minTs}..${stats.maxTs}, expected ${stats.minTs}..${stats.maxTs + 1}`,
    ]);
  });

  test('a flipped byte is caught by the sha256', async () => {
    const copy = path.join(tmp, 'verify-flipped.parquet');
    const bytes = fs.readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    fs.writeFileSync(copy, bytes);
    const r = await verifyParquet(copy, stats);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/^sha256 of the file is [0-9a-f]{64}, expected /);
  });

  test('a missing file is a problem, not an exception', async () => {
    const r = await verifyParquet(path.join(tmp, 'nope.parquet'), stats);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.stringMatching(/^cannot read the file: .*ENOENT/)]);
  });
});
