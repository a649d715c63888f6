import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createTokenCodec,
  MAX_TOKEN_LENGTH,
  TIMESTAMP_OFFSET,
  type SesameUser,
  type TokenCodec,
} from '../../src/auth/sesame/codec.js';
import { deriveSigningKey, keyMaterial } from '../../src/auth/sesame/keys.js';
import { packerForField, packerForPath, selectPacker } from '../../src/auth/sesame/packers.js';
import { revocationKey } from '../../src/auth/sesame/revocation.js';
import {
  DEFAULT_SESAME_SETTINGS,
  type DjangoSesameSettings,
  type SesameSettings,
} from '../../src/auth/sesame/settings.js';
import type { FieldType, PkValue } from '../../src/django/fields.js';
import { isSidecastError } from '../../src/errors.js';

const NOW = 1717243200.25;
const USER: SesameUser = {
  password: 'pbkdf2_sha256$600000$somesalt$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=',
  email: 'user@example.com',
  lastLogin: null,
};

function settings(
  sesame: Partial<SesameSettings> = {},
  fallbacks: string[] = [],
): DjangoSesameSettings {
  return {
    secretKey: 'unit-test-secret',
    secretKeyFallbacks: fallbacks,
    authUserModel: 'auth.User',
    useTz: true,
    sesame: { ...DEFAULT_SESAME_SETTINGS, ...sesame },
  };
}

function codecFor(sesame: Partial<SesameSettings> = {}, packer = packerForField('AutoField')) {
  return createTokenCodec(settings(sesame), packer);
}

function accepts(codec: TokenCodec, token: string, user = USER, scope = '', now = NOW): boolean {
  const decoded = codec.decode(token, now);
  return decoded.ok && codec.verify(decoded, user, scope);
}

function reason(codec: TokenCodec, token: string, now = NOW): string | undefined {
  const decoded = codec.decode(token, now);
  return decoded.ok ? undefined : decoded.reason;
}

const configError = (error: unknown): boolean => isSidecastError(error, 'CONFIG_INVALID');

void test('a created token decodes and verifies; other users and scopes do not', () => {
  const codec = codecFor();
  const token = codec.create(7n, USER, 'websockets', NOW);
  const decoded = codec.decode(token, NOW);
  assert.ok(decoded.ok);
  assert.equal(decoded.pk, 7n);
  assert.equal(decoded.signature.length, 10);
  assert.equal(codec.verify(decoded, USER, 'websockets'), true);
  assert.equal(codec.verify(decoded, USER, ''), false);
  assert.equal(
    codec.verify(decoded, { ...USER, password: `${USER.password}x` }, 'websockets'),
    false,
  );
});

void test('base64 padding, foreign characters and whitespace are refused, not trimmed', () => {
  const codec = codecFor();
  const token = codec.create(1n, USER, '', NOW);
  assert.equal(token.length % 4, 3);
  for (const bad of [`${token}=`, ` ${token}`, `${token}\n`, token.replace('A', '+'), 'AA.A']) {
    assert.equal(reason(codec, bad), "doesn't match a supported format", bad);
  }
  assert.equal(reason(codec, 'AAA'), "doesn't match a supported format");
  assert.equal(reason(codec, 'AAAAAQ:abc'), 'v1 tokens are not supported');
  assert.equal(reason(codec, 'A'.repeat(MAX_TOKEN_LENGTH + 1)), 'token too long');
  assert.equal(codec.decode(42 as unknown as string, NOW).ok, false);
});

void test('a length of 1 mod 4 is refused although Node would decode it', () => {
  const codec = codecFor();
  const token = codec.create(1n, USER, '', NOW); // 19 characters
  const longer = `${token.slice(0, 16)}A`; // 17: Node silently drops the last character
  assert.equal(Buffer.from(longer, 'base64url').length, 12);
  assert.equal(reason(codec, longer), 'cannot decode token');
  assert.equal(reason(codec, 'AAAAA'), 'cannot decode token');
  // A valid 24-character token plus one character must not still be accepted.
  const timed = codecFor({ maxAge: 30 });
  const valid = timed.create(1n, USER, '', NOW);
  assert.equal(valid.length, 24);
  assert.equal(accepts(timed, valid), true);
  assert.equal(reason(timed, `${valid}A`), 'cannot decode token');
});

