import { SidecastError } from '../errors.js';

/** scheme://host[:port], where host and port may hold `*` wildcards. */
const PATTERN_SHAPE = /^[a-z][a-z0-9+.-]*:\/\/(\[[0-9a-f:.*]+\]|[a-z0-9*_.-]+)(:(\d+|\*))?$/;

/**
 * The longest Origin header considered; longer ones are refused unread. A browser's origin is a
 * scheme, a host name of at most 253 characters and a port, so a real one always fits.
 */
export const MAX_ORIGIN_LENGTH = 300;

/**
 * A pattern compiled to one code per position: a character code to match exactly, or one of the
 * two wildcards below, each standing for one or more characters of its class.
 */
type Glob = readonly number[];
const HOST_WILDCARD = -1;
const PORT_WILDCARD = -2;

/**
 * A wildcard in the host stands for one or more host name characters, never `/`, `:` or `@`:
 * so `https://*.example.com` cannot be satisfied by `https://evil.test/.example.com` or
 * `https://example.com@evil.test`. A wildcard port stands for digits only.
 */
function inClass(wildcard: number, char: number): boolean {
  const digit = char >= 0x30 && char <= 0x39;
  if (wildcard === PORT_WILDCARD) return digit;
  return (
    digit ||
    (char >= 0x61 && char <= 0x7a) || // a-z (origins are lowercased first)
    char === 0x5f || // _
    char === 0x2e || // .
    char === 0x2d // -
  );
}

function compile(pattern: string): Glob {
  const anyPort = pattern.endsWith(':*');
  const origin = anyPort ? pattern.slice(0, -2) : pattern;
  const glob: number[] = [];
  for (let i = 0; i < origin.length; i++) {
    const char = origin.charCodeAt(i);
    glob.push(char === 0x2a ? HOST_WILDCARD : char);
  }
  if (anyPort) glob.push(0x3a, PORT_WILDCARD);
  return glob;
}

/**
 * Runs the glob as a set of states over the origin, one character at a time (state `s`: the first
 * `s` codes matched). Each character costs at most one step per state, never a retry, so the time
 * is linear in the origin's length however the wildcards line up: a backtracking regex took
 * seconds on a few kilobytes of `a-a-a-...!` against `https://*-*-*.example.com`.
 */
function globMatches(glob: Glob, text: string): boolean {
  let states = new Uint8Array(glob.length + 1);
  let next = new Uint8Array(glob.length + 1);
  states[0] = 1;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    next.fill(0);
    let alive = false;
    for (let s = 0; s <= glob.length; s++) {
      if (states[s] === 0) continue;
      const code = glob[s];
      // Take the next code: an exact character, or a wildcard's first character.
      if (code !== undefined && (code >= 0 ? code === char : inClass(code, char))) {
        next[s + 1] = 1;
        alive = true;
      }
      // Stay inside the wildcard just taken, for one more character of its class.
      const previous = glob[s - 1];
      if (previous !== undefined && previous < 0 && inClass(previous, char)) {
        next[s] = 1;
        alive = true;
      }
    }
    if (!alive) return false;
    [states, next] = [next, states];
  }
  return states[glob.length] === 1;
}

/**
 * Browser origin allowlist, checked at the HTTP upgrade (a refused browser gets 403 before the
 * WebSocket opens). Patterns are full origins with `*` wildcards (`https://*.example.com`,
 * `http://localhost:*`), `null` for opaque origins (sandboxed frames, file pages) or a lone `*`
 * for every origin. A malformed pattern is a configuration error, not a silent never-match.
 * Origins longer than MAX_ORIGIN_LENGTH are refused whatever the list.
 */
export function createOriginCheck(
  patterns: readonly string[],
): (origin: string | undefined) => boolean {
  let anyOrigin = false;
  const exact = new Set<string>();
  const globs: Glob[] = [];
  for (const raw of patterns) {
    const pattern = raw.trim().toLowerCase().replace(/\/$/, '');
    if (pattern === '*') anyOrigin = true;
    else if (pattern === 'null') exact.add(pattern);
    else if (!PATTERN_SHAPE.test(pattern)) {
      throw new SidecastError(
        'CONFIG_INVALID',
        `--allowed-origins: "${raw}" is not an origin such as https://app.example.com, https://*.example.com or http://localhost:*`,
      );
    } else if (pattern.includes('*')) globs.push(compile(pattern));
    else exact.add(pattern);
  }
  return (origin) => {
    // Only browsers send Origin, and only browsers need protecting from cross-site pages;
    // other clients authenticate with their token alone.
    if (origin === undefined) return true;
    if (origin.length > MAX_ORIGIN_LENGTH) return false;
    if (anyOrigin) return true;
    const normalized = origin.trim().toLowerCase();
    return exact.has(normalized) || globs.some((glob) => globMatches(glob, normalized));
  };
}
