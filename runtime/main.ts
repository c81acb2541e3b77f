/**
 * Thingwire's bundled runtime: Node-RED 4 with the Thingwire nodes and the
 * FlowFuse dashboard, an embedded MQTT broker, and the shipped flows; one
 * command, no external service. `npm start` runs this file.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import express from 'express';
import { createSettings } from '../settings';
import { openRegistry, type RegistryHandle } from '../nodes/lib/registry/registry';
import { SERVICE_USER, startEmbeddedBroker, type EmbeddedBroker } from './broker';
import { ConfigError, ENV_VARS, parseConfig, type RuntimeConfig } from './config';
import { HealthMonitor, type HealthReport } from './health';
import { metricsHandler, RuntimeMetrics, type HooksApi } from './metrics';
import { missingNodeFlags } from './node-flags';
import { seedFlowFile } from './seed';

/** The package root (dist/runtime/main.js -> ../..). */
export const PKG_DIR = path.resolve(__dirname, '..', '..');
/**
 * How long after the start the embedded broker holds back QoS 1 publishes nobody subscribes to yet (refused: the
 * device sends them again), so that what devices publish while the flows start is not dropped: on a first start there
 * is no session of the flows' input yet to queue it for (see broker.ts).
 */
const HOLD_UNTIL_SUBSCRIBED_MS = 60_000;

interface NodeRed {
  init(server: http.Server, settings: object): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  httpAdmin: express.Express;
  httpNode: express.Express;
  events: NodeJS.EventEmitter;
  hooks: HooksApi;
  log: { info(m: string): void; warn(m: string): void; error(m: string): void };
}

export interface RunningRuntime {
  config: RuntimeConfig;
  url: string;
  mqttUrl: string;
  stop(): Promise<void>;
}

function log(m: string): void {
  process.stdout.write(`[thingwire] ${m}\n`);
}

/** Reads the credential secret from the environment, or from DATA_DIR (generated once). */
function credentialSecret(cfg: RuntimeConfig): string {
  if (cfg.credentialSecret) return cfg.credentialSecret;
  const file = path.join(cfg.dataDir, 'credential-secret');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const secret = crypto.randomBytes(32).toString('hex');
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  log(`generated a credential secret in ${file}; keep it with the data (or set THINGWIRE_CREDENTIAL_SECRET)`);
  return secret;
}

/**
 * The provisioning key: THINGWIRE_PROVISIONING_KEY, else DATA_DIR/provisioning-key (generated once, mode 0600, read
 * by `npm run simulate` too), or none with THINGWIRE_PROVISIONING_KEY=off.
 */