void test('unused trailing bits are ignored, as Python does', () => {
  const codec = codecFor();
  const token = codec.create(1n, USER, '', NOW); // 19 chars: the last one carries 2 unused bits
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(token.at(-1) ?? '');
  const variants = [0, 1, 2, 3].map((low) => token.slice(0, -1) + alphabet[(last & ~3) | low]);
  assert.ok(variants.includes(token));
  for (const variant of variants) assert.equal(accepts(codec, variant), true, variant);
  const changed = token.slice(0, -1) + alphabet[last ^ 4];
  assert.equal(accepts(codec, changed), false);
});

void test('truncated or extended tokens fail the signature length check', () => {
  const codec = codecFor();
  const token = codec.create(1n, USER, '', NOW);
  assert.equal(reason(codec, token.slice(0, -1)), 'cannot extract signature');
  assert.equal(reason(codec, `${token}A`), 'cannot extract signature');
  assert.equal(reason(codec, 'AAAA'), 'cannot extract primary key');
  const timed = codecFor({ maxAge: 30 });
  assert.equal(reason(timed, 'AAAAAQAA'), 'cannot extract timestamp');
});

void test('signature sizes 1 and 64 produce and accept tokens of the expected length', () => {
  for (const [signatureSize, length] of [
    [1, 7],
    [64, 91],
  ] as const) {
    const codec = codecFor({ signatureSize });
    const token = codec.create(1n, USER, '', NOW);
    assert.equal(token.length, length);
    const decoded = codec.decode(token, NOW);
    assert.ok(decoded.ok);
    assert.equal(decoded.signature.length, signatureSize);
    assert.equal(codec.verify(decoded, USER, ''), true);
    assert.equal(codec.verify(decoded, USER, 'other'), false);
    assert.equal(
      codec.verify({ ...decoded, signature: decoded.signature.slice(1) }, USER, ''),
      false,
    );
  }
  // The short signature is not a prefix of the long one: dkLen is a BLAKE2b parameter.
  const short = Buffer.from(codecFor({ signatureSize: 10 }).create(1n, USER, '', NOW), 'base64url');
  const long = Buffer.from(codecFor({ signatureSize: 64 }).create(1n, USER, '', NOW), 'base64url');
  assert.notDeepEqual(short.subarray(4), long.subarray(4, 14));
  // Like Python, a token under 4 characters is refused even when it was made correctly.
  const tiny = codecFor({ signatureSize: 1 }, packerForField('BinaryField'));
  const tinyToken = tiny.create(new Uint8Array(0), USER, '', NOW);
  assert.equal(tinyToken.length, 3);
  assert.equal(reason(tiny, tinyToken), "doesn't match a supported format");
  for (const signatureSize of [0, 65, 1.5]) {
    assert.throws(() => codecFor({ signatureSize }), configError);
  }
});

void test('SECRET_KEY_FALLBACKS verify old tokens; only SECRET_KEY signs', () => {
  const old = createTokenCodec(settings({}, []), packerForField('AutoField'));
  const rotated = createTokenCodec(
    { ...settings({}, ['unrelated', 'unit-test-secret']), secretKey: 'new-secret' },
    packerForField('AutoField'),
  );
  const withoutFallback = createTokenCodec(
    { ...settings(), secretKey: 'new-secret' },
    packerForField('AutoField'),
  );
  const oldToken = old.create(3n, USER, '', NOW);
  assert.equal(accepts(rotated, oldToken), true);
  assert.equal(accepts(withoutFallback, oldToken), false);
  const newToken = rotated.create(3n, USER, '', NOW);
  assert.equal(newToken, withoutFallback.create(3n, USER, '', NOW));
  assert.equal(accepts(old, newToken), false);
});

