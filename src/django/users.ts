/**
 * The Django users an authenticator reads: one call opens the database, resolves the user model
 * and returns the store over it, so every authenticator that checks credentials against Django's
 * tables starts the same way and fails at start-up for the same reasons.
 */
import { openDjangoDb, type DjangoDb } from './db.js';
import type { DjangoSettings } from './settings.js';
import { createDjangoStore, type DjangoStore } from './store.js';
import {
  PRIMARY_KEY_LOOKUP,
  resolveUserModel,
  type UserLookup,
  type UserModel,
} from './user-model.js';

export interface DjangoUsersOptions {
  /** Connections kept by the pool (pg, mysql); see openDjangoDb for the default. */
  readonly poolSize?: number;
  /** How the authenticator's credentials name users; by primary key unless told otherwise. */
  readonly lookup?: UserLookup;
}

export interface DjangoUsers extends DjangoStore {
  /** The resolved user model: its key field types tell an authenticator how keys are encoded. */
  readonly model: UserModel;
  /** The database itself, for an authenticator that reads more than users (Django's sessions). */
  readonly db: DjangoDb;
}

/**
 * Fails fast when the database is unreachable or lacks Django's tables, closing what it opened.
 * close() closes the database.
 */
export async function openDjangoUsers(
  databaseUrl: string,
  settings: DjangoSettings,
  options: DjangoUsersOptions = {},
): Promise<DjangoUsers> {
  const db = await openDjangoDb(databaseUrl, { poolSize: options.poolSize });
  try {
    const model = await resolveUserModel(db, settings, options.lookup ?? PRIMARY_KEY_LOOKUP);
    return { ...createDjangoStore(db, model, settings), model, db };
  } catch (error) {
    await db.close();
    throw error;
  }
}
