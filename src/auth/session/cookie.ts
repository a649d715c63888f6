/** The session cookie as Django's request.COOKIES sees it (django.http.cookie.parse_cookie). */

/**
 * A Cookie header longer than this is not read: browsers cap a cookie at 4096 bytes, and Node
 * already bounds the whole header block; this keeps a hostile header from costing more.
 */
export const MAX_COOKIE_HEADER_LENGTH = 16 * 1024;

/** http.cookies._unquote: a quoted value loses its quotes and backslash escapes. */
function unquote(value: string): string {
  if (value.length < 2 || !value.startsWith('"') || !value.endsWith('"')) return value;
  return value
    .slice(1, -1)
    .replace(/\\([0-3][0-7][0-7]|.)/g, (_, escaped: string) =>
      escaped.length === 3 ? String.fromCharCode(parseInt(escaped, 8)) : escaped,
    );
}

/**
 * The value of cookie `name` in a Cookie header, or undefined. As in Django, a name given twice
 * keeps its last value, and a chunk without "=" is a value with an empty name.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length > MAX_COOKIE_HEADER_LENGTH) return undefined;
  let found: string | undefined;
  for (const chunk of header.split(';')) {
    const equals = chunk.indexOf('=');
    const key = (equals === -1 ? '' : chunk.slice(0, equals)).trim();
    const value = (equals === -1 ? chunk : chunk.slice(equals + 1)).trim();
    if (key === name && (key !== '' || value !== '')) found = unquote(value);
  }
  return found;
}

/** SessionBase._validate_session_key: anything shorter is no session at all. */
export function isSessionKey(key: string | undefined): key is string {
  return key !== undefined && key.length >= 8;
}
