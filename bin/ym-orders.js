#!/usr/bin/env node
// The `ym-orders` command; the code lives in src/cli (built to dist/ by `npm run build`).
import { main } from '../dist/src/cli/main.js';

// `ym-orders history 1 | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2));
