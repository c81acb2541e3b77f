/**
 * nodes/window/journal.ts (the window node's journal of what it took since its last snapshot) and its use
 * by WindowPersistence: records read back in order across files, a torn last line skipped, rotation and
 * deletion by mark, marks that keep growing across restarts, a failed write that leaves no merged line;
 * and crash images (the files as a killed process leaves them) restored + replayed into an engine that ends
 * where the killed one was, with the remembered event times that recognise a redelivery.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import type { Reading } from '../../nodes/lib/contract';
import { WindowEngine, type WindowEngineOptions } from '../../nodes/window/engine';
import { Journal } from '../../nodes/window/journal';
import { WindowPersistence } from '../../nodes/window/persist';

const T0 = Date.UTC(2026, 4, 4, 12);
const S = 1000;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-window-journal-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const reading = (device: string, ts: number, t: number): Reading => ({ device, ts, metrics: { t } });
const names = (): string[] => fs.readdirSync(path.join(dir, 'state', 'thingwire-window')).sort();

describe('Journal', () => {
  const base = (): string => path.join(dir, 'n1');

  test('records come back in order across rotations; marks continue after load()', () => {
    const j = new Journal(base());
    expect(j.load()).toEqual({ records: [], bad: 0, last: 0, files: 0, bytes: 0 });
    expect(j.append(10, [reading('d1', T0, 1)])).toBe(1);
    expect(j.append(11, { device: 'd2', ts: T0, metrics: { t: 2 } })).toBe(2);
    expect(j.rotate()).toBe(3);
    expect(j.appendTick(12)).toBe(3);
    j.close();
    expect(fs.readdirSync(dir).sort()).toEqual(['n1.journal-1', 'n1.journal-3']);

    const again = new Journal(base());
    const l = again.load();
    expect(l.records).toEqual([
      { s: 1, n: 10, p: [reading('d1', T0, 1)] },
      { s: 2, n: 11, p: { device: 'd2', ts: T0, metrics: { t: 2 } } },
      { s: 3, n: 12, t: 1 },
    ]);
    expect([l.bad, l.last, l.files]).toEqual([0, 3, 2]);
    expect(again.append(13, [])).toBe(4);
    again.close();
  });

  test('a torn last record (a crash mid-write) is skipped quietly; records before it come back', () => {
    const j = new Journal(base());
    const file = path.join(dir, 'n1.journal-1');
    j.append(1, [reading('d1', T0, 1)]);
    j.append(2, [reading('d1', T0 + S, 2)]);
    const third = fs.statSync(file).size; // where the third record begins
    j.append(3, [reading('d2', T0 + S, 3)]);
    j.close();
    const whole = fs.readFileSync(file);
    // Cut inside the third record's body, inside its length, right after its length: torn, not counted bad.
    for (const keep of [whole.length - 5, third + 2, third + 4]) {
      fs.writeFileSync(file, whole.subarray(0, keep));
      const l = new Journal(base()).load();
      expect({ keep, s: l.records.map((r) => r.s), bad: l.bad }).toEqual({ keep, s: [1, 2], bad: 0 });
    }
    // A zero length cannot be written: corrupt, counted, and the file read no further.
    fs.writeFileSync(file, Buffer.concat([whole.subarray(0, third), Buffer.alloc(4), whole.subarray(third)]));
    const l = new Journal(base()).load();
    expect(l.records.map((r) => r.s)).toEqual([1, 2]);
    expect(l.bad).toBe(1);
  });

  test('JSON-line files of before the binary format are still read: a torn last line skipped, a bad line counted', () => {
    const file = path.join(dir, 'n1.journal-1');
    fs.writeFileSync(file, `{"s":1,"n":1,"p":[${JSON.stringify(reading('d1', T0, 1))}]}\n{"s":2,"n":2,"t":1}\n{"s":3,"n":3,"p":[{"dev`);
    let l = new Journal(base()).load();
    expect(l.records).toEqual([
      { s: 1, n: 1, p: [reading('d1', T0, 1)] },
      { s: 2, n: 2, t: 1 },
    ]);
    expect([l.bad, l.last]).toEqual([0, 2]);
    fs.appendFileSync(file, '\n{"s":"x"}\n{"s":4,"n":4,"p":[]}\n');
    l = new Journal(base()).load();
    expect(l.records.map((r) => r.s)).toEqual([1, 2, 4]);
    expect(l.bad).toBe(2);
    // Appends after it go to a file of the new format, and both are read, in order.
    const j = new Journal(base());
    j.load();
    expect(j.append(5, [reading('d1', T0 + S, 2)])).toBe(5);
    j.close();
    expect(new Journal(base()).load().records.map((r) => r.s)).toEqual([1, 2, 4, 5]);
  });

  test('every payload comes back as the engine took it: plain readings compactly, anything else as JSON would', () => {
    const j = new Journal(base());
    const nan = { device: 'd1', ts: T0, metrics: { a: Number.NaN, b: -Infinity, c: -0, d: 1e-310, e: Number.MAX_VALUE } };
    const payloads: unknown[] = [
      [reading('d1', T0, 1), reading('d2', T0 + 1, 2.5)],
      { device: 'd1', ts: T0, metrics: { t: 1, h: 2 } },
      [{ device: 'ä-ß:1', ts: T0, metrics: { 'temp °C': 21.25, 'x\u2028y': 3 }, tags: { site: 'Zürich', fw: '1.2' } }],
      [{ device: 'd1', ts: T0, metrics: {}, tags: {} }],
      [{ device: 'd1', ts: T0, metrics: { t: 1 }, tags: undefined }],
      [],
      // Not plain readings: written as JSON, read back as JSON gives them.
      [{ device: 'd1', ts: T0, metrics: { t: 1 }, seq: 4 }],
      [{ device: 'd1', ts: T0, metrics: { t: 'high', n: 1 } }],
      [{ device: 'd1', ts: T0, metrics: { t: 1 }, tags: { n: 2 } }],
      [{ device: 7, ts: T0, metrics: { t: 1 } }],
      [reading('d1', T0, 1), null],
      { device: 'd1', ts: '2026', metrics: { t: 1 } },
      'text',
      42,
      null,
      [[reading('d1', T0, 1)]],
    ];
    payloads.forEach((p, i) => j.append(i, p));
    j.append(100, [nan]);
    j.close();
    const l = new Journal(base()).load();
    expect(l.bad).toBe(0);
    expect(l.records.slice(0, payloads.length).map((r) => r.p)).toEqual(payloads.map((p) => JSON.parse(JSON.stringify(p)) as unknown));
    // Numbers JSON cannot hold come back as the engine took them (JSON would have made them null).
    const back = (l.records[payloads.length].p as Array<{ metrics: Record<string, number> }>)[0].metrics;
    expect(back.a).toBeNaN();
    expect([back.b, Object.is(back.c, -0), back.d, back.e]).toEqual([-Infinity, true, 1e-310, Number.MAX_VALUE]);
  });

  test('readings whose devices and metric names change from one to the next, in order or not, come back exactly', () => {
    const j = new Journal(base());
    const r = (device: string, i: number, metrics: Record<string, number>): Record<string, unknown> => ({ device, ts: T0 + i, metrics });
    const payloads: unknown[] = [
      [r('d1', 0, { a: 1, b: 2 }), r('d1', 1, { b: 3, a: 4 }), r('d1', 2, { a: 5, b: 6, c: 7 }), r('d2', 3, { a: 8 }), r('d1', 4, { a: 9, b: 10 }), r('d2', 5, { c: 11, a: 12, b: 13 })],
      // A record that falls back to JSON after new names were given ids (taken back), then the same names again.
      [r('d3', 6, { x: 1, y: 2 }), { device: 'd3', ts: T0 + 7, metrics: { x: 'no' } }],
      [r('d3', 8, { y: 3, x: 4 }), r('d1', 9, { x: 5, a: 6 })],
      [r('d1', 10, {}), r('d1', 11, { a: 1 }), r('d1', 12, {})],
    ];
    payloads.forEach((p, i) => j.append(i, p));
    j.rotate();
    // A new file: ids start again; the same names and devices as the last record of the file before.
    j.append(10, payloads[2]);
    j.close();
    const l = new Journal(base()).load();
    expect(l.bad).toBe(0);
    expect(l.records.map((x) => x.p)).toEqual([...payloads, payloads[2]].map((p) => JSON.parse(JSON.stringify(p)) as unknown));
  });

  test('plain readings take less than half the bytes of JSON, names written once a file', () => {
    const j = new Journal(base());
    const batch = Array.from({ length: 100 }, (_, i) => ({ device: `load-${i % 10}`, ts: T0 + i, metrics: { seq: i, temperature: 20 + i / 7, humidity: 50 + i / 3, vibration: i / 11 }, tags: { type: 'sensor' } }));
    for (let k = 0; k < 10; k++) j.append(k, batch);
    j.close();
    const bytes = fs.statSync(path.join(dir, 'n1.journal-1')).size;
    const json = 10 * JSON.stringify(batch).length;
    expect(bytes).toBeLessThan(json / 2);
    expect(new Journal(base()).load().records.map((r) => r.p)).toEqual(Array.from({ length: 10 }, () => batch));
  });

  test("readings made in another realm (a Function node's VM context) are plain readings too", () => {
    const j = new Journal(base());
    const made = vm.runInNewContext(`[{ device: 'd-vm', ts: ${T0}, metrics: { t: 1.5 }, tags: { site: 'a' } }]`) as unknown[];
    expect(Object.getPrototypeOf(made[0])).not.toBe(Object.prototype);
    j.append(1, made);
    j.close();
    expect(fs.readFileSync(path.join(dir, 'n1.journal-1')).toString('latin1')).not.toContain('"device"');
    expect(new Journal(base()).load().records.map((r) => r.p)).toEqual([[{ device: 'd-vm', ts: T0, metrics: { t: 1.5 }, tags: { site: 'a' } }]]);
  });

  test('past 100,000 names in a file, readings with new names are written as JSON; all come back', () => {
    const j = new Journal(base());
    const batch = (from: number): Reading[] => Array.from({ length: 10_000 }, (_, i) => reading(`dev-${from + i}`, T0, i));
    // 10 batches of 10,000 new devices plus the metric name: the 10th passes the bound.
    const sent = Array.from({ length: 11 }, (_, k) => batch(k * 10_000));
    sent.forEach((b, k) => j.append(k, b));
    j.append(11, [reading('dev-5', T0 + S, 1)]); // a name the file holds: still compact
    j.close();
    const file = path.join(dir, 'n1.journal-1');
    const text = fs.readFileSync(file).toString('latin1');
    expect(text.includes('"device":"dev-99999"')).toBe(true); // the batch that passed the bound went as JSON
    expect(text.includes('"device":"dev-5"')).toBe(false);
    expect(new Journal(base()).load().records.map((r) => r.p)).toEqual([...sent, [reading('dev-5', T0 + S, 1)]]);
  });

  test('a file a crash left under the next mark: kept when it holds the header only, else moved aside', () => {
    const file = path.join(dir, 'n1.journal-1');
    fs.writeFileSync(file, Buffer.from('TWJ1\n\0\0\0', 'latin1'));
    let j = new Journal(base());
    expect(j.load()).toMatchObject({ records: [], bad: 0, last: 0 });
    j.append(1, [reading('d1', T0, 1)]);
    j.close();
    expect(new Journal(base()).load().records.map((r) => r.s)).toEqual([1]);
    // A torn first record (its file holds nothing whole): the next start writes the same name again.
    fs.writeFileSync(file, Buffer.concat([fs.readFileSync(file).subarray(0, 12)]));
    j = new Journal(base());
    expect(j.load()).toMatchObject({ records: [], bad: 0, last: 0 });
    j.append(2, [reading('d1', T0, 2)]);
    j.close();
    const aside = fs.readdirSync(dir).filter((n) => n.startsWith('n1.journal-1.aside-'));
    expect(aside.length).toBe(1);
    expect(new Journal(base()).load().records).toEqual([{ s: 1, n: 2, p: [reading('d1', T0, 2)] }]);
  });

  test('deleteBefore removes only files whose records are all below the mark, never the open one', () => {
    const j = new Journal(base());
    j.append(1, []); // file 1: mark 1
    j.rotate();
    j.append(2, []); // file 2: marks 2, 3
    j.append(3, []);
    const next = j.rotate();
    expect(next).toBe(4);
    j.append(4, []); // file 4, open
    j.deleteBefore(3); // file 2 holds 3: stays
    expect(fs.readdirSync(dir).sort()).toEqual(['n1.journal-2', 'n1.journal-4']);
    j.deleteBefore(100);
    expect(fs.readdirSync(dir)).toEqual(['n1.journal-4']);
    j.removeAll();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test('what JSON cannot hold is refused; a failed write starts a new file under a new mark', () => {
    const j = new Journal(path.join(dir, 'sub', 'n1'));
    expect(() => j.append(1, undefined)).toThrow('a payload of type undefined cannot be journaled (not JSON)');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => j.append(1, cyclic)).toThrow(/circular/i);
    expect(j.last).toBe(0);
    // A file where the directory should be: the write fails, the mark is used up.
    fs.writeFileSync(path.join(dir, 'sub'), 'in the way');
    expect(() => j.append(1, [])).toThrow(/EEXIST|ENOTDIR/);
    expect(j.last).toBe(1);
    fs.rmSync(path.join(dir, 'sub'));
    expect(j.append(2, [reading('d1', T0, 1)])).toBe(2);
    j.close();
    expect(fs.readdirSync(path.join(dir, 'sub'))).toEqual(['n1.journal-2']);
    expect(new Journal(path.join(dir, 'sub', 'n1')).load().records).toEqual([{ s: 2, n: 2, p: [reading('d1', T0, 1)] }]);
  });
});

describe('WindowPersistence with the journal: crash images', () => {
  const OPTS: WindowEngineOptions = { levels: ['1m', '1h'], lateness: 0, dedupe: true };

  /** Takes a payload as the node does: journaled first, then ingested. */
  function take(p: WindowPersistence, e: WindowEngine, payload: Reading | Reading[], now = 1): void {
    p.record(now, payload);
    e.ingest(payload, now);
  }

  /** The files as they are now, copied aside (removed after the test): what a process killed at this moment leaves. */
  const images: string[] = [];
  afterEach(() => {
    for (const img of images.splice(0)) fs.rmSync(img, { recursive: true, force: true });
  });
  function crashImage(): string {
    const img = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-window-crash-'));
    images.push(img);
    fs.cpSync(path.join(dir, 'state'), path.join(img, 'state'), { recursive: true });
    return img;
  }

  function restart(img: string): { engine: WindowEngine; p: WindowPersistence; replay: ReturnType<WindowPersistence['replay']> } {
    const p = new WindowPersistence(img, 'n1');
    const engine = new WindowEngine(OPTS);
    const r = p.restore(engine);
    return { engine, p, replay: p.replay(engine, r) };
  }

  test('killed after a save: the snapshot plus the journal since give the engine the killed one had', async () => {
    const p = new WindowPersistence(dir, 'n1');
    const a = new WindowEngine(OPTS);
    take(p, a, [reading('d1', T0, 1), reading('d2', T0, 10)]);
    await p.saveInBackground(a);
    // The save rotated the journal and deleted what the snapshot holds.
    expect(names()).toEqual(['n1.json']);
    take(p, a, [reading('d1', T0 + 10 * S, 2), reading('d2', T0 + 10 * S, 20)]);
    take(p, a, reading('d1', T0 + 20 * S, 3));
    expect(names()).toEqual(['n1.journal-2', 'n1.json']);
    const { engine: b, replay } = restart(crashImage());
    expect(replay).toMatchObject({ records: 2, files: 1, bad: 0, rollups: [] });
    const next = [reading('d1', T0 + 60 * S, 9), reading('d2', T0 + 60 * S, 9)];
    const want = a.ingest(next).rollups.map((r) => [r.device, r.level, r.count, r.sum]);
    expect(want).toEqual([
      ['d1', '1m', 3, 6],
      ['d2', '1m', 2, 30],
    ]);
    expect(b.ingest(next).rollups.map((r) => [r.device, r.level, r.count, r.sum])).toEqual(want);
  });

  test('a redelivery after the crash is recognised: the remembered event times are in the snapshot and the journal', async () => {
    const p = new WindowPersistence(dir, 'n1');
    const a = new WindowEngine(OPTS);
    take(p, a, [reading('d1', T0, 1), reading('d1', T0 + S, 2)]);
    await p.saveInBackground(a);
    take(p, a, reading('d1', T0 + 2 * S, 3));
    const { engine: b } = restart(crashImage());
    // The broker delivers again what was not acknowledged before the kill: one from before the snapshot,
    // one journaled after it.
    b.ingest([reading('d1', T0 + S, 2), reading('d1', T0 + 2 * S, 3)]);
    expect(b.stats().duplicates).toBe(2);
    const out = b.ingest(reading('d1', T0 + 60 * S, 0)).rollups;
    expect(out.map((r) => [r.level, r.count, r.sum])).toEqual([['1m', 3, 6]]);
  });

  test('windows the journal closes are handed back for sending (the store may not have had them)', async () => {
    const p = new WindowPersistence(dir, 'n1');
    const a = new WindowEngine(OPTS);
    take(p, a, reading('d1', T0, 4));
    await p.saveInBackground(a);
    take(p, a, reading('d1', T0 + 61 * S, 5)); // closes 12:00-12:01
    const { replay } = restart(crashImage());
    expect(replay.rollups.map((r) => [r.device, r.level, r.window.start - T0, r.count, r.sum])).toEqual([['d1', '1m', 0, 1, 4]]);
  });

  test('killed between the final save and the journal delete: the snapshot holds every record, none is taken twice', async () => {
    const p = new WindowPersistence(dir, 'n1');
    const a = new WindowEngine(OPTS);
    take(p, a, reading('d1', T0, 1));
    take(p, a, reading('d1', T0 + S, 2));
    // What close() writes before it deletes the journal.
    p.state.saveSync({ v: 1, savedAt: 1, seq: p.journal.last, snapshot: a.snapshot() });
    expect(names()).toEqual(['n1.journal-1', 'n1.json']);
    const { engine: b, replay } = restart(crashImage());
    expect(replay.records).toBe(0);
    expect(b.ingest(reading('d1', T0 + 60 * S, 0)).rollups.map((r) => [r.level, r.count, r.sum])).toEqual([['1m', 2, 3]]);
    // A stop (close) keeps the snapshot and deletes the journal.
    await p.close(() => a.snapshot());
    expect(names()).toEqual(['n1.json']);
  });

  test('reset (remove) deletes the state and the journal before it, not what comes after it', async () => {
    const p = new WindowPersistence(dir, 'n1');
    const a = new WindowEngine(OPTS);
    take(p, a, reading('d1', T0, 1));
    const removed = p.remove();
    const b = new WindowEngine(OPTS);
    take(p, b, reading('d1', T0 + S, 7));
    await removed;
    expect(names()).toEqual(['n1.journal-2']);
    const { engine: c } = restart(crashImage());
    expect(c.ingest(reading('d1', T0 + 60 * S, 0)).rollups.map((r) => [r.level, r.count, r.sum])).toEqual([['1m', 1, 7]]);
  });

  test('marks keep growing across a restart, so a later snapshot never hides new records', async () => {
    const p = new WindowPersistence(dir, 'n1');
    const a = new WindowEngine(OPTS);
    take(p, a, reading('d1', T0, 1));
    take(p, a, reading('d1', T0 + S, 2));
    await p.saveInBackground(a); // marks: d1 at 2
    p.journal.close();
    const q = new WindowPersistence(dir, 'n1');
    const b = new WindowEngine(OPTS);
    q.replay(b, q.restore(b));
    take(q, b, reading('d1', T0 + 2 * S, 3));
    expect(q.journal.last).toBe(3);
    const { engine: c } = restart(crashImage());
    expect(c.ingest(reading('d1', T0 + 60 * S, 0)).rollups.map((r) => [r.level, r.count, r.sum])).toEqual([['1m', 3, 6]]);
  });
});
