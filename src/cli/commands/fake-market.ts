// `ym-orders fake-market`: the loopback fake Market API from `ym-orders/testing`, as a
// process: point --api-url of other ym-orders commands (or your own code) at the URL it prints.
// With --notify it also pushes the Market's notifications about its changes to a receiver.

import type { Command } from 'commander';
import { startFakeMarket, FAULT_KINDS, FakeNotifierOptionError, type FaultKind } from '../../testing/index.js';
import { MARKET_OPERATIONS, type MarketOperation } from '../../market/errors.js';
import { act, collect, type Cli } from '../command.js';
import { API_KEY_ENV, campaignsOf, configOf } from '../context.js';
import { CLI_ERROR_CODES, CliError, usageError } from '../errors.js';
import { num } from '../../format.js';
import { DEMO_CAMPAIGNS, generateOrders } from '../demo-data.js';

export interface FaultSpec {
  readonly kind: FaultKind;
  readonly probability: number;
  readonly endpoint?: MarketOperation;
}

/** `status500:0.1` or `drop:0.05:updateOrderStatuses`. */
export function parseFault(spec: string): FaultSpec {
  const [kind, rate, endpoint, ...rest] = spec.split(':');
  const kinds = Object.values(FAULT_KINDS) as string[];
  if (!kind || !kinds.includes(kind) || rest.length > 0) {
    throw usageError(`--fault "${spec}": expected <kind>:<rate>[:<endpoint>] with kind one of ${kinds.join(', ')}.`);
  }
  const probability = rate === undefined || rate === '' ? 1 : Number(rate);
  if (!Number.isFinite(probability) || probability <= 0 || probability > 1) throw usageError(`--fault "${spec}": the rate must be in (0, 1].`);
  if (endpoint !== undefined && !(MARKET_OPERATIONS as readonly string[]).includes(endpoint)) {
    throw usageError(`--fault "${spec}": endpoint must be one of ${MARKET_OPERATIONS.join(', ')}.`);
  }
  return { kind: kind as FaultKind, probability, ...(endpoint ? { endpoint: endpoint as MarketOperation } : {}) };
}

function parseRate(text: string, option: string): number {
  const rate = Number(text);
  if (text.trim() === '' || !Number.isFinite(rate) || rate < 0 || rate > 1) throw usageError(`${option} "${text}" is not a number from 0 to 1.`);
  return rate;
}

function parseCount(text: string, option: string, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) > max) throw usageError(`${option} "${text}" is not a whole number up to ${max}.`);
  return Number(text);
}

export function registerFakeMarket(program: Command, cli: Cli): void {
  program
    .command('fake-market')
    .description('start the fake Market API on 127.0.0.1 and print its URL; runs until SIGINT/SIGTERM')
    .option('--port <n>', 'port on 127.0.0.1 (0: any free port)', '0')
    .option('--api-key <key>', `the key the fake accepts (default: $${API_KEY_ENV})`)
    .option('--seed-orders <n>', 'seed this many orders over the campaigns', '0')
    .option('--fault <kind:rate[:endpoint]>', 'inject a fault at random, e.g. status500:0.1 (repeatable)', collect)
    .option('--operation-delay <ms>', 'how long a LaaS cancellation stays IN_PROGRESS', '200')
    .option('--latency <ms>', 'delay every answer by this long', '0')
    .option('--notify <url>', 'push notifications of every change to this receiver URL, e.g. http://127.0.0.1:8081/notification')
    .option('--notify-duplicates <rate>', 'with --notify: send this share of notifications twice', '0')
    .option('--notify-reorder <rate>', 'with --notify: send this share of notifications after the next one', '0')
    .addHelpText('after', [
      '',
      "Campaigns come from --campaign/--config (default: the demo's four).",
      'With --notify, each change the fake makes (a status change through the API, a completed LaaS',
      'cancellation, an accepted DBS cancellation) is POSTed to the URL as the Market does: timeout 10 s,',
      'a 400 answer is not retried, anything else is retried every minute for an hour, every 15 minutes',
      'for a day, then hourly.',
      'Example:',
      `  ${API_KEY_ENV}=test-key-123 ym-orders fake-market --port 8080 --seed-orders 500 --fault status500:0.05 \\`,
      '    --notify http://127.0.0.1:8081/notification --notify-duplicates 0.05',
    ].join('\n'))
    .action(
      act<{
        port: string; apiKey?: string; seedOrders: string; fault?: string[]; operationDelay: string; latency: string;
        notify?: string; notifyDuplicates: string; notifyReorder: string;
      }>(cli, async ({ io, out, globals, opts }) => {
        const apiKey = opts.apiKey ?? io.env[API_KEY_ENV]?.trim();
        if (!apiKey) throw new CliError(CLI_ERROR_CODES.missingApiKey, `fake-market needs the key it should accept: set ${API_KEY_ENV} or pass --api-key.`);
        out.addSecret(apiKey);
        const port = parseCount(opts.port, '--port', 65_535);
        const seedOrders = parseCount(opts.seedOrders, '--seed-orders', 1_000_000);
        const operationDelayMs = parseCount(opts.operationDelay, '--operation-delay', 3_600_000);
        const latencyMs = parseCount(opts.latency, '--latency', 60_000);
        const faults = (opts.fault ?? []).map(parseFault);
        const notify = opts.notify === undefined ? undefined : {
          url: opts.notify,
          duplicateRate: parseRate(opts.notifyDuplicates, '--notify-duplicates'),
          reorderRate: parseRate(opts.notifyReorder, '--notify-reorder'),
        };
        const configured = campaignsOf(globals, configOf(globals, io.cwd));
        const campaigns = configured.length > 0 ? configured : DEMO_CAMPAIGNS;
        let market;
        try {
          market = await startFakeMarket({ apiKey, campaigns, port, operationDelayMs, latencyMs, ...(notify ? { notify } : {}) });
        } catch (error) {
          if (error instanceof FakeNotifierOptionError) throw usageError(`--notify: ${error.message}`);
          throw usageError(`Cannot listen on 127.0.0.1:${port}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`);
        }
        if (seedOrders > 0) market.seedOrders(generateOrders(campaigns, seedOrders, Date.now()));
        for (const f of faults) market.inject({ ...f, times: Infinity });
        out.result(
          () => [
            `fake Market listening on ${market.url}`,
            `  campaigns: ${campaigns.map((c) => `${c.campaignId}:${c.businessId}:${c.model}`).join(' ')}`,
            `  ${num(seedOrders)} order(s) seeded; faults: ${faults.map((f) => `${f.kind}:${f.probability}${f.endpoint ? `:${f.endpoint}` : ''}`).join(' ') || 'none'}`,
            `  notifications: ${notify ? `to ${notify.url} (duplicates ${notify.duplicateRate}, reorder ${notify.reorderRate})` : 'off (--notify <url>)'}`,
            `  try: ym-orders --api-url ${market.url} ${campaigns.map((c) => `--campaign ${c.campaignId}:${c.businessId}:${c.model}`).join(' ')} sync`,
            '  SIGINT/SIGTERM stops it',
          ],
          () => ({ url: market.url, port: market.port, campaigns, seededOrders: seedOrders, faults, notify: notify ?? null }),
        );
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            resolve();
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
        const served = market.requests.length;
        const pushed = market.notifier?.stats();
        await market.close();
        out.line(`fake Market stopped after ${num(served)} request(s)`
          + (pushed ? `; notifications: ${num(pushed.delivered)} delivered, ${num(pushed.rejected)} rejected, ${num(pushed.retries)} retries` : ''));
        return 0;
      }),
    );
}
