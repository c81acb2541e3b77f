/**
 * nodes/lib/retention/manifest.ts: UTC day helpers, partition keys and file paths (hostile rule
 * names cannot escape or collide), and ManifestStore: round trip through the file, atomic writes (a
 * failed or interrupted write leaves the old manifest; open removes the leftovers), a corrupt or
 * invalid manifest refused and left in place, one open per root, serialised updates, bounded history.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StoreError } from '../../nodes/lib/store/types';
import {
  DAY_MS,
  HISTORY_LIMIT,
  ManifestStore,
  coldKey,
  dayOf,
  dayStart,
  isDay,
  partitionKey,
  recordHistory,
  startOfUtcDay,
  warmPath,
  type PartitionEntry,
} from '../../nodes/lib/retention/manifest';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const realFs = require('node:fs') as typeof fs;

let dir: string;
const open: ManifestStore[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-manifest-'));
});
afterEach(async () => {
  jest.restoreAllMocks();
  for (const m of open.splice(0)) await m.close().catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});
async function openStore(root = dir): Promise<ManifestStore> {
  const m = await ManifestStore.open(root);
  open.push(m);
  return m;
}

const SHA = 'ab'.repeat(32);
function entry(rule: string, day: string, extra: Partial<PartitionEntry> = {}): PartitionEntry {
  const start = dayStart(day);
  return {
    rule,
    measurement: 'telemetry',
    day,
    start,
    end: start + DAY_MS,
    tier: 'warm',
    generation: 1,
    file: { path: warmPath(rule, day, 1), rows: 3, minTs: start, maxTs: start + 5, checksum: '0123456789abcdef', sha256: SHA, bytes: 99 },
    history: [{ at: 1, what: 'moved to warm' }],
    ...extra,
  };
}
const put = (m: ManifestStore, e: PartitionEntry, opts?: { commit?: boolean }): Promise<PartitionEntry | undefined> =>
  m.update(partitionKey(e.rule, e.day), () => e, opts);
const onDisk = (): { version: number; partitions: Record<string, PartitionEntry> } => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

describe('days', () => {
  test.each([
    [0, '1970-01-01'],
    [Date.parse('2024-02-29T23:59:59.999Z'), '2024-02-29'],
    [Date.parse('2024-03-01T00:00:00Z'), '2024-03-01'],
    [Date.parse('2026-11-24T10:00:00Z'), '2026-11-24'],
  ])('dayOf(%p) = %s and dayStart inverts it', (ts, day) => {
    expect(dayOf(ts)).toBe(day);
    expect(dayStart(day)).toBe(startOfUtcDay(ts));
  });

  test('isDay only takes real days', () => {
    expect(['2024-02-29', '1970-01-01', '9999-12-31'].map(isDay)).toEqual([true, true, true]);
    expect(['2023-02-29', '2100-02-29', '2026-13-01', '2026-1-01', '1969-12-31', '2026-11-24T00:00:00Z', 20261124].map(isDay)).toEqual(Array(7).fill(false));
    expect(() => dayStart('2023-02-29')).toThrow('dayStart: "2023-02-29" is not a day');
    expect(() => dayOf(NaN)).toThrow(RangeError);
    expect(() => dayOf(-1)).toThrow(RangeError);
  });
});

describe('keys and paths', () => {
  test('layout of warm files and cold keys', () => {
    expect(partitionKey('raw', '2026-11-24')).toBe('raw|2026-11-24');
    expect(warmPath('raw', '2026-11-24', 3)).toBe('warm/raw/2026/2026-11-24.g3.parquet');
    expect(coldKey('rollup-1m', '2024-02-29', 0)).toBe('cold/rollup-1m/2024/2024-02-29.g0.parquet');
    expect(() => warmPath('raw', '2026-11-31', 1)).toThrow('warmPath: "2026-11-31" is not a day');
    expect(() => coldKey('raw', '2026-11-24', -1)).toThrow('coldKey: generation must be a whole number >= 0, got -1');
    expect(() => partitionKey('raw', 'today')).toThrow(RangeError);
  });

  test('hostile rule names stay one segment under warm/ and cold/, and distinct names stay distinct', () => {
    const names = ['..', '.', '../../etc', 'a/b', 'a\\b', '', 'a|b', 'raw ', 'RAW', 'raw', '%2e', 'x'.repeat(300), 'x'.repeat(301), '温度', 'nul\u0000'];
    const paths = names.map((n) => warmPath(n, '2026-11-24', 1));
    for (const p of paths) {
      const segs = p.split('/');
      expect(segs).toHaveLength(4);
      expect(segs[0]).toBe('warm');
      expect(['.', '..', '']).not.toContain(segs[1]);
      expect(segs[1]).toMatch(/^[A-Za-z0-9._%~-]+$/);
      expect(path.resolve('/root', p).startsWith('/root/warm/')).toBe(true);
    }
    expect(new Set(paths).size).toBe(names.length);
    expect(new Set(names.map((n) => coldKey(n, '2026-11-24', 1))).size).toBe(names.length);
    // Partition keys end in the fixed-length day, so a '|' in a rule name cannot make two keys meet.
    const keys = ['a|b', 'a', 'a|2026-11-24', 'a|2026'].flatMap((n) => ['2026-11-24', '2026-11-25'].map((d) => partitionKey(n, d)));
    expect(new Set(keys).size).toBe(keys.length);
  });

  test('recordHistory keeps the last HISTORY_LIMIT items', () => {
    const e = entry('raw', '2026-11-24', { history: [] });
    for (let i = 0; i < 25; i++) recordHistory(e, i, `step ${i}`);
    expect(e.history).toHaveLength(HISTORY_LIMIT);
    expect(e.history[0]).toEqual({ at: 5, what: 'step 5' });
    expect(e.history[19]).toEqual({ at: 24, what: 'step 24' });
  });
});

describe('ManifestStore', () => {
  test('a new root: created, empty; updates are on disk when they resolve and survive a reopen', async () => {
    const root = path.join(dir, 'deep', 'root');
    const m = await ManifestStore.open(root);
    expect(m.entries()).toEqual([]);
    expect(fs.existsSync(path.join(root, 'tmp'))).toBe(true);
    const e = entry('raw', '2026-11-24');
    expect(await put(m, e)).toEqual(e);
    expect(JSON.parse(fs.readFileSync(path.join(root, 'manifest.json'), 'utf8'))).toEqual({ version: 1, partitions: { 'raw|2026-11-24': e } });
    await m.close();
    const again = await openStore(root);
    expect(again.get('raw|2026-11-24')).toEqual(e);
    expect(again.entries()).toEqual([e]);
    expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);
  });

  test('the file holds one partition per line, sorted by key', async () => {
    const m = await openStore();
    await put(m, entry('b', '2026-01-02'));
    await put(m, entry('a', '2026-01-03'));
    await put(m, entry('a', '2026-01-01'));
    const lines = fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines.slice(1, 4).map((l) => l.slice(0, l.indexOf(':')))).toEqual(['"a|2026-01-01"', '"a|2026-01-03"', '"b|2026-01-02"']);
    expect(m.entries().map((e) => `${e.rule}|${e.day}`)).toEqual(['a|2026-01-01', 'a|2026-01-03', 'b|2026-01-02']);
  });

  test('get and entries return copies: changing them changes nothing', async () => {
    const m = await openStore();
    await put(m, entry('raw', '2026-11-24'));
    m.get('raw|2026-11-24')!.tier = 'cold';
    m.entries()[0].history.push({ at: 2, what: 'x' });
    expect(m.get('raw|2026-11-24')!.tier).toBe('warm');
    expect(m.get('raw|2026-11-24')!.history).toHaveLength(1);
  });

  test('update sees the current entry, null removes it, undefined changes nothing; history is trimmed', async () => {
    const m = await openStore();
    const key = 'raw|2026-11-24';
    await put(m, entry('raw', '2026-11-24'));
    await m.update(key, (cur) => {
      for (let i = 0; i < 30; i++) recordHistory(cur!, 100 + i, `s${i}`);
      cur!.history.push({ at: 999, what: 'pushed past the limit' });
      cur!.generation = 2;
      return cur;
    });
    const got = m.get(key)!;
    expect(got.generation).toBe(2);
    expect(got.history).toHaveLength(HISTORY_LIMIT);
    expect(got.history[HISTORY_LIMIT - 1].what).toBe('pushed past the limit');
    expect(onDisk().partitions[key].history).toHaveLength(HISTORY_LIMIT);
    expect(await m.update(key, () => undefined)).toEqual(got);
    expect(await m.update(key, () => null)).toBeUndefined();
    expect(m.get(key)).toBeUndefined();
    expect(onDisk().partitions).toEqual({});
  });

  test('concurrent updates are serialised: each sees the ones before it', async () => {
    const m = await openStore();
    const key = 'raw|2026-11-24';
    await put(m, entry('raw', '2026-11-24', { generation: 0 }));
    await Promise.all(
      Array.from({ length: 20 }, () =>
        m.update(key, (cur) => {
          cur!.generation += 1;
          return cur;
        }),
      ),
    );
    expect(m.get(key)!.generation).toBe(20);
    expect(onDisk().partitions[key].generation).toBe(20);
  });

  test('invalid entries are refused with the key and the reason, and nothing changes', async () => {
    const m = await openStore();
    const e = entry('raw', '2026-11-24');
    await expect(m.update('raw|2026-11-25', () => e)).rejects.toThrow('retention manifest: partition "raw|2026-11-25": key does not match its rule and day (expected "raw|2026-11-24")');
    await expect(put(m, { ...e, end: e.end + 1 })).rejects.toThrow("start and end must be");
    await expect(put(m, { ...e, tier: 'deleted' })).rejects.toThrow('a deleted partition has no file and nothing pending');
    await expect(put(m, { ...e, file: undefined })).rejects.toThrow('a warm partition needs a file (or a pending one)');
    await expect(put(m, { ...e, file: { ...e.file!, path: '../outside.parquet' } })).rejects.toThrow('file.path must not have a ".." segment');
    await expect(put(m, { ...e, file: { ...e.file!, checksum: 'XYZ' } })).rejects.toThrow('file.checksum must be 16 lowercase hex digits');
    await expect(put(m, { ...e, generation: 1.5 })).rejects.toThrow(StoreError);
    expect(m.entries()).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'manifest.json'))).toBe(false);
    // A first move still pending has no file yet: valid.
    const { file, ...noFile } = e;
    await put(m, { ...noFile, pending: { step: 'copied', file: file!, hotRows: 3 } });
    expect(m.size).toBe(1);
  });

  test('commit: false keeps changes in memory until commit()', async () => {
    const m = await openStore();
    await put(m, entry('raw', '2026-11-23'));
    await put(m, entry('raw', '2026-11-24'), { commit: false });
    expect(m.size).toBe(2);
    expect(Object.keys(onDisk().partitions)).toEqual(['raw|2026-11-23']);
    await m.commit();
    expect(Object.keys(onDisk().partitions)).toEqual(['raw|2026-11-23', 'raw|2026-11-24']);
  });

  test('close writes what is uncommitted; a closed store refuses updates', async () => {
    const m = await ManifestStore.open(dir);
    await put(m, entry('raw', '2026-11-24'), { commit: false });
    await m.close();
    expect(Object.keys(onDisk().partitions)).toEqual(['raw|2026-11-24']);
    await expect(put(m, entry('raw', '2026-11-25'))).rejects.toThrow(`retention manifest ${path.join(dir, 'manifest.json')} is closed`);
  });

  test('a failed write leaves the old manifest on disk and in memory, and no temporary file', async () => {
    const m = await openStore();
    await put(m, entry('raw', '2026-11-23'));
    const before = fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8');
    jest.spyOn(realFs.promises, 'rename').mockRejectedValueOnce(Object.assign(new Error('EIO: disk on fire'), { code: 'EIO' }));
    const err = await put(m, entry('raw', '2026-11-24')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).message).toBe(`cannot write retention manifest ${path.join(dir, 'manifest.json')}: EIO: disk on fire`);
    expect((err as StoreError).retryable).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).toBe(before);
    expect(m.get('raw|2026-11-24')).toBeUndefined();
    expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual([]);
    // The store still works afterwards.
    await put(m, entry('raw', '2026-11-24'));
    expect(Object.keys(onDisk().partitions)).toEqual(['raw|2026-11-23', 'raw|2026-11-24']);
  });

  test('a crash mid-write (a temporary file left in tmp/): open removes it and keeps the old manifest', async () => {
    const m = await ManifestStore.open(dir);
    await put(m, entry('raw', '2026-11-23'));
    await m.close();
    const before = fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8');
    fs.writeFileSync(path.join(dir, 'tmp', '123-abc.manifest.json'), '{"version":1,"partitions":{"raw|2026-11-2');
    fs.mkdirSync(path.join(dir, 'tmp', 'half-written-parquet'));
    fs.writeFileSync(path.join(dir, 'tmp', 'half-written-parquet', 'part.parquet'), 'PAR1');
    const again = await openStore();
    expect(again.cleaned).toEqual(['123-abc.manifest.json', 'half-written-parquet']);
    expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual([]);
    expect(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).toBe(before);
    expect(again.entries().map((e) => e.day)).toEqual(['2026-11-23']);
  });

  test.each([
    ['truncated JSON', '{"version":1,"partitions":{"raw|2026-11-2', /is not usable \(not valid JSON: /],
    ['wrong version', '{"version":2,"partitions":{}}', /is not usable \(expected \{"version": 1, "partitions": \{\.\.\.\}\}\)/],
    ['an invalid entry', JSON.stringify({ version: 1, partitions: { 'raw|2026-11-24': { ...entry('raw', '2026-11-24'), tier: 'lukewarm' } } }), /partition "raw\|2026-11-24": tier must be one of warm, cold, deleted, got "lukewarm"/],
    ['a key that does not match', JSON.stringify({ version: 1, partitions: { 'x|2026-11-24': entry('raw', '2026-11-24') } }), /partition "x\|2026-11-24": key does not match/],
  ])('a corrupt manifest (%s) is refused with the file named, and left as it is', async (_label, text, why) => {
    fs.writeFileSync(path.join(dir, 'manifest.json'), text);
    const err = await ManifestStore.open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    const msg = (err as Error).message;
    expect(msg).toContain(`retention manifest ${path.join(dir, 'manifest.json')} is not usable`);
    expect(msg).toMatch(why);
    expect(msg).toContain('it was left unchanged');
    expect((err as StoreError).retryable).toBe(false);
    expect(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).toBe(text);
    expect(fs.readdirSync(dir).sort()).toEqual(['manifest.json', 'tmp']);
    // The failed open did not keep the root locked: once repaired it opens.
    fs.writeFileSync(path.join(dir, 'manifest.json'), '{"version":1,"partitions":{}}');
    expect((await openStore()).entries()).toEqual([]);
  });

  test('a second open of the same root is refused (also through another spelling or a symlink) until the first closes', async () => {
    const m = await ManifestStore.open(dir);
    const msg = `retention manifest root ${dir} is already open in this process (close the other ManifestStore first)`;
    await expect(ManifestStore.open(dir)).rejects.toThrow(msg);
    await expect(ManifestStore.open(path.join(dir, '.', 'x', '..'))).rejects.toThrow(/is already open in this process/);
    const link = path.join(dir, '..', `${path.basename(dir)}-link`);
    fs.symlinkSync(dir, link);
    try {
      await expect(ManifestStore.open(link)).rejects.toThrow(/is already open in this process/);
    } finally {
      fs.unlinkSync(link);
    }
    await m.close();
    await openStore();
  });

  test('resolve and tmpPath stay inside the root', async () => {
    const m = await openStore();
    expect(m.resolve('warm/raw/2026/2026-11-24.g1.parquet')).toBe(path.join(dir, 'warm', 'raw', '2026', '2026-11-24.g1.parquet'));
    expect(() => m.resolve('../x')).toThrow('retention manifest: path "../x" must not have a ".." segment');
    expect(() => m.resolve('/etc/passwd')).toThrow('must be relative');
    const t = m.tmpPath('.parquet/../../x');
    expect(path.dirname(t)).toBe(path.join(dir, 'tmp'));
    expect(t).not.toBe(m.tmpPath());
  });
});
