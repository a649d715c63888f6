import { setTimeout as sleep } from 'node:timers/promises';
import type WebSocket from 'ws';

export interface DeliveryReport {
  readonly sent: number;
  readonly received: number;
  /** Milliseconds from each event's planned send time to its arrival, sorted. */
  readonly latencies: readonly number[];
  readonly worstMs: number;
}

/**
 * Publishes an event every `intervalMs` for `durationMs` and measures, at `ws`, how late each one
 * arrives relative to when it was planned. Measuring from the plan rather than from the publish
 * call matters when server and test share a process: an event loop blocked by an attack delays
 * the publisher's timer too, and that delay must count.
 */
export async function measureDelivery(
  ws: WebSocket,
  publish: (payload: string) => Promise<unknown>,
  options: { contentTypeId: number; durationMs: number; intervalMs: number; settleMs?: number },
): Promise<DeliveryReport> {
  const marker = Math.random().toString(36).slice(2);
  const latencies: number[] = [];
  const onMessage = (data: Buffer) => {
    const event = JSON.parse(data.toString()) as { marker?: string; plannedAt?: number };
    if (event.marker === marker && event.plannedAt !== undefined)
      latencies.push(Date.now() - event.plannedAt);
  };
  ws.on('message', onMessage);
  const start = Date.now();
  let sent = 0;
  try {
    for (let plannedAt = start; plannedAt < start + options.durationMs;) {
      const wait = plannedAt - Date.now();
      if (wait > 0) await sleep(wait);
      await publish(
        JSON.stringify({ content_type_id: options.contentTypeId, marker, seq: sent, plannedAt }),
      );
      sent++;
      plannedAt += options.intervalMs;
    }
    // The last events need time to arrive; late ones still count as late, not as lost.
    const deadline = Date.now() + (options.settleMs ?? 5000);
    while (latencies.length < sent && Date.now() < deadline) await sleep(10);
  } finally {
    ws.off('message', onMessage);
  }
  latencies.sort((a, b) => a - b);
  return { sent, received: latencies.length, latencies, worstMs: latencies.at(-1) ?? Infinity };
}

/** Runs `attack` in `parallel` loops until `stop` resolves; returns how many rounds ran. */
export async function loopUntil(
  stop: Promise<unknown>,
  parallel: number,
  attack: () => Promise<unknown>,
): Promise<number> {
  let done = false;
  void stop.finally(() => (done = true));
  let rounds = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (!done) {
        await attack();
        rounds++;
      }
    }),
  );
  return rounds;
}

/** One line for t.diagnostic: how many attack rounds ran and how late the events were. */
export function describeReport(report: DeliveryReport, rounds: number, what: string): string {
  const at = (q: number) => report.latencies[Math.floor(q * (report.latencies.length - 1))] ?? NaN;
  return `${rounds} ${what}; ${report.received}/${report.sent} events, latency p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, worst ${report.worstMs} ms`;
}
