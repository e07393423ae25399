// The shared frame of the effects test files: what a test opens is closed after it, and then
// the API key must be nowhere. Kept apart from effects-fixtures.ts, which child processes run
// outside vitest.

import { afterEach } from 'vitest';
import type { Engine, EngineOptions } from '../../src/engine/engine.js';
import type { Store } from '../../src/store/port.js';
import type { FakeMarket, FakeMarketOptions } from '../../src/testing/index.js';
import {
  assertNoSecret,
  captureConsole,
  engineFor,
  orderIdsSeenBy,
  removeTempDirs,
  startMarket,
  tempDbPath,
  type ConsoleCapture,
  type RecordingClient,
} from './effects-fixtures.js';

/** What an effects test opened, closed after each test by {@link useEffectsTest}. */
export interface EffectsTest {
  readonly engines: Engine[];
  readonly clients: RecordingClient[];
  readonly stores: Store[];
  readonly dbs: string[];
  /** Errors the test caught: each is searched for the key. */
  readonly errors: unknown[];
  /** Starts the fake Market with the test key and records console output, for this test. */
  start(options?: Partial<FakeMarketOptions>): Promise<FakeMarket>;
  /** An engine on a new temporary database against `market`; both are closed and scanned after the test. */
  open(market: FakeMarket, options?: Partial<EngineOptions>): Promise<{ readonly db: string; readonly engine: Engine }>;
}

/**
 * Registers an afterEach that closes everything the test opened and then checks that the API
 * key appears in no database (rows read through the port, and raw bytes), no caught error and no
 * console output.
 */
export function useEffectsTest(): EffectsTest {
  const markets: FakeMarket[] = [];
  const captures: ConsoleCapture[] = [];
  const t: EffectsTest = {
    engines: [],
    clients: [],
    stores: [],
    dbs: [],
    errors: [],
    async start(options = {}) {
      captures.push(captureConsole());
      const market = await startMarket(options);
      markets.push(market);
      return market;
    },
    async open(market, options = {}) {
      const db = tempDbPath();
      t.dbs.push(db);
      const engine = await engineFor(market, db, options);
      t.engines.push(engine);
      return { db, engine };
    },
  };
  afterEach(async () => {
    for (const e of t.engines.splice(0)) await e.close();
    const clients = t.clients.splice(0);
    for (const c of clients) await c.close();
    for (const s of t.stores.splice(0)) await s.close();
    const closed = markets.splice(0);
    for (const m of closed) await m.close();
    const outputs = captures.splice(0);
    for (const c of outputs) c.restore();
    const errors = [...t.errors.splice(0), ...clients.flatMap((c) => c.errors())];
    // The orders the engines may have stored are the ones the Market was asked or told about.
    const orderIds = closed.flatMap((m) => [...orderIdsSeenBy(m)]);
    await assertNoSecret({ dbPaths: t.dbs.splice(0), known: { orderIds }, errors, extra: outputs.map((c) => c.text()) });
    removeTempDirs();
  });
  return t;
}
