/**
 * A load-generating process: holds thousands of raw WebSocket connections, authenticates them,
 * and counts what arrives. Benchmark events carry `"bench_t": <µs>` (their intended publish time
 * on the shared monotonic clock) and probes `"bench_probe": <n>`; nothing else is parsed.
 */
import { Histogram } from '../lib/histogram.js';
import {
  createClock,
  type ClientStats,
  type Command,
  type ConnectResult,
  type Reply,
  type Request,
  type Tick,
} from './protocol.js';
import { Churn } from './churn.js';
import { firstMessage, readV1Frame, type Position } from './v1.js';
import { RawClient, type ClientEvents } from './ws-client.js';

const now = createClock();
const clients = new Set<RawClient>();
const histogram = new Histogram();
const MARKER = Buffer.from('"bench_');
let received = 0;
let probed = 0;
let lastFirstProbeAt = 0;
let openedByShard: number[] = [];
let probedByShard: number[] = [];
let accepted = 0;
let refused = 0;
let closes: Record<string, number> = {};
let welcomed = 0;
let done = 0;
let recovered = 0;
let replayed = 0;
let lastDoneAt = 0;
/** v1: where each connection of the last 'connect' (by index) would resume. */
let positions: (Position | undefined)[] = [];
let lastConnect: Extract<Command, { type: 'connect' }> | undefined;
let churn: Churn | undefined;
let tickTimer: NodeJS.Timeout | undefined;
let onSettled: ((client: RawClient, opened: boolean, code: number) => void) | undefined;

/** The integer after `"bench_x": ` (or its JSON-escaped form inside a Socket.IO packet). */
function numberAfter(data: Buffer, from: number, end: number): number {
  let i = from;
  while (i < end && (data[i]! < 0x30 || data[i]! > 0x39)) i++;
  let value = 0;
  while (i < end && data[i]! >= 0x30 && data[i]! <= 0x39) value = value * 10 + data[i++]! - 0x30;
  return value;
}

function markDone(client: RawClient): void {
  client.done = true;
  done++;
  lastDoneAt = now();
}

function v1Message(client: RawClient, data: Buffer, start: number, end: number): void {
  const frame = readV1Frame(data, start, end);
  if (frame.kind === 'welcome') {
    const { welcome } = frame;
    client.welcomed = true;
    client.recovered = welcome.recovered;
    client.replayed = welcome.replayed;
    welcomed++;
    if (welcome.recovered) {
      recovered++;
      replayed += welcome.replayed;
    } else positions[client.index] = { epoch: welcome.epoch, offset: welcome.offset };
    if (!welcome.recovered || welcome.replayed === 0) markDone(client);
  } else if (frame.kind === 'event') {
    const position = positions[client.index];
    if (position) positions[client.index] = { epoch: position.epoch, offset: frame.offset };
    if (client.welcomed && !client.done && ++client.afterWelcome >= client.replayed)
      markDone(client);
  }
}

const events: ClientEvents = {
  opened(client) {
    openedByShard[client.shard] = (openedByShard[client.shard] ?? 0) + 1;
    onSettled?.(client, true, 0);
  },
  message(client, data, start, end) {
    if (client.protocol === 'v1') v1Message(client, data, start, end);
    const at = data.indexOf(MARKER, start);
    if (at === -1 || at >= end) return;
    const kind = data[at + MARKER.length];
    if (kind === 0x74 /* t */) {
      received++;
      histogram.record(Math.max(0, now() - numberAfter(data, at + MARKER.length + 1, end)));
    } else if (kind === 0x70 /* p */ && client.firstProbeAt === 0) {
      client.firstProbeAt = now();
      lastFirstProbeAt = Math.max(lastFirstProbeAt, client.firstProbeAt);
      probedByShard[client.shard] = (probedByShard[client.shard] ?? 0) + 1;
      probed++;
    }
  },
  authenticated(_client, ok) {
    if (ok) accepted++;
    else refused++;
  },
  closed(client, code, _reason, opened) {
    clients.delete(client);
    if (opened) closes[code] = (closes[code] ?? 0) + 1;
    else onSettled?.(client, false, code);
  },
};

