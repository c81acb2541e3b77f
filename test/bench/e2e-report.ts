/**
 * Pure parts of the end-to-end bench's report (test/bench/e2e.ts), kept apart so they can be tested.
 */

/** What cpuRatios needs of a step. */
export interface CpuStep {
  askedRate: number;
  ingestRate: number;
  cpuPct: number;
  behind: boolean;
}

export interface CpuRatio {
  /** The asked rate both runs held. */
  rate: number;
  /** Runtime CPU (% of a core) per 1,000 messages a second: Thingwire, the stock flow. */
  thingwire: number;
  stock: number;
  /** stock / thingwire: how many of Thingwire's messages the stock flow's CPU for one would carry. Above 1: Thingwire costs less. */
  ratio: number;
}

/**
 * Compares CPU per message at the rates both runs held (steps not behind, with CPU measured). The knee ratio
 * compares rates, which the load generator on the same cores caps for both sides; this compares what each
 * message costs the runtime, which it does not.
 */
export function cpuRatios(thingwire: readonly CpuStep[], stock: readonly CpuStep[]): { rates: CpuRatio[]; median?: number } {
  const rates: CpuRatio[] = [];
  for (const t of thingwire) {
    if (t.behind || !(t.ingestRate > 0) || !(t.cpuPct > 0)) continue;
    const s = stock.find((b) => b.askedRate === t.askedRate && !b.behind && b.ingestRate > 0 && b.cpuPct > 0);
    if (s === undefined) continue;
    const tw = (t.cpuPct / t.ingestRate) * 1000;
    const st = (s.cpuPct / s.ingestRate) * 1000;
    rates.push({ rate: t.askedRate, thingwire: tw, stock: st, ratio: st / tw });
  }
  rates.sort((a, b) => a.rate - b.rate);
  if (rates.length === 0) return { rates };
  const r = rates.map((x) => x.ratio).sort((a, b) => a - b);
  const mid = Math.floor(r.length / 2);
  return { rates, median: r.length % 2 === 1 ? r[mid] : (r[mid - 1] + r[mid]) / 2 };
}
