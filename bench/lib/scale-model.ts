/**
 * The scale model of bench/SCALE.md, computed from what bench/buses.ts measured in the same run,
 * so that the model's figures always follow the measurements. Every assumption is a named
 * constant here and a line of the document.
 */

/** What the model needs from the run, per bus: CPU per delivered message at the broker, and per
 * message received at the instance (µs, medians of the run). */
export interface Measured {
  readonly brokerMicros: {
    readonly redis: number;
    readonly redisCluster: number;
    readonly nats: number;
  };
  /** NATS's CPU per event with one subscriber (µs): intake and one delivery, an upper bound on intake. */
  readonly natsIntakeMicros: number;
  readonly readerMicros: {
    readonly redis: number;
    readonly redisCluster: number;
    readonly nats: number;
  };
  /** Per-instance payload bytes, routed over broadcast, in the interest bench. */
  readonly routedShare: { readonly nats: number; readonly redisCluster: number };
}

const INSTANCES = 10_000;
const CLIENTS_PER_INSTANCE = 10_000;
/** Payload of an event: the guide's LogEntry events measure about 330 bytes (bench/RESULTS.md). */
const PAYLOAD_BYTES = 330;
/** Framing per delivered message (NATS `MSG subject sid len`, RESP `smessage channel payload`). */
const FRAMING_BYTES = 40;
/** Fan-out capacity of one sidecast core at 10,000 clients (bench/RESULTS.md, deliveries/s). */
const FANOUT_PER_CORE = 1_378_227;
/** How busy a broker node's cores and network may run before it counts as full. */
const TARGET_UTILISATION = 0.7;
/** A broker node: cores usable by the broker, and its network (bytes/s, 10 Gbit/s). */
const REDIS_CORES = 1; // Redis executes commands and pub/sub delivery on one thread.
const NATS_CORES = 8;
const NIC_BYTES_PER_SECOND = 1.25e9;

const EVENT_RATES = [10, 100, 1000] as const;
/** Share of the content types an instance must subscribe to. */
const INTEREST_SHARES = [1, 0.5, 0.1, 0.01] as const;

