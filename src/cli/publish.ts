import { createInterface } from 'node:readline';
import { createBus } from '../bus/create-bus.js';
import { formatHelp, parseArgs, type Env } from '../config.js';
import { isSidecastError, SidecastError } from '../errors.js';
import { assertPublishable } from '../event.js';
import { redactUrl } from '../log.js';

const NAMES = ['bus', 'redis', 'channel', 'max-event-bytes'] as const;
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

/** Names how far a failed run got, so the publisher knows which events to send again. */
function busError(where: string, error: unknown, published: number, total: number): SidecastError {
  const progress = total > 1 ? ` (${published} of ${total} events were published)` : '';
  if (isSidecastError(error))
    return new SidecastError(error.kind, `${error.message}${progress}`, { cause: error });
  const detail = error instanceof Error ? error.message : String(error);
  return new SidecastError(
    'BUS_UNAVAILABLE',
    `cannot publish to Redis at ${where}: ${detail}${progress}`,
    { cause: error },
  );
}

export async function publish(argv: readonly string[], env: Env): Promise<number> {
  const args = parseArgs(NAMES, argv, env);
  if (args.help) {
    process.stdout.write(formatHelp(USAGE, SUMMARY, NAMES, {}, NOTES));
    return 0;
  }
  const { options } = args;
  if (options.bus === 'memory') {
    throw new SidecastError(
      'CONFIG_INVALID',
      "--bus memory only reaches the process that publishes, and this one is about to exit; publish on the redis bus, or POST the events to the server's /publish endpoint (enabled by SIDECAST_PUBLISH_KEY)",
    );
  }
  const [source, ...rest] = args.positionals;
  if (source === undefined)
    throw new SidecastError('CONFIG_INVALID', `missing EVENT (usage: ${USAGE})`);
  if (rest.length > 0)
    throw new SidecastError('CONFIG_INVALID', `unexpected argument "${rest[0]}"`);

  const events = source === '-' ? await readStdinEvents() : [{ where: '', payload: source }];
  if (events.length === 0)
    throw new SidecastError('EVENT_INVALID', 'no events on standard input; nothing was published');
  validate(events, options.maxEventBytes);

  const where = redactUrl(options.redis);
  const bus = createBus(options);
  let published = 0;
  try {
    for (const { payload } of events) {
      await bus.publish(payload);
      published++;
    }
  } catch (error) {
    throw busError(where, error, published, events.length);
  } finally {
    await bus.close();
  }
  const count = events.length === 1 ? '1 event' : `${events.length} events`;
  process.stdout.write(`Published ${count} on channel "${options.channel}" at ${where}.\n`);
  return 0;
}
