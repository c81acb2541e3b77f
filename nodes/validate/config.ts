/** The saved configuration of a thingwire-validate node (what the editor dialog writes). */

export type SchemaSource = 'config' | 'msg' | 'set';

export interface ValidateConfig {
  id: string;
  name?: string;
  /** Config format version, for migrations of saved flows. */
  v?: number;
  property?: string;
  schemaSource?: SchemaSource;
  schema?: string;
  schemaSet?: string;
  keyProperty?: string;
  coerceTypes?: boolean | string;
  useDefaults?: boolean | string;
  allErrors?: boolean | string;
  maxBytes?: number | string;
  arrays?: 'items' | 'whole';
  catchRejects?: boolean | string;
}

