/**
 * thingwire-registry (the device registry config node) in a real Node-RED runtime: where its file
 * lives (DATA_DIR by default), its provisioning key credential, its liveness default, how it reports
 * a registry it cannot open or a file it had to move aside, sharing one file between nodes, and
 * releasing the registry on close (saved, and gone from the process).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import registryNode from '../../nodes/registry/registry';
import type { RegistryNode } from '../../nodes/registry/config';
import { openRegistryFiles } from '../../nodes/lib/registry/registry';
import { errorCalls, getNode, helper, setDataDir, storeHelper, translate, useHelper, useTempDirs, withCatalogue, type FlowNodeConfig, type SpyCall, type TestNode } from './harness';

useHelper();
const tempDir = useTempDirs('registry-node');

const NODES = [withCatalogue(registryNode)];

function regNode(id = 'reg1'): RegistryNode {
  return getNode(id) as unknown as RegistryNode;
}

function warnCalls(node: TestNode): SpyCall[] {
  return (node as unknown as { warn: { getCalls(): SpyCall[] } }).warn.getCalls().filter((c) => c.thisValue === node);
}

async function start(config: Partial<FlowNodeConfig> = {}, credentials?: object, more: FlowNodeConfig[] = []): Promise<void> {
  await helper.load(NODES, [{ id: 'reg1', type: 'thingwire-registry', name: 'devices', v: 1, ...config }, ...more], credentials);
}

test('the credential is a password and the catalogue has every key the node uses', async () => {
  await start();
  expect(storeHelper.credentials.getDefinition('thingwire-registry')).toEqual({ provisioningKey: { type: 'password' } });
  for (const key of ['log.opened', 'warn.problem', 'errors.open', 'errors.close', 'label.default']) expect(translate(`thingwire-registry.${key}`)).not.toBe(`thingwire-registry.${key}`);
});

test('by default the file is <DATA_DIR>/registry/registry.json; devices are saved there on close and the registry is released', async () => {
  const dir = tempDir();
  setDataDir(dir);
  await start();
  const node = regNode();
  const file = path.join(dir, 'registry', 'registry.json');
  expect(node.registryError).toBeUndefined();
  expect(node.registry?.file).toBe(file);
  expect(node.defaultLivenessTimeout).toBe(300_000);
  expect(errorCalls(getNode('reg1'))).toEqual([]);
  const { token } = node.registry!.createDevice({ id: 'pico-1' });
  expect(openRegistryFiles()).toContain(file);

  await helper.unload();
  expect(node.registry).toBeUndefined();
  expect(openRegistryFiles()).not.toContain(file);
  const text = fs.readFileSync(file, 'utf8');
  expect(text).toContain('"pico-1"');
  expect(text).not.toContain(token);

  // A redeploy reads it back.
  await start();
  expect(regNode().registry?.authenticate('pico-1', token).ok).toBe(true);
});

test('a relative file is taken from DATA_DIR, an absolute one as it is; the liveness default is a duration', async () => {
  const dir = tempDir();
  setDataDir(dir);
  await start({ file: 'mine/devices.json', defaultLivenessTimeout: '90s' });
  expect(regNode().registry?.file).toBe(path.join(dir, 'mine', 'devices.json'));
  expect(regNode().defaultLivenessTimeout).toBe(90_000);
  expect(regNode().registry?.defaultLivenessTimeout).toBe(90_000);
  await helper.unload();
  const abs = path.join(tempDir(), 'abs.json');
  await start({ file: abs, defaultLivenessTimeout: 120000 });
  expect(regNode().registry?.file).toBe(abs);
  expect(regNode().defaultLivenessTimeout).toBe(120_000);
});

test('the provisioning key credential turns provisioning on; without it provisioning is forbidden', async () => {
  setDataDir(tempDir());
  await start({}, { reg1: { provisioningKey: 'open-sesame' } });
  const reg = regNode().registry!;
  expect(() => reg.provision('wrong', { id: 'd1' })).toThrow('wrong provisioning key');
  const { device, token } = reg.provision('open-sesame', { id: 'd1' });
  expect(device.id).toBe('d1');
  expect(reg.authenticate('d1', token).ok).toBe(true);
  await helper.unload();

  await start();
  expect(() => regNode().registry!.provision('open-sesame', { id: 'd2' })).toThrow('provisioning is off: no provisioning key is configured');
});

test('two registry nodes naming one file share one registry; each keeps its own provisioning key', async () => {
  setDataDir(tempDir());
  await start({}, { reg1: { provisioningKey: 'k1' }, reg2: { provisioningKey: 'k2' } }, [{ id: 'reg2', type: 'thingwire-registry', v: 1, defaultLivenessTimeout: '1m' }]);
  const a = regNode('reg1').registry!;
  const b = regNode('reg2').registry!;
  a.provision('k1', { id: 'd1' });
  expect(b.getDevice('d1')).toBeDefined();
  expect(() => b.provision('k1', { id: 'd2' })).toThrow('wrong provisioning key');
  // The first node to open the file (flow order) decided the timeout: the second says so.
  expect(regNode('reg1').defaultLivenessTimeout).toBe(300_000);
  expect(regNode('reg2').defaultLivenessTimeout).toBe(300_000);
  expect(warnCalls(getNode('reg1'))).toEqual([]);
  expect(warnCalls(getNode('reg2')).map((c) => String(c.args[0]))).toEqual([expect.stringMatching(/^registry: registry .*registry\.json was already open with other defaultLivenessTimeout; the first open's settings apply$/)]);
});

test('a bad liveness default is an error: no registry, registryError set, node.error with the reason', async () => {
  setDataDir(tempDir());
  await start({ defaultLivenessTimeout: '5 parsecs' });
  const node = regNode();
  expect(node.registry).toBeUndefined();
  expect(node.registryError).toBe('default liveness timeout must be a duration such as "500ms", "30s", "5m", "1h" or "1d" (or a number of ms), got "5 parsecs"');
  const errors = errorCalls(getNode('reg1')).map((c) => c.args[0]);
  expect(errors).toHaveLength(1);
  expect(errors[0]).toBe(`thingwire-registry could not open ${path.join(String(storeHelper.settings().thingwireDataDir), 'registry', 'registry.json')}: ${node.registryError}`);
  // Closing a node without a registry is fine.
  await helper.unload();
});

test('a file that cannot be read is an error, and is left as it is', async () => {
  const dir = tempDir();
  setDataDir(dir);
  const file = path.join(dir, 'registry', 'registry.json');
  fs.mkdirSync(file, { recursive: true });
  await start({ defaultLivenessTimeout: '10s' });
  expect(regNode().registry).toBeUndefined();
  expect(regNode().registryError).toMatch(/^cannot read the registry file .*registry\.json: EISDIR/);
  expect(errorCalls(getNode('reg1'))).toHaveLength(1);
  expect(fs.statSync(file).isDirectory()).toBe(true);
});

test('a corrupt file is moved aside with a warning, and the registry starts empty', async () => {
  const dir = tempDir();
  setDataDir(dir);
  const file = path.join(dir, 'registry', 'registry.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '{"format": "thingwire-registry", "devi');
  await start();
  const node = regNode();
  expect(node.registry?.size).toEqual({ devices: 0, streams: 0 });
  const warned = warnCalls(getNode('reg1')).map((c) => String(c.args[0]));
  expect(warned).toHaveLength(1);
  expect(warned[0]).toMatch(/^registry: registry file .*registry\.json is unusable \(not JSON: .*\); moved to .*registry\.json\.corrupt-\d+, starting empty$/);
  expect(fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith('registry.json.corrupt-'))).toHaveLength(1);
});
