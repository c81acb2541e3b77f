/**
 * The retention manifest: one JSON file, <root>/manifest.json, that records every partition (rule,
 * UTC day) that left the hot store - which tier it is in, which verified file holds it, what was
 * half done when a run stopped. It is the source of truth: warm and cold files that it does not name
 * are garbage, and a partition it forgets is data nobody can find. So:
 * - it is written atomically (tmp/ file, fsync, rename over manifest.json, fsync of the directory);
 *   a crash leaves the previous manifest, and the temporary file is removed at the next open;
 * - a manifest that cannot be read, parsed or validated is never replaced or moved aside: open()
 *   throws a StoreError naming the file, and the operator repairs it (or restores a backup);
 * - one ManifestStore per root in the process (a second open of the same root is refused), and its
 *   updates are serialised: each update's function sees every earlier update.
 * The file holds one partition per line (sorted by key) so it can be read, grepped and diffed.
 *
 * Also here: the partition key (`${rule}|${day}`), the UTC day helpers, and the relative paths of
 * warm files and cold archive keys (rule names through safeFileName, which is injective, so hostile
 * names cannot escape or collide). Pure Node.js: no Node-RED import.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { preview } from '../names';
import { safeFileName, writeDurable } from '../state';
import { StoreError } from '../store/types';
import { keyProblem } from './archive';
import type { FileStats } from './parquet';

export const DAY_MS = 86_400_000;
/** History items kept per partition (the oldest are dropped). */
export const HISTORY_LIMIT = 20;
export const MANIFEST_FILE = 'manifest.json';
export const TMP_DIR = 'tmp';

export type Tier = 'warm' | 'cold' | 'deleted';
export const TIERS: readonly Tier[] = ['warm', 'cold', 'deleted'];

/** A partition file as the manifest records it: what writeParquet reported, and where the file is. */
export interface FileEntry extends FileStats {
  /** Relative to the manifest root for warm files, the archive key for cold ones; '/' separators. */
  path: string;
}

export interface PartitionEntry {
  rule: string;
  measurement: string;
  where?: Record<string, string>;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  /** [start, end) of the day in ms. */
  start: number;
  end: number;
  tier: Tier;
  /** Increments on every rewrite of the partition's file. */
  generation: number;
  /** The current verified copy (absent when deleted, and before the first move finished). */
  file?: FileEntry;
  /** A move in progress: `file` is written and verified, the hot rows (hotRows of them) not yet deleted. */
  pending?: {
    step: 'copied';
    file: FileEntry;
    hotRows: number;
    /** Content checksum of the hot rows exported (absent in manifests written before it was recorded). */
    hotChecksum?: string;
    previous?: FileEntry;
  };
  /** Rehydrated into hot: hot is authoritative for reads until `until` (ms). */
  restored?: { at: number; until: number };
  /** Short audit trail, oldest first, at most HISTORY_LIMIT items. */
  history: Array<{ at: number; what: string }>;
}

export interface Manifest {
  version: 1;
  partitions: Record<string, PartitionEntry>;
}

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** Days from 1970-01-01 to 9999-12-31: what dayOf / dayStart handle. */
const MAX_DAY_TS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Start (00:00 UTC) of the day `ts` is in. */
export function startOfUtcDay(ts: number): number {
  return Math.floor(ts / DAY_MS) * DAY_MS;
}

/** True for a real UTC day written YYYY-MM-DD (1970-01-01 to 9999-12-31). */
export function isDay(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = DAY_RE.exec(s);
  if (!m) return false;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (y < 1970 || mo < 1 || mo > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(y, mo, 0)).getUTCDate();
}

/** The UTC day (YYYY-MM-DD) of a ms timestamp. */
export function dayOf(ts: number): string {
  if (!Number.isFinite(ts) || ts < 0 || ts > MAX_DAY_TS) throw new RangeError(`dayOf: ${ts} is not a ms timestamp between 1970 and 9999`);
  return new Date(ts).toISOString().slice(0, 10);
}

/** 00:00 UTC of a YYYY-MM-DD day, in ms. */
export function dayStart(day: string): number {
  if (!isDay(day)) throw new RangeError(`dayStart: ${preview(day)} is not a day (YYYY-MM-DD, 1970-9999)`);
  return Date.UTC(Number(day.slice(0, 4)), Number(day.slice(5, 7)) - 1, Number(day.slice(8, 10)));
}

