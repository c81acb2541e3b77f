/**
 * nodes/lib/normalise.ts: device payloads (flat objects, the canonical form, batches,
 * bare values on device topics) become Readings, and everything else a Reject with a code.
 */
import * as vm from 'node:vm';
import type { Reject, RejectCode } from '../../nodes/lib/contract';
import { MAX_NAME_LENGTH, isValidDeviceId, isValidName, preview } from '../../nodes/lib/names';
import {
  DEFAULT_NORMALISE_OPTIONS,
  normalise,
  parseDeviceTopic,
  type NormaliseContext,
  type NormaliseOptions,
  type NormaliseResult,
} from '../../nodes/lib/normalise';

const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);
const TS = Date.UTC(2026, 10, 24, 10, 0, 0);
const OPTS: NormaliseOptions = { ...DEFAULT_NORMALISE_OPTIONS, now: () => NOW };

function run(value: unknown, ctx: NormaliseContext = {}, opts: Partial<NormaliseOptions> = {}): NormaliseResult {
  return normalise(value, ctx, { ...OPTS, ...opts });
}

/** The single reject of a non-batch input that was refused. */
function rejectOf(value: unknown, ctx: NormaliseContext = {}, opts: Partial<NormaliseOptions> = {}): Reject {
  const r = run(value, ctx, opts);
  expect(r.readings).toEqual([]);
  expect(r.rejects).toHaveLength(1);
  return r.rejects[0];
}

/** What JSON from a device gives: `__proto__` and friends as own keys. */
function json(text: string): unknown {
  return JSON.parse(text);
}

describe('defaults', () => {
  test('DEFAULT_NORMALISE_OPTIONS', () => {
    expect(DEFAULT_NORMALISE_OPTIONS.tsUnit).toBe('ms');
    expect(DEFAULT_NORMALISE_OPTIONS.strings).toBe('tags');
    expect(DEFAULT_NORMALISE_OPTIONS.topicPrefix).toBe('devices');
    expect(DEFAULT_NORMALISE_OPTIONS.maxBatch).toBe(10_000);
    expect(DEFAULT_NORMALISE_OPTIONS.now).toBe(Date.now);
  });
});

