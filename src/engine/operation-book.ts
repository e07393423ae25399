// Operation rows: each async Market operation's machine snapshot and its next poll time.
// Poll results go through the operation machine; the effects it returns tell the caller
// what to do to the linked order.

import {
  operationMachine,
  OPERATION_MACHINE_VERSION,
  type OperationEvent,
  type PollPolicy,
} from '../../machines/operation-machine.js';
import type { OperationRow } from '../store/operations.js';
import type { StoreTx } from '../store/port.js';
import { ConcurrentUpdateError, SnapshotTooNewError } from './errors.js';
import { createMachineStepper } from './machine-step.js';

const operationStepper = createMachineStepper(operationMachine);

type OperationSnapshot = ReturnType<typeof operationMachine.resolveState>;

/** What the linked order must learn from an operation that ended. */
export type OperationOutcome =
  | { readonly kind: 'done'; readonly orderId: number | null }
  | { readonly kind: 'failed' | 'expired'; readonly orderId: number | null; readonly reason: string };

function load(row: OperationRow): OperationSnapshot {
  if (row.machine_version > OPERATION_MACHINE_VERSION) {
    throw new SnapshotTooNewError('operation', row.operation_id, row.machine_version, OPERATION_MACHINE_VERSION);
  }
  return operationStepper.resolve(JSON.parse(row.snapshot));
}

function columns(snapshot: OperationSnapshot, now: number) {
  return {
    operation_id: snapshot.context.operationId,
    operation_type: snapshot.context.operationType,
    business_id: snapshot.context.businessId,
    order_id: snapshot.context.orderId,
    state: String(snapshot.value),
    next_poll_at: snapshot.context.nextPollAt,
    deadline_at: snapshot.context.deadlineAt,
    machine_version: OPERATION_MACHINE_VERSION,
    snapshot: operationStepper.persist(snapshot),
    updated_at: now,
  };
}

export class OperationBook {
  readonly #policy: Partial<PollPolicy>;

  constructor(policy: Partial<PollPolicy> = {}) {
    this.#policy = policy;
  }

  /** Records a new operation; starting the same one twice keeps the first. */
  async start(tx: StoreTx, op: { operationId: string; operationType: string; businessId: number; orderId: number | null }, now: number): Promise<void> {
    const [snapshot] = operationStepper.initial({ ...op, startedAt: now, policy: this.#policy });
    await tx.operations.insert(columns(snapshot, now));
  }

  /** Applies a poll result or a deadline check; returns the outcome once the operation has ended. */
  async apply(tx: StoreTx, operationId: string, event: OperationEvent, now: number): Promise<OperationOutcome | undefined> {
    const row = await tx.operations.get(operationId);
    if (!row || row.state !== 'inProgress') return undefined;
    const [next, actions] = operationStepper.step(load(row), event);
    if (!(await tx.operations.update(columns(next, now), row.row_version))) {
      throw new ConcurrentUpdateError('operation', operationId, row.row_version, (await tx.operations.get(operationId))?.row_version);
    }
    for (const action of actions) {
      const params = action.params as { orderId: number | null; reason?: string };
      if (action.type === 'effect.operationDone') return { kind: 'done', orderId: params.orderId };
      if (action.type === 'effect.operationFailed') return { kind: 'failed', orderId: params.orderId, reason: params.reason ?? '' };
      if (action.type === 'effect.operationExpired') return { kind: 'expired', orderId: params.orderId, reason: params.reason ?? '' };
    }
    return undefined;
  }
}
