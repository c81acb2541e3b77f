/**
 * The retention executor: carries out the planner's steps (./plan) against a hot store (a StoreBackend
 * with the partition operations: embedded or InfluxDB 1.x), the warm directory and the cold archive
 * target, with the manifest (./manifest) as the source of truth. Also restores ranges back into the
 * hot store and answers queries across the tiers. No Node-RED here (nodes/retention wraps it).
 *
 * One move of a partition (rule, UTC day) to warm or cold, in this order:
 *   1. export   the day's hot rows into a temporary Parquet file ("delta"), with the content checksum
 *               of exactly what the store handed over; verify the file against it (re-read).
 *   2. merge    when the partition already has a file (late rows for a moved day, the end of a restore,
 *               warm to cold), write generation g+1 = delta + the old file's rows whose key (series and
 *               ts) is not in delta (the hot value wins, as in the store). Cold files use ZSTD level 22.
 *   3. verify   re-read the new file: sha256, schema, rows, time extent and content checksum equal what
 *               was written; a cold file is then put into the archive and its copy's sha256 compared.
 *   4. record   manifest: `pending` = { new file, hot rows exported }; the old file stays the entry's
 *               file (so a reader still sees old file + hot rows: complete, nothing twice).
 *   5. delete   the day's hot rows, expecting exactly the exported count: the embedded store counts
 *               and deletes in one transaction and deletes nothing when a row arrived since the export;
 *               InfluxDB 1.x counts, then deletes (a row written in between is lost: see the README).
 *   6. finish   manifest: the new file becomes the entry's file, `pending` cleared.
 *   7. clean    the old file is removed (warm: unlinked; cold: removed from the archive).
 * Nothing is deleted from the hot store before its rows are in a verified file that the manifest
 * records. A run stopped at any point (an exception, kill -9) resumes on the next run:
 *   - temporary files (tmp/) are removed when the manifest opens; files no entry references
 *     (a file written before its `record`, an old file left before `clean`) are removed by the
 *     run's garbage collection;
 *   - an entry with `pending` is finished first: its hot rows are counted and checksummed again; exactly the
 *     rows exported (same count and content checksum), or none left (the delete happened), finish it; anything
 *     else (new or replaced rows, a partial delete) moves the partition again on top of the pending file,
 *     which holds everything exported.
 *
 * Reads across tiers (query()): the hot store for the whole range, plus the warm and cold files of the
 * partitions in range whose entry matches the query (measurement, where, devices) and is not restored;
 * the answers are merged (./warm-query mergeResults). A restored partition is read from hot only until
 * the run that ends its restore rewrites its file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VARCHAR } from '@duckdb/node-api';
import { encodePoint } from '../line-protocol';
import { StoreError, type ExportRow, type PartitionSelector, type QueryResult, type RangeQuery, type StoreBackend } from '../store/types';
import { DirectoryTarget, type ArchiveTarget } from './archive';
import { coldKey, DAY_MS, dayOf, dayStart, partitionKey, recordHistory, startOfUtcDay, warmPath, ManifestStore, type FileEntry, type PartitionEntry, type Tier } from './manifest';
import { Checksum, fileSha256, readParquet, verifyParquet, withDb, writeParquet, type FileStats } from './parquet';
import { planRun, type Action, type HotExtent } from './plan';
import { ruleSelector, type RetentionPolicy } from './policy';
import { mergeResults, queryParquet } from './warm-query';

/** ZSTD level of cold files (the highest: written once, read rarely). */
export const COLD_COMPRESSION_LEVEL = 22;
/** Days a restored partition stays hot before the run that sends it back (default). */
export const DEFAULT_RESTORE_DAYS = 7;
/** Lines per write when restoring into the hot store. */
const RESTORE_BATCH = 5000;

/** Points in a move where tests inject a failure (a crash there must lose nothing). */
export type Phase = 'exported' | 'merged' | 'verified' | 'archived' | 'recorded' | 'hot-deleted' | 'finished' | 'cleaned';
export const PHASES: readonly Phase[] = ['exported', 'merged', 'verified', 'archived', 'recorded', 'hot-deleted', 'finished', 'cleaned'];

