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
  /** Default level: 'raw', 'auto' or a rollup level (e.g. '1h'). */
  level?: string;
  /** Comma-separated rollup levels the store holds, finest first (default 1m, 1h, 1d). */
  levels?: string;
  catchRejects?: boolean | string;
}
