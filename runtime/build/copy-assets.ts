/**
 * Build step after tsc: copies each node's editor files (.html, locales/,
 * icons/) next to its compiled .js in dist/, where Node-RED looks for them,
 * and the shipped flows (flows/*.json, flows/examples/*.json) to examples/ so they appear under Import > Examples.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..');

function copyTree(src: string, dst: string, filter: (f: string) => boolean): number {
  let n = 0;
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, entry.name);
    const d = path.join(dst, entry.name);
    if (entry.isDirectory()) {
      n += copyTree(s, d, filter);
    } else if (filter(s)) {
      fs.mkdirSync(path.dirname(d), { recursive: true });
      fs.copyFileSync(s, d);
      n++;
    }
  }
  return n;
}

const editorFile = (f: string): boolean => /\.(html|json|svg|png)$/.test(f) && !f.endsWith('tsconfig.json');
const copied = copyTree(path.join(root, 'nodes'), path.join(root, 'dist', 'nodes'), editorFile);

const examples = path.join(root, 'examples');
fs.rmSync(examples, { recursive: true, force: true });
fs.mkdirSync(examples);
let flows = 0;
// flows/*.json are seeded into the runtime and are examples; flows/examples/*.json are examples only (import them).
for (const dir of [path.join(root, 'flows'), path.join(root, 'flows', 'examples')]) {
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    if (fs.existsSync(path.join(examples, f))) throw new Error(`two example flows named ${f}`);
    fs.copyFileSync(path.join(dir, f), path.join(examples, f));
    flows++;
  }
}
if (process.env.npm_config_loglevel !== 'silent') process.stdout.write(`copied ${copied} editor files and ${flows} example flows\n`);
