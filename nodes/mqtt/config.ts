/** The saved configuration of a thingwire-mqtt-in node (what the editor dialog writes). */
export interface MqttInConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  /** Broker host name or address (`${ENV}` allowed as the whole value). */
  host?: string;
  port?: number | string;
  /** 'mqtt' or 'mqtts'. */
  tls?: string;
  /** Stable client id; empty: `thingwire-<node id>`. */
  clientId?: string;
  /** Topic filters, one per line or comma separated. */
  topics?: string;
  /** Topic filters whose messages are acknowledged on receipt (status, last will: nothing stores them). */
  confirmOnReceipt?: string;
  /** '4' (MQTT 3.1.1) or '5'. */
  protocol?: string;
  maxInFlight?: number | string;
  /** Payload megabytes waiting for confirmation at most (absent: 16). */
  maxInFlightMB?: number | string;
  /** Seconds before an unsettled message is released (0: never). */
  ackTimeout?: number | string;
  /** MQTT 5 session expiry, seconds. */
  sessionExpiry?: number | string;
  keepalive?: number | string;
  /** Output 1 sends the messages that arrive together as one message (msg.mqttGroup) for thingwire-normalise. */
  group?: boolean | string;
}
