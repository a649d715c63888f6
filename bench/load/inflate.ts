/**
 * permessage-deflate on the load generator's side, synchronously. A browser inflates each
 * message as it arrives; doing the same through Node's asynchronous zlib streams costs a
 * thread-pool round trip per message, which on the load generator's single core made the
 * compressing server look slower than it is. Node has no public synchronous API that keeps the
 * window between messages (context takeover), so this drives the stream's native handle the
 * way zlib's own *Sync functions do. When that handle is not there (another Node version),
 * `createSyncInflater` returns undefined and the caller keeps the asynchronous path.
 */
import { constants, createInflateRaw } from 'node:zlib';

const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** Shared output space: every call finishes before the next starts. */
const OUTPUT = Buffer.allocUnsafe(256 * 1024);

interface NativeZlib {
  writeSync(
    flush: number,
    input: Buffer,
    inputOffset: number,
    inputLength: number,
    output: Buffer,
    outputOffset: number,
    outputLength: number,
  ): void;
}

export interface SyncInflater {
  /** The inflated message, or throws when the data is not valid deflate. */
  inflate(message: Buffer): Buffer;
  /** Forgets the window (server_no_context_takeover). */
  reset(): void;
  close(): void;
}

export function createSyncInflater(windowBits: number): SyncInflater | undefined {
  const stream = createInflateRaw({ windowBits });
  const internals = stream as unknown as { _handle?: NativeZlib; _writeState?: Uint32Array };
  const handle = internals._handle;
  const state = internals._writeState;
  if (typeof handle?.writeSync !== 'function' || !(state instanceof Uint32Array)) {
    stream.close();
    return undefined;
  }
  // zlib reports bad data by destroying the stream from inside writeSync.
  stream.on('error', () => undefined);
  return {
    inflate(message) {
      const input = Buffer.concat([message, TRAILER]);
      let offset = 0;
      let remaining = input.length;
      const parts: Buffer[] = [];
      for (;;) {
        handle.writeSync(
          constants.Z_SYNC_FLUSH,
          input,
          offset,
          remaining,
          OUTPUT,
          0,
          OUTPUT.length,
        );
        if (stream.destroyed) throw new Error('invalid deflate data');
        const outputLeft = state[0]!;
        const inputLeft = state[1]!;
        if (outputLeft < OUTPUT.length)
          parts.push(Buffer.from(OUTPUT.subarray(0, OUTPUT.length - outputLeft)));
        offset += remaining - inputLeft;
        remaining = inputLeft;
        // Output space left over means zlib consumed everything and flushed.
        if (outputLeft !== 0) break;
      }
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    },
    reset() {
      stream.reset();
    },
    close() {
      stream.close();
    },
  };
}
