/**
 * Resolves AUTH_USER_MODEL to concrete tables and columns: Django's naming rules give the
 * names, introspection confirms them and reveals the key field types (which decide how a key
 * is bound in queries and how an authenticator's credentials encode it).
 */
import { SidecastError } from '../errors.js';
import type { DjangoDb } from './db.js';
import type { FieldType } from './fields.js';
import {
  describeTable,
  fieldTypeOf,
  sqliteReferencingTypes,
  type ColumnInfo,
} from './introspect.js';
import { userModelNames } from './naming.js';
import type { DjangoSettings } from './settings.js';

/**
 * How a key column stores its values, which decides how a PkValue is bound and read back:
 * UUIDs are native on PostgreSQL (and MariaDB >= 10.7 with Django >= 5.0), 32 hex digits elsewhere.
 */
export type KeyEncoding = 'integer' | 'uuid' | 'uuid-hex' | 'text' | 'binary';

export interface UserModel {
  readonly table: string;
  readonly pkColumn: string;
  readonly pkFieldType: FieldType;
  readonly pkEncoding: KeyEncoding;
  /** The column of the field credentials name users by (UserLookup.field); may be the pk's. */
  readonly lookupColumn: string;
  readonly lookupFieldType: FieldType;
  readonly lookupEncoding: KeyEncoding;
  /** USERNAME_FIELD's column. */
  readonly usernameColumn: string;
  readonly passwordColumn: string;
  /** EMAIL_FIELD's column; null when the model has none. */
  readonly emailColumn: string | null;
  /** null for a model that sets `last_login = None`. */
  readonly lastLoginColumn: string | null;
  /** null: AbstractBaseUser's class attribute `is_active = True` applies. */
  readonly isActiveColumn: string | null;
  /** The PermissionsMixin parts; all null for a model without it. */
  readonly isSuperuserColumn: string | null;
  readonly groupsTable: string | null;
  readonly groupsUserColumn: string | null;
  readonly permissionsTable: string | null;
  readonly permissionsUserColumn: string | null;
}

/**
 * How an authenticator's credentials name users, and what it needs of the user model beyond what
 * Django itself requires. Each authenticator words the errors in its own settings' names.
 */
export interface UserLookup {
  /** The model field credentials carry: "pk" for the primary key, else a field name. */
  readonly field: string;
  /** The setting that chose `field`, named when the model has no such column. */
  readonly fieldSetting: string;
  /** The setting that needs the EMAIL_FIELD column, when one does; null when none does. */
  readonly emailNeededBy: string | null;
  /**
   * What a key column of a type no Django field maps to is read as: a field type when the
   * authenticator decides the key's encoding itself, else null to refuse the column.
   */
  readonly untypedKeyType: FieldType | null;
  /** The end of that refusal, after `has type "…", which `: why, and what to set. */
  readonly untypedKeyRefusal: string;
}

/** Users named by primary key, as Django's session stores them; nothing more is needed. */
export const PRIMARY_KEY_LOOKUP: UserLookup = Object.freeze({
  field: 'pk',
  fieldSetting: 'the lookup field',
  emailNeededBy: null,
  untypedKeyType: null,
  untypedKeyRefusal: 'no Django key field maps to',
});

function tableNotFound(table: string): SidecastError {
  return new SidecastError(
    'DB_SCHEMA',
    `table "${table}" not found: is this the Django database and has \`manage.py migrate\` run?`,
  );
}

async function requireTable(db: DjangoDb, table: string): Promise<ColumnInfo[]> {
  const columns = await describeTable(db, table);
  if (columns === null) throw tableNotFound(table);
  return columns;
}

/** A model field's column: its name, or name + "_id" for a foreign key. */
function fieldColumn(columns: readonly ColumnInfo[], field: string): ColumnInfo | undefined {
  return (
    columns.find((column) => column.name === field) ??
    columns.find((column) => column.name === `${field}_id`)
  );
}

function requireColumn(
  columns: readonly ColumnInfo[],
  table: string,
  field: string,
  why: string,
): ColumnInfo {
  const column = fieldColumn(columns, field);
  if (column === undefined) {
    throw new SidecastError('DB_SCHEMA', `table "${table}" has no column for ${why} "${field}"`);
  }
  return column;
}

function encodingOf(type: FieldType, column: ColumnInfo): KeyEncoding {
  if (type === 'UUIDField') return column.type === 'uuid' ? 'uuid' : 'uuid-hex';
  if (type === 'CharField' || type === 'TextField') return 'text';
  if (type === 'BinaryField') return 'binary';
  return 'integer';
}