export interface RetentionOptions {
  /** The manifest root: manifest.json, warm/, tmp/ (and archive/ when no archive target is given). */
  root: string;
  backend: StoreBackend;
  policy: RetentionPolicy;
  /** Where cold files go; default a directory `archive` under root. */
  archive?: ArchiveTarget;
  now?: () => number;
  /** Days a restored range stays hot (default 7). */
  restoreDays?: number;
  /** At most this many partition steps per run (default 100). */
  maxPartitions?: number;
  /** Called after each phase of a move (tests throw here to simulate a crash). */
  failAt?: (phase: Phase, action: Action) => void | Promise<void>;
  log?: (message: string) => void;
}

export interface PartitionReport {
  rule: string;
  day: string;
  kind: Action['kind'];
  tier: Tier;
  /** Rows in the partition's file after the step (0 when deleted). */
  rows: number;
  /** Hot rows exported and deleted (or deleted without a copy for delete-* steps). */
  hotRows: number;
  /** Size of the file written (0 when none). */
  bytes: number;
  why: string;
}

export interface RunReport {
  started: number;
  finished: number;
  /** Steps planned (over all planning rounds). */
  planned: number;
  /** Partitions written to warm or cold (and verified). */
  moved: PartitionReport[];
  /** Partitions deleted past their last tier. */
  deleted: PartitionReport[];
  /** Steps that did nothing (an empty day). */
  skipped: number;
  /** Hot rows removed (after their copy was verified, or past their end of life). */
  hotRowsDeleted: number;
  /** Files removed by the garbage collection (left by an interrupted run). */
  collected: string[];
  errors: Array<{ rule: string; day: string; kind: Action['kind']; error: string }>;
}

export interface RestoreReport {
  started: number;
  finished: number;
  partitions: Array<{ rule: string; day: string; tier: Tier; rows: number }>;
  rows: number;
  /** Restored partitions stay hot until this time (ms); the first run after it sends them back. */
  until: number;
  errors: Array<{ rule: string; day: string; error: string }>;
}

export interface RetentionSummary {
  partitions: { warm: number; cold: number; deleted: number; pending: number; restored: number };
  rows: { warm: number; cold: number };
  bytes: { warm: number; cold: number };
  lastRun?: RunReport;
  running: boolean;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Does a partition of `e` hold data a query asks for (measurement, where, devices, time)? */
function entryMatches(e: PartitionEntry, q: RangeQuery): boolean {
  if (e.measurement !== q.measurement || e.end <= q.start || e.start >= q.end) return false;
  for (const [k, v] of Object.entries(e.where ?? {})) {
    if (q.where && q.where[k] !== undefined && q.where[k] !== v) return false;
    if (k === 'device' && q.devices && q.devices.length > 0 && !q.devices.includes(v)) return false;
  }
  return true;
}

export class Retention {
  readonly root: string;
  readonly archive: ArchiveTarget;
  private policy: RetentionPolicy;
  private readonly backend: StoreBackend;
  private readonly manifest: ManifestStore;
  private readonly now: () => number;
  private readonly restoreDays: number;
  private readonly maxPartitions?: number;
  private readonly failAt?: RetentionOptions['failAt'];
  private readonly log: (m: string) => void;
  /** Runs and restores, one at a time. */
  private chain: Promise<unknown> = Promise.resolve();
  private running = false;
  private last?: RunReport;
  private closed = false;

  private constructor(opts: RetentionOptions, manifest: ManifestStore) {
    this.root = path.resolve(opts.root);
    this.backend = opts.backend;
    this.policy = opts.policy;
    this.archive = opts.archive ?? new DirectoryTarget(path.join(this.root, 'archive'));
    this.manifest = manifest;
    this.now = opts.now ?? Date.now;
    this.restoreDays = opts.restoreDays ?? DEFAULT_RESTORE_DAYS;
    this.maxPartitions = opts.maxPartitions;
    this.failAt = opts.failAt;
    this.log = opts.log ?? (() => undefined);
  }

