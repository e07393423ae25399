import type { BudgetRow, LimiterPort } from '../limiter.js';
import { DATABASE_NOW_MS } from './clock.js';
import type { Session } from './session.js';

const COLUMNS = 'resource_key, capacity, remaining, window_ends_at, blocked_until, updated_at, last_rate_limited_at';

const SQL = {
  get: { name: 'ym_limiter_get', text: `SELECT ${COLUMNS} FROM limiter WHERE resource_key = $1` },
  put: {
    name: 'ym_limiter_put',
    text: `INSERT INTO limiter (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
      ON CONFLICT (resource_key) DO UPDATE SET capacity = excluded.capacity, remaining = excluded.remaining,
        window_ends_at = excluded.window_ends_at, blocked_until = excluded.blocked_until, updated_at = excluded.updated_at,
        last_rate_limited_at = excluded.last_rate_limited_at`,
  },
  dropExpired: { name: 'ym_limiter_drop_expired', text: `DELETE FROM limiter_leases WHERE expires_at <= ${DATABASE_NOW_MS}` },
  inFlight: { name: 'ym_limiter_in_flight', text: 'SELECT COUNT(*) AS n FROM limiter_leases WHERE scope_key = $1' },
  // SUM of an INTEGER is a BIGINT: read back as a number.
  inFlightWeight: {
    name: 'ym_limiter_in_flight_weight',
    text: 'SELECT COALESCE(SUM(weight), 0) AS w FROM limiter_leases WHERE resource_key = $1 AND lease_id <> $2',
  },
  addLease: {
    name: 'ym_limiter_add_lease',
    text: `INSERT INTO limiter_leases (lease_id, scope_key, resource_key, weight, expires_at) VALUES ($1, $2, $3, $4, ${DATABASE_NOW_MS} + $5::bigint)`,
  },
  removeLease: { name: 'ym_limiter_remove_lease', text: 'DELETE FROM limiter_leases WHERE lease_id = $1' },
  lingerLease: { name: 'ym_limiter_linger_lease', text: `UPDATE limiter_leases SET expires_at = ${DATABASE_NOW_MS} + $2::bigint WHERE lease_id = $1` },
  all: { name: 'ym_limiter_all', text: `SELECT ${COLUMNS} FROM limiter ORDER BY resource_key` },
} as const;

/** Lease expiries are on the database's clock (clock.ts): the callers' `now` plays no part in them. */
export class LimiterTable implements LimiterPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  /** A transaction-scoped advisory lock on the scope: every process's permit for it waits here. */
  async lockScope(scopeKey: string): Promise<void> {
    await this.#session.lock('scope', scopeKey);
  }

  async get(resourceKey: string): Promise<BudgetRow | undefined> {
    const [row] = await this.#session.rows<BudgetRow>(SQL.get, [resourceKey]);
    return row;
  }

  async put(row: BudgetRow): Promise<void> {
    await this.#session.changes(SQL.put, [
      row.resource_key,
      row.capacity,
      row.remaining,
      row.window_ends_at,
      row.blocked_until,
      row.updated_at,
      row.last_rate_limited_at,
    ]);
  }

  async dropExpiredLeases(_now: number): Promise<void> {
    await this.#session.changes(SQL.dropExpired, []);
  }

  async inFlight(scopeKey: string): Promise<number> {
    const [row] = await this.#session.rows<{ n: number }>(SQL.inFlight, [scopeKey]);
    return row?.n ?? 0;
  }

  async inFlightWeight(resourceKey: string, exceptLeaseId: string): Promise<number> {
    const [row] = await this.#session.rows<{ w: number }>(SQL.inFlightWeight, [resourceKey, exceptLeaseId]);
    return row?.w ?? 0;
  }

  async addLease(leaseId: string, scopeKey: string, resourceKey: string, weight: number, _now: number, leaseMs: number): Promise<void> {
    await this.#session.changes(SQL.addLease, [leaseId, scopeKey, resourceKey, weight, leaseMs]);
  }

  async removeLease(leaseId: string): Promise<boolean> {
    return (await this.#session.changes(SQL.removeLease, [leaseId])) === 1;
  }

  async lingerLease(leaseId: string, _now: number, forMs: number): Promise<boolean> {
    return (await this.#session.changes(SQL.lingerLease, [leaseId, forMs])) === 1;
  }

  async all(): Promise<BudgetRow[]> {
    return this.#session.rows<BudgetRow>(SQL.all, []);
  }
}
