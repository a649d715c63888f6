/**
 * sidecast/client: the browser (and Node) client. This folder imports nothing outside itself, so
 * the compiled dist/client/index.js loads as a plain ES module in a page without a bundler.
 */
export {
  createClient,
  type ClientOptions,
  type ClientState,
  type SidecastClient,
  type SocketConstructor,
  type SocketLike,
  type StateChange,
} from './client.js';
export { type Position, type PositionStorage, type Welcome } from './protocol-v1.js';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
