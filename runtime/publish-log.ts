/**
 * The embedded broker's publish log: what aedes acknowledged to a publisher survives a crash of the runtime.
 *
 * aedes keeps sessions in memory and sends a QoS 1 publisher its PUBACK before it hands the message to the
 * subscribers, so a `kill -9` (or an out-of-memory end) of the runtime lost every message the broker had
 * acknowledged but the flows' at-least-once input had not yet stored: the publisher would not send it again, and
 * the broker's memory was gone (about 2 s of data at 300 readings/s in test/integration/ingest-faults.test.ts).
 *
 * The broker now appends each QoS 1/2 publish it accepts to this log before it acknowledges it (the PUBACK waits
 * for the write: see startEmbeddedBroker), and a logged message is released once every QoS 1 delivery the broker
 * queued for it on a persistent session (clean session off) was acknowledged by that subscriber. The flows' input
 * acknowledges only what the store holds, so released means stored. The log is a series of segment files
 * `<dir>/<number>.log`, a new segment every second; a segment is deleted once it is closed and every message in it
 * released. A segment is the 8 bytes `TWP1\n\0\0\0`, then one record a message: a u32 (little-endian) length of
 * what follows, the QoS byte, a u16 topic length, the topic (UTF-8) and the payload's bytes as they came (written
 * with the payload's own buffer, no copy or encoding of it; until 2026-12-05 a JSON line with the payload in base64,
 * which cost ~4 % of the main thread at 300,000 readings/s batched: such segments are still read). On the next start the
 * segments left are read back (recovered()) and published again once the flows' input has subscribed (duplicates
 * are possible and the store keeps one copy); then they are deleted (dropRecovered()).
 *
 * Writes: the lines of one event-loop turn (one socket read brings many publishes) go out in one write() at the
 * end of the turn's synchronous work (a microtask), and the acknowledgements wait for it: a process crash (SIGKILL)
 * keeps what write() returned from. The file is fsynced (off the event loop) every `fsyncMs` (1 s) and when a
 * segment is closed, so a power loss can take about that much. Bounded: past `maxBytes` on disk the oldest segments are deleted with a warning
 * (their messages are still in the broker's memory; only their crash protection is gone).
 *
 * What it does not cover: QoS 0 messages (no acknowledgement to keep), deliveries at QoS 2 (their release is
 * not tracked; the message is kept until its QoS 1 deliveries are done), retained flags (published again as
 * plain messages). No aedes or Node-RED import: the broker wires it (see broker.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface LoggedPacket {
  topic: string;
  payload: Buffer;
  qos: 1 | 2;
}

export interface PublishLogOptions {
  dir: string;
  /** A new segment this often (ms; default 1,000): after a crash at most about this much is published twice. */
  rotateMs?: number;
  /** ... or once a segment holds this many bytes (default 32 MB). */
  rotateBytes?: number;
  /** Segments on disk past this many bytes: the oldest are deleted with a warning (default 1 GiB). */
  maxBytes?: number;
  /** fsync the open segment this often when written (ms; default 1,000; 0 = at rotation and close only). */
  fsyncMs?: number;
  /**
   * A message whose publish the broker never finished (its publisher's connection failed before the PUBACK was
   * written) stops holding its closed segment after this long (ms; default 60,000).
   */
  transitTimeoutMs?: number;
  /** Warnings (a write or delete that failed, segments dropped past maxBytes). */
  log?: (m: string) => void;
  now?: () => number;
}

export const PUBLISH_LOG_DEFAULTS = {
  rotateMs: 1_000,
  rotateBytes: 32 * 1024 * 1024,
  maxBytes: 1024 * 1024 * 1024,
  fsyncMs: 1_000,
  transitTimeoutMs: 60_000,
} as const;

const SEGMENT_RE = /^(\d{12})\.log$/;
/** The first bytes of a segment in the binary format (segments without them are JSON lines, from before 2026-12-05). */
const MAGIC = Buffer.from('TWP1\n\0\0\0', 'latin1');

