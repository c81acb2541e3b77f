/**
 * The bundled runtime's configuration, read from the environment. Every value
 * is checked; anything unknown or malformed stops start-up with a message that
 * names the variable, what it holds, and what it should hold.
 */
import * as path from 'node:path';
import { STORE_ENV_VARS, storeSettingsFromEnv, type StoreSettings } from '../nodes/lib/store/env';

export interface RuntimeConfig {
  /** HTTP port of the editor, dashboard and API. */
  port: number;
  /** Address the HTTP server and the embedded broker bind to. */
  host: string;
  /** Port of the embedded MQTT broker (unused when mqttUrl is set). */
  mqttPort: number;
  /** An external broker to use instead of the embedded one. */
  mqttUrl?: URL;
  /** Where all state lives (Node-RED user dir, flows, credentials, context, stores). */
  dataDir: string;
  /** Replace the flow file in DATA_DIR with the shipped flows on start. */
  reseed: boolean;
  /** Secret that encrypts flow credentials; generated into DATA_DIR when not given. */
  credentialSecret?: string;
  /** The time-series store the shipped flows write to (INFLUX_* variables; embedded by default). */
  store: StoreSettings;
  /** Node-RED log level. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Every environment variable the runtime reads, with its meaning (also printed by --help). */
export const ENV_VARS: Record<string, string> = {
  PORT: 'HTTP port for the editor, dashboard and API (default 1880)',
  HOST: 'address to bind (default 127.0.0.1; anything else exposes the editor)',
  MQTT_PORT: 'port of the embedded MQTT broker (default 1883)',
  MQTT_URL: 'mqtt://host:port of an external broker to use instead of the embedded one',
  DATA_DIR: 'directory for all state (default ./data)',
  THINGWIRE_RESEED: 'set to 1 to replace the flows in DATA_DIR with the shipped flows on start',
  THINGWIRE_CREDENTIAL_SECRET: 'secret that encrypts flow credentials (default: generated once into DATA_DIR)',
  THINGWIRE_LOG_LEVEL: 'fatal, error, warn, info (default), debug or trace',
  THINGWIRE_ALLOW_OPEN_EDITOR: 'set to 1 to bind a non-loopback HOST although the editor has no login yet',
  ...STORE_ENV_VARS,
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export function parseConfig(env: NodeJS.ProcessEnv, cwd: string = process.cwd()): RuntimeConfig {
  const problems: string[] = [];

  // A THINGWIRE_ variable we do not know is almost always a typo that would be silently ignored.
  for (const name of Object.keys(env)) {
    if (name.startsWith('THINGWIRE_') && !(name in ENV_VARS)) {
      problems.push(`${name} is not a Thingwire setting (known: ${Object.keys(ENV_VARS).filter((n) => n.startsWith('THINGWIRE_')).join(', ')})`);
    }
  }

  const before = problems.length;
  const port = readPort(env, 'PORT', 1880, problems);
  const mqttPort = readPort(env, 'MQTT_PORT', 1883, problems);
  const portsOk = problems.length === before;

  const host = (env.HOST ?? '127.0.0.1').trim();
  const hostOk = /^[A-Za-z0-9.:-]+$/.test(host) && host.length <= 253;
  if (!hostOk) {
    problems.push(`HOST=${JSON.stringify(env.HOST)} is not a host name or IP address`);
  }

  const openEditor = env.THINGWIRE_ALLOW_OPEN_EDITOR;
  if (openEditor !== undefined && openEditor !== '' && openEditor !== '0' && openEditor !== '1') {
    problems.push(`THINGWIRE_ALLOW_OPEN_EDITOR=${JSON.stringify(openEditor)} must be 1 or 0`);
  } else if (hostOk && !isLoopback(host) && openEditor !== '1') {
    problems.push(
      `HOST=${host} would expose the flow editor, which has no login yet, to the network; ` +
        'keep the default 127.0.0.1, or set THINGWIRE_ALLOW_OPEN_EDITOR=1 to accept the risk',
    );
  }

  let mqttUrl: URL | undefined;
  if (env.MQTT_URL !== undefined && env.MQTT_URL !== '') {
    try {
      mqttUrl = new URL(env.MQTT_URL);
      if (mqttUrl.protocol !== 'mqtt:') {
        problems.push(`MQTT_URL=${JSON.stringify(env.MQTT_URL)} must use mqtt:// (TLS and websockets are not supported yet)`);
      } else if (mqttUrl.username || mqttUrl.password) {
        problems.push('MQTT_URL must not carry a user name or password (broker credentials are not supported yet)');
      } else if (!mqttUrl.hostname) {
        problems.push(`MQTT_URL=${JSON.stringify(env.MQTT_URL)} has no host`);
      }
    } catch {
      problems.push(`MQTT_URL=${JSON.stringify(env.MQTT_URL)} is not a URL (expected mqtt://host:port)`);
    }
  }

  const dataDir = path.resolve(cwd, env.DATA_DIR && env.DATA_DIR.trim() !== '' ? env.DATA_DIR : 'data');

  let reseed = false;
  const rs = env.THINGWIRE_RESEED;
  if (rs !== undefined && rs !== '') {
    if (rs === '1' || rs === 'true') reseed = true;
    else if (rs === '0' || rs === 'false') reseed = false;
    else problems.push(`THINGWIRE_RESEED=${JSON.stringify(rs)} must be 1 or 0`);
  }

  const secret = env.THINGWIRE_CREDENTIAL_SECRET;
  if (secret !== undefined && secret !== '' && secret.length < 16) {
    problems.push('THINGWIRE_CREDENTIAL_SECRET must be at least 16 characters');
  }

  let logLevel: RuntimeConfig['logLevel'] = 'info';
  const ll = env.THINGWIRE_LOG_LEVEL;
  if (ll !== undefined && ll !== '') {
    if ((LOG_LEVELS as readonly string[]).includes(ll)) logLevel = ll as RuntimeConfig['logLevel'];
    else problems.push(`THINGWIRE_LOG_LEVEL=${JSON.stringify(ll)} must be one of ${LOG_LEVELS.join(', ')}`);
  }

  if ((env.MQTT_URL === undefined || env.MQTT_URL === '') && portsOk && port !== 0 && port === mqttPort) {
    problems.push(`PORT and MQTT_PORT are both ${port}; they must differ`);
  }

  const store = storeSettingsFromEnv(env);
  problems.push(...store.problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host,
    mqttPort,
    mqttUrl,
    dataDir,
    reseed,
    credentialSecret: secret && secret !== '' ? secret : undefined,
    store: store.settings,
    logLevel,
  };
}

function readPort(env: NodeJS.ProcessEnv, name: string, dflt: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^\d{1,5}$/.test(raw.trim())) {
    problems.push(`${name}=${JSON.stringify(raw)} is not a port number (0-65535)`);
    return dflt;
  }
  const n = Number(raw.trim());
  if (n > 65535) {
    problems.push(`${name}=${raw} is not a port number (0-65535)`);
    return dflt;
  }
  return n;
}

/** True when the address only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}
