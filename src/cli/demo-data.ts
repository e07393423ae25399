// Realistic-looking data for `demo` and `fake-market --seed-orders`: four campaigns over three
// businesses, and orders spread over the statuses each fulfilment model really sees.

import type { CampaignConfig } from '../engine/commands.js';
import type { KnownOrderStatus, KnownOrderSubstatus } from '../../machines/statuses.js';
import type { FakeNewOrder, FakeOrderSeed } from '../testing/index.js';
import { seededRandom } from '../testing/faults.js';

export const DEMO_CAMPAIGNS: readonly CampaignConfig[] = [
  { campaignId: 21_000_101, businessId: 1_100_001, model: 'FBS' },
  { campaignId: 21_000_102, businessId: 1_100_001, model: 'EXPRESS' },
  { campaignId: 21_000_203, businessId: 1_100_002, model: 'DBS' },
  { campaignId: 21_000_304, businessId: 1_100_003, model: 'LAAS' },
];

/** Share of a campaign's orders by model. */
const MODEL_SHARE: Record<CampaignConfig['model'], number> = { FBS: 0.37, EXPRESS: 0.16, DBS: 0.27, LAAS: 0.2 };

type Mix = readonly (readonly [status: string, substatus: string, weight: number])[];

const MIX: Record<CampaignConfig['model'], Mix> = {
  FBS: [
    ['PROCESSING', 'STARTED', 58], ['PROCESSING', 'READY_TO_SHIP', 10], ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED', 10],
    ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED', 14], ['CANCELLED', 'USER_CHANGED_MIND', 5], ['CANCELLED', 'SHOP_FAILED', 3],
  ],
  EXPRESS: [
    ['PROCESSING', 'STARTED', 60], ['PROCESSING', 'READY_TO_SHIP', 8], ['DELIVERY', 'COURIER_RECEIVED', 8],
    ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED', 18], ['CANCELLED', 'USER_CHANGED_MIND', 6],
  ],
  DBS: [
    ['PROCESSING', 'STARTED', 36], ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED', 30], ['PICKUP', 'PICKUP_SERVICE_RECEIVED', 9],
    ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED', 17], ['CANCELLED', 'USER_REFUSED_DELIVERY', 8],
  ],
  LAAS: [
    ['RESERVED', 'AWAIT_CONFIRMATION', 18], ['PROCESSING', 'STARTED', 50], ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED', 15],
    ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED', 11], ['CANCELLED', 'SHOP_FAILED', 6],
  ],
};

function pick(mix: Mix, random: () => number): readonly [string, string] {
  const total = mix.reduce((n, [, , w]) => n + w, 0);
  let r = random() * total;
  for (const [status, substatus, w] of mix) {
    r -= w;
    if (r < 0) return [status, substatus];
  }
  return [mix[0]![0], mix[0]![1]];
}

const FIRST_ORDER_ID = 48_000_000_001;
const DAY_MS = 86_400_000;

/** How many of `count` orders each campaign gets, by MODEL_SHARE; they add up to `count`. */
function perCampaign(campaigns: readonly CampaignConfig[], count: number): number[] {
  const shares = campaigns.map((c) => MODEL_SHARE[c.model]);
  const sum = shares.reduce((a, b) => a + b, 0);
  const counts = shares.map((share) => Math.round((count * share) / sum));
  if (counts.length > 0) counts[counts.length - 1] = count - counts.slice(0, -1).reduce((a, b) => a + b, 0);
  return counts;
}

