import { SidecastError } from '../errors.js';

/** HOST:PORT as a person would type it, brackets around an IPv6 address. */
export function hostAndPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The reasons a server cannot listen that an operator can act on, each in one line. The address
 * is the one asked for (--host, --port), which is what the operator has to change.
 */
export function listenError(error: unknown, host: string, port: number): SidecastError {
  const where = hostAndPort(host, port);
  const cause = error as NodeJS.ErrnoException;
  const fail = (message: string) => new SidecastError('LISTEN_FAILED', message, { cause });
  switch (cause.code) {
    case 'EADDRINUSE':
      return fail(`${where} is already in use`);
    case 'EACCES':
      return fail(
        port > 0 && port < 1024
          ? `cannot listen on ${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`
          : `cannot listen on ${where}: permission denied`,
      );
    case 'EADDRNOTAVAIL':
      return fail(`cannot listen on ${where}: ${host} is not an address of this machine`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return fail(`cannot listen on ${where}: cannot resolve host name "${host}"`);
    default:
      return fail(`cannot listen on ${where}: ${cause.message ?? String(error)}`);
  }
}
