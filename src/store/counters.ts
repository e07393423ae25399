/**
 * Named counts per engine (owner), e.g. `calls.updateOrderStatuses` or `accepted`: each engine adds
 * its own, and another process or an inspector reads them.
 */
export interface CountersPort {
  /** Adds each delta to the owner's counter of that name (a missing counter starts at 0). */
  add(owner: string, deltas: Readonly<Record<string, number>>): Promise<void>;
  /** The owner's counters by name (only names ever added). */
  forOwner(owner: string): Promise<Record<string, number>>;
  /** Every owner's counters summed, by name. */
  totals(): Promise<Record<string, number>>;
}
