/**
 * The window node's journal: what it took since its last snapshot, so that a crash (kill -9, power
 * loss aside) loses nothing of its windows. The snapshot is written every minute; without the journal
 * the readings of up to that minute were in the store (and acknowledged to the broker, so never
 * delivered again) but missing from the rollups for good.
 *
 * Each ingest is one record (its mark, the wall-clock ms, the payload) and each clock tick that closed windows
 * (idle timeouts, eviction) one (mark, wall ms), appended with a synchronous write before the engine takes it: in
 * the file (the kernel's page cache) before anything downstream can confirm the reading, so a killed process leaves
 * it on disk. No fsync: a power loss can take the last seconds (as it can from the store's own buffers).
 *
 * The file format (since 2026-12-05; the JSON lines before it are still read, see load()): the 8 bytes
 * `TWJ1\n\0\0\0`, then records, each a u32 (little-endian) length of what follows, a kind byte and its body:
 *   - READINGS: f64 mark, f64 wall ms, u8 1 when the payload is an array (else one reading), u32 count, then per
 *     reading u32 device, f64 ts, u16 metric count, (u32 name, f64 value) each, u16 tag count (0xffff: no tags
 *     object), (u32 key, u32 value) each; the u32s are ids of strings defined earlier in the same file;
 *   - STRING: u32 id, its UTF-8 bytes (the definitions a record needs go out in the same write, before it);
 *   - JSON: f64 mark, f64 wall ms, the payload's JSON (any payload READINGS cannot hold: a reading with another
 *     property or a value that is not a number, tags that are not text, anything not a reading);
 *   - TICK: f64 mark, f64 wall ms.
 * READINGS is what the pipeline sends (an array of plain readings): written without JSON, its numbers as their 8
 * bytes and its names once a file, it costs about a third of JSON.stringify's time and under half its bytes (in
 * the full starter flow at 100,000 readings/s the JSON journal was ~10 % of the main thread).
 *
 * Files are `<base>.journal-<first mark>`. A save rotates to a new file when it starts; once the
 * snapshot is written the files before it are deleted (WindowPersistence). On start every file is read
 * in order and replayed over the snapshot (WindowEngine.replay); a torn last record (a crash mid-write)
 * is skipped. A file is never appended to after a failed write (the next record opens a new one), so a torn
 * record can only be a file's last. Marks only grow, across restarts too. No Node-RED here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isPlainObject } from '../lib/names';

export interface JournalRecord {
  /** Mark: one more than the record before. */
  s: number;
  /** Wall-clock ms when it was taken. */
  n: number;
  /** The payload as the engine took it (an ingest). */
  p?: unknown;
  /** A clock tick (WindowEngine.advance at `n`). */
  t?: 1;
}

export interface JournalLoad {
  records: JournalRecord[];
  /** Records that could not be used (not JSON, not a record, an unknown kind), besides a torn last one. */
  bad: number;
  /** The highest mark read (0 when none). */
  last: number;
  files: number;
  bytes: number;
}

function isRecord(v: unknown): v is JournalRecord {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const r = v as Partial<JournalRecord>;
  return typeof r.s === 'number' && Number.isInteger(r.s) && typeof r.n === 'number' && Number.isFinite(r.n) && ('p' in r || r.t === 1);
}

/** The first bytes of a file in the binary format (files without them are JSON lines, written before 2026-12-05). */
const MAGIC = Buffer.from('TWJ1\n\0\0\0', 'latin1');
const K_READINGS = 1;
const K_STRING = 2;
const K_JSON = 3;
const K_TICK = 4;
/** u16 tag count meaning "no tags object". */
const NO_TAGS = 0xffff;
/**
 * String ids a file may give (device, metric and tag names): past it, readings with new names are written as JSON
 * (a file lasts until the next snapshot, a minute by default; this bounds the map a fleet of churning ids could grow).
 */
const MAX_IDS = 100_000;
/** The encoding buffer is let go of after a record larger than this (it grows to the largest record). */
const KEEP_BYTES = 1 << 20;

const hasOwn = Object.prototype.hasOwnProperty;

