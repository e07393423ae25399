// The machines' pure step without XState's per-call actor (issue #14). `transition()` and
// `initialTransition()` build a throwaway actor scope on every call (createInertActorScope in
// xstate's transition.ts/getNextSnapshot.ts): a new Actor, two actor systems, and the Actor's
// eager initial snapshot, where the order machine's `context: ({ input }) => …` throws a
// TypeError on the missing input (caught by xstate, paid for with a stack trace each time).
// A stepper builds that scope once and calls the machine's own public ActorLogic methods
// (`transition`, `getInitialSnapshot`) with it: the same snapshots and the same actions, which
// test/machine-step.property.test.ts checks against transition() over random event streams.
// xstate is pinned exactly in package.json, since the equivalence holds for the version tested.

import {
  createActor,
  type ActionExecutor,
  type ActorScope,
  type AnyStateMachine,
  type AnyStateNode,
  type EventFromLogic,
  type ExecutableActionsFrom,
  type InputFrom,
  type SnapshotFrom,
} from 'xstate';

/** What `transition()` returns: the next snapshot and the actions to carry out, with resolved params. */
export type Stepped<M extends AnyStateMachine> = [snapshot: SnapshotFrom<M>, actions: ExecutableActionsFrom<M>[]];

export interface MachineStepper<M extends AnyStateMachine> {
  /** As `transition(machine, snapshot, event)`. */
  step(snapshot: SnapshotFrom<M>, event: EventFromLogic<M>): Stepped<M>;
  /** As `initialTransition(machine, input)`. */
  initial(input: InputFrom<M>): Stepped<M>;
  /** As `machine.resolveState(persisted)`: a snapshot from its persisted (JSON) form. */
  resolve(persisted: Parameters<M['resolveState']>[0]): SnapshotFrom<M>;
  /** As `JSON.stringify(machine.getPersistedSnapshot(snapshot))`, character for character. */
  persist(snapshot: SnapshotFrom<M>): string;
}

const ignore = () => {};

/** A machine that invokes actors would register them in the one shared system on every step. */
function invokingState(node: AnyStateNode): string | undefined {
  if (node.invoke.length > 0) return node.id;
  for (const child of Object.values(node.states) as AnyStateNode[]) {
    const found = invokingState(child);
    if (found !== undefined) return found;
  }
  return undefined;
}

export function createMachineStepper<M extends AnyStateMachine>(machine: M): MachineStepper<M> {
  const invoking = invokingState(machine.root);
  if (invoking !== undefined) throw new Error(`createMachineStepper: state ${invoking} of machine ${machine.id} invokes an actor; step it with transition()`);
  // The actor is only `self` for the resolvers (never started): xstate's inert scope holds one
  // too. Its eager initial snapshot, without input, ends in an error status; nothing reads it.
  const self = createActor(machine);
  const scope: ActorScope<SnapshotFrom<M>, EventFromLogic<M>> = {
    self,
    id: '',
    sessionId: '',
    system: self.system,
    logger: ignore,
    defer: ignore,
    emit: ignore,
    stopChild: ignore,
    actionExecutor: ignore,
  };

  /** Runs `compute` collecting the actions it executes; restores the outer collector, so a nested step stays apart. */
  function collecting(compute: () => SnapshotFrom<M>): Stepped<M> {
    const actions: ExecutableActionsFrom<M>[] = [];
    const outer = scope.actionExecutor;
    const collect: ActionExecutor = (action) => {
      actions.push(action as ExecutableActionsFrom<M>);
    };
    scope.actionExecutor = collect;
    try {
      return [compute(), actions];
    } finally {
      scope.actionExecutor = outer;
    }
  }

  const templates = new Map<string, SnapshotFrom<M>>();

  return {
    step: (snapshot, event) => collecting(() => machine.transition(snapshot, event, scope) as SnapshotFrom<M>),
    initial: (input) => collecting(() => machine.getInitialSnapshot(scope, input) as SnapshotFrom<M>),
    resolve,
    persist,
  };

  /**
   * The persisted snapshot's JSON without getPersistedSnapshot's copies: its rest spread of the
   * whole snapshot and its walk of the context for actor references took more time than the
   * JSON itself (a fifth of a bulk request's machine work on PostgreSQL, profiled). Those copies
   * turn children and history into JSON; a snapshot with either takes getPersistedSnapshot. The
   * context is written as it is: right for a machine that keeps no actor reference in it (ours
   * spawn nothing; a live spawned child would show in `children`, one stopped but still
   * referenced would not). The keys in getPersistedSnapshot's order, which the stored rows have
   * (a no-change is a text compare).
   */
  function persist(snapshot: SnapshotFrom<M>): string {
    const { status, output, error, value, historyValue, context, children } = snapshot as unknown as Record<string, unknown>;
    if (hasOwnKeys(children) || hasOwnKeys(historyValue)) return JSON.stringify(machine.getPersistedSnapshot(snapshot));
    return JSON.stringify({ status, output, error, value, historyValue: {}, context, children: {} });
  }

  /**
   * As machine.resolveState, without walking the state tree for every row: what resolveState
   * derives from a state value (its state nodes, the full value, the tags, a final state's
   * `done`) is resolved once per value and status and shared by the snapshots that have them
   * (the value frozen, as nothing may change it in place); the rest (context, history, output, error) is the row's own. The property test
   * checks the result against resolveState's field by field.
   */
  function resolve(persisted: Parameters<M['resolveState']>[0]): SnapshotFrom<M> {
    const key = `${persisted.status ?? ''} ${JSON.stringify(persisted.value)}`;
    let template = templates.get(key);
    if (template === undefined) {
      const resolved = machine.resolveState({ status: persisted.status, value: persisted.value, context: {} }) as SnapshotFrom<M>;
      deepFreeze((resolved as { value: unknown }).value);
      if (templates.size >= RESOLVED_VALUES) templates.clear();
      templates.set(key, resolved);
      template = resolved;
    }
    return {
      ...(template as object),
      context: persisted.context ?? {},
      children: {},
      historyValue: persisted.historyValue || {},
      output: persisted.output,
      error: persisted.error,
    } as SnapshotFrom<M>;
  }
}

