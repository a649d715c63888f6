/**
 * The benchmark entry points' command lines: `--name value`, `--name=value`, and the bare
 * switches `--quick` and `--help`. Unknown names are errors, so a typo never runs the wrong bench.
 */
export function readFlags(argv: readonly string[], known: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (name === 'quick' || name === 'help') flags.set(name, 'yes');
    else flags.set(name, inline ?? argv[++i] ?? '');
  }
  for (const name of flags.keys())
    if (!known.includes(name)) throw new Error(`unknown option --${name}`);
  return flags;
}

/** The value of `--name` as a whole number of at least 1, or `fallback` when it is not given. */
export function positiveIntegerFlag(
  flags: ReadonlyMap<string, string>,
  name: string,
  fallback: number,
): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} needs a positive integer`);
  return value;
}
