/**
 * Django's naming rules for the user model tables. Expected names were produced by Django 5.2
 * itself: truncate_name() called directly, and `manage.py migrate` of a model with a long name on
 * PostgreSQL 15 and MariaDB 10.11.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSidecastError } from '../../src/errors.js';
import { parseAuthUserModel, truncateName, userModelNames } from '../../src/django/naming.js';

void test('truncateName matches django.db.backends.utils.truncate_name', () => {
  const cases: [string, number | null, string][] = [
    ['a'.repeat(70), 63, `${'a'.repeat(59)}0f5c`],
    ['a'.repeat(63), 63, 'a'.repeat(63)],
    ['a'.repeat(64), 63, `${'a'.repeat(59)}0148`],
    ['x'.repeat(65), 64, `${'x'.repeat(60)}1bc9`],
    ['shop_order', null, 'shop_order'],
    // Python counts code points and hashes the UTF-8 bytes; the digest stays lowercase.
    [
      `${'é'.repeat(40)}_user_permissions${'ü'.repeat(10)}`,
      63,
      `${'é'.repeat(40)}_user_permissionsüü1c02`,
    ],
  ];
  for (const [name, length, expected] of cases) {
    assert.equal(truncateName(name, length), expected, `${name} at ${length}`);
  }
});

void test('auth.User keeps its historical names on every database', () => {
  for (const dialect of ['postgres', 'mysql', 'sqlite'] as const) {
    assert.deepEqual(userModelNames('auth.User', dialect), {
      appLabel: 'auth',
      modelName: 'user',
      table: 'auth_user',
      groupsTable: 'auth_user_groups',
      groupsUserColumn: 'user_id',
      groupsGroupColumn: 'group_id',
      permissionsTable: 'auth_user_user_permissions',
      permissionsUserColumn: 'user_id',
      permissionsPermissionColumn: 'permission_id',
    });
  }
});

void test('a custom user model is named after its app label and lowercased model name', () => {
  const names = userModelNames('accounts.CustomUser', 'postgres');
  assert.equal(names.table, 'accounts_customuser');
  assert.equal(names.groupsTable, 'accounts_customuser_groups');
  assert.equal(names.groupsUserColumn, 'customuser_id');
  assert.equal(names.permissionsTable, 'accounts_customuser_user_permissions');
  assert.equal(names.permissionsUserColumn, 'customuser_id');
});

void test('long names are truncated per database, the m2m names from the truncated table name', () => {
  const model = 'vecapp.UserModelWithAnExtremelyLongNameOverflowingTheLimitsAbcde';
  const column = 'usermodelwithanextremelylongnameoverflowingthelimitsabcde_id';
  const pg = userModelNames(model, 'postgres');
  assert.equal(pg.table, 'vecapp_usermodelwithanextremelylongnameoverflowingthelimitsb702');
  assert.equal(pg.groupsTable, 'vecapp_usermodelwithanextremelylongnameoverflowingthelimits78a3');
  assert.equal(
    pg.permissionsTable,
    'vecapp_usermodelwithanextremelylongnameoverflowingthelimits1939',
  );
  assert.equal(pg.groupsUserColumn, column);

  const mysql = userModelNames(model, 'mysql');
  assert.equal(mysql.table, 'vecapp_usermodelwithanextremelylongnameoverflowingthelimitsabcde');
  assert.equal(
    mysql.groupsTable,
    'vecapp_usermodelwithanextremelylongnameoverflowingthelimitsad85b',
  );
  assert.equal(
    mysql.permissionsTable,
    'vecapp_usermodelwithanextremelylongnameoverflowingthelimitsad0ae',
  );

  const sqlite = userModelNames(model, 'sqlite');
  assert.equal(
    sqlite.permissionsTable,
    'vecapp_usermodelwithanextremelylongnameoverflowingthelimitsabcde_user_permissions',
  );
});

void test('a user model named Group gets from_/to_ columns in its groups table', () => {
  const names = userModelNames('crm.Group', 'sqlite');
  assert.equal(names.groupsUserColumn, 'from_group_id');
  assert.equal(names.groupsGroupColumn, 'to_group_id');
  assert.equal(names.permissionsUserColumn, 'group_id');
});

void test('Meta.db_table is used as given, and names the m2m tables', () => {
  const names = userModelNames('accounts.Member', 'postgres', 'people');
  assert.equal(names.table, 'people');
  assert.equal(names.groupsTable, 'people_groups');
  assert.equal(names.permissionsUserColumn, 'member_id');
});

void test('AUTH_USER_MODEL needs exactly one dot', () => {
  assert.deepEqual(parseAuthUserModel('auth.User'), { appLabel: 'auth', modelName: 'user' });
  for (const bad of ['User', 'a.b.C', '.User', 'auth.']) {
    assert.throws(
      () => parseAuthUserModel(bad),
      (error) => isSidecastError(error, 'CONFIG_INVALID'),
    );
  }
});
