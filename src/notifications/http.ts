// The receiver over node:http, with no framework: two endpoints. POST /notification takes a
// notification (JSON, at most maxBodyBytes, from an allowed network) and answers what the
// receiver says; GET /health answers the caller's health object. The body is read only after the
// client and the content type are accepted, and no further than the limit: a larger one is
// answered 413 at once and the connection closed, so a huge body is never held in memory.
//
// One log line per request, built only from what we decided (type, outcome, status, time,
// client address): never the body, a header or the path asked for, where an API key or a token
// could be.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { isYmOrdersError } from '../errors.js';
import { NotificationOptionError } from './errors.js';
import { NetworkList, resolveClientAddress } from './network.js';
import type { NotificationOutcome, NotificationReceiver } from './receiver.js';

export const NOTIFICATION_PATH = '/notification';
export const HEALTH_PATH = '/health';

/** What the handler decided, beside the receiver's outcomes. */
export type HttpOutcome =
  | NotificationOutcome
  | 'denied' | 'too-large' | 'aborted' | 'health' | 'unhealthy' | 'not-found' | 'method-not-allowed';

// A type, not an interface: it fits log functions that take any object with a `msg`.
export type NotificationLogLine = {
  /** ISO time the answer was sent. */
  readonly at: string;
  /** 'notification' for POST /notification, 'request' for anything else. */
  readonly msg: 'notification' | 'request';
  readonly type?: string;
  readonly outcome: HttpOutcome;
  readonly status: number;
  readonly ms: number;
  /** The client's address as resolved (trusted proxies honoured); null when unknown. */
  readonly client: string | null;
  /** Our own failure's code (a 500, or a failing health check). */
  readonly error?: string;
};

export interface NotificationHttpOptions {
  /** A NotificationReceiver, or a wrapper of one (e.g. one that wakes a loop after a stored notification). */
  readonly receiver: Pick<NotificationReceiver, 'maxBodyBytes' | 'handle'>;
  /**
   * Networks (CIDRs) allowed to post notifications; absent: anyone who reaches the socket. See
   * MARKET_NOTIFICATION_NETWORKS. GET /health answers anyone: a load balancer's probe comes from
   * its own network, and the health object holds no secret.
   */
  readonly allow?: readonly string[];
  /** Proxies (CIDRs) whose X-Forwarded-For is believed; no one else's is. */
  readonly trustedProxies?: readonly string[];
  /** The largest body read, in bytes (default: the receiver's limit). */
  readonly maxBodyBytes?: number;
  /** What GET /health answers (default `{ ok: true }`); a throw answers 503. */
  readonly health?: () => Promise<object> | object;
  readonly log?: (line: NotificationLogLine) => void;
}

type BodyRead = { readonly kind: 'body'; readonly body: Buffer } | { readonly kind: 'too-large' } | { readonly kind: 'aborted' };

/** Reads the request body up to `max` bytes; past that it stops keeping chunks and says so at once. */
function readBody(req: IncomingMessage, max: number): Promise<BodyRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: BodyRead): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        chunks.length = 0;
        settle({ kind: 'too-large' });
      } else {
        chunks.push(chunk);
      }
    };
    req.on('data', onData);
    req.on('end', () => settle({ kind: 'body', body: Buffer.concat(chunks, size) }));
    req.on('error', () => settle({ kind: 'aborted' }));
    req.on('close', () => {
      if (!req.complete) settle({ kind: 'aborted' });
    });
  });
}

/** application/json, with no charset or a UTF-8 one (RFC 8259: JSON between systems is UTF-8). */
function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [media = '', ...params] = header.split(';').map((p) => p.trim().toLowerCase());
  if (media !== 'application/json') return false;
  return params.every((p) => !p.startsWith('charset=') || /^charset="?utf-8"?$/.test(p));
}

function errorBody(type: 'UNKNOWN' | 'WRONG_EVENT_FORMAT', message: string): object {
  return { error: { type, message } };
}

