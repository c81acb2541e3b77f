/**
 * The retention planner: from the policy, the manifest's entries, the time and the extent of each
 * rule's data in the hot store, the list of partition steps a run should take. Pure and
 * deterministic (no clock, no I/O): the executor (run.ts) does the steps, updating the manifest
 * after each, and can plan again until nothing is left (a partition that needs several steps, e.g.
 * a restore that ended on a day now past its warm boundary, gets one step per plan).
 *
 * Ages are whole UTC days. With T = 00:00 UTC of `now`'s day, a day D (its end = dayStart(D) + 1 d):
 *   past hot  when end <= T - hotDays d
 *   past warm when end <= T - (hotDays + warmDays) d              (warmDays 0: the same as past hot)
 *   past end  when end <= T - (hotDays + warmDays + coldDays) d   (never when coldDays is null)
 * so the day's "target tier" is hot (not past hot: today and later always are), warm, cold or deleted.
 * A day is never moved to a hotter tier than the one it is in (a longer policy does not bring cold
 * files back to warm); it is moved to a colder one as it ages.
 *
 * Actions, at most one per partition (rule, day); `hot` = the hot store may hold rows of the day
 * (the day is inside the rule's hot extent): the executor counts them and includes them:
 *   finish-pending  the entry has `pending` (file written and verified, hot rows not yet deleted):
 *                   delete the hot rows (expecting pending.hotRows), make pending.file the entry's
 *                   file, remove pending.previous. Always first, whatever the policy says now.
 *   remove-restore  the entry's restore ended (restored.until <= now): the day's hot rows go back to
 *                   the entry's tier (`tier`): rewrite its file with them when hot holds rows the file
 *                   lacks, else delete them; clear `restored`. While a restore runs (until > now) the
 *                   partition is left alone entirely (hot is authoritative for it).
 *   move-to-warm    target warm, hot may hold rows: write generation `generation` of the warm file from
 *                   the current warm file (when `from` is warm) plus the hot rows, then delete those.
 *   move-to-cold    target cold, and hot may hold rows or the current file is warm: write the cold
 *                   file (ZSTD max) from the current file (warm or cold, `from`) plus the hot rows,
 *                   then delete the hot rows and the previous file.
 *   delete-hot      target deleted, no current file, hot may hold rows: delete them (no copy).
 *   delete-warm     target deleted, current file warm: delete it (and the hot rows when `hot`).
 *   delete-cold     target deleted, current file cold: delete it (and the hot rows when `hot`).
 * Entries of rules no longer in the policy only get finish-pending and remove-restore (their data is
 * never deleted because a rule went away).
 *
 * Order: finish-pending first, then oldest day first (ties by rule name), at most maxPartitions.
 *
 * Hot extents: Map rule name -> { min, max, count } or null (nothing hot). Without `days`, every day
 * from min's day to the last day past hot (or max's day) is a candidate: days without rows cost the
 * executor a count. Give `days` (the UTC days holding hot rows) to plan only those: needed when a
 * long-lived restore keeps `min` far in the past.
 */
import { DAY_MS, dayOf, dayStart, partitionKey, startOfUtcDay, type PartitionEntry, type Tier } from './manifest';
import { ruleSelector, type PartitionSelector, type RetentionPolicy, type RetentionRule } from './policy';

export type ActionKind = 'finish-pending' | 'remove-restore' | 'move-to-warm' | 'move-to-cold' | 'delete-hot' | 'delete-warm' | 'delete-cold';

export interface HotExtent {
  min: number;
  max: number;
  count: number;
  /** Optional: the UTC days (YYYY-MM-DD) that hold hot rows; when given, only these are planned. */
  days?: readonly string[];
}

export interface Action {
  kind: ActionKind;
  rule: string;
  day: string;
  /** partitionKey(rule, day). */
  key: string;
  /** The day's data: the entry's measurement and where for finish-pending and remove-restore, else the rule's. */
  selector: PartitionSelector;
  /** The hot store may hold rows of this day (count them). */
  hot: boolean;
  /** The entry's tier before the step (undefined: no entry yet). */
  from?: Tier;
  /** The tier after the step (remove-restore: the entry's tier). */
  tier: Tier;
  /** Generation of a file this step writes: the entry's generation + 1 (1 for a new partition). */
  generation: number;
  /** Why, for logs and the entry's history. */
  why: string;
}

export interface PlanOptions {
  /** At most this many actions (default 100). */
  maxPartitions?: number;
}

export const DEFAULT_MAX_PARTITIONS = 100;

type Target = 'hot' | Tier;

const RANK: Record<Target, number> = { hot: 0, warm: 1, cold: 2, deleted: 3 };

/** The tier a rule's day belongs in at `now` (see the header). */
export function targetTier(rule: RetentionRule, day: string, now: number): Target {
  const end = dayStart(day) + DAY_MS;
  const today = startOfUtcDay(now);
  const hotEdge = today - rule.hotDays * DAY_MS;
  if (end > hotEdge) return 'hot';
  const warmEdge = hotEdge - rule.warmDays * DAY_MS;
  if (end > warmEdge) return 'warm';
  if (rule.coldDays === null) return 'cold';
  return end > warmEdge - rule.coldDays * DAY_MS ? 'cold' : 'deleted';
}

/** The last day past hot for a rule at `now`: 00:00 of today - hotDays - 1 day. */
function lastPastHotDay(rule: RetentionRule, now: number): number {
  return startOfUtcDay(now) - (rule.hotDays + 1) * DAY_MS;
}

