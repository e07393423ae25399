// zod schemas for the five Partner API methods we call, checked against
// shared/market-api/partner-api/openapi/components/schemas/*.yaml.
//
// Requests are strict: we build them, so an unknown key is our bug and is caught before sending.
// Responses are loose: they keep fields we do not model and require only what we read, so the
// Market adding a field never breaks us. Statuses, substatuses and operation types/statuses are
// open enums (the spec says "other values may be returned"): any string is data.

import { z } from 'zod';
import { parseMarketDateTime } from './dates.js';

export const MAX_ORDERS_PER_STATUS_UPDATE = 30;
export const MAX_OPERATION_IDS = 100;
export const MAX_BUSINESS_ORDERS_PAGE = 50;

/** int64 in the spec; JavaScript numbers are exact only up to 2^53, which every id so far fits. */
const OrderId = z.int();
/** CampaignId.yaml: int64, minimum 1. BusinessId is the same shape. */
const PositiveId = z.int().positive();

/** Open enums: OrderStatusType, OrderSubstatusType, OperationType, OperationStatusType. */
const OpenEnum = z.string().min(1);

const uniqueItems = <T>(items: readonly T[]): boolean => new Set(items).size === items.length;

// ---- shared response pieces --------------------------------------------------------------

/** ApiResponseStatusType.yaml */
export const ApiResponseStatusSchema = z.enum(['OK', 'ERROR']);

/** OperationDTO.yaml: both fields required. OperationId.yaml: string of length 1..1000. */
export const OperationSchema = z.looseObject({
  id: z.string().min(1).max(1000),
  type: OpenEnum,
});
export type Operation = z.infer<typeof OperationSchema>;

/** ApiErrorDTO.yaml */
export const ApiErrorSchema = z.looseObject({
  code: z.string(),
  message: z.string().optional(),
});
export type ApiError = z.infer<typeof ApiErrorSchema>;

/** ApiErrorResponse.yaml: `errors` is nullable in the spec. */
export const ApiErrorResponseSchema = z.looseObject({
  status: ApiResponseStatusSchema.optional(),
  errors: z.array(ApiErrorSchema).nullable().optional(),
});
export type ApiErrorResponse = z.infer<typeof ApiErrorResponseSchema>;

// ---- updateOrderStatuses: POST /v2/campaigns/{campaignId}/orders/status-update -------------

/** OrderStateDTO.yaml */
export const OrderStateSchema = z.strictObject({
  id: OrderId.positive(),
  status: OpenEnum,
  substatus: OpenEnum.optional(),
});
export type OrderState = z.infer<typeof OrderStateSchema>;

/**
 * UpdateOrderStatusesRequest.yaml: 1..30 orders. Unique ids are our own rule: with one order
 * twice, the answer could not be matched to the request.
 */
export const UpdateOrderStatusesRequestSchema = z.strictObject({
  orders: z.array(OrderStateSchema).min(1).max(MAX_ORDERS_PER_STATUS_UPDATE)
    .refine((orders) => uniqueItems(orders.map((o) => o.id)), 'order ids must be unique within one request'),
});
export type UpdateOrderStatusesRequest = z.infer<typeof UpdateOrderStatusesRequestSchema>;

/** OrderUpdateStatusType.yaml: OK = changed, ERROR = not changed. */
export const OrderUpdateStatusSchema = z.enum(['OK', 'ERROR']);

/** UpdateOrderStatusDTO.yaml: nothing is required in the spec; we need `id` and `updateStatus`. */
export const UpdateOrderStatusResultSchema = z.looseObject({
  id: OrderId,
  status: OpenEnum.optional(),
  substatus: OpenEnum.optional(),
  updateStatus: OrderUpdateStatusSchema,
  errorDetails: z.string().optional(),
  operation: OperationSchema.optional(),
});
export type UpdateOrderStatusResult = z.infer<typeof UpdateOrderStatusResultSchema>;

