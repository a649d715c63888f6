import * as ws from 'ws';

interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}

// ws builds frames with Sender.frame; its type declarations omit the class, so it is typed here.
const buildFrame = (
  ws as unknown as { Sender: { frame: (data: Buffer, options: FrameOptions) => Buffer[] } }
).Sender.frame;

/**
 * One unmasked, uncompressed text frame holding `payload`, built once per event and written as-is to
 * every recipient's socket. sidecast never negotiates permessage-deflate, so the same bytes are a
 * valid frame for every connection.
 */
export function textFrame(payload: string): Buffer {
  const data = Buffer.from(payload, 'utf8');
  const [header, body] = buildFrame(data, {
    fin: true,
    opcode: 1,
    mask: false,
    readOnly: false,
    rsv1: false,
  });
  return body === undefined ? header! : Buffer.concat([header!, body]);
}
