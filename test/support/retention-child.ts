/**
 * A child process for the kill -9 test of retention tiering (test/integration/retention-kill.test.ts):
 * opens the embedded store file and the retention root given on the command line and runs retention
 * until a run has nothing left to do, printing a line per phase of every move and per run. The test kills it at random
 * moments and starts it again.
 *
 *   node dist/test/support/retention-child.js <duckdb file> <retention root> <now ms> <policy json>
 */
import { parsePolicy } from '../../nodes/lib/retention/policy';
import { Retention } from '../../nodes/lib/retention/run';
import { EmbeddedBackend } from '../../nodes/lib/store/embedded';

async function main(): Promise<void> {
  const [file, root, now, policy] = process.argv.slice(2);
  const backend = await EmbeddedBackend.open({ path: file });
  // Each phase of each move is announced, so the test can kill at a chosen point of the work.
  const r = await Retention.open({
    root,
    backend,
    policy: parsePolicy(policy),
    now: () => Number(now),
    maxPartitions: 5,
    failAt: (phase, a) => {
      process.stdout.write(`phase ${phase} ${a.day}\n`);
    },
  });
  for (;;) {
    const report = await r.run();
    process.stdout.write(`${JSON.stringify({ moved: report.moved.length, deleted: report.deleted.length, collected: report.collected.length, errors: report.errors })}\n`);
    if (report.errors.length) process.exitCode = 1;
    if (report.moved.length === 0 && report.deleted.length === 0) break;
  }
  await r.close();
  await backend.close();
  process.stdout.write('done\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(2);
});