void test('expiry: age >= max age expires, now is truncated, future tokens pass', () => {
  const codec = codecFor({ maxAge: 30 });
  const token = codec.create(1n, USER, '', NOW);
  const at = (offset: number) => reason(codec, token, NOW + offset);
  assert.equal(at(29), undefined);
  assert.equal(at(29.74), undefined);
  assert.equal(at(29.75), 'expired token: age = 30 seconds');
  assert.equal(at(100), 'expired token: age = 100 seconds');
  assert.equal(at(-1000), undefined);
  assert.equal(reason(codec, token, Number.NaN), 'no usable clock');
  // The max_age argument of get_user() replaces SESAME_MAX_AGE.
  assert.equal(codec.decode(token, NOW + 45, { maxAge: 60 }).ok, true);
  assert.equal(codec.decode(token, NOW + 15, { maxAge: 10 }).ok, false);
  // A fractional SESAME_MAX_AGE (from a timedelta) compares as a float.
  const fractional = codecFor({ maxAge: 30.5 });
  assert.equal(fractional.decode(token, NOW + 29.75).ok, true);
  assert.equal(fractional.decode(token, NOW + 30.75).ok, false);
  // Timestamp bytes are the creation second since 2020.
  const bytes = Buffer.from(token, 'base64url');
  assert.equal(bytes.readInt32BE(4), Math.trunc(NOW) - TIMESTAMP_OFFSET);
});

void test('without SESAME_MAX_AGE the max_age argument is ignored and tokens never expire', () => {
  const codec = codecFor();
  const token = codec.create(1n, USER, '', NOW);
  assert.equal(codec.decode(token, NOW + 1e9, { maxAge: 1 }).ok, true);
  // MAX_AGE is part of the layout: switching it on or off breaks every token.
  assert.equal(reason(codecFor({ maxAge: 30 }), token), 'cannot extract signature');
});

void test('key material follows the settings, and MAX_AGE only by presence', () => {
  const base = { ...DEFAULT_SESAME_SETTINGS };
  assert.equal(keyMaterial('s', base), 's||||pk');
  assert.equal(keyMaterial('s', { ...base, maxAge: 30 }), 's||max_age||pk');
  assert.equal(
    keyMaterial('s', {
      ...base,
      key: 'k',
      packer: 'sesame.packers.StrPacker',
      primaryKeyField: 'uid',
    }),
    's|k||sesame.packers.StrPacker|uid',
  );
  assert.equal(keyMaterial('s', base, 'legacy-3.0'), 's|||');
  assert.deepEqual(
    deriveSigningKey('s', { ...base, maxAge: 30 }),
    deriveSigningKey('s', { ...base, maxAge: 300 }),
  );
  assert.equal(deriveSigningKey('s', base).length, 64);
});

const ROUND_TRIPS: [FieldType, string, PkValue[]][] = [
  ['SmallAutoField', 'ShortPacker', [-32768n, -1n, 0n, 32767n]],
  ['PositiveSmallIntegerField', 'UnsignedShortPacker', [0n, 65535n]],
  ['AutoField', 'LongPacker', [-2147483648n, 1n, 2147483647n]],
  ['PositiveIntegerField', 'UnsignedLongPacker', [0n, 4294967295n]],
  ['BigAutoField', 'LongLongPacker', [-(2n ** 63n), 1099511627781n, 2n ** 63n - 1n]],
  ['PositiveBigIntegerField', 'UnsignedLongLongPacker', [0n, 2n ** 64n - 1n]],
  [
    'UUIDField',
    'UUIDPacker',
    ['00000000-0000-4000-8000-000000000001', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
  ],
  [
    'CharField',
    'StrPacker',
    ['', 'u-000123', 'josé.ñandú@例え', '𝄞', 'é'.repeat(127), 'x'.repeat(255)],
  ],
  [
    'BinaryField',
    'BytesPacker',
    [new Uint8Array(0), Uint8Array.from([0, 255, 7]), new Uint8Array(255).fill(9)],
  ],
];

void test('each packer round-trips its whole range and leaves the rest untouched', () => {
  for (const [field, name, values] of ROUND_TRIPS) {
    const packer = packerForField(field);
    assert.equal(packer.name, name);
    for (const value of values) {
      const packed = packer.pack(value);
      const unpacked = packer.unpack(Uint8Array.from([...packed, 1, 2, 3]));
      assert.ok(unpacked, `${name} ${String(value)}`);
      assert.deepEqual(unpacked.value, value);
      assert.deepEqual([...unpacked.rest], [1, 2, 3]);
      const codec = codecFor({ maxAge: 30 }, packer);
      const decoded = codec.decode(codec.create(value, USER, '', NOW), NOW);
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.pk, value);
    }
  }
  assert.equal(packerForField('TextField').name, 'StrPacker');
  assert.equal(packerForField('IntegerField').name, 'LongPacker');
  assert.equal(packerForField('BigIntegerField').name, 'LongLongPacker');
  assert.equal(packerForField('SmallIntegerField').name, 'ShortPacker');
});

