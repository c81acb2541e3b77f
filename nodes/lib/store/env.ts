/**
 * Which store to use, from the environment (the bundled runtime, and the write
 * node's "from environment" backend): INFLUX_URL selects InfluxDB, otherwise the
 * embedded store. Returns every problem at once, each naming its variable.
 */

export type StoreSettings =
  | { backend: 'embedded' }
  | { backend: 'influxdb-v1'; url: string; db: string; rp?: string; username?: string; password?: string }
  | { backend: 'influxdb-v2'; version: 2 | 3; url: string; token: string; org: string; bucket: string };

export const STORE_ENV_VARS: Record<string, string> = {
  INFLUX_URL: 'http(s)://host:port of InfluxDB; unset: the embedded store in DATA_DIR',
  INFLUX_VERSION: '1, 2 or 3 (default 2)',
  INFLUX_TOKEN: 'API token (2.x, 3.x)',
  INFLUX_ORG: 'organisation (2.x; optional for 3.x)',
  INFLUX_BUCKET: 'bucket (2.x) or database (3.x)',
  INFLUX_DB: 'database (1.x)',
  INFLUX_RP: 'retention policy (1.x, optional)',
  INFLUX_USERNAME: 'user (1.x, optional)',
  INFLUX_PASSWORD: 'password (1.x, optional)',
};

export function storeSettingsFromEnv(env: NodeJS.ProcessEnv): { settings: StoreSettings; problems: string[] } {
  const problems: string[] = [];
  const get = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const url = get('INFLUX_URL');
  if (url === undefined) {
    const stray = Object.keys(STORE_ENV_VARS).filter((k) => k !== 'INFLUX_URL' && get(k) !== undefined);
    if (stray.length > 0) problems.push(`${stray.join(', ')} set but INFLUX_URL is not: set INFLUX_URL to use InfluxDB, or unset them for the embedded store`);
    return { settings: { backend: 'embedded' }, problems };
  }
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`INFLUX_URL=${JSON.stringify(url)} must be http:// or https://`);
    if (u.username || u.password) problems.push('INFLUX_URL must not carry credentials: use INFLUX_TOKEN or INFLUX_USERNAME/INFLUX_PASSWORD');
  } catch {
    problems.push(`INFLUX_URL=${JSON.stringify(url)} is not a URL (expected http://host:8086)`);
  }
  const version = get('INFLUX_VERSION') ?? '2';
  if (version === '1') {
    const db = get('INFLUX_DB');
    if (!db) problems.push('INFLUX_DB is required with INFLUX_VERSION=1');
    for (const k of ['INFLUX_TOKEN', 'INFLUX_ORG', 'INFLUX_BUCKET']) if (get(k) !== undefined) problems.push(`${k} is for InfluxDB 2.x/3.x; with INFLUX_VERSION=1 use INFLUX_DB, INFLUX_USERNAME, INFLUX_PASSWORD`);
    return {
      settings: { backend: 'influxdb-v1', url: url.replace(/\/+$/, ''), db: db ?? '', rp: get('INFLUX_RP'), username: get('INFLUX_USERNAME'), password: get('INFLUX_PASSWORD') },
      problems,
    };
  }
  if (version !== '2' && version !== '3') {
    problems.push(`INFLUX_VERSION=${JSON.stringify(version)} must be 1, 2 or 3`);
  }
  const token = get('INFLUX_TOKEN');
  const bucket = get('INFLUX_BUCKET');
  const org = get('INFLUX_ORG');
  if (!token) problems.push(`INFLUX_TOKEN is required with INFLUX_VERSION=${version}`);
  if (!bucket) problems.push(`INFLUX_BUCKET is required with INFLUX_VERSION=${version}`);
  if (version === '2' && !org) problems.push('INFLUX_ORG is required with INFLUX_VERSION=2');
  for (const k of ['INFLUX_DB', 'INFLUX_RP', 'INFLUX_USERNAME', 'INFLUX_PASSWORD']) if (get(k) !== undefined) problems.push(`${k} is for InfluxDB 1.x; with INFLUX_VERSION=${version} use INFLUX_TOKEN, INFLUX_ORG, INFLUX_BUCKET`);
  return {
    settings: { backend: 'influxdb-v2', version: version === '3' ? 3 : 2, url: url.replace(/\/+$/, ''), token: token ?? '', org: org ?? '', bucket: bucket ?? '' },
    problems,
  };
}

/** For logs and status: the settings with no secret in them. */
export function describeStoreSettings(s: StoreSettings): string {
  switch (s.backend) {
    case 'embedded':
      return 'embedded (DuckDB)';
    case 'influxdb-v1':
      return `InfluxDB 1.x ${s.url} db=${s.db}${s.rp ? ` rp=${s.rp}` : ''}`;
    case 'influxdb-v2':
      return `InfluxDB ${s.version}.x ${s.url} bucket=${s.bucket}${s.org ? ` org=${s.org}` : ''}`;
  }
}
