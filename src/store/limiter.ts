/** One rate-limit budget (a Market resource in one scope), shared by every process on the database. */
export interface BudgetRow {
  readonly resource_key: string;
  readonly capacity: number;
  readonly remaining: number;
  readonly window_ends_at: number;
  readonly blocked_until: number;
  readonly updated_at: number;
  /** When the latest 420 for this budget was answered (the engine's clock); null when none was. */
  readonly last_rate_limited_at: number | null;
}

/**
 * Budgets and in-flight leases. A lease is a request in flight: it holds a parallel slot of its
 * scope and its weight is not yet reflected in the Market's Remaining header. Lease times are on
 * the store's clock (see OutboxPort): `now` is the caller's, used where the store has no other.
 */
export interface LimiterPort {
  /**
   * Serialises the permits of one scope (e.g. `campaign:21000101`) across every process until this
   * transaction ends, so two processes never both see a free parallel slot or the same remaining
   * budget. Call it first in a transaction that reads and then writes the scope's budgets or leases.
   * (SQLite: a no-op, since BEGIN IMMEDIATE already serialises every write transaction.)
   */
  lockScope(scopeKey: string): Promise<void>;
  get(resourceKey: string): Promise<BudgetRow | undefined>;
  /** Inserts or replaces the budget, every column: carry the ones you do not change. */
  put(row: BudgetRow): Promise<void>;
  /** Drops leases that expired at or before now. */
  dropExpiredLeases(now: number): Promise<void>;
  /** Leases of the scope (expired ones too, until dropped). */
  inFlight(scopeKey: string): Promise<number>;
  /** Summed weight of the leases against `resourceKey` other than `exceptLeaseId`. */
  inFlightWeight(resourceKey: string, exceptLeaseId: string): Promise<number>;
  /** A lease that expires `leaseMs` from now. */
  addLease(leaseId: string, scopeKey: string, resourceKey: string, weight: number, now: number, leaseMs: number): Promise<void>;
  /** False when there was no such lease. */
  removeLease(leaseId: string): Promise<boolean>;
  /**
   * The lease now ends `forMs` from now, sooner or later than before: a request abandoned
   * without an answer keeps its slot for a while after it was abandoned, however long ago its
   * permit was taken. False when there was no such lease.
   */
  lingerLease(leaseId: string, now: number, forMs: number): Promise<boolean>;
  /** Every budget, by resource key. */
  all(): Promise<BudgetRow[]>;
}
