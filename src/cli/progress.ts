// Progress for long work: a redrawn line when stdout is a terminal; otherwise (pipes, files,
// --json) at most one plain line every few seconds, so logs stay readable.

import type { Output } from './output.js';

const REDRAW_MS = 80;
const PLAIN_EVERY_MS = 2_000;
const BAR_WIDTH = 28;

/** One line of live status: work with no known total (sync pages, the run loop). */
export interface StatusLine {
  /**
   * Shows `text`: redrawn (at most every 80 ms) on a terminal, else printed as a line when
   * `plainEveryMs` passed since the last one. `final` draws at once on a terminal and prints
   * no plain line (the caller's summary follows).
   */
  update(text: string, options?: { final?: boolean }): void;
  /** Clears the drawn line, lets `write` print (a warning), and draws the line again. */
  above(write: () => void): void;
  /** Clears the drawn line; the caller prints the summary line. */
  stop(): void;
}

export interface Progress {
  /** `done` of `total` units; `detail` is a short text after the numbers. */
  update(done: number, total: number, detail?: string): void;
  above(write: () => void): void;
  /** Clears the bar; the caller prints the summary line. */
  stop(): void;
}

export function bar(done: number, total: number, width = BAR_WIDTH): string {
  const ratio = total <= 0 ? 1 : Math.max(0, Math.min(1, done / total));
  const filled = Math.round(ratio * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%`;
}

/** `firstAtOnce`: the first plain line is printed at once rather than after `plainEveryMs`. */
export function createStatusLine(out: Output, options: { plainEveryMs?: number; firstAtOnce?: boolean; clock?: () => number } = {}): StatusLine {
  const clock = options.clock ?? Date.now;
  const plainEveryMs = options.plainEveryMs ?? PLAIN_EVERY_MS;
  let lastDraw = 0;
  let drawn = '';
  let lastPlain = options.firstAtOnce ? -Infinity : clock();
  const clear = (): void => {
    if (drawn) out.raw('\r\x1b[K');
  };
  const draw = (text: string): void => {
    drawn = text.slice(0, Math.max(20, out.columns - 1));
    out.raw(`\r\x1b[K${drawn}`);
  };
  return {
    update(text, { final = false } = {}) {
      const now = clock();
      if (out.interactive) {
        if (now - lastDraw < REDRAW_MS && !final) return;
        lastDraw = now;
        draw(text);
      } else if (now - lastPlain >= plainEveryMs && !final) {
        lastPlain = now;
        out.line(text);
      }
    },
    above(write) {
      const shown = drawn;
      clear();
      write();
      if (shown) draw(shown);
    },
    stop() {
      clear();
      drawn = '';
    },
  };
}

export function createProgress(out: Output, label: string, clock: () => number = Date.now): Progress {
  const line = createStatusLine(out, { clock });
  return {
    update(done, total, detail) {
      const suffix = `${done}/${total}${detail ? `  ${detail}` : ''}`;
      line.update(out.interactive ? `${label} ${bar(done, total)} ${suffix}` : `${label} ${suffix}`, { final: done >= total });
    },
    above: (write) => line.above(write),
    stop: () => line.stop(),
  };
}
