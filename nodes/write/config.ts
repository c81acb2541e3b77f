/** The saved configuration of a thingwire-write node (what the editor dialog writes). */
export interface WriteConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  store?: string;
  readingMeasurement?: string;
  rollupMeasurement?: string;
  alertMeasurement?: string;
  /** Comma-separated keys of msg.device copied into tags. */
  deviceTags?: string;
  /** Comma-separated metric names written as integers. */
  intFields?: string;
  /** Comma-separated AnomalyScore fields to store (SCORE_FIELDS); empty or absent: every field. */
  scoreFields?: string;
  /** Store a score's band (expected, lower, upper) at most once every this many ms per device and metric; 0 or absent: every score's. */
  bandEvery?: number | string;
  /** Store a score at most once every this many ms per device and metric (anomalous ones and maintenance alerts always); 0 or absent: every score. */
  scoreEvery?: number | string;
  catchRejects?: boolean | string;
  /** Settle msg.mqttAck (thingwire-mqtt-in's at-least-once delivery) once the points are durable. */
  confirm?: boolean | string;
  /** 'queued' (absent: the message goes on once its points are queued) or 'durable' (once written or spooled). */
  passOn?: string;
}
