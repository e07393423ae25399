// The receiver over real HTTP on loopback (127.0.0.1, port 0; other 127.0.0.x addresses stand in
// for other hosts): the allow-list, X-Forwarded-For believed only from a trusted proxy, the body
// limit (413 before the body is read, and the server serving the next request), content types,
// the two endpoints, and the log: one line per request that never holds a body or a header.

import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CampaignConfig } from '../src/engine/commands.js';
import { NOTIFICATION_ERROR_CODES, NotificationNetworkError } from '../src/notifications/errors.js';
import { createNotificationHttpHandler, type NotificationHttpOptions, type NotificationLogLine } from '../src/notifications/http.js';
import { MARKET_NOTIFICATION_NETWORKS, NetworkList, parseNetwork, resolveClientAddress } from '../src/notifications/network.js';
import { NotificationReceiver } from '../src/notifications/receiver.js';
import type { Store } from '../src/store/port.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { waitUntil } from './helpers/effects-fixtures.js';

const T0 = Date.UTC(2025, 4, 12, 9, 0, 0);
const FBS: CampaignConfig = { campaignId: 31001, businessId: 8001, model: 'FBS' };
const CAMPAIGNS = new Map([[FBS.campaignId, FBS]]);
const STATUS_UPDATED = { notificationType: 'ORDER_STATUS_UPDATED', orderId: 77, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updatedAt: '2025-05-12T09:02:00Z' };
const PING = { notificationType: 'PING', time: '2025-05-12T09:00:00Z' };
/** Looks like a Partner API key; a test fails if it shows up in any log line. */
const SECRET = 'ACMA:Zx9SECRETkeyVALUE0123456789:abcdef12';

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: any;
}

