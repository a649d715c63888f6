/**
 * The two endpoints of the Django project that answer where Django alone knows (custom
 * AUTHENTICATION_BACKENDS): who a credential belongs to, and what users may see. Each request
 * carries the shared secret, is bounded by a timeout and never retried; concurrent questions
 * about the same user share one request, and answers about users are kept for a while.
 */
import { authFailed, authUnavailable } from '../../errors.js';

export interface ProxyIdentity {
  readonly userId: string;
  readonly username: string;
}

export interface ProxyPermissions {
  readonly isActive: boolean;
  readonly contentTypeIds: ReadonlySet<number>;
}

export interface DjangoProxyOptions {
  readonly authUrl: string;
  readonly permissionsUrl: string;
  readonly secret: string;
  readonly timeoutMs: number;
  /** How long a user's permissions are reused; 0 asks every time. */
  readonly cacheMs: number;
  readonly now?: () => number;
}

export interface DjangoProxy {
  /** POST auth-url. Rejects AUTH_FAILED (401, 403, a malformed answer) or AUTH_UNAVAILABLE. */
  identify(token: string, cookie: string): Promise<ProxyIdentity>;
  /**
   * POST permissions-url; null for a user Django does not have. Same rejections. `fresh` asks
   * whatever the cache holds (a re-check), and caches the answers.
   */
  permissionsOf(
    userIds: readonly string[],
    options?: { readonly fresh?: boolean },
  ): Promise<Map<string, ProxyPermissions | null>>;
  /** Drops the cached answers about these users, or everyone's. */
  forget(userIds: readonly string[] | 'all'): void;
}

/** The most users one permissions request asks about. */
export const PERMISSIONS_BATCH = 500;
const MAX_CACHED_USERS = 100_000;
/** Answers larger than this are not read: a malformed or hostile endpoint. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function post(
  url: string,
  body: unknown,
  options: Pick<DjangoProxyOptions, 'secret' | 'timeoutMs'>,
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      redirect: 'error',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    throw authUnavailable(`${url} did not answer: ${(error as Error).message}`, error);
  }
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel();
    throw authFailed(`${url} refused: ${response.status}`);
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw authUnavailable(`${url} answered ${response.status}`);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw authUnavailable(`${url} did not answer: ${(error as Error).message}`, error);
  }
  if (text.length > MAX_ANSWER_BYTES) throw authFailed(`${url} answered too much`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw authFailed(`malformed answer from ${url}: not JSON`);
  }
}

function identityOf(url: string, answer: unknown): ProxyIdentity {
  if (!isRecord(answer)) throw authFailed(`malformed answer from ${url}: not an object`);
  const { user_id: userId, username } = answer;
  if (typeof userId !== 'string' || userId === '' || typeof username !== 'string') {
    throw authFailed(`malformed answer from ${url}: user_id and username must be strings`);
  }
  return { userId, username };
}

function permissionsOf(url: string, entry: unknown): ProxyPermissions | null {
  if (entry === null) return null;
  const malformed = () => authFailed(`malformed answer from ${url}: bad user entry`);
  if (!isRecord(entry) || typeof entry.is_active !== 'boolean') throw malformed();
  const ids = entry.content_type_ids;
  if (!Array.isArray(ids) || !ids.every((id) => Number.isSafeInteger(id))) throw malformed();
  return { isActive: entry.is_active, contentTypeIds: new Set(ids as number[]) };
}

export function createDjangoProxy(options: DjangoProxyOptions): DjangoProxy {
  const now = options.now ?? Date.now;
  const cache = new Map<string, { value: ProxyPermissions | null; until: number }>();
  const pending = new Map<string, Promise<ProxyPermissions | null>>();

  async function fetchBatch(userIds: readonly string[]) {
    const url = options.permissionsUrl;
    const answer = await post(url, { user_ids: userIds }, options);
    const users = isRecord(answer) ? answer.users : undefined;
    if (!isRecord(users)) throw authFailed(`malformed answer from ${url}: no users object`);
    const found = new Map<string, ProxyPermissions | null>();
    for (const id of userIds) {
      if (!Object.hasOwn(users, id)) throw authFailed(`malformed answer from ${url}: user missing`);
      found.set(id, permissionsOf(url, users[id]));
    }
    if (options.cacheMs > 0) {
      const time = now();
      // Expired answers go when the cache grows large, so it holds about the users still asked about.
      if (cache.size > MAX_CACHED_USERS) {
        for (const [id, entry] of cache) if (entry.until <= time) cache.delete(id);
      }
      for (const [id, value] of found) cache.set(id, { value, until: time + options.cacheMs });
    }
    return found;
  }

  /** One request per batch of users nobody is asking about yet; theirs go in pending. */
  function ask(userIds: readonly string[]): void {
    for (let start = 0; start < userIds.length; start += PERMISSIONS_BATCH) {
      const chunk = userIds.slice(start, start + PERMISSIONS_BATCH);
      const batch = fetchBatch(chunk);
      // Settled here too, so a batch nobody awaits any more cannot reject unhandled.
      batch.catch(() => undefined);
      for (const id of chunk) {
        const one = batch.then((found) => found.get(id) ?? null);
        one.catch(() => undefined);
        pending.set(id, one);
        void one.finally(() => pending.delete(id)).catch(() => undefined);
      }
    }
  }

  return {
    async identify(token, cookie) {
      return identityOf(options.authUrl, await post(options.authUrl, { token, cookie }, options));
    },
    forget(userIds) {
      if (userIds === 'all') cache.clear();
      else for (const id of userIds) cache.delete(id);
    },
    async permissionsOf(userIds, { fresh = false } = {}) {
      const wanted = [...new Set(userIds)];
      if (fresh) {
        const found = new Map<string, ProxyPermissions | null>();
        for (let start = 0; start < wanted.length; start += PERMISSIONS_BATCH) {
          const batch = await fetchBatch(wanted.slice(start, start + PERMISSIONS_BATCH));
          for (const [id, value] of batch) found.set(id, value);
        }
        return found;
      }
      const result = new Map<string, ProxyPermissions | null>();
      const time = now();
      const missing: string[] = [];
      for (const id of wanted) {
        const cached = cache.get(id);
        if (cached !== undefined && cached.until > time) result.set(id, cached.value);
        else if (!pending.has(id)) missing.push(id);
      }
      ask(missing);
      // Taken now: a pending entry leaves the map as soon as its request settles.
      const waits = wanted
        .filter((id) => !result.has(id))
        .map((id) => [id, pending.get(id)!] as const);
      for (const [id, wait] of waits) result.set(id, await wait);
      return result;
    },
  };
}
