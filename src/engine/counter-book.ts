// The engine's counters (calls by method, orders sent, accepted, …) are rows per owner, so another
// process and an inspector see them. Counting happens on the hot path, so counts gather here and
// reach the store in the transaction that reports them (once per runner pass, and on stats()).

import type { StoreTx } from '../store/port.js';

export interface DispatchCounters {
  /** HTTP calls made, by Market method. */
  calls: Record<string, number>;
  ordersSent: number;
  accepted: number;
  rejected: number;
  operationsStarted: number;
  uncertain: number;
  deferred: number;
  readBacks: number;
  /** 420 answers, to any call. */
  rateLimited: number;
  /** Whole-batch 400s split in halves to isolate the offending orders. */
  bisections: number;
}

/** Counter names other than `calls.<method>` and `market.*`. */
type Count = Exclude<keyof DispatchCounters, 'calls'>;
export type CounterName = Count | `calls.${string}` | 'market.answered' | 'market.failed';

const COUNTS: readonly Count[] = ['ordersSent', 'accepted', 'rejected', 'operationsStarted', 'uncertain', 'deferred', 'readBacks', 'rateLimited', 'bisections'];

export class CounterBook {
  readonly #owner: string;
  #pending: Record<string, number> = {};

  constructor(owner: string) {
    this.#owner = owner;
  }

  add(name: CounterName, n = 1): void {
    if (n !== 0) this.#pending[name] = (this.#pending[name] ?? 0) + n;
  }

  /** Whether anything was counted since the last save (else a report needs no write transaction). */
  get unsaved(): boolean {
    return Object.keys(this.#pending).length > 0;
  }

  /** The totals stored for this engine, without what was counted since the last save. */
  saved(tx: StoreTx): Promise<Record<string, number>> {
    return tx.counters.forOwner(this.#owner);
  }

  /** Writes what was counted since the last save, in the caller's transaction, and reads the totals back. */
  async save(tx: StoreTx): Promise<Record<string, number>> {
    const pending = this.#pending;
    this.#pending = {};
    try {
      if (Object.keys(pending).length > 0) await tx.counters.add(this.#owner, pending);
      return await tx.counters.forOwner(this.#owner);
    } catch (error) {
      // Not written after all: count it again with the next save.
      for (const [name, n] of Object.entries(pending)) this.#pending[name] = (this.#pending[name] ?? 0) + n;
      throw error;
    }
  }
}

/** The stored counters of one owner, in the report's shape. */
export function dispatchCounters(rows: Readonly<Record<string, number>>): DispatchCounters {
  const calls: Record<string, number> = {};
  for (const [name, n] of Object.entries(rows)) if (name.startsWith('calls.')) calls[name.slice('calls.'.length)] = n;
  const counters = { calls } as DispatchCounters;
  for (const name of COUNTS) counters[name] = rows[name] ?? 0;
  return counters;
}
