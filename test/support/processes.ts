/**
 * `sidecast serve` in a process group of its own, and what /proc says about it: which processes
 * of the group are still there, which worker holds which client socket. Linux only, as the tests
 * that use it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from './e2e.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(REPO_ROOT, 'bin', 'sidecast.js');

/** Live processes (zombies excluded: they have exited) whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(name));
  }
  return members;
}

/** SIGKILL to every process of the group; nothing when it is already empty. */
export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** The child processes of `pid` (the workers of a `serve --workers N` primary). */
export function childPids(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  return text.split(' ').filter(Boolean).map(Number);
}

/**
 * For the server listening on 127.0.0.1:`serverPort`, which of `pids` holds the accepted end of
 * each connection, by the client's local port.
 */
export function connectionOwners(serverPort: number, pids: readonly number[]): Map<number, number> {
  const byInode = new Map<string, number>();
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined) byInode.set(inode, pid);
    }
  }
  const owners = new Map<number, number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const localPort = parseInt(fields[1]!.split(':')[1]!, 16);
    const remotePort = parseInt(fields[2]!.split(':')[1]!, 16);
    const owner = byInode.get(fields[9]!);
    if (localPort === serverPort && owner !== undefined) owners.set(remotePort, owner);
  }
  return owners;
}

export interface GroupServe {
  readonly child: ChildProcess;
  /** The process group: the pid of the first process started. */
  readonly pgid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the URL once it prints that it listens; rejects if it exits first. */
  readonly listening: Promise<string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM to the first process, then its exit; SIGKILL to the group after `graceMs`. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL to the whole group (for `finally`: it also ends what a failed test left). */
  kill(): void;
}

export interface GroupServeOptions {
  /** Words put before `node bin/sidecast.js serve`, e.g. ['prlimit', '--nofile=300:300']. */
  readonly prefix?: readonly string[];
}

/** Spawns `sidecast serve ARGS` (from dist/) detached, so it leads a process group of its own. */
export function spawnServeGroup(
  args: readonly string[],
  env: Record<string, string>,
  options: GroupServeOptions = {},
): GroupServe {
  ensureBuilt();
  const command = [...(options.prefix ?? []), process.execPath, BIN, 'serve', ...args];
  const child = spawn(command[0]!, command.slice(1), {
    cwd: REPO_ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'close').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const listening = new Promise<string>((resolveUrl, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const url = /^sidecast listening on (ws:\/\/\S+)/m.exec(stdout)?.[1];
      if (url) resolveUrl(url);
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`sidecast serve exited (${signal ?? code}) before listening:\n${stderr}`)),
    );
  });
  listening.catch(() => undefined);
  const pgid = child.pid!;
  const kill = () => killGroup(pgid);
  return {
    child,
    pgid,
    stdout: () => stdout,
    stderr: () => stderr,
    listening,
    exited,
    async stop(graceMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(kill, graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    kill,
  };
}
