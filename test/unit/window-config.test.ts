/**
 * nodes/window/config.ts (the dialog config -> WindowEngineOptions and the wrapper's settings:
 * defaults, editor strings, durations, time zones, levels, every malformed value), status.ts (the
 * status line) and persist.ts (the engine's snapshot in a StateFile: restore, mismatch, the one
 * queue of background saves and deletes, close).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Reading } from '../../nodes/lib/contract';
import {
  MAX_DURATION,
  WindowConfigError,
  canonicalTimeZone,
  engineOptions,
  formatDuration,
  groupByTag,
  parseDuration,
  parseWindowConfig,
  type WindowConfig,
} from '../../nodes/window/config';
import { WindowEngine, type WindowSnapshot, type WindowStats } from '../../nodes/window/engine';
import { WindowPersistence, isWindowStateDoc } from '../../nodes/window/persist';
import { formatWatermark, statusOf } from '../../nodes/window/status';

const T0 = Date.UTC(2026, 4, 4, 12);

function cfg(c: Partial<WindowConfig> = {}): WindowConfig {
  return { id: 'n1', v: 1, ...c };
}

/** The problems a config is refused for (fails when it is accepted). */
function problems(c: Partial<WindowConfig>): string[] {
  try {
    parseWindowConfig(cfg(c));
  } catch (e) {
    expect(e).toBeInstanceOf(WindowConfigError);
    expect((e as WindowConfigError).message).toBe((e as WindowConfigError).problems.join('; '));
    return [...(e as WindowConfigError).problems];
  }
  throw new Error(`expected a WindowConfigError for ${JSON.stringify(c)}`);
}

