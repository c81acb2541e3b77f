/**
 * thingwire-store: the time-series store config node. One per store; the
 * write and query nodes point at it. Owns a StoreService (../lib/store/service):
 * the backend, the batch writer and its disk spool.
 */
import { storeSettingsFromEnv, type StoreSettings } from '../lib/store/env';
import { StoreService } from '../lib/store/service';
import { configBool, configInt, type NodeAPI } from '../lib/red';
import { thingwireDataDir, type StoreConfig, type StoreCredentials, type StoreNode } from './config';
import { installFastClone } from '../lib/clone';

const TYPE = 'thingwire-store';

function settingsFrom(config: StoreConfig, creds: StoreCredentials): { settings: StoreSettings; problems: string[] } {
  switch (config.backend) {
    case 'embedded':
      return { settings: { backend: 'embedded' }, problems: [] };
    case 'influxdb-v1': {
      const problems = [];
      if (!config.url) problems.push('URL is required');
      if (!config.db) problems.push('database is required');
      return { settings: { backend: 'influxdb-v1', url: config.url ?? '', db: config.db ?? '', rp: config.rp || undefined, username: creds.username || undefined, password: creds.password || undefined }, problems };
    }
    case 'influxdb-v2': {
      const problems = [];
      if (!config.url) problems.push('URL is required');
      if (!config.bucket) problems.push('bucket is required');
      return {
        settings: { backend: 'influxdb-v2', version: config.version === '3' ? 3 : 2, url: config.url ?? '', token: creds.token ?? '', org: config.org ?? '', bucket: config.bucket ?? '' },
        problems,
      };
    }
    default:
      return storeSettingsFromEnv(process.env);
  }
}

export = function register(RED: NodeAPI): void {
  installFastClone(RED);
  function StoreNodeCtor(this: StoreNode, config: StoreConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const { settings, problems } = settingsFrom(config, node.credentials ?? {});
    if (problems.length > 0) {
      node.storeError = problems.join('; ');
      node.error(RED._(`${TYPE}.errors.config`, { error: node.storeError }));
    } else {
      try {
        node.service = new StoreService({
          id: node.id,
          settings,
          dataDir: thingwireDataDir(RED.settings),
          embeddedFile: config.embeddedFile || undefined,
          batchSize: configInt(config.batchSize, 5000),
          flushIntervalMs: configInt(config.flushInterval, 1000),
          spoolMaxBytes: configInt(config.spoolMaxMB, 1024) * 1024 * 1024,
          spoolPolicy: config.spoolPolicy === 'drop-oldest' ? 'drop-oldest' : 'reject-new',
          createDatabase: configBool(config.createDb, false),
        });
        node.log(RED._(`${TYPE}.log.started`, { store: node.service.description }));
      } catch (e) {
        node.storeError = (e as Error).message;
        node.error(RED._(`${TYPE}.errors.start`, { error: node.storeError }));
      }
    }

    node.on('close', (_removed, done) => {
      const service = node.service;
      node.service = undefined;
      if (!service) {
        done();
        return;
      }
      // Within Node-RED's close timeout (15 s): flush for up to 10 s, spool the rest.
      service.close(10_000).then(
        () => done(),
        (e: Error) => {
          node.error(RED._(`${TYPE}.errors.close`, { error: e.message }));
          done();
        },
      );
    });
  }
  RED.nodes.registerType(TYPE, StoreNodeCtor, {
    credentials: {
      username: { type: 'text' },
      password: { type: 'password' },
      token: { type: 'password' },
    },
  });
};
