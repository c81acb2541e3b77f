/**
 * Node-RED settings for Thingwire's bundled runtime. The runtime (runtime/main.ts)
 * builds them from the checked environment; everything the integrator may want
 * to change is an environment variable (see the README), not an edit here.
 */
import * as path from 'node:path';
import type { RuntimeConfig } from './runtime/config';
import { dashboardAuth, type DashboardAuth } from './runtime/dashboard-auth';

export interface ThingwireSettings {
  userDir: string;
  flowFile: string;
  credentialSecret: string;
  httpAdminRoot: string;
  httpNodeRoot: string;
  nodesDir: string[];
  [key: string]: unknown;
}

/**
 * @param cfg     the checked runtime configuration
 * @param pkgDir  the package's own directory (loaded as a Node-RED module, with its examples)
 * @param secret  the credential secret to use
 */
function dashboardSettings(auth: DashboardAuth): { middleware: DashboardAuth['http']; ioMiddleware: DashboardAuth['io'] } {
  return { middleware: auth.http, ioMiddleware: auth.io };
}

export function createSettings(cfg: RuntimeConfig, pkgDir: string, secret: string): ThingwireSettings {
  const userDir = path.join(cfg.dataDir, 'node-red');
  return {
    userDir,
    flowFile: 'flows.json',
    flowFilePretty: true,
    credentialSecret: secret,
    // Editor and admin API at /, dashboard at /dashboard, flow HTTP endpoints (the API) at /api/v1/...
    httpAdminRoot: '/',
    httpNodeRoot: '/',
    // Loads this package as a module, so its nodes appear in the palette and flows/ under Import > Examples.
    nodesDir: [pkgDir],
    // Where Thingwire nodes keep their state (embedded store, spool, snapshots).
    thingwireDataDir: cfg.dataDir,
    // Bounded buffers in the core nodes that queue messages (delay, batch, join).
    nodeMessageBufferMaxLength: 10_000,
    nodeCloseTimeout: 15_000,
    // Large device batches posted over HTTP.
    apiMaxLength: '5mb',
    contextStorage: {
      default: { module: 'memory' },
      file: { module: 'localfilesystem' },
    },
    logging: {
      console: { level: cfg.logLevel, metrics: false, audit: false },
    },
    // No calls home from a box that may have no internet.
    telemetry: { enabled: false },
    diagnostics: { enabled: true, ui: true },
    runtimeState: { enabled: false, ui: false },
    externalModules: {
      autoInstall: false,
      palette: { allowInstall: true },
      modules: { allowInstall: true },
    },
    editorTheme: {
      page: { title: 'Thingwire' },
      header: { title: 'Thingwire' },
      projects: { enabled: false },
      tours: false,
      palette: { catalogues: [] },
    },
    functionExternalModules: false,
    // The editor and admin API login (issue 4, item 5): on when a bcrypt hash is configured.
    // Node-RED checks the password with bcrypt and hands out access tokens (POST /auth/token).
    ...(cfg.adminPasswordHash
      ? { adminAuth: { type: 'credentials', users: [{ username: cfg.adminUser, password: cfg.adminPasswordHash, permissions: '*' }] } }
      : {}),
    // With that login, the dashboard asks for it too (HTTP Basic on its pages and its socket.io connection): it can
    // register devices and show their tokens (runtime/dashboard-auth.ts; FlowFuse Dashboard's middleware settings).
    ...(cfg.adminPasswordHash ? { dashboard: dashboardSettings(dashboardAuth(cfg.adminUser, cfg.adminPasswordHash)) } : {}),
  };
}