/** Thrown inside the READINGS encoder: the payload is written as JSON instead. */
const NOT_READINGS = new Error('not plain readings');

/** Encodes records into one growing buffer, with the current file's string ids. */
class Encoder {
  buf: Buffer = Buffer.allocUnsafe(64 * 1024);
  pos = 0;
  /** String -> id in the open file (reset with each new file). */
  ids = new Map<string, number>();
  /** Strings given an id by the record being encoded (taken back when it falls back to JSON). */
  private added: string[] = [];
  /**
   * Per reading of the record being encoded, as define() counted them: its metrics, then its tags (NO_TAGS: none);
   * `nCounts` of them are in use. (An array emptied with `length = 0` for each record gives its storage back, and
   * growing it again for a 10,000-reading record allocated ~45 bytes a reading.)
   */
  private counts = new Uint32Array(2 * 1024);
  private nCounts = 0;
  /**
   * The numbers are written through this view of `buf`: Buffer's writeDoubleLE and writeUInt32LE are calls V8 does not
   * inline, and a number passed to one is boxed, ~16 bytes each (the encoder allocated ~160 bytes a reading).
   */
  private view: DataView = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);

  reset(): void {
    this.pos = 0;
    this.added.length = 0;
    this.nCounts = 0;
  }

  /** Forgets what the record being encoded defined (it is not written): its ids are free again. */
  rollback(): void {
    for (const s of this.added) this.ids.delete(s);
    this.reset();
  }

  newFile(): void {
    this.ids.clear();
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.setBuffer(next);
  }

  private setBuffer(b: Buffer): void {
    this.buf = b;
    this.view = new DataView(b.buffer, b.byteOffset, b.length);
  }

  /** After a write: a buffer grown past KEEP_BYTES by one big record is not kept. */
  trim(): void {
    if (this.buf.length > KEEP_BYTES) this.setBuffer(Buffer.allocUnsafe(64 * 1024));
  }

  /** The id of `s` in this file, defining it (a STRING record, ahead of the record being encoded) when new. */
  private id(s: string): number {
    let id = this.ids.get(s);
    if (id !== undefined) return id;
    if (this.ids.size >= MAX_IDS) throw NOT_READINGS;
    id = this.ids.size;
    this.ids.set(s, id);
    this.added.push(s);
    const max = 3 * s.length;
    this.ensure(9 + max);
    const at = this.pos;
    this.pos += 4;
    this.buf[this.pos++] = K_STRING;
    this.view.setUint32(this.pos, id, true);
    this.pos += 4;
    this.pos += this.buf.write(s, this.pos, max, 'utf8');
    this.view.setUint32(at, this.pos - at - 4, true);
    return id;
  }

  private head(kind: number, mark: number, now: number): number {
    this.ensure(21);
    const at = this.pos;
    this.pos += 4;
    this.buf[this.pos++] = kind;
    this.view.setFloat64(this.pos, mark, true);
    this.view.setFloat64(this.pos + 8, now, true);
    this.pos += 16;
    return at;
  }

  private end(at: number): void {
    this.view.setUint32(at, this.pos - at - 4, true);
  }

  tick(mark: number, now: number): void {
    this.end(this.head(K_TICK, mark, now));
  }

  /** The payload as READINGS when it is plain readings, else as JSON (throws what JSON.stringify throws). */
  ingest(mark: number, now: number, payload: unknown): void {
    try {
      this.readings(mark, now, payload);
      return;
    } catch (e) {
      if (e !== NOT_READINGS) throw e;
    }
    // Back to where this record began, its string definitions taken back.
    this.rollback();
    const body = JSON.stringify(payload) as string | undefined;
    if (body === undefined) throw new TypeError(`a payload of type ${typeof payload} cannot be journaled (not JSON)`);
    const at = this.head(K_JSON, mark, now);
    const max = 3 * body.length;
    this.ensure(max);
    this.pos += this.buf.write(body, this.pos, max, 'utf8');
    this.end(at);
  }

  private readings(mark: number, now: number, payload: unknown): void {
    const isArray = Array.isArray(payload);
    const list = isArray ? (payload as unknown[]) : [payload];
    // String definitions first (each record of its own), then this record: its start is known once they are out.
    // So readings are walked twice: ids and counts, then the record (ids are Map hits the second time).
    for (let i = 0; i < list.length; i++) this.define(list[i]);
    const at = this.head(K_READINGS, mark, now);
    this.ensure(5);
    this.buf[this.pos++] = isArray ? 1 : 0;
    this.view.setUint32(this.pos, list.length, true);
    this.pos += 4;
    const ids = this.ids;
    const counts = this.counts;
    for (let i = 0; i < list.length; i++) {
      const r = list[i] as { device: string; ts: number; metrics: Record<string, number>; tags?: Record<string, string> };
      const m = r.metrics;
      const nm = counts[2 * i];
      const t = r.tags;
      const nt = counts[2 * i + 1];
      this.ensure(16 + 12 * nm + 2 + (nt === NO_TAGS ? 0 : 8 * nt));
      const v = this.view;
      let p = this.pos;
      v.setUint32(p, ids.get(r.device)!, true);
      v.setFloat64(p + 4, r.ts, true);
      v.setUint16(p + 12, nm, true);
      p += 14;
      for (const k in m) {
        if (!hasOwn.call(m, k)) continue;
        v.setUint32(p, ids.get(k)!, true);
        v.setFloat64(p + 4, m[k], true);
        p += 12;
      }
      v.setUint16(p, nt, true);
      p += 2;
      if (t !== undefined) {
        for (const k in t) {
          if (!hasOwn.call(t, k)) continue;
          v.setUint32(p, ids.get(k)!, true);
          v.setUint32(p + 4, ids.get(t[k])!, true);
          p += 8;
        }
      }
      this.pos = p;
    }
    this.end(at);
  }

  /** Checks that `v` is a plain reading READINGS holds exactly and gives its strings ids; throws NOT_READINGS if not. */
  private define(v: unknown): void {
    if (!isPlainObject(v)) throw NOT_READINGS;
    for (const k in v) {
      if (hasOwn.call(v, k) && k !== 'device' && k !== 'ts' && k !== 'metrics' && k !== 'tags') throw NOT_READINGS;
    }
    const { device, ts, metrics, tags } = v as Record<string, unknown>;
    if (typeof device !== 'string' || typeof ts !== 'number' || !isPlainObject(metrics)) throw NOT_READINGS;
    // A tags property holding undefined: JSON leaves it out, and so does READINGS (no tags object).
    if (tags !== undefined && !isPlainObject(tags)) throw NOT_READINGS;
    this.id(device);
    let nm = 0;
    for (const k in metrics) {
      if (!hasOwn.call(metrics, k)) continue;
      if (typeof metrics[k] !== 'number') throw NOT_READINGS;
      this.id(k);
      nm++;
    }
    if (nm > 0xffff) throw NOT_READINGS;
    let nt = NO_TAGS;
    if (tags !== undefined) {
      nt = 0;
      for (const k in tags) {
        if (!hasOwn.call(tags, k)) continue;
        const tv = tags[k];
        if (typeof tv !== 'string') throw NOT_READINGS;
        this.id(k);
        this.id(tv);
        nt++;
      }
      if (nt >= NO_TAGS) throw NOT_READINGS;
    }
    if (this.nCounts + 2 > this.counts.length) {
      const more = new Uint32Array(2 * this.counts.length);
      more.set(this.counts);
      this.counts = more;
    }
    this.counts[this.nCounts++] = nm;
    this.counts[this.nCounts++] = nt;
  }
}

