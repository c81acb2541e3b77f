/**
 * nodes/lib/state.ts: where state lives (thingwireDataDir), safe file names whatever a node id
 * holds, atomic writes (a failed write leaves the previous file intact), loads of missing,
 * corrupt, unexpected and unreadable files (moved aside, never deleted), background saves that
 * never overlap or reorder, and remove.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StateFile, safeFileName, thingwireDataDir } from '../../nodes/lib/state';

// The fs module object itself (the namespace import above is a copy with fixed getters): spies go
// on this one, and state.ts reads its functions from it on every call.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const realFs = require('node:fs') as typeof fs;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-state-file-'));
});
afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

const listState = (type = 't'): string[] => fs.readdirSync(path.join(dir, 'state', type)).sort();

describe('thingwireDataDir', () => {
  test('the runtime setting wins; else <userDir>/thingwire; else <cwd>/thingwire', () => {
    expect(thingwireDataDir({ thingwireDataDir: '/data', userDir: '/home/nr/.node-red' })).toBe('/data');
    expect(thingwireDataDir({ userDir: '/home/nr/.node-red' })).toBe(path.join('/home/nr/.node-red', 'thingwire'));
    expect(thingwireDataDir({ thingwireDataDir: '', userDir: '/u' })).toBe(path.join('/u', 'thingwire'));
    expect(thingwireDataDir({ thingwireDataDir: 42, userDir: 7 })).toBe(path.join(process.cwd(), 'thingwire'));
    expect(thingwireDataDir({})).toBe(path.join(process.cwd(), 'thingwire'));
  });
});

describe('safeFileName', () => {
  test('Node-RED ids and ordinary names are kept as they are', () => {
    for (const id of ['a1b2c3d4e5f60718', 'thingwire-window', 'node_1.v2', 'ABC-xyz.0']) expect(safeFileName(id)).toBe(id);
  });

  test('separators, traversal and control characters are escaped', () => {
    expect(safeFileName('../../etc/passwd')).toBe('..%2f..%2fetc%2fpasswd');
    expect(safeFileName('a\\b')).toBe('a%5cb');
    expect(safeFileName('a\u0000b')).toBe('a%00b');
    expect(safeFileName('new\nline')).toBe('new%0aline');
    expect(safeFileName('C:x')).toBe('C%3ax');
    expect(safeFileName('50%')).toBe('50%25');
    expect(safeFileName('é')).toBe('%e9');
    expect(safeFileName('日')).toBe('%u0065e5');
    expect(safeFileName('😀')).toBe('%u01f600');
  });

  test('names the file system gives a meaning to are prefixed', () => {
    expect(safeFileName('')).toBe('~');
    expect(safeFileName('.')).toBe('%2e');
    expect(safeFileName('..')).toBe('%2e%2e');
    expect(safeFileName('...')).toBe('...');
  });

  test('long ids keep 150 characters and a hash of the whole id', () => {
    expect(safeFileName('x'.repeat(200))).toBe('x'.repeat(200));
    const long = safeFileName('x'.repeat(5000));
    expect(long).toMatch(/^x{150}~[0-9a-f]{40}$/);
    expect(safeFileName('x'.repeat(4999) + 'y')).not.toBe(long);
    expect(safeFileName('/'.repeat(100)).length).toBe(191);
  });

  test('distinct ids give distinct names', () => {
    const ids = ['', '~', '_', '.', '..', '%2e', '%', '%25', '\u0012' + '34', '\u1234', '%u001234', 'a', 'A', '_.', '__proto__', 'x'.repeat(300), 'x'.repeat(301)];
    const names = ids.map(safeFileName);
    expect(new Set(names).size).toBe(ids.length);
  });

  test('whatever the id and type, the file stays in <dataDir>/state/<type>/', () => {
    const hostile = ['../../../tmp/evil', '/etc/passwd', '..', '.', '', 'a/../../b', '\u0000', '__proto__', 'constructor', 'x'.repeat(1000), '..\\..\\win'];
    for (const id of hostile) {
      for (const type of ['thingwire-window', ...hostile]) {
        const f = new StateFile(dir, type, id).file;
        const stateDir = path.join(dir, 'state');
        expect(path.dirname(path.dirname(f))).toBe(stateDir);
        expect(path.relative(stateDir, f).split(path.sep)).toHaveLength(2);
        expect(path.basename(f).endsWith('.json')).toBe(true);
        expect(Buffer.byteLength(path.basename(f))).toBeLessThanOrEqual(255);
      }
    }
  });

  test('hostile ids can be saved and loaded', () => {
    for (const id of ['../../escape', '..', '', '__proto__', 'a\u0000b', '日本']) {
      const s = new StateFile<{ id: string }>(dir, 'thingwire-window', id);
      s.saveSync({ id });
      expect(new StateFile(dir, 'thingwire-window', id).load().value).toEqual({ id });
    }
    expect(fs.readdirSync(dir)).toEqual(['state']);
    expect(fs.readdirSync(path.join(dir, 'state'))).toEqual(['thingwire-window']);
  });
});

describe('load', () => {
  test('no file: no value, no problem', () => {
    expect(new StateFile(dir, 't', 'n1').load()).toEqual({ value: undefined });
    expect(fs.existsSync(path.join(dir, 'state'))).toBe(false);
  });

  test('what saveSync wrote comes back', () => {
    const s = new StateFile<{ a: number; b: string[] }>(dir, 't', 'n1');
    expect(s.file).toBe(path.join(dir, 'state', 't', 'n1.json'));
    const bytes = s.saveSync({ a: 1, b: ['x'] });
    expect(bytes).toBe(Buffer.byteLength('{"a":1,"b":["x"]}'));
    expect(s.load()).toEqual({ value: { a: 1, b: ['x'] } });
    expect(listState()).toEqual(['n1.json']);
  });

  test('a corrupt file is moved aside (not deleted) and reported', () => {
    const s = new StateFile(dir, 't', 'n1');
    fs.mkdirSync(path.dirname(s.file), { recursive: true });
    fs.writeFileSync(s.file, '{"half": ');
    const r = s.load();
    expect(r.value).toBeUndefined();
    expect(r.problem).toMatch(new RegExp(`^state file .*n1\\.json is unusable \\(.*JSON.*\\); moved to .*n1\\.json\\.corrupt-\\d+$`));
    const files = listState();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^n1\.json\.corrupt-\d+$/);
    expect(fs.readFileSync(path.join(path.dirname(s.file), files[0]), 'utf8')).toBe('{"half": ');
    // The next load finds nothing and the next save starts a fresh file.
    expect(s.load()).toEqual({ value: undefined });
    s.saveSync({ ok: true });
    expect(s.load()).toEqual({ value: { ok: true } });
  });

  test('an empty file is corrupt too', () => {
    const s = new StateFile(dir, 't', 'n1');
    fs.mkdirSync(path.dirname(s.file), { recursive: true });
    fs.writeFileSync(s.file, '');
    expect(s.load().problem).toMatch(/is unusable/);
    expect(listState()[0]).toMatch(/^n1\.json\.corrupt-/);
  });

  test('content the validator refuses is moved aside as unexpected content', () => {
    const s = new StateFile<{ v: 1 }>(dir, 't', 'n1');
    s.saveSync({ v: 1 });
    fs.writeFileSync(s.file, '{"v":2}');
    const isV1 = (v: unknown): v is { v: 1 } => typeof v === 'object' && v !== null && (v as { v?: unknown }).v === 1;
    const r = s.load(isV1);
    expect(r.value).toBeUndefined();
    expect(r.problem).toMatch(/is unusable \(unexpected content\); moved to/);
    s.saveSync({ v: 1 });
    expect(s.load(isV1)).toEqual({ value: { v: 1 } });
  });

  test('a file that cannot be read is reported and left where it is', () => {
    const s = new StateFile(dir, 't', 'n1');
    fs.mkdirSync(s.file, { recursive: true }); // a directory in its place: EISDIR
    const r = s.load();
    expect(r.value).toBeUndefined();
    expect(r.problem).toMatch(/^cannot read .*n1\.json: EISDIR/);
    expect(fs.statSync(s.file).isDirectory()).toBe(true);
  });

  test('a corrupt file that cannot be moved aside is reported as such', () => {
    const s = new StateFile(dir, 't', 'n1');
    fs.mkdirSync(path.dirname(s.file), { recursive: true });
    fs.writeFileSync(s.file, 'garbage');
    jest.spyOn(realFs, 'renameSync').mockImplementationOnce(() => {
      throw new Error('EROFS: read-only file system');
    });
    const r = s.load();
    expect(r.value).toBeUndefined();
    expect(r.problem).toMatch(/is unusable \(.*\) and could not be moved: EROFS: read-only file system$/);
    expect(fs.readFileSync(s.file, 'utf8')).toBe('garbage');
  });
});

describe('atomic writes', () => {
  test('saveSync writes a temporary file and renames it over the old one', () => {
    const s = new StateFile(dir, 't', 'n1');
    s.saveSync({ n: 1 });
    const renames: Array<[string, string]> = [];
    const real = fs.renameSync;
    jest.spyOn(realFs, 'renameSync').mockImplementation((a, b) => {
      renames.push([String(a), String(b)]);
      // At the moment of the rename the old file is still whole.
      expect(JSON.parse(fs.readFileSync(s.file, 'utf8'))).toEqual({ n: 1 });
      expect(JSON.parse(fs.readFileSync(String(a), 'utf8'))).toEqual({ n: 2 });
      real(a, b);
    });
    s.saveSync({ n: 2 });
    expect(renames).toEqual([[`${s.file}.tmp`, s.file]]);
    expect(s.load().value).toEqual({ n: 2 });
    expect(listState()).toEqual(['n1.json']);
  });

  test('a write that fails before the rename leaves the previous state intact', () => {
    const s = new StateFile(dir, 't', 'n1');
    s.saveSync({ n: 1 });
    jest.spyOn(realFs, 'fsyncSync').mockImplementationOnce(() => {
      throw new Error('EIO: i/o error');
    });
    expect(() => s.saveSync({ n: 2 })).toThrow('EIO: i/o error');
    expect(s.load().value).toEqual({ n: 1 });
  });

  test('a value that cannot be serialised fails before any file is touched', () => {
    const s = new StateFile<unknown>(dir, 't', 'n1');
    s.saveSync({ n: 1 });
    expect(() => s.saveSync({ big: 1n })).toThrow(/BigInt/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => s.save(cyclic)).toThrow(/circular/);
    expect(s.load().value).toEqual({ n: 1 });
    expect(listState()).toEqual(['n1.json']);
  });

  test('a temporary file left by a crash is ignored by load and replaced by the next save', async () => {
    const s = new StateFile(dir, 't', 'n1');
    s.saveSync({ n: 1 });
    fs.writeFileSync(`${s.file}.tmp`, '{"n": 2, "trunc');
    fs.writeFileSync(`${s.file}.tmp-async`, '{"n": 2, "trunc');
    expect(s.load()).toEqual({ value: { n: 1 } });
    await s.save({ n: 3 });
    expect(s.load().value).toEqual({ n: 3 });
    s.saveSync({ n: 4 });
    expect(s.load().value).toEqual({ n: 4 });
    expect(listState()).toEqual(['n1.json']);
  });

  test('the state directory is created on the first save', async () => {
    const s = new StateFile(path.join(dir, 'deep', 'er'), 't', 'n1');
    await s.save({ ok: 1 });
    expect(s.load().value).toEqual({ ok: 1 });
  });
});

describe('background saves', () => {
  test('resolve with the bytes written; the value is taken when save() is called', async () => {
    const s = new StateFile<{ n: number }>(dir, 't', 'n1');
    const v = { n: 1 };
    const p = s.save(v);
    v.n = 99;
    expect(await p).toBe(Buffer.byteLength('{"n":1}'));
    expect(s.load().value).toEqual({ n: 1 });
  });

  test('saves run one at a time, in the order asked, and the last one wins', async () => {
    const s = new StateFile<{ n: number }>(dir, 't', 'n1');
    let active = 0;
    let most = 0;
    const renamed: number[] = [];
    const realOpen = fs.promises.open;
    const realRename = fs.promises.rename;
    jest.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof fs.promises.open>) => {
      active++;
      most = Math.max(most, active);
      return realOpen(...args);
    });
    jest.spyOn(fs.promises, 'rename').mockImplementation(async (a, b) => {
      renamed.push((JSON.parse(fs.readFileSync(String(a), 'utf8')) as { n: number }).n);
      await realRename(a, b);
      active--;
    });
    const all = [1, 2, 3, 4, 5].map((n) => s.save({ n }));
    await Promise.all(all);
    expect(most).toBe(1);
    expect(renamed).toEqual([1, 2, 3, 4, 5]);
    expect(s.load().value).toEqual({ n: 5 });
  });

  test('a failed save rejects its own promise only; the next save goes through', async () => {
    const s = new StateFile<{ n: number }>(dir, 't', 'n1');
    jest.spyOn(fs.promises, 'open').mockRejectedValueOnce(new Error('ENOSPC: no space left on device'));
    const a = s.save({ n: 1 });
    const b = s.save({ n: 2 });
    await expect(a).rejects.toThrow('ENOSPC');
    await expect(b).resolves.toBe(7);
    expect(s.load().value).toEqual({ n: 2 });
  });

  test('idle() resolves once every save started so far is done, failed ones included', async () => {
    const s = new StateFile<{ n: number }>(dir, 't', 'n1');
    await s.idle();
    jest.spyOn(fs.promises, 'open').mockRejectedValueOnce(new Error('EACCES'));
    const failed = s.save({ n: 1 }).catch(() => 'failed');
    void s.save({ n: 2 });
    await s.idle();
    expect(await failed).toBe('failed');
    expect(s.load().value).toEqual({ n: 2 });
  });
});

describe('streamed saves (saveStream)', () => {
  /** Busy-waits ms on the main thread (the work of making one piece). */
  const busy = (ms: number): void => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      // spin
    }
  };

  test('the pieces form the file; it is written durably in place of the old one; resolves with the bytes', async () => {
    const s = new StateFile<{ a: number[]; s: string }>(dir, 't', 'n1');
    s.saveSync({ a: [0], s: '' });
    const big = 'x'.repeat(300_000);
    // Over STREAM_WRITE_CHARS (1M characters) in all, so the file is written in more than one write.
    const parts = ['{"a":[', ...Array.from({ length: 12 }, (_, i) => `${i > 0 ? ',' : ''}${i}`), '],"s":"', big, big, big, big, '"}'];
    const writes: number[] = [];
    const realOpen = fs.promises.open;
    jest.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof fs.promises.open>) => {
      const fh = await realOpen(...args);
      const realWritev = fh.writev.bind(fh) as (b: Buffer[]) => Promise<unknown>;
      (fh as unknown as { writev: (b: Buffer[]) => Promise<unknown> }).writev = (b: Buffer[]) => {
        writes.push(b.reduce((n, x) => n + x.length, 0));
        return realWritev(b);
      };
      return fh;
    });
    const bytes = await s.saveStream(() => parts);
    expect(bytes).toBe(Buffer.byteLength(parts.join('')));
    expect(writes.length).toBeGreaterThan(1);
    expect(writes.reduce((x, y) => x + y, 0)).toBe(bytes);
    expect(s.load().value).toEqual({ a: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], s: big.repeat(4) });
    expect(listState()).toEqual(['n1.json']);
  });

  test('the event loop runs between pieces: work queued while the first piece is made runs before the last', async () => {
    const s = new StateFile<number[]>(dir, 't', 'n1');
    const ranAfter: number[] = [];
    const made: number[] = [];
    // 40 pieces of 1 ms each (the text is far below one write): without slices the save would hold the thread
    // for 40 ms and the immediate would run after the last piece.
    function* pieces(): Generator<string> {
      yield '[';
      for (let i = 0; i < 40; i++) {
        if (i === 0) setImmediate(() => ranAfter.push(made.length));
        busy(1);
        made.push(i);
        yield `${i > 0 ? ',' : ''}${i}`;
      }
      yield ']';
    }
    await s.saveStream(pieces);
    expect(ranAfter).toHaveLength(1);
    // The first pause comes after the first slice (4 ms).
    expect(ranAfter[0]).toBeGreaterThan(0);
    expect(ranAfter[0]).toBeLessThan(40);
    expect(s.load().value).toEqual(made);
  });

  test('a short write (a full disk) fails the save and leaves the previous state', async () => {
    const s = new StateFile<{ n: number }>(dir, 't', 'n1');
    s.saveSync({ n: 1 });
    const realOpen = fs.promises.open;
    jest.spyOn(fs.promises, 'open').mockImplementationOnce(async (...args: Parameters<typeof fs.promises.open>) => {
      const fh = await realOpen(...args);
      (fh as unknown as { writev: (b: Buffer[]) => Promise<unknown> }).writev = async (b: Buffer[]) => ({ bytesWritten: b[0].length - 1, buffers: b });
      return fh;
    });
    await expect(s.saveStream(() => ['{"n":', '2}'])).rejects.toThrow(/short write .* 4 of 7 bytes/);
    expect(s.load().value).toEqual({ n: 1 });
    expect(listState()).toEqual(['n1.json']);
  });

  test('parts() is called when the save starts, after the saves queued before it', async () => {
    const s = new StateFile<{ n: number }>(dir, 't', 'n1');
    const order: string[] = [];
    const first = s.save({ n: 1 }).then(() => order.push('save 1 done'));
    const second = s.saveStream(() => {
      order.push('parts called');
      return ['{"n":2}'];
    });
    expect(order).toEqual([]);
    await Promise.all([first, second]);
    expect(order).toEqual(['save 1 done', 'parts called']);
    expect(s.load().value).toEqual({ n: 2 });
  });

  test('a piece that throws fails the save and leaves the previous state and no temporary file', async () => {
    const s = new StateFile<{ n: number }>(dir, 't', 'n1');
    s.saveSync({ n: 1 });
    function* broken(): Generator<string> {
      yield '{"n":';
      throw new Error('series state unreadable');
    }
    await expect(s.saveStream(broken)).rejects.toThrow('series state unreadable');
    expect(s.load().value).toEqual({ n: 1 });
    expect(listState()).toEqual(['n1.json']);
    await expect(s.saveStream(() => ['{"n":', '3}'])).resolves.toBe(7);
    expect(s.load().value).toEqual({ n: 3 });
  });
});

describe('remove', () => {
  test('deletes the file; removing a missing file is fine', async () => {
    const s = new StateFile(dir, 't', 'n1');
    await s.save({ n: 1 });
    s.remove();
    expect(fs.existsSync(s.file)).toBe(false);
    expect(() => s.remove()).not.toThrow();
    expect(s.load()).toEqual({ value: undefined });
  });

  test('files of other nodes are left alone', () => {
    const a = new StateFile(dir, 't', 'a');
    const b = new StateFile(dir, 't', 'b');
    a.saveSync({ a: 1 });
    b.saveSync({ b: 1 });
    a.remove();
    expect(listState()).toEqual(['b.json']);
  });
});