describe('engineOptions and parseWindowConfig', () => {
  test('an empty config gives the documented defaults', () => {
    expect(engineOptions(cfg())).toEqual({
      levels: ['1m', '1h', '1d'],
      timeZone: 'UTC',
      alignOffset: 0,
      lateness: 30_000,
      watermark: 'key',
      latePolicy: 'reopen',
      correctionHorizon: 3_600_000,
      idleTimeout: 0,
      evictAfter: 0,
      maxKeys: 100_000,
      counters: [],
      percentiles: true,
      booleans: 'count',
      dedupe: false,
    });
    expect(parseWindowConfig(cfg()).node).toEqual({ tickMs: 1000, persist: true, snapshotMs: 60_000, output: 'batch', catchRejects: false, timeZone: 'UTC' });
  });

  test('the dialog defaults (as window.html saves them) give the same options', () => {
    const dialog = cfg({
      levels: '1m,1h,1d',
      step: '',
      timeZone: 'UTC',
      alignOffset: '',
      lateness: '30s',
      watermark: 'key',
      latePolicy: 'reopen',
      correctionHorizon: '1h',
      idleTimeout: '',
      evictAfter: '',
      maxKeys: 100000,
      counters: '',
      percentiles: true,
      booleans: 'count',
      groupTag: '',
      tick: '1s',
      persist: true,
      snapshotInterval: '60s',
      output: 'batch',
      catchRejects: false,
      dedupe: true,
    });
    // New nodes drop redelivered readings; a saved flow without the setting (older) keeps counting them.
    expect(engineOptions(dialog)).toEqual(engineOptions(cfg({ dedupe: true })));
    expect(parseWindowConfig(dialog).node).toEqual(parseWindowConfig(cfg()).node);
  });

  test('window.html saves defaults that parse to the same options', () => {
    const html = fs.readFileSync(path.join(__dirname, '..', '..', 'nodes', 'window', 'window.html'), 'utf8');
    const js = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html)![1];
    let def: { defaults: Record<string, { value: unknown; validate?: (v: unknown) => boolean }> } | undefined;
    const RED = { nodes: { registerType: (_t: string, d: typeof def) => (def = d) }, validators: { number: () => (v: unknown) => !Number.isNaN(Number(v)) } };
    new Function('RED', js)(RED);
    const saved = Object.fromEntries(Object.entries(def!.defaults).map(([k, d]) => [k, d.value])) as unknown as WindowConfig;
    expect(saved).toMatchObject({ levels: '1m,1h,1d', lateness: '30s', latePolicy: 'reopen', tick: '1s', snapshotInterval: '60s', v: 1 });
    expect(engineOptions({ ...saved, id: 'n1' })).toEqual(engineOptions(cfg({ dedupe: true })));
    expect(parseWindowConfig({ ...saved, id: 'n1' }).node).toEqual(parseWindowConfig(cfg()).node);
    // The editor's own checks agree with the runtime's on the defaults.
    for (const [k, d] of Object.entries(def!.defaults)) if (d.validate) expect([k, d.validate.call({}, d.value)]).toEqual([k, true]);
  });

  test('every setting is read', () => {
    const p = parseWindowConfig(
      cfg({
        levels: ' 5m ',
        step: '1m',
        timeZone: 'europe/madrid',
        alignOffset: '30s',
        lateness: '2m',
        watermark: 'global',
        latePolicy: 'output',
        correctionHorizon: '2h',
        idleTimeout: '5m',
        evictAfter: '7d',
        maxKeys: '500',
        counters: 'energy, packets,,',
        percentiles: 'false',
        booleans: 'number',
        tick: '250ms',
        persist: 'false',
        snapshotInterval: '10s',
        output: 'each',
        catchRejects: 'true',
        dedupe: 'true',
      }),
    );
    expect(p.engine).toEqual({
      levels: [{ size: '5m', step: '1m' }],
      timeZone: 'Europe/Madrid',
      alignOffset: 30_000,
      lateness: 120_000,
      watermark: 'global',
      latePolicy: 'output',
      correctionHorizon: 7_200_000,
      idleTimeout: 300_000,
      evictAfter: 7 * 86_400_000,
      maxKeys: 500,
      counters: ['energy', 'packets'],
      percentiles: false,
      booleans: 'number',
      dedupe: true,
    });
    expect(p.node).toEqual({ tickMs: 250, persist: false, snapshotMs: 10_000, output: 'each', catchRejects: true, timeZone: 'Europe/Madrid' });
  });

  test('the options build an engine with the levels asked for', () => {
    const e = new WindowEngine(engineOptions(cfg({ levels: '1m,1h,1d,1mo', timeZone: 'Europe/Madrid' })));
    expect(e.levels.map((l) => l.label)).toEqual(['1m', '1h', '1d', '1mo']);
    const hop = new WindowEngine(engineOptions(cfg({ levels: '5m', step: '1m' })));
    expect(hop.levels.map((l) => [l.label, l.ms, l.step])).toEqual([['5m/1m', 300_000, 60_000]]);
  });

  test('a step equal to the size is tumbling and may feed a cascade', () => {
    expect(engineOptions(cfg({ levels: '1m,1h', step: '1m' })).levels).toEqual([{ size: '1m', step: '1m' }, '1h']);
    expect(new WindowEngine(engineOptions(cfg({ levels: '1m,1h', step: '60s' }))).levels.map((l) => l.label)).toEqual(['1m', '1h']);
  });

  test('a size in plain digits is ms', () => {
    expect(engineOptions(cfg({ levels: '60000,1h' })).levels).toEqual([60_000, '1h']);
    expect(new WindowEngine(engineOptions(cfg({ levels: '60000,1h' }))).levels.map((l) => l.label)).toEqual(['1m', '1h']);
  });

  test('numbers from a hand-written flow are read like the dialog strings', () => {
    const p = parseWindowConfig(cfg({ lateness: 5000, tick: 100, maxKeys: 10, snapshotInterval: 1000 }));
    expect(p.engine.lateness).toBe(5000);
    expect(p.engine.maxKeys).toBe(10);
    expect(p.node.tickMs).toBe(100);
    expect(p.node.snapshotMs).toBe(1000);
  });

  test('lateness "0" and "0s" are zero (not the default)', () => {
    expect(engineOptions(cfg({ lateness: '0' })).lateness).toBe(0);
    expect(engineOptions(cfg({ lateness: '0s' })).lateness).toBe(0);
    expect(engineOptions(cfg({ lateness: 0 })).lateness).toBe(0);
  });

  test('empty levels are refused; missing levels take the default', () => {
    expect(problems({ levels: '' })).toEqual(['levels must list at least one window size, e.g. "1m,1h,1d"']);
    expect(problems({ levels: ' , ' })).toEqual(['levels must list at least one window size, e.g. "1m,1h,1d"']);
    expect(engineOptions(cfg({ levels: undefined })).levels).toEqual(['1m', '1h', '1d']);
  });

  test('levels that do not nest say which and why', () => {
    expect(problems({ levels: '2m,3m' })).toEqual(['levels: level 3m cannot be built from level 2m: 180000 ms is not a multiple of 120000 ms']);
    expect(engineOptions(cfg({ levels: '1m,7m' })).levels).toEqual(['1m', '7m']);
    expect(problems({ levels: '1h,1m' })[0]).toMatch(/^levels: level 1m cannot be built from level 1h: each level must be larger/);
    expect(problems({ levels: '1w,1mo' })[0]).toMatch(/^levels: level 1mo cannot be built from level 1w: mo boundaries do not fall on w boundaries/);
    expect(problems({ levels: '1m,1h', step: '30s' })[0]).toMatch(/^levels: level 1h cannot be built from level 1m\/30s: cascaded levels must be tumbling windows/);
  });

  test('day windows in a half-hour zone need hours aligned on the half hour', () => {
    expect(problems({ levels: '1h,1d', timeZone: 'Asia/Kolkata' })[0]).toMatch(/local midnight in Asia\/Kolkata \(UTC offset 330 min\) is not on a 1h boundary/);
    expect(engineOptions(cfg({ levels: '1h,1d', timeZone: 'Asia/Kolkata', alignOffset: '30m' })).alignOffset).toBe(1_800_000);
  });

  test('bad sizes name the level', () => {
    expect(problems({ levels: '1m,abc' })).toEqual(['level 2 ("abc"): window size must be ms or "<n><unit>" with unit ms, s, m, h, d, w, mo or y, got "abc"']);
    expect(problems({ levels: '5mo' })[0]).toBe('level 1 ("5mo"): a month window must divide the year (1, 2, 3, 4, 6 or 12 mo), got "5mo"');
    expect(problems({ levels: '0m' })[0]).toBe('level 1 ("0m"): window size must be positive, got "0m"');
    expect(problems({ levels: '1m', step: '2m' })[0]).toBe('level 1 ("1m", step "2m"): hop step must be in (0, size], got step 120000 for size 60000');
    expect(problems({ levels: '1d', timeZone: 'Europe/Madrid', step: '1h' })[0]).toBe('level 1 ("1d", step "1h"): calendar windows (1d) cannot hop');
  });

  test('a size listed twice, and too many levels, are refused', () => {
    expect(problems({ levels: '1m,1m' })[0]).toMatch(/^levels: level 1m cannot be built from level 1m/);
    expect(problems({ levels: '1s,2s,4s,8s,16s,32s,64s,128s,256s' })).toEqual(['levels lists 9 sizes; at most 8']);
  });

  test('time zones: canonical names, unknown ones and offsets refused', () => {
    expect(canonicalTimeZone('UTC')).toBe('UTC');
    expect(canonicalTimeZone('')).toBe('UTC');
    expect(canonicalTimeZone(undefined)).toBe('UTC');
    expect(canonicalTimeZone(' Europe/Madrid ')).toBe('Europe/Madrid');
    expect(canonicalTimeZone('america/new_york')).toBe('America/New_York');
    expect(canonicalTimeZone('utc')).toBe('UTC');
    // ICU resolves some names to legacy ones; the user's spelling is kept.
    expect(canonicalTimeZone('Asia/Kolkata')).toBe('Asia/Kolkata');
    expect(canonicalTimeZone('Etc/UTC')).toBe('Etc/UTC');
    expect(problems({ timeZone: 'Mars/Olympus' })).toEqual(['unknown time zone "Mars/Olympus": use an IANA name such as "UTC" or "Europe/Madrid"']);
    expect(problems({ timeZone: '+01:00' })).toEqual(['time zone must be an IANA name such as "UTC" or "Europe/Madrid", got "+01:00"']);
    expect(problems({ timeZone: 42 as unknown as string })).toEqual(['time zone must be an IANA name such as "UTC" or "Europe/Madrid", got "42"']);
  });

  test('an unknown zone is reported once, not again by every calendar level', () => {
    expect(problems({ levels: '1h,1d,1mo', timeZone: 'Nowhere/City' })).toEqual(['unknown time zone "Nowhere/City": use an IANA name such as "UTC" or "Europe/Madrid"']);
  });

  test('choices must be one of the listed values', () => {
    expect(problems({ watermark: 'local' })).toEqual([`watermark must be 'key', 'global', got "local"`]);
    expect(problems({ latePolicy: 'ignore' })).toEqual([`late policy must be 'drop', 'output', 'reopen', got "ignore"`]);
    expect(problems({ booleans: 'yes' })).toEqual([`booleans must be 'count', 'number', got "yes"`]);
    expect(problems({ output: 'stream' })).toEqual([`output must be 'batch', 'each', got "stream"`]);
    expect(problems({ latePolicy: '__proto__' })).toEqual([`late policy must be 'drop', 'output', 'reopen', got "__proto__"`]);
  });

  test('max keys must be a whole number >= 1', () => {
    for (const v of ['0', '-1', '1.5', 'many', 1.5, 0, 1e9, true]) {
      expect(problems({ maxKeys: v as number })).toEqual([`max keys must be a whole number from 1 to 100000000, got ${JSON.stringify(typeof v === 'string' ? v : JSON.stringify(v))}`]);
    }
    expect(engineOptions(cfg({ maxKeys: '' })).maxKeys).toBe(100_000);
    expect(engineOptions(cfg({ maxKeys: ' 42 ' })).maxKeys).toBe(42);
  });

  test('timers have bounds', () => {
    expect(problems({ tick: '5ms' })).toEqual(['tick must be between 10ms and 1h, got "5ms"']);
    expect(problems({ tick: '2h' })).toEqual(['tick must be between 10ms and 1h, got "2h"']);
    expect(problems({ snapshotInterval: '50ms' })).toEqual(['snapshot interval must be between 100ms and 1d, got "50ms"']);
    expect(parseWindowConfig(cfg({ tick: '' })).node.tickMs).toBe(1000);
  });

  test('group tag: a valid tag name groups by that tag', () => {
    const opts = engineOptions(cfg({ groupTag: ' site ' }));
    expect(typeof opts.groupBy).toBe('function');
    expect(opts.groupBy!({ device: 'd1', ts: T0, metrics: { t: 1 }, tags: { site: 'north' } })).toBe('north');
    expect(engineOptions(cfg({ groupTag: '' })).groupBy).toBeUndefined();
    expect(problems({ groupTag: '_site' })).toEqual(['group tag "_site" is not a valid tag name (1-128 characters, no control characters, not starting with "_")']);
    expect(problems({ groupTag: 'a\u0000b' })[0]).toMatch(/^group tag "a\\u0000b" is not a valid tag name/);
    expect(problems({ groupTag: 5 as unknown as string })).toEqual(['group tag must be a tag name, got "5"']);
  });

  test('groupByTag: missing, inherited and non-string tags are errors, never a prototype value', () => {
    const by = groupByTag('constructor');
    const r = (tags: unknown): Reading => ({ device: 'd1', ts: T0, metrics: { t: 1 }, tags }) as Reading;
    expect(() => by(r(undefined))).toThrow('reading has no tag "constructor" to group by');
    expect(() => by(r({}))).toThrow('reading has no tag "constructor" to group by');
    expect(() => by(r(null))).toThrow('reading has no tag "constructor" to group by');
    expect(() => by(r('site=north'))).toThrow('reading has no tag "constructor" to group by');
    expect(by(r(JSON.parse('{"constructor":"c1"}')))).toBe('c1');
    const site = groupByTag('site');
    expect(() => site(r({ site: 5 }))).toThrow('tag "site" must be a non-empty string to group by, got "5"');
    expect(() => site(r({ site: '' }))).toThrow('tag "site" must be a non-empty string to group by, got ""');
  });

  test('counters that are not text are refused', () => {
    expect(problems({ counters: ['a'] as unknown as string })).toEqual(['counters must be a comma-separated list of metric names, got "[\\"a\\"]"']);
  });

  test('every problem is reported at once, engine problems first', () => {
    expect(problems({ levels: '2m,3m', lateness: 'soon', watermark: 'x', tick: '0', output: 'x' })).toEqual([
      'levels: level 3m cannot be built from level 2m: 180000 ms is not a multiple of 120000 ms',
      'lateness must be a duration such as "500ms", "30s", "5m", "1h" or "1d" (or a number of ms), got "soon"',
      `watermark must be 'key', 'global', got "x"`,
      'tick must be between 10ms and 1h, got "0"',
      `output must be 'batch', 'each', got "x"`,
    ]);
  });

  test('engineOptions ignores the wrapper settings; parseWindowConfig does not', () => {
    expect(() => engineOptions(cfg({ tick: 'never' }))).not.toThrow();
    expect(() => parseWindowConfig(cfg({ tick: 'never' }))).toThrow(WindowConfigError);
    expect(() => engineOptions(cfg({ lateness: 'never' }))).toThrow('lateness must be a duration');
  });

  test('a missing config object is the defaults', () => {
    expect(engineOptions(undefined as unknown as WindowConfig)).toEqual(engineOptions(cfg()));
  });
});

