/**
 * The anomaly scorer in a worker thread: the node's *Score in a worker thread* option. The scorer and its state file
 * live in the worker (scorer-worker.ts); this side packs each message's readings (remote-wire.ts), and makes the
 * answer into the ScoreOutput the scorer in the thread would have given, with the node's own event texts. Messages
 * are answered in the order they were given. No Node-RED here.
 *
 * Why: Node-RED runs every node on one thread. In the starter flow at its batched limit the detectors' arithmetic was
 * ~15 % of that thread while a core was partly idle; handed over, a 100-reading message costs the thread the packing
 * and, with *Scores out*, a few scores back.
 *
 * Bounded: past `maxQueued` readings handed over and not yet answered, a message is refused (score() rejects with
 * an error saying so; nothing already handed over is dropped). A worker that stops (an error, an exit) fails the
 * messages it held with an error, and the next call starts another, from the state file when there is one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { AlertEvent } from '../lib/contract';
import { workerNice } from '../lib/thread-priority';
import { decodeScores, fillEventText, mergeRejects, packReadings, type EventFacts, type PackedReadings, type ScoredReply } from './remote-wire';
import type { EventText, ScoreOutput, ScorerOptions, ScorerStats } from './scorer';

/** What the worker is started with (workerData). */
export interface WorkerInit {
  scorer: Omit<ScorerOptions, 'text'>;
  /** The state file and how often it is saved (ms; 0: only on close). */
  state?: { dataDir: string; type: string; id: string; interval: number };
  /** The thread's nice value (../lib/thread-priority.ts; default: THINGWIRE_WORKER_NICE). */
  nice?: number;
}

export type ToWorker =
  | { t: 'score'; p: PackedReadings; stats: boolean }
  | { t: 'stats' }
  | { t: 'reset'; device?: string }
  | { t: 'close'; removed: boolean };

export type FromWorker =
  | ({ t: 'scored'; stats?: ScorerStats } & ScoredReply)
  | { t: 'stats'; stats: ScorerStats }
  | { t: 'reset'; series: number; events: AlertEvent[]; facts: Record<number, EventFacts>; stats: ScorerStats }
  | { t: 'closed' }
  | { t: 'warn'; key: 'save' | 'state'; error: string };

export interface RemoteScorerOptions extends WorkerInit {
  /** The event texts (the node's message catalogue). */
  text: EventText;
  /** Readings handed over and not yet answered past which a message is refused (default 100,000). */
  maxQueued?: number;
  /** A warning: a save that failed, an unusable state file ('save', 'state'), the worker stopping ('worker'). */
  warn: (key: 'save' | 'state' | 'worker', error: string) => void;
  /** Fresh stats arrived (for the node's status). */
  onStats?: () => void;
  /** The worker's script (default: scorer-worker.js next to this file, or in dist/ when this runs from source). */
  script?: string;
}

export const DEFAULT_MAX_QUEUED = 100_000;
/** Stats ride along with a score request at most this often (ms). */
const STATS_EVERY_MS = 500;

type Waiter =
  | { t: 'scored'; payload: unknown; p: PackedReadings; here: ScoreOutput['rejects']; resolve: (o: ScoreOutput) => void; reject: (e: Error) => void }
  | { t: 'stats'; resolve: (s: ScorerStats) => void; reject: (e: Error) => void }
  | { t: 'reset'; resolve: (r: { series: number; events: AlertEvent[] }) => void; reject: (e: Error) => void }
  | { t: 'closed'; resolve: () => void; reject: (e: Error) => void };

/** The compiled worker script: next to this file, or (running from the TypeScript source, as the tests do) in dist/. */
export function workerScript(): string {
  const here = path.join(__dirname, 'scorer-worker.js');
  if (fs.existsSync(here)) return here;
  const built = path.resolve(__dirname, '../../dist/nodes/anomaly/scorer-worker.js');
  if (fs.existsSync(built)) return built;
  throw new Error(`the anomaly scoring worker's script is missing (${here}; from source, run npm run build first)`);
}

const EMPTY_STATS: ScorerStats = { series: 0, maxSeries: 0, learning: 0, anomalous: 0, maintenance: 0, stateBytes: 0, scored: 0, skipped: 0, rejected: 0, evicted: 0, thinned: 0 };

export class RemoteScorer {
  readonly maxQueued: number;
  private worker: Worker | undefined;
  private waiting: Waiter[] = [];
  private head = 0;
  private queued = 0;
  private closed = false;
  private closing = false;
  private lastStats: ScorerStats;
  private statsAt = -Infinity;
  /** A refresh of the stats after the last message answered without them (so the status ends up true). */
  private statsTimer: NodeJS.Timeout | undefined;
  /** Workers started (1 after the first call; more after one stopped). */
  starts = 0;

  constructor(private readonly opts: RemoteScorerOptions) {
    this.maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.lastStats = { ...EMPTY_STATS, maxSeries: opts.scorer.maxSeries ?? 10_000 };
    this.start();
  }

  /** Readings handed over and not yet answered. */
  get backlog(): number {
    return this.queued;
  }

  /** The worker's stats as last answered (at most ~0.5 s old while messages flow; refreshStats() asks now). */
  stats(): ScorerStats {
    return this.lastStats;
  }

