/**
 * The origin check runs on an unauthenticated header, so its cost must not depend on how an
 * attacker lines characters up against the wildcards. Semantics are covered by origin.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createOriginCheck, MAX_ORIGIN_LENGTH } from '../../src/server/origin.js';

/** Milliseconds `check` takes on `origin`, `times` times over. */
function timeChecks(check: (origin: string) => boolean, origin: string, times: number) {
  const started = performance.now();
  let allowed = 0;
  for (let i = 0; i < times; i++) if (check(origin)) allowed++;
  return { ms: performance.now() - started, allowed };
}

/** The regex each wildcard used to compile to, kept here as the reference for the semantics. */
function referenceCheck(pattern: string): (origin: string) => boolean {
  const anyPort = pattern.endsWith(':*');
  const origin = anyPort ? pattern.slice(0, -2) : pattern;
  const source = origin
    .split('*')
    .map((text) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[a-z0-9_.-]+');
  const regex = new RegExp(`^${source}${anyPort ? ':\\d+' : ''}$`);
  return (candidate) => regex.test(candidate.trim().toLowerCase());
}

describe('origin check cost', () => {
  it('refuses a kilobytes-long hostile origin at once', () => {
    const check = createOriginCheck(['https://*-*-*.example.com']);
    // A backtracking regex spent about 3.5 s on this one (53 s at 8 KB).
    const hostile = `https://${'a-'.repeat(2000)}!`;
    const { ms, allowed } = timeChecks(check, hostile, 2);
    assert.equal(allowed, 0);
    assert.ok(ms < 100, `2 checks of a 4 KB origin took ${ms.toFixed(0)} ms`);
  });

  it('matches in linear time below the length cap too, whatever the wildcards', () => {
    // Just under the cap, against four wildcards: about 330 ms per check as a regex.
    const check = createOriginCheck(['https://*-*-*-*.example.com']);
    const hostile = `https://${'a-'.repeat(145)}!`;
    assert.ok(hostile.length <= MAX_ORIGIN_LENGTH);
    const { ms, allowed } = timeChecks(check, hostile, 20);
    assert.equal(allowed, 0);
    assert.ok(ms < 100, `20 checks of a ${hostile.length}-byte origin took ${ms.toFixed(0)} ms`);
    // The same shape, ending well, still matches.
    assert.equal(check(`https://${'a-'.repeat(135)}a.example.com`), true);
  });

  it('refuses origins over the cap even when they would match, and even with a lone *', () => {
    const label = 'a'.repeat(MAX_ORIGIN_LENGTH);
    const long = `https://${label}.example.com`;
    assert.equal(createOriginCheck(['https://*.example.com'])(long), false);
    assert.equal(createOriginCheck([long])(long), false);
    assert.equal(createOriginCheck(['*'])(long), false);
    // At the cap exactly, it is considered.
    const fits = `https://${'a'.repeat(MAX_ORIGIN_LENGTH - 'https://.example.com'.length)}.example.com`;
    assert.equal(fits.length, MAX_ORIGIN_LENGTH);
    assert.equal(createOriginCheck(['https://*.example.com'])(fits), true);
  });

  it('agrees with the regex semantics on short random origins', () => {
    // Small alphabets so that matches, near misses and separators all come up often.
    const hostPart = fc.stringMatching(/^[a-c.\-*]{0,6}$/);
    const pattern = fc
      .tuple(fc.constantFrom('http', 'https'), hostPart, fc.constantFrom('', ':*', ':80'))
      .map(([scheme, host, port]) => `${scheme}://${host}${port}`)
      .filter((text) => /^https?:\/\/[a-z0-9*_.-]+(:(\d+|\*))?$/.test(text));
    const origin = fc
      .tuple(
        fc.constantFrom('http', 'https', 'HTTP'),
        fc.stringMatching(/^[a-cA:/@.\-!]{0,9}$/),
        fc.constantFrom('', ':80', ':8080', ':', ':x', ' '),
      )
      .map(([scheme, host, port]) => `${scheme}://${host}${port}`);
    fc.assert(
      fc.property(pattern, fc.array(origin, { maxLength: 8 }), (source, origins) => {
        const check = createOriginCheck([source]);
        const reference = referenceCheck(source);
        for (const candidate of origins)
          assert.equal(check(candidate), reference(candidate), `${source} vs ${candidate}`);
      }),
      { numRuns: 3000 },
    );
  });
});