  /** Opens the manifest under opts.root (creating it) and checks the backend can take part. */
  static async open(opts: RetentionOptions): Promise<Retention> {
    const b = opts.backend;
    if (!b.exportRange || !b.countRange || !b.extentOf || !b.deleteRange) {
      throw new StoreError(
        `retention tiering needs the embedded store or InfluxDB 1.x; ${b.description} cannot export or delete a time range (InfluxDB 2.x/3.x: use the bucket's retention period)`,
        { retryable: false },
      );
    }
    if (opts.restoreDays !== undefined && !(Number.isFinite(opts.restoreDays) && opts.restoreDays > 0)) {
      throw new StoreError(`restoreDays must be a number of days > 0, not ${String(opts.restoreDays)}`, { retryable: false });
    }
    const manifest = await ManifestStore.open(opts.root);
    return new Retention(opts, manifest);
  }

  /** A new policy for the next runs (the manifest and files stay as they are). */
  setPolicy(policy: RetentionPolicy): void {
    this.policy = policy;
  }

  get isRunning(): boolean {
    return this.running;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  // ---- runs -----------------------------------------------------------------------------------

  /** One run: collects garbage, plans, carries out the steps (finishing interrupted ones first). */
  run(): Promise<RunReport> {
    return this.serial(async () => {
      if (this.closed) throw new StoreError('retention is closed', { retryable: false });
      this.running = true;
      const report: RunReport = { started: this.now(), finished: 0, planned: 0, moved: [], deleted: [], skipped: 0, hotRowsDeleted: 0, collected: [], errors: [] };
      try {
        report.collected = await this.collectGarbage();
        const limit = this.maxPartitions ?? 100;
        const failed = new Set<string>();
        // Plan again after each round: a step can leave work for another (a pending entry finished by
        // moving it again). Bounded by the step limit, and a partition that failed is not retried in this run.
        for (let round = 0; round < 4 && report.planned < limit; round++) {
          const extents = await this.hotExtents();
          const actions = planRun(this.policy, this.manifest.entries(), this.now(), extents, { maxPartitions: limit - report.planned }).filter((a) => !failed.has(a.key));
          if (actions.length === 0) break;
          report.planned += actions.length;
          let progressed = false;
          for (const a of actions) {
            if (this.closed) break;
            try {
              const r = await this.step(a);
              if (r === undefined) report.skipped++;
              else {
                progressed = true;
                report.hotRowsDeleted += r.hotRows;
                if (r.tier === 'deleted') report.deleted.push(r);
                else report.moved.push(r);
              }
            } catch (e) {
              failed.add(a.key);
              report.errors.push({ rule: a.rule, day: a.day, kind: a.kind, error: message(e) });
              this.log(`retention: ${a.kind} ${a.rule} ${a.day} failed: ${message(e)}`);
            }
          }
          if (!progressed) break;
        }
      } finally {
        report.finished = this.now();
        this.last = report;
        this.running = false;
      }
      return report;
    });
  }

  /** Per rule: the extent of its hot data old enough to be past hot (null: none). */
  private async hotExtents(): Promise<Map<string, HotExtent | null>> {
    const out = new Map<string, HotExtent | null>();
    const today = startOfUtcDay(this.now());
    for (const rule of this.policy.rules) {
      const edge = today - rule.hotDays * DAY_MS;
      out.set(rule.name, edge > 0 ? await this.backend.extentOf!(ruleSelector(rule, 0, edge)) : null);
    }
    return out;
  }

  private async step(a: Action): Promise<PartitionReport | undefined> {
    const entry = this.manifest.get(a.key);
    switch (a.kind) {
      case 'finish-pending':
        return this.finishPending(a, entry!);
      case 'remove-restore':
        return this.move(a, entry, a.tier as 'warm' | 'cold', entry?.file, true);
      case 'move-to-warm':
      case 'move-to-cold':
        return this.move(a, entry, a.kind === 'move-to-warm' ? 'warm' : 'cold', entry?.file, false);
      case 'delete-hot':
      case 'delete-warm':
      case 'delete-cold':
        return this.deletePartition(a, entry);
    }
  }

  /** A move that recorded its file but did not finish: count the hot rows again and finish or redo. */
  private async finishPending(a: Action, entry: PartitionEntry): Promise<PartitionReport | undefined> {
    const pending = entry.pending!;
    const sel = a.selector;
    const left = await this.backend.countRange!(sel);
    // The same count is not enough: rows may have been replaced meanwhile (as many arrived as went). The hot rows
    // must be exactly those exported (same content checksum) before they are deleted without another copy.
    const same = left === pending.hotRows && left > 0 && (pending.hotChecksum === undefined || (await this.hotChecksum(sel)) === pending.hotChecksum);
    if (same) {
      await this.backend.deleteRange!(sel, left);
      await this.hook('hot-deleted', a);
    } else if (left !== 0) {
      // Rows arrived or changed (or a delete stopped half way): move again on top of the pending file, which holds
      // everything exported the first time.
      this.log(`retention: ${a.rule} ${a.day}: ${left} hot rows where ${pending.hotRows} were exported; moving again`);
      return this.move(a, entry, entry.tier === 'deleted' ? 'warm' : entry.tier, pending.file, !!entry.restored, [entry.file, pending.file]);
    }
    const previous = entry.file;
    const at = this.now();
    const done = await this.manifest.update(a.key, (e) => {
      if (!e?.pending) return undefined;
      const next: PartitionEntry = { ...e, file: e.pending.file, history: [...e.history] };
      delete next.pending;
      return recordHistory(next, at, `finished an interrupted move: ${pending.hotRows} hot rows deleted, ${pending.file.rows} rows in ${pending.file.path}`);
    });
    await this.hook('finished', a);
    await this.removeFiles(done?.tier ?? entry.tier, [previous, pending.previous], pending.file.path);
    return { rule: a.rule, day: a.day, kind: a.kind, tier: entry.tier, rows: pending.file.rows, hotRows: pending.hotRows, bytes: pending.file.bytes, why: a.why };
  }

  /**
   * Moves a partition to `tier`: (base file rows + the day's hot rows) into a new verified file, then
   * deletes the hot rows and the files in `obsolete` (default: base).
   */
  private async move(a: Action, entry: PartitionEntry | undefined, tier: 'warm' | 'cold', base: FileEntry | undefined, endRestore: boolean, obsolete?: Array<FileEntry | undefined>): Promise<PartitionReport | undefined> {
    const sel = a.selector;
    const baseTier: Tier | undefined = base ? (base.path.startsWith('cold/') ? 'cold' : 'warm') : undefined;
    const delta = this.manifest.tmpPath('.delta.parquet');
    const scratch: string[] = [delta];
    try {
      // 1. export
      let hot: FileStats | undefined;
      // Count first: most candidate days of a long hot extent hold nothing (an export costs more).
      if (a.hot && (await this.backend.countRange!(sel)) > 0) {
        let handed = 0;
        hot = await writeParquet(delta, async (sink) => {
          handed = await this.backend.exportRange!(sel, sink);
        });
        if (handed !== hot.rows) throw new StoreError(`export of ${a.key} handed ${handed} rows but ${hot.rows} reached the file`, { retryable: true });
        if (hot.rows > 0) {
          const v = await verifyParquet(delta, hot);
          if (!v.ok) throw new StoreError(`export of ${a.key} did not verify: ${v.problems.join('; ')}`, { retryable: true });
        }
      }
      await this.hook('exported', a);
      const hotRows = hot?.rows ?? 0;
      if (hotRows === 0 && (base === undefined || (baseTier === tier && !endRestore))) return undefined; // nothing to do
      if (hotRows === 0 && base !== undefined && baseTier === tier && endRestore) {
        await this.manifest.update(a.key, (e) => {
          if (!e) return undefined;
          const next: PartitionEntry = { ...e, history: [...e.history] };
          delete next.restored;
          return recordHistory(next, this.now(), 'restore ended (no hot rows left)');
        });
        return { rule: a.rule, day: a.day, kind: a.kind, tier, rows: base.rows, hotRows: 0, bytes: base.bytes, why: a.why };
      }

      // 2. merge
      const generation = Math.max(a.generation, (entry?.generation ?? 0) + 1);
      const local = tier === 'warm' ? this.manifest.resolve(warmPath(a.rule, a.day, generation)) : this.manifest.tmpPath('.cold.parquet');
      if (tier === 'cold') scratch.push(local);
      const level = tier === 'cold' ? COLD_COMPRESSION_LEVEL : undefined;
      let stats: FileStats;
      if (base === undefined) {
        if (level === undefined) {
          fs.mkdirSync(path.dirname(local), { recursive: true });
          fs.renameSync(delta, local);
          stats = hot!;
        } else {
          stats = await writeParquet(local, (sink) => readParquet([delta], sink).then(() => undefined), { compressionLevel: level });
        }
      } else {
        const baseLocal = await this.localCopy(base, scratch);
        const bv = await verifyParquet(baseLocal, base);
        if (!bv.ok) throw new StoreError(`${base.path} no longer matches the manifest (${bv.problems.join('; ')}): not building on it; restore it from a copy or remove the partition's entry`, { retryable: false });
        const rest = hotRows > 0 ? this.manifest.tmpPath('.rest.parquet') : baseLocal;
        if (hotRows > 0) {
          scratch.push(rest);
          await antiJoin(baseLocal, delta, rest);
        }
        const sources = hotRows > 0 ? [delta, rest] : [rest];
        stats = await writeParquet(local, (sink) => readParquet(sources, sink).then(() => undefined), level !== undefined ? { compressionLevel: level } : {});
        if (stats.rows < hotRows || stats.rows < base.rows - hotRows) throw new StoreError(`merge of ${a.key} holds ${stats.rows} rows, fewer than it must`, { retryable: false });
      }
      await this.hook('merged', a);

      // 3. verify (and put a cold file into the archive). A delta renamed into place was verified in step 1:
      // its bytes are checked again (sha256), its content is not read twice.
      if (base === undefined && level === undefined) {
        const { sha256 } = await fileSha256(local);
        if (sha256 !== stats.sha256) throw new StoreError(`${local} changed after it was verified (sha256 ${sha256}, expected ${stats.sha256})`, { retryable: true });
      } else {
        const v = await verifyParquet(local, stats);
        if (!v.ok) throw new StoreError(`${local} did not verify after writing: ${v.problems.join('; ')}`, { retryable: true });
      }
      await this.hook('verified', a);
      let file: FileEntry;
      if (tier === 'cold') {
        const key = coldKey(a.rule, a.day, generation);
        const put = await this.archive.put(local, key);
        if (put.sha256 !== stats.sha256 || put.bytes !== stats.bytes) throw new StoreError(`${this.archive.description}: the copy of ${key} differs from the file written (sha256 ${put.sha256} vs ${stats.sha256})`, { retryable: true });
        const st = await this.archive.stat(key);
        if (st?.bytes !== stats.bytes) throw new StoreError(`${this.archive.description}: ${key} is ${st?.bytes ?? 'missing'} bytes after the copy, expected ${stats.bytes}`, { retryable: true });
        file = { path: key, rows: stats.rows, minTs: stats.minTs, maxTs: stats.maxTs, checksum: stats.checksum, sha256: stats.sha256, bytes: stats.bytes };
        await this.hook('archived', a);
      } else {
        file = { path: warmPath(a.rule, a.day, generation), rows: stats.rows, minTs: stats.minTs, maxTs: stats.maxTs, checksum: stats.checksum, sha256: stats.sha256, bytes: stats.bytes };
      }

      // 4. record
      const at = this.now();
      await this.manifest.update(a.key, (e) => {
        const next: PartitionEntry = e
          ? { ...e, history: [...e.history] }
          : { rule: a.rule, measurement: sel.measurement, ...(sel.where ? { where: { ...sel.where } } : {}), day: a.day, start: dayStart(a.day), end: dayStart(a.day) + DAY_MS, tier, generation, history: [] };
        next.generation = generation;
        next.pending = { step: 'copied', file, hotRows, ...(hot && hotRows > 0 ? { hotChecksum: hot.checksum } : {}), ...(e?.file ? { previous: e.file } : {}) };
        return recordHistory(next, at, `copied ${hotRows} hot rows${base ? ` and ${base.rows} rows of ${base.path}` : ''} to ${file.path} (${file.rows} rows, ${file.bytes} bytes, verified)`);
      });
      await this.hook('recorded', a);

      // 5. delete the hot rows (exactly those exported)
      if (hotRows > 0) {
        await this.backend.deleteRange!(sel, hotRows);
        await this.hook('hot-deleted', a);
      }

      // 6. finish
      await this.manifest.update(a.key, (e) => {
        if (!e) return undefined;
        const next: PartitionEntry = { ...e, tier, file, history: [...e.history] };
        delete next.pending;
        if (endRestore) delete next.restored;
        return recordHistory(next, this.now(), `${tier}: ${file.path}${hotRows > 0 ? `, ${hotRows} hot rows deleted` : ''}${endRestore ? ', restore ended' : ''}`);
      });
      await this.hook('finished', a);

      // 7. clean
      await this.removeFiles(tier, obsolete ?? [base], file.path);
      await this.hook('cleaned', a);
      return { rule: a.rule, day: a.day, kind: a.kind, tier, rows: file.rows, hotRows, bytes: file.bytes, why: a.why };
    } finally {
      for (const f of scratch) fs.rmSync(f, { force: true });
    }
  }

  private async deletePartition(a: Action, entry: PartitionEntry | undefined): Promise<PartitionReport | undefined> {
    let hotRows = 0;
    if (a.hot) hotRows = await this.backend.deleteRange!(a.selector);
    const file = entry?.file;
    if (!entry && hotRows === 0) return undefined;
    const at = this.now();
    await this.manifest.update(a.key, (e) => {
      const next: PartitionEntry = e
        ? { ...e, history: [...e.history] }
        : { rule: a.rule, measurement: a.selector.measurement, ...(a.selector.where ? { where: { ...a.selector.where } } : {}), day: a.day, start: dayStart(a.day), end: dayStart(a.day) + DAY_MS, tier: 'deleted', generation: 0, history: [] };
      next.tier = 'deleted';
      delete next.file;
      delete next.pending;
      delete next.restored;
      return recordHistory(next, at, `deleted past its last tier${file ? `: ${file.path} (${file.rows} rows)` : ''}${hotRows ? `, ${hotRows} hot rows` : ''}`);
    });
    await this.hook('finished', a);
    await this.removeFiles(entry?.tier ?? 'deleted', [file], undefined);
    return { rule: a.rule, day: a.day, kind: a.kind, tier: 'deleted', rows: 0, hotRows, bytes: 0, why: a.why };
  }

  private async hook(phase: Phase, a: Action): Promise<void> {
    if (this.failAt) await this.failAt(phase, a);
  }

  /** The content checksum of a selection's hot rows (parquet.ts Checksum), read without writing a file. */
  private async hotChecksum(sel: PartitionSelector): Promise<string> {
    const sum = new Checksum();
    await this.backend.exportRange!(sel, (rows) => {
      for (const r of rows) sum.add(r);
    });
    return sum.hex();
  }

  /** Removes files no longer referenced (never `keep`); failures are logged (the GC tries again). */
  private async removeFiles(_tier: Tier, files: Array<FileEntry | undefined>, keep: string | undefined): Promise<void> {
    for (const f of files) {
      if (!f || f.path === keep) continue;
      try {
        if (f.path.startsWith('cold/')) await this.archive.remove(f.path);
        else fs.rmSync(this.manifest.resolve(f.path), { force: true });
      } catch (e) {
        this.log(`retention: cannot remove ${f.path} (${message(e)}); the next run's garbage collection will`);
      }
    }
  }

  /** A local path holding a file entry's bytes: warm in place, cold in place (local archive) or fetched to tmp. */
  private async localCopy(f: FileEntry, scratch: string[]): Promise<string> {
    if (!f.path.startsWith('cold/')) return this.manifest.resolve(f.path);
    const inPlace = this.archive.localPath?.(f.path);
    if (inPlace !== undefined) return inPlace;
    const tmp = this.manifest.tmpPath('.fetch.parquet');
    scratch.push(tmp);
    await this.archive.get(f.path, tmp);
    return tmp;
  }

  /** Removes warm files and cold objects that no entry references (left by an interrupted run). */
  private async collectGarbage(): Promise<string[]> {
    const referenced = new Set<string>();
    for (const e of this.manifest.entries()) {
      if (e.file) referenced.add(e.file.path);
      if (e.pending) {
        referenced.add(e.pending.file.path);
        if (e.pending.previous) referenced.add(e.pending.previous.path);
      }
    }
    const removed: string[] = [];
    const warmRoot = path.join(this.root, 'warm');
    const walk = (dir: string, rel: string): void => {
      let names: fs.Dirent[];
      try {
        names = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const d of names) {
        const r = `${rel}/${d.name}`;
        if (d.isDirectory()) walk(path.join(dir, d.name), r);
        else if (!referenced.has(r)) {
          fs.rmSync(path.join(dir, d.name), { force: true });
          removed.push(r);
        }
      }
    };
    walk(warmRoot, 'warm');
    for (const key of await this.archive.list('cold/')) {
      if (!referenced.has(key)) {
        await this.archive.remove(key);
        removed.push(key);
      }
    }
    if (removed.length) this.log(`retention: removed ${removed.length} unreferenced files left by an interrupted run`);
    return removed;
  }

  // ---- restore --------------------------------------------------------------------------------

  /**
   * Writes the warm and cold partitions of [start, end) (whole UTC days) back into the hot store and
   * marks them restored: reads take them from hot until `restoreDays` have passed and a run sends them
   * back. Idempotent: restoring twice writes the same points (the store keeps one copy of each).
   */
  restore(range: { start: number; end: number; rules?: string[] }): Promise<RestoreReport> {
    return this.serial(async () => {
      if (!(Number.isFinite(range.start) && Number.isFinite(range.end) && range.end > range.start)) {
        throw new StoreError(`restore: the range must have start < end (ms), got ${range.start}..${range.end}`, { retryable: false });
      }
      const started = this.now();
      const until = started + this.restoreDays * DAY_MS;
      const report: RestoreReport = { started, finished: 0, partitions: [], rows: 0, until, errors: [] };
      const first = dayStart(dayOf(range.start));
      const last = dayStart(dayOf(range.end - 1)) + DAY_MS;
      const entries = this.manifest
        .entries()
        .filter((e) => e.file && e.tier !== 'deleted' && e.start >= first && e.end <= last && (!range.rules || range.rules.includes(e.rule)))
        .sort((x, y) => x.start - y.start || (x.rule < y.rule ? -1 : 1));
      for (const e of entries) {
        const f = e.file!;
        const scratch: string[] = [];
        try {
          const local = await this.localCopy(f, scratch);
          const v = await verifyParquet(local, f);
          if (!v.ok) throw new StoreError(`${f.path} does not match the manifest: ${v.problems.join('; ')}`, { retryable: false });
          const rows = await this.writeBack(local);
          await this.manifest.update(partitionKey(e.rule, e.day), (cur) => {
            if (!cur) return undefined;
            return recordHistory({ ...cur, restored: { at: started, until }, history: [...cur.history] }, this.now(), `restored ${rows} rows into the hot store until ${new Date(until).toISOString()}`);
          });
          report.partitions.push({ rule: e.rule, day: e.day, tier: e.tier, rows });
          report.rows += rows;
        } catch (err) {
          report.errors.push({ rule: e.rule, day: e.day, error: message(err) });
        } finally {
          for (const s of scratch) fs.rmSync(s, { force: true });
        }
      }
      report.finished = this.now();
      return report;
    });
  }

  /** Writes a partition file's rows into the hot store, RESTORE_BATCH lines at a time. */
  private async writeBack(file: string): Promise<number> {
    let lines: string[] = [];
    let total = 0;
    const flush = async (): Promise<void> => {
      if (!lines.length) return;
      const batch = { lines: lines.join('\n'), count: lines.length };
      lines = [];
      await this.backend.write(batch);
    };
    await readParquet([file], async (rows: ExportRow[]) => {
      for (const r of rows) {
        const tags = r.device === '' ? { ...r.tags } : { ...r.tags, device: r.device };
        lines.push(encodePoint({ measurement: r.measurement, tags, fields: { [r.field]: r.value }, ts: r.ts }));
        total++;
        if (lines.length >= RESTORE_BATCH) await flush();
      }
    });
    await flush();
    return total;
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** The query over hot and the matching warm and cold files, merged; `hot` runs it on the hot store. */
  async query(q: RangeQuery, hot: (q: RangeQuery) => Promise<QueryResult>): Promise<QueryResult> {
    for (let attempt = 0; ; attempt++) {
      const files = this.manifest.entries().filter((e) => e.file && !e.restored && (e.tier === 'warm' || e.tier === 'cold') && entryMatches(e, q));
      if (files.length === 0) return hot(q);
      const scratch: string[] = [];
      try {
        const paths: string[] = [];
        for (const e of files) paths.push(await this.localCopy(e.file!, scratch));
        // The parts without maxPoints: the merge downsamples the whole range once, as one store would.
        const part: RangeQuery = { ...q };
        delete part.maxPoints;
        const [w, h] = await Promise.all([queryParquet(paths, part), hot(part)]);
        return mergeResults([w, h], q);
      } catch (e) {
        // A run may have replaced a file between reading the manifest and opening it: read the manifest again, once.
        if (attempt === 0 && /no such file|No files found|ENOENT/i.test(message(e))) continue;
        throw e;
      } finally {
        for (const s of scratch) fs.rmSync(s, { force: true });
      }
    }
  }

  // ---- status ---------------------------------------------------------------------------------

  summary(): RetentionSummary {
    const s: RetentionSummary = {
      partitions: { warm: 0, cold: 0, deleted: 0, pending: 0, restored: 0 },
      rows: { warm: 0, cold: 0 },
      bytes: { warm: 0, cold: 0 },
      running: this.running,
      ...(this.last ? { lastRun: this.last } : {}),
    };
    for (const e of this.manifest.entries()) {
      s.partitions[e.tier]++;
      if (e.pending) s.partitions.pending++;
      if (e.restored) s.partitions.restored++;
      if (e.file && e.tier !== 'deleted') {
        s.rows[e.tier] += e.file.rows;
        s.bytes[e.tier] += e.file.bytes;
      }
    }
    return s;
  }

  /** The manifest's entries (copies), for reports and tests. */
  entries(): PartitionEntry[] {
    return this.manifest.entries();
  }

  /** Waits for a run or restore in progress, then releases the manifest. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    await this.manifest.close();
  }
}

/** Writes the rows of `older` whose key (series and ts) is not in `newer` to `out` (a Parquet file). */
async function antiJoin(older: string, newer: string, out: string): Promise<void> {
  await withDb(undefined, async (conn) => {
    await conn.run(
      `COPY (SELECT o.* FROM read_parquet($1) o ANTI JOIN read_parquet($2) n
              ON o.measurement = n.measurement AND o.device = n.device AND CAST(o.tags AS VARCHAR) = CAST(n.tags AS VARCHAR)
             AND o.field = n.field AND o.ts = n.ts) TO $3 (FORMAT parquet, COMPRESSION zstd)`,
      [older, newer, out],
      [VARCHAR, VARCHAR, VARCHAR],
    );
  });
}

export type { PartitionSelector };