/** Parses a binary file's records (after MAGIC) into `res`; a torn last record ends it quietly. */
function parseBinary(b: Buffer, res: JournalLoad): void {
  const strings: string[] = [];
  let pos = MAGIC.length;
  while (pos < b.length) {
    if (pos + 4 > b.length) return; // torn: not even the length
    const len = b.readUInt32LE(pos);
    const end = pos + 4 + len;
    if (end > b.length || len < 1) {
      // Past the file's end: a torn last record (a crash mid-write). A zero length cannot be written: corrupt.
      if (len < 1) res.bad++;
      return;
    }
    const kind = b[pos + 4];
    let p = pos + 5;
    pos = end;
    try {
      if (kind === K_STRING) {
        strings[b.readUInt32LE(p)] = b.toString('utf8', p + 4, end);
        continue;
      }
      const s = b.readDoubleLE(p);
      const n = b.readDoubleLE(p + 8);
      p += 16;
      if (!Number.isInteger(s) || !Number.isFinite(n)) {
        res.bad++;
        continue;
      }
      let rec: JournalRecord;
      if (kind === K_TICK) rec = { s, n, t: 1 };
      else if (kind === K_JSON) rec = { s, n, p: JSON.parse(b.toString('utf8', p, end)) as unknown };
      else if (kind === K_READINGS) rec = { s, n, p: readings(b, p, end, strings) };
      else {
        res.bad++;
        continue;
      }
      res.records.push(rec);
      if (s > res.last) res.last = s;
    } catch {
      // A record whose body does not parse (a string id never defined, a body shorter than it says): skipped.
      res.bad++;
    }
  }
}

