/**
 * `ym-orders/testing`: a fake Yandex Market Partner API over loopback HTTP, for ym-orders'
 * own tests and for users testing code built on ym-orders. Start one with
 * {@link startFakeMarket}, point the client at its `url`, and assert on its `requests` and `stats()`.
 * With its `notify` option (or a {@link FakeNotifier} of your own) it pushes notifications to a
 * receiver the way the Market does: duplicated, out of order and retried on the Market's schedule.
 * @packageDocumentation
 */
export {
  startFakeMarket, type FakeMarket, type FakeMarketOptions, type FakeMarketStats, type FakeNewOrder, type FakeRequest,
} from './fake-market.js';
export { FAULT_KINDS, type Fault, type FaultKind } from './faults.js';
export {
  DEFAULT_NOTIFICATION_TIMEOUT_MS, DEFAULT_PING_TIMEOUT_MS, FAKE_NOTIFIER_ERROR_CODES, FakeNotifier, FakeNotifierOptionError,
  MARKET_RETRY_SCHEDULE, ORDER_UPDATE_TYPES, retryDelayMs,
  type FakeNotification, type FakeNotifierOptions, type FakeNotifierStats, type NotificationItem, type OrderUpdateType,
} from './notifier.js';
export { FAKE_OPERATION_STATUSES, type FakeCampaign, type FakeOperationStatus, type FakeOrder, type FakeOrderSeed } from './order-book.js';
export { DEFAULT_QUOTAS, type QuotaConfig } from './quota.js';
