/**
 * Every token case of test/fixtures/sesame_v2.json, produced by the real django-sesame:
 * intermediate values, token creation, and each recorded get_user() outcome.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  createTokenCodec,
  TIMESTAMP_OFFSET,
  type SesameUser,
} from '../../src/auth/sesame/codec.js';
import { deriveVerificationKeys, keyMaterial, sign } from '../../src/auth/sesame/keys.js';
import { selectPacker } from '../../src/auth/sesame/packers.js';
import { revocationKey } from '../../src/auth/sesame/revocation.js';
import type { DjangoSesameSettings, SesameSettings } from '../../src/auth/sesame/settings.js';
import type { FieldType, PkValue } from '../../src/django/fields.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Row = Record<string, Json>;

interface Attempt {
  result: 'valid' | 'rejected';
  sesame_log: string[];
}
interface Verification {
  label: string;
  at_time_time: number;
  scope: string;
  token: string;
  max_age_argument?: Json;
  settings_at_verification?: Row;
  db_change_before_verification?: Row;
  result?: 'valid' | 'rejected';
  sesame_log?: string[];
  attempts?: Attempt[];
  expected: string | string[];
  last_login_after_success?: string;
}
interface TokenCase {
  id: string;
  inputs: {
    SECRET_KEY: string;
    SECRET_KEY_FALLBACKS: string[];
    USE_TZ: boolean;
    AUTH_USER_MODEL: string;
    pk_field_internal_type: FieldType;
    sesame_effective: Row;
    user_row: Row;
    token_pk_value: number | string;
    scope: string;
    created_at_time_time: number;
  };
  intermediate: Record<string, Json>;
  token: string;
  verifications: Verification[];
}
interface Vectors {
  token_cases: TokenCase[];
  v1_tokens: { token: string; inputs: { SECRET_KEY: string; sesame_effective: Row } }[];
  legacy_key_derivation_django_sesame_3_0: {
    cases: {
      same_inputs_as: string;
      token_django_sesame_3_0: string;
      key_material_string_3_0: string;
      signing_key_hex_3_0: string;
      valid_at_plus_30_under_3_0: boolean | null;
    }[];
  };
}

const vectorsUrl = new URL('../fixtures/sesame_v2.json', import.meta.url);
const vectors = JSON.parse(readFileSync(vectorsUrl, 'utf8')) as Vectors;
/** The spec's count of token-case checks; guards against a truncated vectors file. */
const DOCUMENTED_CHECKS = 93;

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const utf8hex = (text: string): string => Buffer.from(text, 'utf8').toString('hex');

function maxAgeSeconds(value: Json): number | null {
  if (value === null || typeof value === 'number') return value;
  if (typeof value === 'object' && !Array.isArray(value)) {
    const seconds = value['__timedelta_seconds__'];
    if (typeof seconds === 'number') return seconds;
  }
  throw new Error(`unexpected max age ${JSON.stringify(value)}`);
}

function sesameSettings(effective: Row): SesameSettings {
  return {
    maxAge: maxAgeSeconds(effective['MAX_AGE'] ?? null),
    oneTime: effective['ONE_TIME'] === true,
    invalidateOnPasswordChange: effective['INVALIDATE_ON_PASSWORD_CHANGE'] === true,
    invalidateOnEmailChange: effective['INVALIDATE_ON_EMAIL_CHANGE'] === true,
    packer: (effective['PACKER'] ?? null) as string | null,
    primaryKeyField: effective['PRIMARY_KEY_FIELD'] as string,
    key: effective['KEY'] as string,
    signatureSize: effective['SIGNATURE_SIZE'] as number,
  };
}

function djangoSettings(c: TokenCase): DjangoSesameSettings {
  return {
    secretKey: c.inputs.SECRET_KEY,
    secretKeyFallbacks: c.inputs.SECRET_KEY_FALLBACKS,
    authUserModel: c.inputs.AUTH_USER_MODEL,
    useTz: c.inputs.USE_TZ,
    sesame: sesameSettings(c.inputs.sesame_effective),
  };
}

/** override_settings as the vectors record it: only these names ever change. */
function withOverrides(base: DjangoSesameSettings, overrides: Row = {}): DjangoSesameSettings {
  let { secretKey, secretKeyFallbacks, sesame } = base;
  for (const [name, value] of Object.entries(overrides)) {
    if (name === 'SECRET_KEY') secretKey = value as string;
    else if (name === 'SECRET_KEY_FALLBACKS') secretKeyFallbacks = value as string[];
    else if (name === 'SESAME_MAX_AGE') sesame = { ...sesame, maxAge: maxAgeSeconds(value) };
    else if (name === 'SESAME_KEY') sesame = { ...sesame, key: value as string };
    else if (name === 'SESAME_SIGNATURE_SIZE')
      sesame = { ...sesame, signatureSize: value as number };
    else if (name === 'SESAME_PACKER') sesame = { ...sesame, packer: value as string | null };
    else throw new Error(`setting ${name} is not modelled`);
  }
  return { ...base, secretKey, secretKeyFallbacks, sesame };
}

