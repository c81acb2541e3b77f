/**
 * What grew between two V8 heap snapshots of one process (a standalone tool; the snapshots come from
 * `npm run faults -- --soak S --heap-snapshots T1,T2`, or any `node --heapsnapshot-signal=SIGUSR2` process):
 *
 *   node --max-old-space-size=16000 dist/test/bench/heap-diff.js A.heapsnapshot B.heapsnapshot [--top N] [--paths N]
 *
 * A snapshot is written after a full collection, so its sizes are the live heap, unlike heap-in-use samples.
 * Printed: the live heap of each (sum of self sizes), then the --top (default 25) groups of objects by type and
 * constructor (strings, numbers and code each as one group) ordered by growth in bytes, with the change in count;
 * then, for the --paths (default 3) groups that grew most, retainer paths of a sample of the objects that are new
 * in B (ids not in A: V8 keeps an object's id from one snapshot to the next in a process), each path from the
 * object up through its first retainers, with how many of the sample share it. Objects that only churn (a write
 * buffer's lines, the last message of a dashboard widget) show up as paths ending in those holders.
 */
import * as fs from 'node:fs';

interface Snapshot {
  nodeFields: string[];
  edgeFields: string[];
  nodeTypes: string[];
  edgeTypes: string[];
  nodes: number[];
  edges: number[];
  strings: string[];
}

function load(file: string): Snapshot {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; edge_fields: string[]; node_types: [string[]]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const m = raw.snapshot.meta;
  return { nodeFields: m.node_fields, edgeFields: m.edge_fields, nodeTypes: m.node_types[0], edgeTypes: m.edge_types[0], nodes: raw.nodes, edges: raw.edges, strings: raw.strings };
}

const ONE_GROUP = new Set(['string', 'concatenated string', 'sliced string', 'number', 'code']);

class View {
  readonly n: number;
  readonly count: number;
  private readonly f: Record<'type' | 'name' | 'id' | 'size' | 'edges', number>;

  constructor(readonly s: Snapshot) {
    this.n = s.nodeFields.length;
    this.count = s.nodes.length / this.n;
    const at = (k: string): number => s.nodeFields.indexOf(k);
    this.f = { type: at('type'), name: at('name'), id: at('id'), size: at('self_size'), edges: at('edge_count') };
  }

  type(i: number): string {
    return this.s.nodeTypes[this.s.nodes[i * this.n + this.f.type]];
  }
  id(i: number): number {
    return this.s.nodes[i * this.n + this.f.id];
  }
  size(i: number): number {
    return this.s.nodes[i * this.n + this.f.size];
  }
  edgeCount(i: number): number {
    return this.s.nodes[i * this.n + this.f.edges];
  }
  /** "type:constructor" (strings, numbers and code as one group each). */
  group(i: number): string {
    const t = this.type(i);
    return ONE_GROUP.has(t) ? t : `${t}:${this.s.strings[this.s.nodes[i * this.n + this.f.name]].slice(0, 60)}`;
  }
  label(i: number): string {
    const t = this.type(i);
    const name = this.s.strings[this.s.nodes[i * this.n + this.f.name]];
    return t === 'string' ? `string ${JSON.stringify(name.slice(0, 24))}` : `${t}:${name.slice(0, 40)}`;
  }
  groups(): Map<string, { count: number; bytes: number }> {
    const out = new Map<string, { count: number; bytes: number }>();
    for (let i = 0; i < this.count; i++) {
      const k = this.group(i);
      const g = out.get(k) ?? { count: 0, bytes: 0 };
      g.count++;
      g.bytes += this.size(i);
      out.set(k, g);
    }
    return out;
  }
}

