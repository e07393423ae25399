// The inspector: read-only web pages over a store, served on loopback (or, with a token,
// anywhere). It is given only the store's `read`, so it cannot write; nothing it serves comes
// from the network (assets.ts), and a strict Content-Security-Policy keeps it so. The API key is
// never given to it. createInspectorHandler is the request handler alone, for a server that
// mounts the pages under a path of its own; startInspector serves them on an address.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isFulfilmentModel } from '../../machines/statuses.js';
import { isYmOrdersError } from '../errors.js';
import type { Store } from '../store/port.js';
import { AccessGate, checkListenAccess } from './access.js';
import { SCRIPT, STYLESHEET } from './assets.js';
import { readEngineView } from './engine-view.js';
import { InspectorError, InspectorQueryError, INSPECTOR_ERROR_CODES } from './errors.js';
import { LiveUpdates, MAX_WATCHED } from './live.js';
import { parseOrderFilter, readOrderPage } from './order-list.js';
import { readOrderView } from './order-view.js';
import { enginePage } from './pages/engine.js';
import { errorPage, type PageContext } from './pages/layout.js';
import { orderPage } from './pages/order.js';
import { ordersPage } from './pages/orders.js';
import { rulesPage } from './pages/rules.js';

export const DEFAULT_POLL_MS = 1_000;

export interface InspectorOptions {
  /** Only its reads are used: the inspector never writes. */
  readonly store: Pick<Store, 'name' | 'read'>;
  /** Required off loopback; every request must then carry it. */
  readonly token?: string;
  /** How often open pages are checked for changes (default 1 s). */
  readonly pollMs?: number;
  /** Epoch ms, for "how long ago" and the stuck filter. */
  readonly clock?: () => number;
  /** A path prefix to serve the pages under, e.g. `/inspect` (default: the root). */
  readonly basePath?: string;
}

export interface ListenOptions extends InspectorOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: any free port. */
  readonly port?: number;
}

export interface InspectorHandler {
  /** Answers one request; one outside `basePath` gets a 404. */
  handle(request: IncomingMessage, response: ServerResponse): void;
  /** Ends the live streams. */
  close(): void;
}

