/**
 * The Django side of test/fixtures/sesame_v2.json (users, permissions, SQLite schemas), and
 * a dialect-neutral way to load it into any database through DjangoDb.
 */
import { readFileSync } from 'node:fs';
import type { DjangoDb } from '../../src/django/db.js';
import {
  DEFAULT_SESAME_SETTINGS,
  type DjangoSesameSettings,
} from '../../src/auth/sesame/settings.js';

const VECTORS_URL = new URL('../fixtures/sesame_v2.json', import.meta.url);

export interface ContentTypeRow {
  id: number;
  app_label: string;
  model: string;
}

export interface FixtureUser {
  user: {
    id: number;
    username: string;
    is_active: boolean;
    is_superuser: boolean;
    user_permissions?: string[];
    groups?: string[];
  };
  get_content_types_result: number[];
}

export interface PermissionFixture {
  permissions_created: { key: string; id: number; content_type_id: number; codename: string }[];
  groups: { id: number; name: string; permissions: string[] }[];
  users: FixtureUser[];
  all_django_content_type_rows: ContentTypeRow[];
}

export interface StoredValue {
  value: string | number | null;
  sqlite_type: string;
}

export interface TokenCaseInputs {
  USE_TZ: boolean;
  AUTH_USER_MODEL: string;
  user_model_table: string;
  pk_field_internal_type: string;
  sesame_effective: { PRIMARY_KEY_FIELD: string };
  user_row: Record<string, string | number | boolean | null>;
  user_row_as_stored_in_sqlite: Record<string, StoredValue>;
  token_pk_field: string;
  token_pk_value: string | number;
}

export interface Vectors {
  permissions: PermissionFixture;
  token_cases: { id: string; inputs: TokenCaseInputs }[];
  sqlite_schema_by_config: Record<string, Record<string, string>>;
}

export function loadVectors(): Vectors {
  return JSON.parse(readFileSync(VECTORS_URL, 'utf8')) as Vectors;
}

export type Insert = readonly [table: string, row: Readonly<Record<string, unknown>>];

/** The permission fixture as rows for auth.User's tables, in foreign-key order. */
export function permissionRows(fixture: PermissionFixture): Insert[] {
  const rows: Insert[] = [];
  for (const ct of fixture.all_django_content_type_rows)
    rows.push(['django_content_type', { ...ct }]);
  const permissionIds = new Map<string, number>();
  for (const p of fixture.permissions_created) {
    permissionIds.set(p.key, p.id);
    rows.push([
      'auth_permission',
      { id: p.id, content_type_id: p.content_type_id, codename: p.codename, name: p.codename },
    ]);
  }
  const groupIds = new Map<string, number>();
  for (const group of fixture.groups) {
    groupIds.set(group.name, group.id);
    rows.push(['auth_group', { id: group.id, name: group.name }]);
    for (const key of group.permissions) {
      rows.push([
        'auth_group_permissions',
        { group_id: group.id, permission_id: permissionIds.get(key) },
      ]);
    }
  }
  for (const { user } of fixture.users) {
    rows.push([
      'auth_user',
      {
        id: user.id,
        password: `pbkdf2_sha256$260000$salt$${user.username}`,
        last_login: null,
        is_superuser: user.is_superuser,
        username: user.username,
        first_name: '',
        last_name: '',
        email: `${user.username}@example.com`,
        is_staff: false,
        is_active: user.is_active,
        date_joined: '2024-01-01 00:00:00',
      },
    ]);
    for (const key of user.user_permissions ?? []) {
      rows.push([
        'auth_user_user_permissions',
        { user_id: user.id, permission_id: permissionIds.get(key) },
      ]);
    }
    for (const name of user.groups ?? []) {
      rows.push(['auth_user_groups', { user_id: user.id, group_id: groupIds.get(name) }]);
    }
  }
  return rows;
}

export async function insertRows(db: DjangoDb, rows: readonly Insert[]): Promise<void> {
  for (const [table, row] of rows) {
    const columns = Object.keys(row);
    await db.query(
      `INSERT INTO ${db.quote(table)} (${columns.map((c) => db.quote(c)).join(', ')}) ` +
        `VALUES (${columns.map(() => '?').join(', ')})`,
      Object.values(row),
    );
  }
}

export function djangoSettings(
  overrides: Partial<DjangoSesameSettings> = {},
): DjangoSesameSettings {
  return {
    secretKey: 'django-insecure-test',
    secretKeyFallbacks: [],
    authUserModel: 'auth.User',
    useTz: true,
    sesame: DEFAULT_SESAME_SETTINGS,
    ...overrides,
  };
}
