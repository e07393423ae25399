// Order snapshots as stored: XState's persisted snapshot as JSON, tagged with the machine
// version that wrote it. Older versions are upgraded on load by the migrations below, in order;
// a newer version than this code knows is refused rather than guessed at.

import { DEFAULT_ASYNC_SETTLE_MS, orderMachine, ORDER_MACHINE_VERSION } from '../../machines/order-machine.js';
import { SnapshotMigrationMissingError, SnapshotTooNewError } from './errors.js';
import { createMachineStepper } from './machine-step.js';

export type OrderSnapshot = ReturnType<typeof orderMachine.resolveState>;

/** The order machine's one stepper: resolves stored snapshots here, steps them in the order book. */
export const orderStepper = createMachineStepper(orderMachine);

/** The stored JSON shape (XState's persisted snapshot); migrations edit it as plain data. */
export interface StoredSnapshot {
  value: unknown;
  context: Record<string, unknown>;
  [key: string]: unknown;
}

export interface SnapshotMigration {
  /** Upgrades a snapshot written by machine version `from` to `from + 1`. */
  readonly from: number;
  readonly description: string;
  readonly migrate: (snapshot: StoredSnapshot) => StoredSnapshot;
}

export const ORDER_SNAPSHOT_MIGRATIONS: readonly SnapshotMigration[] = [
  {
    from: 1,
    description: 'v2 adds the cancellation region with context.cancellationRequestedAt (DBS), and pending.operationType',
    migrate: (snapshot) => {
      const context = snapshot.context as { pending?: Record<string, unknown> | null };
      const pending =
        context.pending && context.pending.operationId !== undefined && context.pending.operationType === undefined
          ? // v1 only ever started operations for LaaS status updates.
            { ...context.pending, operationType: 'ORDER_STATUS_UPDATE' }
          : context.pending;
      return {
        ...snapshot,
        // v1 never saw a cancellation request, so every v1 order is in `none`.
        value: { ...(snapshot.value as Record<string, unknown>), cancellation: 'none' },
        context: { ...snapshot.context, pending: pending ?? null, cancellationRequestedAt: null },
      };
    },
  },
  {
    from: 2,
    description: 'v3 adds context.asyncSettleMs, before which a read-back of an async change is inconclusive',
    migrate: (snapshot) => ({ ...snapshot, context: { ...snapshot.context, asyncSettleMs: DEFAULT_ASYNC_SETTLE_MS } }),
  },
  {
    from: 3,
    description: 'v4 answers cancellation requests: `requested` gets substates, context the answer, its last outcome and its last refusal',
    migrate: (snapshot) => {
      const value = snapshot.value as Record<string, unknown>;
      // v3 never answered, so an open request is unanswered.
      const cancellation = value.cancellation === 'requested' ? { requested: 'unanswered' } : value.cancellation;
      return {
        ...snapshot,
        value: { ...value, cancellation },
        context: { ...snapshot.context, cancellationAnswer: null, lastCancellationAnswer: null, lastAnswerRefusal: null },
      };
    },
  },
  {
    from: 4,
    description: 'v5 adds multi-step changes: context.chain (what follows the pending change), null for every v4 order',
    migrate: (snapshot) => ({ ...snapshot, context: { ...snapshot.context, chain: null } }),
  },
];

export function upgradeStoredSnapshot(
  snapshot: StoredSnapshot,
  version: number,
  orderId: number,
  migrations: readonly SnapshotMigration[] = ORDER_SNAPSHOT_MIGRATIONS,
  latest: number = ORDER_MACHINE_VERSION,
): StoredSnapshot {
  if (version > latest) throw new SnapshotTooNewError('order', orderId, version, latest);
  let current = snapshot;
  for (let v = version; v < latest; v++) {
    const step = migrations.find((m) => m.from === v);
    if (!step) throw new SnapshotMigrationMissingError('order', orderId, v);
    current = step.migrate(current);
  }
  return current;
}

export function loadOrderSnapshot(json: string, version: number, orderId: number): OrderSnapshot {
  const stored = upgradeStoredSnapshot(JSON.parse(json) as StoredSnapshot, version, orderId);
  return orderStepper.resolve(stored as unknown as Parameters<typeof orderMachine.resolveState>[0]);
}

export function serializeOrderSnapshot(snapshot: OrderSnapshot): string {
  return orderStepper.persist(snapshot);
}

/** `PROCESSING.STARTED`, `CANCELLED`, …: the market region's state as one string. */
export function marketStatePath(value: unknown): string {
  const market = (value as { market?: unknown }).market;
  if (typeof market === 'string') return market;
  if (market && typeof market === 'object') {
    const [parent, child] = Object.entries(market)[0] ?? [];
    return `${parent}.${String(child)}`;
  }
  return 'routing';
}

export function changeState(value: unknown): string {
  return String((value as { change?: unknown }).change ?? 'idle');
}
