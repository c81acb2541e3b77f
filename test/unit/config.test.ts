/**
 * runtime/config.ts parseConfig: defaults, every variable, every malformed value, and the
 * safety rules (loopback unless allowed, distinct ports, no unknown THINGWIRE_ variables).
 */
import * as path from 'node:path';
import { ConfigError, ENV_VARS, isLoopback, parseConfig, type RuntimeConfig } from '../../runtime/config';

const CWD = path.resolve('/srv/thingwire');
/** A bcrypt hash as `node-red admin hash-pw` makes it (of "secret"). */
const HASH = '$2b$08$RZ2HjnfTa/Hn.6Wxuma0kO/ycD7KWmkqL6RtFv/vyGk9BvlDY0DCi';

function parse(env: NodeJS.ProcessEnv): RuntimeConfig {
  return parseConfig(env, CWD);
}

/** The problems parseConfig reports for `env` (fails when it does not throw a ConfigError). */
function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    parse(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('defaults', () => {
  test('an empty environment gives the documented defaults', () => {
    expect(parse({})).toEqual({
      port: 1880,
      host: '127.0.0.1',
      mqttPort: 1883,
      mqttUrl: undefined,
      dataDir: path.join(CWD, 'data'),
      reseed: false,
      credentialSecret: undefined,
      store: { backend: 'embedded' },
      logLevel: 'info',
      provisioningKey: undefined,
      provisioningOff: false,
      mqttAnonymous: false,
      mqttInProcess: true,
      adminUser: 'admin',
      adminPasswordHash: undefined,
    });
  });

  test('empty values mean the default', () => {
    expect(
      parse({
        PORT: '',
        MQTT_PORT: '',
        MQTT_URL: '',
        DATA_DIR: '',
        THINGWIRE_RESEED: '',
        THINGWIRE_CREDENTIAL_SECRET: '',
        THINGWIRE_LOG_LEVEL: '',
        THINGWIRE_PROVISIONING_KEY: '',
        THINGWIRE_MQTT_ANONYMOUS: '',
        THINGWIRE_ADMIN_USER: '',
        THINGWIRE_ADMIN_PASSWORD_HASH: '',
      }),
    ).toEqual(parse({}));
  });

  test('cwd defaults to process.cwd()', () => {
    expect(parseConfig({}).dataDir).toBe(path.resolve(process.cwd(), 'data'));
  });

  test('variables that are not Thingwire settings are ignored', () => {
    expect(parse({ PATH: '/usr/bin', HOME: '/root', NODE_ENV: 'production', THINGWIRE: 'x', MY_THINGWIRE_X: '1' })).toEqual(parse({}));
  });

  test('THINGWIRE_QUERY_MAX_POINTS: a whole number from 1000, else a problem naming it', () => {
    expect(() => parse({ THINGWIRE_QUERY_MAX_POINTS: '200000' })).not.toThrow();
    for (const bad of ['lots', '999', '1e400', '2.5', '-5']) {
      expect(() => parse({ THINGWIRE_QUERY_MAX_POINTS: bad })).toThrow(`THINGWIRE_QUERY_MAX_POINTS must be a whole number of points, at least 1000, got ${JSON.stringify(bad)}`);
    }
  });

  test('THINGWIRE_STORE_THREAD: worker or main, else a problem naming it', () => {
    expect(() => parse({ THINGWIRE_STORE_THREAD: 'worker' })).not.toThrow();
    expect(() => parse({ THINGWIRE_STORE_THREAD: 'main' })).not.toThrow();
    expect(() => parse({ THINGWIRE_STORE_THREAD: 'thread' })).toThrow('THINGWIRE_STORE_THREAD="thread" must be worker or main');
  });

  test('THINGWIRE_WORKER_NICE: a whole number from 0 to 19, else a problem naming it', () => {
    for (const ok of ['0', '10', '19', '']) expect(() => parse({ THINGWIRE_WORKER_NICE: ok })).not.toThrow();
    for (const bad of ['20', '-1', '2.5', 'low']) {
      expect(() => parse({ THINGWIRE_WORKER_NICE: bad })).toThrow(`THINGWIRE_WORKER_NICE must be a whole number from 0 (as the event loop) to 19 (the lowest priority), got ${JSON.stringify(bad)}`);
    }
  });

  test('ENV_VARS documents every variable read', () => {
    expect(Object.keys(ENV_VARS).sort()).toEqual(
      [
        'DATA_DIR',
        'HOST',
        'MQTT_PORT',
        'MQTT_URL',
        'PORT',
        'THINGWIRE_ADMIN_PASSWORD_HASH',
        'THINGWIRE_ADMIN_USER',
        'THINGWIRE_ALLOW_OPEN_EDITOR',
        'THINGWIRE_API_KEY',
        'THINGWIRE_API_RATE',
        'THINGWIRE_API_READ_KEY',
        'THINGWIRE_CREDENTIAL_SECRET',
        'THINGWIRE_MQTT_ANONYMOUS',
        'THINGWIRE_MQTT_IN_PROCESS',
        'THINGWIRE_PROVISIONING_KEY',
        'THINGWIRE_QUERY_MAX_POINTS',
        'THINGWIRE_LOG_LEVEL',
        'THINGWIRE_RESEED',
        'THINGWIRE_STORE_THREAD',
        'THINGWIRE_WORKER_NICE',
        ...['THINGWIRE_WEBHOOK_URL', 'THINGWIRE_SLACK_WEBHOOK_URL', 'THINGWIRE_SMTP_HOST', 'THINGWIRE_SMTP_PORT', 'THINGWIRE_SMTP_USER', 'THINGWIRE_SMTP_PASSWORD', 'THINGWIRE_SMTP_FROM', 'THINGWIRE_SMTP_TO'],
        ...['INFLUX_URL', 'INFLUX_VERSION', 'INFLUX_TOKEN', 'INFLUX_ORG', 'INFLUX_BUCKET', 'INFLUX_DB', 'INFLUX_RP', 'INFLUX_USERNAME', 'INFLUX_PASSWORD'],
      ].sort(),
    );
    for (const v of Object.values(ENV_VARS)) expect(v.length).toBeGreaterThan(10);
  });
});

describe('each variable', () => {
  test('PORT and MQTT_PORT', () => {
    const c = parse({ PORT: '8080', MQTT_PORT: '11883' });
    expect(c.port).toBe(8080);
    expect(c.mqttPort).toBe(11883);
  });

  test('ports 0 (any free port) and 65535 are allowed; spaces around are trimmed', () => {
    expect(parse({ PORT: '0', MQTT_PORT: '65535' })).toMatchObject({ port: 0, mqttPort: 65535 });
    expect(parse({ PORT: ' 8080 ' }).port).toBe(8080);
  });

  test('both ports 0 do not clash', () => {
    expect(parse({ PORT: '0', MQTT_PORT: '0' })).toMatchObject({ port: 0, mqttPort: 0 });
  });

  test.each(['localhost', '127.0.0.1', '127.1.2.3', '::1'])('HOST=%s (loopback) is accepted', (host) => {
    expect(parse({ HOST: host }).host).toBe(host);
  });

  test('HOST is trimmed', () => {
    expect(parse({ HOST: ' localhost ' }).host).toBe('localhost');
  });

  test.each(['0.0.0.0', '192.168.1.10', '::', 'thingwire.local', 'fe80::1'])('HOST=%s is accepted with THINGWIRE_ALLOW_OPEN_EDITOR=1', (host) => {
    expect(parse({ HOST: host, THINGWIRE_ALLOW_OPEN_EDITOR: '1' }).host).toBe(host);
  });

  test('MQTT_URL', () => {
    const c = parse({ MQTT_URL: 'mqtt://broker.example.com:1884' });
    expect(c.mqttUrl).toBeInstanceOf(URL);
    expect(c.mqttUrl?.hostname).toBe('broker.example.com');
    expect(c.mqttUrl?.port).toBe('1884');
    expect(parse({ MQTT_URL: 'mqtt://10.0.0.5' }).mqttUrl?.hostname).toBe('10.0.0.5');
  });

  test('with MQTT_URL the embedded broker port may equal PORT (it is not used)', () => {
    expect(parse({ MQTT_URL: 'mqtt://broker:1883', PORT: '1883' })).toMatchObject({ port: 1883, mqttPort: 1883 });
  });

  test('DATA_DIR: relative to cwd, absolute kept', () => {
    expect(parse({ DATA_DIR: 'state' }).dataDir).toBe(path.join(CWD, 'state'));
    expect(parse({ DATA_DIR: '../elsewhere' }).dataDir).toBe(path.resolve(CWD, '../elsewhere'));
    expect(parse({ DATA_DIR: '/var/lib/thingwire' }).dataDir).toBe(path.resolve('/var/lib/thingwire'));
    expect(parse({ DATA_DIR: '   ' }).dataDir).toBe(path.join(CWD, 'data'));
  });

  test.each<[string, boolean]>([
    ['1', true],
    ['true', true],
    ['0', false],
    ['false', false],
  ])('THINGWIRE_RESEED=%s', (v, expected) => {
    expect(parse({ THINGWIRE_RESEED: v }).reseed).toBe(expected);
  });

  test('THINGWIRE_CREDENTIAL_SECRET of 16 characters or more', () => {
    expect(parse({ THINGWIRE_CREDENTIAL_SECRET: 'x'.repeat(16) }).credentialSecret).toBe('x'.repeat(16));
    expect(parse({ THINGWIRE_CREDENTIAL_SECRET: 'a long secret with spaces' }).credentialSecret).toBe('a long secret with spaces');
  });

  test.each(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])('THINGWIRE_LOG_LEVEL=%s', (level) => {
    expect(parse({ THINGWIRE_LOG_LEVEL: level }).logLevel).toBe(level);
  });

  test('all variables at once', () => {
    expect(
      parse({
        PORT: '9000',
        HOST: '0.0.0.0',
        MQTT_PORT: '9001',
        MQTT_URL: 'mqtt://mq:1883',
        DATA_DIR: '/data',
        THINGWIRE_RESEED: '1',
        THINGWIRE_CREDENTIAL_SECRET: 's'.repeat(32),
        THINGWIRE_LOG_LEVEL: 'debug',
        THINGWIRE_ALLOW_OPEN_EDITOR: '1',
        THINGWIRE_PROVISIONING_KEY: 'k'.repeat(20),
        THINGWIRE_MQTT_ANONYMOUS: '1',
        THINGWIRE_MQTT_IN_PROCESS: '0',
        THINGWIRE_ADMIN_USER: 'ops',
        THINGWIRE_ADMIN_PASSWORD_HASH: HASH,
        INFLUX_URL: 'http://influx:8086/',
        INFLUX_VERSION: '1',
        INFLUX_DB: 'telemetry',
        INFLUX_RP: 'autogen',
        INFLUX_USERNAME: 'writer',
        INFLUX_PASSWORD: 'secret',
      }),
    ).toEqual({
      port: 9000,
      host: '0.0.0.0',
      mqttPort: 9001,
      mqttUrl: new URL('mqtt://mq:1883'),
      dataDir: path.resolve('/data'),
      reseed: true,
      credentialSecret: 's'.repeat(32),
      store: { backend: 'influxdb-v1', url: 'http://influx:8086', db: 'telemetry', rp: 'autogen', username: 'writer', password: 'secret' },
      logLevel: 'debug',
      provisioningKey: 'k'.repeat(20),
      provisioningOff: false,
      mqttAnonymous: true,
      mqttInProcess: false,
      adminUser: 'ops',
      adminPasswordHash: HASH,
    });
  });
});

