// serve's log: one JSON object a line on stdout, `{msg, at, ...fields}`, for a log collector
// to follow. Every string value passes through the output's redaction before it is serialised
// (a secret with a quote or a backslash in it would no longer match once JSON-escaped), and the
// line again after: neither the API key nor a database password can be written.

import type { Output } from '../output.js';

export interface JsonLine {
  readonly msg: string;
  readonly [field: string]: unknown;
}

export type JsonLog = (line: JsonLine) => void;

export function createJsonLog(out: Output, clock: () => number = Date.now): JsonLog {
  return (line) => {
    const { msg, ...fields } = line;
    const text = JSON.stringify({ msg, at: new Date(clock()).toISOString(), ...fields }, (_key, value: unknown) =>
      typeof value === 'string' ? out.redact(value) : value,
    );
    out.raw(`${text}\n`);
  };
}

/**
 * The secrets in a database URL: its password (as written and decoded) and a `password`
 * parameter. A SQLite path has none.
 */
export function databaseSecrets(db: string): string[] {
  let url: URL;
  try {
    url = new URL(db);
  } catch {
    return [];
  }
  const secrets = [url.password, url.searchParams.get('password') ?? ''];
  try {
    secrets.push(decodeURIComponent(url.password));
  } catch {
    // a malformed escape: the raw form is there already
  }
  return [...new Set(secrets.filter((s) => s !== ''))];
}
