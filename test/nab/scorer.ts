/**
 * A NAB scorer written from the published method (Lavin & Ahmad 2015, and the
 * rules of the official NAB code; see ../shared/datasets/nab/README.md):
 *
 * - The first 15% of each file's rows, at most 750 (floor(0.15 n), capped at
 *   0.15 * 5000), are probationary: not scored at all.
 * - A window is entered on the row whose timestamp equals its start and left
 *   after the row whose timestamp equals its end. Each row inside window w
 *   (width W rows, right edge row R) is worth, if it is the first detection,
 *   A_TP * S(-(R - i + 1) / W) / S(-1), where S(x) = 2 / (1 + e^(5x)) - 1 and
 *   S(x) = -1 for x > 3. A window with no detection costs A_FN.
 * - A detection outside every window costs A_FP * S(|i - R'| / (W' - 1)),
 *   R' and W' those of the last window left before it; with no window before
 *   it, the full -A_FP.
 * - A detection is a row whose score is >= the threshold. ONE threshold for
 *   the whole corpus per profile: the one that maximises the corpus total
 *   (swept over every distinct score, highest first; on a tie the higher
 *   threshold wins, like the official optimiser's stable sort).
 * - Normalised score = 100 * (raw - null) / (perfect - null), null being the
 *   detector that never detects (every window missed: -A_FN per window) and
 *   perfect A_TP per window.
 *
 * About the null baseline. The official runner does not score a null detector
 * on the corpus it is given: it reads the null detector's stock results
 * (results/null/*_scores.csv, all 58 files of NAB: 116 windows, so -116 * A_FN),
 * while `perfect` counts the windows of the windows file it is given. The
 * published figures for the 34-file development subset (windowedGaussian
 * 52.79, numenta 74.49, ...) were produced that way: perfect = 72, null =
 * -116 * A_FN. `NAB_OFFICIAL_NULL_WINDOWS` reproduces them; normalising with
 * the subset's own null (-72 * A_FN) gives lower numbers for every detector
 * (numenta 66.69) but the same ranking, since both are affine in the raw score.
 */

export interface CostMatrix {
  tpWeight: number;
  fpWeight: number;
  fnWeight: number;
}

export type ProfileName = 'standard' | 'reward_low_FP_rate' | 'reward_low_FN_rate';

/** NAB's config/profiles.json (tnWeight is unused by the scorer). */
export const PROFILES: Readonly<Record<ProfileName, CostMatrix>> = {
  standard: { tpWeight: 1, fpWeight: 0.11, fnWeight: 1 },
  reward_low_FP_rate: { tpWeight: 1, fpWeight: 0.22, fnWeight: 1 },
  reward_low_FN_rate: { tpWeight: 1, fpWeight: 0.11, fnWeight: 2 },
};

export const PROFILE_NAMES: readonly ProfileName[] = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'];

export const PROBATION_PERCENT = 0.15;

/** Windows in the full NAB corpus (58 files): the official null baseline is -116 * A_FN whatever subset is scored. */
export const NAB_OFFICIAL_NULL_WINDOWS = 116;

export interface NormaliseOptions {
  /**
   * Windows the null detector misses: the null score is -nullWindows * A_FN.
   * Default: the windows of the scored files (a self-consistent normalisation);
   * NAB_OFFICIAL_NULL_WINDOWS reproduces the official runner's figures.
   */
  nullWindows?: number;
}

/** Rows at the start of a file that are not scored. */
export function probationLength(rows: number, percent = PROBATION_PERCENT): number {
  return Math.min(Math.floor(percent * rows), percent * 5000);
}

/** NAB's scaled sigmoid: about +1 at relative position -1, 0 at 0, about -1 at +1, exactly -1 past 3. */
export function scaledSigmoid(x: number): number {
  if (x > 3) return -1;
  return 2 / (1 + Math.exp(5 * x)) - 1;
}

const MAX_TP = scaledSigmoid(-1);

/**
 * Parses a NAB timestamp ("2014-04-10 07:15:00" or with ".000000") to ms since
 * the epoch, read as UTC. Returns NaN when it is not one.
 */
export function parseNabTimestamp(s: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(s.trim());
  if (!m) return NaN;
  const frac = m[7] === undefined ? 0 : Number(`0.${m[7]}`) * 1000;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + Math.round(frac);
}

/** One file's detector output, ready to score. */
export interface ScoredFile {
  /** Relative path, e.g. "realKnownCause/nyc_taxi.csv". */
  name: string;
  /** Row timestamps (ms epoch), in file order. */
  timestamps: ArrayLike<number>;
  /** Anomaly score per row. */
  scores: ArrayLike<number>;
  /** Windows as [start, end] timestamps (ms epoch), in time order. */
  windows: ReadonlyArray<readonly [number, number]>;
}

