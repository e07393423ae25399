// `npm run test:busy`: the suite on a busy machine. Starts CPU-bound busy loops (two, or
// BUSY_LOOPS) beside `npm test`, so every test runs with less CPU than it would like, as on a
// shared CI runner; kills the loops when the suite ends (or this script is stopped) and exits
// with the suite's code. Arguments go to vitest: `npm run test:busy -- test/crash.test.ts`.

import { spawn } from 'node:child_process';

const loops = Number(process.env.BUSY_LOOPS ?? 2);
if (!Number.isInteger(loops) || loops < 0) {
  console.error(`busy-test: BUSY_LOOPS must be a whole number, got ${process.env.BUSY_LOOPS}`);
  process.exit(2);
}

const busy = Array.from({ length: loops }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
const stopBusy = () => {
  for (const child of busy) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
};
process.on('exit', stopBusy);

const started = Date.now();
console.log(`busy-test: ${loops} busy loops (pids ${busy.map((c) => c.pid).join(', ')}) beside npm test`);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const args = process.argv.slice(2);
const suite = spawn(npm, ['test', ...(args.length > 0 ? ['--', ...args] : [])], { stdio: 'inherit' });
/** A stop asked of this script (Ctrl-C, SIGTERM): passed on to the suite, and never an exit code 0. */
let stoppedBy;
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]]) {
  process.on(signal, () => {
    stoppedBy = { signal, code: 128 + number };
    suite.kill(signal);
    stopBusy();
  });
}
suite.on('error', (error) => {
  console.error(`busy-test: could not start npm: ${error.message}`);
  stopBusy();
  process.exit(1);
});
suite.on('close', (code, signal) => {
  stopBusy();
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`busy-test: npm test ${signal ? `stopped by ${signal}` : `exited ${code}`} after ${seconds} s with ${loops} busy loops${stoppedBy ? ` (${stoppedBy.signal} here)` : ''}`);
  process.exit(stoppedBy ? stoppedBy.code : (code ?? 1));
});
