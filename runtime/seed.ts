/**
 * Seeds Node-RED's flow file from the shipped flows/*.json on first start.
 * After that the integrator's deploys are kept, unless a re-seed is asked for.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FlowNode {
  id: string;
  type: string;
  z?: string;
  [key: string]: unknown;
}

/**
 * Reads and merges the shipped flow files, starter.json first (its tab is the one the editor opens on), then the
 * others by name; the same config node in two files is kept once.
 */
export function loadShippedFlows(flowsDir: string): FlowNode[] {
  const files = fs
    .readdirSync(flowsDir)
    .filter((f) => f.endsWith('.json'))
    .sort((a, b) => (a === 'starter.json' ? -1 : b === 'starter.json' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const byId = new Map<string, { node: FlowNode; file: string }>();
  const out: FlowNode[] = [];
  for (const f of files) {
    const nodes = JSON.parse(fs.readFileSync(path.join(flowsDir, f), 'utf8')) as FlowNode[];
    if (!Array.isArray(nodes)) throw new Error(`${f}: a flow file must hold a JSON array of nodes`);
    for (const n of nodes) {
      if (typeof n?.id !== 'string' || typeof n?.type !== 'string') throw new Error(`${f}: every node needs an id and a type`);
      const seen = byId.get(n.id);
      if (seen) {
        if (JSON.stringify(seen.node) !== JSON.stringify(n)) {
          throw new Error(`${f}: node id ${n.id} is also used, differently, in ${seen.file}`);
        }
        continue;
      }
      byId.set(n.id, { node: n, file: f });
      out.push(n);
    }
  }
  return out;
}

/**
 * Writes the shipped flows into `flowFile` when it does not exist yet (or when
 * `reseed` is set, keeping a backup of the old file). Returns what it did.
 */
export function seedFlowFile(flowsDir: string, flowFile: string, reseed: boolean): 'seeded' | 'reseeded' | 'kept' {
  const exists = fs.existsSync(flowFile);
  if (exists && !reseed) return 'kept';
  const flows = loadShippedFlows(flowsDir);
  fs.mkdirSync(path.dirname(flowFile), { recursive: true });
  if (exists) fs.copyFileSync(flowFile, `${flowFile}.${Date.now()}.bak`);
  const tmp = `${flowFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(flows, null, 2));
  fs.renameSync(tmp, flowFile);
  return exists ? 'reseeded' : 'seeded';
}