function connectAll(
  command: Extract<Command, { type: 'connect' }>,
  first?: (index: number, token: string) => string,
): Promise<ConnectResult> {
  const { targets, tokens, localAddresses, inFlight } = command;
  if (!first) {
    lastConnect = command;
    positions = [];
  }
  openedByShard = new Array<number>(command.shardCount).fill(0);
  probedByShard = new Array<number>(command.shardCount).fill(0);
  const failures: Record<string, number> = {};
  let next = 0;
  let active = 0;
  let opened = 0;
  let failed = 0;
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(true), command.timeoutMs);
    const finish = (timedOut: boolean) => {
      clearTimeout(timer);
      onSettled = undefined;
      if (timedOut) failures.timeout = tokens.length - opened - failed;
      resolve({ opened, failed: tokens.length - opened, failures });
    };
    const launch = () => {
      while (active < inFlight && next < tokens.length) {
        const i = next++;
        const target = targets[i % targets.length]!;
        active++;
        const client = new RawClient(
          i,
          { ...target, localAddress: localAddresses[i % localAddresses.length] },
          tokens[i]!,
          events,
        );
        client.shard = command.shards[i]!;
        if (first) client.firstMessage = first(i, tokens[i]!);
        clients.add(client);
      }
      if (opened + failed === tokens.length) finish(false);
    };
    onSettled = (_client, ok, code) => {
      active--;
      if (ok) opened++;
      else {
        failed++;
        failures[code] = (failures[code] ?? 0) + 1;
      }
      launch();
    };
    launch();
  });
}

function stats(): ClientStats {
  const cpu = process.cpuUsage();
  return {
    open: clients.size,
    received,
    probed,
    lastFirstProbeAt,
    openedByShard,
    probedByShard,
    accepted,
    refused,
    closes,
    welcomed,
    done,
    recovered,
    replayed,
    lastDoneAt,
    histogram: { counts: histogram.counts, max: histogram.max },
    cpuMicros: cpu.user + cpu.system,
  };
}

async function closeAll(): Promise<void> {
  for (const client of clients) client.destroy();
  const deadline = Date.now() + 5000;
  while (clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

async function handle(command: Command): Promise<unknown> {
  switch (command.type) {
    case 'connect':
      return connectAll(command);
    case 'stats':
      return stats();
    case 'reset':
      received = probed = lastFirstProbeAt = accepted = refused = 0;
      welcomed = done = recovered = replayed = lastDoneAt = 0;
      closes = {};
      histogram.reset();
      probedByShard.fill(0);
      for (const client of clients) client.firstProbeAt = 0;
      return null;
    case 'ticks':
      if (tickTimer) clearInterval(tickTimer);
      tickTimer = undefined;
      if (command.everyMs > 0) {
        tickTimer = setInterval(() => {
          const tick: Tick = { type: 'tick', received };
          process.send?.(tick);
        }, command.everyMs);
      }
      return null;
    case 'close':
      await closeAll();
      return null;
    case 'reconnect': {
      if (!lastConnect) throw new Error('reconnect before connect');
      const since = command.since;
      return connectAll(
        { ...lastConnect, inFlight: command.inFlight, timeoutMs: command.timeoutMs },
        (i, token) => firstMessage(token, since ? positions[i] : undefined),
      );
    }
    case 'churn-start':
      churn = new Churn(
        command.clients,
        command.localAddresses,
        command.dropEveryMs,
        command.reconnectDelayMs,
      );
      return null;
    case 'churn-stop':
      return churn ? churn.stop(command.timeoutMs) : 0;
    case 'churn-report': {
      const report = churn?.report() ?? [];
      churn = undefined;
      return report;
    }
  }
}

process.on('message', (request: Request) => {
  handle(request.command).then(
    (result) => process.send?.({ id: request.id, ok: true, result } satisfies Reply),
    (error: unknown) =>
      process.send?.({ id: request.id, ok: false, error: String(error) } satisfies Reply),
  );
});
process.on('disconnect', () => process.exit(0));
