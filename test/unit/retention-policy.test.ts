/**
 * nodes/lib/retention/policy.ts: parsing (numbers and durations for the day fields, every problem
 * reported with the rule and field named), overlap detection, DEFAULT_POLICY, describePolicy's
 * timelines and ruleSelector.
 */
import { ThingwireError } from '../../nodes/lib/errors';
import { DEFAULT_POLICY, describePolicy, formatDays, parsePolicy, ruleSelector, type PolicyProblem, type RetentionRule } from '../../nodes/lib/retention/policy';

const rule = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'raw', measurement: 'telemetry', hotDays: 30, warmDays: 365, coldDays: null, ...over });

/** The error parsePolicy throws (fails the test when it does not throw). */
function errorOf(v: unknown): ThingwireError {
  try {
    parsePolicy(v);
  } catch (e) {
    expect(e).toBeInstanceOf(ThingwireError);
    return e as ThingwireError;
  }
  throw new Error('parsePolicy accepted the policy');
}
const problemsOf = (v: unknown): PolicyProblem[] => (errorOf(v).details as { problems: PolicyProblem[] }).problems;

describe('parsePolicy: valid policies', () => {
  test('numbers, null and "forever"; where kept; an object, its JSON text or a bare list of rules', () => {
    const p = { rules: [rule(), rule({ name: 'r1m', measurement: 'rollup', where: { level: '1m' }, warmDays: 0, coldDays: 'forever' })] };
    const want = {
      rules: [
        { name: 'raw', measurement: 'telemetry', hotDays: 30, warmDays: 365, coldDays: null },
        { name: 'r1m', measurement: 'rollup', where: { level: '1m' }, hotDays: 30, warmDays: 0, coldDays: null },
      ],
    };
    expect(parsePolicy(p)).toEqual(want);
    expect(parsePolicy(JSON.stringify(p))).toEqual(want);
    expect(parsePolicy(p.rules)).toEqual(want);
    expect(parsePolicy({ rules: [] })).toEqual({ rules: [] });
  });

  test.each([
    ['30d', 30],
    ['1y', 365],
    ['2y', 730],
    ['2w', 14],
    [' 7 d ', 7],
    ['48h', 2],
    ['1440m', 1],
    [0, 0],
    [36600, 36600],
  ])('warmDays %p is %p days', (given, days) => {
    expect(parsePolicy({ rules: [rule({ warmDays: given })] }).rules[0].warmDays).toBe(days);
  });

  test('the measurement may hold any characters; where keys are stored sorted', () => {
    const p = parsePolicy({ rules: [rule({ measurement: 'm "x",y\\z 温度', where: { z: '1', a: '2' } })] });
    expect(p.rules[0].measurement).toBe('m "x",y\\z 温度');
    expect(Object.keys(p.rules[0].where!)).toEqual(['a', 'z']);
  });

  test('an empty where is dropped', () => {
    expect(parsePolicy({ rules: [rule({ where: {} })] }).rules[0]).not.toHaveProperty('where');
  });

  test('DEFAULT_POLICY parses as it is, and matches the design', () => {
    expect(parsePolicy(JSON.parse(JSON.stringify(DEFAULT_POLICY)))).toEqual(DEFAULT_POLICY);
    const byName = Object.fromEntries(DEFAULT_POLICY.rules.map((r) => [r.name, [r.measurement, r.where?.level, r.hotDays, r.warmDays, r.coldDays]]));
    expect(byName).toEqual({
      raw: ['telemetry', undefined, 30, 365, null],
      'rollup-1m': ['rollup', '1m', 30, 335, 0],
      'rollup-1h': ['rollup', '1h', 90, 3560, null],
      'rollup-1d': ['rollup', '1d', 3650, 0, null],
      anomaly: ['anomaly', undefined, 30, 335, 0],
      alerts: ['alerts', undefined, 365, 0, null],
    });
  });
});

