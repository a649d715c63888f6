/**
 * --auth simplejwt against real djangorestframework-simplejwt: tokens minted by SimpleJWT itself
 * deliver the same events as sesame tokens, and over a set of crafted tokens sidecast accepts
 * exactly those SimpleJWT's own JWTAuthentication accepts (HS256 with the secret key, RS256
 * with a key pair, the revocation claim).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { connectClient, type TestClient } from '../support/client.js';
import { createDjangoSite, type DjangoSite } from '../support/django.js';
import { startSiteServer } from '../support/e2e.js';
import { waitFor } from '../support/wait.js';

/** Crafting helpers, in scope of every CRAFT snippet below. */
const CRAFT_PRELUDE = `import base64, hashlib, hmac, json, time, uuid
import jwt
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, SlidingToken
User = get_user_model()
def user(name):
    return User._default_manager.get_by_natural_key(name)
now = int(time.time())
def claims(**extra):
    base = {"token_type": "access", "exp": now + 300, "iat": now, "jti": uuid.uuid4().hex,
            "user_id": str(user("reader").pk)}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}
def sign(payload, key=None, alg=None, headers=None):
    return jwt.encode(payload, key or api_settings.SIGNING_KEY, algorithm=alg or api_settings.ALGORITHM,
                      headers=headers)
def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
def raw(header, payload, secret=None, digest=hashlib.sha256):
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    if secret is None:
        return signing_input + "."
    signature = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return signing_input + "." + b64(signature)
def flip(token, at):
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]
`;

/** Tokens whatever the algorithm: named, so a disagreement says which. */
const COMMON_TOKENS = `tokens = {
    "for_user": str(AccessToken.for_user(user("reader"))),
    "access of a refresh": str(RefreshToken.for_user(user("reader")).access_token),
    "refresh": str(RefreshToken.for_user(user("reader"))),
    "sliding": str(SlidingToken.for_user(user("reader"))),
    "crafted": sign(claims()),
    "integer user id": sign(claims(user_id=user("reader").pk)),
    "audience nobody checks": sign(claims(aud="someone")),
    "foreign header fields": sign(claims(), headers={"kid": "x", "jku": "https://evil.example"}),
    "nbf in the past": sign(claims(nbf=now - 600)),
    "expired": sign(claims(exp=now - 10)),
    "nbf in the future": sign(claims(nbf=now + 600)),
    "iat in the future": sign(claims(iat=now + 600)),
    "exp as text": sign(claims(exp=str(now + 300))),
    "no exp": sign(claims(exp=None)),
    "no jti": sign(claims(jti=None)),
    "no token type": sign(claims(token_type=None)),
    "type refresh": sign(claims(token_type="refresh")),
    "unknown user": sign(claims(user_id="987654")),
    "inactive user": sign(claims(user_id=str(user("sleeper").pk))),
    "no user id": sign(claims(user_id=None)),
    "user id not a number": sign(claims(user_id="abc")),
    "user id an object": sign(claims(user_id={"pk": 1})),
    "alg none": raw({"alg": "none", "typ": "JWT"}, claims()),
    "alg None": raw({"alg": "None", "typ": "JWT"}, claims()),
    "no alg": raw({"typ": "JWT"}, claims(), "whatever"),
    "tampered payload": flip(str(AccessToken.for_user(user("reader"))), 40),
    "tampered signature": flip(str(AccessToken.for_user(user("reader"))), -3),
    "signature cut": str(AccessToken.for_user(user("reader")))[:-4],
    "empty": "",
    "garbage": "not a token",
    "three dots": "a.b.c",
    "huge": "a" * 4000 + ".b.c",
}
`;

const HS_TOKENS = `tokens.update({
    "other secret": sign(claims(), key="another-secret-key-of-plenty-of-characters"),
    "HS512 with the secret": sign(claims(), alg="HS512"),
})
result = tokens`;

const RS_TOKENS = `from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
tokens.update({
    "public key as HMAC secret": raw({"alg": "HS256", "typ": "JWT"}, claims(),
                                     api_settings.VERIFYING_KEY),
    "public key as HMAC secret, padded": raw({"alg": "HS256", "typ": "JWT"}, claims(),
                                             api_settings.VERIFYING_KEY.strip() + "\\n"),
    "another private key": sign(claims(), key=other),
    "RS512 with the key": sign(claims(), alg="RS512"),
})
result = tokens`;

