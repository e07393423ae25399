// A machine drawn as SVG from its definition, with the states an actor is in highlighted: one
// column per parallel region (or one for a machine without regions), each state a box, child
// states indented under their parent. Transitions are not drawn as arrows (the machines have too
// many to read at this size); the states the order is in list theirs as a table beside it.
// Styling is by class only (the page's stylesheet), so the strict CSP needs no inline style.

import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { html, SafeHtml } from './html.js';

const COLUMN_WIDTH = 230;
const COLUMN_GAP = 18;
const HEADER = 34;
const ROW = 26;
const BOX = 20;
const INDENT = 14;
const PADDING = 8;

function statePath(node: AnyStateNode): string {
  return node.path.join('.');
}

function childrenOf(node: AnyStateNode): AnyStateNode[] {
  return Object.values(node.states) as AnyStateNode[];
}

/** The columns: the root's regions if it is parallel, else the root itself. */
function regionsOf(machine: AnyStateMachine): AnyStateNode[] {
  const root = machine.root as AnyStateNode;
  return root.type === 'parallel' ? childrenOf(root) : [root];
}

/** Every state under `node`, depth first, with its depth below the column's top. */
function rowsOf(node: AnyStateNode, depth = 0): { node: AnyStateNode; depth: number }[] {
  return childrenOf(node).flatMap((child) => [{ node: child, depth }, ...rowsOf(child, depth + 1)]);
}

/** The SVG; `active` holds state paths (`change.queued`, `market.PROCESSING`, …). */
export function machineSvg(machine: AnyStateMachine, active: ReadonlySet<string>): SafeHtml {
  const regions = regionsOf(machine);
  const columns = regions.map((region) => ({ region, rows: rowsOf(region) }));
  const height = HEADER + Math.max(...columns.map((c) => c.rows.length)) * ROW + PADDING;
  const width = columns.length * COLUMN_WIDTH + (columns.length - 1) * COLUMN_GAP + 2 * PADDING;
  const parts = columns.map(({ region, rows }, i) => {
    const x0 = PADDING + i * (COLUMN_WIDTH + COLUMN_GAP);
    const title = region === machine.root ? machine.id : region.key;
    const boxes = rows.map(({ node, depth }, row) => {
      const x = x0 + depth * INDENT;
      const y = HEADER + row * ROW;
      const classes = ['state', active.has(statePath(node)) ? 'active' : '', childrenOf(node).length > 0 ? 'compound' : '', node.type === 'final' ? 'final' : ''].filter(Boolean).join(' ');
      return html`<g class="${classes}" data-state="${statePath(node)}"><title>${statePath(node)}${node.description ? `: ${node.description}` : ''}</title><rect x="${x}" y="${y}" width="${COLUMN_WIDTH - depth * INDENT}" height="${BOX}" rx="4"></rect><text x="${x + 8}" y="${y + 14}">${node.key}</text></g>`;
    });
    return html`<g class="region" data-region="${region.key}"><text class="region-title" x="${x0}" y="20">${title}${region.type === 'parallel' ? ' (parallel)' : ''}</text>${boxes}</g>`;
  });
  return html`<svg class="machine" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${machine.id} machine, current states highlighted">${parts}</svg>`;
}

export interface TransitionRow {
  /** The state the transition leaves from (an active state or one of its ancestors). */
  readonly from: string;
  /** The event, or `always` for an eventless transition. */
  readonly event: string;
  readonly guard: string;
  /** Target state paths; empty for a transition that only runs actions. */
  readonly targets: readonly string[];
}

function guardName(guard: unknown): string {
  if (guard === undefined) return '';
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && guard !== null && 'type' in guard) return String((guard as { type: unknown }).type);
  return 'guard';
}

function nodeAt(machine: AnyStateMachine, path: string): AnyStateNode | undefined {
  let node: AnyStateNode | undefined = machine.root as AnyStateNode;
  for (const key of path.split('.')) node = node?.states[key] as AnyStateNode | undefined;
  return node;
}

/** What can happen next: the transitions of every active state, in the machine's order. */
export function transitionsFrom(machine: AnyStateMachine, active: readonly string[]): TransitionRow[] {
  const rows: TransitionRow[] = [];
  for (const path of active) {
    const node = nodeAt(machine, path);
    if (!node) continue;
    for (const [event, transitions] of node.transitions) {
      for (const t of transitions) rows.push({ from: path, event, guard: guardName(t.guard), targets: (t.target ?? []).map((n) => statePath(n as AnyStateNode)) });
    }
    for (const t of node.always ?? []) rows.push({ from: path, event: 'always', guard: guardName(t.guard), targets: (t.target ?? []).map((n) => statePath(n as AnyStateNode)) });
  }
  return rows;
}
