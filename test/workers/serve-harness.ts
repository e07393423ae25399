// What the serve suites share: `ym-orders serve` as a child process (its JSON log parsed, its
// URL read from the first line), a reverse proxy in front of it that the fake Market's notifier
// posts to (the fake needs a URL before serve has one, and a restarted serve gets a new port:
// the proxy is pointed at it, as an operator would point theirs), the database read from outside
// (read-only), and a PostgreSQL database of its own per test (the CLI always uses the store's
// default schema, so a fresh namespace is a fresh database).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { openStore } from '../../src/store/open-store.js';
import type { InboxRow, InboxState } from '../../src/store/inbox.js';
import type { JournalRow } from '../../src/store/journal.js';
import type { FakeMarket } from '../../src/testing/index.js';
import { startCli, type CliOptions, type CliResult, type RunningCli } from '../helpers/cli.js';
import { freshSchemaPrefix, POSTGRES_TEST_URL, withRawClient } from '../helpers/postgres.js';

/** An address in the Market's first network (MARKET_NOTIFICATION_NETWORKS): where the proxy says the notifications come from. */
export const MARKET_ADDRESS = '5.45.207.10';

export interface LogLine {
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface ServeProcess {
  readonly cli: RunningCli;
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Every JSON line printed so far; a line that is not JSON fails the test. */
  lines(): LogLine[];
  /** Resolves with the first line so far or later that matches. */
  waitForLine(match: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  readonly done: Promise<CliResult>;
}

function parseLines(stdout: string): LogLine[] {
  // The text after the last new line is a line still being written.
  return stdout
    .split('\n')
    .slice(0, -1)
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as LogLine;
      } catch {
        throw new Error(`serve printed a line that is not JSON: ${l}`);
      }
    });
}

/** Starts `ym-orders <args>` (args include `serve …`) and waits for its first line, which must be `listening`. */
export async function startServe(args: readonly string[], options: CliOptions = {}): Promise<ServeProcess> {
  const cli = startCli(args, { timeoutMs: 180_000, ...options });
  // Listening from the start (startCli set the encoding), so no chunk is missed.
  let stdout = '';
  cli.child.stdout!.on('data', (chunk: string) => (stdout += chunk));
  await cli.waitForStdout(/\n/, 60_000);
  const first = parseLines(stdout)[0]!;
  expect(first.msg).toBe('listening');
  const url = first.url as string;
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const lines = (): LogLine[] => parseLines(stdout);
  return {
    cli,
    url,
    lines,
    async waitForLine(match, what, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines().find(match);
        if (found) return found;
        if (Date.now() > deadline || cli.child.exitCode !== null) throw new Error(`serve logged no ${what}; stdout:\n${stdout}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    done: cli.done,
  };
}

export interface Relay {
  /** Where the notifier posts: `http://127.0.0.1:<port>/notification`. */
  readonly url: string;
  /** serve's base URL to forward to; undefined: answer 502, as a proxy whose upstream is down. */
  target: string | undefined;
  close(): Promise<void>;
}

/**
 * A reverse proxy on loopback: forwards POST bodies to `target` with `X-Forwarded-For: <from>`
 * (serve trusts 127.0.0.1 as its proxy) and relays status and body; 502 when the upstream cannot
 * be reached, so the notifier retries as the Market would.
 */
export async function startRelay(from = MARKET_ADDRESS): Promise<Relay> {
  const relay: { target: string | undefined } = { target: undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body: string): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      };
      if (relay.target === undefined) return answer(502, '{"error":"no upstream"}');
      fetch(`${relay.target}${req.url ?? '/'}`, {
        method: req.method ?? 'POST',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json', 'x-forwarded-for': from },
        body: Buffer.concat(chunks),
      }).then(
        async (r) => answer(r.status, await r.text()),
        () => answer(502, '{"error":"upstream unreachable"}'),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/notification`,
    get target() {
      return relay.target;
    },
    set target(value) {
      relay.target = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface DbView {
  readonly orders: Map<number, { status: string; substatus: string | null }>;
  readonly inbox: Record<InboxState, number>;
  readonly inboxRows: InboxRow[];
  readonly reads: number;
}

export interface DbReader {
  /** What serve's database holds now, in one read. */
  view(): Promise<DbView>;
  journal(orderId: number): Promise<JournalRow[]>;
  close(): Promise<void>;
}

/** Reads serve's database from outside, through a read-only store (it writes nothing). */
export async function openDbReader(db: string): Promise<DbReader> {
  const { store } = await openStore(db, { readOnly: true, now: Date.now() });
  return {
    view: () =>
      store.read(async (tx) => {
        const orders = new Map<number, { status: string; substatus: string | null }>();
        for (let after = 0; ; ) {
          const page = await tx.orders.list({}, after, 500);
          for (const o of page) orders.set(o.order_id, { status: o.status, substatus: o.substatus });
          if (page.length < 500) break;
          after = page[page.length - 1]!.order_id;
        }
        return { orders, inbox: await tx.inbox.counts(), inboxRows: await tx.inbox.recent(100_000), reads: await tx.reads.count() };
      }),
    journal: (orderId) => store.read((tx) => tx.journal.forOrder(orderId)),
    close: () => store.close(),
  };
}

/** The orders of `ids` as the fake has them, and as serve's database has them: equal when in step. */
export function marketView(market: FakeMarket, ids: readonly number[]): Map<number, { status: string; substatus: string | null }> {
  return new Map(ids.map((id) => {
    const o = market.getOrder(id)!;
    return [id, { status: o.status, substatus: o.substatus }];
  }));
}

export function sameOrders(db: DbView, market: FakeMarket, ids: readonly number[]): boolean {
  const want = marketView(market, ids);
  return ids.every((id) => {
    const got = db.orders.get(id);
    return got !== undefined && got.status === want.get(id)!.status && got.substatus === want.get(id)!.substatus;
  });
}

export interface TestDatabase {
  /** postgres://…/<name> */
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

/** A PostgreSQL database no other test uses, on the test server; drop() removes it (connections and all). */
export async function createTestDatabase(password?: string): Promise<TestDatabase> {
  const name = freshSchemaPrefix();
  await withRawClient((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(POSTGRES_TEST_URL);
  url.pathname = `/${name}`;
  if (password !== undefined) url.password = password;
  return {
    url: url.toString(),
    name,
    drop: () => withRawClient((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}
