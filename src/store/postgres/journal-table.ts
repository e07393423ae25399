import type { JournalPort, JournalRow, JournalWrite, TransitionCount } from '../journal.js';
import type { Session } from './session.js';

const WRITE_COLUMNS = 'order_id, row_version, event_type, event, source, from_status, from_substatus, from_change, to_status, to_substatus, to_change, at';

const SQL = {
  append: {
    name: 'ym_journal_append',
    text: `INSERT INTO journal (${WRITE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING seq`,
  },
  forOrder: { name: 'ym_journal_for_order', text: `SELECT seq, ${WRITE_COLUMNS} FROM journal WHERE order_id = $1 ORDER BY seq` },
  // Ties are broken by the columns (no substatus first, as SQLite sorts), so the demo's diagram
  // comes out the same on every run and on either engine.
  transitionCounts: {
    name: 'ym_journal_transition_counts',
    text: `SELECT from_status AS "fromStatus", from_substatus AS "fromSubstatus", to_status AS "toStatus", to_substatus AS "toSubstatus",
        CASE WHEN event_type LIKE 'DISPATCH.%' THEN 'seller' ELSE 'market' END AS "by", COUNT(*) AS count
      FROM journal
      WHERE from_status IS NOT NULL AND (from_status <> to_status OR from_substatus IS DISTINCT FROM to_substatus)
      GROUP BY 1, 2, 3, 4, 5
      ORDER BY count DESC, 1 NULLS FIRST, 2 NULLS FIRST, 3 NULLS FIRST, 4 NULLS FIRST, 5`,
  },
} as const;

export class JournalTable implements JournalPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async append(row: JournalWrite): Promise<number> {
    const [inserted] = await this.#session.rows<{ seq: number }>(SQL.append, [
      row.order_id,
      row.row_version,
      row.event_type,
      row.event,
      row.source,
      row.from_status,
      row.from_substatus,
      row.from_change,
      row.to_status,
      row.to_substatus,
      row.to_change,
      row.at,
    ]);
    return inserted!.seq;
  }

  async forOrder(orderId: number): Promise<JournalRow[]> {
    return this.#session.rows<JournalRow>(SQL.forOrder, [orderId]);
  }

  async transitionCounts(): Promise<TransitionCount[]> {
    return this.#session.rows<TransitionCount>(SQL.transitionCounts, []);
  }
}
