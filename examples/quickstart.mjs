// The README's library example, runnable as is after `npm run build`:
//   node examples/quickstart.mjs
// It starts the fake Market on loopback, so it needs no network and no real key.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, ChangeRefusedError } from 'ym-orders';
import { startFakeMarket } from 'ym-orders/testing';

const campaigns = [{ campaignId: 1001, businessId: 77, model: 'FBS' }];
const market = await startFakeMarket({ apiKey: 'demo-key', campaigns });
market.seedOrders([
  { id: 1, campaignId: 1001, status: 'PROCESSING', substatus: 'STARTED' },
  { id: 2, campaignId: 1001, status: 'PROCESSING', substatus: 'STARTED' },
  { id: 3, campaignId: 1001, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
]);

const engine = await createEngine({
  db: join(mkdtempSync(join(tmpdir(), 'ym-orders-')), 'orders.db'),
  campaigns,
  api: { baseUrl: market.url, apiKey: 'demo-key' },
});

await engine.sync(); // reads the orders the Market has and tracks them
await engine.requestChange({ orderId: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
await engine.requestChange({ orderId: 2, status: 'CANCELLED', substatus: 'SHOP_FAILED' });
try {
  await engine.requestChange({ orderId: 3, status: 'CANCELLED', substatus: 'SHOP_FAILED' });
} catch (error) {
  if (!(error instanceof ChangeRefusedError)) throw error;
  console.log(`refused ${error.orderId}: ${error.blockers.map((b) => b.code).join(', ')}`);
}

const report = await engine.flush({ untilIdle: true });
console.log(`status-update calls: ${report.counters.calls.updateOrderStatuses}`);
for (const id of [1, 2, 3]) {
  const order = await engine.getOrder(id);
  console.log(`order ${id}: ${order.status}/${order.substatus} (${order.lastOutcome?.kind ?? 'no change'})`);
}
console.log((await engine.history(1)).map((row) => `${row.event_type}: ${row.to_status}/${row.to_substatus} ${row.to_change}`).join('\n'));

await engine.close();
await market.close();
