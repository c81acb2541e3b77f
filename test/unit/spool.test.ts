/**
 * nodes/lib/store/spool.ts: the on-disk FIFO of batches. File format, order,
 * the size bound and both policies, and recovery of a directory left by a crash.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DiskSpool, SpoolFullError, encodeSpoolFile, spoolFileName, type CorruptFile } from '../../nodes/lib/store/spool';
import type { Batch } from '../../nodes/lib/store/types';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-spool-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function batch(from: number, n: number): Batch {
  const lines: string[] = [];
  for (let i = from; i < from + n; i++) lines.push(`telemetry,device=d${i % 3} v=${100_000 + i} ${1_700_000_000_000 + i}`);
  return { lines: lines.join('\n'), count: n };
}

/** Drains the spool: peek + ack until empty. */
function drain(s: DiskSpool): Batch[] {
  const out: Batch[] = [];
  for (let e = s.peek(); e; e = s.peek()) {
    out.push(e.batch);
    s.ack(e.id);
  }
  return out;
}

const spoolFiles = (): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.lp')).sort();

describe('file format', () => {
  test('one file per batch, 16-digit sequence names, a header line then the line protocol; no tmp left', () => {
    const s = new DiskSpool(dir);
    const b = batch(0, 3);
    expect(s.append(b)).toEqual({ id: 1, droppedBatches: 0, droppedPoints: 0, droppedIds: [] });
    expect(s.append(batch(3, 2)).id).toBe(2);
    expect(fs.readdirSync(dir).sort()).toEqual(['0000000000000001.lp', '0000000000000002.lp']);
    const text = fs.readFileSync(path.join(dir, '0000000000000001.lp'), 'utf8');
    const [header, ...rest] = text.split('\n');
    expect(header).toMatch(/^#thingwire-spool v1 count=3 bytes=\d+ crc32=[0-9a-f]{8}$/);
    expect(Number(/bytes=(\d+)/.exec(header)?.[1])).toBe(Buffer.byteLength(b.lines));
    expect(rest.join('\n')).toBe(b.lines);
    expect(spoolFileName(42)).toBe('0000000000000042.lp');
  });

  test('append() writes exactly encodeSpoolFile() bytes, for batches of growing and shrinking size', () => {
    const s = new DiskSpool(dir);
    const bs = [batch(0, 2), batch(0, 300), batch(5, 1), { lines: 'm s="é😀" 1', count: 1 }];
    for (const b of bs) {
      const { id } = s.append(b);
      expect(fs.readFileSync(path.join(dir, spoolFileName(id)))).toEqual(encodeSpoolFile(b));
    }
    expect(drain(new DiskSpool(dir))).toEqual(bs);
  });

  test('size() counts batches and the bytes of the files on disk; pointCount() the lines', () => {
    const s = new DiskSpool(dir);
    s.append(batch(0, 3));
    s.append(batch(3, 5));
    const onDisk = spoolFiles().reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
    expect(s.size()).toEqual({ batches: 2, bytes: onDisk });
    expect(s.pointCount()).toBe(8);
    drain(s);
    expect(s.size()).toEqual({ batches: 0, bytes: 0 });
    expect(s.pointCount()).toBe(0);
  });

  test('lines with quoted newlines, quotes, backslashes and unicode come back byte for byte', () => {
    const s = new DiskSpool(dir);
    const b: Batch = { lines: 'm,t=a\\ b s="line1\nline2 \\"q\\" \\\\ é 😀" 1\nm f=1 2', count: 2 };
    s.append(b);
    expect(new DiskSpool(dir).peek()?.batch).toEqual(b);
  });
});

describe('FIFO', () => {
  test('peek returns the oldest, ack deletes it, order is append order', () => {
    const s = new DiskSpool(dir);
    const bs = [batch(0, 2), batch(2, 2), batch(4, 1)];
    for (const b of bs) s.append(b);
    const first = s.peek();
    expect(first?.batch).toEqual(bs[0]);
    expect(s.peek()).toBe(first); // cached: the same entry, not read again
    expect(s.headId()).toBe(first?.id);
    s.ack(first?.id as number);
    expect(spoolFiles()).toEqual(['0000000000000002.lp', '0000000000000003.lp']);
    expect(drain(s)).toEqual(bs.slice(1));
    expect(s.peek()).toBeUndefined();
    expect(s.headId()).toBeUndefined();
    expect(spoolFiles()).toEqual([]);
  });

  test('ack of an unknown or already acked id is a no-op', () => {
    const s = new DiskSpool(dir);
    s.append(batch(0, 1));
    s.ack(99);
    s.ack(1);
    s.ack(1);
    expect(s.size().batches).toBe(0);
  });

  test('ack of a batch other than the head removes just that one', () => {
    const s = new DiskSpool(dir);
    for (let i = 0; i < 3; i++) s.append(batch(i * 10, 1));
    s.ack(2);
    expect(drain(s).map((b) => b.lines)).toEqual([batch(0, 1).lines, batch(20, 1).lines]);
  });

  test('reopening picks up what is there, in order, and continues the sequence after it', () => {
    const s1 = new DiskSpool(dir);
    for (let i = 0; i < 5; i++) s1.append(batch(i * 10, 10));
    s1.ack(s1.peek()?.id as number);
    const s2 = new DiskSpool(dir);
    expect(s2.size().batches).toBe(4);
    expect(s2.recovered).toEqual({ tmpRemoved: [], corrupt: [] });
    expect(s2.append(batch(50, 1)).id).toBe(6);
    expect(drain(s2).map((b) => b.lines.split('\n')[0])).toEqual([10, 20, 30, 40, 50].map((i) => batch(i, 1).lines));
  });

  test('many batches: the index compacts and order holds', () => {
    const s = new DiskSpool(dir, { fsync: false });
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 700; i++) s.append(batch(next++, 1));
      for (let i = 0; i < 500; i++) {
        const e = s.peek();
        expect(e?.batch.lines).toBe(batch(expected++, 1).lines);
        s.ack(e?.id as number);
      }
    }
    expect(s.size().batches).toBe(3 * 200);
    for (const b of drain(s)) expect(b.lines).toBe(batch(expected++, 1).lines);
    expect(expected).toBe(next);
  });
});

