/**
 * Development loop: runs the engine (with parameter overrides given as JSON)
 * over the corpus in memory and prints the NAB scores, without writing result
 * files. Not part of `npm run nab`.
 *
 *   node dist/test/nab/tune.js '{"tuning":{"LEVEL_ALPHA":0.05},"warmup":150}' [--files] [--data DIR]
 *   node dist/test/nab/tune.js --grid '{"tuning.LEVEL_ALPHA":[0.05,0.1]}'
 *   node dist/test/nab/tune.js '{...}' --split
 *
 * --split also scores two pairs of halves of the corpus, each half with its
 * own optimised threshold and its own null baseline (own-normalised, all three
 * profiles): "alt" = alternate files within each category (even / odd rank),
 * "cat" = artificial* + realKnownCause / realAdExchange + realTweets. A change
 * is kept only if it helps on both halves of both pairs.
 *
 * "tuning" overrides TUNING (restored after each run); the rest are AnomalyOptions.
 */
import * as path from 'node:path';
import { AnomalyDetector, TUNING, type AnomalyOptions } from '../../nodes/anomaly/engine';
import { listDataFiles, readDataFile, readWindows, windowsMs, type DataFile } from './corpus';
import { NAB_OFFICIAL_NULL_WINDOWS, prepareFile, scoreAllProfiles, type PreparedFile } from './scorer';

const ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..');

function evaluate(data: DataFile[], windows: ReturnType<typeof readWindows>, all: AnomalyOptions & { tuning?: Partial<typeof TUNING> }): { files: PreparedFile[]; ms: number } {
  const { tuning, ...opts } = all;
  const saved = { ...TUNING };
  Object.assign(TUNING, tuning ?? {});
  try {
    return evaluateWith(data, windows, opts);
  } finally {
    Object.assign(TUNING, saved);
  }
}

function evaluateWith(data: DataFile[], windows: ReturnType<typeof readWindows>, opts: AnomalyOptions): { files: PreparedFile[]; ms: number } {
  let ms = 0;
  const files = data.map((d) => {
    const det = new AnomalyDetector(opts);
    const sc = new Float64Array(d.values.length);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < sc.length; i++) sc[i] = det.update(d.timestamps[i], d.values[i]).score;
    ms += Number(process.hrtime.bigint() - t0) / 1e6;
    for (let i = 0; i < sc.length; i++) sc[i] = Number(sc[i].toPrecision(12));
    return prepareFile({ name: d.name, timestamps: d.timestamps, scores: sc, windows: windowsMs(windows, d.name) });
  });
  return { files, ms };
}

/** The two pairs of halves used by --split (see the header). */
function splitHalves(files: PreparedFile[]): { altA: PreparedFile[]; altB: PreparedFile[]; catA: PreparedFile[]; catB: PreparedFile[] } {
  const rank = new Map<string, number>();
  const altA: PreparedFile[] = [];
  const altB: PreparedFile[] = [];
  for (const f of files) {
    const cat = f.name.split('/')[0];
    const k = rank.get(cat) ?? 0;
    rank.set(cat, k + 1);
    (k % 2 === 0 ? altA : altB).push(f);
  }
  const catA = files.filter((f) => /^(artificial|realKnownCause)/.test(f.name));
  const catB = files.filter((f) => !/^(artificial|realKnownCause)/.test(f.name));
  return { altA, altB, catA, catB };
}

function setPath(o: Record<string, unknown>, key: string, v: unknown): void {
  const parts = key.split('.');
  let cur = o;
  for (let i = 0; i < parts.length - 1; i++) {
    if (typeof cur[parts[i]] !== 'object' || cur[parts[i]] === null) cur[parts[i]] = {};
    cur = cur[parts[i]] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]] = v;
}

function main(argv: string[]): void {
  let dataDir = path.resolve(ROOT, '../shared/datasets/nab/data');
  let base: AnomalyOptions = {};
  let grid: Record<string, unknown[]> | undefined;
  let perFile = false;
  let split = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--data') dataDir = path.resolve(argv[++i]);
    else if (argv[i] === '--grid') grid = JSON.parse(argv[++i]) as Record<string, unknown[]>;
    else if (argv[i] === '--files') perFile = true;
    else if (argv[i] === '--split') split = true;
    else base = JSON.parse(argv[i]) as AnomalyOptions;
  }
  const windows = readWindows(path.resolve(dataDir, '../combined_windows.json'));
  const data = listDataFiles(dataDir)
    .filter((n) => n in windows)
    .map((n) => readDataFile(dataDir, n));
  const combos: Array<Record<string, unknown>> = [{}];
  if (grid) {
    for (const [k, vals] of Object.entries(grid)) {
      const next: Array<Record<string, unknown>> = [];
      for (const c of combos) for (const v of vals) next.push({ ...c, [k]: v });
      combos.splice(0, combos.length, ...next);
    }
  }
  for (const c of combos) {
    const opts = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
    for (const [k, v] of Object.entries(c)) setPath(opts, k, v);
    const { files, ms } = evaluate(data, windows, opts as AnomalyOptions);
    const r = scoreAllProfiles(files, { nullWindows: NAB_OFFICIAL_NULL_WINDOWS });
    const own = scoreAllProfiles(files);
    const s = r.standard;
    console.log(
      `${JSON.stringify(c)} std ${s.normalised.toFixed(2)} lowFP ${r.reward_low_FP_rate.normalised.toFixed(2)} lowFN ${r.reward_low_FN_rate.normalised.toFixed(2)} ` +
        `(own ${own.standard.normalised.toFixed(2)}) thr ${s.threshold.toPrecision(6)} win ${s.windowsHit} fp ${s.counts.fp} ${Math.round(ms)} ms`,
    );
    if (split) {
      const halves = splitHalves(files);
      const all = (fs: PreparedFile[]): string => {
        const h = scoreAllProfiles(fs);
        return [h.standard, h.reward_low_FP_rate, h.reward_low_FN_rate].map((x) => x.normalised.toFixed(2)).join(' ');
      };
      console.log(`  split (std lowFP lowFN, own null) alt ${all(halves.altA)} | ${all(halves.altB)}  cat ${all(halves.catA)} | ${all(halves.catB)}`);
    }
    if (perFile) {
      for (const f of s.perFile) {
        console.log(`  ${f.name.padEnd(58)} ${f.score.toFixed(3).padStart(8)}  hit ${f.windowsHit}/${f.windows} fp ${f.fp}`);
      }
    }
  }
}

main(process.argv.slice(2));
