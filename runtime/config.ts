/**
 * The bundled runtime's configuration, read from the environment. Every value
 * is checked; anything unknown or malformed stops start-up with a message that
 * names the variable, what it holds, and what it should hold.
 */
import * as path from 'node:path';
import { STORE_ENV_VARS, storeSettingsFromEnv, type StoreSettings } from '../nodes/lib/store/env';
import { maxAnswerPoints } from '../nodes/lib/store/query-plan';
import { embeddedThread } from '../nodes/lib/store/service';
import { WORKER_NICE_ENV, workerNiceProblem } from '../nodes/lib/thread-priority';

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
  /** Devices may register themselves on the embedded broker with password `provision:<key>`; undefined = the key in DATA_DIR/provisioning-key (generated once), unless provisioningOff. */
  provisioningKey?: string;
  /** THINGWIRE_PROVISIONING_KEY=off: devices cannot register themselves. */
  provisioningOff: boolean;
  /** Demo switch: anonymous MQTT clients may publish (as any device) on the embedded broker. */
  mqttAnonymous: boolean;
  /** The embedded broker delivers to the flows' thingwire-mqtt-in nodes in process (default on). */
  mqttInProcess: boolean;
  /** The editor's login: user name, and the bcrypt hash of its password (undefined = no login). */
  adminUser: string;
  adminPasswordHash?: string;
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
  THINGWIRE_ALLOW_OPEN_EDITOR: 'set to 1 to bind a non-loopback HOST without an editor login (THINGWIRE_ADMIN_PASSWORD_HASH)',
  THINGWIRE_ADMIN_USER: 'user name of the editor login (default admin; needs THINGWIRE_ADMIN_PASSWORD_HASH)',
  THINGWIRE_ADMIN_PASSWORD_HASH: 'bcrypt hash of the editor password (make one with: npx node-red admin hash-pw); turns the editor login on',
  THINGWIRE_PROVISIONING_KEY: 'devices may register themselves on the embedded broker with password provision:<key> (at least 16 characters; default: generated once into DATA_DIR/provisioning-key; off: no self-registration)',
  THINGWIRE_MQTT_ANONYMOUS: 'set to 1 to let anonymous MQTT clients publish as any device (demo only; default 0: devices log in with id and token)',
  THINGWIRE_MQTT_IN_PROCESS: "0 makes the flows' thingwire-mqtt-in nodes connect to the embedded broker over TCP like any client (default 1: they take its messages in process)",
  THINGWIRE_API_KEY: 'admin API key of the HTTP API under /api/v1 (Authorization: Bearer <key> or X-API-Key); unset: its management endpoints answer 503',
  THINGWIRE_API_READ_KEY: 'read-only API key (GET routes of the HTTP API and GET /api/v1/series; at least 16 characters); changes answer 403 to it',
  THINGWIRE_QUERY_MAX_POINTS: 'the most points one store query answers over all its series (embedded store, its warm tier, InfluxDB; default 5000000, at least 1000); past it the query fails with query_too_large (HTTP 413)',
  THINGWIRE_API_RATE: 'entries per second each device may write through the HTTP API (entries, ThingSpeak /update and bulk_update; bursts of twice that; default 50; 0 or off: no limit); beyond it 429 with Retry-After',
  THINGWIRE_WEBHOOK_URL: 'http(s) URL the notifications flow POSTs each alert state change to as JSON (unset: that branch is off)',
  THINGWIRE_SLACK_WEBHOOK_URL: 'Slack incoming-webhook URL the notifications flow posts alert state changes to (unset: that branch is off)',
  THINGWIRE_SMTP_HOST: 'SMTP server for alert emails (the email branch of the notifications flow is off until this and THINGWIRE_SMTP_TO are set; sending needs node-red-node-email)',
  THINGWIRE_SMTP_PORT: 'SMTP port for alert emails (for the e-mail node you add; e.g. 465 or 587)',
  THINGWIRE_SMTP_USER: 'SMTP user name for alert emails (for the e-mail node you add)',
  THINGWIRE_SMTP_PASSWORD: 'SMTP password for alert emails (for the e-mail node you add)',
  THINGWIRE_SMTP_FROM: 'sender address of alert emails (msg.from)',
  THINGWIRE_SMTP_TO: 'recipient address(es) of alert emails, comma-separated (msg.to)',
  THINGWIRE_STORE_THREAD: 'where the embedded store writes and answers queries: worker (default: a thread of its own, off the event loop) or main (on the event loop)',
  THINGWIRE_WORKER_NICE: 'nice value (0-19, default 0) of the runtime\'s worker threads (anomaly scoring, the embedded store and DuckDB\'s): above 0 the event loop goes first when cores are short (Linux)',
  ...STORE_ENV_VARS,
};

