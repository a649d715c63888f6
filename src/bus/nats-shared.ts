import { isUtf8 } from 'node:buffer';
import { connect, Events, type NatsConnection } from 'nats';
import { SidecastError } from '../errors.js';
import { redactUrl } from '../log.js';
import type { BusObserver, ControlChannel } from './bus.js';
import { publishFailed } from './publish.js';
import { errorText as socketErrorText, retryDelay } from './redis-shared.js';

/**
 * An error as one line: a NATS client error's code is often its message too ("TIMEOUT"), said
 * once; an error this module made already names the bus and the cause.
 */
export function errorText(error: unknown): string {
  if (error instanceof SidecastError) return error.message;
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code && error.message.includes(code)) return error.message;
  }
  return socketErrorText(error);
}

/** What both NATS buses (core and JetStream) do alike with their one connection. */

export interface NatsLinkOptions {
  readonly servers: readonly string[];
  /** The connection's name, as the server's monitoring shows it. */
  readonly name: string;
  readonly observer?: BusObserver;
}

/** How often the client PINGs the server, and how many may go unanswered before it reconnects. */
const PING_INTERVAL_MS = 1000;
const MAX_PINGS_OUT = 3;
/** How long a publish waits for the server to confirm it has the message. */
export const PUBLISH_TIMEOUT_MS = 5000;

/**
 * One NATS connection, shared by the events, the control channel and publishing (a NATS
 * connection, unlike a Redis one, can subscribe and publish at once). The client reconnects on
 * its own, to any server of the cluster, and subscribes again; this link reports each outage once
 * and counts as ready only while connected. A server that stops answering is found by the
 * client's PINGs (one a second, three unanswered), after which it reconnects elsewhere.
 */
export interface NatsLink {
  /** `NATS at nats://a:4222,nats://b:4222`. */
  readonly where: string;
  /** Connects once and keeps the connection; fails with the reason when no server answers now. */
  connection(): Promise<NatsConnection>;
  /** The connection if it is open now; undefined before it is or while it is down. */
  current(): NatsConnection | undefined;
  /** Keeps trying in the background until connected, reporting the outage once. */
  connectInBackground(onConnected: (connection: NatsConnection) => void): void;
  /** Calls `listener` each time the connection is back after an outage (subscriptions renewed). */
  onReconnect(listener: () => void): void;
  readonly ready: boolean;
  readonly detail: string;
  close(): Promise<void>;
}

export function createNatsLink(options: NatsLinkOptions): NatsLink {
  const { observer } = options;
  const where = `NATS at ${options.servers.map(redactUrl).join(',')}`;
  let opened: Promise<NatsConnection> | undefined;
  let open: NatsConnection | undefined;
  let connected = false;
  let everConnected = false;
  let outageReported = false;
  let closed = false;
  let detail = 'not started';
  const reconnectListeners: (() => void)[] = [];

  function markDown(why: string): void {
    if (closed) return;
    detail = why;
    const wasUp = connected;
    connected = false;
    if (wasUp || !outageReported) {
      outageReported = true;
      observer?.onDown?.(why);
    }
  }

  function markUp(): void {
    if (closed || connected) return;
    connected = true;
    detail = '';
    if (everConnected && outageReported) {
      observer?.onReconnect?.();
      for (const listener of reconnectListeners) listener();
    } else observer?.onUp?.();
    everConnected = true;
    outageReported = false;
  }

  async function watchStatus(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === Events.Disconnect) markDown(`lost connection to ${where}`);
      else if (status.type === Events.Reconnect) markUp();
    }
  }

  async function openConnection(): Promise<NatsConnection> {
    const connection = await connect({
      servers: [...options.servers],
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      pingInterval: PING_INTERVAL_MS,
      maxPingOut: MAX_PINGS_OUT,
      timeout: 5000,
    });
    if (closed) {
      await connection.close();
      throw new Error('closed');
    }
    open = connection;
    void watchStatus(connection);
    void connection.closed().then(() => {
      if (!closed) markDown(`connection to ${where} closed`);
    });
    markUp();
    return connection;
  }

  return {
    where,
    connection() {
      opened ??= openConnection().catch((error: unknown) => {
        opened = undefined;
        throw new SidecastError('BUS_UNAVAILABLE', `cannot reach ${where}: ${errorText(error)}`, {
          cause: error,
        });
      });
      return opened;
    },
    current: () => (connected ? open : undefined),
    connectInBackground(onConnected) {
      const attempt = async (n: number): Promise<void> => {
        while (!closed) {
          try {
            onConnected(await this.connection());
            return;
          } catch (error) {
            markDown(error instanceof Error ? error.message : String(error));
            await new Promise((wake) => setTimeout(wake, retryDelay(n++)));
          }
        }
      };
      void attempt(0);
    },
    onReconnect(listener) {
      reconnectListeners.push(listener);
    },
    get ready() {
      return connected;
    },
    get detail() {
      return detail || 'not connected';
    },
    async close() {
      closed = true;
      connected = false;
      detail = 'closed';
      const connection = open ?? (await opened?.catch(() => undefined));
      if (!connection || connection.isClosed()) return;
      // A server that stopped answering would never confirm the drain.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise((resolve) => (timer = setTimeout(resolve, 1000)));
      await Promise.race([connection.close().catch(() => undefined), timeout]);
      clearTimeout(timer);
    },
  };
}

