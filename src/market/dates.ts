// The Partner API writes dates in three ways: OrderDTO's `DD-MM-YYYY HH:MM:SS` in Moscow time,
// BusinessOrderDTO's ISO 8601 with an offset, and `YYYY-MM-DD` calendar dates. Moscow has
// been UTC+03:00 all year since 2014, so a fixed offset is exact for every date we handle.

const MOSCOW_OFFSET_MS = 3 * 60 * 60 * 1000;
const MARKET_DATE_TIME = /^(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})$/;

/**
 * Parses OrderDTO's `DD-MM-YYYY HH:MM:SS` (Moscow time) into epoch milliseconds.
 * Returns undefined for anything else, including impossible dates like 31-02-2024.
 */
export function parseMarketDateTime(text: string): number | undefined {
  const match = MARKET_DATE_TIME.exec(text);
  if (match === null) return undefined;
  const [day, month, year, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const asUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 31-02 over into March; a round trip catches that.
  const check = new Date(asUtc);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return undefined;
  return asUtc - MOSCOW_OFFSET_MS;
}

/** The Moscow wall-clock parts of an instant, zero-padded. */
function moscowParts(epochMs: number): { y: string; mo: string; d: string; h: string; mi: string; s: string; ms: string } {
  const t = new Date(epochMs + MOSCOW_OFFSET_MS);
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return {
    y: pad(t.getUTCFullYear(), 4), mo: pad(t.getUTCMonth() + 1), d: pad(t.getUTCDate()),
    h: pad(t.getUTCHours()), mi: pad(t.getUTCMinutes()), s: pad(t.getUTCSeconds()), ms: pad(t.getUTCMilliseconds(), 3),
  };
}

/** Formats an instant as OrderDTO's `DD-MM-YYYY HH:MM:SS` in Moscow time (seconds are truncated). */
export function formatMarketDateTime(epochMs: number): string {
  const p = moscowParts(epochMs);
  return `${p.d}-${p.mo}-${p.y} ${p.h}:${p.mi}:${p.s}`;
}

/** Formats an instant as ISO 8601 with the Moscow offset, e.g. `2020-02-02T14:30:30.000+03:00`. */
export function formatIsoMoscow(epochMs: number): string {
  const p = moscowParts(epochMs);
  return `${p.y}-${p.mo}-${p.d}T${p.h}:${p.mi}:${p.s}.${p.ms}+03:00`;
}

/** The Moscow calendar date of an instant as `YYYY-MM-DD` (what "today" means to the Market). */
export function moscowDate(epochMs: number): string {
  const p = moscowParts(epochMs);
  return `${p.y}-${p.mo}-${p.d}`;
}

/** The Moscow calendar date of an instant as `DD-MM-YYYY` (OrderDTO's DateDdMmYyyy). */
export function moscowDateDdMmYyyy(epochMs: number): string {
  const p = moscowParts(epochMs);
  return `${p.d}-${p.mo}-${p.y}`;
}
