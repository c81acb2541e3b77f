/**
 * V8 options the bundled runtime is started with (`npm start`; the tests and benchmarks start it with the
 * same ones through test/support/services.ts; a unit test keeps package.json's start script in step).
 *
 * --max-semi-space-size=64 (MB; Node 20's default is 16): the pipeline allocates a great deal of short-lived
 * data (parsed payloads, readings, copies at fan-outs, encoded lines), and a young generation four times
 * larger lets most of it die there instead of being promoted and collected by the old generation's slower
 * GC. Measured on the 2-core box (2026-12-01, runtime CPU at a fixed load, A/B alternately, two runs each):
 * 10,000 batched readings/s 112 % -> 94 % of a core; 3,000 single readings/s 68 % -> 65 %; RSS about the
 * same (32 MB: 109 %, 128 MB: 92 %). V8 reads it when the heap is created, so it must be on the command
 * line (v8.setFlagsFromString at run time does not resize the young generation).
 */
export const RUNTIME_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

/** The flags of RUNTIME_NODE_FLAGS this process was not started with (from execArgv and NODE_OPTIONS). */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map((a) => a.split('=')[0].replace(/_/g, '-')));
  return RUNTIME_NODE_FLAGS.filter((f) => !given.has(f.split('=')[0]));
}
