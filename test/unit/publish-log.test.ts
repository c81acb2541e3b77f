/**
 * The embedded broker's publish log (runtime/publish-log.ts) on a real directory: what is appended is on disk
 * once its callback comes, a segment goes once every message in it is released, and a crash image (the files
 * as a killed process left them, copied before close) gives back exactly the unreleased messages.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PublishLog, readSessions, writeSessions, type LoggedPacket, type PublishLogOptions } from '../../runtime/publish-log';
import { tmpDir } from '../support/services';

const open: PublishLog[] = [];
afterEach(() => {
  for (const l of open.splice(0)) l.close();
});

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function newLog(dir: string, opts: Partial<PublishLogOptions> = {}): PublishLog {
  const l = new PublishLog({ dir, fsyncMs: 0, ...opts });
  open.push(l);
  return l;
}

function packet(i: number): LoggedPacket {
  return { topic: `devices/d${i % 3}/telemetry`, qos: 1, payload: Buffer.from(JSON.stringify({ seq: i, v: i / 7 })) };
}

/** Appends and waits for the write. */
async function append(l: PublishLog, p: LoggedPacket): Promise<ReturnType<PublishLog['append']>> {
  let done: (err: Error | null) => void = () => undefined;
  const written = new Promise<Error | null>((r) => (done = r));
  const e = l.append(p, done);
  expect(await written).toBeNull();
  return e;
}

/** The directory as a killed process would leave it: copied while the log is open. */
function crashImage(dir: string): string {
  const copy = tmpDir('publish-log-crash');
  for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(copy, f));
  return copy;
}

function seqs(packets: readonly LoggedPacket[]): number[] {
  return packets.map((p) => (JSON.parse(p.payload.toString()) as { seq: number }).seq);
}

function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.log'));
}

test('what was written comes back from a crash image, byte for byte, in order', async () => {
  const dir = tmpDir('publish-log');
  const l = newLog(dir);
  const sent = Array.from({ length: 50 }, (_, i) => packet(i));
  sent.push({ topic: 'devices/weird/"quoted"\nline', qos: 2, payload: Buffer.from([0, 255, 10, 13, 0x22]) });
  for (const p of sent) await append(l, p);
  const again = newLog(crashImage(dir));
  expect(again.recovered()).toEqual(sent);
  expect(again.stats().badLines).toBe(0);
});

test('the records of one turn go out in one write, and every callback waits for it', async () => {
  const dir = tmpDir('publish-log');
  const l = newLog(dir);
  const order: string[] = [];
  const sent = [0, 1, 2].map(packet);
  sent.forEach((p, i) => l.append(p, (err) => order.push(`cb${i}:${err === null}`)));
  order.push('sync end');
  const file = path.join(dir, segmentFiles(dir)[0]);
  expect(fs.readFileSync(file).length).toBe(0); // nothing written before the turn's synchronous work ends
  await Promise.resolve();
  expect(order).toEqual(['sync end', 'cb0:true', 'cb1:true', 'cb2:true']);
  // The header, then per message its length (u32), QoS, topic length (u16), topic and payload as they came.
  const expected = Buffer.concat([
    Buffer.from('TWP1\n\0\0\0', 'latin1'),
    ...sent.map((p) => {
      const head = Buffer.alloc(7);
      head.writeUInt32LE(3 + Buffer.byteLength(p.topic) + p.payload.length, 0);
      head[4] = p.qos;
      head.writeUInt16LE(Buffer.byteLength(p.topic), 5);
      return Buffer.concat([head, Buffer.from(p.topic), p.payload]);
    }),
  ]);
  expect(fs.readFileSync(file).equals(expected)).toBe(true);
});

test('a turn of more messages than one writev takes (IOV_MAX, 1,024 buffers) is written whole, in order', async () => {
  const dir = tmpDir('publish-log');
  const l = newLog(dir);
  const sent = Array.from({ length: 3000 }, (_, i) => packet(i));
  const errors: Array<Error | null> = [];
  for (const p of sent) l.append(p, (err) => errors.push(err));
  await Promise.resolve();
  expect([errors.length, errors.every((e) => e === null)]).toEqual([3000, true]);
  expect(newLog(crashImage(dir)).recovered()).toEqual(sent);
});

test('segments of the JSON-line format (before 2026-12-05) are still read: each line a message, a torn one counted', () => {
  const dir = tmpDir('publish-log');
  const sent = [0, 1].map(packet);
  const lines = sent.map((p) => `${JSON.stringify({ t: p.topic, q: p.qos, p: p.payload.toString('base64') })}\n`).join('');
  fs.writeFileSync(path.join(dir, '000000000007.log'), `${lines}{"t":"devices/d1/telemetry","q":1,"p":"eyJz`);
  const again = newLog(dir);
  expect(again.recovered()).toEqual(sent);
  expect(again.stats().badLines).toBe(1);
});

