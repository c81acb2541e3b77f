/**
 * Waits until every reading a load generator published is in the runtime's store (read back through GET
 * /api/v1/series), and returns the checker's report; on a timeout the error carries the report and `context()`.
 * Until the flows' HTTP API answers (a runtime still starting) it keeps waiting.
 */
import { expectedOf, failedOf, readSeqsViaApi, reportLine, tally, type CheckReport, type LoadGenerator } from '../../runtime/loadgen';
import { waitFor } from './services';

export async function waitForEveryReading(url: string, gen: LoadGenerator, since: number, timeoutMs: number, context: () => string = () => ''): Promise<CheckReport> {
  const expected = expectedOf(gen);
  const devices = [...expected.keys()];
  let report: CheckReport | undefined;
  await waitFor(
    'every reading in the store',
    async () => {
      const rows = await readSeqsViaApi(url, devices, since - 60_000, Date.now() + 60_000).catch(() => undefined);
      if (rows === undefined) return undefined;
      report = tally(expected, rows, failedOf(gen));
      return report.missing === 0 ? true : undefined;
    },
    timeoutMs,
    1000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${report ? reportLine(report) : ''}\n${context()}`);
  });
  return report as CheckReport;
}
