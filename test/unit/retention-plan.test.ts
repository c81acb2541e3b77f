/**
 * nodes/lib/retention/plan.ts: which partition steps a run takes, for a fixed `now`. Day boundaries
 * exactly at day edges, leap years, warmDays 0 / coldDays 0 / coldDays null, pending first,
 * restores, late hot rows, rules gone from the policy, maxPartitions and the order of the steps.
 */
import { DAY_MS, dayStart, partitionKey, type FileEntry, type PartitionEntry, type Tier } from '../../nodes/lib/retention/manifest';
import { planRun, targetTier, type Action, type HotExtent } from '../../nodes/lib/retention/plan';
import type { RetentionPolicy, RetentionRule } from '../../nodes/lib/retention/policy';

const NOW = Date.parse('2026-11-24T10:00:00Z');
const T = (iso: string): number => Date.parse(iso.length === 10 ? `${iso}T00:00:00Z` : iso);

const rule = (name: string, hotDays: number, warmDays: number, coldDays: number | null, measurement = 'm', where?: Record<string, string>): RetentionRule => ({
  name,
  measurement,
  ...(where ? { where } : {}),
  hotDays,
  warmDays,
  coldDays,
});
const policy = (...rules: RetentionRule[]): RetentionPolicy => ({ rules });

const file = (p: string): FileEntry => ({ path: p, rows: 10, minTs: 0, maxTs: 1, checksum: '0'.repeat(16), sha256: '0'.repeat(64), bytes: 100 });
function entry(r: RetentionRule | string, day: string, tier: Tier, extra: Partial<PartitionEntry> = {}): PartitionEntry {
  const name = typeof r === 'string' ? r : r.name;
  const start = dayStart(day);
  return {
    rule: name,
    measurement: typeof r === 'string' ? 'm' : r.measurement,
    day,
    start,
    end: start + DAY_MS,
    tier,
    generation: 1,
    ...(tier === 'deleted' ? {} : { file: file(`${tier}/${name}/${day}.g1.parquet`) }),
    history: [],
    ...extra,
  };
}
/** Hot extent over whole days [first, last]. */
const hot = (first: string, last: string, count = 100): HotExtent => ({ min: T(first) + 1000, max: T(last) + DAY_MS - 1, count });
const extents = (pairs: Record<string, HotExtent | null>): Map<string, HotExtent | null> => new Map(Object.entries(pairs));

/** kind rule day, compactly. */
const brief = (a: Action[]): string[] => a.map((x) => `${x.kind} ${x.rule} ${x.day}${x.hot ? ' +hot' : ''}`);

