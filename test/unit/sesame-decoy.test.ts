/**
 * A refusal must not tell whether the account exists: the token's signature is checked for an
 * unknown or inactive user too (against a decoy when there is no row), exactly as for a known
 * user with a wrong signature, and only then refused. Checked structurally, on a real SQLite
 * database with Django's schema, by recording every signature check: no timing involved.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { checkTokenUser, type TokenUserCheck } from '../../src/auth/sesame/authenticator.js';
import { createTokenCodec, type TokenCodec } from '../../src/auth/sesame/codec.js';
import { selectPacker } from '../../src/auth/sesame/packers.js';
import { decoyUser, revocationKey, type SesameUser } from '../../src/auth/sesame/revocation.js';
import {
  DEFAULT_SESAME_SETTINGS,
  type DjangoSesameSettings,
  type SesameSettings,
} from '../../src/auth/sesame/settings.js';
import { createDjangoSqlite } from '../../src/demo/schema.js';
import { openDjangoDb } from '../../src/django/db.js';
import { createDjangoStore, type DjangoStore } from '../../src/django/store.js';
import { resolveUserModel } from '../../src/django/user-model.js';
import { isSidecastError } from '../../src/errors.js';

const PASSWORD = `pbkdf2_sha256$1000000$${'s'.repeat(22)}$${randomBytes(32).toString('base64')}`;
const NOW = Date.now() / 1000;

interface Recorded {
  readonly user: SesameUser;
  readonly valid: boolean;
}

describe('refusing a token for an unknown or inactive user', () => {
  const django: DjangoSesameSettings = {
    secretKey: 'decoy-test-secret',
    secretKeyFallbacks: ['an-older-secret'],
    authUserModel: 'auth.User',
    useTz: true,
    sesame: DEFAULT_SESAME_SETTINGS,
  };
  const codec: TokenCodec = createTokenCodec(django, selectPacker(null, 'AutoField'));
  const decoy = decoyUser();
  const calls: Recorded[] = [];
  const recording: TokenUserCheck['codec'] = {
    verify(decoded, user, scope) {
      const valid = codec.verify(decoded, user, scope);
      calls.push({ user, valid });
      return valid;
    },
  };
  let check: TokenUserCheck;
  let dir: string;
  let store: DjangoStore;
  let active: number;
  let inactive: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sidecast-decoy-'));
    const file = join(dir, 'db.sqlite3');
    const site = createDjangoSqlite(file, {
      models: [{ label: 'catalog.book', verboseName: 'book' }],
      users: [{ username: 'active' }, { username: 'inactive', active: false }],
    });
    const raw = new Database(file);
    raw.prepare('UPDATE auth_user SET password = ?').run(PASSWORD);
    raw.close();
    active = site.users.get('active')!;
    inactive = site.users.get('inactive')!;
    const db = await openDjangoDb(`sqlite://${file}`);
    store = createDjangoStore(db, await resolveUserModel(db, django), django);
    check = { codec: recording, scope: '', decoy };
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const asStored = (): SesameUser => ({ password: PASSWORD, email: '', lastLogin: null });

  /** The signature checks checkTokenUser made for one token, and how it ended. */
  async function attempt(pk: number, signedFor: SesameUser) {
    const decoded = codec.decode(codec.create(BigInt(pk), signedFor, '', NOW), NOW);
    assert.ok(decoded.ok);
    calls.length = 0;
    const found = await store.findUser(decoded.pk);
    const outcome = await Promise.resolve()
      .then(() => checkTokenUser(check, decoded, found))
      .then(
        (user) => ({ user: user.username, detail: '' }),
        (error: unknown) => {
          assert.ok(isSidecastError(error, 'AUTH_FAILED'), String(error));
          return { user: null, detail: error.message };
        },
      );
    return { outcome, checks: [...calls] };
  }

  it('accepts a valid token for an active user, after one signature check', async () => {
    const { outcome, checks } = await attempt(active, asStored());
    assert.deepEqual(outcome, { user: 'active', detail: '' });
    assert.equal(checks.length, 1);
    assert.equal(checks[0]!.valid, true);
  });

  it('checks the signature of a known user with a wrong signature, then refuses', async () => {
    const other = { ...asStored(), password: 'pbkdf2_sha256$1$x$other' };
    const { outcome, checks } = await attempt(active, other);
    assert.deepEqual(outcome, { user: null, detail: `invalid token for user ${active}` });
    assert.equal(checks.length, 1);
    assert.equal(checks[0]!.valid, false);
  });

  it('checks the signature against the decoy for an unknown primary key, then refuses', async () => {
    const { outcome, checks } = await attempt(987_654, asStored());
    assert.deepEqual(outcome, { user: null, detail: 'unknown or inactive user' });
    assert.equal(checks.length, 1, 'the same single signature check as for a known user');
    assert.equal(checks[0]!.user, decoy);
    assert.equal(checks[0]!.valid, false);
  });

  it('really signs over the decoy: a token made for it verifies, and is still refused', async () => {
    // Were the decoy check skipped or cut short, this signature could not come out valid.
    const { outcome, checks } = await attempt(987_655, decoy);
    assert.deepEqual(outcome, { user: null, detail: 'unknown or inactive user' });
    assert.deepEqual(checks, [{ user: decoy, valid: true }]);
  });

  it('checks the signature of an inactive user too, then refuses', async () => {
    const { outcome, checks } = await attempt(inactive, asStored());
    assert.deepEqual(outcome, { user: null, detail: 'unknown or inactive user' });
    assert.equal(checks.length, 1);
    assert.equal(checks[0]!.valid, true, 'a valid signature does not let an inactive user in');
  });
});

describe('the decoy user', () => {
  const flags = [false, true];
  it('has a revocation key shaped like a real user’s under every setting that shapes it', () => {
    const decoy = decoyUser();
    const real: SesameUser = {
      password: PASSWORD,
      email: 'reader@example.com',
      lastLogin: '2025-03-04T05:06:07.080910+00:00',
    };
    for (const invalidateOnPasswordChange of flags) {
      for (const invalidateOnEmailChange of flags) {
        for (const oneTime of flags) {
          const sesame: SesameSettings = {
            ...DEFAULT_SESAME_SETTINGS,
            invalidateOnPasswordChange,
            invalidateOnEmailChange,
            oneTime,
          };
          const label = JSON.stringify({
            invalidateOnPasswordChange,
            invalidateOnEmailChange,
            oneTime,
          });
          // A throw here would make verify() return early: less work than for a real user.
          const key = revocationKey(decoy, sesame);
          const expected = revocationKey(real, sesame).length;
          // Emails differ in length from user to user anyway; the decoy has one, of its own.
          const email = invalidateOnEmailChange ? decoy.email!.length - real.email!.length : 0;
          assert.equal(key.length, expected + email, label);
          if (invalidateOnEmailChange) assert.ok(key.includes(decoy.email!), label);
        }
      }
    }
  });

  it('is drawn at random: nobody can know what it signs', () => {
    assert.notEqual(decoyUser().password, decoyUser().password);
  });
});
