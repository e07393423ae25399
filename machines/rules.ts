// Which status changes a seller may ask the Market for, per fulfilment model, as data.
// Each row cites where the fact comes from (paths relative to shared/market-api/);
// rows the docs leave unclear carry an `assumption` saying what we chose and why.
// To amend the table, edit a row or add one: the machines, explainTransition, the
// fake Market and the README table all read this list.

import type { FulfilmentModel } from './statuses.js';

/** A status pattern: `substatus` absent means "any substatus of that status". */
export interface StatusPattern {
  readonly status: string;
  readonly substatus?: string;
}

/** The exact status and substatus a seller change sets. */
export interface StatusTarget {
  readonly status: string;
  readonly substatus: string;
}

export const RULE_REQUIREMENTS = {
  /** USER_UNREACHABLE cancellations need call evidence that meets the documented conditions. */
  callEvidence: 'callEvidence',
} as const;
export type RuleRequirement = (typeof RULE_REQUIREMENTS)[keyof typeof RULE_REQUIREMENTS];

export interface SellerRule {
  /** Stable id, used in tests, blockers and the README. */
  readonly id: string;
  readonly models: readonly FulfilmentModel[];
  readonly from: StatusPattern;
  readonly to: StatusTarget;
  /** The change completes through an async operation (getOperations), not in the answer. */
  readonly async?: boolean;
  /** DBS: the change may carry delivery.dates.realDeliveryDate, which only the single PUT accepts. */
  readonly acceptsRealDeliveryDate?: boolean;
  readonly requires?: RuleRequirement;
  readonly source: string;
  readonly assumption?: string;
}

const STATUS_UPDATE = 'partner-api/openapi/paths/v2_campaigns_campaignId_orders_status-update.yaml';
const SUBSTATUS_ENUM = 'partner-api/openapi/components/schemas/OrderSubstatusType.yaml';
const DBS_PAGE = 'NOTES.md §d, DBS "How order statuses change"';
const DATES_DTO = 'partner-api/openapi/components/schemas/OrderStatusChangeDeliveryDatesDTO.yaml';

/** The cancellation reasons a DBS seller may give on the buyer's behalf. */
export const DBS_BUYER_CANCEL_REASONS = [
  'USER_CHANGED_MIND',
  'USER_REFUSED_DELIVERY',
  'USER_REFUSED_PRODUCT',
  'USER_REFUSED_QUALITY',
  'REPLACING_ORDER',
  'USER_UNREACHABLE',
] as const;

const DBS_OPEN_STATUSES = ['PROCESSING', 'DELIVERY', 'PICKUP'] as const;

