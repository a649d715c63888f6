/**
 * The Django model fields a user key can be, and the values sidecast holds for them. Key
 * columns are introspected into a FieldType, read into a PkValue, and bound back from one.
 */

/**
 * A key's value: integers as bigint, UUIDs as lowercase dashed text, CharField/TextField as
 * text, BinaryField as bytes.
 */
export type PkValue = bigint | string | Uint8Array;

/** A field's get_internal_type(), for the fields a primary key or lookup field can be. */
export type FieldType =
  | 'AutoField'
  | 'IntegerField'
  | 'PositiveIntegerField'
  | 'BigAutoField'
  | 'BigIntegerField'
  | 'PositiveBigIntegerField'
  | 'SmallAutoField'
  | 'SmallIntegerField'
  | 'PositiveSmallIntegerField'
  | 'UUIDField'
  | 'CharField'
  | 'TextField'
  | 'BinaryField';
