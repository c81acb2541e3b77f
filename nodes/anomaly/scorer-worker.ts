/**
 * The anomaly node's scoring worker (remote.ts starts it): an AnomalyScorer and its state file, in a worker thread.
 * Takes the messages of remote.ts in order and answers each one (see remote-wire.ts for what goes over). The state
 * file is loaded at start, saved every `state.interval` ms when it changed (in pieces, scoring going on between them,
 * as the node does in the thread), and on close; warnings go to the node as { t: 'warn' }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { StateFile } from '../lib/state';
import { encodeScores, MarkerText, unpackReadings } from './remote-wire';
import type { FromWorker, ToWorker, WorkerInit } from './remote';
import { AnomalyScorer, type ScorerSnapshot } from './scorer';

const port = parentPort;
if (port === null) throw new Error('scorer-worker.js runs as a worker thread of the anomaly node');
const init = workerData as WorkerInit;
const marker = new MarkerText();
const scorer = new AnomalyScorer({ ...init.scorer, text: marker.text });

function send(m: FromWorker, transfer?: ArrayBuffer[]): void {
  port!.postMessage(m, transfer);
}

const state = init.state ? new StateFile<ScorerSnapshot>(init.state.dataDir, init.state.type, init.state.id) : undefined;
let io: Promise<void> = Promise.resolve();
let saving = false;
let savedVersion = 0;
let closing = false;
let timer: NodeJS.Timeout | undefined;

if (state !== undefined) {
  let why: string | undefined;
  const loaded = state.load((v): v is ScorerSnapshot => {
    try {
      scorer.restore(v);
      return true;
    } catch (e) {
      why = (e as Error).message;
      return false;
    }
  });
  if (loaded.problem !== undefined) send({ t: 'warn', key: 'state', error: why === undefined ? loaded.problem : `${why}; ${loaded.problem}` });
  savedVersion = scorer.version;
  if (init.state!.interval > 0) timer = setInterval(saveSoon, init.state!.interval);
}

/** Starts a background save when the state changed since the last one and none is running. */
function saveSoon(): void {
  if (!state || saving || closing || scorer.version === savedVersion) return;
  saving = true;
  const version = scorer.version;
  io = io
    .then(() => state.saveStream(() => scorer.snapshotText()))
    .then(
      () => {
        savedVersion = version;
      },
      (e: unknown) => send({ t: 'warn', key: 'save', error: (e as Error).message }),
    )
    .finally(() => {
      saving = false;
    });
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'score': {
      const p = m.p;
      scorer.countRejected(p.refused);
      const items = unpackReadings(p);
      const out = p.batch ? scorer.score(items, true) : p.n === 1 ? scorer.score(items[0], true) : scorer.score([], true);
      // The scorer's indexes are into the items sent; the node's are into its batch.
      for (const r of out.rejects) if (r.index !== undefined) r.index = p.idx[r.index];
      const enc = encodeScores(out.scores, out.at!, p);
      const reply: FromWorker = {
        t: 'scored',
        ...enc,
        events: out.events,
        rejects: out.rejects,
        skipped: out.skipped,
        thinned: out.thinned,
        facts: out.events.length > 0 ? marker.takeFacts(out.events) : {},
      };
      if (m.stats) reply.stats = scorer.stats();
      send(reply, [enc.rows.buffer as ArrayBuffer, enc.ru.buffer as ArrayBuffer]);
      return;
    }
    case 'stats':
      send({ t: 'stats', stats: scorer.stats() });
      return;
    case 'reset': {
      const r = scorer.reset(m.device);
      if (state) {
        if (m.device === undefined) {
          // Nothing left to keep: the file goes (after any save still running).
          savedVersion = scorer.version;
          io = io.then(() => {
            try {
              state.remove();
            } catch (e) {
              send({ t: 'warn', key: 'save', error: (e as Error).message });
            }
          });
        } else {
          saveSoon();
        }
      }
      send({ t: 'reset', series: r.series, events: r.events, facts: marker.takeFacts(r.events), stats: scorer.stats() });
      return;
    }
    case 'close': {
      closing = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      void io.then(() => {
        if (state) {
          try {
            if (m.removed) state.remove();
            else if (scorer.version !== savedVersion) {
              state.saveSync(scorer.snapshot());
              savedVersion = scorer.version;
            }
          } catch (e) {
            send({ t: 'warn', key: 'save', error: (e as Error).message });
          }
        }
        send({ t: 'closed' });
      });
      return;
    }
  }
});
