// The demo's push receiver: the demo engine's handleNotification behind the project's node:http
// handler on 127.0.0.1 (any free port), as `ym-orders serve` has it. The
// fake Market's notifier posts to it; with --processes it stays in this process, and the
// children apply what it stored. Its port is bound before the engine opens, because the fake
// needs the receiver's URL when it starts and the engine needs the fake's: until serve() a
// notification is answered 503, which the Market (and the fake) try again later.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../../engine/engine.js';
import { createNotificationHttpHandler, NOTIFICATION_PATH } from '../../notifications/http.js';
import type { NotificationStats } from '../../notifications/receiver.js';
import { NOTIFICATION_LIMITS } from '../../notifications/schemas.js';
import { startServer } from '../serve/http-server.js';

/** What the receiver answered, as the demo reports it. */
export interface NotificationTally {
  /** Answered 200: stored, duplicates, ignored and PINGs alike; the fake counts these as delivered. */
  readonly received: number;
  /** New notifications stored for the engine: status updates to apply, orders to read. */
  readonly stored: number;
  /** Notifications the inbox had already: answered 200 and written once. */
  readonly duplicates: number;
  /** Stored, but of a type (or a campaign) the engine does not act on. */
  readonly ignored: number;
  readonly ignoredTypes: Readonly<Record<string, number>>;
  /** Answered 400: not the spec's shape. */
  readonly invalid: number;
  /** Answered 500: our store failed, and the Market sends it again. */
  readonly failed: number;
}

export interface DemoReceiver {
  /** The full URL of POST /notification. */
  readonly url: string;
  /** From now on, notifications are stored in the engine's database, for its campaigns. */
  serve(engine: Engine): void;
  tally(): NotificationTally;
  close(): Promise<void>;
}

const NOT_READY = JSON.stringify({ error: { type: 'UNKNOWN', message: 'The receiver is not ready yet; send it again later.' } });

export async function startDemoReceiver(): Promise<DemoReceiver> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  let stats: (() => NotificationStats) | undefined;
  const ignoredTypes: Record<string, number> = {};
  const server = await startServer(
    (req, res) => {
      if (handler) return handler(req, res);
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
      res.end(NOT_READY);
    },
    '127.0.0.1',
    0,
  );
  return {
    url: `${server.url}${NOTIFICATION_PATH}`,
    serve(engine) {
      stats = () => engine.notificationStats();
      handler = createNotificationHttpHandler({
        receiver: {
          maxBodyBytes: NOTIFICATION_LIMITS.maxBodyBytes,
          handle: async (body) => {
            const answer = await engine.handleNotification(body);
            if (answer.outcome === 'ignored' && answer.type !== undefined) ignoredTypes[answer.type] = (ignoredTypes[answer.type] ?? 0) + 1;
            return answer;
          },
        },
      });
    },
    tally() {
      const s = stats?.() ?? { stored: 0, duplicate: 0, ignored: 0, ping: 0, invalid: 0, failed: 0 };
      return {
        received: s.stored + s.duplicate + s.ignored + s.ping,
        stored: s.stored,
        duplicates: s.duplicate,
        ignored: s.ignored,
        ignoredTypes: { ...ignoredTypes },
        invalid: s.invalid,
        failed: s.failed,
      };
    },
    async close() {
      await server.close();
    },
  };
}
