// Wake-ups across processes: a transaction that queued outbox rows sends NOTIFY on its schema's
// channel with its COMMIT (postgres-store.ts), and each store that has a listener holds one
// connection of its own, outside the pool, that LISTENs there. That connection is opened by the
// first listener, so a store nobody listens to never holds it; when it breaks (a server restart,
// the network) it comes back by itself, retrying with a capped backoff, and never throws: a
// wake-up is a hint, and a runner still looks on its own now and then.

import { createHash } from 'node:crypto';
import pg from 'pg';

/** What the listening connection calls itself in pg_stat_activity (the pool's are 'ym-orders'). */
export const LISTEN_APPLICATION_NAME = 'ym-orders-listen';

/** The first retry after the connection broke or could not be opened, doubling up to the cap. */
const RETRY_FIRST_MS = 100;
const RETRY_CAP_MS = 5_000;

/**
 * The schema's channel: `ym_orders_queued_` and 16 hex digits of a SHA-256 of the schema name. A
 * hash, not the name itself: a channel is an identifier of at most 63 bytes, and a schema name may
 * take all of them.
 */
export function queuedChannel(schema: string): string {
  return `ym_orders_queued_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
}

function ignore(): void {}

export class QueuedListener {
  readonly #config: pg.ClientConfig;
  readonly #channel: string;
  /** One entry per onQueued call, so the same function added twice is stopped once each. */
  readonly #listeners = new Set<{ readonly listener: () => void }>();
  /** The connection listening now, or being opened. */
  #client: pg.Client | undefined;
  /** The connection being opened, awaited by close(). */
  #opening: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  /** Attempts that failed since the last connection that listened: the backoff's exponent. */
  #failures = 0;
  /**
   * Nobody listened for a while (before the first LISTEN took effect, or while a connection was
   * broken): rows may have been queued meanwhile, so the next LISTEN wakes the listeners once.
   */
  #missed = true;
  #closed = false;

  /** `config`: how to reach the server, as the pool does (its own application_name is set here). */
  constructor(config: pg.ClientConfig, schema: string) {
    this.#config = { ...config, application_name: LISTEN_APPLICATION_NAME, keepAlive: true };
    this.#channel = queuedChannel(schema);
  }

  /** Calls `listener` on each wake-up until the returned function is called. */
  add(listener: () => void): () => void {
    const entry = { listener };
    this.#listeners.add(entry);
    if (!this.#closed && this.#client === undefined && this.#retry === undefined) this.#open();
    return () => {
      this.#listeners.delete(entry);
      // The last one gone: the connection goes too, so it keeps no process alive that is done.
      if (this.#listeners.size === 0) void this.#stopListening();
    };
  }

  async #stopListening(): Promise<void> {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    await this.#opening;
    // A listener added meanwhile keeps the connection.
    if (this.#listeners.size > 0) return;
    const client = this.#client;
    this.#client = undefined;
    this.#missed = true;
    await client?.end().catch(ignore);
  }

  /** Ends the connection and any retry; no listener is called after this resolves. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#listeners.clear();
    await this.#opening;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(ignore);
  }

  #open(): void {
    const client = new pg.Client(this.#config);
    this.#client = client;
    // Without a listener for it, an error of the connection would crash the process.
    client.on('error', ignore);
    client.on('end', () => this.#lost(client));
    client.on('notification', (message) => {
      if (message.channel === this.#channel) this.#wake();
    });
    this.#opening = this.#listen(client).finally(() => (this.#opening = undefined));
  }

  async #listen(client: pg.Client): Promise<void> {
    try {
      await client.connect();
      // An identifier cannot be a parameter; the channel is built from hex digits (queuedChannel).
      await client.query(`LISTEN ${this.#channel}`);
    } catch {
      await client.end().catch(ignore);
      this.#lost(client);
      return;
    }
    if (this.#client !== client) return;
    this.#failures = 0;
    if (this.#missed) {
      this.#missed = false;
      this.#wake();
    }
  }

  /** The connection broke or could not be opened: once per connection, try again after the backoff. */
  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    if (this.#closed) return;
    this.#missed = true;
    const delay = Math.min(RETRY_FIRST_MS * 2 ** this.#failures, RETRY_CAP_MS);
    this.#failures++;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (!this.#closed) this.#open();
    }, delay);
    // A retry alone does not keep the process alive: close() may never come if the process ends.
    this.#retry.unref();
  }

  /** Each listener in turn; one that throws stops neither the others nor the connection. */
  #wake(): void {
    for (const { listener } of [...this.#listeners]) {
      try {
        listener();
      } catch {
        // A wake-up is a hint: a listener's own failure is its own to report.
      }
    }
  }
}