/** UpdateOrderStatusesResponse.yaml = ApiResponse + result: UpdateOrderStatusesDTO. */
export const UpdateOrderStatusesResponseSchema = z.looseObject({
  status: ApiResponseStatusSchema,
  result: z.looseObject({ orders: z.array(UpdateOrderStatusResultSchema) }).optional(),
});
export type UpdateOrderStatusesResponse = z.infer<typeof UpdateOrderStatusesResponseSchema>;

// ---- updateOrderStatus: PUT /v2/campaigns/{campaignId}/orders/{orderId}/status -------------

/** OrderStatusChangeDTO.yaml with its delivery.dates.realDeliveryDate (`YYYY-MM-DD`, DBS only). */
export const OrderStatusChangeSchema = z.strictObject({
  status: OpenEnum,
  substatus: OpenEnum.optional(),
  delivery: z.strictObject({
    dates: z.strictObject({ realDeliveryDate: z.iso.date().optional() }).optional(),
  }).optional(),
});
export type OrderStatusChange = z.infer<typeof OrderStatusChangeSchema>;

/** UpdateOrderStatusRequest.yaml */
export const UpdateOrderStatusRequestSchema = z.strictObject({ order: OrderStatusChangeSchema });
export type UpdateOrderStatusRequest = z.infer<typeof UpdateOrderStatusRequestSchema>;

/** DateDdMmYyyyHhMmSs.yaml: `DD-MM-YYYY HH:MM:SS`, Moscow time. */
export const MarketDateTimeSchema = z.string()
  .refine((text) => parseMarketDateTime(text) !== undefined, 'expected DD-MM-YYYY HH:MM:SS');

/** OrderDTO.yaml: we read id, status, substatus and updatedAt; everything else is kept as is. */
export const OrderSchema = z.looseObject({
  id: OrderId,
  status: OpenEnum,
  substatus: OpenEnum,
  updatedAt: MarketDateTimeSchema.optional(),
  cancelRequested: z.boolean().optional(),
});
export type Order = z.infer<typeof OrderSchema>;

/** UpdateOrderStatusResponse.yaml: no status wrapper; `order` is not marked required but we need it. */
export const UpdateOrderStatusResponseSchema = z.looseObject({
  order: OrderSchema,
  operation: OperationSchema.optional(),
});
export type UpdateOrderStatusResponse = z.infer<typeof UpdateOrderStatusResponseSchema>;

// ---- getOperations: POST /v1/businesses/{businessId}/operations ---------------------------

/** GetOperationsRequest.yaml */
export const GetOperationsRequestSchema = z.strictObject({
  operationType: OpenEnum,
  operationIds: z.array(z.string().min(1).max(1000)).min(1).max(MAX_OPERATION_IDS)
    .refine(uniqueItems, 'operation ids must be unique'),
});
export type GetOperationsRequest = z.infer<typeof GetOperationsRequestSchema>;

/** OperationResultDTO.yaml: id, type and status required. */
export const OperationResultSchema = z.looseObject({
  id: z.string().min(1),
  type: OpenEnum,
  status: OpenEnum,
});
export type OperationResult = z.infer<typeof OperationResultSchema>;

/** GetOperationsResponse.yaml = ApiResponse + result: GetOperationsResultDTO; we need `result`. */
export const GetOperationsResponseSchema = z.looseObject({
  status: ApiResponseStatusSchema,
  result: z.looseObject({ operations: z.array(OperationResultSchema) }),
});
export type GetOperationsResponse = z.infer<typeof GetOperationsResponseSchema>;

// ---- getBusinessOrders: POST /v1/businesses/{businessId}/orders ---------------------------

const IsoDateTime = z.iso.datetime({ offset: true });
const NonEmptyUnique = <T extends z.ZodType>(item: T) =>
  z.array(item).min(1).refine(uniqueItems, 'items must be unique');