interface Segment {
  id: number;
  file: string;
  fd: number | undefined;
  bytes: number;
  openedAt: number;
  closedAt: number | undefined;
  /** Messages not yet released. */
  live: number;
  /** Of those, the ones whose publish the broker has not finished. */
  transit: number;
  /** MAGIC is written (with the segment's first write). */
  headed: boolean;
}

/** One logged message: held by the broker (keyed by its payload) until released. */
export interface LogEntry {
  readonly seg: Segment;
  /** Deliveries still to be acknowledged, plus one while the broker's publish is in transit. */
  pending: number;
  transit: boolean;
}

export interface PublishLogStats {
  /** Messages appended since the start. */
  appended: number;
  /** Messages released (every QoS 1 delivery acknowledged, or no persistent subscriber). */
  released: number;
  /** Segment files on disk and their bytes. */
  segments: number;
  bytes: number;
  /** Messages whose segment was deleted past maxBytes before they were released. */
  dropped: number;
  /** Records (lines, in the old format) in recovered segments that could not be read (a torn last one after a crash). */
  badLines: number;
}

type Callback = (err: Error | null) => void;

export class PublishLog {
  private readonly opts: Required<Omit<PublishLogOptions, 'log' | 'now'>>;
  private readonly warn: (m: string) => void;
  private readonly now: () => number;
  private readonly segments: Segment[] = [];
  private current: Segment;
  private nextId: number;
  /** The turn's records: each message's head (length, QoS, topic) and its payload. */
  private buf: Buffer[] = [];
  private waiting: Callback[] = [];
  private flushQueued = false;
  private dirty = false;
  private lastSync: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly recoveredFiles: string[] = [];
  private recoveredPackets: LoggedPacket[] = [];
  private readonly st: PublishLogStats = { appended: 0, released: 0, segments: 0, bytes: 0, dropped: 0, badLines: 0 };

  /** Opens the log in `dir` (created if absent), reading back the segments an earlier run left. */
  constructor(options: PublishLogOptions) {
    this.opts = {
      dir: options.dir,
      rotateMs: options.rotateMs ?? PUBLISH_LOG_DEFAULTS.rotateMs,
      rotateBytes: options.rotateBytes ?? PUBLISH_LOG_DEFAULTS.rotateBytes,
      maxBytes: options.maxBytes ?? PUBLISH_LOG_DEFAULTS.maxBytes,
      fsyncMs: options.fsyncMs ?? PUBLISH_LOG_DEFAULTS.fsyncMs,
      transitTimeoutMs: options.transitTimeoutMs ?? PUBLISH_LOG_DEFAULTS.transitTimeoutMs,
    };
    this.warn = options.log ?? (() => undefined);
    this.now = options.now ?? Date.now;
    fs.mkdirSync(this.opts.dir, { recursive: true });
    let maxId = 0;
    const names = fs
      .readdirSync(this.opts.dir)
      .filter((n) => SEGMENT_RE.test(n))
      .sort();
    for (const name of names) {
      maxId = Math.max(maxId, Number(SEGMENT_RE.exec(name)![1]));
      const file = path.join(this.opts.dir, name);
      this.recoveredFiles.push(file);
      this.readSegment(file);
    }
    this.nextId = maxId + 1;
    this.lastSync = this.now();
    this.current = this.openSegment();
    const every = Math.max(50, Math.min(this.opts.rotateMs, this.opts.fsyncMs > 0 ? this.opts.fsyncMs : this.opts.rotateMs));
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
  }

  /** The log's directory. */
  get dir(): string {
    return this.opts.dir;
  }

  /** The messages an earlier run left unreleased (in log order), to be published again. */
  recovered(): readonly LoggedPacket[] {
    return this.recoveredPackets;
  }

  /**
   * Deletes the segments read at the start: call once the recovered messages were appended again (and their
   * callbacks came back), so a crash during the replay still finds them in one place or the other.
   */
  dropRecovered(): void {
    for (const f of this.recoveredFiles.splice(0)) this.unlink(f);
    this.recoveredPackets = [];
  }

