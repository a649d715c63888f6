/**
 * What the Node peers read from the environment the benchmark gives every server, and the
 * authenticator they share: sidecast's own django-sesame code, so that a peer differs from
 * sidecast in how it holds connections and fans out, not in how it checks a token.
 */
import {
  createSesameAuthenticator,
  type SesameAuthenticator,
} from '../../src/auth/sesame/authenticator.js';
import { loadDjangoSettings } from '../../src/config.js';

export interface PeerEnv {
  readonly host: string;
  readonly port: number;
  readonly redisUrl: string;
  readonly channel: string;
  readonly databaseUrl: string;
}

export function peerEnv(): PeerEnv {
  const required = (name: string): string => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
  };
  return {
    host: process.env.BENCH_HOST ?? '127.0.0.1',
    port: Number(required('BENCH_PORT')),
    redisUrl: required('BENCH_REDIS_URL'),
    channel: required('BENCH_CHANNEL'),
    databaseUrl: required('BENCH_DB_URL'),
  };
}

/** Same pool size as sidecast's default (16 concurrent authentications). */
export function peerAuthenticator(env: PeerEnv): Promise<SesameAuthenticator> {
  return createSesameAuthenticator({
    databaseUrl: env.databaseUrl,
    django: loadDjangoSettings(process.env),
    scope: '',
    poolSize: 16,
  });
}

/** The routing key of an event, as every peer reads it: parse the JSON, take content_type_id. */
export function contentTypeOf(payload: string): unknown {
  return (JSON.parse(payload) as { content_type_id?: unknown }).content_type_id;
}
