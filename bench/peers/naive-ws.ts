/**
 * The naive baseline: a plain `ws` server with its defaults. It authenticates the first message,
 * keeps each connection's set of content type ids, and for every Redis event loops over all
 * connections calling `send` on those allowed to see it, the way most hand-written servers start.
 */
import { Redis } from 'ioredis';
import WebSocket, { WebSocketServer } from 'ws';
import { contentTypeOf, peerAuthenticator, peerEnv } from './peer-env.js';

const env = peerEnv();
const authenticator = await peerAuthenticator(env);
const connections = new Map<WebSocket, ReadonlySet<number>>();

const server = new WebSocketServer({ host: env.host, port: env.port });
server.on('connection', (ws) => {
  ws.on('error', () => undefined);
  ws.on('close', () => connections.delete(ws));
  ws.once('message', (data) => {
    // No upgrade headers: the sesame authenticator reads the token only, and holding them
    // would add to every idle connection's memory.
    authenticator.authenticate({ token: String(data), headers: {} }).then(
      (principal) => {
        if (ws.readyState === WebSocket.OPEN) connections.set(ws, principal.contentTypeIds);
      },
      () => ws.close(1011, 'authentication failed'),
    );
  });
});

const subscriber = new Redis(env.redisUrl);
await subscriber.subscribe(env.channel);
subscriber.on('message', (_channel: string, payload: string) => {
  const id = contentTypeOf(payload);
  for (const [ws, ids] of connections) if (ids.has(id as number)) ws.send(payload);
});