function fmt(value: number): string {
  if (value >= 1e9) return `${(value / 1e9).toFixed(1)} G`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)} M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)} k`;
  return `${value.toFixed(value < 10 ? 1 : 0)} `;
}

function nodesFor(
  deliveries: number,
  bytes: number,
  microsPerDelivery: number,
  cores: number,
): number {
  const byCpu = (deliveries * microsPerDelivery) / 1e6 / (cores * TARGET_UTILISATION);
  const byNic = bytes / (NIC_BYTES_PER_SECOND * TARGET_UTILISATION);
  return Math.max(1, Math.ceil(Math.max(byCpu, byNic)));
}

export function renderScale(measured: Measured, source: string): string {
  const wire = PAYLOAD_BYTES + FRAMING_BYTES;
  const redisCap = (REDIS_CORES * TARGET_UTILISATION * 1e6) / measured.brokerMicros.redis;
  // Conservative: the cluster's figure sums every process's CPU (masters and replicas) per delivery.
  const masterCap = (REDIS_CORES * TARGET_UTILISATION * 1e6) / measured.brokerMicros.redisCluster;
  const lines: string[] = [
    '# Scale model: a hundred million clients',
    '',
    `Computed by \`bench/buses.ts\` from the figures it measured in the same run (${source}); rerun it to refresh both. The question: what serving 100 million clients, 10,000 instances of 10,000 clients, takes from the bus, for a given event rate and permission spread, and where each design stops.`,
    '',
    '## Assumptions',
    '',
    `- ${INSTANCES.toLocaleString('en')} sidecast instances of ${CLIENTS_PER_INSTANCE.toLocaleString('en')} clients (one core each, as measured in bench/RESULTS.md).`,
    `- An event is ${PAYLOAD_BYTES} bytes of payload (the guide's LogEntry events), plus about ${FRAMING_BYTES} bytes of framing per delivered message (NATS \`MSG\`, RESP \`smessage\`); TCP/IP overhead is left out (it adds a few percent at these sizes, batched).`,
    `- Broker CPU per delivered message, measured here with four subscribers on loopback (bench/BUSES.md, broadcast runs: the broker's CPU over the messages it delivered, each event's intake spread over its four deliveries, so an upper bound for a delivery): Redis pub/sub ${measured.brokerMicros.redis.toFixed(2)} µs, Redis Cluster sharded pub/sub ${measured.brokerMicros.redisCluster.toFixed(2)} µs (all six processes: a replica receives every sharded message too), NATS ${measured.brokerMicros.nats.toFixed(2)} µs; NATS spends at most ${measured.natsIntakeMicros.toFixed(1)} µs taking in a published event (its CPU per event with one subscriber, which includes that one delivery). A delivery costs the broker about the same for 4 or 10,000 subscribers (one write to each subscriber's socket buffer); this is the assumption the model rests on most, and it holds only while subscribers read as fast as the broker writes.`,
    `- A broker node runs at most ${TARGET_UTILISATION * 100}% busy: a Redis node has ${REDIS_CORES} core for pub/sub (Redis delivers on its main thread), a NATS node ${NATS_CORES} cores (nats-server delivers on many goroutines; linear scaling is assumed, not measured: this machine has 2 cores), and each has a 10 Gbit/s network (1.25 GB/s).`,
    `- Instance side, per event received from the bus: ${measured.readerMicros.redis.toFixed(1)} µs (Redis), ${measured.readerMicros.redisCluster.toFixed(1)} µs (Redis Cluster), ${measured.readerMicros.nats.toFixed(1)} µs (NATS) of CPU to read and decode, measured; then fan-out, at most ${FANOUT_PER_CORE.toLocaleString('en')} deliveries/s per core at 10,000 clients (bench/RESULTS.md), whatever the bus.`,
    `- The interest share p: the fraction of all events an instance must receive, that is, of content types some client of its own may see, weighted by their traffic. With users placed on instances at random, a content type that a fraction s of users may see is wanted by an instance unless none of its 10,000 clients sees it, which happens with probability (1 − s)^10,000: for s = 1% that is 4 × 10⁻⁴⁴, for s = 0.01% (10,000 users) it is 37%. **Interest routing only saves anything when p is well below 1: content types seen by few users each (per-tenant or per-object types), or users placed on instances by what they see (a tenant's users on the same instances).** The interest bench measured p = ${measured.routedShare.nats.toFixed(2)} (NATS) and ${measured.routedShare.redisCluster.toFixed(2)} (Redis Cluster) for instances seeing half the content types each: routing delivers exactly the wanted share.`,
    '',
    '## What the instances need, whatever the bus',
    '',
    'Fan-out bounds the event rate before any bus does: an event that a share s of clients may see costs an instance s × 10,000 deliveries.',
    '',
    '| permission spread s (share of clients that may see an event) | deliveries/s per instance at E events/s | E at which one instance core is full |',
    '| --- | --- | --- |',
  ];
  for (const spread of [0.37, 0.1, 0.01, 0.001]) {
    lines.push(
      `| ${spread} | ${fmt(spread * CLIENTS_PER_INSTANCE)} × E | ${fmt(FANOUT_PER_CORE / (spread * CLIENTS_PER_INSTANCE))} events/s |`,
    );
  }
  lines.push(
    '',
    "At the benchmark's spread (37%), one core per 10,000 clients carries about 370 events/s; higher rates need more cores per 10,000 clients (more instances, or `--workers`), which multiplies what the bus must deliver.",
    '',
    '## What the bus must deliver',
    '',
    'Deliveries/s from the broker = instances × p × E. Bytes/s = deliveries × ' +
      `${wire} bytes. Per instance: p × E events/s and p × E × ${wire} bytes/s, and its bus CPU is p × E × the reader's µs per event.`,
    '',
    `(At E = 1000, one core per 10,000 clients keeps up only if an event reaches at most ${((FANOUT_PER_CORE / 1000 / CLIENTS_PER_INSTANCE) * 100).toFixed(0)}% of clients; above that the instance count, and with it every figure below, grows in proportion.)`,
    '',
    '| E (events/s published) | p | broker deliveries/s | broker egress bytes/s | per instance: events/s | per instance: bytes/s | per instance: bus CPU (NATS) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const rate of EVENT_RATES) {
    for (const share of INTEREST_SHARES) {
      const deliveries = INSTANCES * share * rate;
      lines.push(
        `| ${rate} | ${share} | ${fmt(deliveries)} | ${fmt(deliveries * wire)}B/s | ${fmt(share * rate)} | ${fmt(share * rate * wire)}B/s | ${((share * rate * measured.readerMicros.nats) / 1e4).toFixed(2)}% of a core |`,
      );
    }
  }
  lines.push(
    '',
    '## Broker nodes each design needs',
    '',
    `Nodes = the larger of CPU (deliveries × µs per delivery ÷ (cores × ${TARGET_UTILISATION})) and network (egress ÷ (1.25 GB/s × ${TARGET_UTILISATION})), per design. "one Redis" is a single node by definition: where it needs more than one it has stopped.`,
    '',
    '| E | p | one Redis (pub/sub, p is always 1) | Redis Cluster masters | NATS servers | bytes/s per Redis Cluster master | bytes/s per NATS server |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const rate of EVENT_RATES) {
    const broadcast = INSTANCES * rate;
    const oneRedis = nodesFor(
      broadcast,
      broadcast * wire,
      measured.brokerMicros.redis,
      REDIS_CORES,
    );
    for (const share of INTEREST_SHARES) {
      const deliveries = INSTANCES * share * rate;
      const masters = nodesFor(
        deliveries,
        deliveries * wire,
        measured.brokerMicros.redisCluster,
        REDIS_CORES,
      );
      const servers = nodesFor(
        deliveries,
        deliveries * wire,
        measured.brokerMicros.nats,
        NATS_CORES,
      );
      lines.push(
        `| ${rate} | ${share} | ${oneRedis === 1 ? 'fits' : `**stops** (needs ${oneRedis}× one node)`} | ${masters} | ${servers} | ${fmt((deliveries * wire) / masters)}B/s | ${fmt((deliveries * wire) / servers)}B/s |`,
      );
    }
  }
  const redisMaxRate = redisCap / INSTANCES;
  lines.push(
    '',
    '## Where each design stops',
    '',
    `- **One Redis (pub/sub, \`--bus redis\`).** Every event goes to every instance: ${INSTANCES.toLocaleString('en')} × E deliveries/s on one thread. Measured cost ${measured.brokerMicros.redis.toFixed(2)} µs per delivery gives about ${fmt(redisCap)} deliveries/s at ${TARGET_UTILISATION * 100}%, so at 10,000 instances it stops at about **${redisMaxRate.toFixed(1)} events/s** in total, whatever the permissions. Interest cannot help: a pub/sub channel has no notion of it.`,
    `- **Redis Cluster (sharded pub/sub, \`--bus redis-cluster\`).** Each content type's channel lives on one master, so deliveries spread over masters in proportion to the content types they hold, and each instance receives p × E. (Its figures here are pessimistic: the measured CPU per delivery counts the replicas' processes too, which in production run on nodes of their own, and sharded pub/sub on this machine cost ${(measured.brokerMicros.redisCluster / measured.brokerMicros.redis).toFixed(1)}× what one Redis's pub/sub did per delivery.) It stops in two places. A hot content type: all its deliveries (its subscribers × its rate) land on one master, ${fmt(masterCap)} deliveries/s at most: a content type every instance wants caps at about ${(masterCap / INSTANCES).toFixed(1)} events/s, however many masters there are. And the subscriber connections: each instance holds one connection per master it subscribes on, so 10,000 instances × M masters connections (at M = 100, a million connections, 10,000 per master: fine for Redis, but every failover re-subscribes 10,000 clients at once). Adding masters works while traffic is spread over many content types; it does nothing for one busy type.`,
    `- **NATS cluster (\`--bus nats\`).** Interest is per subject across the cluster: a server forwards a message over a route only to servers with a subscriber for it, and delivers it only to those subscribers. Each instance connects to one server, so a server delivers (10,000 / M) × p × E. It stops where every server receives every event anyway: with 10,000 instances spread over M servers, almost every server has some instance wanting each content type, so each server ingests about E messages/s from routes, and a full mesh of M servers forwards each message up to M − 1 times from the server it was published on. Taking the measured bound on intake, ${measured.natsIntakeMicros.toFixed(1)} µs per message, as the cost of a message received over a route, an ${NATS_CORES}-core server at ${TARGET_UTILISATION * 100}% takes in about ${fmt((NATS_CORES * TARGET_UTILISATION * 1e6) / measured.natsIntakeMicros)} messages/s, which bounds E from the ingest side, and the publishing server's route fan-out (E × (M − 1)) bounds it sooner: past a few dozen servers, a supercluster of smaller clusters joined by gateways (interest-only across gateways) or leaf nodes per rack keeps each server's ingest to the events its own instances want.`,
    `- **With JetStream (\`--bus nats-jetstream\`).** Every instance reads the whole stream (p = 1 by design: a client's position is a place in one ordered stream), so the bus delivers 10,000 × E messages like one Redis does, spread over the cluster's servers; the stream itself is written once per event on R replicas. It scales past one Redis by the number of servers, not by interest. For history at 10,000 instances and high rates, one stream per group of content types (and a client's position per stream) would be the next step; it is not built.`,
    '',
    'What the model leaves out: the cost of subscribe and unsubscribe churn (bounded by `--interest-hold`: at most one subscribe and one unsubscribe per content type per instance per hold period), slow-consumer handling in the brokers (a subscriber that cannot keep up is cut off by NATS and buffered, then disconnected, by Redis `client-output-buffer-limit pubsub`), cross-zone network cost, and publish-side load (one message per event, small beside the deliveries).',
    '',
  );
  return lines.join('\n');
}
