// Database URLs carry passwords: every message, detail and log line shows them redacted.

/** The URL with any password (in the user info, or a `password` parameter) replaced by `***`. */
export function redactUrl(url: string): string {
  const start = url.indexOf('://') + 3;
  // The last `@` ends the user info: an unescaped `@` in a password must not leak its tail.
  const at = url.lastIndexOf('@');
  const colon = url.indexOf(':', start);
  const userInfoRedacted = at > start && colon > 0 && colon < at ? `${url.slice(0, colon + 1)}***${url.slice(at)}` : url;
  return userInfoRedacted.replace(/([?&]password=)[^&#]*/gi, '$1***');
}