describe('flat objects', () => {
  test('numeric and boolean fields are metrics; device and ts are read', () => {
    const r = run({ device: 'pico-1', ts: TS, temperature: 21.5, humidity: 40, door: false, count: 0 });
    expect(r).toEqual({
      readings: [{ device: 'pico-1', ts: TS, metrics: { temperature: 21.5, humidity: 40, door: false, count: 0 } }],
      rejects: [],
      batch: false,
    });
    expect(r.readings[0]).not.toHaveProperty('tags');
  });

  test('without ts the arrival time (opts.now) is used', () => {
    expect(run({ device: 'd1', t: 1 }).readings[0].ts).toBe(NOW);
    expect(run({ device: 'd1', ts: null, t: 1 }).readings[0].ts).toBe(NOW);
  });

  test('ts in the configured unit, or an ISO string', () => {
    expect(run({ device: 'd1', ts: TS / 1000, t: 1 }, {}, { tsUnit: 's' }).readings[0].ts).toBe(TS);
    expect(run({ device: 'd1', ts: TS * 1000, t: 1 }, {}, { tsUnit: 'us' }).readings[0].ts).toBe(TS);
    expect(run({ device: 'd1', ts: '2026-11-24T11:00:00+01:00', t: 1 }, {}, { tsUnit: 's' }).readings[0].ts).toBe(TS);
  });

  test('negative numbers, zero and large finite numbers are values', () => {
    expect(run({ device: 'd1', a: -40.5, b: 0, c: 1e300, d: -0 }).readings[0].metrics).toEqual({ a: -40.5, b: 0, c: 1e300, d: -0 });
  });

  test('null and undefined fields are skipped', () => {
    const r = run({ device: 'd1', t: 1, rssi: null, snr: undefined });
    expect(r.readings[0].metrics).toEqual({ t: 1 });
  });

  test('a tags object is read; numbers and booleans in it become strings', () => {
    const r = run({ device: 'd1', t: 1, tags: { fw: '1.2.0', site: 'north', rev: 3, beta: true } });
    expect(r.readings[0].tags).toEqual({ fw: '1.2.0', site: 'north', rev: '3', beta: 'true' });
  });

  describe('string fields follow the policy', () => {
    const input = { device: 'd1', t: 1, fw: '1.2.0', state: 'idle' };

    test('tags (default): strings become tags', () => {
      const r = run(input);
      expect(r.readings[0]).toEqual({ device: 'd1', ts: NOW, metrics: { t: 1 }, tags: { fw: '1.2.0', state: 'idle' } });
    });

    test('tags: string fields are added to an explicit tags object', () => {
      const r = run({ ...input, tags: { site: 'north' } });
      expect(r.readings[0].tags).toEqual({ site: 'north', fw: '1.2.0', state: 'idle' });
    });

    test('metrics: strings become metrics', () => {
      const r = run(input, {}, { strings: 'metrics' });
      expect(r.readings[0]).toEqual({ device: 'd1', ts: NOW, metrics: { t: 1, fw: '1.2.0', state: 'idle' } });
    });

    test('metrics: a reading of strings only is accepted', () => {
      expect(run({ device: 'd1', state: 'idle' }, {}, { strings: 'metrics' }).readings[0].metrics).toEqual({ state: 'idle' });
    });

    test('drop: strings disappear', () => {
      const r = run(input, {}, { strings: 'drop' });
      expect(r.readings[0]).toEqual({ device: 'd1', ts: NOW, metrics: { t: 1 } });
    });

    test.each(['tags', 'drop'] as const)('%s: a reading of strings only has no metrics', (strings) => {
      const rj = rejectOf({ device: 'd1', state: 'idle' }, {}, { strings });
      expect(rj.code).toBe('no_metrics');
    });
  });

  describe('nested objects are flattened with "."', () => {
    test('two and three levels', () => {
      const r = run({ device: 'd1', env: { temp: 21, hum: 40 }, power: { battery: { volts: 3.7, ok: true } } });
      expect(r.readings[0].metrics).toEqual({ 'env.temp': 21, 'env.hum': 40, 'power.battery.volts': 3.7, 'power.battery.ok': true });
    });

    test('nested strings follow the policy with their flattened name', () => {
      expect(run({ device: 'd1', t: 1, net: { ssid: 'lab' } }).readings[0].tags).toEqual({ 'net.ssid': 'lab' });
      expect(run({ device: 'd1', t: 1, net: { ssid: 'lab' } }, {}, { strings: 'metrics' }).readings[0].metrics).toEqual({ t: 1, 'net.ssid': 'lab' });
    });

    test('nested nulls are skipped, and an empty object adds nothing', () => {
      expect(run({ device: 'd1', t: 1, env: { a: null }, x: {} }).readings[0].metrics).toEqual({ t: 1 });
      expect(rejectOf({ device: 'd1', env: {} }).code).toBe('no_metrics');
    });

    test('four levels are over the depth limit (3)', () => {
      const rj = rejectOf({ device: 'd1', a: { b: { c: { d: 1 } } } });
      expect(rj.code).toBe('invalid_metric');
      expect(rj.message).toBe('field "a.b.c" is nested deeper than 3 levels');
    });

    test('the flattened name is subject to the length limit', () => {
      const a = 'a'.repeat(64);
      expect(run({ device: 'd1', [a]: { [a.slice(1)]: 1 } }).readings[0].metrics).toEqual({ [`${a}.${a.slice(1)}`]: 1 });
      const rj = rejectOf({ device: 'd1', [a]: { [a]: 1 } });
      expect(rj.code).toBe('invalid_metric');
    });
  });

  test('arrays as values are invalid_value', () => {
    const rj = rejectOf({ device: 'd1', t: 1, samples: [1, 2, 3] });
    expect(rj.code).toBe('invalid_value');
    expect(rj.message).toBe('field "samples" must be a number, boolean, string or object, got array');
    expect(rejectOf({ device: 'd1', env: { samples: [] } }).code).toBe('invalid_value');
  });

  test.each([
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
  ])('%s as a value is invalid_value', (label, v) => {
    const rj = rejectOf({ device: 'd1', t: 1, bad: v });
    expect(rj.code).toBe('invalid_value');
    expect(rj.message).toBe(`metric "bad" is ${label}; values must be finite numbers`);
    expect(rejectOf({ device: 'd1', env: { bad: v } }).code).toBe('invalid_value');
  });

  test('other value types (Date, Map, class instances, functions) are invalid_value', () => {
    class Sample {
      v = 1;
    }
    for (const v of [new Date(TS), new Map(), new Sample(), () => 1, BigInt(1), Symbol('s')]) {
      expect(rejectOf({ device: 'd1', t: 1, bad: v }).code).toBe('invalid_value');
    }
  });

  test('a reading with no metrics at all is no_metrics', () => {
    const rj = rejectOf({ device: 'd1', ts: TS });
    expect(rj.code).toBe('no_metrics');
    expect(rj.message).toBe('reading has no numeric or boolean metrics');
    expect(rejectOf({ device: 'd1', a: null }).code).toBe('no_metrics');
  });

  test('an object with a null prototype is read like any other', () => {
    const o = Object.assign(Object.create(null) as Record<string, unknown>, { device: 'd1', t: 1 });
    expect(run(o).readings).toEqual([{ device: 'd1', ts: NOW, metrics: { t: 1 } }]);
  });

  // Regression, fixed: isPlainObject compares the prototype with this realm's Object.prototype, so an object made
  // in another vm context (a Node-RED Function node's sandbox) is refused as not_a_reading.
  test('a plain object from another realm (a Function node sandbox) is read', () => {
    const o = vm.runInNewContext('({ device: "d1", t: 1, env: { h: 2 }, tags: { site: "n" } })') as unknown;
    expect(run(o).readings).toEqual([{ device: 'd1', ts: NOW, metrics: { t: 1, 'env.h': 2 }, tags: { site: 'n' } }]);
    const batch = vm.runInNewContext('[{ device: "d1", metrics: { t: 1 } }]') as unknown;
    expect(run(batch).readings).toEqual([{ device: 'd1', ts: NOW, metrics: { t: 1 } }]);
  });

  test('objects from another realm that are not plain (Date, Map) are still refused', () => {
    expect(rejectOf(vm.runInNewContext('new Date()')).code).toBe('not_a_reading');
    expect(rejectOf({ device: 'd1', t: 1, d: vm.runInNewContext('new Map()') as unknown }).code).toBe('invalid_value');
  });

  test('the input is not modified', () => {
    const input = { device: 'd1', ts: TS, env: { t: 1 }, fw: 'x', tags: { a: 1 } };
    const copy = structuredClone(input);
    run(input);
    expect(input).toEqual(copy);
  });
});

