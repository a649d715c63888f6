/**
 * Resolves AUTH_USER_MODEL to concrete tables and columns: Django's naming rules give the
 * names, introspection confirms them and reveals the field types (which pick the sesame packer).
 */
import type { FieldType } from '../auth/sesame/packers.js';
import { SidecastError } from '../errors.js';
import type { DjangoDb } from './db.js';
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
  /** SESAME_PRIMARY_KEY_FIELD's column, or the pk column. */
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
  settings: DjangoSettings,
): Promise<FieldType> {
  const type = fieldTypeOf(column);
  if (type === null) {
    // An explicit SESAME_PACKER decides the bytes; the value is then bound as text.
    if (settings.sesame.packer !== null) return 'CharField';
    throw new SidecastError(
      'CONFIG_INVALID',
      `column "${column.name}" of "${table}" has type "${column.type}", which no django-sesame ` +
        'packer handles: set SESAME_PACKER',
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

export async function resolveUserModel(db: DjangoDb, settings: DjangoSettings): Promise<UserModel> {
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
  const keyField = settings.sesame.primaryKeyField;
  const lookup =
    keyField === 'pk' ? pk : requireColumn(columns, table, keyField, 'SESAME_PRIMARY_KEY_FIELD');
  const pkFieldType = await fieldTypeFor(db, table, pk, settings);
  const lookupFieldType =
    lookup === pk ? pkFieldType : await fieldTypeFor(db, table, lookup, settings);

  const username = settings.usernameField
    ? requireColumn(columns, table, settings.usernameField, 'USERNAME_FIELD')
    : (fieldColumn(columns, 'username') ?? fieldColumn(columns, 'email') ?? pk);
  const email = settings.emailField
    ? requireColumn(columns, table, settings.emailField, 'EMAIL_FIELD')
    : (fieldColumn(columns, 'email') ?? null);
  if (settings.sesame.invalidateOnEmailChange && email === null) {
    // django-sesame raises ImproperlyConfigured at import in this case.
    throw new SidecastError(
      'CONFIG_INVALID',
      `SESAME_INVALIDATE_ON_EMAIL_CHANGE is on but table "${table}" has no email column`,
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
    lookupColumn: lookup.name,
    lookupFieldType,
    lookupEncoding: encodingOf(lookupFieldType, lookup),
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
