/**
 * The anomaly node's scoring worker (remote.ts starts it): an AnomalyScorer and its state file, in a worker thread.
 * Takes the messages of remote.ts in order and answers each one (see remote-wire.ts for what goes over). The state
 * file (ScorerPersistence, as the node uses it in the thread) is loaded at start, saved in the background every
 * `state.interval` ms when it changed, and on close; warnings go to the node as { t: 'warn' }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { StateFile } from '../lib/state';
import { niceCallingThread } from '../lib/thread-priority';
import { ScorerPersistence } from './persist';
import { encodeScores, MarkerText, unpackReadings } from './remote-wire';
import type { FromWorker, ToWorker, WorkerInit } from './remote';
import { AnomalyScorer, type ScorerSnapshot } from './scorer';

const port = parentPort;
if (port === null) throw new Error('scorer-worker.js runs as a worker thread of the anomaly node');
const init = workerData as WorkerInit;
const niceProblem = niceCallingThread(init.nice ?? 0);
if (niceProblem !== undefined) console.warn(`[thingwire] anomaly scoring thread: ${niceProblem}`);
const marker = new MarkerText();
const scorer = new AnomalyScorer({ ...init.scorer, text: marker.text });

function send(m: FromWorker, transfer?: ArrayBuffer[]): void {
  port!.postMessage(m, transfer);
}

const persistence = init.state
  ? new ScorerPersistence(scorer, new StateFile<ScorerSnapshot>(init.state.dataDir, init.state.type, init.state.id), init.state.interval, (key, error) =>
      send({ t: 'warn', key, error }),
    )
  : undefined;
persistence?.load();

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
      persistence?.afterReset(m.device === undefined);
      send({ t: 'reset', series: r.series, events: r.events, facts: marker.takeFacts(r.events), stats: scorer.stats() });
      return;
    }
    case 'close': {
      void (persistence ? persistence.close(m.removed) : Promise.resolve()).then(() => send({ t: 'closed' }));
      return;
    }
  }
});
