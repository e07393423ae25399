// A machine as the JSON machine config that XState's createMachine() and Stately's editor load
// back: every state (its type, initial state, description, tags), every transition (events,
// `always`, `after`, `onDone`) with its targets, `reenter`, guard and actions, and each state's
// entry and exit actions. Guards and actions appear by name (with their params where those are
// data); their implementations stay in code, so a machine built from the file runs once they are
// provided (`createMachine(config).provide({ guards, actions })`).
//
// machine.definition is not this: it has no `always` transitions, its `initial` and transitions
// are objects of the resolved machine (`source`, `eventType`, state node ids), and the entry list
// of a state with `after` holds the timers XState derived from it.

import type { AnyStateMachine, AnyStateNode } from 'xstate';

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A guard or an action by name, with its params when they are data rather than a function. */
export type NamedConfig = string | { readonly type: string; readonly params: JsonValue };

export interface TransitionConfigJson {
  /** A child (`.routing`), a sibling's path (`PROCESSING.STARTED`) or a state id (`#order.change.idle`). */
  readonly target?: string | readonly string[];
  readonly guard?: NamedConfig;
  readonly actions?: NamedConfig | readonly NamedConfig[];
  readonly reenter?: true;
  readonly description?: string;
}

/** One transition, or several tried in order. */
export type TransitionsJson = TransitionConfigJson | readonly TransitionConfigJson[];

export interface StateConfigJson {
  readonly type?: 'parallel' | 'final' | 'history';
  readonly history?: 'shallow' | 'deep';
  readonly initial?: string;
  readonly description?: string;
  readonly tags?: readonly string[];
  readonly meta?: JsonValue;
  readonly entry?: NamedConfig | readonly NamedConfig[];
  readonly exit?: NamedConfig | readonly NamedConfig[];
  readonly on?: Readonly<Record<string, TransitionsJson>>;
  readonly always?: TransitionsJson;
  /** By delay: milliseconds, or the name of a delay the machine's setup() provides. */
  readonly after?: Readonly<Record<string, TransitionsJson>>;
  readonly onDone?: TransitionsJson;
  /** A history state's default target. */
  readonly target?: string;
  readonly states?: Readonly<Record<string, StateConfigJson>>;
}

export interface MachineConfigJson extends StateConfigJson {
  readonly id: string;
}

function isJson(value: unknown): value is JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJson);
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) return Object.values(value).every(isJson);
  return false;
}

/** An inline function has no name to give: the machine must name its guards and actions in setup(). */
function unnamed(what: string, node: AnyStateNode): Error {
  return new Error(`${what} in state #${node.id} is an inline function; name it in setup() so that the machine config can refer to it.`);
}

function named(item: unknown, what: string, node: AnyStateNode): NamedConfig {
  if (typeof item === 'string') return item;
  if (typeof item === 'object' && item !== null && typeof (item as { type?: unknown }).type === 'string') {
    const { type, params } = item as { type: string; params?: unknown };
    // Params computed from the context at run time (a function) are the implementation's to give.
    return params !== undefined && isJson(params) ? { type, params } : type;
  }
  throw unnamed(what, node);
}

function oneOrMany<T>(items: readonly T[]): T | readonly T[] {
  return items.length === 1 ? items[0]! : items;
}

function actionsOf(items: unknown, what: string, node: AnyStateNode): NamedConfig[] {
  const list = items === undefined ? [] : Array.isArray(items) ? items : [items];
  return list.map((a) => named(a, what, node));
}

/** How `source` names `target`: as XState resolves a target string from that state. */
function targetRef(source: AnyStateNode, target: AnyStateNode): string {
  const plain = target.path.every((key) => !key.includes('.'));
  const within = (ancestor: AnyStateNode): boolean => ancestor.path.every((key, i) => target.path[i] === key);
  if (plain && target !== source && within(source)) return `.${target.path.slice(source.path.length).join('.')}`;
  const parent = source.parent;
  if (plain && parent && within(parent)) return target.path.slice(parent.path.length).join('.');
  return `#${target.id}`;
}

