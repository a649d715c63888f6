/**
 * The line `sidecast demo` prints to watch a demo user's stream in a terminal: the demo's Django
 * settings as environment variables, then `sidecast connect --as USER`, which mints a token from
 * the demo's database at the moment it connects (a printed token would expire with SESAME_MAX_AGE).
 */

/** `word` as a POSIX shell reads it back unchanged: quoted only when it has to be. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export interface ConnectLine {
  /** How the user runs sidecast: `sidecast`, or `npx sidecast` when the demo came through npx. */
  readonly program: string;
  /** ws:// address of the demo. */
  readonly url: string;
  readonly username: string;
  readonly databaseFile: string;
  readonly env: Readonly<Record<string, string>>;
}

export function connectLine(line: ConnectLine): string {
  const assignments = Object.entries(line.env).map(
    ([name, value]) => `${name}=${shellWord(value)}`,
  );
  const words = ['connect', line.url, '--as', line.username];
  words.push('--django-db', `sqlite://${line.databaseFile}`);
  return [...assignments, line.program, ...words.map(shellWord)].join(' ');
}

/** npm and npx set npm_command=exec for the command they run. */
export function sidecastProgram(env: Readonly<Record<string, string | undefined>>): string {
  return env.npm_command === 'exec' ? 'npx sidecast' : 'sidecast';
}
