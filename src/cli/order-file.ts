// Order files for `import`: JSON Lines (one object a line, or a JSON array) or CSV
// `orderId,campaignId,status,substatus[,updatedAt]` (a header row is optional). Every line is
// checked before anything is written; the error lists the bad lines.

import { parseMarketDateTime } from '../market/dates.js';
import { inputError } from './errors.js';

export interface ImportRecord {
  readonly orderId: number;
  readonly campaignId: number;
  readonly status: string;
  readonly substatus: string | null;
  /** Epoch ms of the Market's last change, if the file says. */
  readonly observedAt?: number;
}

export type OrderFileFormat = 'jsonl' | 'csv';

const MAX_ISSUES = 10;
const VALUE = /^[A-Z0-9_]{1,100}$/;
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

const COLUMN_NAMES: Record<string, keyof RawRecord> = {
  orderid: 'orderId', order_id: 'orderId', id: 'orderId',
  campaignid: 'campaignId', campaign_id: 'campaignId',
  status: 'status',
  substatus: 'substatus',
  updatedat: 'updatedAt', updated_at: 'updatedAt', updatedate: 'updatedAt', observedat: 'updatedAt',
};
const POSITIONAL: (keyof RawRecord)[] = ['orderId', 'campaignId', 'status', 'substatus', 'updatedAt'];

interface RawRecord {
  orderId?: unknown;
  campaignId?: unknown;
  status?: unknown;
  substatus?: unknown;
  updatedAt?: unknown;
}

export function detectFormat(name: string | undefined, text: string): OrderFileFormat {
  const ext = name?.toLowerCase().match(/\.([a-z]+)$/)?.[1];
  if (ext === 'jsonl' || ext === 'ndjson' || ext === 'json') return 'jsonl';
  if (ext === 'csv') return 'csv';
  const first = text.trimStart()[0];
  return first === '{' || first === '[' ? 'jsonl' : 'csv';
}

function toId(value: unknown, field: string): number | string {
  const n = typeof value === 'string' && /^\d{1,16}$/.test(value.trim()) ? Number(value.trim()) : value;
  if (typeof n === 'number' && Number.isSafeInteger(n) && n > 0) return n;
  return `${field} ${JSON.stringify(value) ?? 'missing'} is not a positive integer`;
}

function toValue(value: unknown, field: string, optional: boolean): string | null | { error: string } {
  if (optional && (value === undefined || value === null || value === '')) return null;
  const v = typeof value === 'string' ? value.trim().toUpperCase() : value;
  if (typeof v === 'string' && VALUE.test(v)) return v;
  return { error: `${field} ${JSON.stringify(value) ?? 'missing'} is not an upper-case Market value such as ${field === 'status' ? 'PROCESSING' : 'STARTED'}` };
}

function toTime(value: unknown): number | undefined | { error: string } {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const s = value.trim();
    if (/^\d{1,15}$/.test(s)) return Number(s);
    if (ISO_WITH_OFFSET.test(s) && !Number.isNaN(Date.parse(s))) return Date.parse(s);
    const market = parseMarketDateTime(s);
    if (market !== undefined) return market;
  }
  return { error: `updatedAt ${JSON.stringify(value)} is not ISO 8601 with an offset, epoch ms, or DD-MM-YYYY HH:MM:SS (Moscow)` };
}

function toRecord(raw: RawRecord): ImportRecord | string {
  const orderId = toId(raw.orderId, 'orderId');
  const campaignId = toId(raw.campaignId, 'campaignId');
  const status = toValue(raw.status, 'status', false);
  const substatus = toValue(raw.substatus, 'substatus', true);
  const observedAt = toTime(raw.updatedAt);
  const errors = [orderId, campaignId].filter((v): v is string => typeof v === 'string');
  for (const v of [status, substatus, observedAt]) if (v !== null && typeof v === 'object') errors.push(v.error);
  if (errors.length > 0) return errors.join('; ');
  return {
    orderId: orderId as number,
    campaignId: campaignId as number,
    status: status as string,
    substatus: substatus as string | null,
    ...(observedAt !== undefined ? { observedAt: observedAt as number } : {}),
  };
}

