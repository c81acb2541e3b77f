/**
 * The window node's state on disk: the engine's snapshot in a StateFile (../lib/state), restored
 * on start, saved in the background while the node runs and synchronously on close, and the journal
 * of what the engine took since (./journal), replayed over the snapshot on start. Every file
 * operation (background saves, the reset's delete, the final save or delete on close) runs in one
 * queue, so none overlaps another and a delete is never undone by a save that was still running.
 * No Node-RED here.
 */
import * as fs from 'node:fs';
import { StateFile } from '../lib/state';
import type { WindowEngine, WindowRollup, WindowSnapshot } from './engine';
import { Journal } from './journal';

export const STATE_TYPE = 'thingwire-window';

/** What the state file holds. */
export interface WindowStateDoc {
  v: 1;
  /** When it was written (ms epoch). */
  savedAt: number;
  /**
   * The journal's mark when the snapshot was begun: it holds every record up to it (and each group,
   * as snapshotText(mark) wrote it, the records up to its own mark). Absent in files written before
   * the journal.
   */
  seq?: number;
  snapshot: WindowSnapshot;
}

export function isWindowStateDoc(v: unknown): v is WindowStateDoc {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const d = v as Partial<WindowStateDoc>;
  return d.v === 1 && typeof d.savedAt === 'number' && d.snapshot !== null && typeof d.snapshot === 'object' && !Array.isArray(d.snapshot);
}

export interface RestoreResult {
  /** The state was restored (from a file written at savedAt). */
  restored: boolean;
  savedAt?: number;
  /** For replay(): the groups' journal marks and the snapshot's. */
  marks: Map<string, number>;
  seq: number;
  /** The file existed but could not be read or parsed (StateFile moved it aside). */
  problem?: string;
  /** The file was read but did not fit the engine (other levels): why, and where it was moved. */
  mismatch?: { error: string; movedTo: string | null };
}

export interface ReplayResult {
  /** Journal records read and taken again (those a group's snapshot held already skipped inside). */
  records: number;
  files: number;
  bytes: number;
  /** Lines that could not be used (besides a torn last line). */
  bad: number;
  /** What the replay closed: windows whose rollups may not have reached the store before the crash. */
  rollups: WindowRollup[];
}

/** A WindowStateDoc's JSON text in the engine's pieces; `mark` gives the journal's mark as each group is written. */
function* docText(engine: Pick<WindowEngine, 'snapshotText'>, savedAt: number, seq: number, mark: () => number): Generator<string> {
  yield `{"v":1,"savedAt":${JSON.stringify(savedAt)},"seq":${seq},"snapshot":`;
  yield* engine.snapshotText(mark);
  yield '}';
}

export class WindowPersistence {
  readonly state: StateFile<WindowStateDoc>;
  readonly journal: Journal;
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(dataDir: string, id: string) {
    this.state = new StateFile<WindowStateDoc>(dataDir, STATE_TYPE, id);
    this.journal = new Journal(this.state.file.replace(/\.json$/, ''));
  }

  get file(): string {
    return this.state.file;
  }

  /** True while a background save or delete is queued or running. */
  get busy(): boolean {
    return this.pending > 0;
  }

  /**
   * Restores the engine from the file, when there is one. A snapshot that the engine refuses
   * (levels or sketch settings changed, or hand-edited content) is moved aside to
   * `<file>.mismatch-<time>` and the engine is left as it was given (empty): the caller builds a
   * fresh one to be sure.
   */
  restore(engine: WindowEngine, now = Date.now()): RestoreResult {
    const loaded = this.state.load(isWindowStateDoc);
    const none = { restored: false, marks: new Map<string, number>(), seq: 0 };
    if (loaded.value === undefined) return loaded.problem === undefined ? none : { ...none, problem: loaded.problem };
    const seq = typeof loaded.value.seq === 'number' && Number.isFinite(loaded.value.seq) ? loaded.value.seq : 0;
    try {
      const marks = engine.restore(loaded.value.snapshot);
      this.journal.continueAfter(seq);
      for (const m of marks.values()) this.journal.continueAfter(m);
      return { restored: true, savedAt: loaded.value.savedAt, marks, seq };
    } catch (e) {
      const error = (e as Error).message;
      const aside = `${this.file}.mismatch-${now}`;
      try {
        fs.renameSync(this.file, aside);
        return { ...none, mismatch: { error, movedTo: aside } };
      } catch {
        return { ...none, mismatch: { error, movedTo: null } };
      }
    }
  }

