import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import type { Sidecast } from '../../src/app.js';
import {
  runCli,
  startCli,
  startCliInTerminal,
  type CliProcess,
  type TerminalCli,
} from '../support/cli.js';
import { connectClient } from '../support/client.js';
import { freePort } from '../support/ports.js';
import { event, principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const users = () =>
  tableAuthenticator({
    'token-books': principal('2', [2]),
    'token-all': principal('1', [2, 3]),
  });

function lines(text: string): string[] {
  return text.split('\n').filter((line, index, all) => line !== '' || index < all.length - 1);
}

/** Terminal output arrives in pieces: wait until the screen settles on `expected`, then compare. */
async function assertScreen(cli: TerminalCli, expected: string[]): Promise<void> {
  await waitFor(
    () => JSON.stringify(cli.screen()) === JSON.stringify(expected),
    10_000,
    'the screen',
  ).catch(() => undefined);
  assert.deepEqual(cli.screen(), expected);
}

async function connected(cli: CliProcess, url: string): Promise<void> {
  await cli.waitForOutput(`Connected to ${url}.\n`);
}

describe('sidecast connect with piped input', () => {
  let app: Sidecast;
  before(async () => {
    app = await startTestServer([], { authenticator: users() });
  });
  after(() => app.close());

  it('sends each line, prints each event, and closes with 1000 at end of input', async () => {
    const cli = startCli(['connect', app.url]);
    await connected(cli, app.url);
    cli.write('token-books\n');
    await waitFor(() => app.server.liveConnectionCount === 1, 10_000, 'the CLI to authenticate');
    const book = '{"model": "book", "object": "Caf\\u00e9", "content_type_id": 2}';
    await app.bus.publish(book);
    await app.bus.publish(event(3)); // not a permission of this user: never printed
    await app.bus.publish(event(2, { object: 'second' }));
    await cli.waitForOutput('"second"');
    cli.end();
    const result = await cli.exited;
    assert.deepEqual(lines(result.stdout), [
      `Connected to ${app.url}.`,
      `< ${book}`,
      `< ${event(2, { object: 'second' })}`,
      'Connection closed: 1000 (OK).',
    ]);
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
    await waitFor(() => app.server.connectionCount === 0, 5000, 'the server to see the close');
  });

  it('sends --token as the first message', async () => {
    const cli = startCli(['connect', '--token', 'token-all', app.url]);
    await connected(cli, app.url);
    await waitFor(() => app.server.liveConnectionCount === 1, 10_000, 'the CLI to authenticate');
    await app.bus.publish(event(3));
    await cli.waitForOutput('< ');
    cli.end();
    const result = await cli.exited;
    assert.deepEqual(lines(result.stdout), [
      `Connected to ${app.url}.`,
      `< ${event(3)}`,
      'Connection closed: 1000 (OK).',
    ]);
    assert.equal(result.code, 0);
  });

  it('prints the authentication failure the way the guide shows it, and exits 1', async () => {
    const cli = startCli(['connect', app.url]);
    await connected(cli, app.url);
    cli.write('not-a-token\n');
    const result = await cli.exited; // the server closes; stdin is still open
    assert.deepEqual(lines(result.stdout), [
      `Connected to ${app.url}.`,
      'Connection closed: 1011 (internal error) authentication failed.',
    ]);
    assert.equal(result.code, 1);
  });

  it('reports a server that shuts down (1001) and one that vanishes (1006)', async () => {
    for (const [stop, expected] of [
      ['shutdown', 'Connection closed: 1001 (going away) server shutting down.'],
      ['close', 'Connection closed: 1006 (connection closed abnormally [internal]).'],
    ] as const) {
      const doomed = await startTestServer(['--drain-seconds', '0'], { authenticator: users() });
      const cli = startCli(['connect', '--token', 'token-books', doomed.url]);
      await connected(cli, doomed.url);
      await waitFor(() => doomed.server.liveConnectionCount === 1, 10_000, 'authentication');
      await (stop === 'shutdown' ? doomed.shutdown() : doomed.close());
      const result = await cli.exited;
      assert.deepEqual(lines(result.stdout), [`Connected to ${doomed.url}.`, expected]);
      assert.equal(result.code, 1);
    }
  });

  it('prints binary messages as hex and names private close codes', async () => {
    // A bare WebSocket server that echoes, to see exactly what the CLI sent.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    const received: string[] = [];
    wss.on('connection', (ws) => {
      ws.on('message', (data) => {
        received.push(data.toString());
        if (received.length === 3) {
          ws.send(Buffer.from([0, 1, 0xfe]), { binary: true });
          ws.close(4000, 'bye now');
        }
      });
    });
    try {
      const result = await runCli(['connect', url], { input: 'one\n\ntwo words\n' });
      assert.deepEqual(received, ['one', '', 'two words']);
      assert.deepEqual(lines(result.stdout), [
        `Connected to ${url}.`,
        '< (binary) 0001fe',
        'Connection closed: 4000 (private use) bye now.',
      ]);
      assert.equal(result.code, 1);
    } finally {
      wss.close();
    }
  });
});

describe('sidecast connect errors', () => {
  it('says so in one line when nothing listens', async () => {
    const port = await freePort();
    const result = await runCli(['connect', `ws://127.0.0.1:${port}/`]);
    assert.equal(
      result.stderr,
      `sidecast: cannot connect to ws://127.0.0.1:${port}/: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    );
    assert.equal(result.stdout, '');
    assert.equal(result.code, 1);
  });

  it('gives the HTTP status of a refused handshake', async () => {
    const app = await startTestServer(['--max-connections', '1'], { authenticator: users() });
    try {
      const holder = await connectClient(app.url);
      const result = await runCli(['connect', app.url]);
      assert.equal(result.stderr, 'sidecast: server refused the WebSocket handshake: HTTP 503\n');
      assert.equal(result.code, 1);
      holder.ws.close();
    } finally {
      await app.close();
    }
  });

  it('refuses malformed URLs, unknown options and --token with --as', async () => {
    const cases: [string[], string][] = [
      [
        ['connect', 'localhost:8888'],
        'sidecast: malformed URL "localhost:8888": expected a ws:// or wss:// URL\n',
      ],
      [['connect', 'ws://'], 'sidecast: malformed URL "ws://": expected ws://HOST:PORT/\n'],
      [
        ['connect', 'http://127.0.0.1:8888/'],
        'sidecast: malformed URL "http://127.0.0.1:8888/": expected a ws:// or wss:// URL\n',
      ],
      [['connect'], 'sidecast: missing URL (usage: sidecast connect [OPTIONS] URL)\n'],
      [
        ['connect', '--bogus', 'ws://127.0.0.1:1/'],
        'sidecast: unknown option --bogus (see --help)\n',
      ],
      [
        ['connect', '--token', 't', '--as', 'alice', 'ws://127.0.0.1:1/'],
        'sidecast: --token and --as are exclusive: pass one\n',
      ],
    ];
    for (const [args, stderr] of cases) {
      const result = await runCli(args);
      assert.equal(result.stderr, stderr, args.join(' '));
      assert.equal(result.code, 2, args.join(' '));
    }
  });

  it('lists every option with its default and environment variable in --help', async () => {
    const result = await runCli(['connect', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: sidecast connect \[OPTIONS\] URL\n/);
    assert.match(result.stdout, /--token TOKEN +Send TOKEN as the first message\. \[default: none/);
    assert.match(result.stdout, /--as USERNAME +.*\[default: none\]/);
    assert.match(result.stdout, /--django-db URL .*\[default: required; env SIDECAST_DJANGO_DB\]/);
    assert.match(result.stdout, /--scope SCOPE .*\[default: ""; env SIDECAST_SCOPE\]/);
    assert.match(result.stdout, /DJANGO_SECRET_KEY \(required\)/);
  });
});

describe('sidecast connect at a terminal', () => {
  let app: Sidecast;
  before(async () => {
    app = await startTestServer([], { authenticator: users() });
  });
  after(() => app.close());

  it('shows a prompt, prints events above the line being typed, and closes on Ctrl-D', async () => {
    const cli = startCliInTerminal(['connect', app.url]);
    await cli.waitForOutput('> ');
    cli.write('token-books\r');
    await waitFor(() => app.server.liveConnectionCount === 1, 10_000, 'the CLI to authenticate');
    cli.write('hal');
    await cli.waitForOutput('hal');
    await app.bus.publish(event(2, { object: 'first' }));
    await cli.waitForOutput('"first"');
    cli.write('f typed\r');
    await cli.waitForOutput(/f typed\r\r?\n/);
    await app.bus.publish(event(2, { object: 'second' }));
    await assertScreen(cli, [
      `Connected to ${app.url}.`,
      '> token-books',
      `< ${event(2, { object: 'first' })}`,
      '> half typed',
      `< ${event(2, { object: 'second' })}`,
      '>',
    ]);
    cli.write('\x04');
    const result = await cli.exited;
    await assertScreen(cli, [
      `Connected to ${app.url}.`,
      '> token-books',
      `< ${event(2, { object: 'first' })}`,
      '> half typed',
      `< ${event(2, { object: 'second' })}`,
      'Connection closed: 1000 (OK).',
    ]);
    assert.equal(result.code, 0);
  });

  it('closes with 1000 on Ctrl-C, like Ctrl-D', async () => {
    const cli = startCliInTerminal(['connect', '--token', 'token-books', app.url]);
    await cli.waitForOutput('> ');
    await waitFor(() => app.server.liveConnectionCount === 1, 10_000, 'the CLI to authenticate');
    cli.write('abandoned');
    await cli.waitForOutput('abandoned');
    cli.write('\x03');
    const result = await cli.exited;
    await assertScreen(cli, [`Connected to ${app.url}.`, 'Connection closed: 1000 (OK).']);
    assert.equal(result.code, 0);
  });

  it('shows the authentication failure and exits 1', async () => {
    const cli = startCliInTerminal(['connect', app.url]);
    await cli.waitForOutput('> ');
    cli.write('wrong\r');
    const result = await cli.exited;
    await assertScreen(cli, [
      `Connected to ${app.url}.`,
      '> wrong',
      'Connection closed: 1011 (internal error) authentication failed.',
    ]);
    assert.equal(result.code, 1);
  });

  it('shows a server going away in place of the prompt, keeping no half-typed line', async () => {
    const doomed = await startTestServer(['--drain-seconds', '0'], { authenticator: users() });
    const cli = startCliInTerminal(['connect', '--token', 'token-books', doomed.url]);
    await cli.waitForOutput('> ');
    await waitFor(() => doomed.server.liveConnectionCount === 1, 10_000, 'authentication');
    cli.write('never sent');
    await cli.waitForOutput('never sent');
    await doomed.shutdown();
    const result = await cli.exited;
    await assertScreen(cli, [
      `Connected to ${doomed.url}.`,
      'Connection closed: 1001 (going away) server shutting down.',
    ]);
    assert.equal(result.code, 1);
  });
});
