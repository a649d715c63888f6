/**
 * A SQLite database shaped exactly like the one `manage.py migrate` leaves for Django's
 * contenttypes and auth apps (default user model), filled with models, groups and users
 * described in a few lines. The demo runs on it, and so do tests that need a real Django schema
 * without installing Django.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';

/** Django 5's SQLite DDL for the tables sidecast reads, with their indexes. */
const DDL = [
  'CREATE TABLE "django_content_type" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "app_label" varchar(100) NOT NULL, "model" varchar(100) NOT NULL)',
  'CREATE UNIQUE INDEX "django_content_type_app_label_model_76bd3d3b_uniq" ON "django_content_type" ("app_label", "model")',
  'CREATE TABLE "auth_permission" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "content_type_id" integer NOT NULL REFERENCES "django_content_type" ("id") DEFERRABLE INITIALLY DEFERRED, "codename" varchar(100) NOT NULL, "name" varchar(255) NOT NULL)',
  'CREATE UNIQUE INDEX "auth_permission_content_type_id_codename_01ab375a_uniq" ON "auth_permission" ("content_type_id", "codename")',
  'CREATE INDEX "auth_permission_content_type_id_2f476e4b" ON "auth_permission" ("content_type_id")',
  'CREATE TABLE "auth_group" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "name" varchar(150) NOT NULL UNIQUE)',
  'CREATE TABLE "auth_group_permissions" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "group_id" integer NOT NULL REFERENCES "auth_group" ("id") DEFERRABLE INITIALLY DEFERRED, "permission_id" integer NOT NULL REFERENCES "auth_permission" ("id") DEFERRABLE INITIALLY DEFERRED)',
  'CREATE UNIQUE INDEX "auth_group_permissions_group_id_permission_id_0cd325b0_uniq" ON "auth_group_permissions" ("group_id", "permission_id")',
  'CREATE INDEX "auth_group_permissions_group_id_b120cbf9" ON "auth_group_permissions" ("group_id")',
  'CREATE INDEX "auth_group_permissions_permission_id_84c5c92e" ON "auth_group_permissions" ("permission_id")',
  'CREATE TABLE "auth_user" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "password" varchar(128) NOT NULL, "last_login" datetime NULL, "is_superuser" bool NOT NULL, "username" varchar(150) NOT NULL UNIQUE, "last_name" varchar(150) NOT NULL, "email" varchar(254) NOT NULL, "is_staff" bool NOT NULL, "is_active" bool NOT NULL, "date_joined" datetime NOT NULL, "first_name" varchar(150) NOT NULL)',
  'CREATE TABLE "auth_user_groups" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "user_id" integer NOT NULL REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED, "group_id" integer NOT NULL REFERENCES "auth_group" ("id") DEFERRABLE INITIALLY DEFERRED)',
  'CREATE UNIQUE INDEX "auth_user_groups_user_id_group_id_94350c0c_uniq" ON "auth_user_groups" ("user_id", "group_id")',
  'CREATE INDEX "auth_user_groups_group_id_97559544" ON "auth_user_groups" ("group_id")',
  'CREATE INDEX "auth_user_groups_user_id_6a12ed8b" ON "auth_user_groups" ("user_id")',
  'CREATE TABLE "auth_user_user_permissions" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "user_id" integer NOT NULL REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED, "permission_id" integer NOT NULL REFERENCES "auth_permission" ("id") DEFERRABLE INITIALLY DEFERRED)',
  'CREATE UNIQUE INDEX "auth_user_user_permissions_user_id_permission_id_14a6b632_uniq" ON "auth_user_user_permissions" ("user_id", "permission_id")',
  'CREATE INDEX "auth_user_user_permissions_permission_id_1fbb5f2c" ON "auth_user_user_permissions" ("permission_id")',
  'CREATE INDEX "auth_user_user_permissions_user_id_a95ead1b" ON "auth_user_user_permissions" ("user_id")',
];

/** A model as Django registers it: "app_label.model" (lowercase model name) and its verbose name. */
export interface SiteModel {
  readonly label: `${string}.${string}`;
  readonly verboseName: string;
}

export interface SiteGroup {
  readonly name: string;
  /** Permission strings as has_perm takes them: "catalog.view_book". */
  readonly permissions: readonly string[];
}

