// Diagrams and serialisation: toMermaid shows every state and event, rulesToMermaid highlights
// one model's edges, and the machine definitions serialise with every guard and action named.

import { describe, expect, it } from 'vitest';
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { rulesToMermaid, toMermaid } from '../machines/mermaid.js';
import { operationMachine } from '../machines/operation-machine.js';
import { orderMachine } from '../machines/order-machine.js';
import { rulesToMarkdown } from '../machines/rules-table.js';
import { SELLER_RULES, type StatusPattern } from '../machines/rules.js';
import { ORDER_STATUSES } from '../machines/statuses.js';

const ORDER_EVENT_TYPES = [
  'MARKET.OBSERVED', 'SELLER.REQUEST', 'DISPATCH.SENT', 'DISPATCH.ACCEPTED', 'DISPATCH.REJECTED',
  'DISPATCH.OPERATION_STARTED', 'DISPATCH.UNKNOWN', 'DISPATCH.DEFERRED',
];

function allNodes(machine: AnyStateMachine): AnyStateNode[] {
  const out: AnyStateNode[] = [];
  const walk = (n: AnyStateNode) => {
    for (const child of Object.values(n.states) as AnyStateNode[]) {
      out.push(child);
      walk(child);
    }
  };
  walk(machine.root as AnyStateNode);
  return out;
}

const mermaidId = (n: AnyStateNode) => n.path.join('__');

describe('toMermaid(orderMachine)', () => {
  const diagram = toMermaid(orderMachine);
  const lines = diagram.split('\n');

  it('is a state diagram declaring every state node, with the regions separated', () => {
    expect(lines[0]).toBe('stateDiagram-v2');
    const nodes = allNodes(orderMachine);
    expect(nodes.length).toBe(3 + 1 + ORDER_STATUSES.length + 1 + 4 + 5 + 7); // regions, routing, statuses, UNRECOGNIZED, PROCESSING.*, change.*, cancellation.* (checking, none, requested and its four answer states)
    for (const n of nodes) expect(diagram, n.id).toContain(`state "${n.key}" as ${mermaidId(n)}`);
    for (const s of [...ORDER_STATUSES, 'UNRECOGNIZED', 'routing', 'idle', 'queued', 'sending', 'awaitingOperation', 'uncertain']) {
      expect(diagram).toContain(`"${s}"`);
    }
    // Concurrent regions are drawn inside the machine's own composite state, as Mermaid requires.
    expect(lines).toContain('  state "order" as root {');
    expect(lines).toContain('    --');
    expect(lines).toContain('  [*] --> root');
    expect(diagram).toContain('[*] --> market__routing');
    expect(diagram).toContain('[*] --> change__idle');
    expect(diagram).toContain('[*] --> market__PROCESSING__OTHER');
  });

  it('labels edges with every event type and the guard names', () => {
    for (const type of ORDER_EVENT_TYPES) expect(diagram, type).toMatch(new RegExp(` : ${type.replace('.', '\\.')}( |$)`, 'm'));
    expect(diagram).toContain('change__idle --> change__queued : SELLER.REQUEST [isLegalRequest]');
    expect(diagram).toContain('change__sending --> change__awaitingOperation : DISPATCH.OPERATION_STARTED');
    expect(diagram).toContain('change__uncertain --> change__queued : MARKET.OBSERVED [readBackAllowsResend]');
    expect(diagram).toContain('market --> market__routing : MARKET.OBSERVED [isFreshObservation]');
    expect(diagram).toContain('market__routing --> market__PROCESSING__STARTED : always [isAt(PROCESSING/STARTED)]');
    expect(diagram).toContain('market__routing --> market__UNRECOGNIZED : always');
  });

  it('draws one edge per targeted transition of the machine', () => {
    for (const n of allNodes(orderMachine)) {
      for (const [event, ts] of n.transitions) {
        for (const t of ts) {
          for (const target of t.target ?? []) {
            expect(diagram).toContain(`  ${mermaidId(n)} --> ${mermaidId(target as AnyStateNode)} : ${event}`);
          }
        }
      }
    }
  });
});

describe('toMermaid(operationMachine)', () => {
  it('shows the states, the final markers and both events', () => {
    const d = toMermaid(operationMachine);
    for (const s of ['inProgress', 'done', 'failed', 'expired']) expect(d).toContain(`state "${s}" as ${s}`);
    expect(d).toContain('[*] --> inProgress');
    for (const s of ['done', 'failed', 'expired']) expect(d).toContain(`${s} --> [*]`);
    expect(d).toContain('inProgress --> done : POLL.RESULT [reportsDone]');
    expect(d).toContain('inProgress --> expired : POLL.CHECK_DEADLINE [isPastDeadline]');
  });
});

