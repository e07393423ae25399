// The clock leases are measured on when several hosts share the database: the server's own, so a
// host whose clock runs ahead (or behind) never takes a lease another still holds, nor keeps one
// past its end. Every lease expiry the adapter writes or compares is this expression, in epoch
// milliseconds like every time of the port; the caller's `now` still sets due times and
// updated_at (src/store/outbox.ts).
//
// clock_timestamp(), not now() nor statement_timestamp(): now() is fixed when the transaction
// began and statement_timestamp() when the statement did, and either can lag the moment the row
// is written by as long as the statement waited for a lock (lock_timeout, 10 s by default) or the
// transaction ran before it. A lease computed from it would end early by that wait, and a lease that
// ended during the wait would still look held. clock_timestamp() is read when the row is
// compared or written, after any wait, so a lease lasts its full term from when it was taken.

/** The server's wall clock now, in epoch milliseconds (BIGINT), read as the row is evaluated. */
export const DATABASE_NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