describe('the canonical form {device, ts, metrics, tags}', () => {
  test('is taken as it is', () => {
    const r = run({ device: 'd1', ts: TS, metrics: { temperature: 21.5, door: true, mode: 'eco' }, tags: { site: 'north' } });
    expect(r).toEqual({
      readings: [{ device: 'd1', ts: TS, metrics: { temperature: 21.5, door: true, mode: 'eco' }, tags: { site: 'north' } }],
      rejects: [],
      batch: false,
    });
  });

  test('metric names may contain dots and unicode; null metrics are skipped', () => {
    const r = run({ device: 'd1', metrics: { 'env.temp': 1, 'température': 2, '温度': 3, gone: null } });
    expect(r.readings[0].metrics).toEqual({ 'env.temp': 1, 'température': 2, '温度': 3 });
  });

  test('string metrics are kept whatever the string policy', () => {
    expect(run({ device: 'd1', metrics: { mode: 'eco' } }, {}, { strings: 'drop' }).readings[0].metrics).toEqual({ mode: 'eco' });
  });

  test('other top-level fields are not metrics in the canonical form', () => {
    expect(run({ device: 'd1', metrics: { t: 1 }, extra: 5 }).readings[0].metrics).toEqual({ t: 1 });
  });

  test('nested objects inside metrics are invalid_value (no flattening there)', () => {
    const rj = rejectOf({ device: 'd1', metrics: { env: { t: 1 } } });
    expect(rj.code).toBe('invalid_value');
    expect(rj.message).toBe('metric "env" must be a number, boolean or string, got object');
    expect(rejectOf({ device: 'd1', metrics: { s: [1] } }).code).toBe('invalid_value');
  });

  test.each([NaN, Infinity, -Infinity])('%s inside metrics is invalid_value', (v) => {
    expect(rejectOf({ device: 'd1', metrics: { t: v } }).code).toBe('invalid_value');
  });

  test.each<[unknown, string]>([
    [null, 'null'],
    [[1, 2], 'array'],
    [5, 'number'],
    ['t=1', 'string'],
  ])('metrics that is not an object (%p) is not_a_reading', (metrics, type) => {
    const rj = rejectOf({ device: 'd1', metrics });
    expect(rj.code).toBe('not_a_reading');
    expect(rj.message).toBe(`"metrics" must be an object, got ${type}`);
  });

  test('empty metrics (or only nulls) is no_metrics', () => {
    expect(rejectOf({ device: 'd1', metrics: {} }).code).toBe('no_metrics');
    expect(rejectOf({ device: 'd1', metrics: { a: null } }).code).toBe('no_metrics');
  });

  test.each<[unknown, string]>([
    ['site=north', '"tags" must be an object of strings, got string'],
    [['north'], '"tags" must be an object of strings, got array'],
    [null, '"tags" must be an object of strings, got null'],
    [{ site: { name: 'north' } }, 'tag "site" must be a string, got object'],
    [{ site: null }, 'tag "site" must be a string, got null'],
    [{ site: ['a'] }, 'tag "site" must be a string, got array'],
    [{ '': 'x' }, 'tag name "" is not allowed'],
    [{ _measurement: 'x' }, 'tag name "_measurement" is not allowed'],
    [{ 'a\nb': 'x' }, 'tag name "a\\nb" is not allowed'],
  ])('bad tags %p are invalid_tags', (tags, message) => {
    const rj = rejectOf({ device: 'd1', metrics: { t: 1 }, tags });
    expect(rj.code).toBe('invalid_tags');
    expect(rj.message).toBe(message);
    // Same in the flat form.
    expect(rejectOf({ device: 'd1', t: 1, tags }).code).toBe('invalid_tags');
  });
});