describe('parsePolicy: problems name the rule and the field', () => {
  test.each([
    [{ hotDays: -3 }, 'rule "raw": hotDays must be a whole number >= 1 (got -3)'],
    [{ hotDays: 0 }, 'rule "raw": hotDays must be a whole number >= 1 (got 0)'],
    [{ hotDays: 1.5 }, 'rule "raw": hotDays must be a whole number >= 1 (got 1.5)'],
    [{ warmDays: -1 }, 'rule "raw": warmDays must be a whole number >= 0 (got -1)'],
    [{ coldDays: 36601 }, 'rule "raw": coldDays must be at most 36600 days (got 36601)'],
    [{ hotDays: '36h' }, 'rule "raw": hotDays must be a whole number of days (got "36h", 1.5 d)'],
    [{ hotDays: '30' }, 'rule "raw": hotDays must be a whole number >= 1 of days or a duration such as "30d" or "1y" (got "30")'],
    [{ hotDays: '0d' }, 'rule "raw": hotDays must be a whole number >= 1 of days (got "0d")'],
    [{ warmDays: 'soon' }, 'rule "raw": warmDays must be a whole number >= 0 of days or a duration such as "30d" or "1y" (got "soon")'],
    [{ warmDays: null }, 'rule "raw": warmDays must be a whole number >= 0 of days or a duration such as "30d" or "1y" (got null)'],
    [{ coldDays: undefined }, 'rule "raw": coldDays is missing (null or "forever" keeps cold data forever)'],
    [{ measurement: '' }, 'rule "raw": measurement must be a string of 1-256 characters (got "")'],
    [{ measurement: 'm'.repeat(257) }, `rule "raw": measurement must be a string of 1-256 characters (got "${'m'.repeat(40)}...")`],
    [{ where: { level: 1 } }, 'rule "raw": where.level must be a non-empty string of at most 256 characters (got "1")'],
    [{ where: { level: '' } }, 'rule "raw": where.level must be a non-empty string of at most 256 characters (got "")'],
    [{ where: ['level'] }, 'rule "raw": where must be an object of tag = value (got "[\\"level\\"]")'],
    [{ hotdays: 3 }, 'rule "raw": unknown key "hotdays"'],
    [{ name: '../etc' }, 'rules[0]: name must be 1-64 letters, digits, \'.\', \'_\' or \'-\', starting with a letter or digit (got "../etc")'],
    [{ name: 'a|b' }, 'rules[0]: name must be 1-64 letters, digits, \'.\', \'_\' or \'-\', starting with a letter or digit (got "a|b")'],
    [{ name: 'x'.repeat(65) }, `rules[0]: name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (got "${'x'.repeat(40)}...")`],
  ])('%p', (over, message) => {
    const e = errorOf({ rules: [rule(over)] });
    expect(e.message).toBe(message);
    expect(e.code).toBe('validation_failed');
  });

  test('every problem of every rule is listed at once, each with its path', () => {
    const e = errorOf({ rules: [rule({ hotDays: -3, warmDays: 'x' }), rule({ name: 7, coldDays: -1 })], extra: 1 });
    expect((e.details as { problems: PolicyProblem[] }).problems.map((p) => p.path)).toEqual([
      'extra',
      'rules[0].hotDays',
      'rules[0].warmDays',
      'rules[1].name',
      'rules[1].coldDays',
    ]);
    expect(e.message).toMatch(/^retention policy has 5 problems: retention policy: unknown key "extra"; rule "raw": hotDays must/);
    expect(e.message).toContain('rules[1]: coldDays must be a whole number >= 0 (got -1)');
  });

  test.each([
    [null, 'retention policy must be an object with a "rules" list (got "null")'],
    [{ rule: [] }, 'retention policy must be an object with a "rules" list (got "{\\"rule\\":[]}")'],
    ['{nope', /^retention policy is not valid JSON: /],
    [{ rules: [42] }, 'rules[0]: a rule must be an object (got "42")'],
    [{ rules: Array.from({ length: 101 }, (_, i) => rule({ name: `r${i}` })) }, 'retention policy: at most 100 rules (got 101)'],
  ])('not a policy: %p', (v, message) => {
    expect(errorOf(v).message).toMatch(message);
  });

  test('names are unique ignoring case (they name directories)', () => {
    expect(problemsOf({ rules: [rule(), rule({ name: 'RAW', measurement: 'other' })] })).toEqual([
      { path: 'rules[1].name', message: 'rule "RAW": name is used twice ("raw"; names are compared ignoring case)' },
    ]);
  });
});

