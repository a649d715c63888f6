import { SidecastError } from '../errors.js';

/** scheme://host[:port], where host and port may hold `*` wildcards. */
const PATTERN_SHAPE = /^[a-z][a-z0-9+.-]*:\/\/(\[[0-9a-f:.*]+\]|[a-z0-9*_.-]+)(:(\d+|\*))?$/;

/**
 * A wildcard in the host stands for one or more host name characters, never `/`, `:` or `@`:
 * so `https://*.example.com` cannot be satisfied by `https://evil.test/.example.com` or
 * `https://example.com@evil.test`. A wildcard port stands for digits only.
 */
const HOST_WILDCARD = '[a-z0-9_.-]+';
const PORT_WILDCARD = ':\\d+';

function escape(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

function compile(pattern: string): RegExp {
  const anyPort = pattern.endsWith(':*');
  const origin = anyPort ? pattern.slice(0, -2) : pattern;
  const source = origin.split('*').map(escape).join(HOST_WILDCARD);
  return new RegExp(`^${source}${anyPort ? PORT_WILDCARD : ''}$`);
}

/**
 * Browser origin allowlist, checked at the HTTP upgrade (a refused browser gets 403 before the
 * WebSocket opens). Patterns are full origins with `*` wildcards (`https://*.example.com`,
 * `http://localhost:*`), `null` for opaque origins (sandboxed frames, file pages) or a lone `*`
 * for every origin. A malformed pattern is a configuration error, not a silent never-match.
 */
export function createOriginCheck(
  patterns: readonly string[],
): (origin: string | undefined) => boolean {
  let anyOrigin = false;
  const exact = new Set<string>();
  const matchers: RegExp[] = [];
  for (const raw of patterns) {
    const pattern = raw.trim().toLowerCase().replace(/\/$/, '');
    if (pattern === '*') anyOrigin = true;
    else if (pattern === 'null') exact.add(pattern);
    else if (!PATTERN_SHAPE.test(pattern)) {
      throw new SidecastError(
        'CONFIG_INVALID',
        `--allowed-origins: "${raw}" is not an origin such as https://app.example.com, https://*.example.com or http://localhost:*`,
      );
    } else if (pattern.includes('*')) matchers.push(compile(pattern));
    else exact.add(pattern);
  }
  return (origin) => {
    // Only browsers send Origin, and only browsers need protecting from cross-site pages;
    // other clients authenticate with their token alone.
    if (origin === undefined || anyOrigin) return true;
    const normalized = origin.trim().toLowerCase();
    return exact.has(normalized) || matchers.some((matcher) => matcher.test(normalized));
  };
}
