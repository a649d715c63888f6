/**
 * A shared, briefly cached copy of django_content_type. Every authentication needs it, rows are
 * only ever added by migrations, and an authentication storm must not read it 10,000 times.
 */
import type { DjangoDb } from './db.js';

export interface ContentTypeIndex {
  /** Every django_content_type id: what an active superuser receives. */
  readonly ids: readonly number[];
  /** "<app_label>.view_<model>" and "<app_label>.change_<model>" -> content type id. */
  readonly grants: ReadonlyMap<string, number>;
  readonly loadedAt: number;
}

export interface ContentTypeCache {
  /** The cached index, reloaded once it is older than the TTL. */
  get(): Promise<ContentTypeIndex>;
  /** Reloads now, unless the index was loaded within the minimum refresh interval. */
  refresh(): Promise<ContentTypeIndex>;
}

export interface ContentTypeCacheOptions {
  readonly ttlMs?: number;
  readonly minRefreshMs?: number;
}

interface ContentTypeRow {
  id: number | string;
  app_label: string;
  model: string;
}

/** The permission codenames get_content_types() asks about (spec B.2). */
export const GRANTING_ACTIONS = ['view', 'change'] as const;

export function createContentTypeCache(
  db: DjangoDb,
  options: ContentTypeCacheOptions = {},
): ContentTypeCache {
  const ttlMs = options.ttlMs ?? 30_000;
  const minRefreshMs = options.minRefreshMs ?? 1_000;
  let current: ContentTypeIndex | null = null;
  // Concurrent callers share one query instead of each issuing their own.
  let loading: Promise<ContentTypeIndex> | null = null;

  async function load(): Promise<ContentTypeIndex> {
    const rows = await db.query<ContentTypeRow>(
      `SELECT id, app_label, model FROM ${db.quote('django_content_type')}`,
    );
    const ids: number[] = [];
    const grants = new Map<string, number>();
    for (const row of rows) {
      const id = Number(row.id);
      ids.push(id);
      for (const action of GRANTING_ACTIONS) {
        grants.set(`${row.app_label}.${action}_${row.model}`, id);
      }
    }
    current = { ids, grants, loadedAt: Date.now() };
    return current;
  }

  function reload(): Promise<ContentTypeIndex> {
    loading ??= load().finally(() => {
      loading = null;
    });
    return loading;
  }

  return {
    get() {
      if (current !== null && Date.now() - current.loadedAt < ttlMs)
        return Promise.resolve(current);
      return reload();
    },
    refresh() {
      if (current !== null && Date.now() - current.loadedAt < minRefreshMs) {
        return Promise.resolve(current);
      }
      return reload();
    },
  };
}
