// The settings of every engine the demo opens: its own, and with --processes each child's, so
// that they all send, poll and retry alike against the fake Market.

import type { EngineOptions } from '../../engine/engine.js';
import { engineDatabase, type DemoDatabase } from './database.js';

/** Plain data: the parent sends it to each child over the IPC channel (never argv or the environment). */
export interface DemoEngineSettings {
  readonly database: DemoDatabase;
  readonly marketUrl: string;
  /** Made up for the run: the fake Market's password. */
  readonly apiKey: string;
  readonly chaos: boolean;
}

export function demoEngineOptions(settings: DemoEngineSettings): EngineOptions {
  return {
    ...engineDatabase(settings.database),
    api: { baseUrl: settings.marketUrl, apiKey: settings.apiKey, timeoutMs: settings.chaos ? 1_500 : 5_000 },
    // The fake's operations end in 150 ms: a 5 s deadline is ample, and it bounds asyncSettleMs
    // (deadline + request timeout), the wait before a LaaS change whose answer was lost is resent.
    pollPolicy: { initialIntervalMs: 100, backoffCoefficient: 1.5, maximumIntervalMs: 500, timeoutMs: 5_000 },
    retry: { initialIntervalMs: 100, maximumIntervalMs: 1_000 },
  };
}
