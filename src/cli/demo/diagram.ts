// The demo's Mermaid diagram: the status transitions the journal saw, with counts (seller
// changes bold, Market moves plain), and every status with how many orders are in it now.

import type { TransitionCount } from '../../store/journal.js';
import { label } from '../../format.js';
import type { StatusRow } from '../status-table.js';

const nodeId = (status: string, substatus: string | null): string => label(status, substatus).replace(/[^A-Za-z0-9]+/g, '_');

export function transitionsMermaid(transitions: readonly TransitionCount[], now: readonly StatusRow[]): string {
  const nodes = new Map<string, string>();
  for (const r of now) nodes.set(nodeId(r.status, r.substatus), `${label(r.status, r.substatus)}<br/>${r.count} now`);
  for (const t of transitions) {
    for (const [s, ss] of [[t.fromStatus, t.fromSubstatus], [t.toStatus, t.toSubstatus]] as const) {
      if (!nodes.has(nodeId(s, ss))) nodes.set(nodeId(s, ss), `${label(s, ss)}<br/>0 now`);
    }
  }
  const lines = [
    '%% ym-orders demo: order status transitions recorded in the journal.',
    '%% Bold edges: seller changes the engine sent; thin edges: moves the Market made (read by sync).',
    'flowchart LR',
    ...[...nodes].map(([key, text]) => `  ${key}["${text}"]`),
    ...transitions.map((t) => `  ${nodeId(t.fromStatus, t.fromSubstatus)} ${t.by === 'seller' ? '==>' : '-->'}|"${t.count} ${t.by}"| ${nodeId(t.toStatus, t.toSubstatus)}`),
  ];
  return `${lines.join('\n')}\n`;
}
