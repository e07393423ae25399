// The web inspector over real HTTP on 127.0.0.1: its pages over a database a real engine wrote
// (filters, keyset paging, one order's machine state, journal, outbox row, operation and timers,
// budgets, rules), the token and Host checks, live updates pushed as server-sent events when
// another engine changes the database, the same on PostgreSQL, and the `inspect` command as a
// child process: read-only (bytes and rows unchanged after browsing every page), no API key on
// any page, a token required off loopback.

import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { createInspectorHandler, startInspector, type RunningInspector } from '../src/inspector/server.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { FIXTURE, LISTED, SHIP, buildInspectedDatabase } from './helpers/browser.js';
import { ensureBuilt, killRunning, startCli, TEST_API_KEY, transcript } from './helpers/cli.js';
import { API_KEY, CAMPAIGNS, holdsKeyBytes, removeTempDirs, tempDbPath } from './helpers/effects-fixtures.js';
import { dumpFile, fileBytes } from './helpers/engine-fixtures.js';
import { dropSchemas, freshSchemaPrefix, POSTGRES_TEST_URL } from './helpers/postgres.js';

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
}

/** One GET (or another method), redirects not followed; `headers` may set Host. */
function request(url: string, options: { headers?: Record<string, string>; method?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The order ids of the orders table, in page order. */
function listedIds(page: string): number[] {
  return [...page.matchAll(/<tr data-order="(\d+)">/g)].map((m) => Number(m[1]));
}

function nextLink(page: string): string | undefined {
  return /<a rel="next" href="([^"]+)">/.exec(page)?.[1]?.replaceAll('&amp;', '&');
}

