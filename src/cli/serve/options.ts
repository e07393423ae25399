// serve's options, checked before anything is opened: a bad one is a USAGE error (exit 2) that
// names the option and the value, and nothing starts.

import { isIP } from 'node:net';
import { MARKET_NOTIFICATION_NETWORKS, NetworkList } from '../../notifications/network.js';
import { NotificationNetworkError } from '../../notifications/errors.js';
import { CliError, EXIT_CODES, usageError } from '../errors.js';
import { parsePositiveInteger, parseSeconds } from '../input.js';
import { parseListen } from '../commands/inspect.js';

export const DEFAULT_LISTEN = '127.0.0.1:8080';
/** `--allow market`: the networks the Market sends notifications from. */
export const MARKET_ALLOW_ALIAS = 'market';

export interface ServeOptionsText {
  readonly listen: string;
  readonly allow?: readonly string[];
  readonly trustedProxy?: readonly string[];
  readonly maxBody?: string;
  readonly sync: string;
  readonly idle?: string;
}

export interface ServeSettings {
  readonly host: string;
  readonly port: number;
  /** Networks as given, `market` expanded; undefined: anyone who reaches the socket. */
  readonly allow: readonly string[] | undefined;
  readonly trustedProxies: readonly string[];
  readonly maxBodyBytes: number | undefined;
  /** 0: no sync. */
  readonly syncMs: number;
  readonly idleMs: number | undefined;
}

// RFC 1123 host names: labels of letters, digits and inner hyphens.
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `--listen`: an IP address (IPv6 in brackets) or a host name, and a port 0–65535. */
export function parseServeListen(text: string): { host: string; port: number } {
  const { host, port } = parseListen(text);
  if (isIP(host) === 0 && !(HOST_NAME.test(host) && !/^[\d.]+$/.test(host))) {
    throw usageError(`--listen "${text}": "${host}" is neither an IP address nor a host name; e.g. 127.0.0.1:8080, [::1]:8080 or 0.0.0.0:8080.`);
  }
  return { host, port };
}

/** Checks a list of networks as the receiver will read them; NOTIFY_BAD_NETWORK (exit 2) names the option. */
function checkNetworks(option: string, networks: readonly string[]): void {
  try {
    NetworkList.parse(networks);
  } catch (error) {
    if (error instanceof NotificationNetworkError) throw new CliError(error.code, `${option}: ${error.message}`, EXIT_CODES.usage, { ...error.details });
    throw error;
  }
}

export function parseServeOptions(o: ServeOptionsText): ServeSettings {
  const { host, port } = parseServeListen(o.listen);
  const allow = o.allow?.flatMap((a) => (a.trim().toLowerCase() === MARKET_ALLOW_ALIAS ? MARKET_NOTIFICATION_NETWORKS : [a.trim()]));
  if (allow !== undefined) checkNetworks('--allow', allow);
  const trustedProxies = (o.trustedProxy ?? []).map((p) => p.trim());
  checkNetworks('--trusted-proxy', trustedProxies);
  return {
    host,
    port,
    allow,
    trustedProxies,
    maxBodyBytes: o.maxBody === undefined ? undefined : parsePositiveInteger(o.maxBody, '--max-body'),
    syncMs: parseSeconds(o.sync, '--sync'),
    // As in run: never a busy loop.
    idleMs: o.idle === undefined ? undefined : Math.max(10, parseSeconds(o.idle, '--idle')),
  };
}
