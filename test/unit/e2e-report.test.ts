/** test/bench/e2e-report.ts: the end-to-end bench's CPU-per-message comparison. */
import { cpuRatios, type CpuStep } from '../bench/e2e-report';

const step = (askedRate: number, ingestRate: number, cpuPct: number, behind = false): CpuStep => ({ askedRate, ingestRate, cpuPct, behind });

test('CPU per 1,000 messages/s at the rates both held; steps behind or without CPU left out; the median ratio', () => {
  const tw = [step(2000, 2000, 60), step(4000, 4000, 100), step(8000, 6500, 118, true), step(5700, 5700, 115)];
  const stock = [step(2000, 2000, 45), step(4000, 4000, 60), step(8000, 8000, 73), step(5700, 5700, 0)];
  const r = cpuRatios(tw, stock);
  expect(r.rates.map((x) => [x.rate, x.thingwire, x.stock, Number(x.ratio.toFixed(3))])).toEqual([
    [2000, 30, 22.5, 0.75],
    [4000, 25, 15, 0.6],
  ]);
  expect(r.median).toBeCloseTo(0.675, 10);
});

test('no common rate: no ratio', () => {
  expect(cpuRatios([step(500, 500, 30)], [step(2000, 2000, 45)])).toEqual({ rates: [] });
  expect(cpuRatios([step(500, 500, 30), step(1000, 1000, 50), step(2000, 2000, 80)], [step(500, 500, 20), step(1000, 1000, 25), step(2000, 2000, 40)]).median).toBeCloseTo(0.5, 10);
});