describe('targetTier: whole UTC days; a day moves when its end is on the boundary', () => {
  // hot 30: boundary = 2026-11-24 - 30 d = 2026-10-25 00:00. Day 2026-10-24 ends exactly there.
  const r = rule('r', 30, 10, 5);
  test.each([
    ['2026-10-24', NOW, 'warm'],
    ['2026-10-25', NOW, 'hot'], // ends one day after the boundary
    ['2026-11-24', NOW, 'hot'], // today
    ['2027-01-01', NOW, 'hot'], // the future
    ['2026-10-24', T('2026-11-24'), 'warm'], // now exactly at midnight: same boundary
    ['2026-10-24', T('2026-11-24') - 1, 'hot'], // 1 ms before midnight: the boundary is a day earlier
    ['2026-10-15', NOW, 'warm'], // hot+warm = 40: 2026-10-15 ends 10-16 > 10-15 edge
    ['2026-10-14', NOW, 'cold'], // ends exactly at the warm edge (2026-10-15)
    ['2026-10-10', NOW, 'cold'],
    ['2026-10-09', NOW, 'deleted'], // ends exactly at the end edge (2026-10-10)
  ])('%s at %p is %s', (day, now, tier) => {
    expect(targetTier(r, day as string, now as number)).toBe(tier);
  });

  test('leap years: Feb 29 counts as a day', () => {
    // 2024-03-01 minus 1 day is 2024-02-29: with hotDays 1 on 2024-03-01, 2024-02-28 is past hot, 02-29 is not.
    const r1 = rule('r', 1, 0, null);
    expect(targetTier(r1, '2024-02-28', T('2024-03-01T12:00:00Z'))).toBe('cold');
    expect(targetTier(r1, '2024-02-29', T('2024-03-01T12:00:00Z'))).toBe('hot');
    // 366 days back from 2025-01-01 is 2024-01-01 (2024 is a leap year): with hot 366, 2023-12-31 is past, 2024-01-01 is not.
    const r366 = rule('r', 366, 0, null);
    expect(targetTier(r366, '2023-12-31', T('2025-01-01'))).toBe('cold');
    expect(targetTier(r366, '2024-01-01', T('2025-01-01'))).toBe('hot');
    // And 2100 is not a leap year: Feb 28 2100 is followed by Mar 1.
    expect(targetTier(r1, '2100-02-28', T('2100-03-01T05:00:00Z'))).toBe('hot');
    expect(targetTier(r1, '2100-02-27', T('2100-03-01T05:00:00Z'))).toBe('cold');
  });

  test('coldDays null keeps cold forever; warmDays 0 skips warm; coldDays 0 deletes after warm', () => {
    expect(targetTier(rule('r', 1, 0, null), '2000-01-01', NOW)).toBe('cold');
    expect(targetTier(rule('r', 1, 0, 0), '2026-11-22', NOW)).toBe('deleted');
    expect(targetTier(rule('r', 1, 1, 0), '2026-11-22', NOW)).toBe('warm');
    expect(targetTier(rule('r', 1, 1, 0), '2026-11-21', NOW)).toBe('deleted');
  });
});