function hasOwnKeys(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  for (const key in value) if (Object.hasOwn(value, key)) return true;
  return false;
}

/** Distinct state values (with status) whose resolution a stepper keeps: far more than a machine has; a bound all the same, since values come from stored rows. */
const RESOLVED_VALUES = 1_000;

/** The columns of a stored row (orders, operations) that say which snapshot it holds. */
export interface StoredRow {
  readonly row_version: number;
  readonly machine_version: number;
  readonly snapshot: string;
}

interface CachedSnapshot<S, R extends StoredRow> {
  readonly row: R;
  readonly snapshot: S;
}

/** Freezes plain data all the way down (a machine context: objects, arrays, primitives). */
function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return;
  Object.freeze(value);
  // for…in, not Object.values: this runs on every write, and the array it makes is garbage at once.
  for (const key in value) deepFreeze((value as Record<string, unknown>)[key]);
}

/**
 * Resolved snapshots by row (an order, an operation), at most `capacity`, least recently used
 * out first. An entry serves a row only when the row holds the very text it was resolved
 * from: the row version, the machine version and the stored JSON all match. The version alone
 * is not proof: a transaction that rolled back after `remember` leaves its version number free
 * for a later write of other content, by this process or another.
 * A cached snapshot is handed out again and again, so its context is frozen: a caller that
 * changes an object it was given (an OrderState's `pending`) gets a TypeError instead of
 * changing what the next step of that order starts from. The machines never change a context
 * in place (assign() makes a new one).
 */
export class SnapshotCache<S extends { readonly context: unknown }, R extends StoredRow = StoredRow> {
  readonly #capacity: number;
  /** By id as given, not String(id) (a string made per lookup): 7 and '7' are two keys, so a cache takes one kind of id (the order book's: numbers). */
  readonly #entries = new Map<string | number, CachedSnapshot<S, R>>();

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`SnapshotCache capacity must be a positive integer, got ${capacity}`);
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The snapshot resolved from exactly this row, or undefined. */
  get(id: string | number, row: StoredRow): S | undefined {
    const entry = this.#entries.get(id);
    const held = entry?.row;
    if (entry === undefined || held!.row_version !== row.row_version || held!.machine_version !== row.machine_version || held!.snapshot !== row.snapshot) {
      return undefined;
    }
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    return entry.snapshot;
  }

  /**
   * The row last remembered for `id` and its snapshot, unchecked: what the row held when this
   * process last read or wrote it. Only a write conditioned on that very text (the row version
   * and the stored JSON) may stand on it; anything else must read the row.
   */
  latest(id: string | number): { readonly row: R; readonly snapshot: S } | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    return entry;
  }

  /** Drops what is remembered for `id` (a conditioned write found the row changed). */
  forget(id: string | number): void {
    this.#entries.delete(id);
  }

  /** The cached snapshot of this row, else `load(row)`, remembered. */
  resolve(id: string | number, row: R, load: (row: R) => S): S {
    const hit = this.get(id, row);
    if (hit !== undefined) return hit;
    const snapshot = load(row);
    this.remember(id, row, snapshot);
    return snapshot;
  }

  /** Remembers `snapshot` as what `row` holds (one entry per id: the row's newest). */
  remember(id: string | number, row: R, snapshot: S): void {
    deepFreeze(snapshot.context);
    this.#entries.delete(id);
    this.#entries.set(id, { row, snapshot });
    if (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }
}
