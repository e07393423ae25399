// Which status changes a seller may ask the Market for, per fulfilment model, as data.
// Each row cites where the fact comes from (paths relative to shared/market-api/);
// rows the docs leave unclear carry an `assumption` saying what we chose and why.
// To amend the table, edit a row or add one: the machines, explainTransition, the
// fake Market and the README table all read this list.

import type { FulfilmentModel, KnownOrderStatus, KnownOrderSubstatus } from './statuses.js';

/** A status pattern: `substatus` absent means "any substatus of that status". */
export interface StatusPattern {
  readonly status: string;
  readonly substatus?: string;
}

/** The exact status and substatus a seller change sets. */
export interface StatusTarget {
  readonly status: KnownOrderStatus;
  readonly substatus: KnownOrderSubstatus;
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
const DATES_DTO = 'partner-api/openapi/components/schemas/OrderStatusChangeDeliveryDatesDTO.yaml';
/** The official DBS status-model page: its diagram (arrow colours say who moves the order) and its lists. */
const DBS_PAGE = 'NOTES.md §d2 (DBS status-model page)';

/**
 * DBS cancellation by the shop (NOTES.md §d2): the diagram's orange arrows leave exactly these
 * three states, and the page lists, per current status, the substatuses the shop may send.
 * The page warns that statuses sent out of the diagram's order are an error, so a list applies
 * only where its status has an orange arrow, not to any substatus of the status.
 */
export const DBS_SHOP_CANCELLATIONS = [
  {
    from: { status: 'PROCESSING', substatus: 'STARTED' },
    substatuses: ['SHOP_FAILED', 'USER_CHANGED_MIND', 'USER_UNREACHABLE', 'INCORRECT_PERSONAL_DATA'],
  },
  {
    from: { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
    substatuses: ['SHOP_FAILED', 'USER_CHANGED_MIND', 'USER_UNREACHABLE'],
  },
  {
    from: { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' },
    substatuses: ['SHOP_FAILED', 'USER_CHANGED_MIND', 'USER_UNREACHABLE', 'PICKUP_EXPIRED'],
  },
] as const;

function dbsCancellations(): SellerRule[] {
  return DBS_SHOP_CANCELLATIONS.flatMap(({ from, substatuses }) =>
    substatuses.map((substatus): SellerRule => ({
      id: `DBS.cancel-${substatus.toLowerCase().replaceAll('_', '-')}-from-${from.status.toLowerCase()}`,
      models: ['DBS'],
      from,
      to: { status: 'CANCELLED', substatus },
      ...(substatus === 'USER_UNREACHABLE' ? { requires: RULE_REQUIREMENTS.callEvidence } : {}),
      source: `${DBS_PAGE}: orange arrow from ${from.status}/${from.substatus}; ${substatus} is in the shop's list for ${from.status}${substatus === 'USER_UNREACHABLE' ? `; call conditions: ${SUBSTATUS_ENUM} L18-24` : ''}`,
    })),
  );
}

export const SELLER_RULES: readonly SellerRule[] = [
  // FBS and Express: the seller packs (READY_TO_SHIP) or cancels; Market sets everything else,
  // and there is no seller edge beyond these three (no undo of READY_TO_SHIP; NOTES.md §d2).
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

  // DBS: the shop drives delivery itself, along the diagram's green arrows and nowhere else.
  // The DBS model has no PROCESSING/READY_TO_SHIP.
  {
    id: 'DBS.hand-to-delivery',
    models: ['DBS'],
    from: { status: 'PROCESSING', substatus: 'STARTED' },
    to: { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
    source: `${DBS_PAGE}: green arrow "Заказ передан в доставку"`,
  },
  {
    id: 'DBS.arrive-at-pickup',
    models: ['DBS'],
    from: { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
    to: { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' },
    acceptsRealDeliveryDate: true,
    source: `${DBS_PAGE}: green arrow "Заказ принят в ПВЗ"; ${DATES_DTO}`,
  },
  {
    id: 'DBS.deliver-from-delivery',
    models: ['DBS'],
    from: { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
    to: { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' },
    acceptsRealDeliveryDate: true,
    source: `${DBS_PAGE}: green arrow; ${DATES_DTO}`,
  },
  {
    id: 'DBS.deliver-from-pickup',
    models: ['DBS'],
    from: { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' },
    to: { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' },
    acceptsRealDeliveryDate: true,
    source: `${DBS_PAGE}: green arrow; ${DATES_DTO}`,
  },
  {
    id: 'DBS.deliver-after-arbitration',
    models: ['DBS'],
    from: { status: 'DELIVERY', substatus: 'DELIVERY_USER_NOT_RECEIVED' },
    to: { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' },
    acceptsRealDeliveryDate: true,
    source: `${DBS_PAGE}: green arrow inside the arbitration box; ${DATES_DTO}`,
    assumption: "The diagram draws this arrow green (the shop's), while the page's table says the arbitration that DELIVERY_USER_NOT_RECEIVED starts is ended by the Market; we follow the diagram and let the shop report the delivery.",
  },
  ...dbsCancellations(),

  // LaaS: confirm a draft, or cancel; the cancellation completes asynchronously. A draft is an
  // order the Market created in RESERVED; unconfirmed within an hour, the Market cancels it itself.
  {
    id: 'LAAS.confirm-draft',
    models: ['LAAS'],
    from: { status: 'RESERVED' },
    to: { status: 'PROCESSING', substatus: 'STARTED' },
    source: `${STATUS_UPDATE} (description, LaaS section); NOTES.md §d2 (a draft is an order in RESERVED, CreateOrderDTO.yaml)`,
  },
  {
    id: 'LAAS.cancel-draft',
    models: ['LAAS'],
    from: { status: 'RESERVED' },
    to: { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    async: true,
    source: `${STATUS_UPDATE} (description, LaaS section); NOTES.md §b, §d2`,
    assumption: 'NOTES.md §d2: whether a draft is cancelled with CANCELLED/SHOP_FAILED is not stated (the LaaS diagram was not retrieved); we use the same request as for a confirmed order.',
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