/** What SimpleJWT's own authentication says of each token: the username, or null if refused. */
const DJANGO_DECIDES = `from rest_framework_simplejwt.authentication import JWTAuthentication
auth = JWTAuthentication()
result = {}
for name, raw in args["tokens"].items():
    try:
        result[name] = auth.get_user(auth.get_validated_token(raw.encode())).get_username()
    except Exception:
        # Refused (InvalidToken, AuthenticationFailed) or a crash: either way no user.
        result[name] = None`;

type Outcome = string | null;

async function sidecastDecides(app: Sidecast, token: string): Promise<Outcome> {
  const before = app.server.liveConnectionCount;
  const client = await connectClient(app.url, token);
  let closed: number | undefined;
  void client.closed.then(({ code }) => (closed = code));
  await waitFor(
    () => closed !== undefined || app.server.liveConnectionCount > before,
    10_000,
    'an answer',
  );
  const refusal = closed;
  client.ws.terminate();
  await client.closed;
  await waitFor(() => app.server.liveConnectionCount === before, 5000, 'the client gone');
  if (refusal === undefined) return 'accepted';
  assert.equal(refusal, 1011, 'every refusal is 1011');
  return null;
}

async function differential(site: DjangoSite, app: Sidecast, crafting: string) {
  await site.driver.createUser({ username: 'reader', password: 'x', perms: ['catalog.view_book'] });
  await site.driver.createUser({ username: 'sleeper', password: 'x', isActive: false });
  const tokens = await site.driver.shell<Record<string, string>>(
    `${CRAFT_PRELUDE}${COMMON_TOKENS}${crafting}`,
  );
  const django = await site.driver.shell<Record<string, string | null>>(DJANGO_DECIDES, {
    tokens,
  });
  const ours: Record<string, string> = {};
  const theirs: Record<string, string> = {};
  for (const [name, token] of Object.entries(tokens)) {
    ours[name] = (await sidecastDecides(app, token)) === null ? 'refused' : 'accepted';
    theirs[name] = django[name] === null ? 'refused' : 'accepted';
  }
  assert.deepEqual(ours, theirs);
  return theirs;
}

/** What SimpleJWT's own authentication says of each token (see DJANGO_DECIDES). */
function djangoDecides(
  site: DjangoSite,
  tokens: Record<string, string>,
): Promise<Record<string, Outcome>> {
  return site.driver.shell<Record<string, Outcome>>(DJANGO_DECIDES, { tokens });
}

/**
 * Crafts tokens for a user "reader" (`crafting` sets `result`, with CRAFT_PRELUDE in scope), and
 * checks that sidecast accepts exactly those JWTAuthentication accepts; returns Django's answers.
 */
async function readerDecidedAlike(
  site: DjangoSite,
  app: Sidecast,
  crafting: string,
): Promise<Record<string, Outcome>> {
  await site.driver.createUser({ username: 'reader', password: 'x' });
  const tokens = await site.driver.shell<Record<string, string>>(`${CRAFT_PRELUDE}${crafting}`);
  const django = await djangoDecides(site, tokens);
  const ours: Record<string, Outcome> = {};
  for (const [name, token] of Object.entries(tokens)) {
    ours[name] = (await sidecastDecides(app, token)) === null ? null : 'reader';
  }
  assert.deepEqual(ours, django);
  return django;
}

/** SimpleJWT settings for an asymmetric algorithm, with a key pair made for this run. */
function keyPairSettings(algorithm: 'RS256' | 'ES256'): Record<string, string> {
  const pem = {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  } as const;
  const pair =
    algorithm === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048, ...pem })
      : generateKeyPairSync('ec', { namedCurve: 'P-256', ...pem });
  return {
    SIMPLE_JWT_ALGORITHM: algorithm,
    SIMPLE_JWT_SIGNING_KEY: pair.privateKey,
    SIMPLE_JWT_VERIFYING_KEY: pair.publicKey,
  };
}

/**
 * For the enclosing describe: a Django site on SQLite with `env` among its settings (a function,
 * so that keys are made only when the tests run) and a sidecast server on it started with
 * `flags`; both made before its tests and closed after them.
 */
