/**
 * A tiny benchmark harness, no dependencies. Each case is warmed up (time
 * based, so V8 has optimised it), then timed over several rounds of the same
 * op count with process.hrtime.bigint(), interleaved with the other cases'
 * rounds; the median round is the result and the fastest/slowest rounds are
 * the spread. Every run(n) returns a number
 * derived from its results; the harness adds it to a checksum that run.ts
 * prints at the end, so V8 cannot throw the measured work away.
 */

/** A throughput a case must reach; checked on every run, enforced with --check. */
export interface Target {
  /** Minimum per second: ops/s, or items/s when `per` is 'item'. */
  min: number;
  per: 'op' | 'item';
  /** What is counted, for the PASS/FAIL line, e.g. "validations". */
  unit: string;
}

export interface BenchCase {
  /** Group, e.g. "validator"; the case id is `${group}/${name}`. */
  group: string;
  /** Short, unique within the group. */
  name: string;
  /** Items handled by one op (e.g. 100 for a batch of 100). Default 1. */
  itemsPerOp?: number;
  /** Id (`group/name`) of a case to compare with: the table shows this case's ns/op as a multiple of it. */
  baseline?: string;
  target?: Target;
  /** Builds fixtures and checks they exercise the intended path (throw if not). Called once, untimed. */
  setup?(): void;
  /**
   * Does n ops and returns a number derived from every result (a count, a sum
   * of lengths...). Keep the loop inside run() so the harness call is not timed per op.
   */
  run(n: number): number;
}

export interface RunSettings {
  /** Warm-up time per case. */
  warmupMs: number;
  /** Target duration of one timed round. */
  roundMs: number;
  /** Timed rounds per case (odd, so the median is a real round). */
  rounds: number;
}

export const FULL: RunSettings = { warmupMs: 400, roundMs: 100, rounds: 15 };
export const QUICK: RunSettings = { warmupMs: 60, roundMs: 20, rounds: 3 };

export interface CaseResult {
  id: string;
  group: string;
  name: string;
  itemsPerOp: number;
  /** Ops per timed round (calibrated from the end of warm-up). */
  opsPerRound: number;
  /** ops/s of each round, in the order run. */
  roundOpsPerSec: number[];
  medianOpsPerSec: number;
  minOpsPerSec: number;
  maxOpsPerSec: number;
  /** 1e9 / median ops/s. */
  nsPerOp: number;
  /** (max - min) / median, in percent. */
  spreadPct: number;
  itemsPerSec: number;
  baseline?: string;
  /** ns/op ÷ baseline ns/op, when the baseline ran. */
  vsBaseline?: number;
  checksum: number;
}

const NS_PER_MS = 1_000_000;

function elapsedNs(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0);
}

interface CaseState {
  c: BenchCase;
  opsPerRound: number;
  roundOpsPerSec: number[];
  checksum: number;
}

/** Setup, then warm-up in chunks that double until each takes ~10 ms, for at least warmupMs. */
function warmUp(c: BenchCase, s: RunSettings): CaseState {
  c.setup?.();
  let checksum = 0;
  const warmStart = process.hrtime.bigint();
  let n = 1;
  let nsPerOp: number;
  for (;;) {
    const t0 = process.hrtime.bigint();
    checksum += c.run(n);
    const dt = elapsedNs(t0);
    nsPerOp = Math.max(dt, 1) / n;
    if (elapsedNs(warmStart) >= s.warmupMs * NS_PER_MS && dt >= NS_PER_MS) break;
    if (dt < 10 * NS_PER_MS) n *= 2;
  }
  // The last chunk's rate (code now optimised) sizes the timed rounds.
  const opsPerRound = Math.max(1, Math.round((s.roundMs * NS_PER_MS) / nsPerOp));
  return { c, opsPerRound, roundOpsPerSec: [], checksum };
}

