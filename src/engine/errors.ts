import { YmOrdersError } from '../errors.js';
import type { Blocker } from '../../machines/explain.js';
import type { CancellationBlocker } from '../../machines/order-machine.js';
import type { StatusTarget } from '../../machines/rules.js';

export const ENGINE_ERROR_CODES = {
  invalidCommand: 'INVALID_COMMAND',
  orderNotFound: 'ORDER_NOT_FOUND',
  campaignUnknown: 'CAMPAIGN_UNKNOWN',
  changeRefused: 'CHANGE_REFUSED',
  cancellationAnswerRefused: 'CANCELLATION_ANSWER_REFUSED',
  chainNotActive: 'CHAIN_NOT_ACTIVE',
  importConflict: 'IMPORT_CONFLICT',
  concurrentUpdate: 'CONCURRENT_UPDATE',
  snapshotTooNew: 'SNAPSHOT_TOO_NEW',
  engineClosed: 'ENGINE_CLOSED',
  apiNotConfigured: 'API_NOT_CONFIGURED',
  campaignConflict: 'CAMPAIGN_CONFLICT',
  snapshotMigrationMissing: 'SNAPSHOT_MIGRATION_MISSING',
  invalidOption: 'INVALID_OPTION',
  unsafeOption: 'UNSAFE_OPTION',
  syncPageTokenRepeated: 'SYNC_PAGE_TOKEN_REPEATED',
} as const;
export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[keyof typeof ENGINE_ERROR_CODES];

export class EngineError extends YmOrdersError {
  declare readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}

/** A command that does not have the documented shape; `issues` lists each field that is wrong. */
export class InvalidCommandError extends EngineError {
  readonly issues: readonly { path: string; message: string }[];
  constructor(command: string, issues: { path: string; message: string }[]) {
    super(
      ENGINE_ERROR_CODES.invalidCommand,
      `Invalid ${command}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`,
      { command, issues },
    );
    this.issues = issues;
  }
}

export class OrderNotFoundError extends EngineError {
  readonly orderId: number;
  constructor(orderId: number) {
    super(ENGINE_ERROR_CODES.orderNotFound, `Order ${orderId} is not tracked; import it or sync first.`, { orderId });
    this.orderId = orderId;
  }
}

export class CampaignUnknownError extends EngineError {
  readonly campaignId: number;
  constructor(campaignId: number, known: readonly number[]) {
    super(
      ENGINE_ERROR_CODES.campaignUnknown,
      `Campaign ${campaignId} is not configured (known: ${known.join(', ') || 'none'}); add it to the engine's campaigns with its businessId and model.`,
      { campaignId, knownCampaigns: known },
    );
    this.campaignId = campaignId;
  }
}

/** explainTransition refused the change: nothing was written or sent. */
export class ChangeRefusedError extends EngineError {
  readonly orderId: number;
  readonly blockers: readonly Blocker[];
  readonly allowedTargets: readonly StatusTarget[];
  constructor(orderId: number, target: { status: string; substatus?: string | undefined }, blockers: readonly Blocker[], allowedTargets: readonly StatusTarget[]) {
    const wanted = target.substatus ? `${target.status}/${target.substatus}` : target.status;
    super(
      ENGINE_ERROR_CODES.changeRefused,
      `Order ${orderId} cannot move to ${wanted}: ${blockers.map((b) => `[${b.code}] ${b.message}`).join(' ')}`,
      { orderId, target, blockers, allowedTargets },
    );
    this.orderId = orderId;
    this.blockers = blockers;
    this.allowedTargets = allowedTargets;
  }
}

/** stopChain() on an order with no multi-step change on its way (none asked, or it ended): nothing was written. */
export class ChainNotActiveError extends EngineError {
  readonly orderId: number;
  constructor(orderId: number, lastOutcome: { readonly kind: string; readonly requestNo: number } | null) {
    super(ENGINE_ERROR_CODES.chainNotActive, `Order ${orderId} has no multi-step change on its way; there is no chain to stop.`, {
      orderId,
      ...(lastOutcome !== null ? { lastOutcome: { kind: lastOutcome.kind, requestNo: lastOutcome.requestNo } } : {}),
    });
    this.orderId = orderId;
  }
}

/** judgeCancellationAnswer refused the answer (see CANCELLATION_BLOCKER_CODES): nothing was written or sent. */
export class CancellationAnswerRefusedError extends EngineError {
  readonly orderId: number;
  readonly answer: { readonly accepted: boolean; readonly reason?: string | undefined };
  readonly blockers: readonly CancellationBlocker[];
  constructor(orderId: number, answer: { accepted: boolean; reason?: string | undefined }, blockers: readonly CancellationBlocker[]) {
    const what = answer.accepted ? 'accept' : `refuse${answer.reason !== undefined ? ` (${answer.reason})` : ''}`;
    super(
      ENGINE_ERROR_CODES.cancellationAnswerRefused,
      `Order ${orderId}: cannot ${what} the buyer's cancellation: ${blockers.map((b) => `[${b.code}] ${b.message}`).join(' ')}`,
      { orderId, answer, blockers },
    );
    this.orderId = orderId;
    this.answer = answer;
    this.blockers = blockers;
  }
}