/** Retainers of every node (strong edges only): [node index, edge index] lists. */
function retainers(v: View): { start: Uint32Array; from: Uint32Array; edge: Uint32Array } {
  const { s } = v;
  const E = s.edgeFields.length;
  const eType = s.edgeFields.indexOf('type');
  const eTo = s.edgeFields.indexOf('to_node');
  const weak = s.edgeTypes.indexOf('weak');
  const counts = new Uint32Array(v.count + 1);
  for (let i = 0, e = 0; i < v.count; i++) {
    for (let k = 0; k < v.edgeCount(i); k++, e += E) if (s.edges[e + eType] !== weak) counts[s.edges[e + eTo] / v.n]++;
  }
  const start = new Uint32Array(v.count + 1);
  for (let i = 0; i < v.count; i++) start[i + 1] = start[i] + counts[i];
  const from = new Uint32Array(start[v.count]);
  const edge = new Uint32Array(start[v.count]);
  const fill = new Uint32Array(v.count);
  for (let i = 0, e = 0; i < v.count; i++) {
    for (let k = 0; k < v.edgeCount(i); k++, e += E) {
      if (s.edges[e + eType] === weak) continue;
      const to = s.edges[e + eTo] / v.n;
      const slot = start[to] + fill[to]++;
      from[slot] = i;
      edge[slot] = e;
    }
  }
  return { start, from, edge };
}

function edgeName(s: Snapshot, e: number): string {
  const t = s.edgeTypes[s.edges[e + s.edgeFields.indexOf('type')]];
  const v = s.edges[e + s.edgeFields.indexOf('name_or_index')];
  return t === 'element' || t === 'hidden' ? `[${v}]` : s.strings[v];
}

function main(): void {
  const args = process.argv.slice(2);
  const files = args.filter((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1].startsWith('--')));
  const opt = (k: string, d: number): number => {
    const i = args.indexOf(k);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  if (files.length !== 2) throw new Error('usage: node --max-old-space-size=16000 dist/test/bench/heap-diff.js A.heapsnapshot B.heapsnapshot [--top N] [--paths N]');
  const top = opt('--top', 25);
  const nPaths = opt('--paths', 3);
  const a = new View(load(files[0]));
  const ga = a.groups();
  const oldIds = new Set<number>();
  for (let i = 0; i < a.count; i++) oldIds.add(a.id(i));
  const b = new View(load(files[1]));
  const gb = b.groups();
  const total = (g: Map<string, { bytes: number }>): number => [...g.values()].reduce((x, y) => x + y.bytes, 0);
  const mb = (x: number): string => (x / 1e6).toFixed(2);
  console.log(`live heap (self sizes): A ${mb(total(ga))} MB, B ${mb(total(gb))} MB, growth ${mb(total(gb) - total(ga))} MB`);
  const rows = [...new Set([...ga.keys(), ...gb.keys()])].map((k) => {
    const x = ga.get(k) ?? { count: 0, bytes: 0 };
    const y = gb.get(k) ?? { count: 0, bytes: 0 };
    return { k, bytes: y.bytes - x.bytes, count: y.count - x.count, now: y.bytes };
  });
  rows.sort((p, q) => q.bytes - p.bytes);
  console.log('   growth B  count change     B bytes  group');
  for (const r of rows.slice(0, top)) console.log(`${String(r.bytes).padStart(11)} ${String(r.count).padStart(13)} ${String(r.now).padStart(11)}  ${r.k}`);

  const ret = retainers(b);
  for (const r of rows.slice(0, nPaths)) {
    const fresh: number[] = [];
    for (let i = 0; i < b.count; i++) if (b.group(i) === r.k && !oldIds.has(b.id(i))) fresh.push(i);
    console.log(`\n${r.k}: ${fresh.length} objects new in B; retainer paths of a sample of 20:`);
    const paths = new Map<string, number>();
    for (let k = 0; k < Math.min(20, fresh.length); k++) {
      let i = fresh[Math.floor(((k + 0.5) * fresh.length) / Math.min(20, fresh.length))];
      const seen = new Set([i]);
      const steps: string[] = [];
      for (let d = 0; d < 8; d++) {
        let next = -1;
        let via = -1;
        for (let j = ret.start[i]; j < ret.start[i + 1]; j++) {
          const from = ret.from[j];
          if (seen.has(from) || b.type(from) === 'synthetic') continue;
          next = from;
          via = ret.edge[j];
          break;
        }
        if (next < 0) break;
        steps.push(`${edgeName(b.s, via)} <- ${b.label(next)}`);
        seen.add(next);
        i = next;
      }
      const key = steps.join('  ');
      paths.set(key, (paths.get(key) ?? 0) + 1);
    }
    for (const [p, n] of [...paths].sort((x, y) => y[1] - x[1])) console.log(`  ${n}x ${p}`);
  }
}

try {
  main();
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
}
