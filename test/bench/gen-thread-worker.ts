/**
 * The load generator's thread (gen-thread.ts starts it): a LoadGenerator answering connect, run and close by id,
 * at the nice value it was started with, the probe devices' publish times written to shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { niceCallingThread } from '../../nodes/lib/thread-priority';
import { LoadGenerator, type PhaseResult } from '../../runtime/loadgen';
import { SharedTimes, type FromGenThread, type GenThreadInit, type ToGenThread } from './gen-thread';

const port = parentPort;
if (port === null) throw new Error('gen-thread-worker.js runs as a worker thread of gen-thread.ts');
const init = workerData as GenThreadInit;
const niceProblem = niceCallingThread(init.nice);
const gen = new LoadGenerator(init.opts);
for (const t of init.tracked) gen.publishedAt.set(t.device, new SharedTimes({ seqs: t.seqs, times: t.times }));

function send(m: FromGenThread): void {
  port!.postMessage(m);
}

function done(id: number, result?: PhaseResult): void {
  send({ id, ok: true, result, lastSeq: gen.lastSeq, failed: [...gen.failedSeqs], total: gen.totalReadings });
}

port.on('message', (m: ToGenThread) => {
  const work = m.op === 'connect' ? gen.connect().then(() => undefined) : m.op === 'run' ? gen.run(m.phase) : gen.close().then(() => undefined);
  work.then(
    (result) => done(m.id, result),
    (e: unknown) => send({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});

send({ op: 'ready', nice: niceProblem === undefined ? Math.max(0, init.nice) : 0, niceProblem });