describe('parseDuration', () => {
  test.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1w', 604_800_000],
    ['1.5s', 1500],
    ['0.25h', 900_000],
    [' 2 m ', 120_000],
    ['250', 250],
    ['0', 0],
    [250, 250],
    [0, 0],
  ])('%p is %p ms', (v, ms) => {
    expect(parseDuration(v, 'x', -1)).toBe(ms);
  });

  test.each([undefined, null, '', '   '])('%p gives the default', (v) => {
    expect(parseDuration(v, 'x', 1234)).toBe(1234);
  });

  test.each(['abc', '-5s', '5 minutes', '1x', '1e3', 'Infinity', '5m30s', NaN, Infinity, -1, true, {}, []])('%p is refused with a message naming the setting', (v) => {
    expect(() => parseDuration(v, 'idle timeout', 0)).toThrow(/^idle timeout must be/);
  });

  test('fractions of a ms are refused', () => {
    expect(() => parseDuration('1.5ms', 'lateness', 0)).toThrow('lateness must be a whole number of ms, got "1.5ms"');
    expect(() => parseDuration(0.5, 'lateness', 0)).toThrow('lateness must be a whole number of ms, got "0.5"');
  });

  test('bounds', () => {
    expect(() => parseDuration('5ms', 'tick', 0, { min: 10 })).toThrow('tick must be between 10ms and 3660d, got "5ms"');
    expect(parseDuration(`${MAX_DURATION}`, 'x', 0)).toBe(MAX_DURATION);
    expect(() => parseDuration(MAX_DURATION + 1, 'x', 0)).toThrow(/^x must be between 0 and 3660d/);
  });

  test('formatDuration', () => {
    expect([0, 1, 999, 1000, 90_000, 3_600_000, 86_400_000, 1500].map(formatDuration)).toEqual(['0', '1ms', '999ms', '1s', '90s', '1h', '1d', '1500ms']);
  });
});

