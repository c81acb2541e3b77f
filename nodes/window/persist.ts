/**
 * The window node's state on disk: the engine's snapshot in a StateFile (../lib/state), restored
 * on start, saved in the background while the node runs and synchronously on close. Every file
 * operation (background saves, the reset's delete, the final save or delete on close) runs in one
 * queue, so none overlaps another and a delete is never undone by a save that was still running.
 * No Node-RED here.
 */
import * as fs from 'node:fs';
import { StateFile } from '../lib/state';
import type { WindowEngine, WindowSnapshot } from './engine';

export const STATE_TYPE = 'thingwire-window';

/** What the state file holds. */
export interface WindowStateDoc {
  v: 1;
  /** When it was written (ms epoch). */
  savedAt: number;
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
  /** The file existed but could not be read or parsed (StateFile moved it aside). */
  problem?: string;
  /** The file was read but did not fit the engine (other levels): why, and where it was moved. */
  mismatch?: { error: string; movedTo: string | null };
}

/** A WindowStateDoc's JSON text in the engine's pieces. */
function* docText(engine: Pick<WindowEngine, 'snapshotText'>, savedAt: number): Generator<string> {
  yield `{"v":1,"savedAt":${JSON.stringify(savedAt)},"snapshot":`;
  yield* engine.snapshotText();
  yield '}';
}

export class WindowPersistence {
  readonly state: StateFile<WindowStateDoc>;
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(dataDir: string, id: string) {
    this.state = new StateFile<WindowStateDoc>(dataDir, STATE_TYPE, id);
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
    if (loaded.value === undefined) return loaded.problem === undefined ? { restored: false } : { restored: false, problem: loaded.problem };
    try {
      engine.restore(loaded.value.snapshot);
      return { restored: true, savedAt: loaded.value.savedAt };
    } catch (e) {
      const error = (e as Error).message;
      const aside = `${this.file}.mismatch-${now}`;
      try {
        fs.renameSync(this.file, aside);
        return { restored: false, mismatch: { error, movedTo: aside } };
      } catch {
        return { restored: false, mismatch: { error, movedTo: null } };
      }
    }
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
    return this.enqueue(() => this.state.saveStream(() => docText(engine, now)));
  }

  /** Deletes the file once everything queued before has finished. */
  remove(): Promise<void> {
    return this.enqueue(() => this.state.remove());
  }

  /**
   * For the close handler: waits for the queue, then deletes the file (`what` null: the node was
   * removed from the flows), or writes the snapshot `what()` returns synchronously (nothing when
   * it returns undefined: the file is up to date). `what` is called when the queue is done, so a
   * background save that failed meanwhile can still ask for the final save.
   */
  close(what: null | (() => WindowSnapshot | undefined), now = Date.now()): Promise<void> {
    return this.enqueue(() => {
      if (what === null) {
        this.state.remove();
        return;
      }
      const snapshot = what();
      if (snapshot !== undefined) this.state.saveSync({ v: 1, savedAt: now, snapshot });
    });
  }
}
