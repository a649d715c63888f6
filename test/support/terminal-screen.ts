/**
 * Replays what a program wrote to a terminal and returns the text a person would see, one string
 * per row, so tests can assert on exact lines even when the program redraws its prompt. It knows
 * the few controls readline uses: CR, LF, BS, cursor moves (CSI n A/B/C/D/G) and erasing
 * (CSI K, CSI J); other escape sequences (bracketed paste, colours) change nothing visible here.
 */
/** A control sequence after its ESC: `[`, an optional `?`, numbers, a final letter. */
const CSI = /^\[(\??)([\d;]*)([A-Za-z])/;

export function renderScreen(output: string): string[] {
  const rows: string[][] = [[]];
  let row = 0;
  let col = 0;
  const line = () => (rows[row] ??= []);

  for (let i = 0; i < output.length; i++) {
    const char = output[i]!;
    if (char === '\x1b') {
      const match = CSI.exec(output.slice(i + 1));
      if (!match) continue;
      i += match[0].length;
      if (match[1] === '?') continue;
      const n = match[2] === '' ? undefined : Number(match[2]!.split(';')[0]);
      switch (match[3]) {
        case 'A':
          row = Math.max(0, row - (n ?? 1));
          break;
        case 'B':
          row += n ?? 1;
          break;
        case 'C':
          col += n ?? 1;
          break;
        case 'D':
          col = Math.max(0, col - (n ?? 1));
          break;
        case 'G':
          col = Math.max(0, (n ?? 1) - 1);
          break;
        case 'K':
          if ((n ?? 0) === 0) line().length = Math.min(line().length, col);
          else if (n === 2) rows[row] = [];
          break;
        case 'J':
          if ((n ?? 0) === 0) {
            line().length = Math.min(line().length, col);
            rows.length = Math.min(rows.length, row + 1);
          }
          break;
      }
      continue;
    }
    if (char === '\r') col = 0;
    else if (char === '\n') {
      row++;
      line();
    } else if (char === '\b') col = Math.max(0, col - 1);
    else if (char >= ' ') {
      const cells = line();
      while (cells.length < col) cells.push(' ');
      cells[col++] = char;
    }
  }
  const text = Array.from(rows, (cells) => (cells ?? []).join('').trimEnd());
  while (text.length > 0 && text[text.length - 1] === '') text.pop();
  return text;
}