describe('status line', () => {
  const stats = (over: Partial<WindowStats>): WindowStats => ({
    keys: 0,
    openWindows: 0,
    keptWindows: 0,
    bytes: 0,
    watermark: -Infinity,
    readings: 0,
    values: 0,
    nonNumeric: 0,
    rejected: 0,
    emitted: 0,
    corrections: 0,
    late: { dropped: 0, output: 0, reopened: 0, tooLate: 0 },
    evicted: 0,
    duplicates: 0,
    ...over,
  });
  const _ = (key: string, subs?: Record<string, unknown>): string => (subs ? `${key} ${JSON.stringify(subs)}` : key);

  test('the watermark: time of day today, date and time otherwise, "-" before any reading', () => {
    expect(formatWatermark(T0 + 180_000, T0 + 600_000, 'UTC')).toBe('12:03:00');
    expect(formatWatermark(T0 + 180_000, T0 + 86_400_000, 'UTC')).toBe('2026-05-04 12:03:00');
    expect(formatWatermark(T0 + 180_000, T0, 'Europe/Madrid')).toBe('14:03:00');
    expect(formatWatermark(Date.UTC(2026, 4, 4, 23, 30), Date.UTC(2026, 4, 4, 12), 'Europe/Madrid')).toBe('2026-05-05 01:30:00');
    expect(formatWatermark(-Infinity, T0, 'UTC')).toBe('-');
  });

  test('waiting before the first reading, then keys, open windows and watermark on a green dot', () => {
    expect(statusOf(stats({}), T0, 'UTC', _)).toEqual({ fill: 'grey', shape: 'dot', text: 'thingwire-window.status.waiting' });
    expect(statusOf(stats({ keys: 12, openWindows: 14, readings: 100, watermark: T0 + 180_000 }), T0, 'UTC', _)).toEqual({
      fill: 'green',
      shape: 'dot',
      text: 'thingwire-window.status.running {"keys":12,"open":14,"wm":"12:03:00"}',
    });
  });
});

