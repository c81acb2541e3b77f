/**
 * runtime/seed.ts: the flow file in DATA_DIR is seeded from flows/*.json on first start,
 * kept afterwards, and replaced (with a backup) only when a re-seed is asked for.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadShippedFlows, seedFlowFile, type FlowNode } from '../../runtime/seed';

let tmp: string;
let flowsDir: string;
let dataDir: string;
let flowFile: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'thingwire-seed-test-'));
  flowsDir = path.join(tmp, 'flows');
  dataDir = path.join(tmp, 'data');
  flowFile = path.join(dataDir, 'flows.json');
  fs.mkdirSync(flowsDir);
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function writeFlow(name: string, nodes: unknown): void {
  fs.writeFileSync(path.join(flowsDir, name), typeof nodes === 'string' ? nodes : JSON.stringify(nodes, null, 2));
}

function readFlowFile(): FlowNode[] {
  return JSON.parse(fs.readFileSync(flowFile, 'utf8')) as FlowNode[];
}

const BROKER: FlowNode = { id: 'broker', type: 'mqtt-broker', name: 'Thingwire broker', broker: 'localhost', port: '1883' };
const TAB_A: FlowNode[] = [
  { id: 'tabA', type: 'tab', label: 'A' },
  { id: 'a1', type: 'mqtt in', z: 'tabA', broker: 'broker', topic: 'devices/+/telemetry', wires: [['a2']] },
  { id: 'a2', type: 'debug', z: 'tabA', wires: [] },
  BROKER,
];
const TAB_B: FlowNode[] = [
  { id: 'tabB', type: 'tab', label: 'B' },
  { id: 'b1', type: 'mqtt in', z: 'tabB', broker: 'broker', topic: 'devices/+/+', wires: [] },
  { ...BROKER },
];

describe('loadShippedFlows', () => {
  test('reads one file', () => {
    writeFlow('a.json', TAB_A);
    expect(loadShippedFlows(flowsDir)).toEqual(TAB_A);
  });

  test('merges files in name order; an identical shared config node is kept once', () => {
    writeFlow('b-second.json', TAB_B);
    writeFlow('a-first.json', TAB_A);
    const flows = loadShippedFlows(flowsDir);
    expect(flows.map((n) => n.id)).toEqual(['tabA', 'a1', 'a2', 'broker', 'tabB', 'b1']);
    expect(flows.filter((n) => n.id === 'broker')).toEqual([BROKER]);
  });

  test('starter.json comes first (the editor opens on its tab), then the others in name order', () => {
    writeFlow('zeta.json', [{ id: 'tabZ', type: 'tab', label: 'Z' }]);
    writeFlow('starter.json', TAB_B);
    writeFlow('api.json', TAB_A);
    expect(loadShippedFlows(flowsDir).map((n) => n.id)).toEqual(['tabB', 'b1', 'broker', 'tabA', 'a1', 'a2', 'tabZ']);
  });

  test('only .json files are read', () => {
    writeFlow('a.json', TAB_A);
    writeFlow('README.md', '# not a flow');
    writeFlow('b.json.bak', 'not json');
    fs.mkdirSync(path.join(flowsDir, 'sub'));
    expect(loadShippedFlows(flowsDir)).toEqual(TAB_A);
  });

  test('an empty directory gives no nodes', () => {
    expect(loadShippedFlows(flowsDir)).toEqual([]);
  });

  test('the same id used differently in two files is rejected, naming both files', () => {
    writeFlow('a.json', TAB_A);
    writeFlow('b.json', [{ id: 'broker', type: 'mqtt-broker', name: 'Other broker' }]);
    expect(() => loadShippedFlows(flowsDir)).toThrow('b.json: node id broker is also used, differently, in a.json');
  });

  test('a conflicting tab or flow node id is rejected too', () => {
    writeFlow('a.json', TAB_A);
    writeFlow('b.json', [{ id: 'a1', type: 'debug', z: 'tabA', wires: [] }]);
    expect(() => loadShippedFlows(flowsDir)).toThrow('b.json: node id a1 is also used, differently, in a.json');
  });

  test('a file that is not an array is rejected', () => {
    writeFlow('a.json', { id: 'x', type: 'tab' });
    expect(() => loadShippedFlows(flowsDir)).toThrow('a.json: a flow file must hold a JSON array of nodes');
  });

  test.each<[string, unknown[]]>([
    ['no id', [{ type: 'tab' }]],
    ['no type', [{ id: 'x' }]],
    ['a numeric id', [{ id: 1, type: 'tab' }]],
    ['null', [null]],
    ['a string', ['tab']],
  ])('a node with %s is rejected', (_label, nodes) => {
    writeFlow('a.json', nodes);
    expect(() => loadShippedFlows(flowsDir)).toThrow('a.json: every node needs an id and a type');
  });

  test('malformed JSON is an error', () => {
    writeFlow('a.json', '[{"id": "x",');
    expect(() => loadShippedFlows(flowsDir)).toThrow(SyntaxError);
  });

  test('a missing flows directory is an error', () => {
    expect(() => loadShippedFlows(path.join(tmp, 'nope'))).toThrow(/ENOENT/);
  });
});

describe('seedFlowFile', () => {
  test('a fresh data dir is created and seeded', () => {
    writeFlow('a.json', TAB_A);
    expect(fs.existsSync(dataDir)).toBe(false);
    expect(seedFlowFile(flowsDir, flowFile, false)).toBe('seeded');
    expect(readFlowFile()).toEqual(TAB_A);
    // Written atomically: no temporary file is left behind.
    expect(fs.readdirSync(dataDir)).toEqual(['flows.json']);
  });

  test('the seeded file is the merge of every shipped file', () => {
    writeFlow('a.json', TAB_A);
    writeFlow('b.json', TAB_B);
    seedFlowFile(flowsDir, flowFile, false);
    expect(readFlowFile()).toEqual(loadShippedFlows(flowsDir));
    expect(readFlowFile().filter((n) => n.id === 'broker')).toHaveLength(1);
  });

  test('reseed on a fresh dir is a plain seed, without a backup', () => {
    writeFlow('a.json', TAB_A);
    expect(seedFlowFile(flowsDir, flowFile, true)).toBe('seeded');
    expect(fs.readdirSync(dataDir)).toEqual(['flows.json']);
  });

  test("an existing flow file (the integrator's deploys) is kept byte for byte", () => {
    writeFlow('a.json', TAB_A);
    fs.mkdirSync(dataDir);
    const mine = '[{"id":"mine","type":"tab","label":"my flow"}]';
    fs.writeFileSync(flowFile, mine);
    expect(seedFlowFile(flowsDir, flowFile, false)).toBe('kept');
    expect(fs.readFileSync(flowFile, 'utf8')).toBe(mine);
    expect(fs.readdirSync(dataDir)).toEqual(['flows.json']);
  });

  test('an existing flow file is kept even when the shipped flows are broken (they are not read)', () => {
    writeFlow('a.json', 'not json');
    fs.mkdirSync(dataDir);
    fs.writeFileSync(flowFile, '[]');
    expect(seedFlowFile(flowsDir, flowFile, false)).toBe('kept');
  });

  test('an existing empty flow file is kept too', () => {
    writeFlow('a.json', TAB_A);
    fs.mkdirSync(dataDir);
    fs.writeFileSync(flowFile, '');
    expect(seedFlowFile(flowsDir, flowFile, false)).toBe('kept');
    expect(fs.readFileSync(flowFile, 'utf8')).toBe('');
  });

  test('reseed replaces the flow file and keeps a backup of the old one', () => {
    writeFlow('a.json', TAB_A);
    fs.mkdirSync(dataDir);
    const mine = '[{"id":"mine","type":"tab","label":"my flow"}]';
    fs.writeFileSync(flowFile, mine);
    expect(seedFlowFile(flowsDir, flowFile, true)).toBe('reseeded');
    expect(readFlowFile()).toEqual(TAB_A);
    const backups = fs.readdirSync(dataDir).filter((f) => f !== 'flows.json');
    expect(backups).toHaveLength(1);
    expect(backups[0]).toMatch(/^flows\.json\.\d{13}\.bak$/);
    expect(fs.readFileSync(path.join(dataDir, backups[0]), 'utf8')).toBe(mine);
  });

  test('a reseed that fails on conflicting shipped flows leaves the old file untouched and makes no backup', () => {
    writeFlow('a.json', TAB_A);
    writeFlow('b.json', [{ id: 'broker', type: 'mqtt-broker', name: 'Other' }]);
    fs.mkdirSync(dataDir);
    fs.writeFileSync(flowFile, '[]');
    expect(() => seedFlowFile(flowsDir, flowFile, true)).toThrow('node id broker is also used, differently');
    expect(fs.readFileSync(flowFile, 'utf8')).toBe('[]');
    expect(fs.readdirSync(dataDir)).toEqual(['flows.json']);
  });

  test('a first seed that fails writes nothing', () => {
    writeFlow('a.json', { not: 'an array' });
    expect(() => seedFlowFile(flowsDir, flowFile, false)).toThrow('a flow file must hold a JSON array');
    expect(fs.existsSync(flowFile)).toBe(false);
  });

  test('the shipped flows in this repository seed cleanly', () => {
    const shipped = path.resolve(__dirname, '..', '..', 'flows');
    expect(seedFlowFile(shipped, flowFile, false)).toBe('seeded');
    const flows = readFlowFile();
    expect(flows.length).toBeGreaterThan(0);
    expect(new Set(flows.map((n) => n.id)).size).toBe(flows.length);
  });
});