export interface RunningInspector {
  /** e.g. `http://127.0.0.1:52341/` (without the token). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

const ASSETS: Readonly<Record<string, { type: string; body: string }>> = {
  '/assets/inspector.css': { type: 'text/css; charset=utf-8', body: STYLESHEET },
  '/assets/inspector.js': { type: 'text/javascript; charset=utf-8', body: SCRIPT },
};

function send(response: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  response.end(body);
}

function watchedOrders(url: URL): number[] {
  const ids = (url.searchParams.get('orders') ?? '').split(',').filter((t) => /^\d{1,16}$/.test(t)).map(Number);
  return [...new Set(ids)].slice(0, MAX_WATCHED);
}

function normaliseBase(basePath: string | undefined): string {
  const base = (basePath ?? '').replace(/\/+$/, '');
  if (base !== '' && !/^\/[A-Za-z0-9._~/-]*$/.test(base)) throw new InspectorError(INSPECTOR_ERROR_CODES.badQuery, `basePath "${base}" must be a plain path such as /inspect.`, { basePath });
  return base;
}

export function createInspectorHandler(options: InspectorOptions): InspectorHandler {
  const { store } = options;
  const clock = options.clock ?? Date.now;
  const base = normaliseBase(options.basePath);
  const gate = new AccessGate(options.token, `${base}/`);
  const live = new LiveUpdates(store, options.pollMs ?? DEFAULT_POLL_MS);
  const context = (): PageContext => ({ base, dbName: store.name, now: clock() });
  const page = (response: ServerResponse, status: number, body: string): void => send(response, status, 'text/html; charset=utf-8', body);

  async function route(response: ServerResponse, url: URL, path: string): Promise<void> {
    if (path === '/' || path === '') {
      response.writeHead(303, { ...SECURITY_HEADERS, Location: `${base}/orders` });
      response.end();
      return;
    }
    const asset = ASSETS[path];
    if (asset) return send(response, 200, asset.type, asset.body, { 'Cache-Control': 'no-cache' });
    if (path === '/events') return live.attach(response, watchedOrders(url), SECURITY_HEADERS);
    const ctx = context();
    if (path === '/orders') {
      const filter = parseOrderFilter(url.searchParams);
      const { list, campaigns } = await store.read(async (tx) => ({ list: await readOrderPage(tx, filter, ctx.now), campaigns: await tx.campaigns.all() }));
      return page(response, 200, ordersPage(ctx, filter, list, campaigns));
    }
    const orderId = /^\/orders\/(\d{1,16})$/.exec(path)?.[1];
    if (orderId !== undefined) {
      const view = await store.read((tx) => readOrderView(tx, Number(orderId)));
      if (!view) return page(response, 404, errorPage(ctx, 404, 'ORDER_NOT_FOUND', `Order ${orderId} is not tracked in this database.`));
      return page(response, 200, orderPage(ctx, view));
    }
    if (path === '/engine') return page(response, 200, enginePage(ctx, await store.read(readEngineView)));
    if (path === '/rules') {
      const model = url.searchParams.get('model')?.toUpperCase() || undefined;
      if (model !== undefined && !isFulfilmentModel(model)) throw new InspectorQueryError('model', model, 'FBS, EXPRESS, DBS or LAAS');
      return page(response, 200, rulesPage(ctx, model));
    }
    page(response, 404, errorPage(ctx, 404, 'NOT_FOUND', `Nothing at ${path}.`));
  }

  function fail(response: ServerResponse, error: unknown): void {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const ctx = context();
    if (error instanceof InspectorQueryError) return page(response, 400, errorPage(ctx, 400, error.code, error.message));
    // A database that is busy, down or closed: the message names the file or the redacted URL only.
    if (isYmOrdersError(error)) return page(response, 503, errorPage(ctx, 503, error.code, error.message));
    page(response, 500, errorPage(ctx, 500, 'INTERNAL', 'The inspector failed on this page; the console it runs in says more.'));
  }

  function handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://inspector.invalid');
    if (base !== '' && url.pathname !== base && !url.pathname.startsWith(`${base}/`)) {
      return send(response, 404, 'text/plain; charset=utf-8', 'Not found.\n');
    }
    const decision = gate.decide(request, url);
    if (decision.kind === 'deny') return send(response, decision.status, 'text/plain; charset=utf-8', `${decision.reason}\n`);
    if (decision.kind === 'login') {
      response.writeHead(303, { ...SECURITY_HEADERS, Location: decision.location, 'Set-Cookie': decision.cookie });
      response.end();
      return;
    }
    if (request.method !== 'GET') return send(response, 405, 'text/plain; charset=utf-8', 'Read-only: GET only.\n', { Allow: 'GET' });
    route(response, url, url.pathname.slice(base.length)).catch((error: unknown) => {
      if (!(error instanceof InspectorQueryError) && !isYmOrdersError(error)) console.error('ym-orders inspector:', error);
      fail(response, error);
    });
  }

  return { handle, close: () => live.close() };
}

/** Serves the pages on `host:port`; refuses an address off loopback without a token (INSPECTOR_TOKEN_REQUIRED). */
export async function startInspector(options: ListenOptions): Promise<RunningInspector> {
  const host = options.host ?? '127.0.0.1';
  checkListenAccess(host, options.token);
  const handler = createInspectorHandler(options);
  const server = http.createServer(handler.handle);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    handler.close();
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new InspectorError(INSPECTOR_ERROR_CODES.listenFailed, `Cannot listen on ${host}:${options.port ?? 0}: ${reason}.`, { host, port: options.port ?? 0, reason }, { cause: error });
  }
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}${normaliseBase(options.basePath)}/`,
    host,
    port,
    close: async () => {
      handler.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