function str(strings: readonly string[], id: number): string {
  const s = strings[id];
  if (s === undefined) throw new RangeError(`string ${id} is not defined`);
  return s;
}

function readings(b: Buffer, p: number, end: number, strings: readonly string[]): unknown {
  const isArray = b[p] === 1;
  const count = b.readUInt32LE(p + 1);
  p += 5;
  const out: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const device = str(strings, b.readUInt32LE(p));
    const ts = b.readDoubleLE(p + 4);
    const nm = b.readUInt16LE(p + 12);
    p += 14;
    const metrics: Record<string, number> = {};
    for (let j = 0; j < nm; j++) {
      metrics[str(strings, b.readUInt32LE(p))] = b.readDoubleLE(p + 4);
      p += 12;
    }
    const nt = b.readUInt16LE(p);
    p += 2;
    const r: { device: string; ts: number; metrics: Record<string, number>; tags?: Record<string, string> } = { device, ts, metrics };
    if (nt !== NO_TAGS) {
      const tags: Record<string, string> = {};
      for (let j = 0; j < nt; j++) {
        tags[str(strings, b.readUInt32LE(p))] = str(strings, b.readUInt32LE(p + 4));
        p += 8;
      }
      r.tags = tags;
    }
    if (p > end) throw new RangeError('a READINGS record longer than its length');
    out.push(r);
  }
  if (!isArray) {
    if (out.length !== 1) throw new RangeError('a single reading record without one reading');
    return out[0];
  }
  return out;
}

/** A file written before 2026-12-05: one JSON line a record; a torn last line is skipped quietly. */
function parseLines(text: string, res: JournalLoad): void {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      // A crash mid-write leaves the file's last line torn: nothing after it was ever taken.
      if (i !== lines.length - 1) res.bad++;
      continue;
    }
    if (!isRecord(rec)) {
      res.bad++;
      continue;
    }
    res.records.push(rec);
    if (rec.s > res.last) res.last = rec.s;
  }
}

export class Journal {
  private readonly dir: string;
  private readonly prefix: string;
  /** The open file (its descriptor and first mark), or none until the next append. */
  private fd: number | null = null;
  private current: number | null = null;
  private lastMark = 0;
  private readonly enc = new Encoder();

  /** `base`: the state file's path without `.json` (the journal's files sit next to it). */
  constructor(base: string) {
    this.dir = path.dirname(base);
    this.prefix = `${path.basename(base)}.journal-`;
  }

  /** The mark of the last record appended (or read by load()). */
  get last(): number {
    return this.lastMark;
  }

  /** Marks continue after `mark` (the highest one a snapshot holds). */
  continueAfter(mark: number): void {
    if (mark > this.lastMark) this.lastMark = mark;
  }

