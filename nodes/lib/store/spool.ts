/**
 * DiskSpool: a bounded FIFO of line-protocol batches on disk, so that an
 * outage of the time-series store loses nothing (and a restart replays it).
 * No Node-RED here; synchronous on purpose (a batch is ~5,000 lines, and a
 * sync append is what makes "it is on disk" true when append() returns).
 *
 * On disk, in `dir` (e.g. DATA_DIR/spool/<store-id>/):
 * - one file per batch, `<seq>.lp`, seq a 16-digit zero-padded, monotonically
 *   increasing sequence number (the FIFO order is the name order);
 * - each file is a one-line header then the batch's line protocol, as is:
 *     `#thingwire-spool v1 count=<lines> bytes=<body bytes> crc32=<8 hex>\n<line protocol>`
 *   The header is a line-protocol comment, so `tail -n +2` (or any line-protocol
 *   reader that skips `#` lines) reads the file directly; bytes and crc32 cover
 *   the body and catch truncated or damaged files;
 * - a file is written atomically: `<seq>.lp.tmp`, fsync, rename to `<seq>.lp`,
 *   fsync of the directory (where the platform allows it);
 * - `corrupt/`: files that failed their header, length or checksum check, moved
 *   aside (never deleted) and reported through `onCorrupt` and `corrupt`.
 * Opening a directory recovers it: leftover `*.tmp` files (a crash mid-append)
 * are removed, every `<seq>.lp` header is checked (length against the file
 * size), and the checksum is verified when the batch is read (peek).
 *
 * Bound: `maxBytes` over the file sizes. When an append does not fit, the
 * policy decides: 'reject-new' throws SpoolFullError (carrying the batch, so
 * the caller routes its lines to an error output); 'drop-oldest' deletes the
 * oldest batches (never the pinned one, see pin()) until it fits, and reports
 * how many batches and points it dropped.
 */
import * as fs from 'fs';
import * as path from 'path';
import { crc32 } from 'zlib';
import type { Batch } from './types';

export type SpoolPolicy = 'reject-new' | 'drop-oldest';

export interface SpoolOptions {
  /** Bound on the spool's total file size, in bytes. Default 1 GiB. */
  maxBytes?: number;
  /** What append() does when a batch does not fit. Default 'reject-new'. */
  policy?: SpoolPolicy;
  /** fsync files and the directory on append (default true; false only for benches and tests of speed). */
  fsync?: boolean;
  /** Called for every file moved to corrupt/ (at open or when read). */
  onCorrupt?: (c: CorruptFile) => void;
}

export interface CorruptFile {
  /** File name in the spool directory, e.g. "0000000000000042.lp". */
  file: string;
  /** Where it was moved (undefined when it had vanished). */
  movedTo?: string;
  reason: string;
}

export interface SpoolEntry {
  id: number;
  batch: Batch;
}

export interface AppendResult {
  /** The new batch's sequence number. */
  id: number;
  /** Batches and points deleted by 'drop-oldest' to make room (0 otherwise). */
  droppedBatches: number;
  droppedPoints: number;
  /** Their ids, oldest first. */
  droppedIds: number[];
}

export interface SpoolSize {
  batches: number;
  bytes: number;
}

/** Thrown by append() when the batch does not fit (policy 'reject-new', or too big to fit at all). */
export class SpoolFullError extends Error {
  readonly batch: Batch;
  /** Bytes the batch would take on disk, bytes in use, and the bound. */
  readonly needBytes: number;
  readonly usedBytes: number;
  readonly maxBytes: number;
  constructor(batch: Batch, needBytes: number, usedBytes: number, maxBytes: number, policy: SpoolPolicy) {
    super(
      needBytes > maxBytes
        ? `spool cannot hold a batch of ${batch.count} lines (${needBytes} bytes): bound is ${maxBytes} bytes`
        : `spool full (${usedBytes} of ${maxBytes} bytes used, policy ${policy}): batch of ${batch.count} lines (${needBytes} bytes) not spooled`,
    );
    this.name = 'SpoolFullError';
    this.batch = batch;
    this.needBytes = needBytes;
    this.usedBytes = usedBytes;
    this.maxBytes = maxBytes;
  }
}

