#!/usr/bin/env node
// The `ym-orders` command; the code lives in src/cli (built to dist/ by `npm run build`).
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
