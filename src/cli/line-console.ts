import type { Readable, Writable } from 'node:stream';
import {
  clearScreenDown,
  createInterface,
  cursorTo,
  moveCursor,
  type Interface,
} from 'node:readline';

/**
 * The terminal side of `sidecast connect`: reads lines, and prints messages without breaking the
 * line being typed. On a terminal it shows a prompt; when an event arrives mid-typing it erases the
 * prompt and input, prints the event, then redraws both with the cursor where it was. With piped
 * input there is no prompt and nothing to redraw: lines in, messages out, for scripts and tests.
 */
export interface LineConsole {
  /** True when input and output are a terminal (prompt and redraw on). */
  readonly interactive: boolean;
  /** Starts reading; `onLine` per line, `onEnd` on end of input, Ctrl-D and each Ctrl-C. */
  start(handlers: { onLine: (line: string) => void; onEnd: () => void }): void;
  /** Prints one line above the prompt. */
  print(line: string): void;
  /** Prints a last line in place of the prompt and stops reading. */
  finish(line: string): void;
}

export interface LineConsoleStreams {
  readonly input: Readable & { isTTY?: boolean };
  readonly output: Writable & { isTTY?: boolean };
}

const PROMPT = '> ';

export function createLineConsole(streams: LineConsoleStreams): LineConsole {
  const { input, output } = streams;
  const interactive = input.isTTY === true && output.isTTY === true;
  let rl: Interface | undefined;
  let ended = false;
  let finished = false;
  let stopSignal: (() => void) | undefined;

  /** Moves to the first row of the prompt (input may wrap) and clears from there down. */
  function erasePromptAndInput(prompt: Interface): void {
    moveCursor(output, 0, -prompt.getCursorPos().rows);
    cursorTo(output, 0);
    clearScreenDown(output);
  }

  /** Writes a line where the prompt was; the caller redraws the prompt if input goes on. */
  function writeOverPrompt(line: string): void {
    if (rl && interactive) erasePromptAndInput(rl);
    output.write(`${line}\n`);
  }

  return {
    interactive,
    start({ onLine, onEnd }) {
      const end = () => {
        if (finished) return;
        ended = true;
        onEnd();
      };
      rl = createInterface({ input, output, terminal: interactive, prompt: PROMPT });
      rl.on('line', (line) => {
        if (ended) return;
        onLine(line);
        if (interactive) rl?.prompt();
      });
      rl.on('close', end);
      if (interactive) {
        // readline owns Ctrl-C on a terminal; without a listener it would only pause input.
        rl.on('SIGINT', end);
        rl.prompt();
      } else {
        stopSignal = end;
        process.on('SIGINT', end);
      }
    },
    print(line) {
      writeOverPrompt(line);
      if (rl && interactive && !ended) rl.prompt(true);
    },
    finish(line) {
      ended = true;
      finished = true;
      if (stopSignal) process.off('SIGINT', stopSignal);
      writeOverPrompt(line);
      rl?.close();
      // Nothing more is read, and an open stdin pipe would keep the process alive.
      input.destroy();
    },
  };
}
