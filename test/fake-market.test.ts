// The fake Market on its own, spoken to with plain fetch: rules, operations, paging,
// quotas and headers, parallel limits, duplicate detection and faults.

import { afterEach, describe, expect, it } from 'vitest';
import { parseRateLimitHeaders } from '../src/market/index.js';
import { startFakeMarket, type FakeMarket, type FakeMarketOptions } from '../src/testing/index.js';

const API_KEY = 'fake-market-key';
const FBS = 11;
const DBS = 12;
const LAAS = 13;
const BUSINESS = 77;
const CAMPAIGNS: FakeMarketOptions['campaigns'] = [
  { campaignId: FBS, businessId: BUSINESS, model: 'FBS' },
  { campaignId: DBS, businessId: BUSINESS, model: 'DBS' },
  { campaignId: LAAS, businessId: BUSINESS, model: 'LAAS' },
];

let market: FakeMarket | undefined;
let clock = Date.UTC(2025, 0, 15, 12, 0, 0);

async function start(options: Partial<FakeMarketOptions> = {}): Promise<FakeMarket> {
  clock = Date.UTC(2025, 0, 15, 12, 0, 0);
  market = await startFakeMarket({ apiKey: API_KEY, campaigns: CAMPAIGNS, now: () => clock, ...options });
  return market;
}

afterEach(async () => {
  await market?.close();
  market = undefined;
});

interface Answer {
  status: number;
  headers: Headers;
  // The tests assert on arbitrary JSON; typing every answer would only repeat the assertions.
  body: any;
}

