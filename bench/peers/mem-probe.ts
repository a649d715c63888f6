/**
 * Loaded with --import into every Node server the benchmark runs (sidecast and its workers
 * included, since cluster workers inherit the flags). On SIGUSR2 it collects garbage and writes
 * this process's memory use to $BENCH_PROBE_DIR/mem-<pid>.json. It changes nothing else.
 */
import { renameSync, writeFileSync } from 'node:fs';

const dir = process.env.BENCH_PROBE_DIR;
if (dir) {
  process.on('SIGUSR2', () => {
    const collect = (globalThis as { gc?: () => void }).gc;
    collect?.();
    collect?.();
    const usage = process.memoryUsage();
    const file = `${dir}/mem-${process.pid}.json`;
    // Written aside, then renamed, so the reader never sees half a file.
    writeFileSync(
      `${file}.tmp`,
      JSON.stringify({ pid: process.pid, rss: usage.rss, heapUsed: usage.heapUsed }),
    );
    renameSync(`${file}.tmp`, file);
  });
}
