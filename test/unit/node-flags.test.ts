/**
 * runtime/node-flags.ts: the V8 options the runtime runs with, and that `npm start` passes them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUNTIME_NODE_FLAGS, missingNodeFlags } from '../../runtime/node-flags';

test('npm start runs the runtime with every flag of RUNTIME_NODE_FLAGS', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const start = pkg.scripts.start;
  const cmd = /node ((?:--\S+ )*)dist\/runtime\/main\.js/.exec(start);
  expect(cmd).not.toBeNull();
  expect(cmd![1].trim().split(' ')).toEqual([...RUNTIME_NODE_FLAGS]);
});

test('missingNodeFlags reads the command line and NODE_OPTIONS, by flag name', () => {
  expect(missingNodeFlags([], '')).toEqual([...RUNTIME_NODE_FLAGS]);
  expect(missingNodeFlags(['--max-semi-space-size=64'], '')).toEqual([]);
  expect(missingNodeFlags(['--max-semi-space-size=128'], '')).toEqual([]);
  expect(missingNodeFlags([], '--max_semi_space_size=32 --trace-warnings')).toEqual([]);
  expect(missingNodeFlags(['--inspect'], '--max-old-space-size=4096')).toEqual(['--max-semi-space-size=64']);
});