describe('bound and policies', () => {
  const fileSize = (b: Batch): number => encodeSpoolFile(b).length;

  test("'reject-new' throws SpoolFullError carrying the batch and leaves the spool as it was", () => {
    const b = batch(0, 10);
    const s = new DiskSpool(dir, { maxBytes: fileSize(b) * 2 + 10, policy: 'reject-new' });
    s.append(b);
    s.append(batch(10, 10));
    const before = s.size();
    const third = batch(20, 10);
    let err: unknown;
    try {
      s.append(third);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpoolFullError);
    const full = err as SpoolFullError;
    expect(full.batch).toBe(third);
    expect(full.usedBytes).toBe(before.bytes);
    expect(full.maxBytes).toBe(s.maxBytes);
    expect(full.message).toMatch(/spool full .* policy reject-new/);
    expect(s.size()).toEqual(before);
    expect(spoolFiles()).toHaveLength(2);
    expect(drain(s).map((x) => x.count)).toEqual([10, 10]);
  });

  test("'drop-oldest' deletes the oldest batches to make room and reports what it dropped", () => {
    const one = fileSize(batch(0, 10));
    const s = new DiskSpool(dir, { maxBytes: one * 3 + 10, policy: 'drop-oldest' });
    for (let i = 0; i < 3; i++) expect(s.append(batch(i * 10, 10)).droppedBatches).toBe(0);
    const r = s.append(batch(30, 10));
    expect(r).toEqual({ id: 4, droppedBatches: 1, droppedPoints: 10, droppedIds: [1] });
    const r2 = s.append(batch(40, 20)); // twice the size: two must go
    expect(r2.droppedIds).toEqual([2, 3]);
    expect(r2.droppedPoints).toBe(20);
    expect(s.size().bytes).toBeLessThanOrEqual(s.maxBytes);
    expect(drain(s).map((b) => b.count)).toEqual([10, 20]);
  });

  test("'drop-oldest' never drops the pinned batch (the one being sent)", () => {
    const one = fileSize(batch(0, 10));
    const s = new DiskSpool(dir, { maxBytes: one * 2 + 10, policy: 'drop-oldest' });
    s.append(batch(0, 10));
    s.append(batch(10, 10));
    const head = s.peek(); // pins id 1
    expect(head?.id).toBe(1);
    expect(s.append(batch(20, 10)).droppedIds).toEqual([2]);
    expect(s.append(batch(30, 10)).droppedIds).toEqual([3]);
    s.ack(1);
    expect(s.append(batch(40, 10)).droppedIds).toEqual([]);
    expect(s.append(batch(50, 10)).droppedIds).toEqual([4]);
  });

  test("a batch larger than the bound is refused under 'drop-oldest' without dropping anything", () => {
    const s = new DiskSpool(dir, { maxBytes: fileSize(batch(0, 10)) + 5, policy: 'drop-oldest' });
    s.append(batch(0, 10));
    expect(() => s.append(batch(0, 100))).toThrow(/cannot hold a batch of 100 lines/);
    expect(s.size().batches).toBe(1);
  });

  test('bad options are refused', () => {
    expect(() => new DiskSpool(dir, { maxBytes: 0 })).toThrow(RangeError);
    expect(() => new DiskSpool(dir, { policy: 'x' as never })).toThrow(RangeError);
  });
});