interface ResolvedTransition {
  readonly target?: readonly AnyStateNode[] | undefined;
  readonly guard?: unknown;
  readonly actions: readonly unknown[];
  readonly reenter: boolean;
  readonly description?: string | undefined;
}

function transitionConfig(node: AnyStateNode, t: ResolvedTransition, event: string): TransitionConfigJson {
  const targets = (t.target ?? []).map((target) => targetRef(node, target));
  const actions = actionsOf(t.actions, `an action of ${event}`, node);
  return {
    ...(targets.length > 0 ? { target: oneOrMany(targets) } : {}),
    ...(t.guard !== undefined ? { guard: named(t.guard, `the guard of ${event}`, node) } : {}),
    ...(actions.length > 0 ? { actions: oneOrMany(actions) } : {}),
    ...(t.reenter ? { reenter: true as const } : {}),
    ...(t.description !== undefined ? { description: t.description } : {}),
  };
}

function transitions(node: AnyStateNode, list: readonly ResolvedTransition[], event: string): TransitionsJson {
  return oneOrMany(list.map((t) => transitionConfig(node, t, event)));
}

function stateConfig(node: AnyStateNode): StateConfigJson {
  if (node.invoke.length > 0) throw new Error(`state #${node.id} invokes an actor; the machine config has no place for its implementation.`);
  const after = node.after as readonly (ResolvedTransition & { delay: string | number; eventType: string })[];
  // `after` and `onDone` appear in node.transitions under the events XState made for them.
  const derived = new Set([...after.map((t) => t.eventType), `xstate.done.state.${node.id}`]);
  const on = [...(node.transitions as Map<string, ResolvedTransition[]>)].filter(([event]) => !derived.has(event));
  const onDone = node.transitions.get(`xstate.done.state.${node.id}`) as ResolvedTransition[] | undefined;
  const delays = [...new Set(after.map((t) => String(t.delay)))];
  // The configured entry and exit: node.entry also holds the timers XState derived from `after`.
  const entry = actionsOf(node.config.entry, 'an entry action', node);
  const exit = actionsOf(node.config.exit, 'an exit action', node);
  const children = Object.entries(node.states as Record<string, AnyStateNode>);
  const initial = node.initial?.target[0] as AnyStateNode | undefined;
  return {
    ...(node.type === 'parallel' || node.type === 'final' || node.type === 'history' ? { type: node.type } : {}),
    ...(node.type === 'history' && node.history ? { history: node.history } : {}),
    ...(node.type === 'history' && typeof node.config.target === 'string' ? { target: node.config.target } : {}),
    ...(initial ? { initial: initial.path.slice(node.path.length).join('.') } : {}),
    ...(node.description !== undefined ? { description: node.description } : {}),
    ...(node.tags.length > 0 ? { tags: [...node.tags] } : {}),
    ...(node.meta !== undefined && isJson(node.meta) ? { meta: node.meta } : {}),
    ...(entry.length > 0 ? { entry: oneOrMany(entry) } : {}),
    ...(exit.length > 0 ? { exit: oneOrMany(exit) } : {}),
    ...(on.length > 0 ? { on: Object.fromEntries(on.map(([event, list]) => [event, transitions(node, list, event)])) } : {}),
    ...(node.always && node.always.length > 0 ? { always: transitions(node, node.always as ResolvedTransition[], 'always') } : {}),
    ...(delays.length > 0
      ? { after: Object.fromEntries(delays.map((d) => [d, transitions(node, after.filter((t) => String(t.delay) === d), `after ${d}`)])) }
      : {}),
    ...(onDone ? { onDone: transitions(node, onDone, 'onDone') } : {}),
    ...(children.length > 0 ? { states: Object.fromEntries(children.map(([key, child]) => [key, stateConfig(child)])) } : {}),
  };
}

/**
 * The machine as a JSON machine config (see the top of this file). Throws when a guard or an
 * action is an inline function, or a state invokes an actor: those have no name to write.
 */
export function toMachineConfig(machine: AnyStateMachine): MachineConfigJson {
  return { id: machine.id, ...stateConfig(machine.root as AnyStateNode) };
}