function normaliseKeys(object: Record<string, unknown>): RawRecord | string {
  const raw: RawRecord = {};
  for (const [key, value] of Object.entries(object)) {
    const field = COLUMN_NAMES[key.toLowerCase()];
    if (field === undefined) return `unknown field "${key}" (expected orderId, campaignId, status, substatus, updatedAt)`;
    raw[field] = value;
  }
  return raw;
}

/** Splits one CSV line; double quotes may wrap a field ("" is a quote inside). */
export function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else cell += ch;
  }
  cells.push(cell);
  return cells.map((c) => c.trim());
}

function fail(source: string, issues: string[], total: number): never {
  const shown = issues.slice(0, MAX_ISSUES);
  const more = total > shown.length ? `\n  … ${total - shown.length} more` : '';
  throw inputError(`${source}: ${total} bad line(s); nothing was imported. Fix them and run again:\n  ${shown.join('\n  ')}${more}`, { issues: shown });
}

export function parseOrderFile(text: string, format: OrderFileFormat, source: string): ImportRecord[] {
  const records: ImportRecord[] = [];
  const issues: string[] = [];
  const push = (where: string, raw: RawRecord | string): void => {
    const record = typeof raw === 'string' ? raw : toRecord(raw);
    if (typeof record === 'string') issues.push(`${where}: ${record}`);
    else records.push(record);
  };
  const trimmed = text.replace(/^\uFEFF/, '');
  if (format === 'jsonl' && trimmed.trimStart().startsWith('[')) {
    let array: unknown;
    try {
      array = JSON.parse(trimmed);
    } catch (error) {
      throw inputError(`${source}: not valid JSON (${(error as Error).message}).`);
    }
    if (!Array.isArray(array)) throw inputError(`${source}: expected a JSON array of orders.`);
    array.forEach((item, i) =>
      push(`item ${i + 1}`, item !== null && typeof item === 'object' && !Array.isArray(item) ? normaliseKeys(item as Record<string, unknown>) : 'not an object'),
    );
  } else if (format === 'jsonl') {
    trimmed.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        issues.push(`line ${i + 1}: not a JSON object`);
        return;
      }
      push(`line ${i + 1}`, value !== null && typeof value === 'object' && !Array.isArray(value) ? normaliseKeys(value as Record<string, unknown>) : 'not a JSON object');
    });
  } else {
    let columns = POSITIONAL;
    trimmed.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '' || line.trimStart().startsWith('#')) return;
      const cells = splitCsvLine(line);
      if (records.length === 0 && issues.length === 0 && columns === POSITIONAL && !/^\d/.test(cells[0] ?? '')) {
        const named = cells.map((c) => COLUMN_NAMES[c.toLowerCase()]);
        if (named.every((c) => c !== undefined)) {
          columns = named as (keyof RawRecord)[];
          return;
        }
        issues.push(`line ${i + 1}: a header needs the columns orderId,campaignId,status,substatus[,updatedAt], not "${line.slice(0, 80)}"`);
        return;
      }
      if (cells.length < 3 || cells.length > columns.length) {
        issues.push(`line ${i + 1}: expected ${columns.length === POSITIONAL.length ? 'orderId,campaignId,status,substatus[,updatedAt]' : columns.join(',')}, got ${cells.length} field(s)`);
        return;
      }
      const raw: RawRecord = {};
      cells.forEach((cell, c) => (raw[columns[c]!] = cell));
      push(`line ${i + 1}`, raw);
    });
  }
  if (issues.length > 0) fail(source, issues, issues.length);
  if (records.length === 0) throw inputError(`${source}: no orders in the input.`);
  const campaignOf = new Map<number, number>();
  for (const r of records) {
    const seen = campaignOf.get(r.orderId);
    if (seen !== undefined && seen !== r.campaignId) fail(source, [`order ${r.orderId} appears with campaigns ${seen} and ${r.campaignId}`], 1);
    campaignOf.set(r.orderId, r.campaignId);
  }
  return records;
}