/** The manifest key of a partition. Days never hold '|', so the key is unique whatever the rule name. */
export function partitionKey(rule: string, day: string): string {
  if (!isDay(day)) throw new RangeError(`partitionKey: ${preview(day)} is not a day (YYYY-MM-DD)`);
  return `${rule}|${day}`;
}

function filePart(rule: string, day: string, generation: number, where: string): string {
  if (!isDay(day)) throw new RangeError(`${where}: ${preview(day)} is not a day (YYYY-MM-DD)`);
  if (!Number.isSafeInteger(generation) || generation < 0) throw new RangeError(`${where}: generation must be a whole number >= 0, got ${generation}`);
  return `${safeFileName(rule)}/${day.slice(0, 4)}/${day}.g${generation}.parquet`;
}

/** Warm file of a partition, relative to the manifest root: warm/<safe rule>/<YYYY>/<YYYY-MM-DD>.g<generation>.parquet */
export function warmPath(rule: string, day: string, generation: number): string {
  return `warm/${filePart(rule, day, generation, 'warmPath')}`;
}

/** Archive key of a cold partition: cold/<safe rule>/<YYYY>/<YYYY-MM-DD>.g<generation>.parquet */
export function coldKey(rule: string, day: string, generation: number): string {
  return `cold/${filePart(rule, day, generation, 'coldKey')}`;
}

/** Appends to an entry's history, keeping the last HISTORY_LIMIT items. */
export function recordHistory(entry: PartitionEntry, at: number, what: string): PartitionEntry {
  entry.history.push({ at, what });
  if (entry.history.length > HISTORY_LIMIT) entry.history.splice(0, entry.history.length - HISTORY_LIMIT);
  return entry;
}

// ---- validation -------------------------------------------------------------------------------

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

function fileProblem(f: unknown, name: string): string | undefined {
  if (!isObj(f)) return `${name} must be an object`;
  const p = keyProblem(f.path);
  if (p) return `${name}.path ${p}`;
  if (!isCount(f.rows)) return `${name}.rows must be a whole number >= 0`;
  if (!Number.isFinite(f.minTs) || !Number.isFinite(f.maxTs)) return `${name}.minTs and maxTs must be numbers`;
  if (typeof f.checksum !== 'string' || !/^[0-9a-f]{16}$/.test(f.checksum)) return `${name}.checksum must be 16 lowercase hex digits`;
  if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) return `${name}.sha256 must be 64 lowercase hex digits`;
  if (!isCount(f.bytes)) return `${name}.bytes must be a whole number >= 0`;
  return undefined;
}

/** Why `e` is not a valid entry for `key`, or undefined when it is. */
export function entryProblem(key: string, e: unknown): string | undefined {
  if (!isObj(e)) return 'must be an object';
  if (typeof e.rule !== 'string' || e.rule === '') return 'rule must be a non-empty string';
  if (!isDay(e.day)) return `day ${preview(e.day)} is not a day (YYYY-MM-DD)`;
  if (key !== partitionKey(e.rule, e.day)) return `key does not match its rule and day (expected ${preview(partitionKey(e.rule, e.day), 80)})`;
  if (typeof e.measurement !== 'string' || e.measurement === '') return 'measurement must be a non-empty string';
  if (e.where !== undefined && (!isObj(e.where) || Object.values(e.where).some((v) => typeof v !== 'string'))) return 'where must be an object of strings';
  const start = dayStart(e.day);
  if (e.start !== start || e.end !== start + DAY_MS) return `start and end must be ${start} and ${start + DAY_MS} (the day's bounds)`;
  if (!TIERS.includes(e.tier as Tier)) return `tier must be one of ${TIERS.join(', ')}, got ${preview(e.tier)}`;
  if (!isCount(e.generation)) return 'generation must be a whole number >= 0';
  if (e.file !== undefined) {
    const p = fileProblem(e.file, 'file');
    if (p) return p;
  }
  if (e.pending !== undefined) {
    const pd = e.pending;
    if (!isObj(pd) || pd.step !== 'copied') return 'pending.step must be "copied"';
    const p = fileProblem(pd.file, 'pending.file') ?? (pd.previous !== undefined ? fileProblem(pd.previous, 'pending.previous') : undefined);
    if (p) return p;
    if (!isCount(pd.hotRows)) return 'pending.hotRows must be a whole number >= 0';
    if (pd.hotChecksum !== undefined && (typeof pd.hotChecksum !== 'string' || !/^[0-9a-f]{16}$/.test(pd.hotChecksum))) return 'pending.hotChecksum must be 16 hex digits';
  }
  if (e.tier === 'deleted') {
    if (e.file !== undefined || e.pending !== undefined) return 'a deleted partition has no file and nothing pending';
  } else if (e.file === undefined && e.pending === undefined) {
    return `a ${e.tier} partition needs a file (or a pending one)`;
  }
  if (e.restored !== undefined && (!isObj(e.restored) || !Number.isFinite(e.restored.at) || !Number.isFinite(e.restored.until))) {
    return 'restored must be { at, until } (ms)';
  }
  if (!Array.isArray(e.history) || e.history.some((h) => !isObj(h) || !Number.isFinite(h.at) || typeof h.what !== 'string')) {
    return 'history must be a list of { at, what }';
  }
  return undefined;
}

