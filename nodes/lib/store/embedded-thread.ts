/**
 * The embedded store's worker thread (embedded-remote.ts starts it): an EmbeddedBackend that owns the DuckDB file,
 * answering the calls of the main thread by id. Writes come as packed points (thread-wire.ts) or line protocol;
 * exports stream their rows back a chunk at a time, the next chunk read only once the main thread has handled the
 * one before (so a slow consumer holds the export, not this thread's memory). Errors go back with what the writer
 * needs of them (StoreError's retryable, status, Retry-After).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { niceCallingThread, niceNewThreads, threadIds } from '../thread-priority';
import { EmbeddedBackend } from './embedded';
import { StoreError, type ExportRow } from './types';
import type { FromStoreThread, StoreThreadInit, ToStoreThread, WireError } from './embedded-remote';

const port = parentPort;
if (port === null) throw new Error('embedded-thread.js runs as a worker thread of the embedded store');
const { threadNice, ...opts } = workerData as StoreThreadInit;
// Before DuckDB starts its threads: they take this thread's nice value.
const niceProblem = niceCallingThread(threadNice);
if (niceProblem !== undefined) console.warn(`[thingwire] embedded store thread: ${niceProblem}`);
/** Opened by the first message ('open'): a failure to open is that call's answer. */
let backend: EmbeddedBackend | undefined;

function opened(): EmbeddedBackend {
  if (backend === undefined) throw new StoreError(`embedded (DuckDB) ${opts.path} is not open in its thread`, { retryable: true });
  return backend;
}

/** Exports waiting for the main thread to take their last chunk: id -> resume (or fail, when it stopped). */
const waiting = new Map<number, { go: () => void; stop: (e: Error) => void }>();

function send(m: FromStoreThread): void {
  port!.postMessage(m);
}

function wireError(e: unknown): WireError {
  if (e instanceof StoreError) return { message: e.message, store: true, retryable: e.retryable, status: e.status, retryAfterMs: e.retryAfterMs, serverMessage: e.serverMessage };
  return { message: e instanceof Error ? e.message : String(e), store: false, retryable: true };
}

function answer(id: number, work: () => Promise<unknown>): void {
  let p: Promise<unknown>;
  try {
    p = work();
  } catch (e) {
    p = Promise.reject(e);
  }
  p.then(
    (value) => send({ t: 'ok', id, value }),
    (e: unknown) => send({ t: 'err', id, error: wireError(e) }),
  );
}

port.on('message', (m: ToStoreThread) => {
  switch (m.t) {
    case 'open':
      answer(m.id, async () => {
        if (backend !== undefined) return;
        // DuckDB starts its threads from the libuv thread that opens the file: they are found by what is new after
        // the open (libuv's pool, started on its first use, started here before counting; a thread another part of
        // the process starts meanwhile would be niced too).
        let before: Set<number> | undefined;
        if (threadNice > 0) {
          await fs.promises.access(os.tmpdir()).catch(() => undefined);
          before = threadIds();
        }
        backend = await EmbeddedBackend.open(opts);
        const p = before !== undefined ? niceNewThreads(before, threadNice) : undefined;
        if (p !== undefined) console.warn(`[thingwire] embedded store thread: ${p}`);
      });
      return;
    case 'write':
      answer(m.id, () => (m.parts !== undefined ? opened().writePacked(m.parts, { behind: m.behind }) : opened().write({ lines: m.lines ?? '', count: m.count }, { behind: m.behind })));
      return;
    case 'query':
      answer(m.id, () => opened().query(m.q));
      return;
    case 'health':
      answer(m.id, () => opened().health());
      return;
    case 'count':
      answer(m.id, () => opened().countRange(m.sel));
      return;
    case 'extent':
      answer(m.id, () => opened().extentOf(m.sel));
      return;
    case 'delete':
      answer(m.id, () => opened().deleteRange(m.sel, m.expect));
      return;
    case 'export':
      answer(m.id, () =>
        opened().exportRange(
          m.sel,
          (rows: ExportRow[]) =>
            new Promise<void>((go, stop) => {
              waiting.set(m.id, { go, stop });
              send({ t: 'rows', id: m.id, rows });
            }),
        ),
      );
      return;
    case 'export-next':
    case 'export-stop': {
      const e = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.t === 'export-next') e?.go();
      else e?.stop(new Error(m.message));
      return;
    }
    case 'close':
      answer(m.id, () => backend?.close() ?? Promise.resolve());
      return;
  }
});
