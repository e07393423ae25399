import { YmOrdersError } from '../errors.js';
import type { Blocker } from '../../machines/explain.js';
import type { StatusTarget } from '../../machines/rules.js';

export const ENGINE_ERROR_CODES = {
  invalidCommand: 'INVALID_COMMAND',
  orderNotFound: 'ORDER_NOT_FOUND',
  campaignUnknown: 'CAMPAIGN_UNKNOWN',
  changeRefused: 'CHANGE_REFUSED',
  importConflict: 'IMPORT_CONFLICT',
  concurrentUpdate: 'CONCURRENT_UPDATE',
  snapshotTooNew: 'SNAPSHOT_TOO_NEW',
  engineClosed: 'ENGINE_CLOSED',
  apiNotConfigured: 'API_NOT_CONFIGURED',
  campaignConflict: 'CAMPAIGN_CONFLICT',
  snapshotMigrationMissing: 'SNAPSHOT_MIGRATION_MISSING',
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