/**
 * Per-row scoring data of one file, independent of the cost profile:
 * `window` is the window index (within the file) for rows inside one, -1 for
 * rows outside; `weight` is the unweighted row value (TP sigmoid / S(-1) inside,
 * the FP sigmoid, <= 0, outside); probationary rows are dropped.
 */
export interface PreparedFile {
  name: string;
  rows: number;
  probation: number;
  /** Number of windows with at least one scored row. */
  windowCount: number;
  /** Scored rows only. */
  index: Int32Array;
  score: Float64Array;
  window: Int32Array;
  weight: Float64Array;
}

export function prepareFile(f: ScoredFile, probationPercent = PROBATION_PERCENT): PreparedFile {
  const n = f.timestamps.length;
  if (f.scores.length !== n) throw new Error(`${f.name}: ${f.scores.length} scores for ${n} rows`);
  const probation = probationLength(n, probationPercent);
  const idxOf = new Map<number, number>();
  for (let i = 0; i < n; i++) if (!idxOf.has(f.timestamps[i])) idxOf.set(f.timestamps[i], i);

  const pending = f.windows.slice();
  let winNo = -1;
  let cur = -1; // index in f.windows of the window we are in, or -1
  let curRight = -1;
  let curWidth = 0;
  let prevRight = -1;
  let prevWidth = 0;
  const used = new Set<number>();

  const index: number[] = [];
  const score: number[] = [];
  const window: number[] = [];
  const weight: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = f.timestamps[i];
    if (pending.length > 0 && t === pending[0][0]) {
      const w = pending.shift() as readonly [number, number];
      const right = idxOf.get(w[1]);
      const left = idxOf.get(w[0]) as number;
      if (right === undefined) throw new Error(`${f.name}: window end ${new Date(w[1]).toISOString()} is not a row timestamp`);
      winNo++;
      cur = winNo;
      curRight = right;
      curWidth = right - left + 1;
    }
    let wgt: number;
    if (cur >= 0) {
      wgt = scaledSigmoid(-(curRight - i + 1) / curWidth) / MAX_TP;
    } else if (prevRight < 0) {
      wgt = -1;
    } else {
      wgt = scaledSigmoid(Math.abs(prevRight - i) / (prevWidth - 1));
    }
    if (i >= probation) {
      index.push(i);
      score.push(f.scores[i]);
      window.push(cur);
      weight.push(wgt);
      if (cur >= 0) used.add(cur);
    }
    if (cur >= 0 && t === f.windows[cur][1]) {
      prevRight = i;
      prevWidth = curWidth;
      cur = -1;
    }
  }
  return {
    name: f.name,
    rows: n,
    probation,
    windowCount: used.size,
    index: Int32Array.from(index),
    score: Float64Array.from(score),
    window: Int32Array.from(window),
    weight: Float64Array.from(weight),
  };
}

export interface Counts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface ThresholdScore extends Counts {
  threshold: number;
  score: number;
}

export interface FileScore extends ThresholdScore {
  /** Windows with at least one detection. */
  windowsHit: number;
  /** Scored windows. */
  windows: number;
}

/** Raw score and counts of one file at one threshold (detections: score >= threshold). */
export function scoreFileAt(p: PreparedFile, cost: CostMatrix, threshold: number): FileScore {
  const best = new Map<number, number>();
  let fpScore = 0;
  const c: Counts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let k = 0; k < p.score.length; k++) {
    const w = p.window[k];
    const hit = p.score[k] >= threshold;
    if (w >= 0) {
      if (hit) {
        c.tp++;
        const v = p.weight[k] * cost.tpWeight;
        const b = best.get(w);
        if (b === undefined || v > b) best.set(w, v);
      } else c.fn++;
    } else if (hit) {
      c.fp++;
      fpScore += p.weight[k] * cost.fpWeight;
    } else c.tn++;
  }
  let total = fpScore;
  const seen = new Set<number>();
  for (let k = 0; k < p.window.length; k++) {
    const w = p.window[k];
    if (w < 0 || seen.has(w)) continue;
    seen.add(w);
    const b = best.get(w);
    total += b === undefined ? -cost.fnWeight : b;
  }
  return { threshold, score: total, ...c, windowsHit: best.size, windows: seen.size };
}

/**
 * The corpus score at every distinct threshold, highest first, starting with
 * the threshold that detects nothing (1.1). Each entry's score counts the rows
 * with score >= its threshold.
 */