export class ImportConflictError extends EngineError {
  constructor(orderId: number, field: string, stored: unknown, given: unknown) {
    super(
      ENGINE_ERROR_CODES.importConflict,
      `Order ${orderId} is already tracked with ${field} ${String(stored)}, not ${String(given)}; an order never changes ${field}. Check the import file.`,
      { orderId, field, stored, given },
    );
  }
}

export class ConcurrentUpdateError extends EngineError {
  constructor(kind: 'order' | 'operation', id: number | string, expectedRowVersion: number, actualRowVersion: number | undefined) {
    super(
      ENGINE_ERROR_CODES.concurrentUpdate,
      `The ${kind} ${id} changed since it was read (row version ${expectedRowVersion}, now ${actualRowVersion ?? 'gone'}); read it again and retry.`,
      { kind, id, expectedRowVersion, actualRowVersion },
    );
  }
}

export class SnapshotTooNewError extends EngineError {
  constructor(kind: string, id: string | number, version: number, supported: number) {
    super(
      ENGINE_ERROR_CODES.snapshotTooNew,
      `The ${kind} ${id} was written by machine version ${version}; this ym-orders knows up to ${supported}. Upgrade ym-orders.`,
      { kind, id, version, supportedVersion: supported },
    );
  }
}

/** A campaign's model or business changed while it has orders: they were judged under the old one. */
export class CampaignConflictError extends EngineError {
  constructor(campaignId: number, field: 'model' | 'businessId', stored: unknown, given: unknown, orders: number) {
    super(
      ENGINE_ERROR_CODES.campaignConflict,
      `Campaign ${campaignId} is stored with ${field} ${String(stored)} and has ${orders} order(s); the configuration says ${String(given)}. A campaign never changes ${field}: fix the configuration, or use a new database.`,
      { campaignId, field, stored, given, orders },
    );
  }
}

export class SnapshotMigrationMissingError extends EngineError {
  constructor(kind: string, id: string | number, fromVersion: number) {
    super(
      ENGINE_ERROR_CODES.snapshotMigrationMissing,
      `The ${kind} ${id} was written by machine version ${fromVersion}, and no migration from it exists in this ym-orders.`,
      { kind, id, fromVersion },
    );
  }
}

export class EngineClosedError extends EngineError {
  constructor() {
    super(ENGINE_ERROR_CODES.engineClosed, 'The engine is closed; create a new one.');
  }
}

export class ApiNotConfiguredError extends EngineError {
  constructor() {
    super(
      ENGINE_ERROR_CODES.apiNotConfigured,
      'This engine has no Market API configured: pass `api: { baseUrl, apiKey }` to createEngine (the CLI reads YM_API_KEY and --api-url).',
    );
  }
}

export function isEngineError(value: unknown): value is EngineError {
  return value instanceof EngineError;
}

/**
 * The Market answered a sync page with a page token it had already given in the same sweep:
 * following it would read the same pages forever. The cursor stays at the last stored page.
 */
export class SyncPageTokenRepeatedError extends EngineError {
  readonly businessId: number;
  readonly pageToken: string;
  /** Pages read in this sync before the repeat. */
  readonly pages: number;
  constructor(businessId: number, pageToken: string, pages: number) {
    const shown = pageToken.length > 40 ? `${pageToken.slice(0, 40)}…` : pageToken;
    super(
      ENGINE_ERROR_CODES.syncPageTokenRepeated,
      `Sync of business ${businessId} stopped after ${pages} page(s): the Market gave the page token "${shown}" a second time in one sweep, so following it would never end. The cursor stays at the last stored page; the next sync asks for that page again and goes on if the Market then answers a new token.`,
      { businessId, pageToken, pages },
    );
    this.businessId = businessId;
    this.pageToken = pageToken;
    this.pages = pages;
  }
}

/** Engine options of the wrong shape (a negative interval, a batch the API refuses, a typo'd key); nothing was opened. */
export class InvalidOptionError extends EngineError {
  readonly issues: readonly { path: string; message: string }[];
  constructor(issues: { path: string; message: string }[]) {
    super(
      ENGINE_ERROR_CODES.invalidOption,
      `Invalid engine options: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`,
      { issues },
    );
    this.issues = issues;
  }
}

/** An engine option that could make the engine send a change twice; nothing was opened. */
export class UnsafeOptionError extends EngineError {
  readonly option: string;
  readonly value: number;
  readonly minimum: number;
  constructor(option: string, value: number, minimum: number, why: string) {
    super(
      ENGINE_ERROR_CODES.unsafeOption,
      `Engine option ${option} = ${value} could send a change twice: ${why} Use at least ${minimum}, or leave it unset.`,
      { option, value, minimum },
    );
    this.option = option;
    this.value = value;
    this.minimum = minimum;
  }
}
