// A loopback TCP proxy in front of the PostgreSQL test server, for the fault suites: the engine
// connects through it, and the test breaks the path between them at will. It cuts every open
// connection, refuses new ones (accepted and closed at once, as a server going down does) or
// blackholes them (accepted and never answered, as a partitioned network does), and cuts a
// connection at the first frontend message that matches a predicate: before that message reaches
// the server, so the server never runs it.
//
// To see messages it reads the client→server bytes with the least of the wire protocol
// (postgresql.org/docs/15/protocol-message-formats.html): an untyped startup packet (int32 length,
// int32 code; after an SSL or GSS request another untyped packet follows), then messages of a type
// byte and an int32 length that counts itself. A Parse ('P') names a prepared statement and
// carries its SQL; a Bind ('B') names the statement it runs, which the driver parses once per
// connection, so a Bind is matched by the SQL its statement was parsed with on that connection.
// The server's answers pass through unread.

import net from 'node:net';
import { POSTGRES_TEST_URL } from './postgres.js';

/** One frontend message, as the predicate of {@link TcpProxy.cutAt} sees it. */
export interface FrontendMessage {
  /** Which proxied connection sent it: 1, 2, … in the order they were accepted. */
  readonly connection: number;
  /** The type byte as a character ('P' Parse, 'B' Bind, 'Q' simple Query, 'X' Terminate…), or 'startup'. */
  readonly type: string;
  /** Parse and Bind: the prepared statement's name ('' for the unnamed one). */
  readonly statement?: string;
  /** Parse and Query: the SQL; Bind: the SQL its statement was parsed with on this connection. */
  readonly sql?: string;
}

/** What happens to a connection the proxy accepts. */
export const PROXY_MODES = {
  /** Forwarded to the server. */
  forward: 'forward',
  /** Closed at once: the client sees the connection end before the server's first byte. */
  refuse: 'refuse',
  /** Held open, nothing forwarded either way: the client waits until its own timeout. */
  blackhole: 'blackhole',
} as const;
export type ProxyMode = (typeof PROXY_MODES)[keyof typeof PROXY_MODES];

export interface TcpProxy {
  /** The test server's URL with its host and port replaced by the proxy's. */
  readonly url: string;
  readonly port: number;
  /** Connections accepted so far, whatever the mode. */
  accepted(): number;
  /** Connections open now (forwarded or blackholed). */
  open(): number;
  /** Closes every open connection now, both ways; returns how many. */
  cutAll(): number;
  /** What happens to connections accepted from now on; open ones are left as they are. */
  setMode(mode: ProxyMode): void;
  /**
   * Cuts, once, the first connection that sends a message matching `predicate` (on connections
   * open now or later), before that message or anything after it reaches the server. Resolves
   * with the message it cut at. Replaces a cut armed before and not yet fired.
   */
  cutAt(predicate: (message: FrontendMessage) => boolean): Promise<FrontendMessage>;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/** Reads the NUL-terminated string at `offset`: its text and the offset after the NUL. */
function cstring(buffer: Buffer, offset: number): [string, number] {
  const end = buffer.indexOf(0, offset);
  if (end < 0) throw new Error('a frontend message with an unterminated string');
  return [buffer.toString('utf8', offset, end), end + 1];
}

/** Splits one connection's client→server bytes into frontend messages, as they arrive. */
class FrontendReader {
  #pending: Buffer = Buffer.alloc(0);
  #startup = true;
  /** Statement name → the SQL it was parsed with on this connection. */
  readonly #statements = new Map<string, string>();
  readonly #connection: number;

  constructor(connection: number) {
    this.#connection = connection;
  }

