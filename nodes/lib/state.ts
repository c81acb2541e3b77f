/**
 * Node state that survives redeploys and restarts: one JSON file per node under
 * `<DATA_DIR>/state/<type>/<node id>.json`, written atomically (temporary file,
 * fsync, rename, fsync of the directory) so a crash mid-write leaves the previous
 * snapshot intact. A file that cannot be read or parsed is moved aside to
 * `<name>.corrupt-<time>` (kept for inspection, never silently deleted) and the
 * node starts empty. Pure Node.js: no Node-RED import.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { TimeSlicer } from './slice';

/** saveStream writes when this many bytes are held. */
const STREAM_WRITE_BYTES = 1 << 20;

/** Thingwire's data directory inside Node-RED: the runtime's DATA_DIR, else <userDir>/thingwire. */
export function thingwireDataDir(settings: Record<string, unknown>): string {
  if (typeof settings.thingwireDataDir === 'string' && settings.thingwireDataDir !== '') return settings.thingwireDataDir;
  const userDir = typeof settings.userDir === 'string' ? settings.userDir : process.cwd();
  return path.join(userDir, 'thingwire');
}

/**
 * Node ids are hex in Node-RED, but flows can be hand-written: the file name is kept safe whatever they hold,
 * and distinct ids give distinct names. Characters outside [A-Za-z0-9._-] become `%xx` (below U+0100) or
 * `%uxxxxxx`; "" is "~", "." and ".." are escaped; ids whose name would pass 200 characters keep 150 and add
 * "~" and a SHA-256 of the id.
 */
export function safeFileName(id: string): string {
  if (id === '') return '~';
  if (id === '.' || id === '..') return id.replace(/\./g, '%2e');
  let s = '';
  for (const ch of id) {
    if (/^[A-Za-z0-9._-]$/.test(ch)) s += ch;
    else {
      const cp = ch.codePointAt(0)!;
      s += cp < 0x100 ? `%${cp.toString(16).padStart(2, '0')}` : `%u${cp.toString(16).padStart(6, '0')}`;
    }
  }
  return s.length <= 200 ? s : `${s.slice(0, 150)}~${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
}

export interface LoadResult<T> {
  /** The stored value, or undefined when there was none (or it was unreadable). */
  value: T | undefined;
  /** Set when a file existed but could not be used: what was wrong and where it was moved. */
  problem?: string;
}

export class StateFile<T = unknown> {
  readonly file: string;
  private writing: Promise<void> = Promise.resolve();

  constructor(dataDir: string, type: string, id: string) {
    this.file = path.join(dataDir, 'state', safeFileName(type), `${safeFileName(id)}.json`);
  }

  /** Reads the stored state. A corrupt file is moved aside and reported in `problem`. */
  load(validate?: (v: unknown) => v is T): LoadResult<T> {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { value: undefined };
      return { value: undefined, problem: `cannot read ${this.file}: ${(e as Error).message}` };
    }
    let why: string;
    try {
      const v: unknown = JSON.parse(text);
      if (!validate || validate(v)) return { value: v as T };
      why = 'unexpected content';
    } catch (e) {
      why = (e as Error).message;
    }
    const aside = `${this.file}.corrupt-${Date.now()}`;
    try {
      fs.renameSync(this.file, aside);
      return { value: undefined, problem: `state file ${this.file} is unusable (${why}); moved to ${aside}` };
    } catch (e) {
      return { value: undefined, problem: `state file ${this.file} is unusable (${why}) and could not be moved: ${(e as Error).message}` };
    }
  }

  /** Writes synchronously (for close handlers and tests). */
  saveSync(value: T): number {
    const text = JSON.stringify(value);
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      try {
        fs.writeSync(fd, text);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fsyncDir(path.dirname(this.file));
    return Buffer.byteLength(text);
  }

  /**
   * Writes in the background; writes are serialised (a save never overtakes the previous one).
   * The value is serialised now, so later changes to it are not part of this save.
   */
  save(value: T): Promise<number> {
    const text = JSON.stringify(value);
    return this.queue(async () => {
      await fs.promises.mkdir(path.dirname(this.file), { recursive: true });
      // Not the name saveSync uses: a synchronous save (a close handler) during this one cannot mix their bytes.
      await writeDurable(this.file, `${this.file}.tmp-async`, text);
      return Buffer.byteLength(text);
    });
  }

  /**
   * Writes in the background a state too large to serialise in one go (a node with thousands of series):
   * `parts()` is called when the save starts (after the saves before it) and gives the file's JSON text in
   * pieces, each a few hundred KB at most, which together must form one JSON value of type T. They are made,
   * encoded and written in slices of a few ms (../slice), so the event loop keeps running between them:
   * state that changes meanwhile lands in the pieces made after the change, so the file is not one instant's
   * state but each piece is (the caller makes each piece whole, e.g. one device's series). Durable as save().
   */
  saveStream(parts: () => Iterable<string>): Promise<number> {
    return this.queue(async () => {
      await fs.promises.mkdir(path.dirname(this.file), { recursive: true });
      let bytes = 0;
      await writeDurableWith(this.file, `${this.file}.tmp-async`, false, async (fh) => {
        const slicer = new TimeSlicer();
        // Each piece is encoded on its own (no joined megabyte strings: those go to V8's large-object space and
        // are only freed by a full collection) and the buffers are written together.
        let held: Buffer[] = [];
        let heldLength = 0;
        const flush = async (): Promise<void> => {
          const bufs = held;
          const length = heldLength;
          held = [];
          heldLength = 0;
          const { bytesWritten } = await fh.writev(bufs);
          // A short write (a full disk) fails this save; the previous file stays as it was.
          if (bytesWritten !== length) throw new Error(`short write to ${this.file}: ${bytesWritten} of ${length} bytes`);
          bytes += length;
          slicer.restart();
        };
        for (const piece of parts()) {
          const buf = Buffer.from(piece);
          held.push(buf);
          heldLength += buf.length;
          if (heldLength >= STREAM_WRITE_BYTES) await flush();
          else if (slicer.due()) await slicer.pause();
        }
        if (heldLength > 0) await flush();
      });
      return bytes;
    });
  }

  private queue(run: () => Promise<number>): Promise<number> {
    const p = this.writing.then(run, run);
    this.writing = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  /** Resolves when every save started so far has finished. */
  idle(): Promise<void> {
    return this.writing;
  }

  /** Deletes the stored state (for a node removed from the flows). */
  remove(): void {
    fs.rmSync(this.file, { force: true });
  }
}

/**
 * Replaces `file` with `text` durably: written to `tmp` (created, or truncated when `exclusive` is false),
 * fsynced, renamed over `file`, and the directory fsynced. On failure `tmp` is removed and `file` is untouched.
 */
export async function writeDurable(file: string, tmp: string, text: string, exclusive = false): Promise<void> {
  await writeDurableWith(file, tmp, exclusive, (fh) => fh.writeFile(text));
}

/** writeDurable with the content written by `write` (to the open temporary file, from its start). */
async function writeDurableWith(file: string, tmp: string, exclusive: boolean, write: (fh: fs.promises.FileHandle) => Promise<void>): Promise<void> {
  try {
    const fh = await fs.promises.open(tmp, exclusive ? 'wx' : 'w');
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  fsyncDir(path.dirname(file));
}

/** fsync a directory so a rename in it is durable (best effort: not every platform can). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms cannot open or fsync a directory: the rename is as durable as they allow.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