interface IndexEntry {
  id: number;
  /** File size, header included. */
  bytes: number;
  count: number;
}

const FILE_RE = /^(\d{16})\.lp$/;
const HEADER_RE = /^#thingwire-spool v1 count=(\d+) bytes=(\d+) crc32=([0-9a-f]{8})$/;
/** A header is far shorter than this; a first line without "\n" within it is not a header. */
const HEADER_MAX = 128;
export const DEFAULT_SPOOL_MAX_BYTES = 1024 * 1024 * 1024;

export function spoolFileName(id: number): string {
  return `${String(id).padStart(16, '0')}.lp`;
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function headerLine(count: number, body: Buffer): string {
  return `#thingwire-spool v1 count=${count} bytes=${body.length} crc32=${hex8(crc32(body))}\n`;
}

/** Encodes a batch as a spool file: header line + body (what append() writes). */
export function encodeSpoolFile(batch: Batch): Buffer {
  const body = Buffer.from(batch.lines, 'utf8');
  return Buffer.concat([Buffer.from(headerLine(batch.count, body), 'latin1'), body]);
}

interface Header {
  count: number;
  bytes: number;
  crc: string;
  headerLen: number;
}

function parseHeader(buf: Buffer): Header | string {
  const nl = buf.indexOf(10);
  if (nl < 0 || nl > HEADER_MAX) return 'no header line';
  const m = HEADER_RE.exec(buf.toString('latin1', 0, nl));
  if (!m) return 'bad header';
  return { count: Number(m[1]), bytes: Number(m[2]), crc: m[3], headerLen: nl + 1 };
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

export class DiskSpool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly policy: SpoolPolicy;
  /** What opening the directory found: tmp files removed and files moved aside. */
  readonly recovered: { tmpRemoved: string[]; corrupt: CorruptFile[] };
  /** Every file moved aside since open (open-time ones included). */
  readonly corrupt: CorruptFile[] = [];

  private readonly doFsync: boolean;
  private readonly onCorrupt?: (c: CorruptFile) => void;
  /** Oldest first; `head` is the index of the oldest live entry. */
  private index: IndexEntry[] = [];
  private head = 0;
  private bytes = 0;
  private points = 0;
  private nextId = 1;
  private pinned: number | undefined;
  /** The last batch peek() read, so that a retried peek does not read the file again. */
  private cached: SpoolEntry | undefined;
  /** Reused for encoding and reading files: no 0.5 MB allocation per batch. */
  private scratch = Buffer.allocUnsafe(0);

  constructor(dir: string, opts: SpoolOptions = {}) {
    this.dir = dir;
    this.maxBytes = opts.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES;
    if (!(this.maxBytes > 0)) throw new RangeError(`spool maxBytes must be positive, got ${opts.maxBytes}`);
    this.policy = opts.policy ?? 'reject-new';
    if (this.policy !== 'reject-new' && this.policy !== 'drop-oldest') throw new RangeError(`unknown spool policy ${JSON.stringify(this.policy)}`);
    this.doFsync = opts.fsync ?? true;
    this.onCorrupt = opts.onCorrupt;
    fs.mkdirSync(dir, { recursive: true });
    this.recovered = { tmpRemoved: [], corrupt: [] };
    this.open();
    this.recovered.corrupt.push(...this.corrupt);
  }

  /** Scans the directory: removes tmp leftovers, indexes good files, moves bad ones aside. */
  private open(): void {
    const ids: number[] = [];
    let maxSeen = 0;
    for (const name of fs.readdirSync(this.dir)) {
      if (name.endsWith('.tmp')) {
        fs.rmSync(path.join(this.dir, name), { force: true });
        this.recovered.tmpRemoved.push(name);
        continue;
      }
      const m = FILE_RE.exec(name);
      if (!m) continue;
      const id = Number(m[1]);
      ids.push(id);
      if (id > maxSeen) maxSeen = id;
    }
    ids.sort((a, b) => a - b);
    const headBuf = Buffer.alloc(HEADER_MAX + 1);
    for (const id of ids) {
      const file = path.join(this.dir, spoolFileName(id));
      let size: number;
      let got: number;
      const fd = fs.openSync(file, 'r');
      try {
        size = fs.fstatSync(fd).size;
        got = fs.readSync(fd, headBuf, 0, headBuf.length, 0);
      } finally {
        fs.closeSync(fd);
      }
      const h = parseHeader(headBuf.subarray(0, got));
      if (typeof h === 'string') {
        this.moveAside(id, h);
        continue;
      }
      if (h.headerLen + h.bytes !== size) {
        this.moveAside(id, `${size < h.headerLen + h.bytes ? 'truncated' : 'too long'}: ${size} bytes on disk, header says ${h.headerLen + h.bytes}`);
        continue;
      }
      this.index.push({ id, bytes: size, count: h.count });
      this.bytes += size;
      this.points += h.count;
    }
    this.nextId = maxSeen + 1;
  }

  private moveAside(id: number, reason: string): void {
    const name = spoolFileName(id);
    const from = path.join(this.dir, name);
    const corruptDir = path.join(this.dir, 'corrupt');
    let movedTo: string | undefined;
    try {
      fs.mkdirSync(corruptDir, { recursive: true });
      let to = path.join(corruptDir, name);
      for (let n = 1; fs.existsSync(to); n++) to = path.join(corruptDir, `${name}.${n}`);
      fs.renameSync(from, to);
      movedTo = to;
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
      reason = `${reason} (file vanished)`;
    }
    this.report({ file: name, movedTo, reason });
  }

  private report(c: CorruptFile): void {
    this.corrupt.push(c);
    this.onCorrupt?.(c);
  }

  private fsyncDir(): void {
    let fd: number | undefined;
    try {
      fd = fs.openSync(this.dir, 'r');
      fs.fsyncSync(fd);
    } catch {
      // Some platforms (Windows) cannot open or fsync a directory: the rename is as durable as they allow.
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /**
   * Appends a batch at the tail; on disk (fsynced) when it returns. Throws
   * SpoolFullError when it does not fit under 'reject-new', or cannot fit at
   * all under 'drop-oldest' (then nothing is dropped).
   */
  append(batch: Batch): AppendResult {
    const data = this.encode(batch);
    const need = data.length;
    const result: AppendResult = { id: 0, droppedBatches: 0, droppedPoints: 0, droppedIds: [] };
    if (this.bytes + need > this.maxBytes) {
      if (this.policy === 'reject-new') throw new SpoolFullError(batch, need, this.bytes, this.maxBytes, this.policy);
      const pinnedBytes = this.pinned === undefined ? 0 : (this.find(this.pinned)?.bytes ?? 0);
      if (pinnedBytes + need > this.maxBytes) throw new SpoolFullError(batch, need, this.bytes, this.maxBytes, this.policy);
      const victims: IndexEntry[] = [];
      let freed = 0;
      for (let i = this.head; i < this.index.length && this.bytes - freed + need > this.maxBytes; i++) {
        const e = this.index[i];
        if (e.id === this.pinned) continue;
        victims.push(e);
        freed += e.bytes;
      }
      for (const e of victims) {
        this.remove(e.id);
        result.droppedBatches++;
        result.droppedPoints += e.count;
        result.droppedIds.push(e.id);
      }
    }
    const id = this.nextId++;
    const name = spoolFileName(id);
    const final = path.join(this.dir, name);
    const tmp = `${final}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off, data.length - off, off);
      if (this.doFsync) fs.fsyncSync(fd);
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fs.closeSync(fd);
    fs.renameSync(tmp, final);
    if (this.doFsync) this.fsyncDir();
    this.index.push({ id, bytes: need, count: batch.count });
    this.bytes += need;
    this.points += batch.count;
    result.id = id;
    return result;
  }

  /**
   * The oldest batch, read and verified, or undefined when the spool is empty.
   * A file that fails its checks is moved to corrupt/, reported, and the next
   * one is returned. The returned id is pinned (see pin()) until ack() or pin().
   */
  peek(): SpoolEntry | undefined {
    while (this.head < this.index.length) {
      const e = this.index[this.head];
      if (this.cached?.id === e.id) {
        this.pinned = e.id;
        return this.cached;
      }
      let buf: Buffer;
      try {
        buf = this.readFile(path.join(this.dir, spoolFileName(e.id)));
      } catch (err) {
        if (errno(err) !== 'ENOENT') throw err;
        this.forget(e.id);
        this.report({ file: spoolFileName(e.id), movedTo: undefined, reason: 'file vanished' });
        continue;
      }
      const why = this.verify(buf);
      if (typeof why === 'string') {
        this.forget(e.id);
        this.moveAside(e.id, why);
        continue;
      }
      this.cached = { id: e.id, batch: why };
      this.pinned = e.id;
      return this.cached;
    }
    return undefined;
  }

  private ensureScratch(n: number): Buffer {
    if (this.scratch.length < n) this.scratch = Buffer.allocUnsafe(Math.max(n, this.scratch.length * 2));
    return this.scratch;
  }

  /** encodeSpoolFile() into the scratch buffer (valid until the next encode or read). */
  private encode(batch: Batch): Buffer {
    const bodyLen = Buffer.byteLength(batch.lines, 'utf8');
    const buf = this.ensureScratch(HEADER_MAX + bodyLen);
    buf.write(batch.lines, HEADER_MAX, bodyLen, 'utf8');
    const header = headerLine(batch.count, buf.subarray(HEADER_MAX, HEADER_MAX + bodyLen));
    buf.write(header, HEADER_MAX - header.length, 'latin1');
    return buf.subarray(HEADER_MAX - header.length, HEADER_MAX + bodyLen);
  }

  /** A whole file, into the scratch buffer (valid until the next encode or read). */
  private readFile(file: string): Buffer {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = this.ensureScratch(size);
      let got = 0;
      while (got < size) {
        const n = fs.readSync(fd, buf, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    } finally {
      fs.closeSync(fd);
    }
  }

  private verify(buf: Buffer): Batch | string {
    const h = parseHeader(buf);
    if (typeof h === 'string') return h;
    if (buf.length !== h.headerLen + h.bytes) return `length ${buf.length} does not match header (${h.headerLen + h.bytes})`;
    const body = buf.subarray(h.headerLen);
    if (hex8(crc32(body)) !== h.crc) return 'checksum mismatch';
    return { lines: body.toString('utf8'), count: h.count };
  }

  /** Id of the oldest batch (without reading it), or undefined when empty. */
  headId(): number | undefined {
    return this.head < this.index.length ? this.index[this.head].id : undefined;
  }

  /** Deletes a batch (normally the one peek() returned). Unknown ids are ignored (e.g. already dropped). */
  ack(id: number): void {
    if (this.pinned === id) this.pinned = undefined;
    this.remove(id);
  }

  /**
   * Marks the batch a reader is sending, so 'drop-oldest' never deletes it from
   * under the reader; undefined clears. peek() pins what it returns; ack() unpins.
   */
  pin(id: number | undefined): void {
    this.pinned = id;
  }

  size(): SpoolSize {
    return { batches: this.index.length - this.head, bytes: this.bytes };
  }

  /** Points (lines) in the spool, from the headers. */
  pointCount(): number {
    return this.points;
  }

  private find(id: number): IndexEntry | undefined {
    for (let i = this.head; i < this.index.length; i++) if (this.index[i].id === id) return this.index[i];
    return undefined;
  }

  /** Takes an entry out of the index; returns it, or undefined when unknown. */
  private forget(id: number): IndexEntry | undefined {
    let e: IndexEntry | undefined;
    if (this.head < this.index.length && this.index[this.head].id === id) {
      e = this.index[this.head];
      this.head++;
      // Compact now and then so the array does not grow without bound.
      if (this.head === this.index.length) {
        this.index = [];
        this.head = 0;
      } else if (this.head >= 1024 && this.head * 2 >= this.index.length) {
        this.index = this.index.slice(this.head);
        this.head = 0;
      }
    } else {
      for (let i = this.head + 1; i < this.index.length; i++) {
        if (this.index[i].id === id) {
          e = this.index[i];
          this.index.splice(i, 1);
          break;
        }
      }
    }
    if (e === undefined) return undefined;
    this.bytes -= e.bytes;
    this.points -= e.count;
    if (this.cached?.id === id) this.cached = undefined;
    if (this.pinned === id) this.pinned = undefined;
    return e;
  }

  private remove(id: number): void {
    if (this.forget(id) === undefined) return;
    fs.rmSync(path.join(this.dir, spoolFileName(id)), { force: true });
  }
}
