import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type AuthOutcome = 'success' | 'failed' | 'unavailable' | 'timeout';
export type DropReason = 'invalid_event' | 'not_utf8' | 'slow_consumer';

/** Every metric sidecast exports, on a registry of its own so several servers can share a process. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sidecast_process_' });
  const registers = [registry];
  return {
    registry,
    connections: new Gauge({
      name: 'sidecast_connections',
      help: 'Open WebSocket connections.',
      registers,
    }),
    authentications: new Counter({
      name: 'sidecast_authentications_total',
      help: 'Authentications by outcome (success, failed, unavailable, timeout).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    eventsReceived: new Counter({
      name: 'sidecast_events_received_total',
      help: 'Events received from the bus.',
      registers,
    }),
    deliveries: new Counter({
      name: 'sidecast_events_delivered_total',
      help: 'Event frames handed to client sockets.',
      registers,
    }),
    dropped: new Counter({
      name: 'sidecast_events_dropped_total',
      help: 'Events or deliveries dropped, by reason (invalid_event, not_utf8, slow_consumer).',
      labelNames: ['reason'] as const,
      registers,
    }),
    slowConsumerCloses: new Counter({
      name: 'sidecast_slow_consumer_closes_total',
      help: 'Connections closed because their unsent data passed --max-buffered.',
      registers,
    }),
    refused: new Counter({
      name: 'sidecast_upgrades_refused_total',
      help: 'WebSocket upgrades refused before opening, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    busReconnects: new Counter({
      name: 'sidecast_bus_reconnects_total',
      help: 'Times the bus connection was restored.',
      registers,
    }),
    busOutages: new Counter({
      name: 'sidecast_bus_outages_total',
      help: 'Times the bus connection was lost.',
      registers,
    }),
    authSeconds: new Histogram({
      name: 'sidecast_auth_duration_seconds',
      help: 'Time from receiving a token to the end of authentication.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    sendSeconds: new Histogram({
      name: 'sidecast_publish_to_send_seconds',
      help: 'Time from an event reaching this process to its frame being written to every recipient socket.',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
