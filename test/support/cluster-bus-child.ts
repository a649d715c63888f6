/**
 * A stand-in worker for the cluster bus tests, forked with an IPC channel: the test process
 * plays the primary. Commands arrive as { publish: PAYLOAD } or { control: MESSAGE }; what
 * happens is printed on stdout,
 * one JSON object per line, so it is seen even after the channel has gone.
 */
import { createClusterMemoryBus } from '../../src/bus/cluster-bus.js';
import { isSidecastError } from '../../src/errors.js';

const bus = createClusterMemoryBus(Number(process.env.ACK_TIMEOUT_MS ?? 5000));
function report(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function publish(payload: string): Promise<void> {
  return bus.publish(payload).then(
    () => report({ published: payload }),
    (error: unknown) =>
      report({
        failed: payload,
        code: isSidecastError(error) ? error.code : 'not a SidecastError',
        status: isSidecastError(error) ? error.status : undefined,
        message: error instanceof Error ? error.message : String(error),
      }),
  );
}

await bus.start((payload) => report({ delivered: payload }));
await bus.control.start((message) => report({ controlled: message }));
process.on('message', (message: unknown) => {
  if (typeof message !== 'object' || message === null) return;
  if ('publish' in message) void publish(String(message.publish));
  if ('control' in message) {
    const text = String(message.control);
    void bus.control.publish(text).then(() => report({ sent: text }));
  }
});
// Once the primary has gone, one more publish, then the end.
process.on('disconnect', () => {
  setTimeout(() => void publish('after the primary').then(() => process.exit(0)), 50);
});
report({ ready: true });