/** `count` orders over `campaigns`, created and last changed within the past three days. */
export function generateOrders(campaigns: readonly CampaignConfig[], count: number, now: number, seed = 42): FakeOrderSeed[] {
  const random = seededRandom(seed);
  const orders: FakeOrderSeed[] = [];
  let id = FIRST_ORDER_ID;
  const counts = perCampaign(campaigns, count);
  campaigns.forEach((c, i) => {
    for (let k = 0; k < counts[i]!; k++) {
      const [status, substatus] = pick(MIX[c.model], random);
      const creationDate = now - Math.floor((0.2 + random() * 2.8) * DAY_MS);
      const updateDate = Math.min(now - 60_000, creationDate + Math.floor(random() * 0.5 * DAY_MS));
      orders.push({ id: id++, campaignId: c.campaignId, status, substatus, creationDate, updateDate });
    }
  });
  return orders;
}

/**
 * `count` orders buyers place now, over `campaigns` by the same shares, ids from `firstId`; each
 * starts where its model starts (the fake's default: PROCESSING/STARTED, a LaaS draft RESERVED).
 */
export function placedOrders(campaigns: readonly CampaignConfig[], count: number, firstId: number, now: number): FakeNewOrder[] {
  const counts = perCampaign(campaigns, count);
  let id = firstId;
  return campaigns.flatMap((c, i) => Array.from({ length: counts[i]! }, () => ({ id: id++, campaignId: c.campaignId, creationDate: now, updateDate: now })));
}

/** A group of seller changes the demo asks for, with a name for the report. */
export interface PlannedGroup {
  readonly name: string;
  readonly requests: readonly {
    orderId: number;
    status: KnownOrderStatus;
    substatus: KnownOrderSubstatus;
    realDeliveryDate?: string;
  }[];
}

export interface DemoPlan {
  readonly legal: readonly PlannedGroup[];
  /** Requests an operator might send by mistake: each is refused locally, never sent. */
  readonly illegal: PlannedGroup;
}

function take<T>(items: T[], share: number, random: () => number): T[] {
  const picked: T[] = [];
  const rest: T[] = [];
  for (const item of items) (random() < share ? picked : rest).push(item);
  items.splice(0, items.length, ...rest);
  return picked;
}

/** Yesterday and tomorrow as Moscow calendar dates (`YYYY-MM-DD`). */
export function moscowDays(now: number): { yesterday: string; tomorrow: string } {
  const day = (ms: number): string => new Date(ms + 3 * 3_600_000).toISOString().slice(0, 10);
  return { yesterday: day(now - DAY_MS), tomorrow: day(now + 2 * DAY_MS) };
}

/**
 * What the demo does to the orders: ship and cancel a share of FBS/Express orders, move DBS
 * orders along (some deliveries with a real delivery date, sent by the single PUT), confirm and
 * cancel LaaS orders (cancellations are async operations), plus a few illegal requests.
 */
