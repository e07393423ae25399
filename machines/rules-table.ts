// The seller rules as a Markdown table: what the README shows and `ym-orders graph --rules` prints.

import { SELLER_RULES, type StatusPattern } from './rules.js';

function label(p: StatusPattern): string {
  return p.substatus === undefined ? `${p.status}/*` : `${p.status}/${p.substatus}`;
}

export function rulesToMarkdown(): string {
  const rows = [
    '| rule | models | from | to | notes | source |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of SELLER_RULES) {
    const notes = [
      r.async ? 'async (operation)' : '',
      r.requires === 'callEvidence' ? 'needs call evidence' : '',
      r.acceptsRealDeliveryDate ? 'takes realDeliveryDate' : '',
      r.assumption ? `**assumption:** ${r.assumption}` : '',
    ].filter(Boolean).join('; ');
    rows.push(`| \`${r.id}\` | ${r.models.join(', ')} | ${label(r.from)} | ${label(r.to)} | ${notes} | ${r.source} |`);
  }
  return `${rows.join('\n')}\n`;
}