/** Message bytes as text; undefined (and counted) when they are not UTF-8. */
export function textOf(data: Uint8Array, observer?: BusObserver): string | undefined {
  if (!isUtf8(data)) {
    observer?.onDropped?.('not_utf8', 'not UTF-8');
    return undefined;
  }
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
}

/**
 * Publishes on a subject of a connection that must be open now (a message for a NATS that is
 * away would only wait in the client's buffer), then waits for the server to have it: a
 * publisher learns of a failure as it would from Redis.
 */
export async function publishCore(
  link: NatsLink,
  description: string,
  subject: string,
  payload: string,
): Promise<void> {
  const connection = link.current() ?? (await connectedOrFail(link, description));
  try {
    connection.publish(subject, payload);
    await withTimeout(connection.flush(), PUBLISH_TIMEOUT_MS, `${link.where} did not answer`);
  } catch (error) {
    throw publishFailed(description, errorText(error), error);
  }
}

/** The connection, opening it for a publisher that never started the bus (`sidecast publish`). */
export async function connectedOrFail(
  link: NatsLink,
  description: string,
): Promise<NatsConnection> {
  if (link.detail !== 'not started' && !link.ready)
    throw publishFailed(description, link.detail || 'not connected');
  try {
    return await link.connection();
  } catch (error) {
    // The connection's error already says "cannot reach NATS at …".
    const why = error instanceof SidecastError ? error.message.replace(/^cannot reach /, '') : '';
    throw publishFailed(description, why ? `cannot reach ${why}` : errorText(error), error);
  }
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(why)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The control channel on a NATS subject of the bus's own connection: core NATS, no history, so
 * what was sent while that connection was down is lost with it.
 */
export function natsControlChannel(link: NatsLink, subject: string): ControlChannel {
  const description = `${link.where}, subject "${subject}"`;
  return {
    describe: () => description,
    async start(onMessage, onMissed) {
      if (onMissed) link.onReconnect(onMissed);
      const subscribe = (connection: NatsConnection) => {
        connection.subscribe(subject, {
          callback: (error, message) => {
            if (error) return;
            const text = textOf(message.data);
            if (text !== undefined) onMessage(text);
          },
        });
      };
      const now = link.current();
      if (now) subscribe(now);
      else link.connectInBackground(subscribe);
    },
    publish: (message) => publishCore(link, description, subject, message),
  };
}

/** `--nats` as the client takes it: comma-separated server URLs. */
export function natsServers(list: string): string[] {
  return list
    .split(',')
    .map((server) => server.trim())
    .filter((server) => server !== '');
}
