// The push receiver (POST /notification): schemas from the notification spec, the receiver that
// stores each notification in the inbox, the source-network checks and the node:http handler.

export {
  NOTIFICATION_ERROR_CODES,
  NotificationError,
  NotificationFormatError,
  NotificationTooLargeError,
  NotificationNetworkError,
  NotificationOptionError,
  type NotificationErrorCode,
  type NotificationIssue,
} from './errors.js';
export {
  NOTIFICATION_TYPES,
  NOTIFICATION_LIMITS,
  NOTIFICATION_API_ERROR_TYPES,
  SendNotificationRequestSchema,
  SendNotificationResponseSchema,
  isKnownNotificationType,
  parseNotification,
  readNotificationBody,
  type KnownNotification,
  type NotificationApiErrorType,
  type NotificationType,
  type ParsedNotification,
  type SendNotificationErrorResponse,
  type SendNotificationResponse,
  type UnknownNotification,
} from './schemas.js';
export {
  NotificationReceiver,
  NOTIFICATION_COUNTERS,
  NOTIFICATION_OUTCOMES,
  READ_REQUESTING_TYPES,
  type NotificationAnswer,
  type NotificationOutcome,
  type NotificationReceiverOptions,
  type NotificationStats,
} from './receiver.js';
export { MARKET_NOTIFICATION_NETWORKS, NetworkList, parseIpAddress, parseNetwork, resolveClientAddress, type IpAddress, type Network } from './network.js';
export {
  createNotificationHttpHandler,
  NOTIFICATION_PATH,
  HEALTH_PATH,
  type HttpOutcome,
  type NotificationHttpOptions,
  type NotificationLogLine,
} from './http.js';