async function fieldTypeFor(
  db: DjangoDb,
  table: string,
  column: ColumnInfo,
  lookup: UserLookup,
): Promise<FieldType> {
  const type = fieldTypeOf(column);
  if (type === null) {
    if (lookup.untypedKeyType !== null) return lookup.untypedKeyType;
    throw new SidecastError(
      'CONFIG_INVALID',
      `column "${column.name}" of "${table}" has type "${column.type}", which ${lookup.untypedKeyRefusal}`,
    );
  }
  if (db.dialect === 'sqlite' && type === 'AutoField') {
    // All auto fields are "integer" on SQLite; the referencing columns say which one it is.
    const referencing = await sqliteReferencingTypes(db, table, column.name);
    if (referencing.some((declared) => /^bigint\b/.test(declared))) return 'BigAutoField';
    if (referencing.some((declared) => /^smallint\b/.test(declared))) return 'SmallAutoField';
  }
  return type;
}

/** The PermissionsMixin many-to-many table, which must exist with its user column. */
async function requireM2m(db: DjangoDb, table: string, userColumn: string): Promise<void> {
  const columns = await requireTable(db, table);
  requireColumn(columns, table, userColumn, 'the user');
}

export async function resolveUserModel(
  db: DjangoDb,
  settings: DjangoSettings,
  lookup: UserLookup = PRIMARY_KEY_LOOKUP,
): Promise<UserModel> {
  const names = userModelNames(settings.authUserModel, db.dialect, settings.userTable);
  const table = names.table;
  const columns = await requireTable(db, table);
  const pks = columns.filter((column) => column.primaryKey);
  if (pks.length !== 1) {
    throw new SidecastError(
      'DB_SCHEMA',
      `table "${table}" has ${pks.length} primary key columns; sidecast needs exactly one`,
    );
  }
  const pk = pks[0] as ColumnInfo;
  const lookupField =
    lookup.field === 'pk' ? pk : requireColumn(columns, table, lookup.field, lookup.fieldSetting);
  const pkFieldType = await fieldTypeFor(db, table, pk, lookup);
  const lookupFieldType =
    lookupField === pk ? pkFieldType : await fieldTypeFor(db, table, lookupField, lookup);

  const username = settings.usernameField
    ? requireColumn(columns, table, settings.usernameField, 'USERNAME_FIELD')
    : (fieldColumn(columns, 'username') ?? fieldColumn(columns, 'email') ?? pk);
  const email = settings.emailField
    ? requireColumn(columns, table, settings.emailField, 'EMAIL_FIELD')
    : (fieldColumn(columns, 'email') ?? null);
  if (lookup.emailNeededBy !== null && email === null) {
    throw new SidecastError(
      'CONFIG_INVALID',
      `${lookup.emailNeededBy} is on but table "${table}" has no email column`,
    );
  }
  const password = requireColumn(columns, table, 'password', 'the password');
  const superuser = fieldColumn(columns, 'is_superuser') ?? null;

  let permissionsMixin = false;
  if (superuser !== null) {
    // PermissionsMixin brings is_superuser, groups and user_permissions together.
    permissionsMixin = true;
    await requireM2m(db, names.groupsTable, names.groupsUserColumn);
    await requireM2m(db, names.permissionsTable, names.permissionsUserColumn);
    for (const shared of ['auth_group_permissions', 'auth_permission', 'django_content_type']) {
      await requireTable(db, shared);
    }
  }

  return Object.freeze({
    table,
    pkColumn: pk.name,
    pkFieldType,
    pkEncoding: encodingOf(pkFieldType, pk),
    lookupColumn: lookupField.name,
    lookupFieldType,
    lookupEncoding: encodingOf(lookupFieldType, lookupField),
    usernameColumn: username.name,
    passwordColumn: password.name,
    emailColumn: email?.name ?? null,
    lastLoginColumn: fieldColumn(columns, 'last_login')?.name ?? null,
    isActiveColumn: fieldColumn(columns, 'is_active')?.name ?? null,
    isSuperuserColumn: superuser?.name ?? null,
    groupsTable: permissionsMixin ? names.groupsTable : null,
    groupsUserColumn: permissionsMixin ? names.groupsUserColumn : null,
    permissionsTable: permissionsMixin ? names.permissionsTable : null,
    permissionsUserColumn: permissionsMixin ? names.permissionsUserColumn : null,
  });
}
