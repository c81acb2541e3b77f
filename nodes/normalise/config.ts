/** The saved configuration of a thingwire-normalise node (what the editor dialog writes). */
export interface NormaliseConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  tsUnit?: string;
  strings?: string;
  topicPrefix?: string;
  maxBytes?: number | string;
  maxBatch?: number | string;
  catchRejects?: boolean | string;
}
