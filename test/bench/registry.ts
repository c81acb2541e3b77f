/**
 * Every bench case, in run order. To add a bench: write cases/<thing>.ts that
 * exports a `BenchCase[]` (see harness.ts and cases/normaliser.ts), then
 * spread it into ALL_CASES below.
 */
import { caseId, type BenchCase } from './harness';
import { alertCases } from './cases/alert';
import { anomalyCases } from './cases/anomaly';
import { anomalyScorerCases } from './cases/anomaly-scorer';
import { brokerQueueCases } from './cases/broker-queue';
import { functionNodeCases } from './cases/function-node';
import { lineProtocolCases } from './cases/line-protocol';
import { loadgenCases } from './cases/loadgen';
import { maintenanceCases } from './cases/maintenance';
import { normaliserCases } from './cases/normaliser';
import { registryCases } from './cases/registry';
import { storeCases } from './cases/store';
import { validatorCases } from './cases/validator';
import { windowCases } from './cases/window';
import { windowFlowCases } from './cases/window-flow';
import { writerCases } from './cases/writer';

export const ALL_CASES: readonly BenchCase[] = [...validatorCases, ...normaliserCases, ...lineProtocolCases, ...writerCases, ...storeCases, ...anomalyCases, ...anomalyScorerCases, ...windowCases, ...windowFlowCases, ...maintenanceCases, ...registryCases, ...alertCases, ...brokerQueueCases, ...functionNodeCases, ...loadgenCases];

/** Throws on a duplicate id or a baseline that names no case. */
export function checkRegistry(cases: readonly BenchCase[]): void {
  const ids = new Set<string>();
  for (const c of cases) {
    const id = caseId(c);
    if (ids.has(id)) throw new Error(`duplicate bench case id ${JSON.stringify(id)}`);
    ids.add(id);
  }
  for (const c of cases) {
    if (c.baseline !== undefined && !ids.has(c.baseline)) {
      throw new Error(`bench case ${JSON.stringify(caseId(c))} names unknown baseline ${JSON.stringify(c.baseline)}`);
    }
  }
}
