// The inspector suites' shared parts: Debian's Chromium driven by playwright-core (skipped with
// one line when it is not installed, unless YM_REQUIRE_BROWSER=1), where their screenshots go,
// and the database they look at: orders of three models with settled, queued, stuck and async
// changes, a buyer's cancellation request and the budgets a flush leaves, made by a real engine
// against the fake Market over loopback.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { createEngine } from '../../src/engine/engine.js';
import { ROOT } from './cli.js';
import { DBS, FBS, LAAS, engineFor, range, seeds, startMarket } from './effects-fixtures.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';
/**
 * As this machine kind's notes give them: the background-networking flags keep Chromium from
 * calling out (the network is closed here), --no-sandbox because the tests run as root.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Git-ignored: every run's screenshots. */
export const SCREENSHOT_DIR = path.join(ROOT, 'test-output', 'inspector');
/** The README's picture, replaced only with YM_UPDATE_SCREENSHOT=1. */
export const README_SCREENSHOT = path.join(ROOT, 'docs', 'inspector.png');

/** Whether Chromium is installed; without it the browser suites skip, saying so once, unless YM_REQUIRE_BROWSER=1 makes that a failure. */
export function browserAvailable(): boolean {
  if (fs.existsSync(CHROMIUM_PATH)) return true;
  if (process.env.YM_REQUIRE_BROWSER === '1') throw new Error(`YM_REQUIRE_BROWSER=1 and no Chromium at ${CHROMIUM_PATH} (apt-get install chromium)`);
  console.log(`Browser suites skipped: no Chromium at ${CHROMIUM_PATH} (apt-get install chromium to run them; YM_REQUIRE_BROWSER=1 makes this a failure)`);
  return false;
}

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Chromium with a fresh profile of its own, removed on close. */
export async function launchBrowser(): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ym-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export function screenshotPath(name: string): string {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return path.join(SCREENSHOT_DIR, `${name}.png`);
}

/** Copies a screenshot over the README's when YM_UPDATE_SCREENSHOT=1; says whether it did. */
export function publishScreenshot(file: string): boolean {
  if (process.env.YM_UPDATE_SCREENSHOT !== '1') return false;
  fs.copyFileSync(file, README_SCREENSHOT);
  return true;
}

// ---- the database the inspector suites look at ----------------------------------------------

export const FIXTURE = {
  fbs: range(100_001, 12),
  dbs: range(200_001, 6),
  laas: range(300_001, 3),
  /** Shipped (FBS), handed to delivery (DBS) and cancelled through an operation (LaaS): settled, accepted. */
  settled: [100_001, 100_002, 100_003, 100_004, 200_004, 300_001],
  /** Queued and never sent. */
  queued: [100_005, 100_006, 100_007, 100_008, 100_009, 200_001, 200_002],
  /** Queued three hours before the others, and not moved since. */
  stuck: 100_009,
  /** The buyer asked to cancel (DBS): a timer runs. */
  cancellationAsked: 200_003,
  /** Tracked, never changed. */
  untouched: [100_010, 100_011, 100_012, 200_005, 200_006, 300_002, 300_003],
} as const;

/** Every order the orders page lists: every tracked one, by id. */
export const LISTED = [...FIXTURE.fbs, ...FIXTURE.dbs, ...FIXTURE.laas].sort((a, b) => a - b);

const STUCK_FOR_MS = 3 * 60 * 60 * 1000;
export const SHIP = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
const TO_DELIVERY = { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' } as const;

/** Builds the database at `db` (a new file), closed and checkpointed when this resolves. */
export async function buildInspectedDatabase(db: string): Promise<void> {
  const market = await startMarket({ operationDelayMs: 50 });
  try {
    market.seedOrders([...seeds(FBS, FIXTURE.fbs[0]!, FIXTURE.fbs.length), ...seeds(DBS, FIXTURE.dbs[0]!, FIXTURE.dbs.length), ...seeds(LAAS, FIXTURE.laas[0]!, FIXTURE.laas.length)]);
    const engine = await engineFor(market, db);
    try {
      await engine.sync();
      const settled = await engine.requestChanges([
        ...[100_001, 100_002, 100_003, 100_004].map((orderId) => ({ orderId, ...SHIP })),
        { orderId: 200_004, ...TO_DELIVERY },
        { orderId: 300_001, status: 'CANCELLED', substatus: 'SHOP_FAILED' } as const,
      ]);
      if (settled.refused.length > 0) throw new Error(`fixture: refused ${settled.refused.map((r) => r.error.message).join('; ')}`);
      const report = await engine.flush({ untilIdle: true, maxWaitMs: 60_000 });
      if (report.open > 0) throw new Error(`fixture: ${report.open} change(s) still open after the flush`);
      market.requestCancellation(FIXTURE.cancellationAsked);
      await engine.sync();
      const queued = await engine.requestChanges([
        ...[100_005, 100_006, 100_007, 100_008].map((orderId) => ({ orderId, ...SHIP })),
        ...[200_001, 200_002].map((orderId) => ({ orderId, ...TO_DELIVERY })),
      ]);
      if (queued.refused.length > 0) throw new Error(`fixture: refused ${queued.refused.map((r) => r.error.message).join('; ')}`);
    } finally {
      await engine.close();
    }
    // Another engine whose clock is three hours behind: its change looks stuck since then.
    const behind = await createEngine({ db, clock: () => Date.now() - STUCK_FOR_MS });
    try {
      await behind.requestChange({ orderId: FIXTURE.stuck, ...SHIP });
    } finally {
      await behind.close();
    }
  } finally {
    await market.close();
  }
}

