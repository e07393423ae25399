// Contract tests against the official OpenAPI files (shared/market-api/partner-api/openapi):
// (1) every request body the client sends validates against the spec's request schema,
// (2) every body the fake Market answers validates against the spec's response schema for
//     that status, and (3) the spec's own examples and enum values parse with our zod schemas.

import { Ajv, type ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ApiResponseStatusSchema, BusinessOrderSchema, createMarketClient, MarketDateTimeSchema, MARKET_OPERATIONS,
  OperationResultSchema, OrderCancellationReasonSchema, OrderSchema, OrderUpdateStatusSchema, parseMarketDateTime,
  type MarketClient, type MarketOperation,
} from '../src/market/index.js';
import { startFakeMarket, type FakeMarket, type FakeRequest } from '../src/testing/index.js';
import { collectExamples, loadComponentSchema, loadOperation, type HttpMethod, type Json, type OperationSchemas } from './helpers/openapi.js';

// ajv-formats is CommonJS: under NodeNext the default import is module.exports, whose
// `default` is the plugin.
const addFormats = ajvFormats.default;

const SPEC_PATHS: Record<MarketOperation, { path: string; method: HttpMethod }> = {
  updateOrderStatuses: { path: '/v2/campaigns/{campaignId}/orders/status-update', method: 'post' },
  updateOrderStatus: { path: '/v2/campaigns/{campaignId}/orders/{orderId}/status', method: 'put' },
  getOperations: { path: '/v1/businesses/{businessId}/operations', method: 'post' },
  getBusinessOrders: { path: '/v1/businesses/{businessId}/orders', method: 'post' },
  acceptOrderCancellation: { path: '/v2/campaigns/{campaignId}/orders/{orderId}/cancellation/accept', method: 'put' },
};

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
// The spec's own formats (DateDdMmYyyyHhMmSs.yaml, DateDdMmYyyy.yaml).
ajv.addFormat('date-dd-MM-yyyy-HH-mm-ss', (text: string) => parseMarketDateTime(text) !== undefined);
ajv.addFormat('date-dd-MM-yyyy', /^\d{2}-\d{2}-\d{4}$/);

const operations = new Map<MarketOperation, OperationSchemas>(
  MARKET_OPERATIONS.map((op) => [op, loadOperation(SPEC_PATHS[op].path, SPEC_PATHS[op].method)]),
);
const compiled = new Map<object, ValidateFunction>();
function validator(schema: object): ValidateFunction {
  let validate = compiled.get(schema);
  if (validate === undefined) compiled.set(schema, (validate = ajv.compile(schema)));
  return validate;
}

