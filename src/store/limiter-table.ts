import type { Database, Statement } from 'better-sqlite3';

export interface BudgetRow {
  readonly resource_key: string;
  readonly capacity: number;
  readonly remaining: number;
  readonly window_ends_at: number;
  readonly blocked_until: number;
  readonly updated_at: number;
}

/**
 * Budgets and in-flight leases of the rate limiter, shared by every process on the file.
 * @internal The SQLite driver stays out of the published types.
 */
export class LimiterTable {
  readonly #get: Statement<[string], BudgetRow>;
  readonly #put: Statement;
  readonly #dropExpired: Statement;
  readonly #inFlight: Statement<[string], { n: number }>;
  readonly #inFlightWeight: Statement<[string, string], { w: number | null }>;
  readonly #addLease: Statement;
  readonly #removeLease: Statement;
  readonly #lingerLease: Statement;
  readonly #all: Statement<[], BudgetRow>;

  constructor(db: Database) {
    this.#get = db.prepare('SELECT * FROM limiter WHERE resource_key = ?');
    this.#put = db.prepare(`INSERT INTO limiter (resource_key, capacity, remaining, window_ends_at, blocked_until, updated_at)
      VALUES (@resource_key, @capacity, @remaining, @window_ends_at, @blocked_until, @updated_at)
      ON CONFLICT (resource_key) DO UPDATE SET capacity = excluded.capacity, remaining = excluded.remaining,
        window_ends_at = excluded.window_ends_at, blocked_until = excluded.blocked_until, updated_at = excluded.updated_at`);
    this.#dropExpired = db.prepare('DELETE FROM limiter_leases WHERE expires_at <= ?');
    this.#inFlight = db.prepare('SELECT COUNT(*) AS n FROM limiter_leases WHERE scope_key = ?');
    this.#inFlightWeight = db.prepare('SELECT SUM(weight) AS w FROM limiter_leases WHERE resource_key = ? AND lease_id <> ?');
    this.#addLease = db.prepare('INSERT INTO limiter_leases (lease_id, scope_key, resource_key, weight, expires_at) VALUES (?, ?, ?, ?, ?)');
    this.#removeLease = db.prepare('DELETE FROM limiter_leases WHERE lease_id = ?');
    this.#lingerLease = db.prepare('UPDATE limiter_leases SET expires_at = MIN(expires_at, ?) WHERE lease_id = ?');
    this.#all = db.prepare('SELECT * FROM limiter ORDER BY resource_key');
  }

  get(resourceKey: string): BudgetRow | undefined {
    return this.#get.get(resourceKey);
  }

  put(row: BudgetRow): void {
    this.#put.run(row);
  }

  dropExpiredLeases(now: number): void {
    this.#dropExpired.run(now);
  }

  inFlight(scopeKey: string): number {
    return this.#inFlight.get(scopeKey)?.n ?? 0;
  }

  /** Weight of the other requests in flight against `resourceKey`, which the Market has not counted yet. */
  inFlightWeight(resourceKey: string, exceptLeaseId: string): number {
    return this.#inFlightWeight.get(resourceKey, exceptLeaseId)?.w ?? 0;
  }

  addLease(leaseId: string, scopeKey: string, resourceKey: string, weight: number, expiresAt: number): void {
    this.#addLease.run(leaseId, scopeKey, resourceKey, weight, expiresAt);
  }

  removeLease(leaseId: string): boolean {
    return this.#removeLease.run(leaseId).changes === 1;
  }

  /**
   * Keeps a lease, its parallel slot and its weight, until `until` (or its own expiry, if sooner):
   * for a request abandoned without an answer, which the Market may have counted, in a window
   * that may outlast ours, and may still be serving.
   */
  lingerLease(leaseId: string, until: number): boolean {
    return this.#lingerLease.run(until, leaseId).changes === 1;
  }

  all(): BudgetRow[] {
    return this.#all.all();
  }
}
