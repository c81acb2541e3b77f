/**
 * Baseline detectors for the NAB harness, run online like ours.
 */
import { normalTail } from '../../nodes/anomaly/stats';

/** What the harness runs: one instance per file, fed row by row. */
export interface OnlineDetector {
  /** Score of this row in [0, 1], computed before the next row is seen. */
  update(ts: number, value: number): number;
}

/**
 * NAB's windowedGaussian: the score of a value is 1 - Q(|z|), z against the
 * mean and (population) standard deviation of a window of the previous
 * values: the first 6400 values as they come, then a window of 6400 that
 * slides forward in steps of 100. Before any value it scores 0.
 */
export class WindowedGaussian implements OnlineDetector {
  static readonly WINDOW = 6400;
  static readonly STEP = 100;

  private readonly window = new Float64Array(WindowedGaussian.WINDOW);
  private count = 0;
  private readonly step = new Float64Array(WindowedGaussian.STEP);
  private stepCount = 0;
  private mean = 0;
  private std = 1;
  // Running sums while the window fills (O(1) per row).
  private sum = 0;
  private sumSq = 0;

  update(_ts: number, value: number): number {
    const score = this.count > 0 ? 1 - normalTail(value, this.mean, this.std) : 0;
    const W = WindowedGaussian.WINDOW;
    if (this.count < W) {
      this.window[this.count++] = value;
      this.sum += value;
      this.sumSq += value * value;
      this.mean = this.sum / this.count;
      const v = Math.max(0, this.sumSq / this.count - this.mean * this.mean);
      this.setStd(Math.sqrt(v));
      if (this.count === W) this.recompute();
    } else {
      this.step[this.stepCount++] = value;
      if (this.stepCount === WindowedGaussian.STEP) {
        const S = WindowedGaussian.STEP;
        this.window.copyWithin(0, S);
        this.window.set(this.step, W - S);
        this.stepCount = 0;
        this.recompute();
      }
    }
    return score;
  }

  /** Two-pass mean and standard deviation of the full window. */
  private recompute(): void {
    const w = this.window;
    let s = 0;
    for (let i = 0; i < w.length; i++) s += w[i];
    const m = s / w.length;
    let q = 0;
    for (let i = 0; i < w.length; i++) q += (w[i] - m) * (w[i] - m);
    this.mean = m;
    this.setStd(Math.sqrt(q / w.length));
  }

  private setStd(s: number): void {
    this.std = s === 0 ? 0.000001 : s;
  }
}
