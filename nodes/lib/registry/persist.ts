/**
 * The registry's file: one JSON document at a path of the caller's choice, written the way
 * nodes/lib/state.ts writes node state (temporary file, fsync, rename, fsync of the directory),
 * so a crash mid-write leaves the previous version intact. Writes are serialised. Pure Node.js.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsyncDir } from '../state';

export type ReadResult = { kind: 'missing' } | { kind: 'ok'; value: unknown } | { kind: 'corrupt'; why: string };

/**
 * Reads and parses the file. A file that exists but cannot be read (permissions, a directory...)
 * throws: starting empty would overwrite it at the next save.
 */
export function readJson(file: string): ReadResult {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw new Error(`cannot read the registry file ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return { kind: 'ok', value: JSON.parse(text) as unknown };
  } catch (e) {
    return { kind: 'corrupt', why: (e as Error).message };
  }
}

/** Moves a file aside to `<file>.<label>-<time>` (kept for inspection); returns the new name. */
export function moveAside(file: string, label: string): string {
  const aside = `${file}.${label}-${Date.now()}`;
  fs.renameSync(file, aside);
  return aside;
}

/** Copies a file to `<file>.<label>-<time>`; returns the copy's name. */
export function copyAside(file: string, label: string): string {
  const aside = `${file}.${label}-${Date.now()}`;
  fs.copyFileSync(file, aside);
  return aside;
}

export class AtomicFile {
  private writing: Promise<unknown> = Promise.resolve();

  constructor(readonly file: string) {}

  /** Writes `text` in the background, after every earlier write; resolves with the bytes written. */
  write(text: string): Promise<number> {
    const run = (): Promise<number> => writeAtomic(this.file, text);
    const p = this.writing.then(run, run);
    this.writing = p.catch(() => undefined);
    return p;
  }

  /** Resolves when every write started so far has finished. */
  idle(): Promise<void> {
    return this.writing.then(() => undefined);
  }
}

async function writeAtomic(file: string, text: string): Promise<number> {
  const dir = path.dirname(file);
  await fs.promises.mkdir(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.promises.open(tmp, 'w', 0o600);
  try {
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
  return Buffer.byteLength(text);
}

