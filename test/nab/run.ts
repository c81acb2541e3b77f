/**
 * `npm run nab -- [--data DIR] [--out DIR] [--windows FILE] [--detector thingwire|windowedGaussian|all]`
 *
 * Runs each detector over every `timestamp,value` CSV under DIR exactly as it
 * would run online (one instance per file, row by row, each row scored before
 * the next is seen), writes NAB's results layout
 * OUT/<detector>/<category>/<detector>_<file>.csv (timestamp,value,anomaly_score,label),
 * then reads those files back, scores every detector with the NAB scorer
 * (one threshold per profile optimised over the corpus) and prints them side
 * by side with each detector's runtime and points/s. Also writes
 * OUT/final_results.json.
 *
 * Defaults: --data ../shared/datasets/nab/data (relative to the repository
 * root), --out test-output/nab, --windows <data>/../combined_windows.json,
 * --detector all. When <data>/../reference-scores holds published result files
 * for the same data (numenta, windowedGaussian), they are scored too and listed
 * as reference rows.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AnomalyDetector } from '../../nodes/anomaly/engine';
import { WindowedGaussian, type OnlineDetector } from './baselines';
import { listDataFiles, prepareResults, readDataFile, readWindows, windowsMs, type DataFile, type Windows } from './corpus';
import { NAB_OFFICIAL_NULL_WINDOWS, PROFILE_NAMES, scoreAllProfiles, type PreparedFile, type ProfileName, type ProfileResult } from './scorer';

/** Repository root, from dist/test/nab/run.js (or test/nab/run.ts). */
const ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..');

/** The detectors the harness can run, by results name. */
export const DETECTORS: Record<string, () => OnlineDetector> = {
  thingwire: () => {
    const d = new AnomalyDetector();
    return { update: (ts, v) => d.update(ts, v).score };
  },
  windowedGaussian: () => new WindowedGaussian(),
};

interface Args {
  data: string;
  out: string;
  windows: string;
  detectors: string[];
}

const USAGE = `usage: npm run nab -- [--data DIR] [--out DIR] [--windows FILE] [--detector ${[...Object.keys(DETECTORS), 'all'].join('|')}]`;

function parseArgs(argv: string[]): Args {
  let data = path.resolve(ROOT, '../shared/datasets/nab/data');
  let out = path.resolve(ROOT, 'test-output/nab');
  let windows: string | undefined;
  let detector = 'all';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const [flag, inline] = arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) fail(`${flag} needs a value`);
      return argv[++i];
    };
    if (flag === '--data') data = path.resolve(value());
    else if (flag === '--out') out = path.resolve(value());
    else if (flag === '--windows') windows = path.resolve(value());
    else if (flag === '--detector') detector = value();
    else if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else fail(`unknown argument ${JSON.stringify(arg)}`);
  }
  if (detector !== 'all' && !(detector in DETECTORS)) fail(`unknown detector ${JSON.stringify(detector)}`);
  return {
    data,
    out,
    windows: windows ?? path.resolve(data, '../combined_windows.json'),
    detectors: detector === 'all' ? Object.keys(DETECTORS) : [detector],
  };
}

function fail(msg: string): never {
  console.error(`${msg}\n${USAGE}`);
  process.exit(2);
}

/**
 * NAB's result files carry 12 significant digits (what the official Python 2
 * runner wrote); writing the same precision keeps ties, and so scores,
 * comparable with the published ones.
 */
function fmtScore(s: number): string {
  return String(Number(s.toPrecision(12)));
}

interface RunStats {
  detector: string;
  points: number;
  /** Time spent in update() only, summed over files. */
  ms: number;
}

/** Runs one detector over one file online; returns the scores and the time spent in update(). */
export function runFile(make: () => OnlineDetector, d: DataFile): { scores: Float64Array; ms: number } {
  const det = make();
  const n = d.values.length;
  const scores = new Float64Array(n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) scores[i] = det.update(d.timestamps[i], d.values[i]);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { scores, ms };
}

function writeResults(out: string, detector: string, d: DataFile, scores: Float64Array, windows: Array<[number, number]>): void {
  const dir = path.join(out, detector, d.category);
  fs.mkdirSync(dir, { recursive: true });
  const lines = ['timestamp,value,anomaly_score,label'];
  let w = 0;
  for (let i = 0; i < scores.length; i++) {
    const t = d.timestamps[i];
    while (w < windows.length && windows[w][1] < t) w++;
    const label = w < windows.length && windows[w][0] <= t ? 1 : 0;
    lines.push(`${d.rawTimestamps[i]},${d.values[i]},${fmtScore(scores[i])},${label}`);
  }
  fs.writeFileSync(path.join(dir, `${detector}_${d.file}`), `${lines.join('\n')}\n`);
}

