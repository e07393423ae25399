// serve's HTTP server: binds the address (a failure is SERVE_LISTEN_FAILED, with the reason),
// bounds every request by the Market's own timeout, and closes gracefully: no new connection is
// accepted, requests in flight finish (their inbox rows committed, their 200s sent), idle
// keep-alive connections are closed as they become idle, and whatever is still open when the
// request timeout has passed since the close began is cut.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CliError, EXIT_CODES } from '../errors.js';

/**
 * The Market waits 10 s for an answer (NOTES.md §g) and retries after that, so a request that
 * takes longer is no use to anyone: it is cut, and the close waits for no longer.
 */
export const REQUEST_TIMEOUT_MS = 10_000;

export const SERVE_ERROR_CODES = {
  /** The address could not be bound: in use, not on this host, no permission. */
  listenFailed: 'SERVE_LISTEN_FAILED',
} as const;

export interface RunningServer {
  /** e.g. `http://127.0.0.1:8080` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Requests received and not answered yet. */
  readonly inFlight: number;
  /**
   * Stops accepting, lets requests in flight finish, and resolves once every connection is
   * closed: `cut` says how many requests were still open at the deadline and were cut.
   */
  close(deadlineMs?: number): Promise<{ readonly cut: number }>;
}

export async function startServer(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
  host: string,
  port: number,
): Promise<RunningServer> {
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  // The request timeout is enforced when connections are checked: every second, not every 30 s.
  const server = http.createServer({ connectionsCheckingInterval: 1_000 }, (request, response) => {
    inFlight.add(response);
    response.on('close', () => {
      inFlight.delete(response);
      // A keep-alive connection whose last request just ended would hold the close open.
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    // Once closing, the client is told not to send another request on this connection.
    if (closing) response.setHeader('Connection', 'close');
    handler(request, response);
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    const hint = reason === 'EADDRINUSE' ? ' Another process listens there: stop it, or choose another --listen port (0: any free one).' : '';
    throw new CliError(SERVE_ERROR_CODES.listenFailed, `Cannot listen on ${host}:${port}: ${reason}.${hint}`, EXIT_CODES.usage, { host, port, reason });
  }
  const bound = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  let closed: Promise<{ cut: number }> | undefined;
  return {
    url: `http://${shown}:${bound}`,
    host,
    port: bound,
    get inFlight() {
      return inFlight.size;
    },
    close(deadlineMs = REQUEST_TIMEOUT_MS) {
      closed ??= new Promise((resolve) => {
        closing = true;
        for (const response of inFlight) if (!response.headersSent) response.setHeader('Connection', 'close');
        let cut = 0;
        const timer = setTimeout(() => {
          cut = inFlight.size;
          server.closeAllConnections();
        }, deadlineMs);
        server.close(() => {
          clearTimeout(timer);
          resolve({ cut });
        });
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}