describe('device id: payload, topic, or known device', () => {
  test('from the payload', () => {
    expect(run({ device: 'a.b_c:d-1', t: 1 }).readings[0].device).toBe('a.b_c:d-1');
  });

  test('from a devices/{device}/... topic', () => {
    expect(run({ t: 1 }, { topic: 'devices/pico-7/telemetry' }).readings[0].device).toBe('pico-7');
  });

  test('from the context (authenticated device)', () => {
    expect(run({ t: 1 }, { device: 'auth-1' }).readings[0].device).toBe('auth-1');
  });

  test('payload and topic agreeing is fine', () => {
    expect(run({ device: 'pico-7', t: 1 }, { topic: 'devices/pico-7/telemetry' }).readings[0].device).toBe('pico-7');
  });

  test('payload device different from the topic device is device_mismatch', () => {
    const rj = rejectOf({ device: 'other', t: 1 }, { topic: 'devices/pico-7/telemetry' });
    expect(rj.code).toBe('device_mismatch');
    expect(rj.message).toBe('payload device "other" does not match topic device "pico-7"');
  });

  test('payload device different from the known device is device_mismatch', () => {
    expect(rejectOf({ device: 'other', t: 1 }, { device: 'auth-1' }).code).toBe('device_mismatch');
  });

  test('a non-string device in the payload never matches the topic', () => {
    expect(rejectOf({ device: 7, t: 1 }, { topic: 'devices/7/telemetry' }).code).toBe('device_mismatch');
    expect(rejectOf({ device: null, t: 1 }, { topic: 'devices/d1/telemetry' }).code).toBe('device_mismatch');
  });

  test('known device different from the topic device is device_mismatch, whatever the payload', () => {
    const rj = rejectOf({ t: 1 }, { device: 'auth-1', topic: 'devices/pico-7/telemetry' });
    expect(rj.code).toBe('device_mismatch');
    expect(rj.message).toBe('topic device "pico-7" is not the authenticated device "auth-1"');
    expect(rejectOf(21.5, { device: 'auth-1', topic: 'devices/pico-7/temp' }).code).toBe('device_mismatch');
  });

  // Regression, fixed: the result's `batch` is documented as "true when the input was an array", but the early
  // device_mismatch return (topic vs known device) always says false.
  test('a topic/known-device mismatch on an array is still reported as a batch', () => {
    const r = run([{ t: 1 }, { t: 2 }], { device: 'auth-1', topic: 'devices/pico-7/telemetry' });
    expect(r.readings).toEqual([]);
    expect(r.rejects.map((x) => x.code)).toEqual(['device_mismatch']);
    expect(r.batch).toBe(true);
  });

  test('known device equal to the topic device is fine', () => {
    expect(run({ t: 1 }, { device: 'pico-7', topic: 'devices/pico-7/telemetry' }).readings[0].device).toBe('pico-7');
  });

  test('a topic with another prefix gives no device', () => {
    const rj = rejectOf({ t: 1 }, { topic: 'sensors/pico-7/telemetry' });
    expect(rj.code).toBe('invalid_device');
    expect(rj.message).toBe('no device id: give "device" in the payload or publish on a devices/{device}/... topic');
  });

  test('a custom topic prefix', () => {
    expect(run({ t: 1 }, { topic: 'sensors/pico-7/telemetry' }, { topicPrefix: 'sensors' }).readings[0].device).toBe('pico-7');
    expect(run(3, { topic: 'sensors/pico-7/t' }, { topicPrefix: 'sensors' }).readings[0]).toEqual({ device: 'pico-7', ts: NOW, metrics: { t: 3 } });
  });

  test.each<[unknown, string]>([
    ['', '""'],
    ['-leading-dash', '"-leading-dash"'],
    ['.hidden', '".hidden"'],
    ['has space', '"has space"'],
    ['a/b', '"a/b"'],
    ['a+b', '"a+b"'],
    ['a#', '"a#"'],
    ['new\nline', '"new\\nline"'],
    ['tab\t', '"tab\\t"'],
    ['nul\u0000', '"nul\\u0000"'],
    ['__proto__', '"__proto__"'],
    ['_underscore', '"_underscore"'],
    ['dévice', '"dévice"'],
    ['x'.repeat(129), JSON.stringify(`${'x'.repeat(40)}...`)],
    [42, '"42"'],
    [true, '"true"'],
    [{ id: 'd1' }, JSON.stringify('{"id":"d1"}')],
  ])('invalid device id %p is invalid_device', (device, shown) => {
    const rj = rejectOf({ device, t: 1 });
    expect(rj.code).toBe('invalid_device');
    expect(rj.message).toBe(`device id ${shown} is not allowed (1-128 of A-Z a-z 0-9 . _ : -, starting with a letter or digit)`);
  });

  test('a 128-character device id is allowed', () => {
    expect(run({ device: 'd'.repeat(128), t: 1 }).readings[0].device).toHaveLength(128);
  });

  test('an invalid device in the topic is invalid_device', () => {
    expect(rejectOf({ t: 1 }, { topic: 'devices/bad id/telemetry' }).code).toBe('invalid_device');
    expect(rejectOf({ t: 1 }, { topic: 'devices//telemetry' }).code).toBe('invalid_device');
  });

  test('an invalid known device is invalid_device', () => {
    expect(rejectOf({ t: 1 }, { device: 'bad id' }).code).toBe('invalid_device');
  });
});

