import { INBOX_STATES, type InboxInsert, type InboxPort, type InboxRow, type InboxState } from '../inbox.js';
import type { Session } from './session.js';

// Named columns, never `*` (orders-table.ts says why).
const COLUMNS = 'id, dedupe_key, type, campaign_id, order_id, event_at, body, state, received_at, processed_at, last_error';

const SQL = {
  // An insert racing another transaction's insert of the same key waits for it to end, then
  // writes nothing if that one committed: the notification is stored once, by whoever was first.
  insert: {
    name: 'ym_inbox_insert',
    text: `INSERT INTO inbox (dedupe_key, type, campaign_id, order_id, event_at, body, state, received_at, processed_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7::text, $8::bigint, CASE WHEN $7::text = 'pending' THEN NULL ELSE $8::bigint END)
      ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
  },
  // READ COMMITTED: a statement of its own sees the row the insert above waited for.
  idOf: { name: 'ym_inbox_id_of', text: 'SELECT id FROM inbox WHERE dedupe_key = $1' },
  // SKIP LOCKED: rows another transaction is applying right now are passed over, not waited for.
  takePending: {
    name: 'ym_inbox_take_pending',
    text: `SELECT ${COLUMNS} FROM inbox WHERE state = 'pending' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
  },
  // A read-only transaction cannot lock rows: it only looks.
  pending: { name: 'ym_inbox_pending', text: `SELECT ${COLUMNS} FROM inbox WHERE state = 'pending' ORDER BY id LIMIT $1` },
  finish: { name: 'ym_inbox_finish', text: 'UPDATE inbox SET state = $2, processed_at = $3, last_error = $4 WHERE id = $1' },
  counts: { name: 'ym_inbox_counts', text: 'SELECT state, COUNT(*) AS n FROM inbox GROUP BY state' },
  pendingCount: { name: 'ym_inbox_pending_count', text: `SELECT COUNT(*) AS n FROM inbox WHERE state = 'pending'` },
  // `state <> 'pending'` as the partial index inbox_finished_by_age says it, so the planner uses it;
  // `= ANY(ARRAY(…))`, not `IN (…)`, which it may plan as a hash join over the whole table. SKIP
  // LOCKED: two processes pruning at once delete different rows instead of waiting on each other.
  prune: {
    name: 'ym_inbox_prune',
    text: `DELETE FROM inbox WHERE id = ANY(ARRAY(
      SELECT id FROM inbox WHERE state <> 'pending' AND received_at < $1 ORDER BY received_at, id LIMIT $2 FOR UPDATE SKIP LOCKED))`,
  },
  recent: { name: 'ym_inbox_recent', text: `SELECT ${COLUMNS} FROM inbox ORDER BY id DESC LIMIT $1` },
} as const;

export class InboxTable implements InboxPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async insert(row: InboxInsert): Promise<{ readonly id: number; readonly duplicate: boolean }> {
    const values = [row.dedupe_key, row.type, row.campaign_id, row.order_id, row.event_at, row.body, row.state, row.now];
    for (;;) {
      const [inserted] = await this.#session.rows<{ id: number }>(SQL.insert, values);
      if (inserted) return { id: inserted.id, duplicate: false };
      const [existing] = await this.#session.rows<{ id: number }>(SQL.idOf, [row.dedupe_key]);
      if (existing) return { id: existing.id, duplicate: true };
      // The row the insert ran into was pruned before the look-up: the key is new again.
    }
  }

  async takePending(limit: number): Promise<InboxRow[]> {
    return this.#session.rows<InboxRow>(this.#session.writable ? SQL.takePending : SQL.pending, [limit]);
  }

  async finish(id: number, state: 'done' | 'ignored', now: number, lastError?: string): Promise<void> {
    await this.#session.changes(SQL.finish, [id, state, now, lastError ?? null]);
  }

  async counts(): Promise<Record<InboxState, number>> {
    const counts = Object.fromEntries(INBOX_STATES.map((s) => [s, 0])) as Record<InboxState, number>;
    for (const { state, n } of await this.#session.rows<{ state: InboxState; n: number }>(SQL.counts, [])) counts[state] = n;
    return counts;
  }

  async pendingCount(): Promise<number> {
    const [row] = await this.#session.rows<{ n: number }>(SQL.pendingCount, []);
    return row!.n;
  }

  async prune(receivedBefore: number, limit: number): Promise<number> {
    return this.#session.changes(SQL.prune, [receivedBefore, limit]);
  }

  async recent(limit: number): Promise<InboxRow[]> {
    return this.#session.rows<InboxRow>(SQL.recent, [limit]);
  }
}
