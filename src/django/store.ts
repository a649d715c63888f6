/**
 * Reads users and permissions from the Django database the way Django's ORM and ModelBackend
 * see them. A normal user costs two round trips (user row, then permissions);
 * an active superuser one; content types come from a shared cache.
 */
import { SidecastError } from '../errors.js';
import {
  createContentTypeCache,
  GRANTING_ACTIONS,
  type ContentTypeCache,
} from './content-types.js';
import type { DjangoDb } from './db.js';
import type { PkValue } from './fields.js';
import {
  checkTimeZone,
  isoformat,
  isoformatFromDb,
  lastLoginExpression,
  nowMicros,
  storageText,
  wallTime,
} from './last-login.js';
import type { DjangoSettings } from './settings.js';
import type { UserModel } from './user-model.js';
import { keyParam, keyText, keyValue, pkFromText, truthy } from './values.js';

export interface DjangoUser {
  /** str(user.pk): decimal, dashed lowercase UUID, or the text itself. */
  readonly pk: string;
  /** The value of the field credentials name users by (UserLookup.field; the pk by default). */
  readonly lookup: PkValue;
  /** The USERNAME_FIELD value. */
  readonly username: string;
  readonly password: string | null;
  readonly email: string | null;
  /** Python isoformat of last_login (spec A.5), or null. */
  readonly lastLogin: string | null;
  readonly isActive: boolean;
  readonly isSuperuser: boolean;
}

export interface DjangoStore {
  /** The user whose lookup field equals `lookup`, active or not; null when there is none. */
  findUser(lookup: PkValue): Promise<DjangoUser | null>;
  findUserByUsername(username: string): Promise<DjangoUser | null>;
  /** The users whose primary keys (as DjangoUser.pk gives them) are these, in one query. */
  findUsersByPk(pks: readonly string[]): Promise<DjangoUser[]>;
  /** get_content_types(user) from the websockets guide, with ModelBackend rules (spec B.1, B.2). */
  contentTypeIds(user: DjangoUser): Promise<Set<number>>;
  /** contentTypeIds for many users, in one query for all of them; keyed by DjangoUser.pk. */
  contentTypeIdsOf(users: readonly DjangoUser[]): Promise<Map<string, Set<number>>>;
  /** The users among `pks` who belong to any of these groups (auth_group ids), in one query. */
  groupMembers(groupIds: readonly string[], pks: readonly string[]): Promise<string[]>;
  /** Sets last_login as Django's update_last_login does; resolves to its new isoformat. */
  recordLogin(user: DjangoUser): Promise<string>;
  /** Resolves when the database answers. */
  check(): Promise<void>;
  close(): Promise<void>;
}

export interface DjangoStoreOptions {
  /** How long the django_content_type rows are reused. Default 30 s. */
  readonly contentTypeTtlMs?: number;
  /**
   * A permission naming an unknown content type reloads the rows early, at most this often.
   * Default 1 s.
   */
  readonly contentTypeRefreshMs?: number;
  /**
   * The time recordLogin stamps, in microseconds since the epoch, as timezone.now() gives it.
   * Default: the system clock. A fixed clock makes the stored bytes comparable with Django's.
   */
  readonly clock?: () => bigint;
}

interface UserRow {
  pk: unknown;
  lookup: unknown;
  username: unknown;
  password: string | null;
  email: string | null;
  last_login: unknown;
  is_active: unknown;
  is_superuser: unknown;
}

/** `?, ?, ?` for `count` parameters. */
export function marks(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}

