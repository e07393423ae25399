// The CLI's failures and exit codes. Every error the CLI prints is `error [CODE]: message`,
// where CODE is a CLI code below or the `code` of the typed error the library threw.

import { YmOrdersError, isYmOrdersError } from '../errors.js';

export const EXIT_CODES = {
  /** Everything asked for was done. */
  ok: 0,
  /** A change was refused locally, or failed or stayed unsettled at the Market. */
  failed: 1,
  /** Bad usage or input: nothing was changed; the message says what to fix. */
  usage: 2,
} as const;
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

export const CLI_ERROR_CODES = {
  usage: 'USAGE',
  inputInvalid: 'INPUT_INVALID',
  fileUnreadable: 'FILE_UNREADABLE',
  configInvalid: 'CONFIG_INVALID',
  missingApiKey: 'MISSING_API_KEY',
  noCampaigns: 'NO_CAMPAIGNS',
  dbNotFound: 'DB_NOT_FOUND',
  changeRefused: 'CHANGE_REFUSED',
  marketRejected: 'MARKET_REJECTED',
  notSettled: 'NOT_SETTLED',
  interrupted: 'INTERRUPTED',
  internal: 'INTERNAL',
} as const;
export type CliErrorCode = (typeof CLI_ERROR_CODES)[keyof typeof CLI_ERROR_CODES];

/** A failure the CLI itself detected; `exitCode` says how the process ends. */
export class CliError extends YmOrdersError {
  readonly exitCode: ExitCode;
  constructor(code: string, message: string, exitCode: ExitCode = EXIT_CODES.usage, details: Record<string, unknown> = {}) {
    super(code, message, details);
    this.exitCode = exitCode;
  }
}

export const usageError = (message: string): CliError => new CliError(CLI_ERROR_CODES.usage, message, EXIT_CODES.usage);
export const inputError = (message: string, details: Record<string, unknown> = {}): CliError =>
  new CliError(CLI_ERROR_CODES.inputInvalid, message, EXIT_CODES.usage, details);

// Library codes that mean "the input or the setup is wrong": fix it and run again.
const USAGE_CODES: ReadonlySet<string> = new Set([
  'INVALID_COMMAND',
  'ORDER_NOT_FOUND',
  'CAMPAIGN_UNKNOWN',
  'IMPORT_CONFLICT',
  'CAMPAIGN_CONFLICT',
  'SNAPSHOT_TOO_NEW',
  'SNAPSHOT_MIGRATION_MISSING',
  'API_NOT_CONFIGURED',
  'DB_NOT_OURS',
  'DB_CORRUPT',
  'DB_SCHEMA_TOO_NEW',
  'DB_CANNOT_OPEN',
  'DB_UNSUPPORTED',
]);

export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  if (isYmOrdersError(error) && USAGE_CODES.has(error.code)) return EXIT_CODES.usage;
  return EXIT_CODES.failed;
}

export function errorCode(error: unknown): string {
  return isYmOrdersError(error) ? error.code : CLI_ERROR_CODES.internal;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
