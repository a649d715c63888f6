/**
 * A process that reads one bus the way a sidecast instance does (the driver of the registry,
 * started, told its interest) and only counts: messages and payload bytes. bench/buses.ts forks
 * several, on a core of their own, and asks each for its counts over IPC; what a bus costs an
 * instance is this process's CPU.
 */
import { createBus, type BusOptions } from '../../src/bus/create-bus.js';

interface Start {
  readonly options: BusOptions;
  /** Content types to subscribe to on a bus that routes by interest. */
  readonly interest: readonly number[];
}

const start = JSON.parse(process.argv[2]!) as Start;
let messages = 0;
let bytes = 0;
const bus = createBus(start.options);
await bus.start(
  (payload) => {
    messages++;
    bytes += Buffer.byteLength(payload);
  },
  { failFast: true },
);
bus.setInterest?.(new Set(start.interest));

process.on('message', (message: string) => {
  if (message === 'counts') process.send!({ messages, bytes });
  if (message === 'reset') {
    messages = 0;
    bytes = 0;
    process.send!({ messages, bytes });
  }
  if (message === 'stop') void bus.close().then(() => process.exit(0));
});
process.send!('ready');
