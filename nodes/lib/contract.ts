/**
 * The Thingwire message contract. Every node takes and gives these shapes in
 * `msg.payload`; device metadata rides in `msg.device`. See DESIGN.md.
 */

/** A metric value as a device reported it. */
export type MetricValue = number | boolean | string;

/** One device's measurements at one instant (event time). */
export interface Reading {
  /** Device id: 1..128 characters, letters, digits and `._:-`, starting with a letter or digit. */
  device: string;
  /** Event time in milliseconds since the Unix epoch (UTC). */
  ts: number;
  /** Metric name to value. At least one entry. */
  metrics: Record<string, MetricValue>;
  /** Optional string tags (for example firmware version, site). */
  tags?: Record<string, string>;
}

/** A time window a rollup covers; `start` inclusive, `end` exclusive, all in ms epoch. */
export interface TimeWindow {
  start: number;
  end: number;
  /** Window size in ms (for calendar windows, the nominal size, e.g. 86400000 for a day). */
  size: number;
}

/** Aggregates of one metric of one device over one window. */
export interface Rollup {
  device: string;
  metric: string;
  window: TimeWindow;
  /** Rollup level label, e.g. "1m", "1h", "1d", "1mo". */
  level?: string;
  /** Numeric values aggregated (mean, min, ... are over these). */
  count: number;
  /** Values that were not finite numbers (strings, booleans): counted, not aggregated. */
  nonNumeric?: number;
  /** Approximate percentiles: |p - x| <= accuracy * |x| (1 % by default), x = value of rank floor(q (count - 1)). */
  p50?: number;
  p90?: number;
  p95?: number;
  p99?: number;
  /** Counters: increase over the window (a drop is a reset), per second over the window, resets seen. */
  delta?: number;
  rate?: number;
  resets?: number;
  sum: number;
  mean: number;
  min: number;
  max: number;
  stddev: number;
  first: number;
  last: number;
  firstTs?: number;
  lastTs?: number;
  /** True when this rollup replaces one emitted earlier for the same window (late data). */
  correction?: boolean;
  tags?: Record<string, string>;
}

export type Severity = 'critical' | 'major' | 'minor' | 'warning' | 'info';
export type AlertState = 'ok' | 'pending' | 'firing' | 'resolved';

/** A state change of one alert (one key = one rule on one device/metric). */
export interface AlertEvent {
  key: string;
  device: string;
  rule: string;
  state: AlertState;
  severity: Severity;
  value?: MetricValue;
  /** When the alert entered its current state (ms epoch). */
  since: number;
  metric?: string;
  acknowledged?: boolean;
  message?: string;
  /** thingwire-alert: the alert instance id, the same for every event of one episode (pending > firing > resolved). */
  id?: string;
  /** thingwire-alert: when this event happened (ms epoch); `since` stays the start of the current state. */
  at?: number;
  /** thingwire-alert: what this event reports. */
  reason?: AlertReason;
  /** thingwire-alert: the severity before an escalation or de-escalation. */
  previousSeverity?: Severity;
  /** thingwire-alert: the level's raise and clear conditions, as text ("temperature > 90"). */
  thresholds?: { raise: string; clear: string };
  /** thingwire-alert: who acknowledged it, when, and why (absent when not acknowledged). */
  ack?: AlertAck;
  /** thingwire-alert: true when a notifier should send this event (false: state only, silenced or flapping). */
  notify?: boolean;
  /** thingwire-alert: why a notification was held back. */
  suppressed?: 'silenced' | 'flapping';
  silenced?: boolean;
  flapping?: boolean;
  /** thingwire-alert: the facts the rule read (metric values, rates, scores, offline), by label. */
  values?: Record<string, MetricValue>;
}

/** Why thingwire-alert emitted an AlertEvent. */
export type AlertReason =
  | 'pending'
  | 'firing'
  | 'escalate'
  | 'de-escalate'
  | 'resolve'
  | 'cancel'
  | 'renotify'
  | 'ack'
  | 'unack'
  | 'silenced'
  | 'unsilenced'
  | 'flapping'
  | 'stable'
  | 'forgotten'
  | 'rule-changed';

/** An acknowledgement of an alert. */
export interface AlertAck {
  by: string;
  at: number;
  comment?: string;
}

/**
 * Predictive maintenance for one metric with a failure threshold: the fitted trend's estimate of
 * when the threshold is reached (thingwire-anomaly).
 */
export interface MaintenanceEstimate {
  /** The failure threshold and the side it is crossed from. */
  threshold: number;
  direction: 'above' | 'below';
  /** Estimated ms from `ts` until the threshold is reached; null when the trend does not head there. */
  ttf: number | null;
  /** Interval of the estimate (ms; null = unbounded). */
  ttfLow: number | null;
  ttfHigh: number | null;
  /** Probability that the threshold is reached within `horizon` ms, in [0, 1]. */
  probability: number;
  horizon: number;
  /** Fitted slope, units per hour. */
  slope: number;
  /** The regression model used, e.g. "theil-sen". */
  model: string;
  /** probability >= the configured maintenance level. */
  alert: boolean;
}

/** One scored value of one metric (thingwire-anomaly output). */
export interface AnomalyScore {
  device: string;
  metric: string;
  ts: number;
  value: number;
  /** Anomaly score in [0, 1]. */
  score: number;
  anomalous: boolean;
  /** Expected value and the normal band around it (NaN/null before the first valid reading). */
  expected: number;
  lower: number;
  upper: number;
  /** What drove the score ('learning' during warm-up). */
  signal: string;
  learning: boolean;
  maintenance?: MaintenanceEstimate;
  tags?: Record<string, string>;
}

/**
 * The most readings (or rollups, events) one message between nodes carries. Every node that takes arrays accepts this
 * many, and thingwire-batch merges no more, so a batch one node sends is never refused whole by the next
 * (payload_too_large settles every delivery in it as refused). A device's own payload is bounded lower, at normalise
 * (its Max batch, 10,000) and by bytes.
 */
export const MAX_BATCH = 100_000;

/** Machine-readable reasons a node rejects input. Stable: flows switch on them. */
export type RejectCode =
  | 'payload_too_large'
  | 'malformed_json'
  | 'not_a_reading'
  | 'invalid_device'
  | 'device_mismatch'
  | 'invalid_ts'
  | 'ts_out_of_range'
  | 'invalid_metric'
  | 'invalid_value'
  | 'no_metrics'
  | 'invalid_tags'
  | 'schema_invalid'
  | 'schema_not_found'
  | 'validation_failed'
  | 'invalid_query'
  | 'query_too_large'
  | 'out_of_order'
  | 'unknown_device'
  | 'device_disabled'
  | 'unauthorized';

/** One rejected input (or one rejected element of a batch, with its index). */
export interface Reject {
  code: RejectCode;
  message: string;
  /** Index in the input array when the input was a batch. */
  index?: number;
  details?: unknown;
}

/** What a node puts in `msg.error` when it sends a message to its reject output. */
export interface RejectError {
  code: RejectCode;
  message: string;
  /** The node type that rejected it, e.g. "thingwire-validate". */
  source: string;
}
