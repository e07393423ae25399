import type { Database, Statement } from 'better-sqlite3';
import { INBOX_STATES, type InboxInsert, type InboxPort, type InboxRow, type InboxState } from '../inbox.js';

export class InboxTable implements InboxPort {
  readonly #insert: Statement<[InboxInsert], { id: number }>;
  readonly #idOf: Statement<[string], { id: number }>;
  readonly #pending: Statement<[number], InboxRow>;
  readonly #finish: Statement<[{ id: number; state: InboxState; now: number; last_error: string | null }]>;
  readonly #counts: Statement<[], { state: InboxState; n: number }>;
  readonly #pendingCount: Statement<[], { n: number }>;
  readonly #prune: Statement<[number, number]>;
  readonly #recent: Statement<[number], InboxRow>;

  constructor(db: Database) {
    // A repeat writes no row; it does use up an AUTOINCREMENT number (SQLite takes one before it
    // finds the conflict), so ids have gaps. Nothing reads meaning into them: order only.
    this.#insert = db.prepare(`INSERT INTO inbox (dedupe_key, type, campaign_id, order_id, event_at, body, state, received_at, processed_at)
      VALUES (@dedupe_key, @type, @campaign_id, @order_id, @event_at, @body, @state, @now, CASE WHEN @state = 'pending' THEN NULL ELSE @now END)
      ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`);
    this.#idOf = db.prepare('SELECT id FROM inbox WHERE dedupe_key = ?');
    // One writer at a time (BEGIN IMMEDIATE): the transaction that takes these rows is the only one until it ends.
    this.#pending = db.prepare(`SELECT * FROM inbox WHERE state = 'pending' ORDER BY id LIMIT ?`);
    this.#finish = db.prepare('UPDATE inbox SET state = @state, processed_at = @now, last_error = @last_error WHERE id = @id');
    this.#counts = db.prepare('SELECT state, COUNT(*) AS n FROM inbox GROUP BY state');
    this.#pendingCount = db.prepare(`SELECT COUNT(*) AS n FROM inbox WHERE state = 'pending'`);
    // `state <> 'pending'` as the partial index inbox_finished_by_age says it, so SQLite uses it.
    this.#prune = db.prepare(`DELETE FROM inbox WHERE id IN (
      SELECT id FROM inbox WHERE state <> 'pending' AND received_at < ? ORDER BY received_at, id LIMIT ?)`);
    this.#recent = db.prepare('SELECT * FROM inbox ORDER BY id DESC LIMIT ?');
  }

  async insert(row: InboxInsert): Promise<{ readonly id: number; readonly duplicate: boolean }> {
    const inserted = this.#insert.get(row);
    if (inserted) return { id: inserted.id, duplicate: false };
    return { id: this.#idOf.get(row.dedupe_key)!.id, duplicate: true };
  }

  async takePending(limit: number): Promise<InboxRow[]> {
    return this.#pending.all(limit);
  }

  async finish(id: number, state: 'done' | 'ignored', now: number, lastError?: string): Promise<void> {
    this.#finish.run({ id, state, now, last_error: lastError ?? null });
  }

  async counts(): Promise<Record<InboxState, number>> {
    const counts = Object.fromEntries(INBOX_STATES.map((s) => [s, 0])) as Record<InboxState, number>;
    for (const { state, n } of this.#counts.all()) counts[state] = n;
    return counts;
  }

  async pendingCount(): Promise<number> {
    return this.#pendingCount.get()!.n;
  }

  async prune(receivedBefore: number, limit: number): Promise<number> {
    return this.#prune.run(receivedBefore, limit).changes;
  }

  async recent(limit: number): Promise<InboxRow[]> {
    return this.#recent.all(limit);
  }
}
