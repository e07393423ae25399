// `ym-orders graph --format json` (issue 13): the file is a machine config that XState's
// createMachine() loads back with every transition (event, `always` and `after` ones), its targets,
// `reenter`, guard and action names, and every state's type, initial state, entry and exit. The
// machines are rebuilt from the files the built CLI writes and compared with the originals, node by
// node and transition by transition; initialTransition runs on the rebuilt ones.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, createMachine, initialTransition, setup, transition, type AnyStateMachine, type AnyStateNode } from 'xstate';
import { operationMachine } from '../machines/operation-machine.js';
import { orderMachine } from '../machines/order-machine.js';
import { ORDER_STATUSES } from '../machines/statuses.js';
import { toMachineConfig, type MachineConfigJson } from '../machines/visualizer-config.js';
import { ensureBuilt, json, makeTempDir, runCli } from './helpers/cli.js';

/** A guard or an action as the machine holds it: its name, with its params where they are data. */
function nameOf(item: unknown): unknown {
  if (typeof item === 'string') return item;
  const { type, params } = item as { type: string; params?: unknown };
  return typeof params === 'object' && params !== null ? { type, params } : type;
}

function nodesOf(machine: AnyStateMachine): AnyStateNode[] {
  const all: AnyStateNode[] = [];
  const walk = (node: AnyStateNode): void => {
    all.push(node);
    for (const child of Object.values(node.states) as AnyStateNode[]) walk(child);
  };
  walk(machine.root as AnyStateNode);
  return all;
}

interface Transition {
  readonly source: string;
  readonly event: string;
  readonly targets: readonly string[];
  readonly guard: unknown;
  readonly actions: readonly unknown[];
  readonly reenter: boolean;
}

/** Every transition of the machine as XState resolved it: `after` ones are in node.transitions, `always` ones apart. */
function transitionsOf(machine: AnyStateMachine): Transition[] {
  return nodesOf(machine).flatMap((node) => {
    const lists = [...(node.transitions as Map<string, unknown[]>), ['(always)', node.always ?? []] as const];
    return lists.flatMap(([event, list]) =>
      (list as { target?: AnyStateNode[]; guard?: unknown; actions: unknown[]; reenter: boolean }[]).map((t) => ({
        source: node.id,
        event,
        targets: (t.target ?? []).map((target) => target.id),
        guard: t.guard === undefined ? null : nameOf(t.guard),
        actions: t.actions.map(nameOf),
        reenter: t.reenter,
      })),
    );
  });
}

/** Each state's type, initial state, entry and exit (the timers XState derives from `after` included). */
function statesOf(machine: AnyStateMachine): Record<string, unknown>[] {
  return nodesOf(machine).map((node) => ({
    id: node.id,
    type: node.type,
    history: node.history,
    initial: (node.initial?.target ?? []).map((t) => (t as AnyStateNode).id),
    entry: node.entry.map(nameOf),
    exit: node.exit.map(nameOf),
    description: node.description ?? null,
    tags: node.tags,
  }));
}

/** Every guard and action name the config refers to, for the stubs a rebuilt machine runs with. */
function namesIn(config: unknown, key: 'guard' | 'actions' | 'entry' | 'exit', found = new Set<string>()): Set<string> {
  if (Array.isArray(config)) for (const item of config) namesIn(item, key, found);
  else if (typeof config === 'object' && config !== null) {
    for (const [k, v] of Object.entries(config)) {
      if (k === key) for (const item of Array.isArray(v) ? v : [v]) found.add(typeof item === 'string' ? item : (item as { type: string }).type);
      else namesIn(v, key, found);
    }
  }
  return found;
}

/** The config loaded back, its guards stubbed by `guard` and every action a no-op. */
function rebuild(config: MachineConfigJson, guard: (name: string, params: unknown) => boolean, delays: Record<string, number> = {}): AnyStateMachine {
  const guards = Object.fromEntries([...namesIn(config, 'guard')].map((name) => [name, (_: unknown, params: unknown) => guard(name, params)]));
  const actionNames = new Set([...namesIn(config, 'actions'), ...namesIn(config, 'entry'), ...namesIn(config, 'exit')]);
  const actions = Object.fromEntries([...actionNames].map((name) => [name, () => {}]));
  return createMachine(config as never).provide({ guards, actions, delays } as never);
}

let dir: string;

