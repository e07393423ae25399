// Diagrams a person can open: any XState machine as a Mermaid state diagram, and the seller
// rules as a Mermaid flowchart (optionally one model's edges highlighted).

import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { SELLER_RULES, type StatusPattern } from './rules.js';
import type { FulfilmentModel } from './statuses.js';

function nodeId(node: AnyStateNode): string {
  return node.path.length === 0 ? 'root' : node.path.join('__');
}

function guardLabel(guard: unknown): string {
  if (guard === undefined) return '';
  if (typeof guard === 'string') return ` [${guard}]`;
  if (typeof guard === 'object' && guard !== null && 'type' in guard) {
    const { type, params } = guard as { type: string; params?: Record<string, unknown> };
    const args = params ? `(${Object.values(params).join('/')})` : '';
    return ` [${type}${args}]`;
  }
  return ' [guard]';
}

function renderNode(node: AnyStateNode, indent: string, lines: string[], name: string = node.key): void {
  const children = Object.values(node.states) as AnyStateNode[];
  if (children.length === 0) {
    lines.push(`${indent}state "${name}" as ${nodeId(node)}`);
    return;
  }
  lines.push(`${indent}state "${name}" as ${nodeId(node)} {`);
  const inner = `${indent}  `;
  children.forEach((child, i) => {
    if (node.type === 'parallel' && i > 0) lines.push(`${inner}--`);
    renderNode(child, inner, lines);
  });
  if (node.type !== 'parallel' && node.initial?.target[0]) {
    lines.push(`${inner}[*] --> ${nodeId(node.initial.target[0] as AnyStateNode)}`);
  }
  lines.push(`${indent}}`);
}

function renderTransitions(node: AnyStateNode, lines: string[]): void {
  for (const [event, transitions] of node.transitions) {
    for (const t of transitions) {
      for (const target of t.target ?? []) {
        lines.push(`  ${nodeId(node)} --> ${nodeId(target as AnyStateNode)} : ${event}${guardLabel(t.guard)}`);
      }
    }
  }
  for (const t of node.always ?? []) {
    for (const target of t.target ?? []) {
      lines.push(`  ${nodeId(node)} --> ${nodeId(target as AnyStateNode)} : always${guardLabel(t.guard)}`);
    }
  }
  if (node.type === 'final') lines.push(`  ${nodeId(node)} --> [*]`);
  for (const child of Object.values(node.states) as AnyStateNode[]) renderTransitions(child, lines);
}

/** A Mermaid `stateDiagram-v2` of the machine: states, regions, events and guard names. */
export function toMermaid(machine: AnyStateMachine): string {
  const lines = ['stateDiagram-v2'];
  const root = machine.root as AnyStateNode;
  if (root.type === 'parallel') {
    // Mermaid draws concurrent regions (`--`) only inside a composite state.
    renderNode(root, '  ', lines, machine.id);
    lines.push(`  [*] --> ${nodeId(root)}`);
  } else {
    for (const child of Object.values(root.states) as AnyStateNode[]) renderNode(child, '  ', lines);
    if (root.initial?.target[0]) lines.push(`  [*] --> ${nodeId(root.initial.target[0] as AnyStateNode)}`);
  }
  renderTransitions(root, lines);
  return `${lines.join('\n')}\n`;
}

function patternId(p: StatusPattern): string {
  return p.substatus === undefined ? p.status : `${p.status}_${p.substatus}`;
}

function patternLabel(p: StatusPattern): string {
  return p.substatus === undefined ? `${p.status}/*` : `${p.status}/${p.substatus}`;
}

/**
 * The seller rules as a Mermaid flowchart: one edge per rule, labelled with its models.
 * With `model`, that model's edges are drawn bold and the others dotted.
 */
export function rulesToMermaid(model?: FulfilmentModel): string {
  const lines = ['flowchart LR'];
  const nodes = new Map<string, string>();
  for (const rule of SELLER_RULES) {
    nodes.set(patternId(rule.from), patternLabel(rule.from));
    nodes.set(patternId(rule.to), patternLabel(rule.to));
  }
  for (const [id, label] of nodes) lines.push(`  ${id}["${label}"]`);
  for (const rule of SELLER_RULES) {
    if (model !== undefined && !rule.models.includes(model)) {
      lines.push(`  ${patternId(rule.from)} -.-> ${patternId(rule.to)}`);
      continue;
    }
    const arrow = model !== undefined ? '==>' : '-->';
    const tags = [rule.models.join(','), rule.async ? 'async' : '', rule.requires ?? ''].filter(Boolean).join(' · ');
    lines.push(`  ${patternId(rule.from)} ${arrow}|"${tags}"| ${patternId(rule.to)}`);
  }
  return `${lines.join('\n')}\n`;
}