/** A request handler for node:http (`http.createServer(handler)`); throws NOTIFY_BAD_NETWORK or NOTIFY_BAD_OPTION for bad options. */
export function createNotificationHttpHandler(options: NotificationHttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { receiver, health, log } = options;
  const allow = options.allow === undefined ? undefined : NetworkList.parse(options.allow);
  const proxies = NetworkList.parse(options.trustedProxies ?? []);
  const maxBodyBytes = options.maxBodyBytes ?? receiver.maxBodyBytes;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) throw new NotificationOptionError('maxBodyBytes', 'a positive integer (bytes)');

  return (req, res) => {
    const started = performance.now();
    const elapsedMs = (): number => Math.round((performance.now() - started) * 1000) / 1000;
    const client = resolveClientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], proxies);
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const isNotification = path === NOTIFICATION_PATH;

    /** Sends `body` as JSON and logs the request. */
    const send = (status: number, body: object, line: { outcome: HttpOutcome; type?: string; error?: string }, extra: Record<string, string> = {}): void => {
      const text = JSON.stringify(body);
      if (!res.headersSent) {
        res.writeHead(status, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': String(Buffer.byteLength(text)),
          'cache-control': 'no-store',
          ...extra,
        });
      }
      res.end(text);
      log?.({
        at: new Date().toISOString(),
        msg: isNotification ? 'notification' : 'request',
        ...(line.type === undefined ? {} : { type: line.type }),
        outcome: line.outcome,
        status,
        ms: elapsedMs(),
        client: client?.text ?? null,
        ...(line.error === undefined ? {} : { error: line.error }),
      });
    };
    // For answers given without reading the body: the connection ends rather than carry on
    // after a body nobody read.
    const close = { connection: 'close' };

    const serveNotification = async (): Promise<void> => {
      if (req.method !== 'POST') return send(405, errorBody('UNKNOWN', 'Use POST.'), { outcome: 'method-not-allowed' }, { allow: 'POST', ...close });
      if (allow !== undefined && (client === undefined || !allow.contains(client))) {
        return send(403, errorBody('UNKNOWN', 'This address may not send notifications here.'), { outcome: 'denied' }, close);
      }
      if (!isJsonContentType(req.headers['content-type'])) {
        return send(400, errorBody('WRONG_EVENT_FORMAT', 'Content-Type must be application/json (UTF-8).'), { outcome: 'invalid' }, close);
      }
      const tooLarge = (): void => send(413, errorBody('WRONG_EVENT_FORMAT', `The body is larger than ${maxBodyBytes} bytes.`), { outcome: 'too-large' }, close);
      if (Number(req.headers['content-length']) > maxBodyBytes) return tooLarge();
      const read = await readBody(req, maxBodyBytes);
      if (read.kind === 'too-large') return tooLarge();
      if (read.kind === 'aborted') {
        log?.({ at: new Date().toISOString(), msg: 'notification', outcome: 'aborted', status: 0, ms: elapsedMs(), client: client?.text ?? null });
        return;
      }
      const answer = await receiver.handle(read.body);
      send(answer.status, answer.body, {
        outcome: answer.outcome,
        ...(answer.type === undefined ? {} : { type: answer.type }),
        ...(answer.errorCode === undefined ? {} : { error: answer.errorCode }),
      });
    };

    const serveHealth = async (): Promise<void> => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { ok: false }, { outcome: 'method-not-allowed' }, { allow: 'GET', ...close });
      let report: object;
      try {
        report = health === undefined ? { ok: true } : await health();
      } catch (error) {
        const code = isYmOrdersError(error) ? error.code : 'INTERNAL';
        return send(503, { ok: false, error: code }, { outcome: 'unhealthy', error: code });
      }
      send(200, report, { outcome: 'health' });
    };

    const served = isNotification ? serveNotification() : path === HEALTH_PATH ? serveHealth() : Promise.resolve(send(404, { error: { type: 'UNKNOWN', message: 'Not found.' } }, { outcome: 'not-found' }, close));
    served.catch(() => {
      // Only a bug gets here (the receiver answers every failure): answer what is still answerable.
      if (!res.writableEnded) send(500, errorBody('UNKNOWN', 'The receiver failed.'), { outcome: 'failed', error: 'INTERNAL' }, close);
    });
  };
}