beforeAll(async () => {
  await ensureBuilt();
  dir = makeTempDir();
}, 180_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('graph --format json loads back into createMachine()', () => {
  it('the order machine: every transition, `always` ones included, and every state; initialTransition routes as the original does', async () => {
    const file = path.join(dir, 'order-machine.json');
    const written = await runCli(['graph', '--machine', 'order', '--format', 'json', '--out', file]);
    expect(written.code, written.stderr).toBe(0);
    expect(written.stdout).toMatch(/^wrote the order machine config to .*order-machine\.json$/m);
    const config = JSON.parse(fs.readFileSync(file, 'utf8')) as MachineConfigJson;
    expect(config).toEqual(toMachineConfig(orderMachine));

    // routing's table: one `always` transition per PROCESSING substate with a state, per status, and UNRECOGNIZED.
    const routing = (config.states!.market!.states!.routing!.always ?? []) as unknown[];
    expect(routing).toHaveLength(3 + ORDER_STATUSES.length + 1);
    const rebuilt = rebuild(config, (name, params) => {
      // The order the engine would start from: PROCESSING/READY_TO_SHIP, no cancellation request.
      if (name !== 'isAt') return false;
      const p = params as { status: string; substatus?: string };
      return p.status === 'PROCESSING' && (p.substatus === undefined || p.substatus === 'READY_TO_SHIP');
    });
    const original = transitionsOf(orderMachine);
    expect(original.length).toBeGreaterThan(50);
    expect(original.some((t) => t.event === '(always)')).toBe(true);
    expect(transitionsOf(rebuilt)).toEqual(original);
    expect(statesOf(rebuilt)).toEqual(statesOf(orderMachine));

    const [fromFile] = initialTransition(rebuilt);
    const [fromCode] = initialTransition(orderMachine, { orderId: 1, campaignId: 1, model: 'FBS', status: 'PROCESSING', substatus: 'READY_TO_SHIP', observedAt: 0 });
    expect(fromFile.value).toEqual({ market: { PROCESSING: 'READY_TO_SHIP' }, cancellation: 'none', change: 'idle' });
    expect(fromFile.value).toEqual(fromCode.value);
  }, 120_000);

  it('the operation machine, from stdout and inside --json', async () => {
    const printed = await runCli(['graph', '--machine', 'operation', '--format', 'json']);
    expect(printed.code, printed.stderr).toBe(0);
    const config = json<MachineConfigJson>(printed);
    const wrapped = json<{ content: MachineConfigJson }>(await runCli(['graph', '--machine', 'operation', '--format', 'json', '--json']));
    expect(wrapped.content).toEqual(config);
    const rebuilt = rebuild(config, (name) => name === 'reportsDone');
    expect(transitionsOf(rebuilt)).toEqual(transitionsOf(operationMachine));
    expect(statesOf(rebuilt)).toEqual(statesOf(operationMachine));
    const [snapshot] = initialTransition(rebuilt);
    expect(snapshot.value).toBe('inProgress');
    // The stubbed reportsDone holds: the operation ends done, with the actions the file names.
    const [done, actions] = transition(rebuilt, snapshot, { type: 'POLL.RESULT' });
    expect(done.value).toBe('done');
    expect(done.status).toBe('done');
    expect(actions.map((a) => a.type)).toEqual(['recordPoll', 'effect.operationDone']);
  }, 120_000);
});

describe('toMachineConfig', () => {
  // What our two machines do not use: `after` (a number and a named delay), onDone, history,
  // parallel regions, a guard with params, entry and exit with timers, tags, descriptions.
  const sample = setup({
    types: { context: {} as { n: number }, events: {} as { type: 'GO' } | { type: 'BACK' } | { type: 'RESET' } },
    guards: { isReady: () => true, over: (_, params: { limit: number }) => params.limit > 0 },
    actions: { count: assign({ n: ({ context }) => context.n + 1 }), log: () => {}, note: (_, _params: { text: string }) => {} },
    delays: { slow: 5_000 },
  }).createMachine({
    id: 'sample',
    context: { n: 0 },
    initial: 'idle',
    states: {
      idle: {
        tags: ['waiting'],
        on: { GO: [{ guard: { type: 'over', params: { limit: 3 } }, target: 'busy', actions: ['count', { type: 'note', params: { text: 'go' } }] }, { target: '#sample.done' }] },
        after: { 1000: { target: 'busy', actions: 'log' }, slow: [{ guard: 'isReady', target: 'done' }, { target: 'idle', reenter: true }] },
      },
      busy: {
        type: 'parallel',
        description: 'two regions at once',
        entry: 'log',
        exit: [{ type: 'note', params: ({ context }: { context: { n: number } }) => ({ text: String(context.n) }) }],
        onDone: 'done',
        states: {
          left: { initial: 'a', states: { a: { always: { guard: 'isReady', target: 'b' } }, b: { type: 'final' } } },
          right: {
            initial: 'x',
            states: {
              x: { on: { BACK: '.inner' }, initial: 'y', states: { y: {}, inner: {} } },
              memory: { type: 'history', history: 'deep' },
              z: { type: 'final' },
            },
            on: { RESET: { target: '.memory' } },
          },
        },
      },
      done: { type: 'final' },
    },
  });

  it('keeps what the order and operation machines do not use: after, onDone, history, parallel, reenter', () => {
    const config = toMachineConfig(sample);
    // Plain JSON: nothing the file would lose.
    expect(JSON.parse(JSON.stringify(config))).toEqual(config);
    expect(config.states!.idle!.after).toEqual({
      1000: { target: 'busy', actions: 'log' },
      slow: [{ target: 'done', guard: 'isReady' }, { target: 'idle', reenter: true }],
    });
    // Params computed at run time are left to the implementation: the action by name.
    expect(config.states!.busy!.exit).toBe('note');
    const rebuilt = rebuild(JSON.parse(JSON.stringify(config)) as MachineConfigJson, () => true, { slow: 5_000 });
    expect(transitionsOf(rebuilt)).toEqual(transitionsOf(sample));
    expect(transitionsOf(sample).filter((t) => t.event.startsWith('xstate.after.'))).toHaveLength(3);
    expect(statesOf(rebuilt)).toEqual(statesOf(sample));
    expect(initialTransition(rebuilt)[0].value).toBe('idle');
  });

  it('refuses an inline guard or action, and an invoked actor: they have no name to write', () => {
    const inline = createMachine({ id: 'inline', initial: 'a', states: { a: { on: { GO: { guard: () => true, target: 'b' } } }, b: {} } });
    expect(() => toMachineConfig(inline)).toThrow(/the guard of GO in state #inline\.a is an inline function; name it in setup\(\)/);
    const inlineAction = createMachine({ id: 'act', initial: 'a', states: { a: { entry: () => {} } } });
    expect(() => toMachineConfig(inlineAction)).toThrow(/an entry action in state #act\.a is an inline function/);
    const invoking = setup({ actors: { child: createMachine({}) } }).createMachine({ id: 'inv', initial: 'a', states: { a: { invoke: { src: 'child' } } } });
    expect(() => toMachineConfig(invoking)).toThrow(/state #inv\.a invokes an actor/);
  });
});
