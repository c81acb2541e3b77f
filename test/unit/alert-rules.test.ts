/**
 * Alert rule parsing and compiling (nodes/alert/rules.ts): every problem reported at once with its
 * path, the condition kinds, hysteresis-derived clear conditions, key templates, durations.
 */
import { formatProblems, globTest, parseDurationMs, parseRules, type CompiledRule, type Fact } from '../../nodes/alert/rules';

function one(rule: unknown): CompiledRule {
  const p = parseRules([rule]);
  if (!p.ok) throw new Error(formatProblems(p.problems));
  return p.rules[0];
}

function problems(input: unknown): string[] {
  const p = parseRules(input);
  if (p.ok) throw new Error('expected problems');
  return p.problems.map((x) => `${x.path}: ${x.message}`);
}

/** Facts in slot order from a map of "kind:metric" to value. */
function facts(rule: CompiledRule, values: Record<string, Fact>): Fact[] {
  return rule.slots.map((s) => values[`${s.kind}:${s.metric ?? '*'}`] ?? null);
}

describe('parseRules', () => {
  test('a single-level rule: defaults, slots, texts', () => {
    const r = one({ id: 'hot', metric: 'temperature', when: { above: 80, hysteresis: 2 } });
    expect(r.levels).toHaveLength(1);
    expect(r.levels[0]).toMatchObject({ severity: 'warning', forMs: 0, samples: 1, whenText: '{metric} > 80', clearText: 'not ({metric} > 78)' });
    expect(r.slots).toEqual([{ kind: 'value', metric: null, per: 0, over: 0 }]);
    expect(r.defaultKey).toBe(true);
    expect(r.keyParts).toEqual([{ v: 'device' }, '/', { v: 'metric' }, '/', { v: 'rule' }]);
    const l = r.levels[0];
    expect(l.when(facts(r, { 'value:*': 81 }))).toBe(true);
    expect(l.when(facts(r, { 'value:*': 80 }))).toBe(false);
    expect(l.clear(facts(r, { 'value:*': 79 }))).toBe(false);
    expect(l.clear(facts(r, { 'value:*': 78 }))).toBe(true);
    expect(l.when(facts(r, {}))).toBe(false);
    expect(l.when(facts(r, { 'value:*': 'hot' }))).toBe(false);
  });

  test('comparisons and bands, with hysteresis on each side', () => {
    const below = one({ id: 'a', metric: 'm', when: { below: 10, hysteresis: 1 } }).levels[0];
    const inside = one({ id: 'b', metric: 'm', when: { inside: [10, 20], hysteresis: 1 } }).levels[0];
    const outside = one({ id: 'c', metric: 'm', when: { outside: [10, 20], hysteresis: 1 } }).levels[0];
    const eq = one({ id: 'd', metric: 'door', when: { equals: true } }).levels[0];
    const f = (v: Fact): Fact[] => [v];
    expect([9, 10, 10.5, 11, 12].map((v) => [below.when(f(v)), below.clear(f(v))])).toEqual([
      [true, false],
      [false, false],
      [false, false],
      [false, true],
      [false, true],
    ]);
    expect([8.5, 9.5, 10, 20, 21, 21.5].map((v) => [inside.when(f(v)), inside.clear(f(v))])).toEqual([
      [false, true],
      [false, false],
      [true, false],
      [true, false],
      [false, false],
      [false, true],
    ]);
    expect([9, 10.5, 11, 19, 19.5, 21].map((v) => [outside.when(f(v)), outside.clear(f(v))])).toEqual([
      [true, false],
      [false, false],
      [false, true],
      [false, true],
      [false, false],
      [true, false],
    ]);
    expect([eq.when(f(true)), eq.when(f(false)), eq.when(f('true')), eq.clear(f(false))]).toEqual([true, false, false, true]);
  });

  test('all / any / not, with hysteresis flipping under not', () => {
    const r = one({
      id: 'combo',
      when: { all: [{ metric: 't', above: 30, hysteresis: 1 }, { any: [{ metric: 'h', above: 80 }, { not: { metric: 'fan', below: 100, hysteresis: 10 } }] }] },
    });
    const l = r.levels[0];
    const F = (t: number, h: number, fan: number): Fact[] => facts(r, { 'value:t': t, 'value:h': h, 'value:fan': fan });
    expect(l.when(F(31, 85, 50))).toBe(true);
    expect(l.when(F(31, 50, 150))).toBe(true);
    expect(l.when(F(31, 50, 50))).toBe(false);
    expect(l.when(F(29, 85, 150))).toBe(false);
    // clear = not (t > 29 and (h > 80 or not fan < 90)): under "not" the band narrows
    expect(l.clear(F(29.5, 85, 150))).toBe(false);
    expect(l.clear(F(29, 85, 150))).toBe(true);
    expect(l.clear(F(31, 50, 105))).toBe(false);
    expect(l.clear(F(31, 50, 111))).toBe(false);
    expect(l.clear(F(31, 50, 109))).toBe(false);
    expect(l.clear(F(31, 50, 90))).toBe(false);
    expect(l.clear(F(31, 50, 89))).toBe(true);
    expect(l.whenText).toBe('(t > 30) and ((h > 80) or (not (fan < 100)))');
  });

  test('rate, anomaly, maintenance and offline slots', () => {
    const r = one({
      id: 'mix',
      when: {
        any: [
          { rate: 'p', per: 'min', over: '5m', above: 2 },
          { rate: 'p', below: -1 },
          { anomaly: 'p', above: 0.8 },
          { anomaly: 'p' },
          { maintenance: 'p' },
          { maintenance: 'p', above: 0.5 },
          { offline: true },
        ],
      },
    });
    expect(r.slots).toEqual([
      { kind: 'rate', metric: 'p', per: 60_000, over: 300_000 },
      { kind: 'rate', metric: 'p', per: 1000, over: 0 },
      { kind: 'score', metric: 'p', per: 0, over: 0 },
      { kind: 'anomalous', metric: 'p', per: 0, over: 0 },
      { kind: 'maint', metric: 'p', per: 0, over: 0 },
      { kind: 'prob', metric: 'p', per: 0, over: 0 },
      { kind: 'offline', metric: null, per: 0, over: 0 },
    ]);
    expect(r.readingSlots).toEqual([0, 1]);
    expect(r.anomalySlots).toEqual([2, 3, 4, 5]);
    expect(r.livenessSlots).toEqual([6]);
    expect(r.primary).toBe(0);
  });

  test('levels sorted most severe first; a shared slot once', () => {
    const r = one({
      id: 'lv',
      metric: 'x',
      levels: [
        { severity: 'info', when: { above: 1 } },
        { severity: 'critical', when: { above: 3 }, clear: { below: 2 }, for: '30s', samples: 3 },
        { severity: 'minor', when: { above: 2 } },
      ],
    });
    expect(r.levels.map((l) => [l.severity, l.rank, l.forMs, l.samples])).toEqual([
      ['critical', 0, 30_000, 3],
      ['minor', 2, 0, 1],
      ['info', 4, 0, 1],
    ]);
    expect(r.slots).toHaveLength(1);
  });

  test('key templates, device and metric globs, tags, renotify, flap', () => {
    const r = one({ id: 's', devices: ['pump-*', 'fan-1'], metric: ['temp*', 'load'], tags: { site: 'mad' }, key: '{tags.site}/{metric}', when: { above: 1 }, renotify: '15m', flap: { changes: 4, window: '10m' } });
    expect(r.keyParts).toEqual([{ tag: 'site' }, '/', { v: 'metric' }]);
    expect(r.defaultKey).toBe(false);
    expect([r.devices!('pump-7'), r.devices!('fan-1'), r.devices!('fan-2')]).toEqual([true, true, false]);
    expect([...r.metricNames!]).toEqual(['load']);
    expect([r.metricTest!('temperature'), r.metricTest!('load2')]).toEqual([true, false]);
    expect(r.tags).toEqual([['site', 'mad']]);
    expect(r.renotifyMs).toBe(900_000);
    expect(r.flap).toEqual({ changes: 4, windowMs: 600_000, stableMs: 600_000 });
    expect(one({ id: 'dm', when: { offline: true } }).keyParts).toEqual([{ v: 'device' }, '/', { v: 'rule' }]);
  });

  test('JSON text, {rules: [...]}, empty text, disabled rules left out', () => {
    const p = parseRules(JSON.stringify({ rules: [{ id: 'a', metric: 'm', when: { above: 1 } }, { id: 'b', metric: 'm', when: { above: 1 }, enabled: false }] }));
    expect(p.ok && p.rules.map((r) => r.id)).toEqual(['a']);
    expect(parseRules('  ')).toEqual({ ok: true, rules: [] });
  });

  test('every problem at once, with paths', () => {
    const got = problems([
      { id: 'bad id!', metric: 'm', when: { above: 'x' } },
      { id: 'ok', when: { above: 1 } },
      { id: 'ok', metric: 'm', levels: [{ severity: 'urgent', when: { above: 1 } }, { severity: 'info', when: { above: 1, below: 2 } }], renotify: 'soon' },
      { id: 'c', metric: 'm', when: { inside: [5, 1] }, for: -1, samples: 0, colour: 'red' },
      { id: 'd', when: { all: [] } },
      { id: 'e', metric: 'm', when: { offline: true } },
      { id: 'f', when: { metric: 'm', outside: [0, 2], hysteresis: 1 } },
      { id: 'g', metric: 'm', key: '{device}/{oops}', when: { rate: true, per: 'week', above: 1 } },
      { id: 'h', when: { rate: true, above: 1 } },
      { id: 'i', metric: 'm', when: { above: 1 }, levels: [] },
      { id: 'j', metric: 'm', when: { anomaly: true, offline: true } },
      { id: 'k', metric: 'm', when: { equals: [1] } },
      'not a rule',
    ]);
    expect(got).toEqual([
      'rules[0].id: must be 1..128 letters, digits and ._:- starting with a letter or digit, got "bad id!"',
      'rules[0].when.above: must be a finite number, got "x"',
      'rules[1].when: needs "metric" (the rule has no "metric" of its own)',
      'rules[2].id: duplicate rule id "ok"',
      'rules[2].levels[0].severity: must be one of critical, major, minor, warning, info, got "urgent"',
      'rules[2].levels[1].when: one comparison per condition; got above and below (use inside/outside for a band, or "all")',
      'rules[2].renotify: must be a duration such as "30s", "5m", "1h" or a number of ms (0 to 366 days), got "soon"',
      'rules[3].colour: unknown rule field (expected id, name, devices, tags, metric, key, levels, severity, when, clear, for, samples, renotify, flap, message, enabled)',
      'rules[3].when.inside: must be [low, high] with finite numbers, low <= high, got "[5,1]"',
      'rules[3].for: must be a duration such as "30s", "5m", "1h" or a number of ms (0 to 366 days), got "-1"',
      'rules[3].samples: must be a whole number from 1 to 1000000, got "0"',
      'rules[4].when.all: must be a non-empty array of conditions, got "[]"',
      'rules[5].when.offline: a deadman condition is per device: use it in a rule without "metric"',
      'rules[6].when.hysteresis: an "outside" band [0, 2] is too narrow for hysteresis 1 (it would never clear)',
      'rules[7].key: unknown placeholder {oops} (use {device}, {metric}, {rule} or {tags.NAME})',
      'rules[7].when.per: must be "s", "min" or "h", got "week"',
      'rules[8].when.rate: rate: true reads the rule\'s "metric", but the rule has none; name the metric instead',
      'rules[9]: give either "levels" or "when" on the rule, not both',
      'rules[9].levels: must be a list of 1..5 levels, got "[]"',
      'rules[10].when: a condition has one of rate, anomaly, maintenance, offline, all, any, not; got anomaly and offline (combine them with "all" or "any")',
      'rules[11].when.equals: must be a number, boolean or string, got "[1]"',
      'rules[12]: a rule must be an object with "id" and "when" or "levels", got "not a rule"',
    ]);
  });

  test('whole-input problems and hostile input', () => {
    expect(problems('{nope')[0]).toMatch(/^rules: not valid JSON/);
    expect(problems({ a: 1 })).toEqual(['rules: must be a list of rules, got "{\\"a\\":1}"']);
    expect(problems(new Array(1001).fill({}))).toEqual(['rules: at most 1000 rules, got 1001']);
    const deep: Record<string, unknown> = { metric: 'm', above: 1 };
    let c: Record<string, unknown> = deep;
    for (let i = 0; i < 12; i++) c = { not: c };
    expect(problems([{ id: 'deep', when: c }])).toEqual(['rules[0].when.not.not.not.not.not.not.not.not: conditions nest too deep (at most 8 levels)']);
    const wide = { any: Array.from({ length: 70 }, () => ({ metric: 'm', above: 1 })) };
    expect(problems([{ id: 'wide', when: wide }])).toEqual(['rules[0].when.any: at most 64 conditions']);
    expect(problems([JSON.parse('{"id":"p","__proto__":{"x":1},"metric":"m","when":{"above":1}}')])).toEqual([
      'rules[0].__proto__: unknown rule field (expected id, name, devices, tags, metric, key, levels, severity, when, clear, for, samples, renotify, flap, message, enabled)',
    ]);
    expect(problems([{ id: 'q', metric: '_bad', when: { above: 1 } }])[0]).toMatch(/^rules\[0\]\.metric: must be a metric name or glob/);
  });
});

describe('helpers', () => {
  test('parseDurationMs', () => {
    expect(['250ms', '30s', '5m', '5min', '1h', '2d', '1w', 1500, '1500'].map(parseDurationMs)).toEqual([250, 30_000, 300_000, 300_000, 3_600_000, 172_800_000, 604_800_000, 1500, 1500]);
    expect(['', 'x', '-1s', -5, NaN, Infinity, '400d', null, {}].map(parseDurationMs)).toEqual(new Array(9).fill(undefined));
  });

  test('globTest escapes everything but * and ?', () => {
    expect([globTest('a.b*')('a.bc'), globTest('a.b*')('axbc'), globTest('d?')('d1'), globTest('d?')('d12'), globTest('(x)')('(x)')]).toEqual([true, false, true, false, true]);
  });
});
