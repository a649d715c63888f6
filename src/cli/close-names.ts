/**
 * How `sidecast connect` names a WebSocket close, in the words of the python-websockets client that
 * the Django guide shows, so a reader of the guide recognises `1011 (internal error) ...` at once.
 */
const CLOSE_NAMES: Readonly<Record<number, string>> = {
  1000: 'OK',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1005: 'no status received [internal]',
  1006: 'connection closed abnormally [internal]',
  1007: 'invalid frame payload data',
  1008: 'policy violation',
  1009: 'message too big',
  1010: 'mandatory extension',
  1011: 'internal error',
  1012: 'service restart',
  1013: 'try again later',
  1014: 'bad gateway',
  1015: 'TLS handshake failure [internal]',
};

export function closeCodeName(code: number): string {
  const known = CLOSE_NAMES[code];
  if (known !== undefined) return known;
  if (code >= 3000 && code < 4000) return 'registered';
  if (code >= 4000 && code < 5000) return 'private use';
  return 'unknown';
}

/** `1011 (internal error) authentication failed`, or `1000 (OK)` when there is no reason. */
export function describeClose(code: number, reason: string): string {
  const head = `${code} (${closeCodeName(code)})`;
  return reason === '' ? head : `${head} ${reason}`;
}
