import type { Database, Statement } from 'better-sqlite3';
import type { BudgetRow, LimiterPort } from '../limiter.js';

export class LimiterTable implements LimiterPort {
  readonly #get: Statement<[string], BudgetRow>;
  readonly #put: Statement<[BudgetRow]>;
  readonly #dropExpired: Statement<[number]>;
  readonly #inFlight: Statement<[string], { n: number }>;
  readonly #inFlightWeight: Statement<[string, string], { w: number | null }>;
  readonly #addLease: Statement<[string, string, string, number, number]>;
  readonly #removeLease: Statement<[string]>;
  readonly #lingerLease: Statement<[number, string]>;
  readonly #all: Statement<[], BudgetRow>;

  constructor(db: Database) {
    this.#get = db.prepare('SELECT * FROM limiter WHERE resource_key = ?');
    this.#put = db.prepare(`INSERT INTO limiter (resource_key, capacity, remaining, window_ends_at, blocked_until, updated_at, last_rate_limited_at)
      VALUES (@resource_key, @capacity, @remaining, @window_ends_at, @blocked_until, @updated_at, @last_rate_limited_at)
      ON CONFLICT (resource_key) DO UPDATE SET capacity = excluded.capacity, remaining = excluded.remaining,
        window_ends_at = excluded.window_ends_at, blocked_until = excluded.blocked_until, updated_at = excluded.updated_at,
        last_rate_limited_at = excluded.last_rate_limited_at`);
    this.#dropExpired = db.prepare('DELETE FROM limiter_leases WHERE expires_at <= ?');
    this.#inFlight = db.prepare('SELECT COUNT(*) AS n FROM limiter_leases WHERE scope_key = ?');
    this.#inFlightWeight = db.prepare('SELECT SUM(weight) AS w FROM limiter_leases WHERE resource_key = ? AND lease_id <> ?');
    this.#addLease = db.prepare('INSERT INTO limiter_leases (lease_id, scope_key, resource_key, weight, expires_at) VALUES (?, ?, ?, ?, ?)');
    this.#removeLease = db.prepare('DELETE FROM limiter_leases WHERE lease_id = ?');
    this.#lingerLease = db.prepare('UPDATE limiter_leases SET expires_at = ? WHERE lease_id = ?');
    this.#all = db.prepare('SELECT * FROM limiter ORDER BY resource_key');
  }

  /** The transaction's BEGIN IMMEDIATE already holds the one write lock of the file. */
  async lockScope(_scopeKey: string): Promise<void> {}

  async get(resourceKey: string): Promise<BudgetRow | undefined> {
    return this.#get.get(resourceKey);
  }

  async put(row: BudgetRow): Promise<void> {
    this.#put.run(row);
  }

  async dropExpiredLeases(now: number): Promise<void> {
    this.#dropExpired.run(now);
  }

  async inFlight(scopeKey: string): Promise<number> {
    return this.#inFlight.get(scopeKey)?.n ?? 0;
  }

  async inFlightWeight(resourceKey: string, exceptLeaseId: string): Promise<number> {
    return this.#inFlightWeight.get(resourceKey, exceptLeaseId)?.w ?? 0;
  }

  /** One host on the file: lease times are on the caller's clock. */
  async addLease(leaseId: string, scopeKey: string, resourceKey: string, weight: number, now: number, leaseMs: number): Promise<void> {
    this.#addLease.run(leaseId, scopeKey, resourceKey, weight, now + leaseMs);
  }

  async removeLease(leaseId: string): Promise<boolean> {
    return this.#removeLease.run(leaseId).changes === 1;
  }

  async lingerLease(leaseId: string, now: number, forMs: number): Promise<boolean> {
    return this.#lingerLease.run(now + forMs, leaseId).changes === 1;
  }

  async all(): Promise<BudgetRow[]> {
    return this.#all.all();
  }
}