function pkValue(c: TokenCase): PkValue {
  const value = c.inputs.token_pk_value;
  return typeof value === 'number' ? BigInt(value) : value;
}

const pkKey = (pk: PkValue): string =>
  typeof pk === 'bigint' ? `int:${pk}` : typeof pk === 'string' ? `str:${pk}` : `hex:${hex(pk)}`;

function sesameUser(row: Row): SesameUser {
  return {
    password: (row['password'] ?? null) as string | null,
    email: (row['email'] ?? null) as string | null,
    lastLogin: (row['last_login'] ?? null) as string | null,
  };
}

/** Python isoformat of timezone.now(), which is what ONE_TIME writes after a success. */
function nowIsoformat(useTz: boolean): string {
  const iso = new Date().toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const millis = iso.slice(20, 23);
  return `${iso.slice(0, 19)}${millis === '000' ? '' : `.${millis}000`}${useTz ? '+00:00' : ''}`;
}

type Outcome = 'decode' | 'user' | 'signature' | 'valid';

function outcomeOfLog(log: string[]): Outcome {
  const line = log.find((entry) => entry.startsWith('DEBUG: ')) ?? '';
  if (line.startsWith('DEBUG: Bad token') || line.startsWith('DEBUG: Expired token'))
    return 'decode';
  if (line.startsWith('DEBUG: Unknown or inactive user')) return 'user';
  if (line.startsWith('DEBUG: Invalid token')) return 'signature';
  if (line.startsWith('DEBUG: Valid token')) return 'valid';
  throw new Error(`unexpected log ${JSON.stringify(log)}`);
}

