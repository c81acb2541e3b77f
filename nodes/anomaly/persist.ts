/**
 * The anomaly scorer's state file: loaded at start, saved in the background when it changed (in pieces, scoring going
 * on between them: one JSON.stringify of 6,000 series held the event loop for about a second), deleted when every
 * series is reset, and written in one go on close. The node uses it in Node-RED's thread, and the scoring worker
 * (scorer-worker.ts) in its own. No Node-RED here.
 */
import type { StateFile } from '../lib/state';
import type { AnomalyScorer, ScorerSnapshot } from './scorer';

export type PersistWarning = (key: 'save' | 'state', error: string) => void;

export class ScorerPersistence {
  /** Every write and delete of the file, in order (a delete never races a save). */
  private io: Promise<void> = Promise.resolve();
  private saving = false;
  private savedVersion = 0;
  private closing = false;
  private timer: NodeJS.Timeout | undefined;

  /** `interval`: ms between background saves (0: only on close). */
  constructor(
    private readonly scorer: AnomalyScorer,
    private readonly file: StateFile<ScorerSnapshot>,
    private readonly interval: number,
    private readonly warn: PersistWarning,
  ) {}

  /** Restores the saved state (a file it cannot use is moved aside with a warning) and starts the saves. */
  load(): void {
    let why: string | undefined;
    const s = this.scorer;
    const loaded = this.file.load((v): v is ScorerSnapshot => {
      try {
        s.restore(v);
        return true;
      } catch (e) {
        why = (e as Error).message;
        return false;
      }
    });
    if (loaded.problem !== undefined) this.warn('state', why === undefined ? loaded.problem : `${why}; ${loaded.problem}`);
    this.savedVersion = s.version;
    if (this.interval > 0) this.timer = setInterval(() => this.saveSoon(), this.interval);
  }

  /** Starts a background save when the state changed since the last one and none is running. */
  saveSoon(): void {
    if (this.saving || this.closing || this.scorer.version === this.savedVersion) return;
    this.saving = true;
    const version = this.scorer.version;
    const sc = this.scorer;
    this.io = this.io
      .then(() => this.file.saveStream(() => sc.snapshotText()))
      .then(
        () => {
          this.savedVersion = version;
        },
        (e: unknown) => this.warn('save', (e as Error).message),
      )
      .finally(() => {
        this.saving = false;
      });
  }

  /** After a reset: of every series, the file goes (after any save still running); of one device's, a save. */
  afterReset(all: boolean): void {
    if (!all) {
      this.saveSoon();
      return;
    }
    this.savedVersion = this.scorer.version;
    this.io = this.io.then(() => {
      try {
        this.file.remove();
      } catch (e) {
        this.warn('save', (e as Error).message);
      }
    });
  }

  /** Stops the saves; after any running one, deletes the file (`removed`: the node is gone) or writes what changed. */
  close(removed: boolean): Promise<void> {
    this.closing = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    return this.io.then(() => {
      try {
        if (removed) this.file.remove();
        else if (this.scorer.version !== this.savedVersion) {
          this.file.saveSync(this.scorer.snapshot());
          this.savedVersion = this.scorer.version;
        }
      } catch (e) {
        this.warn('save', (e as Error).message);
      }
    });
  }
}
