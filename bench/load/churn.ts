/**
 * Connections that drop every few seconds and reconnect, as on a flaky network: each slot keeps
 * the events it received (by the publisher's sequence number) across its connections, and in
 * protocol v1 resumes after the last offset it received (or its last welcome's offset).
 */
import type { ChurnResult, ChurnSpec } from './protocol.js';
import { benchSeq, firstMessage, readV1Frame, type Position } from './v1.js';
import { RawClient, type ClientEvents } from './ws-client.js';

interface Slot {
  readonly spec: ChurnSpec;
  readonly localAddress: string | undefined;
  readonly seen: Set<number>;
  duplicates: number;
  connections: number;
  unrecovered: number;
  position: Position | undefined;
  /** The position sent with the current connection, if any. */
  sent: Position | undefined;
  client: RawClient | undefined;
  ready: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class Churn {
  readonly #slots: Slot[];
  readonly #bySocket = new Map<RawClient, Slot>();
  readonly #dropEveryMs: number;
  readonly #reconnectDelayMs: number;
  #stopping = false;
  readonly #events: ClientEvents;

  constructor(
    specs: readonly ChurnSpec[],
    localAddresses: readonly string[],
    dropEveryMs: number,
    reconnectDelayMs: number,
  ) {
    this.#dropEveryMs = dropEveryMs;
    this.#reconnectDelayMs = reconnectDelayMs;
    this.#slots = specs.map((spec, i) => ({
      spec,
      localAddress: localAddresses[i % localAddresses.length],
      seen: new Set<number>(),
      duplicates: 0,
      connections: 0,
      unrecovered: 0,
      position: undefined,
      sent: undefined,
      client: undefined,
      ready: false,
      timer: undefined,
    }));
    this.#events = {
      opened: (client) => {
        const slot = this.#bySocket.get(client);
        if (slot && client.protocol === 'ws') slot.ready = true;
      },
      message: (client, data, start, end) => {
        const slot = this.#bySocket.get(client);
        if (slot) this.#message(slot, client, data, start, end);
      },
      authenticated: () => undefined,
      closed: (client) => {
        const slot = this.#bySocket.get(client);
        this.#bySocket.delete(client);
        if (!slot || slot.client !== client) return;
        slot.client = undefined;
        slot.ready = false;
        // Dropped by the schedule or by the server: either way, back after the delay.
        slot.timer = setTimeout(() => this.#connect(slot), this.#stopping ? 0 : reconnectDelayMs);
      },
    };
    for (const slot of this.#slots) this.#connect(slot);
  }

  #message(slot: Slot, client: RawClient, data: Buffer, start: number, end: number): void {
    if (client.protocol === 'v1') {
      const frame = readV1Frame(data, start, end);
      if (frame.kind === 'welcome') {
        const { welcome } = frame;
        slot.ready = true;
        if (slot.sent && !welcome.recovered) slot.unrecovered++;
        // Recovered: the replay that follows moves the position; otherwise start at the welcome.
        if (!welcome.recovered) slot.position = { epoch: welcome.epoch, offset: welcome.offset };
        return;
      }
      if (frame.kind === 'event' && slot.position)
        slot.position = { epoch: slot.position.epoch, offset: frame.offset };
    }
    const seq = benchSeq(data, start, end);
    if (seq === 0) return;
    if (slot.seen.has(seq)) slot.duplicates++;
    else slot.seen.add(seq);
  }

  #connect(slot: Slot): void {
    slot.timer = undefined;
    const { target, token } = slot.spec;
    const client = new RawClient(
      slot.spec.user,
      { ...target, ...(slot.localAddress ? { localAddress: slot.localAddress } : {}) },
      token,
      this.#events,
    );
    slot.sent = target.protocol === 'v1' ? slot.position : undefined;
    if (target.protocol === 'v1') client.firstMessage = firstMessage(token, slot.sent);
    slot.client = client;
    slot.connections++;
    this.#bySocket.set(client, slot);
    if (this.#stopping) return;
    // The next drop: about every dropEveryMs (±25%), the first one at a random point.
    const first = slot.connections === 1;
    const delay = first
      ? Math.random() * this.#dropEveryMs
      : this.#dropEveryMs * (0.75 + Math.random() * 0.5) - this.#reconnectDelayMs;
    slot.timer = setTimeout(() => slot.client?.destroy(), Math.max(50, delay));
  }

  get ready(): number {
    return this.#slots.filter((slot) => slot.ready).length;
  }

  /** Stops the drops; resolves once every slot is connected (v1: welcomed). */
  async stop(timeoutMs: number): Promise<number> {
    this.#stopping = true;
    for (const slot of this.#slots) {
      if (slot.timer && slot.client) {
        clearTimeout(slot.timer);
        slot.timer = undefined;
      }
    }
    const deadline = Date.now() + timeoutMs;
    while (this.ready < this.#slots.length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    return this.ready;
  }

  report(): ChurnResult[] {
    this.#stopping = true;
    const results = this.#slots.map((slot) => {
      if (slot.timer) clearTimeout(slot.timer);
      const client = slot.client;
      slot.client = undefined;
      client?.destroy();
      return {
        group: slot.spec.group,
        user: slot.spec.user,
        seqs: [...slot.seen],
        duplicates: slot.duplicates,
        connections: slot.connections,
        unrecovered: slot.unrecovered,
      };
    });
    return results;
  }
}