  /**
   * Adds `chunk`; returns each complete message with its bytes, in order. The bytes of an
   * incomplete last message stay here until the rest arrives.
   */
  push(chunk: Buffer): { message: FrontendMessage; bytes: Buffer }[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const out: { message: FrontendMessage; bytes: Buffer }[] = [];
    for (;;) {
      const headerBytes = this.#startup ? 4 : 5;
      if (this.#pending.length < headerBytes) break;
      const size = this.#startup ? this.#pending.readInt32BE(0) : 1 + this.#pending.readInt32BE(1);
      if (this.#pending.length < size) break;
      const bytes = this.#pending.subarray(0, size);
      this.#pending = this.#pending.subarray(size);
      out.push({ message: this.#read(bytes), bytes });
    }
    return out;
  }

  #read(bytes: Buffer): FrontendMessage {
    const connection = this.#connection;
    if (this.#startup) {
      const code = bytes.readInt32BE(4);
      // The server answers an SSL or GSS request with one byte; the real startup packet follows.
      this.#startup = code === SSL_REQUEST || code === GSSENC_REQUEST;
      return { connection, type: 'startup' };
    }
    const type = String.fromCharCode(bytes[0]!);
    const body = 5;
    if (type === 'P') {
      const [statement, next] = cstring(bytes, body);
      const [sql] = cstring(bytes, next);
      this.#statements.set(statement, sql);
      return { connection, type, statement, sql };
    }
    if (type === 'B') {
      const [, next] = cstring(bytes, body); // the portal
      const [statement] = cstring(bytes, next);
      const sql = this.#statements.get(statement);
      return { connection, type, statement, ...(sql !== undefined ? { sql } : {}) };
    }
    if (type === 'Q') return { connection, type, sql: cstring(bytes, body)[0] };
    return { connection, type };
  }
}

interface Cut {
  readonly predicate: (message: FrontendMessage) => boolean;
  readonly fired: (message: FrontendMessage) => void;
}

/** Starts a proxy on 127.0.0.1 (port 0) in front of the server of `targetUrl`. */
export async function startTcpProxy(targetUrl: string = POSTGRES_TEST_URL): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const targetHost = target.hostname || '127.0.0.1';
  const targetPort = Number(target.port || 5432);
  let mode: ProxyMode = PROXY_MODES.forward;
  let cut: Cut | undefined;
  let accepted = 0;
  /** Every open connection: the client's socket and, when forwarded, the server's. */
  const open = new Map<net.Socket, net.Socket | undefined>();

  const end = (client: net.Socket): void => {
    const server = open.get(client);
    open.delete(client);
    client.destroy();
    server?.destroy();
  };

  const forward = (client: net.Socket, connection: number): void => {
    const server = net.connect(targetPort, targetHost);
    open.set(client, server);
    const reader = new FrontendReader(connection);
    client.on('data', (chunk: Buffer) => {
      for (const { message, bytes } of reader.push(chunk)) {
        if (cut?.predicate(message)) {
          const fired = cut.fired;
          cut = undefined;
          end(client);
          fired(message);
          return;
        }
        server.write(bytes);
      }
    });
    server.on('data', (chunk: Buffer) => client.write(chunk));
    server.on('close', () => end(client));
    server.on('error', () => end(client));
  };

  const listener = net.createServer((client) => {
    const connection = ++accepted;
    client.on('error', () => end(client));
    client.on('close', () => end(client));
    if (mode === PROXY_MODES.refuse) {
      client.destroy();
      return;
    }
    if (mode === PROXY_MODES.blackhole) {
      open.set(client, undefined);
      return;
    }
    forward(client, connection);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (listener.address() as net.AddressInfo).port;
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);

  return {
    url: url.toString(),
    port,
    accepted: () => accepted,
    open: () => open.size,
    cutAll: () => {
      const clients = [...open.keys()];
      for (const client of clients) end(client);
      return clients.length;
    },
    setMode: (next) => {
      mode = next;
    },
    cutAt: (predicate) => new Promise<FrontendMessage>((fired) => (cut = { predicate, fired })),
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of [...open.keys()]) end(client);
        listener.close(() => resolve());
      }),
  };
}
