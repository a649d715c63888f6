import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listenError } from '../../src/server/listen-error.js';

function errno(code: string, message = `listen ${code}`): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

describe('listenError', () => {
  it('names the address asked for and what to do about it, in one line', () => {
    const cases: [NodeJS.ErrnoException, string, number, string][] = [
      [errno('EADDRINUSE'), '127.0.0.1', 18888, '127.0.0.1:18888 is already in use'],
      [errno('EADDRINUSE'), '::1', 8888, '[::1]:8888 is already in use'],
      [
        errno('EACCES'),
        '0.0.0.0',
        80,
        'cannot listen on 0.0.0.0:80: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
      ],
      [errno('EACCES'), '127.0.0.1', 8888, 'cannot listen on 127.0.0.1:8888: permission denied'],
      [
        errno('EADDRNOTAVAIL'),
        '10.1.2.3',
        8888,
        'cannot listen on 10.1.2.3:8888: 10.1.2.3 is not an address of this machine',
      ],
      [
        errno('ENOTFOUND', 'getaddrinfo ENOTFOUND nowhere.invalid'),
        'nowhere.invalid',
        8888,
        'cannot listen on nowhere.invalid:8888: cannot resolve host name "nowhere.invalid"',
      ],
      [
        errno('EINVAL', 'listen EINVAL'),
        '127.0.0.1',
        8888,
        'cannot listen on 127.0.0.1:8888: listen EINVAL',
      ],
    ];
    for (const [cause, host, port, message] of cases) {
      const error = listenError(cause, host, port);
      assert.equal(error.code, 'LISTEN_FAILED');
      assert.equal(error.message, message);
      assert.equal(error.cause, cause);
      assert.doesNotMatch(error.message, /\n/);
    }
  });
});
