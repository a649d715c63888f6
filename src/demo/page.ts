/**
 * The HTTP side of the demo, plugged into sidecast through startSidecast's `page` hook: the page,
 * the compiled browser client, the list of demo users and a token endpoint standing in for the
 * Django view that would normally hand a fresh django-sesame token to the logged-in user.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSidecastError, SidecastError } from '../errors.js';
import { demoPageHtml } from './page-html.js';

export type PageHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

/**
 * Where the compiled client lives: beside this module when running from dist/, or in dist/ of the
 * repository when running from source (tsx), which `npm run build` fills.
 */
export function resolveClientDir(): string {
  const candidates = [
    new URL('../client/', import.meta.url),
    new URL('../../dist/client/', import.meta.url),
  ];
  for (const candidate of candidates) {
    const dir = fileURLToPath(candidate);
    if (existsSync(join(dir, 'index.js'))) return dir;
  }
  throw new SidecastError(
    'CONFIG_INVALID',
    'the browser client is not built (dist/client/index.js is missing): run `npm run build`',
  );
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer): void {
  response.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  response.end(body);
}

/**
 * Serves the ES modules of the compiled client under /client/ (index.js imports its siblings
 * by relative path, so the whole folder is exposed, and nothing but its .js files).
 */
export function serveClientModules(clientDir: string): PageHandler {
  return (request, response) => {
    const path = (request.url ?? '/').split('?')[0]!;
    const match = /^\/client\/([a-z][a-z0-9-]*\.js)$/.exec(path);
    if (!match) return false;
    const file = join(clientDir, match[1]!);
    if (!existsSync(file)) send(response, 404, 'text/plain', 'not found\n');
    else send(response, 200, 'text/javascript; charset=utf-8', readFileSync(file));
    return true;
  };
}

export interface DemoPageOptions {
  readonly clientDir: string;
  readonly users: readonly { readonly username: string; readonly role: string }[];
  /** What a Django view would call: sesame.utils.get_token(user). */
  readonly mintToken: (username: string) => Promise<string>;
  readonly onError: (error: unknown) => void;
}

export function createDemoPage(options: DemoPageOptions): PageHandler {
  const html = demoPageHtml();
  const modules = serveClientModules(options.clientDir);
  const users = JSON.stringify(options.users);
  return (request, response) => {
    const url = new URL(request.url ?? '/', 'http://demo.invalid');
    switch (url.pathname) {
      case '/':
        send(response, 200, 'text/html; charset=utf-8', html);
        return true;
      case '/demo/users':
        send(response, 200, 'application/json', users);
        return true;
      case '/demo/token': {
        const username = url.searchParams.get('user') ?? '';
        options.mintToken(username).then(
          (token) => send(response, 200, 'text/plain; charset=utf-8', token),
          (error: unknown) => {
            // Unknown or inactive users get 404, which the page's getToken() turns into "no token".
            if (isSidecastError(error, 'USER_NOT_FOUND'))
              send(response, 404, 'text/plain', `${error.message}\n`);
            else {
              options.onError(error);
              send(response, 503, 'text/plain', 'could not mint a token\n');
            }
          },
        );
        return true;
      }
      case '/favicon.ico':
        response.writeHead(204).end();
        return true;
      default:
        return modules(request, response);
    }
  };
}