// ---- the store --------------------------------------------------------------------------------

/** Roots open in this process (real paths): one writer each. */
const OPEN_ROOTS = new Set<string>();

export type UpdateFn = (current: PartitionEntry | undefined) => PartitionEntry | null | undefined;

export class ManifestStore {
  readonly root: string;
  readonly file: string;
  readonly tmpDir: string;
  /** Names of the leftover temporary files open() removed (at most 100 listed). */
  readonly cleaned: string[];
  private partitions: Map<string, PartitionEntry>;
  private chain: Promise<unknown> = Promise.resolve();
  private dirty = false;
  private closed = false;
  private readonly lockKey: string;

  private constructor(root: string, lockKey: string, partitions: Map<string, PartitionEntry>, cleaned: string[]) {
    this.root = root;
    this.file = path.join(root, MANIFEST_FILE);
    this.tmpDir = path.join(root, TMP_DIR);
    this.lockKey = lockKey;
    this.partitions = partitions;
    this.cleaned = cleaned;
  }

  /**
   * Opens (creating) the root: refuses a root already open in this process, empties tmp/ (anything
   * there is an interrupted write) and loads manifest.json (none: empty). Throws a StoreError, naming
   * the file, when the manifest is unreadable or invalid; it is left as it is.
   */
  static async open(root: string): Promise<ManifestStore> {
    const abs = path.resolve(root);
    await fs.promises.mkdir(abs, { recursive: true });
    const lockKey = await fs.promises.realpath(abs);
    if (OPEN_ROOTS.has(lockKey)) {
      throw new StoreError(`retention manifest root ${abs} is already open in this process (close the other ManifestStore first)`, { retryable: true });
    }
    OPEN_ROOTS.add(lockKey);
    try {
      const tmpDir = path.join(abs, TMP_DIR);
      let cleaned: string[] = [];
      try {
        cleaned = await fs.promises.readdir(tmpDir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      for (const name of cleaned) await fs.promises.rm(path.join(tmpDir, name), { recursive: true, force: true });
      await fs.promises.mkdir(tmpDir, { recursive: true });
      const partitions = await load(path.join(abs, MANIFEST_FILE));
      return new ManifestStore(abs, lockKey, partitions, cleaned.sort().slice(0, 100));
    } catch (e) {
      OPEN_ROOTS.delete(lockKey);
      if (e instanceof StoreError) throw e;
      throw new StoreError(`cannot open retention manifest root ${abs}: ${(e as Error).message}`, { retryable: true, cause: e });
    }
  }

  /** A copy of the partition's entry. */
  get(key: string): PartitionEntry | undefined {
    const e = this.partitions.get(key);
    return e && structuredClone(e);
  }

  /** Copies of every entry, sorted by key. */
  entries(): PartitionEntry[] {
    return [...this.partitions.keys()].sort().map((k) => structuredClone(this.partitions.get(k)!));
  }

  get size(): number {
    return this.partitions.size;
  }

  /**
   * Changes one partition: `fn` gets a copy of the current entry (undefined: none) after every
   * earlier update, and returns the new entry (checked; history trimmed to HISTORY_LIMIT), null to
   * remove the entry, or undefined for no change. By default the manifest is then written, and the
   * promise resolves once it is on disk; if that write fails, nothing changes (in memory either).
   * With { commit: false } the change is kept in memory until commit().
   */
  update(key: string, fn: UpdateFn, opts: { commit?: boolean } = {}): Promise<PartitionEntry | undefined> {
    return this.enqueue(async () => {
      const before = this.partitions.get(key);
      const next = fn(before && structuredClone(before));
      if (next === undefined) return before && structuredClone(before);
      const map = new Map(this.partitions);
      if (next === null) map.delete(key);
      else {
        if (next.history.length > HISTORY_LIMIT) next.history = next.history.slice(-HISTORY_LIMIT);
        const why = entryProblem(key, next);
        if (why) throw new StoreError(`retention manifest: partition ${preview(key, 80)}: ${why}`, { retryable: false });
        map.set(key, structuredClone(next));
      }
      if (opts.commit === false) {
        this.partitions = map;
        this.dirty = true;
      } else {
        await this.write(map);
        this.partitions = map;
        this.dirty = false;
      }
      return next === null ? undefined : structuredClone(next);
    });
  }

  /** Writes changes kept in memory (update with commit: false); resolves when everything updated so far is on disk. */
  commit(): Promise<void> {
    return this.enqueue(async () => {
      if (!this.dirty) return;
      await this.write(this.partitions);
      this.dirty = false;
    });
  }

  /** The absolute path of a root-relative '/' path (a FileEntry.path of a warm file). */
  resolve(rel: string): string {
    const why = keyProblem(rel);
    if (why) throw new StoreError(`retention manifest: path ${preview(rel, 80)} ${why}`, { retryable: false });
    return path.join(this.root, ...rel.split('/'));
  }

  /** A fresh path in tmp/ for an in-progress write (removed at the next open if left behind). */
  tmpPath(suffix = ''): string {
    return path.join(this.tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}${suffix.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40)}`);
  }

  /** Waits for queued updates, writes what is uncommitted, and releases the root. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.commit();
    } finally {
      this.closed = true;
      OPEN_ROOTS.delete(this.lockKey);
    }
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError(`retention manifest ${this.file} is closed`, { retryable: false }));
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async write(map: Map<string, PartitionEntry>): Promise<void> {
    const text = serialise(map);
    const tmp = this.tmpPath('.manifest.json');
    try {
      await fs.promises.mkdir(this.tmpDir, { recursive: true });
      await writeDurable(this.file, tmp, text, true);
    } catch (e) {
      throw new StoreError(`cannot write retention manifest ${this.file}: ${(e as Error).message}`, { retryable: true, cause: e });
    }
  }
}

/** The manifest text: valid JSON with one partition per line, sorted by key. */
function serialise(map: Map<string, PartitionEntry>): string {
  const keys = [...map.keys()].sort();
  const lines = keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(map.get(k))}`);
  return `{"version":1,"partitions":{${lines.length ? '\n' + lines.join(',\n') + '\n' : ''}}}\n`;
}

async function load(file: string): Promise<Map<string, PartitionEntry>> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new StoreError(`cannot read retention manifest ${file}: ${(e as Error).message}`, { retryable: true, cause: e });
  }
  const bad = (why: string): StoreError =>
    new StoreError(
      `retention manifest ${file} is not usable (${why}); it was left unchanged: it records where warm and cold data live, so repair it or restore a backup before retention runs again`,
      { retryable: false },
    );
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON: ${(e as Error).message}`);
  }
  if (!isObj(v) || v.version !== 1 || !isObj(v.partitions)) throw bad('expected {"version": 1, "partitions": {...}}');
  const map = new Map<string, PartitionEntry>();
  for (const [key, entry] of Object.entries(v.partitions)) {
    const why = entryProblem(key, entry);
    if (why) throw bad(`partition ${preview(key, 80)}: ${why}`);
    map.set(key, entry as unknown as PartitionEntry);
  }
  return map;
}
