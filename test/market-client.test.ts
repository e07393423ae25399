// The Partner API client against the fake Market over loopback: every method, and every
// error code produced for real by a real HTTP exchange.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createMarketClient, isMarketError, MARKET_ERROR_CODES, mayHaveBeenApplied, parseMarketDateTime,
  type AnyMarketError, type MarketClient, type MarketErrorCode, type MarketClientOptions,
} from '../src/market/index.js';
import { startFakeMarket, type FakeMarket, type FakeMarketOptions } from '../src/testing/index.js';

const API_KEY = 'y0_AgAAAAB-secret-key-1234567890';
const FBS = 101;
const DBS = 102;
const LAAS = 103;
const BUSINESS = 900;

const CAMPAIGNS: FakeMarketOptions['campaigns'] = [
  { campaignId: FBS, businessId: BUSINESS, model: 'FBS' },
  { campaignId: DBS, businessId: BUSINESS, model: 'DBS' },
  { campaignId: LAAS, businessId: BUSINESS, model: 'LAAS' },
];

let market: FakeMarket;
let client: MarketClient;
let clock: number;
/** Every error a test produced, checked at the end of each test for the API key. */
let errors: unknown[];

async function setUp(options: Partial<FakeMarketOptions> = {}, clientOptions: Partial<MarketClientOptions> = {}): Promise<void> {
  market = await startFakeMarket({ apiKey: API_KEY, campaigns: CAMPAIGNS, now: () => clock, ...options });
  market.seedOrders([
    { id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' },
    { id: 2, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' },
    { id: 3, campaignId: FBS, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' },
    { id: 20, campaignId: DBS, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
    { id: 30, campaignId: LAAS, status: 'PROCESSING', substatus: 'STARTED' },
  ]);
  client = createMarketClient({ baseUrl: market.url, apiKey: API_KEY, ...clientOptions });
}

/** Runs `action`, expects a market error with `code`, and keeps it for the secret check. */
async function expectError<Code extends MarketErrorCode>(action: Promise<unknown>, code: Code): Promise<Extract<AnyMarketError, { code: Code }>> {
  const error = await action.then(
    () => { throw new Error(`expected ${code}, but the call succeeded`); },
    (e: unknown) => e,
  );
  errors.push(error);
  if (!isMarketError(error)) throw error;
  expect(error.code).toBe(code);
  return error as Extract<AnyMarketError, { code: Code }>;
}

/** Neither util.inspect (hidden fields included) nor JSON shows the key. */
function expectNoSecret(value: unknown): void {
  expect(inspect(value, { depth: 20, showHidden: true })).not.toContain(API_KEY);
  expect(JSON.stringify(value)).not.toContain(API_KEY);
}

/** An error: its message and stack too. */
function expectErrorWithoutSecret(error: unknown): void {
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).message).not.toContain(API_KEY);
  expect(String((error as Error).stack)).not.toContain(API_KEY);
  expectNoSecret(error);
}

beforeEach(() => {
  clock = Date.UTC(2025, 5, 10, 9, 0, 0);
  errors = [];
});

afterEach(async () => {
  for (const error of errors) expectErrorWithoutSecret(error);
  expectNoSecret(client);
  await client.close();
  await market.close();
});

describe('methods', () => {
  it('updateOrderStatuses returns per-order results, missing ids and the rate-limit headers', async () => {
    await setUp();
    const response = await client.updateOrderStatuses(FBS, [
      { id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
      { id: 3, status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    ]);
    expect(response.httpStatus).toBe(200);
    expect(response.body.result?.orders).toEqual([
      { id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP', updateStatus: 'OK' },
      expect.objectContaining({ id: 3, updateStatus: 'ERROR', errorDetails: expect.stringContaining('3') }),
    ]);
    expect(response.missingIds).toEqual([]);
    expect(response.rateLimit).toEqual({ limit: 10_000, remaining: 9_998, untilMs: clock + 3_600_000 });
  });

  it('updateOrderStatus moves a DBS order with realDeliveryDate and returns OrderDTO', async () => {
    await setUp();
    const response = await client.updateOrderStatus(DBS, 20, {
      status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', delivery: { dates: { realDeliveryDate: '2025-06-09' } },
    });
    expect(response.body.order).toMatchObject({ id: 20, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' });
    // updatedAt has second precision, in Moscow time.
    expect(parseMarketDateTime(response.body.order.updatedAt ?? '')).toBe(clock);
    expect(market.getOrder(20)).toMatchObject({ status: 'DELIVERED', realDeliveryDate: '2025-06-09' });
  });

  it('getOperations follows a LaaS cancellation and reports ids the Market did not answer about', async () => {
    await setUp({ operationDelayMs: 1_000 });
    const update = await client.updateOrderStatuses(LAAS, [{ id: 30, status: 'CANCELLED', substatus: 'SHOP_FAILED' }]);
    const operation = update.body.result?.orders[0]?.operation;
    expect(operation).toMatchObject({ type: 'ORDER_STATUS_UPDATE' });
    const request = { operationType: 'ORDER_STATUS_UPDATE', operationIds: [operation?.id ?? '', 'unknown-op'] };

    const running = await client.getOperations(BUSINESS, request);
    expect(running.body.result.operations).toEqual([{ id: operation?.id, type: 'ORDER_STATUS_UPDATE', status: 'IN_PROGRESS' }]);
    expect(running.missingIds).toEqual(['unknown-op']);

    clock += 1_000;
    const done = await client.getOperations(BUSINESS, request);
    expect(done.body.result.operations[0]?.status).toBe('DONE');
    expect(market.getOrder(30)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED' });
  });

  it('getBusinessOrders pages with pageToken and limit', async () => {
    await setUp();
    const first = await client.getBusinessOrders(BUSINESS, { campaignIds: [FBS] }, { limit: 2 });
    expect(first.body.orders.map((o) => o.orderId)).toEqual([1, 2]);
    const token = first.body.paging?.nextPageToken;
    expect(token).toBeTypeOf('string');
    const second = await client.getBusinessOrders(BUSINESS, { campaignIds: [FBS] }, { limit: 2, pageToken: token });
    expect(second.body.orders.map((o) => o.orderId)).toEqual([3]);
    expect(second.body.paging?.nextPageToken).toBeUndefined();
    expect(second.body.orders[0]).toMatchObject({ campaignId: FBS, programType: 'FBS', updateDate: expect.stringMatching(/\+03:00$/) });
  });

  it('acceptOrderCancellation answers a DBS buyer cancellation', async () => {
    await setUp();
    market.requestCancellation(20);
    const response = await client.acceptOrderCancellation(DBS, 20, { accepted: true });
    expect(response.body).toEqual({ status: 'OK' });
    expect(market.getOrder(20)).toMatchObject({ status: 'CANCELLED', substatus: 'USER_CHANGED_MIND', cancelRequested: false });
  });

  it('sends the key as Authorization: Bearer with authScheme oauth', async () => {
    await setUp({}, { authScheme: 'oauth' });
    await client.getBusinessOrders(BUSINESS, { orderIds: [1] });
    const captured = new Map<string, string | undefined>();
    const probe = createServer((req, res) => {
      captured.set('authorization', req.headers.authorization);
      captured.set('api-key', req.headers['api-key'] as string | undefined);
      res.end('{}');
    });
    const url = await listen(probe);
    const probeClient = createMarketClient({ baseUrl: url, apiKey: API_KEY, authScheme: 'oauth' });
    await expectError(probeClient.getBusinessOrders(BUSINESS, {}), MARKET_ERROR_CODES.responseInvalid);
    await probeClient.close();
    await new Promise((resolve) => probe.close(resolve));
    expect(captured.get('authorization')).toBe(`Bearer ${API_KEY}`);
    expect(captured.get('api-key')).toBeUndefined();
  });
});

describe('errors', () => {
  it('401 → MARKET_AUTH', async () => {
    await setUp();
    const wrong = createMarketClient({ baseUrl: market.url, apiKey: 'not-the-key' });
    const error = await expectError(wrong.getBusinessOrders(BUSINESS, {}), MARKET_ERROR_CODES.auth);
    await wrong.close();
    expect(error).toMatchObject({ httpStatus: 401, marketErrors: [{ code: 'UNAUTHORIZED' }] });
    expect(mayHaveBeenApplied(error)).toBe(false);
  });

  it('420 → MARKET_RATE_LIMITED with untilMs from X-RateLimit-Resource-Until', async () => {
    await setUp({ quotas: { updateOrderStatuses: { limit: 2, windowMs: 60_000 } } });
    await client.updateOrderStatuses(FBS, [
      { id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
      { id: 2, status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
    ]);
    const error = await expectError(
      client.updateOrderStatuses(FBS, [{ id: 1, status: 'CANCELLED', substatus: 'SHOP_FAILED' }]),
      MARKET_ERROR_CODES.rateLimited,
    );
    expect(error).toMatchObject({ httpStatus: 420, untilMs: clock + 60_000, parallel: false, rateLimit: { limit: 2, remaining: 0 } });
    expect(error.marketErrors[0]?.message).toMatch(/Hit rate limit of 2 requests/);
  });

  it('420 for too many parallel requests → MARKET_RATE_LIMITED marked parallel', async () => {
    await setUp({ latencyMs: 100, parallelLimit: 1 });
    const results = await Promise.allSettled([client.getBusinessOrders(BUSINESS, {}), client.getBusinessOrders(BUSINESS, {})]);
    const rejected = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    errors.push(...rejected);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ code: MARKET_ERROR_CODES.rateLimited, parallel: true });
  });

  it('other 4xx → MARKET_CLIENT_ERROR with the Market\'s errors', async () => {
    await setUp();
    const error = await expectError(
      client.updateOrderStatus(FBS, 3, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }),
      MARKET_ERROR_CODES.clientError,
    );
    expect(error).toMatchObject({ httpStatus: 400, marketErrors: [{ code: 'STATUS_NOT_ALLOWED', message: expect.stringContaining('3') }] });
    expect(error.rateLimit).toMatchObject({ limit: 10_000, remaining: 9_999 });
  });

  it('5xx → MARKET_SERVER_ERROR', async () => {
    await setUp();
    market.inject({ kind: 'status503' });
    const error = await expectError(client.getBusinessOrders(BUSINESS, {}), MARKET_ERROR_CODES.serverError);
    expect(error).toMatchObject({ httpStatus: 503 });
    expect(mayHaveBeenApplied(error)).toBe(true);
  });

  it('a hung server → MARKET_TIMEOUT within about timeoutMs', async () => {
    await setUp({}, { timeoutMs: 200 });
    market.inject({ kind: 'hang' });
    const started = performance.now();
    const error = await expectError(client.getBusinessOrders(BUSINESS, {}), MARKET_ERROR_CODES.timeout);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(error).toMatchObject({ timeoutMs: 200, sent: true, rateLimit: undefined });
  });

  it('a server that applies and then hangs → MARKET_TIMEOUT while the change happened', async () => {
    await setUp({}, { timeoutMs: 200 });
    market.inject({ kind: 'timeoutAfterApply', endpoint: 'updateOrderStatuses' });
    const error = await expectError(
      client.updateOrderStatuses(FBS, [{ id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }]),
      MARKET_ERROR_CODES.timeout,
    );
    expect(mayHaveBeenApplied(error)).toBe(true);
    expect(market.getOrder(1)?.substatus).toBe('READY_TO_SHIP');
  });

  it('a dropped connection → MARKET_NETWORK, sent', async () => {
    await setUp();
    market.inject({ kind: 'dropAfterApply' });
    const error = await expectError(
      client.updateOrderStatuses(FBS, [{ id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }]),
      MARKET_ERROR_CODES.network,
    );
    expect(error).toMatchObject({ sent: true, transportCode: 'UND_ERR_SOCKET' });
    expect(market.getOrder(1)?.substatus).toBe('READY_TO_SHIP');
  });

  it('a refused connection → MARKET_NETWORK, not sent', async () => {
    await setUp();
    const closed = createServer();
    const url = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const refused = createMarketClient({ baseUrl: url, apiKey: API_KEY });
    const error = await expectError(refused.getBusinessOrders(BUSINESS, {}), MARKET_ERROR_CODES.network);
    await refused.close();
    expect(error).toMatchObject({ sent: false, transportCode: 'ECONNREFUSED' });
    expect(mayHaveBeenApplied(error)).toBe(false);
  });

  it('malformed JSON → MARKET_RESPONSE_INVALID', async () => {
    await setUp();
    market.inject({ kind: 'malformedJson' });
    const error = await expectError(client.getBusinessOrders(BUSINESS, {}), MARKET_ERROR_CODES.responseInvalid);
    expect(error).toMatchObject({ httpStatus: 200, issues: ['body is not JSON'] });
    expect(error.rateLimit).toMatchObject({ limit: 10_000 });
  });

  it('JSON that breaks the schema → MARKET_RESPONSE_INVALID with zod issues', async () => {
    await setUp();
    const server = createServer((_req, res) => res.end(JSON.stringify({ status: 'OK', result: { operations: [{ id: 'op' }] } })));
    const odd = createMarketClient({ baseUrl: await listen(server), apiKey: API_KEY });
    const error = await expectError(
      odd.getOperations(BUSINESS, { operationType: 'ORDER_STATUS_UPDATE', operationIds: ['op'] }),
      MARKET_ERROR_CODES.responseInvalid,
    );
    await odd.close();
    await new Promise((resolve) => server.close(resolve));
    expect(error.issues).toEqual(expect.arrayContaining([expect.stringMatching(/^result\.operations\.0\.type: /)]));
  });

  it('ids not asked about → MARKET_RESPONSE_MISMATCH for every method that names ids', async () => {
    await setUp();
    market.inject({ kind: 'foreignIds', times: 4 });
    const bulk = await expectError(
      client.updateOrderStatuses(FBS, [{ id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }]),
      MARKET_ERROR_CODES.responseMismatch,
    );
    expect(bulk.unexpectedIds).toEqual([1_000_000_001]);
    await expectError(client.updateOrderStatus(FBS, 2, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }), MARKET_ERROR_CODES.responseMismatch);
    await expectError(client.getOperations(BUSINESS, { operationType: 'ORDER_STATUS_UPDATE', operationIds: ['x'] }), MARKET_ERROR_CODES.responseMismatch);
    await expectError(client.getBusinessOrders(BUSINESS, { orderIds: [3] }), MARKET_ERROR_CODES.responseMismatch);
  });

  it('an invalid request → MARKET_REQUEST_INVALID and nothing is sent', async () => {
    await setUp();
    const orders = Array.from({ length: 31 }, (_, i) => ({ id: i + 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }));
    const error = await expectError(client.updateOrderStatuses(FBS, orders), MARKET_ERROR_CODES.requestInvalid);
    expect(error.issues[0]).toMatch(/^orders: /);
    await expectError(client.acceptOrderCancellation(DBS, 20, { accepted: false }), MARKET_ERROR_CODES.requestInvalid);
    await expectError(client.getOperations(BUSINESS, { operationType: 'ORDER_STATUS_UPDATE', operationIds: ['a', 'a'] }), MARKET_ERROR_CODES.requestInvalid);
    await expectError(client.getBusinessOrders(BUSINESS, {}, { limit: 51 }), MARKET_ERROR_CODES.requestInvalid);
    await expectError(client.updateOrderStatus(-1, 1, { status: 'PROCESSING' }), MARKET_ERROR_CODES.requestInvalid);
    expect(market.requests).toHaveLength(0);
  });
});

describe('the API key stays secret', () => {
  it('is redacted from error bodies that echo it', async () => {
    await setUp();
    // A server that echoes the key back, as a careless proxy or error page might.
    const server = createServer((req, res) => {
      const key = String(req.headers['api-key']);
      const status = req.url?.includes('operations') ? 500 : 400;
      res.writeHead(status, { 'content-type': status === 500 ? 'text/html' : 'application/json' });
      res.end(status === 500 ? `<html>bad key ${key}</html>` : JSON.stringify({ status: 'ERROR', errors: [{ code: 'BAD_REQUEST', message: `key ${key} rejected` }] }));
    });
    const echo = createMarketClient({ baseUrl: await listen(server), apiKey: API_KEY });
    const clientError = await expectError(echo.getBusinessOrders(BUSINESS, {}), MARKET_ERROR_CODES.clientError);
    expect(clientError.marketErrors[0]?.message).toBe('key [REDACTED] rejected');
    await expectError(echo.getOperations(BUSINESS, { operationType: 'ORDER_STATUS_UPDATE', operationIds: ['a'] }), MARKET_ERROR_CODES.serverError);
    await echo.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is not echoed by request validation, wherever a caller puts it by mistake; nothing is sent', async () => {
    await setUp();
    const key = API_KEY as unknown as number;
    const cases: { call: () => Promise<unknown>; issue: RegExp; path: string }[] = [
      // Ids: the path is built from them, and the issue names the value.
      { call: () => client.getOperations(key, { operationType: 'ORDER_STATUS_UPDATE', operationIds: ['a'] }), issue: /^businessId: expected a positive integer, got a string$/, path: '/v1/businesses/{businessId}/operations' },
      { call: () => client.updateOrderStatus(FBS, key, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }), issue: /^orderId: expected a positive integer, got a string$/, path: `/v2/campaigns/${FBS}/orders/{orderId}/status` },
      { call: () => client.updateOrderStatuses(key, [{ id: 1, status: 'PROCESSING' }]), issue: /^campaignId: /, path: '/v2/campaigns/{campaignId}/orders/status-update' },
      { call: () => client.acceptOrderCancellation(DBS, key, { accepted: true }), issue: /^orderId: /, path: `/v2/campaigns/${DBS}/orders/{orderId}/cancellation/accept` },
      { call: () => client.getBusinessOrders(key, {}), issue: /^businessId: /, path: '/v1/businesses/{businessId}/orders' },
      // Bodies: zod names unknown keys in its messages, and the key may be one.
      { call: () => client.getBusinessOrders(BUSINESS, { [API_KEY]: true } as never), issue: /^\(root\): Unrecognized key: "\[REDACTED\]"$/, path: `/v1/businesses/${BUSINESS}/orders` },
      { call: () => client.updateOrderStatuses(FBS, [{ id: 1, status: 'PROCESSING', [API_KEY]: API_KEY } as never]), issue: /^orders\.0: Unrecognized key: "\[REDACTED\]"$/, path: `/v2/campaigns/${FBS}/orders/status-update` },
      { call: () => client.getBusinessOrders(BUSINESS, {}, { [API_KEY]: 1 } as never), issue: /Unrecognized key: "\[REDACTED\]"/, path: `/v1/businesses/${BUSINESS}/orders` },
      // Values of the wrong type or form.
      { call: () => client.getOperations(BUSINESS, { operationType: 'ORDER_STATUS_UPDATE', operationIds: API_KEY as never }), issue: /^operationIds: Invalid input: expected array, received string$/, path: `/v1/businesses/${BUSINESS}/operations` },
      { call: () => client.getBusinessOrders(BUSINESS, {}, { pageToken: API_KEY, limit: API_KEY as never }), issue: /^limit: /, path: `/v1/businesses/${BUSINESS}/orders` },
      { call: () => client.updateOrderStatus(FBS, 2, { status: 'DELIVERED', delivery: { dates: { realDeliveryDate: API_KEY } } }), issue: /^delivery\.dates\.realDeliveryDate: /, path: `/v2/campaigns/${FBS}/orders/2/status` },
      { call: () => client.acceptOrderCancellation(DBS, 20, API_KEY as never), issue: /^\(root\): /, path: `/v2/campaigns/${DBS}/orders/20/cancellation/accept` },
    ];
    for (const c of cases) {
      const error = await expectError(c.call(), MARKET_ERROR_CODES.requestInvalid);
      expectErrorWithoutSecret(error);
      expect(error.call.path).toBe(c.path);
      expect(error.issues.length).toBeGreaterThan(0);
      expect(error.issues.some((issue) => c.issue.test(issue)), `${error.issues.join('; ')} should match ${String(c.issue)}`).toBe(true);
    }
    expect(market.requests).toHaveLength(0);
  });

  it('is not echoed when it is given as the base URL (the two settings swapped)', async () => {
    await setUp();
    let error: unknown;
    try {
      createMarketClient({ baseUrl: API_KEY, apiKey: market.url });
    } catch (e) {
      error = e;
    }
    expectErrorWithoutSecret(error);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/^createMarketClient: baseUrl is not an absolute http\(s\) URL/);
  });

  it('is not shown by inspect or JSON of the client', async () => {
    await setUp();
    expect(inspect(client)).toContain(market.url);
    expect(JSON.stringify(client)).toContain('api-key');
  });
});

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}