void test('packers refuse values they cannot represent', () => {
  const cases: [string, PkValue][] = [
    ['LongPacker', 2147483648n],
    ['LongPacker', -2147483649n],
    ['UnsignedShortPacker', -1n],
    ['UnsignedLongLongPacker', 2n ** 64n],
    ['LongPacker', '5'],
    ['UUIDPacker', 'not-a-uuid'],
    ['UUIDPacker', 5n],
    ['StrPacker', 'x'.repeat(256)],
    ['StrPacker', 'é'.repeat(128)],
    ['StrPacker', '\ud800'],
    ['StrPacker', 5n],
    ['BytesPacker', new Uint8Array(256)],
    ['BytesPacker', 'text'],
  ];
  for (const [name, value] of cases) {
    assert.throws(() => packerForPath(`sesame.packers.${name}`).pack(value), configError, name);
  }
});

void test('UUIDs are read as lowercase dashed text and packed from either stored form', () => {
  const packer = packerForField('UUIDField');
  const dashed = '6f1e2d3c-4b5a-4978-8a1b-2c3d4e5f6a7b';
  assert.deepEqual(packer.pack(dashed.replaceAll('-', '').toUpperCase()), packer.pack(dashed));
  assert.equal(packer.unpack(packer.pack(dashed.toUpperCase()))?.value, dashed);
  assert.equal(packer.unpack(new Uint8Array(15)), null);
});

void test('unpacking failures: short data, bad UTF-8, and a length byte beyond the data', () => {
  for (const [name, size] of [
    ['ShortPacker', 2],
    ['LongPacker', 4],
    ['LongLongPacker', 8],
    ['UUIDPacker', 16],
  ] as const) {
    const packer = packerForPath(`sesame.packers.${name}`);
    assert.equal(packer.unpack(new Uint8Array(size - 1)), null);
    assert.notEqual(packer.unpack(new Uint8Array(size)), null);
  }
  const str = packerForField('CharField');
  const bytes = packerForField('BinaryField');
  assert.equal(str.unpack(new Uint8Array(0)), null);
  assert.equal(bytes.unpack(new Uint8Array(0)), null);
  for (const invalid of [
    [0xff],
    [0xc3],
    [0xed, 0xa0, 0x80],
    [0xc0, 0xaf],
    [0xf4, 0x90, 0x80, 0x80],
  ]) {
    assert.equal(str.unpack(Uint8Array.from([invalid.length, ...invalid])), null, String(invalid));
  }
  // Python keeps a byte order mark as U+FEFF.
  assert.equal(str.unpack(Uint8Array.from([4, 0xef, 0xbb, 0xbf, 0x61]))?.value, '\ufeffa');
  const greedy = str.unpack(Uint8Array.from([200, 0x61, 0x62]));
  assert.deepEqual(greedy && { value: greedy.value, rest: [...greedy.rest] }, {
    value: 'ab',
    rest: [],
  });
  const greedyBytes = bytes.unpack(Uint8Array.from([9, 1]));
  assert.deepEqual(greedyBytes && [...(greedyBytes.value as Uint8Array)], [1]);
  // End to end: the tampered length byte swallows the signature, so the length check fails.
  const codec = codecFor({}, str);
  const token = codec.create('u-000123', USER, '', NOW);
  const tampered = Buffer.from(token, 'base64url');
  tampered[0] = (tampered[0] ?? 0) ^ 1;
  assert.equal(reason(codec, tampered.toString('base64url')), 'cannot extract signature');
});

