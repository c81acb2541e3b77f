/**
 * thingwire-registry: the device registry config node (issue 4). Opens the registry file (one
 * registry per file in the process, shared with the runtime's broker) and exposes it to the
 * thingwire-device nodes that point at it; releases its reference on close.
 */
import { openRegistry } from '../lib/registry/registry';
import type { NodeAPI } from '../lib/red';
import { defaultTimeoutOf, registryFile, type RegistryConfig, type RegistryNode } from './config';
import { installFastClone } from '../lib/clone';

const TYPE = 'thingwire-registry';

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  function RegistryNodeCtor(this: RegistryNode, config: RegistryConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const file = registryFile(config, RED.settings);
    try {
      const timeout = defaultTimeoutOf(config);
      const key = node.credentials?.provisioningKey;
      const registry = openRegistry(file, { defaultLivenessTimeout: timeout, provisioningKey: typeof key === 'string' && key !== '' ? key : undefined });
      node.registry = registry;
      node.defaultLivenessTimeout = registry.defaultLivenessTimeout;
      for (const p of registry.problems) node.warn(RED._(`${TYPE}.warn.problem`, { problem: p }));
      node.log(RED._(`${TYPE}.log.opened`, { file, devices: registry.size.devices, streams: registry.size.streams }));
    } catch (e) {
      node.registryError = (e as Error).message;
      node.error(RED._(`${TYPE}.errors.open`, { file, error: node.registryError }));
    }

    node.on('close', (_removed, done) => {
      const registry = node.registry;
      node.registry = undefined;
      if (!registry) {
        done();
        return;
      }
      registry.close().then(
        () => done(),
        (e: Error) => {
          node.error(RED._(`${TYPE}.errors.close`, { file, error: e.message }));
          done();
        },
      );
    });
  }
  RED.nodes.registerType(TYPE, RegistryNodeCtor, {
    credentials: {
      provisioningKey: { type: 'password' },
    },
  });
};