export function planChanges(orders: readonly FakeOrderSeed[], campaigns: readonly CampaignConfig[], now: number, seed = 7): DemoPlan {
  const random = seededRandom(seed);
  const modelOf = new Map(campaigns.map((c) => [c.campaignId, c.model]));
  const pool = (model: string, status: string, substatus?: string): FakeOrderSeed[] =>
    orders.filter((o) => modelOf.get(o.campaignId) === model && o.status === status && (substatus === undefined || o.substatus === substatus));
  const { yesterday, tomorrow } = moscowDays(now);
  const to = (status: KnownOrderStatus, substatus: KnownOrderSubstatus, extra: { realDeliveryDate?: string } = {}) => (o: FakeOrderSeed) => ({ orderId: o.id, status, substatus, ...extra });

  const fbsStarted = pool('FBS', 'PROCESSING', 'STARTED');
  const fbsReady = pool('FBS', 'PROCESSING', 'READY_TO_SHIP');
  const expStarted = pool('EXPRESS', 'PROCESSING', 'STARTED');
  const dbsStarted = pool('DBS', 'PROCESSING', 'STARTED');
  const dbsDelivery = pool('DBS', 'DELIVERY');
  const dbsPickup = pool('DBS', 'PICKUP');
  const laasStarted = pool('LAAS', 'PROCESSING', 'STARTED');
  const laasReserved = pool('LAAS', 'RESERVED');

  const shipFbs = take(fbsStarted, 0.45, random);
  const shipExp = take(expStarted, 0.45, random);
  const cancelFbs = [...take(fbsStarted, 0.06, random), ...take(fbsReady, 0.2, random)];
  const cancelExp = take(expStarted, 0.06, random);
  const handOver = take(dbsStarted, 0.3, random);
  const delivered = take(dbsDelivery, 0.4, random);
  const withDate = delivered.filter((_, i) => i % 3 === 0);
  const withoutDate = delivered.filter((_, i) => i % 3 !== 0);
  const pickedUp = take(dbsPickup, 0.4, random);
  const dbsCancel = take(dbsStarted, 0.04, random);
  const laasCancel = take(laasStarted, 0.15, random);
  const laasConfirm = take(laasReserved, 0.5, random);
  const laasDraftCancel = take(laasReserved, 0.15, random);

  const legal: PlannedGroup[] = [
    { name: 'FBS/Express: ship (READY_TO_SHIP)', requests: [...shipFbs, ...shipExp].map(to('PROCESSING', 'READY_TO_SHIP')) },
    { name: 'FBS/Express: cancel (SHOP_FAILED)', requests: [...cancelFbs, ...cancelExp].map(to('CANCELLED', 'SHOP_FAILED')) },
    {
      name: 'DBS: hand over, deliver, cancel',
      requests: [
        ...handOver.map(to('DELIVERY', 'DELIVERY_SERVICE_RECEIVED')),
        ...withoutDate.map(to('DELIVERED', 'DELIVERY_SERVICE_DELIVERED')),
        ...withDate.map(to('DELIVERED', 'DELIVERY_SERVICE_DELIVERED', { realDeliveryDate: yesterday })),
        ...pickedUp.map(to('DELIVERED', 'DELIVERY_SERVICE_DELIVERED')),
        ...dbsCancel.map(to('CANCELLED', 'USER_CHANGED_MIND')),
      ],
    },
    {
      name: 'LaaS: confirm drafts, cancel (async)',
      requests: [
        ...laasConfirm.map(to('PROCESSING', 'STARTED')),
        ...laasCancel.map(to('CANCELLED', 'SHOP_FAILED')),
        ...laasDraftCancel.map(to('CANCELLED', 'SHOP_FAILED')),
      ],
    },
  ];

  // Mistakes, each refused by explainTransition before any I/O.
  const first = <T>(list: T[], n: number): T[] => list.slice(0, n);
  const illegal = [
    ...first(pool('FBS', 'DELIVERED'), 3).map(to('PROCESSING', 'READY_TO_SHIP')),
    ...first(pool('FBS', 'CANCELLED'), 1).map(to('CANCELLED', 'SHOP_FAILED')),
    ...first(dbsDelivery, 2).map(to('PROCESSING', 'READY_TO_SHIP')),
    ...first(laasStarted, 2).map(to('PROCESSING', 'READY_TO_SHIP')),
    ...first(fbsStarted, 1).map(to('CANCELLED', 'USER_CHANGED_MIND')),
    ...first(dbsStarted, 2).map(to('CANCELLED', 'USER_UNREACHABLE')),
    ...first(dbsDelivery.slice(2), 1).map(to('DELIVERED', 'DELIVERY_SERVICE_DELIVERED', { realDeliveryDate: tomorrow })),
    ...first(shipFbs, 2).map(to('PROCESSING', 'READY_TO_SHIP')),
    ...first(pool('EXPRESS', 'PROCESSING', 'READY_TO_SHIP'), 1).map(to('PROCESSING', 'READY_TO_SHIP')),
    ...first(fbsStarted.slice(1), 1).map(to('DELIVERED', 'DELIVERY_SERVICE_DELIVERED')),
  ];
  return { legal, illegal: { name: 'operator mistakes', requests: illegal } };
}