test('a segment is deleted once closed and every message in it released; a crash image then holds only the rest', async () => {
  const c = clock();
  const dir = tmpDir('publish-log');
  const l = newLog(dir, { now: c.now, rotateMs: 1000 });
  const first = [];
  for (let i = 0; i < 5; i++) first.push(await append(l, packet(i)));
  c.advance(1000);
  const second = [];
  for (let i = 5; i < 10; i++) second.push(await append(l, packet(i))); // a new segment: the first one is closed
  expect(segmentFiles(dir)).toHaveLength(2);
  // Each message of the first segment: one persistent delivery, published, then acknowledged.
  for (const e of first) {
    l.enqueued(e, 1);
    l.published(e);
  }
  expect(segmentFiles(dir)).toHaveLength(2); // delivered, not yet acknowledged
  for (const e of first.slice(0, 4)) l.delivered(e);
  expect(segmentFiles(dir)).toHaveLength(2); // one still waits
  l.delivered(first[4]);
  expect(segmentFiles(dir)).toHaveLength(1);
  // The second segment's messages: published with no persistent subscriber (nothing to wait for), but the segment
  // is still open, so they are in a crash image.
  for (const e of second) l.published(e);
  expect(seqs(newLog(crashImage(dir)).recovered())).toEqual([5, 6, 7, 8, 9]);
  expect(l.stats()).toMatchObject({ appended: 10, released: 10, dropped: 0 });
  // Rotated by the timer: gone.
  c.advance(1000);
  l.tick();
  expect(segmentFiles(dir)).toHaveLength(1); // the new, empty current segment
  expect(newLog(crashImage(dir)).recovered()).toEqual([]);
});

test('a message waits for every QoS 1 delivery; extra acknowledgements of a released one change nothing', async () => {
  const c = clock();
  const dir = tmpDir('publish-log');
  const l = newLog(dir, { now: c.now });
  const e = await append(l, packet(1));
  const other = await append(l, packet(2));
  l.enqueued(e, 2);
  l.published(e);
  l.delivered(e);
  c.advance(1000);
  await append(l, packet(3)); // rotates
  expect(seqs(newLog(crashImage(dir)).recovered())).toEqual([1, 2, 3]);
  l.delivered(e);
  l.delivered(e); // a second acknowledgement of the same delivery (aedes found nothing to clear): ignored
  l.published(other);
  l.delivered(other); // never enqueued: ignored
  expect(seqs(newLog(crashImage(dir)).recovered())).toEqual([3]);
  expect(l.stats().released).toBe(2);
});

test('a torn last record (the write a crash cut) is skipped and counted; the records before it come back', async () => {
  const dir = tmpDir('publish-log');
  const l = newLog(dir);
  for (let i = 0; i < 4; i++) await append(l, packet(i));
  const img = crashImage(dir);
  const file = path.join(img, segmentFiles(img)[0]);
  const whole = fs.readFileSync(file);
  // Cut inside the last record's payload, inside its topic, inside its length.
  const last = whole.length - (7 + Buffer.byteLength(packet(3).topic) + packet(3).payload.length);
  for (const keep of [whole.length - 3, last + 9, last + 2]) {
    fs.writeFileSync(file, whole.subarray(0, keep));
    const again = newLog(img);
    expect({ keep, seqs: seqs(again.recovered()), bad: again.stats().badLines }).toEqual({ keep, seqs: [0, 1, 2], bad: 1 });
    again.close();
  }
});

test('recovered segments stay until dropRecovered(), so a crash during the replay finds them again', async () => {
  const dir = tmpDir('publish-log');
  const l = newLog(dir);
  for (let i = 0; i < 4; i++) await append(l, packet(i));
  const img = crashImage(dir);
  const old = segmentFiles(img);
  const replaying = newLog(img);
  expect(replaying.recovered()).toHaveLength(4);
  for (const p of replaying.recovered().slice(0, 2)) await append(replaying, p); // replay cut after two
  // Crashed again here: the old segment and the half replay are both there (duplicates, nothing lost).
  expect(seqs(newLog(crashImage(img)).recovered())).toEqual([0, 1, 2, 3, 0, 1]);
  for (const p of replaying.recovered().slice(2)) await append(replaying, p);
  replaying.dropRecovered();
  for (const f of old) expect(fs.existsSync(path.join(img, f))).toBe(false);
  expect(replaying.recovered()).toEqual([]);
  expect(seqs(newLog(crashImage(img)).recovered())).toEqual([0, 1, 2, 3]);
});

