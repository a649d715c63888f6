/**
 * Does a refused token tell whether its user exists? Measures how long the django-sesame
 * authenticator takes to refuse a token for an unknown primary key and one for a known user with
 * a wrong signature, against a SQLite database with Django's schema, and prints both medians and
 * their ratio. Run with `node --import tsx bench/auth-timing.ts [--samples N]`.
 *
 * The two kinds alternate, so drift (frequency scaling, other processes) hits both alike.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createSesameAuthenticator } from '../src/auth/sesame/authenticator.js';
import { createTokenCodec } from '../src/auth/sesame/codec.js';
import { selectPacker } from '../src/auth/sesame/packers.js';
import { createDjangoSqlite } from '../src/demo/schema.js';
import { DEFAULT_SESAME_SETTINGS, type DjangoSesameSettings } from '../src/auth/sesame/settings.js';
import { isSidecastError } from '../src/errors.js';

const USERS = 1000;
const WARMUP = 500;

function samplesArg(): number {
  const at = process.argv.indexOf('--samples');
  const value = at === -1 ? 3000 : Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 10) throw new Error('--samples needs an integer >= 10');
  return value;
}

/** What Django's default hasher stores: the shape django-sesame signs a part of. */
function pbkdf2Shaped(): string {
  const salt = randomBytes(16).toString('base64url').slice(0, 22);
  return `pbkdf2_sha256$1000000$${salt}$${randomBytes(32).toString('base64')}`;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function describe(label: string, micros: number[]): string {
  const sorted = [...micros].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  return `${label.padEnd(28)} median ${median.toFixed(1).padStart(7)} µs   p10 ${quantile(sorted, 0.1).toFixed(1).padStart(7)}   p90 ${quantile(sorted, 0.9).toFixed(1).padStart(7)}`;
}

async function main(): Promise<void> {
  const samples = samplesArg();
  const dir = mkdtempSync(join(tmpdir(), 'sidecast-auth-timing-'));
  const file = join(dir, 'db.sqlite3');
  const authenticators: { close(): Promise<void> }[] = [];
  try {
    const site = createDjangoSqlite(file, {
      models: [{ label: 'catalog.book', verboseName: 'book' }],
      users: Array.from({ length: USERS }, (_, i) => ({
        username: `user${i}`,
        permissions: ['catalog.view_book'],
      })),
    });
    // The demo schema stores unusable passwords; real users have hashes.
    const raw = new Database(file);
    const setPassword = raw.prepare('UPDATE auth_user SET password = ? WHERE id = ?');
    raw.transaction(() => {
      for (const id of site.users.values()) setPassword.run(pbkdf2Shaped(), id);
    })();
    raw.close();

    const django: DjangoSesameSettings = {
      secretKey: randomBytes(32).toString('hex'),
      secretKeyFallbacks: [],
      authUserModel: 'auth.User',
      useTz: true,
      sesame: DEFAULT_SESAME_SETTINGS,
    };
    const authenticator = await createSesameAuthenticator({
      databaseUrl: `sqlite://${file}`,
      django,
      scope: '',
    });
    authenticators.push(authenticator);
    // Signed with the right key but over other user data: well-formed, never valid.
    const codec = createTokenCodec(django, selectPacker(null, 'AutoField'));
    const stranger = { password: pbkdf2Shaped(), email: '', lastLogin: null };
    const ids = [...site.users.values()];
    const unknownToken = (i: number) =>
      codec.create(BigInt(USERS * 10 + (i % USERS)), stranger, '', Date.now() / 1000);
    const wrongSignature = (i: number) =>
      codec.create(BigInt(ids[i % ids.length]!), stranger, '', Date.now() / 1000);

    async function refusal(token: string): Promise<number> {
      const started = process.hrtime.bigint();
      try {
        await authenticator.authenticate({ token, headers: {} });
      } catch (error) {
        const micros = Number(process.hrtime.bigint() - started) / 1000;
        if (!isSidecastError(error, 'AUTH_FAILED')) throw error;
        return micros;
      }
      throw new Error('a token that should fail was accepted');
    }

    const unknown: number[] = [];
    const known: number[] = [];
    for (let i = 0; i < WARMUP + samples; i++) {
      // Tokens are made outside the timed part; the order of the pair alternates.
      const pair: [string, number[]][] = [
        [unknownToken(i), unknown],
        [wrongSignature(i), known],
      ];
      if (i % 2 === 1) pair.reverse();
      for (const [token, into] of pair) {
        const micros = await refusal(token);
        if (i >= WARMUP) into.push(micros);
      }
    }
    const median = (values: number[]) =>
      quantile(
        [...values].sort((a, b) => a - b),
        0.5,
      );
    console.log(`refusal time, ${samples} tokens each, SQLite, ${USERS} users`);
    console.log(describe('unknown primary key', unknown));
    console.log(describe('known user, wrong signature', known));
    console.log(`ratio unknown / known: ${(median(unknown) / median(known)).toFixed(3)}`);
  } finally {
    await Promise.all(authenticators.map((authenticator) => authenticator.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