function siteWithServer(
  env: () => Record<string, string> = () => ({}),
  flags: string[] = ['--auth', 'simplejwt'],
): { readonly site: DjangoSite; readonly app: Sidecast } {
  const made = {} as { site: DjangoSite; app: Sidecast };
  before(async () => {
    made.site = await createDjangoSite({ dialect: 'sqlite', env: env() });
    made.app = await startSiteServer(made.site, flags);
  });
  after(async () => {
    await made.app?.close();
    await made.site?.close();
  });
  return made;
}

void describe('--auth simplejwt, HS256 with the secret key, against SimpleJWT', () => {
  const clients: TestClient[] = [];
  after(() => {
    for (const client of clients) client.ws.terminate();
  });
  const served = siteWithServer(undefined, ['--auth', 'simplejwt,sesame']);

  void test('a crafted token is accepted exactly when JWTAuthentication accepts it', async () => {
    const { site, app } = served;
    const decided = await differential(site, app, HS_TOKENS);
    // The set is worth something only if both answers occur, and the attacks are among the refused.
    assert.equal(decided.for_user, 'accepted');
    for (const name of [
      'refresh',
      'expired',
      'nbf in the future',
      'alg none',
      'HS512 with the secret',
    ]) {
      assert.equal(decided[name], 'refused', name);
    }
  });

  void test('SimpleJWT access tokens deliver the same events as sesame tokens', async () => {
    const { site, app } = served;
    await site.driver.createUser({
      username: 'twin',
      password: 'twin-pass',
      perms: ['catalog.view_author'],
    });
    const jwt = await site.driver.shell<string>(
      `${CRAFT_PRELUDE}result = str(AccessToken.for_user(user("twin")))`,
    );
    const sesame = await site.driver.getToken({ username: 'twin' });
    const before = app.server.liveConnectionCount;
    const byJwt = await connectClient(app.url, jwt);
    const bySesame = await connectClient(app.url, sesame);
    clients.push(byJwt, bySesame);
    await waitFor(() => app.server.liveConnectionCount === before + 2, 10_000, 'both live');
    const author = await site.driver.adminAdd({ model: 'catalog.author', data: { name: 'Ada' } });
    await site.driver.adminAdd({
      model: 'catalog.book',
      data: { title: 'Notes', author, year: 1843 },
    });
    await site.driver.adminChange({ model: 'catalog.author', pk: author, data: { name: 'A.' } });
    const received = await byJwt.waitForFrames(2);
    assert.deepEqual(received, await bySesame.waitForFrames(2));
    assert.deepEqual(
      received.map((frame) => JSON.parse(frame.toString()).model),
      ['author', 'author'],
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(byJwt.messages.length, 2, 'nothing about books');
  });
});

void describe('--auth simplejwt, RS256 with a key pair, against SimpleJWT', () => {
  const served = siteWithServer(() => keyPairSettings('RS256'));

  void test('algorithm confusion and foreign keys are refused, as by SimpleJWT', async () => {
    const { site, app } = served;
    const decided = await differential(site, app, RS_TOKENS);
    assert.equal(decided.for_user, 'accepted');
    assert.equal(decided['public key as HMAC secret'], 'refused');
    assert.equal(decided['another private key'], 'refused');
  });

  void test('start-up refuses a public key given as an HMAC secret', async () => {
    const { site } = served;
    const confused = {
      ...site,
      env: {
        ...site.env,
        SIMPLE_JWT_ALGORITHM: 'HS256',
        SIMPLE_JWT_SIGNING_KEY: site.env.SIMPLE_JWT_VERIFYING_KEY!,
      },
    };
    await assert.rejects(
      async () => startSiteServer(confused, ['--auth', 'simplejwt']),
      /SIMPLE_JWT_SIGNING_KEY: is a public key or certificate/,
    );
  });
});

void describe('--auth simplejwt with CHECK_REVOKE_TOKEN, against SimpleJWT', () => {
  const served = siteWithServer(() => ({
    SIMPLE_JWT_CHECK_REVOKE_TOKEN: 'True',
    SIMPLE_JWT_AUDIENCE: 'sidecast-tests',
  }));

  void test('a token made before a password change is refused by both', async () => {
    const { site, app } = served;
    await site.driver.createUser({ username: 'mover', password: 'first-pass' });
    const token = await site.driver.shell<string>(
      `${CRAFT_PRELUDE}result = str(AccessToken.for_user(user("mover")))`,
    );
    const django = (tokens: Record<string, string>) => djangoDecides(site, tokens);
    assert.deepEqual(await django({ token }), { token: 'mover' });
    assert.equal(await sidecastDecides(app, token), 'accepted');
    await site.driver.setPassword({ username: 'mover', password: 'second-pass' });
    assert.deepEqual(await django({ token }), { token: null });
    assert.equal(await sidecastDecides(app, token), null);
  });

  void test('AUDIENCE set: tokens for another audience, or none, are refused by both', async () => {
    const { site, app } = served;
    await site.driver.createUser({ username: 'reader', password: 'x' });
    const tokens = await site.driver.shell<Record<string, string>>(
      `${CRAFT_PRELUDE}from rest_framework_simplejwt.utils import get_md5_hash_password
h = get_md5_hash_password(user("reader").password)
result = {
    "for_user": str(AccessToken.for_user(user("reader"))),
    "other audience": sign(claims(aud="elsewhere", hash_password=h)),
    "audience among others": sign(claims(aud=["elsewhere", "sidecast-tests"], hash_password=h)),
    "no audience": sign(claims(hash_password=h)),
    "no revocation claim": sign(claims(aud="sidecast-tests")),
}`,
    );
    const django = await djangoDecides(site, tokens);
    for (const [name, token] of Object.entries(tokens)) {
      const expected = django[name] === null ? null : 'accepted';
      assert.equal(await sidecastDecides(app, token), expected, name);
    }
    assert.equal(django.for_user, 'reader');
    assert.equal(django['other audience'], null);
  });
});

void describe('--auth simplejwt with LEEWAY, ISSUER, USER_ID_CLAIM and USER_ID_FIELD', () => {
  const served = siteWithServer(() => ({
    SIMPLE_JWT_LEEWAY: '120',
    SIMPLE_JWT_ISSUER: 'https://issuer.example',
    SIMPLE_JWT_USER_ID_CLAIM: 'uid',
    SIMPLE_JWT_USER_ID_FIELD: 'username',
  }));

  void test('each token is accepted exactly when JWTAuthentication accepts it', async () => {
    const { site, app } = served;
    const django = await readerDecidedAlike(
      site,
      app,
      `def mine(**extra):
    return claims(**{"user_id": None, "uid": "reader", "iss": "https://issuer.example", **extra})
result = {
    "for_user": str(AccessToken.for_user(user("reader"))),
    "crafted": sign(mine()),
    "expired within the leeway": sign(mine(exp=now - 60)),
    "expired beyond the leeway": sign(mine(exp=now - 200)),
    "nbf within the leeway": sign(mine(nbf=now + 60)),
    "nbf beyond the leeway": sign(mine(nbf=now + 200)),
    "iat beyond the leeway": sign(mine(iat=now + 200)),
    "other issuer": sign(mine(iss="https://elsewhere.example")),
    "no issuer": sign(claims(user_id=None, uid="reader")),
    "user named by pk": sign(mine(uid=str(user("reader").pk))),
    "default claim only": sign(claims(iss="https://issuer.example")),
    "unknown username": sign(mine(uid="nobody")),
}`,
    );
    assert.equal(django['expired within the leeway'], 'reader');
    assert.equal(django['expired beyond the leeway'], null);
    assert.equal(django['other issuer'], null);
  });
});

void describe('--auth simplejwt, ES256 with a P-256 key pair, against SimpleJWT', () => {
  const served = siteWithServer(() => keyPairSettings('ES256'));

  void test('signatures by the key pass, confusion and other keys do not, as for SimpleJWT', async () => {
    const { site, app } = served;
    const django = await readerDecidedAlike(
      site,
      app,
      `from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
result = {
    "for_user": str(AccessToken.for_user(user("reader"))),
    "crafted": sign(claims()),
    "public key as HMAC secret": raw({"alg": "HS256", "typ": "JWT"}, claims(),
                                     api_settings.VERIFYING_KEY),
    "another private key": sign(claims(), key=other),
    "alg none": raw({"alg": "none", "typ": "JWT"}, claims()),
    "expired": sign(claims(exp=now - 10)),
}`,
    );
    assert.equal(django.for_user, 'reader');
    assert.equal(django['public key as HMAC secret'], null);
  });
});
