import { once } from 'node:events';
import WebSocket from 'ws';
import { parseArgs } from '../../src/config.js';
import { SERVE_OPTIONS, startSidecast, type Sidecast, type StartOptions } from '../../src/app.js';
import type { Authenticator, Principal } from '../../src/auth/authenticator.js';
import { authFailed } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';

/** Server options as `sidecast serve` would parse them from these flags (port 0, memory bus). */
export function serveOptions(flags: readonly string[] = []) {
  return parseArgs(
    SERVE_OPTIONS,
    ['--port', '0', '--bus', 'memory', '--log-level', 'silent', ...flags],
    {},
  ).options;
}

/**
 * A table-driven authenticator for component tests of the server itself: the token is looked up in
 * `users`. The real django-sesame authenticator has its own unit and integration tests.
 */
export function tableAuthenticator(
  users: Record<string, Principal>,
): Authenticator & { calls: number } {
  const table = new Map(Object.entries(users));
  return {
    calls: 0,
    async authenticate({ token }) {
      this.calls++;
      const principal = table.get(token);
      if (!principal) throw authFailed('unknown test token');
      return principal;
    },
    async check() {},
    async close() {},
  };
}

export function principal(userId: string, contentTypeIds: number[]): Principal {
  return { userId, username: userId, contentTypeIds: new Set(contentTypeIds) };
}

export async function startTestServer(
  flags: readonly string[],
  start: Omit<StartOptions, 'options'>,
): Promise<Sidecast> {
  return startSidecast({ options: serveOptions(flags), logger: createLogger('silent'), ...start });
}

/** A WebSocket client that records what it receives and how it was closed. */
export interface TestClient {
  readonly ws: WebSocket;
  readonly messages: string[];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Resolves once `count` messages have arrived (rejects after `timeoutMs`). */
  waitForMessages(count: number, timeoutMs?: number): Promise<string[]>;
}

export async function connectClient(
  url: string,
  token?: string,
  headers: Record<string, string> = {},
): Promise<TestClient> {
  const ws = new WebSocket(url, { headers });
  const messages: string[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data) => {
    messages.push(data.toString());
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  ws.on('error', () => undefined);
  await once(ws, 'open');
  if (token !== undefined) ws.send(token);
  return {
    ws,
    messages,
    closed,
    async waitForMessages(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(
            `expected ${count} messages, got ${messages.length}: ${JSON.stringify(messages)}`,
          );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return messages.slice(0, count);
    },
  };
}

/** Waits until the server has registered `count` live connections (authentication is async). */
export async function waitFor(
  condition: () => boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function event(contentTypeId: number | null, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    model: 'thing',
    object: 'x',
    message: '',
    ...extra,
    content_type_id: contentTypeId,
  });
}
