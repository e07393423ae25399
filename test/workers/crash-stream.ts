// Where the crash worker's stream stands in a database file, shared by the worker (to resume) and
// test/crash.test.ts (to check a killed run). Command n runs at its own instant, commandTime(n),
// in its own engine transaction, and the stream position (the `crash-worker` cursor) is written
// just after it in another: a kill between the two leaves command n committed with the cursor at
// n - 1. Every write of command n stamps an order row with commandTime(n), and no later command
// has run, so the order rows tell: the position is the cursor, or one more when its next command's
// stamp is there.

import { T0 } from '../helpers/engine-fixtures.js';
import type { Store } from '../../src/store/port.js';

export const CRASH_CURSOR = 'crash-worker';
export const CRASH_STREAM_ORDERS = 12;
/** Every order the stream may name: 1..CRASH_STREAM_ORDERS are tracked, one more never is. */
export const CRASH_ORDER_IDS: readonly number[] = Array.from({ length: CRASH_STREAM_ORDERS + 1 }, (_, i) => i + 1);

/** The engine clock while command `n` runs. */
export function commandTime(n: number): number {
  return T0 + n * 1_000;
}

export interface StreamPosition {
  /** The stored cursor: the last command whose position was written. */
  readonly cursor: number;
  /** The last command committed: the cursor, or the command after it if that one wrote. */
  readonly position: number;
}

export function streamPosition(store: Store): Promise<StreamPosition> {
  return store.read(async (tx) => {
    const cursor = Number((await tx.cursors.get(CRASH_CURSOR)) ?? 0);
    let latest = Number.NEGATIVE_INFINITY;
    for (const id of CRASH_ORDER_IDS) latest = Math.max(latest, (await tx.orders.get(id))?.updated_at ?? Number.NEGATIVE_INFINITY);
    return { cursor, position: latest === commandTime(cursor + 1) ? cursor + 1 : cursor };
  });
}
