// The receiver's own failures, one class per stable code. A notification that does not match its
// spec is the Market's mistake and becomes a 400 answer (NotificationFormatError carries what is
// wrong); a bad network list or option is the operator's and is thrown at start-up. Messages name
// fields and limits, never the values a sender put in them.

import { YmOrdersError } from '../errors.js';

export const NOTIFICATION_ERROR_CODES = {
  /** The body is not a notification the spec describes (answered 400 WRONG_EVENT_FORMAT). */
  wrongFormat: 'NOTIFY_WRONG_FORMAT',
  /** The body is larger than the receiver's limit (answered 413 over HTTP, 400 to handle()). */
  tooLarge: 'NOTIFY_TOO_LARGE',
  /** A network in an allow-list or trusted-proxy list is no IPv4/IPv6 address or CIDR. */
  badNetwork: 'NOTIFY_BAD_NETWORK',
  /** A receiver or handler option out of range (body limit, name, version). */
  badOption: 'NOTIFY_BAD_OPTION',
} as const;
export type NotificationErrorCode = (typeof NOTIFICATION_ERROR_CODES)[keyof typeof NOTIFICATION_ERROR_CODES];

export class NotificationError extends YmOrdersError {
  declare readonly code: NotificationErrorCode;
  constructor(code: NotificationErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}

export interface NotificationIssue {
  /** Dotted path of the field, '' for the body itself. */
  readonly path: string;
  readonly message: string;
}

/** The most a 400 message says: the Market logs it, and a hostile body must not make it grow. */
export const MAX_ISSUE_MESSAGE_LENGTH = 500;

/** Cuts `text` to at most `max` characters, marking the cut: for paths and keys a sender chose. */
export function clipText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A body that does not match the notification spec; `issues` names each wrong field. */
export class NotificationFormatError extends NotificationError {
  readonly issues: readonly NotificationIssue[];
  constructor(issues: readonly NotificationIssue[]) {
    const listed = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
    super(NOTIFICATION_ERROR_CODES.wrongFormat, clipText(`Notification does not match the spec: ${listed}`, MAX_ISSUE_MESSAGE_LENGTH), { issues: issues.slice(0, 10) });
    this.issues = issues;
  }
}

export class NotificationTooLargeError extends NotificationError {
  readonly limitBytes: number;
  constructor(limitBytes: number, sizeBytes?: number) {
    const size = sizeBytes === undefined ? 'more than' : `${sizeBytes} bytes, over`;
    super(NOTIFICATION_ERROR_CODES.tooLarge, `Notification body is ${size} the limit of ${limitBytes} bytes.`, { limitBytes, sizeBytes });
    this.limitBytes = limitBytes;
  }
}

export class NotificationNetworkError extends NotificationError {
  readonly network: string;
  constructor(network: string, reason: string) {
    const shown = clipText(network, 60);
    super(NOTIFICATION_ERROR_CODES.badNetwork, `${JSON.stringify(shown)} is not a network: ${reason} (expected e.g. 5.45.207.0/25, 2a02:6b8::/32 or one address).`, { network: shown, reason });
    this.network = shown;
  }
}

export class NotificationOptionError extends NotificationError {
  readonly option: string;
  constructor(option: string, expected: string) {
    super(NOTIFICATION_ERROR_CODES.badOption, `Option ${option} must be ${expected}.`, { option, expected });
    this.option = option;
  }
}