  /**
   * Appends a message; `done` is called once it is written (null) or could not be (the error). Returns its entry,
   * which the broker releases: enqueued() for each persistent delivery, delivered() as each is acknowledged,
   * published() when the broker's publish is done.
   */
  append(p: LoggedPacket, done: Callback): LogEntry {
    if (this.closed) throw new Error('the publish log is closed');
    const topicBytes = Buffer.byteLength(p.topic);
    const head = Buffer.allocUnsafe(7 + topicBytes);
    const len = 3 + topicBytes + p.payload.length;
    head.writeUInt32LE(len, 0);
    head[4] = p.qos;
    head.writeUInt16LE(topicBytes, 5);
    head.write(p.topic, 7, topicBytes, 'utf8');
    const now = this.now();
    if (this.current.bytes > 0 && (this.current.bytes >= this.opts.rotateBytes || now - this.current.openedAt >= this.opts.rotateMs)) {
      this.flush(); // the lines so far belong to the segment they were counted in
      this.rotate(now);
    }
    const seg = this.current;
    seg.bytes += 4 + len;
    seg.live++;
    seg.transit++;
    this.st.appended++;
    this.buf.push(head, p.payload);
    this.waiting.push(done);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
    return { seg, pending: 1, transit: true };
  }

  /** The broker queued `n` QoS 1 deliveries of the message on persistent sessions. */
  enqueued(e: LogEntry, n: number): void {
    if (e.pending > 0 && n > 0) e.pending += n;
  }

  /** One of its deliveries was acknowledged by its subscriber. */
  delivered(e: LogEntry): void {
    if (e.pending > (e.transit ? 1 : 0)) this.settle(e);
  }

  /** The broker's publish of the message is done (its deliveries are queued). */
  published(e: LogEntry): void {
    if (!e.transit) return;
    e.transit = false;
    e.seg.transit--;
    this.settle(e);
  }

  stats(): PublishLogStats {
    let bytes = 0;
    for (const s of this.segments) bytes += s.bytes;
    return { ...this.st, segments: this.segments.length + this.recoveredFiles.length, bytes };
  }

  /** Writes what is buffered; the messages' callbacks are called. */
  flush(): void {
    this.flushQueued = false;
    if (this.buf.length === 0) return;
    const bufs = this.buf;
    const cbs = this.waiting;
    this.buf = [];
    this.waiting = [];
    let err: Error | null = null;
    try {
      const seg = this.current;
      const fd = seg.fd;
      if (fd === undefined) throw new Error('no open segment');
      if (!seg.headed) {
        bufs.unshift(MAGIC);
        seg.headed = true;
      }
      fs.writevSync(fd, bufs);
      this.dirty = true;
    } catch (e) {
      err = new Error(`publish log: cannot write ${this.current.file}: ${(e as Error).message}`);
      this.warn(err.message);
      // The segment may hold a torn line now; later lines go to a new one.
      this.rotate(this.now());
    }
    for (const cb of cbs) cb(err);
  }

  /** Flushes, fsyncs and closes; segments with unreleased messages stay for the next start. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.closeSegment(this.current, this.now());
    for (const s of [...this.segments]) if (s.live === 0) this.deleteSegment(s);
  }

  private settle(e: LogEntry): void {
    if (e.pending <= 0) return;
    e.pending--;
    if (e.pending > 0) return;
    const seg = e.seg;
    seg.live--;
    this.st.released++;
    if (seg.live === 0 && seg.closedAt !== undefined) this.deleteSegment(seg);
  }

  /** Its timer's work (fsync, rotation, transit timeouts, the size bound); public for tests. */
  tick(): void {
    if (this.closed) return;
    const now = this.now();
    if (this.dirty && this.opts.fsyncMs > 0 && now - this.lastSync >= this.opts.fsyncMs) this.sync(this.current);
    if (this.current.bytes > 0 && now - this.current.openedAt >= this.opts.rotateMs) {
      this.flush();
      this.rotate(now);
    }
    for (const s of [...this.segments]) {
      if (s === this.current || s.closedAt === undefined) continue;
      // Only messages whose publish never finished hold it: their publisher never got a PUBACK from us.
      if (s.live > 0 && s.live === s.transit && now - s.closedAt >= this.opts.transitTimeoutMs) this.deleteSegment(s);
    }
    this.enforceCap();
  }

