// Changes made by other processes, pushed to the open pages as server-sent events. While a page
// listens, the server reads a few small things in one read every `pollMs`: the outbox and
// operations counts, the counters, the budgets, the halts and the row versions of the orders the
// listening pages show. A page is told which parts changed since it started listening
// (`event: changed`, `data: {"parts": [...]}`) and fetches itself again to swap those sections in.
// Nothing is polled while no page listens.

import type { ServerResponse } from 'node:http';
import { isYmOrdersError } from '../errors.js';
import type { Store } from '../store/port.js';
import { readBudgets } from '../engine/budget-view.js';

export const LIVE_PARTS = ['orders', 'outbox', 'operations', 'counters', 'budgets', 'halts'] as const;
export type LivePart = (typeof LIVE_PARTS)[number];

/** Orders one page may watch (a page of the list is at most this long). */
export const MAX_WATCHED = 500;
const KEEPALIVE_MS = 15_000;
/** How soon a browser reconnects a stream that ended. */
const RETRY_MS = 2_000;

function codeOf(error: unknown): string {
  return isYmOrdersError(error) ? error.code : 'INTERNAL';
}

type Fingerprint = Record<Exclude<LivePart, 'orders'>, string>;

interface Listener {
  readonly response: ServerResponse;
  readonly watched: readonly number[];
  seen: Fingerprint;
  /** Row version per watched order (0: not there). */
  versions: string;
  lastWriteAt: number;
}

export class LiveUpdates {
  readonly #store: Pick<Store, 'read'>;
  readonly #pollMs: number;
  readonly #listeners = new Set<Listener>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(store: Pick<Store, 'read'>, pollMs: number) {
    this.#store = store;
    this.#pollMs = pollMs;
  }

  /** Reads what the parts are made of, and the watched orders' row versions. */
  async #look(watched: ReadonlySet<number>): Promise<{ fingerprint: Fingerprint; versions: Map<number, number> }> {
    return this.#store.read(async (tx) => {
      const fingerprint: Fingerprint = {
        outbox: JSON.stringify(await tx.outbox.counts()),
        operations: JSON.stringify(await tx.operations.counts()),
        counters: JSON.stringify(await tx.counters.totals()),
        budgets: JSON.stringify(await readBudgets(tx)),
        halts: JSON.stringify(await tx.halts.all()),
      };
      const versions = new Map<number, number>();
      for (const id of watched) versions.set(id, (await tx.orders.get(id))?.row_version ?? 0);
      return { fingerprint, versions };
    });
  }

  static #versionsOf(watched: readonly number[], versions: ReadonlyMap<number, number>): string {
    return watched.map((id) => versions.get(id) ?? 0).join(',');
  }

  #write(listener: Listener, text: string): void {
    if (listener.response.destroyed || listener.response.writableEnded) return;
    listener.lastWriteAt = Date.now();
    listener.response.write(text);
  }

  /**
   * Starts the event stream on `response`: notes the current state first, so that a change made
   * after the `ready` event is always pushed (the page fetches itself once on `ready` for what
   * changed before). A database that does not answer now ends the stream after saying so: the
   * browser connects again by itself (`retry`), which a refused request would stop it doing.
   */
  async attach(response: ServerResponse, watched: readonly number[], headers: Record<string, string>): Promise<void> {
    response.writeHead(200, { ...headers, 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    response.write(`retry: ${RETRY_MS}\n\n`);
    let looked;
    try {
      looked = await this.#look(new Set(watched));
    } catch (error) {
      response.end(`event: unavailable\ndata: ${JSON.stringify({ code: codeOf(error) })}\n\n`);
      return;
    }
    if (this.#closed || response.destroyed) {
      response.end();
      return;
    }
    const listener: Listener = { response, watched, seen: looked.fingerprint, versions: LiveUpdates.#versionsOf(watched, looked.versions), lastWriteAt: 0 };
    this.#listeners.add(listener);
    response.on('close', () => this.#listeners.delete(listener));
    this.#write(listener, 'event: ready\ndata: {}\n\n');
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer === undefined && !this.#closed && this.#listeners.size > 0) {
      this.#timer = setTimeout(() => void this.#poll(), this.#pollMs);
    }
  }

  async #poll(): Promise<void> {
    const listeners = [...this.#listeners];
    try {
      if (listeners.length === 0) return;
      const watched = new Set(listeners.flatMap((l) => l.watched));
      const { fingerprint, versions } = await this.#look(watched);
      for (const listener of listeners) {
        const parts: LivePart[] = (Object.keys(fingerprint) as (keyof Fingerprint)[]).filter((p) => fingerprint[p] !== listener.seen[p]);
        const now = LiveUpdates.#versionsOf(listener.watched, versions);
        if (now !== listener.versions) parts.push('orders');
        listener.seen = fingerprint;
        listener.versions = now;
        if (parts.length > 0) this.#write(listener, `event: changed\ndata: ${JSON.stringify({ parts })}\n\n`);
        else if (Date.now() - listener.lastWriteAt >= KEEPALIVE_MS) this.#write(listener, ': keepalive\n\n');
      }
    } catch (error) {
      // The database may be busy or down for a while: say so, and look again next round.
      for (const listener of listeners) this.#write(listener, `event: unavailable\ndata: ${JSON.stringify({ code: codeOf(error) })}\n\n`);
    } finally {
      this.#timer = undefined;
      this.#schedule();
    }
  }

  /** Ends every stream and stops polling. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const listener of this.#listeners) listener.response.end();
    this.#listeners.clear();
  }
}
