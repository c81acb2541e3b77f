import * as fs from 'node:fs';
import * as path from 'node:path';
import { prepareResults, readWindows } from '../nab/corpus';
import {
  NAB_OFFICIAL_NULL_WINDOWS,
  PROFILES,
  optimizeThreshold,
  parseNabTimestamp,
  prepareFile,
  probationLength,
  scaledSigmoid,
  scoreAllProfiles,
  scoreCorpus,
  scoreFileAt,
  sweepCorpus,
  type ScoredFile,
} from '../nab/scorer';

const STEP = 300_000;
const T0 = Date.UTC(2014, 3, 1);

/** A file of `rows` rows, 5 minutes apart, with windows given as [first row, last row]. */
function file(rows: number, windows: Array<[number, number]>, detections: number[] = [], name = 'cat/f.csv'): ScoredFile {
  const timestamps = Array.from({ length: rows }, (_, i) => T0 + i * STEP);
  const scores = new Array<number>(rows).fill(0);
  for (const d of detections) scores[d] = 1;
  return { name, timestamps, scores, windows: windows.map(([a, b]) => [timestamps[a], timestamps[b]] as const) };
}

const std = PROFILES.standard;
const S = (x: number): number => 2 / (1 + Math.exp(5 * x)) - 1;

describe('NAB scorer: the rules, on hand-computed cases', () => {
  it('scaled sigmoid and probationary length', () => {
    expect(scaledSigmoid(-1)).toBeCloseTo(0.98661, 5);
    expect(scaledSigmoid(-0.5)).toBeCloseTo(0.84828, 5);
    expect(scaledSigmoid(0)).toBe(0);
    expect(scaledSigmoid(1)).toBeCloseTo(-0.98661, 5);
    expect(scaledSigmoid(3.01)).toBe(-1);
    expect(probationLength(1000)).toBe(150);
    expect(probationLength(4032)).toBe(604);
    expect(probationLength(5000)).toBe(750);
    expect(probationLength(22695)).toBe(750);
  });

  it('parses NAB timestamps as UTC, with or without microseconds', () => {
    expect(parseNabTimestamp('2014-04-10 07:15:00')).toBe(Date.UTC(2014, 3, 10, 7, 15));
    expect(parseNabTimestamp('2014-04-10 07:15:00.000000')).toBe(Date.UTC(2014, 3, 10, 7, 15));
    expect(parseNabTimestamp('yesterday')).toBeNaN();
  });

  // 100 rows: probation 15 rows; one window, rows 40..49 (width 10).
  const W: Array<[number, number]> = [[40, 49]];

  it('a missed window costs A_FN; no window and no detection scores 0', () => {
    expect(scoreFileAt(prepareFile(file(100, W)), std, 0.5).score).toBe(-1);
    expect(scoreFileAt(prepareFile(file(100, [])), std, 0.5).score).toBe(0);
    expect(scoreFileAt(prepareFile(file(100, W)), PROFILES.reward_low_FN_rate, 0.5).score).toBe(-2);
  });

  it('only the first detection in a window counts, rewarded by its position', () => {
    // At the window's first row: S(-(49-40+1)/10) / S(-1) = 1.
    expect(scoreFileAt(prepareFile(file(100, W, [40])), std, 0.5).score).toBeCloseTo(1, 12);
    // At its last row: S(-1/10) / S(-1) = 0.24492 / 0.98661.
    expect(scoreFileAt(prepareFile(file(100, W, [49])), std, 0.5).score).toBeCloseTo(S(-0.1) / S(-1), 12);
    expect(S(-0.1) / S(-1)).toBeCloseTo(0.248242, 5);
    // Two detections: the earlier one (row 45: S(-0.5)/S(-1)) is the one rewarded, the later is free.
    const r = scoreFileAt(prepareFile(file(100, W, [45, 48])), std, 0.5);
    expect(r.score).toBeCloseTo(S(-0.5) / S(-1), 12);
    expect(r.tp).toBe(2);
    expect(r.windowsHit).toBe(1);
  });

  it('false positives: full A_FP before any window, less just after a window', () => {
    // Row 20, before the window: -0.11, plus the missed window.
    expect(scoreFileAt(prepareFile(file(100, W, [20])), std, 0.5).score).toBeCloseTo(-1.11, 12);
    // Row 54, 5 rows past the window's end: 0.11 * S(5 / (10 - 1)) = 0.11 * -0.88288, plus the missed window.
    expect(scoreFileAt(prepareFile(file(100, W, [54])), std, 0.5).score).toBeCloseTo(-1 + 0.11 * S(5 / 9), 12);
    expect(0.11 * S(5 / 9)).toBeCloseTo(-0.097117, 5);
    // Far past it (more than 3 widths): the full -0.11.
    expect(scoreFileAt(prepareFile(file(100, W, [90])), std, 0.5).score).toBeCloseTo(-1.11, 12);
    // A reward_low_FP_rate FP costs twice as much.
    expect(scoreFileAt(prepareFile(file(100, W, [20])), PROFILES.reward_low_FP_rate, 0.5).score).toBeCloseTo(-1.22, 12);
  });

  it('detections in the probationary period are not scored', () => {
    const r = scoreFileAt(prepareFile(file(100, W, [3, 14])), std, 0.5);
    expect(r.score).toBe(-1);
    expect(r.fp).toBe(0);
    // Row 15 is the first scored row.
    expect(scoreFileAt(prepareFile(file(100, W, [15])), std, 0.5).score).toBeCloseTo(-1.11, 12);
  });

  it('a row is a detection when its score is at or above the threshold', () => {
    const f = file(100, W);
    (f.scores as number[])[45] = 0.7;
    expect(scoreFileAt(prepareFile(f), std, 0.7).windowsHit).toBe(1);
    expect(scoreFileAt(prepareFile(f), std, 0.7000001).windowsHit).toBe(0);
  });

  it('one threshold for the corpus: the sweep tries every distinct score, highest first', () => {
    // File A: a TP at score 0.9 (row 40) and an FP at 0.8 (row 90). File B: an FP at 0.95 (row 90), its window missed.
    const a = file(100, W, [], 'c/a.csv');
    (a.scores as number[])[40] = 0.9;
    (a.scores as number[])[90] = 0.8;
    const b = file(100, W, [], 'c/b.csv');
    (b.scores as number[])[90] = 0.95;
    const files = [prepareFile(a), prepareFile(b)];
    const sweep = sweepCorpus(files, std);
    expect(sweep.map((s) => s.threshold)).toEqual([1.1, 0.95, 0.9, 0.8, 0]);
    expect(sweep[0].score).toBe(-2);
    expect(sweep[1].score).toBeCloseTo(-2.11, 12);
    expect(sweep[2].score).toBeCloseTo(-0.11, 12);
    expect(sweep[3].score).toBeCloseTo(-0.22, 12);
    const best = optimizeThreshold(files, std);
    expect(best.threshold).toBe(0.9);
    // Scoring each file at that threshold gives the same total, normalised against null (-2) and perfect (+2).
    const r = scoreCorpus(files, 'standard');
    expect(r.raw).toBeCloseTo(-0.11, 12);
    expect(r.normalised).toBeCloseTo((100 * (-0.11 + 2)) / 4, 10);
    // With the official null baseline (116 windows): (raw + 116) / (2 + 116).
    expect(scoreCorpus(files, 'standard', { nullWindows: NAB_OFFICIAL_NULL_WINDOWS }).normalised).toBeCloseTo((100 * (-0.11 + 116)) / 118, 10);
  });

  it('on a tie the higher threshold wins', () => {
    const a = file(100, W, [], 'c/a.csv');
    (a.scores as number[])[40] = 0.9;
    (a.scores as number[])[99] = 0.5; // row 99: 50 rows past the window, S(50/9) = -1, but the next threshold adds nothing else
    const files = [prepareFile(a)];
    const sweep = sweepCorpus(files, { tpWeight: 1, fpWeight: 0, fnWeight: 1 });
    expect(sweep[1].score).toBe(sweep[2].score);
    expect(optimizeThreshold(files, { tpWeight: 1, fpWeight: 0, fnWeight: 1 }).threshold).toBe(0.9);
  });

  it('the null detector scores 0 and a perfect one 100', () => {
    const files = [prepareFile(file(100, W, [], 'c/a.csv')), prepareFile(file(200, [[60, 69], [120, 139]], [], 'c/b.csv'))];
    expect(scoreCorpus(files, 'standard').normalised).toBe(0);
    const perfect = [prepareFile(file(100, W, [40], 'c/a.csv')), prepareFile(file(200, [[60, 69], [120, 139]], [60, 120], 'c/b.csv'))];
    for (const p of ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'] as const) expect(scoreCorpus(perfect, p).normalised).toBeCloseTo(100, 10);
  });
});

const NAB = path.resolve(__dirname, '../../../shared/datasets/nab');
const haveNab = fs.existsSync(path.join(NAB, 'reference-scores'));
// The data ships in ../shared beside every checkout (and CI's clone): missing data fails, never skips.
test('the NAB development data is there', () => {
  expect(haveNab ? NAB : `${NAB} is missing: the NAB scorer's reference figures cannot be checked`).toBe(NAB);
});

describe('NAB scorer: reproduces the published figures of the reference detectors (34 files)', () => {
  const windows = haveNab ? readWindows(path.join(NAB, 'combined_windows.json')) : {};
  const score = (detector: string) =>
    scoreAllProfiles(prepareResults(path.join(NAB, 'data'), windows, path.join(NAB, 'reference-scores'), detector), { nullWindows: NAB_OFFICIAL_NULL_WINDOWS });

  it.each([
    ['windowedGaussian', 52.79, 38.42, 61.74],
    ['numenta', 74.49, 69.37, 79.43],
  ])('%s: standard %d, reward_low_FP_rate %d, reward_low_FN_rate %d', (detector, standard, lowFp, lowFn) => {
    const r = score(detector);
    expect(r.standard.normalised).toBeCloseTo(standard, 2);
    expect(r.reward_low_FP_rate.normalised).toBeCloseTo(lowFp, 2);
    expect(r.reward_low_FN_rate.normalised).toBeCloseTo(lowFn, 2);
    expect(r.standard.perfect).toBe(72);
    expect(r.standard.nullScore).toBe(-116);
    expect(r.reward_low_FN_rate.nullScore).toBe(-232);
  });

  it('numenta: per-file scores at the published threshold match the official results file', () => {
    // From NAB's results/numenta/numenta_standard_scores.csv (threshold 0.542187690735).
    const files = prepareResults(path.join(NAB, 'data'), windows, path.join(NAB, 'reference-scores'), 'numenta');
    const at = (name: string) => scoreFileAt(files.find((f) => f.name === name) as ReturnType<typeof prepareFile>, std, 0.542187690735);
    expect(at('realKnownCause/nyc_taxi.csv').score).toBeCloseTo(2.43572773247, 9);
    expect(at('realTweets/Twitter_volume_FB.csv').score).toBeCloseTo(1.61048222172, 9);
    expect(at('artificialWithAnomaly/art_daily_nojump.csv').score).toBeCloseTo(-1.27835146592, 9);
    const ko = at('realTweets/Twitter_volume_KO.csv');
    expect([ko.tp, ko.tn, ko.fp, ko.fn]).toEqual([6, 13512, 2, 1581]);
  });
});