  private enforceCap(): void {
    let total = 0;
    for (const s of this.segments) total += s.bytes;
    while (total > this.opts.maxBytes && this.segments.length > 1 && this.segments[0] !== this.current) {
      const s = this.segments[0];
      total -= s.bytes;
      this.st.dropped += s.live;
      this.warn(`publish log: over ${this.opts.maxBytes} bytes on disk: deleted ${path.basename(s.file)} with ${s.live} messages not yet acknowledged by their subscribers (still in memory; a crash now would lose them)`);
      this.deleteSegment(s);
    }
  }

  private rotate(now: number): void {
    this.closeSegment(this.current, now);
    if (this.current.live === 0) this.deleteSegment(this.current);
    this.current = this.openSegment();
  }

  private openSegment(): Segment {
    const id = this.nextId++;
    const file = path.join(this.opts.dir, `${String(id).padStart(12, '0')}.log`);
    let fd: number | undefined;
    try {
      fd = fs.openSync(file, 'a');
    } catch (e) {
      this.warn(`publish log: cannot open ${file}: ${(e as Error).message}`);
    }
    const seg: Segment = { id, file, fd, bytes: 0, openedAt: this.now(), closedAt: undefined, live: 0, transit: 0, headed: false };
    this.segments.push(seg);
    return seg;
  }

  private closeSegment(s: Segment, now: number): void {
    if (s.closedAt !== undefined) return;
    s.closedAt = now;
    const fd = s.fd;
    if (fd === undefined) return;
    s.fd = undefined;
    if (s === this.current) this.dirty = false;
    // fsync off the event loop (it can take tens of ms on a busy disk), then close.
    const closeFd = (): void => fs.close(fd, () => undefined);
    if (s.bytes > 0) fs.fsync(fd, closeFd);
    else closeFd();
  }

  private sync(s: Segment): void {
    const fd = s.fd;
    if (fd === undefined) return;
    if (s === this.current) {
      this.dirty = false;
      this.lastSync = this.now();
    }
    fs.fsync(fd, (e) => {
      if (e && e.code !== 'EBADF') this.warn(`publish log: cannot fsync ${s.file}: ${e.message}`);
    });
  }

  private deleteSegment(s: Segment): void {
    const i = this.segments.indexOf(s);
    if (i >= 0) this.segments.splice(i, 1);
    this.closeSegment(s, this.now());
    this.unlink(s.file);
  }

  private unlink(file: string): void {
    try {
      fs.unlinkSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.warn(`publish log: cannot delete ${file}: ${(e as Error).message}`);
    }
  }

  private readSegment(file: string): void {
    let b: Buffer;
    try {
      b = fs.readFileSync(file);
    } catch (e) {
      this.warn(`publish log: cannot read ${file}: ${(e as Error).message}`);
      return;
    }
    if (b.length >= MAGIC.length && b.subarray(0, MAGIC.length).equals(MAGIC)) this.readRecords(b);
    else this.readLines(b.toString('utf8'));
  }

  /** A binary segment: its records in order; a torn last one (a crash mid-write) is counted and ends it. */
  private readRecords(b: Buffer): void {
    let pos = MAGIC.length;
    while (pos < b.length) {
      const len = pos + 4 <= b.length ? b.readUInt32LE(pos) : -1;
      const end = pos + 4 + len;
      if (len < 3 || end > b.length) {
        this.st.badLines++;
        return;
      }
      const qos = b[pos + 4];
      const topicBytes = b.readUInt16LE(pos + 5);
      const topicEnd = pos + 7 + topicBytes;
      if ((qos !== 1 && qos !== 2) || topicBytes === 0 || topicEnd > end) {
        this.st.badLines++;
      } else {
        // A copy: the file's buffer is let go of once read.
        this.recoveredPackets.push({ topic: b.toString('utf8', pos + 7, topicEnd), qos, payload: Buffer.from(b.subarray(topicEnd, end)) });
      }
      pos = end;
    }
  }

