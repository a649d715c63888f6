import { DJANGO_ENV_NOTES, formatHelp, parseArgs, type Env } from '../config.js';
import { SidecastError } from '../errors.js';
import { DJANGO_TOKEN_OPTIONS, mintDjangoToken } from './django-token.js';

const USAGE = 'sidecast token [OPTIONS] USERNAME';
const SUMMARY =
  'Prints a fresh django-sesame token for USERNAME: the token sesame.utils.get_token would return at this second with the same settings, read from the Django database. Unknown or inactive users are an error (exit code 1).';

export async function token(argv: readonly string[], env: Env): Promise<number> {
  const args = parseArgs(DJANGO_TOKEN_OPTIONS, argv, env);
  if (args.help) {
    process.stdout.write(formatHelp(USAGE, SUMMARY, DJANGO_TOKEN_OPTIONS, {}, DJANGO_ENV_NOTES));
    return 0;
  }
  const [username, ...rest] = args.positionals;
  if (username === undefined || username === '')
    throw new SidecastError('CONFIG_INVALID', `missing USERNAME (usage: ${USAGE})`);
  if (rest.length > 0)
    throw new SidecastError('CONFIG_INVALID', `unexpected argument "${rest[0]}"`);
  process.stdout.write(`${await mintDjangoToken(args.options, env, username)}\n`);
  return 0;
}
