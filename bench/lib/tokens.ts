/**
 * Real django-sesame tokens for the benchmark's users, minted with sidecast's codec (checked
 * byte for byte against django-sesame by the shared vectors), fresh for each connection wave.
 */
import { createTokenCodec } from '../../src/auth/sesame/codec.js';
import { selectPacker } from '../../src/auth/sesame/packers.js';
import { loadDjangoSettings } from '../../src/config.js';
import type { UserRow } from './database.js';

export function createMinter(secretKey: string, maxAge: number) {
  const django = loadDjangoSettings({
    DJANGO_SECRET_KEY: secretKey,
    SESAME_MAX_AGE: String(maxAge),
  });
  // auth.User's primary key is an AutoField: 4-byte packer.
  const codec = createTokenCodec(django, selectPacker(null, 'AutoField'));
  return (row: UserRow): string =>
    codec.create(
      BigInt(row.pk),
      { password: row.password, email: '', lastLogin: null },
      '',
      Date.now() / 1000,
    );
}