let dir: string;
let store: Store;
let receiver: NotificationReceiver;
let server: http.Server | undefined;
let base: { port: number };
let lines: NotificationLogLine[];
/** Requests the server has begun to handle. */
let requestsSeen: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-notify-http-'));
  store = SqliteStore.open(join(dir, 'orders.db'));
  receiver = new NotificationReceiver({ store, campaigns: CAMPAIGNS, clock: () => T0, name: 'http-test' });
  lines = [];
  requestsSeen = 0;
});
afterEach(async () => {
  if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
  server = undefined;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(options: Partial<NotificationHttpOptions> = {}): Promise<void> {
  const handler = createNotificationHttpHandler({ receiver, log: (line) => lines.push(line), ...options });
  server = http.createServer((req, res) => {
    requestsSeen++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  base = { port: (server.address() as AddressInfo).port };
}

function request(options: { method?: string; path?: string; body?: string | Buffer; headers?: http.OutgoingHttpHeaders; from?: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: base.port,
      method: options.method ?? 'POST',
      path: options.path ?? '/notification',
      // A header given as undefined is left out (e.g. no Content-Type at all).
      headers: Object.fromEntries(Object.entries({ 'content-type': 'application/json', ...options.headers }).filter(([, v]) => v !== undefined)),
      ...(options.from ? { localAddress: options.from } : {}),
      agent: false,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const post = (body: unknown, options: { headers?: http.OutgoingHttpHeaders; from?: string } = {}): Promise<Reply> => request({ body: JSON.stringify(body), ...options });
const inboxSize = async (): Promise<number> => {
  const c = await store.read((tx) => tx.inbox.counts());
  return c.pending + c.done + c.ignored;
};

describe('POST /notification over loopback', () => {
  it('stores and answers 200 with SendNotificationResponse; GET /health, 404 and 405 answer JSON; one log line each', async () => {
    await serve({ health: () => ({ status: 'ok', inbox: 'fine' }) });
    const stored = await post(STATUS_UPDATED);
    expect(stored).toMatchObject({ status: 200, body: { name: 'http-test', version: '1', time: new Date(T0).toISOString() } });
    expect(stored.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(await post(STATUS_UPDATED)).toMatchObject({ status: 200 });
    expect(await inboxSize()).toBe(1);

    expect(await request({ method: 'GET', path: '/health' })).toMatchObject({ status: 200, body: { status: 'ok', inbox: 'fine' } });
    expect(await request({ method: 'GET', path: '/nothing-here?x=1' })).toMatchObject({ status: 404, body: { error: { type: 'UNKNOWN' } } });
    const wrongMethod = await request({ method: 'GET', path: '/notification' });
    expect(wrongMethod).toMatchObject({ status: 405, headers: { allow: 'POST' } });

    expect(lines.map((l) => [l.msg, l.outcome, l.status, l.type ?? null, l.client])).toEqual([
      ['notification', 'stored', 200, 'ORDER_STATUS_UPDATED', '127.0.0.1'],
      ['notification', 'duplicate', 200, 'ORDER_STATUS_UPDATED', '127.0.0.1'],
      ['request', 'health', 200, null, '127.0.0.1'],
      ['request', 'not-found', 404, null, '127.0.0.1'],
      ['notification', 'method-not-allowed', 405, null, '127.0.0.1'],
    ]);
    for (const line of lines) {
      expect(Object.keys(line).every((k) => ['at', 'msg', 'type', 'outcome', 'status', 'ms', 'client', 'error'].includes(k))).toBe(true);
      expect(line.ms).toBeGreaterThanOrEqual(0);
      expect(Date.parse(line.at)).not.toBeNaN();
    }
  });

  it('a failing health check is a 503 naming only its code', async () => {
    await serve({ health: () => Promise.reject(Object.assign(new Error(`db at postgres://u:${SECRET}@h/db down`), { code: 'X' })) });
    const reply = await request({ method: 'GET', path: '/health' });
    expect(reply).toMatchObject({ status: 503, body: { ok: false, error: 'INTERNAL' } });
    expect(JSON.stringify(reply.body) + JSON.stringify(lines)).not.toContain(SECRET);
  });

  it('wrong content type: 400 WRONG_EVENT_FORMAT, nothing stored; a UTF-8 charset is fine', async () => {
    await serve();
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', undefined]) {
      const reply = await request({ body: JSON.stringify(STATUS_UPDATED), headers: { 'content-type': contentType } });
      expect(reply, String(contentType)).toMatchObject({ status: 400, body: { error: { type: 'WRONG_EVENT_FORMAT' } } });
    }
    expect(await inboxSize()).toBe(0);
    expect(await post(STATUS_UPDATED, { headers: { 'content-type': 'Application/JSON; charset="UTF-8"' } })).toMatchObject({ status: 200 });
  });

  it('a bad body is a 400 over HTTP, our failure a 500, and PING is answered with the store closed', async () => {
    await serve();
    const bad = await post({ ...STATUS_UPDATED, orderId: 'seventy-seven' });
    expect(bad).toMatchObject({ status: 400, body: { error: { type: 'WRONG_EVENT_FORMAT' } } });
    expect(bad.body.error.message).toContain('orderId:');
    await store.close();
    expect(await post(PING)).toMatchObject({ status: 200, body: { name: 'http-test' } });
    expect(await post(STATUS_UPDATED)).toMatchObject({ status: 500, body: { error: { type: 'UNKNOWN' } } });
    expect(lines.map((l) => [l.outcome, l.status, l.error ?? null])).toEqual([['invalid', 400, null], ['ping', 200, null], ['failed', 500, 'DB_CLOSED']]);
  });
});

describe('who may post', () => {
  it('the allow-list: an address outside it gets 403 and nothing is stored; inside it, 200', async () => {
    await serve({ allow: [...MARKET_NOTIFICATION_NETWORKS] });
    expect(await post(STATUS_UPDATED)).toMatchObject({ status: 403, body: { error: { type: 'UNKNOWN' } } });
    expect(await inboxSize()).toBe(0);
    expect(lines.at(-1)).toMatchObject({ outcome: 'denied', status: 403, client: '127.0.0.1' });
    await new Promise<void>((resolve) => server!.close(() => resolve()));

    await serve({ allow: ['127.0.0.2/32', '::1'] });
    expect(await post(STATUS_UPDATED, { from: '127.0.0.3' })).toMatchObject({ status: 403 });
    expect(await post(STATUS_UPDATED, { from: '127.0.0.2' })).toMatchObject({ status: 200 });
    expect(await inboxSize()).toBe(1);
  });

  it('X-Forwarded-For counts only from a trusted proxy, read from the right; a client cannot forge it', async () => {
    await serve({ allow: ['5.45.207.0/25'], trustedProxies: ['127.0.0.2'] });
    const viaProxy = (xff: string) => post(PING, { from: '127.0.0.2', headers: { 'x-forwarded-for': xff } });

    expect(await viaProxy('5.45.207.10')).toMatchObject({ status: 200 });
    expect(lines.at(-1)).toMatchObject({ client: '5.45.207.10', outcome: 'ping' });
    // The left-most entry is whatever the client sent; the proxy appended the real peer on the right.
    expect(await viaProxy('5.45.207.10, 9.9.9.9')).toMatchObject({ status: 403 });
    expect(lines.at(-1)).toMatchObject({ client: '9.9.9.9', outcome: 'denied' });
    expect(await viaProxy('9.9.9.9, 5.45.207.11')).toMatchObject({ status: 200 });
    // A chain of trusted proxies is skipped; an entry that is no address names nobody.
    expect(await viaProxy('5.45.207.12, 127.0.0.2')).toMatchObject({ status: 200 });
    expect(lines.at(-1)).toMatchObject({ client: '5.45.207.12' });
    expect(await viaProxy('5.45.207.12, garbage')).toMatchObject({ status: 403 });
    expect(lines.at(-1)).toMatchObject({ client: null });

    // Not the proxy: its header is ignored and its own address is judged.
    expect(await post(PING, { from: '127.0.0.3', headers: { 'x-forwarded-for': '5.45.207.10' } })).toMatchObject({ status: 403 });
    expect(lines.at(-1)).toMatchObject({ client: '127.0.0.3', outcome: 'denied' });
  });

  it('networks: IPv4, IPv6 and IPv4-mapped addresses; bad CIDRs are NOTIFY_BAD_NETWORK', () => {
    const list = NetworkList.parse([...MARKET_NOTIFICATION_NETWORKS, '2a02:6b8::/32', '::ffff:10.1.0.0/112']);
    expect(list.contains('5.45.207.0')).toBe(true);
    expect(list.contains('5.45.207.127')).toBe(true);
    expect(list.contains('5.45.207.128')).toBe(false);
    expect(list.contains('141.8.142.5')).toBe(true);
    expect(list.contains('5.255.252.255')).toBe(false);
    expect(list.contains('::ffff:5.45.207.1')).toBe(true);
    expect(list.contains('::FFFF:052d:cf01')).toBe(true); // 5.45.207.1 in hex groups
    expect(list.contains('0:0:0:0:0:ffff:5.45.207.200')).toBe(false);
    expect(list.contains('2a02:6b8:0:1::7')).toBe(true);
    expect(list.contains('2a02:6b9::1')).toBe(false);
    expect(list.contains('10.1.255.255')).toBe(true);
    expect(list.contains('10.2.0.0')).toBe(false);
    expect(list.contains('fe80::1%eth0')).toBe(false);
    expect(list.contains('not an address')).toBe(false);
    expect(NetworkList.parse(['fe80::/10']).contains('fe80::1%eth0')).toBe(true);
    expect(NetworkList.parse(['0.0.0.0/0']).contains('203.0.113.9')).toBe(true);
    expect(NetworkList.parse(['0.0.0.0/0']).contains('2001:db8::1')).toBe(false);
    expect(parseNetwork('5.45.207.77/25')).toMatchObject({ family: 4, prefix: 25, base: (5n << 24n) | (45n << 16n) | (207n << 8n) });

    for (const bad of ['5.45.207.0/33', '5.45.207/25', '2a02:6b8::/129', '::ffff:10.0.0.0/95', '10.0.0.1/', '10.0.0.1/+8', 'fe80::1%eth0/64', 'market', '']) {
      expect(() => NetworkList.parse([bad]), bad).toThrow(NotificationNetworkError);
      expect(() => NetworkList.parse([bad]), bad).toThrow(expect.objectContaining({ code: NOTIFICATION_ERROR_CODES.badNetwork }));
    }
    expect(() => createNotificationHttpHandler({ receiver, allow: ['10.0.0.0/8', 'nope'] })).toThrow(NotificationNetworkError);
    expect(() => createNotificationHttpHandler({ receiver, trustedProxies: ['1.2.3.4/99'] })).toThrow(NotificationNetworkError);

    const proxies = NetworkList.parse(['10.0.0.0/8']);
    expect(resolveClientAddress('::ffff:10.0.0.5', '[2001:db8::9]:443', proxies)?.text).toBe('2001:db8::9');
    expect(resolveClientAddress('10.0.0.5', ['203.0.113.1:5555', '10.0.0.9'], proxies)?.text).toBe('203.0.113.1');
    expect(resolveClientAddress('10.0.0.5', undefined, proxies)?.text).toBe('10.0.0.5');
    expect(resolveClientAddress('203.0.113.7', '5.45.207.1', proxies)?.text).toBe('203.0.113.7');
    expect(resolveClientAddress(undefined, '5.45.207.1', proxies)).toBeUndefined();
  });
});

describe('bodies over the limit', () => {
  /** Opens a raw connection, writes `head`, then `chunks` one by one while no answer has come; resolves with what was written and the answer. */
  function rawPost(head: string, chunk: Buffer | undefined, maxChunks: number): Promise<{ written: number; answer: string }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(base.port, '127.0.0.1');
      let answer = '';
      let written = 0;
      let sent = 0;
      socket.on('data', (d: Buffer) => {
        answer += d.toString('latin1');
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        // The server closes after answering; a write racing the close may see a reset.
        if (answer === '') reject(error);
      });
      socket.on('close', () => resolve({ written, answer }));
      socket.write(head);
      const pump = (): void => {
        while (chunk !== undefined && answer === '' && sent < maxChunks && !socket.destroyed) {
          sent++;
          written += chunk.length;
          if (!socket.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]))) {
            socket.once('drain', pump);
            return;
          }
        }
        if (chunk !== undefined && sent >= maxChunks && answer === '') socket.end('0\r\n\r\n');
      };
      pump();
    });
  }

  it('a declared Content-Length over the limit: 413 before a byte of the body is read, then the next request is served', async () => {
    await serve({ maxBodyBytes: 4096 });
    const head = `POST /notification HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${50 * 1024 * 1024}\r\n\r\n`;
    const { answer } = await rawPost(head, undefined, 0);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(answer).toContain('"WRONG_EVENT_FORMAT"');
    expect(lines.at(-1)).toMatchObject({ outcome: 'too-large', status: 413 });
    expect(await post(STATUS_UPDATED)).toMatchObject({ status: 200 });
    expect(await inboxSize()).toBe(1);
  });

  it('a chunked body that grows past the limit: 413 while the client is still sending (it is not buffered to the end); the server goes on', async () => {
    await serve({ maxBodyBytes: 64 * 1024 });
    const head = 'POST /notification HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const planned = 4096; // 64 MiB if the server read it all
    const { written, answer } = await rawPost(head, chunk, planned);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(written).toBeLessThan(planned * chunk.length);
    expect(lines.at(-1)).toMatchObject({ outcome: 'too-large', status: 413 });
    // Via a normal client too, and then a normal request.
    expect(await request({ body: Buffer.alloc(200 * 1024, 0x20) })).toMatchObject({ status: 413 });
    expect(await post(STATUS_UPDATED)).toMatchObject({ status: 200 });
  });

  it('a client that gives up mid-body is logged as aborted, stores nothing, and the server goes on', async () => {
    await serve();
    const socket = net.connect(base.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.on('connect', resolve));
    socket.write('POST /notification HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"notificationType":');
    await waitUntil(() => requestsSeen === 1, 'the request is in');
    expect(lines).toEqual([]);
    socket.destroy();
    await waitUntil(() => lines.length === 1, 'the aborted request is logged');
    expect(lines[0]).toMatchObject({ outcome: 'aborted', client: '127.0.0.1' });
    expect(await post(PING)).toMatchObject({ status: 200 });
    expect(await inboxSize()).toBe(0);
  });
});