describe('malformed values', () => {
  test.each(['abc', '-1', '1.5', '80a', '0x50', '123456', '1e3', ' ', '８０'])('PORT=%p is not a port', (v) => {
    const p = problems({ PORT: v });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^PORT=.* is not a port number \(0-65535\)$/);
  });

  test('PORT=65536 is out of range', () => {
    expect(problems({ PORT: '65536' })).toEqual(['PORT=65536 is not a port number (0-65535)']);
    expect(problems({ MQTT_PORT: '99999' })).toEqual(['MQTT_PORT=99999 is not a port number (0-65535)']);
  });

  test('MQTT_PORT is checked like PORT', () => {
    expect(problems({ MQTT_PORT: 'mqtt' })).toEqual(['MQTT_PORT="mqtt" is not a port number (0-65535)']);
  });

  test.each(['', ' ', 'host name', 'evil;rm', 'a/b', 'http://x', '[::1]', 'x'.repeat(254)])('HOST=%p is not a host', (v) => {
    expect(problems({ HOST: v })).toEqual([`HOST=${JSON.stringify(v)} is not a host name or IP address`]);
  });

  test.each<[string, string]>([
    ['mqtts://broker:8883', 'MQTT_URL="mqtts://broker:8883" must use mqtt:// (TLS and websockets are not supported yet)'],
    ['ws://broker:8080', 'MQTT_URL="ws://broker:8080" must use mqtt:// (TLS and websockets are not supported yet)'],
    ['http://broker', 'MQTT_URL="http://broker" must use mqtt:// (TLS and websockets are not supported yet)'],
    ['mqtt://user:pass@broker', 'MQTT_URL must not carry a user name or password (broker credentials are not supported yet)'],
    ['mqtt://user@broker', 'MQTT_URL must not carry a user name or password (broker credentials are not supported yet)'],
    ['mqtt://', 'MQTT_URL="mqtt://" has no host'],
    ['broker:1883', 'MQTT_URL="broker:1883" must use mqtt:// (TLS and websockets are not supported yet)'],
    ['not a url', 'MQTT_URL="not a url" is not a URL (expected mqtt://host:port)'],
    ['mqtt://broker:99999', 'MQTT_URL="mqtt://broker:99999" is not a URL (expected mqtt://host:port)'],
  ])('MQTT_URL=%p', (v, message) => {
    expect(problems({ MQTT_URL: v })).toEqual([message]);
  });

  test('the password never appears in the message', () => {
    expect(problems({ MQTT_URL: 'mqtt://user:s3cret@broker' }).join('\n')).not.toContain('s3cret');
  });

  test.each(['yes', '2', 'TRUE', 'on', ' 1'])('THINGWIRE_RESEED=%p must be 1 or 0', (v) => {
    expect(problems({ THINGWIRE_RESEED: v })).toEqual([`THINGWIRE_RESEED=${JSON.stringify(v)} must be 1 or 0`]);
  });

  test('THINGWIRE_CREDENTIAL_SECRET shorter than 16 characters, and the secret is not echoed', () => {
    const p = problems({ THINGWIRE_CREDENTIAL_SECRET: 'short-secret-15' });
    expect(p).toEqual(['THINGWIRE_CREDENTIAL_SECRET must be at least 16 characters']);
    expect(p.join('\n')).not.toContain('short-secret-15');
  });

  test.each(['INFO', 'verbose', 'warning', 'off'])('THINGWIRE_LOG_LEVEL=%p', (v) => {
    expect(problems({ THINGWIRE_LOG_LEVEL: v })).toEqual([`THINGWIRE_LOG_LEVEL=${JSON.stringify(v)} must be one of fatal, error, warn, info, debug, trace`]);
  });

  test.each(['THINGWIRE_RESEEED', 'THINGWIRE_PORT', 'THINGWIRE_', 'THINGWIRE_log_level'])('unknown %s is reported with the known names', (name) => {
    const p = problems({ [name]: '1' });
    expect(p[0]).toContain('THINGWIRE_RESEED, THINGWIRE_CREDENTIAL_SECRET, THINGWIRE_LOG_LEVEL, THINGWIRE_ALLOW_OPEN_EDITOR, THINGWIRE_ADMIN_USER');
    expect(p).toEqual([
      `${name} is not a Thingwire setting (known: ${Object.keys(ENV_VARS).filter((n) => n.startsWith('THINGWIRE_')).join(', ')})`,
    ]);
  });

  test('an unknown THINGWIRE_ variable is reported even when empty', () => {
    expect(problems({ THINGWIRE_TYPO: '' })).toHaveLength(1);
  });

  test('every malformed value is listed at once, in one error', () => {
    let err: unknown;
    try {
      parse({
        THINGWIRE_TYPO: 'x',
        PORT: 'abc',
        MQTT_PORT: '70000',
        HOST: 'bad host',
        MQTT_URL: 'mqtts://b',
        THINGWIRE_RESEED: 'maybe',
        THINGWIRE_CREDENTIAL_SECRET: 'short',
        THINGWIRE_LOG_LEVEL: 'loud',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.name).toBe('ConfigError');
    expect(e.problems).toHaveLength(8);
    expect(e.problems.map((p) => p.split(/[= ]/)[0])).toEqual([
      'THINGWIRE_TYPO',
      'PORT',
      'MQTT_PORT',
      'HOST',
      'MQTT_URL',
      'THINGWIRE_RESEED',
      'THINGWIRE_CREDENTIAL_SECRET',
      'THINGWIRE_LOG_LEVEL',
    ]);
    expect(e.message).toBe(`invalid configuration:\n  - ${e.problems.join('\n  - ')}`);
  });

  // Regression, fixed: the non-loopback refusal and the PORT == MQTT_PORT check only run when no other problem
  // was found before them, so a start-up with two problems reports one, and the second appears
  // only after the first is fixed. The header promises "lists all problems at once".
  test('a non-loopback HOST is reported together with an unrelated malformed PORT', () => {
    const p = problems({ HOST: '0.0.0.0', PORT: 'abc' });
    expect(p).toHaveLength(2);
    expect(p.join('\n')).toContain('THINGWIRE_ALLOW_OPEN_EDITOR=1');
  });

  test('PORT == MQTT_PORT is reported together with an unrelated bad log level', () => {
    const p = problems({ PORT: '1883', THINGWIRE_LOG_LEVEL: 'loud' });
    expect(p).toEqual(['THINGWIRE_LOG_LEVEL="loud" must be one of fatal, error, warn, info, debug, trace', 'PORT and MQTT_PORT are both 1883; they must differ']);
  });

  // Regression, fixed: "Every value is checked", but THINGWIRE_ALLOW_OPEN_EDITOR is only compared with '1':
  // any other value (yes, true, 2) is accepted silently as "not allowed".
  test.each(['yes', 'true', '2'])('THINGWIRE_ALLOW_OPEN_EDITOR=%p is malformed', (v) => {
    const p = problems({ THINGWIRE_ALLOW_OPEN_EDITOR: v });
    expect(p).toHaveLength(1);
    expect(p[0]).toContain('THINGWIRE_ALLOW_OPEN_EDITOR');
  });
});

describe('safety rules', () => {
  test.each(['0.0.0.0', '192.168.1.10', '::', 'example.com', '10.0.0.1'])('HOST=%s is refused without THINGWIRE_ALLOW_OPEN_EDITOR=1', (host) => {
    expect(problems({ HOST: host })).toEqual([
      `HOST=${host} would expose the flow editor without a login to the network; set THINGWIRE_ADMIN_PASSWORD_HASH (a bcrypt hash: npx node-red admin hash-pw) to require one, keep the default 127.0.0.1, or set THINGWIRE_ALLOW_OPEN_EDITOR=1 to accept the risk`,
    ]);
  });

  test('THINGWIRE_ALLOW_OPEN_EDITOR=0 does not allow it', () => {
    expect(problems({ HOST: '0.0.0.0', THINGWIRE_ALLOW_OPEN_EDITOR: '0' })).toHaveLength(1);
  });

  test('THINGWIRE_ALLOW_OPEN_EDITOR=1 with a loopback HOST is fine', () => {
    expect(parse({ THINGWIRE_ALLOW_OPEN_EDITOR: '1' }).host).toBe('127.0.0.1');
  });

  test('PORT equal to MQTT_PORT is refused', () => {
    expect(problems({ PORT: '1883' })).toEqual(['PORT and MQTT_PORT are both 1883; they must differ']);
    expect(problems({ MQTT_PORT: '1880' })).toEqual(['PORT and MQTT_PORT are both 1880; they must differ']);
    expect(problems({ PORT: '5000', MQTT_PORT: '5000' })).toEqual(['PORT and MQTT_PORT are both 5000; they must differ']);
  });

  test('isLoopback', () => {
    for (const h of ['localhost', '::1', '127.0.0.1', '127.255.255.254']) expect([h, isLoopback(h)]).toEqual([h, true]);
    for (const h of ['0.0.0.0', '::', '128.0.0.1', '1.127.0.0', 'localhost.example.com', 'mylocalhost']) expect([h, isLoopback(h)]).toEqual([h, false]);
  });

  // Regression, fixed: isLoopback tests /^127\./ on any string, so a DNS name that merely starts with "127."
  // (127.0.0.1.nip.io, 127.attacker.example) counts as loopback; HOST is resolved by listen() and
  // can bind a public address without THINGWIRE_ALLOW_OPEN_EDITOR.
  test.each(['127.0.0.1.nip.io', '127.attacker.example'])('a host name starting with "127." (%s) is not loopback', (host) => {
    expect(isLoopback(host)).toBe(false);
    expect(problems({ HOST: host })).toHaveLength(1);
  });
});

describe('store settings (INFLUX_*)', () => {
  test('InfluxDB 2.x needs a token, an org and a bucket', () => {
    expect(parse({ INFLUX_URL: 'http://i:8086', INFLUX_TOKEN: 't', INFLUX_ORG: 'o', INFLUX_BUCKET: 'b' }).store).toEqual({
      backend: 'influxdb-v2',
      version: 2,
      url: 'http://i:8086',
      token: 't',
      org: 'o',
      bucket: 'b',
    });
    expect(problems({ INFLUX_URL: 'http://i:8086' })).toEqual([
      'INFLUX_TOKEN is required with INFLUX_VERSION=2',
      'INFLUX_BUCKET is required with INFLUX_VERSION=2',
      'INFLUX_ORG is required with INFLUX_VERSION=2',
    ]);
  });

  test('InfluxDB 3.x needs no org', () => {
    expect(parse({ INFLUX_URL: 'https://i', INFLUX_VERSION: '3', INFLUX_TOKEN: 't', INFLUX_BUCKET: 'db' }).store).toMatchObject({ backend: 'influxdb-v2', version: 3, org: '' });
  });

  test('mixing 1.x and 2.x variables, a bad version, a bad URL and stray variables are each named', () => {
    expect(problems({ INFLUX_URL: 'http://i', INFLUX_VERSION: '1', INFLUX_DB: 'd', INFLUX_TOKEN: 't' })).toEqual([
      'INFLUX_TOKEN is for InfluxDB 2.x/3.x; with INFLUX_VERSION=1 use INFLUX_DB, INFLUX_USERNAME, INFLUX_PASSWORD',
    ]);
    expect(problems({ INFLUX_URL: 'http://i', INFLUX_VERSION: '4', INFLUX_TOKEN: 't', INFLUX_BUCKET: 'b', INFLUX_ORG: 'o' })).toEqual(['INFLUX_VERSION="4" must be 1, 2 or 3']);
    expect(problems({ INFLUX_URL: 'ftp://i', INFLUX_VERSION: '1', INFLUX_DB: 'd' })).toEqual(['INFLUX_URL="ftp://i" must be http:// or https://']);
    expect(problems({ INFLUX_URL: 'http://u:p@i', INFLUX_VERSION: '1', INFLUX_DB: 'd' })[0]).toContain('must not carry credentials');
    expect(problems({ INFLUX_DB: 'd' })).toEqual(['INFLUX_DB set but INFLUX_URL is not: set INFLUX_URL to use InfluxDB, or unset them for the embedded store']);
  });
});

describe('editor login and broker authentication (issue 4)', () => {
  test('a bcrypt hash turns the login on; the user name defaults to admin', () => {
    expect(parse({ THINGWIRE_ADMIN_PASSWORD_HASH: HASH })).toMatchObject({ adminUser: 'admin', adminPasswordHash: HASH });
    expect(parse({ THINGWIRE_ADMIN_PASSWORD_HASH: ` ${HASH}\n`, THINGWIRE_ADMIN_USER: 'ops@site' })).toMatchObject({ adminUser: 'ops@site', adminPasswordHash: HASH });
  });

  test('a non-loopback HOST is fine with the hash, without THINGWIRE_ALLOW_OPEN_EDITOR', () => {
    expect(parse({ HOST: '0.0.0.0', THINGWIRE_ADMIN_PASSWORD_HASH: HASH }).host).toBe('0.0.0.0');
  });

  test('something that is not a bcrypt hash is refused without echoing it', () => {
    for (const bad of ['secret', '$2b$08$short', `${HASH}x`, '$1$abc$' + 'x'.repeat(53)]) {
      const p = problems({ THINGWIRE_ADMIN_PASSWORD_HASH: bad });
      expect(p).toEqual(['THINGWIRE_ADMIN_PASSWORD_HASH is not a bcrypt hash ($2a$/$2b$/$2y$, cost, 53 characters); make one with: npx node-red admin hash-pw']);
    }
    // A bad hash does not count as a login for a non-loopback HOST.
    expect(problems({ HOST: '0.0.0.0', THINGWIRE_ADMIN_PASSWORD_HASH: 'secret' })).toHaveLength(2);
  });

  test('THINGWIRE_ADMIN_USER: checked, and useless without the hash', () => {
    expect(problems({ THINGWIRE_ADMIN_USER: 'ops' })).toEqual(['THINGWIRE_ADMIN_USER is set but THINGWIRE_ADMIN_PASSWORD_HASH is not: the editor would have no login']);
    expect(problems({ THINGWIRE_ADMIN_USER: 'a b', THINGWIRE_ADMIN_PASSWORD_HASH: HASH })).toEqual(['THINGWIRE_ADMIN_USER="a b" must be 1 to 64 letters, digits, . _ @ or -']);
  });

  test('THINGWIRE_PROVISIONING_KEY: 16 to 256 printable characters, never echoed', () => {
    expect(parse({ THINGWIRE_PROVISIONING_KEY: 'abcdefghijklmnop' }).provisioningKey).toBe('abcdefghijklmnop');
    expect(parse({ THINGWIRE_PROVISIONING_KEY: 'off' })).toMatchObject({ provisioningKey: undefined, provisioningOff: true });
    expect(parse({})).toMatchObject({ provisioningKey: undefined, provisioningOff: false });
    for (const bad of ['short-key', 'with a space in it!', 'x'.repeat(257), 'tab\tseparated-key-0000']) {
      const p = problems({ THINGWIRE_PROVISIONING_KEY: bad });
      expect(p).toEqual(['THINGWIRE_PROVISIONING_KEY must be 16 to 256 printable characters without spaces']);
    }
  });

  test('THINGWIRE_MQTT_ANONYMOUS: 1/true on, 0/false off, anything else refused', () => {
    expect(parse({ THINGWIRE_MQTT_ANONYMOUS: '1' }).mqttAnonymous).toBe(true);
    expect(parse({ THINGWIRE_MQTT_ANONYMOUS: 'true' }).mqttAnonymous).toBe(true);
    expect(parse({ THINGWIRE_MQTT_ANONYMOUS: '0' }).mqttAnonymous).toBe(false);
    expect(parse({ THINGWIRE_MQTT_ANONYMOUS: 'false' }).mqttAnonymous).toBe(false);
    expect(problems({ THINGWIRE_MQTT_ANONYMOUS: 'yes' })).toEqual(['THINGWIRE_MQTT_ANONYMOUS="yes" must be 1 or 0']);
  });

  test('THINGWIRE_MQTT_IN_PROCESS: on by default, 0/false off, anything else refused', () => {
    expect(parse({}).mqttInProcess).toBe(true);
    expect(parse({ THINGWIRE_MQTT_IN_PROCESS: '1' }).mqttInProcess).toBe(true);
    expect(parse({ THINGWIRE_MQTT_IN_PROCESS: '0' }).mqttInProcess).toBe(false);
    expect(parse({ THINGWIRE_MQTT_IN_PROCESS: 'false' }).mqttInProcess).toBe(false);
    expect(problems({ THINGWIRE_MQTT_IN_PROCESS: 'off' })).toEqual(['THINGWIRE_MQTT_IN_PROCESS="off" must be 1 or 0']);
  });

  test('a typo of a new variable is still reported', () => {
    expect(problems({ THINGWIRE_MQTT_ANONYMUS: '1' })[0]).toContain('THINGWIRE_MQTT_ANONYMUS is not a Thingwire setting');
  });
});
