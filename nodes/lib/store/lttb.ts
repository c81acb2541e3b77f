/**
 * Largest-triangle-three-buckets downsampling (Sveinn Steinarsson, "Downsampling
 * Time Series for Visual Representation", 2013): picks `threshold` points of a
 * series so that a line chart of them looks like a chart of all of them.
 *
 * The first and the last point are always kept. The points between them are cut
 * into `threshold - 2` buckets of (nearly) equal count; from each bucket the one
 * point is kept that makes the largest triangle with the point kept from the
 * previous bucket and the average of the next bucket. A lone spike is such a
 * point, so spikes survive where averaging or striding would lose them.
 *
 * Thresholds:
 * - 0, negative or NaN: no downsampling (the input is returned);
 * - 1: the first point only; 2: the first and the last point (a chart can draw
 *   no triangle with fewer than three, and returning everything would break the
 *   caller's cap);
 * - at least the input length: the input is returned as it is;
 * - otherwise exactly `threshold` points, in input order. Fractions are floored.
 *
 * When nothing needs to be done the input array itself is returned (not a copy);
 * otherwise a new array holding the input's own [x, y] tuples. The input is never
 * modified. x must be ascending (timestamps) and x and y finite for the areas to
 * mean anything; the function does not check, it is written for hot paths: one
 * pass, no allocation besides the result (a 1,000,000-point series goes to 1,000
 * points in a few milliseconds).
 */
export function lttb(points: Array<[number, number]>, threshold: number): Array<[number, number]> {
  const n = points.length;
  const t = Math.floor(threshold);
  if (!(t > 0) || t >= n) return points;
  if (t === 1) return [points[0]];
  if (t === 2) return [points[0], points[n - 1]];

  const out: Array<[number, number]> = new Array<[number, number]>(t);
  out[0] = points[0];
  // Bucket b (0-based, b < t - 2) holds the points with index in
  // [1 + floor(b * span / buckets), 1 + floor((b + 1) * span / buckets)):
  // integer arithmetic, so the last bucket ends exactly before the last point.
  const span = n - 2;
  const buckets = t - 2;
  let a = 0; // index of the point kept from the previous bucket
  let bucketStart = 1;
  for (let b = 0; b < buckets; b++) {
    const bucketEnd = 1 + Math.floor(((b + 1) * span) / buckets);
    // Average of the next bucket; for the last bucket, that is the last point.
    const nextEnd = b + 1 < buckets ? 1 + Math.floor(((b + 2) * span) / buckets) : n;
    let avgX = 0;
    let avgY = 0;
    for (let j = bucketEnd; j < nextEnd; j++) {
      const p = points[j];
      avgX += p[0];
      avgY += p[1];
    }
    const count = nextEnd - bucketEnd;
    avgX /= count;
    avgY /= count;

    const pa = points[a];
    const ax = pa[0];
    const ay = pa[1];
    // Twice the triangle's area (the factor does not change which is largest).
    const dx = ax - avgX;
    const dy = avgY - ay;
    let maxArea = -1;
    let chosen = bucketStart;
    for (let j = bucketStart; j < bucketEnd; j++) {
      const p = points[j];
      // |cross product|, written out: no global lookup in the hot loop (those are slow inside vm contexts such as jest's).
      let area = dx * (p[1] - ay) - (ax - p[0]) * dy;
      if (area < 0) area = -area;
      if (area > maxArea) {
        maxArea = area;
        chosen = j;
      }
    }
    out[b + 1] = points[chosen];
    a = chosen;
    bucketStart = bucketEnd;
  }
  out[t - 1] = points[n - 1];
  return out;
}