describe('parsePolicy: overlapping rules are refused', () => {
  const r = (name: string, measurement: string, where?: Record<string, string>): Record<string, unknown> => rule({ name, measurement, where });
  test.each([
    ['same measurement, no where', [r('a', 'm'), r('b', 'm')], true],
    ['one without where covers the other', [r('a', 'm'), r('b', 'm', { level: '1m' })], true],
    ['where sets that do not exclude each other', [r('a', 'm', { level: '1m' }), r('b', 'm', { site: 'x' })], true],
    ['a subset of the other where', [r('a', 'm', { level: '1m' }), r('b', 'm', { level: '1m', site: 'x' })], true],
    ['same where', [r('a', 'm', { level: '1m' }), r('b', 'm', { level: '1m' })], true],
    ['one shared tag with different values', [r('a', 'm', { level: '1m' }), r('b', 'm', { level: '1h', site: 'x' })], false],
    ['different measurements', [r('a', 'm'), r('b', 'n')], false],
    ['measurements differing only in case', [r('a', 'm'), r('b', 'M')], false],
  ])('%s', (_label, rules, overlap) => {
    if (!overlap) {
      expect(parsePolicy({ rules }).rules).toHaveLength(2);
      return;
    }
    expect(problemsOf({ rules })).toEqual([
      { path: 'rules[1]', message: expect.stringMatching(/^rule "b": selects data rule "a" also selects \(measurement "[mM]"; give both a "where" tag with different values\)$/) },
    ]);
  });
});

describe('describePolicy', () => {
  const r = (hotDays: number, warmDays: number, coldDays: number | null): RetentionRule => ({ name: 'r', measurement: 'm', hotDays, warmDays, coldDays });
  test.each([
    [r(30, 335, null), 'hot 30 d > warm Parquet to 1 y > cold archive forever'],
    [r(30, 365, null), 'hot 30 d > warm Parquet to 1 y 30 d > cold archive forever'],
    [r(30, 335, 0), 'hot 30 d > warm Parquet to 1 y > deleted'],
    [r(30, 0, 0), 'hot 30 d > deleted'],
    [r(3650, 0, null), 'hot 10 y > cold archive forever'],
    [r(7, 0, 23), 'hot 7 d > cold archive to 30 d > deleted'],
    [r(1, 29, 700), 'hot 1 d > warm Parquet to 30 d > cold archive to 2 y > deleted'],
  ])('%p', (rl, text) => {
    expect(describePolicy(rl)).toBe(text);
  });

  test('with today, each tier says its oldest day (leap day included)', () => {
    expect(describePolicy(r(30, 335, 0), '2024-12-31')).toBe('hot 30 d (since 2024-12-01) > warm Parquet to 1 y (since 2024-01-01) > deleted (before 2024-01-01)');
    expect(describePolicy(r(1, 0, null), '2024-03-01')).toBe('hot 1 d (since 2024-02-29) > cold archive forever');
    expect(describePolicy(r(2, 3, 4), '2026-11-24')).toBe('hot 2 d (since 2026-11-22) > warm Parquet to 5 d (since 2026-11-19) > cold archive to 9 d (since 2026-11-15) > deleted (before 2026-11-15)');
  });

  test('a bad day is refused', () => {
    expect(() => describePolicy(r(1, 0, null), '2026-02-30')).toThrow('describePolicy: nowDay must be a day (YYYY-MM-DD), got "2026-02-30"');
  });

  test('formatDays', () => {
    expect([0, 1, 364, 365, 366, 730, 3650, 3651].map(formatDays)).toEqual(['0 d', '1 d', '364 d', '1 y', '1 y 1 d', '2 y', '10 y', '10 y 1 d']);
  });
});

describe('ruleSelector', () => {
  test('measurement, range and a copy of where (absent when the rule has none)', () => {
    const rl: RetentionRule = { name: 'r', measurement: 'rollup', where: { level: '1m' }, hotDays: 1, warmDays: 0, coldDays: null };
    const sel = ruleSelector(rl, 1000, 2000);
    expect(sel).toEqual({ measurement: 'rollup', start: 1000, end: 2000, where: { level: '1m' } });
    sel.where!.level = 'x';
    expect(rl.where).toEqual({ level: '1m' });
    const plain = ruleSelector({ ...rl, where: undefined }, 0, 1);
    expect(plain).toEqual({ measurement: 'rollup', start: 0, end: 1 });
    expect(plain).not.toHaveProperty('where');
  });

  test('an empty or reversed range is refused', () => {
    const rl: RetentionRule = { name: 'r', measurement: 'm', hotDays: 1, warmDays: 0, coldDays: null };
    expect(() => ruleSelector(rl, 5, 5)).toThrow('rule "r": selector range must be start < end (got 5, 5)');
    expect(() => ruleSelector(rl, NaN, 5)).toThrow(ThingwireError);
  });
});