  /** A segment written before 2026-12-05: one JSON line a message, the payload in base64. */
  private readLines(text: string): void {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        const o = JSON.parse(line) as { t?: unknown; q?: unknown; p?: unknown };
        if (typeof o.t !== 'string' || o.t === '' || (o.q !== 1 && o.q !== 2) || typeof o.p !== 'string') throw new Error('not a logged publish');
        this.recoveredPackets.push({ topic: o.t, qos: o.q, payload: Buffer.from(o.p, 'base64') });
      } catch {
        this.st.badLines++;
      }
    }
  }
}

/** Persistent subscriptions of the flows' clients: client id -> topic filter -> QoS (1 or 2). */
export type SessionSubs = Map<string, Map<string, number>>;

const SESSIONS_FILE = 'sessions.json';

/**
 * The persistent sessions the flows had in the last run (written by writeSessions), so the broker can recreate
 * them before anyone connects: a device that publishes after a restart but before the flows' input has
 * subscribed again has its messages queued for the input instead of dropped for want of a subscriber. Missing
 * or unreadable file: none (a warning for the latter).
 */
export function readSessions(dir: string, warn: (m: string) => void = () => undefined): SessionSubs {
  const out: SessionSubs = new Map();
  const file = path.join(dir, SESSIONS_FILE);
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warn(`publish log: cannot read ${file}: ${(e as Error).message}; no sessions restored`);
    return out;
  }
  const sessions = (doc as { sessions?: unknown })?.sessions;
  if (sessions === null || typeof sessions !== 'object') return out;
  for (const [id, subs] of Object.entries(sessions as Record<string, unknown>)) {
    if (id === '' || subs === null || typeof subs !== 'object') continue;
    const m = new Map<string, number>();
    for (const [topic, qos] of Object.entries(subs as Record<string, unknown>)) if (topic !== '' && (qos === 1 || qos === 2)) m.set(topic, qos);
    if (m.size > 0) out.set(id, m);
  }
  return out;
}

/**
 * The in-process sessions (runtime/in-process.ts) the flows had in the last run: client id -> topic filters. They are
 * kept in the same file, beside the MQTT ones (an older file has none).
 */
export function readInProcessSessions(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(path.join(dir, SESSIONS_FILE), 'utf8'));
  } catch {
    return out; // readSessions warned
  }
  const ip = (doc as { inProcess?: unknown })?.inProcess;
  if (ip === null || typeof ip !== 'object') return out;
  for (const [id, filters] of Object.entries(ip as Record<string, unknown>)) {
    if (id === '' || !Array.isArray(filters)) continue;
    const list = filters.filter((f): f is string => typeof f === 'string' && f !== '');
    if (list.length > 0) out.set(id, list);
  }
  return out;
}

/** Writes the sessions (a temporary file renamed over the old one, so a crash leaves one or the other). */
export function writeSessions(dir: string, sessions: SessionSubs, inProcess: ReadonlyMap<string, readonly string[]> = new Map()): void {
  const doc: Record<string, Record<string, number>> = {};
  for (const [id, subs] of sessions) if (subs.size > 0) doc[id] = Object.fromEntries(subs);
  const file = path.join(dir, SESSIONS_FILE);
  const tmp = `${file}.tmp`;
  const body: { v: 1; sessions: typeof doc; inProcess?: Record<string, readonly string[]> } = { v: 1, sessions: doc };
  if (inProcess.size > 0) body.inProcess = Object.fromEntries(inProcess);
  fs.writeFileSync(tmp, `${JSON.stringify(body)}\n`);
  fs.renameSync(tmp, file);
}