test('close keeps the segments with unreleased messages for the next start and deletes the rest', async () => {
  const c = clock();
  const dir = tmpDir('publish-log');
  const l = new PublishLog({ dir, fsyncMs: 0, now: c.now });
  const a = await append(l, packet(1));
  l.published(a); // released
  c.advance(1000);
  const b = await append(l, packet(2));
  l.enqueued(b, 1);
  l.published(b); // waits for its subscriber
  l.close();
  expect(segmentFiles(dir)).toHaveLength(1);
  expect(seqs(newLog(dir).recovered())).toEqual([2]);
  expect(() => l.append(packet(3), () => undefined)).toThrow(/closed/);
});

test('a message whose publish never finished holds its segment only until the transit timeout', async () => {
  const c = clock();
  const dir = tmpDir('publish-log');
  const l = newLog(dir, { now: c.now, rotateMs: 1000, transitTimeoutMs: 60_000 });
  await append(l, packet(1)); // its publisher's connection failed before the PUBACK: never published
  const b = await append(l, packet(2));
  l.enqueued(b, 1);
  l.published(b);
  c.advance(1000);
  l.tick(); // rotated
  c.advance(59_000);
  l.tick();
  expect(segmentFiles(dir)).toHaveLength(2); // b still waits for its subscriber
  l.delivered(b);
  expect(segmentFiles(dir)).toHaveLength(2); // released, but the stuck one holds the segment...
  c.advance(1000);
  l.tick();
  expect(segmentFiles(dir)).toHaveLength(1); // ...until 60 s after the segment was closed
});

test('past maxBytes the oldest segments are deleted with a warning and counted', async () => {
  const c = clock();
  const dir = tmpDir('publish-log');
  const warnings: string[] = [];
  const l = newLog(dir, { now: c.now, rotateMs: 1000, maxBytes: 800, log: (m) => warnings.push(m) });
  for (let s = 0; s < 4; s++) {
    for (let i = 0; i < 5; i++) {
      const e = await append(l, packet(s * 5 + i));
      l.enqueued(e, 1); // a persistent subscriber that never acknowledges
      l.published(e);
    }
    c.advance(1000);
  }
  const before = l.stats();
  expect(before.bytes).toBeGreaterThan(800);
  l.tick();
  const after = l.stats();
  expect(after.bytes).toBeLessThanOrEqual(800);
  expect(after.dropped).toBeGreaterThan(0);
  expect(after.dropped % 5).toBe(0); // whole segments
  expect(warnings.join('\n')).toMatch(/over 800 bytes on disk: deleted \d+\.log with 5 messages not yet acknowledged/);
  const kept = seqs(newLog(crashImage(dir)).recovered());
  expect(kept).toEqual(Array.from({ length: 20 - after.dropped }, (_, i) => after.dropped + i)); // the newest kept
});

test('a failed write fails the callbacks of its turn (the broker refuses those publishes) and the log goes on in a new segment', async () => {
  const dir = tmpDir('publish-log');
  const warnings: string[] = [];
  const l = newLog(dir, { log: (m) => warnings.push(m) });
  await append(l, packet(1));
  const seg = (l as unknown as { current: { fd: number | undefined } }).current;
  fs.closeSync(seg.fd!); // the file is gone from under it (EBADF on the next write)
  const errs: Array<Error | null> = [];
  l.append(packet(2), (e) => errs.push(e));
  l.append(packet(3), (e) => errs.push(e));
  await Promise.resolve();
  expect(errs).toHaveLength(2);
  expect(errs[0]?.message).toMatch(/publish log: cannot write/);
  expect(warnings[0]).toMatch(/cannot write/);
  await append(l, packet(4));
  expect(seqs(newLog(crashImage(dir)).recovered())).toEqual([1, 4]);
});

test('the flows\' sessions: written and read back; a missing file is none, a damaged one is none with a warning', () => {
  const dir = tmpDir('publish-log');
  expect(readSessions(dir).size).toBe(0);
  writeSessions(
    dir,
    new Map([
      ['thingwire-starter', new Map([['devices/+/+', 1]])],
      ['empty', new Map()],
    ]),
  );
  expect(readSessions(dir)).toEqual(new Map([['thingwire-starter', new Map([['devices/+/+', 1]])]]));
  fs.writeFileSync(path.join(dir, 'sessions.json'), '{"v":1,"sessions":{"a":{"x/#":1,');
  const warnings: string[] = [];
  expect(readSessions(dir, (m) => warnings.push(m)).size).toBe(0);
  expect(warnings[0]).toMatch(/cannot read .*sessions\.json/);
  fs.writeFileSync(path.join(dir, 'sessions.json'), JSON.stringify({ v: 1, sessions: { a: { 'x/#': 1, 'y/#': 0, 'z/#': 7, '': 1 }, b: 'no' } }));
  expect(readSessions(dir)).toEqual(new Map([['a', new Map([['x/#', 1]])]]));
});
