/**
 * The vocabulary of the job schema (schema-structs.ts, schema-consul.ts) and its checker
 * (schema.ts), apart so the tables and the checker do not import each other.
 */
export type Primitive = 'string' | 'int' | 'uint' | 'number' | 'bool' | 'duration' | 'time' | 'any';
/** A primitive, a struct's name, a slice (`{ array }`) or a `map[string]T` (`{ map }`). */
export type FieldType = Primitive | (string & {}) | { array: FieldType } | { map: FieldType };
export type UnknownFields = 'refuse' | 'ignore';