export function createDjangoStore(
  db: DjangoDb,
  model: UserModel,
  settings: DjangoSettings,
  options: DjangoStoreOptions = {},
): DjangoStore {
  const q = (identifier: string): string => db.quote(identifier);
  const timeZone = settings.timeZone ?? 'UTC';
  const clock = options.clock ?? nowMicros;
  if (!settings.useTz) checkTimeZone(timeZone);
  const contentTypes: ContentTypeCache = createContentTypeCache(db, {
    ttlMs: options.contentTypeTtlMs,
    minRefreshMs: options.contentTypeRefreshMs,
  });

  const column = (name: string | null, otherwise: string): string =>
    name === null ? otherwise : q(name);
  const lastLogin =
    model.lastLoginColumn === null
      ? 'NULL'
      : lastLoginExpression(db.dialect, q(model.lastLoginColumn), settings.useTz, timeZone);
  const selectUser =
    `SELECT ${q(model.pkColumn)} AS ${q('pk')}, ${q(model.lookupColumn)} AS ${q('lookup')}, ` +
    `${q(model.usernameColumn)} AS ${q('username')}, ${q(model.passwordColumn)} AS ${q('password')}, ` +
    `${column(model.emailColumn, 'NULL')} AS ${q('email')}, ${lastLogin} AS ${q('last_login')}, ` +
    // No is_active column: AbstractBaseUser.is_active is True. No PermissionsMixin: no superuser.
    `${column(model.isActiveColumn, '1')} AS ${q('is_active')}, ` +
    `${column(model.isSuperuserColumn, '0')} AS ${q('is_superuser')} ` +
    `FROM ${q(model.table)} WHERE `;
  const byLookup = `${selectUser}${q(model.lookupColumn)} = ?`;
  const byUsername = `${selectUser}${q(model.usernameColumn)} = ?`;
  const byPks = (count: number): string => `${selectUser}${q(model.pkColumn)} IN (${marks(count)})`;

  // Direct and group permissions of many users in one round trip; both halves join the
  // permission's own content type, whose app_label prefixes the permission string (spec B.1).
  const { groupsTable, permissionsTable } = model;
  const groupUser = q(model.groupsUserColumn ?? '');
  const permissionUser = q(model.permissionsUserColumn ?? '');
  const permissions =
    groupsTable === null || permissionsTable === null
      ? null
      : (count: number): string =>
          `SELECT up.${permissionUser} AS ${q('user_id')}, ct.app_label AS app_label, p.codename AS codename
FROM ${q('auth_permission')} p
JOIN ${q(permissionsTable)} up ON up.${q('permission_id')} = p.id
JOIN ${q('django_content_type')} ct ON ct.id = p.content_type_id
WHERE up.${permissionUser} IN (${marks(count)})
UNION ALL
SELECT ug.${groupUser}, ct.app_label, p.codename
FROM ${q('auth_permission')} p
JOIN ${q('auth_group_permissions')} gp ON gp.permission_id = p.id
JOIN ${q(groupsTable)} ug ON ug.${q('group_id')} = gp.group_id
JOIN ${q('django_content_type')} ct ON ct.id = p.content_type_id
WHERE ug.${groupUser} IN (${marks(count)})`;
  const members =
    groupsTable === null
      ? null
      : (groups: number, users: number): string =>
          `SELECT DISTINCT ${groupUser} AS ${q('user_id')} FROM ${q(groupsTable)} ` +
          `WHERE ${q('group_id')} IN (${marks(groups)}) AND ${groupUser} IN (${marks(users)})`;
  const updateLastLogin =
    model.lastLoginColumn === null
      ? null
      : `UPDATE ${q(model.table)} SET ${q(model.lastLoginColumn)} = ? WHERE ${q(model.pkColumn)} = ?`;

  function toUser(row: UserRow): DjangoUser {
    const pk = keyValue(row.pk, model.pkEncoding);
    return Object.freeze({
      pk: keyText(pk),
      lookup: keyValue(row.lookup, model.lookupEncoding),
      username: row.username === null ? '' : String(row.username),
      password: row.password,
      email: row.email,
      lastLogin: isoformatFromDb(row.last_login, settings.useTz),
      // Current Django rejects a NULL is_active too (getattr(user, "is_active", True) is None).
      isActive: truthy(row.is_active),
      isSuperuser: truthy(row.is_superuser),
    });
  }

  async function contentTypeIdsOf(users: readonly DjangoUser[]): Promise<Map<string, Set<number>>> {
    const result = new Map<string, Set<number>>();
    // ModelBackend: an inactive user has no permission at all, superuser or not.
    const active = users.filter((user) => user.isActive);
    for (const user of users) result.set(user.pk, new Set());
    if (active.length === 0) return result;
    let index = await contentTypes.get();
    for (const user of active) if (user.isSuperuser) result.set(user.pk, new Set(index.ids));
    const others = active.filter((user) => !user.isSuperuser);
    if (permissions === null || others.length === 0) return result;
    const params = others.map((user) => pkFromText(user.pk, model.pkEncoding));
    const rows = await db.query<{ user_id: unknown; app_label: string; codename: string }>(
      permissions(params.length),
      [...params, ...params],
    );
    // Only view_ and change_ codenames can match "<app_label>.view_<model>" or change_.
    const granting = rows
      .filter((row) => GRANTING_ACTIONS.some((action) => row.codename.startsWith(`${action}_`)))
      .map((row) => ({
        pk: keyText(keyValue(row.user_id, model.pkEncoding)),
        perm: `${row.app_label}.${row.codename}`,
      }));
    if (granting.some(({ perm }) => !index.grants.has(perm))) {
      // Possibly a content type created after the cache was filled: look again (rate-limited).
      index = await contentTypes.refresh();
    }
    for (const { pk, perm } of granting) {
      const id = index.grants.get(perm);
      if (id !== undefined) result.get(pk)?.add(id);
    }
    return result;
  }

  async function first(sql: string, param: unknown): Promise<DjangoUser | null> {
    const rows = await db.query<UserRow>(sql, [param]);
    return rows[0] === undefined ? null : toUser(rows[0]);
  }

  return {
    async findUser(lookup) {
      const param = keyParam(lookup, model.lookupEncoding, model.lookupFieldType, db.dialect);
      return param === null ? null : first(byLookup, param);
    },

    findUserByUsername(username) {
      return first(byUsername, username);
    },

    async findUsersByPk(pks) {
      if (pks.length === 0) return [];
      const params = pks.map((pk) => pkFromText(pk, model.pkEncoding));
      const rows = await db.query<UserRow>(byPks(params.length), params);
      return rows.map(toUser);
    },

    async contentTypeIds(user) {
      return (await contentTypeIdsOf([user])).get(user.pk) ?? new Set();
    },

    contentTypeIdsOf,

    async groupMembers(groupIds, pks) {
      // Group primary keys are auth_group's AutoField: anything else names no group.
      const groups = groupIds.filter((id) => /^\d{1,18}$/.test(id)).map(Number);
      if (members === null || groups.length === 0 || pks.length === 0) return [];
      const users = pks.map((pk) => pkFromText(pk, model.pkEncoding));
      const rows = await db.query<{ user_id: unknown }>(members(groups.length, users.length), [
        ...groups,
        ...users,
      ]);
      return rows.map((row) => keyText(keyValue(row.user_id, model.pkEncoding)));
    },

    async recordLogin(user) {
      if (updateLastLogin === null) {
        throw new SidecastError(
          'DB_SCHEMA',
          `table "${model.table}" has no last_login column to record the login in`,
        );
      }
      const micros = clock();
      const local = wallTime(micros, settings.useTz ? 'UTC' : timeZone);
      // PostgreSQL stores an instant; MySQL and SQLite store the wall time Django would write.
      const stored =
        db.dialect === 'postgres' ? isoformat(wallTime(micros), '+00:00') : storageText(local);
      await db.query(updateLastLogin, [stored, pkFromText(user.pk, model.pkEncoding)]);
      return isoformat(local, settings.useTz ? '+00:00' : '');
    },

    async check() {
      await db.query('SELECT 1 AS ok');
    },

    close() {
      return db.close();
    },
  };
}
