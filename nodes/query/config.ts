/** The saved configuration of a thingwire-query node (what the editor dialog writes). */
export interface QueryConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  store?: string;
  measurement?: string;
  /** Comma-separated default fields (metrics). */
  fields?: string;
  start?: string;
  bucket?: string;
  agg?: string;
  maxPoints?: number | string;
  catchRejects?: boolean | string;
}