describe('hostile names', () => {
  test.each([
    ['a newline', 'temp\nerature'],
    ['a carriage return', 'temp\r'],
    ['a tab', '\ttemp'],
    ['NUL', 'temp\u0000'],
    ['ESC', '\u001b[31mred'],
    ['DEL', 'temp\u007f'],
    ['a leading underscore', '_field'],
    ['__proto__', '__proto__'],
    ['empty', ''],
    ['129 characters', 'm'.repeat(129)],
  ])('a field name with %s is invalid_metric', (_label, name) => {
    const rj = rejectOf({ device: 'd1', t: 1, [name]: 2 });
    expect(rj.code).toBe('invalid_metric');
    expect(rj.message).toBe(`field name ${preview(name)} is not allowed`);
    const canonical = rejectOf({ device: 'd1', metrics: { t: 1, [name]: 2 } });
    expect(canonical.code).toBe('invalid_metric');
    expect(canonical.message).toBe(`metric name ${preview(name)} is not allowed`);
  });

  // Regression, fixed: names.ts promises "never control characters", but CONTROL_RE stops at U+007F, so the C1
  // controls U+0080..U+009F (NEL, a line break to some tools; CSI, a terminal escape) pass.
  test.each([
    ['NEL U+0085', 'temp\u0085erature'],
    ['CSI U+009B', '\u009b31mred'],
  ])('a name with the C1 control %s is invalid_metric', (_label, name) => {
    expect(isValidName(name)).toBe(false);
    expect(rejectOf({ device: 'd1', t: 1, [name]: 2 }).code).toBe('invalid_metric');
  });

  test('__proto__ from JSON (an own key) is refused, and Object.prototype is untouched', () => {
    const flat = rejectOf(json('{"device":"d1","t":1,"__proto__":{"polluted":1}}'));
    expect(flat.code).toBe('invalid_metric');
    const canonical = rejectOf(json('{"device":"d1","metrics":{"t":1,"__proto__":5}}'));
    expect(canonical.code).toBe('invalid_metric');
    const tags = rejectOf(json('{"device":"d1","t":1,"tags":{"__proto__":"x"}}'));
    expect(tags.code).toBe('invalid_tags');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('__proto__ nested under a field is an ordinary flattened name and pollutes nothing', () => {
    const r = run(json('{"device":"d1","a":{"__proto__":{"b":1}}}'));
    expect(r.readings[0].metrics).toEqual({ 'a.__proto__.b': 1 });
    expect(Object.getPrototypeOf(r.readings[0].metrics)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).b).toBeUndefined();
  });

  test('constructor, toString and hasOwnProperty are ordinary metric names', () => {
    const r = run(json('{"device":"d1","constructor":1,"toString":2,"hasOwnProperty":3}'));
    expect(r.readings[0].metrics).toEqual({ constructor: 1, toString: 2, hasOwnProperty: 3 });
  });

  test('a 128-character name is allowed, 129 is not', () => {
    expect(MAX_NAME_LENGTH).toBe(128);
    const n128 = 'm'.repeat(128);
    expect(run({ device: 'd1', [n128]: 1 }).readings[0].metrics).toEqual({ [n128]: 1 });
    expect(rejectOf({ device: 'd1', [`${n128}m`]: 1 }).code).toBe('invalid_metric');
  });

  test('unicode (accents, CJK, emoji, spaces, punctuation) is allowed in metric names', () => {
    const names = ['température', '温度', 'CO₂ ppm', '🌡️', 'Spannung (V)', 'a=b,c d', 'x.y', 'µs'];
    const input: Record<string, unknown> = { device: 'd1' };
    names.forEach((n, i) => (input[n] = i));
    const r = run(input);
    expect(Object.keys(r.readings[0].metrics)).toEqual(names);
    expect(run({ device: 'd1', metrics: { 温度: 1 } }).readings[0].metrics).toEqual({ 温度: 1 });
  });

  test('a hostile name nested under a good one is refused with its full name', () => {
    const rj = rejectOf({ device: 'd1', env: { 'a\nb': 1 } });
    expect(rj.code).toBe('invalid_metric');
    expect(rj.message).toBe('field name "env.a\\nb" is not allowed');
  });

  test('a hostile name with a null value is skipped, not refused', () => {
    expect(run({ device: 'd1', t: 1, '_x': null }).readings[0].metrics).toEqual({ t: 1 });
  });

  test('a hostile name on a string field is refused under every policy', () => {
    for (const strings of ['tags', 'metrics', 'drop'] as const) {
      expect(rejectOf({ device: 'd1', t: 1, 'bad\nname': 'x' }, {}, { strings }).code).toBe('invalid_metric');
    }
  });

  test('names.ts: isValidName and isValidDeviceId', () => {
    expect(isValidName('ok')).toBe(true);
    expect(isValidName('a_b')).toBe(true);
    expect(isValidName(5)).toBe(false);
    expect(isValidName('\u2028')).toBe(true); // a separator, not a control character
    expect(isValidDeviceId('A')).toBe(true);
    expect(isValidDeviceId('0:1.2-3_4')).toBe(true);
    expect(isValidDeviceId(undefined)).toBe(false);
  });

  test('names.ts: isValidName answers the same the second time and past its bound of remembered names', () => {
    const bad = ['', '_x', 'a\u0000b', 'tab\t', 'x'.repeat(MAX_NAME_LENGTH + 1), 'del\u007f'];
    const good = ['temperature', 'é🌞', 'a b', 'x'.repeat(MAX_NAME_LENGTH)];
    for (let round = 0; round < 2; round++) {
      for (const n of bad) expect([n, isValidName(n)]).toEqual([n, false]);
      for (const n of good) expect([n, isValidName(n)]).toEqual([n, true]);
    }
    // 5,000 more valid names (past the 4,096 remembered): all still valid, the bad ones still refused.
    for (let i = 0; i < 5000; i++) expect(isValidName(`m${i}`)).toBe(true);
    for (const n of bad) expect(isValidName(n)).toBe(false);
    expect(isValidName('m4999')).toBe(true);
    // Device ids: the last good one is remembered; a bad one after it is still refused.
    for (const id of ['dev-1', 'dev-1', 'bad id', 'dev-1', '-x', 'dev-1']) expect([id, isValidDeviceId(id)]).toEqual([id, id.startsWith('dev')]);
  });

  test('names.ts: preview quotes and bounds untrusted values', () => {
    expect(preview('abc')).toBe('"abc"');
    expect(preview('x'.repeat(50))).toBe(JSON.stringify(`${'x'.repeat(40)}...`));
    expect(preview({ a: 1 })).toBe('"{\\"a\\":1}"');
    expect(preview(undefined)).toBe('"undefined"');
    expect(preview(BigInt(3))).toBe('"3"');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(preview(cyclic)).toBe('"[object Object]"');
    expect(preview('abcdef', 3)).toBe('"abc..."');
  });
});

describe('timestamps in readings', () => {
  test('an invalid ts is invalid_ts', () => {
    expect(rejectOf({ device: 'd1', ts: 'yesterday', t: 1 }).code).toBe('invalid_ts');
    expect(rejectOf({ device: 'd1', ts: '2026-11-24T10:00:00', t: 1 }).code).toBe('invalid_ts');
    expect(rejectOf({ device: 'd1', ts: NaN, t: 1 }).code).toBe('invalid_ts');
    expect(rejectOf({ device: 'd1', ts: true, metrics: { t: 1 } }).code).toBe('invalid_ts');
  });

  test('seconds given to an ms setting are ts_out_of_range', () => {
    const rj = rejectOf({ device: 'd1', ts: TS / 1000, t: 1 });
    expect(rj.code).toBe('ts_out_of_range');
    expect(rj.message).toContain('(ms)');
  });

  test('ts 1e300 is ts_out_of_range in every unit', () => {
    for (const tsUnit of ['s', 'ms', 'us', 'ns'] as const) expect(rejectOf({ device: 'd1', ts: 1e300, t: 1 }, {}, { tsUnit }).code).toBe('ts_out_of_range');
  });

  test('ts is never a metric', () => {
    expect(run({ device: 'd1', ts: TS, t: 1 }).readings[0].metrics).toEqual({ t: 1 });
  });
});

describe('bare values on devices/{device}/{metric} topics', () => {
  test('a number', () => {
    expect(run(21.5, { topic: 'devices/pico-1/temperature' })).toEqual({
      readings: [{ device: 'pico-1', ts: NOW, metrics: { temperature: 21.5 } }],
      rejects: [],
      batch: false,
    });
  });

  test('a boolean', () => {
    expect(run(true, { topic: 'devices/pico-1/door' }).readings).toEqual([{ device: 'pico-1', ts: NOW, metrics: { door: true } }]);
  });

  test('zero and false are values, not missing', () => {
    expect(run(0, { topic: 'devices/d1/t' }).readings[0].metrics).toEqual({ t: 0 });
    expect(run(false, { topic: 'devices/d1/t' }).readings[0].metrics).toEqual({ t: false });
  });

  test('the rest of a deeper topic is the metric name', () => {
    expect(run(1, { topic: 'devices/d1/env/temp' }).readings[0].metrics).toEqual({ 'env/temp': 1 });
  });

  test('with a known device equal to the topic device', () => {
    expect(run(1, { topic: 'devices/d1/t', device: 'd1' }).readings[0].device).toBe('d1');
  });

  test('a bare value without a device topic is not_a_reading', () => {
    const rj = rejectOf(21.5, {});
    expect(rj.code).toBe('not_a_reading');
    expect(rj.message).toBe('a bare value needs a devices/{device}/{metric} topic, got topic ""');
    expect(rejectOf(21.5, { topic: 'devices/d1' }).code).toBe('not_a_reading');
    expect(rejectOf(true, { topic: 'other/d1/t' }).message).toBe('a bare value needs a devices/{device}/{metric} topic, got topic "other/d1/t"');
    expect(rejectOf(1, { device: 'd1' }).code).toBe('not_a_reading');
  });

  test.each([NaN, Infinity, -Infinity])('bare %s is invalid_value', (v) => {
    expect(rejectOf(v, { topic: 'devices/d1/t' }).code).toBe('invalid_value');
  });

  test.each([
    ['devices/d1/', ''],
    ['devices/d1/_t', '_t'],
    ['devices/d1/__proto__', '__proto__'],
    ['devices/d1/a\nb', 'a\nb'],
    [`devices/d1/${'m'.repeat(129)}`, 'm'.repeat(129)],
  ])('a bad metric name in the topic %p is invalid_metric', (topic, leaf) => {
    const rj = rejectOf(1, { topic });
    expect(rj.code).toBe('invalid_metric');
    expect(rj.message).toBe(`metric name from topic ${preview(leaf)} is not allowed`);
  });

  test('a unicode metric name in the topic is allowed', () => {
    expect(run(1, { topic: 'devices/d1/température' }).readings[0].metrics).toEqual({ température: 1 });
  });

  test('a bad device in the topic is invalid_device', () => {
    expect(rejectOf(1, { topic: 'devices/-x/t' }).code).toBe('invalid_device');
  });

  test.each<[unknown, string]>([
    ['21.5', 'string'],
    [null, 'null'],
    [undefined, 'undefined'],
  ])('%p as a payload is not_a_reading, even on a device topic', (v, type) => {
    const rj = rejectOf(v, { topic: 'devices/d1/t' });
    expect(rj.code).toBe('not_a_reading');
    expect(rj.message).toContain(`got ${type} `);
  });

  test('parseDeviceTopic', () => {
    expect(parseDeviceTopic('devices/d1/t', 'devices')).toEqual({ device: 'd1', leaf: 't' });
    expect(parseDeviceTopic('devices/d1/a/b', 'devices')).toEqual({ device: 'd1', leaf: 'a/b' });
    expect(parseDeviceTopic('devices/d1', 'devices')).toBeUndefined();
    expect(parseDeviceTopic('x/d1/t', 'devices')).toBeUndefined();
    expect(parseDeviceTopic('', 'devices')).toBeUndefined();
    expect(parseDeviceTopic(undefined, 'devices')).toBeUndefined();
  });
});

describe('batches (arrays)', () => {
  test('every good element becomes a reading, in order', () => {
    const r = run([
      { device: 'd1', ts: TS, t: 1 },
      { device: 'd2', metrics: { t: 2 } },
    ]);
    expect(r).toEqual({
      readings: [
        { device: 'd1', ts: TS, metrics: { t: 1 } },
        { device: 'd2', ts: NOW, metrics: { t: 2 } },
      ],
      rejects: [],
      batch: true,
    });
  });

  test('mixed good and bad: the good are kept, each bad one reported with its index', () => {
    const r = run([
      { device: 'd1', t: 1 },
      { device: 'd1', t: NaN },
      42,
      { device: 'd1', t: 4 },
      null,
      [{ device: 'd1', t: 5 }],
      { device: 'bad id', t: 6 },
      { device: 'd1', ts: 'soon', t: 7 },
    ]);
    expect(r.batch).toBe(true);
    expect(r.readings).toEqual([
      { device: 'd1', ts: NOW, metrics: { t: 1 } },
      { device: 'd1', ts: NOW, metrics: { t: 4 } },
    ]);
    expect(r.rejects.map((x) => [x.index, x.code])).toEqual([
      [1, 'invalid_value'],
      [2, 'not_a_reading'],
      [4, 'not_a_reading'],
      [5, 'not_a_reading'],
      [6, 'invalid_device'],
      [7, 'invalid_ts'],
    ]);
    expect(r.rejects[1].message).toBe('batch element must be an object, got number');
    expect(r.rejects[2].message).toBe('batch element must be an object, got null');
    expect(r.rejects[3].message).toBe('batch element must be an object, got array');
  });

  test('a batch of one is still a batch; an empty batch has nothing in it', () => {
    expect(run([{ device: 'd1', t: 1 }]).batch).toBe(true);
    expect(run([])).toEqual({ readings: [], rejects: [], batch: true });
  });

  test('bare numbers inside a batch are not readings, even on a device topic', () => {
    const r = run([1, 2], { topic: 'devices/d1/t' });
    expect(r.readings).toEqual([]);
    expect(r.rejects.map((x) => x.index)).toEqual([0, 1]);
  });

  test('the topic device applies to every element, and mismatches are per element', () => {
    const r = run([{ t: 1 }, { device: 'd1', t: 2 }, { device: 'd2', t: 3 }], { topic: 'devices/d1/telemetry' });
    expect(r.readings.map((x) => x.device)).toEqual(['d1', 'd1']);
    expect(r.rejects).toEqual([{ code: 'device_mismatch', message: 'payload device "d2" does not match topic device "d1"', index: 2 }]);
  });

  test('all bad: no readings, every index reported', () => {
    const r = run([{}, { device: 'd1' }]);
    expect(r.readings).toEqual([]);
    expect(r.rejects).toEqual([
      { code: 'invalid_device', message: expect.stringContaining('no device id') as unknown as string, index: 0 },
      { code: 'no_metrics', message: 'reading has no numeric or boolean metrics', index: 1 },
    ]);
  });

  test('maxBatch elements are accepted; one more is payload_too_large for the whole batch', () => {
    const item = { device: 'd1', t: 1 };
    expect(run([item, item, item], {}, { maxBatch: 3 }).readings).toHaveLength(3);
    const r = run([item, item, item, item], {}, { maxBatch: 3 });
    expect(r).toEqual({
      readings: [],
      rejects: [{ code: 'payload_too_large', message: 'batch of 4 readings is over the limit of 3' }],
      batch: true,
    });
    expect(r.rejects[0]).not.toHaveProperty('index');
  });

  test('the default maxBatch is 10000', () => {
    const item = { device: 'd1', t: 1 };
    expect(run(new Array(10_000).fill(item)).readings).toHaveLength(10_000);
    expect(run(new Array(10_001).fill(item)).rejects[0].code).toBe('payload_too_large');
  });
});

describe('other payloads', () => {
  test.each<[unknown, string]>([
    ['text', 'string'],
    [null, 'null'],
    [undefined, 'undefined'],
    [new Date(TS), 'object'],
    [new Map([['t', 1]]), 'object'],
  ])('%p is not_a_reading', (v, type) => {
    const rj = rejectOf(v);
    expect(rj.code).toBe('not_a_reading');
    expect(rj.message).toMatch(new RegExp(`^payload must be an object, an array of objects, or a bare number on a devices/\\{device\\}/\\{metric\\} topic; got ${type} `));
  });

  test('a non-batch reject carries no index', () => {
    expect(rejectOf('x')).not.toHaveProperty('index');
    expect(rejectOf({ device: 'd1' })).not.toHaveProperty('index');
  });

  test('a getter that throws is reported as not_a_reading, not thrown', () => {
    const o = {
      device: 'd1',
      get t(): number {
        throw new Error('boom');
      },
    };
    expect(rejectOf(o)).toEqual({ code: 'not_a_reading', message: 'could not read payload: boom' });
    const r = run([o]);
    expect(r.rejects).toEqual([{ code: 'not_a_reading', message: 'could not read payload: boom', index: 0 }]);
  });
});

describe('every RejectCode normalise can produce', () => {
  const cases: Array<[RejectCode, unknown, NormaliseContext, Partial<NormaliseOptions>]> = [
    ['payload_too_large', [{}, {}], {}, { maxBatch: 1 }],
    ['not_a_reading', 'x', {}, {}],
    ['invalid_device', { t: 1 }, {}, {}],
    ['device_mismatch', { device: 'a', t: 1 }, { device: 'b' }, {}],
    ['invalid_ts', { device: 'd1', ts: 'x', t: 1 }, {}, {}],
    ['ts_out_of_range', { device: 'd1', ts: 1, t: 1 }, {}, {}],
    ['invalid_metric', { device: 'd1', _t: 1 }, {}, {}],
    ['invalid_value', { device: 'd1', t: [1] }, {}, {}],
    ['no_metrics', { device: 'd1' }, {}, {}],
    ['invalid_tags', { device: 'd1', t: 1, tags: 'x' }, {}, {}],
  ];
  test.each(cases)('%s', (code, value, ctx, opts) => {
    const r = run(value, ctx, opts);
    expect(r.readings).toEqual([]);
    expect(r.rejects.map((x) => x.code)).toEqual([code]);
    expect(typeof r.rejects[0].message).toBe('string');
    expect(r.rejects[0].message.length).toBeGreaterThan(0);
  });
});
