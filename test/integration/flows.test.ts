/**
 * Every shipped flow in flows/ must import into a fresh runtime with no unknown
 * node types and deploy without errors or warnings.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, sleep, startRuntime, waitFor, type Runtime } from '../support/services';

jest.setTimeout(60_000);

const FLOWS_DIR = path.join(ROOT, 'flows');
// flows/*.json (seeded into the runtime) and flows/examples/*.json (import only), as paths under flows/.
const flowFiles = [
  ...fs.readdirSync(FLOWS_DIR).filter((f) => f.endsWith('.json')),
  ...fs.readdirSync(path.join(FLOWS_DIR, 'examples')).filter((f) => f.endsWith('.json')).map((f) => `examples/${f}`),
].sort();

type FlowNode = { id: string; type: string; z?: string; name?: string; [k: string]: unknown };

describe('shipped flows', () => {
  let rt: Runtime;
  let installed: Set<string>;

  beforeAll(async () => {
    rt = await startRuntime({ THINGWIRE_LOG_LEVEL: 'info' });
    const nodes = (await (await fetch(`${rt.url}/nodes`, { headers: { Accept: 'application/json' } })).json()) as Array<{ types: string[]; enabled: boolean }>;
    installed = new Set(nodes.filter((n) => n.enabled).flatMap((n) => n.types));
  });
  afterAll(async () => {
    await rt?.stop();
  });

  test('there is at least the starter flow', () => {
    expect(flowFiles).toContain('starter.json');
  });

  test.each(flowFiles)('%s uses only installed node types, names its nodes and carries config versions', (file) => {
    const flow = JSON.parse(fs.readFileSync(path.join(FLOWS_DIR, file), 'utf8')) as FlowNode[];
    const types = new Set(flow.map((n) => n.type).filter((t) => t !== 'tab' && t !== 'group' && !t.startsWith('subflow')));
    const unknown = [...types].filter((t) => !installed.has(t));
    expect(unknown).toEqual([]);
    for (const n of flow) {
      if (n.type.startsWith('thingwire-')) expect(n.v).toBeGreaterThanOrEqual(1);
      // Every node on a tab has a name, except comments, which are their own label.
      if (n.z && n.type !== 'comment') expect(typeof n.name === 'string' && n.name.length > 0 ? n.type : `${n.type} ${n.id} has no name`).toBe(n.type);
    }
    const ids = flow.map((n) => n.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test.each(flowFiles)('%s deploys into the runtime without errors or warnings', async (file) => {
    const flow = JSON.parse(fs.readFileSync(path.join(FLOWS_DIR, file), 'utf8')) as FlowNode[];
    const before = rt.output().length;
    const res = await fetch(`${rt.url}/flows`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify(flow),
    });
    expect(res.status).toBe(204);
    await waitFor('flows to start', () => rt.output().slice(before).includes('Started flows'), 15_000);
    // Give the nodes a moment to report asynchronous errors (broker connection, dashboard).
    await sleep(1500);
    const log = rt.output().slice(before);
    expect(log).not.toMatch(/Waiting for missing types/);
    expect(log.split('\n').filter((l) => /\[(error|warn)\]/.test(l))).toEqual([]);
    const deployed = (await (await fetch(`${rt.url}/flows`)).json()) as FlowNode[];
    expect(deployed.map((n) => n.id).sort()).toEqual(flow.map((n) => n.id).sort());
  });
});
