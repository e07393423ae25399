// The start line of the workers that two tests run side by side: a worker says `loaded` once its
// modules are in, then blocks until the parent writes `go <epoch ms>` on its stdin (the parent
// does so once every worker is loaded, however long that took on a busy machine), and returns
// that instant, at which the workers begin together.

import fs from 'node:fs';

export function waitForStartLine(): number {
  fs.writeSync(1, 'loaded\n');
  const chunk = Buffer.alloc(64);
  let text = '';
  while (!text.includes('\n')) {
    let n: number;
    try {
      n = fs.readSync(0, chunk, 0, chunk.length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw error;
    }
    if (n === 0) throw new Error('stdin closed before the start line');
    text += chunk.toString('utf8', 0, n);
  }
  const go = /^go (\d+)\n/.exec(text);
  if (!go) throw new Error(`expected "go <epoch ms>" on stdin, got ${JSON.stringify(text)}`);
  return Number(go[1]);
}
