// One order's journal drawn two ways: a timeline of rows, and a small Mermaid state diagram of
// the Market statuses it visited (edges labelled with the journal row and event that moved it,
// notes with the seller change's steps while it sat in a status).

import type { JournalRow } from '../store/journal.js';
import { isTerminalStatus } from '../../machines/rules.js';
import { isoTime, label, table } from '../format.js';

function stateId(status: string, substatus: string | null): string {
  return `s_${label(status, substatus).replace(/[^A-Za-z0-9]+/g, '_')}`;
}

function eventDetail(row: JournalRow): string {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(row.event) as Record<string, unknown>;
  } catch {
    return '';
  }
  switch (row.event_type) {
    case 'SELLER.REQUEST':
      return `asks ${label(String(event.status), (event.substatus as string | undefined) ?? null)}${event.realDeliveryDate ? ` (realDeliveryDate ${String(event.realDeliveryDate)})` : ''}`;
    case 'DISPATCH.OPERATION_STARTED':
      return `operation ${String(event.operationId)}`;
    case 'DISPATCH.REJECTED':
    case 'DISPATCH.UNKNOWN':
    case 'DISPATCH.DEFERRED':
      return String(event.reason ?? '');
    case 'MARKET.OBSERVED':
      return `via ${String(event.source)}`;
    default:
      return '';
  }
}

function statusMove(row: JournalRow): string {
  const to = label(row.to_status, row.to_substatus);
  if (row.from_status === null) return `→ ${to}`;
  const from = label(row.from_status, row.from_substatus);
  return from === to ? to : `${from} → ${to}`;
}

function changeMove(row: JournalRow): string {
  if (row.from_change === null || row.from_change === row.to_change) return row.to_change === 'idle' ? '' : `change ${row.to_change}`;
  return `change ${row.from_change} → ${row.to_change}`;
}

export function timeline(rows: readonly JournalRow[]): string[] {
  return table(
    rows.map((r) => [`#${r.row_version}`, isoTime(r.at), r.source, r.event_type, statusMove(r), changeMove(r), eventDetail(r)]),
  );
}

/** The Market statuses in the order visited, repeats collapsed: `A → B → C`. */
export function visitedStatuses(rows: readonly JournalRow[]): string[] {
  const path: string[] = [];
  for (const r of rows) {
    const here = label(r.to_status, r.to_substatus);
    if (path[path.length - 1] !== here) path.push(here);
  }
  return path;
}

function escape(text: string): string {
  return text.replace(/[:;#"<>{}]/g, ' ').replace(/\s+/g, ' ').trim();
}

export function orderPathMermaid(orderId: number, rows: readonly JournalRow[]): string {
  const lines = ['stateDiagram-v2', `  %% ym-orders history of order ${orderId}: Market statuses visited`, '  direction LR'];
  const declared = new Set<string>();
  const declare = (status: string, substatus: string | null): string => {
    const id = stateId(status, substatus);
    if (!declared.has(id)) {
      declared.add(id);
      lines.push(`  state "${label(status, substatus)}" as ${id}`);
    }
    return id;
  };
  const edges: string[] = [];
  const notes = new Map<string, string[]>();
  for (const r of rows) {
    const to = declare(r.to_status, r.to_substatus);
    if (r.from_status === null) {
      edges.push(`  [*] --> ${to} : #${r.row_version} ${r.source}`);
      continue;
    }
    const from = declare(r.from_status, r.from_substatus);
    if (from !== to) edges.push(`  ${from} --> ${to} : #${r.row_version} ${r.event_type}`);
    if (r.from_change !== r.to_change) {
      const steps = notes.get(from) ?? [];
      steps.push(`#${r.row_version} ${r.from_change} → ${r.to_change}${r.event_type === 'SELLER.REQUEST' ? ` (${escape(eventDetail(r))})` : ''}`);
      notes.set(from, steps);
    }
  }
  const last = rows[rows.length - 1];
  if (last && isTerminalStatus(last.to_status)) edges.push(`  ${stateId(last.to_status, last.to_substatus)} --> [*]`);
  lines.push(...edges);
  for (const [id, steps] of notes) {
    lines.push(`  note right of ${id}`, '    seller change:', ...steps.map((s) => `    ${s}`), '  end note');
  }
  return `${lines.join('\n')}\n`;
}