function provisioningKey(cfg: RuntimeConfig): string | undefined {
  if (cfg.provisioningOff) return undefined;
  if (cfg.provisioningKey) return cfg.provisioningKey;
  const file = provisioningKeyPath(cfg.dataDir);
  try {
    const key = fs.readFileSync(file, 'utf8').trim();
    if (key.length >= 16) return key;
    throw new Error(`${file} holds no usable key (at least 16 characters): fix or delete it`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = crypto.randomBytes(24).toString('base64url');
  fs.writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
  log(`generated a provisioning key in ${file}: devices register themselves with user = their id, password provision:<key> (npm run simulate reads it there)`);
  return key;
}

/** Where the runtime keeps a generated provisioning key. */
export function provisioningKeyPath(dataDir: string): string {
  return path.join(dataDir, 'provisioning-key');
}

/** The registry file the runtime shares with the flows' thingwire-registry node (its default file). */
export function registryPath(dataDir: string): string {
  return path.join(dataDir, 'registry', 'registry.json');
}

export async function startRuntime(cfg: RuntimeConfig): Promise<RunningRuntime> {
  fs.mkdirSync(cfg.dataDir, { recursive: true });
  const secret = credentialSecret(cfg);
  const provKey = provisioningKey(cfg);

  // The device registry: one per file in the process, so the broker and the flows' thingwire-registry
  // node (which opens <DATA_DIR>/registry/registry.json by default) see the same devices.
  const registry: RegistryHandle = openRegistry(registryPath(cfg.dataDir), { provisioningKey: provKey });
  for (const p of registry.problems) log(`registry: ${p}`);

  // MQTT: the embedded broker, or an external one the flows connect to instead.
  let broker: EmbeddedBroker | undefined;
  let mqttHost: string;
  let mqttPort: number;
  try {
    if (cfg.mqttUrl) {
      mqttHost = cfg.mqttUrl.hostname;
      mqttPort = cfg.mqttUrl.port ? Number(cfg.mqttUrl.port) : 1883;
    } else {
      // The flows' service account (see broker.ts): a fresh random password at every start.
      const service = { username: SERVICE_USER, password: crypto.randomBytes(24).toString('base64url') };
      process.env.THINGWIRE_MQTT_USER = service.username;
      process.env.THINGWIRE_MQTT_PASSWORD = service.password;
      broker = await startEmbeddedBroker(cfg.mqttPort, cfg.host, log, {
        registry,
        provisioningKey: provKey,
        allowAnonymous: cfg.mqttAnonymous,
        service,
      }, { publishLogDir: path.join(cfg.dataDir, 'mqtt-log'), holdUntilSubscribedMs: HOLD_UNTIL_SUBSCRIBED_MS, inProcess: cfg.mqttInProcess });
      mqttHost = cfg.host === '0.0.0.0' || cfg.host === '::' ? '127.0.0.1' : cfg.host;
      mqttPort = broker.port;
      if (cfg.mqttAnonymous) {
        log(`WARNING: THINGWIRE_MQTT_ANONYMOUS=1: anyone who reaches MQTT port ${mqttPort} may publish as any device (a demo switch; unset it in production)`);
      }
      log(`mqtt: devices log in with their id and token${provKey ? ', or register themselves with the provisioning key' : ''}`);
    }
  } catch (e) {
    await registry.close();
    throw e;
  }
  const mqttUrl = `mqtt://${mqttHost.includes(':') ? `[${mqttHost}]` : mqttHost}:${mqttPort}`;
  // The shipped flows' broker config reads these.
  process.env.THINGWIRE_MQTT_HOST = mqttHost;
  process.env.THINGWIRE_MQTT_PORT = String(mqttPort);

  const settings = createSettings(cfg, PKG_DIR, secret);
  const seeded = seedFlowFile(path.join(PKG_DIR, 'flows'), path.join(settings.userDir, settings.flowFile), cfg.reseed);
  log(seeded === 'kept' ? `using the flows in ${settings.userDir}` : `${seeded} ${settings.userDir} from the shipped flows`);

  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const RED = require('node-red') as NodeRed;
  const app = express();
  app.disable('x-powered-by');
  const server = http.createServer(app);
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  const health = new HealthMonitor({ broker, mqttUrl: cfg.mqttUrl ? mqttUrl : undefined, events: RED.events });
  // The same report for the flows (the dashboard's Overview page): global.get('thingwireHealth')() in a function node.
  settings.functionGlobalContext = { thingwireHealth: (): Promise<HealthReport> => health.report() };
  app.get('/api/v1/health', (_req, res) => {
    health.report().then(
      (h) => res.status(h.status === 'ok' ? 200 : 503).json(h),
      (e: Error) => res.status(500).json({ status: 'error', error: e.message }),
    );
  });
  // Prometheus metrics (runtime/metrics.ts): message counts from Node-RED's hooks, stores, devices, the broker, the process.
  const metrics = new RuntimeMetrics({ registry, broker });
  app.get('/api/v1/metrics', metricsHandler(metrics));

  RED.init(server, settings);
  metrics.attach(RED.hooks);
  app.use(settings.httpAdminRoot, RED.httpAdmin);
  app.use(settings.httpNodeRoot, RED.httpNode);
  // Errors before a flow sees the request (the http-in node's body parser: malformed JSON, a body over the limit)
  // answer in the API's JSON shape, without Express's HTML page and stack trace.
  app.use((err: { type?: string; status?: number; statusCode?: number; message?: string }, _req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (res.headersSent) return next(err);
    const status = err?.status ?? err?.statusCode ?? 500;
    if (err?.type === 'entity.parse.failed') {
      res.status(400).json({ error: { code: 'malformed_json', message: `the request body is not valid JSON: ${err.message ?? ''}` } });
    } else if (err?.type === 'entity.too.large') {
      res.status(413).json({ error: { code: 'payload_too_large', message: 'the request body is too large' } });
    } else if (status >= 400 && status < 500) {
      res.status(status).json({ error: { code: 'bad_request', message: err?.message ?? 'bad request' } });
    } else {
      log(`http error: ${err?.message ?? String(err)}`);
      res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as import('node:net').AddressInfo).port;
  const hostForUrl = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host;
  const url = `http://${hostForUrl}:${port}`;

  await RED.start();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log('stopping: closing flows');
      try {
        await RED.stop();
      } catch (e) {
        log(`error while stopping flows: ${(e as Error).message}`);
      }
      health.close();
      metrics.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      if (broker) await broker.close();
      try {
        await registry.close();
      } catch (e) {
        log(`error while closing the registry: ${(e as Error).message}`);
      }
      log('stopped');
    })();
    return stopping;
  };

  const missing = missingNodeFlags();
  if (missing.length > 0) log(`note: started without ${missing.join(' ')} (npm start sets it; without it ingest costs ~15 % more CPU)`);
  // Machine-readable, so tests and scripts can find the ports when started with 0.
  log(`ready editor=${url}/ dashboard=${url}/dashboard api=${url}/api/v1 mqtt=${mqttUrl}${broker ? ' (embedded)' : ''} data=${cfg.dataDir}`);
  return { config: cfg, url, mqttUrl, stop };
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write('Thingwire runtime. Environment variables:\n');
    for (const [k, v] of Object.entries(ENV_VARS)) process.stdout.write(`  ${k.padEnd(30)} ${v}\n`);
    return;
  }
  let cfg: RuntimeConfig;
  try {
    cfg = parseConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`[thingwire] cannot start: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  let rt: RunningRuntime;
  try {
    rt = await startRuntime(cfg);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const hint = err.code === 'EADDRINUSE' ? ' (the port is in use: set PORT / MQTT_PORT, or stop the other process)' : '';
    process.stderr.write(`[thingwire] cannot start: ${err.message}${hint}\n`);
    process.exit(1);
  }
  let signals = 0;
  const onSignal = (sig: string): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`[thingwire] ${sig} again: exiting now\n`);
      process.exit(1);
    }
    log(`${sig} received`);
    const force = setTimeout(() => {
      process.stderr.write('[thingwire] shutdown took over 20 s: exiting\n');
      process.exit(1);
    }, 20_000);
    force.unref();
    rt.stop().then(
      () => process.exit(0),
      (e) => {
        process.stderr.write(`[thingwire] shutdown failed: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}

if (require.main === module) {
  void main();
}
