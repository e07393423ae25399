// How the fake Market renders its orders: OrderDTO (the PUT status answer) and
// BusinessOrderDTO (getBusinessOrders), with every field the spec marks required filled
// plausibly, so contract tests can validate the fake's answers against the official YAML.

import type { FulfilmentModel } from '../../machines/statuses.js';
import { formatIsoMoscow, formatMarketDateTime, moscowDate, moscowDateDdMmYyyy } from '../market/dates.js';
import type { FakeOrder } from './order-book.js';

const ITEM_PRICE = 1000;

/** The one item of a fake order (the fake sells one of each): the fields every item DTO shares. */
export function item(order: FakeOrder): { id: number; offerId: string; offerName: string; count: number } {
  return { id: order.id * 10 + 1, offerId: `offer-${order.id}`, offerName: `Item of order ${order.id}`, count: 1 };
}

// DBS shops deliver themselves; in the other models the Market's logistics do.
const deliveryPartner = (model: FulfilmentModel): 'SHOP' | 'YANDEX_MARKET' => (model === 'DBS' ? 'SHOP' : 'YANDEX_MARKET');

/** OrderDTO.yaml; dates in `DD-MM-YYYY HH:MM:SS` Moscow time. */
export function toOrderDto(order: FakeOrder, model: FulfilmentModel): Record<string, unknown> {
  return {
    id: order.id,
    status: order.status,
    substatus: order.substatus,
    creationDate: formatMarketDateTime(order.creationDate),
    updatedAt: formatMarketDateTime(order.updateDate),
    currency: 'RUR',
    itemsTotal: ITEM_PRICE,
    deliveryTotal: 0,
    buyerItemsTotalBeforeDiscount: ITEM_PRICE,
    paymentType: 'PREPAID',
    paymentMethod: 'YANDEX',
    fake: order.fake,
    items: [{ ...item(order), price: ITEM_PRICE, buyerPrice: ITEM_PRICE, buyerPriceBeforeDiscount: ITEM_PRICE }],
    delivery: {
      type: 'DELIVERY',
      serviceName: 'Fake delivery',
      deliveryServiceId: 1,
      deliveryPartnerType: deliveryPartner(model),
      dates: { fromDate: moscowDateDdMmYyyy(order.creationDate) },
    },
    buyer: { type: 'PERSON' },
    taxSystem: 'OSN',
    ...(model === 'DBS' ? { cancelRequested: order.cancelRequested } : {}),
  };
}

/** BusinessOrderDTO.yaml; dates in ISO 8601 with the Moscow offset. */
export function toBusinessOrderDto(order: FakeOrder, model: FulfilmentModel): Record<string, unknown> {
  return {
    orderId: order.id,
    campaignId: order.campaignId,
    programType: model,
    status: order.status,
    substatus: order.substatus,
    creationDate: formatIsoMoscow(order.creationDate),
    updateDate: formatIsoMoscow(order.updateDate),
    paymentType: 'PREPAID',
    paymentMethod: 'YANDEX',
    fake: order.fake,
    items: [item(order)],
    delivery: {
      type: 'DELIVERY',
      serviceName: 'Fake delivery',
      deliveryServiceId: 1,
      deliveryPartnerType: deliveryPartner(model),
      dates: { fromDate: moscowDate(order.creationDate) },
    },
    ...(model === 'DBS' ? { cancelRequested: order.cancelRequested } : {}),
  };
}