function entrySelector(e: PartitionEntry): PartitionSelector {
  const sel: PartitionSelector = { measurement: e.measurement, start: e.start, end: e.end };
  if (e.where && Object.keys(e.where).length > 0) sel.where = { ...e.where };
  return sel;
}

export function planRun(
  policy: RetentionPolicy,
  entries: Iterable<Readonly<PartitionEntry>>,
  now: number,
  hotExtents: ReadonlyMap<string, HotExtent | null>,
  opts: PlanOptions = {},
): Action[] {
  if (!Number.isFinite(now)) throw new RangeError(`planRun: now must be a ms timestamp, got ${now}`);
  const max = opts.maxPartitions ?? DEFAULT_MAX_PARTITIONS;
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`planRun: maxPartitions must be a whole number >= 1, got ${max}`);
  const rules = new Map<string, RetentionRule>();
  for (const r of policy.rules) {
    // The one invariant the planner relies on (parsePolicy guarantees it): today is never past hot.
    if (!Number.isInteger(r.hotDays) || r.hotDays < 1) throw new RangeError(`planRun: rule ${JSON.stringify(r.name)} has hotDays ${r.hotDays}, must be >= 1`);
    rules.set(r.name, r);
  }
  const byKey = new Map<string, Readonly<PartitionEntry>>();
  for (const e of entries) byKey.set(partitionKey(e.rule, e.day), e);

  const actions: Action[] = [];
  const planned = new Set<string>();

  // Decides the action for one partition; `hot` = hot may hold rows of the day.
  const consider = (rule: RetentionRule | undefined, ruleName: string, day: string, entry: Readonly<PartitionEntry> | undefined, hot: boolean): void => {
    const key = partitionKey(ruleName, day);
    if (planned.has(key)) return;
    planned.add(key);
    const generation = (entry?.generation ?? 0) + 1;
    const base = { rule: ruleName, day, key, hot, from: entry?.tier, generation };
    if (entry?.pending) {
      actions.push({ ...base, kind: 'finish-pending', selector: entrySelector(entry), tier: entry.tier, why: 'a move stopped after its file was written: finish it' });
      return;
    }
    if (entry?.restored && entry.tier !== 'deleted') {
      if (entry.restored.until > now) return;
      actions.push({ ...base, kind: 'remove-restore', selector: entrySelector(entry), tier: entry.tier, why: `restore ended ${new Date(entry.restored.until).toISOString()}: back to ${entry.tier}` });
      return;
    }
    if (!rule) return;
    const age = targetTier(rule, day, now);
    if (age === 'hot') return;
    const current: Tier | undefined = entry && entry.tier !== 'deleted' ? entry.tier : undefined;
    const target: Tier = current !== undefined && RANK[current] > RANK[age] ? current : age;
    const selector = ruleSelector(rule, dayStart(day), dayStart(day) + DAY_MS);
    const push = (kind: ActionKind, why: string): void => {
      actions.push({ ...base, kind, selector, tier: target, why });
    };
    if (target === 'warm') {
      if (hot) push('move-to-warm', current === 'warm' ? 'late hot rows for a warm day' : `past hot (${rule.hotDays} d)`);
    } else if (target === 'cold') {
      if (current === 'warm') push('move-to-cold', `past warm (${rule.hotDays + rule.warmDays} d)`);
      else if (hot) push('move-to-cold', current === 'cold' ? 'late hot rows for a cold day' : `past hot (${rule.hotDays} d), no warm tier`);
    } else {
      const why = `past the end (${rule.hotDays + rule.warmDays + (rule.coldDays ?? 0)} d)`;
      if (current === 'warm') push('delete-warm', why);
      else if (current === 'cold') push('delete-cold', why);
      else if (hot) push('delete-hot', why);
    }
  };

  // Hot days of each rule: up to maxPartitions candidates per rule (later days of a rule sort after them).
  const hotDays = new Map<string, Set<string>>();
  for (const rule of policy.rules) {
    const ext = hotExtents.get(rule.name);
    if (!ext || ext.count <= 0 || !Number.isFinite(ext.min) || !Number.isFinite(ext.max)) continue;
    const last = Math.min(startOfUtcDay(ext.max), lastPastHotDay(rule, now));
    const first = Math.max(startOfUtcDay(ext.min), 0);
    const days = new Set<string>();
    if (ext.days) {
      const sorted = [...new Set(ext.days)].map(dayStart).filter((t) => t >= first && t <= last).sort((a, b) => a - b);
      for (const t of sorted) days.add(dayOf(t));
    } else {
      let n = 0;
      for (let t = first; t <= last && n < max; t += DAY_MS) {
        const day = dayOf(t);
        const e = byKey.get(partitionKey(rule.name, day));
        // Days an active restore holds are not candidates and do not use up the budget.
        if (!(e?.restored && e.restored.until > now && !e.pending)) n++;
        days.add(day);
      }
    }
    hotDays.set(rule.name, days);
  }

  for (const e of byKey.values()) {
    consider(rules.get(e.rule), e.rule, e.day, e, hotDays.get(e.rule)?.has(e.day) ?? false);
  }
  for (const [name, days] of hotDays) {
    for (const day of days) consider(rules.get(name), name, day, undefined, true);
  }

  actions.sort((a, b) => {
    const pa = a.kind === 'finish-pending' ? 0 : 1;
    const pb = b.kind === 'finish-pending' ? 0 : 1;
    if (pa !== pb) return pa - pb;
    if (a.day !== b.day) return a.day < b.day ? -1 : 1;
    return a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0;
  });
  return actions.slice(0, max);
}