/** OrderDatesFilterDTO.yaml */
export const OrderDatesFilterSchema = z.strictObject({
  creationDateFrom: z.iso.date().optional(),
  creationDateTo: z.iso.date().optional(),
  shipmentDateFrom: z.iso.date().optional(),
  shipmentDateTo: z.iso.date().optional(),
  updateDateFrom: IsoDateTime.optional(),
  updateDateTo: IsoDateTime.optional(),
});

/** GetBusinessOrdersRequest.yaml (the spec allows null for the lists; we omit instead). */
export const GetBusinessOrdersRequestSchema = z.strictObject({
  orderIds: NonEmptyUnique(OrderId.positive()).max(MAX_BUSINESS_ORDERS_PAGE).optional(),
  externalOrderIds: NonEmptyUnique(z.string().min(1)).max(50).optional(),
  programTypes: NonEmptyUnique(OpenEnum).optional(),
  campaignIds: NonEmptyUnique(PositiveId).max(50).optional(),
  statuses: NonEmptyUnique(OpenEnum).optional(),
  substatuses: NonEmptyUnique(OpenEnum).optional(),
  dates: OrderDatesFilterSchema.optional(),
  fake: z.boolean().optional(),
  waitingForCancellationApprove: z.boolean().optional(),
  sourcePlatforms: NonEmptyUnique(OpenEnum).optional(),
});
export type GetBusinessOrdersRequest = z.infer<typeof GetBusinessOrdersRequestSchema>;

/** Query of getBusinessOrders: AliasedPageToken.yaml and PageLimit50Truncate.yaml. */
export const GetBusinessOrdersQuerySchema = z.strictObject({
  pageToken: z.string().min(1).optional(),
  limit: z.int().min(1).max(MAX_BUSINESS_ORDERS_PAGE).optional(),
});
export type GetBusinessOrdersQuery = z.infer<typeof GetBusinessOrdersQuerySchema>;

/** BusinessOrderDTO.yaml: `orderId` (not `id`) and `updateDate` in ISO 8601 with an offset. */
export const BusinessOrderSchema = z.looseObject({
  orderId: OrderId,
  campaignId: PositiveId,
  status: OpenEnum,
  substatus: OpenEnum,
  updateDate: IsoDateTime.optional(),
  programType: OpenEnum.optional(),
  cancelRequested: z.boolean().optional(),
});
export type BusinessOrder = z.infer<typeof BusinessOrderSchema>;

/** GetBusinessOrdersResponse.yaml; paging is PackagingForwardScrollingPagerDTO. */
export const GetBusinessOrdersResponseSchema = z.looseObject({
  orders: z.array(BusinessOrderSchema),
  paging: z.looseObject({ nextPageToken: z.string().optional() }).optional(),
});
export type GetBusinessOrdersResponse = z.infer<typeof GetBusinessOrdersResponseSchema>;

// ---- acceptOrderCancellation: PUT /v2/campaigns/{campaignId}/orders/{orderId}/cancellation/accept

/** OrderCancellationReasonType.yaml: why a DBS order cannot be cancelled any more. */
export const OrderCancellationReasonSchema = z.enum(['ORDER_DELIVERED', 'ORDER_IN_DELIVERY']);
export type OrderCancellationReason = z.infer<typeof OrderCancellationReasonSchema>;

/** AcceptOrderCancellationRequest.yaml: `reason` is required when `accepted` is false. */
export const AcceptOrderCancellationRequestSchema = z.strictObject({
  accepted: z.boolean(),
  reason: OrderCancellationReasonSchema.optional(),
}).refine((body) => body.accepted || body.reason !== undefined, {
  message: 'reason is required when accepted is false',
  path: ['reason'],
});
export type AcceptOrderCancellationRequest = z.infer<typeof AcceptOrderCancellationRequestSchema>;

/** EmptyApiResponse.yaml */
export const EmptyApiResponseSchema = z.looseObject({ status: ApiResponseStatusSchema });
export type EmptyApiResponse = z.infer<typeof EmptyApiResponseSchema>;
