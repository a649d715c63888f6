/**
 * Just enough schema introspection to find the user model's columns and their Django field
 * types: column names, declared types, primary key, and the "positive" (>= 0) constraint.
 */
import type { DjangoDb } from './db.js';
import type { FieldType } from './fields.js';
import { truthy } from './values.js';

export interface ColumnInfo {
  readonly name: string;
  /** Declared type, lowercased: "integer", "bigint", "character varying(150)", "char(32)", ... */
  readonly type: string;
  readonly primaryKey: boolean;
  /** smallint/integer/bigint UNSIGNED, or a CHECK (col >= 0): Django's Positive*Field. */
  readonly positive: boolean;
}

interface RawColumn {
  name: string;
  type: string;
  pk: unknown;
  positive?: unknown;
}

const PG_COLUMNS = `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary
          AND a.attnum = ANY (i.indkey)) AS pk,
  EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = a.attrelid AND c.contype = 'c'
          AND a.attnum = ANY (c.conkey) AND pg_get_constraintdef(c.oid) LIKE '%>= 0%') AS positive
FROM pg_attribute a
WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`;

const MYSQL_COLUMNS = `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, COLUMN_KEY = 'PRI' AS pk
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION`;

const SQLITE_COLUMNS = 'SELECT name, type, pk FROM pragma_table_info(?)';

/** The columns of `table`, or null when the table does not exist. */
export async function describeTable(db: DjangoDb, table: string): Promise<ColumnInfo[] | null> {
  let rows: RawColumn[];
  if (db.dialect === 'postgres') {
    // to_regclass follows search_path and answers NULL (no rows) for a missing table.
    rows = await db.query<RawColumn>(PG_COLUMNS, [db.quote(table)]);
  } else if (db.dialect === 'mysql') {
    rows = await db.query<RawColumn>(MYSQL_COLUMNS, [table]);
  } else {
    rows = await db.query<RawColumn>(SQLITE_COLUMNS, [table]);
  }
  if (rows.length === 0) return null;
  return rows.map((row) => {
    const type = String(row.type).toLowerCase();
    return {
      name: String(row.name),
      type,
      primaryKey: db.dialect === 'sqlite' ? Number(row.pk) > 0 : truthy(row.pk),
      positive: truthy(row.positive) || /\bunsigned\b/.test(type),
    };
  });
}

/**
 * On SQLite every AutoField, BigAutoField and SmallAutoField primary key is declared "integer";
 * only the columns that reference it tell them apart ("bigint" for BigAutoField, ...).
 * Returns the declared types of the columns with a foreign key to `table`.`pkColumn`.
 */
export async function sqliteReferencingTypes(
  db: DjangoDb,
  table: string,
  pkColumn: string,
): Promise<string[]> {
  const rows = await db.query<{ tbl: string; col: string }>(
    `SELECT m.name AS tbl, f."from" AS col
     FROM sqlite_master m, pragma_foreign_key_list(m.name) f
     WHERE m.type = 'table' AND f."table" = ? AND (f."to" IS NULL OR f."to" = ?)
     ORDER BY m.name`,
    [table, pkColumn],
  );
  const types: string[] = [];
  for (const row of rows) {
    const columns = await describeTable(db, row.tbl);
    const column = columns?.find((candidate) => candidate.name === row.col);
    if (column) types.push(column.type);
  }
  return types;
}

type IntegerSize = 'Small' | 'Integer' | 'Big';

function integerField(size: IntegerSize, column: ColumnInfo): FieldType {
  if (column.positive) {
    return size === 'Small'
      ? 'PositiveSmallIntegerField'
      : size === 'Big'
        ? 'PositiveBigIntegerField'
        : 'PositiveIntegerField';
  }
  if (column.primaryKey) {
    return size === 'Small' ? 'SmallAutoField' : size === 'Big' ? 'BigAutoField' : 'AutoField';
  }
  return size === 'Small'
    ? 'SmallIntegerField'
    : size === 'Big'
      ? 'BigIntegerField'
      : 'IntegerField';
}

/**
 * The Django internal type behind a column, from Django's per-backend type maps (spec B.3).
 * Auto and plain integer fields of one size are encoded alike, so telling them apart only
 * matters for names.
 * Returns null for a type no key field maps to.
 */
export function fieldTypeOf(column: ColumnInfo): FieldType | null {
  const type = column.type.replace(/\bauto_increment\b/, '').trim();
  if (/^smallint\b|^int2$/.test(type)) return integerField('Small', column);
  if (/^bigint\b|^int8$/.test(type)) return integerField('Big', column);
  if (/^(integer|int|int4|mediumint)\b/.test(type)) return integerField('Integer', column);
  if (type === 'uuid') return 'UUIDField';
  // Django declares UUIDField as char(32) on MySQL and SQLite; CharField is always varchar.
  if (/^(char|character)\(32\)$/.test(type)) return 'UUIDField';
  if (/^(varchar|character varying|char|character|nvarchar|nchar)\b/.test(type)) return 'CharField';
  if (/^(text|longtext|mediumtext|tinytext|clob)$/.test(type)) return 'TextField';
  if (/^(bytea|blob|longblob|mediumblob|tinyblob|varbinary|binary)\b/.test(type)) {
    return 'BinaryField';
  }
  return null;
}
