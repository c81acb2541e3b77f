/**
 * The window node's journal: what it took since its last snapshot, so that a crash (kill -9, power
 * loss aside) loses nothing of its windows. The snapshot is written every minute; without the journal
 * the readings of up to that minute were in the store (and acknowledged to the broker, so never
 * delivered again) but missing from the rollups for good.
 *
 * Each ingest is one line, `{"s":<mark>,"n":<wall ms>,"p":<payload>}`, and each clock tick that closed
 * windows (idle timeouts, eviction) `{"s":<mark>,"n":<wall ms>,"t":1}`, appended with a synchronous write before the engine takes it: in the file (the kernel's page cache)
 * before anything downstream can confirm the reading, so a killed process leaves it on disk. No fsync:
 * a power loss can take the last seconds (as it can from the store's own buffers).
 *
 * Files are `<base>.journal-<first mark>`. A save rotates to a new file when it starts; once the
 * snapshot is written the files before it are deleted (WindowPersistence). On start every file is read
 * in order and replayed over the snapshot (WindowEngine.replay); a torn last line (a crash mid-write)
 * is skipped. Marks only grow, across restarts too. No Node-RED here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

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
  /** Lines that could not be used (not JSON, or not a record), besides a torn last line. */
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

export class Journal {
  private readonly dir: string;
  private readonly prefix: string;
  /** The open file (its descriptor and first mark), or none until the next append. */
  private fd: number | null = null;
  private current: number | null = null;
  private lastMark = 0;

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

  /** Reads every record in order; marks continue after the highest. */
  load(): JournalLoad {
    const res: JournalLoad = { records: [], bad: 0, last: 0, files: 0, bytes: 0 };
    for (const [, file] of this.files()) {
      const text = fs.readFileSync(file, 'utf8');
      res.files++;
      res.bytes += text.length;
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
    this.continueAfter(res.last);
    return res;
  }

  /**
   * Appends one record (the next mark) and returns its mark. Throws what the write threw (the caller
   * warns; the engine still takes the reading). A payload JSON cannot hold (a cycle, a BigInt) throws too.
   */
  append(now: number, payload: unknown): number {
    const body = JSON.stringify(payload) as string | undefined;
    if (body === undefined) throw new TypeError(`a payload of type ${typeof payload} cannot be journaled (not JSON)`);
    return this.write((s) => `{"s":${s},"n":${now},"p":${body}}\n`);
  }

  /** Appends a clock tick that closed windows; returns its mark. */
  appendTick(now: number): number {
    return this.write((s) => `{"s":${s},"n":${now},"t":1}\n`);
  }

  private write(lineOf: (mark: number) => string): number {
    const s = this.lastMark + 1;
    const line = lineOf(s);
    try {
      if (this.fd === null) {
        fs.mkdirSync(this.dir, { recursive: true });
        this.fd = fs.openSync(path.join(this.dir, `${this.prefix}${s}`), 'a');
        this.current = s;
      }
      fs.writeSync(this.fd, line);
    } catch (e) {
      // A write that failed may have left part of its line: the next record goes to a new file (after a
      // torn last line, which load() skips), under a mark of its own.
      this.lastMark = s;
      try {
        this.closeFile();
      } catch {
        // The write's error is the one to report.
      }
      throw e;
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