describe('rulesToMermaid', () => {
  const id = (p: StatusPattern) => (p.substatus === undefined ? p.status : `${p.status}_${p.substatus}`);
  const edges = (d: string) => d.split('\n').filter((l) => /(-->|==>|-\.->)/.test(l));

  it('without a model: one plain edge per rule, labelled with its models', () => {
    const d = rulesToMermaid();
    expect(d.startsWith('flowchart LR\n')).toBe(true);
    expect(edges(d)).toHaveLength(SELLER_RULES.length);
    for (const r of SELLER_RULES) expect(d).toContain(`  ${id(r.from)} -->|"${r.models.join(',')}`);
    expect(d).toContain('PROCESSING_STARTED["PROCESSING/STARTED"]');
    expect(d).toContain('RESERVED["RESERVED/*"]');
    expect(d).toContain('DELIVERY_DELIVERY_USER_NOT_RECEIVED["DELIVERY/DELIVERY_USER_NOT_RECEIVED"]');
    expect(d).toContain('RESERVED -->|"LAAS · async"| CANCELLED_SHOP_FAILED');
    expect(d).toContain('|"DBS · callEvidence"| CANCELLED_USER_UNREACHABLE');
  });

  it("with 'FBS': FBS edges bold, every other edge dotted", () => {
    const d = rulesToMermaid('FBS');
    expect(edges(d)).toHaveLength(SELLER_RULES.length);
    for (const r of SELLER_RULES) {
      if (r.models.includes('FBS')) expect(d).toContain(`  ${id(r.from)} ==>|"${r.models.join(',')}"| ${id(r.to)}`);
      else expect(d).toContain(`  ${id(r.from)} -.-> ${id(r.to)}`);
    }
    expect(edges(d).filter((l) => l.includes('==>'))).toHaveLength(SELLER_RULES.filter((r) => r.models.includes('FBS')).length);
    expect(d).toContain('PROCESSING_STARTED ==>|"FBS,EXPRESS"| PROCESSING_READY_TO_SHIP');
    expect(d).toContain('PROCESSING_STARTED -.-> DELIVERY_DELIVERY_SERVICE_RECEIVED');
  });

  it("with 'LAAS': only the LaaS edges are bold", () => {
    const bold = edges(rulesToMermaid('LAAS')).filter((l) => l.includes('==>'));
    expect(bold).toHaveLength(3);
  });
});

describe('rulesToMarkdown', () => {
  it('has one row per rule with its id, source and assumption', () => {
    const md = rulesToMarkdown();
    const rows = md.trim().split('\n').slice(2);
    expect(rows).toHaveLength(SELLER_RULES.length);
    for (const r of SELLER_RULES) {
      const row = rows.find((l) => l.startsWith(`| \`${r.id}\` |`));
      expect(row, r.id).toBeDefined();
      expect(row).toContain(r.source);
      if (r.assumption) expect(row).toContain('**assumption:**');
    }
  });
});

describe('serialisation: machines are data', () => {
  function checkNamed(machine: AnyStateMachine) {
    const json = JSON.parse(JSON.stringify(machine.toJSON())) as unknown;
    expect(JSON.stringify(machine.definition)).toBe(JSON.stringify(machine.toJSON()));
    const guardNames = new Set(Object.keys(machine.implementations.guards));
    const actionNames = new Set(Object.keys(machine.implementations.actions));
    const seenGuards: string[] = [];
    const seenActions: string[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) return v.forEach(walk);
      if (typeof v !== 'object' || v === null) return;
      for (const [k, x] of Object.entries(v)) {
        if (k === 'guard') {
          const name = typeof x === 'string' ? x : (x as { type?: unknown }).type;
          expect(typeof name, JSON.stringify(x)).toBe('string');
          seenGuards.push(name as string);
        } else if ((k === 'actions' || k === 'entry' || k === 'exit') && Array.isArray(x)) {
          for (const a of x) {
            const name = typeof a === 'string' ? a : (a as { type?: unknown }).type;
            expect(typeof name, JSON.stringify(a)).toBe('string');
            seenActions.push(name as string);
          }
        }
        walk(x);
      }
    };
    walk(json);
    for (const g of seenGuards) expect(guardNames, g).toContain(g);
    for (const a of seenActions) expect(actionNames, a).toContain(a);
    // No guard was dropped: every guarded event transition of the machine shows its guard.
    let guarded = 0;
    for (const n of [machine.root as AnyStateNode, ...allNodes(machine)]) {
      for (const ts of n.transitions.values()) for (const t of ts) if (t.guard !== undefined) guarded++;
    }
    // Each guarded transition appears twice in the definition: under `on` and under `transitions`.
    expect(seenGuards.length).toBe(guarded * 2);
    return { seenGuards, seenActions };
  }

  it('orderMachine.toJSON() names every guard and action', () => {
    const { seenGuards, seenActions } = checkNamed(orderMachine);
    for (const g of ['isFreshObservation', 'isLegalRequest', 'reachesTarget', 'supersedesPending', 'readBackAllowsResend', 'readBackShowsNotApplied']) {
      expect(seenGuards).toContain(g);
    }
    for (const a of ['applyObservation', 'recordRequest', 'recordRefusal', 'settle', 'effect.sendStatusChange', 'effect.readBack', 'effect.trackOperation', 'effect.settleStatusChange']) {
      expect(seenActions).toContain(a);
    }
  });

  it('operationMachine.toJSON() names every guard and action', () => {
    const { seenActions } = checkNamed(operationMachine);
    for (const a of ['recordPoll', 'effect.schedulePoll', 'effect.operationDone', 'effect.operationFailed', 'effect.operationExpired']) {
      expect(seenActions).toContain(a);
    }
  });

  it("the routing table (eventless transitions, which XState's definition omits) serialises in the config", () => {
    const config = JSON.parse(JSON.stringify(orderMachine.config)) as {
      states: { market: { states: { routing: { always: Array<{ guard?: { type: string; params: Record<string, string> }; target: string }> } } } };
    };
    const table = config.states.market.states.routing.always;
    expect(table).toHaveLength(3 + ORDER_STATUSES.length + 1);
    expect(table[0]).toEqual({ guard: { type: 'isAt', params: { status: 'PROCESSING', substatus: 'STARTED' } }, target: 'PROCESSING.STARTED' });
    expect(table.at(-1)).toEqual({ target: 'UNRECOGNIZED' });
    for (const row of table.slice(0, -1)) expect(row.guard?.type).toBe('isAt');
  });
});