/** The `data-state` of every highlighted state of the machine diagram. */
function activeStates(page: string): string[] {
  return [...page.matchAll(/<g class="state active[^"]*" data-state="([^"]+)">/g)].map((m) => m[1]!);
}

interface EventStream {
  /** Resolves with the data of the next event named `name` that `accept` takes. */
  next(name: string, accept?: (data: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  close(): void;
}

/** Reads a server-sent event stream, keeping every event. */
function openEvents(url: string, headers: Record<string, string> = {}): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const events: { name: string; data: Record<string, unknown> }[] = [];
    const waiters: (() => void)[] = [];
    const req = http.get(url, { headers }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`events: HTTP ${res.statusCode}`));
      let buffer = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const name = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (name !== undefined) events.push({ name, data: data ? (JSON.parse(data) as Record<string, unknown>) : {} });
          for (const w of waiters.splice(0)) w();
        }
      });
      resolve({
        next: (name, accept = () => true) =>
          new Promise((done, fail) => {
            let from = 0;
            const timer = setTimeout(() => fail(new Error(`no "${name}" event within 60 s; got ${JSON.stringify(events)}`)), 60_000);
            const look = (): void => {
              for (; from < events.length; from++) {
                const e = events[from]!;
                if (e.name === name && accept(e.data)) {
                  events.splice(0, from + 1);
                  clearTimeout(timer);
                  return done(e.data);
                }
              }
              waiters.push(look);
            };
            look();
          }),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/** A page that loads anything from elsewhere: an absolute or protocol-relative src/href. */
const EXTERNAL_ASSET = /\b(?:src|href)\s*=\s*"(?:[a-z]+:)?\/\//i;

let fixture: string;

/** A copy of the fixture database for a suite of its own (the fixture is closed and checkpointed: the copy is whole). */
function copyOfFixture(): string {
  const copy = tempDbPath();
  fs.copyFileSync(fixture, copy);
  return copy;
}

beforeAll(async () => {
  fixture = tempDbPath();
  await buildInspectedDatabase(fixture);
});

afterAll(() => {
  killRunning();
  removeTempDirs();
});

describe('the inspector over HTTP', () => {
  let store: SqliteStore;
  let inspector: RunningInspector;
  const get = (p: string, headers?: Record<string, string>) => request(`${inspector.url}${p.replace(/^\//, '')}`, headers ? { headers } : {});

  beforeAll(async () => {
    store = SqliteStore.open(fixture);
    inspector = await startInspector({ store, port: 0 });
  });

  afterAll(async () => {
    await inspector?.close();
    await store?.close();
  });

  it('lists every tracked order, a page at a time by order id', async () => {
    const all = await get('/orders');
    expect(all.status).toBe(200);
    expect(all.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(listedIds(all.text)).toEqual(LISTED);
    expect(nextLink(all.text)).toBeUndefined();
    // Pages of 4: each starts after the last one's end; together they are the whole list.
    const pages: number[][] = [];
    let link: string | undefined = '/orders?limit=4';
    while (link !== undefined) {
      const page = await get(link);
      expect(page.status).toBe(200);
      pages.push(listedIds(page.text));
      link = nextLink(page.text);
      expect(pages.length).toBeLessThan(10);
    }
    expect(pages.map((p) => p.length)).toEqual([4, 4, 4, 4, 4, 1]);
    expect(pages.flat()).toEqual(LISTED);
  }, 120_000);

  it('narrows the list by campaign, status, change state and how long a change is stuck', async () => {
    const ids = async (query: string): Promise<number[]> => {
      const page = await get(`/orders?${query}`);
      expect(page.status, query).toBe(200);
      return listedIds(page.text);
    };
    expect(await ids('campaign=5102')).toEqual([...FIXTURE.dbs]);
    expect(await ids('status=DELIVERY')).toEqual([200_004]);
    expect(await ids('status=CANCELLED')).toEqual([300_001]);
    expect(await ids('change=queued')).toEqual([...FIXTURE.queued].sort((a, b) => a - b));
    expect(await ids('change=idle')).toEqual(LISTED.filter((id) => !(FIXTURE.queued as readonly number[]).includes(id)));
    expect(await ids('stuck=60')).toEqual([FIXTURE.stuck]);
    expect(await ids('stuck=600')).toEqual([]);
    expect(await ids('campaign=5101&change=queued&limit=2')).toEqual([100_005, 100_006]);
    expect(await ids('campaign=5101&change=queued&after=100006')).toEqual([100_007, 100_008, 100_009]);
    // Empty fields are "any", as the form sends them.
    expect(await ids('campaign=&status=&change=&stuck=')).toEqual(LISTED);
    const bad = await get('/orders?stuck=ten');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('data-code="INSPECTOR_BAD_QUERY"');
    expect((await get('/orders?change=resting')).status).toBe(400);
  }, 120_000);

  it('shows one order: the states it is in highlighted, its pending change with the outbox row, and its journal', async () => {
    const page = await get(`/orders/${100_005}`);
    expect(page.status).toBe(200);
    expect(activeStates(page.text).sort()).toEqual(['cancellation.none', 'change.queued', 'market.PROCESSING', 'market.PROCESSING.STARTED']);
    const { journal, row } = await store.read(async (tx) => ({ journal: await tx.journal.forOrder(100_005), row: await tx.outbox.get(100_005, 1) }));
    expect(row?.state).toBe('queued');
    expect(page.text).toContain(row!.idempotency_key);
    expect([...page.text.matchAll(/<tr><td class="num">#(\d+)<\/td>/g)].map((m) => Number(m[1]))).toEqual(journal.map((j) => j.row_version));
    // What can happen next, from the machine's definition: the queued change may be sent.
    expect(page.text).toMatch(/<code>change\.queued<\/code><\/td><td><code>DISPATCH\.SENT<\/code><\/td><td><\/td><td>change\.sending<\/td>/);
  }, 120_000);

  it('shows a settled async change with its operation, and a buyer cancellation request with its timer', async () => {
    const laas = await get(`/orders/${300_001}`);
    expect(activeStates(laas.text)).toContain('market.CANCELLED');
    expect(activeStates(laas.text)).toContain('change.idle');
    const operationId = /<dt>id<\/dt><dd><code>([^<]+)<\/code>/.exec(laas.text)?.[1];
    expect(operationId).toBeDefined();
    const operation = await store.read((tx) => tx.operations.get(operationId!));
    expect(laas.text).toContain(`<dt>state</dt><dd>${operation!.state}</dd>`);
    expect(laas.text).toContain('<span class="outcome-accepted">accepted</span>');

    const dbs = await get(`/orders/${FIXTURE.cancellationAsked}`);
    expect(activeStates(dbs.text)).toContain('cancellation.requested');
    const [timer] = await store.read((tx) => tx.timers.list('dbs.cancellationAnswer', Number.MAX_SAFE_INTEGER));
    expect(timer?.ref).toBe(String(FIXTURE.cancellationAsked));
    expect(dbs.text).toContain(`<dt>dbs.cancellationAnswer</dt><dd><span title="${new Date(timer!.due_at).toISOString()}">`);
  }, 120_000);

  it('answers 404 for an order it does not track or a page it does not have, and 405 to anything but GET', async () => {
    const missing = await get(`/orders/${FIXTURE.fbs[0]! + 999_999}`);
    expect(missing.status).toBe(404);
    expect(missing.text).toContain('data-code="ORDER_NOT_FOUND"');
    expect((await get('/orders/abc')).status).toBe(404);
    expect((await get('/admin')).status).toBe(404);
    const post = await request(`${inspector.url}orders`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET');
  }, 120_000);

  it('shows every budget with its requests in flight, and the counters every engine stored', async () => {
    const page = await get('/engine');
    expect(page.status).toBe(200);
    const { budgets, counters } = await store.read(async (tx) => ({ budgets: await tx.limiter.all(), counters: await tx.counters.totals() }));
    expect(budgets.length).toBeGreaterThan(0);
    for (const b of budgets) expect(page.text).toContain(`<tr data-resource="${b.resource_key}">`);
    expect(page.text).toContain('data-resource="updateOrderStatuses@campaign:5101"');
    expect(page.text).toMatch(/data-resource="updateOrderStatuses@campaign:5101">[\s\S]*?<td class="num" data-col="in-flight">0<\/td>/);
    expect(counters.accepted).toBeGreaterThan(0);
    expect(page.text).toContain(`<tr><td><code>accepted</code></td><td class="num">${counters.accepted}</td></tr>`);
  }, 120_000);

  it('draws the seller rules of one model', async () => {
    const dbs = await get('/rules?model=DBS');
    expect(dbs.text).toContain('data-rule="DBS.hand-to-delivery"');
    expect(dbs.text).not.toContain('data-rule="FBS.ready-to-ship"');
    expect((await get('/rules')).text).toContain('data-rule="FBS.ready-to-ship"');
    expect((await get('/rules?model=ZZZ')).status).toBe(400);
  }, 120_000);

  it('serves every page whole from itself: a strict CSP, no asset from the network, never the API key', async () => {
    const pages = ['/orders', '/orders?campaign=5103', `/orders/${100_001}`, `/orders/${300_001}`, `/orders/${FIXTURE.cancellationAsked}`, '/engine', '/rules?model=LAAS', '/orders/1'];
    for (const p of pages) {
      const page = await get(p);
      expect(page.headers['content-security-policy'], p).toBe(CSP);
      expect(page.headers['x-content-type-options'], p).toBe('nosniff');
      expect(page.text, p).not.toMatch(EXTERNAL_ASSET);
      expect(page.text, p).toContain('src="/assets/inspector.js"');
      expect(holdsKeyBytes(page.text, API_KEY), p).toBe(false);
    }
    const script = await get('/assets/inspector.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.text).not.toMatch(/https?:\/\//);
    expect((await get('/assets/inspector.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    // Redirected to the orders page from the root.
    const root = await get('/');
    expect(root.status).toBe(303);
    expect(root.headers.location).toBe('/orders');
  }, 120_000);

  it('without a token, answers only requests addressed to a loopback name (a rebinding page is refused)', async () => {
    const { port } = inspector;
    expect((await get('/orders', { Host: `evil.example:${port}` })).status).toBe(403);
    expect((await get('/orders', { Host: `localhost:${port}` })).status).toBe(200);
    expect((await get('/orders', { Host: `[::1]:${port}` })).status).toBe(200);
  }, 120_000);
});

describe('the inspector mounted under a path of another server', () => {
  it('serves its pages, links, assets and events under that path only', async () => {
    const store = SqliteStore.open(fixture);
    const handler = createInspectorHandler({ store, basePath: '/inspect/' });
    const server = http.createServer((req, res) => (req.url?.startsWith('/inspect') ? handler.handle(req, res) : res.end('the host server')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const root = await request(`${base}/inspect`);
      expect(root.headers.location).toBe('/inspect/orders');
      const page = await request(`${base}/inspect/orders?campaign=5103`);
      expect(listedIds(page.text)).toEqual([...FIXTURE.laas]);
      expect(page.text).toContain('href="/inspect/orders/300001"');
      expect(page.text).toContain('src="/inspect/assets/inspector.js"');
      expect(page.text).toContain('data-base="/inspect"');
      expect((await request(`${base}/inspect/assets/inspector.css`)).status).toBe(200);
      expect((await request(`${base}/inspectorders`)).status).toBe(404);
      const events = await openEvents(`${base}/inspect/events`);
      await events.next('ready');
      events.close();
    } finally {
      handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    }
  }, 120_000);
});

describe('the inspector with a token', () => {
  const TOKEN = 'inspect-token-0123456789abcdef';
  let store: SqliteStore;
  let inspector: RunningInspector;

  beforeAll(async () => {
    store = SqliteStore.open(fixture);
    inspector = await startInspector({ store, port: 0, token: TOKEN });
  });

  afterAll(async () => {
    await inspector?.close();
    await store?.close();
  });

  it('refuses every request without it: pages, assets and events', async () => {
    for (const p of ['orders', `orders/${100_001}`, 'engine', 'rules', 'assets/inspector.js', 'events', '']) {
      const answer = await request(`${inspector.url}${p}`);
      expect(answer.status, p).toBe(401);
      expect(answer.text, p).not.toContain('<tr');
    }
    expect((await request(`${inspector.url}orders?token=not-the-token`)).status).toBe(401);
    expect((await request(`${inspector.url}orders`, { headers: { Authorization: 'Bearer not-the-token' } })).status).toBe(401);
    expect((await request(`${inspector.url}orders`, { headers: { Cookie: `ym_inspect=${'0'.repeat(64)}` } })).status).toBe(401);
  }, 120_000);

  it('takes it once in the query (then a cookie), or as a bearer header', async () => {
    const login = await request(`${inspector.url}orders?campaign=5102&token=${TOKEN}`);
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/orders?campaign=5102');
    const cookie = login.headers['set-cookie']?.[0] ?? '';
    expect(cookie).toMatch(/^ym_inspect=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\/$/);
    expect(cookie).not.toContain(TOKEN);
    const viaCookie = await request(`${inspector.url}orders?campaign=5102`, { headers: { Cookie: cookie.split(';')[0]! } });
    expect(viaCookie.status).toBe(200);
    expect(listedIds(viaCookie.text)).toEqual([...FIXTURE.dbs]);
    const viaHeader = await request(`${inspector.url}engine`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(viaHeader.status).toBe(200);
    expect(viaHeader.text).not.toContain(TOKEN);
  }, 120_000);

  it('is required to listen off loopback, and must be long enough', async () => {
    await expect(startInspector({ store, host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'INSPECTOR_TOKEN_REQUIRED' });
    await expect(startInspector({ store, host: '::', port: 0 })).rejects.toMatchObject({ code: 'INSPECTOR_TOKEN_REQUIRED' });
    await expect(startInspector({ store, port: 0, token: 'short' })).rejects.toMatchObject({ code: 'INSPECTOR_TOKEN_REQUIRED' });
    const busy = await startInspector({ store, port: inspector.port }).catch((e: unknown) => e);
    expect(busy).toMatchObject({ code: 'INSPECTOR_LISTEN_FAILED', details: { reason: 'EADDRINUSE' } });
  }, 120_000);
});

/** Pushes of one inspector while `writer` changes the database under it. */
async function expectPushedChanges(inspectorUrl: string, writer: Engine): Promise<void> {
  const order = FIXTURE.untouched[0]!;
  const events = await openEvents(`${inspectorUrl}events?orders=${order},${100_005}`);
  try {
    await events.next('ready');
    await writer.requestChange({ orderId: order, ...SHIP });
    const changed = await events.next('changed');
    expect(changed.parts).toEqual(expect.arrayContaining(['outbox', 'orders']));
    // An order the page does not show changing is an outbox change only.
    await writer.requestChange({ orderId: FIXTURE.untouched[1]!, ...SHIP });
    expect((await events.next('changed')).parts).toEqual(['outbox']);
  } finally {
    events.close();
  }
}

describe('live updates', () => {
  it('pushes a "changed" event when another engine changes the database (SQLite)', async () => {
    const db = copyOfFixture();
    const store = SqliteStore.open(db);
    const inspector = await startInspector({ store, port: 0, pollMs: 100 });
    const writer = await createEngine({ db });
    try {
      await expectPushedChanges(inspector.url, writer);
    } finally {
      await writer.close();
      await inspector.close();
      await store.close();
    }
  }, 120_000);

  it('says so when the database stops answering: the pages answer 503 with its code, the streams an "unavailable" event', async () => {
    const store = SqliteStore.open(copyOfFixture());
    const inspector = await startInspector({ store, port: 0, pollMs: 100 });
    try {
      const events = await openEvents(`${inspector.url}events`);
      await events.next('ready');
      await store.close();
      expect(await events.next('unavailable')).toEqual({ code: 'DB_CLOSED' });
      events.close();
      const page = await request(`${inspector.url}orders`);
      expect(page.status).toBe(503);
      expect(page.text).toContain('data-code="DB_CLOSED"');
      // A stream opened now ends at once, saying why (the browser then tries again by itself).
      const late = await openEvents(`${inspector.url}events`);
      expect(await late.next('unavailable')).toEqual({ code: 'DB_CLOSED' });
      late.close();
    } finally {
      await inspector.close();
    }
  }, 120_000);

  describe.skipIf(!inject('postgres'))('on PostgreSQL', () => {
    const prefix = freshSchemaPrefix();
    let store: PostgresStore;
    let writer: Engine;
    let inspector: RunningInspector;

    beforeAll(async () => {
      const schema = `${prefix}_inspect`;
      writer = await createEngine({ db: POSTGRES_TEST_URL, postgres: { schema }, campaigns: CAMPAIGNS.map((c) => ({ campaignId: c.campaignId, businessId: c.businessId, model: c.model })) });
      const orders = [...FIXTURE.untouched.slice(0, 2), 100_005].map((orderId) => ({ orderId, campaignId: 5101, status: 'PROCESSING', substatus: 'STARTED' }));
      await writer.trackOrders(orders);
      await writer.requestChange({ orderId: 100_005, ...SHIP });
      store = await PostgresStore.connect(POSTGRES_TEST_URL, { schema });
      inspector = await startInspector({ store, port: 0, pollMs: 100 });
    });

    afterAll(async () => {
      await inspector?.close();
      await store?.close();
      await writer?.close();
      await dropSchemas(prefix);
    });

    it('lists, shows and pushes changes from a PostgreSQL schema', async () => {
      expect(listedIds((await request(`${inspector.url}orders`)).text)).toEqual([100_005, ...FIXTURE.untouched.slice(0, 2)]);
      expect(activeStates((await request(`${inspector.url}orders/${100_005}`)).text)).toContain('change.queued');
      await expectPushedChanges(inspector.url, writer);
      expect(listedIds((await request(`${inspector.url}orders?change=queued`)).text)).toEqual([100_005, ...FIXTURE.untouched.slice(0, 2)].sort((a, b) => a - b));
    }, 120_000);
  });
});

describe('ym-orders inspect (a child process)', () => {
  beforeAll(async () => {
    await ensureBuilt();
  }, 300_000);

  /** Starts the command and resolves with its URL once it listens. */
  async function startInspect(args: readonly string[], env: Record<string, string | undefined> = {}) {
    const cli = startCli(args, { env, timeoutMs: 120_000 });
    const url = /inspector on (http:\/\/\S+)/.exec(await cli.waitForStdout(/inspector on http:\/\/\S+/, 60_000))![1]!;
    return { cli, url };
  }

  it('reads without writing: after browsing every page, the database has the same bytes and rows; no page holds the API key', async () => {
    const db = copyOfFixture();
    const ids = [...FIXTURE.fbs, ...FIXTURE.dbs, ...FIXTURE.laas];
    const rowsBefore = await dumpFile(db, ids);
    const bytesBefore = fileBytes(db);
    const { cli, url } = await startInspect(['--db', db, 'inspect', '--listen', '127.0.0.1:0', '--poll', '0.1']);
    const pages = ['orders', 'orders?change=queued', 'orders?campaign=5102&limit=1', 'orders?stuck=30', 'engine', 'rules?model=FBS', 'assets/inspector.js', ...ids.map((id) => `orders/${id}`)];
    const seen: string[] = [];
    for (const p of pages) {
      const answer = await request(`${url}${p}`);
      expect(answer.status, p).toBe(200);
      seen.push(answer.text);
    }
    const events = await openEvents(`${url}events?orders=${ids.join(',')}`);
    await events.next('ready');
    events.close();
    cli.child.kill('SIGTERM');
    const result = await cli.done;
    expect(result.code).toBe(0);
    // The main file byte for byte; a read-only WAL reader may leave an empty -wal (and a -shm)
    // beside it, which it cannot checkpoint away, but never writes a page into it.
    const after = fileBytes(db);
    expect(after.main).toEqual(bytesBefore.main);
    expect(after.journal).toEqual(bytesBefore.journal);
    expect(after.wal === bytesBefore.wal || after.wal === '').toBe(true);
    expect(await dumpFile(db, ids)).toEqual(rowsBefore);
    for (const text of [...seen, result.stdout, result.stderr]) expect(holdsKeyBytes(text, TEST_API_KEY)).toBe(false);
  }, 180_000);

  it('refuses an address off loopback without a token (exit 2); with one, serves only requests that carry it', async () => {
    const db = copyOfFixture();
    const refused = await startCli(['--db', db, 'inspect', '--listen', '0.0.0.0:0']).done;
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^error \[INSPECTOR_TOKEN_REQUIRED\]: 0\.0\.0\.0 is not a loopback address/m);

    const token = 'cli-inspect-token-fedcba9876543210';
    const { cli, url } = await startInspect(['--db', db, 'inspect', '--listen', '0.0.0.0:0'], { YM_INSPECT_TOKEN: token });
    const port = new URL(url).port;
    expect((await request(`http://127.0.0.1:${port}/orders`)).status).toBe(401);
    expect((await request(`http://127.0.0.1:${port}/orders`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    cli.child.kill('SIGINT');
    const result = await cli.done;
    expect(result.code).toBe(0);
    expect(`${result.stdout}${result.stderr}`).not.toContain(token);
    expect(result.stdout).toContain('every request needs the token');
  }, 180_000);

  it('says what is wrong with its options, and never creates a database', async () => {
    const dir = path.dirname(copyOfFixture());
    const missing = path.join(dir, 'none.db');
    const noDb = await startCli(['--db', missing, 'inspect']).done;
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toMatch(/^error \[DB_NOT_FOUND\]/m);
    expect(fs.existsSync(missing)).toBe(false);
    const badListen = await startCli(['--db', fixture, 'inspect', '--listen', 'everywhere']).done;
    expect(badListen.code).toBe(2);
    expect(badListen.stderr).toMatch(/^error \[USAGE\]: --listen "everywhere" is not HOST:PORT/m);
    const withCampaign = await startCli(['--db', fixture, '--campaign', '5101:9001:FBS', 'inspect']).done;
    expect(withCampaign.code).toBe(2);
    expect(withCampaign.stderr).toMatch(/^error \[USAGE\]: inspect reads the campaigns stored in the database/m);
    const shortToken = await startCli(['--db', fixture, 'inspect', '--token', 'abc']).done;
    expect(shortToken.code).toBe(2);
    expect(shortToken.stderr).toMatch(/^error \[INSPECTOR_TOKEN_REQUIRED\]/m);
    expect(transcript.join('')).not.toContain(TEST_API_KEY);
  }, 180_000);
});