void test('packer paths: django-sesame classes and aliases only', () => {
  assert.equal(packerForPath('sesame.packers.IntPacker').name, 'LongPacker');
  assert.equal(packerForPath('sesame.packers.UnsignedIntPacker').name, 'UnsignedLongPacker');
  for (const path of ['myapp.packers.LongPacker', 'sesame.packers.Nope', 'LongPacker', '']) {
    assert.throws(() => packerForPath(path), configError, path);
  }
  assert.throws(() => packerForField('FloatField' as FieldType), configError);
  assert.equal(selectPacker(null, 'BigAutoField').name, 'LongLongPacker');
  assert.equal(selectPacker('sesame.packers.StrPacker', 'BigAutoField').name, 'StrPacker');
});

function revocation(user: Partial<SesameUser>, sesame: Partial<SesameSettings> = {}): string {
  return revocationKey(
    { password: null, email: null, lastLogin: null, ...user },
    { ...DEFAULT_SESAME_SETTINGS, ...sesame },
  );
}

void test('revocation key: hash tail for known hashers, whole string otherwise', () => {
  const tail44 = 'MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=';
  assert.equal(revocation({ password: `pbkdf2_sha256$1$salt$${tail44}` }), tail44);
  assert.equal(revocation({ password: `md5$salt$${'a'.repeat(32)}` }), 'a'.repeat(32));
  assert.equal(revocation({ password: 'crypt$$ab0123456789X' }), '0123456789X');
  assert.equal(revocation({ password: 'md5$short' }), 'md5$short');
  assert.equal(
    revocation({ password: 'scrypt$16384$salt$8$1$hash' }),
    'scrypt$16384$salt$8$1$hash',
  );
  assert.equal(revocation({ password: 'constructor$x' }), 'constructor$x');
  assert.equal(revocation({ password: '!unusable' }), '!unusable');
  assert.equal(revocation({ password: '' }), '');
  assert.equal(revocation({ password: null }), '');
  // Code points, not UTF-16 units, as Python slices.
  assert.equal(revocation({ password: `crypt$${'𝄞'.repeat(12)}` }), '𝄞'.repeat(11));
  assert.equal(revocation({ password: 'md5$x$y' }, { invalidateOnPasswordChange: false }), '');
});

void test('revocation key: password, then email, then last_login', () => {
  const user = { password: 'custom', email: 'E@x', lastLogin: '2024-05-31T08:15:42+00:00' };
  const all = { invalidateOnEmailChange: true, oneTime: true };
  assert.equal(revocation(user, all), 'customE@x2024-05-31T08:15:42+00:00');
  assert.equal(revocation(user), 'custom');
  assert.equal(revocation({ ...user, lastLogin: null }, all), 'customE@x');
  assert.throws(
    () => revocation({ ...user, email: null }, all),
    (error: unknown) => isSidecastError(error, 'AUTH_FAILED'),
  );
  // verify() answers false rather than throwing for the same user.
  const codec = codecFor(all);
  const token = codec.create(1n, user, '', NOW);
  assert.equal(accepts(codec, token, user), true);
  assert.equal(accepts(codec, token, { ...user, email: null }), false);
  assert.equal(
    accepts(codec, token, { ...user, lastLogin: '2024-05-31T08:15:42.000001+00:00' }),
    false,
  );
});

void test('create refuses a time outside the 32-bit timestamp', () => {
  const codec = codecFor({ maxAge: 30 });
  assert.throws(() => codec.create(1n, USER, '', TIMESTAMP_OFFSET + 2 ** 31), configError);
  assert.ok(codec.create(1n, USER, '', TIMESTAMP_OFFSET - 10));
});
