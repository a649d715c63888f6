import type { ClientRequest, IncomingMessage } from 'node:http';
import WebSocket, { type RawData } from 'ws';
import { DJANGO_ENV_NOTES, formatHelp, parseArgs, type CommandFlag, type Env } from '../config.js';
import { SidecastError } from '../errors.js';
import { describeClose } from './close-names.js';
import { DJANGO_TOKEN_OPTIONS, mintDjangoToken } from './django-token.js';
import { createLineConsole, type LineConsole } from './line-console.js';

const USAGE = 'sidecast connect [OPTIONS] URL';
const SUMMARY =
  'An interactive WebSocket client, like "python -m websockets URL" in the Django guide: each line you type is sent as a text message (the first one is your token), each message received is printed as "< MESSAGE". Ctrl-D or end of input closes the connection with 1000. With piped input there is no prompt, so scripts can use it. Exit code 0 after a 1000 close, 1 after any other close or failure.';

const FLAGS: Record<string, CommandFlag> = {
  token: {
    description: 'Send TOKEN as the first message.',
    valueName: 'TOKEN',
    defaultLabel: 'none: type it',
  },
  as: {
    description:
      'Mint a fresh django-sesame token for USERNAME from the Django database (same settings as serve) and send it as the first message.',
    valueName: 'USERNAME',
    defaultLabel: 'none',
  },
};

/** Long enough for a slow server, short enough that a black-holed address does not hang a script. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SidecastError('CONFIG_INVALID', `malformed URL "${raw}": expected ws://HOST:PORT/`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new SidecastError(
      'CONFIG_INVALID',
      `malformed URL "${raw}": expected a ws:// or wss:// URL`,
    );
  }
  return url;
}

function describeError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code && !error.message.includes(code) ? `${code} ${error.message}` : error.message;
}

/** Opens the connection; every way a handshake can fail becomes one SidecastError. */
function open(url: URL): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      perMessageDeflate: false,
    });
    const settle = () => {
      ws.off('unexpected-response', onRefused);
      ws.off('error', onError);
      ws.off('open', onOpen);
    };
    const fail = (message: string) => {
      settle();
      ws.on('error', () => undefined); // terminate() during the handshake reports an abort
      ws.terminate();
      reject(new SidecastError('CLIENT_ERROR', message));
    };
    const onRefused = (_request: ClientRequest, response: IncomingMessage) =>
      fail(`server refused the WebSocket handshake: HTTP ${response.statusCode ?? '?'}`);
    const onError = (error: Error) =>
      fail(`cannot connect to ${url.href}: ${describeError(error)}`);
    const onOpen = () => {
      settle();
      resolve(ws);
    };
    ws.on('unexpected-response', onRefused);
    ws.on('error', onError);
    ws.on('open', onOpen);
  });
}

function show(data: RawData, isBinary: boolean): string {
  const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
  return isBinary ? `(binary) ${bytes.toString('hex')}` : bytes.toString('utf8');
}

/** Runs one session until the connection closes; resolves to the exit code. */
function session(ws: WebSocket, terminal: LineConsole, firstMessage?: string): Promise<number> {
  return new Promise((resolve) => {
    ws.on('message', (data, isBinary) => terminal.print(`< ${show(data, isBinary)}`));
    ws.on('error', (error) => process.stderr.write(`sidecast: ${describeError(error)}\n`));
    ws.on('close', (code, reason) => {
      terminal.finish(`Connection closed: ${describeClose(code, reason.toString('utf8'))}.`);
      resolve(code === 1000 ? 0 : 1);
    });
    if (firstMessage !== undefined) ws.send(firstMessage);
    terminal.start({
      onLine: (line) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(line);
      },
      onEnd: () => {
        // A second Ctrl-C does not wait for a server that never answers the close.
        if (ws.readyState === WebSocket.OPEN) ws.close(1000);
        else if (ws.readyState === WebSocket.CLOSING) ws.terminate();
      },
    });
  });
}

export async function connect(argv: readonly string[], env: Env): Promise<number> {
  const args = parseArgs(DJANGO_TOKEN_OPTIONS, argv, env, FLAGS);
  if (args.help) {
    process.stdout.write(
      formatHelp(USAGE, SUMMARY, DJANGO_TOKEN_OPTIONS, FLAGS, [
        '--django-db, --scope and the Django settings below are only read with --as.',
        '',
        ...DJANGO_ENV_NOTES,
      ]),
    );
    return 0;
  }
  const [raw, ...rest] = args.positionals;
  if (raw === undefined) throw new SidecastError('CONFIG_INVALID', `missing URL (usage: ${USAGE})`);
  if (rest.length > 0)
    throw new SidecastError('CONFIG_INVALID', `unexpected argument "${rest[0]}"`);
  const url = parseUrl(raw);
  const { token, as: username } = args.extra;
  if (token !== undefined && username !== undefined)
    throw new SidecastError('CONFIG_INVALID', '--token and --as are exclusive: pass one');
  const first =
    typeof username === 'string'
      ? await mintDjangoToken(args.options, env, username)
      : typeof token === 'string'
        ? token
        : undefined;

  const ws = await open(url);
  const terminal = createLineConsole({ input: process.stdin, output: process.stdout });
  process.stdout.write(`Connected to ${raw}.\n`);
  return session(ws, terminal, first);
}
