/** The saved configuration of a thingwire-batch node (what the editor dialog writes). */
export interface BatchConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  maxItems?: number | string;
  maxWaitMs?: number | string;
}
