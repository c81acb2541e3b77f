/**
 * nodes/lib/retention/archive.ts: DirectoryTarget put / get / stat / list / remove round trip on a
 * real directory, SHA-256 computed while copying, no partial file under a key when a put fails,
 * keys checked (no '..', no absolute keys, no empty segments, .tmp/ reserved).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { DirectoryTarget, keyProblem } from '../../nodes/lib/retention/archive';
import { StoreError } from '../../nodes/lib/store/types';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const realFs = require('node:fs') as typeof fs;

let dir: string;
let root: string;
let target: DirectoryTarget;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-archive-'));
  root = path.join(dir, 'archive');
  target = new DirectoryTarget(root);
});
afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

function localFile(name: string, bytes: Buffer): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, bytes);
  return f;
}
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('DirectoryTarget round trip', () => {
  test('put, stat, get, list, remove', async () => {
    // Over the 1 MiB copy chunk, and not a multiple of it.
    const big = randomBytes((1 << 20) * 2 + 12345);
    const small = Buffer.from('PAR1 small');
    const key = 'cold/raw/2026/2026-11-24.g1.parquet';
    expect(await target.put(localFile('big.parquet', big), key)).toEqual({ bytes: big.length, sha256: sha(big) });
    expect(await target.put(localFile('small.parquet', small), 'cold/raw/2026/2026-11-25.g1.parquet')).toEqual({ bytes: small.length, sha256: sha(small) });
    await target.put(localFile('e', Buffer.alloc(0)), 'cold/other/empty');
    expect(fs.readFileSync(path.join(root, 'cold', 'raw', '2026', '2026-11-24.g1.parquet')).equals(big)).toBe(true);

    expect(await target.stat(key)).toEqual({ bytes: big.length });
    expect(await target.stat('cold/other/empty')).toEqual({ bytes: 0 });
    expect(await target.stat('cold/raw/2026/missing')).toBeNull();
    expect(await target.stat('cold/raw')).toBeNull(); // a "directory" is no object
    expect(await target.stat('cold/other/empty/below')).toBeNull();

    const back = path.join(dir, 'back.parquet');
    await target.get(key, back);
    expect(fs.readFileSync(back).equals(big)).toBe(true);
    await target.get('cold/raw/2026/2026-11-25.g1.parquet', back); // replaces the local file
    expect(fs.readFileSync(back).equals(small)).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(['archive', 'back.parquet', 'big.parquet', 'e', 'small.parquet']);

    expect(await target.list('')).toEqual(['cold/other/empty', 'cold/raw/2026/2026-11-24.g1.parquet', 'cold/raw/2026/2026-11-25.g1.parquet']);
    expect(await target.list('cold/raw/')).toEqual(['cold/raw/2026/2026-11-24.g1.parquet', 'cold/raw/2026/2026-11-25.g1.parquet']);
    expect(await target.list('cold/raw/2026/2026-11-24')).toEqual(['cold/raw/2026/2026-11-24.g1.parquet']);
    expect(await target.list('cold/r')).toEqual(['cold/raw/2026/2026-11-24.g1.parquet', 'cold/raw/2026/2026-11-25.g1.parquet']);
    expect(await target.list('cold/o')).toEqual(['cold/other/empty']);
    expect(await target.list('nothing/here/')).toEqual([]);

    await target.remove(key);
    await target.remove(key); // again: not an error
    expect(await target.stat(key)).toBeNull();
    await target.remove('cold/raw/2026/2026-11-25.g1.parquet');
    expect(await target.list('')).toEqual(['cold/other/empty']);
    // Emptied directories are pruned; the root stays.
    expect(fs.readdirSync(path.join(root, 'cold'))).toEqual(['other']);
    await target.remove('cold/other/empty');
    expect(fs.readdirSync(root).filter((n) => n !== '.tmp')).toEqual([]);
  });

  test('put over an existing key replaces it whole', async () => {
    const a = randomBytes(5000);
    const b = randomBytes(10);
    await target.put(localFile('a', a), 'k/x');
    expect(await target.put(localFile('b', b), 'k/x')).toEqual({ bytes: 10, sha256: sha(b) });
    expect(fs.readFileSync(path.join(root, 'k', 'x')).equals(b)).toBe(true);
  });

  test('the sha256 is that of the bytes stored', async () => {
    const data = Buffer.from('hello');
    const { sha256 } = await target.put(localFile('h', data), 'h');
    expect(sha256).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(sha(fs.readFileSync(path.join(root, 'h')))).toBe(sha256);
  });

  test('a put that fails leaves no file under the key (old content kept) and no temporary file', async () => {
    const old = Buffer.from('old');
    await target.put(localFile('old', old), 'k/x');
    jest.spyOn(realFs.promises, 'rename').mockRejectedValueOnce(Object.assign(new Error('EIO: disk on fire'), { code: 'EIO' }));
    const err = await target.put(localFile('new', randomBytes(3 << 20)), 'k/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toBe(`archive directory ${root}: cannot put ${path.join(dir, 'new')} as k/x: EIO: disk on fire`);
    expect(fs.readFileSync(path.join(root, 'k', 'x')).equals(old)).toBe(true);
    expect(fs.readdirSync(path.join(root, '.tmp'))).toEqual([]);
    // A missing source: the same, nothing under the key.
    await expect(target.put(path.join(dir, 'no-such-file'), 'k/y')).rejects.toThrow(/cannot put .*no-such-file as k\/y: ENOENT/);
    expect(await target.stat('k/y')).toBeNull();
    expect(await target.list('')).toEqual(['k/x']);
  });

  test('get of a missing key is a clear error and creates nothing', async () => {
    const to = path.join(dir, 'out');
    await expect(target.get('cold/none', to)).rejects.toThrow(`archive directory ${root}: no object "cold/none"`);
    expect(fs.existsSync(to)).toBe(false);
  });

  test('removeStaleTemps removes old leftovers only', async () => {
    fs.mkdirSync(path.join(root, '.tmp'), { recursive: true });
    fs.writeFileSync(path.join(root, '.tmp', 'old.part'), 'x');
    fs.writeFileSync(path.join(root, '.tmp', 'new.part'), 'x');
    const old = new Date(Date.now() - 2 * 86_400_000);
    fs.utimesSync(path.join(root, '.tmp', 'old.part'), old, old);
    expect(await target.removeStaleTemps()).toBe(1);
    expect(fs.readdirSync(path.join(root, '.tmp'))).toEqual(['new.part']);
    expect(await target.list('')).toEqual([]); // .tmp is never listed
  });
});

describe('keys', () => {
  test.each([
    ['', 'must not be empty'],
    ['/etc/passwd', 'must be relative (no leading /)'],
    ['../x', 'must not have a ".." segment'],
    ['a/../../x', 'must not have a ".." segment'],
    ['a/./x', 'must not have a "." segment'],
    ['a//x', 'must not have empty segments (//, or a trailing /)'],
    ['a/x/', 'must not have empty segments (//, or a trailing /)'],
    ['a\\..\\x', 'must not hold backslashes or control characters'],
    ['a/\u0000x', 'must not hold backslashes or control characters'],
    ['.tmp/x', 'must not start with .tmp/ (reserved)'],
    [`a/${'x'.repeat(256)}`, 'has a segment longer than 255 characters'],
    ['k'.repeat(1025), 'is longer than 1024 characters'],
  ])('%p is refused by every operation before touching the disk', async (key, why) => {
    const f = localFile('f', Buffer.from('x'));
    for (const op of [() => target.put(f, key), () => target.get(key, path.join(dir, 'o')), () => target.stat(key), () => target.remove(key)]) {
      const err = await op().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).message).toContain(`archive directory ${root}: key `);
      expect((err as StoreError).message).toContain(why);
      expect((err as StoreError).retryable).toBe(false);
    }
    expect(fs.existsSync(root)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual(['f']);
  });

  test('list prefixes: "" and a trailing / are fine; the rest as keys', async () => {
    await expect(target.list('')).resolves.toEqual([]);
    await expect(target.list('cold/')).resolves.toEqual([]);
    await expect(target.list('../')).rejects.toThrow('list prefix "../" must not have a ".." segment');
    await expect(target.list('/abs')).rejects.toThrow('must be relative');
    await expect(target.list('a//')).rejects.toThrow('must not have empty segments');
  });

  test('keyProblem, shared with the manifest', () => {
    expect(keyProblem('cold/raw/2026/2026-11-24.g1.parquet')).toBeUndefined();
    expect(keyProblem('a/温度 x%2e')).toBeUndefined();
    expect(keyProblem(42)).toBe('must be a string, got number');
    expect(keyProblem('', true)).toBeUndefined();
    expect(keyProblem('a/', true)).toBeUndefined();
  });

  test('the root must be given', () => {
    expect(() => new DirectoryTarget('')).toThrow('archive directory must be a non-empty path');
    expect(new DirectoryTarget('rel/dir').root).toBe(path.resolve('rel/dir'));
  });
});