function dbsCancellations(): SellerRule[] {
  const rows: SellerRule[] = [];
  for (const from of DBS_OPEN_STATUSES) {
    rows.push({
      id: `DBS.cancel-shop-failed-from-${from.toLowerCase()}`,
      models: ['DBS'],
      from: { status: from },
      to: { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
      source: DBS_PAGE,
      ...(from === 'PROCESSING'
        ? {}
        : { assumption: `The DBS page says the shop cancels with SHOP_FAILED without naming the states; we allow it from ${from} too, as an order the shop still holds.` }),
    });
    for (const reason of DBS_BUYER_CANCEL_REASONS) {
      rows.push({
        id: `DBS.cancel-${reason.toLowerCase().replaceAll('_', '-')}-from-${from.toLowerCase()}`,
        models: ['DBS'],
        from: { status: from },
        to: { status: 'CANCELLED', substatus: reason },
        ...(reason === 'USER_UNREACHABLE' ? { requires: RULE_REQUIREMENTS.callEvidence } : {}),
        source: `${SUBSTATUS_ENUM} (CANCELLED reasons); ${DBS_PAGE}`,
        assumption: 'Buyer-reason cancellations by a DBS shop are allowed from every state the shop still holds; the docs list the reasons but not the states.',
      });
    }
  }
  return rows;
}

export const SELLER_RULES: readonly SellerRule[] = [
  // FBS and Express: the seller packs (READY_TO_SHIP) or cancels; Market sets everything else.
  {
    id: 'FBS.ready-to-ship',
    models: ['FBS', 'EXPRESS'],
    from: { status: 'PROCESSING', substatus: 'STARTED' },
    to: { status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
    source: `${STATUS_UPDATE} (description); NOTES.md §d, FBS and Express step-by-step pages`,
  },
  {
    id: 'FBS.cancel-from-started',
    models: ['FBS', 'EXPRESS'],
    from: { status: 'PROCESSING', substatus: 'STARTED' },
    to: { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    source: `${STATUS_UPDATE} (description)`,
  },
  {
    id: 'FBS.cancel-from-ready-to-ship',
    models: ['FBS', 'EXPRESS'],
    from: { status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
    to: { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    source: `${STATUS_UPDATE} (description)`,
  },

  // DBS: the shop drives delivery itself.
  {
    id: 'DBS.ready-to-ship',
    models: ['DBS'],
    from: { status: 'PROCESSING', substatus: 'STARTED' },
    to: { status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
    source: `${STATUS_UPDATE} (description, not model-specific)`,
    assumption: 'The DBS status table does not list READY_TO_SHIP; the bulk method allows STARTED → READY_TO_SHIP without naming a model, so DBS shops may mark packing too.',
  },
  {
    id: 'DBS.hand-to-delivery',
    models: ['DBS'],
    from: { status: 'PROCESSING' },
    to: { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
    source: DBS_PAGE,
  },
  {
    id: 'DBS.arrive-at-pickup',
    models: ['DBS'],
    from: { status: 'DELIVERY' },
    to: { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' },
    acceptsRealDeliveryDate: true,
    source: `${DBS_PAGE}; ${DATES_DTO}`,
  },
  {
    id: 'DBS.deliver-from-delivery',
    models: ['DBS'],
    from: { status: 'DELIVERY' },
    to: { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' },
    acceptsRealDeliveryDate: true,
    source: `${DBS_PAGE}; ${DATES_DTO}`,
  },
  {
    id: 'DBS.deliver-from-pickup',
    models: ['DBS'],
    from: { status: 'PICKUP' },
    to: { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' },
    acceptsRealDeliveryDate: true,
    source: `${DBS_PAGE}; ${DATES_DTO}`,
  },
  ...dbsCancellations(),

  // LaaS: confirm a draft, or cancel; the cancellation completes asynchronously.
  {
    id: 'LAAS.confirm-draft',
    models: ['LAAS'],
    from: { status: 'RESERVED' },
    to: { status: 'PROCESSING', substatus: 'STARTED' },
    source: `${STATUS_UPDATE} (description, LaaS section)`,
    assumption: 'The spec says "confirm a draft with PROCESSING/STARTED"; a LaaS draft is an order in RESERVED (the only LaaS-only status).',
  },
  {
    id: 'LAAS.cancel-draft',
    models: ['LAAS'],
    from: { status: 'RESERVED' },
    to: { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    async: true,
    source: `${STATUS_UPDATE} (description, LaaS section); NOTES.md §b`,
    assumption: 'Cancelling an unconfirmed draft uses the same CANCELLED/SHOP_FAILED request as a confirmed order.',
  },
  {
    id: 'LAAS.cancel',
    models: ['LAAS'],
    from: { status: 'PROCESSING' },
    to: { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    async: true,
    source: `${STATUS_UPDATE} (description, LaaS section); NOTES.md §b`,
  },
];

/** Statuses from which no seller change exists; the Market may still move the order (returns). */
export const TERMINAL_STATUSES = ['CANCELLED', 'DELIVERED', 'PARTIALLY_RETURNED', 'RETURNED'] as const;

export function isTerminalStatus(status: string): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export function matchesPattern(pattern: StatusPattern, status: string, substatus: string | undefined): boolean {
  return pattern.status === status && (pattern.substatus === undefined || pattern.substatus === substatus);
}

/** The rules of `model` that start from the given state. */
export function rulesFrom(model: FulfilmentModel, status: string, substatus: string | undefined): SellerRule[] {
  return SELLER_RULES.filter((r) => r.models.includes(model) && matchesPattern(r.from, status, substatus));
}

/** The rule that makes `from → to` legal for `model`, if any. */
export function findSellerRule(
  model: FulfilmentModel,
  from: { status: string; substatus?: string | undefined },
  to: { status: string; substatus?: string | undefined },
): SellerRule | undefined {
  return rulesFrom(model, from.status, from.substatus).find(
    (r) => r.to.status === to.status && r.to.substatus === to.substatus,
  );
}

/** Every target any rule of `model` can set: what a seller may ever ask for. */
export function sellerTargets(model: FulfilmentModel): StatusTarget[] {
  const seen = new Map<string, StatusTarget>();
  for (const r of SELLER_RULES) {
    if (r.models.includes(model)) seen.set(`${r.to.status}/${r.to.substatus}`, r.to);
  }
  return [...seen.values()];
}
