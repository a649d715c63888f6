/**
 * The run's Django database on PostgreSQL: created empty, migrated by Django itself (the Python
 * peer's settings), then filled in bulk with the population of population.ts: twenty models with
 * Django's four permissions each, the groups, and the users with random pbkdf2-shaped password
 * hashes (what django-sesame signs). Dropped at the end of the run.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import {
  GROUPS,
  MODEL_COUNT,
  probeModel,
  probeShardCount,
  probeShardOf,
  type BenchUser,
} from './population.js';
import { run } from './proc.js';

const ADMIN = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };

export interface UserRow {
  readonly pk: number;
  readonly password: string;
}

export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  /** Row of users[i]. */
  readonly rows: readonly UserRow[];
  /** django_content_type id of bench model i. */
  readonly modelIds: readonly number[];
  /** django_content_type id of the probe model of each shard. */
  readonly probeIds: readonly number[];
  /** Committed plus rolled back transactions in this database so far (pg_stat_database). */
  transactions(): Promise<number>;
  drop(): Promise<void>;
}

function passwordHash(): string {
  const salt = randomBytes(16).toString('base64url').slice(0, 22);
  return `pbkdf2_sha256$1000000$${salt}$${randomBytes(32).toString('base64')}`;
}

export async function createBenchDatabase(
  repo: string,
  python: string,
  secretKey: string,
  users: readonly BenchUser[],
): Promise<BenchDatabase> {
  const name = `sidecast_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client(ADMIN);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const drop = async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  };
  try {
    await run(python, ['-m', 'django', 'migrate', '--noinput', '-v', '0'], {
      cwd: repo,
      timeoutMs: 120_000,
      env: {
        ...process.env,
        DJANGO_SETTINGS_MODULE: 'bench_settings',
        PYTHONPATH: join(repo, 'bench', 'peers'),
        DJANGO_SECRET_KEY: secretKey,
        BENCH_DB_NAME: name,
      },
    });
    const seeded = await seed(name, users);
    return {
      name,
      url: `postgres://postgres@127.0.0.1:5432/${name}`,
      ...seeded,
      async transactions() {
        const result = await admin.query<{ n: string }>(
          'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1',
          [name],
        );
        return Number(result.rows[0]?.n ?? 0);
      },
      drop,
    };
  } catch (error) {
    await drop();
    throw error;
  }
}

async function seed(name: string, users: readonly BenchUser[]) {
  const db = new pg.Client({ ...ADMIN, database: name });
  await db.connect();
  try {
    const models = [
      ...Array.from({ length: MODEL_COUNT }, (_, i) => `model${String(i + 1).padStart(2, '0')}`),
      ...Array.from({ length: probeShardCount(users.length) }, (_, shard) => probeModel(shard)),
    ];
    const types = await db.query<{ id: number; model: string }>(
      `INSERT INTO django_content_type (app_label, model) SELECT 'bench', unnest($1::text[])
       RETURNING id, model`,
      [models],
    );
    const typeId = new Map(types.rows.map((row) => [row.model, row.id]));
    const ids = models.map((model) => typeId.get(model)!);
    const actions = ['add', 'change', 'delete', 'view'];
    // unnest of two arrays in one call keeps them paired; the cross join adds the four actions.
    const perms = await db.query<{ id: number; codename: string }>(
      `INSERT INTO auth_permission (name, content_type_id, codename)
       SELECT 'Can ' || a || ' ' || t.m, t.ct, a || '_' || t.m
       FROM unnest($1::text[], $2::int[]) AS t(m, ct) CROSS JOIN unnest($3::text[]) AS a
       RETURNING id, codename`,
      [models, ids, actions],
    );
    const permId = new Map(perms.rows.map((row) => [row.codename, row.id]));
    const shards = probeShardCount(users.length);
    const probeGroups = Array.from({ length: shards }, (_, shard) => `probe-${shard}`);
    const groupNames = [...GROUPS.map((group) => group.name), ...probeGroups];
    const groups = await db.query<{ id: number; name: string }>(
      'INSERT INTO auth_group (name) SELECT unnest($1::text[]) RETURNING id, name',
      [groupNames],
    );
    const groupId = new Map(groups.rows.map((row) => [row.name, row.id]));
    const grantGroup: number[] = [];
    const grantPerm: number[] = [];
    for (const group of GROUPS) {
      for (const model of group.models) {
        grantGroup.push(groupId.get(group.name)!);
        grantPerm.push(permId.get(`${group.action}_${models[model]}`)!);
      }
    }
    probeGroups.forEach((group, shard) => {
      grantGroup.push(groupId.get(group)!);
      grantPerm.push(permId.get(`view_${probeModel(shard)}`)!);
    });
    await db.query(
      `INSERT INTO auth_group_permissions (group_id, permission_id)
       SELECT * FROM unnest($1::int[], $2::int[])`,
      [grantGroup, grantPerm],
    );
    const passwords = users.map(() => passwordHash());
    const inserted = await db.query<{ id: number; username: string }>(
      `INSERT INTO auth_user (password, last_login, is_superuser, username, first_name, last_name,
         email, is_staff, is_active, date_joined)
       SELECT p, NULL, s, u, '', '', '', true, true, now()
       FROM unnest($1::text[], $2::bool[], $3::text[]) AS t(p, s, u)
       RETURNING id, username`,
      [passwords, users.map((user) => user.superuser), users.map((user) => user.username)],
    );
    const pkOf = new Map(inserted.rows.map((row) => [row.username, row.id]));
    const memberUser: number[] = [];
    const memberGroup: number[] = [];
    users.forEach((user, index) => {
      const pk = pkOf.get(user.username)!;
      for (const index of user.groups) {
        memberUser.push(pk);
        memberGroup.push(groupId.get(GROUPS[index]!.name)!);
      }
      memberUser.push(pk);
      memberGroup.push(groupId.get(probeGroups[probeShardOf(index)]!)!);
    });
    await db.query(
      `INSERT INTO auth_user_groups (user_id, group_id) SELECT * FROM unnest($1::int[], $2::int[])`,
      [memberUser, memberGroup],
    );
    await db.query('VACUUM ANALYZE');
    return {
      rows: users.map((user, i) => ({ pk: pkOf.get(user.username)!, password: passwords[i]! })),
      modelIds: ids.slice(0, MODEL_COUNT),
      probeIds: ids.slice(MODEL_COUNT),
    };
  } finally {
    await db.end();
  }
}