describe('WindowPersistence', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-window-persist-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const OPTS = { levels: ['1m', '1h'], lateness: 0 };
  function fed(): WindowEngine {
    const e = new WindowEngine(OPTS);
    e.ingest([
      { device: 'd1', ts: T0, metrics: { t: 1 } },
      { device: 'd1', ts: T0 + 10_000, metrics: { t: 2 } },
    ]);
    return e;
  }
  const files = (): string[] => fs.readdirSync(path.join(dir, 'state', 'thingwire-window')).sort();

  test('nothing saved: nothing restored, no problem', () => {
    const p = new WindowPersistence(dir, 'n1');
    expect(p.file).toBe(path.join(dir, 'state', 'thingwire-window', 'n1.json'));
    expect(p.restore(new WindowEngine(OPTS))).toEqual({ restored: false, marks: new Map(), seq: 0 });
  });

  test('a background save restores into a new engine that continues where the first left off', async () => {
    const p = new WindowPersistence(dir, 'n1');
    const a = fed();
    await p.saveInBackground(a, 1234);
    const doc = JSON.parse(fs.readFileSync(p.file, 'utf8')) as unknown;
    expect(isWindowStateDoc(doc)).toBe(true);
    expect((doc as { savedAt: number }).savedAt).toBe(1234);
    // The pieces written are the engine's snapshot(), each group with its journal mark (0: nothing journaled).
    const snap = JSON.parse(JSON.stringify(a.snapshot())) as WindowSnapshot;
    snap.groups = snap.groups.map(([name, states]) => [name, states, 0]);
    expect((doc as { snapshot: unknown }).snapshot).toEqual(snap);
    expect((doc as { seq: number }).seq).toBe(0);
    const b = new WindowEngine(OPTS);
    // Nothing journaled yet: the snapshot and its one group are at mark 0.
    expect(new WindowPersistence(dir, 'n1').restore(b)).toEqual({ restored: true, savedAt: 1234, marks: new Map([['d1', 0]]), seq: 0 });
    const next = { device: 'd1', ts: T0 + 60_000, metrics: { t: 9 } };
    expect(b.ingest(next).rollups).toEqual(a.ingest(next).rollups);
    expect(b.stats()).toEqual(a.stats());
  });

  test('a snapshot taken with other levels is moved aside and reported; the engine stays empty', async () => {
    const p = new WindowPersistence(dir, 'n1');
    await p.saveInBackground(fed());
    const other = new WindowEngine({ levels: ['5m'] });
    const r = p.restore(other, 42);
    expect(r.restored).toBe(false);
    expect(r.mismatch!.error).toMatch(/^snapshot was taken with other window levels or sketch settings/);
    expect(r.mismatch!.movedTo).toBe(`${p.file}.mismatch-42`);
    expect(files()).toEqual(['n1.json.mismatch-42']);
    expect(other.stats().keys).toBe(0);
  });

  test('hand-edited content that the engine cannot take is a mismatch too', () => {
    const p = new WindowPersistence(dir, 'n1');
    const snap = fed().snapshot();
    (snap.groups[0][1][0] as unknown as { o: unknown }).o = [['not a window']];
    p.state.saveSync({ v: 1, savedAt: 1, snapshot: snap });
    const r = p.restore(new WindowEngine(OPTS), 7);
    expect(r.restored).toBe(false);
    expect(r.mismatch!.error).toBe('snapshot level count differs');
    expect(files()).toEqual(['n1.json.mismatch-7']);
  });

  test('a file that is not a state document is moved aside by StateFile and reported as a problem', () => {
    const p = new WindowPersistence(dir, 'n1');
    fs.mkdirSync(path.dirname(p.file), { recursive: true });
    fs.writeFileSync(p.file, JSON.stringify({ v: 2, snapshot: {} }));
    const r = p.restore(new WindowEngine(OPTS));
    expect(r.restored).toBe(false);
    expect(r.problem).toMatch(/is unusable \(unexpected content\); moved to .*n1\.json\.corrupt-\d+$/);
    expect(files()).toHaveLength(1);
    expect(files()[0]).toMatch(/^n1\.json\.corrupt-\d+$/);
  });

  test('isWindowStateDoc', () => {
    expect(isWindowStateDoc({ v: 1, savedAt: 1, snapshot: {} })).toBe(true);
    for (const v of [null, [], 'x', { v: 1, savedAt: 1 }, { v: 1, savedAt: '1', snapshot: {} }, { v: 1, savedAt: 1, snapshot: [] }, { v: 2, savedAt: 1, snapshot: {} }]) {
      expect(isWindowStateDoc(v)).toBe(false);
    }
  });

  test('one save at a time: a save asked for while one runs is skipped', async () => {
    const p = new WindowPersistence(dir, 'n1');
    const first = p.saveInBackground(fed());
    expect(first).toBeInstanceOf(Promise);
    expect(p.busy).toBe(true);
    expect(p.saveInBackground(fed())).toBeUndefined();
    await first;
    expect(p.busy).toBe(false);
    expect(p.saveInBackground(fed())).toBeInstanceOf(Promise);
    await p.close(() => undefined);
  });

  test('a delete queued behind a running save wins: the file is gone afterwards', async () => {
    const p = new WindowPersistence(dir, 'n1');
    const save = p.saveInBackground(fed());
    const removed = p.remove();
    await Promise.all([save, removed]);
    expect(fs.existsSync(p.file)).toBe(false);
  });

  test('close waits for a running save, then writes synchronously what the callback returns', async () => {
    const p = new WindowPersistence(dir, 'n1');
    const e = fed();
    void p.saveInBackground(new WindowEngine(OPTS), 1);
    let asked = 0;
    await p.close(() => {
      asked++;
      return e.snapshot();
    }, 2);
    expect(asked).toBe(1);
    const doc = JSON.parse(fs.readFileSync(p.file, 'utf8')) as { savedAt: number; snapshot: { groups: unknown[] } };
    expect(doc.savedAt).toBe(2);
    expect(doc.snapshot.groups).toHaveLength(1);
    expect(files()).toEqual(['n1.json']);
  });

  test('close with a callback that returns nothing leaves the file as it was; close(null) deletes it', async () => {
    const p = new WindowPersistence(dir, 'n1');
    await p.saveInBackground(fed(), 5);
    await p.close(() => undefined, 6);
    expect((JSON.parse(fs.readFileSync(p.file, 'utf8')) as { savedAt: number }).savedAt).toBe(5);
    await p.close(null);
    expect(fs.existsSync(p.file)).toBe(false);
  });

  test('a failed background save is reported to the caller and does not stop the queue', async () => {
    const p = new WindowPersistence(dir, 'n1');
    // A file where the state directory should be: mkdir fails.
    fs.writeFileSync(path.join(dir, 'state'), 'in the way');
    await expect(p.saveInBackground(fed())).rejects.toThrow(/EEXIST|ENOTDIR/);
    expect(p.busy).toBe(false);
    fs.rmSync(path.join(dir, 'state'));
    await p.saveInBackground(fed());
    expect(fs.existsSync(p.file)).toBe(true);
  });
});