/**
 * Runs the cases: each is set up and warmed up in turn, then the timed rounds
 * go round-robin (round 1 of every case, then round 2...), so a burst of load
 * from elsewhere on a shared machine lands on a round of several cases rather
 * than on all rounds of one; the median then drops it. `beforeRound` runs
 * untimed before every timed round (run.ts forces a GC there).
 */
export function runCases(
  cases: readonly BenchCase[],
  s: RunSettings,
  beforeRound: () => void = () => undefined,
  progress: (msg: string) => void = () => undefined,
): CaseResult[] {
  const states: CaseState[] = [];
  for (const c of cases) {
    beforeRound();
    const st = warmUp(c, s);
    states.push(st);
    progress(`warmed ${caseId(c)}: ${st.opsPerRound} ops/round`);
  }
  // One untimed pass in the same order as the rounds: code that a later case's
  // warm-up deoptimised (shared engine functions) is optimised again before timing.
  for (const st of states) st.checksum += st.c.run(st.opsPerRound);

  for (let r = 0; r < s.rounds; r++) {
    for (const st of states) {
      beforeRound();
      const t0 = process.hrtime.bigint();
      st.checksum += st.c.run(st.opsPerRound);
      const dt = Math.max(elapsedNs(t0), 1);
      st.roundOpsPerSec.push((st.opsPerRound * 1e9) / dt);
    }
    progress(`round ${r + 1}/${s.rounds}`);
  }
  return states.map(summarise);
}

function summarise(st: CaseState): CaseResult {
  const { c, roundOpsPerSec } = st;
  const sorted = [...roundOpsPerSec].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  const min = sorted[0];
  const max = sorted[sorted.length - 1];
  const itemsPerOp = c.itemsPerOp ?? 1;
  return {
    id: caseId(c),
    group: c.group,
    name: c.name,
    itemsPerOp,
    opsPerRound: st.opsPerRound,
    roundOpsPerSec,
    medianOpsPerSec: median,
    minOpsPerSec: min,
    maxOpsPerSec: max,
    nsPerOp: 1e9 / median,
    spreadPct: ((max - min) / median) * 100,
    itemsPerSec: median * itemsPerOp,
    baseline: c.baseline,
    checksum: st.checksum,
  };
}

export function caseId(c: Pick<BenchCase, 'group' | 'name'>): string {
  return `${c.group}/${c.name}`;
}

/** Fills in vsBaseline for cases whose baseline ran in the same process. */
export function linkBaselines(results: CaseResult[]): void {
  const byId = new Map(results.map((r) => [r.id, r]));
  for (const r of results) {
    const b = r.baseline === undefined ? undefined : byId.get(r.baseline);
    if (b) r.vsBaseline = r.nsPerOp / b.nsPerOp;
  }
}

// ---- formatting ---------------------------------------------------------

/** 1234567.8 -> "1,234,568"; small values keep a decimal or two. */
export function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** 1234567 -> "1.23M", 45678 -> "45.7k". */
export function fmtShort(v: number): string {
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)}G`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(1);
}

export function table(headers: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (rightAlign[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), sep, ...rows.map(line)].join('\n');
}

export function resultsTable(results: CaseResult[]): string {
  const headers = ['case', 'ops/s', 'ns/op', 'items/s', 'rounds min..max ops/s', 'spread', 'vs baseline'];
  const rows = results.map((r) => [
    r.id,
    fmtNum(r.medianOpsPerSec),
    fmtNum(r.nsPerOp),
    r.itemsPerOp === 1 ? '' : fmtNum(r.itemsPerSec),
    `${fmtShort(r.minOpsPerSec)}..${fmtShort(r.maxOpsPerSec)} (${r.roundOpsPerSec.length})`,
    `${r.spreadPct.toFixed(1)}%`,
    r.vsBaseline === undefined ? '' : `${r.vsBaseline.toFixed(2)}x ${r.baseline}`,
  ]);
  return table(headers, rows, [false, true, true, true, true, true, false]);
}
