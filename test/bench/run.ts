/**
 * `npm run bench [-- options]`: runs the bench cases of registry.ts, prints a
 * table and the PASS/FAIL of each throughput target, and writes
 * test-output/bench.json.
 *
 *   --filter <text>  only cases whose id (group/name) contains text (case-insensitive);
 *                    the baselines they compare with run too
 *   --quick          short smoke run (few, short rounds): numbers are indicative only
 *   --check          exit 1 when a target is missed
 *   --list           list case ids and exit
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { caseId, fmtNum, FULL, linkBaselines, QUICK, resultsTable, runCases, type BenchCase } from './harness';
import { ALL_CASES, checkRegistry } from './registry';
import { ROOT } from '../support/services';

const OUT_FILE = path.join(ROOT, 'test-output', 'bench.json');

interface Args {
  filter?: string;
  quick: boolean;
  check: boolean;
  list: boolean;
}

const USAGE = 'usage: node dist/test/bench/run.js [--filter <text>] [--quick] [--check] [--list]';

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, check: false, list: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') a.quick = true;
    else if (arg === '--check') a.check = true;
    else if (arg === '--list') a.list = true;
    else if (arg === '--filter' && i + 1 < argv.length) a.filter = argv[++i];
    else if (arg.startsWith('--filter=')) a.filter = arg.slice('--filter='.length);
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
      process.exit(2);
    }
  }
  return a;
}

/** The cases matching the filter, plus the baselines they compare with, in registry order. */
function select(cases: readonly BenchCase[], filter: string | undefined): BenchCase[] {
  if (filter === undefined) return [...cases];
  const f = filter.toLowerCase();
  const wanted = new Set(cases.filter((c) => caseId(c).toLowerCase().includes(f)).map(caseId));
  for (const c of cases) if (wanted.has(caseId(c)) && c.baseline !== undefined) wanted.add(c.baseline);
  return cases.filter((c) => wanted.has(caseId(c)));
}

/** A full GC between cases, so one case's garbage is not collected on the next one's clock. */
function gcFunction(): () => void {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    if (typeof gc === 'function') return gc as () => void;
  } catch {
    // fall through: run without forced GC
  }
  return () => undefined;
}

interface TargetOutcome {
  id: string;
  unit: string;
  min: number;
  per: 'op' | 'item';
  /** Median ops/s or items/s, as the target counts. */
  measured: number;
  /** The slowest round, same unit. */
  slowest: number;
  pass: boolean;
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
    totalMemMiB: Math.round(os.totalmem() / 2 ** 20),
  };
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  checkRegistry(ALL_CASES);
  if (args.list) {
    for (const c of ALL_CASES) console.log(caseId(c));
    return;
  }
  const cases = select(ALL_CASES, args.filter);
  if (cases.length === 0) {
    console.error(`no bench case matches ${JSON.stringify(args.filter)}; --list shows them`);
    process.exit(2);
  }
  const settings = args.quick ? QUICK : FULL;
  const gc = gcFunction();
  const m = machine();
  const loadBefore = m.loadavg;

  console.log(
    `Thingwire bench${args.quick ? ' (--quick: indicative only)' : ''}: ${cases.length} case(s), ` +
      `warm-up ${settings.warmupMs} ms, ${settings.rounds} interleaved rounds of ~${settings.roundMs} ms per case`,
  );
  console.log(`node ${String(m.node)}, ${String(m.cpuModel)} x${String(m.cpus)}, load ${JSON.stringify(loadBefore)}`);
  console.log('');

  const started = process.hrtime.bigint();
  const results = runCases(cases, settings, gc, (msg) => process.stderr.write(`  ${msg}\n`));
  let checksum = 0;
  for (const r of results) checksum = (checksum + r.checksum) % 1e15;
  const totalSec = Number(process.hrtime.bigint() - started) / 1e9;
  linkBaselines(results);

  console.log('');
  console.log(resultsTable(results));
  console.log('');

  // Targets: judged on the median round; the slowest round is shown for honesty.
  const outcomes: TargetOutcome[] = [];
  for (const c of cases) {
    if (!c.target) continue;
    const r = results.find((x) => x.id === caseId(c))!;
    const k = c.target.per === 'item' ? r.itemsPerOp : 1;
    const measured = r.medianOpsPerSec * k;
    outcomes.push({
      id: r.id,
      unit: c.target.unit,
      min: c.target.min,
      per: c.target.per,
      measured,
      slowest: r.minOpsPerSec * k,
      pass: measured >= c.target.min,
    });
  }
  for (const o of outcomes) {
    console.log(
      `TARGET ${o.pass ? 'PASS' : 'FAIL'}  ${o.id}: ${fmtNum(o.measured)} ${o.unit}/s (median), ` +
        `target >= ${fmtNum(o.min)}/s on one core (slowest round ${fmtNum(o.slowest)}/s)`,
    );
  }
  const failed = outcomes.filter((o) => !o.pass);
  if (outcomes.length === 0) console.log('TARGETS: none in this selection');
  else console.log(`TARGETS: ${failed.length === 0 ? 'PASS' : 'FAIL'} (${outcomes.length - failed.length}/${outcomes.length} met)`);

  console.log(`checksum ${checksum} (keeps results alive), ${totalSec.toFixed(1)} s of benching, load after ${JSON.stringify(os.loadavg().map((l) => Math.round(l * 100) / 100))}`);

  fs.mkdirSync(path.dirname(OUT_FILE), { recursive: true });
  const report = {
    date: new Date().toISOString(),
    machine: { ...m, loadavgAfter: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    mode: args.quick ? 'quick' : 'full',
    filter: args.filter ?? null,
    settings,
    totalSeconds: Math.round(totalSec * 10) / 10,
    results,
    targets: outcomes,
    targetsPassed: failed.length === 0,
    checksum,
  };
  fs.writeFileSync(OUT_FILE, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), OUT_FILE) || OUT_FILE}`);

  if (args.check && failed.length > 0) process.exitCode = 1;
}

main();
