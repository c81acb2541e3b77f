/**
 * The cold tier's storage: an ArchiveTarget holds whole partition files under '/'-separated keys
 * (cold/<safe rule>/<YYYY>/<YYYY-MM-DD>.g<generation>.parquet, see manifest.ts coldKey). Retention
 * only ever puts a file it has written and verified, reads one back, asks its size, removes it and
 * lists a prefix: the smallest interface an object store also offers, so a bucket can be added
 * beside the DirectoryTarget here.
 *
 * DirectoryTarget keeps the objects as files under a root directory (a local disk, an NFS or SMB
 * mount). A put copies into <root>/.tmp/ first, hashing (SHA-256) while it copies, fsyncs, then
 * renames into place and fsyncs the directory: a crash leaves either the old object or the new one
 * under the key, never a partial file (a stale temporary file may stay in .tmp/; removeStaleTemps()
 * clears it). Keys are checked before any file system call: no '..' or '.' segments, no absolute
 * keys, no empty segments, no backslashes or control characters, and '.tmp/' is reserved.
 *
 * An S3-style target would implement the same interface with: put = PutObject streamed from the
 * local file (multipart upload over ~64 MiB, completed only when every part is in, so the object
 * appears whole or not at all), the SHA-256 computed locally while streaming and sent as
 * x-amz-checksum-sha256 so the server rejects a corrupted upload; get = GetObject streamed to a
 * temporary local file then renamed; stat = HeadObject (404 -> null); remove = DeleteObject
 * (idempotent); list = ListObjectsV2 with Prefix, following continuation tokens. Keys map 1:1 to
 * object names under a configured key prefix. Pure Node.js: no Node-RED import.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { preview } from '../names';
import { fsyncDir } from '../state';
import { StoreError } from '../store/types';

export interface ArchiveTarget {
  /** For logs and errors, e.g. "archive directory /mnt/cold". */
  readonly description: string;
  /** Stores the local file under `key` (replacing what was there, atomically); returns its size and SHA-256 (hex). */
  put(localFile: string, key: string): Promise<{ bytes: number; sha256: string }>;
  /** Copies the object to `localFile` (written whole or not at all). Throws a StoreError when the key holds nothing. */
  get(key: string, localFile: string): Promise<void>;
  /** The object's size, or null when the key holds nothing. */
  stat(key: string): Promise<{ bytes: number } | null>;
  /** Removes the object; removing a missing key is not an error. */
  remove(key: string): Promise<void>;
  /** Every key that starts with `prefix` (a plain string prefix, as S3's), sorted. */
  list(prefix: string): Promise<string[]>;
  /**
   * The local file holding `key`, for targets that are local directories: queries and restores read it
   * in place. Remote targets leave it out; the reader then fetches the object with get() into a temporary file.
   */
  localPath?(key: string): string;
}

/** Longest key accepted (S3's own limit is 1,024 bytes). */
export const MAX_KEY_LENGTH = 1024;
const TMP_DIR = '.tmp';
const COPY_CHUNK = 1 << 20;
// eslint-disable-next-line no-control-regex
const BAD_CHAR_RE = /[\u0000-\u001f\u007f\\]/;

/**
 * Why `key` is not a safe relative '/'-separated path, or undefined when it is. Also used for the
 * manifest's relative file paths. `allowEmpty` lets a list prefix be "" or end with '/'.
 */
export function keyProblem(key: unknown, allowEmpty = false): string | undefined {
  if (typeof key !== 'string') return `must be a string, got ${typeof key}`;
  if (key === '') return allowEmpty ? undefined : 'must not be empty';
  if (key.length > MAX_KEY_LENGTH) return `is longer than ${MAX_KEY_LENGTH} characters`;
  if (key.startsWith('/')) return 'must be relative (no leading /)';
  if (BAD_CHAR_RE.test(key)) return 'must not hold backslashes or control characters';
  const segments = key.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s === '') {
      if (allowEmpty && i === segments.length - 1) continue;
      return 'must not have empty segments (//, or a trailing /)';
    }
    if (s === '.' || s === '..') return `must not have a "${s}" segment`;
    if (s.length > 255) return 'has a segment longer than 255 characters';
  }
  return undefined;
}

function checkKey(key: string, what: string, allowEmpty = false): void {
  const why = keyProblem(key, allowEmpty) ?? (key.split('/')[0] === TMP_DIR ? `must not start with ${TMP_DIR}/ (reserved)` : undefined);
  if (why !== undefined) throw new StoreError(`${what} ${preview(key, 80)} ${why}`, { retryable: false });
}

