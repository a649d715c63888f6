/**
 * The Socket.IO peer, set up the usual way for several nodes: the Redis adapter, one room per
 * content type joined at connection, authentication in a middleware reading the handshake's
 * `auth.token`. Each process subscribes to the events channel itself (like every sidecast worker)
 * and emits to the room on its own sockets; `local` keeps the adapter from relaying an event
 * every other node has already received from Redis.
 */
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { contentTypeOf, peerAuthenticator, peerEnv } from './peer-env.js';

const env = peerEnv();
const authenticator = await peerAuthenticator(env);

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false });
const publisher = new Redis(env.redisUrl);
const adapterSubscriber = publisher.duplicate();
io.adapter(createAdapter(publisher, adapterSubscriber));

io.use((socket, next) => {
  const token = (socket.handshake.auth as { token?: unknown }).token;
  authenticator
    .authenticate({ token: String(token ?? ''), headers: socket.handshake.headers })
    .then(
      (principal) => {
        socket.data.contentTypeIds = principal.contentTypeIds;
        next();
      },
      () => next(new Error('authentication failed')),
    );
});
io.on('connection', (socket) => {
  const ids = socket.data.contentTypeIds as ReadonlySet<number>;
  void socket.join([...ids].map((id) => `ct:${id}`));
});

const events = new Redis(env.redisUrl);
await events.subscribe(env.channel);
events.on('message', (_channel: string, payload: string) => {
  io.local.to(`ct:${String(contentTypeOf(payload))}`).emit('event', payload);
});
http.listen(env.port, env.host);