  /** Scores a message's payload as AnomalyScorer.score does. Rejects only when the worker is behind or stopped. */
  score(payload: unknown): Promise<ScoreOutput> {
    return new Promise<ScoreOutput>((resolve, reject) => {
      if (this.closed) throw new Error('the anomaly scorer is closed');
      const { msg, rejects } = packReadings(payload);
      if (this.queued + msg.n > this.maxQueued && msg.n > 0) {
        throw new Error(`the scoring worker is behind: ${this.queued} readings wait for it (at most ${this.maxQueued}); this message's ${msg.n} were not scored`);
      }
      const now = Date.now();
      const stats = now - this.statsAt >= STATS_EVERY_MS;
      if (stats) this.statsAt = now;
      this.post({ t: 'score', p: msg, stats }, { t: 'scored', payload, p: msg, here: rejects, resolve, reject }, [msg.u.buffer as ArrayBuffer, msg.f.buffer as ArrayBuffer, msg.idx.buffer as ArrayBuffer]);
      this.queued += msg.n;
    });
  }

  /** Asks the worker for its stats now. */
  refreshStats(): Promise<ScorerStats> {
    return new Promise((resolve, reject) => {
      this.statsAt = Date.now();
      this.post({ t: 'stats' }, { t: 'stats', resolve, reject });
    });
  }

  /** AnomalyScorer.reset in the worker (which also removes the state file when everything is forgotten). */
  reset(device?: string): Promise<{ series: number; events: AlertEvent[] }> {
    return new Promise((resolve, reject) => {
      this.post(device === undefined ? { t: 'reset' } : { t: 'reset', device }, { t: 'reset', resolve, reject });
    });
  }

  /** Saves (or, `removed`, deletes) the state file after what was handed over, and stops the worker. */
  async close(removed: boolean): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    if (this.statsTimer !== undefined) clearTimeout(this.statsTimer);
    this.statsTimer = undefined;
    const w = this.worker;
    if (w === undefined) {
      this.closed = true;
      return;
    }
    try {
      await new Promise<void>((resolve, reject) => this.post({ t: 'close', removed }, { t: 'closed', resolve, reject }));
    } finally {
      this.closed = true;
      this.worker = undefined;
      await w.terminate();
    }
  }

  private post(m: ToWorker, w: Waiter, transfer?: ArrayBuffer[]): void {
    if (this.closed) throw new Error('the anomaly scorer is closed');
    const worker = this.worker ?? this.start();
    this.waiting.push(w);
    worker.postMessage(m, transfer);
  }

  private start(): Worker {
    const init: WorkerInit = { scorer: this.opts.scorer, nice: this.opts.nice ?? workerNice() };
    if (this.opts.state !== undefined) init.state = this.opts.state;
    const w = new Worker(this.opts.script ?? workerScript(), { workerData: init });
    w.unref();
    this.starts++;
    this.worker = w;
    w.on('message', (m: FromWorker) => this.answer(m));
    w.on('error', (e: Error) => this.stopped(w, e.message));
    w.on('exit', (code) => this.stopped(w, `exit code ${code}`));
    return w;
  }

  /** The worker stopped on its own: what it held fails, and the next call starts another. */
  private stopped(w: Worker, why: string): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    const held = this.waiting.slice(this.head);
    this.waiting = [];
    this.head = 0;
    this.queued = 0;
    if (this.closed) return;
    const err = new Error(`the anomaly scoring worker stopped (${why}); ${held.length} message(s) it held were not scored`);
    this.opts.warn('worker', err.message);
    for (const h of held) h.reject(err);
  }

  private next(): Waiter | undefined {
    const w = this.waiting[this.head];
    if (w === undefined) return undefined;
    this.waiting[this.head++] = undefined as unknown as Waiter;
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    return w;
  }

  private setStats(s: ScorerStats): void {
    this.lastStats = s;
    if (this.statsTimer !== undefined) clearTimeout(this.statsTimer);
    this.statsTimer = undefined;
    this.opts.onStats?.();
  }

  /** Stats not sent with this answer: asked for in a while unless some arrive before. */
  private statsLater(): void {
    if (this.statsTimer !== undefined || this.closing) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = undefined;
      if (!this.closing) this.refreshStats().catch(() => undefined);
    }, STATS_EVERY_MS);
  }

  private answer(m: FromWorker): void {
    if (m.t === 'warn') {
      this.opts.warn(m.key, m.error);
      return;
    }
    const w = this.next();
    if (w === undefined || w.t !== m.t) {
      this.opts.warn('worker', `the anomaly scoring worker answered ${m.t} out of turn (expected ${w?.t ?? 'nothing'})`);
      return;
    }
    switch (m.t) {
      case 'scored': {
        const s = w as Extract<Waiter, { t: 'scored' }>;
        this.queued -= s.p.n;
        const out: ScoreOutput = {
          scores: decodeScores(s.payload, s.p, m),
          events: fillEventText(m.events, m.facts, this.opts.text),
          rejects: mergeRejects(m.rejects, s.here),
          skipped: m.skipped,
          thinned: m.thinned,
          batch: s.p.batch,
        };
        if (m.stats !== undefined) this.setStats(m.stats);
        else this.statsLater();
        s.resolve(out);
        return;
      }
      case 'stats':
        this.setStats(m.stats);
        (w as Extract<Waiter, { t: 'stats' }>).resolve(m.stats);
        return;
      case 'reset':
        this.setStats(m.stats);
        (w as Extract<Waiter, { t: 'reset' }>).resolve({ series: m.series, events: fillEventText(m.events, m.facts, this.opts.text) });
        return;
      case 'closed':
        (w as Extract<Waiter, { t: 'closed' }>).resolve();
        return;
    }
  }
}