/** Copies src to dst (created, must not exist), hashing while copying, and fsyncs dst. */
async function copyHashed(src: string, dst: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const input = await fs.promises.open(src, 'r');
  try {
    const output = await fs.promises.open(dst, 'wx');
    try {
      const buf = Buffer.allocUnsafe(COPY_CHUNK);
      for (;;) {
        const { bytesRead } = await input.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        hash.update(chunk);
        let off = 0;
        while (off < bytesRead) off += (await output.write(chunk, off, bytesRead - off)).bytesWritten;
        bytes += bytesRead;
      }
      await output.sync();
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}


function tmpName(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}.part`;
}

function ioError(what: string, e: unknown): StoreError {
  return new StoreError(`${what}: ${(e as Error).message}`, { retryable: true, cause: e });
}

export class DirectoryTarget implements ArchiveTarget {
  readonly root: string;
  readonly description: string;

  constructor(root: string) {
    if (typeof root !== 'string' || root === '') throw new StoreError('archive directory must be a non-empty path', { retryable: false });
    this.root = path.resolve(root);
    this.description = `archive directory ${this.root}`;
  }

  /** The file of a key (after checking it). */
  pathOf(key: string): string {
    checkKey(key, `${this.description}: key`);
    return path.join(this.root, ...key.split('/'));
  }

  localPath(key: string): string {
    return this.pathOf(key);
  }

  async put(localFile: string, key: string): Promise<{ bytes: number; sha256: string }> {
    const final = this.pathOf(key);
    const tmpDir = path.join(this.root, TMP_DIR);
    const tmp = path.join(tmpDir, tmpName());
    try {
      await fs.promises.mkdir(tmpDir, { recursive: true });
      const stats = await copyHashed(localFile, tmp);
      await fs.promises.mkdir(path.dirname(final), { recursive: true });
      await fs.promises.rename(tmp, final);
      fsyncDir(path.dirname(final));
      return stats;
    } catch (e) {
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      throw ioError(`${this.description}: cannot put ${localFile} as ${key}`, e);
    }
  }

  async get(key: string, localFile: string): Promise<void> {
    const src = this.pathOf(key);
    if ((await this.stat(key)) === null) throw new StoreError(`${this.description}: no object ${preview(key, 80)}`, { retryable: false });
    const tmp = path.join(path.dirname(path.resolve(localFile)), `.${path.basename(localFile)}.${tmpName()}`);
    try {
      await copyHashed(src, tmp);
      await fs.promises.rename(tmp, localFile);
    } catch (e) {
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      throw ioError(`${this.description}: cannot get ${key} into ${localFile}`, e);
    }
  }

  async stat(key: string): Promise<{ bytes: number } | null> {
    const file = this.pathOf(key);
    try {
      const st = await fs.promises.stat(file);
      return st.isFile() ? { bytes: st.size } : null;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw ioError(`${this.description}: cannot stat ${key}`, e);
    }
  }

  async remove(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await fs.promises.rm(file, { force: true });
    } catch (e) {
      throw ioError(`${this.description}: cannot remove ${key}`, e);
    }
    // Prune directories the removal emptied (object stores have no directories to leave behind).
    let dir = path.dirname(file);
    while (dir !== this.root && dir.startsWith(this.root + path.sep)) {
      try {
        await fs.promises.rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
    fsyncDir(dir);
  }

  async list(prefix: string): Promise<string[]> {
    checkKey(prefix, `${this.description}: list prefix`, true);
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let items: fs.Dirent[];
      try {
        items = await fs.promises.readdir(rel === '' ? this.root : path.join(this.root, ...rel.split('/')), { withFileTypes: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw ioError(`${this.description}: cannot list ${rel || '/'}`, e);
      }
      for (const item of items) {
        const key = rel === '' ? item.name : `${rel}/${item.name}`;
        if (rel === '' && item.name === TMP_DIR) continue;
        if (item.isDirectory()) {
          // Descend only where keys with the prefix can be.
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(key);
        } else if (item.isFile() && key.startsWith(prefix)) out.push(key);
      }
    };
    await walk(base);
    return out.sort();
  }

  /** Removes temporary files older than `olderThanMs` left in .tmp/ by puts a crash interrupted; returns how many. */
  async removeStaleTemps(olderThanMs = 86_400_000, now = Date.now()): Promise<number> {
    const dir = path.join(this.root, TMP_DIR);
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch {
      return 0;
    }
    let n = 0;
    for (const name of names) {
      const file = path.join(dir, name);
      const st = await fs.promises.stat(file).catch(() => null);
      if (st && now - st.mtimeMs >= olderThanMs) {
        await fs.promises.rm(file, { force: true, recursive: true });
        n++;
      }
    }
    return n;
  }
}
