// The web inspector in a real headless browser (Debian's Chromium, driven by playwright-core):
// `ym-orders inspect` runs as a child process on a database a real engine wrote; the page loads
// with its script and stylesheet under the strict CSP, the filter form narrows the table, an
// order's diagram highlights its states, and a change another engine makes shows up without a
// reload. Screenshots go to test-output/inspector/; YM_UPDATE_SCREENSHOT=1 also copies the
// order page's to docs/inspector.png for the README.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { browserAvailable, buildInspectedDatabase, FIXTURE, launchBrowser, LISTED, publishScreenshot, screenshotPath, SHIP, type Browser } from './helpers/browser.js';
import { ensureBuilt, killRunning, startCli, type RunningCli } from './helpers/cli.js';
import { removeTempDirs, tempDbPath } from './helpers/effects-fixtures.js';

const available = browserAvailable();

describe.skipIf(!available)('the inspector in a headless browser', () => {
  let db: string;
  let inspect: RunningCli;
  let url: string;
  let browser: Browser;
  let page: Page;
  /** What the page printed on its console or threw: a CSP violation shows here. */
  const problems: string[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    db = tempDbPath();
    await buildInspectedDatabase(db);
    inspect = startCli(['--db', db, 'inspect', '--listen', '127.0.0.1:0', '--poll', '0.2'], { timeoutMs: 600_000 });
    url = /inspector on (http:\/\/\S+)/.exec(await inspect.waitForStdout(/inspector on http:\/\/\S+/, 60_000))![1]!;
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    inspect?.child.kill('SIGTERM');
    await inspect?.done;
    killRunning();
    removeTempDirs();
  });

  const rowIds = async (): Promise<number[]> => (await page.locator('table.orders tbody tr[data-order]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-order'))))).sort((a, b) => a - b);
  const waitLive = () => page.locator('#live[data-state="live"]').waitFor({ timeout: 60_000 });

  it('loads the orders page with its own script and stylesheet, and goes live', async () => {
    await page.goto(`${url}orders`);
    await waitLive();
    expect(await rowIds()).toEqual(LISTED);
    // The stylesheet applied (the header is dark), so no asset was refused.
    expect(await page.locator('header').evaluate((el) => el.ownerDocument.defaultView!.getComputedStyle(el).backgroundColor)).toBe('rgb(17, 24, 39)');
    await page.screenshot({ path: screenshotPath('orders'), fullPage: true });
    expect(problems).toEqual([]);
  }, 120_000);

  it('narrows the table when a filter is chosen', async () => {
    await page.goto(`${url}orders`);
    await Promise.all([page.waitForURL(/campaign=5102/), page.selectOption('select[name=campaign]', '5102')]);
    expect(await rowIds()).toEqual([...FIXTURE.dbs]);
    expect(page.url()).toBe(`${url}orders?campaign=5102`);
    await Promise.all([page.waitForURL(/change=queued/), page.selectOption('select[name=change]', 'queued')]);
    expect(await rowIds()).toEqual([200_001, 200_002]);
    await page.fill('input[name=stuck]', '60');
    await Promise.all([page.waitForURL(/stuck=60/), page.click('button[type=submit]')]);
    expect(await rowIds()).toEqual([]);
    await page.screenshot({ path: screenshotPath('orders-filtered'), fullPage: true });
    expect(problems).toEqual([]);
  }, 120_000);

  it("highlights the states an order is in on its machine diagram", async () => {
    await page.goto(`${url}orders/${100_005}`);
    await waitLive();
    const active = await page.locator('svg.machine g.state.active').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-state')));
    expect(active.sort()).toEqual(['cancellation.none', 'change.queued', 'market.PROCESSING', 'market.PROCESSING.STARTED']);
    // Highlighted as drawn, not only as markup: the active box is filled with the accent colour.
    expect(await page.locator('svg.machine g.state.active[data-state="change.queued"] rect').evaluate((r) => r.ownerDocument.defaultView!.getComputedStyle(r).fill)).toBe('rgb(29, 78, 216)');
    expect(await page.locator('svg.machine g.state[data-state="change.idle"] rect').evaluate((r) => r.ownerDocument.defaultView!.getComputedStyle(r).fill)).toBe('rgb(248, 250, 252)');
    const file = screenshotPath('order');
    await page.screenshot({ path: file, fullPage: true });
    if (publishScreenshot(file)) console.log(`copied ${file} to docs/inspector.png`);
    expect(problems).toEqual([]);
  }, 120_000);

  describe('changes made by another engine on the same database', () => {
    let writer: Engine;

    beforeAll(async () => {
      writer = await createEngine({ db });
    });

    afterAll(async () => {
      await writer?.close();
    });

    /** Marks the page, so that a reload (which would drop the mark) cannot pass for a live update. */
    const mark = () => page.evaluate(() => ((globalThis as unknown as { inspectorMark: number }).inspectorMark = 42));
    const stillMarked = () => page.evaluate(() => (globalThis as unknown as { inspectorMark?: number }).inspectorMark);

    it('move the highlighted state of the order page without a reload', async () => {
      const order = FIXTURE.untouched[0]!;
      await page.goto(`${url}orders/${order}`);
      await waitLive();
      await page.locator('svg.machine g.state.active[data-state="change.idle"]').waitFor();
      await mark();
      await writer.requestChange({ orderId: order, ...SHIP });
      await page.locator('svg.machine g.state.active[data-state="change.queued"]').waitFor({ timeout: 60_000 });
      expect(await page.locator('svg.machine g.state[data-state="change.idle"]').getAttribute('class')).toBe('state');
      expect(await page.locator('h1 .change').textContent()).toBe('queued');
      expect(await stillMarked()).toBe(42);
      await page.screenshot({ path: screenshotPath('order-live'), fullPage: true });
    }, 120_000);

    it('add a newly queued order to the list without a reload', async () => {
      const order = FIXTURE.untouched[1]!;
      await page.goto(`${url}orders?change=queued`);
      await waitLive();
      expect(await rowIds()).not.toContain(order);
      await mark();
      await writer.requestChange({ orderId: order, ...SHIP });
      await page.locator(`table.orders tr[data-order="${order}"]`).waitFor({ timeout: 60_000 });
      expect(await rowIds()).toContain(order);
      expect(await stillMarked()).toBe(42);
      expect(problems).toEqual([]);
    }, 120_000);
  });
});