/** A bcrypt hash as node-red admin hash-pw (bcryptjs) writes it. */
const BCRYPT_RE = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

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

  let adminPasswordHash: string | undefined;
  const hash = env.THINGWIRE_ADMIN_PASSWORD_HASH;
  if (hash !== undefined && hash.trim() !== '') {
    // Never echo it: a mistyped hash may be the password itself.
    if (BCRYPT_RE.test(hash.trim())) adminPasswordHash = hash.trim();
    else problems.push('THINGWIRE_ADMIN_PASSWORD_HASH is not a bcrypt hash ($2a$/$2b$/$2y$, cost, 53 characters); make one with: npx node-red admin hash-pw');
  }
  let adminUser = 'admin';
  const au = env.THINGWIRE_ADMIN_USER;
  if (au !== undefined && au !== '') {
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(au)) problems.push(`THINGWIRE_ADMIN_USER=${JSON.stringify(au)} must be 1 to 64 letters, digits, . _ @ or -`);
    else adminUser = au;
    if (hash === undefined || hash.trim() === '') problems.push('THINGWIRE_ADMIN_USER is set but THINGWIRE_ADMIN_PASSWORD_HASH is not: the editor would have no login');
  }

  const openEditor = env.THINGWIRE_ALLOW_OPEN_EDITOR;
  if (openEditor !== undefined && openEditor !== '' && openEditor !== '0' && openEditor !== '1') {
    problems.push(`THINGWIRE_ALLOW_OPEN_EDITOR=${JSON.stringify(openEditor)} must be 1 or 0`);
  } else if (hostOk && !isLoopback(host) && openEditor !== '1' && adminPasswordHash === undefined) {
    problems.push(
      `HOST=${host} would expose the flow editor without a login to the network; ` +
        'set THINGWIRE_ADMIN_PASSWORD_HASH (a bcrypt hash: npx node-red admin hash-pw) to require one, keep the default 127.0.0.1, ' +
        'or set THINGWIRE_ALLOW_OPEN_EDITOR=1 to accept the risk',
    );
  }

  let provisioningKey: string | undefined;
  let provisioningOff = false;
  const pk = env.THINGWIRE_PROVISIONING_KEY;
  if (pk === 'off') provisioningOff = true;
  else if (pk !== undefined && pk !== '') {
    // Never echo it.
    if (pk.length < 16 || pk.length > 256 || !/^[\x21-\x7e]+$/.test(pk)) {
      problems.push('THINGWIRE_PROVISIONING_KEY must be 16 to 256 printable characters without spaces');
    } else provisioningKey = pk;
  }

  let mqttAnonymous = false;
  const anon = env.THINGWIRE_MQTT_ANONYMOUS;
  if (anon !== undefined && anon !== '') {
    if (anon === '1' || anon === 'true') mqttAnonymous = true;
    else if (anon !== '0' && anon !== 'false') problems.push(`THINGWIRE_MQTT_ANONYMOUS=${JSON.stringify(anon)} must be 1 or 0`);
  }

  let mqttInProcess = true;
  const inProc = env.THINGWIRE_MQTT_IN_PROCESS;
  if (inProc !== undefined && inProc !== '') {
    if (inProc === '0' || inProc === 'false') mqttInProcess = false;
    else if (inProc !== '1' && inProc !== 'true') problems.push(`THINGWIRE_MQTT_IN_PROCESS=${JSON.stringify(inProc)} must be 1 or 0`);
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
  try {
    // Read by the embedded store and the warm-tier reader when they answer a query; checked here so a bad value stops the start.
    maxAnswerPoints(env);
  } catch (e) {
    problems.push((e as Error).message);
  }
  try {
    // Read by the store config node when it opens the embedded store; checked here for the same reason.
    embeddedThread(env);
  } catch (e) {
    problems.push((e as Error).message);
  }
  // Read by the anomaly node and the embedded store when they start their threads.
  const niceProblem = workerNiceProblem(env[WORKER_NICE_ENV]);
  if (niceProblem !== undefined) problems.push(niceProblem);

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
    provisioningKey,
    provisioningOff,
    mqttAnonymous,
    mqttInProcess,
    adminUser,
    adminPasswordHash,
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
