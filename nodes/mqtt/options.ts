/**
 * The thingwire-mqtt-in node's options, checked and defaulted from its saved
 * config (no Node-RED here, so the checks are unit-tested alone).
 */
import { topicFilterProblem } from '../lib/ack';
import type { MqttInConfig } from './config';

export interface MqttInOptions {
  url: string;
  clientId: string;
  topics: string[];
  confirmOnReceipt: string[];
  protocolVersion: 4 | 5;
  maxInFlight: number;
  maxInFlightBytes: number;
  ackTimeoutMs: number;
  sessionExpiryS: number;
  keepaliveS: number;
  /** Messages that arrive together leave output 1 as one group message (see ../lib/group.ts). */
  group: boolean;
}

export const MQTT_IN_DEFAULTS = {
  host: '127.0.0.1',
  port: 1883,
  topics: 'devices/+/+',
  maxInFlight: 5000,
  maxInFlightMB: 16,
  ackTimeoutS: 60,
  sessionExpiryS: 86_400,
  keepaliveS: 30,
};

const CLIENT_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

function list(s: string | undefined): string[] {
  return (s ?? '')
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

function int(v: number | string | undefined, dflt: number, name: string, min: number, max: number, problems: string[]): number {
  if (v === undefined || v === '') return dflt;
  const n = typeof v === 'number' ? v : Number(v.trim());
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return dflt;
  }
  return n;
}

/** Options from the node's config, or the list of what is wrong with it. */
export function mqttInOptions(cfg: MqttInConfig): { options: MqttInOptions; problems: string[] } {
  const problems: string[] = [];
  const host = (cfg.host ?? '').trim() || MQTT_IN_DEFAULTS.host;
  if (/[\s/@]/.test(host)) problems.push(`host ${JSON.stringify(host)} must be a host name or address (no scheme, path or credentials)`);
  const port = int(cfg.port, MQTT_IN_DEFAULTS.port, 'port', 1, 65535, problems);
  const scheme = cfg.tls === 'mqtts' ? 'mqtts' : 'mqtt';
  const clientId = (cfg.clientId ?? '').trim() || `thingwire-${cfg.id}`;
  if (!CLIENT_ID_RE.test(clientId)) problems.push(`client id ${JSON.stringify(clientId)} must be 1-128 of A-Z a-z 0-9 . _ : -`);
  const topics = list(cfg.topics ?? MQTT_IN_DEFAULTS.topics);
  if (topics.length === 0) problems.push('no topic to subscribe to');
  const confirmOnReceipt = list(cfg.confirmOnReceipt);
  for (const t of [...topics, ...confirmOnReceipt]) {
    const p = topicFilterProblem(t);
    if (p) problems.push(`topic filter ${JSON.stringify(t)} ${p}`);
  }
  const protocolVersion = cfg.protocol === '5' ? 5 : 4;
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    options: {
      url: `${scheme}://${h}:${port}`,
      clientId,
      topics,
      confirmOnReceipt,
      protocolVersion,
      maxInFlight: int(cfg.maxInFlight, MQTT_IN_DEFAULTS.maxInFlight, 'max in flight', 1, 65535, problems),
      maxInFlightBytes: int(cfg.maxInFlightMB, MQTT_IN_DEFAULTS.maxInFlightMB, 'max in flight MB', 1, 4096, problems) * 1024 * 1024,
      ackTimeoutMs: int(cfg.ackTimeout, MQTT_IN_DEFAULTS.ackTimeoutS, 'confirmation timeout', 0, 86_400, problems) * 1000,
      sessionExpiryS: int(cfg.sessionExpiry, MQTT_IN_DEFAULTS.sessionExpiryS, 'session expiry', 0, 4_294_967_295, problems),
      keepaliveS: int(cfg.keepalive, MQTT_IN_DEFAULTS.keepaliveS, 'keepalive', 0, 65535, problems),
      group: cfg.group === true || cfg.group === 'true',
    },
    problems,
  };
}