describe('secrets', () => {
  it('an Api-Key-like value in a field, a header or a bad body is never logged (nor stored for a known type)', async () => {
    await serve();
    const headers = { 'api-key': SECRET, authorization: `Bearer ${SECRET}`, cookie: `s=${SECRET}` };
    expect(await post({ ...STATUS_UPDATED, apiKey: SECRET, note: `Api-Key: ${SECRET}` }, { headers })).toMatchObject({ status: 200 });
    expect(await post({ ...STATUS_UPDATED, orderId: SECRET }, { headers })).toMatchObject({ status: 400 });
    expect(await post({ notificationType: SECRET }, { headers })).toMatchObject({ status: 400 });
    expect(await post({ notificationType: 'SOMETHING_NEW', token: SECRET }, { headers })).toMatchObject({ status: 200 });
    expect(await request({ path: `/notification?key=${encodeURIComponent(SECRET)}`, body: JSON.stringify(PING), headers })).toMatchObject({ status: 200 });
    expect(await request({ path: `/x/${encodeURIComponent(SECRET)}`, headers })).toMatchObject({ status: 404 });
    expect(lines).toHaveLength(6);
    const logged = JSON.stringify(lines);
    expect(logged).not.toContain(SECRET);
    expect(logged).not.toContain(SECRET.slice(5, 25));
    const rows = await store.read((tx) => tx.inbox.recent(10));
    expect(rows).toHaveLength(2);
    expect(JSON.stringify(rows)).not.toContain(SECRET.slice(5, 25));
  });
});
