import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** What a page pays for the client, minified and gzipped: the budget issue 11 set. */
const BUDGET_GZIPPED = 3 * 1024;

describe('client size', () => {
  it('stays within its budget, measured as scripts/client-size.js measures it', () => {
    const script = fileURLToPath(new URL('../../scripts/client-size.js', import.meta.url));
    const cwd = fileURLToPath(new URL('../..', import.meta.url));
    const output = execFileSync(process.execPath, [script, '--json'], { cwd, encoding: 'utf8' });
    const sizes = JSON.parse(output) as { minified: number; gzipped: number };
    assert.ok(sizes.minified > sizes.gzipped && sizes.gzipped > 0, output);
    assert.ok(
      sizes.gzipped < BUDGET_GZIPPED,
      `${sizes.gzipped} bytes gzipped, over ${BUDGET_GZIPPED}`,
    );
  });
});