  /** The journal's files, oldest first: [first mark, path]. */
  files(): Array<[number, string]> {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: Array<[number, string]> = [];
    for (const name of names) {
      if (!name.startsWith(this.prefix)) continue;
      const first = Number(name.slice(this.prefix.length));
      if (Number.isInteger(first) && first > 0) out.push([first, path.join(this.dir, name)]);
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  /** Reads every record in order (binary files and the JSON lines of before); marks continue after the highest. */
  load(): JournalLoad {
    const res: JournalLoad = { records: [], bad: 0, last: 0, files: 0, bytes: 0 };
    for (const [, file] of this.files()) {
      const b = fs.readFileSync(file);
      res.files++;
      res.bytes += b.length;
      if (b.length >= MAGIC.length && b.subarray(0, MAGIC.length).equals(MAGIC)) parseBinary(b, res);
      else parseLines(b.toString('utf8'), res);
    }
    this.continueAfter(res.last);
    return res;
  }

  /**
   * Appends one record (the next mark) and returns its mark. Throws what the write threw (the caller
   * warns; the engine still takes the reading). A payload JSON cannot hold (a cycle, a BigInt) throws too.
   */
  append(now: number, payload: unknown): number {
    const s = this.lastMark + 1;
    // A new file's string ids start afresh.
    if (this.fd === null) this.enc.newFile();
    this.enc.reset();
    try {
      this.enc.ingest(s, now, payload);
    } catch (e) {
      // Not journaled (not JSON): no mark used, nothing of it kept.
      this.enc.rollback();
      throw e;
    }
    return this.write(s);
  }

  /** Appends a clock tick that closed windows; returns its mark. */
  appendTick(now: number): number {
    const s = this.lastMark + 1;
    if (this.fd === null) this.enc.newFile();
    this.enc.reset();
    this.enc.tick(s, now);
    return this.write(s);
  }

  /** Writes the encoded record (mark `s`), opening its file first when none is open. */
  private write(s: number): number {
    try {
      if (this.fd === null) {
        fs.mkdirSync(this.dir, { recursive: true });
        const file = path.join(this.dir, `${this.prefix}${s}`);
        // A file of this name can only be one a crash left before its first record was whole (marks only grow, so a
        // record in it would have made load() continue past it). Holding the header alone it is appended to;
        // anything else is moved aside (\`<name>.aside-<ms>\`, which no load reads), never written after.
        let size = 0;
        try {
          size = fs.statSync(file).size;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
        const headerOnly = size === MAGIC.length && fs.readFileSync(file).equals(MAGIC);
        if (size > 0 && !headerOnly) fs.renameSync(file, `${file}.aside-${Date.now()}`);
        this.fd = fs.openSync(file, 'a');
        this.current = s;
        if (!headerOnly) fs.writeSync(this.fd, MAGIC);
      }
      fs.writeSync(this.fd, this.enc.buf, 0, this.enc.pos);
    } catch (e) {
      // A write that failed may have left part of its record: the next record goes to a new file (a torn last
      // record here, which load() skips), under a mark of its own.
      this.lastMark = s;
      try {
        this.closeFile();
      } catch {
        // The write's error is the one to report.
      }
      throw e;
    } finally {
      this.enc.trim();
    }
    this.lastMark = s;
    return s;
  }

  /**
   * Closes the open file: the next append starts a new one. Returns the first mark the next file
   * will hold; deleteBefore(it) after a snapshot taken from now on removes what that snapshot holds.
   */
  rotate(): number {
    this.closeFile();
    return this.lastMark + 1;
  }

  /** Deletes the files whose records are all below `mark` (not the open file). */
  deleteBefore(mark: number): void {
    const list = this.files();
    for (let i = 0; i < list.length; i++) {
      const [first, file] = list[i];
      if (first === this.current) continue;
      const next = i + 1 < list.length ? list[i + 1][0] : this.lastMark + 1;
      if (first < mark && next <= mark) fs.rmSync(file, { force: true });
    }
  }

  /** Deletes every file (the open one too). */
  removeAll(): void {
    this.closeFile();
    for (const [, file] of this.files()) fs.rmSync(file, { force: true });
  }

  close(): void {
    this.closeFile();
  }

  private closeFile(): void {
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      this.current = null;
      fs.closeSync(fd);
    }
  }
}
