// How many of a schema's transactions wait on a lock, sampled while a measurement runs: the
// other thing besides CPU that can bind processes sharing one PostgreSQL schema.
//
// Ours are the backends holding a lock on one of the schema's tables (any transaction that has
// touched them), and the advisory locks they hold (the store takes those per scope, cursor, …);
// a backend waiting on one of those advisory locks is ours too, even before it touched a table
// (the permit transaction locks its scope first). Row-lock waits (another transaction holds the
// row: FOR UPDATE, an UPDATE) show as ungranted transactionid or tuple locks of our backends.

import pg from 'pg';

const SAMPLE_SQL = `
  WITH ours AS (
    SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1
  ), our_keys AS (
    SELECT DISTINCT classid, objid, objsubid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid IN (SELECT pid FROM ours)
  )
  SELECT
    (SELECT COUNT(*) FROM ours)::int AS in_transaction,
    (SELECT COUNT(*) FROM pg_locks l JOIN our_keys k USING (classid, objid, objsubid) WHERE l.locktype = 'advisory' AND NOT l.granted)::int AS advisory,
    (SELECT COUNT(DISTINCT pid) FROM pg_locks WHERE NOT granted AND locktype IN ('transactionid', 'tuple') AND pid IN (SELECT pid FROM ours))::int AS row`;

export interface LockWaits {
  readonly samples: number;
  /** Mean over the samples: our transactions open (having touched the schema) at that moment. */
  readonly inTransaction: number;
  /** Mean: transactions waiting on an advisory lock another of ours holds. */
  readonly advisory: number;
  /** Mean: our transactions waiting on a row lock. */
  readonly row: number;
}

export interface LockWaitSampler {
  /** Takes one sample (the caller paces them). */
  sample(): Promise<void>;
  /** Ends the connection and returns the means. */
  finish(): Promise<LockWaits>;
}

export async function startLockWaitSampler(url: string, schema: string): Promise<LockWaitSampler> {
  const client = new pg.Client({ connectionString: url, application_name: 'ym-orders-bench-lock-waits' });
  client.on('error', () => undefined);
  await client.connect();
  const sums = { samples: 0, inTransaction: 0, advisory: 0, row: 0 };
  return {
    async sample() {
      const { rows } = await client.query<{ in_transaction: number; advisory: number; row: number }>(SAMPLE_SQL, [schema]);
      const r = rows[0]!;
      sums.samples++;
      sums.inTransaction += r.in_transaction;
      sums.advisory += r.advisory;
      sums.row += r.row;
    },
    async finish() {
      await client.end().catch(() => undefined);
      const n = Math.max(1, sums.samples);
      return { samples: sums.samples, inTransaction: sums.inTransaction / n, advisory: sums.advisory / n, row: sums.row / n };
    },
  };
}

export function describeLockWaits(w: LockWaits): string {
  return `lock waits (mean of ${w.samples} samples): ${w.advisory.toFixed(1)} waiting on an advisory lock, ${w.row.toFixed(1)} on a row lock, ${w.inTransaction.toFixed(1)} in a transaction on the schema`;
}
