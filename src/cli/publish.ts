import { createInterface } from 'node:readline';
import { BUS_DRIVERS, BUS_OPTIONS, busDriver, createBus } from '../bus/create-bus.js';
import { publishEvents } from '../bus/publish.js';
import { formatHelp, parseArgs, type Env } from '../config.js';
import { isSidecastError, SidecastError } from '../errors.js';
import { assertPublishable } from '../event.js';

const NAMES = [...BUS_OPTIONS, 'max-event-bytes'] as const;
const USAGE = 'sidecast publish [OPTIONS] EVENT | -';
const SUMMARY =
  'Publishes events on the bus, as Django does: EVENT is one JSON object with an integer content_type_id; "-" reads one event per line from standard input (blank lines are skipped). Every event is checked before the first one is sent, so a bad line publishes nothing.';
const NOTES = [
  'The memory bus only exists inside one sidecast process, so this command refuses --bus memory;',
  'to publish to such a server, POST the events to its /publish endpoint (see SIDECAST_PUBLISH_KEY).',
];

interface NumberedEvent {
  /** "line 3: " for standard input, "" for the argument; prefixes error messages. */
  readonly where: string;
  readonly payload: string;
}

async function readStdinEvents(): Promise<NumberedEvent[]> {
  const events: NumberedEvent[] = [];
  let line = 0;
  for await (const text of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    line++;
    if (text.trim() !== '') events.push({ where: `line ${line}: `, payload: text });
  }
  return events;
}

function validate(events: readonly NumberedEvent[], maxEventBytes: number): void {
  for (const { where, payload } of events) {
    try {
      assertPublishable(payload, maxEventBytes);
    } catch (error) {
      if (!isSidecastError(error)) throw error;
      throw new SidecastError(error.kind, `${where}${error.message}; nothing was published`);
    }
  }
}

/** A bus whose events reach only its own process would lose them when this one exits. */
function refuseLocalBus(kind: string): SidecastError {
  const shared = BUS_DRIVERS.filter((driver) => !driver.local).map(
    (driver) => `the ${driver.kind} bus`,
  );
  return new SidecastError(
    'CONFIG_INVALID',
    `--bus ${kind} only reaches the process that publishes, and this one is about to exit; publish on ${shared.join(' or ')}, or POST the events to the server's /publish endpoint (enabled by SIDECAST_PUBLISH_KEY)`,
  );
}

export async function publish(argv: readonly string[], env: Env): Promise<number> {
  const args = parseArgs(NAMES, argv, env);
  if (args.help) {
    process.stdout.write(formatHelp(USAGE, SUMMARY, NAMES, {}, NOTES));
    return 0;
  }
  const { options } = args;
  if (busDriver(options.bus).local) throw refuseLocalBus(options.bus);
  const [source, ...rest] = args.positionals;
  if (source === undefined)
    throw new SidecastError('CONFIG_INVALID', `missing EVENT (usage: ${USAGE})`);
  if (rest.length > 0)
    throw new SidecastError('CONFIG_INVALID', `unexpected argument "${rest[0]}"`);

  const events = source === '-' ? await readStdinEvents() : [{ where: '', payload: source }];
  if (events.length === 0)
    throw new SidecastError('EVENT_INVALID', 'no events on standard input; nothing was published');
  validate(events, options.maxEventBytes);

  const bus = createBus(options);
  try {
    // On a failure its message says how many went out, so the publisher knows what to send again.
    await publishEvents(
      bus,
      events.map(({ payload }) => payload),
    );
  } finally {
    await bus.close();
  }
  const count = events.length === 1 ? '1 event' : `${events.length} events`;
  process.stdout.write(`Published ${count} to ${bus.describe()}.\n`);
  return 0;
}