async function call(m: FakeMarket, method: 'POST' | 'PUT', path: string, body: unknown, headers: Record<string, string> = { 'Api-Key': API_KEY }): Promise<Answer> {
  const response = await fetch(`${m.url}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: JSON.parse(text) };
}

const statusUpdate = (m: FakeMarket, campaignId: number, orders: unknown[]) =>
  call(m, 'POST', `/v2/campaigns/${campaignId}/orders/status-update`, { orders });
const operations = (m: FakeMarket, ids: string[]) =>
  call(m, 'POST', `/v1/businesses/${BUSINESS}/operations`, { operationType: 'ORDER_STATUS_UPDATE', operationIds: ids });
const businessOrders = (m: FakeMarket, body: unknown, query = '') =>
  call(m, 'POST', `/v1/businesses/${BUSINESS}/orders${query}`, body);
const rateLimit = (answer: Answer) => parseRateLimitHeaders(Object.fromEntries(answer.headers));

describe('status changes', () => {
  it('applies legal changes and answers illegal ones with a per-order ERROR inside HTTP 200', async () => {
    const m = await start();
    m.seedOrders([
      { id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' },
      { id: 2, campaignId: FBS, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
    ]);
    const answer = await statusUpdate(m, FBS, [
      { id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
      { id: 2, status: 'CANCELLED', substatus: 'SHOP_FAILED' },
      { id: 999, status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    ]);
    expect(answer.status).toBe(200);
    expect(answer.body.result.orders).toEqual([
      { id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP', updateStatus: 'OK' },
      { id: 2, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', updateStatus: 'ERROR', errorDetails: expect.stringMatching(/Order 2: .*not allowed/) },
      { id: 999, updateStatus: 'ERROR', errorDetails: expect.stringMatching(/Order 999 not found/) },
    ]);
    // Seeded at `clock` and changed at `clock`: updateDate still moves forward.
    expect(m.getOrder(1)).toMatchObject({ status: 'PROCESSING', substatus: 'READY_TO_SHIP', updateDate: clock + 1 });
    expect(m.getOrder(2)?.status).toBe('DELIVERY');
    expect(m.stats()).toMatchObject({ appliedChanges: { 1: 1 }, illegalRequests: 1, duplicateApplications: 0 });
  });

  it('refuses bad bodies with 400 and the Market\'s error body', async () => {
    const m = await start();
    const tooMany = Array.from({ length: 31 }, (_, i) => ({ id: i + 1, status: 'CANCELLED', substatus: 'SHOP_FAILED' }));
    for (const orders of [[], tooMany]) {
      const answer = await statusUpdate(m, FBS, orders);
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({ status: 'ERROR', errors: [{ code: 'BAD_REQUEST', message: expect.stringContaining('orders') }] });
    }
    const notJson = await call(m, 'POST', `/v2/campaigns/${FBS}/orders/status-update`, '{"orders": [');
    expect(notJson).toMatchObject({ status: 400, body: { errors: [{ message: 'Request body is not valid JSON' }] } });
  });

  it('answers 401 to a missing or wrong key and accepts the OAuth form', async () => {
    const m = await start();
    const noKey = await call(m, 'POST', `/v1/businesses/${BUSINESS}/orders`, {}, {});
    expect(noKey).toMatchObject({ status: 401, body: { status: 'ERROR', errors: [{ code: 'UNAUTHORIZED' }] } });
    expect(noKey.headers.get('X-RateLimit-Resource-Limit')).toBeNull();
    const bearer = await call(m, 'POST', `/v1/businesses/${BUSINESS}/orders`, {}, { Authorization: `Bearer ${API_KEY}` });
    expect(bearer.status).toBe(200);
    const prefixed = await call(m, 'POST', `/v1/businesses/${BUSINESS}/orders`, {}, { 'Api-Key': `Bearer ${API_KEY}` });
    expect(prefixed.status).toBe(401);
  });

  it('counts a re-sent applied change as a duplicate application', async () => {
    const m = await start();
    m.seedOrders([{ id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' }]);
    const change = { id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' };
    await statusUpdate(m, FBS, [change]);
    const again = await statusUpdate(m, FBS, [change]);
    expect(again.body.result.orders[0]).toMatchObject({ updateStatus: 'ERROR', errorDetails: expect.stringContaining('Order 1') });
    expect(m.stats()).toMatchObject({ duplicateApplications: 1, illegalRequests: 0, appliedChanges: { 1: 1 } });
  });

  it('PUT applies realDeliveryDate, refuses a future one, and answers 400 for an illegal change', async () => {
    const m = await start();
    m.seedOrders([{ id: 5, campaignId: DBS, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }]);
    const path = `/v2/campaigns/${DBS}/orders/5/status`;
    const future = await call(m, 'PUT', path, { order: { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', delivery: { dates: { realDeliveryDate: '2025-01-16' } } } });
    expect(future).toMatchObject({ status: 400, body: { errors: [{ message: expect.stringContaining('future') }] } });

    const ok = await call(m, 'PUT', path, { order: { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', delivery: { dates: { realDeliveryDate: '2025-01-14' } } } });
    expect(ok.status).toBe(200);
    // 12:00 UTC is 15:00 in Moscow.
    expect(ok.body.order).toMatchObject({ id: 5, status: 'DELIVERED', updatedAt: '15-01-2025 15:00:00', cancelRequested: false });
    expect(m.getOrder(5)?.realDeliveryDate).toBe('2025-01-14');

    const illegal = await call(m, 'PUT', path, { order: { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } });
    expect(illegal).toMatchObject({ status: 400, body: { errors: [{ code: 'STATUS_NOT_ALLOWED' }] } });
    const unknown = await call(m, 'PUT', `/v2/campaigns/${DBS}/orders/6/status`, { order: { status: 'CANCELLED', substatus: 'SHOP_FAILED' } });
    expect(unknown.status).toBe(404);
  });

  it('answers DBS cancellation requests', async () => {
    const m = await start();
    m.seedOrders([
      { id: 7, campaignId: DBS, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
      { id: 8, campaignId: DBS, status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' },
    ]);
    const accept = (id: number, body: unknown) => call(m, 'PUT', `/v2/campaigns/${DBS}/orders/${id}/cancellation/accept`, body);
    expect((await accept(7, { accepted: true })).status).toBe(400);

    m.requestCancellation(7);
    m.requestCancellation(8);
    expect(await accept(7, { accepted: true })).toMatchObject({ status: 200, body: { status: 'OK' } });
    expect(m.getOrder(7)).toMatchObject({ status: 'CANCELLED', substatus: 'USER_CHANGED_MIND', cancelRequested: false });
    expect((await accept(8, { accepted: false })).status).toBe(400);
    expect((await accept(8, { accepted: false, reason: 'ORDER_DELIVERED' })).status).toBe(200);
    expect(m.getOrder(8)).toMatchObject({ status: 'PICKUP', cancelRequested: false });
  });
});

describe('LaaS operations', () => {
  it('leaves the order unchanged until the operation is done', async () => {
    const m = await start({ operationDelayMs: 500 });
    m.seedOrders([{ id: 40, campaignId: LAAS, status: 'PROCESSING', substatus: 'STARTED' }]);
    const answer = await statusUpdate(m, LAAS, [{ id: 40, status: 'CANCELLED', substatus: 'SHOP_FAILED' }]);
    const result = answer.body.result.orders[0];
    expect(result).toMatchObject({ id: 40, status: 'PROCESSING', substatus: 'STARTED', updateStatus: 'OK', operation: { type: 'ORDER_STATUS_UPDATE' } });

    clock += 499;
    expect((await operations(m, [result.operation.id])).body.result.operations).toEqual([{ id: result.operation.id, type: 'ORDER_STATUS_UPDATE', status: 'IN_PROGRESS' }]);
    expect(m.getOrder(40)?.status).toBe('PROCESSING');

    clock += 1;
    expect((await operations(m, [result.operation.id, 'unknown'])).body.result.operations).toEqual([{ id: result.operation.id, type: 'ORDER_STATUS_UPDATE', status: 'DONE' }]);
    expect(m.getOrder(40)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    expect(m.stats().appliedChanges).toEqual({ 40: 1 });
  });

  it('ends an operation FAILED on request, and then accepts the change again', async () => {
    let fail = true;
    const m = await start({ operationDelayMs: 100, failOperation: () => fail });
    m.seedOrders([{ id: 41, campaignId: LAAS, status: 'PROCESSING', substatus: 'STARTED' }]);
    const cancel = { id: 41, status: 'CANCELLED', substatus: 'SHOP_FAILED' };
    const first = (await statusUpdate(m, LAAS, [cancel])).body.result.orders[0];
    clock += 100;
    expect((await operations(m, [first.operation.id])).body.result.operations[0].status).toBe('FAILED');
    expect(m.getOrder(41)?.status).toBe('PROCESSING');

    fail = false;
    const second = (await statusUpdate(m, LAAS, [cancel])).body.result.orders[0];
    expect(second).toMatchObject({ updateStatus: 'OK', operation: { id: expect.not.stringMatching(first.operation.id) } });
    expect(m.stats().duplicateApplications).toBe(0);
  });
});

describe('getBusinessOrders', () => {
  it('pages across more than 50 orders in (updateDate, id) order', async () => {
    const m = await start();
    const base = clock - 1_000_000;
    // Ids descending while dates ascend, and pairs of equal dates, to check the sort.
    m.seedOrders(Array.from({ length: 120 }, (_, i) => ({
      id: 1000 - i, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', updateDate: base + Math.floor(i / 2) * 1000,
    })));
    const seen: number[] = [];
    const sizes: number[] = [];
    let token: string | undefined;
    do {
      const answer = await businessOrders(m, {}, token === undefined ? '' : `?pageToken=${encodeURIComponent(token)}`);
      sizes.push(answer.body.orders.length);
      seen.push(...answer.body.orders.map((o: { orderId: number }) => o.orderId));
      token = answer.body.paging.nextPageToken;
    } while (token !== undefined);
    expect(sizes).toEqual([50, 50, 20]);
    const expected = Array.from({ length: 120 }, (_, i) => 1000 - i)
      .sort((a, b) => Math.floor((1000 - a) / 2) - Math.floor((1000 - b) / 2) || a - b);
    expect(seen).toEqual(expected);

    expect((await businessOrders(m, {}, '?limit=100')).body.orders).toHaveLength(50);
    expect((await businessOrders(m, {}, '?limit=7&page_token=nonsense')).status).toBe(400);
  });

  it('filters by orderIds, campaignIds, statuses and update dates', async () => {
    const m = await start();
    m.seedOrders([
      { id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', updateDate: clock - 3000 },
      { id: 2, campaignId: FBS, status: 'CANCELLED', substatus: 'SHOP_FAILED', updateDate: clock - 2000 },
      { id: 3, campaignId: DBS, status: 'PROCESSING', substatus: 'STARTED', updateDate: clock - 1000 },
    ]);
    const ids = async (body: unknown) => (await businessOrders(m, body)).body.orders.map((o: { orderId: number }) => o.orderId);
    expect(await ids({ orderIds: [3, 1] })).toEqual([1, 3]);
    expect(await ids({ campaignIds: [DBS] })).toEqual([3]);
    expect(await ids({ statuses: ['PROCESSING'] })).toEqual([1, 3]);
    const iso = (ms: number) => new Date(ms).toISOString();
    expect(await ids({ dates: { updateDateFrom: iso(clock - 2000), updateDateTo: iso(clock - 1000) } })).toEqual([2]);
    const [order] = (await businessOrders(m, { orderIds: [3] })).body.orders;
    expect(order).toMatchObject({ programType: 'DBS', updateDate: '2025-01-15T14:59:59.000+03:00', cancelRequested: false });
  });
});

describe('quotas and headers', () => {
  it('counts requests per window, answers 420 when used up, and refills after the window', async () => {
    const m = await start({ quotas: { getOperations: { limit: 2, windowMs: 1_000 } } });
    const first = await operations(m, ['a']);
    expect(rateLimit(first)).toEqual({ limit: 2, remaining: 1, untilMs: clock + 1_000 });
    expect(first.headers.get('X-RateLimit-Resource-Until')).toBe(new Date(clock + 1_000).toUTCString());
    m.inject({ kind: 'status500' });
    expect((await operations(m, ['a'])).status).toBe(500);
    expect(rateLimit(await operations(m, ['a'])).remaining).toBe(0);

    const limited = await operations(m, ['a']);
    expect(limited).toMatchObject({ status: 420, body: { status: 'ERROR', errors: [{ code: 'LIMIT_EXCEEDED', message: 'Hit rate limit of 2 requests per 1000 ms for resource getOperations' }] } });
    expect(rateLimit(limited)).toEqual({ limit: 2, remaining: 0, untilMs: clock + 1_000 });

    clock += 1_000;
    const refilled = await operations(m, ['a']);
    expect(refilled.status).toBe(200);
    expect(rateLimit(refilled)).toEqual({ limit: 2, remaining: 1, untilMs: clock + 1_000 });
    expect(m.stats().rateLimited).toBe(1);
  });

  it('counts orders for updateOrderStatuses, per campaign', async () => {
    const m = await start({ quotas: { updateOrderStatuses: { limit: 5, windowMs: 60_000 } } });
    const three = [1, 2, 3].map((id) => ({ id, status: 'CANCELLED', substatus: 'SHOP_FAILED' }));
    expect(rateLimit(await statusUpdate(m, FBS, three)).remaining).toBe(2);
    expect((await statusUpdate(m, FBS, three)).status).toBe(420);
    expect(rateLimit(await statusUpdate(m, DBS, three)).remaining).toBe(2);
  });

  it('with honestHeaders false, always claims an unused window', async () => {
    const m = await start({ honestHeaders: false, quotas: { getOperations: { limit: 1, windowMs: 60_000 } } });
    expect(rateLimit(await operations(m, ['a'])).remaining).toBe(1);
    const limited = await operations(m, ['a']);
    expect(limited.status).toBe(420);
    expect(rateLimit(limited).remaining).toBe(1);
  });

  it('answers 420 beyond the parallel limit per campaign and tracks maxInFlight', async () => {
    const m = await start({ latencyMs: 100 });
    const answers = await Promise.all(Array.from({ length: 6 }, () => businessOrders(m, {})));
    const limited = answers.filter((a) => a.status === 420);
    expect(limited).toHaveLength(2);
    expect(limited[0]?.body.errors[0].message).toBe(`Hit rate limit of 4 parallel requests for businessId ${BUSINESS}`);
    // A refused request leaves at once, so the sixth may arrive after the fifth has gone.
    expect(m.stats().maxInFlight[`business:${BUSINESS}`]).toBeGreaterThanOrEqual(5);
    expect(rateLimit(answers.find((a) => a.status === 200) as Answer).remaining).toBeGreaterThanOrEqual(10_000 - 4);
  });
});

describe('faults', () => {
  it('are used up after `times` and can be limited to one endpoint', async () => {
    const m = await start();
    m.inject({ kind: 'status503', endpoint: 'getOperations', times: 2 });
    expect((await businessOrders(m, {})).status).toBe(200);
    expect((await operations(m, ['a'])).status).toBe(503);
    expect((await operations(m, ['a'])).status).toBe(503);
    expect((await operations(m, ['a'])).status).toBe(200);
    m.inject({ kind: 'status420', times: Infinity });
    expect((await operations(m, ['a'])).status).toBe(420);
    m.clearFaults();
    expect((await operations(m, ['a'])).status).toBe(200);
    expect(m.requests.map((r) => r.fault)).toEqual([undefined, 'status503', 'status503', undefined, 'status420', undefined]);
  });

  it('with a probability, hit the same requests for the same seed', async () => {
    const pattern = async (seed: number) => {
      const m = await start({ seed });
      m.inject({ kind: 'status500', probability: 0.5, times: Infinity });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i += 1) statuses.push((await operations(m, ['a'])).status);
      await m.close();
      market = undefined;
      return statuses;
    };
    const first = await pattern(42);
    expect(first).toContain(500);
    expect(first).toContain(200);
    expect(await pattern(42)).toEqual(first);
  });

  it('drop destroys the socket without acting; dropAfterApply acts first', async () => {
    const m = await start();
    m.seedOrders([{ id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' }]);
    const ready = [{ id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }];
    m.inject({ kind: 'drop' });
    await expect(statusUpdate(m, FBS, ready)).rejects.toThrow();
    expect(m.getOrder(1)?.substatus).toBe('STARTED');
    m.inject({ kind: 'dropAfterApply' });
    await expect(statusUpdate(m, FBS, ready)).rejects.toThrow();
    expect(m.getOrder(1)?.substatus).toBe('READY_TO_SHIP');
    expect(m.requests.map((r) => r.status)).toEqual([undefined, undefined]);
  });

  it('status500AfterApply acts, then answers 500; status500 answers 500 without acting', async () => {
    const m = await start();
    m.seedOrders([
      { id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' },
      { id: 2, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' },
    ]);
    m.inject({ kind: 'status500' });
    const refused = await statusUpdate(m, FBS, [{ id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }]);
    expect(refused.status).toBe(500);
    expect(m.getOrder(1)?.substatus).toBe('STARTED');
    m.inject({ kind: 'status500AfterApply' });
    const applied = await statusUpdate(m, FBS, [{ id: 2, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }]);
    expect(applied).toMatchObject({ status: 500, body: { status: 'ERROR', errors: [{ code: 'INTERNAL_ERROR' }] } });
    expect(m.getOrder(2)?.substatus).toBe('READY_TO_SHIP');
    expect(m.stats().appliedChanges).toEqual({ 2: 1 });
    expect(m.requests.map((r) => [r.fault, r.status])).toEqual([['status500', 500], ['status500AfterApply', 500]]);
  });

  it('hang with delayMs answers late; timeoutAfterApply applies before hanging', async () => {
    const m = await start();
    m.seedOrders([{ id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' }]);
    m.inject({ kind: 'hang', delayMs: 150 });
    const started = performance.now();
    expect((await businessOrders(m, {})).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);

    m.inject({ kind: 'timeoutAfterApply', delayMs: 50 });
    const late = await statusUpdate(m, FBS, [{ id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }]);
    expect(late.body.result.orders[0].updateStatus).toBe('OK');
  });

  it('malformedJson and foreignIds corrupt the answer after acting', async () => {
    const m = await start();
    m.seedOrders([{ id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' }]);
    m.inject({ kind: 'malformedJson' });
    const response = await fetch(`${m.url}/v1/businesses/${BUSINESS}/orders`, { method: 'POST', headers: { 'Api-Key': API_KEY }, body: '{}' });
    expect(response.status).toBe(200);
    await expect(response.json()).rejects.toThrow();

    m.inject({ kind: 'foreignIds' });
    const foreign = await statusUpdate(m, FBS, [{ id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }]);
    expect(foreign.body.result.orders.map((o: { id: number }) => o.id)).toEqual([1, 1_000_000_001]);
    expect(m.getOrder(1)?.substatus).toBe('READY_TO_SHIP');
  });

  it('close() ends hung requests promptly', async () => {
    const m = await start();
    m.inject({ kind: 'hang', times: Infinity });
    const pending = businessOrders(m, {}).then(() => 'answered', () => 'failed');
    while (m.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const started = performance.now();
    await m.close();
    market = undefined;
    expect(performance.now() - started).toBeLessThan(500);
    expect(await pending).toBe('failed');
  });
});

describe('holding requests in flight', () => {
  const heldCount = async (m: FakeMarket, n: number) => {
    while (m.held().length < n) await new Promise((resolve) => setTimeout(resolve, 1));
  };

  it('holds matching requests, counted in flight and not acted on, until released', async () => {
    const m = await start();
    m.seedOrders([1, 2, 3].map((id) => ({ id, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' })));
    m.hold((r) => r.endpoint === 'updateOrderStatuses');
    const answers = [1, 2, 3].map((id) => statusUpdate(m, FBS, [{ id, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }]));
    await heldCount(m, 3);
    // Other endpoints are not held.
    expect((await operations(m, ['a'])).status).toBe(200);
    expect(m.held().map((r) => r.status)).toEqual([undefined, undefined, undefined]);
    expect(m.stats().maxInFlight[`campaign:${FBS}`]).toBe(3);
    expect([1, 2, 3].map((id) => m.getOrder(id)?.substatus)).toEqual(['STARTED', 'STARTED', 'STARTED']);

    // The first one goes; holding goes on for the others and for newcomers.
    m.release({ count: 1, keepHolding: true });
    expect((await answers[0]!).status).toBe(200);
    expect(m.getOrder(1)?.substatus).toBe('READY_TO_SHIP');
    const late = statusUpdate(m, FBS, [{ id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }]);
    await heldCount(m, 3);
    expect(m.getOrder(2)?.substatus).toBe('STARTED');

    m.release();
    expect((await Promise.all([answers[1]!, answers[2]!, late])).map((a) => a.status)).toEqual([200, 200, 200]);
    expect(m.held()).toEqual([]);
    // Holding has stopped.
    expect((await statusUpdate(m, FBS, [{ id: 3, status: 'CANCELLED', substatus: 'SHOP_FAILED' }])).status).toBe(200);
    expect(m.stats().duplicateApplications).toBe(1); // the late re-send of order 1
  });

  it('a request beyond the parallel limit is answered 420 at once, not held', async () => {
    const m = await start({ parallelLimit: 2 });
    m.hold();
    const answers = [0, 1, 2].map(() => operations(m, ['a']));
    // Whichever arrives last finds two in flight: it is the first answered.
    expect((await Promise.race(answers)).status).toBe(420);
    expect(m.held()).toHaveLength(2);
    m.release();
    expect((await Promise.all(answers)).map((a) => a.status).sort()).toEqual([200, 200, 420]);
  });

  it('close() lets held requests go without answering them', async () => {
    const m = await start();
    m.hold();
    const pending = operations(m, ['a']).then(() => 'answered', () => 'failed');
    await heldCount(m, 1);
    await m.close();
    market = undefined;
    expect(await pending).toBe('failed');
  });
});

describe('Market-side moves', () => {
  it('setOrderStatus bumps updateDate strictly and records no seller change', async () => {
    const m = await start();
    m.seedOrders([{ id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'READY_TO_SHIP', updateDate: clock }]);
    m.setOrderStatus(1, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED');
    m.setOrderStatus(1, 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED');
    expect(m.getOrder(1)).toMatchObject({ status: 'DELIVERED', updateDate: clock + 2 });
    expect(m.stats().appliedChanges).toEqual({});
    expect(() => m.requestCancellation(1)).toThrow(/not a DBS order/);
  });

  it('createOrder places an order in its model\'s first status, and refuses a known id or an unknown campaign', async () => {
    const m = await start();
    expect(m.createOrder({ id: 1, campaignId: FBS })).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED', creationDate: clock, cancelRequested: false });
    expect(m.createOrder({ id: 2, campaignId: LAAS })).toMatchObject({ status: 'RESERVED', substatus: 'AWAIT_CONFIRMATION' });
    expect(m.createOrder({ id: 3, campaignId: DBS, status: 'UNPAID', substatus: 'WAITING_USER_INPUT' })).toMatchObject({ status: 'UNPAID' });
    m.setOrderStatus(1, 'PROCESSING', 'READY_TO_SHIP');
    expect(() => m.createOrder({ id: 1, campaignId: FBS })).toThrow(/already has order 1/);
    expect(m.getOrder(1)?.substatus).toBe('READY_TO_SHIP');
    expect(() => m.createOrder({ id: 4, campaignId: 999 })).toThrow(/unknown campaign 999/);
    expect(m.getOrder(4)).toBeUndefined();
  });

  it('updateOrderDates moves updateDate on and nothing else; an unknown order throws', async () => {
    const m = await start();
    m.seedOrders([{ id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', updateDate: clock }]);
    m.updateOrderDates(1, 'DELIVERY_DATE_UPDATED');
    expect(m.getOrder(1)).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED', updateDate: clock + 1 });
    expect(() => m.updateOrderDates(2, 'SHIPMENT_DATE_UPDATED')).toThrow(/no order 2/);
    expect(m.notifier).toBeUndefined();
  });
});
