/**
 * Browser origin allowlist. Patterns are full origins where `*` matches any run of characters
 * except nothing at all: `https://*.example.com`, `http://localhost:*`, or `*` for every origin.
 */
export function createOriginCheck(
  patterns: readonly string[],
): (origin: string | undefined) => boolean {
  const matchers = patterns.map((pattern) => {
    const source = pattern
      .toLowerCase()
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.+');
    return new RegExp(`^${source}$`);
  });
  return (origin) => {
    // Only browsers send Origin; other clients authenticate with their token alone.
    if (origin === undefined) return true;
    const normalized = origin.toLowerCase();
    return matchers.some((matcher) => matcher.test(normalized));
  };
}
