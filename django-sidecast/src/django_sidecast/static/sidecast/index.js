/**
 * sidecast/client: the browser (and Node) client. This folder imports nothing outside itself, so
 * the compiled dist/client/index.js loads as a plain ES module in a page without a bundler.
 */
export { createClient, } from './client.js';
export { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
//# sourceMappingURL=index.js.map