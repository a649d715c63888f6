/**
 * A process whose stderr nobody reads (a full pipe, a stopped log shipper) must not grow without
 * end: log output waits in a bounded buffer, past which lines are dropped and counted, and a line
 * says how many once stderr takes output again. Real processes with a stderr pipe this test does
 * not read, memory read from /proc.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createDjangoSqlite } from '../../src/demo/schema.js';
import { ensureBuilt } from '../support/e2e.js';
import { createRedisServer, type RedisServer } from '../support/faults.js';
import { metric } from '../support/metrics.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const GROWTH_LIMIT_MB = 60;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  assert.ok(kb, `no VmRSS for ${pid}`);
  return Number(kb[1]) / 1024;
}

/** Reads `input` line by line until `isLast` says so; every line read, that one last. */
async function linesUntil(
  input: Readable,
  isLast: (line: string) => boolean,
  what: string,
  timeoutMs: number,
): Promise<string[]> {
  const lines: string[] = [];
  const reader = createInterface({ input });
  const timer = setTimeout(() => reader.close(), timeoutMs);
  try {
    for await (const line of reader) {
      lines.push(line);
      if (isLast(line)) return lines;
    }
  } finally {
    clearTimeout(timer);
    reader.close();
  }
  assert.fail(`no ${what} within ${timeoutMs} ms, after ${lines.length} lines`);
}

/** The first stdout line matching `pattern`, as its match; stderr is left unread on purpose. */
async function lineMatching(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  const lines = await linesUntil(
    child.stdout!,
    (line) => pattern.test(line),
    String(pattern),
    30_000,
  );
  return pattern.exec(lines.at(-1)!)!;
}

const REPORT = 'log lines dropped: stderr was not taking them';

/**
 * Reads the stderr that was left unread until now until the logger's report of dropped lines
 * arrives. Waiting for that line, rather than for a fixed time, is what makes the test
 * independent of how fast a loaded machine empties a 4 MB buffer through a pipe.
 */
async function readUntilReport(child: ChildProcess): Promise<string[]> {
  const isReport = (line: string) =>
    line !== '' && (JSON.parse(line) as { msg?: unknown }).msg === REPORT;
  const lines = await linesUntil(child.stderr!, isReport, 'report of dropped lines', 60_000);
  return lines.filter((line) => line !== '');
}

describe('log output when stderr is not read', () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('keeps a logger’s buffer bounded, drops and counts, and reports the count later', async (t) => {
    // Writes 400,000 distinct 250-byte lines (about 100 MB) as fast as it can, in slices, so
    // the asynchronous destination gets its chances to write; then exits when stdin closes.
    const script = `
      import { createLogger, logLinesDropped } from './src/log.ts';
      const logger = createLogger('info');
      const filler = 'x'.repeat(200);
      const start = process.memoryUsage().rss;
      let n = 0;
      const slice = () => {
        for (let i = 0; i < 20000; i++) logger.info({ n: n++, filler }, 'line');
        if (n < 400000) return setImmediate(slice);
        const grown = (process.memoryUsage().rss - start) / 1048576;
        process.stdout.write('grown ' + grown.toFixed(1) + ' dropped ' + logLinesDropped(logger) + '\\n');
        process.stdin.resume();
        process.stdin.on('end', () => process.exit(0));
      };
      slice();
    `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    children.push(child);
    child.stderr!.pause();
    const [, grown, droppedSoFar] = await lineMatching(child, /^grown (\S+) dropped (\d+)$/);
    t.diagnostic(`RSS grew by ${grown} MB while writing 400,000 lines to an unread stderr`);
    assert.ok(Number(grown) < GROWTH_LIMIT_MB, `RSS grew by ${grown} MB`);

    const lines = await readUntilReport(child);
    const exited = once(child, 'exit');
    child.stdin!.end();
    await exited;
    const report = JSON.parse(lines.at(-1)!) as { droppedLines: number };
    assert.equal(report.droppedLines, Number(droppedSoFar), 'the count the logger kept');
    const written = lines.length - 1;
    assert.equal(written + report.droppedLines, 400_000, 'every line written or counted');
    assert.ok(written > 1000, `${written} lines written`);
    t.diagnostic(`${written} lines written, ${String(report.droppedLines)} dropped and reported`);
  });

  describe('sidecast serve under a flood of invalid events', () => {
    let dir: string;
    let redis: RedisServer;
    let publisher: Redis;

    before(async () => {
      ensureBuilt();
      dir = mkdtempSync(join(tmpdir(), 'sidecast-log-backpressure-'));
      createDjangoSqlite(join(dir, 'db.sqlite3'), { models: [], users: [] });
      redis = await createRedisServer();
      await redis.start();
      publisher = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    });
    after(async () => {
      publisher?.disconnect();
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it(`grows by less than ${GROWTH_LIMIT_MB} MB over 800,000 invalid events`, async (t) => {
      const events = 800_000;
      const channel = `sidecast-backpressure-${randomBytes(6).toString('hex')}`;
      // One process, the one whose memory is read (the default forks a worker per core).
      const flags = ['--port', '0', '--workers', '1', '--bus', 'redis', '--redis', redis.url];
      const child = spawn(
        process.execPath,
        [join(ROOT, 'bin', 'sidecast.js'), 'serve', ...flags, '--channel', channel],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            SIDECAST_DJANGO_DB: `sqlite://${join(dir, 'db.sqlite3')}`,
            DJANGO_SECRET_KEY: randomBytes(24).toString('hex'),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      children.push(child);
      child.stderr!.pause();
      const [, port] = await lineMatching(child, /^sidecast listening on ws:\/\/[^:]+:(\d+)\//);
      const dropped = 'sidecast_events_dropped_total{reason="invalid_event"}';
      let sent = 0;
      /** Sends `count` invalid events in batches, each handled before the next is sent. */
      async function flood(count: number, each: () => void = () => undefined): Promise<void> {
        for (const end = sent + count; sent < end;) {
          const pipeline = publisher.pipeline();
          for (let i = 0; i < 10_000; i++) pipeline.publish(channel, `not json ${sent++}`);
          await pipeline.exec();
          const deadline = Date.now() + 30_000;
          while ((await metric(Number(port), dropped)) < sent) {
            assert.ok(Date.now() < deadline, `the server never handled ${sent} events`);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          each();
        }
      }
      // The heap grows to its working size under any load: measure from there.
      await flood(100_000);
      const start = rssMb(child.pid!);
      let peak = start;
      await flood(events, () => (peak = Math.max(peak, rssMb(child.pid!))));
      child.kill('SIGKILL');
      await once(child, 'exit');
      t.diagnostic(`RSS ${start.toFixed(0)} MB at start, ${peak.toFixed(0)} MB at most`);
      assert.ok(
        peak - start < GROWTH_LIMIT_MB,
        `RSS went from ${start.toFixed(0)} MB to ${peak.toFixed(0)} MB`,
      );
    });
  });
});