export function sweepCorpus(files: readonly PreparedFile[], cost: CostMatrix): ThresholdScore[] {
  let total = 0;
  for (const f of files) total += f.score.length;
  const sc = new Float64Array(total);
  const wgt = new Float64Array(total);
  const win = new Int32Array(total); // global window id, -1 outside
  const order = new Uint32Array(total);
  let windows = 0;
  let o = 0;
  const counts: Counts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (const f of files) {
    const base = windows;
    let maxW = -1;
    for (let k = 0; k < f.score.length; k++, o++) {
      sc[o] = f.score[k];
      wgt[o] = f.weight[k];
      const w = f.window[k];
      win[o] = w < 0 ? -1 : base + w;
      if (w > maxW) maxW = w;
      if (w < 0) counts.tn++;
      else counts.fn++;
    }
    windows += maxW + 1;
  }
  for (let i = 0; i < total; i++) order[i] = i;
  order.sort((a, b) => sc[b] - sc[a] || a - b);

  const best = new Float64Array(windows).fill(-Infinity);
  const present = new Uint8Array(windows);
  for (let i = 0; i < total; i++) if (win[i] >= 0) present[win[i]] = 1;
  let nWindows = 0;
  for (let w = 0; w < windows; w++) nWindows += present[w];
  // Running score: fp part plus, per window, -fnWeight until detected, then its best TP value.
  let score = -nWindows * cost.fnWeight;
  const out: ThresholdScore[] = [];
  let cur = 1.1;
  for (let j = 0; j < total; j++) {
    const i = order[j];
    if (sc[i] !== cur) {
      out.push({ threshold: cur, score, ...counts });
      cur = sc[i];
    }
    const w = win[i];
    if (w >= 0) {
      counts.tp++;
      counts.fn--;
      const v = wgt[i] * cost.tpWeight;
      if (best[w] === -Infinity) {
        score += cost.fnWeight + v;
        best[w] = v;
      } else if (v > best[w]) {
        score += v - best[w];
        best[w] = v;
      }
    } else {
      counts.fp++;
      counts.tn--;
      score += wgt[i] * cost.fpWeight;
    }
  }
  out.push({ threshold: cur, score, ...counts });
  return out;
}

/** The best threshold for the corpus (ties: the higher threshold). */
export function optimizeThreshold(files: readonly PreparedFile[], cost: CostMatrix): ThresholdScore {
  const sweep = sweepCorpus(files, cost);
  let best = sweep[0];
  for (const s of sweep) if (s.score > best.score) best = s;
  return best;
}

export interface ProfileResult {
  profile: ProfileName;
  threshold: number;
  /** Sum of the per-file raw scores at the threshold. */
  raw: number;
  /** Score of the null detector (no detection). */
  nullScore: number;
  /** Score of the perfect detector (A_TP per window). */
  perfect: number;
  /** 100 * (raw - null) / (perfect - null). */
  normalised: number;
  counts: Counts;
  perFile: Array<{ name: string; score: number; windowsHit: number; windows: number } & Counts>;
  /** Windows with at least one detection, over the corpus. */
  windowsHit: number;
}

export function normalise(raw: number, nullScore: number, perfect: number): number {
  return (100 * (raw - nullScore)) / (perfect - nullScore);
}

/** Optimises the threshold over the corpus, then scores each file at it and normalises. */
export function scoreCorpus(
  files: readonly PreparedFile[],
  profile: ProfileName,
  opts: NormaliseOptions = {},
  cost: CostMatrix = PROFILES[profile],
): ProfileResult {
  const { threshold } = optimizeThreshold(files, cost);
  let raw = 0;
  let nWindows = 0;
  const counts: Counts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  const perFile: ProfileResult['perFile'] = [];
  let windowsHit = 0;
  for (const f of files) {
    const r = scoreFileAt(f, cost, threshold);
    raw += r.score;
    nWindows += f.windowCount;
    counts.tp += r.tp;
    counts.fp += r.fp;
    counts.tn += r.tn;
    counts.fn += r.fn;
    windowsHit += r.windowsHit;
    perFile.push({ name: f.name, score: r.score, tp: r.tp, fp: r.fp, tn: r.tn, fn: r.fn, windowsHit: r.windowsHit, windows: r.windows });
  }
  const nullScore = -(opts.nullWindows ?? nWindows) * cost.fnWeight;
  const perfect = nWindows * cost.tpWeight;
  return { profile, threshold, raw, nullScore, perfect, normalised: normalise(raw, nullScore, perfect), counts, perFile, windowsHit };
}

/** All three profiles. */
export function scoreAllProfiles(files: readonly PreparedFile[], opts: NormaliseOptions = {}): Record<ProfileName, ProfileResult> {
  return {
    standard: scoreCorpus(files, 'standard', opts),
    reward_low_FP_rate: scoreCorpus(files, 'reward_low_FP_rate', opts),
    reward_low_FN_rate: scoreCorpus(files, 'reward_low_FN_rate', opts),
  };
}
