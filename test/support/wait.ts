/**
 * The one way tests wait for something the code under test does asynchronously (a connection to
 * be authenticated, a client to leave, bytes to arrive on a channel, an endpoint to answer): poll
 * a condition, and fail naming what was awaited instead of hanging until the runner's timeout.
 */

/**
 * Polls `condition` every `everyMs` until it holds; rejects after `timeoutMs`, naming `what` it
 * waited for (a function is called then, to tell what had arrived by that time). An asynchronous
 * condition (an HTTP probe) is awaited before the next poll, so slow answers never pile up.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what: string | (() => string) = 'condition',
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await new Promise((wake) => setTimeout(wake, everyMs));
  }
}
