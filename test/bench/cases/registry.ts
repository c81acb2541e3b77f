/**
 * The device registry (issue 4): token checks and liveness tracking with 100,000 registered
 * devices. The targets: authenticate at least 500,000 messages/s on one core with
 * 100,000 devices (the token check cached, not a hash per message), and liveness of 100,000
 * devices with no per-tick scan.
 *
 * The fixture registers its devices with tokenHashCost 1 (scrypt N = 2) so that setup takes
 * seconds, not the 11 minutes 100,000 default-cost hashes would; the cached path measured here
 * never runs scrypt, whatever the cost. The registry file lives in a temp dir and is never saved
 * (save delay of an hour; the process exits first).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { LivenessTracker } from '../../../nodes/lib/registry/liveness';
import { openRegistry, type RegistryHandle } from '../../../nodes/lib/registry/registry';
import { authenticate as deviceAuthenticate, deviceInfo } from '../../../nodes/device/auth';
import type { BenchCase } from '../harness';

const DEVICES = 100_000;
/** Steps through the devices in a scattered order (coprime with DEVICES), like traffic from many devices. */
const STRIDE = 7919;
const T0 = Date.UTC(2026, 0, 1);

let registry: RegistryHandle | undefined;
let ids: string[];
let tokens: string[];
let cursor = 0;

function registryFixture(): void {
  if (registry) return;
  const file = path.join(os.tmpdir(), `thingwire-bench-registry-${process.pid}`, 'registry.json');
  registry = openRegistry(file, { tokenHashCost: 1, saveDelayMs: 3_600_000, seenSaveDelayMs: 3_600_000 });
  ids = [];
  tokens = [];
  for (let i = 0; i < DEVICES; i++) {
    const id = `device-${i.toString(36)}-${i % 97}`;
    const { token } = registry.createDevice({ id, type: i % 3 === 0 ? 'pico-w' : 'esp32', tags: { site: `site-${i % 50}`, floor: String(i % 7) }, metadata: { fw: '1.4.2', slot: i } });
    ids.push(id);
    tokens.push(token);
  }
  // Every token checked once: the steady state, where each device's token is cached.
  for (let i = 0; i < DEVICES; i++) if (!registry.authenticate(ids[i], tokens[i]).ok) throw new Error(`registry bench fixture: ${ids[i]} did not authenticate`);
  if (registry.authenticate(ids[0], `${tokens[0].slice(0, -1)}#`).ok) throw new Error('registry bench fixture: a wrong token passed');
}

const TRACKED = 100_000;
let tracker: LivenessTracker | undefined;
let trackerIds: string[];
let clock = T0;
let tCursor = 0;

function trackerFixture(): void {
  if (tracker) return;
  tracker = new LivenessTracker({ defaultTimeout: 5 * 60_000 });
  trackerIds = [];
  for (let i = 0; i < TRACKED; i++) {
    const id = `device-${i}`;
    trackerIds.push(id);
    // Per-device timeouts from 1 to 10 minutes.
    tracker.track(id, (1 + (i % 10)) * 60_000, clock, null);
  }
  for (let i = 0; i < TRACKED; i++) tracker.seen(trackerIds[i], clock);
}

export const registryCases: BenchCase[] = [
  {
    group: 'registry',
    name: 'authenticate, cached token (100,000 devices)',
    target: { min: 500_000, per: 'op', unit: 'authentications' },
    setup: registryFixture,
    run(n) {
      const r = registry!;
      let ok = 0;
      let i = cursor;
      for (let k = 0; k < n; k++) {
        i += STRIDE;
        if (i >= DEVICES) i -= DEVICES;
        if (r.authenticate(ids[i], tokens[i]).ok) ok++;
      }
      cursor = i;
      return ok;
    },
  },
  {
    group: 'registry',
    name: 'authenticate + seen (100,000 devices)',
    setup: registryFixture,
    run(n) {
      // seen() moves lastSeen; the frozen record handed out is rebuilt at most once a second per device.
      const r = registry!;
      const now = Date.now();
      let sum = 0;
      let i = cursor;
      for (let k = 0; k < n; k++) {
        i += STRIDE;
        if (i >= DEVICES) i -= DEVICES;
        const res = r.authenticate(ids[i], tokens[i]);
        if (res.ok) {
          r.seen(ids[i], now - (k & 1023));
          sum += res.device.tags.floor.length;
        }
      }
      cursor = i;
      return sum;
    },
  },
  {
    group: 'registry',
    name: 'device node path: authenticate + seen + enrich a reading (100,000 devices)',
    // The "authenticate + enrich": what thingwire-device (auth mode) does per message, without Node-RED.
    target: { min: 500_000, per: 'op', unit: 'messages' },
    setup: registryFixture,
    run(n) {
      const r = registry!;
      const opts = { requireToken: true, idFrom: 'payload' as const, topicPrefix: 'devices', provision: false };
      const now = Date.now();
      let sum = 0;
      let i = cursor;
      for (let k = 0; k < n; k++) {
        i += STRIDE;
        if (i >= DEVICES) i -= DEVICES;
        const out = deviceAuthenticate(r, { payload: { device: ids[i], ts: now - 1000 + (k & 1023), metrics: { t: 21.5 } }, token: tokens[i], now }, opts);
        for (const [id, ts] of out.seen) r.seen(id, ts);
        if (out.devices.length === 1) sum += deviceInfo(out.devices[0]).id.length;
      }
      cursor = i;
      return sum;
    },
  },
  {
    group: 'registry',
    name: 'authenticate, unknown device (100,000 devices)',
    setup: registryFixture,
    run(n) {
      const r = registry!;
      let refused = 0;
      for (let k = 0; k < n; k++) if (!r.authenticate('no-such-device', 'x').ok) refused++;
      return refused;
    },
  },
  {
    group: 'registry',
    name: 'liveness seen + advance (100,000 devices, 1 ms of clock per message)',
    // As fast as authentication must be (500,000 messages/s), so liveness never holds the device node back.
    target: { min: 500_000, per: 'op', unit: 'messages' },
    setup: trackerFixture,
    run(n) {
      // Traffic from all devices in turn; the clock moves 1 ms per message, so every device's
      // deadline comes due again and again (re-queued lazily) and silent ones would go offline.
      const t = tracker!;
      let events = 0;
      let i = tCursor;
      for (let k = 0; k < n; k++) {
        i += STRIDE;
        if (i >= TRACKED) i -= TRACKED;
        clock++;
        if (t.seen(trackerIds[i], clock)) events++;
        if ((k & 1023) === 0) events += t.advance(clock).length;
      }
      tCursor = i;
      return events + t.stats.heapSize;
    },
  },
  {
    group: 'registry',
    name: 'liveness advance with nothing due (100,000 devices)',
    setup: trackerFixture,
    run(n) {
      const t = tracker!;
      let events = 0;
      for (let k = 0; k < n; k++) events += t.advance(clock).length;
      return events;
    },
  },
];
