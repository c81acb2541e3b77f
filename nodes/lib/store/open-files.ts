/**
 * The embedded store's files this process has open, on the main thread: DuckDB lets one process open a file twice
 * (its lock is per process), and two writers corrupt it. A store that runs in a worker thread (embedded-remote.ts)
 * claims its file here too, before the worker opens it, so two stores of one file are refused whichever thread
 * each runs in. Kept apart from embedded.ts so that claiming a file does not load DuckDB.
 */
import { StoreError } from './types';

const OPEN_FILES = new Set<string>();

/** Claims `file` (an absolute path) for one store; throws a retryable StoreError when it is already open. */
export function claimFile(file: string): void {
  if (OPEN_FILES.has(file)) throw new StoreError(`${file} is already open in this process (close the other embedded store first)`, { retryable: true });
  OPEN_FILES.add(file);
}

export function releaseFile(file: string): void {
  OPEN_FILES.delete(file);
}
