/**
 * `ym-orders/testing`: a fake Yandex Market Partner API over loopback HTTP, for ym-orders'
 * own tests and for users testing code built on ym-orders. Start one with
 * {@link startFakeMarket}, point the client at its `url`, and assert on its `requests` and `stats()`.
 * @packageDocumentation
 */
export { startFakeMarket, type FakeMarket, type FakeMarketOptions, type FakeMarketStats, type FakeRequest } from './fake-market.js';
export { FAULT_KINDS, type Fault, type FaultKind } from './faults.js';
export { FAKE_OPERATION_STATUSES, type FakeCampaign, type FakeOperationStatus, type FakeOrder, type FakeOrderSeed } from './order-book.js';
export { DEFAULT_QUOTAS, type QuotaConfig } from './quota.js';
