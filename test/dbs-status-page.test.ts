// The official DBS status-model page (NOTES.md §d2), stated here LITERALLY, not derived from
// SELLER_RULES: its green (shop) arrows, where its orange (cancellation) arrows leave, and the
// cancel substatuses the shop may send per status. explainTransition, the table and the fake
// Market are held against it both ways, so an edit of the table that breaks the page fails.

import { describe, expect, it } from 'vitest';
import { explainTransition } from '../machines/explain.js';
import { SELLER_RULES } from '../machines/rules.js';
import { ORDER_SUBSTATUSES } from '../machines/statuses.js';
import { readMarketRefusal } from '../src/market/refusals.js';
import { OrderBook } from '../src/testing/order-book.js';

type State = readonly [status: string, substatus: string];

const key = ([status, substatus]: State): string => `${status}/${substatus}`;

/** Green arrows: the only moves a DBS shop makes, from exactly these substatuses. */
const PAGE_SHOP_EDGES: readonly (readonly [State, State])[] = [
  [['PROCESSING', 'STARTED'], ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED']],
  [['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'], ['PICKUP', 'PICKUP_SERVICE_RECEIVED']],
  [['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'], ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED']],
  [['PICKUP', 'PICKUP_SERVICE_RECEIVED'], ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED']],
  [['DELIVERY', 'DELIVERY_USER_NOT_RECEIVED'], ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED']],
];

/** Where the orange arrows leave, and "the substatuses the shop may send" for that status. */
const PAGE_SHOP_CANCELLATIONS: readonly (readonly [State, readonly string[]])[] = [
  [['PROCESSING', 'STARTED'], ['SHOP_FAILED', 'USER_CHANGED_MIND', 'USER_UNREACHABLE', 'INCORRECT_PERSONAL_DATA']],
  [['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'], ['SHOP_FAILED', 'USER_CHANGED_MIND', 'USER_UNREACHABLE']],
  [['PICKUP', 'PICKUP_SERVICE_RECEIVED'], ['SHOP_FAILED', 'USER_CHANGED_MIND', 'USER_UNREACHABLE', 'PICKUP_EXPIRED']],
];

/** "Set only by the buyer or the system": never sent by the shop (PICKUP_EXPIRED is also in the shop's PICKUP list). */
const PAGE_SYSTEM_ONLY = [
  'RESERVATION_EXPIRED', 'USER_NOT_PAID', 'USER_REFUSED_DELIVERY', 'USER_REFUSED_PRODUCT', 'USER_REFUSED_QUALITY',
  'USER_IDENTIFICATION_MISMATCH', 'PURCHASE_GROUP_THRESHOLD_NOT_REACHED_CANCELLED', 'REPLACING_ORDER', 'PROCESSING_EXPIRED',
  'PICKUP_EXPIRED', 'TOO_MANY_DELIVERY_DATE_CHANGES',
] as const;

/** Every change the page lets a DBS shop make, as `from → to` keys. */
const PAGE_CHANGES: ReadonlySet<string> = new Set([
  ...PAGE_SHOP_EDGES.map(([from, to]) => `${key(from)} → ${key(to)}`),
  ...PAGE_SHOP_CANCELLATIONS.flatMap(([from, subs]) => subs.map((s) => `${key(from)} → CANCELLED/${s}`)),
]);

/** The buyer's number was unavailable: USER_UNREACHABLE's call conditions do not apply. */
const NUMBER_UNAVAILABLE = { numberUnavailable: true } as const;

function allowedForDbs(from: State, to: State): boolean {
  const request = { status: to[0], substatus: to[1], ...(to[1] === 'USER_UNREACHABLE' ? { callEvidence: NUMBER_UNAVAILABLE } : {}) };
  return explainTransition({ status: from[0], substatus: from[1] }, request, 'DBS').allowed;
}

// Every substatus of the spec under the statuses a DBS order passes through, and every target
// the Market accepts at all ("Status not allowed" names the five) with the substatuses that matter.
const FROM_STATES: State[] = ['PROCESSING', 'DELIVERY', 'PICKUP', 'DELIVERED', 'CANCELLED', 'UNPAID', 'RESERVED'].flatMap((status) =>
  ORDER_SUBSTATUSES.map((substatus): State => [status, substatus]),
);
const TARGET_SUBSTATUSES = [
  'STARTED', 'READY_TO_SHIP', 'SHIPPED', 'DELIVERY_SERVICE_RECEIVED', 'USER_RECEIVED', 'DELIVERY_USER_NOT_RECEIVED',
  'COURIER_RECEIVED', 'PICKUP_SERVICE_RECEIVED', 'PICKUP_USER_RECEIVED', 'DELIVERY_SERVICE_DELIVERED', 'DELIVERED_USER_NOT_RECEIVED',
];
const CANCEL_SUBSTATUSES = [...new Set([...PAGE_SYSTEM_ONLY, ...PAGE_SHOP_CANCELLATIONS.flatMap(([, s]) => s), 'TOO_LONG_DELIVERY', 'TECHNICAL_ERROR'])];
const TARGETS: State[] = [
  ...['PROCESSING', 'DELIVERY', 'PICKUP', 'DELIVERED'].flatMap((status) => TARGET_SUBSTATUSES.map((s): State => [status, s])),
  ...CANCEL_SUBSTATUSES.map((s): State => ['CANCELLED', s]),
];

describe('the DBS status-model page, literally (NOTES.md §d2)', () => {
  it.each(PAGE_SHOP_EDGES.map(([from, to]) => [key(from), key(to), from, to] as const))('green arrow %s → %s is allowed', (_f, _t, from, to) => {
    expect(allowedForDbs(from, to)).toBe(true);
  });

  it.each(PAGE_SHOP_CANCELLATIONS.flatMap(([from, subs]) => subs.map((s) => [key(from), s, from] as const)))(
    'from %s the shop may cancel with %s',
    (_f, substatus, from) => {
      expect(allowedForDbs(from, ['CANCELLED', substatus])).toBe(true);
    },
  );

  it('nothing else: every other change from any DBS state to any accepted target is refused', () => {
    const unexpected: string[] = [];
    let judged = 0;
    for (const from of FROM_STATES) {
      for (const to of TARGETS) {
        const change = `${key(from)} → ${key(to)}`;
        judged++;
        if (allowedForDbs(from, to) !== PAGE_CHANGES.has(change)) unexpected.push(change);
      }
    }
    expect(unexpected).toEqual([]);
    expect(judged).toBeGreaterThan(30_000);
  });

  it('the table has exactly the page changes for DBS, each from a named substatus (no wildcard)', () => {
    const dbsRows = SELLER_RULES.filter((r) => r.models.includes('DBS'));
    for (const r of dbsRows) expect(r.from.substatus, r.id).toBeDefined();
    const tableChanges = dbsRows.map((r) => `${r.from.status}/${r.from.substatus} → ${r.to.status}/${r.to.substatus}`);
    expect(new Set(tableChanges)).toEqual(PAGE_CHANGES);
    expect(tableChanges).toHaveLength(PAGE_CHANGES.size);
  });

  it('DBS has no READY_TO_SHIP, from STARTED or anywhere', () => {
    const r = explainTransition({ status: 'PROCESSING', substatus: 'STARTED' }, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }, 'DBS');
    expect(r.allowed).toBe(false);
    if (!r.allowed) expect(r.blockers.map((b) => b.code)).toEqual(['FORBIDDEN_FOR_MODEL']);
  });

  it('substatuses set only by the buyer or the system are never the shop’s, except PICKUP_EXPIRED from PICKUP', () => {
    for (const substatus of PAGE_SYSTEM_ONLY) {
      const from = FROM_STATES.filter((s) => allowedForDbs(s, ['CANCELLED', substatus])).map(key);
      expect(from, substatus).toEqual(substatus === 'PICKUP_EXPIRED' ? ['PICKUP/PICKUP_SERVICE_RECEIVED'] : []);
    }
  });

  it('only the arbitration edge is marked as an assumption among the DBS rows', () => {
    const assumed = SELLER_RULES.filter((r) => r.models.includes('DBS') && r.assumption !== undefined).map((r) => `${r.from.status}/${r.from.substatus} → ${r.to.status}/${r.to.substatus}`);
    expect(assumed).toEqual(['DELIVERY/DELIVERY_USER_NOT_RECEIVED → DELIVERED/DELIVERY_SERVICE_DELIVERED']);
    for (const r of SELLER_RULES.filter((row) => row.models.includes('DBS'))) expect(r.source, r.id).toContain('§d2');
  });
});

describe('the fake Market judges DBS changes by the same page', () => {
  const campaign = { campaignId: 1, businessId: 2, model: 'DBS' } as const;

  /** A fresh fake with one order in `from`, asked for `to`. */
  function fakeChange(from: State, to: State) {
    const book = new OrderBook({ campaigns: [campaign], now: () => 1_000, operationDelayMs: 0, failOperation: () => false });
    book.seed([{ id: 7, campaignId: 1, status: from[0], substatus: from[1] }]);
    return book.change(1, 7, { status: to[0], substatus: to[1] });
  }

  it('accepts every page change and applies it', () => {
    for (const change of PAGE_CHANGES) {
      const [from, to] = change.split(' → ').map((s) => s.split('/') as unknown as State);
      const result = fakeChange(from!, to!);
      expect(result.ok, change).toBe(true);
      if (result.ok) expect(key([result.order.status, result.order.substatus]), change).toBe(key(to!));
    }
  });

  it('refuses changes off the page, in the Market’s own words', () => {
    const cases: [State, State, string][] = [
      [['PROCESSING', 'STARTED'], ['PROCESSING', 'READY_TO_SHIP'], 'TRANSITION_NOT_ALLOWED'],
      [['DELIVERY', 'COURIER_RECEIVED'], ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED'], 'TRANSITION_NOT_ALLOWED'],
      [['PROCESSING', 'STARTED'], ['CANCELLED', 'USER_REFUSED_QUALITY'], 'CANCEL_SUBSTATUS_NOT_AVAILABLE'],
      [['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'], ['CANCELLED', 'PICKUP_EXPIRED'], 'CANCEL_SUBSTATUS_NOT_AVAILABLE'],
      [['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'], ['RETURNED', 'UNKNOWN'], 'STATUS_NOT_ALLOWED'],
    ];
    for (const [from, to, code] of cases) {
      const result = fakeChange(from, to);
      expect(result.ok, `${key(from)} → ${key(to)}`).toBe(false);
      if (!result.ok) {
        expect(result.message).toMatch(/^Order 7: /);
        expect(readMarketRefusal(result.message), result.message).toMatchObject({ code });
      }
    }
  });
});