/** Python's log line for a rejection before the user lookup, when it names the step. */
function expectedReason(log: string[]): string | undefined {
  const line = log.find((entry) => entry.startsWith('DEBUG: ')) ?? '';
  const bad = /^DEBUG: Bad token: (cannot .*|doesn't match a supported format)$/.exec(line);
  if (bad !== null) return bad[1];
  const expired = /^DEBUG: Expired token: age = (-?\d+) seconds$/.exec(line);
  return expired === null ? undefined : `expired token: age = ${expired[1]} seconds`;
}

void test('the vectors file has the documented number of checks', () => {
  const total = vectors.token_cases.reduce((sum, c) => sum + c.verifications.length, 0);
  assert.equal(total, DOCUMENTED_CHECKS);
  assert.equal(vectors.token_cases.length, 27);
});

let checked = 0;

for (const c of vectors.token_cases) {
  void test(`${c.id}: intermediate values and creation`, () => {
    const django = djangoSettings(c);
    const sesame = django.sesame;
    const im = c.intermediate;
    const packer = selectPacker(sesame.packer, c.inputs.pk_field_internal_type);
    const user = sesameUser(c.inputs.user_row);
    const pk = pkValue(c);

    assert.equal(keyMaterial(django.secretKey, sesame), im['key_material_string']);
    const keys = deriveVerificationKeys(django);
    assert.equal(hex(keys[0]), im['signing_key_hex']);
    assert.deepEqual(keys.map(hex), im['verification_keys_hex']);

    assert.equal(packer.name, im['packer_class']);
    const packedPk = packer.pack(pk);
    assert.equal(hex(packedPk), im['packed_pk_hex']);
    assert.deepEqual(packer.unpack(packedPk)?.value, pk);

    const createdAt = Math.trunc(c.inputs.created_at_time_time);
    if (sesame.maxAge === null) assert.equal(im['timestamp_int'], null);
    else assert.equal(createdAt - TIMESTAMP_OFFSET, im['timestamp_int']);

    const revocation = revocationKey(user, sesame);
    assert.equal(revocation, im['revocation_key_str']);
    assert.equal(utf8hex(revocation), im['revocation_key_hex']);
    assert.equal(utf8hex(c.inputs.scope), im['scope_utf8_hex']);
    const message = `${im['packed_pk_hex']}${im['timestamp_hex']}${utf8hex(revocation)}${utf8hex(c.inputs.scope)}`;
    assert.equal(message, im['signed_message_hex']);
    const signature = sign(Buffer.from(message, 'hex'), keys[0], sesame.signatureSize);
    assert.equal(hex(signature), im['signature_hex']);
    assert.notEqual(hex(signature), im['NOT_the_signature_first_bytes_of_64byte_digest_hex']);

    const codec = createTokenCodec(django, packer);
    const token = codec.create(pk, user, c.inputs.scope, c.inputs.created_at_time_time);
    assert.equal(token, c.token);
    assert.equal(Buffer.from(token, 'base64url').toString('hex'), im['token_bytes_hex']);
  });

  for (const v of c.verifications) {
    void test(`${c.id}: ${v.label}`, () => {
      const django = withOverrides(djangoSettings(c), v.settings_at_verification);
      const packer = selectPacker(django.sesame.packer, c.inputs.pk_field_internal_type);
      const codec = createTokenCodec(django, packer);

      // A one-row user table; each verification starts from the stored row, as the savepoint
      // rollback made it in Python.
      const table = new Map<string, Row>([[pkKey(pkValue(c)), { ...c.inputs.user_row }]]);
      for (const [column, value] of Object.entries(v.db_change_before_verification ?? {})) {
        const row = table.get(pkKey(pkValue(c)));
        assert.ok(row);
        if (column === 'deleted') {
          assert.equal(value, true);
          table.delete(pkKey(pkValue(c)));
        } else {
          assert.ok(column in row, `unknown column ${column}`);
          row[column] = value;
        }
      }

      const maxAge =
        v.max_age_argument === undefined ? undefined : maxAgeSeconds(v.max_age_argument);
      // sesame.utils.get_user(): decode, look the user up, verify, then the ONE_TIME update.
      const getUser = (): { outcome: Outcome; reason?: string } => {
        const decoded = codec.decode(v.token, v.at_time_time, maxAge === null ? {} : { maxAge });
        if (!decoded.ok) return { outcome: 'decode', reason: decoded.reason };
        const row = table.get(pkKey(decoded.pk));
        // Django 3.2 user_can_authenticate: only an explicit False refuses.
        if (row === undefined || row['is_active'] === false) return { outcome: 'user' };
        if (!codec.verify(decoded, sesameUser(row), v.scope)) return { outcome: 'signature' };
        if (django.sesame.oneTime) {
          const before = row['last_login'];
          row['last_login'] = nowIsoformat(django.useTz);
          assert.notEqual(row['last_login'], before);
        }
        return { outcome: 'valid' };
      };

      const attempts: Attempt[] = v.attempts ?? [
        { result: v.result as Attempt['result'], sesame_log: v.sesame_log ?? [] },
      ];
      assert.deepEqual(
        attempts.map((attempt) => attempt.result),
        Array.isArray(v.expected) ? v.expected : [v.expected],
      );
      for (const attempt of attempts) {
        const { outcome, reason } = getUser();
        assert.equal(outcome === 'valid' ? 'valid' : 'rejected', attempt.result);
        assert.equal(outcome, outcomeOfLog(attempt.sesame_log));
        const pythonReason = expectedReason(attempt.sesame_log);
        if (pythonReason !== undefined) assert.equal(reason, pythonReason);
      }
      checked += 1;
    });
  }
}

void test('every verification of the vectors file was checked', () => {
  const total = vectors.token_cases.reduce((sum, c) => sum + c.verifications.length, 0);
  assert.equal(checked, total);
  assert.equal(checked, DOCUMENTED_CHECKS);
});

for (const legacy of vectors.legacy_key_derivation_django_sesame_3_0.cases) {
  void test(`legacy 3.0 derivation: ${legacy.same_inputs_as}`, () => {
    const c = vectors.token_cases.find((candidate) => candidate.id === legacy.same_inputs_as);
    assert.ok(c);
    const django = djangoSettings(c);
    const packer = selectPacker(django.sesame.packer, c.inputs.pk_field_internal_type);
    const user = sesameUser(c.inputs.user_row);
    const at = c.inputs.created_at_time_time;

    assert.equal(
      keyMaterial(django.secretKey, django.sesame, 'legacy-3.0'),
      legacy.key_material_string_3_0,
    );
    assert.equal(hex(deriveVerificationKeys(django, 'legacy-3.0')[0]), legacy.signing_key_hex_3_0);
    assert.notEqual(legacy.token_django_sesame_3_0, c.token);

    const current = createTokenCodec(django, packer);
    const decoded = current.decode(legacy.token_django_sesame_3_0, at);
    assert.ok(decoded.ok, 'the layout is unchanged, only the key differs');
    assert.equal(current.verify(decoded, user, c.inputs.scope), false);

    const old = createTokenCodec(django, packer, { derivation: 'legacy-3.0' });
    assert.equal(old.create(pkValue(c), user, c.inputs.scope, at), legacy.token_django_sesame_3_0);
    const oldDecoded = old.decode(legacy.token_django_sesame_3_0, at);
    assert.ok(oldDecoded.ok);
    assert.equal(old.verify(oldDecoded, user, c.inputs.scope), true);
    const currentToken = old.decode(c.token, at);
    assert.ok(currentToken.ok);
    assert.equal(old.verify(currentToken, user, c.inputs.scope), false);
    if (legacy.valid_at_plus_30_under_3_0 !== null) {
      assert.equal(
        old.decode(legacy.token_django_sesame_3_0, at + 30).ok,
        legacy.valid_at_plus_30_under_3_0,
      );
    }
  });
}

void test('the v1 token is rejected before any lookup', () => {
  for (const v1 of vectors.v1_tokens) {
    const sesame = sesameSettings(v1.inputs.sesame_effective);
    const django: DjangoSesameSettings = {
      secretKey: v1.inputs.SECRET_KEY,
      secretKeyFallbacks: [],
      authUserModel: 'auth.User',
      useTz: true,
      sesame,
    };
    const codec = createTokenCodec(django, selectPacker(sesame.packer, 'AutoField'));
    assert.deepEqual(codec.decode(v1.token, Date.now() / 1000), {
      ok: false,
      reason: 'v1 tokens are not supported',
    });
  }
});
