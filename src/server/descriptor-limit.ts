import type { Server } from 'node:net';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/**
 * Client connections stop short of the process's open-file limit (RLIMIT_NOFILE), so that the
 * server still has descriptors for its own work when clients take all they can: a connection
 * beyond the cap is closed at once by Node (net.Server maxConnections), counted and logged, and
 * the next one is accepted as soon as another has closed.
 *
 * Past the limit itself, accept() fails with EMFILE; libuv then accepts and closes the waiting
 * connections with a descriptor it keeps in reserve. Node never hears of those, so they cannot be
 * counted; the cap below keeps the process away from that point.
 */

/**
 * Descriptors a server needs besides its clients: about 20 of its own (standard streams, the
 * primary's IPC channel, the event loop, the thread pool, the SQLite file), the database pool (up
 * to 32 connections), Redis (2), and a margin for HTTP requests and reconnections.
 */
const RESERVED_DESCRIPTORS = 100;

/** The episode ends once connections fall this far below the cap, so a server hovering at the cap logs once. */
const RECOVERED_FRACTION = 0.9;

interface ReportLimits {
  readonly userLimits?: { readonly open_files?: { readonly soft?: unknown } };
}

interface ReportSettings {
  excludeNetwork?: boolean;
}

let cachedLimit: number | null | undefined;

/**
 * The soft RLIMIT_NOFILE, or null where it is unknown or unlimited. Node has no getrlimit(); its
 * diagnostic report carries the limits (POSIX only). Read once: it costs a few milliseconds.
 */
export function openFileLimit(): number | null {
  if (cachedLimit !== undefined) return cachedLimit;
  cachedLimit = null;
  const report = process.report as (typeof process.report & ReportSettings) | undefined;
  if (!report) return cachedLimit;
  // Without network details the report resolves no addresses, so it never waits on DNS.
  const excluded = report.excludeNetwork;
  report.excludeNetwork = true;
  try {
    const soft = (report.getReport() as ReportLimits).userLimits?.open_files?.soft;
    if (typeof soft === 'number' && Number.isFinite(soft) && soft > 0) cachedLimit = soft;
  } catch {
    // No report on this platform: the cap stays off and libuv's EMFILE handling remains.
  } finally {
    report.excludeNetwork = excluded;
  }
  return cachedLimit;
}

/** Client connections allowed under `limit` descriptors: at least half of them. */
export function connectionCap(limit: number): number {
  return limit - Math.min(RESERVED_DESCRIPTORS, Math.floor(limit / 2));
}

function isDescriptorShortage(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EMFILE' || code === 'ENFILE';
}

/**
 * Caps `server`'s connections under the open-file limit and reports the refusals: each one in
 * sidecast_connections_refused_total{reason="descriptor_limit"}, one warning per episode at the
 * cap. Accept errors (EMFILE when even libuv's reserve is gone, ENFILE for the whole system)
 * count and log the same way instead of crashing the process as an unhandled 'error'.
 */
export function guardDescriptorLimit(
  server: Server,
  metrics: Metrics,
  logger: Logger,
  limit: number | null = openFileLimit(),
): void {
  const cap = limit === null ? 0 : connectionCap(limit);
  if (cap > 0) server.maxConnections = cap;
  let atCap = false;
  const refused = (detail: Record<string, unknown>) => {
    metrics.refused.inc({ reason: 'descriptor_limit' });
    if (atCap) return;
    atCap = true;
    logger.warn(
      { openFileLimit: limit, connectionCap: cap || undefined, ...detail },
      'at the file-descriptor limit: refusing new connections until some close',
    );
  };
  server.on('drop', () => refused({}));
  server.on('error', (error: Error) => {
    if (isDescriptorShortage(error)) refused({ err: (error as NodeJS.ErrnoException).code });
    else logger.error({ err: error }, 'accepting a connection failed');
  });
  server.on('connection', () => {
    if (!atCap) return;
    // Without a cap, an accepted connection is all there is to know: descriptors are free again.
    if (cap === 0) {
      atCap = false;
      return;
    }
    server.getConnections((error, count) => {
      if (!error && count <= Math.floor(cap * RECOVERED_FRACTION)) atCap = false;
    });
  });
}
