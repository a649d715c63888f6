/**
 * Django's table and column naming rules for the user model and its PermissionsMixin
 * many-to-many tables (spec B.4), reproduced so that sidecast finds them without Python.
 */
import { createHash } from 'node:crypto';
import { SidecastError } from '../errors.js';
import type { Dialect } from './db.js';

/** connection.ops.max_name_length(): PostgreSQL 63, MySQL/MariaDB 64, SQLite unlimited. */
export const MAX_NAME_LENGTH: Readonly<Record<Dialect, number | null>> = {
  postgres: 63,
  mysql: 64,
  sqlite: null,
};

/**
 * django.db.backends.utils.truncate_name: a name longer than `length` keeps its first
 * `length - 4` characters and gets the first 4 lowercase hex digits of md5(name) appended.
 * Lengths count code points, as Python's len() does.
 */
export function truncateName(name: string, length: number | null, hashLength = 4): string {
  const chars = [...name];
  if (length === null || chars.length <= length) return name;
  const digest = createHash('md5').update(name, 'utf8').digest('hex').slice(0, hashLength);
  return chars.slice(0, length - hashLength).join('') + digest;
}

export interface UserModelNames {
  readonly appLabel: string;
  /** Model name lowercased, as `_meta.model_name`. */
  readonly modelName: string;
  readonly table: string;
  readonly groupsTable: string;
  readonly groupsUserColumn: string;
  readonly groupsGroupColumn: string;
  readonly permissionsTable: string;
  readonly permissionsUserColumn: string;
  readonly permissionsPermissionColumn: string;
}

/** Splits AUTH_USER_MODEL ("app_label.ModelName") the way Django does: exactly one dot. */
export function parseAuthUserModel(authUserModel: string): { appLabel: string; modelName: string } {
  const parts = authUserModel.split('.');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new SidecastError(
      'CONFIG_INVALID',
      `AUTH_USER_MODEL must be of the form "app_label.ModelName", got "${authUserModel}"`,
    );
  }
  return { appLabel: parts[0] as string, modelName: (parts[1] as string).toLowerCase() };
}

/** Column names of an auto-created many-to-many table (create_many_to_many_intermediary_model). */
function m2mColumns(fromModel: string, toModel: string): { from: string; to: string } {
  if (fromModel === toModel) return { from: `from_${fromModel}_id`, to: `to_${toModel}_id` };
  return { from: `${fromModel}_id`, to: `${toModel}_id` };
}

/**
 * Table and column names for AUTH_USER_MODEL on `dialect`. `dbTable` is the model's
 * Meta.db_table when the project sets one; Django uses it as given, without truncation.
 */
export function userModelNames(
  authUserModel: string,
  dialect: Dialect,
  dbTable?: string | null,
): UserModelNames {
  const { appLabel, modelName } = parseAuthUserModel(authUserModel);
  const limit = MAX_NAME_LENGTH[dialect];
  const table = dbTable ? dbTable : truncateName(`${appLabel}_${modelName}`, limit);
  // ManyToManyField._get_m2m_db_table: "<user table>_<field name>", truncated on its own.
  const base =
    table.length > 1 && table.startsWith('"') && table.endsWith('"') ? table.slice(1, -1) : table;
  const groups = m2mColumns(modelName, 'group');
  const permissions = m2mColumns(modelName, 'permission');
  return {
    appLabel,
    modelName,
    table,
    groupsTable: truncateName(`${base}_groups`, limit),
    groupsUserColumn: groups.from,
    groupsGroupColumn: groups.to,
    permissionsTable: truncateName(`${base}_user_permissions`, limit),
    permissionsUserColumn: permissions.from,
    permissionsPermissionColumn: permissions.to,
  };
}