describe('planRun: hot data', () => {
  test('every day past hot with hot data moves to warm, up to the boundary and not beyond', () => {
    const r = rule('raw', 30, 365, null);
    const a = planRun(policy(r), [], NOW, extents({ raw: hot('2026-10-20', '2026-11-24') }));
    expect(brief(a)).toEqual(['2026-10-20', '2026-10-21', '2026-10-22', '2026-10-23', '2026-10-24'].map((d) => `move-to-warm raw ${d} +hot`));
    expect(a[0]).toEqual({
      kind: 'move-to-warm',
      rule: 'raw',
      day: '2026-10-20',
      key: 'raw|2026-10-20',
      selector: { measurement: 'm', start: T('2026-10-20'), end: T('2026-10-21') },
      hot: true,
      from: undefined,
      tier: 'warm',
      generation: 1,
      why: 'past hot (30 d)',
    });
  });

  test('a day whose end is one ms past the boundary stays: now at 00:00 vs one ms before', () => {
    const r = rule('raw', 30, 365, null);
    const ext = extents({ raw: hot('2026-10-24', '2026-10-24') });
    expect(brief(planRun(policy(r), [], T('2026-11-24'), ext))).toEqual(['move-to-warm raw 2026-10-24 +hot']);
    expect(planRun(policy(r), [], T('2026-11-24') - 1, ext)).toEqual([]);
  });

  test('hot data only within the hot window: nothing; no extent, null or count 0: nothing', () => {
    const r = rule('raw', 30, 365, null);
    expect(planRun(policy(r), [], NOW, extents({ raw: hot('2026-10-25', '2026-11-24') }))).toEqual([]);
    expect(planRun(policy(r), [], NOW, extents({ raw: null }))).toEqual([]);
    expect(planRun(policy(r), [], NOW, extents({ raw: { ...hot('2026-01-01', '2026-02-01'), count: 0 } }))).toEqual([]);
    expect(planRun(policy(r), [], NOW, extents({}))).toEqual([]);
  });

  test('hot data stops before the boundary: the days up to its max only', () => {
    const r = rule('raw', 30, 365, null);
    expect(brief(planRun(policy(r), [], NOW, extents({ raw: hot('2026-09-01', '2026-09-02') })))).toEqual([
      'move-to-warm raw 2026-09-01 +hot',
      'move-to-warm raw 2026-09-02 +hot',
    ]);
  });

  test('warmDays 0: straight to cold; coldDays null: never deleted', () => {
    const r = rule('alerts', 365, 0, null);
    const a = planRun(policy(r), [], NOW, extents({ alerts: hot('2015-06-01', '2015-06-02') }));
    expect(brief(a)).toEqual(['move-to-cold alerts 2015-06-01 +hot', 'move-to-cold alerts 2015-06-02 +hot']);
    expect(a[0].tier).toBe('cold');
  });

  test('warm and cold both 0: hot data past the end is deleted', () => {
    const r = rule('tmp', 7, 0, 0);
    expect(brief(planRun(policy(r), [], NOW, extents({ tmp: hot('2026-11-15', '2026-11-24') })))).toEqual([
      'delete-hot tmp 2026-11-15 +hot',
      'delete-hot tmp 2026-11-16 +hot',
    ]);
  });

  test('hot days of different ages go to the tier of their age', () => {
    const r = rule('r', 2, 3, 4); // edges: hot 11-22, warm 11-19, end 11-15
    expect(brief(planRun(policy(r), [], NOW, extents({ r: hot('2026-11-13', '2026-11-24') })))).toEqual([
      'delete-hot r 2026-11-13 +hot',
      'delete-hot r 2026-11-14 +hot',
      'move-to-cold r 2026-11-15 +hot',
      'move-to-cold r 2026-11-16 +hot',
      'move-to-cold r 2026-11-17 +hot',
      'move-to-cold r 2026-11-18 +hot',
      'move-to-warm r 2026-11-19 +hot',
      'move-to-warm r 2026-11-20 +hot',
      'move-to-warm r 2026-11-21 +hot',
    ]);
  });

  test('the selector carries the rule measurement and where', () => {
    const r = rule('r1m', 1, 1, null, 'rollup', { level: '1m' });
    const [a] = planRun(policy(r), [], NOW, extents({ r1m: hot('2026-11-22', '2026-11-22') }));
    expect(a.selector).toEqual({ measurement: 'rollup', where: { level: '1m' }, start: T('2026-11-22'), end: T('2026-11-23') });
  });

  test('given days, only those are planned', () => {
    const r = rule('raw', 30, 365, null);
    const ext: HotExtent = { ...hot('2025-01-01', '2026-11-24'), days: ['2026-11-24', '2025-01-01', '2026-03-05', '2026-03-05', '2026-10-24', '2026-10-25'] };
    expect(brief(planRun(policy(r), [], NOW, extents({ raw: ext })))).toEqual([
      'move-to-cold raw 2025-01-01 +hot',
      'move-to-warm raw 2026-03-05 +hot',
      'move-to-warm raw 2026-10-24 +hot',
    ]);
  });
});

