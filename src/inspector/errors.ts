// The inspector's own failures: a stable code each, with the fields that say what to fix.

import { YmOrdersError } from '../errors.js';

export const INSPECTOR_ERROR_CODES = {
  /** Off loopback without a token, or a token too short to stand guard. */
  tokenRequired: 'INSPECTOR_TOKEN_REQUIRED',
  /** The address could not be bound (in use, not on this host, no permission). */
  listenFailed: 'INSPECTOR_LISTEN_FAILED',
  /** A page was asked for with a filter or paging value it cannot use. */
  badQuery: 'INSPECTOR_BAD_QUERY',
} as const;

export class InspectorError extends YmOrdersError {}

export class InspectorQueryError extends InspectorError {
  readonly parameter: string;
  constructor(parameter: string, value: string, expected: string) {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    super(INSPECTOR_ERROR_CODES.badQuery, `"${parameter}" is ${JSON.stringify(shown)}; expected ${expected}.`, { parameter, value: shown, expected });
    this.parameter = parameter;
  }
}