function specErrors(schema: object, value: unknown): string[] {
  const validate = validator(schema);
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}`);
}

const API_KEY = 'contract-key';
const BUSINESS = 500;
const FBS = 501;
const DBS = 502;
const LAAS = 503;

let market: FakeMarket;
let client: MarketClient;
let clock = Date.UTC(2025, 2, 3, 10, 0, 0);

/** Drives the client through every method and the fake through every kind of answer. */
async function runScenario(): Promise<void> {
  market.seedOrders([
    { id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' },
    { id: 2, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' },
    { id: 3, campaignId: FBS, status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    { id: 10, campaignId: DBS, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
    { id: 11, campaignId: DBS, status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' },
    { id: 12, campaignId: DBS, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
    { id: 20, campaignId: LAAS, status: 'PROCESSING', substatus: 'STARTED' },
  ]);
  const ignore = (): undefined => undefined;

  await client.updateOrderStatuses(FBS, [
    { id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
    { id: 3, status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    { id: 404, status: 'CANCELLED' },
  ]);
  const laas = await client.updateOrderStatuses(LAAS, [{ id: 20, status: 'CANCELLED', substatus: 'SHOP_FAILED' }]);
  const operationId = laas.body.result?.orders[0]?.operation?.id ?? 'missing';
  await client.getOperations(BUSINESS, { operationType: 'ORDER_STATUS_UPDATE', operationIds: [operationId, 'unknown'] });
  clock += 1_000;
  await client.getOperations(BUSINESS, { operationType: 'ORDER_STATUS_UPDATE', operationIds: [operationId] });

  await client.updateOrderStatus(DBS, 10, {
    status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', delivery: { dates: { realDeliveryDate: '2025-03-02' } },
  });
  await client.updateOrderStatus(LAAS, 20, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }).catch(ignore);
  await client.updateOrderStatus(FBS, 3, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }).catch(ignore); // 400
  await client.updateOrderStatus(FBS, 999, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }).catch(ignore); // 404

  market.requestCancellation(11);
  market.requestCancellation(12);
  await client.acceptOrderCancellation(DBS, 11, { accepted: true });
  await client.acceptOrderCancellation(DBS, 12, { accepted: false, reason: 'ORDER_IN_DELIVERY' });
  await client.acceptOrderCancellation(DBS, 12, { accepted: true }).catch(ignore); // 400: no request waiting

  const first = await client.getBusinessOrders(BUSINESS, {
    campaignIds: [FBS, DBS, LAAS], statuses: ['PROCESSING', 'DELIVERED', 'CANCELLED', 'PICKUP'],
    dates: { updateDateFrom: new Date(clock - 86_400_000).toISOString(), updateDateTo: new Date(clock + 1).toISOString() },
  }, { limit: 3 });
  await client.getBusinessOrders(BUSINESS, { orderIds: [1, 2, 10] }, { limit: 3, pageToken: first.body.paging?.nextPageToken });
  await client.getBusinessOrders(BUSINESS, { fake: false, waitingForCancellationApprove: false, programTypes: ['DBS'] });

  market.inject({ kind: 'status500', endpoint: 'getBusinessOrders' });
  await client.getBusinessOrders(BUSINESS, {}).catch(ignore);
  const stranger = createMarketClient({ baseUrl: market.url, apiKey: 'wrong' });
  await stranger.updateOrderStatuses(FBS, [{ id: 2, status: 'CANCELLED', substatus: 'SHOP_FAILED' }]).catch(ignore); // 401
  await stranger.close();
  await client.updateOrderStatuses(9999, [{ id: 2, status: 'CANCELLED', substatus: 'SHOP_FAILED' }]).catch(ignore); // 403
}

/** The requests made for the test, from every endpoint, answered or not. */
let requests: readonly FakeRequest[];

beforeAll(async () => {
  market = await startFakeMarket({
    apiKey: API_KEY,
    now: () => clock,
    operationDelayMs: 500,
    campaigns: [
      { campaignId: FBS, businessId: BUSINESS, model: 'FBS' },
      { campaignId: DBS, businessId: BUSINESS, model: 'DBS' },
      { campaignId: LAAS, businessId: BUSINESS, model: 'LAAS' },
    ],
    quotas: { acceptOrderCancellation: { limit: 3, windowMs: 60_000 } },
  });
  client = createMarketClient({ baseUrl: market.url, apiKey: API_KEY });
  await runScenario();
  // One more call past the acceptOrderCancellation quota, for a 420 body.
  await client.acceptOrderCancellation(DBS, 12, { accepted: true }).catch(() => undefined);
  requests = [...market.requests];
});

afterAll(async () => {
  await client.close();
  await market.close();
});

describe('the scenario', () => {
  it('covers every endpoint and the answers we validate', () => {
    const seen = new Set(requests.map((r) => `${r.endpoint} ${r.status}`));
    for (const op of MARKET_OPERATIONS) expect([...seen].some((s) => s.startsWith(`${op} 200`))).toBe(true);
    for (const status of [400, 401, 403, 404, 420, 500]) expect(requests.some((r) => r.status === status)).toBe(true);
  });
});

describe('(1) request bodies the client sends match the spec', () => {
  it.each(MARKET_OPERATIONS)('%s', (op) => {
    const schema = operations.get(op)?.request;
    expect(schema).toBeDefined();
    const bodies = requests.filter((r) => r.endpoint === op).map((r) => r.body);
    expect(bodies.length).toBeGreaterThan(0);
    for (const body of bodies) expect(specErrors(schema as object, body)).toEqual([]);
  });
});

describe('(2) bodies the fake Market answers match the spec', () => {
  it.each(MARKET_OPERATIONS)('%s', (op) => {
    const spec = operations.get(op);
    const answered = requests.filter((r) => r.endpoint === op && r.status !== undefined && r.responseBody !== undefined);
    expect(answered.length).toBeGreaterThan(0);
    for (const request of answered) {
      const schema = spec?.responses[String(request.status)];
      // getOperations lists no 404 in the spec; every status the fake used must be documented.
      expect(schema, `${op} answered ${request.status}, which the spec does not list`).toBeDefined();
      const body: unknown = JSON.parse(request.responseBody ?? '');
      expect(specErrors(schema as object, body), `${op} ${request.status}: ${request.responseBody}`).toEqual([]);
    }
  });
});

describe('(3) the spec\'s examples and enum values parse with our zod schemas', () => {
  // Where each example sits, and the zod schema that must accept it. Examples of fields we do
  // not model (CountryCode, delivery dates) are listed as such, so a new example fails loudly.
  const EXAMPLE_CHECKS: Record<string, z.ZodType | 'not modelled'> = {
    'components/schemas/DateDdMmYyyyHhMmSs.yaml $': MarketDateTimeSchema,
    'components/schemas/BusinessOrderDTO.yaml $.properties.creationDate': z.iso.datetime({ offset: true }),
    'components/schemas/BusinessOrderDTO.yaml $.properties.updateDate': BusinessOrderSchema.shape.updateDate,
    'components/schemas/DateDdMmYyyy.yaml $': 'not modelled',
    'components/schemas/CountryCode.yaml $': 'not modelled',
  };
  const SCHEMAS_WE_PARSE = [
    'UpdateOrderStatusesRequest', 'UpdateOrderStatusesResponse', 'UpdateOrderStatusRequest', 'UpdateOrderStatusResponse',
    'GetOperationsRequest', 'GetOperationsResponse', 'GetBusinessOrdersRequest', 'GetBusinessOrdersResponse',
    'AcceptOrderCancellationRequest', 'EmptyApiResponse', 'ApiErrorResponse',
  ];

  it.each(SCHEMAS_WE_PARSE)('%s', (name) => {
    for (const { file, at, example } of collectExamples(name)) {
      const check = EXAMPLE_CHECKS[`${file} ${at}`];
      expect(check, `an example at ${file} ${at} has no check`).toBeDefined();
      if (check !== undefined && check !== 'not modelled') expect(check.safeParse(example).success, `${file} ${at}`).toBe(true);
    }
  });

  it('the Moscow date-time example is 06:12:41 UTC', () => {
    expect(parseMarketDateTime('23-09-2022 09:12:41')).toBe(Date.UTC(2022, 8, 23, 6, 12, 41));
  });

  function specEnum(name: string): string[] {
    const schema = loadComponentSchema(name).allOf as Json[];
    return ((schema[0] as { enum: string[] }).enum);
  }

  it('open enums accept every value the spec lists', () => {
    const order = { id: 1, status: 'x', substatus: 'x' };
    for (const status of specEnum('OrderStatusType')) expect(OrderSchema.safeParse({ ...order, status }).success).toBe(true);
    for (const substatus of specEnum('OrderSubstatusType')) expect(OrderSchema.safeParse({ ...order, substatus }).success).toBe(true);
    const op = { id: 'a', type: 'x', status: 'x' };
    for (const type of specEnum('OperationType')) expect(OperationResultSchema.safeParse({ ...op, type }).success).toBe(true);
    for (const status of specEnum('OperationStatusType')) expect(OperationResultSchema.safeParse({ ...op, status }).success).toBe(true);
  });

  it('closed enums are exactly the spec\'s', () => {
    expect(ApiResponseStatusSchema.options).toEqual(specEnum('ApiResponseStatusType'));
    expect(OrderUpdateStatusSchema.options).toEqual(specEnum('OrderUpdateStatusType'));
    expect(OrderCancellationReasonSchema.options).toEqual(specEnum('OrderCancellationReasonType'));
  });
});