function fmt(v: number, digits = 2): string {
  return v.toFixed(digits);
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

type Scored = Record<ProfileName, ProfileResult>;

export function main(argv: string[]): void {
  const args = parseArgs(argv);
  if (!fs.existsSync(args.data)) fail(`no data directory ${args.data}`);
  if (!fs.existsSync(args.windows)) fail(`no windows file ${args.windows}`);
  const windows: Windows = readWindows(args.windows);
  const names = listDataFiles(args.data).filter((n) => n in windows);
  const skipped = listDataFiles(args.data).filter((n) => !(n in windows));
  if (names.length === 0) fail(`no CSV under ${args.data} has windows in ${args.windows}`);
  if (skipped.length > 0) console.log(`skipping ${skipped.length} file(s) without windows: ${skipped.join(', ')}`);
  const data = names.map((n) => readDataFile(args.data, n));
  const points = data.reduce((s, d) => s + d.values.length, 0);
  console.log(`${names.length} files, ${points} points, windows from ${path.relative(process.cwd(), args.windows) || args.windows}`);

  const stats: RunStats[] = [];
  for (const det of args.detectors) {
    const make = DETECTORS[det];
    let ms = 0;
    for (const d of data) {
      const r = runFile(make, d);
      ms += r.ms;
      writeResults(args.out, det, d, r.scores, windowsMs(windows, d.name));
    }
    stats.push({ detector: det, points, ms });
    console.log(`${det}: ${points} points in ${fmt(ms / 1000)} s (${Math.round((points / ms) * 1000).toLocaleString('en-US')} points/s), results in ${path.join(args.out, det)}`);
  }

  // Score what was written (read back from OUT), plus any published reference results.
  const scored: Array<{ detector: string; kind: 'run' | 'reference'; official: Scored; own: Scored }> = [];
  const score = (files: PreparedFile[]): { official: Scored; own: Scored } => ({
    official: scoreAllProfiles(files, { nullWindows: NAB_OFFICIAL_NULL_WINDOWS }),
    own: scoreAllProfiles(files),
  });
  for (const det of args.detectors) scored.push({ detector: det, kind: 'run', ...score(prepareResults(args.data, windows, args.out, det, names)) });
  const refDir = path.resolve(args.data, '../reference-scores');
  if (fs.existsSync(refDir)) {
    for (const det of fs.readdirSync(refDir).sort()) {
      try {
        scored.push({ detector: det, kind: 'reference', ...score(prepareResults(args.data, windows, refDir, det, names)) });
      } catch (e) {
        console.log(`reference ${det}: not scored (${(e as Error).message})`);
      }
    }
  }

  const rows = scored.map((s) => {
    const st = stats.find((x) => x.detector === s.detector && s.kind === 'run');
    return [
      s.kind === 'run' ? s.detector : `${s.detector} (published results)`,
      ...PROFILE_NAMES.map((p) => fmt(s.official[p].normalised)),
      ...PROFILE_NAMES.map((p) => fmt(s.own[p].normalised)),
      PROFILE_NAMES.map((p) => String(Number(s.official[p].threshold.toPrecision(6)))).join(' / '),
      st ? fmt(st.ms / 1000) : '',
      st ? Math.round((st.points / st.ms) * 1000).toLocaleString('en-US') : '',
    ];
  });
  console.log('');
  console.log(
    table(
      ['detector', 'standard', 'low FP', 'low FN', 'std (own null)', 'low FP (own)', 'low FN (own)', 'thresholds std / low FP / low FN', 'runtime s', 'points/s'],
      rows,
    ),
  );
  const nWin = names.reduce((s, n) => s + windows[n].length, 0);
  console.log(
    `\nNAB scores, 0 = null detector, 100 = perfect. First three columns: normalised as the official runner does ` +
      `(null baseline of the full 58-file corpus, ${NAB_OFFICIAL_NULL_WINDOWS} windows; perfect = the ${nWin} windows scored), ` +
      `comparable with published figures. "(own)": null baseline of the scored files themselves (-${nWin} x A_FN).`,
  );

  const final: Record<string, unknown> = {};
  for (const s of scored) {
    final[s.kind === 'run' ? s.detector : `${s.detector}(published results)`] = {
      official: Object.fromEntries(PROFILE_NAMES.map((p) => [p, { score: s.official[p].normalised, threshold: s.official[p].threshold, raw: s.official[p].raw, ...s.official[p].counts }])),
      ownNull: Object.fromEntries(PROFILE_NAMES.map((p) => [p, s.own[p].normalised])),
      ...(s.kind === 'run' ? { runtimeMs: stats.find((x) => x.detector === s.detector)?.ms, points } : {}),
    };
  }
  fs.mkdirSync(args.out, { recursive: true });
  fs.writeFileSync(path.join(args.out, 'final_results.json'), `${JSON.stringify(final, null, 2)}\n`);
}

if (require.main === module) main(process.argv.slice(2));
