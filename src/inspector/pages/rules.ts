// The seller rules of one model (or all): each edge a seller may ask the Market for, with its
// notes, and the same graph as Mermaid text to paste into any Mermaid viewer.

import { rulesToMermaid } from '../../../machines/mermaid.js';
import { SELLER_RULES, type StatusPattern } from '../../../machines/rules.js';
import { FULFILMENT_MODELS, type FulfilmentModel } from '../../../machines/statuses.js';
import { html } from '../html.js';
import { layout, type PageContext } from './layout.js';

function pattern(p: StatusPattern): string {
  return p.substatus === undefined ? `${p.status}/*` : `${p.status}/${p.substatus}`;
}

export function rulesPage(ctx: PageContext, model: FulfilmentModel | undefined): string {
  const rules = model ? SELLER_RULES.filter((r) => r.models.includes(model)) : SELLER_RULES;
  const models = [undefined, ...FULFILMENT_MODELS].map(
    (m) => html`<a href="${ctx.base}/rules${m ? `?model=${m}` : ''}" class="${m === model ? 'here' : ''}">${m ?? 'all'}</a> `,
  );
  const rows = rules.map(
    (r) => html`<tr data-rule="${r.id}"><td><code>${r.id}</code></td><td>${r.models.join(', ')}</td><td>${pattern(r.from)}</td><td>${pattern(r.to)}</td>
<td>${[r.async ? 'async (operation)' : '', r.requires === 'callEvidence' ? 'needs call evidence' : '', r.acceptsRealDeliveryDate ? 'takes realDeliveryDate' : ''].filter(Boolean).join('; ')}${r.assumption ? html`<br><span class="note">assumption: ${r.assumption}</span>` : ''}</td></tr>`,
  );
  const body = html`<h1>Seller rules${model ? ` · ${model}` : ''}</h1>
<p>Model: ${models}</p>
<table class="rules"><thead><tr><th>Rule</th><th>Models</th><th>From</th><th>To</th><th>Notes</th></tr></thead><tbody>${rows}</tbody></table>
<details><summary>As a Mermaid flowchart${model ? ` (${model} edges bold)` : ''}</summary><pre>${rulesToMermaid(model)}</pre></details>`;
  return layout(ctx, { title: `Seller rules${model ? ` ${model}` : ''}`, section: 'rules', body });
}
