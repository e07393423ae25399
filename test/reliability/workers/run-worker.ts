// The run loop in a child process, for the reliability suites (chaos, contention).
//
//   node --import tsx test/reliability/workers/run-worker.ts '<config json>'
//
// It is what `ym-orders run` does (createEngine + engine.run({signal}) in a loop that survives
// Market errors, stopping cleanly on SIGINT/SIGTERM), but with options the CLI does not expose:
// above all a short API timeout (`api.timeoutMs`), since the lease that marks a killed
// process's sends as orphaned is 3× that timeout and the CLI's is fixed at 10 s (30 s leases).
// The key comes from YM_API_KEY, as for the CLI; it is never printed.
//
// stdout, one line each: `ready <pid>` once the engine is open, `stopped <json report>` after a
// clean stop. Errors the loop survives go to stderr as `warn [CODE] message` (a failed sync as
// `warn [CODE] sync: message`, a store error the run loop retries as `warn [CODE] store: message`);
// anything else is `fatal …` on stderr and exit code 1.

import { createEngine, type EngineOptions } from '../../../src/engine/engine.js';
import { isMarketError } from '../../../src/market/errors.js';
import { seededRandom } from '../../../src/testing/faults.js';

export interface RunWorkerConfig {
  readonly db: string;
  readonly url: string;
  readonly timeoutMs: number;
  /** SQLite's busy timeout (sqlite.busyTimeoutMs); the engine's default when absent. */
  readonly busyTimeoutMs?: number;
  /** For a postgres:// `db`: the schema the processes share. */
  readonly postgres?: EngineOptions['postgres'];
  readonly owner?: string;
  readonly seed?: number;
  readonly maxSends?: number;
  readonly retry?: EngineOptions['retry'];
  readonly pollPolicy?: EngineOptions['pollPolicy'];
  readonly limits?: EngineOptions['limits'];
  readonly syncIntervalMs?: number;
  readonly idleMs?: number;
}

const write = (fd: 1 | 2, line: string): void => {
  (fd === 1 ? process.stdout : process.stderr).write(`${line}\n`);
};

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as RunWorkerConfig;
  const apiKey = process.env.YM_API_KEY;
  if (!apiKey) throw new Error('YM_API_KEY is not set');
  const engine = await createEngine({
    db: config.db,
    api: { baseUrl: config.url, apiKey, timeoutMs: config.timeoutMs },
    ...(config.busyTimeoutMs !== undefined ? { sqlite: { busyTimeoutMs: config.busyTimeoutMs } } : {}),
    ...(config.postgres ? { postgres: config.postgres } : {}),
    ...(config.owner !== undefined ? { owner: config.owner } : {}),
    ...(config.seed !== undefined ? { random: seededRandom(config.seed) } : {}),
    ...(config.maxSends !== undefined ? { maxSends: config.maxSends } : {}),
    ...(config.retry ? { retry: config.retry } : {}),
    ...(config.pollPolicy ? { pollPolicy: config.pollPolicy } : {}),
    ...(config.limits ? { limits: config.limits } : {}),
  });
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  write(1, `ready ${process.pid}`);
  let report = await engine.stats();
  try {
    while (!controller.signal.aborted) {
      try {
        report = await engine.run({
          signal: controller.signal,
          idleMs: config.idleMs ?? 50,
          ...(config.syncIntervalMs !== undefined ? { syncIntervalMs: config.syncIntervalMs } : {}),
          // As `ym-orders run` does: a failed sync is said, and the loop syncs again later.
          onSyncError: (error) => write(2, `warn [${error.code}] sync: ${error.message}`),
          // As `ym-orders run` does: a database that failed a pass is said, and the loop goes on.
          onStoreError: (error) => write(2, `warn [${error.code}] store: ${error.message}`),
        });
      } catch (error) {
        // As `ym-orders run` does: a Market failure (sync, poll) is no reason to stop the loop.
        if (!isMarketError(error) || error.code === 'MARKET_AUTH') throw error;
        write(2, `warn [${error.code}] ${error.message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await engine.close();
  }
  write(1, `stopped ${JSON.stringify(report)}`);
}

main().catch((error: unknown) => {
  const code = (error as { code?: unknown }).code;
  write(2, `fatal ${typeof code === 'string' ? `[${code}] ` : ''}${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
