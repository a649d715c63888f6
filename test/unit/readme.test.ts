import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { envName, OPTIONS } from '../../src/config.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function describeDefault(value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

describe('README', () => {
  it('documents every option with its flag, environment variable and default', () => {
    for (const [name, spec] of Object.entries(OPTIONS)) {
      const row = readme
        .split('\n')
        .find((line) => line.startsWith('|') && line.includes(`\`${envName(name)}\``));
      assert.ok(row, `README has no options row for ${envName(name)}`);
      if (spec.flag !== false)
        assert.ok(row.includes(`\`--${name} `), `row for ${name} lacks --${name}`);
      const shown = 'defaultLabel' in spec ? spec.defaultLabel : describeDefault(spec.defaultValue);
      assert.ok(
        row.includes(String(shown)),
        `row for ${name} does not show its default "${shown}"`,
      );
    }
  });

  it('documents every Django setting sidecast reads', () => {
    for (const name of [
      'DJANGO_SECRET_KEY',
      'DJANGO_SECRET_KEY_FALLBACKS',
      'AUTH_USER_MODEL',
      'USE_TZ',
      'SESAME_MAX_AGE',
      'SESAME_KEY',
      'SESAME_SIGNATURE_SIZE',
      'SESAME_ONE_TIME',
      'SESAME_INVALIDATE_ON_PASSWORD_CHANGE',
      'SESAME_INVALIDATE_ON_EMAIL_CHANGE',
      'SESAME_PRIMARY_KEY_FIELD',
      'SESAME_PACKER',
    ]) {
      assert.ok(readme.includes(`\`${name}\``), `README does not mention ${name}`);
    }
  });
});
