// The API key must never reach a log, an error or the database (DESIGN.md principle 7).
// Anything that may echo request data (the Market's error messages, bodies, transport errors)
// passes through redactSecret before it is put into an error.

export const REDACTED = '[REDACTED]';

/**
 * Returns a copy of `value` with every occurrence of `secret` replaced by `[REDACTED]`:
 * strings directly, arrays and plain objects deeply (keys included). Other values are returned as is.
 */
export function redactSecret<T>(value: T, secret: string): T {
  if (secret === '') return value;
  return redact(value, secret) as T;
}

function redact(value: unknown, secret: string): unknown {
  if (typeof value === 'string') return value.replaceAll(secret, REDACTED);
  if (Array.isArray(value)) return value.map((item) => redact(item, secret));
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redact(k, secret), redact(v, secret)]));
  }
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
