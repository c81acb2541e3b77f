/**
 * What GET /api/v1/health reports: each component and its state.
 */
import type { EventEmitter } from 'node:events';
import { listStores } from '../nodes/lib/store/registry';
import type { EmbeddedBroker } from './broker';

export type ComponentState = 'up' | 'down' | 'starting' | 'absent';

export interface ComponentHealth {
  state: ComponentState;
  detail: string;
  [key: string]: unknown;
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  uptimeSeconds: number;
  components: { broker: ComponentHealth; flows: ComponentHealth; store: ComponentHealth };
}

interface MqttClientLike {
  connected: boolean;
  end(force?: boolean): void;
  on(event: string, fn: (...a: unknown[]) => void): void;
}

export class HealthMonitor {
  private flowsState: ComponentState = 'starting';
  private flowsDetail = 'flows are starting';
  private readonly started = Date.now();
  private readonly client?: MqttClientLike;
  private lastMqttError = '';
  private readonly onStarted = (): void => {
    this.flowsState = 'up';
    this.flowsDetail = 'flows are running';
  };
  private readonly onStopped = (): void => {
    this.flowsState = 'down';
    this.flowsDetail = 'flows are stopped';
  };

  constructor(private readonly opts: { broker?: EmbeddedBroker; mqttUrl?: string; events: EventEmitter }) {
    opts.events.on('flows:started', this.onStarted);
    opts.events.on('flows:stopped', this.onStopped);
    if (opts.mqttUrl) {
      // An external broker: watch it with a client of our own.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mqtt = require('mqtt') as { connect(url: string, o: object): MqttClientLike };
      this.client = mqtt.connect(opts.mqttUrl, { clientId: `thingwire-health-${process.pid}`, reconnectPeriod: 2000, connectTimeout: 5000 });
      this.client.on('error', (e) => {
        this.lastMqttError = (e as Error).message;
      });
    }
  }

  async report(): Promise<HealthReport> {
    let broker: ComponentHealth;
    if (this.opts.broker) {
      broker = { state: 'up', detail: 'embedded broker', port: this.opts.broker.port, clients: this.opts.broker.clients() };
    } else if (this.client) {
      broker = this.client.connected
        ? { state: 'up', detail: `external broker ${this.opts.mqttUrl}` }
        : { state: 'down', detail: `external broker ${this.opts.mqttUrl} unreachable${this.lastMqttError ? `: ${this.lastMqttError}` : ''}` };
    } else {
      broker = { state: 'absent', detail: 'no broker' };
    }
    const flows: ComponentHealth = { state: this.flowsState, detail: this.flowsDetail };
    const store = await storeHealth();
    const ok = broker.state === 'up' && flows.state === 'up' && store.state !== 'down';
    return {
      status: ok ? 'ok' : 'degraded',
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      components: { broker, flows, store },
    };
  }

  close(): void {
    this.opts.events.off('flows:started', this.onStarted);
    this.opts.events.off('flows:stopped', this.onStopped);
    this.client?.end(true);
  }
}

/** The stores the flows run (thingwire-store config nodes): up when every one answers. */
async function storeHealth(): Promise<ComponentHealth> {
  const stores = listStores();
  if (stores.length === 0) return { state: 'absent', detail: 'no thingwire-store in the flows' };
  const parts = await Promise.all(
    stores.map(async (s) => {
      let h;
      try {
        h = await Promise.race([
          s.health(),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref()),
        ]);
      } catch (e) {
        h = { ok: false, detail: (e as Error).message };
      }
      return { id: s.id, description: s.description, ok: h.ok, detail: h.detail, ...s.stats() };
    }),
  );
  const down = parts.filter((p) => !p.ok);
  return {
    state: down.length === 0 ? 'up' : 'down',
    detail: down.length === 0 ? parts.map((p) => p.description).join('; ') : down.map((p) => `${p.description}: ${p.detail}`).join('; '),
    stores: parts,
  };
}