describe('crash recovery', () => {
  test('leftover tmp files (a crash mid-append) are removed; complete files are kept', () => {
    const s1 = new DiskSpool(dir);
    s1.append(batch(0, 2));
    fs.writeFileSync(path.join(dir, `${spoolFileName(2)}.tmp`), '#thingwire-spool v1 count=2 by');
    const s2 = new DiskSpool(dir);
    expect(s2.recovered.tmpRemoved).toEqual([`${spoolFileName(2)}.tmp`]);
    expect(fs.readdirSync(dir)).toEqual([spoolFileName(1)]);
    expect(drain(s2)).toEqual([batch(0, 2)]);
  });

  test('a truncated file is moved to corrupt/ and reported at open; the others are replayed', () => {
    const s1 = new DiskSpool(dir);
    for (let i = 0; i < 3; i++) s1.append(batch(i * 10, 10));
    const victim = path.join(dir, spoolFileName(2));
    const full = fs.readFileSync(victim);
    fs.writeFileSync(victim, full.subarray(0, full.length - 7));
    const seen: CorruptFile[] = [];
    const s2 = new DiskSpool(dir, { onCorrupt: (c) => seen.push(c) });
    expect(s2.recovered.corrupt).toHaveLength(1);
    expect(s2.recovered.corrupt[0]).toEqual({ file: spoolFileName(2), movedTo: path.join(dir, 'corrupt', spoolFileName(2)), reason: expect.stringMatching(/^truncated/) });
    expect(seen).toEqual(s2.recovered.corrupt);
    expect(s2.corrupt).toEqual(seen);
    // Moved aside, never deleted: the bytes are all there.
    expect(fs.readFileSync(path.join(dir, 'corrupt', spoolFileName(2)))).toEqual(full.subarray(0, full.length - 7));
    expect(drain(s2).map((b) => b.lines)).toEqual([batch(0, 10).lines, batch(20, 10).lines]);
  });

  test('a file with no header (garbage) is moved aside at open', () => {
    fs.writeFileSync(path.join(dir, spoolFileName(7)), 'not a spool file at all');
    const s = new DiskSpool(dir);
    expect(s.recovered.corrupt.map((c) => [c.file, c.reason])).toEqual([[spoolFileName(7), 'no header line']]);
    expect(s.size().batches).toBe(0);
    // The sequence continues past the id it saw, so a new file never takes its name.
    expect(s.append(batch(0, 1)).id).toBe(8);
  });

  test('damage with the length intact is caught by the checksum when the batch is read', () => {
    const s1 = new DiskSpool(dir);
    s1.append(batch(0, 5));
    s1.append(batch(5, 5));
    const victim = path.join(dir, spoolFileName(1));
    const buf = fs.readFileSync(victim);
    buf[buf.length - 3] ^= 0x01;
    fs.writeFileSync(victim, buf);
    const seen: CorruptFile[] = [];
    const s2 = new DiskSpool(dir, { onCorrupt: (c) => seen.push(c) });
    expect(s2.recovered.corrupt).toEqual([]); // header and length are fine: found on read
    const e = s2.peek();
    expect(e?.batch).toEqual(batch(5, 5));
    expect(seen).toEqual([{ file: spoolFileName(1), movedTo: path.join(dir, 'corrupt', spoolFileName(1)), reason: 'checksum mismatch' }]);
    expect(s2.size().batches).toBe(1);
  });

  test('moving aside never overwrites an earlier corrupt file of the same name', () => {
    fs.mkdirSync(path.join(dir, 'corrupt'));
    fs.writeFileSync(path.join(dir, 'corrupt', spoolFileName(1)), 'older');
    fs.writeFileSync(path.join(dir, spoolFileName(1)), 'newer');
    const s = new DiskSpool(dir);
    expect(s.recovered.corrupt[0].movedTo).toBe(path.join(dir, 'corrupt', `${spoolFileName(1)}.1`));
    expect(fs.readFileSync(path.join(dir, 'corrupt', spoolFileName(1)), 'utf8')).toBe('older');
  });

  test('a file that vanished from under the spool is reported and skipped', () => {
    const s = new DiskSpool(dir);
    s.append(batch(0, 1));
    s.append(batch(1, 1));
    fs.rmSync(path.join(dir, spoolFileName(1)));
    expect(s.peek()?.batch).toEqual(batch(1, 1));
    expect(s.corrupt).toEqual([{ file: spoolFileName(1), movedTo: undefined, reason: 'file vanished' }]);
  });

  test('files that are not spool files are left alone', () => {
    fs.writeFileSync(path.join(dir, 'README'), 'x');
    fs.writeFileSync(path.join(dir, '12.lp'), 'x');
    const s = new DiskSpool(dir);
    expect(s.size().batches).toBe(0);
    expect(s.recovered).toEqual({ tmpRemoved: [], corrupt: [] });
    expect(fs.readdirSync(dir).sort()).toEqual(['12.lp', 'README']);
  });

  test('the directory is created when missing', () => {
    const sub = path.join(dir, 'spool', 'store-1');
    const s = new DiskSpool(sub);
    s.append(batch(0, 1));
    expect(fs.readdirSync(sub)).toEqual([spoolFileName(1)]);
  });
});