export interface SiteUser {
  readonly username: string;
  readonly superuser?: boolean;
  readonly active?: boolean;
  readonly permissions?: readonly string[];
  readonly groups?: readonly string[];
}

export interface SiteSpec {
  readonly models: readonly SiteModel[];
  readonly groups?: readonly SiteGroup[];
  readonly users: readonly SiteUser[];
}

/** What was created: content type ids by "app_label.model", user ids by username. */
export interface SiteIds {
  readonly contentTypes: ReadonlyMap<string, number>;
  readonly users: ReadonlyMap<string, number>;
}

const ACTIONS = ['add', 'change', 'delete', 'view'] as const;

/** A password Django can never match (what set_unusable_password stores): demo users never log in. */
export function unusablePassword(): string {
  return `!${randomBytes(30).toString('base64url').slice(0, 40)}`;
}

/** "2024-06-01 12:00:05.123456": how Django's SQLite backend stores an aware datetime in UTC. */
function sqliteDatetime(date: Date): string {
  return `${date.toISOString().replace('T', ' ').slice(0, 23)}000`;
}

/**
 * Creates the schema in a new SQLite file and fills it, in one transaction, with each model's
 * content type and its four default permissions, then the groups and users of `spec`.
 */
export function createDjangoSqlite(file: string, spec: SiteSpec): SiteIds {
  const db = new Database(file);
  try {
    const contentTypes = new Map<string, number>();
    const users = new Map<string, number>();
    db.transaction(() => {
      for (const statement of DDL) db.exec(statement);
      const addType = db.prepare(
        'INSERT INTO django_content_type (app_label, model) VALUES (?, ?)',
      );
      const addPermission = db.prepare(
        'INSERT INTO auth_permission (content_type_id, codename, name) VALUES (?, ?, ?)',
      );
      const permissionIds = new Map<string, number>();
      for (const model of spec.models) {
        const [app, name] = model.label.split('.') as [string, string];
        const typeId = Number(addType.run(app, name).lastInsertRowid);
        contentTypes.set(model.label, typeId);
        for (const action of ACTIONS) {
          const codename = `${action}_${name}`;
          const info = addPermission.run(typeId, codename, `Can ${action} ${model.verboseName}`);
          permissionIds.set(`${app}.${codename}`, Number(info.lastInsertRowid));
        }
      }
      const permissionId = (perm: string): number => {
        const id = permissionIds.get(perm);
        if (id === undefined) throw new Error(`unknown permission "${perm}" in the site spec`);
        return id;
      };
      const groupIds = new Map<string, number>();
      const addGroup = db.prepare('INSERT INTO auth_group (name) VALUES (?)');
      const grantGroup = db.prepare(
        'INSERT INTO auth_group_permissions (group_id, permission_id) VALUES (?, ?)',
      );
      for (const group of spec.groups ?? []) {
        const groupId = Number(addGroup.run(group.name).lastInsertRowid);
        groupIds.set(group.name, groupId);
        for (const perm of group.permissions) grantGroup.run(groupId, permissionId(perm));
      }
      const addUser = db.prepare(
        `INSERT INTO auth_user (password, last_login, is_superuser, username, last_name, email,
           is_staff, is_active, date_joined, first_name)
         VALUES (?, NULL, ?, ?, '', ?, ?, ?, ?, '')`,
      );
      const grantUser = db.prepare(
        'INSERT INTO auth_user_user_permissions (user_id, permission_id) VALUES (?, ?)',
      );
      const join = db.prepare('INSERT INTO auth_user_groups (user_id, group_id) VALUES (?, ?)');
      const joined = sqliteDatetime(new Date());
      for (const user of spec.users) {
        const superuser = user.superuser ? 1 : 0;
        const userId = Number(
          addUser.run(
            unusablePassword(),
            superuser,
            user.username,
            `${user.username}@example.com`,
            superuser,
            user.active === false ? 0 : 1,
            joined,
          ).lastInsertRowid,
        );
        users.set(user.username, userId);
        for (const perm of user.permissions ?? []) grantUser.run(userId, permissionId(perm));
        for (const group of user.groups ?? []) {
          const groupId = groupIds.get(group);
          if (groupId === undefined) throw new Error(`unknown group "${group}" in the site spec`);
          join.run(userId, groupId);
        }
      }
    })();
    return { contentTypes, users };
  } finally {
    db.close();
  }
}
