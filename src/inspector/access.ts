// Who may read the inspector's pages. On loopback without a token: this host's own browsers,
// and only under a loopback name (a page elsewhere that rebinds its own name to 127.0.0.1 is
// refused by the Host check). With a token (required off loopback): every request carries it,
// as `?token=` once (answered with a cookie and a redirect that drops it from the address), the
// cookie, or an `Authorization: Bearer` header.

import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { InspectorError, INSPECTOR_ERROR_CODES } from './errors.js';

export const MIN_TOKEN_LENGTH = 16;
export const TOKEN_COOKIE = 'ym_inspect';
export const TOKEN_ENV = 'YM_INSPECT_TOKEN';

/** `localhost`, 127.0.0.0/8 or ::1 (brackets allowed). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/** Throws INSPECTOR_TOKEN_REQUIRED for an address off loopback without a token, or for a short token. */
export function checkListenAccess(host: string, token: string | undefined): void {
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new InspectorError(
      INSPECTOR_ERROR_CODES.tokenRequired,
      `The inspector token is ${token.length} characters long; use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 16).`,
      { host, minLength: MIN_TOKEN_LENGTH },
    );
  }
  if (token === undefined && !isLoopbackHost(host)) {
    throw new InspectorError(
      INSPECTOR_ERROR_CODES.tokenRequired,
      `${host} is not a loopback address: the inspector listens there only with a token (--token or $${TOKEN_ENV}, at least ${MIN_TOKEN_LENGTH} characters), which every request must then carry.`,
      { host, minLength: MIN_TOKEN_LENGTH },
    );
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return undefined;
}

/** The name in a Host header, without its port; '' for none or one that is no host name. */
function hostnameOf(header: string | undefined): string {
  try {
    return new URL(`http://${header ?? ''}`).hostname;
  } catch {
    return '';
  }
}

export type AccessDecision =
  | { readonly kind: 'allow' }
  | { readonly kind: 'deny'; readonly status: 401 | 403; readonly reason: string }
  /** The token came in the query: set the cookie and send the browser to `location` without it. */
  | { readonly kind: 'login'; readonly location: string; readonly cookie: string };

export class AccessGate {
  /** The token's digest: what is compared (in constant time) and what the cookie holds. */
  readonly #digest: Buffer | undefined;
  readonly #cookiePath: string;

  constructor(token: string | undefined, cookiePath: string) {
    this.#digest = token === undefined ? undefined : digest(token);
    this.#cookiePath = cookiePath;
  }

  #matches(candidate: Buffer): boolean {
    return this.#digest !== undefined && candidate.length === this.#digest.length && timingSafeEqual(candidate, this.#digest);
  }

  decide(request: IncomingMessage, url: URL): AccessDecision {
    if (this.#digest === undefined) {
      const host = hostnameOf(request.headers.host);
      return isLoopbackHost(host) ? { kind: 'allow' } : { kind: 'deny', status: 403, reason: `Host ${host || '(none)'} is not a loopback name; open the inspector at the address it printed.` };
    }
    const fromQuery = url.searchParams.get('token');
    if (fromQuery !== null) {
      if (!this.#matches(digest(fromQuery))) return { kind: 'deny', status: 401, reason: 'Wrong token.' };
      const clean = new URL(url);
      clean.searchParams.delete('token');
      return {
        kind: 'login',
        location: `${clean.pathname}${clean.search}`,
        cookie: `${TOKEN_COOKIE}=${this.#digest.toString('hex')}; HttpOnly; SameSite=Strict; Path=${this.#cookiePath}`,
      };
    }
    const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (bearer !== undefined && this.#matches(digest(bearer))) return { kind: 'allow' };
    const cookie = cookieValue(request.headers.cookie, TOKEN_COOKIE);
    if (cookie !== undefined && /^[0-9a-f]{64}$/.test(cookie) && this.#matches(Buffer.from(cookie, 'hex'))) return { kind: 'allow' };
    return { kind: 'deny', status: 401, reason: 'This inspector needs its token: open it once with ?token=<token>, or send Authorization: Bearer <token>.' };
  }
}