describe('planRun: manifest entries', () => {
  const r = rule('r', 2, 3, 4); // hot edge 11-22, warm edge 11-19, end edge 11-15

  test('warm entries past warm move to cold; cold entries past the end are deleted; others stay', () => {
    const entries = [
      entry(r, '2026-11-21', 'warm'), // still warm
      entry(r, '2026-11-18', 'warm'), // past warm
      entry(r, '2026-11-15', 'cold'), // still cold
      entry(r, '2026-11-14', 'cold'), // past end
      entry(r, '2026-11-13', 'warm'), // past end while warm: deleted from warm
      entry(r, '2026-11-01', 'deleted'),
    ];
    const a = planRun(policy(r), entries, NOW, extents({}));
    expect(brief(a)).toEqual(['delete-warm r 2026-11-13', 'delete-cold r 2026-11-14', 'move-to-cold r 2026-11-18']);
    expect(a.map((x) => [x.from, x.tier, x.generation])).toEqual([
      ['warm', 'deleted', 2],
      ['cold', 'deleted', 2],
      ['warm', 'cold', 2],
    ]);
  });

  test('coldDays 0: warm entries past warm are deleted', () => {
    const r0 = rule('r', 30, 335, 0);
    expect(brief(planRun(policy(r0), [entry(r0, '2025-11-23', 'warm'), entry(r0, '2025-11-24', 'warm')], NOW, extents({})))).toEqual([
      'delete-warm r 2025-11-23',
    ]);
  });

  test('coldDays null: cold entries are never deleted', () => {
    const rn = rule('r', 1, 0, null);
    expect(planRun(policy(rn), [entry(rn, '2001-01-01', 'cold')], NOW, extents({}))).toEqual([]);
  });

  test('late hot rows for a day already warm or cold are merged into it (the same tier or colder)', () => {
    const entries = [entry(r, '2026-11-20', 'warm'), entry(r, '2026-11-17', 'cold'), entry(r, '2026-11-16', 'warm')];
    const a = planRun(policy(r), entries, NOW, extents({ r: hot('2026-11-16', '2026-11-20') }));
    expect(a.map((x) => `${x.kind} ${x.day} ${x.hot} ${x.from}>${x.tier} g${x.generation}`)).toEqual([
      'move-to-cold 2026-11-16 true warm>cold g2',
      'move-to-cold 2026-11-17 true cold>cold g2',
      'move-to-cold 2026-11-18 true undefined>cold g1',
      'move-to-warm 2026-11-19 true undefined>warm g1',
      'move-to-warm 2026-11-20 true warm>warm g2',
    ]);
    expect(a[1].why).toBe('late hot rows for a cold day');
  });

  test('a deleted day that gets late hot rows: deleted when past the end, kept per the policy otherwise', () => {
    const entries = [entry(r, '2026-11-10', 'deleted'), entry(r, '2026-11-20', 'deleted')];
    const ext = { ...hot('2026-11-10', '2026-11-20'), days: ['2026-11-10', '2026-11-20'] };
    expect(brief(planRun(policy(r), entries, NOW, extents({ r: ext })))).toEqual(['delete-hot r 2026-11-10 +hot', 'move-to-warm r 2026-11-20 +hot']);
  });

  test('a policy made longer never brings a cold day back to warm', () => {
    const longer = rule('r', 2, 300, null);
    expect(planRun(policy(longer), [entry(longer, '2026-11-01', 'cold')], NOW, extents({}))).toEqual([]);
  });

  test('a warm day past the end with hot rows: one delete-warm that also covers hot', () => {
    expect(brief(planRun(policy(r), [entry(r, '2026-11-13', 'warm')], NOW, extents({ r: hot('2026-11-13', '2026-11-13') })))).toEqual([
      'delete-warm r 2026-11-13 +hot',
    ]);
  });

  test('entries of a day not yet past its hot boundary are left alone (a policy made longer)', () => {
    const longer = rule('r', 60, 0, null);
    expect(planRun(policy(longer), [entry(longer, '2026-11-01', 'cold')], NOW, extents({ r: hot('2026-11-01', '2026-11-24') }))).toEqual([]);
  });
});

