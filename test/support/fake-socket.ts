/**
 * A WebSocket stand-in for the client's unit tests, driven by the test: it records what the client
 * does (the URL, the subprotocols offered, what it sent, how it closed) and plays the server.
 */
export interface FakeEvent {
  data: unknown;
  code: number;
  reason: string;
}
export type Listener = (event: FakeEvent) => void;

export class FakeSocket {
  static all: FakeSocket[] = [];
  readonly sent: string[] = [];
  readonly protocols: unknown[];
  closedByClient: number | undefined;
  readonly #listeners = new Map<string, Listener[]>();

  constructor(
    readonly url: string,
    ...protocols: unknown[]
  ) {
    this.protocols = protocols;
    FakeSocket.all.push(this);
  }

  addEventListener(type: string, listener: Listener): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
  }

  send(data: string): void {
    this.sent.push(data);
  }

  close(code?: number): void {
    this.closedByClient = code;
  }

  #emit(type: string, event: Partial<FakeEvent> = {}): void {
    const full = { data: undefined, code: 0, reason: '', ...event };
    for (const listener of this.#listeners.get(type) ?? []) listener(full);
  }

  open(): void {
    this.#emit('open');
  }

  message(data: unknown): void {
    this.#emit('message', { data });
  }

  end(code: number, reason = ''): void {
    this.#emit('close', { code, reason });
  }

  /** The connection cannot be made at all: an error, then close 1006. */
  refuse(): void {
    this.#emit('error');
    this.#emit('close', { code: 1006, reason: '' });
  }

  /** What the client sent first, parsed: the v1 hello. */
  hello(): unknown {
    return JSON.parse(this.sent[0]!);
  }

  welcome(fields: Record<string, unknown> = {}): void {
    this.message(
      JSON.stringify({
        type: 'welcome',
        epoch: 'e1',
        offset: '0-0',
        recoverable: true,
        recovered: false,
        replayed: 0,
        ...fields,
      }),
    );
  }

  /** An event frame laid out as sidecast writes it: the payload's text spliced in verbatim. */
  event(offset: string, payload: string): void {
    this.message(`{"type":"event","offset":${JSON.stringify(offset)},"event":${payload}}`);
  }
}
