import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';

/**
 * The one register of the long-lived processes tests start (servers, redis-server, runserver),
 * so that none outlives the test process, however that ends.
 *
 * Each child runs in a process group of its own (`detached`), so stopping it also stops what it
 * started (cluster workers, a shell's children). A group stays registered until `stopChild()` or
 * until its leader has exited and nothing is left in it. Whatever is still registered is
 * SIGKILLed when this process exits (normally, through process.exit(), on an uncaught error),
 * on SIGINT, SIGTERM or SIGHUP, and, through a guardian shell that reads a pipe from this
 * process, even when this process is SIGKILLed and runs no code of its own at all.
 */

interface Tracked {
  readonly child: ChildProcess;
  /** Detached: the child leads a process group, and the whole group is killed. */
  readonly group: boolean;
}

/** By pid (for a group, also the group id). */
const tracked = new Map<number, Tracked>();

// The guardian learns "+ID" and "-ID" lines, where ID is what kill(1) takes (-PGID for a group).
// When its input ends, this process is gone, and it kills what is still listed. It has a group of
// its own, so a signal sent to this process's group (Ctrl-C) cannot stop it before it has acted.
const GUARDIAN = `
ids=' '
while IFS= read -r line; do
  case "$line" in
    +*) ids="$ids\${line#+} " ;;
    -*) kept=' '
        for id in $ids; do [ "$id" = "\${line#-}" ] || kept="$kept$id "; done
        ids=$kept ;;
  esac
done
for id in $ids; do kill -9 "$id" 2>/dev/null; done
`;
let guardian: ChildProcess | undefined;

function tellGuardian(line: string): void {
  if (!guardian) {
    guardian = spawn('sh', ['-c', GUARDIAN], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    guardian.on('error', () => undefined);
    guardian.stdin!.on('error', () => undefined);
    // Neither the guardian nor its pipe may keep this process alive.
    guardian.unref();
    (guardian.stdin as unknown as { unref(): void }).unref();
  }
  guardian.stdin!.write(`${line}\n`);
}

/** The argument of kill(2) for a tracked pid: a negative id names the whole group. */
function target(pid: number): number {
  return tracked.get(pid)?.group === false ? pid : -pid;
}

function register(pid: number, entry: Tracked): void {
  tracked.set(pid, entry);
  tellGuardian(`+${target(pid)}`);
}

function unregister(pid: number): void {
  if (!tracked.has(pid)) return;
  tellGuardian(`-${target(pid)}`);
  tracked.delete(pid);
}

/** Sends `name` to a tracked pid (or its group); false when nothing of it is left. */
function signal(pid: number, name: NodeJS.Signals | 0): boolean {
  try {
    process.kill(target(pid), name);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** SIGKILLs everything still registered; synchronous, so it can run in an 'exit' listener. */
export function killAllChildren(): void {
  for (const pid of [...tracked.keys()]) {
    signal(pid, 'SIGKILL');
    unregister(pid);
  }
}

let hooked = false;

function hookProcessEnd(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllChildren);
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAllChildren();
      // Alone, this listener would keep the process alive: let the signal do what it would have.
      if (process.listenerCount(name) === 1) {
        process.removeListener(name, onSignal);
        process.kill(process.pid, name);
      }
    };
    process.on(name, onSignal);
  }
}

/**
 * spawn(), registered. `detached` defaults to true (a process group of its own); pass false to
 * keep the child in this process's group, where only the child itself is killed at the end.
 */
export function spawnTracked(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  hookProcessEnd();
  const group = options.detached ?? true;
  const child = spawn(command, args, { ...options, detached: group });
  const pid = child.pid;
  if (pid === undefined) return child; // not started: its 'error' event says why
  register(pid, { child, group });
  child.once('exit', () => {
    // The leader is gone; keep the group registered only while something of it is left.
    if (tracked.get(pid)?.child === child && !signal(pid, 0)) unregister(pid);
  });
  return child;
}

/** SIGKILLs a tracked child (its whole group when detached) and waits until it has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const exited = child.exitCode !== null || child.signalCode !== null;
  const exit = exited ? Promise.resolve() : once(child, 'exit');
  if (tracked.get(pid)?.child === child) signal(pid, 'SIGKILL');
  else if (!exited) child.kill('SIGKILL');
  await exit;
  if (tracked.get(pid)?.child === child) unregister(pid);
}

/** Stops every tracked child and waits for them; for `after` hooks. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...tracked.values()].map(({ child }) => stopChild(child)));
}

/**
 * Whether a process runs with this pid. A zombie (dead, not yet reaped, as an orphan stays where
 * the init process does not reap) does not count.
 */
export function isRunning(pid: number): boolean {
  const result = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' });
  if (result.error) throw result.error;
  const state = result.stdout.trim();
  return state !== '' && !state.startsWith('Z');
}
