export {
  startSidecast,
  SERVE_OPTIONS,
  type Sidecast,
  type StartOptions,
  type ServeOptions,
} from './app.js';
export { parseArgs, optionsFrom, loadDjangoSettings, OPTIONS, type Env } from './config.js';
export {
  SidecastError,
  isSidecastError,
  CloseCodes,
  AUTH_FAILED_REASON,
  ERRORS,
  type ErrorCode,
  type ErrorKind,
} from './errors.js';
export type { Authenticator, Credential, Principal } from './auth/authenticator.js';
export type { Bus, BusHandler, BusHistory, StreamPosition } from './bus/bus.js';
export { createBus } from './bus/create-bus.js';
export { createMemoryBus } from './bus/memory-bus.js';
export type { DjangoSettings } from './django/settings.js';
export type { DjangoSesameSettings, SesameSettings } from './auth/sesame/settings.js';
