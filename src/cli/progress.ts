// Progress for long work: a redrawn bar when stdout is a terminal; otherwise (pipes, files,
// --json) at most one plain line every few seconds, so logs stay readable.

import type { Output } from './output.js';

const REDRAW_MS = 80;
const PLAIN_EVERY_MS = 2_000;
const BAR_WIDTH = 28;

export interface Progress {
  /** `done` of `total` units; `detail` is a short text after the numbers. */
  update(done: number, total: number, detail?: string): void;
  /** Clears the bar; the caller prints the summary line. */
  stop(): void;
}

export function bar(done: number, total: number, width = BAR_WIDTH): string {
  const ratio = total <= 0 ? 1 : Math.max(0, Math.min(1, done / total));
  const filled = Math.round(ratio * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%`;
}

export function createProgress(out: Output, label: string, clock: () => number = Date.now): Progress {
  let lastDraw = 0;
  let drawn = false;
  let lastPlain = clock();
  return {
    update(done, total, detail) {
      const now = clock();
      const text = `${label} ${bar(done, total)} ${done}/${total}${detail ? `  ${detail}` : ''}`;
      if (out.interactive) {
        if (now - lastDraw < REDRAW_MS && done < total) return;
        lastDraw = now;
        drawn = true;
        out.raw(`\r\x1b[K${text.slice(0, Math.max(20, out.columns - 1))}`);
      } else if (now - lastPlain >= PLAIN_EVERY_MS && done < total) {
        lastPlain = now;
        out.line(`${label} ${done}/${total}${detail ? `  ${detail}` : ''}`);
      }
    },
    stop() {
      if (drawn) out.raw('\r\x1b[K');
      drawn = false;
    },
  };
}