  /**
   * Takes the journal again (after restore(), with what it returned; into an empty engine after a
   * mismatch): every record after the snapshot, each group's readings only past its own mark.
   */
  replay(engine: WindowEngine, r: Pick<RestoreResult, 'marks' | 'seq'>): ReplayResult {
    const load = this.journal.load();
    const out: ReplayResult = { records: 0, files: load.files, bytes: load.bytes, bad: load.bad, rollups: [] };
    for (const rec of load.records) {
      if (rec.s <= r.seq) continue;
      out.records++;
      const o = rec.t === 1 ? engine.advance(rec.n) : engine.replay(rec.p, rec.n, rec.s, r.marks, r.seq);
      for (const x of o.rollups) out.rollups.push(x);
    }
    return out;
  }

  /** Journals an ingest before the engine takes it (Journal.append: throws when it cannot). */
  record(now: number, payload: unknown): void {
    this.journal.append(now, payload);
  }

  /** Journals a clock tick that closed windows (after it: replayed, it closes them at the same time). */
  recordTick(now: number): void {
    this.journal.appendTick(now);
  }

  private enqueue(op: () => Promise<unknown> | void): Promise<void> {
    this.pending++;
    const run = async (): Promise<void> => {
      try {
        await op();
      } finally {
        this.pending--;
      }
    };
    const p = this.queue.then(run);
    // The queue goes on whatever happened; the caller sees the failure through p.
    this.queue = p.catch(() => undefined);
    return p;
  }

  /**
   * Saves the engine in the background, unless a save or delete is already queued or running (then it
   * returns undefined: the caller keeps its "changed" mark and tries again later). The snapshot is made
   * and written in pieces (WindowEngine.snapshotText, StateFile.saveStream) while the node goes on
   * taking readings: with an hour of kept windows for thousands of series, one snapshot() and
   * JSON.stringify held the event loop for most of a second.
   */
  saveInBackground(engine: Pick<WindowEngine, 'snapshotText'>, now = Date.now()): Promise<void> | undefined {
    if (this.busy) return undefined;
    return this.enqueue(async () => {
      // Records from here on go to a new file: once the snapshot is written, the files before it go.
      const next = this.journal.rotate();
      await this.state.saveStream(() => docText(engine, now, next - 1, () => this.journal.last));
      this.journal.deleteBefore(next);
    });
  }

  /**
   * Deletes the file and the journal once everything queued before has finished (the journal's
   * records from now on, after the reset, stay).
   */
  remove(): Promise<void> {
    const next = this.journal.rotate();
    return this.enqueue(() => {
      this.state.remove();
      this.journal.deleteBefore(next);
    });
  }

  /**
   * For the close handler: waits for the queue, then deletes the file (`what` null: the node was
   * removed from the flows), or writes the snapshot `what()` returns synchronously (nothing when
   * it returns undefined: the file is up to date). `what` is called when the queue is done, so a
   * background save that failed meanwhile can still ask for the final save.
   */
  close(what: null | (() => WindowSnapshot | undefined), now = Date.now()): Promise<void> {
    return this.enqueue(() => {
      try {
        if (what === null) {
          this.state.remove();
        } else {
          const snapshot = what();
          if (snapshot !== undefined) this.state.saveSync({ v: 1, savedAt: now, seq: this.journal.last, snapshot });
        }
        // The snapshot holds everything (a save that threw leaves the journal for the next start).
        this.journal.removeAll();
      } finally {
        this.journal.close();
      }
    });
  }
}