describe('planRun: pending, restores, removed rules', () => {
  const r = rule('r', 2, 3, 4);
  const pending = { step: 'copied' as const, file: file('warm/r/2026/x.g2.parquet'), hotRows: 5 };

  test('pending entries come first (resume), whatever their age, then oldest day first', () => {
    const entries = [
      entry(r, '2026-11-20', 'warm', { pending }),
      entry(r, '2026-11-14', 'cold'),
      entry('gone', '2026-11-23', 'cold', { pending }),
    ];
    const a = planRun(policy(r), entries, NOW, extents({ r: hot('2026-11-12', '2026-11-12') }));
    expect(brief(a)).toEqual(['finish-pending r 2026-11-20', 'finish-pending gone 2026-11-23', 'delete-hot r 2026-11-12 +hot', 'delete-cold r 2026-11-14']);
    expect(a[1].selector).toEqual({ measurement: 'm', start: T('2026-11-23'), end: T('2026-11-24') });
  });

  test('an active restore holds the day (no move, even past the end); an ended one is put back to its tier', () => {
    const entries = [
      entry(r, '2026-11-10', 'cold', { restored: { at: NOW - DAY_MS, until: NOW + 1 } }),
      entry(r, '2026-11-11', 'cold', { restored: { at: NOW - DAY_MS, until: NOW } }),
      entry(r, '2026-11-18', 'warm', { restored: { at: NOW - 5 * DAY_MS, until: NOW - DAY_MS } }),
    ];
    const a = planRun(policy(r), entries, NOW, extents({ r: hot('2026-11-10', '2026-11-11') }));
    expect(a.map((x) => `${x.kind} ${x.day} ${x.hot} ${x.tier}`)).toEqual(['remove-restore 2026-11-11 true cold', 'remove-restore 2026-11-18 false warm']);
    expect(a[0].why).toBe(`restore ended ${new Date(NOW).toISOString()}: back to cold`);
  });

  test('a rule removed from the policy: its entries stay where they are', () => {
    expect(planRun(policy(r), [entry('gone', '2001-01-01', 'warm'), entry('gone', '2001-01-02', 'cold')], NOW, extents({ gone: hot('2001-01-01', '2001-01-02') }))).toEqual([]);
  });

  test('restored days do not use up the budget of hot days', () => {
    const r1 = rule('r', 1, 0, null);
    const entries = [1, 2, 3].map((d) => entry(r1, `2026-01-0${d}`, 'cold', { restored: { at: 0, until: NOW + DAY_MS } }));
    const a = planRun(policy(r1), entries, NOW, extents({ r: hot('2026-01-01', '2026-01-10') }), { maxPartitions: 2 });
    expect(brief(a)).toEqual(['move-to-cold r 2026-01-04 +hot', 'move-to-cold r 2026-01-05 +hot']);
  });
});

describe('planRun: bounded and deterministic', () => {
  test('at most maxPartitions (default 100), pending first then the oldest days across rules', () => {
    const a = rule('a', 1, 10, null, 'ma');
    const b = rule('b', 1, 10, null, 'mb');
    const pend = entry(b, '2026-11-20', 'warm', { pending: { step: 'copied', file: file('warm/b/p.parquet'), hotRows: 1 } });
    const ext = extents({ a: hot('2026-01-01', '2026-11-24'), b: hot('2026-01-01', '2026-11-24') });
    const three = planRun(policy(a, b), [pend], NOW, ext, { maxPartitions: 3 });
    expect(brief(three)).toEqual(['finish-pending b 2026-11-20', 'move-to-cold a 2026-01-01 +hot', 'move-to-cold b 2026-01-01 +hot']);
    const all = planRun(policy(a, b), [pend], NOW, ext);
    expect(all).toHaveLength(100);
    // 1 pending + 49 days of both rules (2026-01-01..02-18) + rule a's 2026-02-19.
    expect(brief(all).slice(-2)).toEqual(['move-to-cold b 2026-02-18 +hot', 'move-to-cold a 2026-02-19 +hot']);
    // The same input in another order gives the same plan.
    expect(planRun(policy(b, a), [pend], NOW, new Map([...ext].reverse()))).toEqual(all);
  });

  test('a hot extent reaching back decades is planned from its oldest day without walking all of it', () => {
    const r = rule('r', 1, 0, null);
    const a = planRun(policy(r), [], NOW, extents({ r: hot('1970-01-01', '2026-11-24') }), { maxPartitions: 2 });
    expect(brief(a)).toEqual(['move-to-cold r 1970-01-01 +hot', 'move-to-cold r 1970-01-02 +hot']);
  });

  test('bad options and rules are refused', () => {
    const r = rule('r', 1, 0, null);
    expect(() => planRun(policy(r), [], NOW, extents({}), { maxPartitions: 0 })).toThrow('planRun: maxPartitions must be a whole number >= 1, got 0');
    expect(() => planRun(policy({ ...r, hotDays: 0 }), [], NOW, extents({}))).toThrow('planRun: rule "r" has hotDays 0, must be >= 1');
    expect(() => planRun(policy(r), [], NaN, extents({}))).toThrow('planRun: now must be a ms timestamp, got NaN');
  });

  test('keys are the manifest partition keys', () => {
    const r = rule('r', 1, 0, null);
    const [a] = planRun(policy(r), [], NOW, extents({ r: hot('2026-11-01', '2026-11-01') }));
    expect(a.key).toBe(partitionKey('r', '2026-11-01'));
  });
});
